# SPDX-License-Identifier: Apache-2.0
"""Synthetic platform metrics: one row a minute, with a daily cycle and labelled incidents.

The same window always gives the same rows (the generator is seeded with 42
and the window), so a training run can be repeated exactly and the training
data hash identifies the data.
"""
import datetime as dt
import hashlib

import numpy as np

SEED = 42
FEATURES = ("cpu_utilization", "memory_utilization", "request_latency_ms", "error_rate")
ANOMALY_RATE = 0.02


def _day(s):
    return s if isinstance(s, dt.date) else dt.date.fromisoformat(s)


def window(start_date, end_date, seed=SEED):
    """Rows for every minute from start_date 00:00 to end_date 23:59 (inclusive).

    Returns (X, y): X is float64 of shape (rows, 4) in FEATURES order; y is 1
    for an incident minute and 0 otherwise.
    """
    start, end = _day(start_date), _day(end_date)
    if end < start:
        raise ValueError(f"end_date {end} is before start_date {start}")
    rows = ((end - start).days + 1) * 24 * 60
    rng = np.random.default_rng([seed, start.toordinal(), end.toordinal()])
    minute = np.arange(rows)
    daily = np.sin(2 * np.pi * (minute % 1440) / 1440.0)
    cpu = 45 + 15 * daily + rng.normal(0, 4, rows)
    mem = 60 + 5 * daily + rng.normal(0, 3, rows)
    lat = 120 + 30 * daily + rng.normal(0, 10, rows)
    err = np.abs(rng.normal(0.5, 0.2, rows))
    y = (rng.random(rows) < ANOMALY_RATE).astype(np.int64)
    hit = np.flatnonzero(y)
    # An incident moves two or more signals far outside their daily range.
    cpu[hit] += rng.uniform(5, 40, hit.size)
    lat[hit] += rng.uniform(20, 300, hit.size)
    err[hit] += rng.uniform(0.2, 6, hit.size)
    mem[hit] += rng.uniform(0, 25, hit.size)
    X = np.column_stack([np.clip(cpu, 0, 100), np.clip(mem, 0, 100), lat, err])
    return X, y


def data_hash(X):
    """sha256 of the feature names and the rows as little-endian float64, C order."""
    h = hashlib.sha256()
    h.update(",".join(FEATURES).encode() + b"\n")
    h.update(np.ascontiguousarray(X, dtype="<f8").tobytes())
    return "sha256:" + h.hexdigest()


def holdout(end_date, days=3):
    """A labelled evaluation window: the days right after training ends."""
    first = _day(end_date) + dt.timedelta(days=1)
    return window(first, first + dt.timedelta(days=days - 1))


def probe(n=32):
    """A fixed request batch (incidents included) for serving checks."""
    X, y = window("2026-01-01", "2026-01-01")
    idx = np.concatenate([np.flatnonzero(y)[: n // 4], np.flatnonzero(y == 0)[: n - n // 4]])
    idx.sort()
    return X[idx]


def to_labels(pred):
    """IsolationForest answers -1 (anomaly) / 1 (normal); labels are 1 / 0."""
    return (np.asarray(pred) == -1).astype(np.int64)
