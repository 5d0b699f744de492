/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata backend boundary: the statement list, connections,
 * transactions and the change notes, over one backend per store
 * (db_sqlite.c: SQLite in .modelfs/; db_pg.c: PostgreSQL).
 *
 * Threading model. A store has one writer connection and REG_READERS reader
 * connections, each guarded by its own mutex; a connection and its prepared
 * statements are only ever used by the thread holding that mutex. Every
 * write runs on the writer inside the backend's write transaction (SQLite:
 * BEGIN IMMEDIATE; PostgreSQL: BEGIN and a transaction advisory lock that
 * serialises writers of every daemon on that database), and the writer's
 * mutex stays held after COMMIT until the disk view (symlinks, metadata
 * files) has been brought in step, so disk changes happen in commit order.
 * Reads take any free reader; each sees the last committed state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "db_i.h"

#define SQL_PG_(a, b, ...) b
/* The statement's PostgreSQL text: its second text when it has one. */
#define SQL_PG(sql, ...) SQL_PG_(sql, ##__VA_ARGS__, sql)
#define SQL_FIRST(sql, ...) sql

const char *const db_sql_sqlite[REG_SQL_COUNT] = {
#define X(id, ...) [REG_SQL_##id] = SQL_FIRST(__VA_ARGS__),
	REG_SQL_LIST(X)
	REG_SQL_GIT_LIST(X)
#undef X
};

const char *const db_sql_pg[REG_SQL_COUNT] = {
#define X(id, ...) [REG_SQL_##id] = SQL_PG(__VA_ARGS__),
	REG_SQL_LIST(X)
	REG_SQL_GIT_LIST(X)
#undef X
};

const char *const db_sql_name[REG_SQL_COUNT] = {
#define X(id, ...) [REG_SQL_##id] = #id,
	REG_SQL_LIST(X)
	REG_SQL_GIT_LIST(X)
#undef X
};

int (*db_step_fault)(struct db_stmt *s);

/*
 * A bind that failed (the backend copies text: it can run out of memory)
 * leaves its parameter NULL; the next db_step() on this thread fails instead
 * of running the statement with it. Binds and their step always share a thread.
 */
static _Thread_local int bind_failed;

static void conn_close(struct reg_conn *c)
{
	for (int i = 0; i < REG_SQL_COUNT; i++) {
		if (c->stmt[i])
			c->ops->finalize(c->stmt[i]);
		c->stmt[i] = NULL;
	}
	if (c->ops)
		c->ops->close(c);
	if (c->mu_init) {
		pthread_mutex_destroy(&c->mu);
		c->mu_init = 0;
	}
}

static int conn_open(struct reg_store *st, struct reg_conn *c, const char *target, int readonly)
{
	c->st = st;
	c->ops = st->db_url ? &db_pg_ops : &db_sqlite_ops;
	pthread_mutex_init(&c->mu, NULL);
	c->mu_init = 1;
	return c->ops->open(c, target, readonly);
}

const char *db_kind(const struct reg_store *st)
{
	return st->db_url ? db_pg_ops.kind : db_sqlite_ops.kind;
}

int db_migrate(struct reg_conn *c)
{
	return c->ops->migrate(c);
}

