/* SPDX-License-Identifier: Apache-2.0 */
/* Handlers for aliases, canary and policy (api/handlers_aliases.c), without HTTP. */
#include <errno.h>
#include <string.h>

#include "apifx.h"

static int call(struct fx *f, api_handler h, const char *alias, const char *body,
		enum api_role role, struct api_resp *r)
{
	struct api_req q;
	struct apifx_io io;

	apifx_req(&q, &io, f->st, body);
	q.model = "m";
	q.alias = alias;
	api_auth_actor(&q, role, 0); /* the registry decides from the token's role */
	return apifx_call(h, &q, r);
}

static void sealed(struct fx *f, const char *v, int pass)
{
	fx_version(f, "m", v, "model.pkl", v, NULL);
	if (pass)
		fx_pass(f, "m", v);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", v, NULL), 0);
}

static void roles_gates_cas(void **state)
{
	struct fx *f = *state;
	struct api_resp r;
	json_t *gates;

	sealed(f, "v1", 1);
	sealed(f, "v2", 0);
	/* A writer sets free-form aliases, not protected ones, and never forces. */
	assert_int_equal(call(f, api_h_alias_put, "staging", "{\"version\":\"v1\"}", API_ROLE_WRITER, &r), 0);
	assert_string_equal(apifx_str(&r, "version", NULL), "v1");
	assert_true(json_is_null(json_object_get(r.json, "percent")));
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_put, "current", "{\"version\":\"v1\"}", API_ROLE_WRITER, &r),
			 -EACCES);
	assert_int_equal(r.status, 403);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_put, "staging",
			      "{\"version\":\"v2\",\"force\":true,\"reason\":\"x\"}", API_ROLE_WRITER, &r),
			 -EACCES);
	api_resp_clear(&r);
	/* Gate refusal: 409 with the failed gates. */
	assert_int_equal(call(f, api_h_promote, NULL, "{\"version\":\"v2\"}", API_ROLE_ADMIN, &r), -EPERM);
	assert_int_equal(r.status, 409);
	assert_string_equal(apifx_str(&r, "error", "code"), "gate_refused");
	gates = json_object_get(json_object_get(json_object_get(r.json, "error"), "details"), "failed_gates");
	assert_int_equal(json_array_size(gates), 1);
	assert_non_null(strstr(json_string_value(json_array_get(gates, 0)), "validation_status"));
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_promote, NULL, "{\"version\":\"v1\"}", API_ROLE_ADMIN, &r), 0);
	api_resp_clear(&r);
	/* CAS: expected null means "unset". */
	assert_int_equal(call(f, api_h_alias_put, "current",
			      "{\"version\":\"v2\",\"expected_version\":null,\"force\":true,\"reason\":\"r\"}",
			      API_ROLE_ADMIN, &r), -ESTALE);
	assert_string_equal(apifx_str(&r, "error", "code"), "conflict");
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_put, "current",
			      "{\"version\":\"v2\",\"expected_version\":\"v1\",\"force\":true,\"reason\":\"r\"}",
			      API_ROLE_ADMIN, &r), 0);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_put, "current", "{\"version\":\"v1\",\"force\":true}",
			      API_ROLE_ADMIN, &r), -EINVAL);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_put, "current", "{\"version\":5}", API_ROLE_ADMIN, &r),
			 -EBADMSG);
	api_resp_clear(&r);
	/* Rollback; delete (protected needs admin). */
	assert_int_equal(call(f, api_h_rollback, NULL, NULL, API_ROLE_ADMIN, &r), 0);
	assert_string_equal(apifx_str(&r, "version", NULL), "v1");
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_delete, "current", NULL, API_ROLE_WRITER, &r), -EACCES);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_delete, "staging", NULL, API_ROLE_WRITER, &r), 0);
	assert_int_equal(r.status, 204);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_aliases_list, NULL, NULL, API_ROLE_READER, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r.json, "aliases")), 1);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_alias_get, "current", NULL, API_ROLE_READER, &r), 0);
	assert_string_equal(apifx_str(&r, "alias", NULL), "current");
	api_resp_clear(&r);
}

static void canary_and_policy(void **state)
{
	struct fx *f = *state;
	struct api_resp r;

	sealed(f, "v1", 1);
	sealed(f, "v2", 1);
	assert_int_equal(call(f, api_h_canary_put, NULL, "{\"percent\":20}", API_ROLE_ADMIN, &r), -ENOENT);
	assert_non_null(strstr(apifx_str(&r, "error", "message"), "no canary"));
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_put, NULL, "{}", API_ROLE_ADMIN, &r), -EBADMSG);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_promote, NULL, "{\"version\":\"v1\"}", API_ROLE_ADMIN, &r), 0);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_put, NULL, "{\"version\":\"v2\"}", API_ROLE_ADMIN, &r), 0);
	assert_int_equal(json_integer_value(json_object_get(r.json, "percent")), 10);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_put, NULL, "{\"percent\":50}", API_ROLE_ADMIN, &r), 0);
	assert_int_equal(json_integer_value(json_object_get(r.json, "percent")), 50);
	assert_string_equal(apifx_str(&r, "version", NULL), "v2");
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_put, NULL, "{\"percent\":-1}", API_ROLE_ADMIN, &r), -EINVAL);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_put, NULL, "{\"percent\":50}", API_ROLE_WRITER, &r), -EACCES);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_promote, NULL, NULL, API_ROLE_ADMIN, &r), 0);
	assert_string_equal(apifx_str(&r, "alias", NULL), "current");
	assert_string_equal(apifx_str(&r, "version", NULL), "v2");
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_delete, NULL, NULL, API_ROLE_ADMIN, &r), -ENOENT);
	assert_non_null(strstr(apifx_str(&r, "error", "message"), "has no canary"));
	api_resp_clear(&r);
	/* Policy. */
	assert_int_equal(call(f, api_h_policy_put, NULL, "{\"max_total_size\":1}", API_ROLE_ADMIN, &r), 0);
	assert_int_equal(json_integer_value(json_object_get(r.json, "max_total_size")), 1);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_policy_put, NULL, "{\"max_total_size\":-1}", API_ROLE_ADMIN, &r),
			 -EINVAL);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_policy_put, NULL, "[]", API_ROLE_ADMIN, &r), -EBADMSG);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_policy_get, NULL, NULL, API_ROLE_READER, &r), 0);
	assert_int_equal(json_integer_value(json_object_get(r.json, "max_total_size")), 1);
	api_resp_clear(&r);
	assert_int_equal(call(f, api_h_canary_put, NULL, "{\"version\":\"v1\"}", API_ROLE_ADMIN, &r), -EPERM);
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(json_object_get(json_object_get(r.json, "error"), "details"), "failed_gates"), 0)), "size"));
	api_resp_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(roles_gates_cas, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(canary_and_policy, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
