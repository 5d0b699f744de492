/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Versions: create, read, metadata records, seal, verify, and the in-memory
 * bookkeeping of writes in progress that keeps a version from being sealed
 * under a writer (and of open files that keep it from being deleted; the
 * lifecycle itself, archive and delete, is in lifecycle.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reg_i.h"

/* How long a seal waits for writes that are ending before it says EBUSY. */
#define REG_SEAL_WRITER_WAIT_S 2

static enum reg_state state_parse(const char *s)
{
	if (!s || !strcmp(s, "draft"))
		return REG_DRAFT;
	if (!strcmp(s, "sealed"))
		return REG_SEALED;
	return REG_ARCHIVED;
}

static void version_fill(struct db_stmt *s, const char *model, struct reg_version *v)
{
	memset(v, 0, sizeof(*v));
	v->id = db_col_int64(s, 0);
	cm_strlcpy(v->model, model, sizeof(v->model));
	db_col_text(s, 1, v->name, sizeof(v->name));
	v->seq = db_col_int64(s, 2);
	v->state = state_parse(db_col_str(s, 3));
	v->created_us = db_col_int64(s, 4);
	v->sealed_us = db_col_int64(s, 5);
	v->total_size = db_col_int64(s, 6);
	db_col_text(s, 7, v->digest, sizeof(v->digest));
	db_col_text(s, 8, v->validation_status, sizeof(v->validation_status));
}

int reg_version_row(struct reg_conn *c, int64_t model_id, const char *model, const char *name,
		    struct reg_version *out)
{
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, VERSION_GET, s);
	db_bind_int64(s, 1, model_id);
	db_bind_text(s, 2, name);
	src = db_step(c, s, "reading a version");
	if (src > 0)
		version_fill(s, model, out);
	else if (src == 0)
		rc = cm_err_set(-ENOENT, "no version '%s' of model '%s'", name, model);
	else
		rc = src;
	db_reset(s);
done:
	return rc;
}

/* Model id and version row on connection c. */
static int lookup(struct reg_conn *c, const char *model, const char *version, int64_t *mid,
		  struct reg_version *v)
{
	int rc = reg_model_id(c, model, mid);

	if (rc < 0)
		return rc;
	return reg_version_row(c, *mid, model, version, v);
}

