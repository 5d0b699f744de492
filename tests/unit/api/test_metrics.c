/* SPDX-License-Identifier: Apache-2.0 */
/* Request histograms, the event tally and the Prometheus text (api/metrics.c). */
#include <errno.h>
#include <string.h>

#include "apifx.h"

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, line, n) && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

#define assert_line(text, line)                                                  \
	do {                                                                     \
		if (!has_line(text, line))                                       \
			fail_msg("no line '%s' in:\n%.2000s", line, text);       \
	} while (0)

static void http(void **state)
{
	struct api_metrics m;
	struct cm_buf b = { 0 };

	assert_int_equal(api_metrics_init(&m, api_routes_count), 0);
	api_metrics_observe(&m, 4, 200, 100);     /* GET /v1/models */
	api_metrics_observe(&m, 4, 200, 3000);
	api_metrics_observe(&m, 4, 404, 20000000); /* past the last bucket */
	api_metrics_observe(&m, -1, 404, 50);
	api_metrics_observe(&m, 5, 299, 10);      /* a status without a slot */
	atomic_fetch_add(&m.aborted, 2);
	assert_int_equal(api_metrics_render_http(&m, &b), 0);
	assert_line(b.data, "modelfs_http_requests_total{route=\"/v1/models\",method=\"GET\",code=\"200\"} 2");
	assert_line(b.data, "modelfs_http_requests_total{route=\"unmatched\",method=\"any\",code=\"404\"} 1");
	assert_line(b.data, "modelfs_http_requests_total{route=\"/v1/models\",method=\"POST\",code=\"other\"} 1");
	assert_line(b.data, "modelfs_http_request_duration_seconds_bucket{route=\"/v1/models\",method=\"GET\",code=\"200\",le=\"0.00025\"} 1");
	assert_line(b.data, "modelfs_http_request_duration_seconds_bucket{route=\"/v1/models\",method=\"GET\",code=\"200\",le=\"0.005\"} 2");
	assert_line(b.data, "modelfs_http_request_duration_seconds_bucket{route=\"/v1/models\",method=\"GET\",code=\"404\",le=\"10\"} 0");
	assert_line(b.data, "modelfs_http_request_duration_seconds_bucket{route=\"/v1/models\",method=\"GET\",code=\"404\",le=\"+Inf\"} 1");
	assert_line(b.data, "modelfs_http_request_duration_seconds_sum{route=\"/v1/models\",method=\"GET\",code=\"200\"} 0.003100");
	assert_line(b.data, "modelfs_http_request_duration_seconds_count{route=\"/v1/models\",method=\"GET\",code=\"200\"} 2");
	assert_line(b.data, "modelfs_http_aborted_total 2");
	assert_line(b.data, "# TYPE modelfs_http_request_duration_seconds histogram");
	cm_buf_free(&b);
	api_metrics_destroy(&m);
}

static void store(void **state)
{
	struct api_metrics m;
	struct cm_buf b = { 0 };
	json_t *ev = json_loads(
		"[{\"id\":1,\"kind\":\"alias.set\",\"model\":\"m\",\"alias\":\"current\",\"detail\":{}},"
		" {\"id\":2,\"kind\":\"alias.set\",\"model\":\"m\",\"alias\":\"current\",\"detail\":{\"via\":\"rollback\"}},"
		" {\"id\":3,\"kind\":\"alias.set\",\"model\":\"m\",\"alias\":\"staging\",\"detail\":null},"
		" {\"id\":4,\"kind\":\"refused\",\"model\":\"n\",\"alias\":\"canary\",\"detail\":{\"rule\":\"gate\"}},"
		" {\"id\":5,\"kind\":\"alias.set\",\"model\":\"m\",\"alias\":\"current\",\"detail\":{\"via\":\"canary.promote\"}}]",
		0, NULL);
	json_t *sum = json_loads(
		"{\"versions\":[{\"model\":\"e\",\"state\":null,\"count\":0},"
		"               {\"model\":\"m\",\"state\":\"sealed\",\"count\":3}],"
		" \"aliases\":[{\"model\":\"m\",\"alias\":\"canary\",\"version\":\"v3\",\"percent\":10},"
		"              {\"model\":\"m\",\"alias\":\"current\",\"version\":\"v2\"}],"
		" \"observations\":[{\"model\":\"m\",\"version\":\"v2\",\"metric\":\"accuracy\",\"value\":0.83},"
		"                   {\"model\":\"m\",\"version\":\"v2\",\"metric\":\"drift\",\"value\":1e-7},"
		"                   {\"model\":\"m\",\"version\":\"v3\",\"metric\":\"accuracy\",\"value\":0.9}]}",
		0, NULL);

	assert_non_null(ev);
	assert_non_null(sum);
	assert_int_equal(api_metrics_init(&m, api_routes_count), 0);
	api_metrics_tally(&m, ev);
	assert_int_equal(m.last_event, 5);
	assert_int_equal(api_metrics_render_store(&m, sum, &b), 0);
	assert_line(b.data, "modelfs_versions{model=\"m\",state=\"sealed\"} 3");
	assert_null(strstr(b.data, "model=\"e\""));
	assert_line(b.data, "modelfs_alias_info{model=\"m\",alias=\"canary\",version=\"v3\"} 1");
	assert_line(b.data, "modelfs_canary_traffic_percent{model=\"m\",version=\"v3\"} 10");
	assert_line(b.data, "modelfs_promotions_total{model=\"m\"} 2");
	assert_line(b.data, "modelfs_rollbacks_total{model=\"m\"} 1");
	assert_line(b.data, "modelfs_gate_refusals_total{model=\"n\"} 1");
	assert_line(b.data, "modelfs_gate_refusals_total{model=\"m\"} 0");
	assert_line(b.data, "model_prediction_accuracy{model=\"m\",version=\"v2\"} 0.83");
	assert_line(b.data, "model_prediction_accuracy{model=\"m\",version=\"v3\"} 0.9");
	assert_line(b.data, "model_prediction_drift{model=\"m\",version=\"v2\"} 1e-07");
	/* One TYPE line per family. */
	{
		const char *first = strstr(b.data, "# TYPE model_prediction_accuracy gauge");

		assert_non_null(first);
		assert_null(strstr(first + 1, "# TYPE model_prediction_accuracy gauge"));
	}
	cm_buf_free(&b);
	json_decref(ev);
	json_decref(sum);
	api_metrics_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http),
		cmocka_unit_test(store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
