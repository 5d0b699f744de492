// SPDX-License-Identifier: Apache-2.0
// Changes from the UI: the session's token, and every action behind a
// confirmation that says what will change; a refusal shows the failed gates.
import { h, clear } from './dom.js';
import { api, enc, token, ApiError } from './api.js';

/** The header's token control: entered once per browser session. */
export function tokenButton() {
	const label = () => (token.get() ? 'Token set' : 'Set token');
	const btn = h('button', { type: 'button', id: 'token-button', class: 'secondary' }, label());
	btn.addEventListener('click', async () => {
		await askToken();
		btn.textContent = label();
	});
	return btn;
}

/** Asks for a token in a dialog; resolves when it closes. */
export function askToken() {
	return new Promise((resolve) => {
		const input = h('input', { type: 'password', id: 'token-input', autocomplete: 'off', spellcheck: 'false', value: token.get() });
		const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'token-title' },
			h('form', { method: 'dialog' },
				h('h2', { id: 'token-title' }, 'API token'),
				h('p', {}, 'Kept in this tab\'s session storage only, sent as a bearer token to this daemon.'),
				h('label', { for: 'token-input' }, 'Token'), input,
				h('div', { class: 'buttons' },
					h('button', { type: 'submit', value: 'save', id: 'token-save' }, 'Save'),
					h('button', { type: 'submit', value: 'clear', class: 'secondary' }, 'Forget'),
					h('button', { type: 'submit', value: 'cancel', class: 'secondary' }, 'Cancel'))));
		dlg.addEventListener('close', () => {
			const before = token.get();
			if (dlg.returnValue === 'save') token.set(input.value.trim());
			else if (dlg.returnValue === 'clear') token.set('');
			// A page refused for want of a token reads again with it (app.js listens).
			if (token.get() !== before) window.dispatchEvent(new Event('modelfs:token'));
			dlg.remove();
			const b = document.getElementById('token-button');
			if (b) b.textContent = token.get() ? 'Token set' : 'Set token';
			resolve(dlg.returnValue);
		});
		document.body.append(dlg);
		dlg.showModal();
		input.focus();
	});
}

/**
 * Shows what will change (changes: [[label, before, after]]), with optional
 * extra fields; on confirm runs perform(fields) and shows its result or its
 * refusal in the same dialog. Resolves true when the change was made.
 */
export function confirmAction({ title, changes, fields = [], perform, onDone }) {
	return new Promise((resolve) => {
		const result = h('div', { class: 'result', 'aria-live': 'assertive' });
		const table = h('table', { class: 'changes' },
			h('thead', {}, h('tr', {}, h('th', {}, 'what'), h('th', {}, 'now'), h('th', {}, 'after'))),
			h('tbody', {}, changes.map(([what, before, after]) =>
				h('tr', {}, h('td', {}, what), h('td', {}, before ?? '—'), h('td', { class: 'after' }, after ?? '—')))));
		const confirm = h('button', { type: 'button', class: 'danger', id: 'confirm-button' }, 'Confirm');
		const cancel = h('button', { type: 'button', class: 'secondary', id: 'cancel-button' }, 'Cancel');
		const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'confirm-title', id: 'confirm-dialog' },
			h('h2', { id: 'confirm-title' }, title), h('p', {}, 'This will change:'), table,
			fields.map((f) => h('div', { class: 'field' }, h('label', { for: f.id }, f.label), f.input)),
			result, h('div', { class: 'buttons' }, confirm, cancel));
		let done = false;
		const close = () => { dlg.close(); dlg.remove(); resolve(done); if (done && onDone) onDone(); };
		cancel.addEventListener('click', close);
		dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); close(); });
		confirm.addEventListener('click', async () => {
			confirm.disabled = true;
			clear(result);
			try {
				await perform();
				done = true;
				result.append(h('p', { class: 'ok', role: 'status' }, 'Done.'));
				confirm.remove();
				cancel.textContent = 'Close';
				cancel.focus();
			} catch (e) {
				result.append(refusal(e));
				confirm.disabled = false;
				if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
					const again = h('button', { type: 'button', class: 'secondary' }, 'Set token…');
					again.addEventListener('click', () => askToken());
					result.append(again);
				}
				cancel.focus();
			}
		});
		document.body.append(dlg);
		dlg.showModal();
		(fields[0] && fields[0].input || confirm).focus();
	});
}

/** An error as shown to people: code, message and each failed gate. */
export function refusal(e) {
	const gates = e instanceof ApiError ? e.failedGates : [];
	return h('div', { class: 'error refusal', role: 'alert' },
		h('p', {}, h('strong', {}, e instanceof ApiError ? (e.code === 'gate_refused' ? 'Refused by policy' : `${e.status} ${e.code}`) : 'Error'), ': ', e.message),
		gates.length ? h('ul', { class: 'gates' }, gates.map((g) => h('li', {}, g))) : null);
}

const m = (model) => '/v1/models/' + enc(model);

/** The action requests, one per button. */
export const act = {
	promote: (model, version, reason) => api(m(model) + '/promote', { method: 'POST', body: reason ? { version, reason } : { version } }),
	canary: (model, version, percent, reason) => api(m(model) + '/canary', { method: 'PUT', body: { version, percent, ...(reason ? { reason } : {}) } }),
	canaryPromote: (model) => api(m(model) + '/canary/promote', { method: 'POST', body: {} }),
	canaryAbort: (model) => api(m(model) + '/canary', { method: 'DELETE' }),
	rollback: (model, reason) => api(m(model) + '/rollback', { method: 'POST', body: reason ? { reason } : {} }),
	archive: (model, version, reason) => api(m(model) + '/versions/' + enc(version) + '/archive', { method: 'POST', body: reason ? { reason } : {} }),
	unarchive: (model, version) => api(m(model) + '/versions/' + enc(version) + '/unarchive', { method: 'POST', body: {} }),
};
