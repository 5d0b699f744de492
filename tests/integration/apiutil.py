# SPDX-License-Identifier: Apache-2.0
"""A real `modelfs serve` (API only, no mount) for tests, and an HTTP client that
checks every response against the daemon's own /openapi.json.

Responses are validated with Debian's python3-jsonschema: OpenAPI 3.0 schema
objects are JSON Schema draft 4 plus `nullable`, which is rewritten into a
["type", "null"] union before validation.
"""
import copy
import datetime
import json
import os
import re
import signal
import subprocess
import tempfile

import jsonschema
import requests

import pgutil
from fsutil import start_serve


class Daemon:
    """One `modelfs serve --listen 127.0.0.1:0` with its own store; stopped by PID."""

    def __init__(self, modelfs, extra=(), tokens=None, store=None):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        self.modelfs = modelfs
        self.dir = tempfile.mkdtemp(prefix="modelfs-api-", dir=base)
        self.store = store or os.path.join(self.dir, "store")
        os.makedirs(self.store, exist_ok=True)
        self.ready = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.extra = list(extra)
        if tokens:
            path = os.path.join(self.dir, "tokens")
            with open(path, "w") as f:
                f.write("# name role secret\n")
                for name, (role, secret) in tokens.items():
                    f.write(f"{name} {role} {secret}\n")
            os.chmod(path, 0o600)
            self.extra += ["--token-file", path]
        self.proc = None
        self.port = None
        pgutil.use(self.store)  # offline commands run on the store find its database

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, listen="127.0.0.1:0", timeout=20):
        pgutil.use(self.store)
        args = [self.modelfs, "serve", "--store", self.store, "--listen", listen,
                "--ready-file", self.ready] + self.extra
        self.proc, self.log, self.port = start_serve(args, self.log_path, self.ready, timeout)
        return self

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=20):
        """SIGTERM to our own PID; returns the exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        return rc

    def cleanup(self):
        for root, dirs, files in os.walk(self.dir):
            for n in dirs + files:
                path = os.path.join(root, n)
                if not os.path.islink(path):
                    try:
                        os.chmod(path, 0o755)
                    except OSError:
                        pass
        subprocess.run(["rm", "-rf", self.dir])
        pgutil.drop(self.store)


def _nullable_to_jsonschema(node):
    """OpenAPI 3.0 schema object -> JSON Schema draft 4 (in place, recursively)."""
    if isinstance(node, dict):
        if node.pop("nullable", False):
            if "type" in node:
                node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = node["enum"] + [None]
            if "$ref" in node:
                ref = node.pop("$ref")
                node["anyOf"] = [{"$ref": ref}, {"type": "null"}]
        for k in ("example", "x-modelfs-mutable", "x-modelfs-frozen"):
            node.pop(k, None)
        for v in node.values():
            _nullable_to_jsonschema(v)
    elif isinstance(node, list):
        for v in node:
            _nullable_to_jsonschema(v)


_format_checker = jsonschema.FormatChecker()


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value):
    if not isinstance(value, str):
        return True
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value):
        raise ValueError(f"not RFC 3339: {value!r}")
    datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


class OpenAPI:
    """Finds the operation for a request and validates a response against it."""

    def __init__(self, doc):
        self.doc = doc
        self.converted = copy.deepcopy(doc)
        _nullable_to_jsonschema(self.converted)
        self.resolver = jsonschema.RefResolver.from_schema(self.converted)
        self.ops = []
        for template, item in doc["paths"].items():
            rx = "^" + re.sub(r"\{(\w+)\}", lambda m: "(.+)" if m.group(1) == "path" else "([^/]+)",
                              template) + "$"
            literal = len(re.sub(r"\{\w+\}", "", template))
            self.ops.append((re.compile(rx), literal, template, item))
        self.exercised = set()

    def operation(self, method, path):
        matches = [(lit, t, item) for rx, lit, t, item in self.ops if rx.match(path)]
        if not matches:
            return None, None
        lit, template, item = max(matches, key=lambda m: m[0])
        m = method.lower()
        if m == "head":
            m = "get"
        return template, item.get(m)

    def schema_of(self, node):
        while "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            node = self.converted
            for p in parts:
                node = node[p]
        return node

    def validate(self, method, path, resp):
        """Raises AssertionError when the response is not what the document says."""
        template, op = self.operation(method, path)
        if op is None:
            if resp.status_code in (404, 405) and resp.headers.get("Content-Type") == "application/json":
                self.check_schema(resp.json(), {"$ref": "#/components/schemas/Error"}, "error")
                return
            raise AssertionError(f"{method} {path}: no operation in openapi.json")
        self.exercised.add((method.upper() if method.upper() != "HEAD" else "GET", template))
        conv_op = self.converted["paths"][template][method.lower() if method.lower() != "head" else "get"]
        code = str(resp.status_code)
        if code not in conv_op["responses"]:
            # Generic failures any route may give (documented once under components).
            if code in ("405", "408", "413", "414", "431", "500", "503", "507"):
                if resp.headers.get("Content-Type") == "application/json":
                    self.check_schema(resp.json(), {"$ref": "#/components/schemas/Error"}, "error")
                return
            raise AssertionError(f"{method} {template}: status {code} is not documented "
                                 f"(documented: {sorted(conv_op['responses'])}); body {resp.text[:300]}")
        spec = self.schema_of(conv_op["responses"][code])
        content = spec.get("content")
        if not content or method.upper() == "HEAD":
            return
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype not in content:
            raise AssertionError(f"{method} {template} {code}: Content-Type {ctype!r} not in "
                                 f"{sorted(content)}")
        if ctype == "application/json":
            self.check_schema(resp.json(), content[ctype]["schema"], f"{method} {template} {code}")

    def check_schema(self, body, schema, where):
        v = jsonschema.Draft4Validator(schema, resolver=self.resolver, format_checker=_format_checker)
        errors = sorted(v.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise AssertionError(f"{where}: response does not match openapi.json at "
                                 f"{'/'.join(map(str, e.path))}: {e.message}\nbody: "
                                 f"{json.dumps(body)[:600]}")


class Client:
    """requests with a base URL, an optional token, and OpenAPI checks on every answer."""

    def __init__(self, daemon, api, token=None):
        self.base = daemon.url
        self.api = api
        self.token = token
        self.session = requests.Session()

    def call(self, method, path, expect=None, token=..., **kw):
        headers = dict(kw.pop("headers", {}) or {})
        tok = self.token if token is ... else token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        resp = self.session.request(method, self.base + path, headers=headers, timeout=60, **kw)
        if expect is not None and resp.status_code != expect:
            raise AssertionError(f"{method} {path}: status {resp.status_code}, wanted {expect}: "
                                 f"{resp.text[:500]}")
        self.api.validate(method, path.split("?")[0], resp)
        return resp

    def get(self, path, expect=200, **kw):
        return self.call("GET", path, expect, **kw)

    def post(self, path, body=None, expect=200, **kw):
        if body is not None:
            kw["json"] = body
        return self.call("POST", path, expect, **kw)

    def put(self, path, body=None, expect=200, **kw):
        if body is not None:
            kw["json"] = body
        return self.call("PUT", path, expect, **kw)

    def patch(self, path, body=None, expect=200, **kw):
        if body is not None:
            kw["json"] = body
        return self.call("PATCH", path, expect, **kw)

    def delete(self, path, expect=204, **kw):
        return self.call("DELETE", path, expect, **kw)


def error_code(resp):
    return resp.json()["error"]["code"]
