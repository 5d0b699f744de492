/* SPDX-License-Identifier: Apache-2.0 */
/* Aliases: promotion, gates, CAS, rollback, canary, and their disk view. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"

static void promote_and_rollback(void **state)
{
	struct fx *f = *state;
	struct reg_alias a;

	fx_version(f, "anomaly-detector", "v1", "model.pkl", "one", NULL);
	fx_version(f, "anomaly-detector", "v2", "model.pkl", "two", NULL);
	fx_pass(f, "anomaly-detector", "v1");
	fx_pass(f, "anomaly-detector", "v2");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "anomaly-detector", "current", "v1", NULL, &a), 0);
	assert_string_equal(a.version, "v1");
	assert_string_equal(fx_readlink(f->dir, "anomaly-detector/current"), "v1");
	/* v1 was a draft: pointing an alias at it sealed it. */
	struct reg_version v;
	assert_int_equal(reg_version_get(f->st, "anomaly-detector", "v1", &v), 0);
	assert_int_equal(v.state, REG_SEALED);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "anomaly-detector", "current", "v2", NULL, &a), 0);
	assert_string_equal(fx_readlink(f->dir, "anomaly-detector/current"), "v2");
	assert_int_equal(reg_alias_rollback(f->st, &fx_actor, "anomaly-detector", "current", NULL, &a), 0);
	assert_string_equal(a.version, "v1");
	assert_string_equal(fx_readlink(f->dir, "anomaly-detector/current"), "v1");
	assert_int_equal(fx_fsck(f), 0);
}

static void gate_refusal_named_and_recorded(void **state)
{
	struct fx *f = *state;
	json_t *failed = json_array();
	struct reg_alias_opts o = { .percent = -1, .failed_gates = failed };
	json_t *ev = NULL;
	struct reg_version v;

	fx_version(f, "m", "v1", "model.pkl", "x", NULL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", &o, NULL), -EPERM);
	assert_non_null(strstr(cm_err_msg(), "validation_status == \"passed\""));
	assert_int_equal(json_array_size(failed), 1);
	/* Refused: still a draft, no symlink, and the refusal is in the log. */
	assert_int_equal(reg_version_get(f->st, "m", "v1", &v), 0);
	assert_int_equal(v.state, REG_DRAFT);
	assert_null(fx_readlink(f->dir, "m/current"));
	struct reg_event_filter flt = { .kind = "refused" };
	assert_int_equal(reg_event_list(f->st, "m", &flt, &ev), 0);
	assert_int_equal(json_array_size(ev), 1);
	json_decref(ev);
	json_decref(failed);
	/* A free-form alias is not gated. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v1", NULL, NULL), 0);
	assert_string_equal(fx_readlink(f->dir, "m/staging"), "v1");
}

static void cas_conflict(void **state)
{
	struct fx *f = *state;
	struct reg_alias_opts o = { .percent = -1, .expected = "v9" };

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", &o, NULL), -ESTALE);
	o.expected = "";
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", &o, NULL), 0);
	o.expected = "";
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", &o, NULL), -ESTALE);
	assert_non_null(strstr(cm_err_msg(), "expected it unset"));
}

static void canary_flow(void **state)
{
	struct fx *f = *state;
	struct reg_alias_opts o = { .percent = 50 };
	struct reg_alias a;

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	fx_pass(f, "m", "v1");
	fx_pass(f, "m", "v2");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "canary", "v2", &o, &a), 0);
	assert_int_equal(a.percent, 50);
	o.percent = 101;
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "canary", "v2", &o, NULL), -EINVAL);
	assert_int_equal(reg_canary_promote(f->st, &fx_actor, "m", NULL, &a), 0);
	assert_string_equal(a.version, "v2");
	assert_int_equal(reg_alias_get(f->st, "m", "canary", &a), -ENOENT);
	assert_null(fx_readlink(f->dir, "m/canary"));
	assert_string_equal(fx_readlink(f->dir, "m/current"), "v2");
	assert_int_equal(fx_fsck(f), 0);
}

static void force_needs_reason(void **state)
{
	struct fx *f = *state;
	struct reg_alias_opts o = { .percent = -1, .force = 1 };

	fx_version(f, "m", "v1", "a", "1", NULL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", &o, NULL), -EINVAL);
	o.reason = "hotfix approved by on-call";
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", &o, NULL), 0);
}

static void alias_as_of(void **state)
{
	struct fx *f = *state;
	struct reg_alias a;
	int64_t t0, t1;

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	fx_pass(f, "m", "v1");
	fx_pass(f, "m", "v2");
	t0 = cm_time_now_us();
	assert_int_equal(reg_alias_at(f->st, "m", "current", t0, &a), -ENOENT);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	t1 = cm_time_now_us();
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v2", NULL, NULL), 0);
	assert_int_equal(reg_alias_at(f->st, "m", "current", t1, &a), 0);
	assert_string_equal(a.version, "v1");
	assert_int_equal(reg_alias_at(f->st, "m", "current", cm_time_now_us(), &a), 0);
	assert_string_equal(a.version, "v2");
}

static void bad_targets(void **state)
{
	struct fx *f = *state;

	fx_version(f, "m", "v1", "a", "1", NULL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "nope", NULL, NULL), -ENOENT);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "../x", "v1", NULL, NULL), -EINVAL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "other", "current", "v1", NULL, NULL), -ENOENT);
	assert_int_equal(reg_alias_delete(f->st, &fx_actor, "m", "staging", NULL), -ENOENT);
	assert_int_equal(reg_alias_rollback(f->st, &fx_actor, "m", "current", NULL, NULL), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(promote_and_rollback, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(gate_refusal_named_and_recorded, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(cas_conflict, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(canary_flow, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(force_needs_reason, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(alias_as_of, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(bad_targets, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
