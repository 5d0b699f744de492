# SPDX-License-Identifier: Apache-2.0
"""Strict HTTP input, over a raw socket against a real `modelfs serve`: request
framing that two parsers could read differently is refused with 400 and a
closed connection before any handler runs; encoded '/' and NUL never reach the
router; every query parameter is declared; integers are range-checked before
they are narrowed. Also the token file's mode and the rate limit on warnings.

usage: test_http_strict.py /path/to/modelfs
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

import requests

from apiutil import Client, Daemon, OpenAPI
from fsutil import wait_for

MODELFS = None
API = None

ADMIN = "admin-secret-0123456789"
READER = "reader-secret-0123456789"


def start(extra=(), tokens=None):
    global API
    d = Daemon(MODELFS, extra=extra, tokens=tokens).start()
    if API is None:
        API = OpenAPI(requests.get(d.url + "/openapi.json", timeout=10).json())
    return d


def raw(port, data, timeout=5.0):
    """Sends bytes, reads until the server closes. Returns (bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not b:
                return out, True
            out += b
        return out, False
    finally:
        s.close()


def responses(data):
    """The status codes of the HTTP responses in data, in order."""
    return [int(m) for m in re.findall(rb"^HTTP/1\.[01] (\d{3}) ", data, re.M)]


def body_of(data):
    head, _, rest = data.partition(b"\r\n\r\n")
    n = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))
    return json.loads(rest[:n])


