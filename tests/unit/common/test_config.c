/* SPDX-License-Identifier: Apache-2.0 */
/* The config table: defaults, environment, flags, limits and errors. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

struct cfg {
	const char *store;
	long long port;
	int insecure;
};

static const struct cm_opt opts[] = {
	{ "store", "MODELFS_T_STORE", CM_OPT_STRING, offsetof(struct cfg, store), NULL, 0, 0, "DIR",
	  "the store" },
	{ "port", "MODELFS_T_PORT", CM_OPT_INT, offsetof(struct cfg, port), "8080", 0, 65535, "N",
	  "the port" },
	{ "insecure", NULL, CM_OPT_BOOL, offsetof(struct cfg, insecure), "false", 0, 0, NULL,
	  "allow it" },
};
#define N (sizeof(opts) / sizeof(opts[0]))

static void defaults_env_flags(void **state)
{
	struct cfg c = { 0 };
	char *argv[] = { "x", "--store", "/m", "--insecure", NULL };

	(void)state;
	unsetenv("MODELFS_T_STORE");
	setenv("MODELFS_T_PORT", "9000", 1);
	assert_int_equal(cm_config_parse(opts, N, &c, 1, argv), 0);
	assert_null(c.store);
	assert_int_equal(c.port, 9000);
	assert_int_equal(c.insecure, 0);
	assert_int_equal(cm_config_parse(opts, N, &c, 4, argv), 0);
	assert_string_equal(c.store, "/m");
	assert_int_equal(c.insecure, 1);
	char *argv2[] = { "x", "--port=81", NULL };
	assert_int_equal(cm_config_parse(opts, N, &c, 2, argv2), 0);
	assert_int_equal(c.port, 81);
	unsetenv("MODELFS_T_PORT");
}

static void errors_name_the_option(void **state)
{
	struct cfg c = { 0 };
	char *a1[] = { "x", "--nope", NULL };
	char *a2[] = { "x", "--port", "70000", NULL };
	char *a3[] = { "x", "--store", NULL };
	char *a4[] = { "x", "--port", "12ab", NULL };
	char *a5[] = { "x", "stray", NULL };
	char *a6[] = { "x", "--insecure=maybe", NULL };

	(void)state;
	assert_int_equal(cm_config_parse(opts, N, &c, 2, a1), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "--nope"));
	assert_int_equal(cm_config_parse(opts, N, &c, 3, a2), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "0..65535"));
	assert_int_equal(cm_config_parse(opts, N, &c, 2, a3), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "needs a value"));
	assert_int_equal(cm_config_parse(opts, N, &c, 3, a4), -EINVAL);
	assert_int_equal(cm_config_parse(opts, N, &c, 2, a5), -EINVAL);
	assert_int_equal(cm_config_parse(opts, N, &c, 2, a6), -EINVAL);
	setenv("MODELFS_T_PORT", "x", 1);
	assert_int_equal(cm_config_parse(opts, N, &c, 1, a1), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "MODELFS_T_PORT"));
	unsetenv("MODELFS_T_PORT");
}

static void help_and_dump(void **state)
{
	struct cfg c = { .store = "/m", .port = 1, .insecure = 1 };
	char buf[4096] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	(void)state;
	cm_config_help(opts, N, f);
	cm_config_dump(opts, N, &c, f);
	fclose(f);
	assert_non_null(strstr(buf, "--store DIR"));
	assert_non_null(strstr(buf, "(default 8080) [$MODELFS_T_PORT]"));
	assert_non_null(strstr(buf, "store=/m\nport=1\ninsecure=true\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_env_flags),
		cmocka_unit_test(errors_name_the_option),
		cmocka_unit_test(help_and_dump),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
