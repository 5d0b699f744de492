// SPDX-License-Identifier: Apache-2.0
// End-to-end test of the web UI in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core; nothing downloads a browser). It runs against a
// daemon and store that tests/integration/test_ui.py starts and fills, and
// prints one line per step: "ok" or "FAIL" (a step whose route this daemon's
// /openapi.json lacks fails too: every route the UI uses is built). Exit status
// 1 when a step failed.
//
//   node e2e.mjs --url URL --token ADMIN_SECRET --out DIR --t0 ISO --t1 ISO
//   node e2e.mjs --mode auth --url URL --token READER_SECRET --out DIR   (a daemon with --auth-reads)
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({ options: {
	url: { type: 'string' }, token: { type: 'string' }, out: { type: 'string' },
	t0: { type: 'string' }, t1: { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
	mode: { type: 'string', default: 'full' },
} });
mkdirSync(opt.out, { recursive: true });
const MODEL = 'anomaly-detector';
const results = [];
let failed = 0;

async function step(name, fn) {
	try {
		await fn();
		results.push(['ok', name]);
		console.log('ok   ' + name);
	} catch (e) {
		failed++;
		results.push(['FAIL', name]);
		console.log('FAIL ' + name + '\n     ' + String(e && e.stack || e).split('\n').slice(0, 4).join('\n     '));
		await page.screenshot({ path: `${opt.out}/fail-${name.replace(/\W+/g, '-')}.png`, fullPage: true }).catch(() => {});
	}
}

/* A step the daemon cannot serve: the UI relies on every route it calls. */
function skip(name, why) {
	failed++;
	results.push(['FAIL', name]);
	console.log(`FAIL ${name}: ${why}`);
}

function assert(cond, msg) {
	if (!cond) throw new Error('assertion failed: ' + msg);
}

const doc = await (await fetch(opt.url + '/openapi.json')).json();
const has = (method, path) => !!(doc.paths[path] && doc.paths[path][method]);

const browser = await chromium.launch({ executablePath: opt.chromium, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1366, height: 860 }, timezoneId: 'UTC', locale: 'en-US' });
const page = await context.newPage();
page.setDefaultTimeout(10000);

// Console errors and uncaught exceptions fail the run, except the network
// line Chromium logs for an answer we expect to be an error (a refusal).
const consoleErrors = [];
let expectedStatus = null;
page.on('console', (m) => {
	if (m.type() !== 'error') return;
	const t = m.text();
	if (expectedStatus && t.includes(`status of ${expectedStatus}`)) return;
	consoleErrors.push(t);
});
page.on('pageerror', (e) => consoleErrors.push('uncaught: ' + e.message));

async function ready() {
	await page.waitForFunction(() => document.body.dataset.ready && !document.querySelector('main .loading'));
}

async function goto(path) {
	await page.goto(opt.url + path);
	await ready();
}

async function timelineLoaded() {
	await page.waitForSelector('#timeline[data-loaded="true"]');
}

async function shot(name, viewportOnly) {
	await page.screenshot({ path: `${opt.out}/${name}.png`, fullPage: !viewportOnly });
}

/** Opens the confirmation for button `id` on a model page and confirms; returns the dialog's text. */
async function confirmVia(id, fill = {}) {
	await page.click('#' + id);
	await page.waitForSelector('#confirm-dialog[open]');
	for (const [sel, v] of Object.entries(fill)) await page.fill(sel, v);
	const text = await page.textContent('#confirm-dialog');
	await page.click('#confirm-button');
	await page.waitForSelector('#confirm-dialog .ok, #confirm-dialog .error');
	return text;
}

async function closeDialogAndWait() {
	const before = await page.evaluate(() => document.body.dataset.ready);
	await page.click('#cancel-button');
	await page.waitForFunction((b) => document.body.dataset.ready !== b && !document.querySelector('main .loading'), before);
}

