/* SPDX-License-Identifier: Apache-2.0 */
/* Promotion policy: document checks, gate evaluation, and gating through a store. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);

	if (!j)
		fail_msg("bad JSON in the test (%s): %s", jerr.text, text);
	return j;
}

/* ---- reg_policy_check ---- */

static void check_valid(void **state)
{
	static const char *const good[] = {
		"{}",
		"{\"validation_status\": \"passed\"}",
		"{\"validation_status\": null}",
		"{\"validation_status\": \"passed\","
		" \"metrics\": {\"performance_metrics.accuracy\": {\"min\": 0.85},"
		"               \"validation_metrics.latency_ms\": {\"max\": 100},"
		"               \"performance_metrics.f1_score\": {\"min\": 0, \"max\": 1}},"
		" \"max_total_size\": 104857600,"
		" \"required_fields\": [\"git_commit\", \"training_data.start_date\"]}",
		"{\"metrics\": {}, \"required_fields\": [], \"max_total_size\": 0}",
		"{\"max_total_size\": null}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_t *p = load(good[i]);

		cm_err_clear();
		if (reg_policy_check(p) != 0)
			fail_msg("refused %s: %s", good[i], cm_err_msg());
		json_decref(p);
	}
}

static void check_invalid(void **state)
{
	static const struct {
		const char *doc;
		const char *needle;
	} bad[] = {
		{ "[]", "must be a JSON object" },
		{ "\"passed\"", "must be a JSON object" },
		{ "null", "must be a JSON object" },
		{ "{\"min_accuracy\": 0.9}", "unknown policy field 'min_accuracy'" },
		{ "{\"validation_status\": true}", "'validation_status' must be one of passed, pending, failed, or null" },
		{ "{\"validation_status\": [\"passed\"]}", "'validation_status' must be one of passed, pending, failed, or null" },
		{ "{\"validation_status\": \"passd\"}", "'validation_status' must be one of" },
		{ "{\"max_total_size\": -1}", "'max_total_size' must be a non-negative integer" },
		{ "{\"max_total_size\": \"100MB\"}", "'max_total_size' must be a non-negative integer" },
		{ "{\"max_total_size\": 1.5}", "'max_total_size' must be a non-negative integer" },
		{ "{\"required_fields\": \"git_commit\"}", "'required_fields' must be an array" },
		{ "{\"required_fields\": [\"git_commit\", 7]}", "'required_fields' must hold non-empty" },
		{ "{\"required_fields\": [\"\"]}", "'required_fields' must hold non-empty" },
		{ "{\"metrics\": []}", "'metrics' must be an object" },
		{ "{\"metrics\": {\"performance_metrics.accuracy\": 0.85}}",
		  "metric 'performance_metrics.accuracy' must be an object with 'min' and/or 'max'" },
		{ "{\"metrics\": {\"performance_metrics.accuracy\": {}}}",
		  "metric 'performance_metrics.accuracy' must be an object with 'min' and/or 'max'" },
		{ "{\"metrics\": {\"performance_metrics.accuracy\": {\"avg\": 0.85}}}",
		  "metric 'performance_metrics.accuracy' has unknown bound 'avg'" },
		{ "{\"metrics\": {\"performance_metrics.accuracy\": {\"min\": \"0.85\"}}}",
		  "metric 'performance_metrics.accuracy' bound 'min' must be a number" },
		{ "{\"metrics\": {\"x\": {\"min\": 0, \"max\": null}}}",
		  "metric 'x' bound 'max' must be a number" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *p = load(bad[i].doc);
		int rc;

		cm_err_clear();
		rc = reg_policy_check(p);
		if (rc != -EINVAL || !strstr(cm_err_msg(), bad[i].needle))
			fail_msg("%s: rc %d message '%s', expected -EINVAL with '%s'", bad[i].doc, rc,
				 cm_err_msg(), bad[i].needle);
		json_decref(p);
	}
	cm_err_clear();
	assert_int_equal(reg_policy_check(NULL), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "must be a JSON object"));
}

/* ---- reg_policy_eval ---- */

