/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox (registry/outbox.c): matching, order, leases, backoff, state, observers. */
#include <errno.h>
#include <string.h>

#include "fixture.h"

static json_t *strs(const char *a, const char *b)
{
	json_t *arr = json_array();

	if (a)
		json_array_append_new(arr, json_string(a));
	if (b)
		json_array_append_new(arr, json_string(b));
	return arr;
}

static int64_t sub_add(struct fx *f, const char *kind, const char *model)
{
	json_t *kinds = strs(kind, NULL), *models = model ? strs(model, NULL) : NULL, *out = NULL;
	int64_t id;

	assert_int_equal(reg_outbox_sub_add(f->st, &fx_actor, "webhook", "http://127.0.0.1:1/h",
					    "secret", kinds, models, &out), 0);
	assert_null(json_object_get(out, "secret"));
	id = json_integer_value(json_object_get(out, "id"));
	json_decref(kinds);
	json_decref(models);
	json_decref(out);
	return id;
}

static void spec_refused(void **state)
{
	struct fx *f = *state;
	json_t *k = strs("a*b", NULL), *all = strs("*", NULL), *star = strs("m*", NULL), *out = NULL;

	assert_int_equal(reg_outbox_sub_add(f->st, &fx_actor, "webhook", "ftp://x", "s", all, NULL,
					    &out), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "http"));
	assert_int_equal(reg_outbox_sub_add(f->st, &fx_actor, "webhook", "http://x", NULL, all, NULL,
					    &out), -EINVAL);
	assert_int_equal(reg_outbox_sub_add(f->st, &fx_actor, "webhook", "http://x", "s", k, NULL,
					    &out), -EINVAL);
	assert_int_equal(reg_outbox_sub_add(f->st, &fx_actor, "webhook", "http://x", "s", all, star,
					    &out), -EINVAL);
	json_decref(k);
	json_decref(all);
	json_decref(star);
}

static int told;
static void observe(void *ctx)
{
	(void)ctx;
	told++;
}

static void claim_order_lease_backoff(void **state)
{
	struct fx *f = *state;
	struct reg_outbox_item *a = NULL, *b = NULL, *again = NULL;
	int64_t sub, other, next = 0;
	json_t *st = NULL;

	sub = sub_add(f, "model.*", "m");
	other = sub_add(f, "model.create", NULL);
	assert_int_equal(reg_store_observer_add(f->st, observe, NULL), 0);
	told = 0;
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "n", NULL), 0);
	assert_int_equal(told, 2);
	reg_store_observer_remove(f->st, observe, NULL);
	/* "m" matches both; "n" only the second subscriber (all models). */
	assert_int_equal(reg_outbox_claim(f->st, sub, 1000000, &a, &next), 1);
	assert_string_equal(json_string_value(json_object_get(a->event, "model")), "m");
	assert_string_equal(json_string_value(json_object_get(a->event, "kind")), "model.create");
	/* Leased: nothing else of this subscriber is claimable, not even later items. */
	assert_int_equal(reg_outbox_claim(f->st, sub, 1000000, &again, &next), 0);
	assert_true(next > 0);
	/* Fail: due again after the backoff; a second failure waits longer. */
	assert_int_equal(reg_outbox_fail(f->st, a, 503, "the receiver answered HTTP 503"), 0);
	assert_int_equal(reg_outbox_fail(f->st, a, 503, "again"), -ESTALE);
	assert_int_equal(reg_outbox_claim(f->st, sub, 1000000, &again, &next), 0);
	assert_true(next > cm_time_now_us() + 100000);
	assert_int_equal(reg_outbox_state(f->st, sub, NULL, 10, &st), 0);
	{
		json_t *s = json_array_get(json_object_get(st, "subscribers"), 0);

		assert_int_equal(json_integer_value(json_object_get(s, "pending")), 1);
		assert_int_equal(json_integer_value(json_object_get(s, "failing")), 1);
		assert_int_equal(json_integer_value(json_object_get(s, "last_status")), 503);
		assert_string_equal(json_string_value(json_object_get(s, "last_error")),
				    "the receiver answered HTTP 503");
		assert_int_equal(json_array_size(json_object_get(s, "items")), 1);
	}
	json_decref(st);
	/* The other subscriber is not held up: it gets m, then n, in order. */
	assert_int_equal(reg_outbox_claim(f->st, other, 1000000, &b, &next), 1);
	assert_string_equal(json_string_value(json_object_get(b->event, "model")), "m");
	assert_int_equal(reg_outbox_complete(f->st, b, 204), 0);
	assert_int_equal(reg_outbox_complete(f->st, b, 204), -ESTALE);
	reg_outbox_item_free(b);
	assert_int_equal(reg_outbox_claim(f->st, other, 1000000, &b, &next), 1);
	assert_string_equal(json_string_value(json_object_get(b->event, "model")), "n");
	/* A restart releases leases: the same item is claimed again. */
	assert_int_equal(reg_outbox_leases_release(f->st), 1);
	assert_int_equal(reg_outbox_claim(f->st, other, 1000000, &again, &next), 1);
	assert_int_equal(again->event_id, b->event_id);
	assert_int_equal(reg_outbox_complete(f->st, b, 200), -ESTALE);
	assert_int_equal(reg_outbox_complete(f->st, again, 200), 0);
	reg_outbox_item_free(again);
	reg_outbox_item_free(b);
	assert_int_equal(reg_outbox_claim(f->st, other, 1000000, &b, &next), 0);
	assert_int_equal(next, 0);
	reg_outbox_item_free(a);
	/* Deleting drops the open items. */
	assert_int_equal(reg_outbox_sub_delete(f->st, &fx_actor, sub), 0);
	assert_int_equal(reg_outbox_sub_delete(f->st, &fx_actor, sub), -ENOENT);
	assert_int_equal(reg_outbox_claim(f->st, sub, 1000000, &a, &next), 0);
	{
		int64_t p = -1, fl = -1, old = -1;

		assert_int_equal(reg_outbox_totals(f->st, &p, &fl, &old), 0);
		assert_int_equal(p, 0);
		assert_int_equal(fl, 0);
	}
}

