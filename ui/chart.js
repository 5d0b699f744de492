// SPDX-License-Identifier: Apache-2.0
// Hand-drawn SVG charts: a sparkline of observations and a grouped bar chart
// comparing versions' metrics with the policy's bounds drawn across.
import { s, fmtNum } from './dom.js';

/** A small line of values (oldest first); the last point is marked. */
export function sparkline(values, label) {
	const w = 120, hgt = 28, pad = 3;
	const svg = s('svg', { class: 'spark', width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: 'img',
		'aria-label': label + ': ' + (values.length ? values.map(fmtNum).join(', ') : 'no observations') });
	if (!values.length) return svg;
	const lo = Math.min(...values), hi = Math.max(...values);
	const span = hi - lo || 1;
	const x = (i) => pad + (values.length === 1 ? (w - 2 * pad) / 2 : (i * (w - 2 * pad)) / (values.length - 1));
	const y = (v) => hgt - pad - ((v - lo) / span) * (hgt - 2 * pad);
	svg.append(s('polyline', { class: 'spark-line', points: values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
	const last = values.length - 1;
	svg.append(s('circle', { class: 'spark-dot', cx: x(last).toFixed(1), cy: y(values[last]).toFixed(1), r: 2.5 }));
	svg.append(s('title', {}, label + ': latest ' + fmtNum(values[last])));
	return svg;
}

/**
 * One panel per metric: a bar per version, and a dashed line for each policy
 * bound (min or max) on that metric. versions: [{name, metrics: {k: v}}];
 * bounds: {metric: {min?, max?}}.
 */
export function compareChart(metricNames, versions, bounds) {
	const panelW = 220, panelH = 150, top = 22, bottom = 34, left = 36, gap = 16;
	const width = Math.max(1, metricNames.length) * (panelW + gap);
	const svg = s('svg', { class: 'compare', width, height: panelH, viewBox: `0 0 ${width} ${panelH}`, role: 'img',
		'aria-label': 'metrics of ' + versions.map((v) => v.name).join(', ') });
	metricNames.forEach((m, mi) => {
		const ox = mi * (panelW + gap);
		const vals = versions.map((v) => v.metrics[m]).filter((v) => typeof v === 'number');
		const b = bounds[m] || {};
		const all = vals.concat([b.min, b.max].filter((v) => typeof v === 'number'));
		let lo = Math.min(0, ...all), hi = Math.max(...all, 0);
		if (hi <= 1 && lo >= 0) hi = 1;
		const span = hi - lo || 1;
		const plotH = panelH - top - bottom;
		const y = (v) => top + plotH - ((v - lo) / span) * plotH;
		const g = s('g', { class: 'panel' });
		g.append(s('text', { x: ox + left, y: 14, class: 'panel-title' }, m));
		g.append(s('line', { x1: ox + left, x2: ox + panelW, y1: y(lo), y2: y(lo), class: 'axis' }));
		g.append(s('text', { x: ox + left - 4, y: y(hi) + 4, class: 'tick', 'text-anchor': 'end' }, fmtNum(hi)));
		g.append(s('text', { x: ox + left - 4, y: y(lo) + 4, class: 'tick', 'text-anchor': 'end' }, fmtNum(lo)));
		const bw = Math.min(36, (panelW - left - 8) / Math.max(1, versions.length) - 6);
		versions.forEach((v, vi) => {
			const bx = ox + left + 6 + vi * (bw + 6);
			const val = v.metrics[m];
			if (typeof val === 'number') {
				const r = s('rect', { x: bx, y: y(Math.max(val, lo)), width: bw, height: Math.max(1, y(lo) - y(Math.max(val, lo))), class: 'bar bar-' + (vi % 6) });
				r.append(s('title', {}, `${v.name} ${m} = ${fmtNum(val)}`));
				g.append(r);
				g.append(s('text', { x: bx + bw / 2, y: y(Math.max(val, lo)) - 3, class: 'val', 'text-anchor': 'middle' }, fmtNum(val)));
			}
			g.append(s('text', { x: bx + bw / 2, y: panelH - bottom + 14, class: 'tick', 'text-anchor': 'middle' }, v.name));
		});
		for (const kind of ['min', 'max']) {
			if (typeof b[kind] !== 'number') continue;
			const ly = y(b[kind]);
			g.append(s('line', { x1: ox + left, x2: ox + panelW, y1: ly, y2: ly, class: 'threshold' }));
			g.append(s('text', { x: ox + panelW, y: ly - 3, class: 'threshold-label', 'text-anchor': 'end' }, `${kind} ${fmtNum(b[kind])}`));
		}
		svg.append(g);
	});
	return svg;
}
