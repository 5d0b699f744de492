/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `modelfs migrate`: moving a store's metadata and its whole event history
 * between backends (SQLite in .modelfs/ and PostgreSQL), table by table,
 * rows and ids as they are, in one transaction on each side.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "db_i.h"

/*
 * Every table of the schema, parents before children. A table the source
 * has and this list lacks stops the move (nothing is left behind silently):
 * a migration that adds a table adds it here.
 */
static const char *const copy_tables[] = {
	"models", "versions", "files", "aliases", "events", "observations",
	"observations_latest", "git_config", "git_queue", "git_tags", "store_info",
	"refusals", "outbox_subscribers", "outbox", "triggers", "model_tags", "version_leaves",
};
#define N_TABLES (sizeof(copy_tables) / sizeof(copy_tables[0]))

#define SQL_MAX 4096

static int known_table(const char *name)
{
	for (size_t i = 0; i < N_TABLES; i++)
		if (!strcmp(copy_tables[i], name))
			return 1;
	return 0;
}

/* Refuses a source with a table copy_tables does not name. */
static int check_tables(struct reg_conn *c)
{
	struct db_stmt *s;
	int rc;

	DB_STMT(c, TABLE_NAMES, s);
	while ((rc = db_step(c, s, "listing the tables")) > 0) {
		const char *name = db_col_str(s, 0);

		if (name && !known_table(name)) {
			rc = cm_err_set(-EPROTO, "the store has a table '%s' that `modelfs migrate` "
					"does not know (registry/db_copy.c): nothing was moved", name);
			break;
		}
	}
	db_reset(s);
done:
	return rc < 0 ? rc : 0;
}

/* The INSERT for the row shape of `from`; NULL in *out on failure. */
static int insert_for(struct reg_conn *tc, const char *table, struct db_stmt *from,
		      struct db_stmt **out)
{
	char sql[SQL_MAX];
	int n = db_col_count(from);
	size_t len;

	len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s(", table);
	for (int i = 0; i < n && len < sizeof(sql); i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s%s", i ? ", " : "",
					db_col_name(from, i));
	if (len < sizeof(sql))
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ") VALUES (");
	for (int i = 0; i < n && len < sizeof(sql); i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s?%d", i ? ", " : "", i + 1);
	if (len < sizeof(sql))
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ")");
	if (len >= sizeof(sql))
		return cm_err_set(-E2BIG, "table %s has too many columns", table);
	return db_stmt_adhoc(tc, sql, out);
}

static int has_column(struct db_stmt *s, const char *name)
{
	for (int i = 0; i < db_col_count(s); i++)
		if (!strcmp(db_col_name(s, i), name))
			return 1;
	return 0;
}

static int run_adhoc(struct reg_conn *c, const char *sql, const char *what)
{
	struct db_stmt *s = NULL;
	int rc = db_stmt_adhoc(c, sql, &s);

	if (rc == 0)
		rc = db_step(c, s, what);
	db_stmt_free(s);
	return rc < 0 ? rc : 0;
}

/* Copies one table; its row count into *rows. */
static int copy_table(struct reg_conn *sc, struct reg_conn *tc, const char *table, int to_pg,
		      int64_t *rows)
{
	struct db_stmt *from = NULL, *ins = NULL;
	char sql[256];
	int id_col = 0;
	int rc;

	*rows = 0;
	snprintf(sql, sizeof(sql), "SELECT * FROM %s", table);
	rc = db_stmt_adhoc(sc, sql, &from);
	if (rc < 0)
		goto done;
	while ((rc = db_step(sc, from, "reading a table")) > 0) {
		int n = db_col_count(from);

		/* The store's id is written by the move itself. */
		if (!strcmp(table, "store_info") && !strcmp(db_col_str(from, 0), "store_id"))
			continue;
		if (!ins) {
			rc = insert_for(tc, table, from, &ins);
			if (rc < 0)
				goto done;
			id_col = has_column(from, "id");
		} else {
			db_reset(ins);
		}
		for (int i = 0; i < n; i++) {
			switch (db_col_type(from, i)) {
			case DB_T_NULL:
				db_bind_null(ins, i + 1);
				break;
			case DB_T_INT:
				db_bind_int64(ins, i + 1, db_col_int64(from, i));
				break;
			case DB_T_FLOAT:
				db_bind_double(ins, i + 1, db_col_double(from, i));
				break;
			default:
				db_bind_text(ins, i + 1, db_col_str(from, i));
			}
		}
		rc = db_step(tc, ins, "writing a table");
		if (rc < 0)
			goto done;
		(*rows)++;
	}
	if (rc < 0)
		goto done;
	/* PostgreSQL's identity columns go on after the copied ids. */
	if (to_pg && id_col) {
		snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence('%s', 'id'), "
			 "(SELECT coalesce(max(id), 0) + 1 FROM %s), false)", table, table);
		rc = run_adhoc(tc, sql, "moving an id sequence on");
	}
