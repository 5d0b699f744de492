// SPDX-License-Identifier: Apache-2.0
// DOM building for the modelfs web UI. Every value reaches the page through
// textContent or an attribute set by name: nothing is parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
		else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
		else if (k === 'dataset') Object.assign(el.dataset, v);
		else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
		else el.setAttribute(k, v === true ? '' : String(v));
	}
	append(el, children);
	return el;
}

/** Appends children, skipping null, undefined and false; arrays are flattened. */
export function add(el, ...children) {
	return append(el, children);
}

function append(el, children) {
	for (const c of children.flat(Infinity)) {
		if (c === undefined || c === null || c === false) continue;
		el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return el;
}

/** h('a', {href, class, onclick}, 'text', child, ...): an HTML element. */
export function h(tag, attrs, ...children) {
	return build(document.createElement(tag), attrs, children);
}

/** s('rect', {x, y}, ...): an SVG element. */
export function s(tag, attrs, ...children) {
	return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
	while (el.firstChild) el.removeChild(el.firstChild);
	return el;
}

export function fmtTime(iso) {
	if (!iso) return '—';
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return String(iso);
	return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function fmtSize(n) {
	if (n === null || n === undefined) return '—';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0, v = Number(n);
	while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
	return (i ? v.toFixed(1) : String(v)) + ' ' + units[i];
}

export function fmtNum(v) {
	if (v === null || v === undefined || v === '') return '—';
	if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
	return String(v);
}

/** A link inside the app: navigates without a reload (see app.js). */
export function link(href, ...children) {
	return h('a', { href, 'data-nav': '' }, ...children);
}

export const uiPath = {
	model: (m) => '/ui/models/' + encodeURIComponent(m),
	version: (m, v) => '/ui/models/' + encodeURIComponent(m) + '/versions/' + encodeURIComponent(v),
};

/** A badge for a state or validation status. */
export function badge(text, kind) {
	return h('span', { class: ['badge', kind && 'badge-' + kind] }, text ?? '—');
}

export function section(title, ...children) {
	return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

/** Metrics of a version record: numeric leaves of performance_metrics, flattened. */
export function metricsOf(meta) {
	const out = {};
	const walk = (o, pre) => {
		for (const [k, v] of Object.entries(o || {})) {
			if (typeof v === 'number') out[pre + k] = v;
			else if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, pre + k + '.');
		}
	};
	walk(meta && meta.performance_metrics, '');
	return out;
}
