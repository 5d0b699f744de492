// SPDX-License-Identifier: Apache-2.0
// The models overview: what serves, the newest version, production accuracy
// as observed, and the last change; filtered by name, tag or owner.
import { h, add, link, uiPath, badge, fmtTime } from './dom.js';
import { api, enc, getAll, qs } from './api.js';
import { sparkline } from './chart.js';

/**
 * One model's row data. The list items carry aliases, latest and last_event
 * when the daemon has them (the search work); otherwise the model's own page
 * and its newest version are asked.
 */
async function modelRow(item) {
	const row = { name: item.name, description: item.description || null, owner: item.owner || null, tags: item.tags || {} };
	if (Array.isArray(item.aliases) && item.latest !== undefined) {
		row.aliases = item.aliases;
		row.latest = item.latest;
		row.lastEvent = item.last_event || null;
	} else {
		const d = await api('/v1/models/' + enc(item.name));
		row.aliases = Object.values(d.aliases || {}).map((a) => ({ alias: a.alias, version: a.version, percent: a.percent, updated_at: a.updated_at }));
		row.latest = d.versions && d.versions.latest ? await api('/v1/models/' + enc(item.name) + '/versions/' + enc(d.versions.latest)) : null;
		const newest = row.aliases.slice().sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)))[0];
		row.lastEvent = newest ? { ts: newest.updated_at, kind: 'alias.set', alias: newest.alias, actor: null } : null;
		if (!row.owner && row.latest && row.latest.metadata) row.owner = row.latest.metadata.owner || null;
	}
	const cur = row.aliases.find((a) => a.alias === 'current');
	row.observations = [];
	if (cur) {
		try {
			const o = await api('/v1/models/' + enc(item.name) + '/versions/' + enc(cur.version) + '/observations' + qs({ metric: 'accuracy' }));
			row.observations = (o.observations || []).map((x) => x.value);
		} catch { row.observations = []; }
	}
	return row;
}

function tagText(tags) {
	return Object.entries(tags || {}).map(([k, v]) => k + '=' + v);
}

export async function renderOverview(view, ctx) {
	const items = await getAll('/v1/models', 'models');
	const rows = [];
	// A few at a time: the daemon answers each quickly, the browser caps connections anyway.
	for (let i = 0; i < items.length; i += 6)
		rows.push(...await Promise.all(items.slice(i, i + 6).map(modelRow)));
	if (ctx.stale()) return;

	const filter = h('input', { type: 'search', id: 'model-filter', placeholder: 'name, tag (team=sre) or owner', 'aria-label': 'Filter models', 'data-autofocus': '' });
	const tbody = h('tbody', {});
	const count = h('span', { class: 'muted', 'aria-live': 'polite' });
	const hay = rows.map((r) => [r.name, r.owner || '', r.description || '', ...tagText(r.tags)].join(' ').toLowerCase());
	const draw = () => {
		const terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
		tbody.replaceChildren(...rows.filter((r, i) => terms.every((t) => hay[i].includes(t))).map(rowEl));
		count.textContent = `${tbody.children.length} of ${rows.length} models`;
	};
	filter.addEventListener('input', draw);
	add(view, 
		h('div', { class: 'page-head' }, h('h1', {}, 'Models'), count),
		h('div', { class: 'toolbar' }, h('label', { for: 'model-filter' }, 'Filter'), filter),
		h('table', { class: 'grid', id: 'models-table' },
			h('thead', {}, h('tr', {}, ['model', 'current', 'canary', 'newest version', 'validation', 'production accuracy', 'last change', 'owner / tags'].map((c) => h('th', { scope: 'col' }, c)))),
			tbody));
	if (!rows.length) add(view, h('p', { class: 'muted' }, 'No models yet. Create one with POST /v1/models or mkdir in the mount.'));
	draw();
}

function rowEl(r) {
	const alias = (n) => r.aliases.find((a) => a.alias === n);
	const cur = alias('current'), can = alias('canary');
	const latest = r.latest;
	const ev = r.lastEvent;
	return h('tr', { dataset: { model: r.name } },
		h('th', { scope: 'row' }, link(uiPath.model(r.name), r.name), r.description ? h('div', { class: 'muted small' }, r.description) : null),
		h('td', {}, cur ? link(uiPath.version(r.name, cur.version), cur.version) : h('span', { class: 'muted' }, '—')),
		h('td', {}, can ? [link(uiPath.version(r.name, can.version), can.version), ' ', badge((can.percent ?? 0) + '%', 'canary')] : h('span', { class: 'muted' }, '—')),
		h('td', {}, latest ? link(uiPath.version(r.name, latest.name), latest.name) : '—'),
		h('td', {}, latest ? badge(latest.validation_status || 'none', latest.validation_status) : '—'),
		h('td', { class: 'spark-cell' }, sparkline(r.observations, 'accuracy of ' + r.name + ' current'), r.observations.length ? h('span', { class: 'small' }, ' ' + r.observations[r.observations.length - 1]) : null),
		h('td', {}, ev ? [h('div', {}, fmtTime(ev.ts)), h('div', { class: 'muted small' }, [ev.kind, ev.alias, ev.actor && 'by ' + ev.actor, ev.channel && 'via ' + ev.channel].filter(Boolean).join(' '))] : '—'),
		h('td', {}, r.owner ? h('div', {}, r.owner) : null, tagText(r.tags).map((t) => badge(t, 'tag'))));
}
