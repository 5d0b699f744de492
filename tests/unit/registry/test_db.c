/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite layer: migrations, pragmas, error mapping, busy handling. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "db_i.h"
#include "fixture.h"

static int pragma_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void migrations_and_pragmas(void **state)
{
	struct fx *f = *state;
	extern const unsigned reg_migrations_count;
	struct reg_conn *c = &f->st->writer;
	sqlite3_stmt *s = NULL;
	char mode[16] = "";

	FX_SQLITE_ONLY();
	assert_int_equal(pragma_int(c->db, "PRAGMA user_version"), (int)reg_migrations_count);
	assert_int_equal(pragma_int(c->db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(pragma_int(c->db, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(sqlite3_prepare_v2(c->db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	snprintf(mode, sizeof(mode), "%s", sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	assert_string_equal(mode, "wal");
	/* Migrating again is a no-op. */
	assert_int_equal(db_migrate(c), 0);
}

static void error_mapping(void **state)
{
	struct fx *f = *state;

	(void)f;
	assert_int_equal(db_sqlite_err(NULL, SQLITE_CONSTRAINT_UNIQUE, "x"), -EEXIST);
	assert_int_equal(db_sqlite_err(NULL, SQLITE_CONSTRAINT_CHECK, "x"), -EINVAL);
	assert_int_equal(db_sqlite_err(NULL, SQLITE_BUSY, "x"), -EBUSY);
	assert_int_equal(db_sqlite_err(NULL, SQLITE_FULL, "x"), -ENOSPC);
	assert_int_equal(db_sqlite_err(NULL, SQLITE_NOMEM, "x"), -ENOMEM);
	assert_int_equal(db_sqlite_err(NULL, SQLITE_READONLY, "x"), -EROFS);
	assert_int_equal(db_sqlite_err(NULL, SQLITE_IOERR_FSYNC, "x"), -EIO);
	assert_non_null(strstr(cm_err_msg(), "x: "));
}

static void pg_error_mapping(void **state)
{
	(void)state;
	assert_int_equal(db_pg_errno("23505"), -EEXIST);
	assert_int_equal(db_pg_errno("23514"), -EINVAL);
	assert_int_equal(db_pg_errno("40001"), -EBUSY);
	assert_int_equal(db_pg_errno("40P01"), -EBUSY);
	assert_int_equal(db_pg_errno("55P03"), -EBUSY);
	assert_int_equal(db_pg_errno("08006"), -EAGAIN);
	assert_int_equal(db_pg_errno("57P01"), -EAGAIN);
	assert_int_equal(db_pg_errno(NULL), -EAGAIN);
	assert_int_equal(db_pg_errno("53100"), -ENOSPC);
	assert_int_equal(db_pg_errno("25006"), -EROFS);
	assert_int_equal(db_pg_errno("XX000"), -EIO);
}

static void busy_db_reports_ebusy(void **state)
{
	struct fx *f = *state;
	char path[4200];
	sqlite3 *h = NULL;

	FX_SQLITE_ONLY();
	/* Another process holding a write transaction: our write waits, then says EBUSY. */
	snprintf(path, sizeof(path), "%s/.modelfs/registry.db", f->dir);
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_busy_timeout(f->st->writer.db, 50);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), -EBUSY);
	assert_non_null(strstr(cm_err_msg(), "locked"));
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	assert_int_equal(reg_model_create(f->st, &fx_actor, "m", NULL), 0);
	/* The refused call left nothing behind. */
	assert_int_equal(fx_fsck(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(migrations_and_pragmas, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(error_mapping, fx_setup, fx_teardown),
		cmocka_unit_test(pg_error_mapping),
		cmocka_unit_test_setup_teardown(busy_db_reports_ebusy, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