/* Evaluates and checks the failures are exactly `want` (NULL-terminated), in order. */
static void eval_expect(const char *policy, const char *record, int64_t size, ...)
{
	json_t *p = load(policy), *r = load(record);
	json_t *failed = json_array();
	const char *want;
	va_list ap;
	size_t n = 0;
	int rc;

	rc = reg_policy_eval(p, r, size, failed);
	va_start(ap, size);
	while ((want = va_arg(ap, const char *)) != NULL) {
		const char *got = json_string_value(json_array_get(failed, n));

		if (!got || strcmp(got, want))
			fail_msg("policy %s on %s: failure %zu is '%s', expected '%s'", policy, record,
				 n, got ? got : "(none)", want);
		n++;
	}
	va_end(ap);
	if (json_array_size(failed) != n) {
		char *all = json_dumps(failed, JSON_COMPACT);

		fail_msg("policy %s on %s: failures %s, expected %zu", policy, record, all, n);
	}
	assert_int_equal(rc, (int)n);
	/* Without an array, the count is the same. */
	assert_int_equal(reg_policy_eval(p, r, size, NULL), (int)n);
	json_decref(failed);
	json_decref(p);
	json_decref(r);
}

static void eval_validation_status(void **state)
{
	const char *pol = "{\"validation_status\": \"passed\"}";

	(void)state;
	eval_expect(pol, "{\"validation_status\": \"passed\"}", 0, NULL);
	eval_expect(pol, "{}", 0, "validation_status == \"passed\" (is unset)", NULL);
	eval_expect(pol, "{\"validation_status\": \"failed\"}", 0,
		    "validation_status == \"passed\" (is \"failed\")", NULL);
	eval_expect(pol, "{\"validation_status\": \"pending\"}", 0,
		    "validation_status == \"passed\" (is \"pending\")", NULL);
	eval_expect(pol, "{\"validation_status\": null}", 0,
		    "validation_status == \"passed\" (is unset)", NULL);
	/* null or absent: no gate. */
	eval_expect("{\"validation_status\": null}", "{}", 0, NULL);
	eval_expect("{}", "{\"validation_status\": \"failed\"}", 0, NULL);
}

static void eval_metrics(void **state)
{
	const char *min = "{\"metrics\": {\"performance_metrics.accuracy\": {\"min\": 0.85}}}";
	const char *max = "{\"metrics\": {\"validation_metrics.latency_ms\": {\"max\": 100}}}";
	const char *both = "{\"metrics\": {\"performance_metrics.f1_score\": {\"min\": 0.5, \"max\": 0.99}}}";

	(void)state;
	eval_expect(min, "{\"performance_metrics\": {\"accuracy\": 0.8}}", 0,
		    "performance_metrics.accuracy >= 0.85 (is 0.8)", NULL);
	eval_expect(min, "{\"performance_metrics\": {\"accuracy\": 0.85}}", 0, NULL);
	eval_expect(min, "{\"performance_metrics\": {\"accuracy\": 0.97}}", 0, NULL);
	eval_expect(min, "{\"performance_metrics\": {\"accuracy\": 0}}", 0,
		    "performance_metrics.accuracy >= 0.85 (is 0)", NULL);
	/* Unset, null, or not a number: the gate fails. */
	eval_expect(min, "{}", 0, "performance_metrics.accuracy >= 0.85 (is unset)", NULL);
	eval_expect(min, "{\"performance_metrics\": {}}", 0,
		    "performance_metrics.accuracy >= 0.85 (is unset)", NULL);
	eval_expect(min, "{\"performance_metrics\": {\"accuracy\": null}}", 0,
		    "performance_metrics.accuracy >= 0.85 (is unset)", NULL);
	eval_expect(min, "{\"performance_metrics\": {\"accuracy\": \"0.9\"}}", 0,
		    "performance_metrics.accuracy >= 0.85 (is unset)", NULL);
	eval_expect(min, "{\"performance_metrics\": 0.9}", 0,
		    "performance_metrics.accuracy >= 0.85 (is unset)", NULL);

	eval_expect(max, "{\"validation_metrics\": {\"latency_ms\": 120}}", 0,
		    "validation_metrics.latency_ms <= 100 (is 120)", NULL);
	eval_expect(max, "{\"validation_metrics\": {\"latency_ms\": 100}}", 0, NULL);
	eval_expect(max, "{\"validation_metrics\": {\"latency_ms\": 42.5}}", 0, NULL);
	eval_expect(max, "{}", 0, "validation_metrics.latency_ms <= 100 (is unset)", NULL);

	eval_expect(both, "{\"performance_metrics\": {\"f1_score\": 0.7}}", 0, NULL);
	eval_expect(both, "{\"performance_metrics\": {\"f1_score\": 0.2}}", 0,
		    "performance_metrics.f1_score >= 0.5 (is 0.2)", NULL);
	eval_expect(both, "{\"performance_metrics\": {\"f1_score\": 1}}", 0,
		    "performance_metrics.f1_score <= 0.99 (is 1)", NULL);
	eval_expect(both, "{}", 0, "performance_metrics.f1_score >= 0.5 (is unset)",
		    "performance_metrics.f1_score <= 0.99 (is unset)", NULL);
	/* A top-level and a deeper dotted path. */
	eval_expect("{\"metrics\": {\"score\": {\"min\": 1}, \"a.b.c\": {\"max\": 3}}}",
		    "{\"score\": 2, \"a\": {\"b\": {\"c\": 4}}}", 0, "a.b.c <= 3 (is 4)", NULL);
}

