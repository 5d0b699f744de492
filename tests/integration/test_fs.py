# SPDX-License-Identifier: Apache-2.0
"""The FUSE view on a real mount, driven the way notebooks and admins drive it.

usage: test_fs.py /path/to/modelfs

Every row of DESIGN.md's FUSE semantics table, the errors around it, the
coreutils `ln -sfn` promotion and rollback flow, readers during promotions,
restarts after SIGTERM and SIGKILL, and POSIX behaviour inside drafts compared
with a native directory.
"""
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon  # noqa: E402
import pgutil  # noqa: E402

MODELFS = None


def sh(*args, check=True, user=None):
    cmd = list(args)
    if user is not None:
        uid, gid, groups = user
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}",
               f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}")
    return p


def write(path, data, mode="w"):
    with open(path, mode) as f:
        f.write(data)


def read(path):
    with open(path) as f:
        return f.read()


def errno_of(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return 0


def write_record(path, record):
    """Writes metadata.json the way a notebook does; returns the errno close() gave."""
    f = open(path, "w")
    f.write(record if isinstance(record, str) else json.dumps(record))
    try:
        f.close()
    except OSError as e:
        return e.errno
    return 0


PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.93}}


class FsTest(unittest.TestCase):
    d = None

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS).start()
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.d.cleanup()
        assert rc == 0, f"modelfs serve exited {rc} on SIGTERM"

    def model(self, versions=(), passed=True):
        """A new model in the mount with draft versions holding model.pkl."""
        FsTest.n += 1
        name = f"m{FsTest.n}-{self._testMethodName.replace('_', '-')[:40]}".lower()
        m = os.path.join(self.d.mnt, name)
        os.mkdir(m)
        for v in versions:
            os.mkdir(f"{m}/{v}")
            write(f"{m}/{v}/model.pkl", f"{name} {v} " * 100)
            if passed:
                self.assertEqual(write_record(f"{m}/{v}/metadata.json", PASSED), 0)
        return name, m

    # --- models and versions -------------------------------------------------

    def test_mkdir_model_and_version(self):
        name, m = self.model(["v1"])
        self.assertTrue(os.path.isdir(m))
        self.assertIn(name, os.listdir(self.d.mnt))
        self.assertEqual(sorted(os.listdir(m)), ["metadata.json", "v1"])
        self.assertEqual(sorted(os.listdir(f"{m}/v1")), ["metadata.json", "model.pkl"])
        # The bytes are plain files on the volume.
        self.assertEqual(read(f"{self.d.store}/{name}/v1/model.pkl"), read(f"{m}/v1/model.pkl"))
        self.assertEqual(self.d.state(name, "v1"), "draft")
        ev = [e["kind"] for e in self.d.events(name)]
        self.assertEqual(ev[:2], ["model.create", "version.create"])
        self.assertEqual(self.d.events(name)[0]["channel"], "fs")
        self.assertRegex(self.d.events(name)[0]["actor"], r"^uid=0,gid=0,pid=\d+$")

    def test_bad_names_are_einval(self):
        name, m = self.model()
        for bad in ("Upper", "under_score", "-x", "a" * 64):
            self.assertEqual(errno_of(os.mkdir, f"{self.d.mnt}/{bad}"), errno.EINVAL, bad)
        for bad in ("current", "canary", "-v", "v" * 64):
            self.assertEqual(errno_of(os.mkdir, f"{m}/{bad}"), errno.EINVAL, bad)
        self.assertEqual(errno_of(os.mkdir, f"{m}/metadata.json"), errno.EEXIST)
        self.assertEqual(errno_of(os.mkdir, m), errno.EEXIST)
        # Nothing at the model level but versions and aliases.
        self.assertEqual(errno_of(write, f"{m}/notes.txt", "x"), errno.EPERM)
        self.assertEqual(errno_of(write, f"{self.d.mnt}/file", "x"), errno.EPERM)
        self.assertEqual(sorted(os.listdir(m)), ["metadata.json"])

    def test_draft_files_owned_by_caller(self):
        name, m = self.model(["v1"])
        os.chmod(f"{m}/v1", 0o777)
        sh("sh", "-c", f"echo hi > {m}/v1/theirs.txt", user=(1234, 1234, []))
        st = os.stat(f"{m}/v1/theirs.txt")
        self.assertEqual((st.st_uid, st.st_gid), (1234, 1234))
        self.assertEqual(os.stat(f"{self.d.store}/{name}/v1/theirs.txt").st_uid, 1234)
        os.mkdir(f"{m}/v1/sub")
        write(f"{m}/v1/sub/deep.bin", "deep")
        self.assertEqual(read(f"{m}/v1/sub/deep.bin"), "deep")

    # --- metadata.json -------------------------------------------------------

    def test_metadata_json_validated_at_close(self):
        name, m = self.model(["v1"], passed=False)
        rec = dict(PASSED, model_name=name, version="v1", hyperparameters={"n_estimators": 100})
        self.assertEqual(write_record(f"{m}/v1/metadata.json", rec), 0)
        got = json.loads(read(f"{m}/v1/metadata.json"))
        self.assertEqual(got["hyperparameters"], {"n_estimators": 100})
        before = read(f"{m}/v1/metadata.json")
        self.assertEqual(write_record(f"{m}/v1/metadata.json", "{not json"), errno.EINVAL)
        self.assertEqual(write_record(f"{m}/v1/metadata.json", {"validation_status": "maybe"}),
                         errno.EINVAL)
        self.assertEqual(write_record(f"{m}/v1/metadata.json", {"model_name": "other"}),
                         errno.EINVAL)
        self.assertEqual(read(f"{m}/v1/metadata.json"), before)
        self.assertIn("not valid JSON", self.d.read_log())
        # The record is the db's: the raw volume's copy matches.
        self.assertEqual(read(f"{self.d.store}/{name}/v1/metadata.json"), before)

    # --- seal ----------------------------------------------------------------

    def test_chmod_seals_and_sealed_is_read_only(self):
        name, m = self.model(["v1"])
        os.mkdir(f"{m}/v1/assets")
        write(f"{m}/v1/assets/vocab.txt", "a b c")
        os.chmod(f"{m}/v1", 0o555)
        self.assertEqual(self.d.state(name, "v1"), "sealed")
        self.assertEqual(stat.S_IMODE(os.stat(f"{m}/v1").st_mode) & 0o222, 0)
        self.assertEqual(stat.S_IMODE(os.stat(f"{m}/v1/model.pkl").st_mode) & 0o222, 0)
        v = f"{m}/v1"
        checks = [
            (lambda: open(f"{v}/model.pkl", "a").close(), errno.EROFS),
            (lambda: open(f"{v}/model.pkl", "r+").close(), errno.EROFS),
            (lambda: os.truncate(f"{v}/model.pkl", 0), errno.EROFS),
            (lambda: write(f"{v}/new.bin", "x"), errno.EROFS),
            (lambda: os.mkdir(f"{v}/newdir"), errno.EROFS),
            (lambda: os.rename(f"{v}/model.pkl", f"{v}/other.pkl"), errno.EROFS),
            (lambda: os.unlink(f"{v}/model.pkl"), errno.EROFS),
            (lambda: os.rmdir(f"{v}/assets"), errno.EROFS),
            (lambda: os.chmod(f"{v}/model.pkl", 0o644), errno.EROFS),
            (lambda: os.utime(f"{v}/model.pkl", (0, 0)), errno.EROFS),
            (lambda: os.chmod(v, 0o755), errno.EROFS),
            (lambda: write_record(f"{v}/metadata.json", {}) or None, errno.EROFS),
        ]
        for fn, want in checks:
            self.assertEqual(errno_of(fn), want, fn.__code__.co_firstlineno)
        self.assertEqual(read(f"{v}/assets/vocab.txt"), "a b c")
        # Sealing again is a no-op; the record still reads.
        os.chmod(v, 0o555)
        self.assertEqual(json.loads(read(f"{v}/metadata.json"))["validation_status"], "passed")
        p = subprocess.run([MODELFS, "verify", self.d.store, f"{name}/v1"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    # --- aliases -------------------------------------------------------------

    def test_ln_sfn_promotion_and_rollback(self):
        name, m = self.model(["v1", "v2"])
        sh("ln", "-sfn", "v1", f"{m}/current")
        self.assertEqual(os.readlink(f"{m}/current"), "v1")
        self.assertEqual(self.d.state(name, "v1"), "sealed")  # pointing at it sealed it
        sh("ln", "-sfn", "v2", f"{m}/current")
        self.assertEqual(os.readlink(f"{m}/current"), "v2")
        self.assertEqual(read(f"{m}/current/model.pkl"), read(f"{m}/v2/model.pkl"))
        sh("ln", "-sfn", "v1", f"{m}/current")  # rollback
        self.assertEqual(os.readlink(f"{m}/current"), "v1")
        self.assertEqual(os.readlink(f"{self.d.store}/{name}/current"), "v1")
        changes = [(e["before"], e["after"]) for e in self.d.events(name, "alias.set")]
        self.assertEqual(changes, [(None, "v1"), ("v1", "v2"), ("v2", "v1")])
        # Only `current` ever changed: coreutils' temporary name left no trace.
        self.assertEqual({e["alias"] for e in self.d.events(name) if e["alias"]}, {"current"})
        self.assertEqual(sorted(os.listdir(m)), ["current", "metadata.json", "v1", "v2"])
        doc = json.loads(read(f"{m}/metadata.json"))
        self.assertEqual(doc["aliases"], {"current": "v1"})
        self.assertEqual(doc["version"], "v1")
        self.assertEqual(doc["deployed_to"], ["current"])
        ls = sh("ls", "-l", m).stdout
        self.assertRegex(ls, r"current -> v1")

    def test_gate_refusal_is_eperm_and_recorded(self):
        name, m = self.model(["v1"], passed=False)
        p = sh("ln", "-sfn", "v1", f"{m}/current", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Operation not permitted", p.stderr)
        self.assertEqual(errno_of(os.readlink, f"{m}/current"), errno.ENOENT)
        self.assertEqual(errno_of(os.symlink, "v1", f"{m}/canary"), errno.EPERM)
        self.assertEqual(self.d.state(name, "v1"), "draft")  # refused drafts stay drafts
        refused = self.d.events(name, "refused")
        self.assertEqual(len(refused), 2)
        self.assertIn('validation_status == "passed"', self.d.read_log())
        # Free-form aliases are not gated.
        os.symlink("v1", f"{m}/staging")
        self.assertEqual(os.readlink(f"{m}/staging"), "v1")
        # No temporary link is left behind.
        self.assertEqual(sorted(os.listdir(m)), ["metadata.json", "staging", "v1"])

    def test_bad_symlink_targets_are_einval(self):
        name, m = self.model(["v1"])
        other, om = self.model(["v9"])
        for target in ("/etc", "../" + other + "/v9", "v9", "nope", "v1/model.pkl", "."):
            self.assertEqual(errno_of(os.symlink, target, f"{m}/staging"), errno.EINVAL, target)
            p = sh("ln", "-sfn", target, f"{m}/current", check=False)
            self.assertNotEqual(p.returncode, 0, target)
        self.assertEqual(sorted(os.listdir(m)), ["metadata.json", "v1"])
        self.assertEqual(errno_of(os.symlink, "v1", f"{m}/v1/inside"), errno.EPERM)
        self.assertEqual(errno_of(os.link, f"{m}/v1/model.pkl", f"{m}/v1/hard"), errno.EPERM)

    def test_mv_T_and_rm_alias(self):
        name, m = self.model(["v1", "v2"])
        os.symlink("v2", f"{m}/staging")
        sh("mv", "-T", f"{m}/staging", f"{m}/canary")
        self.assertEqual(os.readlink(f"{m}/canary"), "v2")
        self.assertEqual(errno_of(os.readlink, f"{m}/staging"), errno.ENOENT)
        doc = json.loads(read(f"{m}/metadata.json"))
        self.assertEqual(doc["aliases"], {"canary": "v2"})
        self.assertEqual(doc["canary_traffic_percent"], 10)
        os.unlink(f"{m}/canary")
        self.assertEqual(errno_of(os.readlink, f"{m}/canary"), errno.ENOENT)
        self.assertEqual(errno_of(os.lstat, f"{self.d.store}/{name}/canary"), errno.ENOENT)
        kinds = [(e["kind"], e["alias"]) for e in self.d.events(name) if e["alias"]]
        self.assertEqual(kinds, [("alias.set", "staging"), ("alias.set", "canary"),
                                 ("alias.delete", "staging"), ("alias.delete", "canary")])
        # The generated file cannot be removed or written.
        self.assertEqual(errno_of(os.unlink, f"{m}/metadata.json"), errno.EPERM)
        self.assertEqual(errno_of(write, f"{m}/metadata.json", "{}"), errno.EROFS)

    def test_rm_r_of_served_version_is_ebusy(self):
        name, m = self.model(["v1", "v2"])
        os.symlink("v1", f"{m}/current")
        p = sh("rm", "-r", f"{m}/v1", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("busy", p.stderr.lower())
        self.assertEqual(errno_of(os.rmdir, f"{m}/v1"), errno.EBUSY)
        self.assertTrue(os.path.exists(f"{m}/v1/model.pkl"))
        # A sealed version nobody serves is still immutable.
        os.chmod(f"{m}/v2", 0o555)
        self.assertEqual(errno_of(os.unlink, f"{m}/v2/model.pkl"), errno.EROFS)
        # A draft goes away with rm -r.
        os.mkdir(f"{m}/v3")
        write(f"{m}/v3/model.pkl", "x")
        sh("rm", "-r", f"{m}/v3")
        self.assertFalse(os.path.exists(f"{m}/v3"))
        self.assertIsNone(self.d.state(name, "v3"))
        self.assertFalse(os.path.exists(f"{self.d.store}/{name}/v3"))
        os.mkdir(f"{m}/v4")
        write(f"{m}/v4/model.pkl", "x")
        self.assertEqual(errno_of(os.rmdir, f"{m}/v4"), errno.ENOTEMPTY)

    def test_current_view_everywhere(self):
        name, m = self.model(["v1", "v2"])
        os.symlink("v1", f"{m}/current")
        self.assertEqual(json.loads(read(f"{m}/metadata.json"))["version"], "v1")
        os.symlink("v2", f"{m}/.next")
        os.rename(f"{m}/.next", f"{m}/current")
        self.assertEqual(os.readlink(f"{m}/current"), "v2")
        doc = json.loads(read(f"{m}/metadata.json"))
        self.assertEqual(doc["version"], "v2")
        self.assertEqual((doc["versions"]["count"], doc["versions"]["latest"]), (2, "v2"))
        self.assertEqual(json.loads(read(f"{m}/v2/metadata.json"))["git_commit"], "3f2a9c1")
        self.assertEqual(stat.S_IMODE(os.stat(f"{m}/v2/metadata.json").st_mode) & 0o222, 0)

    def test_admin_group(self):
        # An admin group needs tokens for HTTP (test_authority.py tests both doors).
        d = Daemon(MODELFS, extra=["--admin-group", "4242"])
        write(f"{d.dir}/tokens", "ops admin admin-secret-0123456789abcdef\n")
        os.chmod(f"{d.dir}/tokens", 0o600)
        d.extra += ["--token-file", f"{d.dir}/tokens"]
        d.start()
        try:
            m = f"{d.mnt}/gated"
            os.mkdir(m)
            os.chmod(m, 0o777)
            for v in ("v1", "v2"):
                os.mkdir(f"{m}/{v}")
                write(f"{m}/{v}/model.pkl", v)
                self.assertEqual(write_record(f"{m}/{v}/metadata.json", PASSED), 0)
                os.chmod(f"{m}/{v}", 0o555)  # sealed by its owner: others may not
            outsider = (1234, 1234, [])
            admin = (1235, 1235, [4242])
            p = sh("ln", "-sfn", "v1", f"{m}/current", user=outsider, check=False)
            self.assertIn("Permission denied", p.stderr)
            sh("ln", "-sfn", "v1", f"{m}/staging", user=outsider)  # free-form: anyone
            sh("ln", "-sfn", "v1", f"{m}/current", user=admin)
            self.assertEqual(os.readlink(f"{m}/current"), "v1")
            p = sh("rm", f"{m}/current", user=outsider, check=False)
            self.assertNotEqual(p.returncode, 0)
            ev = d.events("gated", "alias.set")
            self.assertEqual([e["actor"].split(",pid")[0] for e in ev],
                             ["uid=1234,gid=1234", "uid=1235,gid=1235"])
        finally:
            self.assertEqual(d.stop(), 0)
            d.cleanup()

    # --- plumbing ------------------------------------------------------------

    def test_statfs_xattr_fsync(self):
        name, m = self.model(["v1"])
        a, b = os.statvfs(self.d.mnt), os.statvfs(self.d.store)
        self.assertEqual((a.f_blocks, a.f_bsize), (b.f_blocks, b.f_bsize))
        for fn in (lambda: os.listxattr(f"{m}/v1/model.pkl"),
                   lambda: os.getxattr(f"{m}/v1/model.pkl", "user.x"),
                   lambda: os.setxattr(f"{m}/v1/model.pkl", "user.x", b"1")):
            self.assertIn(errno_of(fn), (errno.EOPNOTSUPP, errno.ENOTSUP))
        fd = os.open(f"{m}/v1/model.pkl", os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"more")
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        self.assertTrue(read(f"{self.d.store}/{name}/v1/model.pkl").endswith("more"))
        for d in (f"{m}/v1", m):  # fsync of directories too
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)

    def test_readers_never_see_a_mix_during_promotion(self):
        name, m = self.model(["v1", "v2"])
        write(f"{m}/v1/model.pkl", "A" * 300000)
        write(f"{m}/v2/model.pkl", "B" * 500000)
        os.symlink("v1", f"{m}/current")
        os.chmod(f"{m}/v2", 0o555)
        bad, reads = [], [0]
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                try:
                    data = read(f"{m}/current/model.pkl")
                except OSError as e:
                    bad.append(f"error {e}")
                    continue
                reads[0] += 1
                if data not in ("A" * 300000, "B" * 500000):
                    bad.append(f"mixed read of {len(data)} bytes")

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(40):
            sh("ln", "-sfn", "v2" if i % 2 == 0 else "v1", f"{m}/current")
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(bad, [])
        self.assertGreater(reads[0], 40)
        self.assertEqual(len(self.d.events(name, "alias.set")), 41)

    def test_posix_behaviour_in_drafts_matches_native(self):
        name, m = self.model(["v1"])
        native = tempfile.mkdtemp(dir=self.d.dir)

        def script(root):
            out = []

            def step(label, fn):
                try:
                    r = fn()
                    out.append((label, "ok", r))
                except OSError as e:
                    out.append((label, errno.errorcode[e.errno]))

            step("create", lambda: write(f"{root}/a.bin", "hello world"))
            step("read", lambda: read(f"{root}/a.bin"))
            step("excl", lambda: os.close(os.open(f"{root}/a.bin", os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
            step("pwrite", lambda: (lambda fd: (os.pwrite(fd, b"HELLO", 0), os.close(fd)))(os.open(f"{root}/a.bin", os.O_WRONLY))[0])
            step("read2", lambda: read(f"{root}/a.bin"))
            step("truncate", lambda: os.truncate(f"{root}/a.bin", 5))
            step("size", lambda: os.stat(f"{root}/a.bin").st_size)
            step("mkdir", lambda: os.mkdir(f"{root}/d"))
            step("mkdir-again", lambda: os.mkdir(f"{root}/d"))
            step("rename", lambda: os.rename(f"{root}/a.bin", f"{root}/d/b.bin"))
            step("rename-missing", lambda: os.rename(f"{root}/a.bin", f"{root}/c.bin"))
            step("rename-onto-dir", lambda: os.rename(f"{root}/d/b.bin", f"{root}/d"))
            step("rmdir-nonempty", lambda: os.rmdir(f"{root}/d"))
            step("open-missing", lambda: open(f"{root}/missing"))
            step("unlink-dir", lambda: os.unlink(f"{root}/d"))
            step("chmod", lambda: os.chmod(f"{root}/d/b.bin", 0o600))
            step("mode", lambda: stat.S_IMODE(os.stat(f"{root}/d/b.bin").st_mode))
            step("utime", lambda: os.utime(f"{root}/d/b.bin", (1000000000, 1000000000)))
            step("mtime", lambda: os.stat(f"{root}/d/b.bin").st_mtime)
            step("listdir", lambda: sorted(os.listdir(f"{root}/d")))
            step("unlink", lambda: os.unlink(f"{root}/d/b.bin"))
            step("unlink-again", lambda: os.unlink(f"{root}/d/b.bin"))
            step("rmdir", lambda: os.rmdir(f"{root}/d"))
            step("rmdir-missing", lambda: os.rmdir(f"{root}/d"))
            step("big", lambda: write(f"{root}/big.bin", "x" * (3 << 20)))
            step("big-size", lambda: os.stat(f"{root}/big.bin").st_size)
            step("opendir-file", lambda: os.listdir(f"{root}/big.bin"))
            return out

        self.assertEqual(script(f"{m}/v1"), script(native))

    def test_restart_after_sigterm_and_sigkill_loses_nothing(self):
        d = Daemon(MODELFS).start()
        try:
            m = f"{d.mnt}/restart"
            os.mkdir(m)
            for v in ("v1", "v2"):
                os.mkdir(f"{m}/{v}")
                write(f"{m}/{v}/model.pkl", v * 1000)
                self.assertEqual(write_record(f"{m}/{v}/metadata.json", PASSED), 0)
            sh("ln", "-sfn", "v1", f"{m}/current")
            self.assertEqual(d.stop(signal.SIGTERM), 0)
            with open("/proc/mounts") as f:
                self.assertNotIn(d.mnt, f.read())
            d.start()
            self.assertEqual(os.readlink(f"{m}/current"), "v1")
            sh("ln", "-sfn", "v2", f"{m}/current")
            d.kill9()
            d.start()
            self.assertEqual(os.readlink(f"{m}/current"), "v2")
            self.assertEqual(read(f"{m}/current/model.pkl"), "v2" * 1000)
            d.stop()
            p = subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            # A second daemon on the same store is refused (with PostgreSQL, nodes share a
            # store by design: test_multinode.py).
            if pgutil.enabled():
                return
            d.start()
            other = subprocess.run([MODELFS, "serve", "--store", d.store, "--mount", d.dir],
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(other.returncode, 2)
            self.assertIn("in use by another modelfs process", other.stderr)
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
