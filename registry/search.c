// SPDX-License-Identifier: Apache-2.0
/*
 * Descriptions, owners and tags, and search. A version's description, owner
 * and tags are keys of its metadata record; a model's live in the models row
 * and model_tags. Every scalar leaf of a record is copied into
 * version_leaves in the transaction that changes the record (srch_leaves_set),
 * so that filters (filter.c) and sorts run on indexes. Lists answer with full
 * version summaries (aliases, key metrics, tags) from a fixed number of
 * queries per page: the page, then its leaves and aliases in batches of ids.
 *
 * Dynamic SQL: reg_version_search() prepares the statement that filter.c
 * and the sort/cursor below assemble from fixed fragments, every value bound
 * as a parameter (db_stmt_adhoc in db.c, the backend boundary, is the door for it).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_i.h"
#include "db_i.h"

#define SRCH_TAGS_MAX 64
#define SRCH_TAG_VALUE_MAX 256
#define SRCH_OWNER_MAX 128
#define SRCH_DESCRIPTION_MAX 4096
#define SRCH_LEAVES_MAX 1000 /* leaves indexed per record (the rest are not searchable) */
#define SRCH_DRIVE_CAP 2000  /* below this many matches a comparison drives the query */

/* ---- validation ---- */

/* Printable UTF-8 text without control characters (newline and tab when allowed). */
static int text_clean(const char *s, int multiline)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && !(multiline && (*p == '\n' || *p == '\t'))) || *p == 0x7f)
			return 0;
	return 1;
}

int reg_tag_key_check(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > 63 || !isalnum((unsigned char)key[0]))
		return cm_err_set(-EINVAL, "tag key '%.80s' must be 1 to 63 letters, digits, '_' or "
				  "'-', starting with a letter or digit", key);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)key[i]) && key[i] != '_' && key[i] != '-')
			return cm_err_set(-EINVAL, "tag key '%.80s' must be 1 to 63 letters, digits, "
					  "'_' or '-', starting with a letter or digit", key);
	return 0;
}

static int tag_value_check(const char *key, json_t *v)
{
	const char *s = json_string_value(v);

	if (!json_is_string(v))
		return cm_err_set(-EINVAL, "tag '%s' must have a string value", key);
	if (!s[0] || strlen(s) > SRCH_TAG_VALUE_MAX || !text_clean(s, 0))
		return cm_err_set(-EINVAL, "tag '%s' must have a value of 1 to %d characters without "
				  "control characters", key, SRCH_TAG_VALUE_MAX);
	return 0;
}

