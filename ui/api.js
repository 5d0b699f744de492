// SPDX-License-Identifier: Apache-2.0
// The REST API as the UI sees it: fetch with the session's token, errors as
// ApiError (status, code, message, details.failed_gates), cursor paging, and
// which routes this daemon has (from its /openapi.json) so the UI shows only
// what works here.

const TOKEN_KEY = 'modelfs.token';

export class ApiError extends Error {
	constructor(status, body) {
		const e = (body && body.error) || {};
		super(e.message || 'HTTP ' + status);
		this.status = status;
		this.code = e.code || 'http_' + status;
		this.details = e.details || null;
	}
	get failedGates() {
		return (this.details && Array.isArray(this.details.failed_gates)) ? this.details.failed_gates : [];
	}
}

/** The token lives in sessionStorage only: never a URL, never a cookie. */
export const token = {
	get: () => sessionStorage.getItem(TOKEN_KEY) || '',
	set: (t) => t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY),
};

export function enc(s) {
	return encodeURIComponent(s);
}

export function qs(params) {
	const p = new URLSearchParams();
	for (const [k, v] of Object.entries(params || {}))
		if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
	const t = p.toString();
	return t ? '?' + t : '';
}

export async function api(path, opts = {}) {
	const headers = { Accept: 'application/json' };
	const t = token.get();
	if (t) headers.Authorization = 'Bearer ' + t;
	let body;
	if (opts.body !== undefined) {
		headers['Content-Type'] = 'application/json';
		body = JSON.stringify(opts.body);
	}
	const res = await fetch(path, { method: opts.method || 'GET', headers, body, credentials: 'omit', cache: 'no-store' });
	const text = await res.text();
	let data = null;
	if (text) {
		try { data = JSON.parse(text); } catch { data = null; }
	}
	if (!res.ok) throw new ApiError(res.status, data);
	return data;
}

/** Every item of a cursor-paged list (key: the array's name). */
export async function getAll(path, key, params = {}, max = Infinity) {
	const out = [];
	let cursor = null;
	do {
		const page = await api(path + qs({ ...params, limit: 1000, cursor }));
		out.push(...(page[key] || []));
		cursor = page.next_cursor;
	} while (cursor && out.length < max);
	return out;
}

let features = null;

/** The daemon's routes and their query parameters, from /openapi.json (once). */
export async function loadFeatures() {
	if (features) return features;
	const doc = await api('/openapi.json');
	const routes = new Map();
	for (const [path, item] of Object.entries(doc.paths || {})) {
		for (const [method, op] of Object.entries(item)) {
			const params = new Set();
			for (const p of op.parameters || []) {
				let q = p;
				if (p.$ref) q = p.$ref.split('/').reduce((n, part) => (part === '#' ? doc : n && n[part]), doc);
				if (q && q.in === 'query') params.add(q.name);
			}
			routes.set(method.toUpperCase() + ' ' + path, params);
		}
	}
	features = {
		has: (method, path) => routes.has(method + ' ' + path),
		param: (method, path, name) => (routes.get(method + ' ' + path) || new Set()).has(name),
	};
	return features;
}

export const M = '/v1/models/{model}';
export const V = M + '/versions/{version}';
