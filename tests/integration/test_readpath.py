# SPDX-License-Identifier: Apache-2.0
"""Reads of sealed files on both read paths: kernel FUSE passthrough and the splice fallback.

usage: test_readpath.py /path/to/modelfs

Every test runs twice, once with `serve --read-path passthrough` (skipped, with
the daemon's reason, where the kernel, libfuse or the daemon's capabilities
lack it) and once with `--read-path splice`: whole-file reads against the
recorded SHA-256, mmap (every page, and pages in random order), a reader that
keeps the old version open across a promotion, a draft reader kept open across
the seal (the kernel refuses to mix the two io modes on one inode), many
readers of one file at once, and what /metrics says on each path.

Not covered yet: a sealed file served after the backing inode check of the
integrity work (inode, size and mtime recorded at seal), which does not exist
in this tree; a test belongs here once it does.
"""
import hashlib
import json
import mmap
import os
import random
import sys
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon, wait_for  # noqa: E402

MODELFS = None
MIB = 1 << 20
PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.93}}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class ReadPathBase:
    """The tests; a subclass per read path sets READ_PATH."""
    READ_PATH = None
    d = None

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS, extra=["--read-path", cls.READ_PATH])
        try:
            cls.d.start()
        except RuntimeError as e:
            cls.d.cleanup()
            if cls.READ_PATH == "passthrough" and "--read-path passthrough:" in str(e):
                # Refused, as it must be where passthrough is unavailable; the reason:
                why = [ln for ln in str(e).splitlines() if "--read-path passthrough:" in ln]
                raise unittest.SkipTest(why[0].split("--read-path passthrough:", 1)[1].strip())
            raise
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        if cls.d:
            rc = cls.d.stop()
            cls.d.cleanup()
            assert rc == 0, f"modelfs serve exited {rc} on SIGTERM"

    # --- helpers ---------------------------------------------------------------

    def api(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.d.port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
        return json.loads(data) if data and data[:1] in b"{[" else data.decode()

    def metrics(self):
        text = self.api("GET", "/metrics")
        out = {}
        for line in text.splitlines():
            if line.startswith("modelfs_fuse_"):
                k, v = line.split()
                out[k] = int(v)
        return out

    def model(self, versions, size=4 * MIB):
        """A model with sealed versions, each holding model.pkl of `size` random bytes."""
        type(self).n += 1
        name = f"r{type(self).n}-{self._testMethodName.replace('_', '-')[5:35]}".lower().rstrip("-")
        m = os.path.join(self.d.mnt, name)
        os.mkdir(m)
        data = {}
        for v in versions:
            os.mkdir(f"{m}/{v}")
            data[v] = random.randbytes(size)
            # Written on the volume, not through the mount, so no page of it is in
            # the mount's cache before the test reads it (the splice path's byte
            # count is then exact).
            write(f"{self.d.store}/{name}/{v}/model.pkl", data[v])
            write(f"{m}/{v}/metadata.json", json.dumps(PASSED).encode())  # promotable
            os.chmod(f"{m}/{v}", 0o555)  # seals it
        return name, m, data

    def check_path(self, before, opened):
        """The metrics moved the way this read path moves them for `opened` sealed opens."""
        after = self.metrics()
        if self.READ_PATH == "passthrough":
            self.assertEqual(after["modelfs_fuse_passthrough"], 1)
            self.assertGreaterEqual(after["modelfs_fuse_passthrough_opens_total"] -
                                    before["modelfs_fuse_passthrough_opens_total"], opened)
        else:
            self.assertEqual(after["modelfs_fuse_passthrough"], 0)
            self.assertEqual(after["modelfs_fuse_passthrough_opens_total"], 0)

    # --- tests -----------------------------------------------------------------

    def test_sealed_file_matches_recorded_sha256(self):
        name, m, data = self.model(["v1"], size=24 * MIB + 12345)
        before = self.metrics()
        got = read(f"{m}/v1/model.pkl")
        self.assertEqual(len(got), len(data["v1"]))
        rec = self.api("GET", f"/v1/models/{name}/versions/v1")
        digest = {f["path"]: f["sha256"] for f in rec["files"]}["model.pkl"]
        self.assertEqual(hashlib.sha256(got).hexdigest(), digest.removeprefix("sha256:"))
        self.check_path(before, 1)
        after = self.metrics()
        if self.READ_PATH == "splice":
            # Every byte went through the daemon and is counted, exactly.
            self.assertEqual(after["modelfs_fuse_read_bytes_total"] -
                             before["modelfs_fuse_read_bytes_total"], len(got))
        else:
            # The kernel served them: not counted (the metric's help says so).
            self.assertEqual(after["modelfs_fuse_read_bytes_total"],
                             before["modelfs_fuse_read_bytes_total"])

    def test_mmap_every_page_and_random_pages(self):
        name, m, data = self.model(["v1"], size=16 * MIB + 100)
        want = data["v1"]
        before = self.metrics()
        with open(f"{m}/v1/model.pkl", "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            try:
                page = mmap.PAGESIZE
                self.assertEqual(len(mm), len(want))
                for off in range(0, len(want), page):  # a loader touching every page
                    self.assertEqual(mm[off], want[off])
                offs = list(range(0, len(want), page))
                random.shuffle(offs)
                for off in offs[:512]:
                    self.assertEqual(mm[off:off + 64], want[off:off + 64], off)
                self.assertEqual(hashlib.sha256(mm).digest(), hashlib.sha256(want).digest())
            finally:
                mm.close()
        self.check_path(before, 1)

    def test_reader_keeps_old_version_across_promotion(self):
        name, m, data = self.model(["v1", "v2"])
        self.api("POST", f"/v1/models/{name}/promote", {"version": "v1"})
        half = len(data["v1"]) // 2
        with open(f"{m}/current/model.pkl", "rb") as f:
            first = f.read(half)
            mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            self.api("POST", f"/v1/models/{name}/promote", {"version": "v2"})
            self.assertEqual(os.readlink(f"{m}/current"), "v2")
            # A new open follows the alias; the open one keeps its version's bytes.
            self.assertEqual(read(f"{m}/current/model.pkl"), data["v2"])
            rest = f.read()
            self.assertEqual(first + rest, data["v1"])
            self.assertEqual(mm[:], data["v1"])
            mm.close()
        # Rolling back while v2 is held open: the same, the other way round.
        with open(f"{m}/current/model.pkl", "rb") as f:
            self.api("POST", f"/v1/models/{name}/rollback", {})
            self.assertEqual(read(f"{m}/current/model.pkl"), data["v1"])
            self.assertEqual(f.read(), data["v2"])

    def test_draft_reader_open_across_seal(self):
        type(self).n += 1
        m = os.path.join(self.d.mnt, f"r{type(self).n}-draft-across-seal")
        os.mkdir(m)
        os.mkdir(f"{m}/v1")
        want = random.randbytes(3 * MIB)
        write(f"{m}/v1/model.pkl", want)
        with open(f"{m}/v1/model.pkl", "rb") as draft_reader:
            self.assertEqual(draft_reader.read(MIB), want[:MIB])
            os.chmod(f"{m}/v1", 0o555)
            # Sealed now, with a reader of the draft still open: a new open must
            # neither fail (the kernel answers EIO to an inode in two io modes)
            # nor read anything else.
            for _ in range(3):
                self.assertEqual(read(f"{m}/v1/model.pkl"), want)
            with open(f"{m}/v1/model.pkl", "rb") as f2:
                mm = mmap.mmap(f2.fileno(), 0, prot=mmap.PROT_READ)
                self.assertEqual(mm[:], want)
                mm.close()
            self.assertEqual(draft_reader.read(), want[MIB:])
        if self.READ_PATH == "passthrough":
            # Once the draft reader is gone, the sealed file goes through the kernel.
            def passthrough_open():
                before = self.metrics()["modelfs_fuse_passthrough_opens_total"]
                self.assertEqual(read(f"{m}/v1/model.pkl"), want)
                return self.metrics()["modelfs_fuse_passthrough_opens_total"] > before
            wait_for(passthrough_open, timeout=10, what="a passthrough open after the seal")

    def test_many_readers_at_once(self):
        name, m, data = self.model(["v1", "v2"], size=2 * MIB)
        errors = []

        def reader(v, rounds):
            try:
                for i in range(rounds):
                    with open(f"{m}/{v}/model.pkl", "rb") as f:
                        if i % 3 == 0:
                            mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
                            ok = mm[:] == data[v]
                            mm.close()
                        else:
                            ok = f.read() == data[v]
                    if not ok:
                        errors.append(f"{v} round {i}: wrong bytes")
            except OSError as e:
                errors.append(f"{v}: {e}")

        threads = [threading.Thread(target=reader, args=(v, 20)) for v in ("v1", "v2") * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_drafts_stay_on_the_daemon(self):
        type(self).n += 1
        m = os.path.join(self.d.mnt, f"r{type(self).n}-drafts")
        os.mkdir(m)
        os.mkdir(f"{m}/v1")
        before = self.metrics()
        write(f"{m}/v1/model.pkl", b"draft one")
        self.assertEqual(read(f"{m}/v1/model.pkl"), b"draft one")
        with open(f"{m}/v1/model.pkl", "ab") as f:
            f.write(b" and two")
        self.assertEqual(read(f"{m}/v1/model.pkl"), b"draft one and two")
        after = self.metrics()
        self.assertEqual(after["modelfs_fuse_passthrough_opens_total"],
                         before["modelfs_fuse_passthrough_opens_total"])
        self.assertEqual(after["modelfs_fuse_read_bytes_total"] -
                         before["modelfs_fuse_read_bytes_total"], 9 + 17)


class PassthroughTest(ReadPathBase, unittest.TestCase):
    READ_PATH = "passthrough"


class SpliceTest(ReadPathBase, unittest.TestCase):
    READ_PATH = "splice"


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
