/* SPDX-License-Identifier: Apache-2.0 */
/* Models, and the helpers every registry call shares: ids, events, records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "reg_i.h"

int reg_model_id(struct reg_conn *c, const char *model, int64_t *id)
{
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, MODEL_GET, s);
	db_bind_text(s, 1, model);
	src = db_step(c, s, "looking up a model");
	if (src > 0)
		*id = db_col_int64(s, 0);
	else if (src == 0)
		rc = cm_err_set(-ENOENT, "no model '%s'", model);
	else
		rc = src;
	db_reset(s);
done:
	return rc;
}

int reg_event_add(struct reg_conn *c, const struct reg_actor *who, const char *kind,
		  const char *model, const char *version, const char *alias, const char *before,
		  const char *after, json_t *detail)
{
	struct db_stmt *s;
	char *d = NULL;
	int rc = 0;

	if (detail) {
		d = reg_json_dumps(detail, JSON_COMPACT);
		if (!d)
			return cm_err_set(-ENOMEM, "out of memory writing an event");
	}
	DB_STMT(c, EVENT_INSERT, s);
	db_bind_int64(s, 1, cm_time_now_us());
	db_bind_text(s, 2, model);
	db_bind_text(s, 3, version);
	db_bind_text(s, 4, alias);
	db_bind_text(s, 5, kind);
	db_bind_text(s, 6, who && who->channel ? who->channel : "internal");
	db_bind_text(s, 7, who && who->name ? who->name : "modelfs");
	db_bind_text(s, 8, before);
	db_bind_text(s, 9, after);
	db_bind_text(s, 10, d);
	rc = db_exec_stmt(c, s, "recording an event");
	/* Git tags the change calls for commit (or roll back) with it. */
	if (rc == 0)
		rc = gs_event_enqueue(c, db_last_id(c), who, kind, model, version,
				      alias, before, after, detail);
	if (rc == 0)
		db_note(c, kind, who && who->channel ? who->channel : "internal", model, version, alias);
done:
	free(d);
	return rc;
}

int reg_record_load(struct reg_conn *c, int64_t vid, json_t **out)
{
	json_error_t jerr;
	const char *text;
	struct db_stmt *s;
	json_t *rec;
	int rc = 0;

	DB_STMT(c, VERSION_META_GET, s);
	db_bind_int64(s, 1, vid);
	rc = db_step(c, s, "loading a metadata record");
	if (rc <= 0) {
		if (rc == 0)
			rc = cm_err_set(-ENOENT, "no metadata record for version %lld", (long long)vid);
		db_reset(s);
		goto done;
	}
	rc = 0;
	text = db_col_str(s, 0);
	/* REG_RECORD_ABSENT: the version has no record (its metadata.json was removed). */
	rec = text && text[0] ? reg_json_loads(text, &jerr) : json_object();
	db_reset(s);
	if (!rec) {
		rc = cm_err_set(-EIO, "stored metadata record is not JSON: %s", jerr.text);
		goto done;
	}
	*out = rec;
done:
	return rc;
}

static void model_row(struct db_stmt *s, struct reg_model *m)
{
	m->id = db_col_int64(s, 0);
	db_col_text(s, 1, m->name, sizeof(m->name));
	m->created_us = db_col_int64(s, 2);
}

int reg_model_create(struct reg_store *st, const struct reg_actor *who, const char *name,
		     struct reg_model *out)
{
	struct reg_conn *c = NULL;
	struct reg_model m = { 0 };
	struct db_stmt *s;
	int rc;

	rc = reg_name_model_check(name);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, MODEL_INSERT, s);
	m.created_us = cm_time_now_us();
	db_bind_text(s, 1, name);
	db_bind_int64(s, 2, m.created_us);
	rc = db_exec_stmt(c, s, "creating a model");
	if (rc == -EEXIST)
		rc = cm_err_set(-EEXIST, "model '%s' already exists", name);
	if (rc < 0)
		goto done;
	m.id = db_last_id(c);
	cm_strlcpy(m.name, name, sizeof(m.name));
	rc = reg_event_add(c, who, "model.create", name, NULL, NULL, NULL, NULL, NULL);
	if (rc < 0)
		goto done;
	rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, name, NULL, 0);
	db_write_end(c);
	c = NULL;
	if (out)
		*out = m;
done:
	db_write_abort(c);
	return rc;
}

int reg_model_get(struct reg_store *st, const char *name, struct reg_model *out)
{
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, MODEL_GET, s);
	db_bind_text(s, 1, name);
	src = db_step(c, s, "reading a model");
	if (src > 0)
		model_row(s, out);
	else if (src == 0)
		rc = cm_err_set(-ENOENT, "no model '%s'", name);
	else
		rc = src;
	db_reset(s);
done:
	db_read_end(c);
	return rc;
}

int reg_model_list(struct reg_store *st, const char *after, size_t limit,
		   struct reg_model **out, size_t *n)
{
	struct reg_conn *c = db_read_begin(st);
	struct reg_model *v = NULL;
	size_t cnt = 0, cap = 0;
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, MODEL_LIST, s);
	db_bind_text(s, 1, after ? after : "");
	db_bind_int64(s, 2, limit ? (int64_t)limit : -1);
	while ((src = db_step(c, s, "listing models")) > 0) {
		rc = cm_grow(&v, &cap, cnt + 1, sizeof(*v), 16);
		if (rc < 0)
			break;
		model_row(s, &v[cnt++]);
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
	if (rc == 0) {
		*out = v;
		*n = cnt;
		v = NULL;
	}
done:
	free(v);
	db_read_end(c);
	return rc;
}

int reg_model_delete(struct reg_store *st, const struct reg_actor *who, const char *name)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int64_t id;
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, name, &id);
	if (rc < 0)
		goto done;
	DB_STMT(c, VERSION_COUNT, s);
	db_bind_int64(s, 1, id);
	rc = db_step(c, s, "counting a model's versions");
	if (rc > 0)
		rc = db_col_int64(s, 0) > 0
			     ? cm_err_set(-ENOTEMPTY, "model '%s' has versions and cannot be removed", name)
			     : 0;
	db_reset(s);
	if (rc < 0)
		goto done;
	DB_STMT(c, MODEL_DELETE, s);
	db_bind_int64(s, 1, id);
	rc = db_exec_stmt(c, s, "removing a model");
	if (rc == 0)
		rc = reg_event_add(c, who, "model.delete", name, NULL, NULL, NULL, NULL, NULL);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	/* The generated metadata.json goes first, so the directory can go. */
	{
		int fd = -1;

		if (st_openat_dir(st->root_fd, name, &fd) == 0) {
			unlinkat(fd, REG_METADATA_FILE, 0);
			close(fd);
		}
	}
	if (unlinkat(st->root_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		reg_disk_error(st, cm_err_set(-errno, "removing model directory '%s': %s", name,
					      strerror(errno)));
	st_fsync_dir(st->root_fd);
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	return rc;
}
