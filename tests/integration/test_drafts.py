# SPDX-License-Identifier: Apache-2.0
"""Ordinary tools in drafts (issue 10, defects 3, 7 and 8): tar, cp, rsync, mv,
sed -i, write-temp-then-rename, git checkout and unzip give in a draft what they
give in a native directory (names, sizes, modes, bytes, times where the tool
keeps them), metadata.json included: it is the version's record, so its text is
compared as JSON, with the names the registry derives (model_name, version)
left out. Also: the record's file behaves like a file (rm removes it, O_EXCL
creates it, rename onto it replaces it, bad JSON fails close() and fsync()),
every client-fed size is capped, and no name is special inside a version.

usage: test_drafts.py /path/to/modelfs
"""
import ctypes
import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
import zipfile

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon  # noqa: E402

MODELFS = None
RECORD = {"git_commit": "3f2a9c1", "hyperparameters": {"lr": 0.01, "epochs": 5},
          "notes": "first cut", "performance_metrics": {"accuracy": 0.91}}
TOOL_TIMEOUT = 60  # tar used to loop for ever on metadata.json (O_EXCL, EEXIST, unlink, ...)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def record_of(text):
    """A metadata.json's record without the names the registry derives from its place."""
    rec = json.loads(text)
    rec.pop("model_name", None)
    rec.pop("version", None)
    return rec


