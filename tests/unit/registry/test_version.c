/* SPDX-License-Identifier: Apache-2.0 */
/* Versions: naming, drafts, records, the frozen-field rule, seal, verify, delete. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static void auto_names_and_order(void **state)
{
	struct fx *f = *state;
	struct reg_version v, *list = NULL;
	size_t n = 0;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", NULL, NULL, &v), 0);
	assert_string_equal(v.name, "v1");
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "v3", NULL, &v), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "", NULL, &v), 0);
	assert_string_equal(v.name, "v4"); /* v<N+1> is v3 — taken — so the next free */
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "v3", NULL, NULL), -EEXIST);
	assert_non_null(strstr(cm_err_msg(), "already exists"));
	assert_int_equal(reg_version_list(f->st, "m", NULL, &list, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].name, "v1");
	assert_string_equal(list[2].name, "v4");
	free(list);
	/* The directory exists on disk, empty as mkdir makes it: no record, no metadata.json. */
	assert_null(fx_read(f->dir, "m/v3/metadata.json"));
	assert_int_equal(fx_fsck(f), 0);
	/* Given a record, its metadata.json is there. */
	{
		json_t *empty = json_object();

		assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "v5", empty, NULL), 0);
		json_decref(empty);
	}
	assert_non_null(strstr(fx_read(f->dir, "m/v5/metadata.json"), "\"version\": \"v5\""));
}

static void bad_names_and_missing(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_version_create(f->st, &fx_actor, "nope", "v1", NULL, NULL), -ENOENT);
	assert_non_null(strstr(cm_err_msg(), "no model 'nope'"));
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "../etc", NULL, NULL), -EINVAL);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "current", NULL, NULL), -EINVAL);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "metadata.json", NULL, NULL), -EINVAL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v9", NULL), -ENOENT);
	assert_non_null(strstr(cm_err_msg(), "no version 'v9'"));
	/* Nothing of the refused calls reached the disk. */
	assert_null(fx_read(f->dir, "m/current/metadata.json"));
	assert_int_equal(fx_fsck(f), 0);
}

