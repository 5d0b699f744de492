# SPDX-License-Identifier: Apache-2.0
"""Webhooks over the outbox, against a real receiver process on 127.0.0.1.

The receiver (a separate python process, stopped by its PID) checks each
delivery's HMAC signature and writes one JSON line per request it received
(before answering) and per request it answered 2xx. Tests: signatures,
CloudEvents shape and per-subscription order; the receiver gone for a while
(deliveries resume, in order, none lost); the daemon SIGKILLed while a
delivery is in flight (every event delivered at least once, a duplicate
carries the same id).
"""
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import requests

from apiutil import Client, Daemon, OpenAPI
from fsutil import wait_for

MODELFS = sys.argv[1] if len(sys.argv) > 1 else "build/cli/modelfs"
SECRET = "whsec-0123456789"
PASSED = {"validation_status": "passed", "performance_metrics": {"accuracy": 0.91}}

RECEIVER = r'''
import hashlib, hmac, json, os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, log, secret, delay_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def note(rec):
    with open(log, "a") as f:
        f.write(json.dumps(rec) + "\n")

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ts = self.headers.get("X-Modelfs-Timestamp", "")
        want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(want, self.headers.get("X-Modelfs-Signature", ""))
        ev = json.loads(body)
        rec = {"id": ev.get("id"), "type": ev.get("type"), "sig_ok": ok,
               "key": self.headers.get("Idempotency-Key"),
               "ctype": self.headers.get("Content-Type"), "ce": ev}
        note(dict(rec, phase="received"))
        if os.path.exists(delay_file):
            time.sleep(float(open(delay_file).read() or "5"))
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()
        note(dict(rec, phase="answered"))

HTTPServer.allow_reuse_address = True
HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    def __init__(self, base):
        self.dir = tempfile.mkdtemp(prefix="receiver-", dir=base)
        self.script = os.path.join(self.dir, "receiver.py")
        with open(self.script, "w") as f:
            f.write(RECEIVER)
        self.log = os.path.join(self.dir, "log.jsonl")
        self.delay = os.path.join(self.dir, "delay")
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", self.script, str(self.port), self.log,
                                      SECRET, self.delay])

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, "the receiver listens")

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def records(self, phase="answered"):
        try:
            with open(self.log) as f:
                return [r for r in map(json.loads, f) if r["phase"] == phase]
        except OSError:
            return []


class WebhookTest(unittest.TestCase):
    def setUp(self):
        self.base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(self.base, exist_ok=True)
        self.rx = Receiver(self.base)
        self.d = None

    def tearDown(self):
        self.rx.stop()
        rc, log = 0, ""
        if self.d and self.d.proc:
            rc = self.d.stop()
            log = self.d.read_log()
        if self.d:
            self.d.cleanup()
        subprocess.run(["rm", "-rf", "--one-file-system", self.rx.dir])
        # A clean stop (and, under ASan, no leak report) after every test.
        self.assertEqual(rc, 0, log[-3000:])

    def start_daemon(self, store=None):
        self.d = Daemon(MODELFS, extra=["--outbox-backoff-max", "1000", "--webhook-timeout", "2000"],
                        store=store).start()
        self.c = Client(self.d, OpenAPI(requests.get(self.d.url + "/openapi.json", timeout=10).json()))

    def version(self, model, seal=True):
        c = self.c
        if c.get(f"/v1/models/{model}", expect=None).status_code == 404:
            c.post("/v1/models", {"name": model}, expect=201)
        v = c.post(f"/v1/models/{model}/versions", {"metadata": PASSED}, expect=201).json()["name"]
        c.put(f"/v1/models/{model}/versions/{v}/files/model.pkl", data=f"{model} {v}".encode(),
              expect=201)
        if seal:
            c.post(f"/v1/models/{model}/versions/{v}/seal")
        return v

    def expected(self, model, kinds):
        """Event ids of the model's history of these kinds, oldest first."""
        hist = self.c.get(f"/v1/models/{model}/history?limit=1000").json()
        events = hist["events"] if isinstance(hist, dict) else hist
        return sorted(e["id"] for e in events if e["kind"] in kinds)

    def subscribe(self, events, models=None):
        body = {"url": self.rx.url, "events": events, "secret": SECRET}
        if models is not None:
            body["models"] = models
        r = self.c.post("/v1/webhooks", body, expect=201).json()
        self.assertNotIn("secret", r)
        self.assertEqual(r["url"], self.rx.url)
        return r["id"]

    def test_signed_ordered_and_resumes(self):
        self.rx.start()
        self.start_daemon()
        c = self.c
        # Refusals: a bad URL, no secret, an unknown field.
        c.post("/v1/webhooks", {"url": "ftp://x", "events": ["*"], "secret": "s"}, expect=422)
        c.post("/v1/webhooks", {"url": self.rx.url, "events": ["*"]}, expect=400)
        c.post("/v1/webhooks", {"url": self.rx.url, "events": ["*"], "secret": "s", "x": 1},
               expect=400)
        c.post("/v1/webhooks", {"url": self.rx.url, "events": ["a*b"], "secret": "s"}, expect=422)
        wid = self.subscribe(["alias.*", "version.seal"], models=["fraud"])
        self.assertNotIn("secret", c.get(f"/v1/webhooks/{wid}").json())
        self.assertEqual([w["id"] for w in c.get("/v1/webhooks").json()["webhooks"]], [wid])
        c.get("/v1/webhooks/999", expect=404)
        c.get("/v1/webhooks/abc", expect=404)
        kinds = ("alias.set", "alias.delete", "version.seal")
        v1 = self.version("fraud")
        v2 = self.version("fraud")
        self.version("other")  # another model: not delivered
        c.post("/v1/models/fraud/promote", {"version": v1})
        c.post("/v1/models/fraud/promote", {"version": v2})
        want = self.expected("fraud", kinds)
        self.assertEqual(len(want), 4)
        wait_for(lambda: len(self.rx.records()) >= len(want), 20, "deliveries")
        got = self.rx.records()
        self.assertEqual([int(r["id"]) for r in got], want)
        for r in got:
            self.assertTrue(r["sig_ok"], r)
            self.assertEqual(r["key"], r["id"])
            self.assertTrue(r["ctype"].startswith("application/cloudevents+json"))
            ce = r["ce"]
            self.assertEqual(ce["specversion"], "1.0")
            self.assertEqual(ce["type"], "io.modelfs." + ce["data"]["kind"])
            self.assertEqual(ce["source"], "/modelfs/models/fraud")
            self.assertEqual(ce["data"]["id"], int(ce["id"]))
            self.assertEqual(ce["time"], ce["data"]["ts"])
        self.assertEqual(got[-1]["ce"]["type"], "io.modelfs.alias.set")
        self.assertEqual(got[-1]["ce"]["data"]["after"], v2)

        # The receiver goes away: deliveries wait, fail with backoff, and show.
        self.rx.stop()
        c.post("/v1/models/fraud/rollback", {})
        v3 = self.version("fraud")
        c.post("/v1/models/fraud/promote", {"version": v3})

        def failing():
            o = c.get(f"/v1/outbox?subscriber={wid}&limit=10").json()
            s = o["subscribers"][0]
            return s["pending"] >= 3 and s["attempts"] >= 2 and s["last_error"]
        wait_for(failing, 20, "the outbox shows the failing subscriber")
        o = c.get("/v1/outbox").json()
        self.assertGreaterEqual(o["pending"], 3)
        self.assertEqual(o["failing"], 1)
        ready = c.get("/readyz").json()
        self.assertGreaterEqual(ready["outbox"]["pending"], 3)
        metrics = c.get("/metrics").text
        self.assertIn(f'modelfs_outbox_items{{subscriber="{wid}",adapter="webhook",state="done"}} 4',
                      metrics)
        self.assertIn("modelfs_outbox_failing_subscribers 1", metrics)
        log = c.get(f"/v1/webhooks/{wid}?limit=3").json()
        self.assertEqual(len(log["deliveries"]), 3)
        self.assertTrue(log["deliveries"][-1]["last_error"])

        # It comes back: the rest arrives, in order, none lost.
        self.rx.start()
        want = self.expected("fraud", kinds)
        wait_for(lambda: len(self.rx.records()) >= len(want), 30, "deliveries resume")
        got = [int(r["id"]) for r in self.rx.records()]
        self.assertEqual(got, want)
        wait_for(lambda: c.get("/v1/outbox").json()["pending"] == 0, 10, "an empty backlog")
        self.assertEqual(c.get("/v1/outbox").json()["failing"], 0)

        # Deleted: nothing more is queued for it.
        self.assertEqual(c.delete(f"/v1/webhooks/{wid}", expect=200).json(),
                         {"id": wid, "deleted": True})
        c.delete(f"/v1/webhooks/{wid}", expect=404)
        c.post("/v1/models/fraud/rollback", {})
        time.sleep(1)
        self.assertEqual(len(self.rx.records()), len(want))

    def test_sigkill_mid_delivery(self):
        self.rx.start()
        self.start_daemon()
        store = self.d.store
        wid = self.subscribe(["alias.set"])
        v1 = self.version("m")
        v2 = self.version("m")
        c = self.c
        c.post("/v1/models/m/promote", {"version": v1})
        wait_for(lambda: len(self.rx.records()) == 1, 20, "the first delivery")
        # The next delivery hangs in the receiver; the daemon dies meanwhile.
        with open(self.rx.delay, "w") as f:
            f.write("3")
        c.post("/v1/models/m/promote", {"version": v2})
        wait_for(lambda: len(self.rx.records("received")) == 2, 20, "the second delivery starts")
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait()
        self.d.proc = None
        self.d.log.close()
        os.remove(self.rx.delay)
        # Restarted on the same store: the interrupted delivery is made again.
        d_old = self.d
        self.addCleanup(d_old.cleanup)  # its directory holds the store
        self.start_daemon(store=store)
        c = self.c
        c.post("/v1/models/m/promote", {"version": v1})
        want = self.expected("m", ("alias.set",))
        self.assertEqual(len(want), 3)

        def all_answered():
            return set(int(r["id"]) for r in self.rx.records()) >= set(want)
        wait_for(all_answered, 30, "every event answered")
        got = self.rx.records("received")
        ids = [int(r["id"]) for r in got]
        self.assertEqual(sorted(set(ids)), want)
        # The interrupted one came twice, with the same id, key and event.
        dup = [r for r in got if int(r["id"]) == want[1]]
        self.assertGreaterEqual(len(dup), 2)
        self.assertEqual(len({json.dumps(r["ce"]["data"], sort_keys=True) for r in dup}), 1)
        self.assertEqual({r["key"] for r in dup}, {str(want[1])})
        # Per subscription in order: first deliveries of each id in id order.
        first = []
        for i in ids:
            if i not in first:
                first.append(i)
        self.assertEqual(first, want)
        wait_for(lambda: c.get(f"/v1/webhooks/{wid}").json()["pending"] == 0, 10, "no backlog")

    def test_retrain_trigger_delivered(self):
        self.rx.start()
        self.start_daemon()
        c = self.c
        self.subscribe(["retrain.requested"])
        v1 = self.version("churn")
        c.post("/v1/models/churn/promote", {"version": v1})
        c.put("/v1/models/churn/triggers", {"accuracy": {"below": 0.85, "window_seconds": 1},
                                            "drift": {"below": 0.05}})
        obs = f"/v1/models/churn/versions/{v1}/observations"
        c.post(obs, {"metric": "accuracy", "value": 0.8}, expect=201)
        self.assertTrue(c.get("/v1/models/churn/triggers").json()["below_since"])
        time.sleep(1.2)
        c.post(obs, {"metric": "accuracy", "value": 0.8}, expect=201)   # a whole window below
        c.post(obs, {"metric": "accuracy", "value": 0.7}, expect=201)   # same episode
        c.post(obs, {"metric": "drift_p_value", "value": 0.01}, expect=201)  # same episode
        self.assertTrue(c.get("/v1/models/churn/triggers").json()["episode_open"])
        wait_for(lambda: len(self.rx.records()) >= 1, 20, "the retrain event")
        time.sleep(0.5)
        got = self.rx.records()
        self.assertEqual(len(got), 1)
        ce = got[0]["ce"]
        self.assertEqual(ce["type"], "io.modelfs.retrain.requested")
        self.assertEqual(ce["data"]["detail"]["rule"], "accuracy")
        self.assertEqual(ce["data"]["version"], v1)
        # A new version sealed closes the episode; drift on the serving version opens the next.
        self.version("churn")
        self.assertFalse(c.get("/v1/models/churn/triggers").json()["episode_open"])
        c.post(obs, {"metric": "drift_p_value", "value": 0.01}, expect=201)
        wait_for(lambda: len(self.rx.records()) >= 2, 20, "the second retrain event")
        self.assertEqual(self.rx.records()[1]["ce"]["data"]["detail"]["rule"], "drift")
        hist = c.get("/v1/models/churn/history?kind=retrain.requested").json()
        events = hist["events"] if isinstance(hist, dict) else hist
        self.assertEqual(len(events), 2)

    def test_webhooks_file(self):
        self.rx.start()
        path = os.path.join(self.rx.dir, "hooks.json")
        with open(path, "w") as f:
            json.dump([{"url": self.rx.url, "events": ["model.create"], "secret": SECRET}], f)
        self.d = Daemon(MODELFS, extra=["--webhooks-file", path]).start()
        self.c = Client(self.d, OpenAPI(requests.get(self.d.url + "/openapi.json", timeout=10).json()))
        self.c.post("/v1/models", {"name": "filed"}, expect=201)
        wait_for(lambda: len(self.rx.records()) == 1, 20, "a delivery to the filed webhook")
        self.assertEqual(self.rx.records()[0]["type"], "io.modelfs.model.create")
        # A restart with the same file adds nothing.
        store = self.d.store
        self.assertEqual(self.d.stop(), 0)
        self.addCleanup(self.d.cleanup)
        self.d = Daemon(MODELFS, extra=["--webhooks-file", path], store=store).start()
        self.c = Client(self.d, OpenAPI(requests.get(self.d.url + "/openapi.json", timeout=10).json()))
        self.assertEqual(len(self.c.get("/v1/webhooks").json()["webhooks"]), 1)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
