# SPDX-License-Identifier: Apache-2.0
"""modelfs as a service: the real daemon under a stand-in for systemd's notify
socket, with and without a mount, and the files that deploy it.

- READY=1 (with MAINPID= and STATUS=) only once the API answers and the mount
  works; SIGHUP is RELOADING=1 ... READY=1 and stops nothing; rotated tokens
  apply, a broken token file keeps the old ones; SIGTERM/SIGINT are
  STOPPING=1, exit 0, unmounted.
- A restart over the dead mount a SIGKILL leaves, with no one stepping in.
- SIGHUP runs the git queue at once and queues failed tags again.
- deploy/systemd: systemd-analyze verify, no mount namespacing, the env example
  passes --check-config. deploy/Containerfile: the runtime stage installs the
  package of every library the binary links, the build stage exactly what
  meson's dependencies need. README's option table equals `serve --help`.

usage: test_service.py /path/to/modelfs
"""
import errno
import http.client
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import wait_for  # noqa: E402

MODELFS = None
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OLD = "old-secret-0123456789abcdef"
NEW = "new-secret-fedcba9876543210"
GIT = ["git", "-c", "user.name=tester", "-c", "user.email=tester@example.com",
       "-c", "init.defaultBranch=main"]


def git(*args, cwd=None):
    p = subprocess.run(GIT + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {p.stderr}")
    return p.stdout.strip()


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o600)
    os.rename(path + ".tmp", path)


