# SPDX-License-Identifier: Apache-2.0
"""Crash test of the real daemon: `modelfs serve` is killed with SIGKILL at random
moments of uploads, seals, alias changes and its own start-up reconciliation,
again and again on one store, and restarted.

After every restart:
- no acknowledged change is lost: every version, upload, seal and alias change the
  client got a 2xx for is in the db (through the API) and on the raw volume;
- no torn alias: every alias link on the raw volume is a symlink to the db's version,
  and no alias-shaped link exists that the db does not hold;
- no user file removed (a file at the store's root, a private directory in a model);
- `modelfs fsck` (with hashing) is clean beside the running daemon.

A change in flight when the kill came may or may not have committed: its alias may
hold the old or the new value, its version may or may not exist; whatever the db
then holds is taken as the state the next round builds on.

Some rounds serve a FUSE mount too (always unmounted after the kill) and check that
the mount shows the db's aliases.

MODELFS_CRASH_ROUNDS (default 200) and MODELFS_CRASH_SEED (printed) set the run;
MODELFS_CRASH_HASH_EVERY (default 10) spaces out the full pass for long runs.

usage: test_crash_daemon.py /path/to/modelfs
"""
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import wait_for  # noqa: E402

MODELFS = None
MODELS = ("crash-a", "crash-b")
# Every round re-reads what it must; the full pass (every file through the API, a hashing
# fsck) costs time with the store's size, so a long run spaces it out.
HASH_EVERY = int(os.environ.get("MODELFS_CRASH_HASH_EVERY") or "10")
ALIASES = ("current", "staging", "champion")


class Killed(Exception):
    pass


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4] == path)


