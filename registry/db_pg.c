/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL backend (libpq): the store's metadata in a database that
 * several daemons may share. Statements are the list's texts with ?N turned
 * into $N, run with PQexecParams; parameter types come from the binds (int8,
 * float8, text; a NULL is left for the server to infer, or sent as text when
 * it cannot), so `?3 IS NULL` works. Results are read whole, so a connection
 * may run a statement while iterating another's rows.
 *
 * Writers: BEGIN, then a transaction advisory lock (DB_PG_WRITE_LOCK) that
 * serialises every writer of the database, whichever daemon it runs in, until
 * COMMIT or ROLLBACK. It is store-wide, not per model: the registry's
 * transactions do not say which model they touch before they start. Events
 * take their id from the event_seq row inside that transaction (schema/pg/),
 * a gap-free sequence in commit order.
 *
 * A lost connection fails the statement with -EAGAIN ("the metadata backend
 * is unreachable"); the next use outside a transaction reconnects, at most
 * every DB_PG_RETRY_US, so that writes fail fast while the server is down.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_i.h"

extern const char *const reg_migrations_pg[];
extern const char *const reg_migrations_pg_names[];
extern const unsigned reg_migrations_pg_count;

/* The advisory lock key of writers: "modelfs" in ASCII. */
#define DB_PG_WRITE_LOCK "7165055904499315"
#define DB_PG_RETRY_US (500 * 1000LL)
#define DB_PG_MAX_PARAMS 128

#define OID_BOOL 16
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

struct pg_conn {
	char *conninfo;
	int readonly;
	int64_t changes;
	int64_t last_id;     /* from an INSERT ... RETURNING id; 0: ask lastval() */
	int64_t retry_at;    /* no reconnect attempt before this (cm_time_now_us) */
	int txn;             /* a transaction began here and has not ended */
};

struct pg_stmt {
	struct db_stmt base;
	char *sql;
	int nparams;
	Oid types[DB_PG_MAX_PARAMS];
	char *vals[DB_PG_MAX_PARAMS];
	const Oid *null_types; /* the type a NULL is sent as, per param (describe()) */
	Oid own_types[DB_PG_MAX_PARAMS]; /* statements outside the list: their own */
	PGresult *res;
	int row, nrows;
	int executed;
};

#define PC(c) ((struct pg_conn *)(c)->be)
#define PGH(c) ((PGconn *)(c)->db)
#define PS(s) ((struct pg_stmt *)(s))

int db_pg_errno(const char *state)
{
	if (!state || strlen(state) != 5)
		return -EAGAIN; /* no answer from the server: the connection broke */
	if (!strcmp(state, "23505"))
		return -EEXIST;
	if (!strncmp(state, "23", 2))
		return -EINVAL;
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03") ||
	    !strcmp(state, "57014"))
		return -EBUSY;
	if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
	    !strcmp(state, "57P03") || !strcmp(state, "53300"))
		return -EAGAIN;
	if (!strcmp(state, "53100"))
		return -ENOSPC;
	if (!strcmp(state, "53200"))
		return -ENOMEM;
	if (!strcmp(state, "25006"))
		return -EROFS;
	if (!strcmp(state, "42501") || !strncmp(state, "28", 2))
		return -EACCES;
	if (!strcmp(state, "3D000"))
		return -ENOENT;
	if (!strcmp(state, "P0001"))
		return -EINVAL; /* a trigger's refusal (the append-only event log) */
	return -EIO;
}

/* The first line of the server's or libpq's message. */
static void first_line(const char *msg, char *out, size_t n)
{
	cm_strlcpy(out, msg ? msg : "", n);
	out[strcspn(out, "\n")] = '\0';
}

static void pg_down(struct reg_conn *c)
{
	if (c->st)
		atomic_store(&c->st->db_up, 0);
}

/* -errno for a failed result (res may be NULL), with detail. */
static int pg_fail(struct reg_conn *c, PGresult *res, const char *what, const char *name)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char msg[200];
	int rc;

	first_line(res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
						       : PQerrorMessage(PGH(c)), msg, sizeof(msg));
	if (PQstatus(PGH(c)) != CONNECTION_OK)
		state = NULL;
	rc = db_pg_errno(state);
	if (rc == -EAGAIN) {
		pg_down(c);
		return cm_err_set(rc, "%s%s%s%s: the metadata backend is unreachable (%s)", what,
				  name ? " (" : "", name ? name : "", name ? ")" : "", msg);
	}
	return cm_err_set(rc, "%s%s%s%s: %s (sqlstate %s)", what, name ? " (" : "",
			  name ? name : "", name ? ")" : "", msg, state);
}