done:
	db_stmt_free(ins);
	db_stmt_free(from);
	return rc < 0 ? rc : 0;
}

static int info_get(struct reg_conn *c, const char *key, char *out, size_t n)
{
	struct db_stmt *s;
	int rc;

	out[0] = '\0';
	DB_STMT(c, INFO_GET, s);
	db_bind_text(s, 1, key);
	rc = db_step(c, s, "reading the store's facts");
	if (rc > 0)
		db_col_text(s, 0, out, n);
	db_reset(s);
done:
	return rc < 0 ? rc : 0;
}

static int info_set(struct reg_conn *c, const char *key, const char *value)
{
	struct db_stmt *s;
	int rc;

	DB_STMT(c, INFO_SET, s);
	db_bind_text(s, 1, key);
	db_bind_text(s, 2, value);
	rc = db_exec_stmt(c, s, "recording the store's facts");
done:
	return rc;
}

static int rows_of(struct reg_conn *c, int64_t *out)
{
	struct db_stmt *s;
	int rc;

	DB_STMT(c, INFO_ROWS, s);
	rc = db_step(c, s, "counting the target's rows");
	if (rc > 0)
		*out = db_col_int64(s, 0);
	db_reset(s);
done:
	return rc < 0 ? rc : 0;
}

/* The directory's id, made (and written) when the store has none yet. */
static int store_id(struct reg_store *st, char *out, size_t n)
{
	unsigned char b[16];
	char *text = NULL;
	size_t len = 0;
	int rc = st_read_file(st->meta_fd, REG_ID_NAME, 128, &text, &len);

	if (rc == 0) {
		cm_strlcpy(out, text, n);
		out[strcspn(out, "\r\n")] = '\0';
		free(text);
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return cm_err_set(-errno, "making a store id: %s", strerror(errno));
	for (int i = 0; i < 16 && 2 * (size_t)i + 2 < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	rc = st_write_atomic(st->meta_fd, REG_ID_NAME, out, strlen(out), 0644);
	return rc < 0 ? rc : st_fsync_dir(st->meta_fd);
}

int reg_store_migrate(const char *path, const char *to, json_t **report)
{
	struct reg_store *src = NULL, *tgt = NULL;
	struct reg_conn *sc = NULL, *tc = NULL;
	char id[128], have[128], tpath[4200], old[4300], moved[160];
	json_t *counts = json_object();
	int to_sqlite = to && !strcmp(to, "sqlite");
	int rc;

	if (!to || !to[0])
		return cm_err_set(-EINVAL, "--to is postgresql://... or sqlite");
	if (!to_sqlite && strncmp(to, "postgresql://", 13) && strncmp(to, "postgres://", 11) &&
	    !strchr(to, '='))
		return cm_err_set(-EINVAL, "--to '%.100s' is neither sqlite nor a PostgreSQL URI", to);
	if (!counts)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = reg_store_open(path, REG_OPEN_LOCK | REG_OPEN_NO_RECONCILE, &src);
	if (rc < 0)
		goto done;
	if (to_sqlite && !src->db_url) {
		rc = cm_err_set(-EINVAL, "the store's metadata is in SQLite already (give --db to "
				"move it from PostgreSQL)");
		goto done;
	}
	rc = store_id(src, id, sizeof(id));
	if (rc < 0)
		goto done;
	tgt = calloc(1, sizeof(*tgt));
	if (!tgt || (!to_sqlite && !(tgt->db_url = strdup(to)))) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	tgt->root_fd = tgt->meta_fd = tgt->lock_fd = -1;
	tgt->admin_gid = -1;
	snprintf(tpath, sizeof(tpath), "%s/%s/%s.migrating", path, REG_META_DIR, REG_DB_NAME);
	if (to_sqlite) {
		unlink(tpath);
		snprintf(old, sizeof(old), "%s-wal", tpath);
		unlink(old);
		snprintf(old, sizeof(old), "%s-shm", tpath);
		unlink(old);
	}
	rc = db_open(tgt, tpath, 0);
	if (rc < 0)
		goto done;
	/* The source's writers wait (PostgreSQL: every daemon's) until the move ends. */
	rc = db_write_begin(src, &sc);
	if (rc < 0)
		goto done;
	rc = db_write_begin(tgt, &tc);
	if (rc < 0)
		goto done;
	{
		int64_t rows = 0;

		rc = info_get(tc, "store_id", have, sizeof(have));
		if (rc == 0)
			rc = rows_of(tc, &rows);
		if (rc == 0 && (have[0] || rows > 0))
			rc = cm_err_set(-EEXIST, "the target database is not empty (%s): `modelfs "
					"migrate` moves a store into an empty one",
					have[0] ? have : "it holds models or events");
		if (rc < 0)
			goto done;
	}
	rc = check_tables(sc);
	for (size_t i = 0; rc == 0 && i < N_TABLES; i++) {
		int64_t rows = 0;

		rc = copy_table(sc, tc, copy_tables[i], !to_sqlite, &rows);
		if (rc == 0)
			json_object_set_new(counts, copy_tables[i], json_integer(rows));
	}
	if (rc == 0 && !to_sqlite)
		rc = run_adhoc(tc, "UPDATE event_seq SET last = (SELECT coalesce(max(id), 0) FROM "
			       "events)", "moving the event counter on");
	if (rc == 0)
		rc = info_set(tc, "store_id", id);
	if (rc == 0)
		rc = db_write_commit(tc);
	if (rc < 0)
		goto done;
	db_write_end(tc);
	tc = NULL;
	if (to_sqlite) {
		/* The new file takes registry.db's place; one an earlier move left goes aside. */
		db_close(tgt);
		snprintf(old, sizeof(old), "%s/%s/%s", path, REG_META_DIR, REG_DB_NAME);
		if (access(old, F_OK) == 0) {
			char aside[4400];

			snprintf(aside, sizeof(aside), "%s.moved-%lld", old,
				 (long long)(cm_time_now_us() / 1000000));
			if (rename(old, aside) < 0) {
				rc = cm_err_set(-errno, "moving the old registry.db aside: %s",
						strerror(errno));
				goto done;
			}
			for (int k = 0; k < 2; k++) {
				char from[4400], into[4500];

				snprintf(from, sizeof(from), "%s%s", old, k ? "-shm" : "-wal");
				snprintf(into, sizeof(into), "%s%s", aside, k ? "-shm" : "-wal");
				rename(from, into); /* absent once the old file was closed cleanly */
			}
		}
		if (rename(tpath, old) < 0) {
			rc = cm_err_set(-errno, "putting the new registry.db in place: %s",
					strerror(errno));
			goto done;
		}
		st_fsync_dir(src->meta_fd);
	}
	/* The source is refused from now on: its id says where it went. */
	snprintf(moved, sizeof(moved), "moved:%s", id);
	rc = info_set(sc, "store_id", moved);
	if (rc == 0)
		rc = db_write_commit(sc);
	if (rc < 0)
		goto done;
	db_write_end(sc);
	sc = NULL;
	if (report) {
		*report = json_pack("{s:s s:s s:s s:O}", "from", src->db_url ? "postgresql" : "sqlite",
				    "to", to_sqlite ? "sqlite" : "postgresql", "store_id", id,
				    "tables", counts);
		if (!*report)
			rc = cm_err_set(-ENOMEM, "out of memory");
	}
done:
	db_write_abort(tc);
	db_write_abort(sc);
	if (tgt) {
		db_close(tgt);
		free(tgt->db_url);
		free(tgt);
	}
	if (rc < 0 && to_sqlite)
		unlink(tpath);
	reg_store_close(src);
	json_decref(counts);
	return rc;
}
