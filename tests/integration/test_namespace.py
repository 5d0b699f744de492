# SPDX-License-Identifier: Apache-2.0
"""One namespace per model directory, and a start-up that never deletes what it did not make.

- Versions and aliases share the model directory: a name taken by one is refused to the
  other (409, nothing committed), also when the name is taken on disk only.
- A store that already holds a clash (written into the db as an older release could
  have) starts, keeps materialising every other entry, and `fsck --repair` resolves it.
- Start-up never removes a directory on the word of a file on the volume, `init` never
  removes a link it could not adopt, the db is the truth for alias links at every start,
  and a valid link that is no alias is reported as such and never deleted.
- Dead mounts of killed daemons are all detached at start; a clean stop leaves none.

usage: test_namespace.py /path/to/modelfs
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import Daemon, start_serve  # noqa: E402

MODELFS = None


def mounts_at(path):
    with open("/proc/self/mountinfo") as f:
        lines = [line.split() for line in f]
    out = []
    for parts in lines:
        dash = parts.index("-")
        if parts[4] == path:
            out.append(parts[dash + 1])
    return out


class Api:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}/v1"
        self.s = requests.Session()

    def req(self, method, path, expect=None, **kw):
        r = self.s.request(method, self.base + path, timeout=60, **kw)
        if expect is not None and r.status_code != expect:
            raise AssertionError(f"{method} {path}: {r.status_code}, wanted {expect}: {r.text}")
        return r

    def version(self, model, name, files=None, seal=True):
        self.req("POST", f"/models/{model}/versions", 201, json={"name": name})
        for path, data in (files or {"model.pkl": name.encode()}).items():
            self.req("PUT", f"/models/{model}/versions/{name}/files/{path}", None, data=data)
        if seal:
            self.req("POST", f"/models/{model}/versions/{name}/seal", 200)

    def promote(self, model, version, expect=200):
        return self.req("PUT", f"/models/{model}/aliases/current", expect,
                        json={"version": version, "force": True, "reason": "test"})


class Base(unittest.TestCase):
    mount = False

    def setUp(self):
        self.d = Daemon(MODELFS)
        if not self.mount:
            # API only: the Daemon helper always passes --mount, so start by hand.
            self.d.start = self._start_api
        self.d.start()
        self.api = Api(self.d.port)

    def _start_api(self, timeout=20):
        args = [MODELFS, "serve", "--store", self.d.store, "--listen", "127.0.0.1:0",
                "--ready-file", self.d.ready]
        self.d.proc, self.d.log, self.d.port = start_serve(args, self.d.log_path, self.d.ready,
                                                           timeout)
        return self.d

    def tearDown(self):
        self.api.s.close()
        rc = self.d.stop()
        log = self.d.read_log()
        self.d.cleanup()
        for bad in ("Sanitizer", "runtime error:"):
            self.assertNotIn(bad, log)
        self.assertIn(rc, (0, None))

    def restart(self):
        self.assertEqual(self.d.stop(), 0)
        self.d.start()
        self.api.s.close()
        self.api = Api(self.d.port)

    def cli(self, *args):
        return subprocess.run([MODELFS] + list(args), capture_output=True, text=True, timeout=120)

    def db(self):
        return sqlite3.connect(os.path.join(self.d.store, ".modelfs", "registry.db"), timeout=10)

    def raw(self, *parts):
        return os.path.join(self.d.store, *parts)


class TestNamespace(Base):
    def test_alias_named_like_a_version_is_refused(self):
        self.api.req("POST", "/models", 201, json={"name": "m"})
        self.api.version("m", "1.0")
        self.api.version("m", "2.0")
        r = self.api.req("PUT", "/models/m/aliases/1.0", json={"version": "2.0"})
        self.assertEqual(r.status_code, 409, r.text)
        self.assertIn("version", r.json()["error"]["message"])
        self.api.req("GET", "/models/m/aliases/1.0", 404)
        self.assertTrue(os.path.isdir(self.raw("m", "1.0")))
        self.assertFalse(os.path.islink(self.raw("m", "1.0")))
        # Still promotable, and still startable.
        self.api.promote("m", "2.0")
        self.restart()
        self.assertEqual(os.readlink(self.raw("m", "current")), "2.0")

    def test_version_named_like_an_alias_is_refused_and_not_committed(self):
        self.api.req("POST", "/models", 201, json={"name": "m"})
        self.api.version("m", "v1")
        self.api.req("PUT", "/models/m/aliases/staging", 200, json={"version": "v1"})
        r = self.api.req("POST", "/models/m/versions", json={"name": "staging"})
        self.assertEqual(r.status_code, 409, r.text)
        self.assertIn("alias", r.json()["error"]["message"])
        self.api.req("GET", "/models/m/versions/staging", 404)
        kinds = [e["kind"] for e in self.d.events("m") if e["version"] == "staging"]
        self.assertNotIn("version.create", kinds)
        self.assertEqual(os.readlink(self.raw("m", "staging")), "v1")
        self.api.version("m", "v2")
        self.api.promote("m", "v2")
        self.assertEqual(os.readlink(self.raw("m", "current")), "v2")
        self.restart()

    def test_name_taken_on_disk_only_is_refused(self):
        self.api.req("POST", "/models", 201, json={"name": "m"})
        self.api.version("m", "v1")
        os.mkdir(self.raw("m", "handmade"))
        with open(self.raw("m", "handmade", "notes.txt"), "w") as f:
            f.write("mine\n")
        r = self.api.req("PUT", "/models/m/aliases/handmade", json={"version": "v1"})
        self.assertEqual(r.status_code, 409, r.text)
        self.api.req("GET", "/models/m/aliases/handmade", 404)
        with open(self.raw("m", "notes"), "w") as f:
            f.write("a file\n")
        r = self.api.req("POST", "/models/m/versions", json={"name": "notes"})
        self.assertEqual(r.status_code, 409, r.text)
        self.api.req("GET", "/models/m/versions/notes", 404)
        self.assertTrue(os.path.isfile(self.raw("m", "handmade", "notes.txt")))
        self.restart()

    def test_store_with_a_clash_opens_and_repairs(self):
        self.api.req("POST", "/models", 201, json={"name": "m"})
        for v in ("v1", "v2", "v3"):
            self.api.version("m", v)
        self.api.promote("m", "v1")
        self.d.stop()
        # What an older release let a writer commit: an alias named like a version.
        with self.db() as db:
            db.execute("INSERT INTO aliases(model_id, name, version_id, updated_at) "
                       "SELECT v.model_id, 'v2', v.id, 0 FROM versions v WHERE v.name = 'v3'")
            db.execute("INSERT INTO events(ts, model, version, alias, kind, channel, actor, "
                       "after) VALUES (1, 'm', 'v3', 'v2', 'alias.set', 'api', 'old', 'v3')")
        self.d.start()
        self.api.s.close()
        self.api = Api(self.d.port)
        self.assertTrue(os.path.isdir(self.raw("m", "v2")))
        self.api.promote("m", "v3")
        self.assertEqual(os.readlink(self.raw("m", "current")), "v3")
        self.d.stop()
        p = self.cli("fsck", self.d.store)
        self.assertIn("name-clash", p.stdout)
        p = self.cli("fsck", self.d.store, "--repair")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.cli("fsck", self.d.store)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("clean", p.stdout)
        self.assertTrue(os.path.isfile(self.raw("m", "v2", "model.pkl")))
        self.assertIn("alias.delete", [e["kind"] for e in self.d.events("m") if e["alias"] == "v2"])
        self.d.start()
        self.api.s.close()
        self.api = Api(self.d.port)
        self.api.req("GET", "/models/m/aliases/v2", 404)

    def test_raw_alias_links_follow_the_db_at_start(self):
        self.api.req("POST", "/models", 201, json={"name": "m"})
        self.api.version("m", "v1")
        self.api.version("m", "v2")
        self.api.promote("m", "v1")
        self.d.stop()
        os.unlink(self.raw("m", "current"))
        os.symlink("/etc", self.raw("m", "current"))
        os.symlink("v2", self.raw("m", "rawalias"))
        self.d.start()
        self.api.s.close()
        self.api = Api(self.d.port)
        self.assertEqual(os.readlink(self.raw("m", "current")), "v1")
        self.assertEqual(os.readlink(self.raw("m", "rawalias")), "v2")
        self.d.stop()
        p = self.cli("fsck", self.d.store)
        self.assertIn("unknown-alias-link", p.stdout)
        self.assertNotIn("dangling-symlink", p.stdout)
        self.cli("fsck", self.d.store, "--repair")
        self.assertEqual(os.readlink(self.raw("m", "rawalias")), "v2")
        # A removed alias's link is ours to clear.
        self.d.start()
        self.api.s.close()
        self.api = Api(self.d.port)
        self.api.req("PUT", "/models/m/aliases/staging", 200, json={"version": "v2"})
        self.api.req("DELETE", "/models/m/aliases/staging", 204)
        self.d.stop()
        os.symlink("v2", self.raw("m", "staging"))
        p = self.cli("fsck", self.d.store)
        self.assertIn("dangling-symlink       m/staging", p.stdout)
        self.cli("fsck", self.d.store, "--repair")
        self.assertFalse(os.path.lexists(self.raw("m", "staging")))
        self.assertEqual(os.readlink(self.raw("m", "rawalias")), "v2")


class TestInit(unittest.TestCase):
    def test_init_keeps_a_link_it_cannot_adopt(self):
        base = os.environ.get("MODELFS_TEST_TMP", tempfile.gettempdir())
        os.makedirs(base, exist_ok=True)
        top = tempfile.mkdtemp(prefix="modelfs-ns-", dir=base)
        try:
            store = os.path.join(top, "store")
            os.makedirs(os.path.join(store, "mx", "v1"))
            with open(os.path.join(store, "mx", "v1", "model.pkl"), "wb") as f:
                f.write(b"bytes")
            os.symlink("model.pkl", os.path.join(store, "mx", "v1", "link.pkl"))
            os.symlink("v1", os.path.join(store, "mx", "current"))
            p = subprocess.run([MODELFS, "init", store], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(os.readlink(os.path.join(store, "mx", "current")), "v1")
            self.assertIn("mx/current", p.stdout)
            self.assertTrue(os.path.isfile(os.path.join(store, "mx", "v1", "model.pkl")))
        finally:
            subprocess.run(["rm", "-rf", "--one-file-system", top])


class TestMounted(Base):
    mount = True

    def test_start_keeps_directories_metadata_json_cannot_vouch_for(self):
        self.api.req("POST", "/models", 201, json={"name": "k1"})
        self.api.version("k1", "gone", seal=False)
        subprocess.run(["rm", "-r", os.path.join(self.d.mnt, "k1", "gone")], check=True)
        self.api.version("k1", "v1")
        self.d.stop()
        os.mkdir(self.raw("k1", "gone"))
        with open(self.raw("k1", "gone", "weights.bin"), "wb") as f:
            f.write(b"hand-copied")
        path = self.raw("k1", "metadata.json")
        with open(path) as f:
            doc = json.load(f)
        doc = {"event_id": 1, **{k: v for k, v in doc.items() if k != "event_id"}}
        with open(path, "w") as f:
            json.dump(doc, f)
        self.d.start()
        self.assertTrue(os.path.isfile(self.raw("k1", "gone", "weights.bin")))
        self.d.stop()
        p = self.cli("fsck", self.d.store)
        self.assertIn("unknown-directory", p.stdout)

    def test_mount_follows_the_db_after_a_raw_edit(self):
        self.api.req("POST", "/models", 201, json={"name": "m"})
        self.api.version("m", "v1")
        self.api.promote("m", "v1")
        self.d.stop()
        os.unlink(self.raw("m", "current"))
        os.symlink("/etc", self.raw("m", "current"))
        self.d.start()
        self.assertEqual(os.readlink(os.path.join(self.d.mnt, "m", "current")), "v1")
        self.assertIn("model.pkl", os.listdir(os.path.join(self.d.mnt, "m", "current")))
        self.assertEqual(os.readlink(self.raw("m", "current")), "v1")

    def test_kill_restart_cycles_leave_one_mount(self):
        mnt = os.path.realpath(self.d.mnt)
        for _ in range(3):
            self.d.proc.kill()
            self.d.proc.wait()
            self.d.log.close()
            self.d.proc = None
            self.d.start()
            self.assertEqual(mounts_at(mnt), ["fuse.modelfs"])
            os.listdir(self.d.mnt)
        self.d.stop()
        self.assertEqual(mounts_at(mnt), [])
        self.assertEqual(os.listdir(self.d.mnt), [])


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