class Run:
    def __init__(self, top, rng):
        self.top = top
        self.store = os.path.join(top, "store")
        self.mnt = os.path.join(top, "mnt")
        self.ready = os.path.join(top, "ready")
        self.log_path = os.path.join(top, "daemon.log")
        os.makedirs(self.store)
        os.makedirs(self.mnt)
        self.rng = rng
        self.proc = None
        self.port = None
        self.s = requests.Session()
        self.killed = threading.Event()
        # What the client was told: versions {model: {name: {"sealed": bool, "files": {p: sha}}}}
        self.versions = {m: {} for m in MODELS}
        self.aliases = {m: {} for m in MODELS}
        self.pending = None  # (model, alias, value) of an alias change in flight
        self.touched = set()  # versions changed since the last check
        self.doing = None
        self.log_seen = 0
        self.counter = 0
        self.stats = {"rounds": 0, "kills": 0, "startup_kills": 0, "mount_rounds": 0,
                      "ops": 0, "maybe": 0, "seals": 0, "alias_changes": 0}

    # ---- the daemon ----

    def spawn(self, mount):
        self.killed.clear()
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        args = [MODELFS, "serve", "--store", self.store, "--listen", "127.0.0.1:0",
                "--ready-file", self.ready]
        if mount:
            args += ["--mount", self.mnt]
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()

    def wait_ready(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(self.ready):
                with open(self.ready) as f:
                    line = f.read().strip()
                if line.startswith("port="):
                    self.port = int(line[5:])
                    return
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.005)
        raise AssertionError("serve not ready:\n" + self.tail())

    def tail(self):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-30:])

    def kill(self):
        self.killed.set()  # first: a request the kill cuts short must see it
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def reap(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        # A sanitizer's report (ASan build) is a failure, not a crash like the others.
        with open(self.log_path, errors="replace") as f:
            f.seek(self.log_seen)
            new = f.read()
            self.log_seen = f.tell()
        for bad in ("Sanitizer", "runtime error:"):
            if bad in new:
                raise AssertionError("the daemon reported:\n" + new[-4000:])
        # Always unmount what a killed daemon left (the next start would detach it too).
        while mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)

    # ---- HTTP ----

    def call(self, method, path, **kw):
        if self.killed.is_set():
            self.doing = "between"
            raise Killed()
        self.doing = path.rsplit("/", 2)[-1] if method != "GET" else "check"
        try:
            r = self.s.request(method, f"http://127.0.0.1:{self.port}/v1{path}", timeout=30, **kw)
        except requests.RequestException:
            if self.killed.is_set():
                raise Killed()
            raise
        if self.killed.is_set() and r.status_code >= 500:
            raise Killed()
        return r

    def ok(self, r, *codes):
        if r.status_code not in codes:
            raise AssertionError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
        return r

    # ---- operations (each records what was acknowledged) ----

    def op_version(self, model):
        name = f"v{self.counter}"
        self.counter += 1
        self.ok(self.call("POST", f"/models/{model}/versions", json={"name": name}), 201)
        entry = {"sealed": False, "files": {}}
        self.versions[model][name] = entry
        self.touched.add((model, name))
        for i in range(self.rng.randint(1, 3)):
            size = self.rng.choice((16, 4096, 65536, 1 << 20, 2 << 20))
            data = self.rng.randbytes(size)
            path = f"part{i}.bin" if i else "model.pkl"
            self.ok(self.call("PUT", f"/models/{model}/versions/{name}/files/{path}", data=data),
                    200, 201)
            entry["files"][path] = hashlib.sha256(data).hexdigest()
        if self.rng.random() < 0.85:
            self.ok(self.call("POST", f"/models/{model}/versions/{name}/seal"), 200)
            entry["sealed"] = True
            self.stats["seals"] += 1

    def op_alias(self, model):
        sealed = [v for v, e in self.versions[model].items() if e["sealed"]]
        alias = self.rng.choice(ALIASES)
        if not sealed:
            return
        if alias in self.aliases[model] and self.rng.random() < 0.2:
            self.pending = (model, alias, None)
            self.ok(self.call("DELETE", f"/models/{model}/aliases/{alias}"), 204)
            del self.aliases[model][alias]
        else:
            v = self.rng.choice(sealed)
            self.pending = (model, alias, v)
            self.ok(self.call("PUT", f"/models/{model}/aliases/{alias}",
                              json={"version": v, "force": True, "reason": "crash test"}), 200)
            self.aliases[model][alias] = v
        self.pending = None
        self.stats["alias_changes"] += 1

    def work(self):
        try:
            while True:
                model = self.rng.choice(MODELS)
                if self.rng.random() < 0.45:
                    self.op_version(model)
                else:
                    self.op_alias(model)
                self.stats["ops"] += 1
        except Killed:
            self.stats["maybe"] += 1
            where = "killed_in_" + {"versions": "create", "seal": "seal", "between": "between",
                                    "check": "check"}.get(
                self.doing, "alias" if self.doing in ALIASES else "upload")
            self.stats[where] = self.stats.get(where, 0) + 1

    # ---- checks ----

    def db_view(self, model):
        names, params = {}, {"limit": 1000}
        while True:  # every page: a long run holds more versions than one page
            r = self.ok(self.call("GET", f"/models/{model}/versions", params=params), 200).json()
            names.update({v["name"]: v["state"] for v in r["versions"]})
            if not r.get("next_cursor"):
                break
            params["cursor"] = r["next_cursor"]
        al = self.ok(self.call("GET", f"/models/{model}/aliases"), 200).json()
        aliases = {a["alias"]: a["version"] for a in al["aliases"]}
        return names, aliases

    def check(self, mount):
        for model in MODELS:
            names, aliases = self.db_view(model)
            for name, e in self.versions[model].items():
                self.assert_(name in names, f"acknowledged version {model}/{name} lost")
                if e["sealed"]:
                    self.assert_(names[name] == "sealed", f"acknowledged seal {model}/{name} lost")
                # Files of what changed since the last check (fsck covers the older ones).
                if (model, name) not in self.touched and self.stats["rounds"] % HASH_EVERY:
                    continue
                v = self.ok(self.call("GET", f"/models/{model}/versions/{name}"), 200).json()
                files = {f["path"]: f for f in v["files"]}
                for path, sha in e["files"].items():
                    self.assert_(path in files, f"acknowledged upload {model}/{name}/{path} lost")
                    if e["sealed"]:
                        self.assert_(files[path]["sha256"] == sha, f"{model}/{name}/{path}")
                    with open(os.path.join(self.store, model, name, path), "rb") as f:
                        self.assert_(hashlib.sha256(f.read()).hexdigest() == sha,
                                     f"bytes of {model}/{name}/{path} on the volume")
                if e["sealed"]:
                    self.assert_(v["state"] == "sealed", f"acknowledged seal {model}/{name} lost")
            for alias in ALIASES:
                want = {self.aliases[model].get(alias)}
                if self.pending and self.pending[:2] == (model, alias):
                    want.add(self.pending[2])
                self.assert_(aliases.get(alias) in want,
                             f"alias {model}/{alias} is {aliases.get(alias)}, acknowledged {want}")
            # No torn alias: the raw volume's links are the db's, and only those.
            mdir = os.path.join(self.store, model)
            for entry in os.listdir(mdir) if os.path.isdir(mdir) else []:
                p = os.path.join(mdir, entry)
                if entry.startswith(".") or not os.path.islink(p):
                    continue
                self.assert_(entry in aliases, f"link {model}/{entry} the db does not hold")
            for alias, v in aliases.items():
                p = os.path.join(mdir, alias)
                self.assert_(os.path.islink(p) and os.readlink(p) == v,
                             f"{model}/{alias} on the volume is not a link to {v}")
                self.assert_(os.path.isdir(p), f"{model}/{alias} -> {v} dangles")
                if mount:
                    self.assert_(os.readlink(os.path.join(self.mnt, model, alias)) == v,
                                 f"the mount's {model}/{alias} is not {v}")
            # Take what the db holds as the state to build on (changes in flight included).
            for name, state in names.items():
                e = self.versions[model].setdefault(name, {"sealed": False, "files": {}})
                e["sealed"] = state == "sealed"
            self.aliases[model] = dict(aliases)
        self.pending = None
        self.touched = set()
        # User files stay.
        with open(os.path.join(self.store, "NOTES.txt")) as f:
            self.assert_(f.read() == "operator notes\n", "NOTES.txt changed")
        with open(os.path.join(self.store, MODELS[0], ".operator", "keep")) as f:
            self.assert_(f.read() == "keep\n", ".operator/keep changed")
        # Sizes every round, content hashes every HASH_EVERY-th (and at the end).
        full = self.stats["rounds"] % HASH_EVERY == 0
        p = subprocess.run([MODELFS, "fsck", self.store] + ([] if full else ["--no-hash"]),
                           capture_output=True, text=True, timeout=120)
        self.assert_(p.returncode == 0, f"fsck after a restart:\n{p.stdout}{p.stderr}")

    def assert_(self, cond, msg):
        if not cond:
            raise AssertionError(msg + "\n--- daemon log:\n" + self.tail())

    # ---- one round ----

    def round(self):
        rng = self.rng
        mount = rng.random() < 0.2
        self.stats["rounds"] += 1
        self.stats["mount_rounds"] += mount
        self.killed.clear()
        if rng.random() < 0.25:
            # Killed during start-up and its reconciliation.
            self.spawn(mount)
            time.sleep(rng.uniform(0, 0.08))
            self.kill()
            self.reap()
            self.stats["startup_kills"] += 1
            self.killed.clear()
        self.spawn(mount)
        self.wait_ready()
        self.check(mount)
        timer = threading.Timer(rng.uniform(0.005, 0.25), self.kill)
        timer.start()
        self.work()
        timer.cancel()
        self.kill()
        self.reap()
        self.stats["kills"] += 1


