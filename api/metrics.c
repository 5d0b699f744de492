/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics. HTTP requests are counted per route, method and status
 * in lock-free histograms; the store's share (versions by state, aliases,
 * canary percent, promotions, rollbacks, gate refusals, observed production
 * metrics) is rendered from one registry summary and a running tally of the
 * event log, and only rebuilt after a change.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"
#include "reg_json.h"

/* Status codes with a slot of their own; anything else counts under the last one. */
static const int codes[API_CODES_N] = { 200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 408,
					409, 413, 414, 415, 416, 422, 431, 500, 503, 507, 0 };

/* Upper bounds of the latency buckets, microseconds (then +Inf). */
static const int64_t bounds_us[API_BUCKETS_N] = { 250,    500,    1000,    2500,    5000,
						  10000,  25000,  50000,   100000,  250000,
						  500000, 1000000, 2500000, 10000000 };

static int code_slot(int status)
{
	for (int i = 0; i < API_CODES_N - 1; i++)
		if (codes[i] == status)
			return i;
	return API_CODES_N - 1;
}

int api_metrics_init(struct api_metrics *m, size_t nroutes)
{
	memset(m, 0, sizeof(*m));
	m->nroutes = nroutes;
	m->h = calloc((nroutes + 1) * API_CODES_N, sizeof(*m->h));
	m->tally = json_object();
	if (!m->h || !m->tally) {
		free(m->h);
		json_decref(m->tally);
		return cm_err_set(-ENOMEM, "out of memory for metrics");
	}
	pthread_mutex_init(&m->mu, NULL);
	return 0;
}

void api_metrics_destroy(struct api_metrics *m)
{
	if (!m->h)
		return;
	free(m->h);
	m->h = NULL;
	json_decref(m->tally);
	cm_buf_free(&m->store_text);
	pthread_mutex_destroy(&m->mu);
}

void api_metrics_observe(struct api_metrics *m, int route, int status, int64_t dur_us)
{
	size_t r = route < 0 || (size_t)route >= m->nroutes ? m->nroutes : (size_t)route;
	struct api_hist *h = &m->h[r * API_CODES_N + (size_t)code_slot(status)];

	if (dur_us < 0)
		dur_us = 0;
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)dur_us, memory_order_relaxed);
	for (int i = 0; i < API_BUCKETS_N; i++) {
		if (dur_us <= bounds_us[i]) {
			atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
			break;
		}
	}
}

enum { T_PROMOTIONS, T_ROLLBACKS, T_REFUSALS };

static void tally_add(struct api_metrics *m, const char *model, int which)
{
	json_t *row = json_object_get(m->tally, model);

	if (!row) {
		row = json_pack("[iii]", 0, 0, 0);
		if (!row || json_object_set_new(m->tally, model, row) < 0)
			return;
	}
	json_integer_set(json_array_get(row, (size_t)which),
			 json_integer_value(json_array_get(row, (size_t)which)) + 1);
}

void api_metrics_tally(struct api_metrics *m, json_t *events)
{
	size_t i;
	json_t *ev;

	json_array_foreach(events, i, ev) {
		const char *kind = json_string_value(json_object_get(ev, "kind"));
		const char *model = json_string_value(json_object_get(ev, "model"));
		const char *alias = json_string_value(json_object_get(ev, "alias"));
		const char *via = json_string_value(json_object_get(json_object_get(ev, "detail"), "via"));
		const char *rule =
			json_string_value(json_object_get(json_object_get(ev, "detail"), "rule"));
		json_int_t id = json_integer_value(json_object_get(ev, "id"));

		if (id > m->last_event)
			m->last_event = id;
		if (!kind || !model)
			continue;
		if (!strcmp(kind, "refused") && rule && !strcmp(rule, "gate"))
			tally_add(m, model, T_REFUSALS);
		else if (!strcmp(kind, "alias.set") && via && !strcmp(via, "rollback"))
			tally_add(m, model, T_ROLLBACKS);
		else if (!strcmp(kind, "alias.set") && alias && !strcmp(alias, "current"))
			tally_add(m, model, T_PROMOTIONS);
	}
}

