# SPDX-License-Identifier: Apache-2.0
"""The client commands (`modelfs models`, `show`, `promote`, ...) against a real
`modelfs serve` over real HTTP: tables and --json, every exit status (refused by a
gate, usage, not found, auth, network), tokens from a file and from the environment.

usage: test_client.py /path/to/modelfs
"""
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

import requests

from apiutil import Daemon

MODELFS = None
ADMIN = "admin-secret-0123456789"
WRITER = "writer-secret-0123456789"
READER = "reader-secret-0123456789"
TOKENS = {"release": ("admin", ADMIN), "pipeline": ("writer", WRITER),
          "dashboard": ("reader", READER)}
PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.91, "f1_score": 0.88}}


def closed_port():
    """A port nothing listens on: bound, then closed."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS, tokens=TOKENS).start()
        cls.files = {}
        for name, secret in (("admin", ADMIN), ("writer", WRITER), ("reader", READER),
                             ("bad", "not-a-token-0123456789")):
            path = os.path.join(cls.d.dir, f"{name}.token")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"# {name}\n{secret}\n")
            cls.files[name] = path
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {ADMIN}"
        cls.http = s
        base = cls.d.url + "/v1/models"

        def ok(r, status):
            if r.status_code != status:
                raise AssertionError(f"{r.request.method} {r.url}: {r.status_code} {r.text}")
            return r

        def version(model, name, meta):
            ok(s.post(f"{base}/{model}/versions", json={"name": name, "metadata": meta}), 201)
            ok(s.put(f"{base}/{model}/versions/{name}/files/model.pkl", data=f"{model} {name}"), 201)
            ok(s.post(f"{base}/{model}/versions/{name}/seal"), 200)

        ok(s.post(base, json={"name": "fraud"}), 201)
        ok(s.post(base, json={"name": "churn"}), 201)
        version("fraud", "v1", PASSED)
        version("fraud", "v2", dict(PASSED, performance_metrics={"accuracy": 0.93}))
        version("fraud", "v3", dict(PASSED, validation_status="failed",
                                    performance_metrics={"accuracy": 0.61}))
        version("churn", "v1", PASSED)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        if rc != 0:
            raise AssertionError(f"modelfs serve exited {rc}:\n{log[-3000:]}")

    def run_cli(self, *args, token="admin", url=None, env=None, stdin=None, want=0):
        e = {k: v for k, v in os.environ.items() if not k.startswith("MODELFS_")}
        e["MODELFS_URL"] = url or self.d.url
        if env:
            e.update(env)
        argv = [MODELFS] + list(args)
        if token:
            argv += ["--token-file", self.files[token]]
        p = subprocess.run(argv, env=e, input=stdin, capture_output=True, text=True, timeout=60)
        # a sanitizer build's report fails the test whatever the exit status
        if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
            raise AssertionError(f"{' '.join(args)}: sanitizer report:\n{p.stderr}")
        if want is not None and p.returncode != want:
            raise AssertionError(f"{' '.join(args)}: exit {p.returncode}, wanted {want}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def rows(self, text):
        """A table's lines as lists of cells (two or more spaces between cells)."""
        return [re.split(r"\s{2,}", line.rstrip()) for line in text.splitlines() if line.strip()]

    # ---- reading ----

    def test_help_and_usage(self):
        p = self.run_cli("--help", token=None)
        self.assertIn("modelfs completion", p.stdout)
        self.assertIn("modelfs man", p.stdout)
        for cmd in ("models", "show MODEL", "promote MODEL VERSION", "canary promote MODEL",
                    "alias set MODEL ALIAS VERSION", "policy set MODEL [FILE]", "as-of MODEL ALIAS TIME"):
            self.assertIn(f"modelfs {cmd}", p.stdout)
        p = self.run_cli("promote", "--help", token=None)
        self.assertIn("usage: modelfs promote MODEL VERSION", p.stdout)
        self.assertIn("--reason", p.stdout)
        self.assertIn("$MODELFS_URL", p.stdout)
        self.assertIn("1 refused", p.stdout)
        self.assertIn("5 no connection", p.stdout)
        self.assertNotIn("--percent", p.stdout)
        self.assertIn("--percent N", self.run_cli("canary", "-h", token=None).stdout)
        self.assertIn("usage: modelfs alias rm MODEL ALIAS",
                      self.run_cli("alias", "rm", "-h", token=None).stdout)
        # usage errors: 2, nothing sent
        self.assertIn("usage: modelfs show MODEL", self.run_cli("show", want=2).stderr)
        self.assertIn("usage: modelfs diff", self.run_cli("diff", "fraud", "v1", want=2).stderr)
        self.assertIn("unknown option '--percent'",
                      self.run_cli("promote", "fraud", "v1", "--percent", "5", want=2).stderr)
        self.assertIn("outside 0..100",
                      self.run_cli("canary", "fraud", "v2", "--percent", "101", want=2).stderr)
        self.assertIn("say which", self.run_cli("alias", "fraud", want=2).stderr)

    def test_models(self):
        p = self.run_cli("models", token="reader")
        rows = self.rows(p.stdout)
        self.assertEqual(rows[0], ["MODEL", "CREATED"])
        names = [r[0] for r in rows[1:]]
        self.assertEqual(names, sorted(names))
        self.assertTrue({"churn", "fraud"} <= set(names), names)
        j = json.loads(self.run_cli("models", "--json").stdout)
        self.assertEqual([m["name"] for m in j["models"]], names)
        self.assertIsNone(j["next_cursor"])
        # the token may also come from $MODELFS_TOKEN, and reads need none here
        self.run_cli("models", token=None, env={"MODELFS_TOKEN": READER})
        self.run_cli("models", token=None)

    def test_show(self):
        self.run_cli("alias", "set", "churn", "staging", "v1", token="writer")
        p = self.run_cli("show", "churn", token="reader")
        self.assertIn("model     churn", p.stdout)
        self.assertIn("versions  1 (0 draft, 1 sealed, 0 archived), latest v1", p.stdout)
        rows = self.rows(p.stdout)
        self.assertIn(["ALIAS", "VERSION", "PERCENT", "UPDATED"], rows)
        self.assertTrue(any(r[:3] == ["staging", "v1", "-"] for r in rows), rows)
        self.assertTrue(any(r[:3] == ["v1", "sealed", "passed"] and "staging" in r[3].split(",")
                            and r[4] == "accuracy=0.91,f1_score=0.88" for r in rows), rows)
        self.assertTrue(any(r[1:] == ["alias.set", "pipeline", "staging - -> v1"] for r in rows), rows)
        j = json.loads(self.run_cli("show", "churn", "--json").stdout)
        self.assertEqual(j["model"]["aliases"]["staging"]["version"], "v1")
        self.assertEqual(j["latest_versions"][0]["metadata"]["performance_metrics"]["accuracy"], 0.91)
        self.assertEqual(j["recent_events"][-1]["kind"], "alias.set")
        self.assertLessEqual(len(j["recent_events"]), 5)

    def test_versions(self):
        rows = self.rows(self.run_cli("versions", "fraud").stdout)
        self.assertEqual(rows[0], ["VERSION", "STATE", "VALIDATION", "ALIASES", "METRICS", "TAGS", "CREATED"])
        self.assertEqual([r[:3] for r in rows[1:]], [["v1", "sealed", "passed"], ["v2", "sealed", "passed"],
                                                     ["v3", "sealed", "failed"]])
        j = json.loads(self.run_cli("versions", "fraud", "--limit", "2", "--json").stdout)
        self.assertEqual([v["name"] for v in j["versions"]], ["v1", "v2"])
        self.assertEqual(j["next_cursor"], "2")
        j = json.loads(self.run_cli("versions", "fraud", "--state=draft", "--json").stdout)
        self.assertEqual(j["versions"], [])
        p = self.run_cli("versions", "fraud", "--state", "gone", want=2)
        self.assertIn("'state' must be draft, sealed or archived", p.stderr)
        self.assertIn("HTTP 400 bad_request", p.stderr)

    def test_lineage_and_diff(self):
        rows = self.rows(self.run_cli("lineage", "fraud", "v1").stdout)
        self.assertIn(["git_commit", "3f2a9c1"], rows)
        j = json.loads(self.run_cli("lineage", "fraud", "v1", "--json").stdout)
        self.assertEqual(j["git_commit"], "3f2a9c1")
        rows = self.rows(self.run_cli("diff", "fraud", "v1", "v3").stdout)
        self.assertEqual(rows[0], ["FIELD", "CHANGE", "v1", "v3"])
        self.assertIn(["performance_metrics.accuracy", "changed", "0.91", "0.61"], rows)
        self.assertIn(["validation_status", "changed", "passed", "failed"], rows)
        j = json.loads(self.run_cli("diff", "fraud", "v1", "v3", "--json").stdout)
        self.assertIn({"path": "validation_status", "op": "changed", "from": "passed", "to": "failed"},
                      j["changes"])

    # ---- the lifecycle ----

    def test_lifecycle(self):
        m = "lifecycle"
        self.http.post(self.d.url + "/v1/models", json={"name": m}).raise_for_status()
        for v in ("v1", "v2"):
            base = f"{self.d.url}/v1/models/{m}/versions"
            self.http.post(base, json={"name": v, "metadata": PASSED}).raise_for_status()
            self.http.post(f"{base}/{v}/seal").raise_for_status()
        self.assertEqual(self.run_cli("promote", m, "v1").stdout, f"{m}: current -> v1\n")
        before_canary = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1)) + "Z"
        time.sleep(1.2)
        self.assertEqual(self.run_cli("canary", m, "v2", "--percent", "10").stdout,
                         f"{m}: canary -> v2 (10%)\n")
        j = json.loads(self.run_cli("canary", m, "v2", "--percent=50", "--json").stdout)
        self.assertEqual((j["alias"], j["version"], j["percent"]), ("canary", "v2", 50))
        self.assertIn("canary   v2       50%", self.run_cli("show", m).stdout)
        self.assertEqual(self.run_cli("canary", "promote", m).stdout, f"{m}: current -> v2\n")
        self.assertEqual(self.run_cli("rollback", m, "--reason", "accuracy 0.81 < 0.85").stdout,
                         f"{m}: current -> v1\n")
        self.assertEqual(self.run_cli("canary", m, "v2", "--percent", "5").stdout,
                         f"{m}: canary -> v2 (5%)\n")
        self.assertEqual(self.run_cli("canary", "abort", m).stdout, f"{m}: canary removed\n")
        self.assertEqual(self.run_cli("canary", "abort", m, want=3).returncode, 3)
        self.assertEqual(self.run_cli("alias", "set", m, "staging", "v2", token="writer").stdout,
                         f"{m}: staging -> v2\n")
        self.assertEqual(self.run_cli("alias", "rm", m, "staging", token="writer").stdout,
                         f"{m}: alias staging removed\n")
        # as-of: current was v1 before the canary started and after the rollback
        self.assertEqual(self.run_cli("as-of", m, "current", before_canary).stdout,
                         f"{m}: current was v1 at {before_canary}\n")
        j = json.loads(self.run_cli("as-of", m, "current", before_canary, "--json").stdout)
        self.assertEqual(j["version"], "v1")
        self.assertEqual(self.run_cli("as-of", m, "current", "yesterday", want=2).returncode, 2)
        # history: the rollback's reason, kinds filtered, limit
        p = self.run_cli("history", m, "--kind", "alias.")
        rows = self.rows(p.stdout)
        self.assertEqual(rows[0], ["TIME", "KIND", "VERSION", "ALIAS", "BEFORE", "AFTER", "ACTOR", "DETAIL"])
        self.assertTrue(all(r[1].startswith("alias.") for r in rows[1:]), rows)
        self.assertIn("reason=accuracy 0.81 < 0.85 via=rollback", p.stdout)
        j = json.loads(self.run_cli("history", m, "--kind", "alias.set", "--limit", "2", "--json").stdout)
        self.assertEqual(len(j["events"]), 2)
        self.assertIsNotNone(j["next_cursor"])
        j = json.loads(self.run_cli("history", m, "--since", before_canary, "--json").stdout)
        self.assertNotIn("model.create", [e["kind"] for e in j["events"]])
        self.assertEqual(self.run_cli("history", m, "--since", "soon", want=2).returncode, 2)

    def test_gate_refusal_and_policy(self):
        pol = {"validation_status": "passed",
               "metrics": {"performance_metrics.accuracy": {"min": 0.85}}}
        path = os.path.join(self.d.dir, "policy.json")
        with open(path, "w") as f:
            json.dump(pol, f)
        self.assertEqual(json.loads(self.run_cli("policy", "set", "fraud", path).stdout), pol)
        self.assertEqual(json.loads(self.run_cli("policy", "get", "fraud", token="reader").stdout), pol)
        p = self.run_cli("promote", "fraud", "v3", want=1)
        self.assertEqual(p.stdout, "")
        self.assertIn("refused by policy", p.stderr)
        self.assertIn("(HTTP 409 gate_refused)", p.stderr)
        self.assertIn('  failed gate: validation_status == "passed" (is "failed")', p.stderr)
        self.assertIn("  failed gate: performance_metrics.accuracy >= 0.85 (is 0.61)", p.stderr)
        # from stdin; a bad policy is refused by the server (422: 1), bad JSON by the client (2)
        self.run_cli("policy", "set", "fraud", stdin=json.dumps({"validation_status": "passed"}))
        p = self.run_cli("policy", "set", "fraud", stdin='{"bogus": 1}', want=1)
        self.assertIn("HTTP 422 invalid", p.stderr)
        p = self.run_cli("policy", "set", "fraud", "-", stdin="{not json", want=2)
        self.assertIn("line 1", p.stderr)
        self.run_cli("policy", "set", "fraud", os.path.join(self.d.dir, "missing.json"), want=2)

    def test_readme_lists_every_command(self):
        """README's Client section names each client command --help lists, and exits 0..5."""
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")) as f:
            whole = f.read().split("## Client\n", 1)[1].split("\n## ", 1)[0]
        section = whole.split("```", 2)[1]  # the command list
        helptext = self.run_cli("--help", token=None).stdout.split("Client commands", 1)[1]
        seen = 0
        for line in helptext.splitlines():
            usage = re.split(r"\s{2,}", line.strip())[0].split()
            if len(usage) < 2 or usage[0] != "modelfs":
                continue
            cmd = []
            for w in usage[1:]:
                if not re.fullmatch(r"[a-z-]+", w):
                    break
                cmd.append(w)
            flat = section.replace("promote|abort", "promote").replace("canary promote", "canary abort")
            self.assertTrue(f"modelfs {' '.join(cmd)}" in section or f"modelfs {' '.join(cmd)}" in flat,
                            f"README's Client section lacks modelfs {' '.join(cmd)}")
            seen += 1
        self.assertGreaterEqual(seen, 16)
        for status in range(6):
            self.assertIn(f"| {status} |", whole)

    def test_bash_completion(self):
        """`modelfs completion`: commands, subcommands, options and model names, as bash completes them."""
        script = self.run_cli("completion", token=None).stdout

        def complete(*words):
            words = ["modelfs"] + list(words)
            sh = (f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); "
                  f"COMP_CWORD={len(words) - 1}; _modelfs; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
            env = dict(os.environ, MODELFS_URL=self.d.url,
                       PATH=os.path.dirname(MODELFS) + os.pathsep + os.environ.get("PATH", ""))
            p = subprocess.run(["bash", "-c", sh], env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            return sorted(w for w in p.stdout.split("\n") if w)

        self.assertEqual(complete("pro"), ["promote"])
        self.assertIn("serve", complete(""))
        self.assertIn("as-of", complete(""))
        self.assertEqual(complete("ma"), ["man"])
        self.assertEqual(complete("canary", "a"), ["abort"])
        self.assertEqual(complete("canary", "promote", "fr"), ["fraud"])
        self.assertEqual(complete("canary", "fraud", "x"), [])
        self.assertEqual(complete("alias", ""), ["rm", "set"])
        self.assertEqual(complete("show", "ch"), ["churn"])
        self.assertEqual(complete("canary", "fraud", "v2", "--pe"), ["--percent"])
        self.assertEqual(complete("history", "fraud", "--k"), ["--kind"])
        self.assertEqual(complete("promote", "fraud", "v1", "--pe"), [])

    def test_man_page(self):
        """`modelfs man`: every command of --help, each client option, the exit statuses; groff finds no fault."""
        page = self.run_cli("man", token=None).stdout
        self.assertTrue(page.startswith(".TH MODELFS 1 "), page[:80])
        for line in ('.B promote MODEL VERSION [\\-\\-reason R]', ".B canary abort MODEL",
                     ".B fsck STORE [\\-\\-repair] [\\-\\-no\\-hash]", ".B models\n",
                     "[\\fB$MODELFS_URL\\fR]", ".SH EXIT STATUS"):
            self.assertIn(line, page)
        if shutil.which("groff"):
            p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual((p.returncode, p.stderr), (0, ""))

    # ---- failures ----

    def test_not_found(self):
        p = self.run_cli("show", "nope", want=3)
        self.assertIn("HTTP 404 not_found", p.stderr)
        self.run_cli("versions", "nope", want=3)
        self.run_cli("lineage", "fraud", "v99", want=3)
        self.run_cli("promote", "nope", "v1", want=3)

    def test_auth(self):
        p = self.run_cli("promote", "fraud", "v1", token="bad", want=4)
        self.assertIn("HTTP 401", p.stderr)
        p = self.run_cli("promote", "fraud", "v1", token=None, want=4)
        self.assertIn("HTTP 401", p.stderr)
        p = self.run_cli("promote", "fraud", "v1", token="reader", want=4)
        self.assertIn("HTTP 403 forbidden", p.stderr)
        p = self.run_cli("rollback", "fraud", token=None, env={"MODELFS_TOKEN": "wrong"}, want=4)
        # a --token-file flag wins over $MODELFS_TOKEN
        self.run_cli("alias", "set", "churn", "qa", "v1", token="writer",
                     env={"MODELFS_TOKEN": "wrong"})
        # the daemon's token file is not a client token file
        p = self.run_cli("models", token=None,
                         env={"MODELFS_TOKEN_FILE": os.path.join(self.d.dir, "tokens")}, want=2)
        self.assertIn("NAME ROLE SECRET", p.stderr)
        self.run_cli("models", token=None, env={"MODELFS_TOKEN_FILE": "/nonexistent/t"}, want=2)

    def test_network(self):
        url = f"http://127.0.0.1:{closed_port()}"
        p = self.run_cli("models", url=url, want=5)
        self.assertIn("127.0.0.1", p.stderr)
        self.run_cli("promote", "fraud", "v1", url=url, want=5)
        self.run_cli("models", url="ftp://127.0.0.1/", want=2)

    def test_server_errors(self):
        """A 5xx with the API's error body, and an answer that is not the API's: exit 5."""
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/v1/models/busy"):
                    body = json.dumps({"error": {"code": "unavailable", "message": "the db is busy",
                                                 "details": None}}).encode()
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                else:
                    body = b"<html>a proxy's page</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            url = f"http://127.0.0.1:{srv.server_address[1]}"
            p = self.run_cli("show", "busy", url=url, want=5)
            self.assertIn("modelfs: the db is busy (HTTP 503 unavailable)", p.stderr)
            p = self.run_cli("models", url=url, want=5)
            self.assertIn("not JSON (is --url the modelfs API?)", p.stderr)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_names_printed_escaped(self):
        p = self.run_cli("show", "bad\x1b[2Jname", want=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn("\x1b", p.stderr)
        self.assertIn("\\x1b", p.stderr)


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