class NotifySocket:
    """What systemd listens on: one AF_UNIX datagram per message."""

    def __init__(self, path=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is None:
            self.addr = f"@modelfs-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + self.addr[1:])
        else:
            self.addr = path
            self.sock.bind(path)

    def recv(self, timeout=20.0):
        """The next message as a dict (and its arrival time), or None."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        msg = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        msg["_at"] = time.monotonic()
        return msg

    def pending(self):
        return self.recv(timeout=0.05)

    def close(self):
        self.sock.close()


class Service:
    """One `modelfs serve` we start (and stop, by PID) in a directory of its own."""

    def __init__(self, base, mount=False, tokens=None, extra=(), store=None, mnt=None):
        self.dir = tempfile.mkdtemp(prefix="svc-", dir=base)
        self.store = store or os.path.join(self.dir, "store")
        os.makedirs(self.store, exist_ok=True)
        self.mnt = mnt or (os.path.join(self.dir, "mnt") if mount else None)
        if self.mnt:
            os.makedirs(self.mnt, exist_ok=True)
        self.ready = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.token_file = None
        if tokens is not None:
            self.token_file = os.path.join(self.dir, "tokens")
            write_atomic(self.token_file, tokens)
        self.extra = list(extra)
        self.proc = None

    def start(self, notify=None):
        args = [MODELFS, "serve", "--store", self.store, "--listen", "127.0.0.1:0",
                "--ready-file", self.ready] + self.extra
        if self.mnt:
            args += ["--mount", self.mnt]
        if self.token_file:
            args += ["--token-file", self.token_file]
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        if notify:
            env["NOTIFY_SOCKET"] = notify.addr
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self.log = open(self.log_path, "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=env)
        return self

    def wait_ready_file(self, timeout=20):
        wait_for(lambda: os.path.exists(self.ready) or self.proc.poll() is not None, timeout,
                 "the ready file")
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.read_log()}")
        return self

    @property
    def port(self):
        with open(self.ready) as f:
            return int(f.read().strip()[5:])

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # What it is stuck on, for the report; then it is killed by cleanup().
            bt = ""
            if shutil.which("gdb"):
                bt = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex",
                                     "thread apply all bt"], capture_output=True, text=True,
                                    timeout=120).stdout
            raise AssertionError(f"serve did not exit within {timeout}s:\n{self.read_log()}"
                                 f"\n{bt}")
        self.proc = None
        self.log.close()
        return rc

    def cleanup(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            self.proc = None
        if self.mnt and mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class ServiceTest(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="modelfs-svc-", dir=base)
        self.services = []
        self.sockets = []

    def tearDown(self):
        for s in self.services:
            s.cleanup()
        for n in self.sockets:
            n.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def service(self, **kw):
        s = Service(self.tmp, **kw)
        self.services.append(s)
        return s

    def notify_socket(self, abstract=False):
        path = None if abstract else os.path.join(self.tmp, "notify")
        if path and len(path) >= 100:
            abstract = True
            path = None
        n = NotifySocket(path)
        self.sockets.append(n)
        return n

    def expect(self, n, key, timeout=20.0):
        msg = n.recv(timeout)
        self.assertIsNotNone(msg, f"no {key} message within {timeout}s")
        self.assertEqual(msg.get(key), "1", f"expected {key}=1, got {msg}")
        return msg

    def assert_ready_once_up(self, s, n):
        """READY=1 is the first message, and at that moment everything answers."""
        msg = self.expect(n, "READY")
        self.assertTrue(os.path.exists(s.ready), "READY=1 before the ready file")
        self.assertEqual(requests.get(s.url + "/livez", timeout=2).status_code, 200)
        if s.mnt:
            self.assertTrue(mounted(s.mnt), "READY=1 before the mount is there")
            os.listdir(s.mnt)  # answered by the daemon (a dead mount gives ENOTCONN)
        self.assertEqual(int(msg["MAINPID"]), s.proc.pid)
        self.assertIn(f"store={s.store}", msg["STATUS"])
        self.assertIn(f"mount={s.mnt or '-'}", msg["STATUS"])
        self.assertIn(f"port={s.port}", msg["STATUS"])
        return msg

    def test_ready_reload_rotation_and_stop_with_mount(self):
        n = self.notify_socket()
        s = self.service(mount=True, tokens=f"ops admin {OLD}\n").start(n)
        ready = self.assert_ready_once_up(s, n)
        print(f"# start to READY=1 with a mount: {(ready['_at'] - s.started) * 1000:.0f} ms",
              file=sys.stderr)
        old = {"Authorization": f"Bearer {OLD}"}
        new = {"Authorization": f"Bearer {NEW}"}
        self.assertEqual(requests.post(s.url + "/v1/models", json={"name": "a"}, headers=old,
                                       timeout=10).status_code, 201)
        # A kept-alive connection from before the rotation.
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        conn.request("GET", "/v1/models", headers=old)
        self.assertEqual(conn.getresponse().read() and 200, 200)
        sock_before = conn.sock
        # Rotation: the old token goes, a new one comes.
        write_atomic(s.token_file, f"ops admin {NEW}\n")
        before = time.monotonic_ns() // 1000
        hup = time.monotonic()
        s.signal(signal.SIGHUP)
        reloading = self.expect(n, "RELOADING")
        after = time.monotonic_ns() // 1000
        self.assertTrue(before <= int(reloading["MONOTONIC_USEC"]) <= after, reloading)
        ready = self.expect(n, "READY")
        self.assertNotIn("failed", ready["STATUS"])
        print(f"# SIGHUP to READY=1 (token reload): {(ready['_at'] - hup) * 1000:.1f} ms",
              file=sys.stderr)
        self.assertIsNone(s.proc.poll())
        self.assertEqual(requests.post(s.url + "/v1/models", json={"name": "b"}, headers=old,
                                       timeout=10).status_code, 401)
        self.assertEqual(requests.post(s.url + "/v1/models", json={"name": "b"}, headers=new,
                                       timeout=10).status_code, 201)
        conn.request("GET", "/v1/models", headers=new)
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.assertIs(conn.sock, sock_before, "the connection was dropped by the reload")
        conn.close()
        # The mount went on serving through the reload.
        self.assertEqual(sorted(os.listdir(s.mnt)), ["a", "b"])
        os.mkdir(os.path.join(s.mnt, "c"))
        self.assertEqual(requests.get(s.url + "/v1/models/c", timeout=10).status_code, 200)
        # A broken file (and then a missing one) keeps the tokens in use.
        for broken in ("ops admin short\n", None):
            if broken is None:
                os.unlink(s.token_file)
            else:
                write_atomic(s.token_file, broken)
            s.signal(signal.SIGHUP)
            self.expect(n, "RELOADING")
            ready = self.expect(n, "READY")
            self.assertIn("reload failed, old tokens kept", ready["STATUS"])
            self.assertEqual(requests.post(s.url + "/v1/models", json={"name": "d"},
                                           headers=old, timeout=10).status_code, 401)
            r = requests.get(s.url + "/v1/models/a", headers=new, timeout=10)
            self.assertEqual(r.status_code, 200)
        self.assertEqual(requests.post(s.url + "/v1/models", json={"name": "d"}, headers=new,
                                       timeout=10).status_code, 201)
        log = s.read_log()
        self.assertIn("reload: 1 token from", log)
        self.assertIn("line 1: the secret of 'ops' is shorter than 16", log)
        self.assertIn("the 1 tokens in use stay", log)
        # SIGTERM: STOPPING=1, exit 0, unmounted.
        s.signal(signal.SIGTERM)
        self.expect(n, "STOPPING")
        self.assertEqual(s.wait(), 0)
        self.assertFalse(mounted(s.mnt))
        self.assertIsNone(n.pending())

    def test_api_only_reload_and_sigint(self):
        n = self.notify_socket(abstract=True)
        s = self.service().start(n)
        ready = self.assert_ready_once_up(s, n)
        print(f"# start to READY=1 without a mount: {(ready['_at'] - s.started) * 1000:.0f} ms",
              file=sys.stderr)
        for _ in range(2):
            s.signal(signal.SIGHUP)
            self.expect(n, "RELOADING")
            self.expect(n, "READY")
        self.assertEqual(requests.get(s.url + "/readyz", timeout=5).status_code, 200)
        self.assertEqual(s.read_log().count("reload: no --token-file to read"), 2)
        s.signal(signal.SIGINT)
        self.expect(n, "STOPPING")
        self.assertEqual(s.wait(), 0)

    def test_sighup_without_notify_socket_does_not_stop(self):
        for mount in (False, True):
            s = self.service(mount=mount).start().wait_ready_file()
            s.signal(signal.SIGHUP)
            wait_for(lambda: "reload: no --token-file" in s.read_log(), what="the reload log")
            time.sleep(0.2)
            self.assertIsNone(s.proc.poll(), "SIGHUP stopped the daemon")
            self.assertEqual(requests.get(s.url + "/livez", timeout=5).status_code, 200)
            if mount:
                self.assertEqual(os.listdir(s.mnt), [])
            s.signal(signal.SIGTERM)
            self.assertEqual(s.wait(), 0)

    def test_restart_over_the_dead_mount_of_sigkill(self):
        n = self.notify_socket()
        s = self.service(mount=True).start(n)
        self.assert_ready_once_up(s, n)
        os.mkdir(os.path.join(s.mnt, "kept"))
        s.proc.kill()
        s.wait()
        with self.assertRaises(OSError) as e:
            os.stat(s.mnt)
        self.assertEqual(e.exception.errno, errno.ENOTCONN)
        s.start(n)
        self.assert_ready_once_up(s, n)
        self.assertEqual(os.listdir(s.mnt), ["kept"])
        self.assertIn("was the dead mount of a modelfs that did not stop cleanly: detached it",
                      s.read_log())
        with open("/proc/mounts") as f:
            self.assertEqual(sum(line.split()[1] == s.mnt for line in f), 1)
        s.signal(signal.SIGTERM)
        self.expect(n, "STOPPING")
        self.assertEqual(s.wait(), 0)
        self.assertFalse(mounted(s.mnt))

    def test_mount_taken_away_from_outside_stops_cleanly(self):
        n = self.notify_socket()
        s = self.service(mount=True).start(n)
        self.assert_ready_once_up(s, n)
        subprocess.run(["fusermount3", "-u", s.mnt], check=True, capture_output=True)
        self.expect(n, "STOPPING")
        self.assertEqual(s.wait(), 0)
        self.assertIn("went away: stopping", s.read_log())

    def test_reload_runs_the_git_queue_now(self):
        src = os.path.join(self.tmp, "training")
        git("init", "-q", src)
        git("commit", "-q", "--allow-empty", "-m", "train", cwd=src)
        commit = git("rev-parse", "HEAD", cwd=src)
        repo = os.path.join(self.tmp, "later.git")  # not there yet
        n = self.notify_socket()
        s = self.service(extra=["--git-repo", repo]).start(n)
        self.expect(n, "READY")

        def version(model, commit_id):
            requests.post(s.url + "/v1/models", json={"name": model}, timeout=10)
            meta = {"validation_status": "passed", "git_commit": commit_id,
                    "performance_metrics": {"accuracy": 0.9}}
            r = requests.post(s.url + f"/v1/models/{model}/versions", timeout=10,
                              json={"name": "v1", "metadata": meta})
            self.assertEqual(r.status_code, 201, r.text)
            r = requests.post(s.url + f"/v1/models/{model}/versions/v1/seal", timeout=10)
            self.assertEqual(r.status_code, 200, r.text)

        version("m", commit)

        def item():
            items = requests.get(s.url + "/v1/git?state=pending", timeout=10).json()["items"]
            return items[0] if items and items[0]["attempts"] >= 3 else None

        # Three failures in: the next try is 4 s of backoff away.
        it = wait_for(item, timeout=30, what="three failed attempts")
        git("clone", "-q", "--bare", src, repo)
        s.signal(signal.SIGHUP)
        hup = time.time()
        self.expect(n, "RELOADING")
        self.expect(n, "READY")
        next_at = time.mktime(time.strptime(it["next_at"][:19], "%Y-%m-%dT%H:%M:%S")) - \
            time.timezone
        wait_for(lambda: "model-m-v1" in git("tag", "-l", cwd=repo), timeout=10, what="the tag")
        made = time.time()
        self.assertLess(made - hup, 1.5)
        self.assertLess(made, next_at - 0.5, "the tag waited for its backoff")
        # A tag that failed for good (its commit is not in the repository) is queued again.
        version("n", "0" * 40)
        wait_for(lambda: requests.get(s.url + "/v1/git", timeout=10).json()["queue"]["failed"],
                 what="a failed item")
        s.signal(signal.SIGHUP)
        self.expect(n, "RELOADING")
        self.expect(n, "READY")
        self.assertIn("reload: git: 1 failed tag queued again", s.read_log())
        db = sqlite3.connect(f"file:{s.store}/.modelfs/registry.db?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("SELECT channel, actor FROM events WHERE kind = 'git.retry'").fetchall()
        finally:
            db.close()
        self.assertEqual(rows, [("cli", "serve")])
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait(), 0)

    # ---- the deploy files ----

    def unit(self):
        with open(os.path.join(SRC, "deploy", "systemd", "modelfs.service")) as f:
            return f.read()

    def test_systemd_unit(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("no systemd-analyze")
        text = self.unit()
        keys = {}
        for line in text.splitlines():
            if line and not line.startswith(("#", "[")):
                k, v = line.split("=", 1)
                keys.setdefault(k, []).append(v)
        want = {"Type": ["notify"], "ExecStart": ["/usr/bin/modelfs serve"],
                "ExecReload": ["/bin/kill -HUP $MAINPID"], "Restart": ["on-failure"],
                "EnvironmentFile": ["-/etc/modelfs/modelfs.env"], "KillMode": ["mixed"],
                "NotifyAccess": ["main"], "DeviceAllow": ["/dev/fuse rw"]}
        for k, v in want.items():
            self.assertEqual(keys.get(k), v, k)
        self.assertIn("TimeoutStopSec", keys)
        self.assertIn("CAP_SYS_ADMIN", keys["CapabilityBoundingSet"][0])
        self.assertIn("@mount", keys["SystemCallFilter"][0])
        # Any of these gives the service its own mount namespace, and the FUSE
        # mount would never reach the host.
        for k in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
                  "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem",
                  "BindPaths", "BindReadOnlyPaths", "ProtectKernelTunables",
                  "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                  "ProtectProc", "ProtectHostname", "ProcSubset", "MountFlags", "RootDirectory",
                  "PrivateUsers"):
            self.assertNotIn(k, keys, f"{k}= would hide the mount from the host")
        # systemd-analyze verify offline, on a copy that runs the binary under test.
        unit = os.path.join(self.tmp, "modelfs.service")
        with open(unit, "w") as f:
            f.write(text.replace("ExecStart=/usr/bin/modelfs", f"ExecStart={MODELFS}"))
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual((p.returncode, p.stderr.strip()), (0, ""), p.stdout + p.stderr)
        # The example environment file names only real options and passes --check-config.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELFS_")}
        names = self.help_rows()
        known = {r[0] for r in names}
        with open(os.path.join(SRC, "deploy", "systemd", "modelfs.env")) as f:
            for line in f:
                m = re.match(r"^#?(MODELFS_\w+)=(.*)$", line.strip())
                if not m:
                    continue
                self.assertIn(m.group(1), known, line)
                if not line.startswith("#"):
                    env[m.group(1)] = m.group(2)
        self.assertIn("MODELFS_STORE", env)
        os.makedirs(os.path.join(self.tmp, "s"))
        os.makedirs(os.path.join(self.tmp, "m"))
        env["MODELFS_STORE"] = os.path.join(self.tmp, "s")
        env["MODELFS_MOUNT"] = os.path.join(self.tmp, "m")
        p = subprocess.run([MODELFS, "serve", "--check-config"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_containerfile(self):
        if not shutil.which("dpkg"):
            self.skipTest("no dpkg")
        with open(os.path.join(SRC, "deploy", "Containerfile")) as f:
            text = f.read()
        joined = re.sub(r"\\\n", " ", text)
        stages = re.split(r"^FROM ", joined, flags=re.M)[1:]
        self.assertEqual(len(stages), 2, "a build stage and a runtime stage")
        for st in stages:
            # Debian 13: libfuse >= 3.17 (kernel passthrough) as a binary package.
            self.assertTrue(st.startswith("debian:13"), st[:40])

        def installs(stage):
            pkgs = set()
            for m in re.finditer(r"apt-get install ([^&\n]*)", stage):
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
            return pkgs

        build, runtime = installs(stages[0]), installs(stages[1])
        # This machine may be Debian 12 with ./dev's private libfuse 3.17 (no
        # package owns it; Debian's source package is fuse3) and older names
        # for the runtime libraries: each library is matched to its source
        # package, and the image must install one of that source's Debian 13
        # binaries (known from the trixie deb-src entry ./dev adds, or from
        # the package lists of a Debian 13 machine).
        # (build-deps may be a link to another checkout's, as in a git worktree)
        private = os.path.realpath(os.path.join(SRC, "build-deps")) + os.sep

        def source_of(path):
            if os.path.realpath(path).startswith(private):
                return "fuse3"
            pkg = self.dpkg_owner(path)
            self.assertTrue(pkg, f"no package owns {path}")
            return subprocess.run(["dpkg-query", "-W", "-f=${source:Package}", pkg],
                                  capture_output=True, text=True).stdout.strip()

        def debian13_binaries(src):
            out = subprocess.run(["apt-cache", "showsrc", "--only-source", src],
                                 capture_output=True, text=True).stdout
            names = set()
            for line in re.findall(r"^Binary: (.*)$", out, re.M):
                names |= {w.strip() for w in line.split(",")}
            return names

        if not {"libfuse3-4", "libfuse3-dev"} <= debian13_binaries("fuse3") and \
                subprocess.run(["apt-cache", "show", "libfuse3-4"],
                               capture_output=True).returncode != 0:
            self.skipTest("no Debian 13 package lists here (./dev setup adds trixie's deb-src)")

        def known(pkg):
            if subprocess.run(["apt-cache", "show", "--no-all-versions", pkg],
                              capture_output=True).returncode == 0:
                return True
            out = subprocess.run(["apt-cache", "showsrc", pkg], capture_output=True,
                                 text=True).stdout
            return any(pkg in {w.strip() for w in line.split(",")}
                       for line in re.findall(r"^Binary: (.*)$", out, re.M))

        # Build stage = the tools + a -dev package of each .pc file's source meson asks for.
        deps = set()
        for root, _, files in os.walk(SRC):
            rel = os.path.relpath(root, SRC)
            if "meson.build" in files and not rel.startswith(("build", "tests/deploy/node_modules")):
                with open(os.path.join(root, "meson.build")) as f:
                    deps |= set(re.findall(r"\bdependency\('([^']+)'", f.read()))
        deps.discard("threads")
        tools = {"build-essential", "meson", "ninja-build", "pkg-config"}
        self.assertLessEqual(tools, build)
        matched = set()
        for d in deps:
            pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", d], capture_output=True,
                                   text=True).stdout.strip()
            self.assertTrue(pcdir, f"pkg-config knows no {d}")
            bins = {b for b in debian13_binaries(source_of(os.path.join(pcdir, d + ".pc")))
                    if b.endswith("-dev")} or {self.dpkg_owner(os.path.join(pcdir, d + ".pc"))}
            self.assertTrue(bins & build, f"{d}: the build stage installs none of {sorted(bins)}")
            matched |= bins & build
        self.assertEqual(build - tools - matched, set(), "the build stage installs only what it needs")
        with open(os.path.join(SRC, "dev")) as f:
            dev = re.search(r"^PACKAGES=\((.*?)^\)", f.read(), re.S | re.M).group(1)
        dev_pkgs = {w for line in dev.splitlines() for w in line.split("#")[0].split()}
        self.assertLessEqual(build, dev_pkgs, "the image builds with what ./dev setup installs")
        # Runtime stage: a Debian 13 package of every library the binary links, libc aside.
        out = subprocess.run(["readelf", "-d", MODELFS], capture_output=True, text=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
        self.assertTrue([n for n in needed if n.startswith("libfuse3.so.")], needed)
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", MODELFS], capture_output=True, text=True).stdout, re.M))
        matched = set()
        for lib in needed:
            if lib.startswith(("libc.so", "ld-linux")):
                continue  # libc6 is in every Debian image
            if lib.startswith(("libasan", "libubsan", "libtsan", "liblsan")):
                continue  # a sanitizer build's runtime, not the image's
            src = source_of(paths[lib])
            bins = {b for b in debian13_binaries(src) if not b.endswith(("-dev", "-udeb", "-doc"))}
            if not bins:
                bins = {self.dpkg_owner(paths[lib])}
            self.assertTrue(bins & runtime, f"{lib} (source {src}): the runtime stage installs "
                            f"none of {sorted(bins)}")
            matched |= bins & runtime
        self.assertLessEqual(runtime - matched, {"fuse3", "ca-certificates"})
        self.assertFalse({p for p in runtime if p.endswith("-dev")})
        for pkg in build | runtime:
            self.assertTrue(known(pkg), f"Debian 13 has no package {pkg}")
        # Every subdir() meson enters is copied in; the image runs serve as a non-root user.
        with open(os.path.join(SRC, "meson.build")) as f:
            subdirs = re.findall(r"^subdir\('([^']+)'\)", f.read(), re.M)
        copied = set(re.findall(r"^COPY (\S+) ", stages[0], re.M))
        self.assertLessEqual(set(subdirs) | {"meson.build"}, copied)
        self.assertRegex(stages[1], r'(?m)^ENTRYPOINT \["modelfs", "serve"\]$')
        self.assertRegex(stages[1], r"(?m)^EXPOSE 8080$")
        user = re.findall(r"(?m)^USER (\S+)$", stages[1])
        self.assertTrue(user and not user[-1].split(":")[0] in ("0", "root"), user)
        self.assertRegex(stages[1], r"COPY --from=build \S+/cli/modelfs /usr/bin/modelfs")

    @staticmethod
    def dpkg_owner(path):
        cands = [path, os.path.realpath(path)]
        for c in list(cands):
            if c.startswith("/usr/lib/"):
                cands.append(c[4:])
            elif c.startswith("/lib/"):
                cands.append("/usr" + c)
        for c in cands:
            p = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if p.returncode == 0:
                return p.stdout.split(":", 1)[0].strip()
        raise AssertionError(f"no Debian package owns {path}")

    # ---- the README's option table ----

    @staticmethod
    def help_rows():
        """(env or '-', flag, default, meaning) for each line of `serve --help`."""
        out = subprocess.run([MODELFS, "serve", "--help"], capture_output=True, text=True,
                             check=True).stdout
        rows = []
        for line in out.splitlines():
            m = re.match(r"  (--\S+(?: \S.*?)?) {2,}(.*)$", line)
            if not m:
                continue
            flag, rest = m.group(1), m.group(2)
            env = "-"
            e = re.search(r" \[\$(\w+)\]$", rest)
            if e:
                env, rest = e.group(1), rest[:e.start()]
            default = ""
            d = re.search(r" \(default ([^()]*)\)$", rest)
            if d:
                default, rest = d.group(1), rest[:d.start()]
            rows.append((env, flag, default, rest))
        return rows

    def test_readme_table_is_the_help(self):
        with open(os.path.join(SRC, "README.md")) as f:
            readme = f.read()
        sec = re.search(r"^## Configuration\n(.*?)^## ", readme, re.S | re.M)
        self.assertIsNotNone(sec, "README has no Configuration section")
        rows = []
        for line in sec.group(1).splitlines():
            if not line.startswith("| ") or line.startswith(("| ---", "| environment")):
                continue
            cells = [c.strip().replace("`", "") for c in line.strip()[1:-1].split("|")]
            self.assertEqual(len(cells), 4, line)
            rows.append(tuple(cells))
        help_rows = self.help_rows()
        self.assertGreater(len(help_rows), 20)
        self.assertEqual(rows, help_rows)


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
