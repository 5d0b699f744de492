# SPDX-License-Identifier: Apache-2.0
"""Reasons at the shell: every refusal, through the mount and over HTTP, is recorded
once (GET /v1/refusals, an event of kind "refused" in the model's history, a log line)
and `modelfs why` prints the rule that refused. The rows are the README's
troubleshooting table, performed for real against one daemon.

usage: test_why.py /path/to/modelfs
"""
import errno
import json
import os
import subprocess
import sys
import unittest

import requests

from fsutil import Daemon

MODELFS = None
TOKENS = {"release": ("admin", "admin-secret-0123456789"),
          "pipeline": ("writer", "writer-secret-0123456789"),
          "dashboard": ("reader", "reader-secret-0123456789"),
          "flood": ("writer", "flood-secret-0123456789")}
PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.91}}
FAILED = {"validation_status": "failed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.61}}
POLICY = {"validation_status": "passed", "metrics": {"performance_metrics.accuracy": {"min": 0.85}}}


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def write_bad_record(path):
    with open(path, "w") as f:
        f.write("{not json")


class WhyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS)
        tokens = os.path.join(cls.d.dir, "tokens")
        with open(tokens, "w") as f:
            for name, (role, secret) in TOKENS.items():
                f.write(f"{name} {role} {secret}\n")
        os.chmod(tokens, 0o600)
        cls.files = {}
        for name, (_, secret) in TOKENS.items():
            path = os.path.join(cls.d.dir, f"{name}.token")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret + "\n")
            cls.files[name] = path
        cls.d.extra += ["--token-file", tokens]
        cls.d.start()
        cls.url = f"http://127.0.0.1:{cls.d.port}"
        cls.m = os.path.join(cls.d.mnt, "fraud")
        admin = cls.session("release")
        base = cls.url + "/v1/models"

        def ok(r, status):
            if r.status_code != status:
                raise AssertionError(f"{r.request.method} {r.url}: {r.status_code} {r.text}")

        ok(admin.post(base, json={"name": "fraud"}), 201)
        ok(admin.put(f"{base}/fraud/policy", json=POLICY), 200)
        for name, meta, seal in (("v1", PASSED, True), ("v2", FAILED, True), ("v3", PASSED, False),
                                 ("v4", PASSED, False)):
            ok(admin.post(f"{base}/fraud/versions", json={"name": name, "metadata": meta}), 201)
            ok(admin.put(f"{base}/fraud/versions/{name}/files/model.pkl", data=name), 201)
            if seal:
                ok(admin.post(f"{base}/fraud/versions/{name}/seal"), 200)
        ok(admin.post(f"{base}/fraud/promote", json={"version": "v1"}), 200)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", cls.d.dir], check=False)
        assert rc == 0, rc

    @classmethod
    def session(cls, token):
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {TOKENS[token][1]}"
        return s

    def why(self, token, *args):
        p = subprocess.run([MODELFS, "why", "--url", self.url, "--token-file", self.files[token],
                            *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def newest(self, caller, **query):
        r = self.session(caller).get(self.url + "/v1/refusals", params=dict(query, limit=1))
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()["refusals"][0]

    def check(self, row, caller, want_rule, want_text, model="fraud", **query):
        """The newest refusal `token` can see is this row's, `why` names its rule and reason,
        and it is an event in the model's history."""
        ref = self.newest(caller, **query)
        self.assertEqual(ref["rule"], want_rule, f"{row}: {json.dumps(ref)}")
        self.assertIn(want_text, ref["message"] + " ".join(ref["failed_gates"]), row)
        out = self.why(caller, "--limit", "1")
        self.assertIn(f"rule:    {want_rule}", out, f"{row}:\n{out}")
        self.assertIn(want_text, out, f"{row}:\n{out}")
        self.assertIn("to do:", out, row)
        js = json.loads(self.why(caller, "--limit", "1", "--json"))
        self.assertEqual(js["refusals"][0]["id"], ref["id"], row)
        if model:
            ev = self.session("release").get(f"{self.url}/v1/models/{model}/history",
                                              params={"kind": "refused", "limit": 1000}).json()
            match = [e for e in ev["events"] if e["id"] == ref["event_id"]]
            self.assertEqual(len(match), 1, f"{row}: no event {ref['event_id']}")
            detail = match[0]["detail"]
            for k in ("op", "rule", "errno", "status", "code", "message", "failed_gates"):
                self.assertIn(k, detail, row)
            self.assertEqual(detail["rule"], want_rule, row)
        return ref, out

    def while_open(self, fn):
        """fn() while a file of draft v4 is open for writing through the mount."""
        fd = os.open(os.path.join(self.m, "v4", "model.pkl"), os.O_WRONLY)
        try:
            return fn()
        finally:
            os.close(fd)

    # ---- through the mount (the test runs as one uid; `why` finds them by uid) ----

    def test_mount_rows(self):
        m = self.m
        rows = [
            ("mkdir a bad model name", lambda: os.mkdir(os.path.join(self.d.mnt, "Bad_Name")),
             errno.EINVAL, "name", "model name 'Bad_Name'", None),
            ("ln -sfn to a version that fails the gates",
             lambda: subprocess.run(["ln", "-sfn", "v2", os.path.join(m, "current")], check=True,
                                    capture_output=True) and None,
             None, "gate", 'performance_metrics.accuracy >= 0.85 (is 0.61)', "fraud"),
            ("rm -r of the version current points at",
             lambda: os.unlink(os.path.join(m, "v1", "model.pkl")),
             errno.EBUSY, "aliased", "is the target of alias 'current'", "fraud"),
            ("write into a sealed version",
             lambda: open(os.path.join(m, "v2", "model.pkl"), "w").close(),
             errno.EROFS, "sealed", "fraud/v2 is sealed", "fraud"),
            ("bad JSON into metadata.json", lambda: write_bad_record(
                os.path.join(m, "v3", "metadata.json")),
             errno.EINVAL, "invalid", "metadata", "fraud"),
            ("rmdir of a draft with files", lambda: os.rmdir(os.path.join(m, "v3")),
             errno.ENOTEMPTY, "not_empty", "", "fraud"),
            ("a hard link", lambda: os.link(os.path.join(m, "v3", "model.pkl"),
                                            os.path.join(m, "v3", "copy.pkl")),
             errno.EPERM, "layout", "hard links are not supported", "fraud"),
            ("a second version named like an alias",
             lambda: os.mkdir(os.path.join(m, "canary")),
             errno.EINVAL, "name", "'canary' is an alias name", "fraud"),
            ("chmod a-w (seal) while a file in the draft is open for writing",
             lambda: self.while_open(lambda: os.chmod(os.path.join(m, "v4"), 0o555)),
             errno.EBUSY, "busy", "change(s) in progress", "fraud"),
        ]
        for row, act, want_errno, rule, text, model in rows:
            with self.subTest(row=row):
                if want_errno is None:
                    with self.assertRaises(subprocess.CalledProcessError):
                        act()
                else:
                    self.assertEqual(errno_of(act), want_errno, row)
                ref, _ = self.check(row, "dashboard", rule, text, model, uid=os.getuid())
                self.assertEqual((ref["channel"], ref["uid"], ref["status"]),
                                 ("fs", os.getuid(), None), row)
        # The gate row: the failed gates carry their actual values, once (not twice).
        refs = self.session("release").get(self.url + "/v1/refusals",
                                           params={"uid": os.getuid(), "limit": 100}).json()
        gates = [r for r in refs["refusals"] if r["rule"] == "gate" and r["channel"] == "fs"]
        self.assertEqual(len(gates), 1, json.dumps(gates))
        self.assertIn('validation_status == "passed" (is "failed")', gates[0]["failed_gates"])
        # And each is a log line of the daemon.
        log = self.d.read_log()
        self.assertIn("refused mkdir Bad_Name", log)
        self.assertIn("is the target of alias 'current'", log)

    # ---- over HTTP (`why` finds them by the caller's token) ----

    def test_mount_row_during_a_seal(self):
        """A change in a draft while it is being sealed: EBUSY, rule 'sealing'."""
        import threading
        row = "a change in a draft while it is being sealed"
        v = os.path.join(self.m, "v9")
        os.makedirs(os.path.join(v, "sub"))
        with open(os.path.join(v, "model.pkl"), "wb") as f:
            for _ in range(256):
                f.write(os.urandom(1 << 20))
        # chmod a-w seals: while it hashes 256 MiB every change is refused. The
        # kernel holds v9's own lock for the chmod, so the changes go one level
        # down (v9/sub), where nothing waits for it.
        sealer = threading.Thread(target=os.chmod, args=(v, 0o555))
        got, n = None, 0
        sealer.start()
        try:
            while got is None and sealer.is_alive():
                n += 1
                try:
                    os.mkdir(os.path.join(v, "sub", f"d{n}"))
                except OSError as e:
                    got = e.errno
        finally:
            sealer.join()
        self.assertEqual(got, errno.EBUSY, f"{row}: {got} after {n} tries")
        ref, _ = self.check(row, "dashboard", "sealing", "is being sealed", "fraud",
                            uid=os.getuid())
        self.assertEqual(ref["channel"], "fs")

    def test_http_rows(self):
        base = self.url + "/v1/models"
        rows = [
            ("a bad model name", "pipeline",
             lambda s: s.post(base, json={"name": "Bad_Name"}), 422, "name",
             "model name 'Bad_Name'", None),
            ("a model that exists", "pipeline",
             lambda s: s.post(base, json={"name": "fraud"}), 409, "name_taken", "fraud", None),
            ("promote a version that fails the gates", "release",
             lambda s: s.post(f"{base}/fraud/promote", json={"version": "v2"}), 409, "gate",
             'validation_status == "passed" (is "failed")', "fraud"),
            ("promote without the admin role", "pipeline",
             lambda s: s.post(f"{base}/fraud/promote", json={"version": "v1"}), 403,
             "authority", "needs admin", "fraud"),
            ("an alias changed since it was read", "pipeline",
             lambda s: s.put(f"{base}/fraud/aliases/staging",
                             json={"version": "v1", "expected_version": "v9"}), 409,
             "compare_and_swap", "", "fraud"),
            ("upload into a sealed version", "pipeline",
             lambda s: s.put(f"{base}/fraud/versions/v1/files/x.pkl", data=b"x"), 409,
             "sealed", "sealed", "fraud"),
            ("seal while a file in the draft is open for writing", "pipeline",
             lambda s: self.while_open(lambda: s.post(f"{base}/fraud/versions/v4/seal")), 409,
             "busy", "change(s) in progress", "fraud"),
            ("an unknown query parameter", "pipeline",
             lambda s: s.get(f"{base}/fraud/history", params={"knd": "x"}), 400, "request",
             "unknown query parameter 'knd'", "fraud"),
        ]
        for row, token, act, status, rule, text, model in rows:
            with self.subTest(row=row):
                r = act(self.session(token))
                self.assertEqual(r.status_code, status, f"{row}: {r.text}")
                ref, _ = self.check(row, token, rule, text, model, token="me")
                self.assertEqual((ref["channel"], ref["token"], ref["status"], ref["code"]),
                                 ("api", token, status, r.json()["error"]["code"]), row)
                if rule == "gate":
                    self.assertEqual(ref["failed_gates"], r.json()["error"]["details"]["failed_gates"])

    def test_visibility(self):
        """A token sees its own refusals and the mount's; an admin sees every one."""
        s = self.session("pipeline")
        self.assertEqual(s.post(self.url + "/v1/models", json={"name": "No_Such"}).status_code, 422)
        mine = self.session("dashboard").get(self.url + "/v1/refusals",
                                             params={"token": "pipeline"}).json()["refusals"]
        self.assertEqual(mine, [])
        out = self.why("dashboard")
        self.assertNotIn("No_Such", out)
        seen = self.session("release").get(self.url + "/v1/refusals",
                                           params={"token": "pipeline"}).json()["refusals"]
        self.assertIn("No_Such", seen[0]["message"])
        self.assertIn("No_Such", self.why("pipeline"))
        r = self.session("dashboard").get(self.url + "/v1/refusals", params={"uid": "x"})
        self.assertEqual(r.status_code, 400)

    def test_zz_flood(self):
        """A flood of refusals from one token stores a bounded number of them."""
        s = self.session("flood")
        for i in range(400):
            self.assertEqual(s.post(self.url + "/v1/models",
                                    json={"name": f"Flood_{i}"}).status_code, 422)
        got = self.session("release").get(self.url + "/v1/refusals",
                                          params={"token": "flood", "limit": 1000}).json()
        n = len(got["refusals"])
        self.assertGreaterEqual(n, 120)
        self.assertLess(n, 250, f"{n} of 400 refusals stored")
        # Every one is still a log line (the log is where a flood shows).
        self.assertEqual(self.d.read_log().count("refused POST /v1/models - (flood)"), 400)


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