int db_open(struct reg_store *st, const char *path, int readonly)
{
	const char *target = st->db_url ? st->db_url : path;
	int rc;

	if (!readonly) {
		rc = conn_open(st, &st->writer, target, 0);
		if (rc < 0)
			return rc;
		rc = db_migrate(&st->writer);
		if (rc < 0)
			return rc;
	}
	for (int i = 0; i < REG_READERS; i++) {
		rc = conn_open(st, &st->readers[i], target, 1);
		if (rc < 0)
			return rc;
	}
	if (readonly) {
		/* A read-only open of a db written by a newer schema is refused too. */
		int version = 0;

		rc = st->readers[0].ops->schema_version(&st->readers[0], &version);
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
	if (st->writer.db && st->writer.ops->shutdown)
		st->writer.ops->shutdown(&st->writer);
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
	rc = c->ops->begin(c);
	if (rc < 0) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	*out = c;
	return 0;
}

int db_write_commit(struct reg_conn *c)
{
	return c->ops->exec(c, "COMMIT", "committing");
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
	if (c->db && c->ops->in_txn(c))
		c->ops->exec(c, "ROLLBACK", "rolling back");
}

void db_write_abort(struct reg_conn *c)
{
	if (!c)
		return;
	db_write_rollback(c);
	notes_free(c->notes);
	c->notes = NULL;
	c->notes_tail = NULL;
	c->kick = 0;
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
	kick = c->kick;
	c->kick = 0;
	hook = c->st ? c->st->hook : NULL;
	ctx = c->st ? c->st->hook_ctx : NULL;
	pthread_mutex_unlock(&c->mu);
	if (kick && c->st)
		ob_observers_tell(c->st);
	for (struct reg_note *n = notes; n && hook; n = n->next) {
		struct reg_change ch = { .kind = n->kind, .channel = n->channel, .model = n->model,
					 .version = n->version, .alias = n->alias };

		hook(ctx, &ch);
	}
	notes_free(notes);
}

static _Thread_local int prepare_rc;

int db_stmt_error(void)
{
	return prepare_rc < 0 ? prepare_rc : -EIO;
}

struct db_stmt *db_stmt(struct reg_conn *c, enum reg_sql id)
{
	struct db_stmt *s = c->stmt[id];

	if (!s) {
		prepare_rc = c->ops->prepare(c, (int)id, c->ops == &db_pg_ops ? db_sql_pg[id]
									     : db_sql_sqlite[id], &s);
		if (prepare_rc < 0)
			return NULL;
		c->stmt[id] = s;
	} else {
		c->ops->reset(s);
	}
	return s;
}

int db_step(struct reg_conn *c, struct db_stmt *s, const char *what)
{
	const char *name = s->id >= 0 ? db_sql_name[s->id] : "?";
	int rc;

	(void)c;
	if (bind_failed) {
		rc = bind_failed;
		bind_failed = 0;
		return cm_err_set(rc, "%s (%s): a parameter could not be bound", what, name);
	}
	if (db_step_fault && (rc = db_step_fault(s)) != 0)
		return cm_err_set(rc < 0 ? rc : -EIO, "%s (%s): %s (injected)", what, name,
				  strerror(rc < 0 ? -rc : EIO));
	return s->c->ops->step(s, what, name);
}

int db_exec_stmt(struct reg_conn *c, struct db_stmt *s, const char *what)
{
	int rc = db_step(c, s, what);

	s->c->ops->reset(s);
	return rc < 0 ? rc : 0;
}

int db_reset(struct db_stmt *s)
{
	s->c->ops->reset(s);
	return 0;
}

static int bind_result(int rc)
{
	if (rc < 0 && !bind_failed)
		bind_failed = rc;
	return rc;
}

int db_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	return bind_result(s->c->ops->bind_int64(s, i, v));
}

int db_bind_int(struct db_stmt *s, int i, int v)
{
	return bind_result(s->c->ops->bind_int64(s, i, v));
}

int db_bind_double(struct db_stmt *s, int i, double v)
{
	return bind_result(s->c->ops->bind_double(s, i, v));
}

int db_bind_text(struct db_stmt *s, int i, const char *v)
{
	return bind_result(v ? s->c->ops->bind_text(s, i, v) : s->c->ops->bind_null(s, i));
}

int db_bind_null(struct db_stmt *s, int i)
{
	return bind_result(s->c->ops->bind_null(s, i));
}

int64_t db_col_int64(struct db_stmt *s, int i)
{
	return s->c->ops->col_int64(s, i);
}

int db_col_int(struct db_stmt *s, int i)
{
	return (int)s->c->ops->col_int64(s, i);
}

double db_col_double(struct db_stmt *s, int i)
{
	return s->c->ops->col_double(s, i);
}

int db_col_null(struct db_stmt *s, int i)
{
	return s->c->ops->col_null(s, i);
}

const char *db_col_str(struct db_stmt *s, int i)
{
	return s->c->ops->col_str(s, i);
}

void db_col_text(struct db_stmt *s, int col, char *dst, size_t n)
{
	const char *t = db_col_str(s, col);

	cm_strlcpy(dst, t ? t : "", n);
}

char *db_col_strdup(struct db_stmt *s, int col)
{
	const char *t = db_col_str(s, col);

	return t ? strdup(t) : NULL;
}

int64_t db_changes(struct reg_conn *c)
{
	return c->ops->changes(c);
}

int64_t db_last_id(struct reg_conn *c)
{
	return c->ops->last_id(c);
}

static int id_read(struct reg_store *st, char *out, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	int rc = st_read_file(st->meta_fd, REG_ID_NAME, 128, &text, &len);

	out[0] = '\0';
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	cm_strlcpy(out, text, n);
	out[strcspn(out, "\r\n")] = '\0';
	free(text);
	return 0;
}

