/* SPDX-License-Identifier: Apache-2.0 */
/* Adopting a volume in the ADR layout: everything imported, fsck clean, originals kept. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static void adr_tree(struct fx *f)
{
	char p[4300];

	fx_write(f->dir, "anomaly-detector/v1/model.pkl", "isolation forest v1");
	fx_write(f->dir, "anomaly-detector/v1/metadata.json",
		 "{\"model_name\": \"anomaly-detector\", \"version\": \"v1\", "
		 "\"git_commit\": \"3f2a9c1\", \"validation_status\": \"passed\", "
		 "\"performance_metrics\": {\"accuracy\": 0.91}, \"deployed_to\": [\"production\"]}");
	fx_write(f->dir, "anomaly-detector/v2/model.pkl", "isolation forest v2");
	fx_write(f->dir, "anomaly-detector/v2/metadata.json", "{\"validation_status\": \"pending\"}");
	fx_write(f->dir, "anomaly-detector/v10/model.pkl", "isolation forest v10");
	fx_write(f->dir, "anomaly-detector/v10/metadata.json", "{not json");
	fx_write(f->dir, "anomaly-detector/metadata.json", "{\"model_name\": \"anomaly-detector\"}");
	fx_write(f->dir, "lstm-autoencoder/v1/model.pt", "torch");
	fx_write(f->dir, "lstm-autoencoder/v1/scaler.pkl", "scaler");
	snprintf(p, sizeof(p), "%s/anomaly-detector/current", f->dir);
	assert_int_equal(symlink("v1", p), 0);
	snprintf(p, sizeof(p), "%s/anomaly-detector/canary", f->dir);
	assert_int_equal(symlink("v2/", p), 0);
	snprintf(p, sizeof(p), "%s/anomaly-detector/elsewhere", f->dir);
	assert_int_equal(symlink("/etc", p), 0);
	fx_write(f->dir, "Not_A_Model/v1/x", "ignored");
}

static void adopts_adr_layout(void **state)
{
	struct fx *f = *state;
	struct reg_version *l = NULL;
	struct reg_alias a;
	struct reg_version v;
	json_t *rec = NULL, *ev = NULL;
	size_t n = 0;

	adr_tree(f);
	assert_int_equal(reg_store_open(f->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &f->st), 0);
	assert_int_equal(reg_version_list(f->st, "anomaly-detector", NULL, &l, &n), 0);
	assert_int_equal(n, 3);
	/* Natural order: v1, v2, v10. */
	assert_string_equal(l[0].name, "v1");
	assert_string_equal(l[1].name, "v2");
	assert_string_equal(l[2].name, "v10");
	for (size_t i = 0; i < n; i++)
		assert_int_equal(l[i].state, REG_SEALED);
	free(l);
	assert_int_equal(reg_alias_get(f->st, "anomaly-detector", "current", &a), 0);
	assert_string_equal(a.version, "v1");
	assert_int_equal(reg_alias_get(f->st, "anomaly-detector", "canary", &a), 0);
	assert_string_equal(a.version, "v2");
	assert_int_equal(reg_alias_get(f->st, "anomaly-detector", "elsewhere", &a), -ENOENT);
	assert_int_equal(reg_version_get(f->st, "lstm-autoencoder", "v1", &v), 0);
	assert_int_equal(v.total_size, 11);
	assert_int_equal(reg_version_metadata_get(f->st, "anomaly-detector", "v1", &rec), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "git_commit")), "3f2a9c1");
	json_decref(rec);
	/* One import event per model, naming what could not be taken. */
	struct reg_event_filter flt = { .kind = "import" };
	assert_int_equal(reg_event_list(f->st, "anomaly-detector", &flt, &ev), 0);
	assert_int_equal(json_array_size(ev), 1);
	assert_true(json_array_size(json_object_get(json_object_get(json_array_get(ev, 0), "detail"),
						    "notes")) >= 2);
	json_decref(ev);
	/* The unparseable record and the old model metadata are kept aside. */
	assert_non_null(fx_read(f->dir, ".modelfs/adopted/anomaly-detector__v10.metadata.json"));
	assert_non_null(fx_read(f->dir, ".modelfs/adopted/anomaly-detector.metadata.json"));
	assert_int_equal(reg_model_get(f->st, "Not_A_Model", &(struct reg_model){ 0 }), -ENOENT);
	/* The foreign symlink is left as it was; fsck names it, nothing else. */
	int problems = fx_fsck(f);
	assert_int_equal(problems, 1);
	/* Alias history exists, so rollback and as-of work from the start. */
	assert_int_equal(reg_alias_at(f->st, "anomaly-detector", "current", cm_time_now_us(), &a), 0);
	assert_string_equal(a.version, "v1");
}

static void adoption_is_done_once(void **state)
{
	struct fx *f = *state;
	int64_t before = 0, after = 0;

	adr_tree(f);
	assert_int_equal(reg_store_open(f->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &f->st), 0);
	assert_int_equal(reg_event_count(f->st, &before), 0);
	fx_reopen(f);
	assert_int_equal(reg_event_count(f->st, &after), 0);
	assert_int_equal(before, after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(adopts_adr_layout, fx_setup_empty, fx_teardown),
		cmocka_unit_test_setup_teardown(adoption_is_done_once, fx_setup_empty, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
