# SPDX-License-Identifier: Apache-2.0
"""The web UI end to end: a real `modelfs serve` with tokens and a real store,
filled over HTTP, driven in headless Chromium (Debian's /usr/bin/chromium) by
tests/ui/e2e.mjs through playwright-core. Every page, every action (a refused
promotion included), the timeline after a rollback, keyboard-only use of the
versions table, escaping, and no console errors. Screenshots of each page land
in $MODELFS_UI_SCREENSHOTS (the build directory).

A step whose route /openapi.json lacks (archive, refusals, tags) fails with
the route named: the UI relies on every route it calls.

usage: test_ui.py /path/to/modelfs
"""
import datetime
import os
import shutil
import subprocess
import sys
import time
import unittest

import requests

from apiutil import Daemon

MODELFS = None
SOURCE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
UI_TESTS = os.path.join(SOURCE_ROOT, "tests", "ui")
CHROMIUM = "/usr/bin/chromium"
ADMIN = "admin-secret-0123456789"
READER = "reader-secret-0123456789"
TOKENS = {"ops-admin": ("admin", ADMIN), "dashboard": ("reader", READER)}
MODEL = "anomaly-detector"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Seed:
    """Fills a daemon over HTTP as the admin token."""

    def __init__(self, url):
        self.url = url
        self.s = requests.Session()
        self.s.headers["Authorization"] = "Bearer " + ADMIN

    def call(self, method, path, body=None, expect=(200, 201), data=None):
        r = self.s.request(method, self.url + path, json=body, data=data, timeout=30)
        if r.status_code not in (expect if isinstance(expect, tuple) else (expect,)):
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r

    def version(self, model, name, meta, content):
        self.call("POST", f"/v1/models/{model}/versions", {"name": name, "metadata": meta})
        self.call("PUT", f"/v1/models/{model}/versions/{name}/files/model.pkl", data=content)
        self.call("POST", f"/v1/models/{model}/versions/{name}/seal")


def meta(commit, data_hash, acc, status, **extra):
    m = {"git_commit": commit, "training_data_hash": data_hash,
         "training_notebook": "notebooks/train_isolation_forest.ipynb",
         "training_data": {"start_date": "2026-10-01", "end_date": "2026-10-31", "rows": 44640},
         "hyperparameters": {"n_estimators": 100, "contamination": 0.05},
         "performance_metrics": {"accuracy": acc, "precision": round(acc - 0.03, 2),
                                 "recall": round(acc - 0.05, 2), "f1_score": round(acc - 0.04, 2)},
         "validation_status": status}
    m.update(extra)
    return m


def seed(url):
    """The story the e2e test reads; returns (t0, t1): before any alias, and while v1 served."""
    s = Seed(url)
    doc = requests.get(url + "/openapi.json", timeout=10).json()
    s.call("POST", "/v1/models", {"name": MODEL})
    s.call("POST", "/v1/models", {"name": "lstm-autoencoder"})
    s.version("lstm-autoencoder", "v1", meta("0a1b2c3", "sha256:0f0f", 0.88, "passed"), b"lstm")
    t0 = now_iso()
    time.sleep(1.1)
    s.version(MODEL, "v1", meta("c0ffee1", "sha256:aaaa", 0.91, "passed"), b"iforest v1")
    s.version(MODEL, "v2", meta("c0ffee2", "sha256:aaaa", 0.93, "passed", parent_version="v1"),
              b"iforest v2")
    s.version(MODEL, "v3", meta("c0ffee3", "sha256:bbbb", 0.80, "failed"), b"iforest v3")
    s.version(MODEL, "v4", meta("c0ffee2", "sha256:cccc", 0.95, "passed"), b"iforest v4")
    s.version(MODEL, "v5", meta("c0ffee5", "sha256:dddd", 0.94, "passed",
                                training_notebook="<img src=x onerror=window.__xss=1>"),
              b"iforest v5")
    s.call("PUT", f"/v1/models/{MODEL}/policy",
           {"validation_status": "passed",
            "metrics": {"performance_metrics.accuracy": {"min": 0.85}},
            "max_total_size": 104857600})
    s.call("POST", f"/v1/models/{MODEL}/promote", {"version": "v1"})
    time.sleep(1.1)
    t1 = now_iso()
    time.sleep(1.1)
    s.call("POST", f"/v1/models/{MODEL}/promote", {"version": "v2"})
    s.call("POST", f"/v1/models/{MODEL}/promote", {"version": "v3"}, expect=409)
    for v in (0.93, 0.92, 0.925, 0.91, 0.90):
        s.call("POST", f"/v1/models/{MODEL}/versions/v2/observations",
               {"metric": "accuracy", "value": v})
    if "/v1/search" in doc["paths"]:
        # Version tags live in the metadata record and change after sealing (the search work).
        s.call("PATCH", f"/v1/models/{MODEL}/versions/v2/metadata",
               {"tags": {"stage": "prod-candidate"}})
    if "patch" in doc["paths"].get("/v1/models/{model}", {}):
        s.call("PATCH", f"/v1/models/{MODEL}",
               {"description": "Isolation Forest over the payment stream", "owner": "alice",
                "tags": {"team": "sre"}})
    return t0, t1


