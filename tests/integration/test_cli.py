# SPDX-License-Identifier: Apache-2.0
"""The modelfs command line, run as an operator would: init, import, fsck, verify.

usage: test_cli.py /path/to/modelfs
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

MODELFS = None


def run(*args, check=None):
    p = subprocess.run([MODELFS, *args], capture_output=True, text=True, timeout=120)
    if check is not None and p.returncode != check:
        raise AssertionError(
            f"modelfs {' '.join(args)} exited {p.returncode}, wanted {check}\n"
            f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)


class CliTest(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.store = tempfile.mkdtemp(prefix="modelfs-cli-", dir=base)

    def tearDown(self):
        for root, dirs, files in os.walk(self.store):
            for n in files:
                try:
                    os.chmod(os.path.join(root, n), 0o644, follow_symlinks=False)
                except OSError:
                    pass
        shutil.rmtree(self.store, ignore_errors=True)

    def adr_tree(self):
        s = self.store
        write(f"{s}/anomaly-detector/v1/model.pkl", "forest-1")
        write(f"{s}/anomaly-detector/v1/metadata.json", json.dumps({
            "model_name": "anomaly-detector", "version": "v1", "git_commit": "3f2a9c1",
            "validation_status": "passed", "performance_metrics": {"accuracy": 0.91}}))
        write(f"{s}/anomaly-detector/v2/model.pkl", "forest-2")
        write(f"{s}/anomaly-detector/v2/metadata.json", json.dumps({"validation_status": "pending"}))
        write(f"{s}/lstm-autoencoder/v1/model.pt", "lstm")
        write(f"{s}/lstm-autoencoder/v1/scaler.pkl", "scaler")
        os.symlink("v1", f"{s}/anomaly-detector/current")

    def test_version_and_help(self):
        out = run("--version", check=0).stdout
        self.assertRegex(out, r"^modelfs \d+\.\d+\.\d+")
        out = run("--help", check=0).stdout
        for cmd in ("init", "import", "fsck", "verify"):
            self.assertIn(f"modelfs {cmd}", out)
        p = run("frobnicate", check=2)
        self.assertIn("unknown command", p.stderr)
        run(check=2)

    def test_init_adopts_and_fsck_is_clean(self):
        self.adr_tree()
        out = run("init", self.store, check=0).stdout
        self.assertIn("anomaly-detector: 2 versions, current -> v1", out)
        self.assertIn("lstm-autoencoder: 1 version", out)
        self.assertEqual(run("fsck", self.store, check=0).stdout.strip(), "clean: 0 problems found")
        # The raw volume still works without the daemon.
        with open(f"{self.store}/anomaly-detector/current/model.pkl") as f:
            self.assertEqual(f.read(), "forest-1")
        doc = json.load(open(f"{self.store}/anomaly-detector/metadata.json"))
        self.assertEqual(doc["aliases"], {"current": "v1"})
        self.assertEqual(doc["versions"], {"count": 2, "draft": 0, "sealed": 2, "archived": 0,
                                           "latest": "v2"})
        # Sealed content is read-only on disk.
        self.assertFalse(os.stat(f"{self.store}/anomaly-detector/v1/model.pkl").st_mode & 0o222)

    def test_fsck_exit_status_and_repair(self):
        self.adr_tree()
        run("init", self.store, check=0)
        os.remove(f"{self.store}/anomaly-detector/current")
        os.symlink("v2", f"{self.store}/anomaly-detector/current")
        p = run("fsck", self.store, check=1)
        self.assertIn("stale-alias", p.stdout)
        self.assertIn("anomaly-detector/current", p.stdout)
        p = run("fsck", self.store, "--repair", check=0)
        self.assertIn("(repaired)", p.stdout)
        self.assertEqual(os.readlink(f"{self.store}/anomaly-detector/current"), "v1")
        run("fsck", self.store, check=0)

    def test_verify_finds_tampering(self):
        self.adr_tree()
        run("init", self.store, check=0)
        p = run("verify", self.store, check=0)
        self.assertIn("3 versions verified, 0 mismatches", p.stdout)
        self.assertIn("ok anomaly-detector/v1/model.pkl", p.stdout)
        path = f"{self.store}/lstm-autoencoder/v1/model.pt"
        os.chmod(path, 0o644)
        write(path, "LSTM")
        p = run("verify", self.store, "lstm-autoencoder/v1", check=1)
        self.assertIn("MISMATCH lstm-autoencoder/v1/model.pt", p.stdout)
        run("verify", self.store, "anomaly-detector", check=0)
        p = run("verify", self.store, "nope/v1", check=2)
        self.assertIn("no model 'nope'", p.stderr)

    def test_import_adopts_new_directories(self):
        run("init", self.store, check=0)
        write(f"{self.store}/new-model/v1/model.pkl", "new")
        p = run("import", self.store, check=0)
        self.assertIn("new-model: 1 version", p.stdout)
        run("fsck", self.store, check=0)

    def test_not_a_store_and_lock(self):
        p = run("fsck", self.store, check=2)
        self.assertIn("not a modelfs store", p.stderr)
        run("init", self.store, check=0)
        # Hold the writer lock the way a serving daemon does: writes refuse, reads go on.
        holder = subprocess.Popen(
            ["/usr/bin/python3", "-c",
             "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.flock(f, fcntl.LOCK_EX);"
             "print('locked', flush=True); time.sleep(60)",
             f"{self.store}/.modelfs/lock"], stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            p = run("fsck", self.store, "--repair", check=2)
            self.assertIn("in use by another modelfs process", p.stderr)
            run("import", self.store, check=2)
            run("fsck", self.store, check=0)
            run("verify", self.store, check=0)
        finally:
            holder.kill()
            holder.wait()

    def test_event_log_records_import(self):
        self.adr_tree()
        run("init", self.store, check=0)
        db = sqlite3.connect(f"file:{self.store}/.modelfs/registry.db?mode=ro", uri=True)
        kinds = [r[0] for r in db.execute("SELECT kind FROM events WHERE model='anomaly-detector'")]
        db.close()
        self.assertEqual(kinds.count("import"), 1)
        self.assertIn("alias.set", kinds)


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