/* Runs parameterless SQL (possibly several statements). */
static int pg_run(struct reg_conn *c, const char *sql, const char *what)
{
	PGresult *res = PQexec(PGH(c), sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = pg_fail(c, res, what, NULL);
	PQclear(res);
	return rc;
}

/* The session's settings, after every (re)connection. */
static int pg_session(struct reg_conn *c)
{
	int rc = 0;

	if (PC(c)->readonly)
		rc = pg_run(c, "SET default_transaction_read_only = on", "read-only session");
	/*
	 * Floats with every digit; a writer waits for another daemon's transaction
	 * as long as SQLite's busy timeout would.
	 */
	if (rc == 0)
		rc = pg_run(c, "SET extra_float_digits = 3; SET client_min_messages = warning; "
			    "SET lock_timeout = '10s'", "session settings");
	if (rc == 0 && c->st)
		atomic_store(&c->st->db_up, 1);
	return rc;
}

static int pg_connect(struct reg_conn *c)
{
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "3", "modelfs", PC(c)->conninfo, NULL };
	PGconn *h;
	char msg[200];

	h = PQconnectdbParams(keys, vals, 1);
	if (!h)
		return cm_err_set(-ENOMEM, "out of memory");
	if (PQstatus(h) != CONNECTION_OK) {
		first_line(PQerrorMessage(h), msg, sizeof(msg));
		PQfinish(h);
		pg_down(c);
		if (strstr(msg, "does not exist"))
			return cm_err_set(-ENOENT, "connecting to PostgreSQL: %s", msg);
		if (strstr(msg, "authentication") || strstr(msg, "password"))
			return cm_err_set(-EACCES, "connecting to PostgreSQL: %s", msg);
		return cm_err_set(-EAGAIN, "the metadata backend is unreachable (%s)", msg);
	}
	c->db = h;
	return pg_session(c);
}

/* A usable connection: reconnects a broken one (outside a transaction), every DB_PG_RETRY_US. */
static int pg_ready(struct reg_conn *c)
{
	int64_t now;
	int rc;

	if (c->db && PQstatus(PGH(c)) == CONNECTION_OK)
		return 0;
	pg_down(c);
	now = cm_time_now_us();
	if (now < PC(c)->retry_at)
		return cm_err_set(-EAGAIN, "the metadata backend is unreachable (reconnecting)");
	PC(c)->retry_at = now + DB_PG_RETRY_US;
	/* Statements belong to the old session: results dropped, texts kept. */
	for (int i = 0; i < REG_SQL_COUNT; i++) {
		if (c->stmt[i]) {
			PQclear(PS(c->stmt[i])->res);
			PS(c->stmt[i])->res = NULL;
		}
	}
	/*
	 * The handle is kept (PQreset reconnects it in place): registry code reads a
	 * NULL writer handle as a store opened read-only.
	 */
	if (c->db) {
		char msg[200];

		PQreset(PGH(c));
		if (PQstatus(PGH(c)) != CONNECTION_OK) {
			first_line(PQerrorMessage(PGH(c)), msg, sizeof(msg));
			return cm_err_set(-EAGAIN, "the metadata backend is unreachable (%s)", msg);
		}
		rc = pg_session(c);
	} else {
		rc = pg_connect(c);
	}
	if (rc == 0 && c->st)
		atomic_fetch_add(&c->st->db_reconnects, 1);
	return rc;
}

static int pg_open(struct reg_conn *c, const char *target, int readonly)
{
	struct pg_conn *pc = calloc(1, sizeof(*pc));

	if (!pc || !(pc->conninfo = strdup(target))) {
		free(pc);
		return cm_err_set(-ENOMEM, "out of memory");
	}
	pc->readonly = readonly;
	c->be = pc;
	return pg_connect(c);
}

static void pg_close(struct reg_conn *c)
{
	if (c->db)
		PQfinish(PGH(c));
	c->db = NULL;
	if (c->be) {
		free(PC(c)->conninfo);
		free(c->be);
		c->be = NULL;
	}
}

