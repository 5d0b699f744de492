// SPDX-License-Identifier: Apache-2.0
// Validates Kubernetes objects offline against the schemas of the
// `kubernetes-models` packages (core kinds from the Kubernetes OpenAPI
// document, ServiceMonitor/PrometheusRule from the prometheus-operator CRDs).
//
//   node validate.mjs [FILE]    FILE (or stdin): a JSON array of objects
//
// Prints one line per object, `ok <apiVersion> <kind> <name>` or
// `FAIL <apiVersion> <kind> <name>: <why>`, and exits 1 if any failed. An
// apiVersion/kind these packages do not model is a failure, not a skip.
//
// The generated validators check types, enums, formats and required fields
// but let unknown fields through (the Kubernetes schemas set no
// additionalProperties: false), so a typo such as `livenessProb:` would pass.
// The API server refuses such fields (strict field validation), so this
// script also reports them: every object is wrapped in a Proxy that records
// which keys the validator looked up; a key present in an object whose
// schema names its properties (the validator looked up at least one key and
// did not enumerate the keys, as it does for maps) but never looked up is
// unknown to the schema.
import { readFileSync } from "node:fs";

// apiVersion group -> module prefix. Only these groups are known.
const GROUPS = {
	"": "kubernetes-models",
	apps: "kubernetes-models",
	batch: "kubernetes-models",
	policy: "kubernetes-models",
	"rbac.authorization.k8s.io": "kubernetes-models",
	"networking.k8s.io": "kubernetes-models",
	"storage.k8s.io": "kubernetes-models",
	"scheduling.k8s.io": "kubernetes-models",
	"monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function modelClass(apiVersion, kind) {
	if (typeof apiVersion !== "string" || typeof kind !== "string")
		throw new Error("apiVersion and kind must be strings");
	const slash = apiVersion.lastIndexOf("/");
	const group = slash < 0 ? "" : apiVersion.slice(0, slash);
	const version = apiVersion.slice(slash + 1);
	const pkg = GROUPS[group];
	if (pkg === undefined || !/^v\d+((alpha|beta)\d+)?$/.test(version))
		throw new Error(`unknown apiVersion ${apiVersion} (no schema for it here)`);
	if (!/^[A-Z][A-Za-z0-9]*$/.test(kind))
		throw new Error(`unknown kind ${kind} in ${apiVersion} (no schema for it here)`);
	// One module per kind: importing the version's index would load every
	// schema of the group (most of the run time).
	let mod;
	try {
		mod = await import(`${pkg}/${group ? group + "/" : ""}${version}/${kind}`);
	} catch (e) {
		if (e.code !== "ERR_MODULE_NOT_FOUND" && e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED")
			throw e;
		throw new Error(`unknown kind ${kind} in ${apiVersion} (no schema for it here)`);
	}
	const cls = mod[kind];
	if (typeof cls !== "function" || cls.kind !== kind || cls.apiVersion !== apiVersion)
		throw new Error(`unknown kind ${kind} in ${apiVersion} (no schema for it here)`);
	return cls;
}

// A Proxy per object/array that records the validator's look-ups.
function watch(value, path, nodes) {
	if (value === null || typeof value !== "object")
		return value;
	const node = { path, value, looked: new Set(), enumerated: Array.isArray(value) };
	nodes.push(node);
	const children = Array.isArray(value) ? [] : {};
	for (const k of Object.keys(value))
		children[k] = watch(value[k], `${path}/${k}`, nodes);
	return new Proxy(value, {
		get(target, key, receiver) {
			if (typeof key === "string" && key !== "toJSON")
				node.looked.add(key);
			if (typeof key === "string" && Object.hasOwn(children, key))
				return children[key];
			return Reflect.get(target, key, receiver);
		},
		has(target, key) {
			if (typeof key === "string")
				node.looked.add(key);
			return Reflect.has(target, key);
		},
		ownKeys(target) {
			node.enumerated = true;
			return Reflect.ownKeys(target);
		},
	});
}

function unknownFields(nodes) {
	const out = [];
	for (const n of nodes) {
		if (n.enumerated || n.looked.size === 0)
			continue; // a map, or a free-form object the schema does not describe
		for (const k of Object.keys(n.value))
			if (!n.looked.has(k))
				out.push(`${n.path}/${k}`);
	}
	return out;
}

async function check(obj) {
	const cls = await modelClass(obj?.apiVersion, obj?.kind);
	const nodes = [];
	const proxy = watch(obj, "data", nodes);
	try {
		cls.prototype.validate.call(proxy);
	} catch (e) {
		throw new Error(e.message);
	}
	const unknown = unknownFields(nodes);
	if (unknown.length)
		throw new Error(`unknown field(s) ${unknown.join(", ")}`);
}

const text = readFileSync(process.argv[2] ?? 0, "utf8");
const objs = JSON.parse(text);
if (!Array.isArray(objs)) {
	console.error("validate.mjs: expected a JSON array of objects");
	process.exit(2);
}
let failed = 0;
for (const obj of objs) {
	const id = `${obj?.apiVersion} ${obj?.kind} ${obj?.metadata?.name}`;
	try {
		await check(obj);
		console.log(`ok ${id}`);
	} catch (e) {
		failed++;
		console.log(`FAIL ${id}: ${e.message}`);
	}
}
process.exit(failed ? 1 : 0);