static int id_make(char out[33])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return cm_err_set(-errno, "making a store id: %s", strerror(errno));
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* store_info's store_id into out ("" when none) and how many rows the store holds. */
static int id_db(struct reg_conn *c, char *out, size_t n, int64_t *rows)
{
	struct db_stmt *s;
	int rc;

	out[0] = '\0';
	DB_STMT(c, INFO_GET, s);
	db_bind_text(s, 1, "store_id");
	rc = db_step(c, s, "reading the store id");
	if (rc > 0)
		db_col_text(s, 0, out, n);
	db_reset(s);
	if (rc < 0)
		goto done;
	DB_STMT(c, INFO_ROWS, s);
	rc = db_step(c, s, "counting the store's rows");
	if (rc > 0)
		*rows = db_col_int64(s, 0);
	db_reset(s);
done:
	return rc < 0 ? rc : 0;
}

int db_identity(struct reg_store *st, int readonly)
{
	struct reg_conn *c = NULL;
	char file[128], db[128], made[33];
	int64_t rows = 0;
	struct db_stmt *s;
	int rc;

	rc = id_read(st, file, sizeof(file));
	if (rc < 0)
		return rc;
	/* SQLite in the directory: checked only when the directory has an id (migrate made it). */
	if (!st->db_url && !file[0])
		return 0;
	if (readonly) {
		c = db_read_begin(st);
		rc = id_db(c, db, sizeof(db), &rows);
		db_read_end(c);
		if (rc < 0)
			return rc;
		if (!st->db_url && !db[0])
			return 0;
		if (!strncmp(db, "moved:", 6))
			return cm_err_set(-ESTALE, "this database's metadata was moved away by "
					  "`modelfs migrate` (store %s): open the store with the "
					  "database it was moved to", db + 6);
		if (!db[0] || strcmp(db, file))
			return cm_err_set(-EEXIST, "the database %s the metadata of store %s, not of "
					  "'%s' (store id %s); open it read-write once, or give the "
					  "--db of this store", db[0] ? "holds" : "does not hold",
					  db[0] ? db : "(none)", st->path, file[0] ? file : "(none)");
		return 0;
	}
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = id_db(c, db, sizeof(db), &rows);
	if (rc < 0)
		goto done;
	if (db[0] && !strcmp(db, file))
		goto done;
	if (!strncmp(db, "moved:", 6)) {
		rc = cm_err_set(-ESTALE, "this database's metadata was moved away by `modelfs migrate` "
				"(store %s): open the store with the database it was moved to", db + 6);
		goto done;
	}
	if (db[0]) {
		rc = cm_err_set(-EEXIST, "the database belongs to another store (store id %s; this "
				"directory's is %s): give this store's --db, or an empty database",
				db, file[0] ? file : "(none)");
		goto done;
	}
	if (rows > 0 && st->db_url) {
		rc = cm_err_set(-EEXIST, "the database holds a store's metadata without a store id; "
				"refusing to mix it with '%s'", st->path);
		goto done;
	}
	if (file[0] && !st->db_url)
		goto done; /* a SQLite store from before store ids, migrated away and back */
	if (file[0]) {
		rc = cm_err_set(-ESTALE, "'%s' (store id %s) keeps its metadata in another database; "
				"give that --db (or move it with `modelfs migrate`). To start this "
				"directory afresh, remove .modelfs/" REG_ID_NAME, st->path, file);
		goto done;
	}
	/* An empty database and a directory without an id: a new store. */
	{
		rc = id_make(made);
		if (rc < 0)
			goto done;
		cm_strlcpy(file, made, sizeof(file));
		rc = st_write_atomic(st->meta_fd, REG_ID_NAME, file, strlen(file), 0644);
		if (rc == 0)
			rc = st_fsync_dir(st->meta_fd);
		if (rc < 0)
			goto done;
	}
	DB_STMT(c, INFO_SET, s);
	db_bind_text(s, 1, "store_id");
	db_bind_text(s, 2, file);
	rc = db_exec_stmt(c, s, "recording the store id");
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		return 0;
	}
done:
	db_write_abort(c); /* also when nothing was to be written */
	return rc;
}

int db_stmt_adhoc(struct reg_conn *c, const char *sql, struct db_stmt **out)
{
	return c->ops->prepare(c, -1, sql, out);
}

void db_stmt_free(struct db_stmt *s)
{
	if (s)
		s->c->ops->finalize(s);
}

int db_col_count(struct db_stmt *s)
{
	return s->c->ops->col_count(s);
}

const char *db_col_name(struct db_stmt *s, int i)
{
	return s->c->ops->col_name(s, i);
}

int db_col_type(struct db_stmt *s, int i)
{
	return s->c->ops->col_type(s, i);
}