int reg_versions_query(struct reg_conn *c, int64_t mid, const char *model,
		       const struct reg_version_filter *f, struct reg_version **out, size_t *n)
{
	struct reg_version *v = NULL;
	size_t cnt = 0, cap = 0;
	struct db_stmt *s;
	int rc = 0;
	int src;

	DB_STMT(c, VERSION_LIST, s);
	db_bind_int64(s, 1, mid);
	db_bind_int64(s, 2, f ? f->after_seq : 0);
	if (f && f->state >= 0)
		db_bind_text(s, 3, reg_state_name((enum reg_state)f->state));
	if (f && f->validation_status)
		db_bind_text(s, 4, f->validation_status);
	db_bind_int64(s, 5, f && f->limit ? (int64_t)f->limit : -1);
	db_bind_int(s, 6, f ? (int)f->archived : REG_ARCHIVED_INCLUDE);
	while ((src = db_step(c, s, "listing versions")) > 0) {
		rc = cm_grow(&v, &cap, cnt + 1, sizeof(*v), 16);
		if (rc < 0)
			break;
		version_fill(s, model, &v[cnt++]);
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
	return rc;
}

/* Removes fields that are derived, never stored. */
static void record_strip(json_t *rec)
{
	json_object_del(rec, "deployed_to");
}

/* Binds the copies of record fields that the db indexes. */
static void bind_record_columns(struct db_stmt *s, json_t *rec, int first)
{
	static const char *const cols[] = { "git_commit", "training_data_hash", "validation_status",
					    "parent_version" };

	for (int i = 0; i < 4; i++) {
		json_t *v = json_object_get(rec, cols[i]);
		char buf[128];

		if (!json_is_string(v)) {
			db_bind_null(s, first + i);
			continue;
		}
		cm_strlcpy(buf, json_string_value(v), sizeof(buf));
		if (i == 0)
			for (char *p = buf; *p; p++)
				*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
		db_bind_text(s, first + i, buf);
	}
}

static int record_text(json_t *rec, char **out)
{
	char *t = reg_json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (!t)
		return cm_err_set(-ENOMEM, "out of memory");
	if (strlen(t) > REG_META_MAX) {
		free(t);
		return cm_err_set(-E2BIG, "metadata record is larger than %d bytes", REG_META_MAX);
	}
	*out = t;
	return 0;
}

int reg_version_create(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *name, json_t *metadata, struct reg_version *out)
{
	struct reg_conn *c = NULL;
	struct reg_version v;
	char auto_name[REG_NAME_MAX];
	json_t *rec = NULL;
	char *text = NULL;
	struct db_stmt *s;
	int64_t mid, seq = 0;
	int rc;

	if (name && name[0]) {
		rc = reg_name_version_check(name);
		if (rc < 0)
			return rc;
	}
	rec = metadata ? json_deep_copy(metadata) : json_object();
	if (!rec)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = reg_model_id(c, model, &mid);
	if (rc < 0)
		goto done;
	DB_STMT(c, VERSION_MAX_SEQ, s);
	db_bind_int64(s, 1, mid);
	rc = db_step(c, s, "numbering a new version");
	if (rc > 0)
		seq = db_col_int64(s, 0) + 1;
	db_reset(s);
	if (rc < 0)
		goto done;
	rc = 0;
	if (!name || !name[0]) {
		/* v<N+1>, skipping names already taken by explicitly named versions or aliases. */
		for (int64_t k = seq;; k++) {
			snprintf(auto_name, sizeof(auto_name), "v%lld", (long long)k);
			rc = reg_version_row(c, mid, model, auto_name, &v);
			if (rc == 0)
				continue; /* a version has it */
			if (rc == -ENOENT)
				rc = names_claim(c, mid, model, auto_name, NAMES_VERSION);
			if (rc == 0)
				break;
			if (rc != -EEXIST)
				goto done;
		}
		name = auto_name;
	} else {
		/* Checked against the db and the disk before anything is written: a 409 commits nothing. */
		rc = names_claim(c, mid, model, name, NAMES_VERSION);
		if (rc < 0)
			goto done;
	}
	cm_err_clear();
	rc = meta_check(rec, model, name);
	if (rc < 0)
		goto done;
	record_strip(rec);
	rc = record_text(rec, &text);
	if (rc < 0)
		goto done;
	if (!metadata)
		text[0] = '\0'; /* REG_RECORD_ABSENT: a new directory is empty, as mkdir makes it */
	DB_STMT(c, VERSION_INSERT, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, name);
	db_bind_int64(s, 3, seq);
	db_bind_int64(s, 4, cm_time_now_us());
	db_bind_text(s, 5, text);
	bind_record_columns(s, rec, 6);
	rc = db_exec_stmt(c, s, "creating a version");
	if (rc == -EEXIST)
		rc = cm_err_set(-EEXIST, "version '%s' of model '%s' already exists", name, model);
	if (rc < 0)
		goto done;
	rc = srch_leaves_set(c, db_last_id(c), rec);
	if (rc < 0)
		goto done;
	DB_STMT(c, MODEL_COUNTER_SET, s);
	db_bind_int64(s, 1, mid);
	db_bind_int64(s, 2, seq);
	rc = db_exec_stmt(c, s, "counting versions");
	if (rc < 0)
		goto done;
	rc = reg_event_add(c, who, "version.create", model, name, NULL, NULL, NULL, NULL);
	if (rc < 0)
		goto done;
	rc = reg_version_row(c, mid, model, name, &v);
	if (rc < 0)
		goto done;
	rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, name, 0);
	db_write_end(c);
	c = NULL;
	if (out)
		*out = v;
done:
	db_write_abort(c);
	free(text);
	json_decref(rec);
	return rc;
}

int reg_version_get(struct reg_store *st, const char *model, const char *name,
		    struct reg_version *out)
{
	struct reg_conn *c = db_read_begin(st);
	int64_t mid;
	int rc = lookup(c, model, name, &mid, out);

	db_read_end(c);
	return rc;
}

int reg_version_list(struct reg_store *st, const char *model, const struct reg_version_filter *f,
		     struct reg_version **out, size_t *n)
{
	struct reg_conn *c = db_read_begin(st);
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc == 0)
		rc = reg_versions_query(c, mid, model, f, out, n);
	db_read_end(c);
	return rc;
}

