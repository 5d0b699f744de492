# SPDX-License-Identifier: Apache-2.0
"""Starting and stopping a real `modelfs serve` with a FUSE mount, for tests."""
import os
import signal
import sqlite3
import subprocess
import tempfile
import time

import pgutil


def wait_for(fn, timeout=20.0, what="condition"):
    """Polls fn until it returns something true, which is returned."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_serve(args, log_path, ready, timeout=20):
    """Starts `modelfs serve ... --ready-file <ready>`; returns (proc, log, port) once it
    wrote port=<n>, or raises with the daemon's log."""
    if os.path.exists(ready):
        os.unlink(ready)
    log = open(log_path, "a")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(ready):
            with open(ready) as f:
                line = f.read().strip()
            if line.startswith("port="):
                return proc, log, int(line[5:])
        if proc.poll() is not None:
            log.close()
            with open(log_path) as f:
                raise RuntimeError(f"modelfs serve exited {proc.returncode}:\n{f.read()}")
        time.sleep(0.02)
    with open(log_path) as f:
        raise RuntimeError(f"modelfs serve not ready after {timeout}s:\n{f.read()}")


def has_listen_option(modelfs):
    out = subprocess.run([modelfs, "serve", "--help"], capture_output=True, text=True).stdout
    return "--listen" in out


class Daemon:
    """One `modelfs serve` process with its own store, mount point and log."""

    def __init__(self, modelfs, extra=(), store=None, base=None):
        base = base or os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.modelfs = modelfs
        self.dir = tempfile.mkdtemp(prefix="modelfs-fs-", dir=base)
        os.chmod(self.dir, 0o755)  # other users reach the mount in some tests
        self.store = store or os.path.join(self.dir, "store")
        self.mnt = os.path.join(self.dir, "mnt")
        self.ready = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "daemon.log")
        os.makedirs(self.store, exist_ok=True)
        os.makedirs(self.mnt, exist_ok=True)
        self.extra = list(extra)
        self.proc = None
        self.port = None
        pgutil.use(self.store)  # offline commands run on the store find its database

    def start(self, timeout=20):
        pgutil.use(self.store)
        args = [self.modelfs, "serve", "--store", self.store, "--mount", self.mnt,
                "--ready-file", self.ready]
        if has_listen_option(self.modelfs):
            args += ["--listen", "127.0.0.1:0"]
        args += self.extra
        self.proc, self.log, self.port = start_serve(args, self.log_path, self.ready, timeout)
        return self

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the daemon we started (by PID) and returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        self.unmount()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.log.close()
        self.unmount()

    def unmount(self):
        with open("/proc/mounts") as f:
            mounted = any(line.split()[1] == self.mnt for line in f)
        if mounted:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)

    def events(self, model=None, kind=None):
        """The event log, read straight from the database (read-only, beside the daemon)."""
        if pgutil.enabled():
            q = "SELECT kind, version, alias, channel, actor, before, after FROM events WHERE true"
            if model:
                q += " AND model = '%s'" % model.replace("'", "''")
            if kind:
                q += " AND kind = '%s'" % kind.replace("'", "''")
            return [dict(zip(("kind", "version", "alias", "channel", "actor", "before", "after"), r))
                    for r in pgutil.query(self.store, q + " ORDER BY id")]
        db = sqlite3.connect(f"file:{self.store}/.modelfs/registry.db?mode=ro", uri=True,
                             timeout=10)
        try:
            q = "SELECT kind, version, alias, channel, actor, before, after FROM events WHERE 1"
            args = []
            if model:
                q += " AND model = ?"
                args.append(model)
            if kind:
                q += " AND kind = ?"
                args.append(kind)
            return [dict(zip(("kind", "version", "alias", "channel", "actor", "before", "after"), r))
                    for r in db.execute(q + " ORDER BY id", args)]
        finally:
            db.close()

    def state(self, model, version):
        if pgutil.enabled():
            r = pgutil.query(self.store, "SELECT v.state FROM versions v JOIN models m ON "
                             "m.id = v.model_id WHERE m.name = '%s' AND v.name = '%s'"
                             % (model.replace("'", "''"), version.replace("'", "''")))
            return r[0][0] if r else None
        db = sqlite3.connect(f"file:{self.store}/.modelfs/registry.db?mode=ro", uri=True,
                             timeout=10)
        try:
            r = db.execute("SELECT v.state FROM versions v JOIN models m ON m.id = v.model_id "
                           "WHERE m.name = ? AND v.name = ?", (model, version)).fetchone()
            return r[0] if r else None
        finally:
            db.close()

    def cleanup(self):
        if self.proc:
            self.stop()
        self.unmount()
        subprocess.run(["chmod", "-R", "u+w", self.dir], capture_output=True)
        subprocess.run(["rm", "-rf", self.dir], capture_output=True)
        pgutil.drop(self.store)