int srch_about_check(json_t *description, json_t *owner, json_t *tags, int patch)
{
	const char *key;
	json_t *v;
	int rc;

	if (description && !json_is_null(description)) {
		const char *s = json_string_value(description);

		if (!json_is_string(description))
			return cm_err_set(-EINVAL, "'description' must be a string");
		if (strlen(s) > SRCH_DESCRIPTION_MAX || !text_clean(s, 1))
			return cm_err_set(-EINVAL, "'description' must be at most %d bytes without "
					  "control characters other than newline and tab",
					  SRCH_DESCRIPTION_MAX);
	}
	if (owner && !json_is_null(owner)) {
		const char *s = json_string_value(owner);

		if (!json_is_string(owner))
			return cm_err_set(-EINVAL, "'owner' must be a string");
		if (!s[0] || strlen(s) > SRCH_OWNER_MAX || !text_clean(s, 0))
			return cm_err_set(-EINVAL, "'owner' must be 1 to %d characters without control "
					  "characters", SRCH_OWNER_MAX);
	}
	if (tags && !(patch && json_is_null(tags))) {
		if (!json_is_object(tags))
			return cm_err_set(-EINVAL, "'tags' must be an object of key: \"value\"");
		if (json_object_size(tags) > SRCH_TAGS_MAX)
			return cm_err_set(-EINVAL, "at most %d tags", SRCH_TAGS_MAX);
		json_object_foreach(tags, key, v) {
			rc = reg_tag_key_check(key);
			if (rc == 0 && !(patch && json_is_null(v)))
				rc = tag_value_check(key, v);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* ---- the leaf index ---- */

struct leaf_ctx {
	struct reg_conn *c;
	int64_t vid;
	size_t n;
	char path[FLT_PATH_MAX + 1];
};

static int leaf_put(struct leaf_ctx *x, json_t *v)
{
	struct db_stmt *s;
	int rc = 0;

	if (x->n >= SRCH_LEAVES_MAX)
		return 0;
	if (!json_is_number(v) && !json_is_string(v) && !json_is_boolean(v))
		return 0;
	DB_STMT(x->c, LEAF_INSERT, s);
	db_bind_int64(s, 1, x->vid);
	db_bind_text(s, 2, x->path);
	if (json_is_number(v))
		db_bind_double(s, 3, json_number_value(v));
	else if (json_is_boolean(v))
		db_bind_text(s, 4, json_is_true(v) ? "true" : "false");
	else
		db_bind_text(s, 4, json_string_value(v));
	rc = db_exec_stmt(x->c, s, "indexing metadata");
	x->n++;
done:
	return rc;
}

static int leaf_walk(struct leaf_ctx *x, json_t *obj, size_t len)
{
	const char *key;
	json_t *v;
	int rc;

	json_object_foreach(obj, key, v) {
		size_t k = strlen(key);

		if (len + (len > 0) + k > FLT_PATH_MAX || !k || strchr(key, '.'))
			continue; /* not addressable by a dotted path */
		if (len)
			x->path[len] = '.';
		memcpy(x->path + len + (len > 0), key, k + 1);
		rc = json_is_object(v) ? leaf_walk(x, v, len + (len > 0) + k) : leaf_put(x, v);
		x->path[len] = '\0';
		if (rc < 0)
			return rc;
	}
	return 0;
}

int srch_leaves_set(struct reg_conn *c, int64_t vid, json_t *rec)
{
	struct leaf_ctx x = { .c = c, .vid = vid };
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, LEAF_DELETE, s);
	db_bind_int64(s, 1, vid);
	rc = db_exec_stmt(c, s, "re-indexing metadata");
	if (rc == 0 && json_is_object(rec))
		rc = leaf_walk(&x, rec, 0);
done:
	return rc;
}

int srch_backfill(struct reg_store *st)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s, *m;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	char done_flag[8] = "";
	int rc, src;

	c = db_read_begin(st);
	DB_STMT(c, INFO_GET, s);
	db_bind_text(s, 1, "search_index");
	src = db_step(c, s, "reading the store's search index state");
	if (src > 0)
		db_col_text(s, 0, done_flag, sizeof(done_flag));
	db_reset(s);
	rc = src < 0 ? src : 0;
	db_read_end(c);
	c = NULL;
	if (rc < 0 || !strcmp(done_flag, "1"))
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, VERSION_IDS, s);
	while ((src = db_step(c, s, "listing versions to index")) > 0) {
		if (cm_grow(&ids, &cap, n + 1, sizeof(*ids), 256) < 0) {
			src = -ENOMEM;
			break;
		}
		ids[n++] = db_col_int64(s, 0);
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *rec = NULL;

		rc = reg_record_load(c, ids[i], &rec);
		if (rc == 0)
			rc = srch_leaves_set(c, ids[i], rec);
		json_decref(rec);
		if (rc < 0)
			goto done;
	}
	DB_STMT(c, INFO_SET, m);
	db_bind_text(m, 1, "search_index");
	db_bind_text(m, 2, "1");
	rc = db_exec_stmt(c, m, "recording the search index");
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
	}
done:
	db_write_abort(c);
	free(ids);
	return rc;
}

/* ---- version summaries ---- */

/* The columns every summary query selects, in this order. */
enum { SC_ID, SC_MODEL, SC_NAME, SC_SEQ, SC_STATE, SC_CREATED, SC_SEALED, SC_SIZE, SC_DIGEST,
       SC_VALIDATION, SC_COMMIT, SC_COUNT };

static json_t *time_or_null(int64_t us)
{
	char ts[CM_TIME_RFC3339_LEN];

	if (!us)
		return json_null();
	cm_time_format(us, ts);
	return json_string(ts);
}

static json_t *col_or_null(struct db_stmt *s, int col)
{
	const unsigned char *t = db_col_ustr(s, col);

	return t && t[0] ? json_string((const char *)t) : json_null();
}

/* A summary from a row of SUMMARY_COLS; aliases, metrics and tags filled later. */
static json_t *summary_row(struct db_stmt *s, int with_model)
{
	const char *state = db_col_str(s, SC_STATE);
	int draft = state && !strcmp(state, "draft");
	json_t *j;

	j = json_pack("{s:s? s:s? s:I s:o s:o s:o s:o s:o s:b s:[] s:{} s:o s:n s:n s:{}}", "name",
		      db_col_str(s, SC_NAME), "state", state, "seq",
		      (json_int_t)db_col_int64(s, SC_SEQ), "created_at",
		      time_or_null(db_col_int64(s, SC_CREATED)), "sealed_at",
		      time_or_null(db_col_int64(s, SC_SEALED)), "total_size",
		      draft ? json_null() : json_integer(db_col_int64(s, SC_SIZE)), "digest",
		      col_or_null(s, SC_DIGEST), "validation_status", col_or_null(s, SC_VALIDATION),
		      "archived", state && !strcmp(state, "archived"), "aliases", "metrics",
		      "git_commit", col_or_null(s, SC_COMMIT), "description", "owner", "tags");
	if (j && with_model)
		json_object_set_new(j, "model",
				    json_string(db_col_str(s, SC_MODEL)));
	return j;
}