static void seal_records_digests_and_protects(void **state)
{
	struct fx *f = *state;
	struct reg_file *files = NULL;
	struct reg_version v;
	struct stat sb;
	char path[4200];
	size_t n = 0;

	fx_version(f, "m", "v1", "model.pkl", "abc", "assets/vocab.txt", "hello", NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", &v), 0);
	assert_int_equal(v.state, REG_SEALED);
	assert_int_equal(v.total_size, 8);
	assert_int_equal(strlen(v.digest), 64);
	assert_int_equal(reg_version_files(f->st, "m", "v1", &files, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(files[0].path, "assets/vocab.txt");
	assert_string_equal(files[1].path, "model.pkl");
	assert_string_equal(files[1].sha256,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	reg_files_free(files, n);
	snprintf(path, sizeof(path), "%s/m/v1/model.pkl", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0222, 0);
	/* Idempotent. */
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", &v), 0);
	assert_int_equal(reg_version_verify(f->st, "m", "v1", NULL, NULL), 0);
	/* Writes are refused once sealed. */
	int64_t vid;
	assert_int_equal(reg_write_begin(f->st, "m", "v1", &vid), -EROFS);
	/* Tampering on the raw volume is found by verify. */
	chmod(path, 0644);
	fx_write(f->dir, "m/v1/model.pkl", "abd");
	assert_int_equal(reg_version_verify(f->st, "m", "v1", NULL, NULL), 1);
	assert_true(fx_fsck(f) > 0);
}

static void seal_refused_while_writing(void **state)
{
	struct fx *f = *state;
	int64_t vid;

	fx_version(f, "m", "v1", "model.pkl", "abc", NULL);
	assert_int_equal(reg_write_begin(f->st, "m", "v1", &vid), 0);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), -EBUSY);
	assert_non_null(strstr(cm_err_msg(), "open for writing"));
	reg_write_end(f->st, vid);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
}

struct seal_run {
	struct fx *f;
	int rc;
};

static void *seal_in_thread(void *p)
{
	struct seal_run *r = p;

	r->rc = reg_version_seal(r->f->st, &fx_actor, "m", "v1", NULL);
	return NULL;
}

/* From its start a seal holds the version still: new changes and record edits say EBUSY. */
static void seal_blocks_changes_while_it_waits(void **state)
{
	struct fx *f = *state;
	struct seal_run r = { .f = f, .rc = 1 };
	json_t *patch = json_pack("{ss}", "notes", "late");
	pthread_t t;
	int64_t vid, vid2;

	fx_version(f, "m", "v1", "model.pkl", "abc", NULL);
	assert_int_equal(reg_write_begin(f->st, "m", "v1", &vid), 0);
	assert_int_equal(pthread_create(&t, NULL, seal_in_thread, &r), 0);
	usleep(200 * 1000); /* the seal is waiting for our change to end */
	assert_int_equal(reg_write_begin(f->st, "m", "v1", &vid2), -EBUSY);
	assert_non_null(strstr(cm_err_msg(), "being sealed"));
	assert_int_equal(reg_version_metadata_patch(f->st, &fx_actor, "m", "v1", patch), -EBUSY);
	assert_int_equal(reg_version_metadata_remove(f->st, &fx_actor, "m", "v1"), -EBUSY);
	reg_write_end(f->st, vid);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(reg_write_begin(f->st, "m", "v1", &vid2), -EROFS);
	json_decref(patch);
}

/* metadata.json written as a file: parsed with its length, capped, names from its place. */
static void record_text_and_remove(void **state)
{
	struct fx *f = *state;
	char big[REG_META_MAX + 2];
	json_t *rec = NULL;

	fx_version(f, "m", "v1", "model.pkl", "abc", NULL);
	assert_null(fx_read(f->dir, "m/v1/metadata.json"));
	assert_int_equal(reg_version_metadata_set_text(f->st, &fx_actor, "m", "v1",
						       "{\"notes\": \"a\"}\0{}", 17), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "NUL"));
	memset(big, ' ', sizeof(big));
	assert_int_equal(reg_version_metadata_set_text(f->st, &fx_actor, "m", "v1", big,
						       sizeof(big)), -EFBIG);
	assert_int_equal(reg_version_metadata_set_text(f->st, &fx_actor, "m", "v1", "{bad", 4),
			 -EINVAL);
	assert_null(fx_read(f->dir, "m/v1/metadata.json"));
	/* A sibling's copy names the sibling: this version's name replaces it. */
	{
		const char *t = "{\"version\": \"v0\", \"notes\": \"a\"}";

		assert_int_equal(reg_version_metadata_set_text(f->st, &fx_actor, "m", "v1", t,
							       strlen(t)), 0);
	}
	assert_non_null(strstr(fx_read(f->dir, "m/v1/metadata.json"), "\"version\": \"v1\""));
	assert_int_equal(reg_version_metadata_set_text(f->st, &fx_actor, "m", "v1",
						       "{\"model_name\": \"other\"}", 23), -EINVAL);
	assert_int_equal(fx_fsck(f), 0);
	/* Removed: no record, no file; removing again is not an error. */
	assert_int_equal(reg_version_metadata_remove(f->st, &fx_actor, "m", "v1"), 0);
	assert_null(fx_read(f->dir, "m/v1/metadata.json"));
	assert_int_equal(reg_version_metadata_remove(f->st, &fx_actor, "m", "v1"), 0);
	assert_int_equal(reg_version_metadata_get(f->st, "m", "v1", &rec), 0);
	assert_null(json_object_get(rec, "notes"));
	json_decref(rec);
	assert_int_equal(fx_fsck(f), 0);
	fx_reopen(f);
	assert_null(fx_read(f->dir, "m/v1/metadata.json"));
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	assert_int_equal(reg_version_metadata_remove(f->st, &fx_actor, "m", "v1"), -EROFS);
	assert_int_equal(fx_fsck(f), 0);
}

/* Every entry is hashed, dot names included; a name JSON cannot carry fails the seal. */
static void seal_hashes_every_name(void **state)
{
	struct fx *f = *state;
	struct reg_file *files = NULL;
	char path[4200];
	struct stat sb;
	size_t n = 0;

	fx_version(f, "m", "v1", "model.pkl", "abc", "d/.s.tmp-9.pkl", "hidden", NULL);
	fx_write(f->dir, "m/v1/bad\xffname", "x");
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "UTF-8"));
	snprintf(path, sizeof(path), "%s/m/v1/model.pkl", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_not_equal(sb.st_mode & 0200, 0); /* still a draft, still writable */
	snprintf(path, sizeof(path), "%s/m/v1/bad\xffname", f->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	assert_int_equal(reg_version_files(f->st, "m", "v1", &files, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(files[0].path, "d/.s.tmp-9.pkl");
	reg_files_free(files, n);
	assert_int_equal(fx_fsck(f), 0);
	/* A file slipped in on the raw volume under such a name is found too. */
	fx_write(f->dir, "m/v1/d/.t.tmp-1.pkl", "late");
	assert_true(fx_fsck(f) > 0);
}

struct late_end {
	struct fx *f;
	int64_t vid;
};

static void *end_later(void *p)
{
	struct late_end *le = p;

	usleep(100 * 1000);
	reg_write_end(le->f->st, le->vid);
	return NULL;
}

static void seal_waits_for_a_closing_writer(void **state)
{
	struct fx *f = *state;
	struct late_end le = { .f = f };
	pthread_t t;

	/* close() through the mount returns before the release: the seal waits a moment. */
	fx_version(f, "m", "v1", "model.pkl", "abc", NULL);
	assert_int_equal(reg_write_begin(f->st, "m", "v1", &le.vid), 0);
	pthread_create(&t, NULL, end_later, &le);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	pthread_join(t, NULL);
}

static void seal_rejects_symlink_content(void **state)
{
	struct fx *f = *state;
	struct reg_version v;
	char path[4200];

	fx_version(f, "m", "v1", "model.pkl", "abc", NULL);
	snprintf(path, sizeof(path), "%s/m/v1/link", f->dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "not a regular file"));
	assert_int_equal(reg_version_get(f->st, "m", "v1", &v), 0);
	assert_int_equal(v.state, REG_DRAFT);
	/* The refused seal gave the draft its write bits back. */
	snprintf(path, sizeof(path), "%s/m/v1/model.pkl", f->dir);
	assert_int_equal(access(path, W_OK), 0);
}

static void metadata_rules(void **state)
{
	struct fx *f = *state;
	json_t *rec = json_pack("{ss s{sf} s{ss ss si} ss}", "git_commit", "3f2a9c1",
				"performance_metrics", "accuracy", 0.91,
				"training_data", "start_date", "2026-10-01", "end_date", "2026-10-31",
				"rows", 44640, "validation_status", "pending");
	json_t *got = NULL, *patch;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "v1", rec, NULL), 0);
	assert_int_equal(reg_version_metadata_get(f->st, "m", "v1", &got), 0);
	assert_string_equal(json_string_value(json_object_get(got, "model_name")), "m");
	assert_string_equal(json_string_value(json_object_get(got, "git_commit")), "3f2a9c1");
	assert_true(json_is_array(json_object_get(got, "deployed_to")));
	json_decref(got);
	/* Invalid JSON types are refused and the record is kept. */
	patch = json_pack("{si}", "git_commit", 5);
	assert_int_equal(reg_version_metadata_patch(f->st, &fx_actor, "m", "v1", patch), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "git_commit"));
	json_decref(patch);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	/* Frozen after sealing: lineage and training metrics. */
	patch = json_pack("{s{sf}}", "performance_metrics", "accuracy", 0.99);
	assert_int_equal(reg_version_metadata_patch(f->st, &fx_actor, "m", "v1", patch), -EROFS);
	assert_non_null(strstr(cm_err_msg(), "performance_metrics"));
	json_decref(patch);
	/* Later steps' fields still change. */
	patch = json_pack("{ss s{sf}}", "validation_status", "passed", "validation_metrics",
			  "latency_ms", 12.5);
	assert_int_equal(reg_version_metadata_patch(f->st, &fx_actor, "m", "v1", patch), 0);
	json_decref(patch);
	assert_int_equal(reg_version_metadata_get(f->st, "m", "v1", &got), 0);
	assert_string_equal(json_string_value(json_object_get(got, "validation_status")), "passed");
	assert_non_null(json_object_get(json_object_get(got, "performance_metrics"), "accuracy"));
	json_decref(got);
	/* The materialised file follows and is read-only. */
	assert_non_null(strstr(fx_read(f->dir, "m/v1/metadata.json"), "\"passed\""));
	json_decref(rec);
	assert_int_equal(fx_fsck(f), 0);
}

