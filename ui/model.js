// SPDX-License-Identifier: Apache-2.0
// A model's page: aliases and actions, the versions table (sortable,
// filterable, paged: 10,000 rows stay fast because filtering and sorting work
// on precomputed keys and only one page is in the DOM), the metric comparison
// of chosen versions with the policy's bounds, the alias timeline with
// refusals, and what served at a chosen time.
import { h, add, clear, link, uiPath, badge, fmtTime, fmtSize, fmtNum, section, metricsOf } from './dom.js';
import { api, enc, getAll, qs, M } from './api.js';
import { compareChart } from './chart.js';
import { confirmAction, act, askToken } from './actions.js';
import { navigate } from './app.js';

const PAGE = 50;
const PREFERRED = ['accuracy', 'precision', 'recall', 'f1_score', 'latency_ms', 'inference_latency_ms'];
const CHANNEL = { fs: 'mount', api: 'API', git: 'git', cli: 'CLI', import: 'import', internal: 'daemon' };

/** Version details, fetched once per page view (metrics, git commit, tags when lists lack them). */
function detailCache(model) {
	const cache = new Map();
	return (v) => {
		if (!cache.has(v)) cache.set(v, api('/v1/models/' + enc(model) + '/versions/' + enc(v)).catch(() => null));
		return cache.get(v);
	};
}

function aliasText(a) {
	if (!a) return '—';
	return a.alias === 'canary' && a.percent !== null && a.percent !== undefined ? `${a.version} (${a.percent}%)` : a.version;
}

/** Reason and version inputs for the dialogs. */
function reasonField(id) {
	return { id, label: 'Reason (recorded in the history)', input: h('input', { type: 'text', id, maxlength: 500 }) };
}

/** The action dialogs, shared with the version page. */
export function actions(model, aliases, ctx, prevCurrent) {
	const cur = aliases.current, can = aliases.canary;
	const done = () => ctx.rerender();
	return {
		promote: (v) => {
			const r = reasonField('promote-reason');
			return confirmAction({ title: `Promote ${v} of ${model}`, changes: [['current', aliasText(cur), v]], fields: [r],
				perform: () => act.promote(model, v, r.input.value.trim()), onDone: done });
		},
		canary: (v, pct) => {
			const r = reasonField('canary-reason');
			const p = h('input', { type: 'number', id: 'canary-percent-confirm', min: 0, max: 100, value: pct ?? 10 });
			return confirmAction({ title: `Canary ${v} of ${model}`, changes: [['canary', aliasText(can), `${v} (${pct ?? 10}%)`]],
				fields: [{ id: 'canary-percent-confirm', label: 'Traffic percent', input: p }, r],
				perform: () => act.canary(model, v, Number(p.value), r.input.value.trim()), onDone: done });
		},
		canaryPromote: () => confirmAction({ title: `Promote the canary of ${model}`,
			changes: [['current', aliasText(cur), can ? can.version : '—'], ['canary', aliasText(can), '—']],
			perform: () => act.canaryPromote(model), onDone: done }),
		canaryAbort: () => confirmAction({ title: `Abort the canary of ${model}`, changes: [['canary', aliasText(can), '—']],
			perform: () => act.canaryAbort(model), onDone: done }),
		rollback: () => {
			const r = reasonField('rollback-reason');
			return confirmAction({ title: `Roll back ${model}`, changes: [['current', aliasText(cur), prevCurrent ? prevCurrent() || 'its previous version' : 'its previous version']],
				fields: [r], perform: () => act.rollback(model, r.input.value.trim()), onDone: done });
		},
		archive: (v, state) => {
			const r = reasonField('archive-reason');
			return confirmAction({ title: `Archive ${v} of ${model}`, changes: [[`${v}`, state || 'sealed', 'archived (hidden from lists)']],
				fields: [r], perform: () => act.archive(model, v, r.input.value.trim()), onDone: done });
		},
		unarchive: (v) => confirmAction({ title: `Unarchive ${v} of ${model}`, changes: [[`${v}`, 'archived', 'listed again']],
			perform: () => act.unarchive(model, v), onDone: done }),
	};
}

