# SPDX-License-Identifier: Apache-2.0
"""The ADR workflow end to end, run the way its users run it.

A real `modelfs serve` with a FUSE mount, bearer tokens and git-tag sync into
a repository that holds the examples. The training notebook
(examples/notebooks/train_isolation_forest.ipynb) is executed headless by
Debian's jupyter-nbconvert with Debian's python3 and scikit-learn; the
pipeline's validation step and the KServe-like serving step are the scripts in
examples/. The lifecycle: v1 → validate → promote; v2 (a new commit, a new
window) → canary 10% → validate → 50% → promote; rollback to v1; then v3,
which fails validation, is refused through the mount and the API.

At every step: readlink of current/canary, the rendered InferenceService, the
history and lineage answers, the git tags, and what serving loads and answers.

usage: test_workflow.py /path/to/modelfs
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from fsutil import Daemon, wait_for  # noqa: E402

MODELFS = None
MODEL = "anomaly-detector"
NOTEBOOK = "examples/notebooks/train_isolation_forest.ipynb"
PVC = "model-storage-pvc"
TOKENS = {  # name: (role, secret)
    "alice": ("admin", "alice-notebook-secret-0001"),      # the data scientist
    "tekton": ("writer", "tekton-pipeline-secret-0002"),   # the validation step
    "release": ("admin", "release-pipeline-secret-003"),   # promotions
}
POLICY = {
    "validation_status": "passed",
    "metrics": {"performance_metrics.accuracy": {"min": 0.85},
                "validation_metrics.accuracy": {"min": 0.85},
                "validation_metrics.latency_ms_p50": {"max": 100}},
    "max_total_size": 100 * 1024 * 1024,
    "required_fields": ["git_commit", "training_notebook", "training_data",
                        "training_data_hash"],
}


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


class Workflow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        cls.tmp = tempfile.mkdtemp(prefix="modelfs-workflow-", dir=base)
        # The team's repository: the examples, committed; tags land here too.
        cls.repo = os.path.join(cls.tmp, "ml-platform")
        shutil.copytree(os.path.join(SOURCE, "examples"), os.path.join(cls.repo, "examples"),
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        git(cls.repo, "init", "-q", "-b", "main")
        git(cls.repo, "config", "user.email", "alice@example.com")
        git(cls.repo, "config", "user.name", "Alice")
        cls.commit("notebook: isolation forest on October's metrics")
        # A kernel that is Debian's python3, whatever else is on PATH.
        cls.jupyter = os.path.join(cls.tmp, "jupyter")
        kdir = os.path.join(cls.jupyter, "kernels", "python3")
        os.makedirs(kdir)
        with open(os.path.join(kdir, "kernel.json"), "w") as f:
            json.dump({"argv": ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f",
                                "{connection_file}"],
                       "display_name": "Python 3 (Debian)", "language": "python"}, f)
        tokens = os.path.join(cls.tmp, "tokens")
        with open(tokens, "w") as f:
            for name, (role, secret) in TOKENS.items():
                f.write(f"{name} {role} {secret}\n")
        os.chmod(tokens, 0o600)
        cls.d = Daemon(MODELFS, extra=["--token-file", tokens, "--git-repo", cls.repo,
                                       "--git-gto-tags", "--pvc", PVC]).start()
        cls.url = f"http://127.0.0.1:{cls.d.port}"
        cls.servers = []
        cls.commits = {}

    @classmethod
    def tearDownClass(cls):
        for p in cls.servers:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        rc = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"modelfs serve exited {rc}:\n{log}"

    @classmethod
    def commit(cls, message):
        git(cls.repo, "add", "-A")
        git(cls.repo, "commit", "-q", "-m", message)
        return git(cls.repo, "rev-parse", "HEAD")

    # --- the users' tools -------------------------------------------------

    def call(self, method, path, who="release", expect=200, **kw):
        r = requests.request(method, self.url + path, timeout=60,
                             headers={"Authorization": "Bearer " + TOKENS[who][1]}, **kw)
        self.assertEqual(r.status_code, expect, f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    def env(self, who):
        e = dict(os.environ)
        e.update(MODELFS_MOUNT=self.d.mnt, MODELFS_URL=self.url, MODELFS_TOKEN=TOKENS[who][1],
                 JUPYTER_DATA_DIR=self.jupyter, JUPYTER_PATH=self.jupyter,
                 JUPYTER_RUNTIME_DIR=os.path.join(self.tmp, "runtime"),
                 IPYTHONDIR=os.path.join(self.tmp, "ipython"), PYTHONDONTWRITEBYTECODE="1")
        return e

    def run_notebook(self, name):
        """Executes the committed notebook headless; returns its printed output."""
        out = os.path.join(self.tmp, "executed")
        p = subprocess.run(["jupyter-nbconvert", "--to", "notebook", "--execute",
                            "--ExecutePreprocessor.timeout=600",
                            "--ExecutePreprocessor.kernel_name=python3",
                            "--output-dir", out, "--output", name,
                            os.path.join(self.repo, NOTEBOOK)],
                           env=self.env("alice"), capture_output=True, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, f"notebook failed:\n{p.stdout}\n{p.stderr}")
        with open(os.path.join(out, name + ".ipynb")) as f:
            nb = json.load(f)
        text = []
        for cell in nb["cells"]:
            for o in cell.get("outputs", []):
                if o.get("output_type") == "stream":
                    text.append("".join(o["text"]))
                elif "data" in o and "text/plain" in o["data"]:
                    text.append("".join(o["data"]["text/plain"]))
        return "\n".join(text)

    def validate(self, version, expect_rc=0):
        p = subprocess.run(["/usr/bin/python3",
                            os.path.join(self.repo, "examples/pipeline/validate.py"),
                            "--mount", self.d.mnt, "--url", self.url, MODEL, version],
                           env=self.env("tekton"), capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, expect_rc, f"validate {version}:\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def serve(self, storage_uri):
        """Starts the KServe-like predictor on the pinned version; returns its URL."""
        port_file = os.path.join(self.tmp, f"serve-{len(self.servers)}")
        p = subprocess.Popen(["/usr/bin/python3",
                              os.path.join(self.repo, "examples/serving/sklearn_server.py"),
                              "--model-name", MODEL, "--storage-uri", storage_uri,
                              "--pvc-root", self.d.mnt, "--listen", "127.0.0.1:0",
                              "--port-file", port_file],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.servers.append(p)
        deadline = time.time() + 60
        while not os.path.exists(port_file):
            if p.poll() is not None:
                self.fail(f"serving step exited {p.returncode}: {p.stdout.read()}")
            self.assertLess(time.time(), deadline, "serving step did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            return f"http://127.0.0.1:{f.read().strip()[5:]}", p

    def stop_server(self, p):
        p.terminate()
        p.wait(timeout=10)

    # --- what the users check --------------------------------------------

    def link(self, alias):
        path = os.path.join(self.d.mnt, MODEL, alias)
        return os.readlink(path) if os.path.lexists(path) else None

    def isvc(self):
        return self.call("GET", f"/v1/models/{MODEL}/inferenceservice")

    def example(self, version):
        with open(os.path.join(self.d.mnt, MODEL, version, "input_example.json")) as f:
            return json.load(f)

    def check_serving(self, storage_uri, version):
        """Serving loads exactly the sealed model.pkl of `version` and answers what the
        notebook recorded when it trained that version."""
        url, p = self.serve(storage_uri)
        try:
            info = requests.get(f"{url}/v1/models/{MODEL}", timeout=30).json()
            files = {f["path"]: f for f in
                     self.call("GET", f"/v1/models/{MODEL}/versions/{version}")["files"]}
            self.assertEqual(info["sha256"], files["model.pkl"]["sha256"], "served bytes")
            self.assertTrue(info["model_file"].endswith(f"/{MODEL}/{version}/model.pkl"))
            ex = self.example(version)
            got = requests.post(f"{url}/v1/models/{MODEL}:predict",
                                json={"instances": ex["instances"]}, timeout=60).json()
            self.assertEqual(got["predictions"], ex["predictions"], "reproducible predictions")
            self.assertIn(-1, got["predictions"])  # the probe holds incidents, and they are found
            bad = requests.post(f"{url}/v1/models/{MODEL}:predict", data=b"{", timeout=30)
            self.assertEqual(bad.status_code, 400)
        finally:
            self.stop_server(p)

    def check_lineage(self, version, commit, start, end):
        lin = self.call("GET", f"/v1/models/{MODEL}/versions/{version}/lineage")
        text = json.dumps(lin)
        self.assertIn(commit, text)
        self.assertIn(NOTEBOOK, text)
        meta = self.call("GET", f"/v1/models/{MODEL}/versions/{version}/metadata")
        self.assertEqual(meta["git_commit"], commit)
        self.assertEqual(meta["training_data"]["start_date"], start)
        self.assertEqual(meta["training_data"]["end_date"], end)
        # Reverse: the commit and the data hash both lead back to this version.
        for q in ({"git_commit": commit[:10]}, {"training_data_hash": meta["training_data_hash"]}):
            found = self.call("GET", "/v1/lineage", params=q)
            names = [(v["model"], v["version"]) for v in found["versions"]]
            self.assertIn((MODEL, version), names, q)
        return meta

    def check_tag(self, version, commit):
        tag = f"model-{MODEL}-{version}"
        wait_for(lambda: git(self.repo, "tag", "-l", tag), what=tag)
        self.assertEqual(git(self.repo, "rev-parse", f"{tag}^{{commit}}"), commit, tag)
        self.assertEqual(git(self.repo, "cat-file", "-t", tag), "tag")  # annotated

    def wait_git_idle(self):
        def idle():
            q = self.call("GET", "/v1/git")["queue"]
            return q if q["pending"] == 0 and q["pushing"] == 0 else None

        self.assertEqual(wait_for(idle, what="the git tag queue to drain")["failed"], 0)

    def history(self):
        return self.call("GET", f"/v1/models/{MODEL}/history",
                         params={"kind": "alias.", "limit": 1000})["events"]

    # --- the lifecycle ----------------------------------------------------

    def test_1_lifecycle(self):
        # The admin creates the model and its promotion policy (the ADR's gates).
        self.call("POST", "/v1/models", expect=201, json={"name": MODEL})
        self.call("PUT", f"/v1/models/{MODEL}/policy", json=POLICY)
        commit_a = git(self.repo, "rev-parse", "HEAD")
        self.commits["v1"] = commit_a

        # v1: the notebook trains and registers; nothing serves yet.
        out = self.run_notebook("v1")
        self.assertIn("v1 is the first version", out)
        self.assertIn("validation_status: passed", out)
        v1 = self.call("GET", f"/v1/models/{MODEL}/versions/v1")
        self.assertEqual(v1["state"], "sealed")
        self.assertEqual(sorted(f["path"] for f in v1["files"]),
                         ["input_example.json", "model.pkl"])
        self.assertIsNone(self.link("current"))
        meta1 = self.check_lineage("v1", commit_a, "2026-10-01", "2026-10-31")
        self.assertEqual(meta1["training_data"]["rows"], 31 * 24 * 60)
        self.assertEqual(meta1["training_notebook"], NOTEBOOK)
        self.assertEqual(meta1["hyperparameters"]["n_estimators"], 100)
        self.assertGreater(meta1["performance_metrics"]["accuracy"], 0.85)
        for field in ("model_name", "version", "created_at", "training_notebook", "git_commit",
                      "training_data", "training_data_hash", "hyperparameters",
                      "performance_metrics", "validation_status", "deployed_to"):
            self.assertIn(field, meta1)
        # The raw volume holds the same record (readable without the daemon).
        with open(os.path.join(self.d.store, MODEL, "v1", "metadata.json")) as f:
            self.assertEqual(json.load(f)["training_data_hash"], meta1["training_data_hash"])
        self.check_tag("v1", commit_a)

        # The pipeline validates v1 from the mount, then promotes it.
        out = self.validate("v1")
        self.assertIn("validation passed", out)
        meta1 = self.call("GET", f"/v1/models/{MODEL}/versions/v1/metadata")
        self.assertEqual(meta1["validation_metrics"]["validated_by"], "pipeline")
        self.call("POST", f"/v1/models/{MODEL}/promote", json={"version": "v1"})
        self.assertEqual(self.link("current"), "v1")
        isvc = self.isvc()
        pred = isvc["spec"]["predictor"]
        self.assertEqual(pred["model"]["storageUri"], f"pvc://{PVC}/{MODEL}/v1")
        self.assertEqual(pred["model"]["modelFormat"]["name"], "sklearn")
        self.assertNotIn("canaryTrafficPercent", pred)
        self.check_serving(pred["model"]["storageUri"], "v1")
        with open(os.path.join(self.d.mnt, MODEL, "metadata.json")) as f:
            self.assertEqual(json.load(f)["version"], "v1")  # the ADR's model file: current

        # v2: a week later, a new window and more trees, committed, then trained.
        params_path = os.path.join(self.repo, "examples/notebooks/params.json")
        with open(params_path) as f:
            params = json.load(f)
        params.update(training_start="2026-10-08", training_end="2026-11-07", n_estimators=150)
        with open(params_path, "w") as f:
            json.dump(params, f, indent=2)
        commit_b = self.commit("retrain: window to 2026-11-07, 150 trees")
        self.commits["v2"] = commit_b
        out = self.run_notebook("v2")
        self.assertIn("canary: v2 at 10% beside current v1", out)
        self.assertEqual(self.link("canary"), "v2")
        self.assertEqual(self.link("current"), "v1")
        pred = self.isvc()["spec"]["predictor"]
        self.assertEqual(pred["model"]["storageUri"], f"pvc://{PVC}/{MODEL}/v2")
        self.assertEqual(pred["canaryTrafficPercent"], 10)
        self.assertEqual(self.isvc()["metadata"]["annotations"],
                         {"modelfs.io/current": "v1", "modelfs.io/canary": "v2"})
        meta2 = self.check_lineage("v2", commit_b, "2026-10-08", "2026-11-07")
        self.assertEqual(meta2["parent_version"], "v1")
        self.assertEqual(meta2["hyperparameters"]["n_estimators"], 150)
        self.assertNotEqual(meta2["training_data_hash"], meta1["training_data_hash"])
        self.check_tag("v2", commit_b)
        self.check_serving(pred["model"]["storageUri"], "v2")

        # The pipeline validates the canary, widens it, then promotes it.
        self.validate("v2")
        self.call("PUT", f"/v1/models/{MODEL}/canary", json={"percent": 50})
        self.assertEqual(self.isvc()["spec"]["predictor"]["canaryTrafficPercent"], 50)
        self.assertEqual(self.link("canary"), "v2")
        self.call("POST", f"/v1/models/{MODEL}/canary/promote")
        self.assertEqual(self.link("current"), "v2")
        self.assertIsNone(self.link("canary"))
        pred = self.isvc()["spec"]["predictor"]
        self.assertEqual(pred["model"]["storageUri"], f"pvc://{PVC}/{MODEL}/v2")
        self.assertNotIn("canaryTrafficPercent", pred)
        self.check_serving(pred["model"]["storageUri"], "v2")
        with open(os.path.join(self.d.mnt, MODEL, "current", "metadata.json")) as f:
            self.assertEqual(json.load(f)["git_commit"], commit_b)

        # Production accuracy drops: the admin rolls back in one call.
        self.call("POST", f"/v1/models/{MODEL}/versions/v2/observations", expect=201,
                  json={"metric": "accuracy", "value": 0.81})
        metrics = requests.get(self.url + "/metrics", timeout=30).text
        self.assertIn(f'model_prediction_accuracy{{model="{MODEL}",version="v2"}} 0.81', metrics)
        why = "production accuracy 0.81 < 0.85"
        self.assertEqual(self.call("POST", f"/v1/models/{MODEL}/rollback",
                                   json={"reason": why})["version"], "v1")
        self.assertEqual(self.link("current"), "v1")
        pred = self.isvc()["spec"]["predictor"]
        self.assertEqual(pred["model"]["storageUri"], f"pvc://{PVC}/{MODEL}/v1")
        self.check_serving(pred["model"]["storageUri"], "v1")
        # Which commit and which data produced what is serving now: v1's.
        cur = self.call("GET", f"/v1/models/{MODEL}/aliases/current")
        lin = self.call("GET", f"/v1/models/{MODEL}/versions/{cur['version']}/lineage")
        self.assertIn(commit_a, json.dumps(lin))
        self.assertIn(meta1["training_data_hash"], json.dumps(lin))

        # The history tells the whole story, in order, with who did it.
        steps = [(e["alias"], e["before"], e["after"], e["actor"],
                  (e.get("detail") or {}).get("percent"), (e.get("detail") or {}).get("via"))
                 for e in self.history()]
        want = [("current", None, "v1", "release", None, None),
                ("canary", None, "v2", "alice", 10, None),
                ("canary", "v2", "v2", "release", 50, None),
                ("current", "v1", "v2", "release", None, "canary.promote"),
                ("canary", "v2", None, "release", None, "canary.promote"),
                ("current", "v2", "v1", "release", None, "rollback")]
        self.assertEqual(steps, want, json.dumps(self.history(), indent=1))
        self.assertEqual(self.history()[-1]["detail"]["reason"], why)
        # And git holds the versions and every promotion (GTO tags).
        self.wait_git_idle()
        tags = git(self.repo, "tag", "-l").split()
        self.assertIn(f"model-{MODEL}-v1", tags)
        self.assertIn(f"model-{MODEL}-v2", tags)
        # GTO's promotion tags, in event order, each at the commit that made the version.
        gto = {t: git(self.repo, "rev-parse", f"{t}^{{commit}}") for t in tags if "#" in t}
        self.assertEqual(gto, {f"{MODEL}#current#1": commit_a, f"{MODEL}#canary#2": commit_b,
                               f"{MODEL}#current#3": commit_b, f"{MODEL}#canary!#4": commit_b,
                               f"{MODEL}#current#5": commit_a}, tags)

    def test_2_failed_validation_is_refused(self):
        """v3 (far too many anomalies flagged) fails validation; no channel can promote it."""
        if self.link("current") != "v1":
            self.skipTest("needs the lifecycle first")
        params_path = os.path.join(self.repo, "examples/notebooks/params.json")
        with open(params_path) as f:
            params = json.load(f)
        params.update(contamination=0.4)
        with open(params_path, "w") as f:
            json.dump(params, f, indent=2)
        commit_c = self.commit("experiment: contamination 0.4")
        out = self.run_notebook("v3")
        self.assertIn("validation_status: failed", out)
        self.assertIn("v3 failed validation: not deployed", out)
        self.assertIsNone(self.link("canary"))
        self.validate("v3", expect_rc=1)
        meta = self.call("GET", f"/v1/models/{MODEL}/versions/v3/metadata")
        self.assertEqual(meta["validation_status"], "failed")
        self.assertEqual(meta["git_commit"], commit_c)
        before = self.history()

        # The admin's shell: ln -sfn v3 current is refused with EPERM.
        p = subprocess.run(["ln", "-sfn", "v3", os.path.join(self.d.mnt, MODEL, "current")],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(os.strerror(errno.EPERM), p.stderr)
        with self.assertRaises(PermissionError):
            os.symlink("v3", os.path.join(self.d.mnt, MODEL, "canary"))
        self.assertEqual(self.link("current"), "v1")
        self.assertIsNone(self.link("canary"))

        # The pipeline's API calls: 409 naming each failed gate.
        for method, path, body in (("POST", "promote", {"version": "v3"}),
                                   ("PUT", "canary", {"version": "v3", "percent": 10}),
                                   ("PUT", "aliases/current", {"version": "v3"})):
            err = self.call(method, f"/v1/models/{MODEL}/{path}", expect=409,
                            json=body)["error"]
            self.assertEqual(err["code"], "gate_refused")
            gates = err["details"]["failed_gates"]
            self.assertIn('validation_status == "passed"', " ".join(gates))
            self.assertTrue(any(g.startswith("performance_metrics.accuracy >= 0.85")
                                for g in gates), gates)
        self.assertEqual(self.link("current"), "v1")
        pred = self.isvc()["spec"]["predictor"]
        self.assertEqual(pred["model"]["storageUri"], f"pvc://{PVC}/{MODEL}/v1")
        # Every refusal is audited (the mount's with the caller's uid), nothing else changed.
        after = self.history()
        self.assertEqual(after, before)
        refused = [e for e in self.call("GET", f"/v1/models/{MODEL}/history",
                                        params={"kind": "refused", "limit": 1000})["events"]
                   if e["detail"]["rule"] == "gate" and e["after"] == "v3"]
        self.assertEqual(len(refused), 5, json.dumps(refused, indent=1))
        self.assertEqual({e["channel"] for e in refused}, {"fs", "api"})
        self.assertTrue(all(e["after"] == "v3" for e in refused))


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