class FramingTest(unittest.TestCase):
    """Each case: a 400 with Connection: close, the connection closed, nothing after run."""

    @classmethod
    def setUpClass(cls):
        cls.d = start()
        cls.c = Client(cls.d, API)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()

    def setUp(self):
        # A model the smuggled requests try to delete; recreated for each test.
        if self.c.get("/v1/models/victim", expect=None).status_code == 404:
            self.c.post("/v1/models", {"name": "victim"}, expect=201)

    def refused(self, data, what):
        out, closed = raw(self.d.port, data)
        codes = responses(out)
        self.assertEqual(codes, [400], f"{what}: answers {codes}: {out[:600]!r}")
        self.assertTrue(closed, f"{what}: the connection stayed open")
        self.assertRegex(out.split(b"\r\n\r\n")[0], rb"(?im)^Connection: close\r?$")
        self.assertEqual(body_of(out)["error"]["code"], "bad_request")
        self.c.get("/v1/models/victim", expect=200)  # the smuggled DELETE never ran
        return body_of(out)["error"]["message"]

    SMUGGLED = b"DELETE /v1/models/victim HTTP/1.1\r\nHost: x\r\n\r\n"

    def test_duplicate_content_length_zero_then_n(self):
        msg = self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(self.SMUGGLED) + self.SMUGGLED,
                           "Content-Length 0 then N")
        self.assertIn("Content-Length", msg)

    def test_duplicate_content_length_equal(self):
        body = b'{"name":"x1"}'
        self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n"
                     b"Content-Length: 13\r\n\r\n" + body, "two equal Content-Length")
        self.c.get("/v1/models/x1", expect=404)

    def test_transfer_encoding_space_before_colon(self):
        msg = self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
                           b"Content-Length: 5\r\n\r\n0\r\n\r\n" + self.SMUGGLED,
                           "Transfer-Encoding with a space before the colon")
        self.assertIn("whitespace", msg)

    def test_transfer_encoding_chunked_identity_answers_at_once(self):
        t0 = time.monotonic()
        msg = self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked, identity\r\n\r\n"
                           b"5\r\n{\"a\":\r\n0\r\n\r\n", "chunked, identity")
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertIn("Transfer-Encoding", msg)

    def test_transfer_encoding_unknown(self):
        for te in (b"gzip", b"identity", b"chunked, chunked", b"xchunked", b""):
            with self.subTest(te=te):
                self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                             b"\r\n\r\n0\r\n\r\n", b"Transfer-Encoding " + te)

    def test_two_transfer_encodings(self):
        self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "two Transfer-Encoding")

    def test_content_length_and_transfer_encoding(self):
        self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + self.SMUGGLED,
                     "Content-Length beside Transfer-Encoding")

    def test_whitespace_before_any_colon(self):
        for line in (b"X-Trace : 1", b"Content-Length : 0", b"Authorization\t: Bearer x"):
            with self.subTest(line=line):
                self.refused(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n",
                             line)

    def test_folded_framing_headers(self):
        """A continuation line after Content-Length / Transfer-Encoding (obs-fold)."""
        self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n %d\r\n\r\n"
                     % len(self.SMUGGLED) + self.SMUGGLED, "Content-Length folded")
        self.refused(b"POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(self.SMUGGLED) + self.SMUGGLED,
                     "Transfer-Encoding folded")

    def test_encoded_slash_in_a_segment(self):
        self.c.post("/v1/models", {"name": "m1"}, expect=None)
        self.c.post("/v1/models/m1/versions", {"name": "v1"}, expect=None)
        self.c.put("/v1/models/m1/versions/v1/files/model.pkl", data=b"x", expect=None)
        self.c.post("/v1/models/m1/versions/v1/seal", expect=None)
        for target in (b"/v1/models/m1%2Fpromote", b"/v1/models/m1%2fpromote"):
            with self.subTest(target=target):
                body = b'{"version":"v1"}'
                self.refused(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                             b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                             target)
        self.c.get("/v1/models/m1/aliases/current", expect=404)  # nothing was promoted
        # %2F in a query value is fine.
        self.c.get("/v1/models/m1/history?kind=alias%2Fset", expect=200)

    def test_encoded_nul(self):
        self.c.post("/v1/models", {"name": "m"}, expect=None)
        self.c.post("/v1/models/m/versions", {"name": "v1"}, expect=None)
        self.c.put("/v1/models/m/versions/v1/files/model.pkl", data=b"secret", expect=None)
        for target in (b"/v1/models/m%00x", b"/v1/models/m/versions/v1/files/model.pkl%00.txt",
                       b"/v1/models/m/history?kind=a%00b"):
            with self.subTest(target=target):
                out = self.refused(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", target)
                self.assertIn("NUL", out)

    def test_plain_requests_still_work(self):
        """Keep-alive, a chunked upload and a body with one Content-Length are unaffected."""
        self.c.post("/v1/models", {"name": "ok"}, expect=None)
        v = self.c.post("/v1/models/ok/versions", {}, expect=201).json()["name"]
        chunks = b"3\r\nabc\r\n0\r\n\r\n"
        out, _ = raw(self.d.port, b"PUT /v1/models/ok/versions/" + v.encode() +
                     b"/files/f.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     chunks + b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(responses(out), [201, 200], out[:800])
        self.assertEqual(self.c.get(f"/v1/models/ok/versions/{v}/files/f.bin").content, b"abc")


PASSED = {"validation_status": "passed", "performance_metrics": {"accuracy": 0.91}}


def sealed(c, model, name):
    if c.get(f"/v1/models/{model}", expect=None).status_code == 404:
        c.post("/v1/models", {"name": model}, expect=201)
    c.post(f"/v1/models/{model}/versions", {"name": name, "metadata": PASSED}, expect=201)
    c.put(f"/v1/models/{model}/versions/{name}/files/model.pkl", data=name.encode(), expect=201)
    c.post(f"/v1/models/{model}/versions/{name}/seal")
    return name


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1000000:06d}Z"


class QueryTest(unittest.TestCase):
    """Query parameters: declared per route, honoured, and errors that read right."""

    @classmethod
    def setUpClass(cls):
        cls.d = start()
        cls.c = Client(cls.d, API)
        sealed(cls.c, "q1", "v1")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()

    def error(self, path, status=400, method="GET", **kw):
        r = requests.request(method, self.d.url + path, timeout=10, **kw)
        self.assertEqual(r.status_code, status, f"{path}: {r.text}")
        API.validate(method, path.split("?")[0], r)
        return r.json()["error"]["message"]

    def test_unknown_query_parameter_is_named(self):
        msg = self.error("/v1/models/q1/history?knd=alias")
        self.assertIn("'knd'", msg)
        self.assertIn("kind", msg)  # and what the route takes
        self.assertIn("'x'", self.error("/livez?x=1"))
        self.assertIn("'verbose'", self.error("/v1/models?verbose=1"))
        self.assertIn("'Limit'", self.error("/v1/models/q1/versions?Limit=1"))
        # Unknown parameters are refused on changes too, before anything changes.
        self.assertIn("'dry_run'", self.error("/v1/models?dry_run=1", method="POST",
                                              json={"name": "q2"}))
        self.c.get("/v1/models/q2", expect=404)
        # Declared ones still work.
        self.c.get("/v1/models/q1/history?kind=model.create&limit=5", expect=200)

    def test_repeated_query_parameter(self):
        self.assertIn("more than once", self.error("/v1/models/q1/history?kind=a&kind=b"))

    def test_time_parameter_messages_read_once(self):
        msg = self.error("/v1/models/q1/aliases/current?at=yesterday")
        self.assertTrue(msg.startswith("query parameter 'at': "), msg)
        self.assertEqual(msg.count("query parameter"), 1, msg)
        self.assertIn("yesterday", msg)
        msg = self.error("/v1/models/q1/history?since=noon")
        self.assertTrue(msg.startswith("query parameter 'since': "), msg)
        self.assertEqual(msg.count("query parameter"), 1, msg)
        msg = self.error("/v1/models/q1/aliases?at=noon")
        self.assertTrue(msg.startswith("query parameter 'at': "), msg)

    def test_aliases_at_a_time(self):
        c = self.c
        sealed(c, "hist", "v1")
        sealed(c, "hist", "v2")
        c.post("/v1/models/hist/promote", {"version": "v1"})
        c.put("/v1/models/hist/aliases/old", {"version": "v1"})
        time.sleep(0.05)
        t1 = now_rfc3339()
        time.sleep(0.05)
        c.post("/v1/models/hist/promote", {"version": "v2"})
        c.put("/v1/models/hist/aliases/staging", {"version": "v2"})
        c.delete("/v1/models/hist/aliases/old")
        then = c.get(f"/v1/models/hist/aliases?at={t1}").json()
        self.assertEqual({a["alias"]: a["version"] for a in then["aliases"]},
                         {"current": "v1", "old": "v1"})
        self.assertEqual([a["alias"] for a in then["aliases"]], ["current", "old"])
        now = c.get("/v1/models/hist/aliases").json()
        self.assertEqual({a["alias"]: a["version"] for a in now["aliases"]},
                         {"current": "v2", "staging": "v2"})
        # Before the model had any alias: none; an unknown model: 404.
        self.assertEqual(c.get("/v1/models/hist/aliases?at=2000-01-01T00:00:00Z").json()["aliases"],
                         [])
        c.get(f"/v1/models/nope/aliases?at={t1}", expect=404)

    def test_integers_checked_before_narrowing(self):
        c = self.c
        sealed(c, "pct", "v1")
        for pct in (4294967306, 4294967296 + 50, -4294967296, 2 ** 63 - 1):
            with self.subTest(percent=pct):
                r = c.put("/v1/models/pct/canary", {"version": "v1", "percent": pct}, expect=None)
                self.assertIn(r.status_code, (400, 422), r.text)
                self.assertIn("percent", r.json()["error"]["message"])
        c.get("/v1/models/pct/aliases/canary", expect=404)
        for q in ("limit=4294967297", "limit=99999999999999999999", "limit=-1", "cursor=-5"):
            with self.subTest(query=q):
                self.assertIn("must be an integer", self.error(f"/v1/models/pct/history?{q}"))


class LogTest(unittest.TestCase):
    def test_403_logs_the_actor(self):
        d = start(tokens={"ops": ("admin", ADMIN), "dashboard": ("reader", READER)})
        try:
            r = requests.post(d.url + "/v1/models", json={"name": "x"}, timeout=10,
                              headers={"Authorization": f"Bearer {READER}"})
            self.assertEqual(r.status_code, 403)
            wait_for(lambda: "POST /v1/models 403" in d.read_log(), what="the 403 logged")
            line = [x for x in d.read_log().splitlines() if "POST /v1/models 403" in x][0]
            self.assertIn("actor=dashboard", line)
        finally:
            d.stop()
            d.cleanup()


class TokenFileTest(unittest.TestCase):
    """A token file others (or, for the daemon's own file, its group) can read is refused."""

    def test_group_or_other_readable_refused_at_start(self):
        d = Daemon(MODELFS)
        try:
            path = os.path.join(d.dir, "tokens")
            with open(path, "w") as f:
                f.write(f"ops admin {ADMIN}\n")
            for mode in (0o640, 0o604, 0o644, 0o660):
                with self.subTest(mode=oct(mode)):
                    os.chmod(path, mode)
                    p = subprocess.run([MODELFS, "serve", "--store", d.store, "--listen",
                                        "127.0.0.1:0", "--token-file", path],
                                       capture_output=True, text=True, timeout=30)
                    self.assertNotEqual(p.returncode, 0)
                    self.assertIn("chmod 600", p.stderr)
                    p = subprocess.run([MODELFS, "serve", "--store", d.store, "--token-file", path,
                                        "--check-config"], capture_output=True, text=True,
                                       timeout=30)
                    self.assertNotEqual(p.returncode, 0)
                    self.assertIn("chmod 600", p.stdout + p.stderr)
            os.chmod(path, 0o400)
            p = subprocess.run([MODELFS, "serve", "--store", d.store, "--token-file", path,
                                "--check-config"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        finally:
            d.cleanup()

    def test_sighup_keeps_old_tokens(self):
        d = start(tokens={"ops": ("admin", ADMIN)})
        try:
            path = d.extra[d.extra.index("--token-file") + 1]
            with open(path, "w") as f:
                f.write(f"ops admin {ADMIN}\nother admin {READER}\n")
            os.chmod(path, 0o644)
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "chmod 600" in d.read_log(), what="the refusal logged")
            self.assertRegex(d.read_log(), r"reload: .*readable by others.*chmod 600.*tokens in use stay")
            # The old table still answers; the new token was not taken.
            h = {"Authorization": f"Bearer {READER}"}
            self.assertEqual(requests.post(d.url + "/v1/models", json={"name": "a"}, headers=h,
                                           timeout=10).status_code, 401)
            h = {"Authorization": f"Bearer {ADMIN}"}
            self.assertEqual(requests.post(d.url + "/v1/models", json={"name": "a"}, headers=h,
                                           timeout=10).status_code, 201)
        finally:
            d.stop()
            d.cleanup()


class RateLimitTest(unittest.TestCase):
    def test_connection_flood_writes_few_lines_with_a_count(self):
        d = start(extra=["--max-connections", "2", "--idle-timeout", "30"])
        try:
            held = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(2)]
            time.sleep(0.3)
            before = len(d.read_log().splitlines())
            n = 1500
            for _ in range(n):
                try:
                    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                    s.close()
                except OSError:
                    pass
            time.sleep(0.5)
            lines = d.read_log().splitlines()[before:]
            warned = [x for x in lines if " warn " in x]
            self.assertGreater(len(warned), 0, "\n".join(lines[-20:]))
            # At most ten a second (plus one window of slack), whatever the flood.
            self.assertLess(len(warned), 10 * 12, f"{len(warned)} warning lines for {n} refusals")
            # After the window, the next refusal's line carries the count of the dropped ones.
            time.sleep(1.2)
            socket.create_connection(("127.0.0.1", d.port), timeout=5).close()
            wait_for(lambda: "more like it, not logged" in d.read_log(), what="the count")
            m = re.search(r"and (\d+) more like it, not logged", d.read_log())
            self.assertGreater(int(m.group(1)), 100)
            for s in held:
                s.close()
        finally:
            d.stop()
            d.cleanup()


class EscapeTest(unittest.TestCase):
    def test_verify_prints_names_escaped(self):
        d = start()
        c = Client(d, API)
        try:
            c.post("/v1/models", {"name": "esc"}, expect=201)
            c.post("/v1/models/esc/versions", {"name": "v1"}, expect=201)
            evil = "a\nok esc-v1-forged.bin 0000\x1b[2Jb.bin"
            c.put("/v1/models/esc/versions/v1/files/" + requests.utils.quote(evil, safe=""),
                  data=b"x", expect=201)
            c.post("/v1/models/esc/versions/v1/seal")
        finally:
            d.stop()
        try:
            p = subprocess.run([MODELFS, "verify", d.store, "esc/v1"], capture_output=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = p.stdout.decode()
            self.assertNotIn("\x1b", out)
            self.assertNotIn("\nok esc-v1-forged.bin", out)
            self.assertIn("a\\nok esc-v1-forged.bin 0000\\x1b[2Jb.bin", out)
            self.assertEqual(len([x for x in out.splitlines() if x.startswith("ok ")]), 1, out)
        finally:
            d.cleanup()


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