export async function renderModel(view, model, ctx) {
	const detailP = api('/v1/models/' + enc(model));
	const policyP = api('/v1/models/' + enc(model) + '/policy').catch(() => ({}));
	const f = await ctx.featuresP;
	const listParams = f.param('GET', M + '/versions', 'archived') ? { archived: 'include' } : {};
	// The first page draws the table; the rest arrive behind it (filtering and
	// sorting cover what has arrived, and say so until all has).
	const listPath = '/v1/models/' + enc(model) + '/versions';
	const [detail, policy, first] = await Promise.all([detailP, policyP,
		api(listPath + qs({ ...listParams, limit: 1000 }))]);
	const versions = first.versions.slice();
	const known = new Map(versions.map((v) => [v.name, v]));
	if (ctx.stale()) return;
	const aliases = detail.aliases || {};
	const details = detailCache(model);
	const timeline = { events: null };
	const prevCurrent = () => {
		if (!timeline.events || !aliases.current) return null;
		const e = timeline.events.find((x) => x.kind === 'alias.set' && x.alias === 'current' && x.after === aliases.current.version);
		return e && e.before;
	};
	const acts = actions(model, aliases, ctx, prevCurrent);
	const canArchive = f.has('POST', M + '/versions/{version}/archive');

	// ---- header, aliases, actions ----
	const tags = detail.tags || {};
	add(view, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/ui/', 'Models'), ' / ', model),
		h('div', { class: 'page-head' }, h('h1', {}, model),
			detail.owner ? h('span', { class: 'muted' }, 'owner ' + detail.owner) : null,
			Object.entries(tags).map(([k, v]) => badge(k + '=' + v, 'tag'))),
		detail.description ? h('p', {}, detail.description) : null);

	const aliasList = h('dl', { class: 'aliases', id: 'aliases' });
	for (const a of Object.values(aliases).sort((x, y) => x.alias.localeCompare(y.alias)))
		aliasList.append(h('dt', {}, a.alias), h('dd', {}, link(uiPath.version(model, a.version), a.version),
			a.percent !== null && a.percent !== undefined ? [' ', badge(a.percent + '%', 'canary')] : null,
			h('span', { class: 'muted small' }, ' since ' + fmtTime(a.updated_at))));
	if (!Object.keys(aliases).length) aliasList.append(h('dt', {}, 'aliases'), h('dd', { class: 'muted' }, 'none yet'));

	const newest = (detail.versions && detail.versions.latest) || (versions.length ? versions[versions.length - 1].name : '');
	const vInput = h('input', { type: 'text', id: 'action-version', list: 'version-names', value: newest, size: 12, 'aria-label': 'Version for the action' });
	const pInput = h('input', { type: 'number', id: 'action-percent', min: 0, max: 100, value: 10, size: 4, 'aria-label': 'Canary traffic percent' });
	const names = h('datalist', { id: 'version-names' }, versions.slice(-200).reverse().map((v) => h('option', { value: v.name })));
	const btn = (id, text, fn, disabled) => h('button', { type: 'button', id, onclick: fn, disabled }, text);
	const ver = () => vInput.value.trim();
	add(view, h('div', { class: 'split' },
		section('Serving', aliasList),
		section('Actions',
			h('div', { class: 'actions' },
				h('label', { for: 'action-version' }, 'Version'), vInput, names,
				h('label', { for: 'action-percent' }, 'Canary %'), pInput),
			h('div', { class: 'actions' },
				btn('act-promote', 'Promote…', () => acts.promote(ver())),
				btn('act-canary', 'Canary…', () => acts.canary(ver(), Number(pInput.value))),
				btn('act-canary-promote', 'Canary → current…', () => acts.canaryPromote(), !aliases.canary),
				btn('act-canary-abort', 'Abort canary…', () => acts.canaryAbort(), !aliases.canary),
				btn('act-rollback', 'Roll back…', () => acts.rollback(), !aliases.current),
				canArchive ? btn('act-archive', 'Archive…', () => acts.archive(ver(), (versions.find((v) => v.name === ver()) || {}).state)) : null),
			h('p', { class: 'muted small' }, 'Each action asks for confirmation and shows what will change. ', h('button', { type: 'button', class: 'linkish', onclick: () => askToken() }, 'Token…')))));

	// ---- versions table ----
	const chosen = new Set([aliases.current && aliases.current.version, aliases.canary && aliases.canary.version, newest].filter(Boolean));
	const compareSection = section('Compare versions');
	const table = versionsTable(model, versions, aliases, details, chosen, () => drawCompare());
	const total = (detail.versions && detail.versions.count) || versions.length;
	add(view, section(`Versions (${total})`, table.el));
	(async () => {
		let cursor = first.next_cursor;
		while (cursor && !ctx.stale()) {
			const page = await api(listPath + qs({ ...listParams, limit: 1000, cursor }));
			for (const v of page.versions) { versions.push(v); known.set(v.name, v); }
			cursor = page.next_cursor;
			table.add(page.versions, !cursor);
		}
		if (!first.next_cursor) table.add([], true);
		names.replaceChildren(...versions.slice(-200).reverse().map((v) => h('option', { value: v.name })));
		performance.mark('modelfs:versions');
	})().catch((e) => table.el.append(h('p', { class: 'error', role: 'alert' }, 'Versions: ' + e.message)));

	// ---- comparison ----
	const bounds = {};
	for (const [path, b] of Object.entries(policy.metrics || {}))
		bounds[path.replace(/^performance_metrics\./, '')] = b;
	const compareBody = h('div', { class: 'compare-wrap', id: 'compare' });
	compareSection.append(h('p', { class: 'muted small' }, 'Tick versions in the table to compare them. Dashed lines: the policy\'s bounds.'), compareBody);
	add(view, compareSection);
	let compareSeq = 0;
	async function drawCompare() {
		const seq = ++compareSeq;
		const list = [...chosen].map((n) => known.get(n) || { name: n, seq: Infinity })
			.sort((a, b) => a.seq - b.seq).slice(-8);
		const rows = await Promise.all(list.map(async (v) => {
			if (v.metrics) return { name: v.name, metrics: v.metrics };
			const d = await details(v.name);
			return { name: v.name, metrics: metricsOf(d && d.metadata) };
		}));
		if (seq !== compareSeq) return;
		const names = new Set();
		rows.forEach((r) => Object.keys(r.metrics).forEach((k) => names.add(k)));
		Object.keys(bounds).forEach((k) => rows.some((r) => k in r.metrics) && names.add(k));
		const ordered = [...names].sort((a, b) => (PREFERRED.indexOf(a) + 1 || 99) - (PREFERRED.indexOf(b) + 1 || 99) || a.localeCompare(b)).slice(0, 6);
		clear(compareBody);
		if (!rows.length) compareBody.append(h('p', { class: 'muted' }, 'No version chosen.'));
		else if (!ordered.length) compareBody.append(h('p', { class: 'muted' }, 'The chosen versions record no performance_metrics.'));
		else compareBody.append(compareChart(ordered, rows, bounds));
		compareBody.dataset.versions = rows.map((r) => r.name).join(',');
	}
	drawCompare();

	// ---- timeline and as-of ----
	const tl = h('div', { id: 'timeline', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading the alias history…'));
	add(view, section('Alias timeline', tl));
	add(view, section('What was serving at…', asOf(model)));
	loadTimeline(model, f, tl, timeline, ctx);
}

function versionsTable(model, versions, aliases, details, chosen, onChoose) {
	const byVersion = {};
	for (const a of Object.values(aliases)) (byVersion[a.version] = byVersion[a.version] || []).push(a.alias);
	const hasMetrics = versions.some((v) => v.metrics);
	const freq = {};
	for (const v of versions) for (const k of Object.keys(v.metrics || {})) freq[k] = (freq[k] || 0) + 1;
	let metricCols = Object.keys(freq).sort((a, b) => (PREFERRED.indexOf(a) + 1 || 99) - (PREFERRED.indexOf(b) + 1 || 99) || freq[b] - freq[a]).slice(0, 4);
	if (!hasMetrics) metricCols = ['accuracy'];
	// Precomputed per row: what filtering and sorting read.
	const rowOf = (v) => {
		const al = (v.aliases || byVersion[v.name] || []).slice();
		const tags = Object.entries(v.tags || {}).map(([k, x]) => k + '=' + x);
		const r = { v, aliases: al, tags, metrics: v.metrics || null, git: v.git_commit || null };
		r.hay = [v.name, v.state, v.archived ? 'archived' : '', v.validation_status || '', r.git || '', v.owner || '', v.description || '', ...al, ...tags].join(' ').toLowerCase();
		return r;
	};
	const rows = versions.map(rowOf);
	let complete = false, drawnKey = '';
	const cols = [
		{ key: 'pick', label: 'compare', sort: null },
		{ key: 'name', label: 'version', sort: (r) => r.v.seq },
		{ key: 'state', label: 'state', sort: (r) => r.v.archived ? 'archived' : r.v.state },
		{ key: 'validation', label: 'validation', sort: (r) => r.v.validation_status || '' },
		...metricCols.map((m) => ({ key: 'm:' + m, label: m, metric: m, sort: (r) => (r.metrics && typeof r.metrics[m] === 'number' ? r.metrics[m] : -Infinity) })),
		{ key: 'size', label: 'size', sort: (r) => r.v.total_size ?? -1 },
		{ key: 'created', label: 'created', sort: (r) => r.v.created_at },
		{ key: 'git', label: 'git commit', sort: (r) => r.git || '' },
		{ key: 'aliases', label: 'aliases', sort: (r) => r.aliases.join(',') },
		{ key: 'tags', label: 'tags', sort: (r) => r.tags.join(',') },
	];
	let sortKey = 'name', sortDir = -1, page = 0, shown = rows.slice();
	const filter = h('input', { type: 'search', id: 'version-filter', placeholder: 'name, state, validation, commit, alias, tag…', 'aria-label': 'Filter versions', 'data-autofocus': '' });
	const status = h('span', { class: 'muted', id: 'version-count', 'aria-live': 'polite' });
	const tbody = h('tbody', { id: 'versions-body' });
	const headRow = h('tr', {});
	const prev = h('button', { type: 'button', id: 'page-prev', class: 'secondary' }, '‹ Newer');
	const next = h('button', { type: 'button', id: 'page-next', class: 'secondary' }, 'Older ›');
	const pageInfo = h('span', { id: 'page-info', class: 'muted' });

	for (const c of cols) {
		const cls = 'c-' + (c.metric ? 'metric' : c.key);
		if (!c.sort) { headRow.append(h('th', { scope: 'col', class: cls }, c.label)); continue; }
		const b = h('button', { type: 'button', class: 'sort', dataset: { key: c.key } }, c.label);
		b.addEventListener('click', () => {
			if (sortKey === c.key) sortDir = -sortDir;
			else { sortKey = c.key; sortDir = c.key === 'name' || c.key === 'created' ? -1 : 1; }
			apply();
		});
		c.th = h('th', { scope: 'col', 'aria-sort': 'none', class: cls }, b);
		headRow.append(c.th);
	}

	/** keep: more rows arrived; the page stays, and is not redrawn when its rows are the same. */
	function apply(keep) {
		const terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
		shown = terms.length ? rows.filter((r) => terms.every((t) => r.hay.includes(t))) : rows.slice();
		const c = cols.find((x) => x.key === sortKey);
		const key = c.sort;
		shown.sort((a, b) => {
			const x = key(a), y = key(b);
			return (x < y ? -1 : x > y ? 1 : a.v.seq - b.v.seq) * sortDir;
		});
		for (const k of cols) if (k.th) k.th.setAttribute('aria-sort', k.key === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
		if (!keep) page = 0;
		draw(keep);
	}

	function cell(r, c) {
		const v = r.v;
		switch (c.key) {
		case 'pick': {
			const cb = h('input', { type: 'checkbox', 'aria-label': 'compare ' + v.name, checked: chosen.has(v.name), tabindex: -1 });
			cb.addEventListener('change', () => { cb.checked ? chosen.add(v.name) : chosen.delete(v.name); onChoose(); });
			return h('td', {}, cb);
		}
		case 'name': return h('th', { scope: 'row' }, link(uiPath.version(model, v.name), v.name));
		case 'state': return h('td', {}, badge(v.archived ? 'archived' : v.state, v.archived ? 'archived' : v.state));
		case 'validation': return h('td', {}, v.validation_status ? badge(v.validation_status, v.validation_status) : h('span', { class: 'muted' }, '—'));
		case 'size': return h('td', { class: 'num' }, fmtSize(v.total_size));
		case 'created': return h('td', { class: 'nowrap' }, fmtTime(v.created_at));
		case 'git': return h('td', { class: 'mono', dataset: { col: 'git' } }, r.git ? r.git.slice(0, 10) : '—');
		case 'aliases': return h('td', {}, r.aliases.map((a) => badge(a, 'alias')));
		case 'tags': return h('td', { dataset: { col: 'tags' } }, r.tags.map((t) => badge(t, 'tag')));
		default: return h('td', { class: 'num', dataset: { metric: c.metric } }, r.metrics ? fmtNum(r.metrics[c.metric]) : '…');
		}
	}

	function rowEl(r, i) {
		const tr = h('tr', { tabindex: i === 0 ? 0 : -1, dataset: { version: r.v.name }, 'aria-selected': chosen.has(r.v.name) ? 'true' : 'false' }, cols.map((c) => cell(r, c)));
		return tr;
	}

	/** Without metrics in the list (older daemons), the page's rows ask their version once. */
	async function fillPage(pageRows) {
		for (const r of pageRows) {
			if (r.metrics && r.git !== null) continue;
			const d = await details(r.v.name);
			if (!d) continue;
			r.metrics = r.metrics || metricsOf(d.metadata);
			if (r.git === null && d.metadata && d.metadata.git_commit) r.git = d.metadata.git_commit;
			if (!r.tags.length && d.metadata && d.metadata.tags) r.tags = Object.entries(d.metadata.tags).map(([k, x]) => k + '=' + x);
			r.hay = [r.hay, r.git || '', ...r.tags].join(' ').toLowerCase();
			// In place, cell by cell: the row may have the keyboard focus.
			const tr = tbody.querySelector(`tr[data-version="${CSS.escape(r.v.name)}"]`);
			if (!tr) continue;
			for (const td of tr.querySelectorAll('td[data-metric]')) td.textContent = fmtNum(r.metrics[td.dataset.metric]);
			const git = tr.querySelector('td[data-col="git"]');
			if (git) git.textContent = r.git ? r.git.slice(0, 10) : '—';
			const tg = tr.querySelector('td[data-col="tags"]');
			if (tg) tg.replaceChildren(...r.tags.map((t) => badge(t, 'tag')));
		}
	}

	function draw(keep) {
		const pages = Math.max(1, Math.ceil(shown.length / PAGE));
		if (page >= pages) page = pages - 1;
		const slice = shown.slice(page * PAGE, page * PAGE + PAGE);
		const key = slice.map((r) => r.v.name).join('\n');
		status.textContent = `${shown.length} of ${rows.length} versions` + (complete ? '' : ' (more loading…)');
		pageInfo.textContent = `page ${page + 1} of ${pages}`;
		prev.disabled = page === 0;
		next.disabled = page >= pages - 1;
		if (keep && key === drawnKey) return; // the rows in view (and the focus) stay
		drawnKey = key;
		tbody.replaceChildren(...slice.map(rowEl));
		if (!slice.length) tbody.append(h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, 'No version matches.')));
		tbody.dataset.page = String(page);
		if (slice.some((r) => !r.metrics || (r.git === null && !hasMetrics))) fillPage(slice);
	}

	prev.addEventListener('click', () => { page--; draw(); });
	next.addEventListener('click', () => { page++; draw(); });
	filter.addEventListener('input', () => apply());

	// Keyboard: one tab stop in the body; arrows move, Enter opens, Space ticks for comparison.
	tbody.addEventListener('keydown', (ev) => {
		const tr = ev.target.closest('tr');
		if (!tr || ev.target !== tr) return;
		const move = (to) => {
			if (!to) return;
			tr.tabIndex = -1;
			to.tabIndex = 0;
			to.focus();
		};
		if (ev.key === 'ArrowDown') { ev.preventDefault(); move(tr.nextElementSibling); }
		else if (ev.key === 'ArrowUp') { ev.preventDefault(); move(tr.previousElementSibling); }
		else if (ev.key === 'Home') { ev.preventDefault(); move(tbody.firstElementChild); }
		else if (ev.key === 'End') { ev.preventDefault(); move(tbody.lastElementChild); }
		else if (ev.key === 'PageDown' && !next.disabled) { ev.preventDefault(); page++; draw(); tbody.firstElementChild.focus(); }
		else if (ev.key === 'PageUp' && !prev.disabled) { ev.preventDefault(); page--; draw(); tbody.firstElementChild.focus(); }
		else if (ev.key === 'Enter') { ev.preventDefault(); navigate(uiPath.version(model, tr.dataset.version)); }
		else if (ev.key === ' ') {
			ev.preventDefault();
			const cb = tr.querySelector('input[type=checkbox]');
			cb.checked = !cb.checked;
			cb.dispatchEvent(new Event('change'));
			tr.setAttribute('aria-selected', String(cb.checked));
		}
	});
	tbody.addEventListener('focusin', (ev) => {
		const tr = ev.target.closest('tr');
		if (tr && ev.target === tr) for (const t of tbody.querySelectorAll('tr[tabindex="0"]')) if (t !== tr) t.tabIndex = -1;
	});

	apply();
	const el = h('div', { id: 'versions' },
		h('div', { class: 'toolbar' }, h('label', { for: 'version-filter' }, 'Filter'), filter, status),
		h('p', { class: 'muted small' }, 'Keyboard: Tab into the table, ↑/↓ move, Enter opens a version, Space ticks it for comparison, PgUp/PgDn turn pages.'),
		h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'versions-table' }, h('thead', {}, headRow), tbody)),
		h('div', { class: 'pager' }, prev, pageInfo, next));
	return {
		el,
		add(list, done) {
			for (const v of list) rows.push(rowOf(v));
			complete = complete || done;
			if (complete) el.dataset.complete = 'true';
			apply(true);
		},
	};
}

