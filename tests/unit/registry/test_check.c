/* SPDX-License-Identifier: Apache-2.0 */
/* fsck finds each kind of problem; --repair heals what the db is the truth for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include "fixture.h"

struct seen {
	int kinds[16];
	int repaired;
};

static void collect(void *ctx, enum reg_fsck_kind kind, const char *where, const char *detail,
		    int repaired)
{
	struct seen *s = ctx;

	(void)detail;
	if (getenv("MODELFS_TEST_VERBOSE"))
		fprintf(stderr, "fsck: %s %s%s\n", reg_fsck_kind_name(kind), where,
			repaired ? " (repaired)" : "");
	s->kinds[kind]++;
	s->repaired += repaired;
}

static void path_of(struct fx *f, char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s", f->dir, rel);
}

static void finds_each_problem_and_repairs(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };
	char p[4300], q[4300];

	fx_version(f, "m", "v1", "model.pkl", "one", NULL);
	fx_version(f, "m", "v2", "model.pkl", "two", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v2", NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "staging", "v2", NULL, NULL), 0);
	assert_int_equal(fx_fsck(f), 0);

	/* Damage the raw volume in every way an operator might. */
	path_of(f, p, sizeof(p), "m/current");
	unlink(p);
	assert_int_equal(symlink("v2", p), 0);                     /* stale alias */
	path_of(f, p, sizeof(p), "m/staging");
	unlink(p);                                                 /* missing alias */
	path_of(f, p, sizeof(p), "m/prod");
	assert_int_equal(symlink("v1", p), 0);                     /* alias the db does not know */
	path_of(f, p, sizeof(p), "m/v1/model.pkl");
	chmod(p, 0644);                                            /* writable sealed file */
	fx_write(f->dir, "m/v2/extra.bin", "x");                   /* extra file */
	path_of(f, p, sizeof(p), "m/v2/model.pkl");
	chmod(p, 0644);
	fx_write(f->dir, "m/v2/model.pkl", "TWO");                 /* digest mismatch */
	fx_write(f->dir, "m/v1/metadata.json", "{}");              /* metadata differs */
	fx_write(f->dir, "m/v7/model.pkl", "new");                 /* unknown version dir */
	fx_write(f->dir, "n/v1/model.pkl", "n");                   /* unknown model dir */

	assert_true(reg_store_fsck(f->st, 0, 1, collect, &s) > 0);
	assert_int_equal(s.kinds[REG_FSCK_ALIAS_STALE], 1);
	assert_int_equal(s.kinds[REG_FSCK_ALIAS_MISSING], 1);
	assert_int_equal(s.kinds[REG_FSCK_ALIAS_DANGLING], 0);
	assert_int_equal(s.kinds[REG_FSCK_ALIAS_UNKNOWN], 1); /* prod: the db never made it */
	assert_int_equal(s.kinds[REG_FSCK_MODE], 2);
	assert_int_equal(s.kinds[REG_FSCK_EXTRA_FILE], 1);
	assert_int_equal(s.kinds[REG_FSCK_DIGEST], 1);
	assert_true(s.kinds[REG_FSCK_METADATA] >= 1);
	assert_int_equal(s.kinds[REG_FSCK_EXTRA_DIR], 2);
	assert_int_equal(s.repaired, 0);

	/* Repair: only the content damage is left (it cannot be restored). */
	memset(&s, 0, sizeof(s));
	int left = reg_store_fsck(f->st, 1, 1, collect, &s);
	assert_int_equal(left, 3); /* the digest mismatch, the extra file, the unknown link */
	assert_string_equal(fx_readlink(f->dir, "m/current"), "v1");
	assert_string_equal(fx_readlink(f->dir, "m/staging"), "v2");
	assert_string_equal(fx_readlink(f->dir, "m/prod"), "v1"); /* never removed */
	struct reg_version v;
	assert_int_equal(reg_version_get(f->st, "m", "v7", &v), 0);
	assert_int_equal(v.state, REG_DRAFT);
	assert_int_equal(reg_version_get(f->st, "n", "v1", &v), 0);
	path_of(f, q, sizeof(q), "m/v1/model.pkl");
	assert_int_not_equal(access(q, W_OK), 0 == getuid() ? 1 : 0);
	struct stat sb;
	assert_int_equal(stat(q, &sb), 0);
	assert_int_equal(sb.st_mode & 0222, 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(reg_store_fsck(f->st, 0, 1, collect, &s), 3);
	assert_int_equal(s.kinds[REG_FSCK_DIGEST] + s.kinds[REG_FSCK_EXTRA_FILE], 2);
	assert_int_equal(s.kinds[REG_FSCK_ALIAS_UNKNOWN], 1);
}

static void reconcile_heals_lost_disk_update(void **state)
{
	struct fx *f = *state;
	char p[4300];

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	fx_pass(f, "m", "v1");
	fx_pass(f, "m", "v2");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v2", NULL, NULL), 0);
	/*
	 * Simulate a crash between the commit and the disk update: put the old
	 * disk state back (symlink gone, metadata.json from before).
	 */
	path_of(f, p, sizeof(p), "m/current");
	unlink(p);
	fx_write(f->dir, "m/metadata.json", "{\"event_id\": 1}");
	fx_reopen(f);
	assert_string_equal(fx_readlink(f->dir, "m/current"), "v2");
	assert_non_null(strstr(fx_read(f->dir, "m/metadata.json"), "\"current\": \"v2\""));
	assert_int_equal(fx_fsck(f), 0);
}