static void eval_total_size(void **state)
{
	const char *pol = "{\"max_total_size\": 1048576}";

	(void)state;
	eval_expect(pol, "{}", 1048576, NULL);
	eval_expect(pol, "{}", 0, NULL);
	eval_expect(pol, "{}", 1048577, "total_size <= 1048576 (is 1048577)", NULL);
	eval_expect("{\"max_total_size\": 0}", "{}", 1, "total_size <= 0 (is 1)", NULL);
	eval_expect("{\"max_total_size\": 10000000000}", "{}", 10000000001LL,
		    "total_size <= 10000000000 (is 10000000001)", NULL);
}

static void eval_required_fields(void **state)
{
	const char *pol = "{\"required_fields\": [\"git_commit\", \"training_data.start_date\"]}";

	(void)state;
	eval_expect(pol, "{\"git_commit\": \"abcd\", \"training_data\": {\"start_date\": \"2026-01-01\"}}",
		    0, NULL);
	eval_expect(pol, "{}", 0, "required git_commit", "required training_data.start_date", NULL);
	eval_expect(pol, "{\"git_commit\": \"abcd\", \"training_data\": {}}", 0,
		    "required training_data.start_date", NULL);
	/* An empty string or null counts as missing; other values, even 0 or {}, are present. */
	eval_expect(pol, "{\"git_commit\": \"\", \"training_data\": {\"start_date\": null}}", 0,
		    "required git_commit", "required training_data.start_date", NULL);
	eval_expect("{\"required_fields\": [\"n\", \"o\", \"f\"]}",
		    "{\"n\": 0, \"o\": {}, \"f\": false}", 0, NULL);
}

static void eval_everything_at_once(void **state)
{
	const char *pol = "{\"validation_status\": \"passed\","
			  " \"metrics\": {\"performance_metrics.accuracy\": {\"min\": 0.85}},"
			  " \"max_total_size\": 100,"
			  " \"required_fields\": [\"git_commit\"]}";

	(void)state;
	eval_expect(pol, "{\"validation_status\": \"passed\", \"git_commit\": \"abcd\","
		    " \"performance_metrics\": {\"accuracy\": 0.9}}", 100, NULL);
	eval_expect(pol, "{\"validation_status\": \"pending\","
		    " \"performance_metrics\": {\"accuracy\": 0.5}}", 101,
		    "validation_status == \"passed\" (is \"pending\")",
		    "performance_metrics.accuracy >= 0.85 (is 0.5)",
		    "total_size <= 100 (is 101)",
		    "required git_commit", NULL);
	/* An empty policy passes anything. */
	eval_expect("{}", "{}", 1LL << 40, NULL);
}

/* ---- through a store ---- */

static void store_policy_round_trip(void **state)
{
	struct fx *f = *state;
	const char *text = "{\"validation_status\": \"passed\","
			   " \"metrics\": {\"performance_metrics.accuracy\": {\"min\": 0.85}},"
			   " \"max_total_size\": 104857600,"
			   " \"required_fields\": [\"git_commit\"]}";
	json_t *want = load(text);
	json_t *got = NULL, *bad;
	int64_t before, after;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	/* A new model starts with the default policy. */
	assert_int_equal(reg_policy_get(f->st, "m", &got), 0);
	assert_string_equal(json_string_value(json_object_get(got, "validation_status")), "passed");
	assert_int_equal(json_object_size(got), 1);
	json_decref(got);
	got = NULL;

	assert_int_equal(reg_event_count(f->st, &before), 0);
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", want, NULL), 0);
	assert_int_equal(reg_event_count(f->st, &after), 0);
	assert_int_equal(after, before + 1);
	assert_int_equal(reg_policy_get(f->st, "m", &got), 0);
	assert_true(json_equal(got, want));
	json_decref(got);
	got = NULL;

	/* An invalid policy is refused with its reason and leaves the old one. */
	bad = load("{\"metrics\": {\"performance_metrics.accuracy\": {\"avg\": 0.9}}}");
	cm_err_clear();
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", bad, NULL), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "unknown bound 'avg'"));
	json_decref(bad);
	bad = load("{\"validation_status\": \"passed\", \"extra\": 1}");
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", bad, NULL), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "unknown policy field 'extra'"));
	json_decref(bad);
	assert_int_equal(reg_event_count(f->st, &after), 0);
	assert_int_equal(after, before + 1);
	assert_int_equal(reg_policy_get(f->st, "m", &got), 0);
	assert_true(json_equal(got, want));
	json_decref(got);
	got = NULL;

	/* It survives a reopen. */
	fx_reopen(f);
	assert_int_equal(reg_policy_get(f->st, "m", &got), 0);
	assert_true(json_equal(got, want));
	json_decref(got);
	got = NULL;

	/* No such model. */
	got = (json_t *)0x1;
	assert_int_equal(reg_policy_get(f->st, "nope", &got), -ENOENT);
	assert_ptr_equal(got, (json_t *)0x1);
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "nope", want, NULL), -ENOENT);
	json_decref(want);
}

