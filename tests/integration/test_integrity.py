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
import sqlite3
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


class SealedFileTest(unittest.TestCase):
    """A sealed file changed on the raw volume: refused by the mount and over HTTP."""

    def setUp(self):
        self.d = fsutil.Daemon(MODELFS)
        self.d.start()
        self.d.url = f"http://127.0.0.1:{self.d.port}"
        call(self.d, "POST", "/v1/models", expect=201, json={"name": "m"})
        self.v1 = register(self.d, "m", "v1", {"a.bin": b"A" * 16, "b.bin": b"B" * 16,
                                               "c.bin": b"C" * 16})

    def tearDown(self):
        self.d.cleanup()

    def raw(self, name):
        return os.path.join(self.d.store, "m", "v1", name)

    def mount_read(self, name):
        with open(os.path.join(self.d.mnt, "m", "v1", name), "rb") as f:
            return f.read()

    def http_get(self, name):
        return requests.get(f"{self.d.url}/v1/models/m/versions/v1/files/{name}", timeout=10)

    def metric(self, name):
        text = requests.get(self.d.url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    def assert_refused(self, name):
        with self.assertRaises(OSError) as cm:
            self.mount_read(name)
        self.assertEqual(cm.exception.errno, 5, cm.exception)  # EIO
        r = self.http_get(name)
        self.assertEqual(r.status_code, 500, r.text)
        self.assertEqual(r.json()["error"]["code"], "io_error")
        self.assertIn(f"m/v1/{name} changed on the volume after it was sealed",
                      r.json()["error"]["message"])
        self.assertNotIn("ETag", r.headers)

    def test_edited_touched_and_untouched(self):
        d = self.d
        # Served before anything changed, through both front ends.
        for name, byte in (("a.bin", b"A"), ("b.bin", b"B"), ("c.bin", b"C")):
            self.assertEqual(self.mount_read(name), byte * 16)
            self.assertEqual(self.http_get(name).status_code, 200)
        self.assertEqual(self.metric("modelfs_integrity_mismatches_total"), 0)
        # Same size, new bytes, mtime put back: the ctime still tells.
        st = os.stat(self.raw("a.bin"))
        os.chmod(self.raw("a.bin"), 0o644)
        with open(self.raw("a.bin"), "r+b") as f:
            f.write(b"X" * 16)
        os.chmod(self.raw("a.bin"), st.st_mode & 0o7777)
        os.utime(self.raw("a.bin"), ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.path.getsize(self.raw("a.bin")), 16)
        self.assert_refused("a.bin")
        self.assert_refused("a.bin")
        # Only touched: refused too.
        os.utime(self.raw("b.bin"))
        self.assert_refused("b.bin")
        # Untouched: still served, with its recorded ETag.
        self.assertEqual(self.mount_read("c.bin"), b"C" * 16)
        r = self.http_get("c.bin")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.content, b"C" * 16)
        self.assertTrue(r.headers["ETag"].startswith('"'))
        # One event per file, however often it was refused.
        ev = d.events(model="m", kind="integrity.mismatch")
        self.assertEqual(sorted(e["version"] for e in ev), ["v1", "v1"], ev)
        self.assertEqual(self.metric("modelfs_integrity_mismatched_files"), 2)
        self.assertGreaterEqual(self.metric("modelfs_integrity_mismatches_total"), 6)
        # /readyz stays ready (the volume is shared by every replica) but says so.
        r = requests.get(d.url + "/readyz", timeout=10)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["integrity_mismatches"], 2)
        self.assertIn("changed on the volume", r.json()["warning"])
        # The integrity events leave <model>/metadata.json current for fsck; fsck's
        # re-hash finds a.bin's bytes changed.
        p = modelfs("fsck", d.store)
        self.assertNotIn("metadata-differs", p.stdout)
        self.assertRegex(p.stdout, r"digest-mismatch +m/v1/a.bin")
        self.assertRegex(p.stdout, r"changed-after-seal +m/v1/b.bin")
        self.assertNotIn("m/v1/c.bin", p.stdout)
        # A repair re-hashes: b.bin holds its sealed bytes and is served again; a.bin is not.
        self.assertEqual(d.stop(), 0)
        p = modelfs("fsck", d.store, "--repair")
        self.assertRegex(p.stdout, r"digest-mismatch +m/v1/a.bin")
        self.assertRegex(p.stdout, r"changed-after-seal +m/v1/b.bin \(repaired\)")
        d.start()
        d.url = f"http://127.0.0.1:{d.port}"
        self.assertEqual(self.mount_read("b.bin"), b"B" * 16)
        self.assertEqual(self.http_get("b.bin").status_code, 200)
        self.assert_refused("a.bin")
        p = modelfs("fsck", d.store)
        self.assertNotIn("b.bin", p.stdout)

    def test_replaced_file_and_backfill(self):
        d = self.d
        # A file replaced by another inode (same name, size and bytes) is refused.
        os.chmod(os.path.dirname(self.raw("c.bin")), 0o755)
        tmp = self.raw(".c.bin.new")
        with open(tmp, "wb") as f:
            f.write(b"C" * 16)
        os.chmod(tmp, 0o444)
        os.rename(tmp, self.raw("c.bin"))
        self.assert_refused("c.bin")
        # Versions sealed before the stat was recorded: recorded at the next start.
        self.assertEqual(d.stop(), 0)
        db = sqlite3.connect(os.path.join(d.store, ".modelfs", "registry.db"))
        db.execute("UPDATE files SET ino = NULL, mtime_ns = NULL, ctime_ns = NULL")
        db.commit()
        db.close()
        d.start()
        d.url = f"http://127.0.0.1:{d.port}"
        self.assertEqual(len(d.events(kind="integrity.backfill")), 1)
        db = sqlite3.connect(f"file:{d.store}/.modelfs/registry.db?mode=ro", uri=True)
        self.assertEqual(db.execute("SELECT count(*) FROM files WHERE ino IS NULL").fetchone()[0],
                         0)
        db.close()
        self.assertEqual(self.mount_read("a.bin"), b"A" * 16)
        self.assertEqual(self.http_get("c.bin").status_code, 200)
        os.utime(self.raw("a.bin"))
        self.assert_refused("a.bin")


def main():
    global MODELFS
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
