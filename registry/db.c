/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite layer: connections, migrations, prepared statements and the
 * mapping of SQLite result codes to -errno.
 *
 * Threading model. A store has one writer connection and REG_READERS reader
 * connections, each guarded by its own mutex; a connection and its prepared
 * statements are only ever used by the thread holding that mutex. Every
 * write runs on the writer inside BEGIN IMMEDIATE, and the writer's mutex
 * stays held after COMMIT until the disk view (symlinks, metadata files) has
 * been brought in step, so disk changes happen in commit order. Reads take
 * any free reader; WAL lets them run beside the writer and each sees the
 * last committed state. SQLite itself runs in multi-thread mode
 * (SQLITE_OPEN_NOMUTEX): our mutexes do the serialising.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reg_i.h"

extern const char *const reg_migrations[];
extern const char *const reg_migrations_names[];
extern const unsigned reg_migrations_count;

static const char *const sql_text[REG_SQL_COUNT] = {
#define X(id, sql) [REG_SQL_##id] = sql,
	REG_SQL_LIST(X)
	REG_SQL_GIT_LIST(X)
#undef X
};

static const char *const sql_name[REG_SQL_COUNT] = {
#define X(id, sql) [REG_SQL_##id] = #id,
	REG_SQL_LIST(X)
	REG_SQL_GIT_LIST(X)
#undef X
};

int (*db_step_fault)(sqlite3_stmt *s);

/*
 * A bind that failed (SQLite copies text: it can run out of memory) leaves
 * its parameter NULL; the next db_step() on this thread fails instead of
 * running the statement with it. Binds and their step always share a thread.
 */
static _Thread_local int bind_failed;

/* The -errno for a SQLite result code. */
static int db_errno(int src)
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

int db_err(struct reg_conn *c, int src, const char *what)
{
	const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src);

	return cm_err_set(db_errno(src), "%s: %s (sqlite %d)", what, msg, src);
}

static int conn_exec(struct reg_conn *c, const char *sql, const char *what)
{
	char *emsg = NULL;
	int src = sqlite3_exec(c->db, sql, NULL, NULL, &emsg);

	sqlite3_free(emsg);
	if (src != SQLITE_OK)
		return db_err(c, src, what);
	return 0;
}