static void store_promotion_gated(void **state)
{
	struct fx *f = *state;
	json_t *policy = load("{\"validation_status\": \"passed\","
			      " \"metrics\": {\"performance_metrics.accuracy\": {\"min\": 0.85}}}");
	json_t *meta = load("{\"validation_status\": \"passed\","
			    " \"performance_metrics\": {\"accuracy\": 0.8}}");
	json_t *failed = json_array();
	struct reg_alias_opts o = { .percent = -1, .failed_gates = failed };
	struct reg_alias a;
	struct reg_version v;
	json_t *patch;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "fraud", NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "fraud", "v1", meta, NULL), 0);
	fx_write(f->dir, "fraud/v1/model.pkl", "weights");
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "fraud", policy, NULL), 0);

	cm_err_clear();
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "fraud", "current", "v1", &o, &a), -EPERM);
	assert_non_null(strstr(cm_err_msg(), "performance_metrics.accuracy >= 0.85 (is 0.8)"));
	/* Only the failed gate is named: validation_status passed. */
	assert_null(strstr(cm_err_msg(), "validation_status"));
	assert_int_equal(json_array_size(failed), 1);
	assert_string_equal(json_string_value(json_array_get(failed, 0)),
			    "performance_metrics.accuracy >= 0.85 (is 0.8)");
	assert_int_equal(reg_alias_get(f->st, "fraud", "current", &a), -ENOENT);
	assert_null(fx_readlink(f->dir, "fraud/current"));
	assert_int_equal(reg_version_get(f->st, "fraud", "v1", &v), 0);
	assert_int_equal(v.state, REG_DRAFT);
	/* canary is gated the same way; a free-form alias is not. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "fraud", "canary", "v1", NULL, NULL), -EPERM);
	assert_non_null(strstr(cm_err_msg(), "performance_metrics.accuracy >= 0.85 (is 0.8)"));

	/* Once the draft's accuracy clears the bar, the same promotion goes through. */
	patch = load("{\"performance_metrics\": {\"accuracy\": 0.9}}");
	assert_int_equal(reg_version_metadata_patch(f->st, &fx_actor, "fraud", "v1", patch), 0);
	json_decref(patch);
	json_array_clear(failed);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "fraud", "current", "v1", &o, &a), 0);
	assert_string_equal(a.version, "v1");
	assert_int_equal(json_array_size(failed), 0);
	assert_string_equal(fx_readlink(f->dir, "fraud/current"), "v1");

	json_decref(failed);
	json_decref(meta);
	json_decref(policy);
}

/* A weaker policy lets through what the default would refuse. */
static void store_policy_null_status(void **state)
{
	struct fx *f = *state;
	json_t *policy = load("{\"validation_status\": null}");

	fx_version(f, "m", "v1", "model.pkl", "x", NULL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), -EPERM);
	assert_non_null(strstr(cm_err_msg(), "validation_status == \"passed\" (is unset)"));
	/* Removing the gate needs force with a reason. */
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", policy, NULL), -EPERM);
	assert_non_null(strstr(cm_err_msg(), "validation_status == \"passed\" removed"));
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", policy,
					&(struct reg_policy_opts){ .force = 1 }), -EINVAL);
	assert_int_equal(reg_policy_set(f->st, &fx_actor, "m", policy,
					&(struct reg_policy_opts){ .force = 1, .reason = "r" }), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	json_decref(policy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_valid),
		cmocka_unit_test(check_invalid),
		cmocka_unit_test(eval_validation_status),
		cmocka_unit_test(eval_metrics),
		cmocka_unit_test(eval_total_size),
		cmocka_unit_test(eval_required_fields),
		cmocka_unit_test(eval_everything_at_once),
		cmocka_unit_test_setup_teardown(store_policy_round_trip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(store_promotion_gated, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(store_policy_null_status, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