/* Binds ids[0..n) (n <= SRCH_BATCH) to ?1..?n and NULL to the rest. */
static void bind_ids(struct db_stmt *s, const int64_t *ids, size_t n)
{
	for (size_t i = 0; i < SRCH_BATCH; i++) {
		if (i < n)
			db_bind_int64(s, (int)i + 1, ids[i]);
		else
			db_bind_null(s, (int)i + 1);
	}
}

/* The item of `items` (parallel to ids) whose id is vid, or NULL. */
static json_t *item_of(json_t *items, const int64_t *ids, size_t n, int64_t vid)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == vid)
			return json_array_get(items, i);
	return NULL;
}

/* Fills aliases, metrics, description, owner and tags of items (one per id). */
static int summaries_fill(struct reg_conn *c, json_t *items, const int64_t *ids, size_t n)
{
	struct db_stmt *s;
	int rc = 0, src;

	for (size_t off = 0; off < n; off += SRCH_BATCH) {
		size_t k = n - off < SRCH_BATCH ? n - off : SRCH_BATCH;

		DB_STMT(c, LEAVES_BY_IDS, s);
		bind_ids(s, ids + off, k);
		while ((src = db_step(c, s, "reading version summaries")) > 0) {
			json_t *it = item_of(items, ids, n, db_col_int64(s, 0));
			const char *path = db_col_str(s, 1);
			int isnum = !db_col_null(s, 2);

			if (!it || !path)
				continue;
			if (!strncmp(path, "performance_metrics.", 20)) {
				if (isnum && !strchr(path + 20, '.'))
					json_object_set_new(json_object_get(it, "metrics"), path + 20,
							    json_real(db_col_double(s, 2)));
			} else if (!strncmp(path, "tags.", 5)) {
				if (!isnum)
					json_object_set_new(json_object_get(it, "tags"), path + 5,
							    col_or_null(s, 3));
			} else if (!isnum) {
				json_object_set_new(it, path, col_or_null(s, 3));
			}
		}
		db_reset(s);
		if (src < 0)
			return src;
		DB_STMT(c, ALIASES_BY_IDS, s);
		bind_ids(s, ids + off, k);
		while ((src = db_step(c, s, "reading version aliases")) > 0) {
			json_t *it = item_of(items, ids, n, db_col_int64(s, 0));

			if (it)
				json_array_append_new(json_object_get(it, "aliases"),
						      json_string(db_col_str(s, 1)));
		}
		db_reset(s);
		if (src < 0)
			return src;
	}
done:
	return rc;
}

/* ---- search ---- */

static int hexval(char ch)
{
	return isdigit((unsigned char)ch) ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
}

/* Cursors are hex of a JSON array [key?, model, seq], or a bare seq (model lists by seq). */
static char *cursor_encode(json_t *arr)
{
	char *text = reg_json_dumps(arr, JSON_COMPACT);
	char *out = NULL;

	if (text) {
		size_t n = strlen(text);

		out = malloc(2 * n + 1);
		for (size_t i = 0; out && i < n; i++)
			snprintf(out + 2 * i, 3, "%02x", (unsigned char)text[i]);
	}
	free(text);
	return out;
}

static int cursor_decode(const char *cur, json_t **out)
{
	size_t n = strlen(cur);
	char *text;
	json_t *j;

	if (n % 2 || n > 2048)
		return cm_err_set(-EINVAL, "'cursor' is not a cursor this list gave out");
	text = malloc(n / 2 + 1);
	if (!text)
		return cm_err_set(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(cur[2 * i]), lo = hexval(cur[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(text);
			return cm_err_set(-EINVAL, "'cursor' is not a cursor this list gave out");
		}
		text[i] = (char)(hi * 16 + lo);
	}
	text[n / 2] = '\0';
	j = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_array(j) || json_array_size(j) < 2 ||
	    !json_is_string(json_array_get(j, json_array_size(j) - 2)) ||
	    !json_is_integer(json_array_get(j, json_array_size(j) - 1))) {
		json_decref(j);
		return cm_err_set(-EINVAL, "'cursor' is not a cursor this list gave out");
	}
	*out = j;
	return 0;
}

static int param_json(struct flt_sql *q, json_t *v)
{
	if (json_is_integer(v))
		return flt_param_int(q, json_integer_value(v));
	if (json_is_real(v))
		return flt_param_real(q, json_real_value(v));
	if (json_is_string(v))
		return flt_param_text(q, json_string_value(v));
	return cm_err_set(-EINVAL, "'cursor' is not a cursor this list gave out");
}

/*
 * (m.name, v.seq) after the cursor's, in ascending order. The leading
 * m.name >= bound lets a scan in name order start at the cursor's model
 * instead of the first one.
 */
static int tie_after(struct flt_sql *q, json_t *model, json_t *seq)
{
	int rc = flt_sql_add(q, "(m.name >= ");

	if (rc == 0)
		rc = param_json(q, model);
	if (rc == 0)
		rc = flt_sql_add(q, " AND (m.name > ");
	if (rc == 0)
		rc = param_json(q, model);
	if (rc == 0)
		rc = flt_sql_add(q, " OR v.seq > ");
	if (rc == 0)
		rc = param_json(q, seq);
	return rc ? rc : flt_sql_add(q, "))");
}

