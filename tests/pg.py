#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A private PostgreSQL server for the tests: initdb into a directory, listen
on a Unix socket there (no TCP) with its own port number, stop by PID.

usage: pg.py start DIR     initdb (once) and start; prints the conninfo base
       pg.py stop DIR      fast shutdown (SIGINT to the postmaster), waits
       pg.py kill DIR      immediate shutdown (SIGQUIT: pg_ctl stop -m immediate)
       pg.py conninfo DIR  prints "host=DIR port=N user=modelfs"

PostgreSQL refuses to run as root: as root the server runs as the
`postgres` user (setpriv), and DIR is made theirs. The conninfo base needs
a dbname= added; tests create a database per store (createdb()).
"""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time

BIN = "/usr/lib/postgresql/15/bin"
USER = "modelfs"


def _as_server(cmd):
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + cmd


def _port(d):
    with open(os.path.join(d, "port")) as f:
        return int(f.read())


def conninfo(d):
    return f"host={d} port={_port(d)} user={USER}"


def _pid(d):
    try:
        with open(os.path.join(d, "data", "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def _alive(pid):
    try:
        # A server this process started is its child: reap it once it exits.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def psql(base, sql, dbname="postgres", check=True):
    """Runs sql with psql; returns its rows as lists of strings."""
    p = subprocess.run([f"{BIN}/psql", "-X", "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                        "-d", f"{base} dbname={dbname}", "-c", sql],
                       capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"psql: {p.stderr.strip()}")
    return [line.split("\x1f") for line in p.stdout.splitlines()]


def createdb(base, name):
    psql(base, f'CREATE DATABASE "{name}"')
    return f"{base} dbname={name}"


def dropdb(base, name):
    psql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


def start(d, timeout=30):
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(d, pw.pw_uid, pw.pw_gid)
    data = os.path.join(d, "data")
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        subprocess.run(_as_server([f"{BIN}/initdb", "-D", data, "-U", USER, "--auth=trust",
                                   "-E", "UTF8", "--no-sync", "--locale=C"]),
                       check=True, capture_output=True)
    if not os.path.exists(os.path.join(d, "port")):
        with open(os.path.join(d, "port"), "w") as f:
            f.write(str(20000 + os.getpid() % 20000))
    port = _port(d)
    # The test server trades power-loss durability for speed (fsync off: the data is
    # thrown away), not crash durability: commits stay synchronous, so a server killed
    # with SIGQUIT (pg_ctl stop -m immediate) keeps every commit it acknowledged.
    log = open(os.path.join(d, "server.log"), "a")
    subprocess.Popen(_as_server([f"{BIN}/postgres", "-D", data, "-k", d, "-p", str(port),
                                 "-c", "listen_addresses=", "-c", "fsync=off",
                                 "-c", "full_page_writes=off",
                                 "-c", "max_connections=400", "-c", "shared_buffers=32MB"]),
                     stdout=log, stderr=log, start_new_session=True)
    log.close()
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = subprocess.run([f"{BIN}/pg_isready", "-q", "-h", d, "-p", str(port)])
        if p.returncode == 0:
            return conninfo(d)
        time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not start: see " + os.path.join(d, "server.log"))


def stop(d, sig=signal.SIGINT, timeout=30):
    pid = _pid(d)
    if not pid or not _alive(pid):
        return
    os.kill(pid, sig)
    deadline = time.time() + timeout
    while time.time() < deadline and _alive(pid):
        time.sleep(0.05)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "start":
        print(start(d))
    elif cmd == "stop":
        stop(d)
    elif cmd == "kill":
        stop(d, signal.SIGQUIT)
    elif cmd == "conninfo":
        print(conninfo(d))
    elif cmd == "clean":
        stop(d)
        shutil.rmtree(d, ignore_errors=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