async function aliasesShown() {
	return page.$$eval('#aliases dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
}

if (opt.mode === 'auth') {
	await step('auth-reads: the page asks for a token, then reads with it', async () => {
		expectedStatus = 401;
		await goto('/ui/');
		const err = await page.textContent('main .error[data-auth]');
		assert(err.includes('401'), 'a 401 shown: ' + err);
		expectedStatus = null;
		await page.click('#token-button');
		await page.fill('#token-input', opt.token);
		await page.click('#token-save');
		await page.waitForSelector('#models-table');
		assert(await page.locator(`#models-table tr[data-model="${MODEL}"]`).count() === 1, 'models listed');
		await page.reload();
		await ready();
		assert(await page.locator('#models-table').count() === 1, 'the token lasts the session');
	});
	await step('no console errors', async () => {
		assert(consoleErrors.length === 0, 'console errors:\n' + consoleErrors.join('\n'));
	});
	await browser.close();
	process.exit(failed ? 1 : 0);
}

await step('redirect: / leads to the overview', async () => {
	await page.goto(opt.url + '/');
	assert(new URL(page.url()).pathname === '/ui/', 'at ' + page.url());
	await ready();
});

await step('overview: models, aliases, newest version, sparkline, last change', async () => {
	await goto('/ui/');
	const row = page.locator(`#models-table tr[data-model="${MODEL}"]`);
	const cells = await row.locator('td').allTextContents();
	assert(cells[0] === 'v2', 'current v2: ' + cells);
	assert(cells[2].startsWith('v5'), 'newest v5: ' + cells);
	assert(await row.locator('svg.spark polyline').count() === 1, 'a sparkline of observations');
	assert(/\d{4}-\d\d-\d\d \d\d:\d\d/.test(cells[5]), 'last change: ' + cells[5]);
	assert(await page.locator('#models-table tbody tr').count() === 2, 'two models');
	await shot('overview');
});

await step('overview: filter by name', async () => {
	await page.fill('#model-filter', 'lstm');
	assert(await page.locator('#models-table tbody tr').count() === 1, 'one row for lstm');
	await page.fill('#model-filter', '');
});

if (has('get', '/v1/search')) {
	await step('overview: filter by tag and owner', async () => {
		await goto('/ui/');
		await page.fill('#model-filter', 'team=sre');
		const names = await page.$$eval('#models-table tbody tr', (trs) => trs.map((t) => t.dataset.model));
		assert(names.length === 1 && names[0] === MODEL, 'tag filter: ' + names);
		await page.fill('#model-filter', 'alice');
		assert(await page.locator('#models-table tbody tr').count() === 1, 'owner filter');
	});
} else {
	skip('overview: filter by tag and owner', 'this daemon\'s /openapi.json has no GET /v1/search (model tags and owners come with it)');
}

await step('model page: reached by a link, versions table with metrics and aliases', async () => {
	await goto('/ui/');
	await page.click(`#models-table a[href="/ui/models/${MODEL}"]`);
	await ready();
	assert(new URL(page.url()).pathname === `/ui/models/${MODEL}`, 'url ' + page.url());
	const names = await page.$$eval('#versions-body tr', (trs) => trs.map((t) => t.dataset.version));
	assert(names.join() === 'v5,v4,v3,v2,v1', 'newest first: ' + names);
	await page.waitForFunction(() => [...document.querySelectorAll('#versions-body td[data-metric="accuracy"]')].every((td) => td.textContent !== '…'));
	const acc = await page.textContent('#versions-body tr[data-version="v2"] td[data-metric="accuracy"]');
	assert(acc === '0.93', 'accuracy of v2: ' + acc);
	const al = await page.textContent('#versions-body tr[data-version="v2"]');
	assert(al.includes('current'), 'v2 shows current');
	assert((await aliasesShown()).current.startsWith('v2'), 'serving current v2');
});

await step('model page: sort by a column, filter', async () => {
	await page.click('button.sort[data-key="m:accuracy"]');
	let names = await page.$$eval('#versions-body tr', (trs) => trs.map((t) => t.dataset.version));
	assert(names[0] === 'v3', 'lowest accuracy first: ' + names);
	await page.click('button.sort[data-key="m:accuracy"]');
	names = await page.$$eval('#versions-body tr', (trs) => trs.map((t) => t.dataset.version));
	assert(names[0] === 'v4', 'highest first: ' + names);
	await page.fill('#version-filter', 'failed');
	names = await page.$$eval('#versions-body tr', (trs) => trs.map((t) => t.dataset.version));
	assert(names.join() === 'v3', 'filter failed: ' + names);
	assert((await page.textContent('#version-count')).startsWith('1 of 5'), 'count');
	await page.fill('#version-filter', '');
	await page.click('button.sort[data-key="name"]');
});

if (has('get', '/v1/search')) {
	await step('model page: filter versions by tag', async () => {
		await page.fill('#version-filter', 'stage=prod-candidate');
		const names = await page.$$eval('#versions-body tr', (trs) => trs.map((t) => t.dataset.version));
		assert(names.join() === 'v2', 'tag filter: ' + names);
		await page.fill('#version-filter', '');
	});
} else {
	skip('model page: filter versions by tag', 'this daemon\'s /openapi.json has no GET /v1/search (version tags in lists come with it)');
}

await step('model page: comparison chart with the policy threshold', async () => {
	await page.waitForSelector('#compare svg.compare');
	assert(await page.locator('#compare line.threshold').count() >= 1, 'a threshold line');
	const labels = await page.$$eval('#compare .threshold-label', (t) => t.map((x) => x.textContent));
	assert(labels.some((l) => l === 'min 0.85'), 'min 0.85 drawn: ' + labels);
	const before = await page.getAttribute('#compare', 'data-versions');
	await page.check('#versions-body tr[data-version="v1"] input[type=checkbox]');
	await page.waitForFunction((b) => document.querySelector('#compare').dataset.versions !== b, before);
	assert((await page.getAttribute('#compare', 'data-versions')).split(',').includes('v1'), 'v1 added');
});

await step('model page: alias timeline with the refused attempt and its gates', async () => {
	await timelineLoaded();
	const refused = page.locator('#timeline li.refused').first();
	const text = await refused.textContent();
	assert(text.includes('performance_metrics.accuracy >= 0.85 (is 0.8)'), 'gate text: ' + text);
	assert(text.includes('via API'), 'channel');
	await shot('model');
	await page.evaluate(() => window.scrollTo(0, 0));
	await shot('readme-model', true);
});

await step('model page: what was serving at a picked time', async () => {
	await page.fill('#asof-time', opt.t1.slice(0, 19));
	await page.click('#asof-go');
	await page.waitForSelector('#asof-result dl, #asof-result p');
	const t = await page.textContent('#asof-result');
	assert(t.includes('current') && t.includes('v1') && !t.includes('v2'), 'at t1 current was v1: ' + t);
	await page.fill('#asof-time', opt.t0.slice(0, 19));
	await page.click('#asof-go');
	await page.waitForFunction(() => document.querySelector('#asof-result').textContent.includes('Nothing'));
});

await step('keyboard only: tab into the table, arrows, Space ticks, Enter opens', async () => {
	await goto(`/ui/models/${MODEL}`);
	await page.evaluate(() => document.activeElement && document.activeElement.blur());
	let onRow = false;
	for (let i = 0; i < 40 && !onRow; i++) {
		await page.keyboard.press('Tab');
		onRow = await page.evaluate(() => document.activeElement.matches('#versions-body tr'));
	}
	assert(onRow, 'Tab reaches a row of the versions table');
	const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
	assert(outline !== 'none', 'the focused row is visibly marked');
	await page.keyboard.press('ArrowDown');
	await page.keyboard.press('ArrowDown');
	let v = await page.evaluate(() => document.activeElement.dataset.version);
	assert(v === 'v3', 'two rows down is v3: ' + v);
	await page.keyboard.press('ArrowUp');
	v = await page.evaluate(() => document.activeElement.dataset.version);
	assert(v === 'v4', 'up again is v4: ' + v);
	await page.keyboard.press(' ');
	assert(await page.evaluate(() => document.activeElement.getAttribute('aria-selected')) === 'true', 'Space ticks v4');
	await page.keyboard.press('Enter');
	await ready();
	assert(new URL(page.url()).pathname === `/ui/models/${MODEL}/versions/v4`, 'Enter opened v4: ' + page.url());
	await page.goBack();
	await ready();
});

await step('token: entered once, kept in sessionStorage only', async () => {
	await page.click('#token-button');
	await page.fill('#token-input', opt.token);
	await page.click('#token-save');
	assert(await page.evaluate(() => sessionStorage.getItem('modelfs.token')) === opt.token, 'in sessionStorage');
	assert(!page.url().includes(opt.token), 'not in the URL');
	assert((await context.cookies()).length === 0, 'no cookie');
	assert(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');
});

await step('action: a refused promotion shows the failed gates', async () => {
	await page.fill('#action-version', 'v3');
	expectedStatus = 409;
	const text = await confirmVia('act-promote');
	assert(text.includes('current') && text.includes('v2') && text.includes('v3'), 'shows what changes: ' + text);
	const gates = await page.$$eval('#confirm-dialog ul.gates li', (li) => li.map((x) => x.textContent));
	assert(gates.some((g) => g.includes('performance_metrics.accuracy >= 0.85 (is 0.8)')), 'accuracy gate: ' + gates);
	assert(gates.some((g) => g.includes('validation_status')), 'validation gate: ' + gates);
	await shot('refused');
	await shot('readme-refused', true);
	expectedStatus = null;
	await page.click('#cancel-button');
	await page.waitForSelector('#confirm-dialog', { state: 'detached' });
	assert((await aliasesShown()).current.startsWith('v2'), 'current unchanged');
});

if (has('get', '/v1/refusals')) {
	await step('timeline: the refusal recorded as a "refused" event with its gates', async () => {
		await timelineLoaded();
		const t = await page.locator('#timeline li[data-kind="refused"]').first().textContent();
		assert(t.includes('accuracy'), 'gates of the refused event: ' + t);
	});
} else {
	skip('timeline: the refusal recorded as a "refused" event with its gates', 'this daemon\'s /openapi.json has no GET /v1/refusals');
}

await step('action: promote, then roll back with a reason; the timeline shows both', async () => {
	await page.fill('#action-version', 'v4');
	const text = await confirmVia('act-promote');
	assert(text.includes('v4'), 'confirmation names v4');
	await closeDialogAndWait();
	assert((await aliasesShown()).current.startsWith('v4'), 'current is v4');
	await timelineLoaded();
	const text2 = await confirmVia('act-rollback', { '#rollback-reason': 'latency regression in eu-west' });
	assert(text2.includes('v4') && text2.includes('v2'), 'rollback shows v4 → v2: ' + text2);
	await closeDialogAndWait();
	assert((await aliasesShown()).current.startsWith('v2'), 'current back to v2');
	await timelineLoaded();
	const top = await page.locator('#timeline li.event').first().textContent();
	assert(top.includes('current') && top.includes('v4') && top.includes('v2') && top.includes('latency regression in eu-west') && top.includes('ops-admin'),
		'newest entry is the rollback with its reason and actor: ' + top);
	await shot('timeline-after-rollback');
});

await step('action: canary with a percent, abort it, canary again and promote it', async () => {
	await page.fill('#action-version', 'v4');
	await page.fill('#action-percent', '20');
	let t = await confirmVia('act-canary');
	assert(t.includes('v4 (20%)'), 'confirmation shows v4 (20%): ' + t);
	await closeDialogAndWait();
	assert((await aliasesShown()).canary.includes('v4') && (await aliasesShown()).canary.includes('20%'), 'canary v4 20%');
	t = await confirmVia('act-canary-abort');
	assert(t.includes('v4'), 'abort names the canary');
	await closeDialogAndWait();
	assert(!('canary' in await aliasesShown()), 'canary gone');
	await page.fill('#action-version', 'v5');
	await page.fill('#action-percent', '25');
	await confirmVia('act-canary');
	await closeDialogAndWait();
	t = await confirmVia('act-canary-promote');
	assert(t.includes('v5'), 'canary promote names v5');
	await closeDialogAndWait();
	const al = await aliasesShown();
	assert(al.current.startsWith('v5') && !('canary' in al), 'current v5, no canary: ' + JSON.stringify(al));
});

await step('version page: files with SHA-256, metadata, lineage links, diff, observations', async () => {
	await goto(`/ui/models/${MODEL}/versions/v2`);
	const files = await page.textContent('#files-table');
	assert(files.includes('model.pkl') && /[0-9a-f]{64}/.test(files), 'file and digest: ' + files);
	assert((await page.textContent('#metadata')).includes('"git_commit": "c0ffee2"'), 'metadata record');
	const sameCommit = await page.$$eval('#same-commit a', (a) => a.map((x) => x.textContent));
	assert(sameCommit.includes(`${MODEL} v4`), 'v4 shares the commit: ' + sameCommit);
	const sameData = await page.$$eval('#same-data a', (a) => a.map((x) => x.textContent));
	assert(sameData.includes(`${MODEL} v1`), 'v1 shares the data: ' + sameData);
	assert(await page.locator('svg.lineage rect').count() >= 3, 'a lineage graph');
	assert(await page.locator('#observations tbody tr').count() === 5, 'five observations');
	await page.fill('#diff-other', 'v1');
	await page.click('#diff-go');
	await page.waitForSelector('#diff-result table');
	assert((await page.textContent('#diff-result')).includes('performance_metrics.accuracy'), 'diff names the accuracy');
	await shot('version');
	await page.click('#same-commit a');
	await ready();
	assert(new URL(page.url()).pathname.endsWith('/versions/v4'), 'lineage link goes to v4');
});

await step('escaping: markup in metadata is shown as text, never run', async () => {
	await goto(`/ui/models/${MODEL}/versions/v5`);
	assert(await page.evaluate(() => window.__xss === undefined), 'no script ran');
	assert((await page.textContent('svg.lineage')).includes('<img'), 'the notebook name shows literally');
	assert(await page.locator('main img').count() === 0, 'no element made from data');
});

if (has('post', '/v1/models/{model}/versions/{version}/archive')) {
	await step('action: archive a version', async () => {
		await goto(`/ui/models/${MODEL}/versions/v3`);
		const t = await confirmVia('act-archive', { '#archive-reason': 'superseded' });
		assert(t.includes('archived'), 'confirmation says archived');
		await closeDialogAndWait();
		assert((await page.textContent('.page-head')).includes('archived'), 'state archived');
	});
} else {
	skip('action: archive a version', 'this daemon\'s /openapi.json has no POST /v1/models/{model}/versions/{version}/archive');
}

await step('no console errors', async () => {
	assert(consoleErrors.length === 0, 'console errors:\n' + consoleErrors.join('\n'));
});

await browser.close();
console.log(`${results.filter((r) => r[0] === 'ok').length} ok, ${failed} failed`);
process.exit(failed ? 1 : 0);