async function loadTimeline(model, f, el, out, ctx) {
	const path = '/v1/models/' + enc(model) + '/history';
	let events;
	try {
		if (f.param('GET', M + '/history', 'order')) {
			const [a, r] = await Promise.all([
				api(path + qs({ kind: 'alias.', order: 'desc', limit: 500 })),
				f.has('GET', '/v1/refusals') ? api(path + qs({ kind: 'refused', order: 'desc', limit: 500 })) : { events: [] },
			]);
			events = a.events.concat(r.events);
		} else {
			// Oldest first only: every page is read, then the newest shown first.
			const [a, r] = await Promise.all([getAll(path, 'events', { kind: 'alias.' }),
				f.has('GET', '/v1/refusals') ? getAll(path, 'events', { kind: 'refused' }) : []]);
			events = a.concat(r);
		}
	} catch (e) {
		clear(el).append(h('p', { class: 'error', role: 'alert' }, 'History: ' + e.message));
		return;
	}
	if (ctx.stale()) return;
	const seen = new Set();
	events = events.filter((e) => !seen.has(e.id) && seen.add(e.id)).sort((x, y) => y.id - x.id);
	out.events = events;
	const shown = events.slice(0, 500);
	const list = h('ol', { class: 'timeline' }, shown.map((e) => timelineItem(model, e)));
	clear(el).append(events.length ? list : h('p', { class: 'muted' }, 'No alias has been set yet.'));
	if (events.length > shown.length) el.append(h('p', { class: 'muted small' }, `${events.length - shown.length} older changes not shown.`));
	el.setAttribute('aria-busy', 'false');
	el.dataset.loaded = 'true';
	performance.mark('modelfs:timeline');
}