int ver_aliases_of(struct reg_conn *c, int64_t vid, json_t **out)
{
	json_t *a = json_array();
	struct db_stmt *s;
	int rc;

	if (!a)
		return cm_err_set(-ENOMEM, "out of memory");
	DB_STMT(c, ALIAS_BY_VERSION, s);
	db_bind_int64(s, 1, vid);
	while ((rc = db_step(c, s, "listing a version's aliases")) > 0) {
		if (json_array_append_new(a, json_string(db_col_str(s, 0)))) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	db_reset(s);
	if (rc == 0) {
		*out = a;
		a = NULL;
	}
done:
	json_decref(a);
	return rc;
}

int reg_version_metadata_get(struct reg_store *st, const char *model, const char *version,
			     json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	struct reg_version v;
	json_t *rec = NULL, *al = NULL;
	int64_t mid;
	int rc;

	rc = lookup(c, model, version, &mid, &v);
	if (rc == 0)
		rc = reg_record_load(c, v.id, &rec);
	if (rc == 0)
		rc = ver_aliases_of(c, v.id, &al);
	if (rc == 0) {
		if (!json_object_get(rec, "model_name"))
			json_object_set_new(rec, "model_name", json_string(model));
		if (!json_object_get(rec, "version"))
			json_object_set_new(rec, "version", json_string(version));
		json_object_set_new(rec, "deployed_to", al);
		*out = rec;
		rec = NULL;
	}
	json_decref(rec);
	db_read_end(c);
	return rc;
}

/* Fields whose values differ between a and b (both objects), as an array. */
/* NULL when out of memory: a partial list would let a frozen field change unseen. */
static json_t *changed_fields(json_t *a, json_t *b)
{
	json_t *out = json_array();
	const char *k;
	json_t *v;
	int bad = !out;

	json_object_foreach(a, k, v) {
		if (out && !json_equal(v, json_object_get(b, k)))
			bad |= json_array_append_new(out, json_string(k));
	}
	json_object_foreach(b, k, v) {
		if (out && !json_object_get(a, k))
			bad |= json_array_append_new(out, json_string(k));
	}
	if (bad) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Commits `rec` as version v's record, under the frozen-field rule. */
static int record_store(struct reg_store *st, struct reg_conn *c, const struct reg_actor *who,
			const char *model, const struct reg_version *v, json_t *old, json_t *rec,
			const char *kind, int create)
{
	json_t *changed = NULL;
	json_t *before = NULL, *after = NULL;
	json_t *detail = NULL;
	char *text = NULL, *btext = NULL, *atext = NULL;
	struct db_stmt *s;
	size_t i;
	json_t *f;
	int bad;
	int rc;

	rc = meta_check(rec, model, v->name);
	if (rc < 0)
		goto done;
	record_strip(rec);
	/* The names are fixed by the version itself: equal when present, so not a change. */
	json_object_del(rec, "model_name");
	json_object_del(rec, "version");
	json_object_del(old, "model_name");
	json_object_del(old, "version");
	changed = changed_fields(old, rec);
	if (!changed) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (!json_array_size(changed) && !create)
		goto done; /* nothing to do: no event either */
	if (v->state != REG_DRAFT) {
		json_array_foreach(changed, i, f) {
			if (!meta_field_mutable(json_string_value(f))) {
				rc = cm_err_set(-EROFS, "metadata field '%s' of %s/%s is frozen since the "
						"version was sealed (only validation_status, "
						"validation_metrics, production_metrics, notes, "
						"description, owner and tags can "
						"change)", json_string_value(f), model, v->name);
				goto done;
			}
		}
	}
	rc = record_text(rec, &text);
	if (rc < 0)
		goto done;
	DB_STMT(c, VERSION_META_SET, s);
	db_bind_int64(s, 1, v->id);
	db_bind_text(s, 2, text);
	bind_record_columns(s, rec, 3);
	rc = db_exec_stmt(c, s, "storing metadata");
	if (rc < 0)
		goto done;
	rc = srch_leaves_set(c, v->id, rec);
	if (rc < 0)
		goto done;
	before = json_object();
	after = json_object();
	bad = !before || !after || !changed;
	json_array_foreach(changed, i, f) {
		const char *k = json_string_value(f);
		json_t *b = json_object_get(old, k), *a = json_object_get(rec, k);

		bad |= !before || json_object_set(before, k, b ? b : json_null());
		bad |= !after || json_object_set(after, k, a ? a : json_null());
	}
	btext = bad ? NULL : reg_json_dumps(before, JSON_COMPACT);
	atext = bad ? NULL : reg_json_dumps(after, JSON_COMPACT);
	detail = bad ? NULL : json_pack("{sO}", "fields", changed);
	/* The audit trail gets the whole change or the change fails. */
	rc = !btext || !atext || !detail
		     ? cm_err_set(-ENOMEM, "out of memory")
		     : reg_event_add(c, who, kind, model, v->name, NULL, btext, atext, detail);
	if (rc < 0)
		goto done;
	rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, v->name, 0);
	rc = 1;
done:
	json_decref(changed);
	json_decref(before);
	json_decref(after);
	json_decref(detail);
	free(text);
	free(btext);
	free(atext);
	return rc;
}

int reg_record_present(struct reg_conn *c, int64_t vid)
{
	struct db_stmt *s;
	int rc;

	DB_STMT(c, VERSION_META_GET, s);
	db_bind_int64(s, 1, vid);
	rc = db_step(c, s, "loading a metadata record");
	if (rc > 0) {
		const char *t = db_col_str(s, 0);

		rc = t && t[0];
	} else if (rc == 0) {
		rc = cm_err_set(-ENOENT, "no version %lld", (long long)vid);
	}
	db_reset(s);
done:
	return rc;
}

/*
 * A change to a draft's record is a change to its tree (metadata.json is
 * rewritten there): it is counted as a write, so a seal waits for it and it
 * fails with -EBUSY while a seal runs. A sealed version's record changes
 * under the frozen-field rule without one (*vid 0).
 */
static int record_change_begin(struct reg_store *st, const char *model, const char *version,
			       int64_t *vid)
{
	int rc = reg_write_begin(st, model, version, vid);

	*vid = rc == 0 ? *vid : 0;
	if (rc == -EROFS) {
		cm_err_clear();
		rc = 0;
	}
	return rc;
}

static int metadata_change(struct reg_store *st, const struct reg_actor *who, const char *model,
			   const char *version, json_t *doc, int patch)
{
	struct reg_conn *c = NULL;
	struct reg_version v;
	json_t *old = NULL, *rec = NULL;
	int64_t mid, wvid = 0;
	int present;
	int rc;

	if (!json_is_object(doc))
		return cm_err_set(-EINVAL, "metadata must be a JSON object");
	rc = record_change_begin(st, model, version, &wvid);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = lookup(c, model, version, &mid, &v);
	if (rc < 0)
		goto done;
	present = reg_record_present(c, v.id);
	if (present < 0) {
		rc = present;
		goto done;
	}
	rc = reg_record_load(c, v.id, &old);
	if (rc < 0)
		goto done;
	if (patch)
		rc = meta_merge_patch(old, doc, &rec);
	else if (!(rec = json_deep_copy(doc)))
		rc = cm_err_set(-ENOMEM, "out of memory");
	if (rc < 0)
		goto done;
	rc = record_store(st, c, who, model, &v, old, rec, patch ? "metadata.patch" : "metadata.set",
			  !present);
	if (rc > 0) {
		db_write_end(c);
		c = NULL;
		rc = 0;
	}
done:
	db_write_abort(c);
	if (wvid > 0)
		reg_write_end(st, wvid);
	json_decref(old);
	json_decref(rec);
	return rc;
}

int reg_version_metadata_set(struct reg_store *st, const struct reg_actor *who,
			     const char *model, const char *version, json_t *record)
{
	return metadata_change(st, who, model, version, record, 0);
}

int reg_version_metadata_patch(struct reg_store *st, const struct reg_actor *who,
			       const char *model, const char *version, json_t *patch)
{
	return metadata_change(st, who, model, version, patch, 1);
}

int reg_version_metadata_set_text(struct reg_store *st, const struct reg_actor *who,
				  const char *model, const char *version, const char *text,
				  size_t len)
{
	json_error_t jerr;
	json_t *rec;
	int rc;

	if (len > REG_META_MAX)
		return cm_err_set(-EFBIG, "%s/%s/metadata.json: records are limited to %d bytes",
				  model, version, REG_META_MAX);
	if (memchr(text, '\0', len))
		return cm_err_set(-EINVAL, "%s/%s/metadata.json holds a NUL byte (JSON text cannot)",
				  model, version);
	rec = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!rec)
		return cm_err_set(-EINVAL, "%s/%s/metadata.json is not valid JSON: %s (line %d)",
				  model, version, jerr.text, jerr.line);
	/*
	 * The file's place names its version: the version name a copy from a
	 * sibling brings along (cp -r v1 v6) is the source's, not a claim about
	 * this one. Another model's name is still refused.
	 */
	if (json_is_object(rec)) {
		json_t *mn = json_object_get(rec, "model_name");

		if (!mn || (json_is_string(mn) && !strcmp(json_string_value(mn), model)))
			json_object_del(rec, "version");
	}
	rc = metadata_change(st, who, model, version, rec, 0);
	json_decref(rec);
	return rc;
}

