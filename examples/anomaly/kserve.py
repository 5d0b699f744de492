# SPDX-License-Identifier: Apache-2.0
"""Loading a model directory the way KServe's sklearn server does.

KServe's sklearn server takes the directory its storage initializer mounted
(for `storageUri: pvc://<claim>/<path>`, the claim's <path>), looks for the one
file ending in .joblib, .pkl or .pickle in it, refuses none or several, and
loads it with joblib (which also reads plain pickles).
"""
import hashlib
import os
import pathlib

import joblib

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")


def model_dir_of(storage_uri, pvc_root):
    """pvc://<claim>/<path> → <pvc_root>/<path> (pvc_root: where the claim is mounted)."""
    prefix = "pvc://"
    if not storage_uri.startswith(prefix):
        raise ValueError(f"not a pvc:// storageUri: {storage_uri}")
    claim, _, path = storage_uri[len(prefix):].partition("/")
    if not claim or not path or ".." in path.split("/"):
        raise ValueError(f"bad pvc:// storageUri: {storage_uri}")
    return pathlib.Path(pvc_root) / path


def model_file(model_dir):
    d = pathlib.Path(model_dir)
    found = sorted(p for p in d.iterdir() if p.is_file() and p.name.endswith(MODEL_EXTENSIONS))
    if not found:
        raise FileNotFoundError(f"no model file ({', '.join(MODEL_EXTENSIONS)}) in {d}")
    if len(found) > 1:
        raise RuntimeError(f"more than one model file in {d}: {[p.name for p in found]}")
    return found[0]


def load(model_dir):
    """Returns (model, path, sha256 of the bytes loaded)."""
    path = model_file(model_dir)
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    with open(path, "rb") as f:
        model = joblib.load(f)
    # The bytes must not have changed between the digest and the load.
    if os.stat(path).st_size != len(data):
        raise RuntimeError(f"{path} changed while it was loaded")
    return model, path, digest
