# SPDX-License-Identifier: Apache-2.0
"""Both views of one daemon agree at once: HTTP changes show through the mount
(the kernel caches entries for a day, so this proves the invalidation), and
mount changes show over HTTP and in the history with the caller's uid.

usage: test_crossview.py /path/to/modelfs
"""
import json
import os
import subprocess
import sys
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon  # noqa: E402

MODELFS = None
PASSED = {"validation_status": "passed", "git_commit": "3f2a9c1",
          "performance_metrics": {"accuracy": 0.93}}


class CrossViewTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS).start()
        cls.url = f"http://127.0.0.1:{cls.d.port}"

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.d.cleanup()
        assert rc == 0, f"modelfs serve exited {rc}"

    def call(self, method, path, expect=200, **kw):
        r = requests.request(method, self.url + path, timeout=30, **kw)
        self.assertEqual(r.status_code, expect, f"{method} {path}: {r.status_code} {r.text}")
        return r

    def make(self, model, versions):
        self.call("POST", "/v1/models", 201, json={"name": model})
        for v in versions:
            self.call("POST", f"/v1/models/{model}/versions", 201,
                      json={"name": v, "metadata": PASSED})
            self.call("PUT", f"/v1/models/{model}/versions/{v}/files/model.pkl", 201,
                      data=f"{model} {v}".encode())

    def test_http_promotion_visible_in_mount_at_once(self):
        self.make("xv-http", ["v1", "v2"])
        m = os.path.join(self.d.mnt, "xv-http")
        self.call("POST", "/v1/models/xv-http/promote", json={"version": "v1"})
        self.assertEqual(os.readlink(f"{m}/current"), "v1")  # now cached by the kernel
        for i in range(20):
            want = "v2" if i % 2 == 0 else "v1"
            if i % 4 == 3:
                self.call("POST", "/v1/models/xv-http/rollback", json={})
            else:
                self.call("POST", "/v1/models/xv-http/promote", json={"version": want})
            self.assertEqual(os.readlink(f"{m}/current"), want, f"step {i}")
            with open(f"{m}/current/model.pkl") as f:
                self.assertEqual(f.read(), f"xv-http {want}")
        # Canary set and cleared over HTTP, and the generated file, at once too.
        self.call("PUT", "/v1/models/xv-http/canary", json={"version": "v2", "percent": 10})
        self.assertEqual(os.readlink(f"{m}/canary"), "v2")
        self.assertEqual(json.load(open(f"{m}/metadata.json"))["canary_traffic_percent"], 10)
        self.call("DELETE", "/v1/models/xv-http/canary", 204)
        self.assertFalse(os.path.lexists(f"{m}/canary"))
        # A version made over HTTP is listed and readable in the mount.
        self.call("POST", "/v1/models/xv-http/versions", 201, json={"name": "v3"})
        self.assertIn("v3", os.listdir(m))
        self.call("POST", "/v1/models/xv-http/versions/v3/seal")
        self.assertEqual(os.stat(f"{m}/v3").st_mode & 0o222, 0)

    def test_mount_change_visible_over_http_with_uid(self):
        self.make("xv-fs", ["v1", "v2"])
        m = os.path.join(self.d.mnt, "xv-fs")
        subprocess.run(["ln", "-sfn", "v2", f"{m}/current"], check=True)
        r = self.call("GET", "/v1/models/xv-fs/aliases/current").json()
        self.assertEqual(r["version"], "v2")
        hist = self.call("GET", "/v1/models/xv-fs/history", params={"kind": "alias.set"}).json()
        events = hist["events"] if isinstance(hist, dict) else hist
        last = events[-1]
        self.assertEqual((last["alias"], last["after"], last["channel"]), ("current", "v2", "fs"))
        self.assertRegex(last["actor"], r"^uid=0,gid=0,pid=\d+$")
        # A metadata.json written through the mount is the record over HTTP.
        os.mkdir(f"{m}/v3")
        with open(f"{m}/v3/metadata.json", "w") as f:
            json.dump({"validation_status": "pending", "notes": "from the notebook"}, f)
        got = self.call("GET", "/v1/models/xv-fs/versions/v3").json()
        self.assertEqual(got["metadata"]["notes"], "from the notebook")
        self.assertEqual(got["state"], "draft")


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