int reg_version_metadata_remove(struct reg_store *st, const struct reg_actor *who,
				const char *model, const char *version)
{
	struct reg_conn *c = NULL;
	struct reg_version v;
	json_t *empty = NULL;
	char *before = NULL;
	struct db_stmt *s;
	int64_t mid, wvid = 0;
	int rc;

	rc = record_change_begin(st, model, version, &wvid);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = lookup(c, model, version, &mid, &v);
	if (rc < 0)
		goto done;
	if (v.state != REG_DRAFT) {
		rc = cm_err_set(-EROFS, "%s/%s is %s: its metadata record stays", model, version,
				reg_state_name(v.state));
		goto done;
	}
	rc = reg_record_present(c, v.id);
	if (rc <= 0)
		goto done; /* an error, or no record to remove */
	DB_STMT(c, VERSION_META_GET, s);
	db_bind_int64(s, 1, v.id);
	rc = db_step(c, s, "loading a metadata record");
	if (rc > 0)
		before = strdup(db_col_str(s, 0));
	db_reset(s);
	if (rc < 0)
		goto done;
	empty = json_object();
	if (!before || !empty) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	DB_STMT(c, VERSION_META_SET, s);
	db_bind_int64(s, 1, v.id);
	db_bind_text(s, 2, REG_RECORD_ABSENT);
	bind_record_columns(s, empty, 3);
	rc = db_exec_stmt(c, s, "removing metadata");
	if (rc == 0)
		rc = srch_leaves_set(c, v.id, NULL);
	if (rc == 0)
		rc = reg_event_add(c, who, "metadata.remove", model, version, NULL, before, NULL,
				   NULL);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, version, 0);
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	if (wvid > 0)
		reg_write_end(st, wvid);
	json_decref(empty);
	free(before);
	return rc < 0 ? rc : 0;
}