function timelineItem(model, e) {
	const d = e.detail || {};
	const isRefusal = e.kind === 'alias.refused' || e.kind === 'refused';
	const gates = d.failed_gates || d.gates || [];
	const ver = (v) => (v ? link(uiPath.version(model, v), v) : h('span', { class: 'muted' }, 'none'));
	const what = e.kind === 'alias.delete' ? 'removed' : isRefusal ? 'refused' : 'set';
	return h('li', { class: ['event', isRefusal && 'refused'], dataset: { kind: e.kind, id: e.id } },
		h('div', { class: 'when' }, fmtTime(e.ts)),
		h('div', { class: 'what' },
			h('strong', {}, e.alias || d.alias || d.op || e.kind), ' ',
			isRefusal ? badge('refused', 'refused') : badge(what, what),
			' ', ver(e.before), ' → ', isRefusal ? ver(e.after || e.version) : ver(e.after),
			d.percent !== undefined && d.percent !== null ? [' ', badge(d.percent + '%', 'canary')] : null,
			h('span', { class: 'muted' }, ` by ${e.actor} via ${CHANNEL[e.channel] || e.channel}`),
			d.force ? [' ', badge('forced', 'refused')] : null,
			d.reason ? h('div', { class: 'reason' }, 'reason: ', d.reason) : null,
			isRefusal && d.message ? h('div', { class: 'small' }, d.message) : null,
			gates.length ? h('ul', { class: 'gates' }, gates.map((g) => h('li', {}, g))) : null));
}

