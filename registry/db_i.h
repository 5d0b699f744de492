/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata backend boundary, seen from the backends' side: what db.c
 * (connections, transactions, the statement list) asks of db_sqlite.c and
 * db_pg.c. Included only by those three files.
 */
#ifndef MODELFS_DB_I_H
#define MODELFS_DB_I_H

#include "reg_i.h"

/*
 * A prepared statement of one backend. Backends embed it first in their own
 * statement struct. Binds and column reads go through c->ops.
 */
struct db_stmt {
	struct reg_conn *c;
	int id; /* REG_SQL_*, or -1 for the backend's own statements */
};

/*
 * One backend. Every int-returning op answers 0 (step: 1 row, 0 done) or
 * -errno with cm_err_set() detail; `what` says what the caller was doing.
 */
struct db_ops {
	const char *kind; /* "sqlite", "postgresql" */
	/* Opens c (c->st is set; target is a file path or a conninfo). */
	int (*open)(struct reg_conn *c, const char *target, int readonly);
	void (*close)(struct reg_conn *c);
	/* Runs statements without results (BEGIN, COMMIT, ...). */
	int (*exec)(struct reg_conn *c, const char *sql, const char *what);
	/* BEGIN a write transaction, serialised against every other writer. */
	int (*begin)(struct reg_conn *c);
	/* 1 while a transaction is open on c. */
	int (*in_txn)(struct reg_conn *c);
	/* Brings the schema to the binary's migrations (writer, at open). */
	int (*migrate)(struct reg_conn *c);
	/* The schema version found (read-only opens check it). */
	int (*schema_version)(struct reg_conn *c, int *out);
	int (*prepare)(struct reg_conn *c, int id, const char *sql, struct db_stmt **out);
	void (*finalize)(struct db_stmt *s);
	int (*step)(struct db_stmt *s, const char *what, const char *name);
	void (*reset)(struct db_stmt *s); /* also clears the binds */
	int (*bind_int64)(struct db_stmt *s, int i, int64_t v);
	int (*bind_double)(struct db_stmt *s, int i, double v);
	int (*bind_text)(struct db_stmt *s, int i, const char *v);
	int (*bind_null)(struct db_stmt *s, int i);
	int64_t (*col_int64)(struct db_stmt *s, int i);
	double (*col_double)(struct db_stmt *s, int i);
	const char *(*col_str)(struct db_stmt *s, int i);
	int (*col_null)(struct db_stmt *s, int i);
	/* For copying whole tables (migrate.c): the row's shape and each value's kind. */
	int (*col_count)(struct db_stmt *s);
	const char *(*col_name)(struct db_stmt *s, int i);
	int (*col_type)(struct db_stmt *s, int i); /* DB_T_* */
	int64_t (*changes)(struct reg_conn *c);
	int64_t (*last_id)(struct reg_conn *c);
	/* Before the writer closes (SQLite: checkpoint the WAL). May be NULL. */
	void (*shutdown)(struct reg_conn *c);
};

enum { DB_T_NULL, DB_T_INT, DB_T_FLOAT, DB_T_TEXT };

/*
 * A statement outside the list (migrate.c's whole-table copies, whose texts
 * come from the schema's own table and column names); db_stmt_free() it.
 */
int db_stmt_adhoc(struct reg_conn *c, const char *sql, struct db_stmt **out);
void db_stmt_free(struct db_stmt *s);
int db_col_count(struct db_stmt *s);
const char *db_col_name(struct db_stmt *s, int i);
int db_col_type(struct db_stmt *s, int i);

extern const struct db_ops db_sqlite_ops;
/* A SQLite result code as -errno with detail (c may be NULL); for tests too. */
int db_sqlite_err(struct reg_conn *c, int src, const char *what);
extern const struct db_ops db_pg_ops;
/* The -errno for a SQLSTATE (NULL: no answer, the connection broke). */
int db_pg_errno(const char *state);

/* The embedded migrations (schema/), in order. */
extern const char *const reg_migrations[];
extern const char *const reg_migrations_names[];
extern const unsigned reg_migrations_count;

/* Each statement's text in SQLite's dialect, in PostgreSQL's, and its name. */
extern const char *const db_sql_sqlite[REG_SQL_COUNT];
extern const char *const db_sql_pg[REG_SQL_COUNT];
extern const char *const db_sql_name[REG_SQL_COUNT];

#endif
