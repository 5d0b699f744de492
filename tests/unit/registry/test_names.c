/* SPDX-License-Identifier: Apache-2.0 */
/* Name rules: model DNS labels, version and alias file names, file paths. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"

typedef int (*check_fn)(const char *);

static void expect_ok(check_fn fn, const char *what, const char *name)
{
	cm_err_clear();
	if (fn(name) != 0)
		fail_msg("%s '%s' refused: %s", what, name, cm_err_msg());
}

/* Refused with rc and a message holding `needle` (and, when given, the name). */
static void expect_bad(check_fn fn, const char *what, const char *name, int rc, const char *needle,
		       int quotes_name)
{
	int got;

	cm_err_clear();
	got = fn(name);
	if (got != rc)
		fail_msg("%s '%.80s': rc %d, expected %d", what, name, got, rc);
	if (!strstr(cm_err_msg(), needle))
		fail_msg("%s '%.80s': message '%s' lacks '%s'", what, name, cm_err_msg(), needle);
	if (quotes_name && !strstr(cm_err_msg(), name))
		fail_msg("%s '%.80s': message '%s' does not name it", what, name, cm_err_msg());
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void model_names(void **state)
{
	char *s63 = repeat('a', 63), *s64 = repeat('a', 64);

	(void)state;
	expect_ok(reg_name_model_check, "model", "a");
	expect_ok(reg_name_model_check, "model", "0");
	expect_ok(reg_name_model_check, "model", "anomaly-detector");
	expect_ok(reg_name_model_check, "model", "fraud-v2-2026");
	expect_ok(reg_name_model_check, "model", "a--b");
	expect_ok(reg_name_model_check, "model", "9lives");
	expect_ok(reg_name_model_check, "model", s63);
	s63[0] = '1';
	s63[62] = 'z';
	expect_ok(reg_name_model_check, "model", s63);

	expect_bad(reg_name_model_check, "model", "", -EINVAL, "empty", 0);
	expect_bad(reg_name_model_check, "model", s64, -EINVAL, "longer than 63", 0);
	expect_bad(reg_name_model_check, "model", "Anomaly", -EINVAL, "lowercase", 1);
	expect_bad(reg_name_model_check, "model", "anomalY", -EINVAL, "lowercase", 1);
	expect_bad(reg_name_model_check, "model", "my_model", -EINVAL, "lowercase", 1);
	expect_bad(reg_name_model_check, "model", "my.model", -EINVAL, "lowercase", 1);
	expect_bad(reg_name_model_check, "model", "my model", -EINVAL, "lowercase", 1);
	expect_bad(reg_name_model_check, "model", "a/b", -EINVAL, "lowercase", 1);
	expect_bad(reg_name_model_check, "model", "..", -EINVAL, "lowercase", 1);
	expect_bad(reg_name_model_check, "model", "-model", -EINVAL, "start and end", 1);
	expect_bad(reg_name_model_check, "model", "model-", -EINVAL, "start and end", 1);
	expect_bad(reg_name_model_check, "model", "-", -EINVAL, "start and end", 1);
	expect_bad(reg_name_model_check, "model", "caf\xc3\xa9", -EINVAL, "lowercase", 1);
	free(s63);
	free(s64);
}

static void version_names(void **state)
{
	char *s63 = repeat('V', 63), *s64 = repeat('V', 64);

	(void)state;
	expect_ok(reg_name_version_check, "version", "v1");
	expect_ok(reg_name_version_check, "version", "V");
	expect_ok(reg_name_version_check, "version", "7");
	expect_ok(reg_name_version_check, "version", "v1.0.0");
	expect_ok(reg_name_version_check, "version", "2026-11-26_rc-1");
	expect_ok(reg_name_version_check, "version", "v1..2");
	expect_ok(reg_name_version_check, "version", "metadata.json2");
	expect_ok(reg_name_version_check, "version", "Current");
	expect_ok(reg_name_version_check, "version", s63);

	expect_bad(reg_name_version_check, "version", "", -EINVAL, "empty", 0);
	expect_bad(reg_name_version_check, "version", s64, -EINVAL, "longer than 63", 0);
	expect_bad(reg_name_version_check, "version", "current", -EINVAL, "alias name", 1);
	expect_bad(reg_name_version_check, "version", "canary", -EINVAL, "alias name", 1);
	expect_bad(reg_name_version_check, "version", "metadata.json", -EINVAL, "reserved", 1);
	expect_bad(reg_name_version_check, "version", ".modelfs", -EINVAL, "start with", 1);
	expect_bad(reg_name_version_check, "version", ".", -EINVAL, "start with", 1);
	expect_bad(reg_name_version_check, "version", "..", -EINVAL, "start with", 1);
	expect_bad(reg_name_version_check, "version", "-v1", -EINVAL, "start with", 1);
	expect_bad(reg_name_version_check, "version", "_v1", -EINVAL, "start with", 1);
	expect_bad(reg_name_version_check, "version", "v/1", -EINVAL, "may only hold", 1);
	expect_bad(reg_name_version_check, "version", "v 1", -EINVAL, "may only hold", 1);
	expect_bad(reg_name_version_check, "version", "v1:2", -EINVAL, "may only hold", 1);
	expect_bad(reg_name_version_check, "version", "v1\n", -EINVAL, "may only hold", 1);
	free(s63);
	free(s64);
}

static void alias_names(void **state)
{
	char *s64 = repeat('a', 64);

	(void)state;
	/* Protected names are valid alias names; the policy guards them elsewhere. */
	expect_ok(reg_name_alias_check, "alias", "current");
	expect_ok(reg_name_alias_check, "alias", "canary");
	expect_ok(reg_name_alias_check, "alias", "staging");
	expect_ok(reg_name_alias_check, "alias", "Prod.EU_1-b");

	expect_bad(reg_name_alias_check, "alias", "", -EINVAL, "alias name is empty", 0);
	expect_bad(reg_name_alias_check, "alias", s64, -EINVAL, "longer than 63", 0);
	expect_bad(reg_name_alias_check, "alias", "metadata.json", -EINVAL, "reserved", 1);
	expect_bad(reg_name_alias_check, "alias", ".modelfs", -EINVAL, "start with", 1);
	expect_bad(reg_name_alias_check, "alias", "../x", -EINVAL, "start with", 1);
	expect_bad(reg_name_alias_check, "alias", "prod/eu", -EINVAL, "may only hold", 1);
	free(s64);
}

static void paths(void **state)
{
	(void)state;
	expect_ok(reg_path_check, "path", "model.pkl");
	expect_ok(reg_path_check, "path", "weights/layer.0/w.bin");
	expect_ok(reg_path_check, "path", ".hidden");
	expect_ok(reg_path_check, "path", "a/..b/c..");
	expect_ok(reg_path_check, "path", "...");
	expect_ok(reg_path_check, "path", "with space/and:colon");

	expect_bad(reg_path_check, "path", "", -EINVAL, "empty", 0);
	expect_bad(reg_path_check, "path", "..", -EINVAL, "'.' or '..'", 1);
	expect_bad(reg_path_check, "path", ".", -EINVAL, "'.' or '..'", 1);
	expect_bad(reg_path_check, "path", "../model.pkl", -EINVAL, "'.' or '..'", 1);
	expect_bad(reg_path_check, "path", "a/../../etc/passwd", -EINVAL, "'.' or '..'", 1);
	expect_bad(reg_path_check, "path", "a/./b", -EINVAL, "'.' or '..'", 1);
	expect_bad(reg_path_check, "path", "a/..", -EINVAL, "'.' or '..'", 1);
	expect_bad(reg_path_check, "path", "/etc/passwd", -EINVAL, "relative", 1);
	expect_bad(reg_path_check, "path", "/", -EINVAL, "relative", 1);
	expect_bad(reg_path_check, "path", "a//b", -EINVAL, "empty component", 1);
	expect_bad(reg_path_check, "path", "a/", -EINVAL, "ends with '/'", 1);
	expect_bad(reg_path_check, "path", "a/b/", -EINVAL, "ends with '/'", 1);
}

static void long_paths(void **state)
{
	char *name255 = repeat('n', NAME_MAX), *name256 = repeat('n', NAME_MAX + 1);
	char *p = malloc(PATH_MAX + 2);
	size_t len = 0;

	(void)state;
	assert_non_null(p);
	expect_ok(reg_path_check, "path", name255);
	expect_bad(reg_path_check, "path", name256, -ENAMETOOLONG, "longer than 255", 1);
	/* A long component deeper down, and one that is last. */
	snprintf(p, PATH_MAX, "dir/%s/file", name256);
	expect_bad(reg_path_check, "path", p, -ENAMETOOLONG, "longer than 255", 0);
	snprintf(p, PATH_MAX, "dir/%s", name256);
	expect_bad(reg_path_check, "path", p, -ENAMETOOLONG, "longer than 255", 0);
	snprintf(p, PATH_MAX, "dir/%s", name255);
	expect_ok(reg_path_check, "path", p);

	/* PATH_MAX - 1 bytes of short components is fine; PATH_MAX is not. */
	while (len < PATH_MAX - 1) {
		p[len] = (len % 100 == 99) ? '/' : 'p';
		len++;
	}
	p[len] = '\0';
	assert_int_equal(strlen(p), PATH_MAX - 1);
	assert_true(p[len - 1] != '/');
	expect_ok(reg_path_check, "path", p);
	p[len] = 'q';
	p[len + 1] = '\0';
	assert_int_equal(strlen(p), PATH_MAX);
	expect_bad(reg_path_check, "path", p, -ENAMETOOLONG, "longer than 4095", 0);
	free(name255);
	free(name256);
	free(p);
}

static void protected_aliases(void **state)
{
	(void)state;
	assert_int_equal(reg_alias_is_protected("current"), 1);
	assert_int_equal(reg_alias_is_protected("canary"), 1);
	assert_int_equal(reg_alias_is_protected("staging"), 0);
	assert_int_equal(reg_alias_is_protected("Current"), 0);
	assert_int_equal(reg_alias_is_protected("current "), 0);
	assert_int_equal(reg_alias_is_protected("curren"), 0);
	assert_int_equal(reg_alias_is_protected(""), 0);
}

static void state_names(void **state)
{
	(void)state;
	assert_string_equal(reg_state_name(REG_DRAFT), "draft");
	assert_string_equal(reg_state_name(REG_SEALED), "sealed");
	assert_string_equal(reg_state_name(REG_ARCHIVED), "archived");
	assert_string_equal(reg_state_name((enum reg_state)42), "unknown");
}


/* One namespace per model directory: a name one kind holds is refused to the other, atomically. */
static void versions_and_aliases_share_one_namespace(void **state)
{
	struct fx *f = *state;
	struct reg_version v;
	struct reg_alias a;
	int64_t before, after;
	char p[4300];

	fx_version(f, "m", "1.0", "model.pkl", "one", NULL);
	fx_version(f, "m", "2.0", "model.pkl", "two", NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "1.0", NULL), 0);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "2.0", NULL), 0);
	assert_int_equal(reg_event_count(f->st, &before), 0);
	/* An alias named like a version. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "1.0", "2.0", NULL, NULL), -EEXIST);
	assert_non_null(strstr(cm_err_msg(), "is a version of model 'm'"));
	assert_int_equal(reg_alias_get(f->st, "m", "1.0", &a), -ENOENT);
	/* A version named like an alias: refused, nothing committed, nothing on disk. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "1.0", NULL, NULL), 0);
	assert_int_equal(reg_event_count(f->st, &before), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "staging", NULL, NULL), -EEXIST);
	assert_non_null(strstr(cm_err_msg(), "is an alias of model 'm'"));
	assert_int_equal(reg_version_get(f->st, "m", "staging", &v), -ENOENT);
	assert_int_equal(reg_event_count(f->st, &after), 0);
	assert_int_equal(after, before);
	assert_string_equal(fx_readlink(f->dir, "m/staging"), "1.0");
	/* Names someone put on the volume are not taken either. */
	snprintf(p, sizeof(p), "%s/m/handmade", f->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "handmade", "1.0", NULL, NULL), -EEXIST);
	assert_non_null(strstr(cm_err_msg(), "m/handmade"));
	fx_write(f->dir, "m/notes", "mine");
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "notes", NULL, NULL), -EEXIST);
	/* An automatic name skips an alias that holds v<N+1>. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "v3", "1.0", NULL, NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", NULL, NULL, &v), 0);
	assert_string_equal(v.name, "v4");
	/* metadata.json and private names stay reserved by shape. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "metadata.json", "1.0", NULL, NULL),
			 -EINVAL);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", ".modelfs", NULL, NULL), -EINVAL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", ".current.tmp-1", "1.0", NULL, NULL),
			 -EINVAL);
	assert_int_equal(fx_fsck(f), 1); /* the hand-made directory stays, reported */
	assert_string_equal(fx_read(f->dir, "m/notes"), "mine");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model_names),
		cmocka_unit_test(version_names),
		cmocka_unit_test(alias_names),
		cmocka_unit_test(paths),
		cmocka_unit_test(long_paths),
		cmocka_unit_test(protected_aliases),
		cmocka_unit_test(state_names),
		cmocka_unit_test_setup_teardown(versions_and_aliases_share_one_namespace, fx_setup,
						fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
