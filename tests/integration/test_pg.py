# SPDX-License-Identifier: Apache-2.0
"""The metadata backend: the one configured is the one in use (SQLite in
.modelfs/, or PostgreSQL with nothing of it in .modelfs/ but the store's id),
/readyz and /metrics say which; with PostgreSQL, writes fail fast while the
server is down (EAGAIN in the mount, 503 over HTTP, with the reason), the
aliases the mount has keep answering, and the daemon reconnects by itself.

usage: test_pg.py /path/to/modelfs   (the PostgreSQL run: MODELFS_TEST_PG_RUN=1)
"""
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgutil  # noqa: E402
from fsutil import Daemon, wait_for  # noqa: E402
import pg  # noqa: E402  (tests/pg.py, put on the path by pgutil)

MODELFS = None
PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.93}}


def call(d, method, path, expect=200, **kw):
    r = requests.request(method, f"http://127.0.0.1:{d.port}{path}", timeout=30, **kw)
    assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
    return r


def promoted_version(d, model, version):
    call(d, "POST", "/v1/models", 201, json={"name": model})
    call(d, "POST", f"/v1/models/{model}/versions", 201, json={"name": version, "metadata": PASSED})
    r = requests.put(f"http://127.0.0.1:{d.port}/v1/models/{model}/versions/{version}/files/model.pkl",
                     data=b"weights", timeout=30)
    assert r.status_code in (200, 201), r.text
    call(d, "POST", f"/v1/models/{model}/versions/{version}/seal")
    call(d, "POST", f"/v1/models/{model}/promote", json={"version": version})


class BackendInUseTest(unittest.TestCase):
    def test_the_configured_backend_holds_the_metadata(self):
        d = Daemon(MODELFS).start()
        try:
            promoted_version(d, "inuse", "v1")
            meta = os.path.join(d.store, ".modelfs")
            ready = call(d, "GET", "/readyz").json()
            metrics = call(d, "GET", "/metrics").text
            if pgutil.enabled():
                self.assertFalse(os.path.exists(os.path.join(meta, "registry.db")))
                with open(os.path.join(meta, "store-id")) as f:
                    sid = f.read().strip()
                rows = pgutil.query(d.store, "SELECT value FROM store_info WHERE key = 'store_id'")
                self.assertEqual(rows, [(sid,)])
                rows = pgutil.query(d.store, "SELECT a.name, v.name FROM aliases a JOIN versions v "
                                    "ON v.id = a.version_id JOIN models m ON m.id = a.model_id "
                                    "WHERE m.name = 'inuse'")
                self.assertEqual(rows, [("current", "v1")])
                # Event ids: gap-free, from the counter row.
                ids = [int(r[0]) for r in pgutil.query(d.store, "SELECT id FROM events ORDER BY id")]
                self.assertEqual(ids, list(range(1, len(ids) + 1)))
                self.assertEqual(pgutil.query(d.store, "SELECT last FROM event_seq"),
                                 [(str(len(ids)),)])
                kind = "postgresql"
            else:
                self.assertTrue(os.path.exists(os.path.join(meta, "registry.db")))
                self.assertFalse(os.path.exists(os.path.join(meta, "store-id")))
                kind = "sqlite"
            self.assertEqual(ready["backend"]["kind"], kind)
            self.assertTrue(ready["backend"]["connected"])
            self.assertIn(f'modelfs_db_backend_info{{kind="{kind}"}} 1', metrics)
            self.assertIn("modelfs_db_connected 1", metrics)
            self.assertEqual(os.readlink(os.path.join(d.mnt, "inuse", "current")), "v1")
        finally:
            self.assertEqual(d.stop(), 0)
            d.cleanup()


