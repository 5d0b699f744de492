/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite backend: .modelfs/registry.db in WAL mode, migrations under
 * PRAGMA user_version, the start-up integrity check, and the mapping of
 * SQLite result codes to -errno. SQLite runs in multi-thread mode
 * (SQLITE_OPEN_NOMUTEX): db.c's connection mutexes do the serialising.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_i.h"

struct lite_stmt {
	struct db_stmt base;
	sqlite3_stmt *s;
};

#define LS(x) (((struct lite_stmt *)(x))->s)
#define DBH(c) ((sqlite3 *)(c)->db)

/* The -errno for a SQLite result code. */
static int lite_errno(int src)
{
	switch (src & 0xff) {
	case SQLITE_CONSTRAINT:
		return (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY) ? -EEXIST
											 : -EINVAL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	default:
		return -EIO;
	}
}

int db_sqlite_err(struct reg_conn *c, int src, const char *what)
{
	const char *msg = c && c->db ? sqlite3_errmsg(DBH(c)) : sqlite3_errstr(src);

	return cm_err_set(lite_errno(src), "%s: %s (sqlite %d)", what, msg, src);
}

static int lite_exec(struct reg_conn *c, const char *sql, const char *what)
{
	char *emsg = NULL;
	int src = sqlite3_exec(DBH(c), sql, NULL, NULL, &emsg);

	sqlite3_free(emsg);
	if (src != SQLITE_OK)
		return db_sqlite_err(c, src, what);
	return 0;
}