static int bind_params(struct db_stmt *s, const struct flt_sql *q)
{
	for (size_t i = 0; i < q->np; i++) {
		const struct flt_param *p = &q->p[i];
		int rc = p->type == FLT_P_TEXT ? db_bind_text(s, (int)i + 1, p->text)
			 : p->type == FLT_P_REAL ? db_bind_double(s, (int)i + 1, p->real)
						 : db_bind_int64(s, (int)i + 1, p->i);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * How to run a filter: driven from the index of its most selective
 * top-level leaf comparison when that one matches fewer than
 * SRCH_DRIVE_CAP leaves (then the few rows are sorted), otherwise as a scan
 * in the sort order with a cheap indexed check per row that stops at the
 * page's end. *drive gets the conjunct's number, or -1 for a scan. The
 * counts are capped, so planning costs at most SRCH_DRIVE_CAP index steps
 * per comparison.
 */
static int search_plan(struct reg_conn *c, const char *filter, int *drive)
{
	struct flt_plan plan = { 0 };
	struct flt_sql tmp = { 0 };
	int64_t best = SRCH_DRIVE_CAP;
	int rc;

	*drive = -1;
	rc = flt_compile(filter, &tmp, -1, &plan);
	flt_sql_free(&tmp);
	for (size_t i = 0; rc == 0 && !plan.top_or && i < plan.n; i++) {
		struct flt_sql cq = { 0 };
		struct db_stmt *s = NULL;
		int64_t n = 0;

		rc = flt_conj_count_sql(&plan.conj[i], SRCH_DRIVE_CAP, &cq);
		if (rc == 0)
			rc = db_stmt_adhoc(c, cq.sql.data, &s);
		if (rc == 0)
			rc = bind_params(s, &cq);
		if (rc == 0) {
			rc = db_step(c, s, "planning a search");
			if (rc > 0)
				n = db_col_int64(s, 0);
			rc = rc < 0 ? rc : 0;
		}
		db_stmt_free(s);
		flt_sql_free(&cq);
		if (rc == 0 && n < best) {
			best = n;
			*drive = (int)i;
		}
	}
	flt_plan_free(&plan);
	return rc;
}

/* Builds the page query for q into sql. */
static int search_sql(const struct reg_search *q, const struct flt_sort *sort, json_t *cursor,
		      int drive, int cross_join, struct flt_sql *sql)
{
	const char *key = NULL;
	char keybuf[32];
	int rc;

	rc = flt_sql_add(sql, "SELECT " SRCH_SUMMARY_COLS ", ");
	if (rc < 0)
		return rc;
	if (sort) {
		if (sort->column) {
			key = sort->column;
		} else {
			snprintf(keybuf, sizeof(keybuf), "sk.%s", sort->leaf_text ? "text" : "num");
			key = keybuf;
		}
	}
	rc = flt_sql_add(sql, key ? key : "NULL");
	/*
	 * A scan walks models by name, then each one's versions by seq: the
	 * default order. SQLite keeps a CROSS JOIN's order; PostgreSQL plans
	 * joins itself and takes no ON after CROSS JOIN.
	 */
	if (rc == 0 && drive < 0)
		rc = flt_sql_add(sql, cross_join ? " FROM models m CROSS JOIN versions v ON v.model_id = m.id"
						 : " FROM models m JOIN versions v ON v.model_id = m.id");
	else if (rc == 0)
		rc = flt_sql_add(sql, " FROM versions v JOIN models m ON m.id = v.model_id");
	if (rc == 0 && sort && !sort->column) {
		rc = flt_sql_add(sql, " LEFT JOIN version_leaves sk ON sk.version_id = v.id AND "
				 "sk.path = ");
		if (rc == 0)
			rc = flt_param_text(sql, sort->path);
	}
	if (rc == 0)
		rc = flt_sql_add(sql, " WHERE 1 = 1");
	if (rc == 0 && q->model) {
		rc = flt_sql_add(sql, " AND m.name = ");
		if (rc == 0)
			rc = flt_param_text(sql, q->model);
	}
	if (rc == 0 && q->state) {
		rc = flt_sql_add(sql, " AND v.state = ");
		if (rc == 0)
			rc = flt_param_text(sql, q->state);
	}
	if (rc == 0 && q->validation_status) {
		rc = flt_sql_add(sql, " AND v.validation_status = ");
		if (rc == 0)
			rc = flt_param_text(sql, q->validation_status);
	}
	if (rc == 0 && q->archived == REG_ARCHIVED_HIDE && !(q->state && !strcmp(q->state, "archived")))
		rc = flt_sql_add(sql, " AND v.state <> 'archived'");
	if (rc == 0 && q->archived == REG_ARCHIVED_ONLY)
		rc = flt_sql_add(sql, " AND v.state = 'archived'");
	if (rc == 0 && q->filter && q->filter[0]) {
		rc = flt_sql_add(sql, " AND ");
		if (rc == 0)
			rc = flt_compile(q->filter, sql, drive, NULL);
	}
	if (rc == 0 && cursor) {
		size_t nc = json_array_size(cursor);
		json_t *cm = json_array_get(cursor, nc - 2), *cs = json_array_get(cursor, nc - 1);

		rc = flt_sql_add(sql, " AND ");
		if (rc == 0 && !key && !q->cross) {
			rc = flt_sql_add(sql, "v.seq > ");
			if (rc == 0)
				rc = param_json(sql, cs);
		} else if (rc == 0 && !key) {
			rc = tie_after(sql, cm, cs);
		} else if (rc == 0 && nc != 3) {
			rc = cm_err_set(-EINVAL, "'cursor' is not a cursor this list gave out");
		} else if (rc == 0 && json_is_null(json_array_get(cursor, 0))) {
			/* Past the last key: the rows without one, in tie order. */
			rc = flt_sql_add(sql, "(");
			if (rc == 0)
				rc = flt_sql_add(sql, key);
			if (rc == 0)
				rc = flt_sql_add(sql, " IS NULL AND ");
			if (rc == 0)
				rc = tie_after(sql, cm, cs);
			if (rc == 0)
				rc = flt_sql_add(sql, ")");
		} else if (rc == 0) {
			json_t *ck = json_array_get(cursor, 0);

			rc = flt_sql_add(sql, "(");
			if (rc == 0 && sort->nullable) {
				rc = flt_sql_add(sql, key);
				if (rc == 0)
					rc = flt_sql_add(sql, " IS NULL OR ");
			}
			if (rc == 0)
				rc = flt_sql_add(sql, key);
			if (rc == 0)
				rc = flt_sql_add(sql, sort->desc ? " < " : " > ");
			if (rc == 0)
				rc = param_json(sql, ck);
			if (rc == 0)
				rc = flt_sql_add(sql, " OR (");
			if (rc == 0)
				rc = flt_sql_add(sql, key);
			if (rc == 0)
				rc = flt_sql_add(sql, " = ");
			if (rc == 0)
				rc = param_json(sql, ck);
			if (rc == 0)
				rc = flt_sql_add(sql, " AND ");
			if (rc == 0)
				rc = tie_after(sql, cm, cs);
			if (rc == 0)
				rc = flt_sql_add(sql, "))");
		}
	}
	if (rc == 0)
		rc = flt_sql_add(sql, " ORDER BY ");
	if (rc == 0 && key) {
		if (sort->nullable) {
			rc = flt_sql_add(sql, "CASE WHEN ");
			if (rc == 0)
				rc = flt_sql_add(sql, key);
			if (rc == 0)
				rc = flt_sql_add(sql, " IS NULL THEN 1 ELSE 0 END, ");
		}
		if (rc == 0)
			rc = flt_sql_add(sql, key);
		if (rc == 0)
			rc = flt_sql_add(sql, sort->desc ? " DESC, " : ", ");
	}
	if (rc == 0)
		rc = flt_sql_add(sql, q->model ? "v.seq" : "m.name, v.seq");
	if (rc == 0)
		rc = flt_sql_add(sql, " LIMIT ");
	if (rc == 0)
		rc = flt_param_int(sql, (int64_t)q->limit + 1);
	return rc;
}

int reg_version_search(struct reg_store *st, const struct reg_search *q, json_t **out)
{
	struct flt_sort sort;
	struct flt_sql sql = { 0 };
	struct reg_conn *c = NULL;
	struct db_stmt *s = NULL;
	json_t *cursor = NULL, *items = NULL, *last_key = NULL, *page = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	char last_model[REG_NAME_MAX] = "";
	int64_t last_seq = 0;
	int drive = -1;
	int more = 0;
	int rc = 0, src;

	if (q->limit < 1)
		return cm_err_set(-EINVAL, "limit must be at least 1");
	if (q->sort && q->sort[0]) {
		rc = flt_sort_parse(q->sort, &sort);
		if (rc < 0)
			return rc;
	}
	if (q->cursor && q->cursor[0]) {
		/* A model's list in creation order keeps its plain-number cursors. */
		if (!q->cross && !(q->sort && q->sort[0]) &&
		    strspn(q->cursor, "0123456789") == strlen(q->cursor)) {
			cursor = json_pack("[s, I]", q->model, (json_int_t)strtoll(q->cursor, NULL, 10));
			if (!cursor)
				return cm_err_set(-ENOMEM, "out of memory");
		} else {
			rc = cursor_decode(q->cursor, &cursor);
			if (rc < 0)
				return rc;
		}
	}
	items = json_array();
	if (!items) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	c = db_read_begin(st);
	if (q->model && !q->cross) {
		int64_t mid;

		rc = reg_model_id(c, q->model, &mid);
		if (rc < 0)
			goto done;
	}
	if (q->filter && q->filter[0])
		rc = search_plan(c, q->filter, &drive);
	if (rc == 0)
		rc = search_sql(q, q->sort && q->sort[0] ? &sort : NULL, cursor, drive,
				!strcmp(db_kind(st), "sqlite"), &sql);
	if (rc == 0)
		rc = db_stmt_adhoc(c, sql.sql.data, &s);
	if (rc == 0)
		rc = bind_params(s, &sql);
	if (rc < 0)
		goto done;
	while ((src = db_step(c, s, "searching versions")) > 0) {
		json_t *it;

		if (n == q->limit) {
			more = 1;
			break;
		}
		it = summary_row(s, q->cross);
		if (!it || json_array_append_new(items, it) < 0 ||
		    cm_grow(&ids, &cap, n + 1, sizeof(*ids), 64) < 0) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			goto done;
		}
		ids[n++] = db_col_int64(s, SC_ID);
		db_col_text(s, SC_MODEL, last_model, sizeof(last_model));
		last_seq = db_col_int64(s, SC_SEQ);
		json_decref(last_key);
		switch (db_col_type(s, SC_COUNT)) {
		case DB_T_INT:
			last_key = json_integer(db_col_int64(s, SC_COUNT));
			break;
		case DB_T_FLOAT:
			last_key = json_real(db_col_double(s, SC_COUNT));
			break;
		case DB_T_NULL:
			last_key = json_null();
			break;
		default:
			last_key = json_string(db_col_str(s, SC_COUNT));
		}
	}
	if (src < 0) {
		rc = src;
		goto done;
	}
	rc = summaries_fill(c, items, ids, n);
	if (rc < 0)
		goto done;
	page = json_pack("{s:O s:n}", "versions", items, "next_cursor");
	if (!page) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (more) {
		char *next = NULL;

		if (!q->cross && !(q->sort && q->sort[0])) {
			if (asprintf(&next, "%lld", (long long)last_seq) < 0)
				next = NULL;
		} else {
			json_t *arr = q->sort && q->sort[0]
					      ? json_pack("[O s I]", last_key, last_model,
							  (json_int_t)last_seq)
					      : json_pack("[s I]", last_model, (json_int_t)last_seq);

			next = arr ? cursor_encode(arr) : NULL;
			json_decref(arr);
		}
		if (!next) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			goto done;
		}
		json_object_set_new(page, "next_cursor", json_string(next));
		free(next);
	}
	*out = page;
	page = NULL;
done:
	db_stmt_free(s);
	if (c)
		db_read_end(c);
	flt_sql_free(&sql);
	json_decref(cursor);
	json_decref(items);
	json_decref(last_key);
	json_decref(page);
	free(ids);
	return rc;
}

