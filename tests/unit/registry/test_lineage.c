/* SPDX-License-Identifier: Apache-2.0 */
/* Lineage: forward (version → inputs) and reverse (commit or data hash → versions). */
#include <errno.h>
#include <string.h>

#include "fixture.h"

static void create_with(struct fx *f, const char *m, const char *v, const char *commit,
			const char *hash)
{
	json_t *rec = json_pack("{ss ss ss s{si} s{ss ss si}}", "git_commit", commit,
				"training_data_hash", hash, "training_notebook", "train.ipynb",
				"hyperparameters", "n_estimators", 100, "training_data", "start_date",
				"2026-10-01", "end_date", "2026-10-31", "rows", 1000);
	struct reg_model mm;

	if (reg_model_get(f->st, m, &mm) == -ENOENT)
		assert_int_equal(reg_model_create(f->st, &fx_actor, m, NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, m, v, rec, NULL), 0);
	json_decref(rec);
}

static void forward_and_reverse(void **state)
{
	struct fx *f = *state;
	json_t *l = NULL, *found = NULL;

	create_with(f, "anomaly-detector", "v1", "3F2A9C1D", "sha256:aaa");
	create_with(f, "anomaly-detector", "v2", "77aa0001", "sha256:bbb");
	create_with(f, "lstm-autoencoder", "v1", "3f2a9c1d", "sha256:aaa");
	assert_int_equal(reg_lineage_get(f->st, "anomaly-detector", "v2", &l), 0);
	assert_string_equal(json_string_value(json_object_get(l, "git_commit")), "77aa0001");
	assert_string_equal(json_string_value(json_object_get(l, "training_notebook")), "train.ipynb");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(l, "training_data"), "rows")), 1000);
	json_decref(l);
	/* Prefix, case-insensitive: both versions built from 3f2a9c1d. */
	assert_int_equal(reg_lineage_find(f->st, "3f2a", NULL, &found), 0);
	assert_int_equal(json_array_size(found), 2);
	json_decref(found);
	assert_int_equal(reg_lineage_find(f->st, NULL, "sha256:bbb", &found), 0);
	assert_int_equal(json_array_size(found), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(found, 0), "version")), "v2");
	json_decref(found);
	assert_int_equal(reg_lineage_find(f->st, "zz12", NULL, &found), -EINVAL);
	assert_int_equal(reg_lineage_find(f->st, "3f", NULL, &found), -EINVAL);
	assert_int_equal(reg_lineage_find(f->st, NULL, NULL, &found), -EINVAL);
	assert_int_equal(reg_lineage_get(f->st, "anomaly-detector", "v9", &l), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(forward_and_reverse, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