@unittest.skipUnless(pgutil.enabled(), "PostgreSQL run only")
class ServerDownTest(unittest.TestCase):
    """A private server (the run's shared one stays up for the other tests)."""

    def setUp(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.pgdir = tempfile.mkdtemp(prefix="modelfs-pg-", dir="/tmp")
        self.base = pg.start(self.pgdir)
        self.db = pg.createdb(self.base, "down")
        self.d = Daemon(MODELFS)
        pgutil.drop(self.d.store)  # its database on the shared server: this one instead
        pgutil.adopt(self.d.store, self.db)
        self.d.start()

    def tearDown(self):
        if self.d.proc:
            self.d.stop()
        self.d.cleanup()
        pg.stop(self.pgdir)
        subprocess.run(["rm", "-rf", "--one-file-system", self.pgdir])

    def test_writes_fail_fast_reads_go_on_and_it_reconnects(self):
        d = self.d
        promoted_version(d, "down", "v1")
        pkl = os.path.join(d.mnt, "down", "v1", "model.pkl")
        with open(pkl, "rb") as f:
            self.assertEqual(f.read(), b"weights")
        pg.stop(self.pgdir, signal.SIGQUIT)  # pg_ctl stop -m immediate

        # Writes: refused at once, with the reason, through both doors.
        t0 = time.monotonic()
        r = call(d, "POST", "/v1/models", expect=503, json={"name": "later"})
        self.assertIn("unreachable", r.json()["error"]["message"])
        with self.assertRaises(OSError) as cm:
            os.mkdir(os.path.join(d.mnt, "later-fs"))
        self.assertEqual(cm.exception.errno, errno.EAGAIN)
        self.assertLess(time.monotonic() - t0, 10)
        ready = call(d, "GET", "/readyz", expect=503).json()
        self.assertFalse(ready["error"]["details"]["backend"]["connected"])
        self.assertIn("modelfs_db_connected 0", call(d, "GET", "/metrics").text)
        # Reads: the alias the kernel has. (Opening a sealed file still asks the db for its
        # record and answers EAGAIN meanwhile: fail-static reads need that record cached.)
        self.assertEqual(os.readlink(os.path.join(d.mnt, "down", "current")), "v1")

        # Back: the next writes reconnect by themselves.
        pg.start(self.pgdir)

        last = []

        def write_ok():
            r = requests.post(f"http://127.0.0.1:{d.port}/v1/models", json={"name": "later"},
                              timeout=30)
            last[:] = [r.status_code, r.text]
            return r.status_code == 201
        try:
            wait_for(write_ok, timeout=30, what="a write after PostgreSQL came back")
        except AssertionError:
            print(last, "\n".join(l for l in d.read_log().splitlines() if " 409 " not in l)[-3000:], file=sys.stderr)
            raise
        try:
            os.mkdir(os.path.join(d.mnt, "again-fs"))
        except OSError:
            print(d.read_log()[-3000:], file=sys.stderr)
            raise
        ready = call(d, "GET", "/readyz").json()
        self.assertTrue(ready["backend"]["connected"])
        self.assertGreaterEqual(ready["backend"]["reconnects"], 1)
        # Nothing acknowledged was lost; the store is clean.
        self.assertEqual(os.readlink(os.path.join(d.mnt, "down", "current")), "v1")
        self.assertEqual(d.stop(), 0)
        p = subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


@unittest.skipUnless(pgutil.enabled(), "PostgreSQL run only")
class MigrateTest(unittest.TestCase):
    def events_pg(self, db):
        base = os.environ["MODELFS_TEST_PG"]
        name = db.split("dbname=")[1]
        return [tuple(r) for r in pg.psql(base, "SELECT id, kind, coalesce(model, ''), "
                                          "coalesce(alias, '') FROM events ORDER BY id",
                                          dbname=name)]

    def test_to_sqlite_and_back_keeps_everything(self):
        import sqlite3
        d = Daemon(MODELFS).start()
        try:
            promoted_version(d, "mig", "v1")
            promoted_version(d, "mig2", "v1")
            call(d, "POST", "/v1/models/mig/versions", 201, json={"name": "v2", "metadata": PASSED})
            call(d, "POST", "/v1/models/mig/versions/v2/seal")
            call(d, "POST", "/v1/models/mig/promote", json={"version": "v2"})
            call(d, "POST", "/v1/models/mig/rollback", json={})
            self.assertEqual(d.stop(), 0)
            db_a = os.environ["MODELFS_DB"]
            before = self.events_pg(db_a)
            self.assertGreater(len(before), 8)

            # PostgreSQL -> SQLite: the history, ids included; fsck clean.
            p = subprocess.run([MODELFS, "migrate", d.store, "--to", "sqlite"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            env = {k: v for k, v in os.environ.items() if k != "MODELFS_DB"}
            p = subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            db = sqlite3.connect(f"file:{d.store}/.modelfs/registry.db?mode=ro", uri=True)
            got = [(str(i), k, m or "", a or "") for i, k, m, a in
                   db.execute("SELECT id, kind, model, alias FROM events ORDER BY id")]
            db.close()
            self.assertEqual(got, before)
            # The database it left is refused from now on.
            p = subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn("moved away", p.stderr)

            # SQLite -> another PostgreSQL database; fsck clean there, the history the same.
            db_b = pg.createdb(os.environ["MODELFS_TEST_PG"], "mig_b_%d" % os.getpid())
            self.addCleanup(pg.dropdb, os.environ["MODELFS_TEST_PG"], "mig_b_%d" % os.getpid())
            p = subprocess.run([MODELFS, "migrate", d.store, "--to", db_b], capture_output=True,
                               text=True, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = subprocess.run([MODELFS, "fsck", d.store, "--db", db_b], capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(self.events_pg(db_b), before)
            # SQLite is refused now; a daemon on the new database goes on gap-free.
            p = subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 2)
            pgutil.adopt(d.store, db_b)
            d.start()
            call(d, "POST", "/v1/models/mig/promote", json={"version": "v2"})
            self.assertEqual(os.readlink(os.path.join(d.mnt, "mig", "current")), "v2")
            ids = [int(r[0]) for r in self.events_pg(db_b)]
            self.assertEqual(ids, list(range(1, len(ids) + 1)))
            self.assertGreater(len(ids), len(before))
        finally:
            if d.proc:
                d.stop()
            d.cleanup()


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