/* ---- models: description, owner, tags, overview ---- */

int reg_version_counts(struct reg_store *st, const char *model, int64_t counts[3],
		       char latest[REG_NAME_MAX])
{
	struct reg_conn *c = db_read_begin(st);
	int64_t n[3] = { 0, 0, 0 };
	struct db_stmt *s;
	int64_t mid;
	int rc, src;

	latest[0] = '\0';
	rc = reg_model_id(c, model, &mid);
	if (rc < 0)
		goto done;
	DB_STMT(c, VERSION_STATES, s);
	db_bind_int64(s, 1, mid);
	while ((src = db_step(c, s, "counting versions")) > 0) {
		const char *state = db_col_str(s, 0);

		for (int i = 0; state && i < 3; i++)
			if (!strcmp(state, reg_state_name((enum reg_state)i)))
				n[i] = db_col_int64(s, 1);
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	DB_STMT(c, VERSION_LATEST, s);
	db_bind_int64(s, 1, mid);
	src = db_step(c, s, "reading the latest version");
	if (src > 0)
		db_col_text(s, 0, latest, REG_NAME_MAX);
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	memcpy(counts, n, sizeof(n));
done:
	db_read_end(c);
	return rc;
}

static int model_about(struct reg_conn *c, int64_t mid, json_t **out)
{
	struct db_stmt *s;
	json_t *about = NULL, *tags;
	int rc = 0, src;

	DB_STMT(c, MODEL_ABOUT_GET, s);
	db_bind_int64(s, 1, mid);
	src = db_step(c, s, "reading a model");
	if (src > 0)
		about = json_pack("{s:o s:o s:{}}", "description", col_or_null(s, 0), "owner",
				  col_or_null(s, 1), "tags");
	db_reset(s);
	if (src <= 0) {
		rc = src < 0 ? src : cm_err_set(-ENOENT, "no model");
		goto done;
	}
	if (!about) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	tags = json_object_get(about, "tags");
	DB_STMT(c, MODEL_TAGS, s);
	db_bind_int64(s, 1, mid);
	while ((src = db_step(c, s, "reading a model's tags")) > 0)
		json_object_set_new(tags, db_col_str(s, 0),
				    col_or_null(s, 1));
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	*out = about;
	about = NULL;
done:
	json_decref(about);
	return rc;
}

int srch_model_about(struct reg_conn *c, int64_t mid, json_t **out)
{
	return model_about(c, mid, out);
}

int reg_model_about(struct reg_store *st, const char *model, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc == 0)
		rc = model_about(c, mid, out);
	db_read_end(c);
	return rc;
}

