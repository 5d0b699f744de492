/* SPDX-License-Identifier: Apache-2.0 */
/* The disk view: files match the db, sealed records are read-only, raw readers see valid links. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static void raw_volume_is_self_describing(void **state)
{
	struct fx *f = *state;
	struct stat sb;
	char p[4300];
	json_t *doc;

	fx_version(f, "m", "v1", "model.pkl", "1", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	/* A pod reading the raw PVC: current/model.pkl resolves, records parse. */
	assert_string_equal(fx_read(f->dir, "m/current/model.pkl"), "1");
	doc = json_loads(fx_read(f->dir, "m/current/metadata.json"), 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "validation_status")), "passed");
	assert_null(json_object_get(doc, "deployed_to")); /* derived, not stored */
	json_decref(doc);
	snprintf(p, sizeof(p), "%s/m/v1/metadata.json", f->dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0222, 0);
	/* The event id leads the file: opening a store reads one line per model. */
	assert_memory_equal(fx_read(f->dir, "m/metadata.json"), "{\n  \"event_id\": ", 16);
	doc = json_loads(fx_read(f->dir, "m/metadata.json"), 0, NULL);
	assert_true(json_integer_value(json_object_get(doc, "event_id")) > 0);
	json_decref(doc);
}

static void disk_errors_are_counted_not_fatal(void **state)
{
	struct fx *f = *state;
	char msg[256] = "";
	char p[4300];

	fx_version(f, "m", "v1", "model.pkl", "1", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_store_disk_errors(f->st, msg, sizeof(msg)), 0);
	/* A directory squatting on a new alias's name: refused, nothing committed. */
	snprintf(p, sizeof(p), "%s/m/current", f->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), -EEXIST);
	assert_non_null(strstr(cm_err_msg(), "m/current"));
	struct reg_alias a;
	assert_int_equal(reg_alias_get(f->st, "m", "current", &a), -ENOENT);
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	/* Squatting after the fact: open records it, does not fail, and writes the rest. */
	fx_version(f, "m", "v2", "model.pkl", "2", NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v2", NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v2", NULL, NULL), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/m/staging", f->dir);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc", p), 0);
	fx_reopen(f);
	assert_true(reg_store_disk_errors(f->st, msg, sizeof(msg)) >= 1);
	assert_non_null(strstr(msg, "current"));
	assert_string_equal(fx_readlink(f->dir, "m/staging"), "v2");
	/* A promotion whose link cannot be written is refused whole: the db keeps v1. */
	fx_pass(f, "m", "v2");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v2", NULL, NULL), -EEXIST);
	assert_int_equal(reg_alias_get(f->st, "m", "current", &a), 0);
	assert_string_equal(a.version, "v1");
	/* The db is the truth: once the obstacle is gone, reopening heals the disk. */
	snprintf(p, sizeof(p), "%s/m/current", f->dir);
	assert_int_equal(rmdir(p), 0);
	fx_reopen(f);
	assert_string_equal(fx_readlink(f->dir, "m/current"), "v1");
	assert_int_equal(fx_fsck(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(raw_volume_is_self_describing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(disk_errors_are_counted_not_fatal, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