static int pg_in_txn(struct reg_conn *c)
{
	PGTransactionStatusType t = c->db ? PQtransactionStatus(PGH(c)) : PQTRANS_UNKNOWN;

	return PC(c)->txn || t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static int pg_exec(struct reg_conn *c, const char *sql, const char *what)
{
	if (!strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK"))
		PC(c)->txn = 0;
	if (!c->db || PQstatus(PGH(c)) != CONNECTION_OK) {
		pg_down(c);
		return cm_err_set(-EAGAIN, "%s: the metadata backend is unreachable", what);
	}
	if (!c->db)
		return cm_err_set(-EAGAIN, "%s: the metadata backend is unreachable", what);
	/* COMMIT of a failed transaction answers ROLLBACK without an error. */
	if (!strcmp(sql, "COMMIT") && PQtransactionStatus(PGH(c)) == PQTRANS_INERROR) {
		pg_run(c, "ROLLBACK", what);
		return cm_err_set(-EIO, "%s: a statement of the transaction failed", what);
	}
	return pg_run(c, sql, what);
}

static int pg_begin(struct reg_conn *c)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = pg_ready(c);
		if (rc < 0)
			return rc;
		rc = pg_run(c, "BEGIN; SELECT pg_advisory_xact_lock(" DB_PG_WRITE_LOCK ")",
			    "starting a transaction");
		if (rc == 0)
			break;
		if (pg_in_txn(c))
			pg_run(c, "ROLLBACK", "rolling back");
		/* A connection the server dropped since the last write: once more on a new one. */
		if (tries > 0 || PQstatus(PGH(c)) == CONNECTION_OK)
			return rc;
		PC(c)->retry_at = 0;
	}
	PC(c)->txn = 1;
	return 0;
}

static int query_int(struct reg_conn *c, const char *sql, const char *what, int64_t *out)
{
	PGresult *res = PQexec(PGH(c), sql);
	int rc = 0;

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pg_fail(c, res, what, NULL);
	else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		*out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		*out = -1;
	PQclear(res);
	return rc;
}

static int pg_schema_version(struct reg_conn *c, int *out)
{
	int64_t v = 0;
	int rc = query_int(c, "SELECT CASE WHEN to_regclass('modelfs_schema') IS NULL THEN 0 ELSE 1 END",
			   "reading the schema version", &v);

	if (rc == 0 && v == 1)
		rc = query_int(c, "SELECT max(version) FROM modelfs_schema", "reading the schema version",
			       &v);
	if (rc == 0)
		*out = v < 0 ? 0 : (int)v;
	return rc;
}

static int pg_migrate(struct reg_conn *c)
{
	char sql[128];
	int version = 0;
	int rc;

	if (reg_migrations_pg_count != reg_migrations_count)
		return cm_err_set(-EPROTO, "the PostgreSQL migrations do not match SQLite's");
	/* Every daemon migrating at once: one at a time, under the writers' lock. */
	rc = pg_begin(c);
	if (rc < 0)
		return rc;
	rc = pg_run(c, "CREATE TABLE IF NOT EXISTS modelfs_schema (version INTEGER NOT NULL)",
		    "creating the schema table");
	if (rc == 0)
		rc = pg_schema_version(c, &version);
	if (rc < 0)
		goto fail;
	if (version > (int)reg_migrations_count) {
		rc = cm_err_set(-EPROTO, "the store's schema (version %d) is newer than this modelfs "
				"understands (%u); upgrade modelfs", version, reg_migrations_count);
		goto fail;
	}
	for (unsigned i = (unsigned)version; i < reg_migrations_count; i++) {
		rc = pg_run(c, reg_migrations_pg[i], reg_migrations_pg_names[i]);
		if (rc < 0)
			goto fail;
	}
	snprintf(sql, sizeof(sql), "DELETE FROM modelfs_schema; INSERT INTO modelfs_schema VALUES (%u)",
		 reg_migrations_count);
	rc = pg_run(c, sql, "recording the schema version");
	if (rc < 0)
		goto fail;
	return pg_exec(c, "COMMIT", "committing a migration");
fail:
	pg_exec(c, "ROLLBACK", "rolling back");
	return rc;
}

/*
 * The list's text in PostgreSQL's dialect: ?N -> $N outside quotes, and
 * `LIMIT ?N` -> `LIMIT CASE WHEN $N < 0 THEN NULL ELSE $N END` (SQLite reads a
 * negative limit as none, PostgreSQL refuses it). The highest N in *max.
 */