int db_migrate(sqlite3 *db)
{
	struct reg_conn c = { .db = db };
	sqlite3_stmt *s = NULL;
	int version = 0;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return db_err(&c, sqlite3_errcode(db), "reading the schema version");
	rc = db_step(&c, s, "reading the schema version");
	if (rc > 0)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (rc < 0)
		return rc;
	if (version > (int)reg_migrations_count)
		return cm_err_set(-EPROTO, "the store's schema (version %d) is newer than this modelfs "
				  "understands (%u); upgrade modelfs", version, reg_migrations_count);
	for (unsigned i = (unsigned)version; i < reg_migrations_count; i++) {
		char pragma[64];

		rc = conn_exec(&c, "BEGIN IMMEDIATE", "starting a migration");
		if (rc < 0)
			return rc;
		rc = conn_exec(&c, reg_migrations[i], reg_migrations_names[i]);
		if (rc == 0) {
			snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u", i + 1);
			rc = conn_exec(&c, pragma, "recording the schema version");
		}
		if (rc == 0)
			rc = conn_exec(&c, "COMMIT", "committing a migration");
		if (rc < 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return 0;
}

static int conn_open(struct reg_conn *c, const char *path, int readonly)
{
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
		    SQLITE_OPEN_NOMUTEX;
	int src;
	int rc;

	pthread_mutex_init(&c->mu, NULL);
	src = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (src != SQLITE_OK)
		return db_err(c, src, "opening the registry database");
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 10000);
	if (!readonly) {
		rc = conn_exec(c, "PRAGMA journal_mode = WAL", "enabling WAL");
		if (rc < 0)
			return rc;
	}
	/* FULL: a committed transaction survives power loss, not only a crash. */
	rc = conn_exec(c, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", "setting pragmas");
	if (rc < 0)
		return rc;
	return 0;
}

static void conn_close(struct reg_conn *c)
{
	for (int i = 0; i < REG_SQL_COUNT; i++) {
		sqlite3_finalize(c->stmt[i]);
		c->stmt[i] = NULL;
	}
	if (c->db) {
		sqlite3_close(c->db);
		c->db = NULL;
		pthread_mutex_destroy(&c->mu);
	}
}

/* What the start-up integrity check may spend; a larger db is opened after that much checked. */
#define DB_CHECK_BUDGET_US (20 * 1000000LL)

static int check_progress(void *deadline)
{
	return cm_time_now_us() > *(const int64_t *)deadline;
}

static int db_damaged(const char *path, const char *what)
{
	(void)path; /* the caller names the store; the message must fit CM_ERR_MAX */
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
static int db_check(struct reg_conn *c, const char *path)
{
	int64_t deadline = cm_time_now_us() + DB_CHECK_BUDGET_US;
	sqlite3_stmt *s = NULL;
	char first[256] = "";
	int src;
	int rc;

	sqlite3_progress_handler(c->db, 1000, check_progress, &deadline);
	src = sqlite3_prepare_v2(c->db, "PRAGMA quick_check(1)", -1, &s, NULL);
	if (src != SQLITE_OK) {
		rc = -EIO;
	} else {
		rc = db_step(c, s, "checking the database");
		if (rc > 0)
			db_col_text(s, 0, first, sizeof(first));
		src = rc < 0 ? sqlite3_extended_errcode(c->db) : SQLITE_OK;
	}
	if (src != SQLITE_OK)
		cm_strlcpy(first, sqlite3_errmsg(c->db), sizeof(first));
	sqlite3_finalize(s);
	sqlite3_progress_handler(c->db, 0, NULL, NULL);
	if (src == SQLITE_INTERRUPT)
		return 0;
	if ((src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB)
		return db_damaged(path, first);
	if (rc < 0)
		return src == SQLITE_OK ? rc : db_err(c, src, "checking the database");
	if (strcmp(first, "ok"))
		return db_damaged(path, first[0] ? first : "quick_check gave no answer");
	return 0;
}

/* An open that failed on a damaged file says so, and what to do. */
static int open_failed(struct reg_conn *c, const char *path, int rc)
{
	int src = c->db ? sqlite3_extended_errcode(c->db) : SQLITE_OK;

	if ((src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB)
		return db_damaged(path, sqlite3_errmsg(c->db));
	return rc;
}

int db_open(struct reg_store *st, const char *path, int readonly)
{
	int rc;

	st->writer.st = st;
	if (!readonly) {
		rc = conn_open(&st->writer, path, 0);
		if (rc < 0)
			return open_failed(&st->writer, path, rc);
		rc = db_check(&st->writer, path);
		if (rc < 0)
			return rc;
		rc = db_migrate(st->writer.db);
		if (rc < 0)
			return rc;
	}
	for (int i = 0; i < REG_READERS; i++) {
		rc = conn_open(&st->readers[i], path, 1);
		if (rc < 0)
			return open_failed(&st->readers[i], path, rc);
	}
	if (readonly) {
		rc = db_check(&st->readers[0], path);
		if (rc < 0)
			return rc;
	}
	if (readonly) {
		/* A read-only open of a db written by a newer schema is refused too. */
		sqlite3_stmt *s = NULL;
		int version = 0;

		if (sqlite3_prepare_v2(st->readers[0].db, "PRAGMA user_version", -1, &s, NULL) !=
		    SQLITE_OK)
			return db_err(&st->readers[0], sqlite3_errcode(st->readers[0].db),
				      "reading the schema version");
		rc = db_step(&st->readers[0], s, "reading the schema version");
		if (rc > 0)
			version = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		if (rc < 0)
			return rc;
		if (version != (int)reg_migrations_count)
			return cm_err_set(-EPROTO, "the store's schema is at version %d, this modelfs "
					  "needs %u; open it once read-write to migrate",
					  version, reg_migrations_count);
	}
	return 0;
}

void db_close(struct reg_store *st)
{
	if (st->writer.db)
		sqlite3_wal_checkpoint_v2(st->writer.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	for (int i = 0; i < REG_READERS; i++)
		conn_close(&st->readers[i]);
	conn_close(&st->writer);
}

struct reg_conn *db_read_begin(struct reg_store *st)
{
	unsigned start = atomic_fetch_add(&st->next_reader, 1);

	for (unsigned i = 0; i < REG_READERS; i++) {
		struct reg_conn *c = &st->readers[(start + i) % REG_READERS];

		if (pthread_mutex_trylock(&c->mu) == 0)
			return c;
	}
	struct reg_conn *c = &st->readers[start % REG_READERS];

	pthread_mutex_lock(&c->mu);
	return c;
}

void db_read_end(struct reg_conn *c)
{
	if (c)
		pthread_mutex_unlock(&c->mu);
}

int db_write_begin(struct reg_store *st, struct reg_conn **out)
{
	struct reg_conn *c = &st->writer;
	int rc;

	if (!c->db)
		return cm_err_set(-EROFS, "the store is open read-only");
	pthread_mutex_lock(&c->mu);
	rc = conn_exec(c, "BEGIN IMMEDIATE", "starting a transaction");
	if (rc < 0) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	*out = c;
	return 0;
}

int db_write_commit(struct reg_conn *c)
{
	return conn_exec(c, "COMMIT", "committing");
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void notes_free(struct reg_note *n)
{
	while (n) {
		struct reg_note *next = n->next;

		free(n->kind);
		free(n->channel);
		free(n->model);
		free(n->version);
		free(n->alias);
		free(n);
		n = next;
	}
}

void db_note(struct reg_conn *c, const char *kind, const char *channel, const char *model,
	     const char *version, const char *alias)
{
	struct reg_note *n;

	if (!c->st || !c->st->hook)
		return;
	n = calloc(1, sizeof(*n));
	if (!n)
		return; /* the hook is advisory: caches then expire by their timeouts */
	n->kind = dup_or_null(kind);
	n->channel = dup_or_null(channel);
	n->model = dup_or_null(model);
	n->version = dup_or_null(version);
	n->alias = dup_or_null(alias);
	if (!c->notes_tail)
		c->notes_tail = &c->notes;
	*c->notes_tail = n;
	c->notes_tail = &n->next;
}

void db_write_rollback(struct reg_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

void db_write_abort(struct reg_conn *c)
{
	if (!c)
		return;
	db_write_rollback(c);
	notes_free(c->notes);
	c->notes = NULL;
	c->notes_tail = NULL;
	c->git_kick = 0;
	pthread_mutex_unlock(&c->mu);
}

void db_write_end(struct reg_conn *c)
{
	struct reg_note *notes;
	reg_change_cb hook;
	void *ctx;
	int kick;

	if (!c)
		return;
	notes = c->notes;
	c->notes = NULL;
	c->notes_tail = NULL;
	kick = c->git_kick;
	c->git_kick = 0;
	hook = c->st ? c->st->hook : NULL;
	ctx = c->st ? c->st->hook_ctx : NULL;
	pthread_mutex_unlock(&c->mu);
	if (kick && c->st)
		gs_kick(c->st);
	for (struct reg_note *n = notes; n && hook; n = n->next) {
		struct reg_change ch = { .kind = n->kind, .channel = n->channel, .model = n->model,
					 .version = n->version, .alias = n->alias };

		hook(ctx, &ch);
	}
	notes_free(notes);
}

sqlite3_stmt *db_stmt(struct reg_conn *c, enum reg_sql id)
{
	sqlite3_stmt *s = c->stmt[id];

	if (!s) {
		if (sqlite3_prepare_v3(c->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
		    SQLITE_OK) {
			db_err(c, sqlite3_errcode(c->db), "preparing a statement");
			return NULL;
		}
		c->stmt[id] = s;
	} else {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	return s;
}

/* The statement's name in REG_SQL_LIST, or the start of its text. */
static void stmt_name(struct reg_conn *c, sqlite3_stmt *s, char *out, size_t n)
{
	const char *sql;

	for (int i = 0; c && i < REG_SQL_COUNT; i++) {
		if (c->stmt[i] == s) {
			cm_strlcpy(out, sql_name[i], n);
			return;
		}
	}
	sql = sqlite3_sql(s);
	snprintf(out, n, "%.40s", sql ? sql : "?");
}

int db_step(struct reg_conn *c, sqlite3_stmt *s, const char *what)
{
	const char *msg;
	char name[64];
	int src;

	if (bind_failed) {
		src = bind_failed;
		bind_failed = 0;
		goto fail;
	}
	if (db_step_fault && (src = db_step_fault(s)) != SQLITE_OK)
		goto fail;
	src = sqlite3_step(s);
	if (src == SQLITE_ROW)
		return 1;
	if (src == SQLITE_DONE)
		return 0;
fail:
	stmt_name(c, s, name, sizeof(name));
	msg = c && c->db && src == sqlite3_extended_errcode(c->db) ? sqlite3_errmsg(c->db)
								     : sqlite3_errstr(src);
	return cm_err_set(db_errno(src), "%s (%s): %s (sqlite %d)", what, name, msg, src);
}

int db_exec_stmt(struct reg_conn *c, sqlite3_stmt *s, const char *what)
{
	int rc = db_step(c, s, what);

	sqlite3_reset(s);
	return rc < 0 ? rc : 0;
}

void db_col_text(sqlite3_stmt *s, int col, char *dst, size_t n)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	cm_strlcpy(dst, t ? (const char *)t : "", n);
}

char *db_col_strdup(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return t ? strdup((const char *)t) : NULL;
}

int db_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	int src = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);

	if (src != SQLITE_OK && !bind_failed)
		bind_failed = src;
	return src;
}

int db_prepare_dynamic(struct reg_conn *c, const char *sql, sqlite3_stmt **out)
{
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);

	if (src != SQLITE_OK)
		return db_err(c, src, "preparing a search");
	*out = s;
	return 0;
}