static void oversized_record(void **state)
{
	struct fx *f = *state;
	size_t big = REG_META_MAX + 10;
	char *s = malloc(big + 1);
	json_t *rec;

	memset(s, 'x', big);
	s[big] = '\0';
	rec = json_pack("{ss}", "notes", s);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", "v1", rec, NULL), -E2BIG);
	assert_int_equal(reg_version_get(f->st, "m", "v1", &(struct reg_version){ 0 }), -ENOENT);
	json_decref(rec);
	free(s);
}

static void delete_and_archive(void **state)
{
	struct fx *f = *state;
	struct reg_version v;

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "v2"), 0);
	assert_null(fx_read(f->dir, "m/v2/a"));
	assert_int_equal(reg_version_get(f->st, "m", "v2", &v), -ENOENT);
	assert_int_equal(reg_version_archive(f->st, &fx_actor, "m", "v1", NULL), -EINVAL);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v1", NULL, NULL), 0);
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "v1"), -EMLINK);
	assert_int_equal(reg_version_archive(f->st, &fx_actor, "m", "v1", NULL), -EMLINK);
	assert_int_equal(reg_alias_delete(f->st, &fx_actor, "m", "staging", NULL), 0);
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "v1"), -EROFS);
	assert_int_equal(reg_version_archive(f->st, &fx_actor, "m", "v1", NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v1", NULL, NULL), -ENOLINK);
	assert_int_equal(fx_fsck(f), 0);
}

static void list_filters(void **state)
{
	struct fx *f = *state;
	struct reg_version *l = NULL;
	struct reg_version_filter flt = { .state = REG_SEALED };
	size_t n = 0;

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	fx_version(f, "m", "v3", "a", "3", NULL);
	fx_pass(f, "m", "v2");
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	assert_int_equal(reg_version_list(f->st, "m", &flt, &l, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].name, "v1");
	free(l);
	flt = (struct reg_version_filter){ .state = -1, .validation_status = "passed" };
	assert_int_equal(reg_version_list(f->st, "m", &flt, &l, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].name, "v2");
	free(l);
	flt = (struct reg_version_filter){ .state = -1, .after_seq = 1, .limit = 1 };
	assert_int_equal(reg_version_list(f->st, "m", &flt, &l, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].name, "v2");
	free(l);
}

static void auto_names_never_reused(void **state)
{
	struct fx *f = *state;
	struct reg_version v;

	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", NULL, NULL, &v), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", NULL, NULL, &v), 0);
	assert_string_equal(v.name, "v2");
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "m", "v2"), 0);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", NULL, NULL, &v), 0);
	assert_string_equal(v.name, "v3"); /* v2 existed once: its name is not handed out again */
	fx_reopen(f);
	assert_int_equal(reg_version_create(f->st, &fx_actor, "m", NULL, NULL, &v), 0);
	assert_string_equal(v.name, "v4");
}

