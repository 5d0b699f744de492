# SPDX-License-Identifier: Apache-2.0
"""Who may do what, through both doors: the mount (as other uids, with setpriv and
forked children that drop to them) and HTTP (tokens of each role, and none).

usage: test_authority.py /path/to/modelfs

The daemon runs as root with allow_other and default_permissions (fs/mount.c), so the
kernel checks file modes for each uid and the registry (registry/authz.c) decides the
rest; HTTP roles ask the same decision. The table test runs every operation as admin,
writer, reader, anonymous, the draft's owner and another user through both doors and
checks that the two agree.
"""
import errno
import json
import os
import subprocess
import sys
import tempfile
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon  # noqa: E402

MODELFS = None

ADMIN_GID = 3000
WRITERS_GID = 2500
# Mount identities: (uid, gid, supplementary groups).
ROOT = (0, 0, [])
OWNER = (2001, 2001, [WRITERS_GID])
OTHER = (2003, 2003, [])
NOBODY = (65534, 65534, [])
ADMIN_USER = (3001, 3001, [ADMIN_GID, WRITERS_GID])

SECRETS = {
    "ops-admin": ("admin", "admin-secret-0123456789abcdef"),
    "pipeline": ("writer", "writer-secret-0123456789abcdef"),
    "alice": ("writer", "alice-secret-0123456789abcdef"),
    "viewer": ("reader", "reader-secret-0123456789abcdef"),
    "bob": ("reader", "bob-secret-0123456789abcdef-x"),
}

PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.93}}