/* ---- writes in progress ---- */

static struct reg_live *live_find(struct reg_store *st, int64_t vid, int create)
{
	for (size_t i = 0; i < st->live_n; i++)
		if (st->live[i].vid == vid)
			return &st->live[i];
	if (!create)
		return NULL;
	if (cm_grow(&st->live, &st->live_cap, st->live_n + 1, sizeof(*st->live), 8) < 0)
		return NULL;
	st->live[st->live_n] = (struct reg_live){ .vid = vid };
	return &st->live[st->live_n++];
}

static void live_drop_if_idle(struct reg_store *st, struct reg_live *l)
{
	if (l->writers == 0 && !l->sealing && l->holds == 0 && !l->deleting)
		*l = st->live[--st->live_n];
}

int ver_delete_begin(struct reg_store *st, int64_t vid, const char *model, const char *version)
{
	struct reg_live *l;
	int rc = 0;

	pthread_mutex_lock(&st->live_mu);
	l = live_find(st, vid, 1);
	if (!l)
		rc = cm_err_set(-ENOMEM, "out of memory");
	else if (l->holds)
		rc = cm_err_set(-EBUSY, "version %s/%s has %d file(s) open through the mount", model,
				version, l->holds);
	else if (l->writers || l->sealing)
		rc = cm_err_set(-EBUSY, "version %s/%s is being written or sealed", model, version);
	else if (l->deleting)
		rc = cm_err_set(-EBUSY, "version %s/%s is being deleted", model, version);
	else
		l->deleting = 1;
	if (l && rc < 0)
		live_drop_if_idle(st, l);
	pthread_mutex_unlock(&st->live_mu);
	return rc;
}

void ver_delete_end(struct reg_store *st, int64_t vid)
{
	struct reg_live *l;

	pthread_mutex_lock(&st->live_mu);
	l = live_find(st, vid, 0);
	if (l) {
		l->deleting = 0;
		live_drop_if_idle(st, l);
	}
	pthread_mutex_unlock(&st->live_mu);
}

int reg_version_hold(struct reg_store *st, const char *model, const char *version, int64_t *vid)
{
	struct reg_version v;
	int rc;

	rc = reg_version_get(st, model, version, &v);
	if (rc == 0)
		rc = reg_version_hold_id(st, v.id);
	if (rc == -ENOENT)
		return cm_err_set(rc, "version %s/%s is being deleted", model, version);
	if (rc < 0)
		return rc;
	*vid = v.id;
	return 0;
}

int reg_version_hold_id(struct reg_store *st, int64_t vid)
{
	struct reg_live *l;
	int rc = 0;

	pthread_mutex_lock(&st->live_mu);
	l = live_find(st, vid, 1);
	if (l && l->deleting)
		rc = cm_err_set(-ENOENT, "the version is being deleted");
	else if (l)
		l->holds++;
	else
		rc = cm_err_set(-ENOMEM, "out of memory");
	pthread_mutex_unlock(&st->live_mu);
	return rc;
}

