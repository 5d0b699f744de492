/* SPDX-License-Identifier: Apache-2.0 */
/* Token files and bearer checks (api/auth.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "apifx.h"

#define S1 "admin-secret-0123456789"
#define S2 "writer-secret-0123456789"
#define S3 "reader-secret-0123456789"

static void parse_ok(void **state)
{
	struct api_tokens *t = NULL;

	assert_int_equal(api_tokens_parse("# tokens\n\nops admin " S1 "\r\n"
					  "  pipeline\twriter  " S2 "  # CI\n"
					  "dash reader " S3,
					  &t),
			 0);
	assert_int_equal(t->n, 3);
	assert_string_equal(t->v[1].name, "pipeline");
	assert_int_equal(t->v[1].role, API_ROLE_WRITER);
	assert_ptr_equal(api_tokens_find(t, S2), &t->v[1]);
	assert_ptr_equal(api_tokens_find(t, S3), &t->v[2]);
	assert_null(api_tokens_find(t, "writer-secret-012345678"));
	assert_null(api_tokens_find(t, ""));
	assert_null(api_tokens_find(t, NULL));
	api_tokens_free(t);
	api_tokens_free(NULL);
}

static void parse_errors(void **state)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{ "a admin short\n", "line 1: the secret of 'a' is shorter than 16" },
		{ "\n\na root " S1 "\n", "line 3" },
		{ "a admin\n", "line 1: expected" },
		{ "a admin " S1 " extra\n", "line 1: expected" },
		{ "a/b admin " S1 "\n", "token name" },
		{ "a admin " S1 "\na reader " S2 "\n", "used twice" },
		{ "a admin " S1 "\nb reader " S1 "\n", "same secret" },
		{ "# only a comment\n", "no tokens" },
		{ "", "no tokens" },
	};
	struct api_tokens *t = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(api_tokens_parse(cases[i].text, &t), -EINVAL);
		if (!strstr(cm_err_msg(), cases[i].msg))
			fail_msg("'%s': message '%s' lacks '%s'", cases[i].text, cm_err_msg(),
				 cases[i].msg);
		assert_null(t);
	}
}

static void load(void **state)
{
	char dir[4096], path[4200];
	struct api_tokens *t = NULL;
	FILE *f;

	fx_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tokens", dir);
	assert_int_equal(api_tokens_load(path, &t), -ENOENT);
	assert_non_null(strstr(cm_err_msg(), path));
	f = fopen(path, "w");
	fprintf(f, "ops admin %s\n", S1);
	fclose(f);
	/* Readable by others or (for the daemon's own file) its group: refused, saying how to fix. */
	for (size_t i = 0; i < 4; i++) {
		static const mode_t modes[] = { 0644, 0640, 0604, 0620 };

		assert_int_equal(chmod(path, modes[i]), 0);
		assert_int_equal(api_tokens_load(path, &t), -EPERM);
		assert_non_null(strstr(cm_err_msg(), "chmod 600"));
		assert_null(t);
	}
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(api_tokens_load(path, &t), 0);
	assert_int_equal(t->n, 1);
	api_tokens_free(t);
	assert_int_equal(api_tokens_load(dir, &t), -EINVAL);
	fx_rmrf(dir);
}

static void check(void **state)
{
	struct api_tokens *t = NULL;
	enum api_role role;
	const char *name;

	/* No tokens: everything, as admin "anonymous". */
	assert_int_equal(api_auth_check(NULL, NULL, API_ROLE_ADMIN, &role, &name), 0);
	assert_int_equal(role, API_ROLE_ADMIN);
	assert_string_equal(name, "anonymous");

	assert_int_equal(api_tokens_parse("ops admin " S1 "\ndash reader " S3 "\n", &t), 0);
	assert_int_equal(api_auth_check(t, "Bearer " S1, API_ROLE_ADMIN, &role, &name), 0);
	assert_string_equal(name, "ops");
	assert_int_equal(api_auth_check(t, "bearer  " S3, API_ROLE_READER, &role, &name), 0);
	assert_int_equal(role, API_ROLE_READER);
	assert_int_equal(api_auth_check(t, "Bearer " S3, API_ROLE_WRITER, &role, &name), -EACCES);
	assert_non_null(strstr(cm_err_msg(), "'dash' has the reader role"));
	/* The refused token is still known, for the log line of the 403. */
	assert_string_equal(name, "dash");
	assert_int_equal(role, API_ROLE_READER);
	assert_int_equal(api_auth_check(t, NULL, API_ROLE_READER, &role, &name), -ENOKEY);
	assert_non_null(strstr(cm_err_msg(), "needs a bearer token"));
	assert_int_equal(api_auth_check(t, "Bearer nope", API_ROLE_READER, &role, &name), -ENOKEY);
	assert_int_equal(api_auth_check(t, "Basic " S1, API_ROLE_READER, &role, &name), -ENOKEY);
	/* Open routes: no token is fine, a token still names the caller. */
	assert_int_equal(api_auth_check(t, NULL, API_ROLE_NONE, &role, &name), 0);
	assert_int_equal(role, API_ROLE_NONE);
	assert_int_equal(api_auth_check(t, "Bearer " S1, API_ROLE_NONE, &role, &name), 0);
	assert_string_equal(name, "ops");
	api_tokens_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_ok),
		cmocka_unit_test(parse_errors),
		cmocka_unit_test(load),
		cmocka_unit_test(check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