static char *convert(const char *sql, int *max)
{
	size_t n = strlen(sql);
	char *out = malloc(4 * n + 1);
	char *o = out;
	char quote = 0;

	*max = 0;
	if (!out)
		return NULL;
	for (const char *p = sql; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (!strncmp(p, "LIMIT ?", 7) && p[7] >= '0' && p[7] <= '9') {
			int v = atoi(p + 7);

			if (v > *max)
				*max = v;
			o += sprintf(o, "LIMIT CASE WHEN $%d < 0 THEN NULL ELSE $%d END", v, v);
			p += 7;
			while (p[1] >= '0' && p[1] <= '9')
				p++;
			continue;
		} else if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
			int v = atoi(p + 1);

			if (v > *max)
				*max = v;
			*o++ = '$';
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/*
 * The type each parameter takes when it is bound NULL: what the server infers
 * for it, or text where it cannot (`?3 IS NULL` first). Learnt once per
 * statement for the process (the schema is the same on every connection),
 * by preparing the unnamed statement; inside a transaction, under a savepoint,
 * since a failed prepare would abort it. Non-NULL binds keep their own types
 * (int8, float8, text), so a bigint is never squeezed into an inferred int4.
 */
static Oid null_types[REG_SQL_COUNT][DB_PG_MAX_PARAMS];
static _Atomic int null_known[REG_SQL_COUNT];
static pthread_mutex_t null_mu = PTHREAD_MUTEX_INITIALIZER;

static int describe(struct reg_conn *c, struct pg_stmt *ps, Oid *out)
{
	Oid types[DB_PG_MAX_PARAMS] = { 0 };
	int sp = PC(c)->txn;
	int rc = 0;

	if (sp && (rc = pg_run(c, "SAVEPOINT modelfs_describe", "describing a statement")) < 0)
		return rc;
	for (int tries = 0; tries <= ps->nparams; tries++) {
		PGresult *res = PQprepare(PGH(c), "", ps->sql, ps->nparams, types);
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		const char *msg = res ? PQresultErrorMessage(res) : "";
		const char *at;
		int k;

		if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			res = PQdescribePrepared(PGH(c), "");
			if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
				rc = pg_fail(c, res, "describing a statement",
					     ps->base.id >= 0 ? db_sql_name[ps->base.id] : "?");
			} else {
				for (int i = 0; i < ps->nparams && i < PQnparams(res); i++)
					out[i] = PQparamtype(res, i);
			}
			PQclear(res);
			goto done;
		}
		if (state && (!strcmp(state, "42P18") || !strcmp(state, "42P08")) &&
		    (at = strstr(msg, "parameter $")) && (k = atoi(at + 11)) >= 1 &&
		    k <= ps->nparams && !types[k - 1]) {
			types[k - 1] = OID_TEXT;
			PQclear(res);
			if (sp && (rc = pg_run(c, "ROLLBACK TO SAVEPOINT modelfs_describe",
					       "describing a statement")) < 0)
				return rc;
			continue;
		}
		rc = pg_fail(c, res, "preparing a statement",
			     ps->base.id >= 0 ? db_sql_name[ps->base.id] : "?");
		PQclear(res);
		break;
	}
done:
	if (sp) {
		if (rc < 0)
			pg_run(c, "ROLLBACK TO SAVEPOINT modelfs_describe", "describing a statement");
		pg_run(c, "RELEASE SAVEPOINT modelfs_describe", "describing a statement");
	}
	return rc;
}

static int pg_prepare(struct reg_conn *c, int id, const char *sql, struct db_stmt **out)
{
	struct pg_stmt *ps = calloc(1, sizeof(*ps));
	int rc = 0;

	if (!ps || !(ps->sql = convert(sql, &ps->nparams))) {
		free(ps);
		return cm_err_set(-ENOMEM, "out of memory");
	}
	ps->base.c = c;
	ps->base.id = id;
	if (ps->nparams > DB_PG_MAX_PARAMS) {
		rc = cm_err_set(-E2BIG, "statement %s has too many parameters",
				id >= 0 ? db_sql_name[id] : "(an ad-hoc statement)");
		goto fail;
	}
	if (id >= 0 && !atomic_load(&null_known[id])) {
		Oid types[DB_PG_MAX_PARAMS] = { 0 };

		if (ps->nparams) {
			if (!PC(c)->txn && (rc = pg_ready(c)) < 0)
				goto fail;
			if (!c->db || PQstatus(PGH(c)) != CONNECTION_OK) {
				pg_down(c);
				rc = cm_err_set(-EAGAIN, "preparing a statement: the metadata backend "
						"is unreachable");
				goto fail;
			}
			if ((rc = describe(c, ps, types)) < 0)
				goto fail;
		}
		pthread_mutex_lock(&null_mu);
		if (!atomic_load(&null_known[id])) {
			memcpy(null_types[id], types, sizeof(types));
			atomic_store(&null_known[id], 1);
		}
		pthread_mutex_unlock(&null_mu);
	}
	if (id < 0 && ps->nparams && (rc = describe(c, ps, ps->own_types)) < 0)
		goto fail;
	ps->null_types = id >= 0 ? null_types[id] : ps->own_types;
	*out = &ps->base;
	return 0;
fail:
	free(ps->sql);
	free(ps);
	return rc;
}