static void reconcile_rewrites_a_truncated_model_file(void **state)
{
	struct fx *f = *state;

	/* What a power cut can leave of a generated file whose data was not synced. */
	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_pass(f, "m", "v1");
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	fx_write(f->dir, "m/metadata.json", "");
	assert_true(fx_fsck(f) > 0);
	fx_reopen(f);
	assert_non_null(strstr(fx_read(f->dir, "m/metadata.json"), "\"current\": \"v1\""));
	assert_int_equal(fx_fsck(f), 0);
}


/* The event id in <model>/metadata.json is a plain file: it never decides a removal. */
static void open_never_removes_on_the_word_of_a_volume_file(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };

	fx_version(f, "k1", "gone", "a", "1", NULL);
	assert_int_equal(reg_version_delete(f->st, &fx_actor, "k1", "gone"), 0);
	assert_null(fx_read(f->dir, "k1/gone/a"));
	fx_version(f, "k1", "v1", "a", "1", NULL);
	fx_write(f->dir, "k1/gone/weights.bin", "hand-copied");
	fx_write(f->dir, "k1/metadata.json", "{\"event_id\": 1}\n");
	fx_reopen(f);
	assert_string_equal(fx_read(f->dir, "k1/gone/weights.bin"), "hand-copied");
	assert_true(reg_store_fsck(f->st, 0, 1, collect, &s) > 0);
	assert_int_equal(s.kinds[REG_FSCK_EXTRA_DIR], 1);
}

/* A delete a crash cut short: .modelfs/deleted/ holds it, the db says which way it went. */
static void interrupted_deletes_are_finished_or_undone(void **state)
{
	struct fx *f = *state;
	struct reg_version v;
	char from[4300], to[4300];

	fx_version(f, "m", "d1", "a", "draft bytes", NULL);
	assert_int_equal(reg_version_get(f->st, "m", "d1", &v), 0);
	/* Moved aside, then killed before the commit: the row is there, so it comes back. */
	snprintf(from, sizeof(from), "%s/m/d1", f->dir);
	snprintf(to, sizeof(to), "%s/.modelfs/deleted", f->dir);
	assert_int_equal(mkdir(to, 0700), 0);
	snprintf(to, sizeof(to), "%s/.modelfs/deleted/m@d1@%lld", f->dir, (long long)v.id);
	assert_int_equal(rename(from, to), 0);
	fx_reopen(f);
	assert_string_equal(fx_read(f->dir, "m/d1/a"), "draft bytes");
	/* Committed, then killed before the removal: the row is gone, so is the entry. */
	fx_write(f->dir, ".modelfs/deleted/m@old@99999/a", "x");
	fx_reopen(f);
	assert_null(fx_read(f->dir, ".modelfs/deleted/m@old@99999/a"));
	assert_int_equal(fx_fsck(f), 0);
}

/* What an older release let through: an alias named like a version, in the db. */
static void a_store_with_a_name_clash_opens_and_repairs(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };
	struct reg_alias a;

	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_version(f, "m", "v2", "a", "2", NULL);
	fx_version(f, "m", "v3", "a", "3", NULL);
	fx_pass(f, "m", "v1");
	fx_pass(f, "m", "v3");
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v2", NULL), 0);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v1", NULL, NULL), 0);
	reg_store_close(f->st);
	f->st = NULL;
	assert_int_equal(fx_sql(f, "INSERT INTO aliases(model_id, name, version_id, "
				"updated_at) SELECT model_id, 'v2', id, 0 FROM versions "
				"WHERE name = 'v3'; INSERT INTO events(id, ts, model, version, "
				"alias, kind, channel, actor, after) VALUES ((SELECT max(id) + 1 "
				"FROM events), 1, 'm', 'v3', 'v2', 'alias.set', 'api', 'old', 'v3')",
				NULL, 0), 0);
	if (fx_pg()) /* the event counter follows the row made by hand */
		assert_int_equal(fx_sql(f, "UPDATE event_seq SET last = (SELECT max(id) FROM events)",
					NULL, 0), 0);
	assert_int_equal(reg_store_open(f->dir, REG_OPEN_LOCK, &f->st), 0);
	/* Everything else is still written: a promotion reaches the disk. */
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m", "current", "v3", NULL, NULL), 0);
	assert_string_equal(fx_readlink(f->dir, "m/current"), "v3");
	assert_string_equal(fx_read(f->dir, "m/v2/a"), "2");
	assert_true(reg_store_fsck(f->st, 0, 1, collect, &s) > 0);
	assert_int_equal(s.kinds[REG_FSCK_NAME_CLASH], 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(reg_store_fsck(f->st, 1, 1, collect, &s), 0);
	assert_int_equal(reg_alias_get(f->st, "m", "v2", &a), -ENOENT);
	assert_string_equal(fx_read(f->dir, "m/v2/a"), "2");
	assert_int_equal(fx_fsck(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reconcile_rewrites_a_truncated_model_file, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(finds_each_problem_and_repairs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(reconcile_heals_lost_disk_update, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(open_never_removes_on_the_word_of_a_volume_file,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(interrupted_deletes_are_finished_or_undone, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(a_store_with_a_name_clash_opens_and_repairs, fx_setup,
						fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
