# SPDX-License-Identifier: Apache-2.0
"""Seals race with every kind of change (issue 10, defect 2): round after
round, a draft of 100+ files (a few of them large) is sealed, through the API
or by chmod a-w in the mount, while other processes truncate, chmod, utime,
unlink, rename, create, mkdir and write inside it through the mount and
upload and patch metadata through the API. A change either lands before the
seal or fails (EBUSY while the seal runs, EROFS after). After every round the
recorded file list equals the tree on the raw volume (paths, sizes, SHA-256,
no write bits), `modelfs verify` of the version is clean, and so is `modelfs
fsck`.

usage: test_seal_race.py /path/to/modelfs
environment: MODELFS_SEAL_RACE_ROUNDS (default 6), MODELFS_SEAL_RACE_FILES
(default 120), MODELFS_SEAL_RACE_BIG_MIB (size of the large files, default 8;
100 for the long run), MODELFS_SEAL_RACE_WORKERS (default 4).
"""
import hashlib
import multiprocessing
import os
import random
import stat
import subprocess
import sys
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon  # noqa: E402

MODELFS = None
ROUNDS = int(os.environ.get("MODELFS_SEAL_RACE_ROUNDS", "6"))
FILES = int(os.environ.get("MODELFS_SEAL_RACE_FILES", "120"))
BIG_MIB = int(os.environ.get("MODELFS_SEAL_RACE_BIG_MIB", "8"))
WORKERS = int(os.environ.get("MODELFS_SEAL_RACE_WORKERS", "4"))
MODEL = "race"


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def disk_tree(root):
    """The raw volume's files of a version: path -> (size, sha256, mode)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for fn in files:
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, root)
            if rel == "metadata.json":
                continue
            st = os.lstat(p)
            assert stat.S_ISREG(st.st_mode), f"{rel} is not a regular file"
            out[rel] = (st.st_size, sha(p), stat.S_IMODE(st.st_mode))
    return out


def fill(vdir, rng):
    """100+ files in a few directories, the first and the last of them large."""
    paths = []
    for i in range(FILES):
        d = os.path.join(vdir, f"d{i % 5}", f"e{i % 3}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"f{i:03}.bin")
        size = BIG_MIB << 20 if i in (0, FILES - 1) else rng.randrange(1, 64 << 10)
        with open(p, "wb") as f:
            chunk = os.urandom(min(size, 1 << 20))
            left = size
            while left > 0:
                f.write(chunk[:left])
                left -= len(chunk)
        paths.append(p)
    return paths


def mutate(vdir, url, version, seed, stop, counts):
    """One racing process: random changes until told to stop; refusals are expected."""
    rng = random.Random(seed)
    done = refused = 0
    names = [os.path.join(dp, f) for dp, _, fs in os.walk(vdir) for f in fs]
    dirs = sorted({os.path.dirname(p) for p in names})
    session = requests.Session()
    while not stop.is_set():
        p = rng.choice(names)
        d = rng.choice(dirs)
        op = rng.randrange(12)
        try:
            if op == 0:
                os.truncate(p, rng.randrange(0, 100))
            elif op == 1:
                os.chmod(p, rng.choice([0o600, 0o644, 0o666, 0o755]))
            elif op == 2:
                os.utime(p, (rng.randrange(1 << 30), rng.randrange(1 << 30)))
            elif op == 3:
                os.unlink(p)
            elif op == 4:
                q = os.path.join(d, f"r{seed}-{rng.randrange(1000)}.bin")
                os.rename(p, q)
                names.append(q)
            elif op == 5:
                q = os.path.join(d, f"n{seed}-{rng.randrange(1000)}.bin")
                with open(q, "wb") as f:
                    f.write(os.urandom(rng.randrange(1, 4096)))
                names.append(q)
            elif op == 6:
                os.mkdir(os.path.join(d, f"m{seed}-{rng.randrange(1000)}"))
            elif op == 7:
                with open(p, "r+b") as f:
                    f.seek(rng.randrange(0, 4096))
                    f.write(os.urandom(rng.randrange(1, 512)))
            elif op == 8:
                os.rename(p, os.path.join(d, f".s.tmp-{rng.randrange(100)}.pkl"))
            elif op == 9:
                os.mknod(os.path.join(d, f"k{seed}-{rng.randrange(1000)}"), 0o644 | stat.S_IFREG)
            elif op == 10:
                rel = os.path.relpath(d, vdir)
                r = session.put(f"{url}/v1/models/{MODEL}/versions/{version}/files/{rel}/"
                                f"u{seed}-{rng.randrange(1000)}.bin",
                                data=os.urandom(rng.randrange(1, 8192)), timeout=30)
                if r.status_code >= 300:
                    raise OSError(r.status_code, r.text)
            else:
                r = session.patch(f"{url}/v1/models/{MODEL}/versions/{version}/metadata",
                                  json={"notes": f"n{rng.randrange(1 << 20)}",
                                        "hyperparameters": {"k": rng.randrange(9)}},
                                  timeout=30)
                if r.status_code >= 300:
                    raise OSError(r.status_code, r.text)
            done += 1
        except OSError:
            refused += 1
    session.close()
    counts.put((done, refused))


class SealRaceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS).start()
        cls.url = f"http://127.0.0.1:{cls.d.port}"
        os.mkdir(os.path.join(cls.d.mnt, MODEL))

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.d.cleanup()
        assert rc == 0, f"modelfs serve exited {rc}"

    def seal(self, version, by_chmod):
        """Seals, retrying while racing changes keep it busy; returns the attempts."""
        vdir = os.path.join(self.d.mnt, MODEL, version)
        for attempt in range(1, 200):
            if by_chmod:
                try:
                    os.chmod(vdir, 0o555)
                    return attempt
                except OSError as e:
                    self.assertIn(e.errno, (16,), f"chmod a-w: {e}")  # EBUSY
            else:
                r = requests.post(f"{self.url}/v1/models/{MODEL}/versions/{version}/seal",
                                  timeout=300)
                if r.status_code == 200:
                    return attempt
                self.assertEqual(r.status_code, 409, r.text)
            time.sleep(0.05)
        self.fail(f"{version} never sealed")

    def test_seal_under_changes(self):
        rng = random.Random(1)
        ctx = multiprocessing.get_context("fork")
        totals = [0, 0]
        started = time.time()
        for rnd in range(ROUNDS):
            version = f"r{rnd}"
            vdir = os.path.join(self.d.mnt, MODEL, version)
            os.mkdir(vdir)
            fill(vdir, rng)
            stop = ctx.Event()
            counts = ctx.Queue()
            procs = [ctx.Process(target=mutate, args=(vdir, self.url, version, rnd * 100 + w,
                                                      stop, counts))
                     for w in range(WORKERS)]
            for p in procs:
                p.start()
            try:
                time.sleep(0.3)
                attempts = self.seal(version, by_chmod=rnd % 2 == 1)
                time.sleep(0.3)  # keep changing the sealed version for a while: all refused
            finally:
                stop.set()
                for _ in procs:
                    done, refused = counts.get(timeout=60)
                    totals[0] += done
                    totals[1] += refused
                for p in procs:
                    p.join(60)
            r = requests.get(f"{self.url}/v1/models/{MODEL}/versions/{version}", timeout=30)
            self.assertEqual(r.status_code, 200, r.text)
            body = r.json()
            self.assertEqual(body["state"], "sealed")
            recorded = {f["path"]: (f["size"], f["sha256"]) for f in body["files"]}
            disk = disk_tree(os.path.join(self.d.store, MODEL, version))
            self.assertEqual(sorted(recorded), sorted(disk), f"round {rnd}: file lists")
            for path, (size, digest, mode) in disk.items():
                self.assertEqual(recorded[path], (size, digest), f"round {rnd}: {path}")
                self.assertEqual(mode & 0o222, 0, f"round {rnd}: {path} is writable")
            v = subprocess.run([MODELFS, "verify", self.d.store, f"{MODEL}/{version}"],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(v.returncode, 0, f"round {rnd}: verify\n{v.stdout}{v.stderr}")
            f = subprocess.run([MODELFS, "fsck", self.d.store, "--no-hash"],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(f.returncode, 0, f"round {rnd}: fsck\n{f.stdout}{f.stderr}")
            print(f"round {rnd}: {len(disk)} files sealed after {attempts} attempt(s)",
                  file=sys.stderr)
        f = subprocess.run([MODELFS, "fsck", self.d.store], capture_output=True, text=True,
                           timeout=1800)
        self.assertEqual(f.returncode, 0, f"fsck\n{f.stdout}{f.stderr}")
        print(f"{ROUNDS} rounds in {time.time() - started:.1f}s; changes made {totals[0]}, "
              f"refused {totals[1]}", file=sys.stderr)
        self.assertGreater(totals[0], 0)


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