def tree(root, times=False):
    """What a tool left: relative path -> (kind, mode, size, bytes digest or record[, mtime])."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
                continue
            if rel == "metadata.json":
                with open(p) as f:
                    out[rel] = ("record", json.dumps(record_of(f.read()), sort_keys=True))
                continue
            entry = ("file", stat.S_IMODE(st.st_mode), st.st_size, sha(p))
            if times:
                entry += (int(st.st_mtime),)
            out[rel] = entry
    return out


def make_source(root):
    os.makedirs(os.path.join(root, "sub", "deep"))
    with open(os.path.join(root, "model.pkl"), "wb") as f:
        f.write(os.urandom(300_000))
    with open(os.path.join(root, "config.yaml"), "w") as f:
        f.write("layers: 3\nunits: 64\n")
    with open(os.path.join(root, "sub", "deep", "weights.bin"), "wb") as f:
        f.write(os.urandom(70_000))
    with open(os.path.join(root, "sub", ".hidden.tmp-1.pkl"), "wb") as f:
        f.write(b"a dot name is content too")
    with open(os.path.join(root, "run.sh"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(root, "run.sh"), 0o755)
    os.chmod(os.path.join(root, "config.yaml"), 0o640)
    with open(os.path.join(root, "metadata.json"), "w") as f:
        json.dump(RECORD, f, indent=1)
    for i, p in enumerate(["model.pkl", "config.yaml", "sub/deep/weights.bin", "run.sh"]):
        t = 1_600_000_000 + i * 1000
        os.utime(os.path.join(root, p), (t, t))


def run(args, cwd=None, ok=True):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    if ok and r.returncode != 0:
        raise AssertionError(f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


class DraftToolsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS).start()
        cls.url = f"http://127.0.0.1:{cls.d.port}"
        cls.work = tempfile.mkdtemp(prefix="drafts-", dir=cls.d.dir)
        cls.src = os.path.join(cls.work, "src")
        make_source(cls.src)
        cls.native = os.path.join(cls.work, "native")
        os.makedirs(cls.native)
        cls.model = os.path.join(cls.d.mnt, "tools")
        os.mkdir(cls.model)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.d.cleanup()
        assert rc == 0, f"modelfs serve exited {rc}"

    def api_record(self, version):
        r = requests.get(f"{self.url}/v1/models/tools/versions/{version}/metadata", timeout=30)
        self.assertEqual(r.status_code, 200, r.text)
        rec = r.json()
        for k in ("model_name", "version", "deployed_to"):
            rec.pop(k, None)
        return rec

    def pair(self, name):
        """A fresh native directory and the path of a version not made yet."""
        return os.path.join(self.native, name), os.path.join(self.model, name)

    def same(self, native, draft, version, times=False):
        self.assertEqual(tree(draft, times), tree(native, times))
        meta = os.path.join(native, "metadata.json")
        if os.path.exists(meta):
            with open(meta) as f:
                self.assertEqual(self.api_record(version), record_of(f.read()))

    # ---- the tools ----

    def test_tar_x(self):
        nat, dr = self.pair("tar")
        archive = os.path.join(self.work, "src.tar")
        run(["tar", "-cf", archive, "-C", self.src, "."])
        for dest in (nat, dr):
            os.mkdir(dest)
            run(["tar", "-xf", archive, "-C", dest])
            run(["tar", "-xf", archive, "-C", dest])  # again, over what is there
        self.same(nat, dr, "tar", times=True)

    def test_cp_r_and_cp_a(self):
        for flag in ("-r", "-a"):
            name = "cp" + flag.replace("-", "_")
            nat, dr = self.pair(name)
            run(["cp", flag, self.src, nat])
            run(["cp", flag, self.src, dr])
            self.same(nat, dr, name, times=flag == "-a")
        # cp -r of one version into a new one (the record names v1; the copy is its own)
        run(["cp", "-r", os.path.join(self.model, "cp_r"), os.path.join(self.model, "cp_copy")])
        self.same(os.path.join(self.native, "cp_r"), os.path.join(self.model, "cp_copy"),
                  "cp_copy")

    def test_rsync_a(self):
        nat, dr = self.pair("rsync")
        for dest in (nat, dr):
            os.mkdir(dest)
            run(["rsync", "-a", self.src + "/", dest + "/"])
        self.same(nat, dr, "rsync", times=True)
        # a second run replaces changed files by temp file + rename, metadata.json too
        src2 = os.path.join(self.work, "src2")
        shutil.copytree(self.src, src2, symlinks=True)
        with open(os.path.join(src2, "config.yaml"), "a") as f:
            f.write("dropout: 0.1\n")
        rec = dict(RECORD, notes="second cut")
        with open(os.path.join(src2, "metadata.json"), "w") as f:
            json.dump(rec, f)
        for dest in (nat, dr):
            run(["rsync", "-a", "--delete", src2 + "/", dest + "/"])
        self.same(nat, dr, "rsync", times=True)
        self.assertEqual(self.api_record("rsync")["notes"], "second cut")
        self.assertEqual([n for n in os.listdir(dr) if n.startswith(".")], [])

    def test_unzip(self):
        nat, dr = self.pair("unzip")
        archive = os.path.join(self.work, "src.zip")
        with zipfile.ZipFile(archive, "w") as z:
            for dirpath, _, files in os.walk(self.src):
                for fn in files:
                    p = os.path.join(dirpath, fn)
                    z.write(p, os.path.relpath(p, self.src))
        for dest in (nat, dr):
            os.mkdir(dest)
            run(["unzip", "-q", archive, "-d", dest])
            run(["unzip", "-q", "-o", archive, "-d", dest])  # overwrite what is there
        self.same(nat, dr, "unzip", times=True)

    def test_git_checkout(self):
        repo = os.path.join(self.work, "repo")
        shutil.copytree(self.src, repo)
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x")

        def git(*a, cwd=repo):
            r = subprocess.run(["git", *a], cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=TOOL_TIMEOUT)
            self.assertEqual(r.returncode, 0, f"git {a}: {r.stderr}")
            return r.stdout.strip()

        git("init", "-q")
        git("add", "-A")
        git("commit", "-qm", "one")
        first = git("rev-parse", "HEAD")
        with open(os.path.join(repo, "model.pkl"), "wb") as f:
            f.write(os.urandom(1000))
        with open(os.path.join(repo, "metadata.json"), "w") as f:
            json.dump(dict(RECORD, notes="from git"), f)
        git("commit", "-qam", "two")
        nat, dr = self.pair("git")
        for dest in (nat, dr):
            os.mkdir(dest)
            for rev in (first, "HEAD"):
                git("--work-tree", dest, "checkout", "-f", rev, "--", ".")
        self.same(nat, dr, "git")

    def test_sed_i_python_replace_and_mv(self):
        nat, dr = self.pair("edit")
        run(["cp", "-r", self.src, nat])
        run(["cp", "-r", self.src, dr])
        for dest in (nat, dr):
            run(["sed", "-i", "s/first cut/edited by sed/", os.path.join(dest, "metadata.json")])
            run(["sed", "-i", "s/units: 64/units: 128/", os.path.join(dest, "config.yaml")])
            for target, data in (("model.pkl", b"replaced"),
                                 ("metadata.json", json.dumps(dict(RECORD, notes="py")).encode())):
                with tempfile.NamedTemporaryFile(dir=dest, delete=False) as t:
                    t.write(data)
                os.replace(t.name, os.path.join(dest, target))
            # mv from another filesystem onto the record, then within the version
            new = os.path.join(self.work, "new.json")
            with open(new, "w") as f:
                json.dump(dict(RECORD, notes="mv across"), f)
            run(["mv", new, os.path.join(dest, "metadata.json")])
            with open(os.path.join(dest, "sub", "x.json"), "w") as f:
                json.dump(dict(RECORD, notes="mv within"), f)
            run(["mv", os.path.join(dest, "sub", "x.json"), os.path.join(dest, "metadata.json")])
        self.same(nat, dr, "edit")
        self.assertEqual(self.api_record("edit")["notes"], "mv within")
        self.assertEqual(sorted(os.listdir(dr)), sorted(os.listdir(nat)))

    # ---- metadata.json is a file ----

    def test_record_file_unlink_excl_create(self):
        v = os.path.join(self.model, "rec")
        os.mkdir(v)
        self.assertEqual(os.listdir(v), [])  # a new version is empty, as mkdir makes it
        with open(os.path.join(v, "metadata.json"), "w") as f:
            json.dump(RECORD, f)
        self.assertEqual(self.api_record("rec"), RECORD)
        os.unlink(os.path.join(v, "metadata.json"))
        self.assertNotIn("metadata.json", os.listdir(v))
        self.assertFalse(os.path.exists(os.path.join(v, "metadata.json")))
        self.assertEqual(self.api_record("rec"), {})
        with self.assertRaises(FileNotFoundError):
            os.unlink(os.path.join(v, "metadata.json"))
        fd = os.open(os.path.join(v, "metadata.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, json.dumps({"notes": "again"}).encode())
        os.close(fd)
        self.assertEqual(self.api_record("rec"), {"notes": "again"})
        with self.assertRaises(FileExistsError):
            os.open(os.path.join(v, "metadata.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        # moved away: the file keeps the text, the version has no record
        os.rename(os.path.join(v, "metadata.json"), os.path.join(v, "old.json"))
        self.assertEqual(self.api_record("rec"), {})
        self.assertEqual(sorted(os.listdir(v)), ["old.json"])
        with open(os.path.join(v, "old.json")) as f:
            self.assertEqual(record_of(f.read()), {"notes": "again"})

    def test_bad_record_fails_close_fsync_and_rename(self):
        v = os.path.join(self.model, "bad")
        os.mkdir(v)
        meta = os.path.join(v, "metadata.json")
        with open(meta, "w") as f:
            json.dump(RECORD, f)
        # close() fails with EINVAL, the record stays
        fd = os.open(meta, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"{not json")
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertEqual(self.api_record("bad"), RECORD)
        # fsync() says so too
        fd = os.open(meta, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"[1, 2")
        with self.assertRaises(OSError) as cm:
            os.fsync(fd)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        try:
            os.close(fd)
        except OSError:
            pass
        # a tool that checks close() (cat, cp) exits non-zero
        bad = os.path.join(self.work, "bad.json")
        with open(bad, "w") as f:
            f.write("{oops")
        r = subprocess.run(["sh", "-c", f"cat '{bad}' > '{meta}'"], capture_output=True,
                           timeout=TOOL_TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.api_record("bad"), RECORD)
        # rename of bad JSON onto the record fails and leaves both names
        tmp = os.path.join(v, "tmp.json")
        shutil.copy(bad, tmp)
        with self.assertRaises(OSError) as cm:
            os.rename(tmp, meta)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertTrue(os.path.exists(tmp))
        self.assertEqual(self.api_record("bad"), RECORD)
        r = subprocess.run(["mv", tmp, meta], capture_output=True, timeout=TOOL_TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.api_record("bad"), RECORD)
        with open(meta) as f:
            self.assertEqual(record_of(f.read()), RECORD)

    # ---- caps (defect 8) ----

    def test_metadata_staging_is_capped(self):
        v = os.path.join(self.model, "caps")
        os.mkdir(v)
        meta = os.path.join(v, "metadata.json")
        with open(meta, "w") as f:
            json.dump(RECORD, f)
        fd = os.open(meta, os.O_RDWR)
        try:
            with self.assertRaises(OSError) as cm:
                os.ftruncate(fd, 1 << 30)
            self.assertEqual(cm.exception.errno, errno.EFBIG)
            with self.assertRaises(OSError) as cm:
                os.pwrite(fd, b"x", 2 << 20)
            self.assertEqual(cm.exception.errno, errno.EFBIG)
        finally:
            os.close(fd)
        with open(f"/proc/{self.d.proc.pid}/status") as f:
            rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
        self.assertLess(rss, 200 * 1024, "daemon RSS in KiB")
        self.assertEqual(self.api_record("caps"), RECORD)

    def test_metadata_with_nul_is_refused(self):
        v = os.path.join(self.model, "nul")
        os.mkdir(v)
        meta = os.path.join(v, "metadata.json")
        with open(meta, "w") as f:
            json.dump(RECORD, f)
        fd = os.open(meta, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b'{"notes": "kept"}\0{"git_commit": "zzzz"}')
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertEqual(self.api_record("nul"), RECORD)

    def test_names_and_pending_links_are_capped(self):
        v = os.path.join(self.model, "names")
        os.mkdir(v)
        with self.assertRaises(OSError) as cm:
            os.symlink("names", os.path.join(self.model, "." + "x" * 300))
        self.assertEqual(cm.exception.errno, errno.ENAMETOOLONG)
        with self.assertRaises(OSError) as cm:
            open(os.path.join(v, "y" * 300), "w").close()
        self.assertEqual(cm.exception.errno, errno.ENAMETOOLONG)
        made = []
        try:
            with self.assertRaises(OSError) as cm:
                for i in range(2000):
                    p = os.path.join(self.model, f".pend{i}")
                    os.symlink("names", p)
                    made.append(p)
            self.assertEqual(cm.exception.errno, errno.ENOSPC)
            self.assertLess(len(made), 2000)
        finally:
            for p in made:
                os.unlink(p)

    # ---- no name is special in a version (defect 3) ----

    def test_dot_tmp_names_are_content_and_sealed(self):
        v = os.path.join(self.model, "dots")
        os.mkdir(v)
        with open(os.path.join(v, "a.pkl"), "wb") as f:
            f.write(b"payload")
        os.rename(os.path.join(v, "a.pkl"), os.path.join(v, ".s.tmp-9.pkl"))
        self.assertIn(".s.tmp-9.pkl", os.listdir(v))
        os.chmod(v, 0o555)  # seal
        r = requests.get(f"{self.url}/v1/models/tools/versions/dots", timeout=30)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual([f["path"] for f in r.json()["files"]], [".s.tmp-9.pkl"])
        with self.assertRaises(OSError):
            open(os.path.join(v, ".s.tmp-9.pkl"), "ab").close()
        raw = os.path.join(self.d.store, "tools", "dots", ".s.tmp-9.pkl")
        self.assertEqual(stat.S_IMODE(os.stat(raw).st_mode) & 0o222, 0)
        r = subprocess.run([MODELFS, "verify", self.d.store, "tools/dots"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rename_whiteout_is_refused(self):
        v = os.path.join(self.model, "wh")
        os.mkdir(v)
        with open(os.path.join(v, "a"), "w") as f:
            f.write("a")
        libc = ctypes.CDLL(None, use_errno=True)
        RENAME_WHITEOUT = 4
        rc = libc.renameat2(-100, os.path.join(v, "a").encode(), -100,
                            os.path.join(v, "b").encode(), RENAME_WHITEOUT)
        self.assertEqual((rc, ctypes.get_errno()), (-1, errno.EINVAL))
        self.assertEqual(sorted(os.listdir(v)), ["a"])
        RENAME_EXCHANGE = 2
        with open(os.path.join(v, "b"), "w") as f:
            f.write("bb")
        rc = libc.renameat2(-100, os.path.join(v, "a").encode(), -100,
                            os.path.join(v, "b").encode(), RENAME_EXCHANGE)
        self.assertEqual(rc, 0, os.strerror(ctypes.get_errno()))
        with open(os.path.join(v, "a")) as f:
            self.assertEqual(f.read(), "bb")

    def test_non_utf8_names_are_refused_by_both_doors(self):
        v = os.path.join(self.model, "utf")
        os.mkdir(v)
        with self.assertRaises(OSError) as cm:
            open(os.path.join(v.encode(), b"bad\xffname"), "w").close()
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(OSError) as cm:
            os.mkdir(os.path.join(v.encode(), b"dir\xc3"))
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        open(os.path.join(v, "ok\u00e9.bin"), "w").close()
        r = requests.put(f"{self.url}/v1/models/tools/versions/utf/files/bad%FFname",
                         data=b"x", timeout=30)
        self.assertEqual(r.status_code, 422, r.text)
        self.assertEqual(os.listdir(v), ["ok\u00e9.bin"])


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
