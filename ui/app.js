// SPDX-License-Identifier: Apache-2.0
// The modelfs web UI: routes /ui/, /ui/models/{m}, /ui/models/{m}/versions/{v}
// in the browser (the daemon answers index.html for each) and renders the page.
import { h, clear } from './dom.js';
import { ApiError, loadFeatures } from './api.js';
import { tokenButton } from './actions.js';
import { renderOverview } from './overview.js';
import { renderModel } from './model.js';
import { renderVersion } from './version.js';

const main = document.getElementById('main');
let renderSeq = 0;

function route(pathname) {
	const parts = pathname.replace(/^\/ui\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
	if (parts.length === 0) return { page: 'overview' };
	if (parts[0] === 'models' && parts.length === 2) return { page: 'model', model: parts[1] };
	if (parts[0] === 'models' && parts[2] === 'versions' && parts.length === 4)
		return { page: 'version', model: parts[1], version: parts[3] };
	return { page: 'missing' };
}

export async function render() {
	const seq = ++renderSeq;
	const r = route(location.pathname);
	const view = h('div', { class: 'view' });
	const ctx = { stale: () => seq !== renderSeq, rerender: render };
	clear(main).append(h('p', { class: 'loading', role: 'status' }, 'Loading…'));
	try {
		// The route table is asked alongside the page's own data, not before it.
		ctx.featuresP = loadFeatures();
		ctx.featuresP.catch(() => {}); // pages that need it see the failure where they wait
		if (r.page === 'overview') {
			document.title = 'Models — modelfs';
			await renderOverview(view, ctx);
		} else if (r.page === 'model') {
			document.title = r.model + ' — modelfs';
			await renderModel(view, r.model, ctx);
		} else if (r.page === 'version') {
			document.title = r.model + ' ' + r.version + ' — modelfs';
			await renderVersion(view, r.model, r.version, ctx);
		} else {
			view.append(h('h1', {}, 'Not found'), h('p', {}, 'No page at ' + location.pathname));
		}
	} catch (e) {
		const auth = e instanceof ApiError && (e.status === 401 || e.status === 403);
		view.append(h('div', { class: 'error', role: 'alert', 'data-auth': auth ? '' : null },
			h('strong', {}, e instanceof ApiError ? `${e.status} ${e.code}: ` : 'Error: '), e.message,
			e instanceof ApiError && (e.status === 401 || e.status === 403) ? ' — set a token (top right).' : ''));
	}
	if (seq !== renderSeq) return;
	clear(main).append(view);
	const focus = main.querySelector('[data-autofocus]') || main.querySelector('h1');
	if (focus && document.activeElement === document.body) {
		if (!focus.hasAttribute('tabindex')) focus.setAttribute('tabindex', '-1');
		focus.focus({ preventScroll: true });
	}
	document.body.dataset.ready = String(seq);
	// For bench/ui.mjs: when the page became usable (the table drawn, the filter live).
	performance.mark('modelfs:ready');
}

export function navigate(href) {
	if (href === location.pathname + location.search) return;
	history.pushState(null, '', href);
	window.scrollTo(0, 0);
	document.activeElement && document.activeElement.blur && document.activeElement.blur();
	render();
}

document.addEventListener('click', (ev) => {
	const a = ev.target.closest && ev.target.closest('a[data-nav]');
	if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
	ev.preventDefault();
	navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', render);
window.addEventListener('modelfs:token', () => {
	if (main.querySelector('.error[data-auth]')) render();
});

document.getElementById('token-slot').append(tokenButton());
render();