int reg_model_describe(struct reg_store *st, const struct reg_actor *who, const char *model,
		       json_t *patch, json_t **out)
{
	struct reg_conn *c = NULL;
	json_t *before = NULL, *after = NULL, *d, *o, *t;
	char *btext = NULL, *atext = NULL;
	const char *key;
	json_t *v;
	struct db_stmt *s;
	int64_t mid;
	int rc;

	if (!json_is_object(patch))
		return cm_err_set(-EINVAL, "the body must be an object with description, owner or tags");
	json_object_foreach(patch, key, v) {
		if (strcmp(key, "description") && strcmp(key, "owner") && strcmp(key, "tags"))
			return cm_err_set(-EINVAL, "unknown field '%.64s' (description, owner, tags)",
					  key);
	}
	d = json_object_get(patch, "description");
	o = json_object_get(patch, "owner");
	t = json_object_get(patch, "tags");
	rc = srch_about_check(d, o, t, 1);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = model_about(c, mid, &before);
	if (rc < 0)
		goto done;
	after = json_deep_copy(before);
	if (!after) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (d)
		json_object_set(after, "description", d);
	if (o)
		json_object_set(after, "owner", o);
	if (json_is_null(t)) {
		json_object_clear(json_object_get(after, "tags"));
	} else if (t) {
		json_object_foreach(t, key, v) {
			if (json_is_null(v))
				json_object_del(json_object_get(after, "tags"), key);
			else
				json_object_set(json_object_get(after, "tags"), key, v);
		}
	}
	if (json_object_size(json_object_get(after, "tags")) > SRCH_TAGS_MAX) {
		rc = cm_err_set(-EINVAL, "at most %d tags", SRCH_TAGS_MAX);
		goto done;
	}
	if (!json_equal(before, after)) {
		DB_STMT(c, MODEL_ABOUT_SET, s);
		db_bind_int64(s, 1, mid);
		db_bind_text(s, 2, json_string_value(json_object_get(after, "description")));
		db_bind_text(s, 3, json_string_value(json_object_get(after, "owner")));
		rc = db_exec_stmt(c, s, "describing a model");
		if (rc < 0)
			goto done;
		DB_STMT(c, MODEL_TAGS_CLEAR, s);
		db_bind_int64(s, 1, mid);
		rc = db_exec_stmt(c, s, "tagging a model");
		json_object_foreach(json_object_get(after, "tags"), key, v) {
			if (rc < 0)
				break;
			DB_STMT(c, MODEL_TAG_INSERT, s);
			db_bind_int64(s, 1, mid);
			db_bind_text(s, 2, key);
			db_bind_text(s, 3, json_string_value(v));
			rc = db_exec_stmt(c, s, "tagging a model");
		}
		if (rc < 0)
			goto done;
		btext = reg_json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS);
		atext = reg_json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS);
		rc = !btext || !atext ? cm_err_set(-ENOMEM, "out of memory")
				      : reg_event_add(c, who, "model.describe", model, NULL, NULL,
						      btext, atext, NULL);
		if (rc == 0)
			rc = db_write_commit(c);
		if (rc < 0)
			goto done;
		reg_materialize(st, c, model, NULL, 0);
	}
	db_write_end(c);
	c = NULL;
	if (out) {
		*out = after;
		after = NULL;
	}
