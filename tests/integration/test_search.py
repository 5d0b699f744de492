# SPDX-License-Identifier: Apache-2.0
"""Descriptions, owners, tags and search against a real `modelfs serve`: the filter
language with every operator over metrics, tags, names, states and times, a bad
filter's 400 naming the position, sorts, cursor paging that stays stable while
versions are added, history newest first, the models overview, the generated
metadata.json files, and the client commands (tables, --json, exit statuses).

usage: test_search.py /path/to/modelfs
"""
import json
import os
import re
import subprocess
import sys
import time
import unittest

from apiutil import Client, Daemon, OpenAPI, error_code

MODELFS = None
ADMIN = "admin-secret-0123456789"
WRITER = "writer-secret-0123456789"
READER = "reader-secret-0123456789"
TOKENS = {"release": ("admin", ADMIN), "pipeline": ("writer", WRITER),
          "dashboard": ("reader", READER)}

# (model, version, accuracy, team, validation_status)
VERSIONS = [
    ("fraud", "v1", 0.81, "sre", "failed"),
    ("fraud", "v2", 0.91, "sre", "passed"),
    ("fraud", "v3", 0.95, "ml", "passed"),
    ("fraud", "v4", 0.88, None, "pending"),
    ("churn", "v1", 0.93, "sre", "passed"),
    ("churn", "v2", 0.70, "ml", "failed"),
]


def names(page):
    return [(v.get("model"), v["name"]) for v in page["versions"]]


class SearchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(MODELFS, tokens=TOKENS).start()
        cls.api = OpenAPI(requests_get(cls.d.url + "/openapi.json"))
        cls.c = Client(cls.d, cls.api, token=ADMIN)
        cls.reader = Client(cls.d, cls.api, token=READER)
        c = cls.c
        for m in ("fraud", "churn", "empty"):
            c.post("/v1/models", {"name": m}, expect=201)
        cls.t0 = None
        for i, (m, v, acc, team, status) in enumerate(VERSIONS):
            meta = {"validation_status": status, "git_commit": "3f2a9c1",
                    "performance_metrics": {"accuracy": acc, "f1_score": round(acc - 0.05, 2)},
                    "hyperparameters": {"n_estimators": 100 + i}}
            if team:
                meta["tags"] = {"team": team, "stage": "exp"}
                meta["owner"] = f"{team}@example.com"
            if v == "v3":
                meta["description"] = "retrained on\nthe March data"
            c.post(f"/v1/models/{m}/versions", {"name": v, "metadata": meta}, expect=201)
            c.put(f"/v1/models/{m}/versions/{v}/files/model.pkl", data=f"{m} {v}".encode(),
                  expect=201)
            if v != "v4":
                c.post(f"/v1/models/{m}/versions/{v}/seal")
            if (m, v) == ("fraud", "v2"):
                time.sleep(0.01)
                cls.t0 = c.get(f"/v1/models/{m}/versions/{v}").json()["created_at"]
        c.put("/v1/models/fraud/aliases/staging", {"version": "v3"})
        c.put("/v1/models/fraud/aliases/qa", {"version": "v3"})

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.d.cleanup()
        if rc not in (0, None):
            raise AssertionError(f"daemon exited {rc}")

    def search(self, flt=None, expect=200, client=None, **params):
        """GET /v1/search over the fixture's models (other tests add their own)."""
        scope = '(model = "fraud" or model = "churn")'
        params["filter"] = f"{scope} and ({flt})" if flt is not None else scope
        return (client or self.c).get("/v1/search", expect=expect, params=params).json()

    # ---- the filter language ----

    def test_every_operator_on_a_metric(self):
        acc = {(m, v): a for m, v, a, _, _ in VERSIONS}
        for op, fn in (("=", lambda a: a == 0.91), ("!=", lambda a: a != 0.91),
                       ("<", lambda a: a < 0.91), ("<=", lambda a: a <= 0.91),
                       (">", lambda a: a > 0.91), (">=", lambda a: a >= 0.91)):
            got = set(names(self.search(f"performance_metrics.accuracy {op} 0.91")))
            want = {(m, v) for (m, v), a in acc.items() if fn(a)}
            self.assertEqual(got, want, op)

    def test_text_fields_and_tags(self):
        self.assertEqual(set(names(self.search('tags.team = "sre"'))),
                         {("fraud", "v1"), ("fraud", "v2"), ("churn", "v1")})
        # != matches versions that have the tag with another value (v4 has none).
        self.assertEqual(set(names(self.search('tags.team != "sre"'))),
                         {("fraud", "v3"), ("churn", "v2")})
        self.assertEqual(names(self.search('name = "v4"')), [("fraud", "v4")])
        self.assertEqual(set(names(self.search('name > "v2" and model = "fraud"'))),
                         {("fraud", "v3"), ("fraud", "v4")})
        self.assertEqual(names(self.search('state = "draft"')), [("fraud", "v4")])
        self.assertEqual(set(names(self.search('validation_status = "failed"'))),
                         {("fraud", "v1"), ("churn", "v2")})
        self.assertEqual(set(names(self.search('owner = "ml@example.com"'))),
                         {("fraud", "v3"), ("churn", "v2")})
        self.assertEqual(names(self.search('description = "retrained on\nthe March data"')),
                         [("fraud", "v3")])
        self.assertEqual(len(self.search("archived = false")["versions"]), len(VERSIONS))
        self.assertEqual(self.search("archived = true")["versions"], [])
        self.assertEqual(names(self.search("hyperparameters.n_estimators >= 105")),
                         [("churn", "v2")])
        self.assertEqual(len(self.search('git_commit = "3f2a9c1"')["versions"]), len(VERSIONS))

    def test_times(self):
        after = set(names(self.search(f'created_at > "{self.t0}"')))
        self.assertEqual(after, {("fraud", "v3"), ("fraud", "v4"), ("churn", "v1"),
                                 ("churn", "v2")})
        self.assertEqual(names(self.search(f'created_at <= "{self.t0}" and name = "v2"')),
                         [("fraud", "v2")])
        # A draft has no sealed_at: no comparison matches it.
        self.assertNotIn(("fraud", "v4"),
                         names(self.search('sealed_at >= "2000-01-01T00:00:00Z"')))

    def test_and_or_parentheses(self):
        f = 'performance_metrics.accuracy >= 0.9 and tags.team = "sre"'
        self.assertEqual(set(names(self.search(f))), {("fraud", "v2"), ("churn", "v1")})
        # and binds tighter than or.
        f = 'name = "v1" or name = "v2" and model = "churn"'
        self.assertEqual(set(names(self.search(f))),
                         {("fraud", "v1"), ("churn", "v1"), ("churn", "v2")})
        f = '(name = "v1" or name = "v2") and model = "churn"'
        self.assertEqual(set(names(self.search(f))), {("churn", "v1"), ("churn", "v2")})
        f = '((tags.team = "ml")) AND (performance_metrics.accuracy < 0.8 OR name = "v3")'
        self.assertEqual(set(names(self.search(f))), {("fraud", "v3"), ("churn", "v2")})

    def test_bad_filters_name_the_position(self):
        cases = [
            ("performance_metrics.accuracy >> 0.9", 31, "expected a value"),
            ('tags.team = "sre', 13, "unterminated string"),
            ("name = ", 8, "expected a value"),
            ("accuracy 0.9", 10, "expected an operator"),
            ('name = "v1" and', 16, "expected a comparison"),
            ('(name = "v1"', 13, "expected ')'"),
            ('name = "v1" name = "v2"', 13, "expected 'and', 'or'"),
            ("name = 3", 8, "compares with a \"string\""),
            ("seq = \"x\"", 7, "compares with a number"),
            ('created_at > "yesterday"', 14, "RFC 3339"),
            ("archived > true", 1, "takes = or !="),
            ("perf$ = 1", 5, "unexpected character '$'"),
            ("a..b = 1", 1, "not a field or metadata path"),
        ]
        for flt, pos, what in cases:
            r = self.c.get("/v1/search", expect=400, params={"filter": flt})
            self.assertEqual(error_code(r), "bad_request", flt)
            msg = r.json()["error"]["message"]
            self.assertIn(f"at position {pos}:", msg, flt)
            self.assertIn(what, msg, flt)
            # The same filter on one model's list.
            r = self.c.get("/v1/models/fraud/versions", expect=400, params={"filter": flt})
            self.assertIn(f"at position {pos}:", r.json()["error"]["message"], flt)
        for params in ({"sort": "-"}, {"sort": "name;drop"}, {"cursor": "zz"},
                       {"cursor": "5b5d"}, {"archived": "maybe"}, {"state": "gone"},
                       {"limit": "0"}, {"filtre": "x"}):
            self.assertEqual(error_code(self.c.get("/v1/search", expect=400, params=params)),
                             "bad_request", params)

    def test_values_are_parameters(self):
        """A value that reads like SQL is only ever a value."""
        self.assertEqual(self.search("name = \"v1' OR 1=1 --\"")["versions"], [])
        self.assertEqual(self.search('tags.team = "x\\" or 1 = 1"')["versions"], [])

    # ---- summaries, sorting, paging ----

    def test_summaries_carry_aliases_metrics_and_tags(self):
        page = self.c.get("/v1/models/fraud/versions").json()
        v3 = [v for v in page["versions"] if v["name"] == "v3"][0]
        self.assertEqual(v3["aliases"], ["qa", "staging"])
        self.assertEqual(v3["metrics"], {"accuracy": 0.95, "f1_score": 0.9})
        self.assertEqual(v3["tags"], {"team": "ml", "stage": "exp"})
        self.assertEqual((v3["owner"], v3["git_commit"], v3["archived"]),
                         ("ml@example.com", "3f2a9c1", False))
        self.assertEqual(v3["description"], "retrained on\nthe March data")
        v4 = [v for v in page["versions"] if v["name"] == "v4"][0]
        self.assertEqual((v4["tags"], v4["owner"], v4["aliases"]), ({}, None, []))
        one = self.c.get("/v1/models/fraud/versions/v3").json()
        for k in ("aliases", "metrics", "tags", "owner", "description", "git_commit", "archived"):
            self.assertEqual(one[k], v3[k], k)
        item = self.search('name = "v3"')["versions"][0]
        self.assertEqual(item["model"], "fraud")
        self.assertEqual({k: item[k] for k in v3}, v3)

    def test_sort(self):
        page = self.search(sort="-performance_metrics.accuracy")
        accs = [v["metrics"]["accuracy"] for v in page["versions"]]
        self.assertEqual(accs, sorted(accs, reverse=True))
        page = self.c.get("/v1/models/fraud/versions", params={"sort": "tags.team"}).json()
        # Text order, and versions without the tag last.
        self.assertEqual([v["name"] for v in page["versions"]], ["v3", "v1", "v2", "v4"])
        page = self.c.get("/v1/models/fraud/versions", params={"sort": "-seq"}).json()
        self.assertEqual([v["name"] for v in page["versions"]], ["v4", "v3", "v2", "v1"])
        page = self.search(sort="-created_at")
        self.assertEqual(names(page)[0], ("churn", "v2"))
        self.assertEqual(names(self.search())[:2], [("churn", "v1"), ("churn", "v2")])

    def walk(self, path, params):
        seen, cursor = [], None
        while True:
            p = dict(params, limit=2)
            if cursor:
                p["cursor"] = cursor
            page = self.c.get(path, params=p).json()
            self.assertLessEqual(len(page["versions"]), 2)
            seen += [(v.get("model"), v["name"]) for v in page["versions"]]
            cursor = page["next_cursor"]
            if not cursor:
                return seen

    def test_cursor_paging_matches_one_page(self):
        for path, params in (("/v1/search", {}),
                             ("/v1/search", {"sort": "-performance_metrics.accuracy"}),
                             ("/v1/search", {"sort": "sealed_at"}),
                             ("/v1/search", {"sort": "tags.team", "filter": "seq > 0"}),
                             ("/v1/models/fraud/versions", {}),
                             ("/v1/models/fraud/versions", {"sort": "-tags.team"})):
            whole = self.c.get(path, params=dict(params, limit=100)).json()
            self.assertIsNone(whole["next_cursor"])
            self.assertEqual(self.walk(path, params),
                             [(v.get("model"), v["name"]) for v in whole["versions"]],
                             (path, params))

    def test_cursor_stable_under_inserts(self):
        c = self.c
        c.post("/v1/models", {"name": "paged"}, expect=201)
        for i in range(1, 7):
            c.post("/v1/models/paged/versions",
                   {"name": f"p{i}", "metadata": {"performance_metrics": {"accuracy": i / 10}}},
                   expect=201)
        params = {"sort": "-performance_metrics.accuracy", "limit": 2, "model": "paged"}
        first = c.get("/v1/search", params=params).json()
        self.assertEqual([v["name"] for v in first["versions"]], ["p6", "p5"])
        # Inserted before the cursor (higher accuracy) and after it.
        c.post("/v1/models/paged/versions",
               {"name": "hi", "metadata": {"performance_metrics": {"accuracy": 0.99}}}, expect=201)
        c.post("/v1/models/paged/versions",
               {"name": "lo", "metadata": {"performance_metrics": {"accuracy": 0.01}}}, expect=201)
        rest, cursor = [], first["next_cursor"]
        while cursor:
            page = c.get("/v1/search", params=dict(params, cursor=cursor)).json()
            rest += [v["name"] for v in page["versions"]]
            cursor = page["next_cursor"]
        self.assertEqual(rest, ["p4", "p3", "p2", "p1", "lo"])
        # The model's own list: plain creation-order cursors keep working.
        page = c.get("/v1/models/paged/versions", params={"limit": 3}).json()
        self.assertEqual(page["next_cursor"], "3")
        page = c.get("/v1/models/paged/versions", params={"limit": 3, "cursor": "3"}).json()
        self.assertEqual([v["name"] for v in page["versions"]], ["p4", "p5", "p6"])

    def test_state_and_validation_filters_with_search(self):
        self.assertEqual(names(self.search(state="draft")), [("fraud", "v4")])
        self.assertEqual(set(names(self.search(validation_status="passed", model="fraud"))),
                         {("fraud", "v2"), ("fraud", "v3")})
        self.assertEqual(self.search(model="nope")["versions"], [])
        self.c.get("/v1/models/nope/versions", expect=404)
        self.assertEqual(len(self.search(archived="include", model="fraud")["versions"]), 4)
        self.assertEqual(self.search(archived="only")["versions"], [])

    # ---- descriptions, owners, tags ----

    def test_model_description_owner_tags(self):
        c = self.c
        c.post("/v1/models", {"name": "described"}, expect=201)
        about = c.patch("/v1/models/described",
                        {"description": "fraud scores for card payments", "owner": "risk-team",
                         "tags": {"team": "risk", "tier": "1"}}).json()
        self.assertEqual(about, {"name": "described", "description": "fraud scores for card payments",
                                 "owner": "risk-team", "tags": {"team": "risk", "tier": "1"}})
        about = c.patch("/v1/models/described", {"tags": {"tier": None, "pager": "yes"},
                                                  "description": None}).json()
        self.assertEqual((about["description"], about["owner"], about["tags"]),
                         (None, "risk-team", {"team": "risk", "pager": "yes"}))
        m = c.get("/v1/models/described").json()
        self.assertEqual((m["owner"], m["tags"]), ("risk-team", {"team": "risk", "pager": "yes"}))
        listed = [x for x in c.get("/v1/models").json()["models"] if x["name"] == "described"][0]
        self.assertEqual((listed["owner"], listed["tags"]), ("risk-team", {"team": "risk", "pager": "yes"}))
        self.assertEqual(listed["last_event"]["kind"], "model.describe")
        ev = c.get("/v1/models/described/history", params={"kind": "model.describe"}).json()["events"]
        self.assertEqual(len(ev), 2)
        self.assertEqual(ev[0]["after"]["owner"], "risk-team")
        with open(os.path.join(self.d.store, "described", "metadata.json")) as f:
            disk = json.load(f)
        self.assertEqual((disk["model_owner"], disk["model_tags"], disk["model_description"]),
                         ("risk-team", {"team": "risk", "pager": "yes"}, None))
        # Validation: 400 naming what is wrong; nothing changes.
        for body, what in (({"tags": {"bad key": "x"}}, "tag key 'bad key'"),
                           ({"tags": {"-x": "x"}}, "tag key '-x'"),
                           ({"tags": {"k" * 64: "x"}}, "tag key"),
                           ({"tags": {"team": ""}}, "tag 'team' must have a value of 1 to 256"),
                           ({"tags": {"team": "x" * 257}}, "tag 'team' must have a value"),
                           ({"tags": {"team": 5}}, "tag 'team' must have a string value"),
                           ({"tags": ["team"]}, "'tags' must be an object"),
                           ({"owner": ""}, "'owner' must be 1 to 128"),
                           ({"owner": "a\x1bb"}, "'owner' must be 1 to 128"),
                           ({"owner": 7}, "'owner' must be a string"),
                           ({"description": "d" * 4097}, "'description' must be at most 4096"),
                           ({"nmae": "x"}, "unknown field 'nmae'"),
                           ({"tags": {f"k{i}": "v" for i in range(65)}}, "at most 64 tags")):
            r = c.patch("/v1/models/described", body, expect=400)
            self.assertEqual(error_code(r), "bad_request")
            self.assertIn(what, r.json()["error"]["message"], body)
        self.assertEqual(c.get("/v1/models/described").json()["tags"], {"team": "risk", "pager": "yes"})
        self.reader.patch("/v1/models/described", {"owner": "me"}, expect=403)
        c.patch("/v1/models/nope", {"owner": "me"}, expect=404)

    def test_version_description_owner_tags_after_seal(self):
        c = self.c
        meta = c.patch("/v1/models/churn/versions/v1/metadata",
                       {"description": "the Q1 model", "owner": "sre@example.com",
                        "tags": {"stage": None, "reviewed": "yes"}}).json()
        self.assertEqual(meta["tags"], {"team": "sre", "reviewed": "yes"})
        self.assertEqual(names(self.search('tags.reviewed = "yes"')), [("churn", "v1")])
        self.assertEqual(self.search('tags.stage = "exp" and model = "churn"')["versions"][0]["name"], "v2")
        with open(os.path.join(self.d.store, "churn", "v1", "metadata.json")) as f:
            disk = json.load(f)
        self.assertEqual((disk["description"], disk["tags"]), ("the Q1 model", {"team": "sre", "reviewed": "yes"}))
        # Frozen fields stay frozen; a bad tag is refused and changes nothing.
        c.patch("/v1/models/churn/versions/v1/metadata", {"git_commit": "abcd"}, expect=409)
        r = c.patch("/v1/models/churn/versions/v1/metadata", {"tags": {"no way": "x"}}, expect=422)
        self.assertIn("tag key 'no way'", r.json()["error"]["message"])
        self.assertEqual(c.get("/v1/models/churn/versions/v1").json()["tags"],
                         {"team": "sre", "reviewed": "yes"})

    def test_models_overview_in_one_call(self):
        models = {m["name"]: m for m in self.c.get("/v1/models").json()["models"]}
        fraud = models["fraud"]
        self.assertEqual(fraud["latest"]["name"], "v4")
        self.assertEqual(fraud["latest"]["metrics"]["accuracy"], 0.88)
        self.assertEqual(sorted(a["alias"] for a in fraud["aliases"]), ["qa", "staging"])
        self.assertEqual(fraud["aliases"][0]["version"], "v3")
        newest = self.c.get("/v1/models/fraud/history",
                            params={"order": "desc", "limit": 1}).json()["events"][0]
        self.assertEqual(fraud["last_event"],
                         {k: newest[k] for k in ("id", "ts", "kind", "actor", "channel")})
        self.assertEqual(fraud["last_event"]["channel"], "api")
        self.assertIsNone(models["empty"]["latest"])
        self.assertEqual(models["empty"]["aliases"], [])

    def test_history_newest_first(self):
        asc = self.c.get("/v1/models/fraud/history").json()["events"]
        desc = self.c.get("/v1/models/fraud/history", params={"order": "desc"}).json()["events"]
        self.assertEqual([e["id"] for e in desc], [e["id"] for e in reversed(asc)])
        seen, cursor = [], None
        while True:
            p = {"order": "desc", "limit": 3}
            if cursor:
                p["cursor"] = cursor
            page = self.c.get("/v1/models/fraud/history", params=p).json()
            seen += [e["id"] for e in page["events"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, [e["id"] for e in desc])
        kinds = self.c.get("/v1/models/fraud/history",
                           params={"order": "desc", "kind": "alias."}).json()["events"]
        self.assertEqual([e["alias"] for e in kinds], ["qa", "staging"])
        self.assertEqual(error_code(self.c.get("/v1/models/fraud/history", expect=400,
                                               params={"order": "up"})), "bad_request")

    # ---- the client ----

    def run_cli(self, *args, want=0):
        e = {k: v for k, v in os.environ.items() if not k.startswith("MODELFS_")}
        e["MODELFS_URL"] = self.d.url
        e["MODELFS_TOKEN"] = ADMIN
        p = subprocess.run([MODELFS] + list(args), env=e, capture_output=True, text=True,
                           timeout=60)
        if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
            raise AssertionError(f"{' '.join(args)}: sanitizer report:\n{p.stderr}")
        if want is not None and p.returncode != want:
            raise AssertionError(f"{' '.join(args)}: exit {p.returncode}, wanted {want}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    @staticmethod
    def rows(text):
        return [re.split(r"\s{2,}", line.rstrip()) for line in text.splitlines() if line.strip()]

    def test_client_versions_and_search(self):
        rows = self.rows(self.run_cli("versions", "fraud", "--filter",
                                      "performance_metrics.accuracy >= 0.9").stdout)
        self.assertEqual(rows[0], ["VERSION", "STATE", "VALIDATION", "ALIASES", "METRICS", "TAGS",
                                   "CREATED"])
        self.assertEqual([r[0] for r in rows[1:]], ["v2", "v3"])
        self.assertEqual(rows[2][3:6], ["qa,staging", "accuracy=0.95,f1_score=0.9",
                                        "stage=exp,team=ml"])
        j = json.loads(self.run_cli("versions", "fraud", "--sort", "-performance_metrics.accuracy",
                                    "--json").stdout)
        self.assertEqual([v["name"] for v in j["versions"]], ["v3", "v2", "v4", "v1"])
        j = json.loads(self.run_cli("versions", "fraud", "--sort", "seq", "--limit", "1",
                                    "--json").stdout)
        self.assertEqual(len(j["versions"]), 1)
        self.assertIsNotNone(j["next_cursor"])
        p = self.run_cli("search", 'performance_metrics.accuracy >= 0.9 and tags.team = "sre"')
        rows = self.rows(p.stdout)
        self.assertEqual(rows[0][:3], ["MODEL", "VERSION", "STATE"])
        self.assertEqual({(r[0], r[1]) for r in rows[1:]}, {("fraud", "v2"), ("churn", "v1")})
        j = json.loads(self.run_cli("search", 'tags.team = "ml"', "--model", "churn",
                                    "--json").stdout)
        self.assertEqual([(v["model"], v["name"]) for v in j["versions"]], [("churn", "v2")])
        # A bad filter: usage exit status, the position in the message.
        p = self.run_cli("search", "performance_metrics.accuracy >> 0.9", want=2)
        self.assertIn("at position 31", p.stderr)
        self.assertIn("HTTP 400 bad_request", p.stderr)
        p = self.run_cli("versions", "fraud", "--filter", "name =", want=2)
        self.assertIn("at position 7", p.stderr)
        self.run_cli("versions", "nope", "--filter", 'name = "v1"', want=3)
        self.run_cli("search", want=2)

    def test_client_describe_and_history_reverse(self):
        self.run_cli("models")
        p = self.run_cli("describe", "empty", "--description", "nothing yet", "--owner", "ops",
                         "--tag", "team=ops", "--tag=tier=2")
        rows = self.rows(p.stdout)
        self.assertIn(["description", "nothing yet"], rows)
        self.assertIn(["owner", "ops"], rows)
        self.assertIn(["tags", "team=ops,tier=2"], rows)
        j = json.loads(self.run_cli("describe", "empty", "--untag", "tier", "--json").stdout)
        self.assertEqual(j, {"model": "empty", "description": "nothing yet", "owner": "ops",
                             "tags": {"team": "ops"}})
        j = json.loads(self.run_cli("describe", "empty", "--json").stdout)
        self.assertEqual(j["tags"], {"team": "ops"})
        j = json.loads(self.run_cli("describe", "fraud", "v2", "--tag", "reviewed=no",
                                    "--owner", "", "--json").stdout)
        self.assertEqual((j["version"], j["owner"], j["tags"]),
                         ("v2", None, {"team": "sre", "stage": "exp", "reviewed": "no"}))
        p = self.run_cli("describe", "empty", "--tag", "bad key=x", want=2)
        self.assertIn("tag key 'bad key'", p.stderr)
        p = self.run_cli("describe", "empty", "--tag", "novalue", want=2)
        self.assertIn("--tag takes KEY=VALUE", p.stderr)
        self.run_cli("describe", "nope", "--owner", "x", want=3)
        self.run_cli("describe", "fraud", "v9", want=3)
        p = self.run_cli("describe", "fraud", "v2", "--tag", "bad key=x", want=1)
        self.assertIn("tag key 'bad key'", p.stderr)
        # history --reverse: newest first.
        fwd = json.loads(self.run_cli("history", "empty", "--json").stdout)["events"]
        rev = json.loads(self.run_cli("history", "empty", "--reverse", "--json").stdout)["events"]
        self.assertEqual([e["id"] for e in rev], [e["id"] for e in reversed(fwd)])
        # The newest change (refusals of the bad describes above are events too).
        rows = self.rows(self.run_cli("history", "empty", "--reverse", "--limit", "10").stdout)
        self.assertEqual([r[1] for r in rows[1:] if r[1] != "refused"][0], "model.describe")


def requests_get(url):
    import requests
    return requests.get(url, timeout=30).json()


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
