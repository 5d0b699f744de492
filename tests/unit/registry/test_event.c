/* SPDX-License-Identifier: Apache-2.0 */
/* The event log: what is recorded, filters, cursor, and that history cannot change. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static void records_actor_channel_before_after(void **state)
{
	struct fx *f = *state;
	struct reg_actor fs = { .channel = "fs", .name = "uid=1000,gid=1000" };
	json_t *ev = NULL, *e;

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	fx_pass(f, "m", "v1");
	fx_pass(f, "m", "v2");
	assert_int_equal(reg_alias_set(f->st, &fs, "m", "current", "v1", NULL, NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fs, "m", "current", "v2", NULL, NULL), 0);
	struct reg_event_filter flt = { .kind = "alias." };
	assert_int_equal(reg_event_list(f->st, "m", &flt, &ev), 0);
	assert_int_equal(json_array_size(ev), 2);
	e = json_array_get(ev, 1);
	assert_string_equal(json_string_value(json_object_get(e, "kind")), "alias.set");
	assert_string_equal(json_string_value(json_object_get(e, "channel")), "fs");
	assert_string_equal(json_string_value(json_object_get(e, "actor")), "uid=1000,gid=1000");
	assert_string_equal(json_string_value(json_object_get(e, "alias")), "current");
	assert_string_equal(json_string_value(json_object_get(e, "before")), "v1");
	assert_string_equal(json_string_value(json_object_get(e, "after")), "v2");
	json_decref(ev);
	/* Metadata changes carry the changed fields before and after. */
	flt = (struct reg_event_filter){ .kind = "metadata.patch" };
	assert_int_equal(reg_event_list(f->st, "m", &flt, &ev), 0);
	assert_int_equal(json_array_size(ev), 2);
	e = json_array_get(ev, 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
							      "validation_status")), "passed");
	assert_true(json_is_null(json_object_get(json_object_get(e, "before"), "validation_status")));
	json_decref(ev);
}

static void cursor_and_time_filters(void **state)
{
	struct fx *f = *state;
	json_t *all = NULL, *page = NULL;
	int64_t count = 0, mid_id;
	struct reg_event_filter flt = { 0 };

	for (int i = 0; i < 5; i++) {
		char name[8];

		snprintf(name, sizeof(name), "v%d", i + 1);
		fx_version(f, "m", name, "a", "x", NULL);
	}
	assert_int_equal(reg_event_list(f->st, "m", NULL, &all), 0);
	assert_int_equal(reg_event_count(f->st, &count), 0);
	assert_int_equal((int64_t)json_array_size(all), count);
	assert_int_equal(count, 6); /* model.create + 5 version.create */
	mid_id = json_integer_value(json_object_get(json_array_get(all, 2), "id"));
	flt.after_id = mid_id;
	flt.limit = 2;
	assert_int_equal(reg_event_list(f->st, "m", &flt, &page), 0);
	assert_int_equal(json_array_size(page), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 0), "id")), mid_id + 1);
	json_decref(page);
	flt = (struct reg_event_filter){ .since_us = cm_time_now_us() + 1000000 };
	assert_int_equal(reg_event_list(f->st, "m", &flt, &page), 0);
	assert_int_equal(json_array_size(page), 0);
	json_decref(page);
	json_decref(all);
}

static void log_is_append_only(void **state)
{
	struct fx *f = *state;
	char err[512];

	fx_version(f, "m", "v1", "a", "1", NULL);
	assert_int_not_equal(fx_sql(f, "UPDATE events SET actor = 'mallory'", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "append-only"));
	assert_int_not_equal(fx_sql(f, "DELETE FROM events", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "append-only"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(records_actor_channel_before_after, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(cursor_and_time_filters, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(log_is_append_only, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
