# SPDX-License-Identifier: Apache-2.0
"""The ADR's pre-deployment checks, measured one way for the notebook and the pipeline.

accuracy > 0.85 on labelled data the model has not seen, median single-row
inference latency < 100 ms, model size < 100 MB (MiB, as the registry's
max_total_size counts).
"""
import os
import statistics
import time

from sklearn.metrics import accuracy_score

from . import platform_metrics as pm

MIN_ACCURACY = 0.85
MAX_LATENCY_MS = 100.0
MAX_SIZE = 100 * 1024 * 1024


def measure(model, X_eval, y_eval, model_path, rows=50):
    """Accuracy, single-row latency (median and max over `rows` calls) and file size."""
    acc = float(accuracy_score(y_eval, pm.to_labels(model.predict(X_eval))))
    lat = []
    for row in X_eval[:rows]:
        t = time.perf_counter()
        model.predict(row.reshape(1, -1))
        lat.append((time.perf_counter() - t) * 1000)
    return {"accuracy": round(acc, 4),
            "latency_ms_p50": round(statistics.median(lat), 3),
            "latency_ms_max": round(max(lat), 3),
            "model_size_bytes": os.stat(model_path).st_size}


def checks(m):
    return {"accuracy > 0.85": m["accuracy"] > MIN_ACCURACY,
            "inference latency < 100 ms": m["latency_ms_p50"] < MAX_LATENCY_MS,
            "model size < 100 MB": m["model_size_bytes"] < MAX_SIZE}