/* An event that rolls back queues nothing. */
static void rollback_queues_nothing(void **state)
{
	struct fx *f = *state;
	struct reg_outbox_item *a = NULL;
	int64_t sub, next;

	sub = sub_add(f, "*", NULL);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), -EEXIST);
	assert_int_equal(reg_outbox_claim(f->st, sub, 1000000, &a, &next), 1);
	assert_int_equal(reg_outbox_complete(f->st, a, 200), 0);
	reg_outbox_item_free(a);
	assert_int_equal(reg_outbox_claim(f->st, sub, 1000000, &a, &next), 0);
}

/* The weekly schedule fires once per slot, never for a slot before the rules were set. */
static void trigger_schedule(void **state)
{
	struct fx *f = *state;
	json_t *spec = json_pack("{s:{s:i s:i}}", "schedule", "weekday", 1, "hour", 3), *out = NULL;
	json_t *bad = json_pack("{s:{s:i s:i}}", "schedule", "weekday", 9, "hour", 3);
	int64_t now = cm_time_now_us(), before, after;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_trigger_set(f->st, &fx_actor, "m", bad, &out), -EINVAL);
	assert_int_equal(reg_trigger_set(f->st, &fx_actor, "nope", spec, &out), -ENOENT);
	assert_int_equal(reg_trigger_set(f->st, &fx_actor, "m", spec, &out), 0);
	json_decref(out);
	assert_int_equal(reg_event_count(f->st, &before), 0);
	assert_int_equal(reg_trigger_tick(f->st, now), 0);
	assert_int_equal(reg_trigger_tick(f->st, now + 8LL * 86400 * 1000000), 1);
	assert_int_equal(reg_trigger_tick(f->st, now + 8LL * 86400 * 1000000 + 60000000), 0);
	assert_int_equal(reg_trigger_tick(f->st, now + 15LL * 86400 * 1000000), 1);
	assert_int_equal(reg_event_count(f->st, &after), 0);
	assert_int_equal(after - before, 2);
	json_decref(spec);
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(spec_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(claim_order_lease_backoff, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(rollback_queues_nothing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(trigger_schedule, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