class CrashDaemonTest(unittest.TestCase):
    def test_sigkill_at_random_points(self):
        rounds = int(os.environ.get("MODELFS_CRASH_ROUNDS") or "200")
        seed = int(os.environ.get("MODELFS_CRASH_SEED", str(int(time.time()))))
        print(f"MODELFS_CRASH_SEED={seed} MODELFS_CRASH_ROUNDS={rounds}", flush=True)
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        top = tempfile.mkdtemp(prefix="modelfs-crash-", dir=base)
        run = Run(top, random.Random(seed))
        t0 = time.time()
        try:
            run.spawn(False)
            run.wait_ready()
            for m in MODELS:
                run.ok(run.call("POST", "/models", json={"name": m}), 201)
            os.makedirs(os.path.join(run.store, MODELS[0], ".operator"))
            with open(os.path.join(run.store, MODELS[0], ".operator", "keep"), "w") as f:
                f.write("keep\n")
            with open(os.path.join(run.store, "NOTES.txt"), "w") as f:
                f.write("operator notes\n")
            run.kill()
            run.reap()
            for _ in range(rounds):
                run.round()
            run.spawn(True)
            run.wait_ready()
            run.stats["rounds"] = 0  # a hashing fsck
            run.check(True)
            run.stats["rounds"] = rounds
            run.proc.send_signal(signal.SIGTERM)
            self.assertEqual(run.proc.wait(timeout=30), 0)
            run.proc = None
            wait_for(lambda: not mounted(run.mnt), 10, "the mount to go")
        finally:
            run.kill()
            run.reap()
            # Write bits back on directories only, never through a link.
            for root, dirs, _ in os.walk(run.store):
                for d in dirs:
                    p = os.path.join(root, d)
                    if not os.path.islink(p):
                        os.chmod(p, 0o755)
            subprocess.run(["rm", "-rf", "--one-file-system", top])
        print(f"{time.time() - t0:.1f}s {run.stats}", flush=True)


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
