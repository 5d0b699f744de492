/* SPDX-License-Identifier: Apache-2.0 */
/* History, lineage, diff and observations handlers (api/handlers_history.c), without HTTP. */
#include <errno.h>
#include <string.h>

#include "apifx.h"

static void history(void **state)
{
	struct fx *f = *state;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;
	char cursor[32];

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "limit", "2");
	assert_int_equal(apifx_call(api_h_history, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "events"), 0), "kind")), "model.create");
	cm_strlcpy(cursor, apifx_str(&r, "next_cursor", NULL), sizeof(cursor));
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "cursor", cursor);
	assert_int_equal(apifx_call(api_h_history, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 1);
	assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "kind", "version.");
	apifx_arg(&io, "since", "2000-01-01T00:00:00Z");
	apifx_arg(&io, "until", "2999-01-01T00:00:00+02:00");
	assert_int_equal(apifx_call(api_h_history, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 2);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "since", "yesterday");
	assert_int_equal(apifx_call(api_h_history, &q, &r), -EBADMSG);
	assert_non_null(strstr(apifx_str(&r, "error", "message"), "'since'"));
	/* Once, not twice: the message was once written into the buffer it was read from. */
	assert_ptr_equal(strstr(apifx_str(&r, "error", "message"), "query parameter 'since': "),
			 apifx_str(&r, "error", "message"));
	assert_null(strstr(apifx_str(&r, "error", "message") + 1, "query parameter"));
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "ghost";
	assert_int_equal(apifx_call(api_h_history, &q, &r), -ENOENT);
	api_resp_clear(&r);
	/* A deleted model keeps its history. */
	assert_int_equal(reg_model_create(f->st, &fx_actor, "gone", NULL), 0);
	assert_int_equal(reg_model_delete(f->st, &fx_actor, "gone"), 0);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "gone";
	assert_int_equal(apifx_call(api_h_history, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 2);
	api_resp_clear(&r);
}

static void lineage_and_diff(void **state)
{
	struct fx *f = *state;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;
	json_t *a = json_loads("{\"git_commit\":\"abcd1234\",\"training_data_hash\":\"h1\","
			       "\"hyperparameters\":{\"n\":1,\"depth\":3},\"notes\":\"x\"}", 0, NULL);
	json_t *b = json_loads("{\"git_commit\":\"abcd9999\",\"training_data_hash\":\"h1\","
			       "\"hyperparameters\":{\"n\":2,\"depth\":3},\"framework\":\"sklearn\"}", 0, NULL);
	json_t *ch;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "v1", a, NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "v2", b, NULL), 0);
	json_decref(a);
	json_decref(b);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "from", "v1");
	apifx_arg(&io, "to", "v2");
	assert_int_equal(apifx_call(api_h_diff, &q, &r), 0);
	ch = json_object_get(r.json, "changes");
	assert_int_equal(json_array_size(ch), 4);
	/* Sorted by path: framework, git_commit, hyperparameters.n, notes. */
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "op")), "added");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 2), "path")), "hyperparameters.n");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 3), "op")), "removed");
	assert_true(json_is_null(json_object_get(json_array_get(ch, 3), "to")));
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "from", "v1");
	assert_int_equal(apifx_call(api_h_diff, &q, &r), -EBADMSG);
	api_resp_clear(&r);

	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v2";
	assert_int_equal(apifx_call(api_h_lineage_get, &q, &r), 0);
	assert_string_equal(apifx_str(&r, "framework", NULL), "sklearn");
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "git_commit", "abcd");
	assert_int_equal(apifx_call(api_h_lineage_find, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "versions")), 2);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "training_data_hash", "h1");
	apifx_arg(&io, "git_commit", "abcd");
	assert_int_equal(apifx_call(api_h_lineage_find, &q, &r), -EBADMSG);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "git_commit", "");
	assert_int_equal(apifx_call(api_h_lineage_find, &q, &r), -EBADMSG);
	api_resp_clear(&r);
}

static void observations(void **state)
{
	struct fx *f = *state;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;

	fx_version(f, "m", "v1", "a", "1", NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	apifx_req(&q, &io, f->st, "{\"metric\":\"accuracy\",\"value\":0.91}");
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_observation_add, &q, &r), 0);
	assert_int_equal(r.status, 201);
	assert_true(json_real_value(json_object_get(r.json, "value")) == 0.91);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, "{\"metric\":\"accuracy\",\"value\":1}");
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_observation_add, &q, &r), 0);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, "{\"metric\":\"accuracy\",\"value\":\"high\"}");
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_observation_add, &q, &r), -EBADMSG);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	apifx_arg(&io, "limit", "1");
	assert_int_equal(apifx_call(api_h_observations_list, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "observations")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "observations"), 0), "actor")), "tester");
	api_resp_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(history, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(lineage_and_diff, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(observations, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