def as_user(user, fn):
    """Runs fn() in a forked child with the user's uid, gid and groups; returns the
    errno it raised (0 when it returned)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            uid, gid, groups = user
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            fn()
        except OSError as e:
            code = e.errno or 255
        except BaseException:  # noqa: BLE001 - any other failure is reported as 254
            code = 254
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def sh(user, *args):
    """A command as `user` through setpriv; returns the CompletedProcess."""
    uid, gid, groups = user
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}",
           f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def write_file(path, data, mode=None):
    with open(path, "w") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def read_file(path):
    with open(path) as f:
        return f.read()


def write_record(path, record):
    f = open(path, "w")
    f.write(json.dumps(record))
    f.close()


class Served:
    """A daemon with a mount, tokens and (optionally) an admin group."""

    def __init__(self, extra=()):
        self.d = Daemon(MODELFS, extra=list(extra))
        self.tokens = os.path.join(self.d.dir, "tokens")
        with open(self.tokens, "w") as f:
            for name, (role, secret) in SECRETS.items():
                f.write(f"{name} {role} {secret}\n")
        os.chmod(self.tokens, 0o600)
        self.d.extra += ["--token-file", self.tokens]
        # The store's root: the writers group may make models there.
        os.chown(self.d.store, 0, WRITERS_GID)
        os.chmod(self.d.store, 0o775)
        self.d.start()
        self.mnt = self.d.mnt
        self.url = f"http://127.0.0.1:{self.d.port}"

    def http(self, method, path, who=None, **kw):
        headers = kw.pop("headers", {})
        if who:
            headers["Authorization"] = f"Bearer {SECRETS[who][1]}"
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def model(self, name):
        """A model made by root in the mount, writable by the writers group."""
        m = f"{self.mnt}/{name}"
        os.mkdir(m)
        os.chown(m, 0, WRITERS_GID)
        os.chmod(m, 0o2775)
        return m

    def draft(self, name, version, owner=OWNER, private=True, record=PASSED):
        """A draft made by `owner` in the mount: model.pkl, metadata, 0700/0600 if private."""
        m = f"{self.mnt}/{name}"

        def make():
            os.mkdir(f"{m}/{version}")
            write_file(f"{m}/{version}/model.pkl", f"{name} {version} weights",
                       0o600 if private else 0o644)
            if private:
                os.chmod(f"{m}/{version}", 0o700)
        rc = as_user(owner, make)
        assert rc == 0, f"making {name}/{version} as {owner}: errno {rc}"
        if record is not None:
            r = self.http("PATCH", f"/v1/models/{name}/versions/{version}/metadata", "ops-admin",
                          json=record)
            assert r.status_code == 200, r.text

    def stop(self):
        rc = self.d.stop()
        self.d.cleanup()
        return rc


class DefectTest(unittest.TestCase):
    """Each of issue 11's authority defects, reproduced as the hostile user did."""

    @classmethod
    def setUpClass(cls):
        cls.s = Served(["--admin-group", str(ADMIN_GID)])

    @classmethod
    def tearDownClass(cls):
        assert cls.s.stop() == 0

    def test_admin_group_without_tokens_is_refused(self):
        # Defect 1: the mount limited current to the group while anonymous HTTP promoted.
        d = Daemon(MODELFS, extra=["--admin-group", str(ADMIN_GID)])
        try:
            with self.assertRaises(RuntimeError) as e:
                d.start(timeout=10)
            self.assertIn("--token-file", str(e.exception))
            p = subprocess.run([MODELFS, "serve", "--store", d.store, "--admin-group", "3000",
                                "--check-config"], capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("--token-file", p.stderr)
        finally:
            d.cleanup()

    def test_admin_group_both_doors(self):
        # With tokens the admin group and the admin role are the only ways to current.
        s = self.s
        m = s.model("gated")
        s.draft("gated", "v1", private=False)
        self.assertEqual(sh(OWNER, "chmod", "a-w", f"{m}/v1").returncode, 0)
        p = sh(OTHER, "ln", "-sfn", "v1", f"{m}/current")
        self.assertIn("Permission denied", p.stderr)
        p = sh(OWNER, "ln", "-sfn", "v1", f"{m}/current")
        self.assertIn("Permission denied", p.stderr)
        self.assertEqual(s.http("POST", "/v1/models/gated/promote", json={"version": "v1"})
                         .status_code, 401)
        self.assertEqual(s.http("POST", "/v1/models/gated/promote", "pipeline",
                                json={"version": "v1"}).status_code, 403)
        self.assertFalse(os.path.lexists(f"{m}/current"))
        self.assertEqual(sh(ADMIN_USER, "ln", "-sfn", "v1", f"{m}/current").returncode, 0)
        self.assertEqual(os.readlink(f"{m}/current"), "v1")

    def test_private_draft_file_over_http(self):
        # Defect 2: a 0600 file in a 0700 draft was served to anyone over HTTP.
        s = self.s
        m = s.model("private")
        s.draft("private", "vd", record=None)
        path = "/v1/models/private/versions/vd/files/model.pkl"
        self.assertEqual(as_user(OTHER, lambda: read_file(f"{m}/vd/model.pkl")), errno.EACCES)
        self.assertEqual(as_user(OWNER, lambda: read_file(f"{m}/vd/model.pkl")), 0)
        self.assertEqual(s.http("GET", path).status_code, 403)
        self.assertEqual(s.http("GET", path, "viewer").status_code, 403)
        r = s.http("GET", path, "pipeline")
        self.assertEqual((r.status_code, r.text), (200, "private vd weights"))
        self.assertEqual(s.http("GET", path, "ops-admin").status_code, 200)
        # A draft file readable by everyone: any local user, and any writer token.
        s.draft("private", "vo", private=False, record=None)
        self.assertEqual(as_user(OTHER, lambda: read_file(f"{m}/vo/model.pkl")), 0)
        path = "/v1/models/private/versions/vo/files/model.pkl"
        self.assertEqual(s.http("GET", path).status_code, 403)
        self.assertEqual(s.http("GET", path, "pipeline").status_code, 200)

    def test_private_draft_file_without_tokens(self):
        # Without a token file anonymous is admin, but a draft's files only as "others".
        d = Daemon(MODELFS)
        try:
            os.chmod(d.store, 0o777)  # the store's root: anyone may make a model
            d.start()

            def make():
                os.mkdir(f"{d.mnt}/notok")
                for v, mode in (("vd", 0o600), ("vo", 0o644)):
                    os.mkdir(f"{d.mnt}/notok/{v}")
                    write_file(f"{d.mnt}/notok/{v}/model.pkl", v, mode)
            self.assertEqual(as_user(OWNER, make), 0)
            url = f"http://127.0.0.1:{d.port}/v1/models/notok/versions"
            self.assertEqual(requests.get(f"{url}/vd/files/model.pkl", timeout=30).status_code, 403)
            r = requests.get(f"{url}/vo/files/model.pkl", timeout=30)
            self.assertEqual((r.status_code, r.text), (200, "vo"))
        finally:
            d.stop()
            d.cleanup()

    def test_alias_does_not_seal_others_draft(self):
        # Defect 3: `ln -s vb staging` sealed another user's draft, with them as actor.
        s = self.s
        m = s.model("sealing")
        os.chmod(m, 0o2777)  # the other user may make links here, not seal others' drafts
        s.draft("sealing", "vb", private=False)
        self.assertEqual(sh(OTHER, "chmod", "a-w", f"{m}/vb").returncode, 1)
        p = sh(OTHER, "ln", "-s", "vb", f"{m}/staging")
        self.assertIn("Permission denied", p.stderr)
        self.assertEqual(s.d.state("sealing", "vb"), "draft")
        self.assertEqual(s.d.events("sealing", "version.seal"), [])
        self.assertFalse(os.path.lexists(f"{m}/staging"))
        # A reader token may not either; the owner may.
        r = s.http("PUT", "/v1/models/sealing/aliases/staging", "viewer", json={"version": "vb"})
        self.assertEqual(r.status_code, 403)
        self.assertEqual(s.d.state("sealing", "vb"), "draft")
        self.assertEqual(sh(OWNER, "ln", "-s", "vb", f"{m}/staging").returncode, 0)
        self.assertEqual(s.d.state("sealing", "vb"), "sealed")
        ev = s.d.events("sealing", "version.seal")
        self.assertEqual([e["actor"].split(",pid")[0] for e in ev], ["uid=2001,gid=2001"])
        # A writer token seals by pointing an alias at a draft.
        s.draft("sealing", "vc", private=False)
        r = s.http("PUT", "/v1/models/sealing/aliases/staging", "pipeline", json={"version": "vc"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(s.d.state("sealing", "vc"), "sealed")


class PolicyTest(unittest.TestCase):
    """Defect 7: policies weakened silently."""

    @classmethod
    def setUpClass(cls):
        cls.s = Served()

    @classmethod
    def tearDownClass(cls):
        assert cls.s.stop() == 0

    def put(self, model, body, who="ops-admin"):
        return self.s.http("PUT", f"/v1/models/{model}/policy", who, json=body)

    def test_metrics_keep_the_default_gate(self):
        s = self.s
        self.assertEqual(s.http("POST", "/v1/models", "pipeline", json={"name": "pol"}).status_code, 201)
        r = self.put("pol", {"metrics": {"performance_metrics.accuracy": {"min": 0.85}}})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json(), {"validation_status": "passed",
                                    "metrics": {"performance_metrics.accuracy": {"min": 0.85}}})
        # A failed version with a good accuracy is still refused.
        v = s.http("POST", "/v1/models/pol/versions", "pipeline",
                   json={"metadata": {"validation_status": "failed",
                                      "performance_metrics": {"accuracy": 0.99}}}).json()["name"]
        r = s.http("POST", "/v1/models/pol/promote", "ops-admin", json={"version": v})
        self.assertEqual(r.status_code, 409, r.text)
        self.assertTrue(any("validation_status" in g
                            for g in r.json()["error"]["details"]["failed_gates"]))

    def test_removing_or_loosening_needs_force(self):
        s = self.s
        s.http("POST", "/v1/models", "pipeline", json={"name": "loose"})
        self.assertEqual(self.put("loose", {"metrics": {"performance_metrics.accuracy": {"min": 0.9}},
                                            "max_total_size": 1000}).status_code, 200)
        before = s.d.events("loose", "policy.set")
        # {} changes nothing; it removes nothing either.
        r = self.put("loose", {})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["validation_status"], "passed")
        for change in ({"validation_status": None},
                       {"metrics": {"performance_metrics.accuracy": None}},
                       {"metrics": {"performance_metrics.accuracy": {"min": 0.5}}},
                       {"max_total_size": 5000},
                       {"validation_status": None, "force": True}):
            r = self.put("loose", change)
            self.assertIn(r.status_code, (409, 422), (change, r.text))
        self.assertEqual(s.d.events("loose", "policy.set"), before)
        # A writer may not force; an admin with a reason may, and it is recorded.
        self.assertEqual(self.put("loose", {"validation_status": None, "force": True, "reason": "x"},
                                  who="pipeline").status_code, 403)
        r = self.put("loose", {"validation_status": None, "force": True,
                               "reason": "validation moves to the pipeline"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertNotIn("validation_status", r.json())
        ev = s.http("GET", "/v1/models/loose/history?kind=policy.set", "viewer").json()["events"]
        self.assertEqual(ev[-1]["detail"]["force"], True)
        self.assertEqual(ev[-1]["detail"]["reason"], "validation moves to the pipeline")
        self.assertEqual(ev[-1]["detail"]["loosened"], ['validation_status == "passed" removed'])
        # Tightening needs nothing.
        self.assertEqual(self.put("loose", {"max_total_size": 500}).status_code, 200)

    def test_unknown_metric_paths(self):
        s = self.s
        s.http("POST", "/v1/models", "pipeline", json={"name": "typo"})
        for path in ("performance_metrics.acuracy", "performance_metric.accuracy", "accuracy",
                     "training_data.rows"):
            r = self.put("typo", {"metrics": {path: {"min": 0.85}}})
            self.assertEqual(r.status_code, 422, (path, r.text))
            self.assertIn(path, r.json()["error"]["message"])
        self.assertIn("performance_metrics.accuracy", r.json()["error"]["message"])
        for path in ("performance_metrics.f1_score", "validation_metrics.latency_ms_p50",
                     "production_metrics.accuracy"):
            self.assertEqual(self.put("typo", {"metrics": {path: {"min": 0}}}).status_code, 200, path)


class RollbackCanaryTest(unittest.TestCase):
    """Defect 8 (rollback toggled; a deleted canary came back at 0 %) and the canary
    percent's compare-and-swap (defect 6)."""

    @classmethod
    def setUpClass(cls):
        cls.s = Served()

    @classmethod
    def tearDownClass(cls):
        assert cls.s.stop() == 0

    def api(self, method, path, body=None, who="ops-admin", expect=200):
        r = self.s.http(method, path, who, json=body)
        self.assertEqual(r.status_code, expect, f"{method} {path}: {r.text}")
        return r.json() if r.text else None

    def sealed(self, model, n):
        self.api("POST", "/v1/models", {"name": model}, "pipeline", 201)
        for i in range(1, n + 1):
            self.api("POST", f"/v1/models/{model}/versions", {"name": f"v{i}", "metadata": PASSED},
                     "pipeline", 201)
            r = self.s.http("PUT", f"/v1/models/{model}/versions/v{i}/files/model.pkl", "pipeline",
                            data=b"weights")
            self.assertEqual(r.status_code, 201, r.text)
            self.api("POST", f"/v1/models/{model}/versions/v{i}/seal", None, "pipeline")

    def test_rollback_walks_back(self):
        self.sealed("rb", 3)
        for v in ("v1", "v2", "v3"):
            self.api("POST", "/v1/models/rb/promote", {"version": v})
        self.assertEqual(self.api("POST", "/v1/models/rb/rollback", {})["version"], "v2")
        self.assertEqual(self.api("POST", "/v1/models/rb/rollback", {})["version"], "v1")
        self.api("POST", "/v1/models/rb/rollback", {}, expect=404)
        self.assertEqual(os.readlink(f"{self.s.mnt}/rb/current"), "v1")
        # Forward again is a promote, and gated: v2 failed validation meanwhile.
        self.api("PATCH", "/v1/models/rb/versions/v2/metadata", {"validation_status": "failed"},
                 "pipeline")
        self.api("POST", "/v1/models/rb/promote", {"version": "v2"}, expect=409)
        self.api("POST", "/v1/models/rb/promote", {"version": "v3"})
        self.assertEqual(self.api("POST", "/v1/models/rb/rollback", {})["version"], "v1")

    def test_rollback_restores_a_removed_canary(self):
        self.sealed("rc", 2)
        self.api("POST", "/v1/models/rc/promote", {"version": "v1"})
        self.api("PUT", "/v1/models/rc/canary", {"version": "v2", "percent": 30})
        self.api("DELETE", "/v1/models/rc/canary", expect=204)
        a = self.api("POST", "/v1/models/rc/rollback", {"alias": "canary"})
        self.assertEqual((a["version"], a["percent"]), ("v2", 30))
        isvc = self.api("GET", "/v1/models/rc/inferenceservice", who="viewer")
        self.assertEqual(isvc["spec"]["predictor"]["canaryTrafficPercent"], 30)
        # The mount's rm and HTTP's DELETE are one change.
        self.assertEqual(sh(ROOT, "rm", f"{self.s.mnt}/rc/canary").returncode, 0)
        kinds = [(e["kind"], e["channel"]) for e in self.s.d.events("rc") if e["alias"] == "canary"]
        self.assertEqual(kinds[-3:], [("alias.delete", "api"), ("alias.set", "api"),
                                      ("alias.delete", "fs")])
        self.api("PUT", "/v1/models/rc/canary", {"percent": 50}, expect=404)
        self.assertFalse(os.path.lexists(f"{self.s.mnt}/rc/canary"))

    def test_percent_change_is_compare_and_swap(self):
        import threading
        self.sealed("cas", 2)
        self.api("POST", "/v1/models/cas/promote", {"version": "v1"})
        self.api("PUT", "/v1/models/cas/canary", {"version": "v2", "percent": 50})
        stop = threading.Event()

        def mover():
            i = 0
            while not stop.is_set():
                i += 1
                if i % 2:
                    self.s.http("DELETE", "/v1/models/cas/canary", "ops-admin")
                else:
                    self.s.http("PUT", "/v1/models/cas/canary", "ops-admin",
                                json={"version": ("v1", "v2")[i % 4 // 2], "percent": 50})
        t = threading.Thread(target=mover)
        t.start()
        try:
            for i in range(300):
                self.s.http("PUT", "/v1/models/cas/canary", "ops-admin",
                            json={"percent": 1 + 2 * (i % 20)})
        finally:
            stop.set()
            t.join()
        events = self.api("GET", "/v1/models/cas/history?kind=alias.", who="viewer")["events"]
        percent_only = [e for e in events if e["alias"] == "canary" and e["kind"] == "alias.set"
                        and (e.get("detail") or {}).get("percent", 50) % 2 == 1]
        self.assertTrue(percent_only)
        for e in percent_only:
            self.assertEqual((e["before"], e["after"]), (e["after"], e["after"]), e)


class PendingLinkTest(unittest.TestCase):
    """Defect 4: temporary-name links were unbounded and could shadow a version."""

    @classmethod
    def setUpClass(cls):
        cls.s = Served()

    @classmethod
    def tearDownClass(cls):
        assert cls.s.stop() == 0

    def test_capped_per_user_and_model(self):
        s = self.s
        m = s.model("pend")
        os.chmod(m, 0o2777)
        s.draft("pend", "v1", private=False)
        sh(ROOT, "chmod", "a-w", f"{m}/v1")
        os.symlink("v1", f"{m}/staging")  # a new alias needs no temporary name

        def make(prefix, count):
            def fn():
                made = 0
                for i in range(count):
                    try:
                        os.symlink("v1", f"{m}/Cu{prefix}{i:04d}")
                        made += 1
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                with open(f"/tmp/modelfs-pend-{os.getuid()}", "w") as f:
                    f.write(str(made))
            return fn

        def made(user):
            path = f"/tmp/modelfs-pend-{user[0]}"
            with open(path) as f:
                n = int(f.read())
            os.unlink(path)
            return n
        self.assertEqual(as_user(OTHER, make("AA", 200)), 0)
        self.assertEqual(made(OTHER), 64)
        # Another user still may, up to the model's cap.
        for i, user in enumerate([OWNER, NOBODY, ADMIN_USER, (2010, 2010, [])]):
            self.assertEqual(as_user(user, make(f"B{i}", 64)), 0)
            self.assertEqual(made(user), 64 if i < 3 else 0)
        # Other models are not held up, and a rename of one still promotes.
        p = sh(ROOT, "ln", "-sfn", "v1", f"{m}/staging")  # replacing one does: the model is full
        self.assertIn("No space left", p.stderr)
        n = s.model("other")
        s.draft("other", "v1", private=False)
        self.assertEqual(sh(ROOT, "ln", "-sfn", "v1", f"{n}/staging").returncode, 0)
        self.assertEqual(os.readlink(f"{n}/staging"), "v1")
        # Removing them frees the room.
        for name in os.listdir(m):
            if name.startswith("Cu"):
                os.unlink(f"{m}/{name}")
        self.assertEqual(sh(ROOT, "ln", "-sfn", "v1", f"{m}/staging").returncode, 0)

    def test_never_shadows_a_version(self):
        s = self.s
        m = s.model("shadow")
        s.draft("shadow", "v1", private=False)
        sh(ROOT, "chmod", "a-w", f"{m}/v1")
        os.symlink("v1", f"{m}/CuZZZZZZ")
        self.assertEqual(os.readlink(f"{m}/CuZZZZZZ"), "v1")
        r = s.http("POST", "/v1/models/shadow/versions", "pipeline", json={"name": "CuZZZZZZ"})
        self.assertEqual(r.status_code, 201, r.text)
        r = s.http("PUT", "/v1/models/shadow/versions/CuZZZZZZ/files/model.pkl", "pipeline",
                   data=b"the new version")
        self.assertEqual(r.status_code, 201, r.text)
        names = os.listdir(m)
        self.assertEqual(names.count("CuZZZZZZ"), 1, names)
        self.assertTrue(os.path.isdir(f"{m}/CuZZZZZZ"))
        self.assertEqual(read_file(f"{m}/CuZZZZZZ/model.pkl"), "the new version")
        # A name that exists cannot be made a pending link.
        with self.assertRaises(FileExistsError):
            os.symlink("v1", f"{m}/CuZZZZZZ")


# ---- both doors, every operation, every actor ---------------------------------------

# Each actor as HTTP sees it (a token name, or None) and as the mount sees it (a uid).
# A writer token stands for what the draft's owner may do in the mount; the admin token
# for root; reader tokens and no token for users who neither own the draft nor admin.
OTHER2 = (2004, 2004, [])
ACTORS = {
    "admin": ("ops-admin", ROOT),
    "writer": ("pipeline", OWNER),
    "reader": ("viewer", OTHER),
    "anonymous": (None, NOBODY),
    "owner": ("alice", OWNER),
    "other": ("bob", OTHER2),
}
EVERYONE = set(ACTORS)
DRAFT_PEOPLE = {"admin", "writer", "owner"}
ADMINS = {"admin"}


def ln_sfn(target, path):
    """What coreutils' `ln -sfn` does over an existing name: a temporary link, renamed."""
    tmp = os.path.join(os.path.dirname(path), "CuTmp" + f"{os.getpid() % 1000:03d}")
    os.symlink(target, tmp)
    try:
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# name: (who may, mount action (m = the model's directory in the mount) or None when the
#        mount has no such action, HTTP (method, path below /v1/models/<model>, body))
OPERATIONS = {
    "create model": (DRAFT_PEOPLE, lambda m: os.mkdir(m + "-new"),
                     ("POST", "/v1/models", {"name": "{model}-new"})),
    "create version": (DRAFT_PEOPLE, lambda m: os.mkdir(f"{m}/vnew"),
                       ("POST", "/versions", {"name": "vnew"})),
    "write draft file": (DRAFT_PEOPLE, lambda m: write_file(f"{m}/vd/extra.bin", "x"),
                         ("PUT", "/versions/vd/files/extra.bin", b"x")),
    "read draft file": (DRAFT_PEOPLE, lambda m: read_file(f"{m}/vd/model.pkl"),
                        ("GET", "/versions/vd/files/model.pkl", None)),
    "read sealed file": (EVERYONE, lambda m: read_file(f"{m}/v1/model.pkl"),
                         ("GET", "/versions/v1/files/model.pkl", None)),
    "patch metadata": (DRAFT_PEOPLE,
                       lambda m: write_record(f"{m}/vd/metadata.json", dict(PASSED, notes="x")),
                       ("PATCH", "/versions/vd/metadata", {"notes": "x"})),
    "seal": (DRAFT_PEOPLE, lambda m: os.chmod(f"{m}/vd", 0o500),
             ("POST", "/versions/vd/seal", None)),
    "seal by alias": (DRAFT_PEOPLE, lambda m: os.symlink("vd", f"{m}/review"),
                      ("PUT", "/aliases/review", {"version": "vd"})),
    "set free alias": (DRAFT_PEOPLE, lambda m: ln_sfn("v2", f"{m}/staging"),
                       ("PUT", "/aliases/staging", {"version": "v2"})),
    "delete free alias": (DRAFT_PEOPLE, lambda m: os.unlink(f"{m}/staging"),
                          ("DELETE", "/aliases/staging", None)),
    "promote": (ADMINS, lambda m: ln_sfn("v2", f"{m}/current"),
                ("POST", "/promote", {"version": "v2"})),
    "set canary": (ADMINS, lambda m: ln_sfn("v1", f"{m}/canary"),
                   ("PUT", "/canary", {"version": "v1"})),
    "delete canary": (ADMINS, lambda m: os.unlink(f"{m}/canary"), ("DELETE", "/canary", None)),
    "canary percent": (ADMINS, None, ("PUT", "/canary", {"percent": 40})),
    "rollback": (ADMINS, None, ("POST", "/rollback", {})),
    "policy put": (ADMINS, None, ("PUT", "/policy", {"max_total_size": 1000000})),
}


class BothDoorsTest(unittest.TestCase):
    """Every operation as every actor through the mount and over HTTP: the two doors agree
    (both allow or both refuse, and what they allow records the same event kinds)."""

    @classmethod
    def setUpClass(cls):
        cls.s = Served(["--admin-group", str(ADMIN_GID)])
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        assert cls.s.stop() == 0

    def admin(self, method, path, body=None, data=None, expect=(200, 201, 204)):
        r = self.s.http(method, path, "ops-admin", json=body, data=data)
        self.assertIn(r.status_code, expect, f"{method} {path}: {r.text}")
        return r

    def fixture(self):
        """A model with sealed v1 and v2, current v1 (after v2), canary v2 at 10 %, staging
        v1, and the owner's private draft vd (0700, model.pkl 0600)."""
        BothDoorsTest.n += 1
        name = f"t{BothDoorsTest.n}"
        self.admin("POST", "/v1/models", {"name": name})
        m = f"{self.s.mnt}/{name}"
        os.chown(m, 0, WRITERS_GID)
        os.chmod(m, 0o2775)
        base = f"/v1/models/{name}"
        for v in ("v1", "v2"):
            self.admin("POST", f"{base}/versions", {"name": v, "metadata": PASSED})
            self.admin("PUT", f"{base}/versions/{v}/files/model.pkl", data=f"{v} weights".encode())
            self.admin("POST", f"{base}/versions/{v}/seal")
        self.admin("POST", f"{base}/promote", {"version": "v2"})
        self.admin("POST", f"{base}/promote", {"version": "v1"})
        self.admin("PUT", f"{base}/canary", {"version": "v2", "percent": 10})
        self.admin("PUT", f"{base}/aliases/staging", {"version": "v1"})
        self.s.draft(name, "vd")
        return name, m

    def events_after(self, name, n):
        # Writing metadata.json replaces the record, HTTP merge-patches it: one kind of change.
        # Refusals are compared by outcome, not by record: one the kernel decides from the
        # mode bits (default_permissions) never reaches the daemon, so only HTTP's is an event.
        same = {"metadata.set": "metadata.change", "metadata.patch": "metadata.change"}
        return [same.get(e["kind"], e["kind"]) for e in self.s.d.events(name)[n:]
                if e["kind"] != "refused"]

    def reuse(self, door):
        """The fixture of this door, made anew once something changed it (a refused
        operation changes nothing, which the events show)."""
        if not self.fixtures.get(door):
            self.fixtures[door] = self.fixture()
        return self.fixtures[door]

    def done(self, door, events):
        if events:
            self.fixtures[door] = None

    def through_mount(self, op, actor):
        _, action, _ = OPERATIONS[op]
        name, m = self.reuse("fs")
        n = len(self.s.d.events(name))
        rc = as_user(ACTORS[actor][1], lambda: action(m))
        events = self.events_after(name, n)
        self.done("fs", events or rc == 0)
        return rc, events

    def over_http(self, op, actor):
        _, _, (method, path, body) = OPERATIONS[op]
        name, _ = self.reuse("api")
        n = len(self.s.d.events(name))
        if path.startswith("/v1/"):
            url = path
            body = json.loads(json.dumps(body).replace("{model}", name))
        else:
            url = f"/v1/models/{name}{path}"
        kw = {"data": body} if isinstance(body, bytes) else {"json": body}
        r = self.s.http(method, url, ACTORS[actor][0], **kw)
        events = self.events_after(name, n)
        self.done("api", events or 200 <= r.status_code < 300)
        return r.status_code, events

    def test_every_operation(self):
        rows = []
        failures = []
        for op, (allowed, action, _) in OPERATIONS.items():
            self.fixtures = {}
            for actor in ACTORS:
                status, http_events = self.over_http(op, actor)
                http_ok = 200 <= status < 300
                want = actor in allowed
                line = f"{op:18} {actor:9} http {status}"
                if http_ok != want:
                    failures.append(f"{op} as {actor}: HTTP {status}, expected "
                                    f"{'allowed' if want else 'refused'}")
                if action is not None:
                    rc, fs_events = self.through_mount(op, actor)
                    fs_ok = rc == 0
                    line += f"  mount {errno.errorcode.get(rc, rc) if rc else 'ok'}"
                    if fs_ok != http_ok:
                        failures.append(f"{op} as {actor}: the doors disagree (mount "
                                        f"{errno.errorcode.get(rc, rc) if rc else 'ok'}, HTTP {status})")
                    elif fs_ok and fs_events != http_events:
                        failures.append(f"{op} as {actor}: events differ (mount {fs_events}, "
                                        f"HTTP {http_events})")
                    elif not fs_ok and fs_events != http_events:
                        failures.append(f"{op} as {actor}: refusals recorded differently "
                                        f"(mount {fs_events}, HTTP {http_events})")
                    elif not fs_ok and rc not in (errno.EACCES, errno.EPERM):
                        failures.append(f"{op} as {actor}: the mount refused with "
                                        f"{errno.errorcode.get(rc, rc)}, not EACCES/EPERM")
                if not http_ok and status not in (401, 403):
                    failures.append(f"{op} as {actor}: HTTP refused with {status}, not 401/403")
                rows.append(line)
        print("\n" + "\n".join(rows), file=sys.stderr)
        self.assertEqual(failures, [])


def main():
    global MODELFS
    MODELFS = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        print("needs root (other uids through the mount)", file=sys.stderr)
        sys.exit(77)
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
