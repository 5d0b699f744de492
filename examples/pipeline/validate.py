#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The pipeline's validation step: check a sealed version and record the verdict.

    validate.py --mount /models --url http://modelfs:8080 anomaly-detector v2

Loads the version from the mount the way serving will (the one model file of
the version directory), and checks:

- the file loaded is the one the registry sealed (SHA-256);
- it answers the notebook's recorded request batch (input_example.json) with
  the same predictions and scores (the model is reproducible);
- accuracy on the three labelled days after its training window > 0.85;
- median single-row inference latency < 100 ms (CPU time; see anomaly/adr.py);
- model size < 100 MB.

Then it sets validation_status (passed or failed) and validation_metrics over
the API (token in MODELFS_TOKEN, writer role). Exit status: 0 passed, 1
failed, 2 the step itself could not run.
"""
import argparse
import json
import os
import pathlib
import sys

import numpy as np
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from anomaly import adr, kserve, platform_metrics as pm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mount", default=os.environ.get("MODELFS_MOUNT", "/models"))
    ap.add_argument("--url", default=os.environ.get("MODELFS_URL", "http://modelfs:8080"))
    ap.add_argument("model")
    ap.add_argument("version")
    a = ap.parse_args()
    api = requests.Session()
    if os.environ.get("MODELFS_TOKEN"):
        api.headers["Authorization"] = "Bearer " + os.environ["MODELFS_TOKEN"]
    base = f"{a.url.rstrip('/')}/v1/models/{a.model}/versions/{a.version}"

    r = api.get(base, timeout=60)
    if r.status_code != 200:
        print(f"validate: {a.model}/{a.version}: HTTP {r.status_code}: {r.text}", file=sys.stderr)
        return 2
    v = r.json()
    if v["state"] != "sealed":
        print(f"validate: {a.model}/{a.version} is {v['state']}; only sealed versions are "
              "validated (their bytes cannot change afterwards)", file=sys.stderr)
        return 2
    meta = api.get(base + "/metadata", timeout=60).json()
    sealed = {f["path"]: f["sha256"] for f in v["files"]}

    vdir = pathlib.Path(a.mount) / a.model / a.version
    model, path, digest = kserve.load(vdir)
    example = json.loads((vdir / "input_example.json").read_text())
    probe = np.asarray(example["instances"], dtype=float)
    X_eval, y_eval = pm.holdout(meta["training_data"]["end_date"])
    measured = adr.measure(model, X_eval, y_eval, path)
    scores = model.decision_function(probe)
    checks = {
        "sealed bytes": sealed.get(path.name) == digest,
        "predictions reproduce": model.predict(probe).tolist() == example["predictions"],
        "scores reproduce": bool(np.allclose(scores, example["scores"], rtol=0, atol=1e-9)),
        **adr.checks(measured),
    }
    status = "passed" if all(checks.values()) else "failed"
    patch = {"validation_status": status,
             "validation_metrics": dict(measured, checks=checks, validated_by="pipeline")}
    r = api.patch(base + "/metadata", json=patch, timeout=60)
    if r.status_code != 200:
        print(f"validate: recording the result failed: HTTP {r.status_code}: {r.text}",
              file=sys.stderr)
        return 2
    for k, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {k}")
    print(f"{a.model}/{a.version}: validation {status} (accuracy {measured['accuracy']}, "
          f"latency p50 {measured['latency_ms_p50']:.1f} ms cpu / {measured['wall_ms_p50']:.1f} ms "
          f"wall, {measured['model_size_bytes']} bytes)")
    return 0 if status == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