static int lite_schema_version(struct reg_conn *c, int *out)
{
	sqlite3_stmt *s = NULL;
	int src;

	if (sqlite3_prepare_v2(DBH(c), "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return db_sqlite_err(c, sqlite3_errcode(DBH(c)), "reading the schema version");
	src = sqlite3_step(s);
	if (src == SQLITE_ROW)
		*out = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (src != SQLITE_ROW)
		return db_sqlite_err(c, src, "reading the schema version");
	return 0;
}

static int lite_migrate(struct reg_conn *c)
{
	int version = 0;
	int rc;

	rc = lite_schema_version(c, &version);
	if (rc < 0)
		return rc;
	if (version > (int)reg_migrations_count)
		return cm_err_set(-EPROTO, "the store's schema (version %d) is newer than this modelfs "
				  "understands (%u); upgrade modelfs", version, reg_migrations_count);
	for (unsigned i = (unsigned)version; i < reg_migrations_count; i++) {
		char pragma[64];

		rc = lite_exec(c, "BEGIN IMMEDIATE", "starting a migration");
		if (rc < 0)
			return rc;
		rc = lite_exec(c, reg_migrations[i], reg_migrations_names[i]);
		if (rc == 0) {
			snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u", i + 1);
			rc = lite_exec(c, pragma, "recording the schema version");
		}
		if (rc == 0)
			rc = lite_exec(c, "COMMIT", "committing a migration");
		if (rc < 0) {
			sqlite3_exec(DBH(c), "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return 0;
}

/* What the start-up integrity check may spend; a larger db is opened after that much checked. */
#define DB_CHECK_BUDGET_US (20 * 1000000LL)

static int check_progress(void *deadline)
{
	return cm_time_now_us() > *(const int64_t *)deadline;
}

static int db_damaged(const char *what)
{
	return cm_err_set(-EUCLEAN, "its registry database .modelfs/" REG_DB_NAME " is damaged "
			  "(%.80s) and modelfs will not open it. Stop every modelfs on this store, "
			  "restore .modelfs/" REG_DB_NAME " from a backup (remove the -wal and -shm "
			  "files beside it), then run `modelfs fsck STORE`. Without a backup, move "
			  ".modelfs aside and run `modelfs init STORE` to adopt the volume afresh "
			  "(history and aliases' past are lost)", what);
}

/*
 * PRAGMA quick_check, stopped at the first problem and after
 * DB_CHECK_BUDGET_US (a db too large to finish in that is opened: the
 * pages read so far were sound). -EUCLEAN with what to do when damaged.
 */
static int lite_check(struct reg_conn *c)
{
	int64_t deadline = cm_time_now_us() + DB_CHECK_BUDGET_US;
	sqlite3_stmt *s = NULL;
	char first[256] = "";
	int src;

	sqlite3_progress_handler(DBH(c), 1000, check_progress, &deadline);
	src = sqlite3_prepare_v2(DBH(c), "PRAGMA quick_check(1)", -1, &s, NULL);
	if (src == SQLITE_OK) {
		src = sqlite3_step(s);
		if (src == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(s, 0);

			cm_strlcpy(first, t ? (const char *)t : "", sizeof(first));
			src = SQLITE_OK;
		} else if (src == SQLITE_DONE) {
			src = SQLITE_OK;
		} else {
			src = sqlite3_extended_errcode(DBH(c));
		}
	}
	if (src != SQLITE_OK)
		cm_strlcpy(first, sqlite3_errmsg(DBH(c)), sizeof(first));
	sqlite3_finalize(s);
	sqlite3_progress_handler(DBH(c), 0, NULL, NULL);
	if (src == SQLITE_INTERRUPT)
		return 0;
	if ((src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB)
		return db_damaged(first);
	if (src != SQLITE_OK)
		return db_sqlite_err(c, src, "checking the database");
	if (strcmp(first, "ok"))
		return db_damaged(first[0] ? first : "quick_check gave no answer");
	return 0;
}

/* An open that failed on a damaged file says so, and what to do. */
static int open_failed(struct reg_conn *c, int rc)
{
	int src = c->db ? sqlite3_extended_errcode(DBH(c)) : SQLITE_OK;

	if ((src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB)
		return db_damaged(sqlite3_errmsg(DBH(c)));
	return rc;
}

static int lite_open(struct reg_conn *c, const char *path, int readonly)
{
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
		    SQLITE_OPEN_NOMUTEX;
	sqlite3 *h = NULL;
	int src;
	int rc;

	src = sqlite3_open_v2(path, &h, flags, NULL);
	c->db = h;
	if (src != SQLITE_OK)
		return open_failed(c, db_sqlite_err(c, src, "opening the registry database"));
	sqlite3_extended_result_codes(h, 1);
	sqlite3_busy_timeout(h, 10000);
	if (!readonly) {
		rc = lite_exec(c, "PRAGMA journal_mode = WAL", "enabling WAL");
		if (rc < 0)
			return open_failed(c, rc);
	}
	/* FULL: a committed transaction survives power loss, not only a crash. */
	rc = lite_exec(c, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", "setting pragmas");
	if (rc < 0)
		return open_failed(c, rc);
	/* The writer checks the file once; a read-only open checks with its first reader. */
	if (!readonly || (c == &c->st->readers[0] && !c->st->writer.db))
		return lite_check(c);
	return 0;
}

static void lite_close(struct reg_conn *c)
{
	if (c->db) {
		sqlite3_close(DBH(c));
		c->db = NULL;
	}
}

static void lite_shutdown(struct reg_conn *c)
{
	sqlite3_wal_checkpoint_v2(DBH(c), NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static int lite_begin(struct reg_conn *c)
{
	return lite_exec(c, "BEGIN IMMEDIATE", "starting a transaction");
}

static int lite_in_txn(struct reg_conn *c)
{
	return !sqlite3_get_autocommit(DBH(c));
}

static int lite_prepare(struct reg_conn *c, int id, const char *sql, struct db_stmt **out)
{
	struct lite_stmt *ls = calloc(1, sizeof(*ls));
	int rc;

	if (!ls)
		return cm_err_set(-ENOMEM, "out of memory");
	if (sqlite3_prepare_v3(DBH(c), sql, -1, SQLITE_PREPARE_PERSISTENT, &ls->s, NULL) !=
	    SQLITE_OK) {
		rc = db_sqlite_err(c, sqlite3_errcode(DBH(c)), "preparing a statement");
		free(ls);
		return rc;
	}
	ls->base.c = c;
	ls->base.id = id;
	*out = &ls->base;
	return 0;
}

static void lite_finalize(struct db_stmt *s)
{
	sqlite3_finalize(LS(s));
	free(s);
}

static int lite_step(struct db_stmt *s, const char *what, const char *name)
{
	struct reg_conn *c = s->c;
	const char *msg;
	int src = sqlite3_step(LS(s));

	if (src == SQLITE_ROW)
		return 1;
	if (src == SQLITE_DONE)
		return 0;
	msg = src == sqlite3_extended_errcode(DBH(c)) ? sqlite3_errmsg(DBH(c)) : sqlite3_errstr(src);
	return cm_err_set(lite_errno(src), "%s (%s): %s (sqlite %d)", what, name, msg, src);
}

static void lite_reset(struct db_stmt *s)
{
	sqlite3_reset(LS(s));
	sqlite3_clear_bindings(LS(s));
}

static int lite_bind(int src)
{
	return src == SQLITE_OK ? 0 : lite_errno(src);
}

static int lite_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	return lite_bind(sqlite3_bind_int64(LS(s), i, v));
}

static int lite_bind_double(struct db_stmt *s, int i, double v)
{
	return lite_bind(sqlite3_bind_double(LS(s), i, v));
}

static int lite_bind_text(struct db_stmt *s, int i, const char *v)
{
	return lite_bind(sqlite3_bind_text(LS(s), i, v, -1, SQLITE_TRANSIENT));
}

static int lite_bind_null(struct db_stmt *s, int i)
{
	return lite_bind(sqlite3_bind_null(LS(s), i));
}

static int64_t lite_col_int64(struct db_stmt *s, int i)
{
	return sqlite3_column_int64(LS(s), i);
}

static double lite_col_double(struct db_stmt *s, int i)
{
	return sqlite3_column_double(LS(s), i);
}

static const char *lite_col_str(struct db_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(LS(s), i);
}

static int lite_col_null(struct db_stmt *s, int i)
{
	return sqlite3_column_type(LS(s), i) == SQLITE_NULL;
}

static int lite_col_count(struct db_stmt *s)
{
	return sqlite3_column_count(LS(s));
}

static const char *lite_col_name(struct db_stmt *s, int i)
{
	return sqlite3_column_name(LS(s), i);
}

static int lite_col_type(struct db_stmt *s, int i)
{
	switch (sqlite3_column_type(LS(s), i)) {
	case SQLITE_NULL:
		return DB_T_NULL;
	case SQLITE_INTEGER:
		return DB_T_INT;
	case SQLITE_FLOAT:
		return DB_T_FLOAT;
	default:
		return DB_T_TEXT;
	}
}

static int64_t lite_changes(struct reg_conn *c)
{
	return sqlite3_changes(DBH(c));
}

static int64_t lite_last_id(struct reg_conn *c)
{
	return sqlite3_last_insert_rowid(DBH(c));
}

const struct db_ops db_sqlite_ops = {
	.kind = "sqlite",
	.open = lite_open,
	.close = lite_close,
	.exec = lite_exec,
	.begin = lite_begin,
	.in_txn = lite_in_txn,
	.migrate = lite_migrate,
	.schema_version = lite_schema_version,
	.prepare = lite_prepare,
	.finalize = lite_finalize,
	.step = lite_step,
	.reset = lite_reset,
	.bind_int64 = lite_bind_int64,
	.bind_double = lite_bind_double,
	.bind_text = lite_bind_text,
	.bind_null = lite_bind_null,
	.col_int64 = lite_col_int64,
	.col_double = lite_col_double,
	.col_str = lite_col_str,
	.col_null = lite_col_null,
	.col_count = lite_col_count,
	.col_name = lite_col_name,
	.col_type = lite_col_type,
	.changes = lite_changes,
	.last_id = lite_last_id,
	.shutdown = lite_shutdown,
};
