#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for KServe's sklearn predictor, for checking what serving loads.

    sklearn_server.py --model-name anomaly-detector \
        --storage-uri pvc://model-storage-pvc/anomaly-detector/v2 --pvc-root /models

Loads the single model file of the pinned version directory (anomaly.kserve)
and answers KServe's V1 protocol on --listen:

    GET  /v1/models/<name>            {"name", "ready", "model_file", "sha256"}
    POST /v1/models/<name>:predict    {"instances": [[...], ...]} -> {"predictions": [...]}

`sha256` (not part of KServe's answer) is the digest of the bytes loaded, so a
test can tell which version is being served.
"""
import argparse
import json
import os
import pathlib
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from anomaly import kserve  # noqa: E402

MAX_BODY = 16 << 20


class Handler(BaseHTTPRequestHandler):
    server_version = "sklearn-server-example"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        s = self.server
        if self.path != f"/v1/models/{s.model_name}":
            return self.answer(404, {"error": f"no model at {self.path}"})
        self.answer(200, {"name": s.model_name, "ready": True, "model_file": str(s.model_path),
                          "sha256": s.digest})

    def do_POST(self):
        s = self.server
        if self.path != f"/v1/models/{s.model_name}:predict":
            return self.answer(404, {"error": f"no model at {self.path}"})
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self.answer(400, {"error": "bad Content-Length"})
        if n > MAX_BODY:
            return self.answer(413, {"error": f"body over {MAX_BODY} bytes"})
        try:
            body = json.loads(self.rfile.read(n))
            instances = np.asarray(body["instances"], dtype=float)
            if instances.ndim != 2:
                raise ValueError("instances must be a list of rows")
        except (ValueError, KeyError, TypeError) as e:
            return self.answer(400, {"error": f"bad request: {e}"})
        try:
            pred = s.model.predict(instances)
        except ValueError as e:
            return self.answer(400, {"error": str(e)})
        self.answer(200, {"predictions": pred.tolist()})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-name", required=True)
    ap.add_argument("--storage-uri", required=True, help="pvc://<claim>/<model>/<version>")
    ap.add_argument("--pvc-root", required=True, help="where the claim is mounted")
    ap.add_argument("--listen", default="127.0.0.1:8081", help="HOST:PORT (port 0 picks one)")
    ap.add_argument("--port-file", help="write port=<n> here once serving")
    a = ap.parse_args()
    model_dir = kserve.model_dir_of(a.storage_uri, a.pvc_root)
    model, path, digest = kserve.load(model_dir)
    host, _, port = a.listen.rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.model_name, srv.model, srv.model_path, srv.digest = a.model_name, model, path, digest
    print(f"serving {a.model_name} from {path} (sha256 {digest}) on {host}:{srv.server_port}",
          flush=True)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"port={srv.server_port}\n")
        os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
