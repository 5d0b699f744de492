// SPDX-License-Identifier: Apache-2.0
// A version's page: state and aliases, files with sizes and SHA-256, the
// metadata record, lineage as a small graph with the versions that share its
// commit or data hash, a diff against another version, git tags, observations.
import { h, add, s, clear, link, uiPath, badge, fmtTime, fmtSize, fmtNum, section } from './dom.js';
import { api, enc, qs, M } from './api.js';
import { sparkline } from './chart.js';
import { actions } from './model.js';

export async function renderVersion(view, model, version, ctx) {
	const base = '/v1/models/' + enc(model);
	const vbase = base + '/versions/' + enc(version);
	const [v, detail, lineage, obs] = await Promise.all([
		api(vbase),
		api(base),
		api(vbase + '/lineage').catch(() => null),
		api(vbase + '/observations' + qs({ limit: 1000 })).catch(() => ({ observations: [] })),
	]);
	const f = await ctx.featuresP;
	if (ctx.stale()) return;
	const meta = v.metadata || {};
	const archived = v.archived || v.state === 'archived';
	const acts = actions(model, detail.aliases || {}, ctx, null);

	add(view, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/ui/', 'Models'), ' / ', link(uiPath.model(model), model), ' / ', version),
		h('div', { class: 'page-head' }, h('h1', {}, `${model} ${version}`),
			badge(archived ? 'archived' : v.state, archived ? 'archived' : v.state),
			v.validation_status ? badge(v.validation_status, v.validation_status) : null,
			(v.aliases || []).map((a) => badge(a, 'alias'))),
		meta.description ? h('p', {}, meta.description) : null);

	const facts = [
		['created', fmtTime(v.created_at)], ['sealed', fmtTime(v.sealed_at)], ['size', fmtSize(v.total_size)],
		['digest', h('span', { class: 'mono' }, v.digest || '—')], ['owner', meta.owner || '—'],
		['tags', Object.entries(meta.tags || v.tags || {}).map(([k, x]) => badge(k + '=' + x, 'tag'))],
	];
	const btn = (id, text, fn) => h('button', { type: 'button', id, onclick: fn }, text);
	add(view, h('div', { class: 'split' },
		section('Summary', h('dl', { class: 'facts' }, facts.map(([k, x]) => [h('dt', {}, k), h('dd', {}, x)]))),
		section('Actions', h('div', { class: 'actions' },
			btn('act-promote', 'Promote…', () => acts.promote(version)),
			btn('act-canary', 'Canary…', () => acts.canary(version, 10)),
			f.has('POST', M + '/versions/{version}/archive') ? (archived
				? btn('act-unarchive', 'Unarchive…', () => acts.unarchive(version))
				: btn('act-archive', 'Archive…', () => acts.archive(version, v.state))) : null))));

	// Files.
	const files = v.files || [];
	add(view, section(`Files (${files.length})`, h('table', { class: 'grid', id: 'files-table' },
		h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'path'), h('th', { scope: 'col' }, 'size'), h('th', { scope: 'col' }, 'SHA-256'))),
		h('tbody', {}, files.map((x) => h('tr', {},
			h('td', {}, h('a', { href: vbase + '/files/' + x.path.split('/').map(enc).join('/'), download: x.path.split('/').pop() }, x.path)),
			h('td', { class: 'num' }, fmtSize(x.size)), h('td', { class: 'mono' }, x.sha256 || '—')))))));

	// Lineage.
	add(view, section('Lineage', await lineageView(model, version, lineage || {}, meta, ctx)));

	// Diff.
	add(view, section('Diff', diffView(model, version, meta)));

	// Git tags: the sync queue's items for this version.
	add(view, section('Git tags', await gitTags(model, version, f)));

	// Observations.
	add(view, section('Observations', observationsView(obs.observations || [])));

	add(view, section('Metadata record', h('pre', { class: 'json', id: 'metadata', tabindex: 0 }, JSON.stringify(meta, null, 2))));
}