static void clear_binds(struct pg_stmt *ps)
{
	for (int i = 0; i < ps->nparams; i++) {
		free(ps->vals[i]);
		ps->vals[i] = NULL;
		ps->types[i] = 0;
	}
}

static void pg_reset(struct db_stmt *s)
{
	struct pg_stmt *ps = PS(s);

	PQclear(ps->res);
	ps->res = NULL;
	ps->executed = 0;
	ps->row = ps->nrows = 0;
	clear_binds(ps);
}

static void pg_finalize(struct db_stmt *s)
{
	pg_reset(s);
	free(PS(s)->sql);
	free(s);
}

static int pg_step(struct db_stmt *s, const char *what, const char *name)
{
	struct pg_stmt *ps = PS(s);
	struct reg_conn *c = s->c;
	int tried_conn = 0;
	Oid types[DB_PG_MAX_PARAMS];

	if (ps->executed)
		return ++ps->row < ps->nrows ? 1 : 0;
again:
	if (PC(c)->txn && (!c->db || PQstatus(PGH(c)) != CONNECTION_OK)) {
		pg_down(c);
		return cm_err_set(-EAGAIN, "%s (%s): the metadata backend is unreachable "
				  "(the connection was lost in a transaction)", what, name);
	}
	if (!PC(c)->txn) {
		int rc = pg_ready(c);

		if (rc < 0) {
			char msg[CM_ERR_MAX];

			cm_strlcpy(msg, cm_err_msg(), sizeof(msg));
			return cm_err_set(rc, "%s (%s): %s", what, name, msg);
		}
	}
	for (int i = 0; i < ps->nparams; i++)
		types[i] = ps->vals[i] ? ps->types[i] : ps->null_types ? ps->null_types[i] : OID_TEXT;
	PQclear(ps->res);
	ps->res = PQexecParams(PGH(c), ps->sql, ps->nparams, types, (const char *const *)ps->vals,
			       NULL, NULL, 0);
	switch (ps->res ? PQresultStatus(ps->res) : PGRES_FATAL_ERROR) {
	case PGRES_TUPLES_OK:
		ps->nrows = PQntuples(ps->res);
		PC(c)->changes = strtoll(PQcmdTuples(ps->res), NULL, 10);
		if (!strncmp(PQcmdStatus(ps->res), "INSERT", 6) && ps->nrows > 0 &&
		    PQfnumber(ps->res, "id") == 0)
			PC(c)->last_id = strtoll(PQgetvalue(ps->res, 0, 0), NULL, 10);
		else if (!strncmp(PQcmdStatus(ps->res), "INSERT", 6))
			PC(c)->last_id = 0;
		break;
	case PGRES_COMMAND_OK:
		ps->nrows = 0;
		PC(c)->changes = strtoll(PQcmdTuples(ps->res), NULL, 10);
		if (!strncmp(PQcmdStatus(ps->res), "INSERT", 6))
			PC(c)->last_id = 0;
		break;
	default: {
		/* A connection lost between statements: once more on a new one. */
		if (PQstatus(PGH(c)) != CONNECTION_OK && !tried_conn && !PC(c)->txn) {
			tried_conn = 1;
			PC(c)->retry_at = 0;
			goto again;
		}
		return pg_fail(c, ps->res, what, name);
	}
	}
	ps->executed = 1;
	ps->row = 0;
	return ps->nrows > 0 ? 1 : 0;
}

static int bind_set(struct db_stmt *s, int i, Oid type, const char *text)
{
	struct pg_stmt *ps = PS(s);
	char *v = NULL;

	if (i < 1 || i > ps->nparams)
		return -ERANGE;
	if (text && !(v = strdup(text)))
		return -ENOMEM;
	free(ps->vals[i - 1]);
	ps->vals[i - 1] = v;
	ps->types[i - 1] = text ? type : 0;
	return 0;
}