void reg_version_unhold(struct reg_store *st, int64_t vid)
{
	struct reg_live *l;

	pthread_mutex_lock(&st->live_mu);
	l = live_find(st, vid, 0);
	if (l && l->holds > 0) {
		l->holds--;
		live_drop_if_idle(st, l);
	}
	pthread_mutex_unlock(&st->live_mu);
}

int reg_write_begin(struct reg_store *st, const char *model, const char *version, int64_t *vid)
{
	struct reg_version v;
	struct reg_live *l;
	int rc;

	rc = reg_version_get(st, model, version, &v);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&st->live_mu);
	l = live_find(st, v.id, 1);
	if (!l) {
		pthread_mutex_unlock(&st->live_mu);
		return cm_err_set(-ENOMEM, "out of memory");
	}
	if (l->sealing || l->deleting) {
		live_drop_if_idle(st, l);
		pthread_mutex_unlock(&st->live_mu);
		return cm_err_set(-EBUSY, "version %s/%s is being %s", model, version,
				  l->sealing ? "sealed" : "deleted");
	}
	l->writers++;
	pthread_mutex_unlock(&st->live_mu);
	/* Read the state after counting ourselves in: a seal that finished in between shows. */
	rc = reg_version_get(st, model, version, &v);
	if (rc == 0 && v.state != REG_DRAFT)
		rc = cm_err_set(-EROFS, "version %s/%s is %s and cannot change", model, version,
				reg_state_name(v.state));
	if (rc < 0) {
		reg_write_end(st, v.id);
		return rc;
	}
	*vid = v.id;
	return 0;
}

void reg_write_end(struct reg_store *st, int64_t vid)
{
	struct reg_live *l;

	pthread_mutex_lock(&st->live_mu);
	l = live_find(st, vid, 0);
	if (l && l->writers > 0) {
		l->writers--;
		live_drop_if_idle(st, l);
	}
	pthread_cond_broadcast(&st->live_cv); /* a seal may be waiting for the last writer */
	pthread_mutex_unlock(&st->live_mu);
}

int reg_version_dir_open(struct reg_store *st, const char *model, const char *version, int *fd)
{
	int mfd = -1;
	int rc;

	rc = reg_name_model_check(model);
	if (rc == 0)
		rc = reg_name_version_check(version);
	if (rc == 0)
		rc = st_openat_dir(st->root_fd, model, &mfd);
	if (rc == 0) {
		rc = st_openat_dir(mfd, version, fd);
		close(mfd);
	}
	return rc;
}

/* ---- seal ---- */

/* fsyncs every directory that holds a file, so the names are durable too. */
int ver_sync_dirs(int vfd, struct reg_file *files, size_t n)
{
	char last[4096] = "";
	int rc = st_fsync_dir(vfd);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *slash = strrchr(files[i].path, '/');
		size_t len = slash ? (size_t)(slash - files[i].path) : 0;
		char dir[4096];
		int dfd = -1;

		if (!len || len >= sizeof(dir))
			continue;
		memcpy(dir, files[i].path, len);
		dir[len] = '\0';
		if (!strcmp(dir, last))
			continue;
		strcpy(last, dir);
		rc = st_openat_path(vfd, dir, O_RDONLY | O_DIRECTORY, 0, &dfd);
		if (rc == 0) {
			rc = st_fsync_dir(dfd);
			close(dfd);
		}
	}
	return rc;
}

/* Content digest of a version: SHA-256 over "path\0sha256\n" in path order. */
int ver_digest(struct reg_file *files, size_t n, char out[65])
{
	struct cm_buf b = { 0 };
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = cm_buf_append(&b, files[i].path, strlen(files[i].path) + 1);
		if (rc == 0)
			rc = cm_buf_printf(&b, "%s\n", files[i].sha256);
	}
	if (rc == 0)
		rc = reg_digest_mem(b.data ? b.data : "", b.len, out);
	cm_buf_free(&b);
	return rc;
}

/* Hashes, syncs and write-protects each file; restores modes on failure. */
int ver_seal_files(int vfd, struct reg_file *files, size_t n, int64_t *total)
{
	size_t done_n = 0;
	int rc = 0;

	*total = 0;
	for (; done_n < n; done_n++) {
		struct reg_file *f = &files[done_n];
		int fd = -1;
		int64_t size = 0;

		rc = st_openat_path(vfd, f->path, O_RDONLY, 0, &fd);
		if (rc < 0)
			break;
		if (fsync(fd) < 0) {
			rc = cm_err_set(-errno, "syncing '%s': %s", f->path, strerror(errno));
		} else {
			rc = reg_digest_fd(fd, f->sha256, &size);
		}
		if (rc == 0 && fchmod(fd, f->mode & 07555) < 0)
			rc = cm_err_set(-errno, "write-protecting '%s': %s", f->path, strerror(errno));
		if (rc == 0)
			rc = integ_stat_take(fd, f);
		close(fd);
		if (rc < 0)
			break;
		f->size = size;
		f->mode &= 07555;
		*total += size;
	}
	if (rc < 0) {
		for (size_t i = 0; i < done_n; i++) {
			int fd = -1;

			if (st_openat_path(vfd, files[i].path, O_RDONLY, 0, &fd) == 0) {
				fchmod(fd, files[i].mode | 0200);
				close(fd);
			}
		}
	}
	return rc;
}

