# SPDX-License-Identifier: Apache-2.0
"""Git-tag sync with the real daemon: `modelfs serve --git-repo` makes tags as
versions are sealed and promoted over HTTP, pushes them, survives SIGKILL and
a missing repository, and `modelfs git-sync` reads them back.

Repositories are made and inspected with the git command line only.

usage: test_git.py /path/to/modelfs
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import requests

from apiutil import Daemon, OpenAPI
from fsutil import wait_for

MODELFS = None
API = None  # the OpenAPI validator
GIT = ["git", "-c", "user.name=tester", "-c", "user.email=tester@example.com",
       "-c", "init.defaultBranch=main"]


def git(*args, cwd=None, check=True):
    p = subprocess.run(GIT + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p.stdout.strip()


def modelfs(*args, env=None):
    return subprocess.run([MODELFS, *args], capture_output=True, text=True, timeout=120,
                          env=env)


class GitTest(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="modelfs-git-", dir=base)
        self.repo = os.path.join(self.tmp, "training")
        git("init", "-q", self.repo)
        self.commits = []
        for i in range(3):
            git("commit", "-q", "--allow-empty", "-m", f"train {i}", cwd=self.repo)
            self.commits.append(git("rev-parse", "HEAD", cwd=self.repo))
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc:
                d.stop()
            d.cleanup()
        subprocess.run(["rm", "-rf", self.tmp])

    def serve(self, *extra, store=None, env_repo=None):
        d = Daemon(MODELFS, extra=list(extra), store=store)
        self.daemons.append(d)
        if env_repo:
            os.environ["MODELFS_GIT_REPO"] = env_repo
        try:
            return d.start()
        finally:
            os.environ.pop("MODELFS_GIT_REPO", None)

    def call(self, d, method, path, expect=200, **kw):
        """One request; the answer is checked against the daemon's /openapi.json."""
        global API
        if API is None:
            API = OpenAPI(requests.get(d.url + "/openapi.json", timeout=10).json())
        r = requests.request(method, d.url + path, timeout=30, **kw)
        if r.status_code != expect:
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text}")
        API.validate(method, path.split("?")[0], r)
        return r.json() if r.content else None

    def register(self, d, model, version, commit, accuracy=0.94):
        meta = {"validation_status": "passed", "performance_metrics": {"accuracy": accuracy}}
        if commit:
            meta["git_commit"] = commit
        self.call(d, "POST", f"/v1/models/{model}/versions", expect=201,
                  json={"name": version, "metadata": meta})
        self.call(d, "PUT", f"/v1/models/{model}/versions/{version}/files/model.pkl",
                  expect=201, data=f"weights {version}".encode())
        return self.call(d, "POST", f"/v1/models/{model}/versions/{version}/seal")

    def tags(self, repo=None, pattern="refs/tags"):
        out = git("for-each-ref", "--format=%(refname:short) %(objecttype) %(*objectname)",
                  pattern, cwd=repo or self.repo)
        return dict((line.split(" ", 1)[0], line.split(" ", 1)[1])
                    for line in out.splitlines() if line)

    def test_help_lists_git_options(self):
        out = modelfs("serve", "--help").stdout
        for flag, env in (("--git-repo", "MODELFS_GIT_REPO"), ("--git-remote", "MODELFS_GIT_REMOTE"),
                          ("--git-gto-tags", "MODELFS_GIT_GTO_TAGS"),
                          ("--git-tagger", "MODELFS_GIT_TAGGER")):
            self.assertIn(flag, out)
            self.assertIn(env, out)
        p = modelfs("git-sync", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--backfill", p.stdout)
        self.assertIn("git-sync", modelfs("--help").stdout)
        self.assertEqual(modelfs("git-sync").returncode, 2)
        # A bad git configuration stops serve with a clear error and changes nothing.
        store = os.path.join(self.tmp, "store")
        os.makedirs(store)
        for bad, msg in ((["--git-tag-format", "{model}"], "{model} and {version}"),
                         (["--git-tagger", "nobody"], "'Name <email>'"),
                         (["--git-remote", "no..pe"], "not a valid git remote name")):
            p = modelfs("serve", "--store", store, "--listen", "127.0.0.1:0",
                        "--git-repo", self.repo, *bad)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(msg, p.stderr)
        self.assertIn("not configured", modelfs("git-sync", store, "--status").stdout)

    def test_serve_tags_promotions_and_readback(self):
        d = self.serve("--git-repo", self.repo, "--git-gto-tags",
                       "--git-tagger", "CI Bot <ci@example.com>")
        self.call(d, "POST", "/v1/models", expect=201, json={"name": "anomaly-detector"})
        t0 = time.time()
        v1 = self.register(d, "anomaly-detector", "v1", self.commits[0], 0.91)
        wait_for(lambda: "model-anomaly-detector-v1" in self.tags(), what="the v1 tag")
        latency = time.time() - t0
        self.register(d, "anomaly-detector", "1.2.0", self.commits[1])
        self.call(d, "POST", "/v1/models/anomaly-detector/promote", json={"version": "v1"})
        self.call(d, "PUT", "/v1/models/anomaly-detector/canary", json={"version": "1.2.0",
                                                                       "percent": 10})
        self.call(d, "POST", "/v1/models/anomaly-detector/canary/promote")
        want = {
            "model-anomaly-detector-v1": f"tag {self.commits[0]}",
            "model-anomaly-detector-1.2.0": f"tag {self.commits[1]}",
            "anomaly-detector@v1.2.0": f"tag {self.commits[1]}",
            "anomaly-detector#current#1": f"tag {self.commits[0]}",
            "anomaly-detector#canary#2": f"tag {self.commits[1]}",
            "anomaly-detector#current#3": f"tag {self.commits[1]}",
            "anomaly-detector#canary!#4": f"tag {self.commits[1]}",
        }
        wait_for(lambda: self.tags() == want, what=f"tags {want} (have {self.tags()})")
        msg = git("cat-file", "-p", "model-anomaly-detector-v1", cwd=self.repo)
        self.assertIn("tagger CI Bot <ci@example.com>", msg)
        self.assertIn(f"anomaly-detector v1: accuracy 0.91, validation passed, sha256 "
                      f"{v1['digest']}", msg)
        self.assertEqual(git("tag", "-l", "model-*", cwd=self.repo).splitlines(),
                         ["model-anomaly-detector-1.2.0", "model-anomaly-detector-v1"])
        self.assertIn("git sync on: repo=" + self.repo, d.read_log())
        # Beside the running daemon, read-only: clean, and the queue is drained.
        p = modelfs("git-sync", d.store)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("clean: 0 mismatches", p.stdout)
        p = modelfs("git-sync", d.store, "--status")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("pending 0, pushing 0, failed 0", p.stdout)
        # Reverse lineage over HTTP finds the versions tagged at a commit.
        found = self.call(d, "GET", f"/v1/lineage?git_commit={self.commits[1][:12]}")
        self.assertIn("1.2.0", [v["version"] for v in found["versions"]])
        # The queue over HTTP and in /metrics.
        g = self.call(d, "GET", "/v1/git")
        self.assertTrue(g["configured"])
        self.assertEqual((g["config"]["repo"], g["config"]["gto"]), (self.repo, True))
        self.assertEqual((g["queue"]["pending"], g["queue"]["done"], g["items"]), (0, 7, []))
        done = self.call(d, "GET", "/v1/git?state=done&limit=2")["items"]
        self.assertEqual([(i["kind"], i["tag"]) for i in done],
                         [("version", "model-anomaly-detector-v1"),
                          ("version", "model-anomaly-detector-1.2.0")])
        self.assertEqual(done[0]["commit"], self.commits[0])
        text = requests.get(d.url + "/metrics", timeout=10).text
        self.assertIn("modelfs_git_sync_configured 1", text.splitlines())
        self.assertIn('modelfs_git_queue_items{state="done"} 7', text.splitlines())
        self.assertEqual(d.stop(), 0)
        # A tag moved by hand and one for a version the registry lacks: exit 1.
        git("tag", "-f", "-a", "model-anomaly-detector-v1", "-m", "moved", self.commits[2],
            cwd=self.repo)
        git("tag", "-a", "model-anomaly-detector-v9", "-m", "x", self.commits[2], cwd=self.repo)
        p = modelfs("git-sync", d.store)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"wrong-commit +model-anomaly-detector-v1 ")
        self.assertRegex(p.stdout, r"unknown-version +model-anomaly-detector-v9 ")
        # The daemon reports the same at its next start.
        d2 = self.serve(store=d.store)
        wait_for(lambda: "read-back: 2 mismatches" in d2.read_log(), what="the read-back log")
        self.assertIn("wrong-commit tag=model-anomaly-detector-v1", d2.read_log())
        print(f"# seal-to-tag through the daemon: {latency * 1000:.0f} ms", file=sys.stderr)

    def test_push_to_bare_remote_from_env(self):
        bare = os.path.join(self.tmp, "origin.git")
        git("init", "-q", "--bare", bare)
        git("remote", "add", "origin", bare, cwd=self.repo)
        git("push", "-q", "origin", "main", cwd=self.repo)
        os.environ["MODELFS_GIT_REMOTE"] = "origin"
        try:
            d = self.serve(env_repo=self.repo)
        finally:
            os.environ.pop("MODELFS_GIT_REMOTE")
        self.call(d, "POST", "/v1/models", expect=201, json={"name": "lstm-autoencoder"})
        self.register(d, "lstm-autoencoder", "v1", self.commits[2])
        wait_for(lambda: self.tags(bare).get("model-lstm-autoencoder-v1") ==
                 f"tag {self.commits[2]}", what="the tag on the remote")
        self.assertEqual(git("rev-parse", "model-lstm-autoencoder-v1", cwd=bare),
                         git("rev-parse", "model-lstm-autoencoder-v1", cwd=self.repo))

    def test_missing_repository_does_not_block(self):
        later = os.path.join(self.tmp, "not-yet")
        d = self.serve("--git-repo", later)
        self.call(d, "POST", "/v1/models", expect=201, json={"name": "m"})
        self.register(d, "m", "v1", self.commits[0])
        self.register(d, "m", "v2", None)  # no git_commit: reported, not skipped
        self.call(d, "POST", "/v1/models/m/promote", json={"version": "v1"})
        self.assertIn("no repository there", d.read_log())
        p = modelfs("git-sync", d.store, "--status")
        self.assertIn("pending 2", p.stdout)
        self.assertIn("no repository there", p.stdout)
        g = self.call(d, "GET", "/v1/git")
        self.assertEqual(g["queue"]["pending"], 2)
        self.assertIn("no repository there", g["queue"]["last_error"])
        self.assertEqual([i["state"] for i in g["items"]], ["pending", "pending"])
        self.assertEqual(g["items"][0]["attempts"], 1)
        text = requests.get(d.url + "/metrics", timeout=10).text.splitlines()
        self.assertIn('modelfs_git_queue_items{state="pending"} 2', text)
        self.assertEqual(d.stop(), 0)
        # The repository turns up (a clone of the training repo): the next daemon catches up.
        git("clone", "-q", "--bare", self.repo, later)
        d2 = self.serve(store=d.store)
        wait_for(lambda: "model-m-v1" in self.tags(later), what="the delayed tag")
        wait_for(lambda: "missing commit 1" in modelfs("git-sync", d.store, "--status").stdout,
                 what="v2 reported")
        p = modelfs("git-sync", d.store, "--status")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("failed 1 (missing commit 1", p.stdout)
        self.assertIn("has no git_commit", p.stdout)
        self.assertEqual(d2.stop(), 0)

    def test_sigkill_then_restart_tags_exactly_once(self):
        d = self.serve("--git-repo", self.repo, "--git-gto-tags")
        self.call(d, "POST", "/v1/models", expect=201, json={"name": "m"})
        names = []
        for i in range(12):
            self.register(d, "m", f"v{i}", self.commits[i % 3])
            self.call(d, "POST", "/v1/models/m/promote", json={"version": f"v{i}"})
            names.append(f"v{i}")
        os.kill(d.proc.pid, signal.SIGKILL)  # our own child, by PID
        d.proc.wait()
        d.proc = None
        d.log.close()
        d2 = self.serve(store=d.store)
        want_versions = {f"model-m-{n}" for n in names}
        wait_for(lambda: want_versions <= set(self.tags()), what="every version tag")
        wait_for(lambda: len([t for t in self.tags() if t.startswith("m#current#")]) == 12,
                 what="every promotion tag")
        self.assertEqual(d2.stop(), 0)
        tags = self.tags()
        self.assertEqual(len(tags), 24, tags)
        self.assertEqual(sorted(t for t in tags if t.startswith("m#")),
                         sorted(f"m#current#{n}" for n in range(1, 13)))
        for i in range(12):
            self.assertEqual(tags[f"model-m-v{i}"], f"tag {self.commits[i % 3]}")
            self.assertEqual(tags[f"m#current#{i + 1}"], f"tag {self.commits[i % 3]}")
        p = modelfs("git-sync", d.store)
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_offline_backfill_of_an_adopted_tree(self):
        store = os.path.join(self.tmp, "store")
        os.makedirs(f"{store}/anomaly-detector/v1")
        with open(f"{store}/anomaly-detector/v1/model.pkl", "w") as f:
            f.write("forest")
        with open(f"{store}/anomaly-detector/v1/metadata.json", "w") as f:
            f.write('{"git_commit": "%s", "validation_status": "passed"}' % self.commits[0][:7])
        self.assertEqual(modelfs("init", store).returncode, 0)
        p = modelfs("git-sync", store, "--repo", self.repo)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout, r"missing-tag +model-anomaly-detector-v1 ")
        p = modelfs("git-sync", store, "--repo", self.repo, "--run", "--backfill")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 version tag queued", p.stdout)
        self.assertEqual(self.tags(), {"model-anomaly-detector-v1": f"tag {self.commits[0]}"})
        # Bad input: a clear error, nothing changes.
        p = modelfs("git-sync", store, "--repo", self.repo, "--run", "--tag-format", "{model}")
        self.assertEqual(p.returncode, 2)
        self.assertIn("{model} and {version}", p.stderr)
        self.assertIn("format model-{model}-{version}", modelfs("git-sync", store, "--status").stdout)


def main():
    global MODELFS
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
