/* SPDX-License-Identifier: Apache-2.0 */
/* Refusals: one record per refusal, the rule named, per-actor rate, the kept window. */
#include <errno.h>
#include <string.h>

#include "fixture.h"

static struct reg_actor uid_actor(uid_t uid, char *buf, size_t n)
{
	struct reg_actor a = { .channel = "fs", .kind = REG_ACTOR_UID, .uid = uid, .gid = uid };

	snprintf(buf, n, "uid=%u,gid=%u,pid=1", (unsigned)uid, (unsigned)uid);
	a.name = buf;
	return a;
}

static json_t *list(struct fx *f, const struct reg_refusal_filter *flt)
{
	json_t *out = NULL;

	assert_int_equal(reg_refusal_list(f->st, flt, &out), 0);
	return out;
}

static void recorded_with_rule_and_event(void **state)
{
	struct fx *f = *state;
	struct reg_refusal_filter flt = { .uid = 1000 };
	char buf[64];
	struct reg_actor a = uid_actor(1000, buf, sizeof(buf));
	struct reg_refusal r = { .op = "mkdir", .model = "Bad_Name", .err = EINVAL };
	json_t *l, *ev = NULL;

	cm_err_set(-EINVAL, "model name 'Bad_Name' may only hold lowercase letters");
	assert_int_equal(reg_refusal_record(f->st, &a, &r), 1);
	/* The caller's message is kept for its own answer. */
	assert_string_equal(cm_err_msg(), "model name 'Bad_Name' may only hold lowercase letters");
	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	cm_err_set(-EBUSY, "version m/v1 is the target of alias 'current'");
	r = (struct reg_refusal){ .op = "rmdir", .model = "m", .version = "v1", .err = EBUSY };
	assert_int_equal(reg_refusal_record(f->st, &a, &r), 1);
	l = list(f, &flt);
	assert_int_equal(json_array_size(l), 2);
	/* Newest first; a model that exists has the event, a bad name has none. */
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "rule")),
			    "aliased");
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "errno")),
			    "EBUSY");
	assert_true(json_is_integer(json_object_get(json_array_get(l, 0), "event_id")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "rule")), "name");
	assert_true(json_is_null(json_object_get(json_array_get(l, 1), "event_id")));
	json_decref(l);
	struct reg_event_filter ef = { .kind = "refused" };
	assert_int_equal(reg_event_list(f->st, "m", &ef, &ev), 0);
	assert_int_equal(json_array_size(ev), 1);
	json_decref(ev);
	/* Another uid's filter sees none of them; the model filter finds one. */
	flt.uid = 1001;
	l = list(f, &flt);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);
	flt = (struct reg_refusal_filter){ .uid = -1, .model = "m" };
	l = list(f, &flt);
	assert_int_equal(json_array_size(l), 1);
	json_decref(l);
	/* A refusal event leaves the generated files as they are. */
	assert_int_equal(fx_fsck(f), 0);
}

static void gate_recorded_once(void **state)
{
	struct fx *f = *state;
	struct reg_refusal_filter flt = { .uid = -1, .model = "m" };
	struct reg_alias_opts o = { .percent = -1, .failed_gates = json_array() };
	struct reg_refusal r = { .op = "POST /v1/models/{model}/promote", .model = "m",
				 .err = EPERM, .status = 409, .code = "gate_refused" };
	json_t *l;

	fx_version(f, "m", "v1", "a", "1", NULL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", &o, NULL), -EPERM);
	/* The adapter's call for the same failure adds its status, not a second record. */
	r.failed_gates = o.failed_gates;
	assert_int_equal(reg_refusal_record(f->st, &fx_actor, &r), 0);
	l = list(f, &flt);
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "rule")), "gate");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "status")), 409);
	assert_int_equal(json_array_size(json_object_get(json_array_get(l, 0), "failed_gates")), 1);
	json_decref(l);
	json_decref(o.failed_gates);
}

static void flood_is_bounded(void **state)
{
	struct fx *f = *state;
	struct reg_refusal_filter flt = { .uid = 7, .limit = 1000 };
	char buf[64];
	struct reg_actor a = uid_actor(7, buf, sizeof(buf));
	struct reg_refusal r = { .op = "mkdir", .err = EINVAL, .message = "bad name" };
	int stored = 0;
	json_t *l;

	for (int i = 0; i < REG_REFUSAL_BURST + 50; i++) {
		int rc = reg_refusal_record(f->st, &a, &r);

		assert_true(rc == 0 || rc == 1);
		stored += rc;
	}
	assert_in_range(stored, REG_REFUSAL_BURST, REG_REFUSAL_BURST + 10);
	assert_true(reg_refusals_dropped(f->st) >= 40);
	l = list(f, &flt);
	assert_int_equal(json_array_size(l), (size_t)stored);
	json_decref(l);
	/* Another actor has a bucket of its own. */
	a = uid_actor(8, buf, sizeof(buf));
	assert_int_equal(reg_refusal_record(f->st, &a, &r), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(recorded_with_rule_and_event, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(gate_recorded_once, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(flood_is_bounded, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
