/* SPDX-License-Identifier: Apache-2.0 */
/* Handlers for models, versions and metadata (api/handlers_models.c), without HTTP. */
#include <errno.h>
#include <string.h>

#include "apifx.h"

#define CALL(h, body) (apifx_req(&q, &io, f->st, body), apifx_call(api_h_##h, &q, &r))

static void models(void **state)
{
	struct fx *f = *state;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;

	assert_int_equal(CALL(model_create, "{\"name\":\"m-1\"}"), 0);
	assert_int_equal(r.status, 201);
	assert_string_equal(apifx_header_value(&r, "Location"), "/v1/models/m-1");
	assert_string_equal(apifx_str(&r, "name", NULL), "m-1");
	api_resp_clear(&r);
	assert_int_equal(CALL(model_create, "{\"name\":\"m-1\"}"), -EEXIST);
	assert_int_equal(r.status, 409);
	api_resp_clear(&r);
	assert_int_equal(CALL(model_create, "{\"name\":\"M_1\"}"), -EINVAL);
	assert_int_equal(r.status, 422);
	api_resp_clear(&r);
	assert_int_equal(CALL(model_create, "{\"nom\":\"x\"}"), -EBADMSG);
	api_resp_clear(&r);
	assert_int_equal(CALL(model_create, "{\"name\":\"m-2\"}"), 0);
	api_resp_clear(&r);
	assert_int_equal(CALL(model_create, "{\"name\":\"m-3\"}"), 0);
	api_resp_clear(&r);

	/* Pages of two, by name. */
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "limit", "2");
	assert_int_equal(apifx_call(api_h_models_list, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "models")), 2);
	assert_string_equal(apifx_str(&r, "next_cursor", NULL), "m-2");
	assert_false(r.cacheable); /* a page asked for by query is not cached */
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	apifx_arg(&io, "cursor", "m-2");
	assert_int_equal(apifx_call(api_h_models_list, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "models")), 1);
	assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
	api_resp_clear(&r);
	assert_int_equal(CALL(models_list, NULL), 0);
	assert_true(r.cacheable);
	api_resp_clear(&r);

	/* Get, delete. */
	fx_version(f, "m-1", "v1", "model.pkl", "x", NULL);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m-1";
	assert_int_equal(apifx_call(api_h_model_get, &q, &r), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "versions"), "draft")), 1);
	assert_string_equal(apifx_str(&r, "versions", "latest"), "v1");
	assert_true(r.cacheable);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m-1";
	assert_int_equal(apifx_call(api_h_model_delete, &q, &r), -ENOTEMPTY);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m-3";
	assert_int_equal(apifx_call(api_h_model_delete, &q, &r), 0);
	assert_int_equal(r.status, 204);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m-3";
	assert_int_equal(apifx_call(api_h_model_get, &q, &r), -ENOENT);
	assert_int_equal(r.status, 404);
	api_resp_clear(&r);
}

static void versions(void **state)
{
	struct fx *f = *state;
	struct api_req q;
	struct apifx_io io;
	struct api_resp r;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	apifx_req(&q, &io, f->st, "{\"metadata\":{\"git_commit\":\"abcd\",\"validation_status\":\"pending\"}}");
	q.model = "m";
	assert_int_equal(apifx_call(api_h_version_create, &q, &r), 0);
	assert_int_equal(r.status, 201);
	assert_string_equal(apifx_str(&r, "name", NULL), "v1");
	assert_string_equal(apifx_str(&r, "state", NULL), "draft");
	assert_string_equal(apifx_str(&r, "metadata", "git_commit"), "abcd");
	assert_string_equal(apifx_header_value(&r, "Location"), "/v1/models/m/versions/v1");
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, "{\"name\":\"exp\",\"metadata\":[]}");
	q.model = "m";
	assert_int_equal(apifx_call(api_h_version_create, &q, &r), -EBADMSG);
	api_resp_clear(&r);
	fx_write(f->dir, "m/v1/model.pkl", "weights");
	fx_write(f->dir, "m/v1/d/scaler.pkl", "s");

	/* A draft: files from disk without digests, total of their sizes, never cached. */
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_version_get, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "files")), 2);
	assert_int_equal(json_integer_value(json_object_get(r.json, "total_size")), 8);
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(r.json, "files"), 0),
						 "sha256")));
	assert_false(r.cacheable);
	api_resp_clear(&r);

	/* Patch, seal (cacheable afterwards), verify. */
	apifx_req(&q, &io, f->st, "{\"validation_status\":\"passed\",\"notes\":\"ok\"}");
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_metadata_patch, &q, &r), 0);
	assert_string_equal(apifx_str(&r, "validation_status", NULL), "passed");
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, "[]");
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_metadata_patch, &q, &r), -EBADMSG);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_version_verify, &q, &r), -EINVAL);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, "{\"x\":1}");
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_version_seal, &q, &r), -EBADMSG);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_version_seal, &q, &r), 0);
	assert_string_equal(apifx_str(&r, "state", NULL), "sealed");
	assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "files"), 0), "sha256"))), 64);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_version_get, &q, &r), 0);
	assert_true(r.cacheable);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_version_verify, &q, &r), 0);
	assert_true(json_is_true(json_object_get(r.json, "ok")));
	assert_int_equal(json_array_size(json_object_get(r.json, "files")), 2);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, "{\"git_commit\":\"ffff\"}");
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_metadata_patch, &q, &r), -EROFS);
	assert_int_equal(r.status, 409);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	q.version = "v1";
	assert_int_equal(apifx_call(api_h_metadata_get, &q, &r), 0);
	assert_string_equal(apifx_str(&r, "notes", NULL), "ok");
	api_resp_clear(&r);

	/* Lists: filters and cursor. */
	fx_version(f, "m", "v2", NULL);
	fx_version(f, "m", "v3", NULL);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "state", "draft");
	apifx_arg(&io, "limit", "1");
	assert_int_equal(apifx_call(api_h_versions_list, &q, &r), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "versions"), 0), "name")), "v2");
	assert_string_equal(apifx_str(&r, "next_cursor", NULL), "2");
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "validation_status", "passed");
	assert_int_equal(apifx_call(api_h_versions_list, &q, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "versions")), 1);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "m";
	apifx_arg(&io, "state", "frozen");
	assert_int_equal(apifx_call(api_h_versions_list, &q, &r), -EBADMSG);
	api_resp_clear(&r);
	apifx_req(&q, &io, f->st, NULL);
	q.model = "nope";
	assert_int_equal(apifx_call(api_h_versions_list, &q, &r), -ENOENT);
	api_resp_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(models, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(versions, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
