/* SPDX-License-Identifier: Apache-2.0 */
/* Opening stores: init, the single-writer lock, read-only opens, bad paths. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static void init_and_exists(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_store_exists(f->dir), 0);
	assert_int_equal(reg_store_open(f->dir, REG_OPEN_LOCK, &f->st), -ENOENT);
	assert_non_null(strstr(cm_err_msg(), "modelfs init"));
	assert_int_equal(reg_store_open(f->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &f->st), 0);
	assert_int_equal(reg_store_exists(f->dir), 1);
	if (fx_pg()) {
		/* The metadata is in PostgreSQL: the directory holds its id, not a SQLite file. */
		char sql[256];

		assert_null(fx_read(f->dir, ".modelfs/registry.db"));
		assert_non_null(fx_read(f->dir, ".modelfs/store-id"));
		snprintf(sql, sizeof(sql), "DO $$ BEGIN IF (SELECT value FROM store_info WHERE "
			 "key = 'store_id') <> '%s' THEN RAISE 'other store'; END IF; END $$",
			 fx_read(f->dir, ".modelfs/store-id"));
		assert_int_equal(fx_sql(f, sql, NULL, 0), 0);
		return;
	}
	assert_non_null(fx_read(f->dir, ".modelfs/registry.db") ? "" : NULL);
	assert_null(fx_read(f->dir, ".modelfs/store-id"));
}

static void one_writer(void **state)
{
	struct fx *f = *state;
	struct reg_store *other = NULL;
	int status;
	pid_t pid;

	/* flock is per open file description: a second process must be refused. */
	pid = fork();
	if (pid == 0) {
		int rc = reg_store_open(f->dir, REG_OPEN_LOCK, &other);

		/* With PostgreSQL, daemons on many nodes share a store: the db serialises them. */
		if (reg_db_get()) {
			reg_store_close(other);
			_exit(rc == 0 ? 0 : 1);
		}
		_exit(rc == -EBUSY && strstr(cm_err_msg(), "in use by another modelfs process") ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Read-only opens work beside the writer. */
	pid = fork();
	if (pid == 0) {
		int rc = reg_store_open(f->dir, REG_OPEN_READONLY, &other);

		reg_store_close(other);
		_exit(rc == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void readonly_refuses_writes(void **state)
{
	struct fx *f = *state;
	struct reg_store *ro = NULL;

	fx_version(f, "m", "v1", "a", "1", NULL);
	assert_int_equal(reg_store_open(f->dir, REG_OPEN_READONLY, &ro), 0);
	assert_int_equal(reg_model_create(ro, &fx_actor, "n", NULL), -EROFS);
	assert_int_equal(reg_store_fsck(ro, 1, 0, NULL, NULL), -EROFS);
	assert_int_equal(reg_version_get(ro, "m", "v1", &(struct reg_version){ 0 }), 0);
	reg_store_close(ro);
}

static void bad_paths(void **state)
{
	struct reg_store *st = NULL;

	(void)state;
	assert_int_equal(reg_store_open("", REG_OPEN_CREATE, &st), -EINVAL);
	assert_int_equal(reg_store_open("/nonexistent/modelfs", REG_OPEN_CREATE, &st), -ENOENT);
	assert_non_null(strstr(cm_err_msg(), "/nonexistent/modelfs"));
	assert_int_equal(reg_store_open("/etc/hostname", REG_OPEN_CREATE, &st), -ENOTDIR);
	assert_null(st);
	reg_store_close(NULL);
}

static void newer_schema_refused(void **state)
{
	struct fx *f = *state;
	char cmd[4400];

	reg_store_close(f->st);
	f->st = NULL;
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s/.modelfs/registry.db' 'PRAGMA user_version = 999'",
		 f->dir);
	if (fx_pg())
		assert_int_equal(fx_sql(f, "UPDATE modelfs_schema SET version = 999", NULL, 0), 0);
	else if (system(cmd) != 0)
		skip();
	assert_int_equal(reg_store_open(f->dir, REG_OPEN_LOCK, &f->st), -EPROTO);
	assert_non_null(strstr(cm_err_msg(), "newer"));
}

struct heard {
	int n;
	char kinds[16][32];
	char channel[16];
	int locked_out;
	struct reg_store *st;
};

static void hook(void *ctx, const struct reg_change *c)
{
	struct heard *h = ctx;
	struct reg_model m;

	if (h->n < 16)
		snprintf(h->kinds[h->n], sizeof(h->kinds[0]), "%s:%s", c->kind, c->alias ? c->alias : "");
	h->n++;
	snprintf(h->channel, sizeof(h->channel), "%s", c->channel);
	/* Called with the store's locks released: calling back in must not deadlock. */
	h->locked_out += reg_model_get(h->st, "m", &m) == 0;
}

static void change_hook_after_commit(void **state)
{
	struct fx *f = *state;
	struct heard h = { .st = f->st };
	struct reg_actor api = { .channel = "api", .name = "token-a" };

	reg_store_set_hook(f->st, hook, &h);
	assert_int_equal(reg_model_create(f->st, &api, "m", NULL), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.kinds[0], "model.create:");
	assert_string_equal(h.channel, "api");
	fx_version(f, "m", "v1", "a", "1", NULL);
	fx_pass(f, "m", "v1");
	h.n = 0;
	assert_int_equal(reg_alias_set(f->st, &api, "m", "current", "v1", NULL, NULL), 0);
	/* The implicit seal and the alias change, in order. */
	assert_int_equal(h.n, 2);
	assert_string_equal(h.kinds[0], "version.seal:");
	assert_string_equal(h.kinds[1], "alias.set:current");
	/* A refused change tells nothing but its refusal; a failed one nothing at all. */
	h.n = 0;
	assert_int_equal(reg_alias_set(f->st, &api, "m", "current", "v9", NULL, NULL), -ENOENT);
	assert_int_equal(h.n, 0);
	assert_true(h.locked_out >= 3);
	reg_store_set_hook(f->st, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(change_hook_after_commit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(init_and_exists, fx_setup_empty, fx_teardown),
		cmocka_unit_test_setup_teardown(one_writer, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(readonly_refuses_writes, fx_setup, fx_teardown),
		cmocka_unit_test(bad_paths),
		cmocka_unit_test_setup_teardown(newer_schema_refused, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