static int head(struct cm_buf *b, const char *name, const char *type, const char *help)
{
	return cm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2",...} — labels as NULL-terminated name/value pairs. */
static int series(struct cm_buf *b, const char *name, const char *const *labels)
{
	int rc = cm_buf_printf(b, "%s{", name);

	for (int i = 0; rc == 0 && labels[i]; i += 2) {
		rc = cm_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
		if (rc == 0)
			rc = api_prom_label(b, labels[i + 1] ? labels[i + 1] : "");
		if (rc == 0)
			rc = cm_buf_append(b, "\"", 1);
	}
	if (rc == 0)
		rc = cm_buf_append(b, "} ", 2);
	return rc;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int render_versions(struct cm_buf *b, json_t *rows)
{
	size_t i;
	json_t *r;
	int rc = head(b, "modelfs_versions", "gauge", "Versions by model and state.");

	json_array_foreach(rows, i, r) {
		if (rc < 0 || !str(r, "state"))
			continue;
		rc = series(b, "modelfs_versions",
			    (const char *const[]){ "model", str(r, "model"), "state", str(r, "state"),
						   NULL });
		if (rc == 0)
			rc = cm_buf_printf(b, "%" JSON_INTEGER_FORMAT "\n",
					   json_integer_value(json_object_get(r, "count")));
	}
	return rc;
}

static int render_aliases(struct cm_buf *b, json_t *rows)
{
	size_t i;
	json_t *r;
	int rc = head(b, "modelfs_alias_info", "gauge",
		      "The version each alias points at (always 1).");

	json_array_foreach(rows, i, r) {
		if (rc == 0)
			rc = series(b, "modelfs_alias_info",
				    (const char *const[]){ "model", str(r, "model"), "alias",
							   str(r, "alias"), "version", str(r, "version"),
							   NULL });
		if (rc == 0)
			rc = cm_buf_append(b, "1\n", 2);
	}
	if (rc == 0)
		rc = head(b, "modelfs_canary_traffic_percent", "gauge",
			  "Traffic percent of each model's canary.");
	json_array_foreach(rows, i, r) {
		json_t *p = json_object_get(r, "percent");

		if (rc < 0 || !p || strcmp(str(r, "alias"), "canary"))
			continue;
		rc = series(b, "modelfs_canary_traffic_percent",
			    (const char *const[]){ "model", str(r, "model"), "version",
						   str(r, "version"), NULL });
		if (rc == 0)
			rc = cm_buf_printf(b, "%" JSON_INTEGER_FORMAT "\n", json_integer_value(p));
	}
	return rc;
}

static int render_tally(struct api_metrics *m, struct cm_buf *b)
{
	static const struct {
		const char *name, *help;
	} t[] = {
		[T_PROMOTIONS] = { "modelfs_promotions_total",
				   "Changes of current (not rollbacks), from the event log." },
		[T_ROLLBACKS] = { "modelfs_rollbacks_total", "Alias rollbacks, from the event log." },
		[T_REFUSALS] = { "modelfs_gate_refusals_total",
				 "Alias changes refused by the promotion policy." },
	};
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < sizeof(t) / sizeof(t[0]); k++) {
		const char *model;
		json_t *row;

		rc = head(b, t[k].name, "counter", t[k].help);
		json_object_foreach(m->tally, model, row) {
			if (rc == 0)
				rc = series(b, t[k].name, (const char *const[]){ "model", model, NULL });
			if (rc == 0)
				rc = cm_buf_printf(b, "%" JSON_INTEGER_FORMAT "\n",
						   json_integer_value(json_array_get(row, k)));
		}
	}
	return rc;
}

/* The shortest decimal that reads back as the same double (0.83, not 0.82999999999999996). */
static int number(struct cm_buf *b, double v)
{
	return cm_buf_printf(b, "%.*g\n", reg_json_real_digits(v), v);
}

/*
 * Observed production metrics, one gauge family per metric name:
 * model_prediction_<metric>{model,version} (so model_prediction_accuracy
 * serves the alert `model_prediction_accuracy < 0.85` unchanged). Rows come
 * sorted by model, version, metric; families are written metric by metric.
 */
static int render_observations(struct cm_buf *b, json_t *rows)
{
	json_t *done = json_object();
	size_t i, j;
	json_t *r, *s;
	int rc = done ? 0 : -ENOMEM;

	json_array_foreach(rows, i, r) {
		const char *metric = str(r, "metric");
		char name[96];

		if (rc < 0 || json_object_get(done, metric))
			continue;
		json_object_set_new(done, metric, json_true());
		snprintf(name, sizeof(name), "model_prediction_%s", metric);
		rc = head(b, name, "gauge", "Latest observed production metric of a version.");
		json_array_foreach(rows, j, s) {
			if (rc < 0 || strcmp(str(s, "metric"), metric))
				continue;
			rc = series(b, name, (const char *const[]){ "model", str(s, "model"), "version",
								   str(s, "version"), NULL });
			if (rc == 0)
				rc = number(b, json_number_value(json_object_get(s, "value")));
		}
	}
	json_decref(done);
	return rc;
}

int api_metrics_render_store(struct api_metrics *m, json_t *summary, struct cm_buf *b)
{
	int rc = render_versions(b, json_object_get(summary, "versions"));

	if (rc == 0)
		rc = render_aliases(b, json_object_get(summary, "aliases"));
	if (rc == 0)
		rc = render_tally(m, b);
	if (rc == 0)
		rc = render_observations(b, json_object_get(summary, "observations"));
	return rc;
}

/* Bucket bounds as Prometheus `le` labels, matching bounds_us. */
static const char *const bounds_le[API_BUCKETS_N] = {
	",le=\"0.00025\"", ",le=\"0.0005\"", ",le=\"0.001\"", ",le=\"0.0025\"", ",le=\"0.005\"",
	",le=\"0.01\"",    ",le=\"0.025\"",  ",le=\"0.05\"",  ",le=\"0.1\"",    ",le=\"0.25\"",
	",le=\"0.5\"",     ",le=\"1\"",      ",le=\"2.5\"",   ",le=\"10\"",
};

/*
 * The request series are rendered on every scrape (their counters move with
 * every request, the scrape's own included), so this path formats by hand:
 * printf was most of a scrape's cost.
 */
static int put(struct cm_buf *b, const char *s)
{
	return cm_buf_append(b, s, strlen(s));
}

static int put_u64(struct cm_buf *b, uint64_t v)
{
	char tmp[24];
	int n = (int)sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return cm_buf_append(b, tmp + n, sizeof(tmp) - (size_t)n);
}

/* `name{labels...} value\n` with labels already rendered (without the braces' end). */
static int line_u64(struct cm_buf *b, const char *name, const char *labels, const char *extra,
		    uint64_t v)
{
	int rc = put(b, name);

	if (rc == 0)
		rc = put(b, labels);
	if (rc == 0 && extra)
		rc = put(b, extra);
	if (rc == 0)
		rc = cm_buf_append(b, "} ", 2);
	if (rc == 0)
		rc = put_u64(b, v);
	if (rc == 0)
		rc = cm_buf_append(b, "\n", 1);
	return rc;
}

/* {route="...",method="...",code="..." (no closing brace), escaped once per series. */
static int series_labels(struct cm_buf *l, size_t r, size_t nroutes, int c)
{
	const char *route = r < nroutes ? api_routes[r].pattern : "unmatched";
	const char *method = r < nroutes ? api_method_name(api_routes[r].methods & ~(unsigned)API_HEAD)
					 : "any";
	int rc;

	cm_buf_reset(l);
	rc = put(l, "{route=\"");
	if (rc == 0)
		rc = api_prom_label(l, route);
	if (rc == 0)
		rc = put(l, "\",method=\"");
	if (rc == 0)
		rc = put(l, method);
	if (rc == 0)
		rc = put(l, "\",code=\"");
	if (rc == 0)
		rc = codes[c] ? put_u64(l, (uint64_t)codes[c]) : put(l, "other");
	if (rc == 0)
		rc = put(l, "\"");
	return rc;
}

int api_metrics_render_http(struct api_metrics *m, struct cm_buf *b)
{
	struct cm_buf l = { 0 };
	int rc = head(b, "modelfs_http_requests_total", "counter",
		      "HTTP requests by route, method and status code.");

	for (int pass = 0; rc == 0 && pass < 2; pass++) {
		if (pass == 1)
			rc = head(b, "modelfs_http_request_duration_seconds", "histogram",
				  "HTTP request latency by route and status code.");
		for (size_t r = 0; rc == 0 && r <= m->nroutes; r++) {
			for (int c = 0; rc == 0 && c < API_CODES_N; c++) {
				struct api_hist *h = &m->h[r * API_CODES_N + (size_t)c];
				uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
				uint64_t cum = 0, sum;

				if (!count)
					continue;
				rc = series_labels(&l, r, m->nroutes, c);
				if (rc < 0)
					break;
				if (pass == 0) {
					rc = line_u64(b, "modelfs_http_requests_total", l.data, NULL, count);
					continue;
				}
				for (int k = 0; rc == 0 && k < API_BUCKETS_N; k++) {
					cum += atomic_load_explicit(&h->b[k], memory_order_relaxed);
					rc = line_u64(b, "modelfs_http_request_duration_seconds_bucket",
						      l.data, bounds_le[k], cum);
				}
				if (rc == 0)
					rc = line_u64(b, "modelfs_http_request_duration_seconds_bucket",
						      l.data, ",le=\"+Inf\"", count);
				sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
				if (rc == 0)
					rc = put(b, "modelfs_http_request_duration_seconds_sum");
				if (rc == 0)
					rc = put(b, l.data);
				if (rc == 0)
					rc = cm_buf_append(b, "} ", 2);
				if (rc == 0)
					rc = put_u64(b, sum / 1000000);
				if (rc == 0) {
					char frac[16];

					snprintf(frac, sizeof(frac), ".%06llu\n",
						 (unsigned long long)(sum % 1000000));
					rc = put(b, frac);
				}
				if (rc == 0)
					rc = line_u64(b, "modelfs_http_request_duration_seconds_count",
						      l.data, NULL, count);
			}
		}
	}
	cm_buf_free(&l);
	if (rc == 0)
		rc = head(b, "modelfs_http_aborted_total", "counter",
			  "Requests whose connection closed before a response was sent.");
	if (rc == 0)
		rc = cm_buf_printf(b, "modelfs_http_aborted_total %" PRIu64 "\n",
				   (uint64_t)atomic_load(&m->aborted));
	return rc;
}