struct seal_arg {
	struct fx *f;
	int rc;
};

static void *seal_thread(void *p)
{
	struct seal_arg *a = p;

	a->rc = reg_version_seal(a->f->st, &fx_actor, "m", "v1", NULL);
	return NULL;
}

static void concurrent_seals_both_succeed(void **state)
{
	struct fx *f = *state;
	struct seal_arg a[4];
	pthread_t t[4];
	char big[1 << 16];
	int64_t n = 0;
	json_t *ev = NULL;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fx_version(f, "m", "v1", "a.bin", big, "b.bin", big, "c.bin", big, NULL);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct seal_arg){ .f = f, .rc = -1 };
		pthread_create(&t[i], NULL, seal_thread, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].rc, 0);
	}
	struct reg_event_filter flt = { .kind = "version.seal" };
	assert_int_equal(reg_event_list(f->st, "m", &flt, &ev), 0);
	n = (int64_t)json_array_size(ev);
	assert_int_equal(n, 1); /* sealed once, whoever asked */
	json_decref(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(auto_names_never_reused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(concurrent_seals_both_succeed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(auto_names_and_order, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(bad_names_and_missing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(seal_records_digests_and_protects, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(seal_refused_while_writing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(seal_waits_for_a_closing_writer, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(seal_blocks_changes_while_it_waits, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(record_text_and_remove, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(seal_hashes_every_name, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(seal_rejects_symlink_content, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(metadata_rules, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(oversized_record, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(delete_and_archive, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(list_filters, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