static int pg_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return bind_set(s, i, OID_INT8, buf);
}

static int pg_bind_double(struct db_stmt *s, int i, double v)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.17g", v);
	return bind_set(s, i, OID_FLOAT8, buf);
}

static int pg_bind_text(struct db_stmt *s, int i, const char *v)
{
	return bind_set(s, i, OID_TEXT, v);
}

static int pg_bind_null(struct db_stmt *s, int i)
{
	return bind_set(s, i, 0, NULL);
}

static int has_cell(struct pg_stmt *ps, int i)
{
	return ps->res && ps->row < ps->nrows && i >= 0 && i < PQnfields(ps->res) &&
	       !PQgetisnull(ps->res, ps->row, i);
}

static int64_t pg_col_int64(struct db_stmt *s, int i)
{
	struct pg_stmt *ps = PS(s);
	const char *v;

	if (!has_cell(ps, i))
		return 0;
	v = PQgetvalue(ps->res, ps->row, i);
	if (PQftype(ps->res, i) == OID_BOOL)
		return v[0] == 't';
	if (PQftype(ps->res, i) == OID_FLOAT8)
		return (int64_t)strtod(v, NULL);
	return strtoll(v, NULL, 10);
}

static double pg_col_double(struct db_stmt *s, int i)
{
	struct pg_stmt *ps = PS(s);

	if (!has_cell(ps, i))
		return 0;
	if (PQftype(ps->res, i) == OID_BOOL)
		return PQgetvalue(ps->res, ps->row, i)[0] == 't';
	return strtod(PQgetvalue(ps->res, ps->row, i), NULL);
}

static const char *pg_col_str(struct db_stmt *s, int i)
{
	struct pg_stmt *ps = PS(s);

	if (!has_cell(ps, i))
		return NULL;
	if (PQftype(ps->res, i) == OID_BOOL)
		return PQgetvalue(ps->res, ps->row, i)[0] == 't' ? "1" : "0";
	return PQgetvalue(ps->res, ps->row, i);
}

static int pg_col_null(struct db_stmt *s, int i)
{
	struct pg_stmt *ps = PS(s);

	return !ps->res || ps->row >= ps->nrows || PQgetisnull(ps->res, ps->row, i);
}

static int pg_col_count(struct db_stmt *s)
{
	return PS(s)->res ? PQnfields(PS(s)->res) : 0;
}

static const char *pg_col_name(struct db_stmt *s, int i)
{
	return PS(s)->res ? PQfname(PS(s)->res, i) : NULL;
}

static int pg_col_type(struct db_stmt *s, int i)
{
	struct pg_stmt *ps = PS(s);

	if (!has_cell(ps, i))
		return DB_T_NULL;
	switch (PQftype(ps->res, i)) {
	case OID_INT8:
	case OID_BOOL:
	case 21: /* int2 */
	case 23: /* int4 */
		return DB_T_INT;
	case OID_FLOAT8:
	case 700: /* float4 */
	case 1700: /* numeric */
		return DB_T_FLOAT;
	default:
		return DB_T_TEXT;
	}
}

static int64_t pg_changes(struct reg_conn *c)
{
	return PC(c)->changes;
}

static int64_t pg_last_id(struct reg_conn *c)
{
	int64_t v = 0;

	if (PC(c)->last_id)
		return PC(c)->last_id;
	if (query_int(c, "SELECT lastval()", "reading the new row's id", &v) < 0)
		return 0;
	return v;
}

const struct db_ops db_pg_ops = {
	.kind = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.begin = pg_begin,
	.in_txn = pg_in_txn,
	.migrate = pg_migrate,
	.schema_version = pg_schema_version,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.step = pg_step,
	.reset = pg_reset,
	.bind_int64 = pg_bind_int64,
	.bind_double = pg_bind_double,
	.bind_text = pg_bind_text,
	.bind_null = pg_bind_null,
	.col_int64 = pg_col_int64,
	.col_double = pg_col_double,
	.col_str = pg_col_str,
	.col_null = pg_col_null,
	.col_count = pg_col_count,
	.col_name = pg_col_name,
	.col_type = pg_col_type,
	.changes = pg_changes,
	.last_id = pg_last_id,
};
