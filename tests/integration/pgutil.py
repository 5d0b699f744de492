# SPDX-License-Identifier: Apache-2.0
"""The PostgreSQL runs of the integration suites (meson's *-pg entries set
MODELFS_TEST_PG_RUN=1; ./dev test exports MODELFS_TEST_PG, the conninfo base
of its private server, tests/pg.py). Each store gets its own database; the
daemon and the offline commands find it through MODELFS_DB. Without a
server, importing this in a PostgreSQL run skips the whole file (exit 77)."""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pg  # noqa: E402  tests/pg.py

NULL = "\x01"


def enabled():
    return os.environ.get("MODELFS_TEST_PG_RUN") == "1"


if enabled() and not os.environ.get("MODELFS_TEST_PG"):
    print("no PostgreSQL for this run (MODELFS_TEST_PG): skipped", file=sys.stderr)
    sys.exit(77)

_dbs = {}  # store path -> (conninfo, name)


def db_for(store):
    """The conninfo of store's database (made on first use), or None for SQLite."""
    if not enabled():
        return None
    store = os.path.realpath(store)
    if store not in _dbs:
        name = "it_%d_%s" % (os.getpid(), uuid.uuid4().hex[:10])
        _dbs[store] = (pg.createdb(os.environ["MODELFS_TEST_PG"], name), name)
    return _dbs[store][0]


def use(store):
    """Points MODELFS_DB (this process's and its children's) at store's database."""
    db = db_for(store)
    if db:
        os.environ["MODELFS_DB"] = db
    return db


def adopt(store, db):
    """Gives store the database db (made elsewhere; drop() leaves it)."""
    _dbs[os.path.realpath(store)] = (db, None)
    os.environ["MODELFS_DB"] = db


def drop(store):
    store = os.path.realpath(store)
    if store in _dbs:
        db, name = _dbs.pop(store)
        if os.environ.get("MODELFS_DB") == db:
            # Back to the store made before it (a class-wide daemon outlives a test's own).
            if _dbs:
                os.environ["MODELFS_DB"] = list(_dbs.values())[-1][0]
            else:
                del os.environ["MODELFS_DB"]
        if name:
            pg.dropdb(os.environ["MODELFS_TEST_PG"], name)


def query(store, sql):
    """Rows of sql in store's database, as tuples of str (None for NULL)."""
    base = os.environ["MODELFS_TEST_PG"]
    name = _dbs[os.path.realpath(store)][1]
    import subprocess
    p = subprocess.run([f"{pg.BIN}/psql", "-X", "-q", "-At", "-F", "\x1f", "-P", "null=" + NULL,
                        "-v", "ON_ERROR_STOP=1", "-d", f"{base} dbname={name}", "-c", sql],
                       capture_output=True, text=True, check=True)
    return [tuple(None if v == NULL else v for v in line.split("\x1f"))
            for line in p.stdout.splitlines()]
