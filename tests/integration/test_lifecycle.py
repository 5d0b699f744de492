# SPDX-License-Identifier: Apache-2.0
"""The end of a version's life against a real daemon with a real mount: archive and
unarchive, delete of a version and of a model, retention and gc, through HTTP, the
client commands (tables, --json, exit statuses) and the mount; a reader holding a
file open through the mount blocks delete and gc; a SIGKILL in the middle of a
delete or a gc leaves the version whole or gone, db and volume agreeing, fsck clean.

usage: test_lifecycle.py /path/to/modelfs
"""
import json
import os
import sqlite3
import subprocess
import sys
import threading
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon, wait_for  # noqa: E402

MODELFS = None
ADMIN = "admin-secret-0123456789"
WRITER = "writer-secret-0123456789"
READER = "reader-secret-0123456789"
PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.91}}


def token_daemon(extra=(), env=None, store=None):
    """A daemon with a mount and a token file (admin, writer, reader); not started."""
    d = Daemon(MODELFS, store=store)
    path = os.path.join(d.dir, "tokens")
    with open(path, "w") as f:
        f.write(f"release admin {ADMIN}\npipeline writer {WRITER}\ndashboard reader {READER}\n")
    os.chmod(path, 0o600)
    for name, secret in (("admin", ADMIN), ("writer", WRITER), ("reader", READER)):
        with open(os.path.join(d.dir, f"{name}.token"), "w") as f:
            f.write(secret + "\n")
    d.extra = ["--token-file", path] + list(extra)
    d.env = env
    return d


def start(d):
    old = dict(os.environ)
    try:
        os.environ.update(d.env or {})
        return d.start()
    finally:
        os.environ.clear()
        os.environ.update(old)


class Api:
    def __init__(self, d, token=ADMIN):
        self.url = f"http://127.0.0.1:{d.port}"
        self.s = requests.Session()
        if token:
            self.s.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, expect=200, **kw):
        r = self.s.request(method, self.url + path, timeout=90, **kw)
        if expect is not None and r.status_code != expect:
            raise AssertionError(f"{method} {path}: {r.status_code} (wanted {expect}) {r.text}")
        return r

    def version(self, model, name, content=None):
        self.call("POST", f"/v1/models/{model}/versions", 201,
                  json={"name": name, "metadata": PASSED})
        self.call("PUT", f"/v1/models/{model}/versions/{name}/files/model.pkl", 201,
                  data=(content or f"{model} {name}").encode())
        self.call("POST", f"/v1/models/{model}/versions/{name}/seal")

    def model(self, model, versions):
        self.call("POST", "/v1/models", 201, json={"name": model})
        for v in versions:
            self.version(model, v)

    def names(self, model, query=""):
        r = self.call("GET", f"/v1/models/{model}/versions{query}")
        return [v["name"] for v in r.json()["versions"]]


def fsck(d):
    return subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True)