int reg_version_seal(struct reg_store *st, const struct reg_actor *who, const char *model,
		     const char *version, struct reg_version *out)
{
	struct reg_conn *c = NULL;
	struct reg_file *files = NULL;
	struct reg_version v;
	struct reg_live *l;
	json_t *detail = NULL;
	char digest[65];
	size_t n = 0;
	int64_t total = 0, mid;
	int marked = 0, waited = 0;
	int vfd = -1;
	struct db_stmt *s;
	int rc;

	rc = reg_version_get(st, model, version, &v);
	if (rc < 0)
		return rc;
	if (v.state != REG_DRAFT) {
		if (out)
			*out = v;
		return 0;
	}
	rc = reg_authz_check(st, who, REG_AUTHZ_SEAL,
			     &(struct reg_authz_target){ .model = model, .version = version });
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&st->live_mu);
	/* Another seal of this version is hashing: wait for it, then look again. */
	while ((l = live_find(st, v.id, 1)) && l->sealing) {
		pthread_cond_wait(&st->live_cv, &st->live_mu);
		waited = 1;
	}
	if (!l) {
		rc = cm_err_set(-ENOMEM, "out of memory");
	} else if (waited) {
		live_drop_if_idle(st, l);
		rc = 1;
	} else {
		/*
		 * From here every change to the version (a write, a rename, a chmod,
		 * through the mount or the API) fails with EBUSY; the ones under way
		 * end first. A writer that just closed its file may not have ended yet
		 * (the FUSE release arrives after close() returns): give writers a
		 * moment before saying EBUSY.
		 */
		struct timespec until;

		l->sealing = marked = 1;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += REG_SEAL_WRITER_WAIT_S;
		while ((l = live_find(st, v.id, 0)) && l->writers > 0 &&
		       pthread_cond_timedwait(&st->live_cv, &st->live_mu, &until) == 0)
			;
		if (l && l->writers > 0) {
			rc = cm_err_set(-EBUSY, "version %s/%s has %d change(s) in progress (a file open "
					"for writing, an upload); end them before sealing", model,
					version, l->writers);
			l->sealing = marked = 0;
			live_drop_if_idle(st, l);
			pthread_cond_broadcast(&st->live_cv);
		}
	}
	pthread_mutex_unlock(&st->live_mu);
	if (rc == 1)
		return reg_version_seal(st, who, model, version, out);
	if (rc < 0)
		return rc;

	/* Outside any lock: hashing a large model must not stall the store. */
	rc = reg_version_dir_open(st, model, version, &vfd);
	if (rc == 0)
		rc = st_list_files(vfd, &files, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = reg_path_check(files[i].path); /* names the API can list (UTF-8) */
	if (rc == 0)
		rc = ver_seal_files(vfd, files, n, &total);
	if (rc == 0)
		rc = ver_sync_dirs(vfd, files, n);
	if (rc == 0)
		rc = ver_digest(files, n, digest);
	if (rc < 0)
		goto done;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = lookup(c, model, version, &mid, &v);
	if (rc < 0)
		goto done;
	if (v.state != REG_DRAFT) {
		rc = 0; /* sealed meanwhile by another path; idempotent */
		if (out)
			*out = v;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		DB_STMT(c, FILE_INSERT, s);
		db_bind_int64(s, 1, v.id);
		db_bind_text(s, 2, files[i].path);
		db_bind_int64(s, 3, files[i].size);
		db_bind_text(s, 4, files[i].sha256);
		db_bind_int(s, 5, (int)files[i].mode);
		integ_stat_bind(s, 6, &files[i]);
		rc = db_exec_stmt(c, s, "recording a file");
		if (rc < 0)
			goto done;
	}
	DB_STMT(c, VERSION_SEAL, s);
	db_bind_int64(s, 1, v.id);
	db_bind_int64(s, 2, cm_time_now_us());
	db_bind_int64(s, 3, total);
	db_bind_text(s, 4, digest);
	rc = db_exec_stmt(c, s, "sealing");
	if (rc < 0)
		goto done;
	detail = json_pack("{sssIsI}", "digest", digest, "files", (json_int_t)n, "total_size",
			   (json_int_t)total);
	rc = !detail ? cm_err_set(-ENOMEM, "out of memory") : reg_event_add(c, who, "version.seal", model, version, NULL, "draft", "sealed", detail);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, &v);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, version, 0);
	db_write_end(c);
	c = NULL;
	if (out)
		*out = v;