function asOf(model) {
	const input = h('input', { type: 'datetime-local', id: 'asof-time', step: 1 });
	const d = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
	input.value = d.toISOString().slice(0, 19);
	const out = h('div', { id: 'asof-result', 'aria-live': 'polite' });
	const go = h('button', { type: 'button', id: 'asof-go' }, 'Show');
	const run = async () => {
		clear(out);
		const t = new Date(input.value);
		if (Number.isNaN(t.getTime())) { out.append(h('p', { class: 'error' }, 'Pick a time.')); return; }
		try {
			const r = await api('/v1/models/' + enc(model) + '/aliases' + qs({ at: t.toISOString() }));
			const list = r.aliases || [];
			out.append(list.length ? h('dl', { class: 'aliases' }, list.map((a) => [h('dt', {}, a.alias), h('dd', {}, link(uiPath.version(model, a.version), a.version), a.percent !== null && a.percent !== undefined ? [' ', badge(a.percent + '%', 'canary')] : null)]))
				: h('p', { class: 'muted' }, 'Nothing was serving at ' + t.toISOString() + '.'));
			out.dataset.at = t.toISOString();
		} catch (e) {
			out.append(h('p', { class: 'error', role: 'alert' }, e.message));
		}
	};
	go.addEventListener('click', run);
	input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') run(); });
	return h('div', {}, h('div', { class: 'toolbar' }, h('label', { for: 'asof-time' }, 'Time (local)'), input, go), out);
}
