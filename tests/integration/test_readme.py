# SPDX-License-Identifier: Apache-2.0
"""The README's quick start and walk-through, run as printed: the ```console blocks
after a `<!-- readme-test: NAME -->` line are pulled out of README.md, their `$ `
commands run in one bash session (the README's paths and port replaced by a temporary
directory and a free port), and each command's output (stdout and stderr) is compared
with the lines printed under it. Times, 40-digit git ids and pids are compared as
placeholders, runs of spaces as one, and `…` in a printed line matches anything.

usage: test_readme.py /path/to/modelfs [--print]   (--print shows what the blocks print)
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

from fsutil import start_serve

MODELFS = None
PRINT = False
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MARK = "@@readme-test-command@@"


def blocks(name):
    """[(command, [expected lines])] of every block marked `name`, in order."""
    with open(os.path.join(ROOT, "README.md")) as f:
        lines = f.read().split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == f"<!-- readme-test: {name} -->":
            i += 1
            assert lines[i].startswith("```"), f"README line {i + 1}: a fence must follow the mark"
            i += 1
            while not lines[i].startswith("```"):
                line = lines[i]
                if line.startswith("$ "):
                    cmd = line[2:]
                    while cmd.endswith("\\"):
                        i += 1
                        cmd = cmd + "\n" + lines[i]
                    out.append((cmd, []))
                elif out:
                    out[-1][1].append(line)
                i += 1
        i += 1
    assert out, f"no block marked readme-test: {name} in README.md"
    return out


def normal(line):
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<TS>", line)
    line = re.sub(r"\b[0-9a-f]{40}\b", "<SHA>", line)
    line = re.sub(r"pid=\d+", "pid=<N>", line)
    return re.sub(r"\s+", " ", line).strip()


def matches(want, got):
    if "…" not in want:
        return want == got
    pattern = ".*".join(re.escape(p) for p in want.split("…"))
    return re.fullmatch(pattern, got) is not None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="modelfs-readme-", dir=base)
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.mounts = []
        self.pidfiles = []
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        os.symlink(MODELFS, os.path.join(self.bin, "modelfs"))

    def tearDown(self):
        for path in self.pidfiles:
            try:
                with open(path) as f:
                    pid = int(f.read().strip())
                os.kill(pid, signal.SIGTERM)  # a daemon the block started, by its PID
            except (OSError, ValueError):
                pass
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        for m in self.mounts:
            with open("/proc/mounts") as f:
                if any(line.split()[1] == m for line in f):
                    subprocess.run(["fusermount3", "-u", "-z", m], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", self.dir], check=False)

    def run_blocks(self, name, subst, env):
        cmds = blocks(name)
        script = []
        for cmd, _ in cmds:
            for a, b in subst:
                cmd = cmd.replace(a, b)
            script.append(f"echo '{MARK}'\n{cmd}\n")
        p = subprocess.run(["bash", "-c", "exec 2>&1\n" + "".join(script)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
        out = p.stdout
        for a, b in subst:
            out = out.replace(b, a)
        parts = out.split(MARK + "\n")[1:]
        self.assertEqual(len(parts), len(cmds), out)
        problems = []
        for (cmd, want), got in zip(cmds, parts):
            got_lines = [normal(x) for x in got.split("\n") if normal(x)]
            want_lines = [normal(x) for x in want if normal(x)]
            if PRINT:
                print(f"$ {cmd}\n{got}", end="")
            if len(got_lines) != len(want_lines) or not all(
                    matches(w, g) for w, g in zip(want_lines, got_lines)):
                problems.append(f"$ {cmd}\n--- README prints:\n" + "\n".join(want) +
                                "\n--- it printed:\n" + got)
        self.assertEqual(problems, [], "\n\n".join(problems))

    def env(self, **extra):
        env = dict(os.environ, PATH=self.bin + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        for k in ("MODELFS_URL", "MODELFS_TOKEN", "MODELFS_TOKEN_FILE", "MODELFS_JSON"):
            env.pop(k, None)
        env.update(extra)
        return env

    def test_quickstart(self):
        """The quick start, against the store ./dev demo makes (examples/setup.sh demo)."""
        store, mnt = os.path.join(self.dir, "demo"), os.path.join(self.dir, "demo-mnt")
        os.makedirs(mnt)
        subprocess.run([os.path.join(ROOT, "examples", "setup.sh"), "demo", store], check=True,
                       capture_output=True)
        subprocess.run([MODELFS, "init", store], check=True, capture_output=True)
        self.mounts.append(mnt)
        self.proc, log, port = start_serve(
            [MODELFS, "serve", "--store", store, "--mount", mnt, "--listen", "127.0.0.1:0",
             "--ready-file", os.path.join(self.dir, "ready")],
            os.path.join(self.dir, "daemon.log"), os.path.join(self.dir, "ready"))
        self.addCleanup(log.close)
        subst = [("/tmp/modelfs-demo-mnt", mnt), ("/tmp/modelfs-demo", store),
                 ("127.0.0.1:8080", f"127.0.0.1:{port}")]
        self.run_blocks("quickstart", subst, self.env(MODELFS_URL=f"http://127.0.0.1:{port}"))

    def test_demo_suggests_the_quickstart(self):
        """./dev demo's suggested next steps are the quick start's commands."""
        with open(os.path.join(ROOT, "dev")) as f:
            dev = f.read()
        steps = dev.split("the README's quick start):\n", 1)[1].split("\nMSG", 1)[0]
        printed = [re.sub(r"\s+#.*$", "", line.strip()).replace("$mnt", "/tmp/modelfs-demo-mnt")
                   for line in steps.split("\n")]
        self.assertEqual(printed, [cmd for cmd, _ in blocks("quickstart")])

    def test_walkthrough(self):
        """The walk-through: its own setup command, daemon, tokens and git repository."""
        walk = os.path.join(self.dir, "walk")
        self.mounts.append(os.path.join(walk, "mnt"))
        self.pidfiles.append(os.path.join(walk, "serve.pid"))
        subst = [("/tmp/modelfs-walk", walk), ("127.0.0.1:8080", f"127.0.0.1:{free_port()}")]
        self.run_blocks("walkthrough", subst, self.env())


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    if "--print" in sys.argv:
        sys.argv.remove("--print")
        PRINT = True
    if not shutil.which("jq") or not shutil.which("curl"):
        print("jq and curl are needed (./dev setup installs them)")
        sys.exit(77)
    unittest.main(verbosity=2)
