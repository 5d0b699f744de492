/* SPDX-License-Identifier: Apache-2.0 */
/* Observations (production feedback) and the store summary (registry/observe.c). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "fixture.h"

static void sealed(struct fx *f, const char *m, const char *v)
{
	fx_version(f, m, v, "model.pkl", v, NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, m, v, NULL), 0);
}

static void add_and_list(void **state)
{
	struct fx *f = *state;
	json_t *list = NULL;
	int64_t ts = 0;

	sealed(f, "m", "v1");
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "accuracy", 0.91, &ts), 0);
	assert_true(ts > 0);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "accuracy", 0.83, NULL), 0);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "drift_score", 0.2, NULL), 0);
	assert_int_equal(reg_observation_list(f->st, "m", "v1", NULL, 0, &list), 0);
	assert_int_equal(json_array_size(list), 3);
	json_decref(list);
	assert_int_equal(reg_observation_list(f->st, "m", "v1", "accuracy", 1, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_true(json_real_value(json_object_get(json_array_get(list, 0), "value")) == 0.83);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "actor")),
			    "test");
	json_decref(list);
}

static void refusals(void **state)
{
	struct fx *f = *state;
	int64_t before, after;

	fx_version(f, "m", "draft", NULL);
	sealed(f, "m", "v1");
	assert_int_equal(reg_event_count(f->st, &before), 0);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "draft", "accuracy", 1, NULL),
			 -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "draft"));
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v9", "accuracy", 1, NULL),
			 -ENOENT);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "x", "v1", "accuracy", 1, NULL),
			 -ENOENT);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "Accuracy", 1, NULL),
			 -EINVAL);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "acc-uracy", 1, NULL),
			 -EINVAL);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "", 1, NULL), -EINVAL);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "a", NAN, NULL), -EINVAL);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "a", INFINITY, NULL),
			 -EINVAL);
	/* Observations are not events. */
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "accuracy", 1, NULL), 0);
	assert_int_equal(reg_event_count(f->st, &after), 0);
	assert_int_equal(after, before);
}

static void summary(void **state)
{
	struct fx *f = *state;
	json_t *sum = NULL, *a;

	sealed(f, "m", "v1");
	fx_version(f, "m", "v2", NULL);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "empty", NULL), 0);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "canary", "v1",
				       &(struct reg_alias_opts){ .percent = 25 }, NULL), 0);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "accuracy", 0.9, NULL), 0);
	assert_int_equal(reg_observation_add(f->st, &fx_actor, "m", "v1", "accuracy", 0.8, NULL), 0);
	assert_int_equal(reg_store_summary(f->st, &sum), 0);
	a = json_object_get(sum, "versions");
	assert_int_equal(json_array_size(a), 3); /* empty (no state), m draft, m sealed */
	assert_true(json_is_null(json_object_get(json_array_get(a, 0), "state")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "count")), 0);
	a = json_object_get(sum, "aliases");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "alias")),
			    "canary");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "percent")), 25);
	assert_null(json_object_get(json_array_get(a, 1), "percent"));
	a = json_object_get(sum, "observations");
	assert_int_equal(json_array_size(a), 1);
	assert_true(json_real_value(json_object_get(json_array_get(a, 0), "value")) == 0.8);
	json_decref(sum);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(add_and_list, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(refusals, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(summary, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
