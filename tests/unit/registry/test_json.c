/* SPDX-License-Identifier: Apache-2.0 */
/* JSON text with reals in their shortest exact form, and never rounded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "reg_json.h"

static void expect_dump(json_t *j, const char *want)
{
	char *got = reg_json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	assert_non_null(got);
	if (strcmp(got, want))
		fail_msg("dumped %s, expected %s", got, want);
	free(got);
	json_decref(j);
}

/* Every real dumped reads back as the same double. */
static void expect_exact(double x)
{
	json_t *j = json_pack("{s:f}", "x", x), *back;
	char *text = reg_json_dumps(j, JSON_COMPACT);

	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	if (json_real_value(json_object_get(back, "x")) != x)
		fail_msg("%.17g dumped as %s", x, text);
	free(text);
	json_decref(back);
	json_decref(j);
}

static void test_short_form_when_exact(void **state)
{
	(void)state;
	expect_dump(json_pack("{s:f}", "min", 0.85), "{\"min\":0.85}");
	expect_dump(json_pack("{s:[f,f]}", "a", 0.9993, 0.81), "{\"a\":[0.9993,0.81]}");
	expect_dump(json_pack("{s:f s:i}", "x", 1.0, "n", 3), "{\"n\":3,\"x\":1.0}");
	expect_dump(json_pack("{s:{s:{s:f}}}", "a", "b", "c", 1e-7), "{\"a\":{\"b\":{\"c\":1e-7}}}");
}

static void test_more_digits_only_when_needed(void **state)
{
	(void)state;
	/* 0.1 + 0.2 needs all 17; the whole document gets them, still exact. */
	expect_dump(json_pack("{s:f}", "x", 0.1 + 0.2), "{\"x\":0.30000000000000004}");
	expect_dump(json_pack("[f,f]", 0.5, 0.1 + 0.2), "[0.5,0.30000000000000004]");
	/* No reals: jansson's defaults. */
	expect_dump(json_pack("{s:s s:i s:b s:n}", "s", "v1", "i", 42, "b", 1, "n"),
		    "{\"b\":true,\"i\":42,\"n\":null,\"s\":\"v1\"}");
	assert_int_equal(reg_json_real_flags(NULL), 0);
}

static void test_never_rounds(void **state)
{
	static const double xs[] = { 0.85, 0.1 + 0.2, 1.0 / 3.0, 2.0 / 3.0, 0.9993, 1e300,
				     4.9e-324, 1.7976931348623157e308, 123456789.123456789,
				     -0.0, 100.0, 0.015625 };

	(void)state;
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		expect_exact(xs[i]);
	srand(42);
	for (int i = 0; i < 20000; i++) {
		double x = ldexp((double)rand() / RAND_MAX, (rand() % 200) - 100);

		expect_exact(i % 2 ? -x : x);
	}
}

/*
 * In a store: the materialised metadata.json shows the metrics as written,
 * and a file an earlier release wrote with 17 digits is the same record to
 * fsck (not "metadata-differs").
 */
static void test_store_files(void **state)
{
	struct fx *f = *state;
	json_t *patch = json_pack("{s:{s:f s:f}}", "performance_metrics", "accuracy", 0.9993,
				  "f1_score", 0.85);
	char path[4200];
	const char *text;
	char *old;

	fx_version(f, "m", "v1", "model.pkl", "w", NULL);
	if (reg_version_metadata_patch(f->st, &fx_actor, "m", "v1", patch) < 0)
		fail_msg("patch: %s", cm_err_msg());
	json_decref(patch);
	text = fx_read(f->dir, "m/v1/metadata.json");
	assert_non_null(text);
	if (!strstr(text, "\"accuracy\": 0.9993,") || !strstr(text, "\"f1_score\": 0.85\n"))
		fail_msg("metadata.json: %s", text);
	assert_int_equal(fx_fsck(f), 0);
	/* As 0.1.0 wrote it. */
	old = strdup(text);
	assert_non_null(old);
	snprintf(path, sizeof(path), "%s/m/v1/metadata.json", f->dir);
	assert_int_equal(chmod(path, 0644), 0);
	{
		json_t *j = json_loads(old, 0, NULL);
		char *t17 = json_dumps(j, JSON_INDENT(2));

		assert_non_null(strstr(t17, "0.99929999999999997"));
		fx_write(f->dir, "m/v1/metadata.json", t17);
		free(t17);
		json_decref(j);
	}
	assert_int_equal(fx_fsck(f), 0);
	/* A real change is still found. */
	fx_write(f->dir, "m/v1/metadata.json", "{\"performance_metrics\": {\"accuracy\": 0.5}}\n");
	assert_int_equal(fx_fsck(f), 1);
	free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_form_when_exact),
		cmocka_unit_test(test_more_digits_only_when_needed),
		cmocka_unit_test(test_never_rounds),
		cmocka_unit_test_setup_teardown(test_store_files, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