class UITest(unittest.TestCase):
    def test_ui_end_to_end(self):
        if not os.access(CHROMIUM, os.X_OK):
            self.skipTest(f"{CHROMIUM} is missing: ./dev setup installs Debian's chromium")
        if not os.path.isdir(os.path.join(UI_TESTS, "node_modules", "playwright-core")):
            self.skipTest("tests/ui/node_modules is missing: ./dev setup runs npm ci there")
        out = os.environ.get("MODELFS_UI_SCREENSHOTS") or os.path.join(
            os.environ.get("MODELFS_TEST_TMP", "/tmp"), "ui-screenshots")
        shutil.rmtree(out, ignore_errors=True)
        d = Daemon(MODELFS, tokens=TOKENS).start()
        try:
            t0, t1 = seed(d.url)
            p = subprocess.run(["node", os.path.join(UI_TESTS, "e2e.mjs"), "--url", d.url,
                                "--token", ADMIN, "--out", out, "--t0", t0, "--t1", t1],
                               cwd=UI_TESTS, capture_output=True, text=True, timeout=240,
                               env=dict(os.environ, TZ="UTC"))
            print(p.stdout, p.stderr, sep="\n")
            self.assertEqual(p.returncode, 0, "the browser test failed (above); screenshots in " + out)
            for name in ("overview", "model", "version", "refused", "timeline-after-rollback"):
                self.assertTrue(os.path.exists(os.path.join(out, name + ".png")), name)
            # The browser's changes are the registry's: the rollback with its reason, by the token.
            ev = requests.get(f"{d.url}/v1/models/{MODEL}/history?kind=alias.", timeout=10).json()
            rb = [e for e in ev["events"] if (e["detail"] or {}).get("reason") ==
                  "latency regression in eu-west"]
            self.assertEqual(len(rb), 1, ev)
            self.assertEqual((rb[0]["before"], rb[0]["after"], rb[0]["actor"], rb[0]["channel"]),
                             ("v4", "v2", "ops-admin", "api"))
            cur = requests.get(f"{d.url}/v1/models/{MODEL}/aliases/current", timeout=10).json()
            self.assertEqual(cur["version"], "v5")
        finally:
            rc = d.stop()
            log = d.read_log()
            d.cleanup()
            self.assertEqual(rc, 0, log[-2000:])

    def test_ui_auth_reads(self):
        # With --auth-reads the API wants a token for reads: the page says so,
        # takes one, and reads with it for the rest of the tab's session.
        if not os.access(CHROMIUM, os.X_OK) or not os.path.isdir(
                os.path.join(UI_TESTS, "node_modules", "playwright-core")):
            self.skipTest("chromium or tests/ui/node_modules is missing: ./dev setup")
        out = os.environ.get("MODELFS_UI_SCREENSHOTS") or os.path.join(
            os.environ.get("MODELFS_TEST_TMP", "/tmp"), "ui-screenshots")
        d = Daemon(MODELFS, extra=["--auth-reads"], tokens=TOKENS).start()
        try:
            Seed(d.url).call("POST", "/v1/models", {"name": MODEL})
            self.assertEqual(requests.get(d.url + "/v1/models", timeout=10).status_code, 401)
            self.assertEqual(requests.get(d.url + "/ui/", timeout=10).status_code, 200)
            p = subprocess.run(["node", os.path.join(UI_TESTS, "e2e.mjs"), "--mode", "auth",
                                "--url", d.url, "--token", READER, "--out", out],
                               cwd=UI_TESTS, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, TZ="UTC"))
            print(p.stdout, p.stderr, sep="\n")
            self.assertEqual(p.returncode, 0, "the browser test failed (above)")
        finally:
            rc = d.stop()
            log = d.read_log()
            d.cleanup()
            self.assertEqual(rc, 0, log[-2000:])


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