done:
	db_write_abort(c);
	json_decref(before);
	json_decref(after);
	free(btext);
	free(atext);
	return rc;
}

/* Runs statement id over ids in batches, calling fn for each row. */
static int by_ids(struct reg_conn *c, enum reg_sql id, const int64_t *ids, size_t n,
		  void (*fn)(struct db_stmt *s, void *ctx), void *ctx, const char *what)
{
	for (size_t off = 0; off < n; off += SRCH_BATCH) {
		size_t k = n - off < SRCH_BATCH ? n - off : SRCH_BATCH;
		struct db_stmt *s = db_stmt(c, id);
		int src;

		if (!s)
			return -EIO;
		bind_ids(s, ids + off, k);
		while ((src = db_step(c, s, what)) > 0)
			fn(s, ctx);
		db_reset(s);
		if (src < 0)
			return src;
	}
	return 0;
}

struct overview {
	json_t *models;         /* items, parallel to mids */
	int64_t *mids, *latest, *last_event;
	size_t n;
	json_t *latest_items;   /* summaries, parallel to vids */
	int64_t *vids;
	size_t nv;
};

static json_t *model_item(struct overview *o, int64_t mid)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->mids[i] == mid)
			return json_array_get(o->models, i);
	return NULL;
}

static void ov_tag(struct db_stmt *s, void *ctx)
{
	json_t *it = model_item(ctx, db_col_int64(s, 0));

	if (it)
		json_object_set_new(json_object_get(it, "tags"), db_col_str(s, 1),
				    col_or_null(s, 2));
}