async function lineageView(model, version, L, meta, ctx) {
	const commit = L.git_commit || meta.git_commit || null;
	const dataHash = L.training_data_hash || meta.training_data_hash || null;
	const td = L.training_data || meta.training_data || null;
	const [byCommit, byData] = await Promise.all([
		commit ? api('/v1/lineage' + qs({ git_commit: commit })).catch(() => ({ versions: [] })) : { versions: [] },
		dataHash ? api('/v1/lineage' + qs({ training_data_hash: dataHash })).catch(() => ({ versions: [] })) : { versions: [] },
	]);
	const others = (r) => (r.versions || []).filter((x) => !(x.model === model && x.version === version));
	const inputs = [
		['git commit', commit],
		['notebook', L.training_notebook || meta.training_notebook || null],
		['training data', td ? [td.start_date, td.end_date].filter(Boolean).join(' … ') + (td.rows ? ` (${td.rows} rows)` : '') : null],
		['data hash', dataHash],
		['parent', L.parent_version || meta.parent_version || null],
	].filter(([, x]) => x);

	// The graph: inputs on the left, the version on the right, one edge each.
	const rowH = 34, w = 620, boxW = 280;
	const height = Math.max(1, inputs.length) * rowH + 10;
	const svg = s('svg', { class: 'lineage', width: w, height, viewBox: `0 0 ${w} ${height}`, role: 'img', 'aria-label': 'lineage of ' + version });
	const vy = height / 2;
	inputs.forEach(([k, x], i) => {
		const y = 5 + i * rowH;
		svg.append(s('rect', { x: 2, y, width: boxW, height: rowH - 8, rx: 4, class: 'node' }));
		svg.append(s('text', { x: 10, y: y + 17, class: 'node-text' }, `${k}: ${String(x).length > 34 ? String(x).slice(0, 33) + '…' : x}`));
		svg.append(s('path', { d: `M ${boxW + 2} ${y + (rowH - 8) / 2} C ${boxW + 60} ${y + (rowH - 8) / 2}, ${w - 220} ${vy}, ${w - 180} ${vy}`, class: 'edge' }));
	});
	svg.append(s('rect', { x: w - 180, y: vy - 14, width: 176, height: 28, rx: 4, class: 'node node-self' }));
	svg.append(s('text', { x: w - 170, y: vy + 5, class: 'node-text' }, `${model} ${version}`));

	const list = (title, items, id) => h('div', { id }, h('h3', {}, title),
		items.length ? h('ul', { class: 'links' }, items.map((x) => h('li', {}, link(uiPath.version(x.model, x.version), `${x.model} ${x.version}`), x.git_tag ? h('span', { class: 'muted small' }, ' (tag ' + x.git_tag + ')') : null)))
			: h('p', { class: 'muted small' }, 'none'));
	const parent = L.parent_version || meta.parent_version;
	return h('div', {},
		inputs.length ? svg : h('p', { class: 'muted' }, 'This version records no lineage fields.'),
		parent ? h('p', {}, 'Parent: ', link(uiPath.version(model, parent), parent)) : null,
		h('div', { class: 'split' },
			list('Same git commit', others(byCommit), 'same-commit'),
			list('Same training data', others(byData), 'same-data')));
}

function diffView(model, version) {
	const input = h('input', { type: 'text', id: 'diff-other', placeholder: 'another version, e.g. v1', size: 14 });
	const go = h('button', { type: 'button', id: 'diff-go' }, 'Diff');
	const out = h('div', { id: 'diff-result', 'aria-live': 'polite' });
	const run = async () => {
		clear(out);
		const other = input.value.trim();
		if (!other) return;
		try {
			const d = await api('/v1/models/' + enc(model) + '/diff' + qs({ from: other, to: version }));
			out.append(d.changes.length ? h('table', { class: 'grid' },
				h('thead', {}, h('tr', {}, ['field', 'change', other, version].map((c) => h('th', { scope: 'col' }, c)))),
				h('tbody', {}, d.changes.map((c) => h('tr', { class: 'diff-' + c.op },
					h('td', { class: 'mono' }, c.path), h('td', {}, c.op),
					h('td', { class: 'mono' }, c.from === undefined ? '' : JSON.stringify(c.from)),
					h('td', { class: 'mono' }, c.to === undefined ? '' : JSON.stringify(c.to))))))
				: h('p', { class: 'muted' }, 'The two records are the same.'));
		} catch (e) {
			out.append(h('p', { class: 'error', role: 'alert' }, e.message));
		}
	};
	go.addEventListener('click', run);
	input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') run(); });
	return h('div', {}, h('div', { class: 'toolbar' }, h('label', { for: 'diff-other' }, 'Against'), input, go), out);
}

async function gitTags(model, version, f) {
	if (!f.has('GET', '/v1/git')) return h('p', { class: 'muted' }, 'Git-tag sync is not available.');
	let g;
	try {
		g = await api('/v1/git' + qs({ limit: 1000 }));
	} catch (e) {
		return h('p', { class: 'muted' }, e.message);
	}
	if (!g.configured) return h('p', { class: 'muted', id: 'git-tags' }, 'Git-tag sync is not configured on this daemon.');
	const items = (g.items || []).filter((x) => x.model === model && x.version === version);
	if (!items.length) return h('p', { class: 'muted', id: 'git-tags' }, 'No tag for this version.');
	return h('table', { class: 'grid', id: 'git-tags' },
		h('thead', {}, h('tr', {}, ['tag', 'kind', 'state', 'commit'].map((c) => h('th', { scope: 'col' }, c)))),
		h('tbody', {}, items.map((x) => h('tr', {}, h('td', { class: 'mono' }, x.tag || '(pending)'), h('td', {}, x.kind + (x.alias ? ' ' + x.alias : '')),
			h('td', {}, badge(x.state, x.state)), h('td', { class: 'mono' }, (x.commit || x.git_commit || '—').slice(0, 12))))));
}

function observationsView(obs) {
	if (!obs.length) return h('p', { class: 'muted', id: 'observations' }, 'No production observation recorded.');
	const byMetric = {};
	for (const o of obs) (byMetric[o.metric] = byMetric[o.metric] || []).push(o);
	return h('div', { id: 'observations' },
		h('div', { class: 'sparks' }, Object.entries(byMetric).map(([m, list]) => h('div', { class: 'spark-box' }, h('div', { class: 'small' }, m), sparkline(list.map((o) => o.value), m)))),
		h('table', { class: 'grid' },
			h('thead', {}, h('tr', {}, ['time', 'metric', 'value', 'by'].map((c) => h('th', { scope: 'col' }, c)))),
			h('tbody', {}, obs.slice(-200).reverse().map((o) => h('tr', {}, h('td', {}, fmtTime(o.ts)), h('td', {}, o.metric), h('td', { class: 'num' }, fmtNum(o.value)), h('td', {}, `${o.actor} via ${o.channel}`))))));
}
