/* SPDX-License-Identifier: Apache-2.0 */
/* Argument and body checks, roles and response building (api/request.c). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "apifx.h"

static void methods_and_roles(void **state)
{
	enum api_role r;

	assert_int_equal(api_method_parse("PATCH"), API_PATCH);
	assert_int_equal(api_method_parse("patch"), 0);
	assert_int_equal(api_method_parse("OPTIONS"), 0);
	assert_string_equal(api_method_name(API_DELETE), "DELETE");
	assert_string_equal(api_method_name(API_GET | API_POST), "?");
	assert_int_equal(api_role_parse("writer", &r), 0);
	assert_int_equal(r, API_ROLE_WRITER);
	assert_int_equal(api_role_parse("root", &r), -EINVAL);
	assert_string_equal(api_role_name(API_ROLE_ADMIN), "admin");
}

static void args(void **state)
{
	struct api_req q;
	struct apifx_io io;
	long long v = 0;

	apifx_req(&q, &io, NULL, NULL);
	apifx_arg(&io, "limit", "25");
	apifx_arg(&io, "bad", "2x");
	apifx_arg(&io, "big", "5000");
	apifx_arg(&io, "empty", "");
	apifx_header(&io, "X-Thing", "yes");
	assert_int_equal(api_arg_int(&q, "limit", 100, 1, 1000, &v), 0);
	assert_int_equal(v, 25);
	assert_int_equal(api_arg_int(&q, "absent", 100, 1, 1000, &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(api_arg_int(&q, "empty", 7, 1, 1000, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(api_arg_int(&q, "bad", 100, 1, 1000, &v), -EBADMSG);
	assert_non_null(strstr(cm_err_msg(), "'bad'"));
	assert_int_equal(api_arg_int(&q, "big", 100, 1, 1000, &v), -EBADMSG);
	assert_string_equal(api_header(&q, "x-thing"), "yes");
	assert_null(api_arg(&q, "x-thing"));
	q.lookup = NULL;
	assert_null(api_arg(&q, "limit"));
}

static const struct api_field fields[] = {
	{ "name", API_F_STRING, 1 },       { "expected", API_F_STRING_OR_NULL, 0 },
	{ "percent", API_F_INT, 0 },       { "value", API_F_NUMBER, 0 },
	{ "force", API_F_BOOL, 0 },        { "metadata", API_F_OBJECT, 0 },
};
#define NF (sizeof(fields) / sizeof(fields[0]))

static void body(void **state)
{
	static const struct {
		const char *json;
		int rc;
		const char *msg;
	} cases[] = {
		{ "{\"name\":\"a\"}", 0, NULL },
		{ "{\"name\":\"a\",\"expected\":null,\"percent\":5,\"value\":0.5,\"force\":true,"
		  "\"metadata\":{}}", 0, NULL },
		{ "{\"name\":\"a\",\"value\":3}", 0, NULL },
		{ "{}", -EBADMSG, "field 'name' is required" },
		{ "{\"name\":1}", -EBADMSG, "field 'name' must be a string" },
		{ "{\"name\":\"a\",\"percent\":1.5}", -EBADMSG, "must be an integer" },
		{ "{\"name\":\"a\",\"force\":\"yes\"}", -EBADMSG, "must be a boolean" },
		{ "{\"name\":\"a\",\"metadata\":[]}", -EBADMSG, "must be an object" },
		{ "{\"name\":\"a\",\"expected\":3}", -EBADMSG, "a string or null" },
		{ "{\"name\":\"a\",\"nmae\":1}", -EBADMSG, "unknown field 'nmae'" },
		{ "[1]", -EBADMSG, "must be a JSON object" },
	};
	struct api_req q;
	struct apifx_io io;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		apifx_req(&q, &io, NULL, cases[i].json);
		cm_err_clear();
		assert_int_equal(api_body_check(&q, fields, NF), cases[i].rc);
		if (cases[i].msg && !strstr(cm_err_msg(), cases[i].msg))
			fail_msg("%s: '%s'", cases[i].json, cm_err_msg());
		json_decref(q.body);
	}
	apifx_req(&q, &io, NULL, "{\"name\":\"a\",\"percent\":5,\"force\":true}");
	assert_string_equal(api_body_str(&q, "name"), "a");
	assert_null(api_body_str(&q, "percent"));
	assert_int_equal(api_body_int(&q, "percent", -1), 5);
	assert_int_equal(api_body_int(&q, "absent", -1), -1);
	assert_true(api_body_bool(&q, "force"));
	assert_true(api_body_has(&q, "force"));
	assert_false(api_body_has(&q, "value"));
	json_decref(q.body);
	/* No body at all counts as {}. */
	apifx_req(&q, &io, NULL, NULL);
	assert_int_equal(api_body_check(&q, fields + 1, NF - 1), 0);
	assert_int_equal(api_body_check(&q, fields, NF), -EBADMSG);
	assert_false(api_body_bool(&q, "force"));
}

static void roles(void **state)
{
	struct api_req q;
	struct apifx_io io;

	apifx_req(&q, &io, NULL, NULL);
	q.role = API_ROLE_WRITER;
	q.who.name = "pipeline";
	assert_int_equal(api_role_require(&q, API_ROLE_WRITER, "x"), 0);
	assert_int_equal(api_role_require(&q, API_ROLE_ADMIN, "changing a protected alias"), -EACCES);
	assert_string_equal(cm_err_msg(), "changing a protected alias needs the admin role; token "
					  "'pipeline' is writer");
}

static void responses(void **state)
{
	struct api_resp r;
	int fds[2];

	api_resp_init(&r);
	assert_int_equal(r.fd, -1);
	assert_int_equal(api_resp_json(&r, 201, json_pack("{s:s}", "a", "b")), 0);
	assert_int_equal(r.status, 201);
	assert_int_equal(api_resp_json(&r, 200, NULL), -ENOMEM);
	api_resp_header(&r, "Location", "/v1/models/%s", "m");
	for (int i = 0; i < API_HDR_MAX + 2; i++)
		api_resp_header(&r, "X-Many", "%d", i);
	assert_int_equal(r.nhdr, API_HDR_MAX);
	assert_string_equal(r.hdr[0].value, "/v1/models/m");
	/* An error replaces the body and closes a file body, keeps headers and details. */
	assert_int_equal(pipe(fds), 0);
	close(fds[1]);
	r.fd = fds[0];
	r.cacheable = 1;
	r.details = json_pack("{s:[]}", "failed_gates");
	cm_err_set(-EPERM, "refused");
	api_resp_error(&r, -EPERM);
	assert_int_equal(r.status, 409);
	assert_int_equal(r.fd, -1);
	assert_false(r.cacheable);
	assert_string_equal(apifx_str(&r, "error", "message"), "refused");
	assert_non_null(json_object_get(json_object_get(json_object_get(r.json, "error"), "details"),
					"failed_gates"));
	assert_string_equal(apifx_header_value(&r, "Location"), "/v1/models/m");
	api_resp_clear(&r);
	assert_null(r.json);
	assert_int_equal(r.nhdr, 0);
	api_resp_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(methods_and_roles),
		cmocka_unit_test(args),
		cmocka_unit_test(body),
		cmocka_unit_test(roles),
		cmocka_unit_test(responses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