done:
	db_write_abort(c);
	if (marked) {
		pthread_mutex_lock(&st->live_mu);
		l = live_find(st, v.id, 0);
		if (l) {
			l->sealing = 0;
			live_drop_if_idle(st, l);
		}
		pthread_cond_broadcast(&st->live_cv);
		pthread_mutex_unlock(&st->live_mu);
	}
	if (rc < 0 && files && vfd >= 0) {
		/* Nothing was recorded: give the draft its write bits back. */
		for (size_t i = 0; i < n; i++) {
			int fd = -1;

			if (st_openat_path(vfd, files[i].path, O_RDONLY, 0, &fd) == 0) {
				fchmod(fd, (files[i].mode | 0200) & 07777);
				close(fd);
			}
		}
	}
	if (vfd >= 0)
		close(vfd);
	reg_files_free(files, n);
	json_decref(detail);
	return rc;
}

/* ---- files and verify ---- */

static int files_recorded(struct reg_conn *c, int64_t vid, struct reg_file **out, size_t *n)
{
	struct reg_file *v = NULL;
	size_t cnt = 0, cap = 0;
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, FILE_LIST, s);
	db_bind_int64(s, 1, vid);
	while ((rc = db_step(c, s, "listing a version's files")) > 0) {
		rc = cm_grow(&v, &cap, cnt + 1, sizeof(*v), 8);
		if (rc < 0)
			break;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		v[cnt].path = db_col_strdup(s, 0);
		v[cnt].size = db_col_int64(s, 1);
		db_col_text(s, 2, v[cnt].sha256, sizeof(v[cnt].sha256));
		v[cnt].mode = (mode_t)db_col_int(s, 3);
		if (!v[cnt++].path) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	db_reset(s);
	if (rc == 0) {
		*out = v;
		*n = cnt;
		v = NULL;
	}
done:
	reg_files_free(v, cnt);
	return rc;
}

int reg_version_files(struct reg_store *st, const char *model, const char *version,
		      struct reg_file **out, size_t *n)
{
	struct reg_conn *c = db_read_begin(st);
	struct reg_version v;
	int64_t mid;
	int vfd = -1;
	int rc;

	rc = lookup(c, model, version, &mid, &v);
	if (rc == 0 && v.state != REG_DRAFT)
		rc = files_recorded(c, v.id, out, n);
	db_read_end(c);
	if (rc < 0 || v.state != REG_DRAFT)
		return rc;
	rc = reg_version_dir_open(st, model, version, &vfd);
	if (rc == 0) {
		rc = st_list_files(vfd, out, n);
		close(vfd);
	}
	return rc;
}

int reg_version_verify(struct reg_store *st, const char *model, const char *version,
		       reg_verify_cb cb, void *ctx)
{
	struct reg_file *files = NULL;
	struct reg_version v;
	size_t n = 0;
	int64_t done_bytes = 0;
	int bad = 0;
	int vfd = -1;
	int rc;

	rc = reg_version_get(st, model, version, &v);
	if (rc < 0)
		return rc;
	if (v.state == REG_DRAFT)
		return cm_err_set(-EINVAL, "version %s/%s is a draft: nothing is recorded to verify",
				  model, version);
	rc = reg_version_files(st, model, version, &files, &n);
	if (rc < 0)
		return rc;
	rc = reg_version_dir_open(st, model, version, &vfd);
	for (size_t i = 0; i < n; i++) {
		char sha[65] = "";
		int64_t size = -1;
		int fd = -1;
		int ok = 0;

		if (vfd >= 0 && st_openat_path(vfd, files[i].path, O_RDONLY, 0, &fd) == 0) {
			ok = reg_digest_fd(fd, sha, &size) == 0 && size == files[i].size &&
			     !strcmp(sha, files[i].sha256);
			close(fd);
		}
		bad += !ok;
		done_bytes += files[i].size;
		if (cb)
			cb(ctx, model, version, &files[i], ok, done_bytes);
	}
	if (vfd >= 0)
		close(vfd);
	reg_files_free(files, n);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	return bad;
}
