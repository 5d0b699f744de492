#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The outbox: webhook delivery latency from commit to receiver (p50/p99),
backlog drain rate after a receiver outage, and what subscribers add to a
promotion (p50/p99 of POST /promote with 0 and with N webhook subscribers).

The receiver is an in-process HTTP server on 127.0.0.1 that answers 204 and
notes the arrival time; the commit time is the event's own timestamp (the
CloudEvent's `time`), taken by the daemon inside the transaction, on the
same clock.

usage: bench/run outbox [--events N] [--subscribers N] [--modelfs PATH]
"""
import argparse
import datetime
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Rx:
    def __init__(self):
        self.arrivals = []
        self.lock = threading.Lock()
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # a stopped receiver keeps no connection open

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                ev = json.loads(body)
                with rx.lock:
                    rx.arrivals.append((ev["id"], ev["time"], now))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.handler = H
        self.srv = None

    def start(self):
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def daemon(modelfs, workdir, name):
    d = os.path.join(workdir, name)
    os.makedirs(os.path.join(d, "store"))
    ready = os.path.join(d, "ready")
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen([modelfs, "serve", "--store", os.path.join(d, "store"), "--listen",
                          "127.0.0.1:0", "--ready-file", ready, "--log-level", "warn",
                          "--outbox-backoff-max", "200"], stdout=log, stderr=log)
    for _ in range(200):
        if os.path.exists(ready) and open(ready).read().strip():
            break
        time.sleep(0.05)
    port = int(open(ready).read().split("=")[1])
    return p, f"http://127.0.0.1:{port}"


def model(s, url, name):
    s.post(f"{url}/v1/models", json={"name": name}).raise_for_status()
    vs = []
    for _ in range(2):
        v = s.post(f"{url}/v1/models/{name}/versions",
                   json={"metadata": {"validation_status": "passed"}}).json()["name"]
        s.put(f"{url}/v1/models/{name}/versions/{v}/files/model.pkl", data=b"x").raise_for_status()
        s.post(f"{url}/v1/models/{name}/versions/{v}/seal").raise_for_status()
        vs.append(v)
    return vs


def promotions(s, url, name, vs, n):
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        s.post(f"{url}/v1/models/{name}/promote", json={"version": vs[i % 2]}).raise_for_status()
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modelfs", default="build/cli/modelfs")
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--subscribers", type=int, default=5)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-outbox-")
    procs = []
    try:
        s = requests.Session()
        # 1. Latency, one subscriber, one event at a time.
        rx = Rx()
        rx.start()
        p, url = daemon(a.modelfs, work, "latency")
        procs.append(p)
        s.post(f"{url}/v1/webhooks", json={"url": f"http://127.0.0.1:{rx.port}/", "events": ["alias.set"],
                                           "secret": "s"}).raise_for_status()
        vs = model(s, url, "m")
        for i in range(a.events):
            n = len(rx.arrivals)
            s.post(f"{url}/v1/models/m/promote", json={"version": vs[i % 2]}).raise_for_status()
            while len(rx.arrivals) == n:
                time.sleep(0.0005)
        lat = [(now - ts(t)) * 1000 for _, t, now in rx.arrivals]
        print(f"delivery latency commit->receiver: n={len(lat)} p50={pct(lat, 50):.2f} ms "
              f"p99={pct(lat, 99):.2f} ms")
        # 2. Drain: the receiver is away while events pile up.
        rx.stop()
        base = len(rx.arrivals)
        for i in range(a.events):
            s.post(f"{url}/v1/models/m/promote", json={"version": vs[i % 2]}).raise_for_status()
        time.sleep(0.5)
        rx.start()
        t0 = time.time()
        while len(rx.arrivals) < base + a.events:
            time.sleep(0.005)
            if time.time() - t0 > 120:
                break
        dt = time.time() - t0
        got = len(rx.arrivals) - base
        print(f"backlog drain: {got} events in {dt:.2f} s = {got / dt:.0f} events/s "
              f"(includes up to one backoff wait of <=200 ms)")
        rx.stop()
        # 3. Promotion cost with and without subscribers (a receiver that answers at once).
        rx2 = Rx()
        rx2.start()
        p0, url0 = daemon(a.modelfs, work, "none")
        procs.append(p0)
        vs0 = model(s, url0, "m")
        promotions(s, url0, "m", vs0, 20)
        lat0 = promotions(s, url0, "m", vs0, a.events)
        pn, urln = daemon(a.modelfs, work, "subs")
        procs.append(pn)
        for _ in range(a.subscribers):
            s.post(f"{urln}/v1/webhooks", json={"url": f"http://127.0.0.1:{rx2.port}/",
                                                "events": ["*"], "secret": "s"}).raise_for_status()
        vsn = model(s, urln, "m")
        promotions(s, urln, "m", vsn, 20)
        latn = promotions(s, urln, "m", vsn, a.events)
        print(f"promotion, 0 subscribers: p50={pct(lat0, 50):.2f} ms p99={pct(lat0, 99):.2f} ms")
        print(f"promotion, {a.subscribers} subscribers: p50={pct(latn, 50):.2f} ms "
              f"p99={pct(latn, 99):.2f} ms (x{pct(latn, 50) / pct(lat0, 50):.2f} at p50)")
        rx2.stop()
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        subprocess.run(["rm", "-rf", "--one-file-system", work])


if __name__ == "__main__":
    main()
