/* SPDX-License-Identifier: Apache-2.0 */
/* The errno → HTTP status mapping and the JSON error body (api/error.c). */
#include <errno.h>
#include <string.h>

#include "apifx.h"

static void mapping(void **state)
{
	static const struct {
		int rc, status;
		const char *code;
	} cases[] = {
		{ -ENOENT, 404, "not_found" },   { -EEXIST, 409, "already_exists" },
		{ -EINVAL, 422, "invalid" },     { -EBADMSG, 400, "bad_request" },
		{ -EPERM, 409, "gate_refused" }, { -ESTALE, 409, "conflict" },
		{ -EROFS, 409, "read_only" },    { -EBUSY, 409, "busy" },
		{ -E2BIG, 413, "too_large" },    { -EFBIG, 413, "too_large" },
		{ -EACCES, 403, "forbidden" },   { -ENOKEY, 401, "unauthorized" },
		{ -ERANGE, 416, "range_not_satisfiable" }, { -EBADE, 422, "digest_mismatch" },
		{ -ETIMEDOUT, 408, "request_timeout" }, { -EOPNOTSUPP, 405, "method_not_allowed" },
		{ -ENOSPC, 507, "insufficient_storage" }, { -EAGAIN, 503, "unavailable" },
		{ -ENOTEMPTY, 409, "not_empty" }, { -EIO, 500, "io_error" },
		{ -EXDEV, 500, "internal" },     { -9999, 500, "internal" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct api_status *s = api_error_status(cases[i].rc);

		assert_int_equal(s->status, cases[i].status);
		assert_string_equal(s->code, cases[i].code);
	}
}

static void body(void **state)
{
	json_t *b = api_error_body(-EPERM, "refused by policy", json_pack("{s:[s]}", "failed_gates",
									   "accuracy >= 0.85"));
	json_t *e = json_object_get(b, "error");

	assert_string_equal(json_string_value(json_object_get(e, "code")), "gate_refused");
	assert_string_equal(json_string_value(json_object_get(e, "message")), "refused by policy");
	assert_int_equal(json_array_size(json_object_get(json_object_get(e, "details"), "failed_gates")),
			 1);
	json_decref(b);
	/* No message: strerror; no details: null. */
	b = api_error_body(-ENOENT, "", NULL);
	e = json_object_get(b, "error");
	assert_string_equal(json_string_value(json_object_get(e, "message")), strerror(ENOENT));
	assert_true(json_is_null(json_object_get(e, "details")));
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mapping),
		cmocka_unit_test(body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