def db_rows(d, sql, args=()):
    db = sqlite3.connect(f"file:{d.store}/.modelfs/registry.db?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def trash(d):
    p = os.path.join(d.store, ".modelfs", "deleted")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


class LifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = start(token_daemon())
        cls.api = Api(cls.d)
        cls.mnt = cls.d.mnt

    @classmethod
    def tearDownClass(cls):
        cls.api.s.close()
        rc = cls.d.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", cls.d.dir])
        assert rc == 0, f"modelfs serve exited {rc}"

    def cli(self, *args, token="admin", want=0):
        cmd = [MODELFS, *args]
        if args[0] != "gc" or "--url" in args or len(args) == 1 or args[1].startswith("--"):
            cmd += ["--url", self.api.url]
        if token:
            cmd += ["--token-file", os.path.join(self.d.dir, f"{token}.token")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELFS_")}
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, want, f"{cmd}: {p.stdout} {p.stderr}")
        return p

    # ---- archive ----

    def test_archive_hidden_readable_never_aliased(self):
        api, m = self.api, "lc-arch"
        api.model(m, ["v1", "v2"])
        self.assertEqual(sorted(os.listdir(f"{self.mnt}/{m}")), ["metadata.json", "v1", "v2"])
        r = api.call("POST", f"/v1/models/{m}/versions/v1/archive",
                     json={"reason": "superseded by v2"})
        self.assertEqual((r.json()["name"], r.json()["archived"], r.json()["state"]),
                         ("v1", True, "archived"))
        # Hidden from default listings, there when asked.
        self.assertEqual(api.names(m), ["v2"])
        self.assertEqual(api.names(m, "?archived=include"), ["v1", "v2"])
        self.assertEqual(api.names(m, "?archived=only"), ["v1"])
        self.assertEqual(api.names(m, "?state=archived"), ["v1"])
        self.assertEqual(api.call("GET", f"/v1/models/{m}/versions?archived=maybe", 400)
                         .json()["error"]["code"], "bad_request")
        # The mount's ls leaves it out; by path it reads, over HTTP too.
        self.assertEqual(sorted(os.listdir(f"{self.mnt}/{m}")), ["metadata.json", "v2"])
        with open(f"{self.mnt}/{m}/v1/model.pkl") as f:
            self.assertEqual(f.read(), f"{m} v1")
        self.assertEqual(api.call("GET", f"/v1/models/{m}/versions/v1/files/model.pkl").text,
                         f"{m} v1")
        # Never an alias target while archived: HTTP 409 archived, the mount EINVAL.
        r = api.call("PUT", f"/v1/models/{m}/aliases/staging", 409, json={"version": "v1"})
        self.assertEqual(r.json()["error"]["code"], "archived")
        with self.assertRaises(OSError):
            os.symlink("v1", f"{self.mnt}/{m}/staging")
        # An aliased version cannot be archived.
        api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v2"})
        r = api.call("POST", f"/v1/models/{m}/versions/v2/archive", 409, json={})
        self.assertEqual(r.json()["error"]["code"], "aliased")
        self.assertIn("alias 'staging'", r.json()["error"]["message"])
        # Unarchive: listed again, aliasable again.
        r = api.call("POST", f"/v1/models/{m}/versions/v1/unarchive", json={})
        self.assertFalse(r.json()["archived"])
        self.assertEqual(api.names(m), ["v1", "v2"])
        self.assertIn("v1", os.listdir(f"{self.mnt}/{m}"))
        api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v1"})
        ev = [e for e in api.call("GET", f"/v1/models/{m}/history").json()["events"]
              if e["kind"].startswith("version.") and "archive" in e["kind"]]
        self.assertEqual([(e["kind"], e["version"], e["actor"], e["channel"]) for e in ev],
                         [("version.archive", "v1", "release", "api"),
                          ("version.unarchive", "v1", "release", "api")])
        self.assertEqual(ev[0]["detail"], {"reason": "superseded by v2"})
        self.assertEqual(fsck(self.d).returncode, 0, fsck(self.d).stdout)

    def test_archive_client(self):
        m = "lc-carch"
        self.api.model(m, ["v1", "v2"])
        p = self.cli("archive", m, "v1", "--reason", "old")
        self.assertEqual(p.stdout, f"{m}/v1 archived\n")
        p = self.cli("archive", m, "v1", "--json")
        self.assertEqual(json.loads(p.stdout)["archived"], True)
        p = self.cli("versions", m)
        self.assertNotIn("v1", p.stdout.split())
        p = self.cli("unarchive", m, "v1")
        self.assertEqual(p.stdout, f"{m}/v1 not archived\n")
        self.cli("alias", "set", m, "staging", "v1")
        # A refusal: exit 1, the server's reason and code.
        p = self.cli("archive", m, "v1", want=1)
        self.assertIn("alias 'staging'", p.stderr)
        self.assertIn("aliased", p.stderr)
        self.cli("archive", m, "nope", want=3)
        self.cli("archive", m, "v2", token="reader", want=4)
        self.cli("archive", m, want=2)

    # ---- delete ----

    def test_delete_version_http(self):
        api, m = self.api, "lc-del"
        api.model(m, ["v1", "v2", "v3"])
        api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v2"})
        # Admin only, a reason required, never an aliased version.
        w = Api(self.d, WRITER)
        self.addCleanup(w.s.close)
        w.call("DELETE", f"/v1/models/{m}/versions/v1", 403, json={"reason": "x"})
        api.call("DELETE", f"/v1/models/{m}/versions/v1", 400, json={})
        r = api.call("DELETE", f"/v1/models/{m}/versions/v2", 409, json={"reason": "x"})
        self.assertEqual(r.json()["error"]["code"], "aliased")
        r = api.call("DELETE", f"/v1/models/{m}/versions/v1", json={"reason": "bad data"})
        self.assertEqual(r.json(), {"model": m, "version": "v1", "deleted": True, "git_tags": []})
        self.assertFalse(os.path.exists(f"{self.d.store}/{m}/v1"))
        self.assertNotIn("v1", os.listdir(f"{self.mnt}/{m}"))
        self.assertFalse(os.path.exists(f"{self.mnt}/{m}/v1"))
        api.call("GET", f"/v1/models/{m}/versions/v1", 404)
        self.assertEqual(trash(self.d), [])
        ev = [e for e in api.call("GET", f"/v1/models/{m}/history?kind=version.delete")
              .json()["events"]]
        self.assertEqual([(e["version"], e["actor"], e["before"]) for e in ev],
                         [("v1", "release", "sealed")])
        self.assertEqual(ev[0]["detail"]["reason"], "bad data")
        # The next automatic name does not reuse it.
        r = api.call("POST", f"/v1/models/{m}/versions", 201, json={})
        self.assertEqual(r.json()["name"], "v4")
        self.assertEqual(fsck(self.d).returncode, 0, fsck(self.d).stdout)

    def test_delete_through_mount(self):
        api, m = self.api, "lc-mdel"
        api.model(m, ["v1", "v2"])
        api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v2"})
        # A sealed version has no reason to give through the mount: EROFS, as before.
        with self.assertRaises(OSError) as e:
            os.rmdir(f"{self.mnt}/{m}/v1")
        self.assertEqual(e.exception.errno, 30)  # EROFS
        with self.assertRaises(OSError) as e:
            os.rmdir(f"{self.mnt}/{m}/v2")
        self.assertEqual(e.exception.errno, 16)  # EBUSY: aliased
        # An empty draft goes through the mount as it always did.
        os.mkdir(f"{self.mnt}/{m}/d1")
        os.rmdir(f"{self.mnt}/{m}/d1")
        api.call("GET", f"/v1/models/{m}/versions/d1", 404)

    def test_delete_model(self):
        api, m = self.api, "lc-model"
        api.model(m, ["v1", "v2"])
        os.mkdir(f"{self.mnt}/{m}/d3")  # a draft goes with it
        api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v2"})
        r = api.call("DELETE", f"/v1/models/{m}", 409, json={"reason": "retired"})
        self.assertEqual(r.json()["error"]["code"], "aliased")
        self.assertIn("staging", r.json()["error"]["message"])
        # Without a reason only an empty model goes (the first round's rule).
        r = api.call("DELETE", f"/v1/models/{m}", 409)
        self.assertEqual(r.json()["error"]["code"], "not_empty")
        api.call("DELETE", f"/v1/models/{m}/aliases/staging", 204)
        p = self.cli("delete", m, "--reason", "retired")
        self.assertEqual(p.stdout, f"deleted model {m}\nversions deleted: v1, v2, d3\n"
                         "git tags left in the repository: none\n")
        self.assertFalse(os.path.exists(f"{self.d.store}/{m}"))
        self.assertNotIn(m, os.listdir(self.mnt))
        api.call("GET", f"/v1/models/{m}", 404)
        self.assertEqual(trash(self.d), [])
        kinds = [(k, v) for k, v in db_rows(self.d, "SELECT kind, version FROM events WHERE "
                                                    "model = ? AND kind LIKE '%delete'", (m,))]
        self.assertEqual(kinds, [("alias.delete", "v2"), ("version.delete", "v1"),
                                 ("version.delete", "v2"), ("version.delete", "d3"),
                                 ("model.delete", None)])
        self.assertEqual(fsck(self.d).returncode, 0, fsck(self.d).stdout)

    def test_delete_client(self):
        m = "lc-cdel"
        self.api.model(m, ["v1", "v2", "v3"])
        self.cli("alias", "set", m, "staging", "v3")
        p = self.cli("delete", m, "v1", want=2)  # no reason
        self.assertIn("--reason", p.stderr)
        p = self.cli("delete", m, "v1", "--reason", "r", token="writer", want=4)
        p = self.cli("delete", m, "v3", "--reason", "r", want=1)
        self.assertIn("alias 'staging'", p.stderr)
        self.cli("delete", m, "v9", "--reason", "r", want=3)
        p = self.cli("delete", m, "v1", "--reason", "leak")
        self.assertEqual(p.stdout, f"deleted {m}/v1\ngit tags left in the repository: none\n")
        p = self.cli("delete", m, "v2", "--reason", "leak", "--json")
        self.assertEqual(json.loads(p.stdout), {"model": m, "version": "v2", "deleted": True,
                                                "git_tags": []})

    # ---- a reader through the mount ----

    def test_open_file_blocks_delete_and_gc(self):
        api, m = self.api, "lc-hold"
        api.model(m, ["v1", "v2"])
        f = open(f"{self.mnt}/{m}/v1/model.pkl", "rb")
        try:
            r = api.call("DELETE", f"/v1/models/{m}/versions/v1", 409, json={"reason": "x"})
            self.assertEqual(r.json()["error"]["code"], "busy")
            self.assertIn("open through the mount", r.json()["error"]["message"])
            api.call("PUT", f"/v1/models/{m}/policy", json={"retention": {"keep_last": 0}})
            r = api.call("POST", "/v1/gc", json={"model": m})
            self.assertEqual([x["version"] for x in r.json()["removed"]], ["v2"])
            kept = {x["version"]: x["why"] for x in r.json()["kept"]}
            self.assertIn("open through the mount", kept["v1"])
            self.assertEqual(f.read(), f"{m} v1".encode())
            r = api.call("DELETE", f"/v1/models/{m}", 409, json={"reason": "x"})
            self.assertEqual(r.json()["error"]["code"], "busy")
            p = self.cli("delete", m, "v1", "--reason", "x", want=1)
            self.assertIn(f"version {m}/v1 has 1 file(s) open through the mount", p.stderr)
            self.assertIn("409 busy", p.stderr)
        finally:
            f.close()
        # Released with the last close (the kernel sends release shortly after close).
        wait_for(lambda: api.call("DELETE", f"/v1/models/{m}/versions/v1", None,
                                  json={"reason": "x"}).status_code == 200, 10, "the release")
        self.assertEqual(api.names(m), [])

    # ---- retention and gc ----

    def test_policy_retention_checked(self):
        api, m = self.api, "lc-pol"
        api.model(m, [])
        for bad in ({"keep_last": -1}, {"keep_last": "3"}, {"keep_aliased_days": 3},
                    {"keep_last": 1, "forever": True}, [1]):
            r = api.call("PUT", f"/v1/models/{m}/policy", 422, json={"retention": bad})
            self.assertIn("retention", r.json()["error"]["message"])
        api.call("PUT", f"/v1/models/{m}/policy",
                 json={"retention": {"keep_last": 2, "keep_aliased_days": 7}})
        self.assertEqual(api.call("GET", f"/v1/models/{m}/policy").json()["retention"],
                         {"keep_last": 2, "keep_aliased_days": 7})

    def test_gc(self):
        api, m = self.api, "lc-gc"
        api.model(m, ["v1", "v2", "v3", "v4", "v5"])
        os.mkdir(f"{self.mnt}/{m}/d6")  # drafts are never gc's
        api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v2"})
        api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v3"})
        api.call("PUT", f"/v1/models/{m}/policy",
                 json={"retention": {"keep_last": 1, "keep_aliased_days": 1}})
        want_kept = {"v5": "one of the last 1 sealed versions",
                     "v3": "aliased ('staging' points at it)",
                     "v2": "aliased within the last 1 days"}
        r = api.call("POST", "/v1/gc", json={"dry_run": True, "model": m}).json()
        self.assertEqual(r["dry_run"], True)
        self.assertEqual([(x["model"], x["version"]) for x in r["removed"]],
                         [(m, "v4"), (m, "v1")])
        self.assertIn("not one of the last 1", r["removed"][0]["why"])
        self.assertEqual({x["version"]: x["why"] for x in r["kept"]}, want_kept)
        self.assertEqual(api.names(m), ["v1", "v2", "v3", "v4", "v5", "d6"])
        # The client's dry run says the same, as a table and as JSON.
        p = self.cli("gc", "--dry-run", "--model", m)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["MODEL", "VERSION", "ACTION", "WHY"])
        self.assertTrue(lines[1].startswith(f"{m}  v4       would remove  not one of"), lines)
        self.assertEqual(json.loads(self.cli("gc", "--dry-run", "--model", m, "--json").stdout),
                         r)
        self.cli("gc", "--model", m, token="writer", want=4)
        # The real run.
        p = self.cli("gc", "--model", m, "--json")
        r = json.loads(p.stdout)
        self.assertEqual(r["dry_run"], False)
        self.assertEqual([x["version"] for x in r["removed"]], ["v4", "v1"])
        self.assertEqual(api.names(m), ["v2", "v3", "v5", "d6"])
        self.assertFalse(os.path.exists(f"{self.d.store}/{m}/v1"))
        self.assertEqual(sorted(os.listdir(f"{self.mnt}/{m}")),
                         ["d6", "metadata.json", "staging", "v2", "v3", "v5"])
        ev = db_rows(self.d, "SELECT version, channel, actor, detail FROM events WHERE model = ? "
                             "AND kind = 'version.delete'", (m,))
        self.assertEqual([(v, c, a) for v, c, a, _ in ev], [("v4", "api", "release"),
                                                           ("v1", "api", "release")])
        self.assertIn("retention", json.loads(ev[0][3])["reason"])
        # Models without retention are never touched.
        api.model("lc-gc-none", ["v1", "v2"])
        self.assertEqual(api.call("POST", "/v1/gc", json={"model": "lc-gc-none"}).json(),
                         {"dry_run": False, "removed": [], "kept": []})
        self.assertEqual(fsck(self.d).returncode, 0, fsck(self.d).stdout)

    def test_gc_offline_refused_while_serving(self):
        p = self.cli("gc", self.d.store, "--dry-run", token=None, want=1)
        self.assertIn("in use", p.stderr)


