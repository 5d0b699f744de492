# SPDX-License-Identifier: Apache-2.0
"""GitOps manifests: every change of current/canary commits the rendered
InferenceService (the API's exact bytes) to a branch of modelfs's clone and
pushes it to a bare remote, which another writer advances meanwhile: the
manifest commit lands on top (no merge), only when the bytes change.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import requests

from apiutil import Client, Daemon, OpenAPI
from fsutil import wait_for

MODELFS = sys.argv[1] if len(sys.argv) > 1 else "build/cli/modelfs"
PASSED = {"validation_status": "passed", "performance_metrics": {"accuracy": 0.91}}
ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
           GIT_COMMITTER_EMAIL="t@x", GIT_CONFIG_NOSYSTEM="1", HOME="/nonexistent")


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True,
                          text=True).stdout


class GitOpsTest(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="gitops-", dir=base)
        self.remote = os.path.join(self.dir, "remote.git")
        self.other = os.path.join(self.dir, "other")
        self.clone = os.path.join(self.dir, "modelfs.git")
        git("init", "-q", "--bare", "-b", "main", self.remote)
        git("clone", "-q", self.remote, self.other)
        git("checkout", "-q", "-b", "main", cwd=self.other)
        with open(os.path.join(self.other, "README"), "w") as f:
            f.write("deploy repo\n")
        git("add", "README", cwd=self.other)
        git("commit", "-q", "-m", "start", cwd=self.other)
        git("push", "-q", "origin", "main", cwd=self.other)
        git("clone", "-q", "--bare", self.remote, self.clone)
        self.d = Daemon(MODELFS, extra=["--gitops-repo", self.clone, "--gitops-remote", "origin",
                                        "--gitops-branch", "main", "--outbox-backoff-max", "500"])
        self.d.start()
        self.c = Client(self.d, OpenAPI(requests.get(self.d.url + "/openapi.json", timeout=10).json()))

    def tearDown(self):
        rc = self.d.stop()
        log = self.d.read_log()
        self.d.cleanup()
        subprocess.run(["rm", "-rf", "--one-file-system", self.dir])
        # A clean stop (and, under ASan, no leak report) after every test.
        self.assertEqual(rc, 0, log[-3000:])

    def version(self, model):
        c = self.c
        if c.get(f"/v1/models/{model}", expect=None).status_code == 404:
            c.post("/v1/models", {"name": model}, expect=201)
        v = c.post(f"/v1/models/{model}/versions", {"metadata": PASSED}, expect=201).json()["name"]
        c.put(f"/v1/models/{model}/versions/{v}/files/model.pkl", data=b"x" + v.encode(), expect=201)
        c.post(f"/v1/models/{model}/versions/{v}/seal")
        return v

    def remote_file(self, path="deploy/isvc/fraud.yaml"):
        r = subprocess.run(["git", "--git-dir", self.remote, "show", f"main:{path}"], env=ENV,
                           capture_output=True)
        return r.stdout if r.returncode == 0 else None

    def remote_log(self):
        return git("--git-dir", self.remote, "log", "--format=%H %P%n%B%x00", "main").split("\x00")

    def wait_manifest(self, what):
        want = requests.get(self.d.url + "/v1/models/fraud/inferenceservice", timeout=10).content
        wait_for(lambda: self.remote_file() == want, 20, what)
        return want

    def test_manifest_follows_aliases(self):
        c = self.c
        v1 = self.version("fraud")
        v2 = self.version("fraud")
        c.post("/v1/models/fraud/promote", {"version": v1})
        body = self.wait_manifest("the first manifest")
        self.assertIn(b'"storageUri":"pvc://model-storage-pvc/fraud/' + v1.encode(), body)
        log = self.remote_log()
        self.assertIn("modelfs-event:", log[0])
        self.assertIn("actor: api:", log[0])
        # Another writer advances the remote meanwhile.
        with open(os.path.join(self.other, "NOTES"), "w") as f:
            f.write("someone else\n")
        git("add", "NOTES", cwd=self.other)
        git("commit", "-q", "-m", "other writer", cwd=self.other)
        git("pull", "-q", "--rebase", "origin", "main", cwd=self.other)
        git("push", "-q", "origin", "main", cwd=self.other)
        c.put("/v1/models/fraud/canary", {"version": v2, "percent": 20})
        body = self.wait_manifest("the canary manifest")
        self.assertIn(b'"canaryTrafficPercent":20', body)
        heads = [e.strip().split("\n")[0].split() for e in self.remote_log() if e.strip()]
        self.assertTrue(all(len(h) <= 2 for h in heads), heads)  # no merge commits
        msgs = git("--git-dir", self.remote, "log", "--format=%s", "main").split("\n")
        self.assertIn("other writer", msgs)
        self.assertEqual(msgs[0], f"fraud: current {v1}, canary {v2}")
        # An alias the manifest does not follow: no commit.
        n = len(msgs)
        c.put("/v1/models/fraud/aliases/staging", {"version": v2})
        c.post("/v1/models/fraud/canary/promote", {})
        self.wait_manifest("the promoted canary")
        c.post("/v1/models/fraud/rollback", {})
        body = self.wait_manifest("the rollback")
        self.assertIn(b"/fraud/" + v1.encode(), body)
        wait_for(lambda: c.get("/v1/outbox").json()["pending"] == 0, 10, "an empty backlog")
        msgs = git("--git-dir", self.remote, "log", "--format=%s", "main").split("\n")
        # promote of the canary and its removal (one commit: the second renders the same),
        # then the rollback; the staging alias made none.
        self.assertEqual(len(msgs), n + 2, msgs)
        o = c.get("/v1/outbox").json()
        sub = [s for s in o["subscribers"] if s["adapter"] == "gitops"][0]
        self.assertEqual(sub["target"], self.clone)
        self.assertEqual(sub["pending"], 0)

    def test_unreachable_remote_retries(self):
        c = self.c
        v1 = self.version("fraud")
        os.rename(self.remote, self.remote + ".away")
        c.post("/v1/models/fraud/promote", {"version": v1})

        def failing():
            s = [s for s in c.get("/v1/outbox").json()["subscribers"] if s["adapter"] == "gitops"][0]
            return s["attempts"] >= 2 and s["last_error"]
        wait_for(failing, 20, "the failure shows in /v1/outbox")
        self.assertEqual(c.get("/readyz").json()["outbox"]["failing"], 1)
        os.rename(self.remote + ".away", self.remote)
        self.wait_manifest("the manifest after the remote is back")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
