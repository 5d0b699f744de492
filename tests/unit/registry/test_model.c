/* SPDX-License-Identifier: Apache-2.0 */
/* Models: create, get, list with a cursor, delete, and the generated metadata.json. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static void create_get_list(void **state)
{
	struct fx *f = *state;
	struct reg_model m, *l = NULL;
	size_t n = 0;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "lstm-autoencoder", &m), 0);
	assert_string_equal(m.name, "lstm-autoencoder");
	assert_int_equal(reg_model_create(f->st, &fx_actor, "anomaly-detector", NULL), 0);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "anomaly-detector", NULL), -EEXIST);
	assert_non_null(strstr(cm_err_msg(), "already exists"));
	assert_int_equal(reg_model_get(f->st, "anomaly-detector", &m), 0);
	assert_int_equal(reg_model_get(f->st, "missing", &m), -ENOENT);
	assert_int_equal(reg_model_list(f->st, NULL, 0, &l, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].name, "anomaly-detector");
	free(l);
	assert_int_equal(reg_model_list(f->st, "anomaly-detector", 1, &l, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].name, "lstm-autoencoder");
	free(l);
	/* The model directory and its generated metadata.json are on disk. */
	assert_non_null(strstr(fx_read(f->dir, "anomaly-detector/metadata.json"),
			       "\"model_name\": \"anomaly-detector\""));
}

static void bad_names(void **state)
{
	struct fx *f = *state;
	const char *bad[] = { "", "Upper", "under_score", "-lead", "trail-", "a/b", "..", ".modelfs",
			      "x234567890123456789012345678901234567890123456789012345678901234" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(reg_model_create(f->st, &fx_actor, bad[i], NULL), -EINVAL);
		assert_true(strlen(cm_err_msg()) > 0);
	}
	assert_null(fx_read(f->dir, "Upper/metadata.json"));
}

static void delete_only_empty(void **state)
{
	struct fx *f = *state;
	struct reg_model m;

	fx_version(f, "m", "v1", "a", "1", NULL);
	assert_int_equal(reg_model_delete(f->st, &fx_actor, "m"), -ENOTEMPTY);
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "v1"), 0);
	assert_int_equal(reg_model_delete(f->st, &fx_actor, "m"), 0);
	assert_int_equal(reg_model_get(f->st, "m", &m), -ENOENT);
	assert_null(fx_read(f->dir, "m/metadata.json"));
	assert_int_equal(reg_model_delete(f->st, &fx_actor, "m"), -ENOENT);
	assert_int_equal(fx_fsck(f), 0);
}

static void model_document_follows_current(void **state)
{
	struct fx *f = *state;
	json_t *doc;

	fx_version(f, "m", "v1", "model.pkl", "1", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	doc = json_loads(fx_read(f->dir, "m/metadata.json"), 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "version")), "v1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "aliases"), "current")), "v1");
	assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "deployed_to"), 0)), "current");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "versions"), "count")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "versions"), "sealed")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "versions"), "latest")), "v1");
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create_get_list, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(bad_names, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(delete_only_empty, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(model_document_follows_current, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