GIT = ["git", "-c", "user.name=tester", "-c", "user.email=tester@example.com",
       "-c", "init.defaultBranch=main"]


def git(*args, cwd=None):
    return subprocess.run(GIT + list(args), cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


class OtherDaemonsTest(unittest.TestCase):
    def test_delete_reports_git_tags_and_leaves_them(self):
        d = token_daemon()
        repo = os.path.join(d.dir, "training")
        git("init", "-q", repo)
        git("commit", "-q", "--allow-empty", "-m", "train", cwd=repo)
        commit = git("rev-parse", "HEAD", cwd=repo)
        d.extra += ["--git-repo", repo, "--git-gto-tags"]
        start(d)
        try:
            api, m = Api(d), "lc-git"
            self.addCleanup(api.s.close)
            api.call("POST", "/v1/models", 201, json={"name": m})
            for v in ("v1", "v2"):
                api.call("POST", f"/v1/models/{m}/versions", 201,
                         json={"name": v, "metadata": dict(PASSED, git_commit=commit)})
                api.call("POST", f"/v1/models/{m}/versions/{v}/seal")
            api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v1"})
            api.call("PUT", f"/v1/models/{m}/aliases/staging", json={"version": "v2"})
            want = [f"model-{m}-v1", f"{m}#staging#1"]
            wait_for(lambda: set(want) <= set(git("tag", "-l", cwd=repo).split()), 20,
                     "the tags")
            r = api.call("DELETE", f"/v1/models/{m}/versions/v1", json={"reason": "r"}).json()
            self.assertEqual(sorted(r["git_tags"]), sorted(want))
            # Left in the repository, and the model's delete lists the rest.
            self.assertTrue(set(want) <= set(git("tag", "-l", cwd=repo).split()))
            api.call("DELETE", f"/v1/models/{m}/aliases/staging", 204)
            r = api.call("DELETE", f"/v1/models/{m}", json={"reason": "r"}).json()
            self.assertIn(f"model-{m}-v2", r["git_tags"])
            self.assertEqual(r["versions"], ["v2"])
        finally:
            self.assertEqual(d.stop(), 0)
            subprocess.run(["rm", "-rf", "--one-file-system", d.dir])

    def test_show_archived(self):
        d = start(token_daemon(extra=["--show-archived"]))
        try:
            api, m = Api(d), "lc-show"
            self.addCleanup(api.s.close)
            api.model(m, ["v1", "v2"])
            api.call("POST", f"/v1/models/{m}/versions/v1/archive", json={})
            self.assertEqual(sorted(os.listdir(f"{d.mnt}/{m}")), ["metadata.json", "v1", "v2"])
            self.assertEqual(api.names(m), ["v2"])
        finally:
            self.assertEqual(d.stop(), 0)
            subprocess.run(["rm", "-rf", "--one-file-system", d.dir])

    def test_offline_gc(self):
        d = start(token_daemon())
        try:
            api, m = Api(d), "lc-off"
            self.addCleanup(api.s.close)
            api.model(m, ["v1", "v2", "v3"])
            api.call("PUT", f"/v1/models/{m}/policy", json={"retention": {"keep_last": 1}})
            api.model("lc-off-none", ["v1"])
            self.assertEqual(d.stop(), 0)
            p = subprocess.run([MODELFS, "gc", d.store, "--dry-run"], capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("would remove", p.stdout)
            p = subprocess.run([MODELFS, "gc", d.store, "--json"], capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            r = json.loads(p.stdout)
            self.assertEqual([x["version"] for x in r["removed"]], ["v2", "v1"])
            self.assertFalse(os.path.exists(f"{d.store}/{m}/v1"))
            self.assertEqual(fsck(d).returncode, 0, fsck(d).stdout)
            ev = db_rows(d, "SELECT channel, actor FROM events WHERE model = ? AND "
                            "kind = 'version.delete'", (m,))
            self.assertEqual(ev, [("cli", "gc"), ("cli", "gc")])
        finally:
            d.stop()
            subprocess.run(["rm", "-rf", "--one-file-system", d.dir])

    def test_gc_interval(self):
        d = start(token_daemon(extra=["--gc-interval", "1"]))
        try:
            api, m = Api(d), "lc-tick"
            self.addCleanup(api.s.close)
            api.model(m, ["v1", "v2"])
            api.call("PUT", f"/v1/models/{m}/policy", json={"retention": {"keep_last": 1}})
            wait_for(lambda: api.names(m) == ["v2"], 10, "the daemon's gc")
            ev = db_rows(d, "SELECT channel, actor FROM events WHERE model = ? AND "
                            "kind = 'version.delete'", (m,))
            self.assertEqual(ev, [("gc", "retention")])
        finally:
            self.assertEqual(d.stop(), 0)
            subprocess.run(["rm", "-rf", "--one-file-system", d.dir])


class CrashTest(unittest.TestCase):
    """SIGKILL while a delete stalls at a point (MODELFS_TEST_DELETE_STALL), then a restart."""

    def crash(self, point, request, model, versions, setup=None):
        """Runs `request(api)` in a thread until the delete reaches `point`, kills the
        daemon, restarts it on the same store; returns the restarted daemon and its Api."""
        d = start(token_daemon(env={"MODELFS_TEST_DELETE_STALL": point}))
        self.addCleanup(subprocess.run, ["rm", "-rf", "--one-file-system", d.dir])
        api = Api(d)
        self.addCleanup(api.s.close)
        api.model(model, versions)
        if setup:
            setup(api)
        t = threading.Thread(target=lambda: self.swallow(request, api), daemon=True)
        t.start()
        wait_for(lambda: trash(d), 20, f"the delete to reach {point}")
        if point == "delete.committed":
            wait_for(lambda: db_rows(d, "SELECT 1 FROM events WHERE model = ? AND kind = "
                                        "'version.delete'", (model,)), 20, "the commit")
        d.kill9()
        self.assertTrue(trash(d))  # the kill came with the directory set aside
        d2 = start(token_daemon(store=d.store))
        self.addCleanup(subprocess.run, ["rm", "-rf", "--one-file-system", d2.dir])
        self.addCleanup(d2.stop)
        self.assertEqual(trash(d2), [])
        api2 = Api(d2)
        self.addCleanup(api2.s.close)
        return d2, api2

    @staticmethod
    def swallow(fn, api):
        try:
            fn(api)
        except Exception:
            pass  # the daemon dies under it

    def agree(self, d, api, model, present, gone):
        """db, volume and mount agree; fsck clean."""
        for v in present:
            r = api.call("GET", f"/v1/models/{model}/versions/{v}")
            self.assertEqual(r.json()["state"], "sealed")
            with open(f"{d.store}/{model}/{v}/model.pkl") as f:
                self.assertEqual(f.read(), f"{model} {v}")
            with open(f"{d.mnt}/{model}/{v}/model.pkl") as f:
                self.assertEqual(f.read(), f"{model} {v}")
            r = api.call("POST", f"/v1/models/{model}/versions/{v}/verify")
            self.assertTrue(r.json()["ok"])
        for v in gone:
            api.call("GET", f"/v1/models/{model}/versions/{v}", 404)
            self.assertFalse(os.path.exists(f"{d.store}/{model}/{v}"))
        p = subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_kill_before_commit_keeps_version(self):
        d, api = self.crash("delete.moved", lambda a: a.call(
            "DELETE", "/v1/models/cr-a/versions/v1", None, json={"reason": "x"}),
            "cr-a", ["v1", "v2"])
        self.agree(d, api, "cr-a", ["v1", "v2"], [])
        api.call("DELETE", "/v1/models/cr-a/versions/v1", json={"reason": "again"})
        self.agree(d, api, "cr-a", ["v2"], ["v1"])

    def test_kill_after_commit_finishes_delete(self):
        d, api = self.crash("delete.committed", lambda a: a.call(
            "DELETE", "/v1/models/cr-b/versions/v1", None, json={"reason": "x"}),
            "cr-b", ["v1", "v2"])
        self.agree(d, api, "cr-b", ["v2"], ["v1"])

    def test_kill_in_gc(self):
        def policy(a):
            a.call("PUT", "/v1/models/cr-c/policy", json={"retention": {"keep_last": 1}})

        d, api = self.crash("delete.moved", lambda a: a.call("POST", "/v1/gc", None, json={}),
                            "cr-c", ["v1", "v2", "v3"], policy)
        # The first version gc took was put back whole; the rest were never touched.
        self.agree(d, api, "cr-c", ["v1", "v2", "v3"], [])
        r = api.call("POST", "/v1/gc", json={}).json()
        self.assertEqual([x["version"] for x in r["removed"]], ["v2", "v1"])
        self.agree(d, api, "cr-c", ["v3"], ["v1", "v2"])

    def test_kill_in_gc_after_commit(self):
        def policy(a):
            a.call("PUT", "/v1/models/cr-d/policy", json={"retention": {"keep_last": 1}})

        d, api = self.crash("delete.committed",
                            lambda a: a.call("POST", "/v1/gc", None, json={}),
                            "cr-d", ["v1", "v2", "v3"], policy)
        self.agree(d, api, "cr-d", ["v1", "v3"], ["v2"])

    def test_kill_in_model_delete(self):
        d, api = self.crash("delete.committed", lambda a: a.call(
            "DELETE", "/v1/models/cr-e", None, json={"reason": "x"}), "cr-e", ["v1", "v2"])
        api.call("GET", "/v1/models/cr-e", 404)
        self.assertFalse(os.path.exists(f"{d.store}/cr-e"))
        self.assertNotIn("cr-e", os.listdir(d.mnt))
        p = subprocess.run([MODELFS, "fsck", d.store], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