static void ov_alias(struct db_stmt *s, void *ctx)
{
	json_t *it = model_item(ctx, db_col_int64(s, 0));

	if (it)
		json_array_append_new(json_object_get(it, "aliases"),
				      json_pack("{s:s? s:s? s:o}", "alias",
						db_col_str(s, 1), "version",
						db_col_str(s, 2), "percent",
						db_col_null(s, 3)
							? json_null()
							: json_integer(db_col_int(s, 3))));
}

static void ov_event(struct db_stmt *s, void *ctx)
{
	struct overview *o = ctx;
	int64_t id = db_col_int64(s, 0);

	for (size_t i = 0; i < o->n; i++)
		if (o->last_event[i] == id)
			json_object_set_new(json_array_get(o->models, i), "last_event",
					    json_pack("{s:I s:o s:o s:o s:o}", "id", (json_int_t)id,
						      "ts", time_or_null(db_col_int64(s, 1)),
						      "kind", col_or_null(s, 2), "actor",
						      col_or_null(s, 3), "channel", col_or_null(s, 4)));
}

static void ov_version(struct db_stmt *s, void *ctx)
{
	struct overview *o = ctx;
	json_t *it = summary_row(s, 0);

	if (it && json_array_append_new(o->latest_items, it) == 0)
		o->vids[o->nv++] = db_col_int64(s, SC_ID);
}

int reg_model_overview(struct reg_store *st, const char *after, size_t limit, json_t **out)
{
	struct overview o = { 0 };
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	json_t *page = NULL;
	size_t cap = 0;
	int more = 0;
	int rc = 0, src;

	o.models = json_array();
	o.latest_items = json_array();
	if (!o.models || !o.latest_items) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	DB_STMT(c, MODEL_OVERVIEW, s);
	db_bind_text(s, 1, after ? after : "");
	db_bind_int64(s, 2, (int64_t)limit + 1);
	while ((src = db_step(c, s, "listing models")) > 0) {
		json_t *it;

		if (o.n == limit) {
			more = 1;
			break;
		}
		if (cm_grow(&o.mids, &cap, o.n + 1, sizeof(int64_t), 64) < 0 ||
		    !(o.latest = realloc(o.latest, cap * sizeof(int64_t))) ||
		    !(o.last_event = realloc(o.last_event, cap * sizeof(int64_t)))) {
			src = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
		it = json_pack("{s:s? s:o s:o s:o s:{} s:[] s:n s:n}", "name",
			       db_col_str(s, 1), "created_at",
			       time_or_null(db_col_int64(s, 2)), "description",
			       col_or_null(s, 3), "owner", col_or_null(s, 4), "tags", "aliases",
			       "latest", "last_event");
		if (!it || json_array_append_new(o.models, it) < 0) {
			src = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
		o.mids[o.n] = db_col_int64(s, 0);
		o.latest[o.n] = db_col_int64(s, 5);
		o.last_event[o.n] = db_col_int64(s, 6);
		o.n++;
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	o.vids = calloc(o.n + 1, sizeof(int64_t));
	if (!o.vids) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	rc = by_ids(c, REG_SQL_MODEL_TAGS_BY_IDS, o.mids, o.n, ov_tag, &o, "reading model tags");
	if (rc == 0)
		rc = by_ids(c, REG_SQL_MODEL_ALIASES_BY_IDS, o.mids, o.n, ov_alias, &o,
			    "reading model aliases");
	if (rc == 0)
		rc = by_ids(c, REG_SQL_EVENTS_BY_IDS, o.last_event, o.n, ov_event, &o,
			    "reading models' last events");
	if (rc == 0)
		rc = by_ids(c, REG_SQL_VERSIONS_BY_IDS, o.latest, o.n, ov_version, &o,
			    "reading models' latest versions");
	if (rc == 0)
		rc = summaries_fill(c, o.latest_items, o.vids, o.nv);
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < o.n; i++)
		for (size_t k = 0; k < o.nv; k++)
			if (o.latest[i] == o.vids[k])
				json_object_set(json_array_get(o.models, i), "latest",
						json_array_get(o.latest_items, k));
	page = json_pack("{s:O s:o}", "models", o.models, "next_cursor",
			 more && o.n ? json_string(json_string_value(json_object_get(
					       json_array_get(o.models, o.n - 1), "name")))
				     : json_null());
	if (!page) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	*out = page;
done:
	db_read_end(c);
	json_decref(o.models);
	json_decref(o.latest_items);
	free(o.mids);
	free(o.latest);
	free(o.last_event);
	free(o.vids);
	return rc;
}
