/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The end of a version's life: archive and unarchive, delete (a version, or
 * a model with all its versions) and retention (gc). One rule for both
 * doors: never an aliased version, never one with files open through the
 * mount; deleting sealed content needs an admin and a reason. Bytes leave
 * the volume through .modelfs/deleted/ (check.c), so a crash never leaves a
 * half-deleted version: open either puts a directory back or finishes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reg_i.h"

#define DAY_US (86400LL * 1000000LL)

void (*reg_delete_test_hook)(const char *point);

static void test_point(const char *point)
{
	if (reg_delete_test_hook)
		reg_delete_test_hook(point);
}

static int reason_check(const char *reason)
{
	if (reason && strlen(reason) > REG_REASON_MAX)
		return cm_err_set(-EINVAL, "a reason is at most %d bytes (got %zu)", REG_REASON_MAX,
				  strlen(reason));
	return 0;
}

static json_t *reason_detail(const char *reason)
{
	return reason && reason[0] ? json_pack("{s:s}", "reason", reason) : NULL;
}

/* -EMLINK (the API's "aliased") when an alias points at version vid. */
static int unaliased(struct reg_conn *c, int64_t vid, const char *model, const char *version,
		     const char *doing)
{
	json_t *al = NULL;
	int rc = ver_aliases_of(c, vid, &al);

	if (rc == 0 && json_array_size(al))
		rc = cm_err_set(-EMLINK, "version %s/%s is the target of alias '%s'; %s needs it "
				"unaliased", model, version, json_string_value(json_array_get(al, 0)),
				doing);
	json_decref(al);
	return rc;
}

static int archive_set(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *version, const char *reason, int archive)
{
	struct reg_conn *c = NULL;
	struct reg_version v;
	json_t *detail = NULL;
	struct db_stmt *s;
	int64_t mid;
	int rc;

	rc = reason_check(reason);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, &v);
	if (rc < 0)
		goto done;
	if (v.state == REG_DRAFT) {
		rc = cm_err_set(-EINVAL, "version %s/%s is a draft; seal it before archiving", model,
				version);
		goto done;
	}
	if (v.state == (archive ? REG_ARCHIVED : REG_SEALED))
		goto done; /* already so: nothing changes, no event */
	if (archive) {
		rc = unaliased(c, v.id, model, version, "archiving");
		if (rc < 0)
			goto done;
	}
	DB_STMT(c, VERSION_STATE_SET, s);
	db_bind_int64(s, 1, v.id);
	db_bind_text(s, 2, archive ? "archived" : "sealed");
	rc = db_exec_stmt(c, s, archive ? "archiving" : "unarchiving");
	detail = reason_detail(reason);
	if (rc == 0 && reason && reason[0] && !detail)
		rc = cm_err_set(-ENOMEM, "out of memory");
	if (rc == 0)
		rc = reg_event_add(c, who, archive ? "version.archive" : "version.unarchive", model,
				   version, NULL, archive ? "sealed" : "archived",
				   archive ? "archived" : "sealed", detail);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, NULL, 0);
	db_write_end(c);
	c = NULL;
done:
	json_decref(detail);
	db_write_abort(c);
	return rc;
}

int reg_version_archive(struct reg_store *st, const struct reg_actor *who, const char *model,
			const char *version, const char *reason)
{
	return archive_set(st, who, model, version, reason, 1);
}

int reg_version_unarchive(struct reg_store *st, const struct reg_actor *who, const char *model,
			  const char *version, const char *reason)
{
	return archive_set(st, who, model, version, reason, 0);
}

/* Appends to `tags` the git tags made or found for model/version (they stay in git). */
static int git_tags_of(struct reg_conn *c, const char *model, const char *version, json_t *tags)
{
	struct db_stmt *s;
	int rc;

	DB_STMT(c, VERSION_GIT_TAGS, s);
	db_bind_text(s, 1, model);
	db_bind_text(s, 2, version);
	while ((rc = db_step(c, s, "listing a version's git tags")) > 0) {
		if (json_array_append_new(tags, json_string(db_col_str(s, 0)))) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	db_reset(s);
done:
	return rc;
}

/* Removes version v's rows (files, observations, the version) inside c's transaction. */
static int version_rows_delete(struct reg_conn *c, const struct reg_version *v)
{
	static const enum reg_sql stmts[] = { REG_SQL_FILE_DELETE_VERSION,
					      REG_SQL_OBS_DELETE_VERSION,
					      REG_SQL_OBS_LATEST_DELETE_VERSION,
					      REG_SQL_VERSION_DELETE };
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		struct db_stmt *s = db_stmt(c, stmts[i]);

		if (!s)
			return -EIO;
		db_bind_int64(s, 1, v->id);
		rc = db_exec_stmt(c, s, "removing a version");
	}
	return rc;
}

/*
 * Whether version v may go: not aliased, and sealed content only by an admin
 * with a reason (a draft is its writer's to remove). What holds it in memory
 * (open files, writes) is ver_delete_begin's to say.
 */
static int delete_check(struct reg_store *st, struct reg_conn *c, const struct reg_actor *who,
			const char *model, const struct reg_version *v, const char *reason)
{
	int rc = unaliased(c, v->id, model, v->name, "deleting");

	if (rc == 0 && v->state != REG_DRAFT && (!reason || !reason[0]))
		rc = cm_err_set(-EROFS, "version %s/%s is %s: deleting it needs an admin and a reason "
				"(modelfs delete %s %s --reason R)", model, v->name,
				reg_state_name(v->state), model, v->name);
	if (rc == 0 && v->state != REG_DRAFT) {
		struct reg_authz_target t = { .model = model, .version = v->name };

		rc = reg_authz_check(st, who, REG_AUTHZ_DELETE, &t);
	}
	return rc;
}

/*
 * Deletes version v inside c's open transaction: directory aside into the
 * trash (entry filled), rows and the event. The caller commits, then removes
 * the trash entry; on failure it puts the entry back.
 */
static int version_drop(struct reg_store *st, struct reg_conn *c, const struct reg_actor *who,
			const char *model, const struct reg_version *v, const char *reason,
			const char *why, json_t *tags, char *entry, size_t n)
{
	json_t *detail = NULL, *vt = json_array();
	int rc;

	if (!vt)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = git_tags_of(c, model, v->name, vt);
	if (rc == 0)
		rc = trash_put(st, model, v->name, v->id, entry, n);
	if (rc == 0) {
		test_point("delete.moved");
		rc = version_rows_delete(c, v);
	}
	if (rc == 0) {
		detail = json_pack("{s:I s:O}", "total_size", (json_int_t)v->total_size, "git_tags",
				   vt);
		if (!detail || (reason && reason[0] &&
				json_object_set_new(detail, "reason", json_string(reason))) ||
		    (why && json_object_set_new(detail, "gc", json_string(why))))
			rc = cm_err_set(-ENOMEM, "out of memory");
	}
	if (rc == 0)
		rc = reg_event_add(c, who, "version.delete", model, v->name, NULL,
				   reg_state_name(v->state), NULL, detail);
	if (rc == 0 && tags && json_array_extend(tags, vt))
		rc = cm_err_set(-ENOMEM, "out of memory");
	json_decref(detail);
	json_decref(vt);
	return rc;
}

/* Deletes one version in a transaction of its own (reg_version_delete, gc). */
static int version_remove(struct reg_store *st, const struct reg_actor *who, const char *model,
			  const char *version, const char *reason, const char *why, json_t *tags)
{
	char entry[2 * REG_NAME_MAX + 32] = "";
	struct reg_conn *c = NULL;
	struct reg_version v;
	int64_t mid, marked = 0;
	int rc;

	rc = reason_check(reason);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, &v);
	if (rc == 0)
		rc = delete_check(st, c, who, model, &v, reason);
	if (rc == 0)
		rc = ver_delete_begin(st, v.id, model, version);
	if (rc == 0)
		marked = v.id;
	if (rc == 0)
		rc = version_drop(st, c, who, model, &v, reason, why, tags, entry, sizeof(entry));
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0) {
		int r = trash_restore(st, model, version, entry);

		if (r < 0)
			reg_disk_error(st, r);
		goto done;
	}
	test_point("delete.committed");
	rc = trash_remove(st, entry);
	if (rc < 0)
		reg_disk_error(st, rc);
	rc = 0;
	reg_materialize(st, c, model, NULL, 0);
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	if (marked)
		ver_delete_end(st, marked);
	return rc;
}

int reg_version_remove(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *version, const char *reason, json_t **git_tags)
{
	json_t *tags = json_array();
	int rc;

	if (!tags)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = version_remove(st, who, model, version, reason, NULL, tags);
	if (rc == 0 && git_tags) {
		*git_tags = tags;
		tags = NULL;
	}
	json_decref(tags);
	return rc;
}

int reg_version_delete(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *version)
{
	return reg_version_remove(st, who, model, version, NULL, NULL);
}

int reg_model_remove(struct reg_store *st, const struct reg_actor *who, const char *model,
		     const char *reason, json_t **out)
{
	struct reg_authz_target t = { .model = model };
	struct reg_conn *c = NULL;
	struct reg_version *v = NULL;
	struct reg_alias *al = NULL;
	char (*entries)[2 * REG_NAME_MAX + 32] = NULL;
	json_t *tags = json_array(), *names = json_array(), *detail = NULL, *res = NULL;
	size_t n = 0, nal = 0, moved = 0, marked = 0;
	struct db_stmt *s;
	int64_t mid;
	int rc;

	if (!tags || !names) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	rc = reason_check(reason);
	if (rc == 0 && (!reason || !reason[0]))
		rc = cm_err_set(-EINVAL, "deleting model '%s' needs a reason", model);
	if (rc == 0)
		rc = reg_authz_check(st, who, REG_AUTHZ_DELETE, &t);
	if (rc < 0)
		goto done;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = mat_aliases(c, mid, &al, &nal);
	/* Its aliases are what serves it: they go first, each by a deliberate act. */
	if (rc == 0 && nal)
		rc = cm_err_set(-EMLINK, "model '%s' has alias '%s' (-> %s); remove its aliases "
				"before deleting it", model, al[0].name, al[0].version);
	if (rc == 0)
		rc = reg_versions_all(c, mid, model, &v, &n);
	if (rc == 0 && n && !(entries = calloc(n, sizeof(*entries))))
		rc = cm_err_set(-ENOMEM, "out of memory");
	for (; rc == 0 && marked < n; marked++) {
		rc = ver_delete_begin(st, v[marked].id, model, v[marked].name);
		if (rc < 0)
			break;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = version_drop(st, c, who, model, &v[i], reason, NULL, tags, entries[i],
				  sizeof(entries[i]));
		moved = i + 1; /* version_drop may have moved it before failing */
		if (rc == 0)
			json_array_append_new(names, json_string(v[i].name));
	}
	if (rc < 0)
		goto undo;
	DB_STMT(c, MODEL_DELETE, s);
	db_bind_int64(s, 1, mid);
	rc = db_exec_stmt(c, s, "removing a model");
	detail = json_pack("{s:s s:O s:O}", "reason", reason, "versions", names, "git_tags", tags);
	if (rc == 0 && !detail)
		rc = cm_err_set(-ENOMEM, "out of memory");
	if (rc == 0)
		rc = reg_event_add(c, who, "model.delete", model, NULL, NULL, NULL, NULL, detail);
	if (rc == 0)
		rc = db_write_commit(c);
undo:
	if (rc < 0) {
		for (size_t i = 0; i < moved; i++) {
			int r = trash_restore(st, model, v[i].name, entries[i]);

			if (r < 0)
				reg_disk_error(st, r);
		}
		goto done;
	}
	test_point("delete.committed");
	for (size_t i = 0; i < n; i++) {
		int r = trash_remove(st, entries[i]);

		if (r < 0)
			reg_disk_error(st, r);
	}
	/* The generated metadata.json goes, then the directory (open finishes a crash here). */
	{
		int fd = -1;

		if (st_openat_dir(st->root_fd, model, &fd) == 0) {
			unlinkat(fd, REG_METADATA_FILE, 0);
			close(fd);
		}
		cm_err_clear();
	}
	if (unlinkat(st->root_fd, model, AT_REMOVEDIR) < 0 && errno != ENOENT)
		reg_disk_error(st, cm_err_set(-errno, "removing model directory '%s': %s", model,
					      strerror(errno)));
	st_fsync_dir(st->root_fd);
	db_write_end(c);
	c = NULL;
	res = json_pack("{s:s s:b s:O s:O}", "model", model, "deleted", 1, "versions", names,
			"git_tags", tags);
	if (!res) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (out) {
		*out = res;
		res = NULL;
	}
done:
	db_write_abort(c);
	for (size_t i = 0; i < marked; i++)
		ver_delete_end(st, v[i].id);
	json_decref(res);
	json_decref(detail);
	json_decref(tags);
	json_decref(names);
	free(entries);
	free(al);
	free(v);
	return rc;
}

/* ---- retention ---- */

int reg_retention_check(json_t *r)
{
	const char *key;
	json_t *v;

	if (json_is_null(r))
		return 0;
	if (!json_is_object(r))
		return cm_err_set(-EINVAL, "policy field 'retention' must be an object "
				  "{\"keep_last\": N, \"keep_aliased_days\": D}");
	json_object_foreach(r, key, v) {
		if (strcmp(key, "keep_last") && strcmp(key, "keep_aliased_days") &&
		    strcmp(key, "min_age_days"))
			return cm_err_set(-EINVAL, "unknown retention field '%s' (known: keep_last, "
					  "keep_aliased_days, min_age_days)", key);
	}
	v = json_object_get(r, "keep_last");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
		return cm_err_set(-EINVAL, "retention field 'keep_last' must be an integer from 0 to "
				  "1000000 (sealed versions kept besides aliased ones)");
	v = json_object_get(r, "keep_aliased_days");
	if (v && (!json_is_number(v) || json_number_value(v) < 0 ||
		  json_number_value(v) > 36500))
		return cm_err_set(-EINVAL, "retention field 'keep_aliased_days' must be a number of "
				  "days from 0 to 36500");
	v = json_object_get(r, "min_age_days");
	if (v && (!json_is_number(v) || json_number_value(v) < 0 ||
		  json_number_value(v) > 36500))
		return cm_err_set(-EINVAL, "retention field 'min_age_days' must be a number of days "
				  "from 0 to 36500");
	return 0;
}

static int name_in(json_t *set, const char *name)
{
	return json_object_get(set, name) != NULL;
}

/* The versions some alias pointed at, at any moment since `since_us`: names in *set. */
static int aliased_since(struct reg_store *st, const char *model, int64_t since_us, json_t *set)
{
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	int rc;

	DB_STMT(c, EVENT_ALIASED_SINCE, s);
	db_bind_text(s, 1, model);
	db_bind_int64(s, 2, since_us);
	while ((rc = db_step(c, s, "reading alias history")) > 0) {
		for (int col = 0; col < 2; col++)
			if (!db_col_null(s, col))
				json_object_set_new(set, db_col_str(s, col),
						    json_true());
	}
	db_reset(s);
done:
	db_read_end(c);
	return rc;
}

static void gc_note(json_t *list, const char *model, const char *version, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void gc_note(json_t *list, const char *model, const char *version, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	json_array_append_new(list, json_pack("{s:s s:s s:s}", "model", model, "version", version,
					      "why", why));
}

/* Applies one model's retention; appends to removed and kept. */
static int gc_model(struct reg_store *st, const struct reg_actor *who, const char *model,
		    const struct reg_gc_opts *o, int64_t now, json_t *removed, json_t *kept)
{
	struct reg_version_filter f = { .state = -1 };
	struct reg_version *v = NULL;
	struct reg_alias *al = NULL;
	json_t *policy = NULL, *ret, *recent = json_object(), *tags = json_array();
	size_t n = 0, nal = 0;
	long long keep_last;
	double days, min_age;
	int64_t since, young;
	int rank = 0;
	int rc;

	if (!recent || !tags) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	rc = reg_policy_get(st, model, &policy);
	if (rc < 0)
		goto done;
	ret = json_object_get(policy, "retention");
	if (!json_is_object(ret))
		goto done; /* no retention policy: every version is kept, none listed */
	keep_last = (long long)json_integer_value(json_object_get(ret, "keep_last"));
	days = json_number_value(json_object_get(ret, "keep_aliased_days"));
	min_age = json_number_value(json_object_get(ret, "min_age_days"));
	since = now - (int64_t)(days * DAY_US);
	young = now - (int64_t)(min_age * DAY_US);
	rc = reg_alias_list(st, model, &al, &nal);
	if (rc == 0)
		rc = aliased_since(st, model, since, recent);
	if (rc == 0)
		rc = reg_version_list(st, model, &f, &v, &n);
	if (rc < 0)
		goto done;
	/* Newest first: the first keep_last sealed versions are kept by count. */
	for (size_t i = n; i-- > 0;) {
		const struct reg_version *x = &v[i];
		const char *alias = NULL;

		if (x->state == REG_DRAFT)
			continue;
		rank++;
		for (size_t j = 0; j < nal && !alias; j++)
			if (!strcmp(al[j].version, x->name))
				alias = al[j].name;
		if (alias) {
			gc_note(kept, model, x->name, "aliased ('%s' points at it)", alias);
			continue;
		}
		if (rank <= keep_last) {
			gc_note(kept, model, x->name, "one of the last %lld sealed versions", keep_last);
			continue;
		}
		if (name_in(recent, x->name)) {
			gc_note(kept, model, x->name, "aliased within the last %g days", days);
			continue;
		}
		if (min_age > 0 && x->sealed_us >= young) {
			gc_note(kept, model, x->name, "sealed within the last %g days (min_age_days)",
				min_age);
			continue;
		}
		/* What holds it now (the delete checks again, under its own mark). */
		if (ver_delete_begin(st, x->id, model, x->name) < 0) {
			gc_note(kept, model, x->name, "%s", cm_err_msg());
			cm_err_clear();
			continue;
		}
		ver_delete_end(st, x->id);
		{
			char why[256];

			snprintf(why, sizeof(why), "not one of the last %lld sealed versions and not "
				 "aliased within the last %g days", keep_last, days);
			if (!o->dry_run) {
				char reason[REG_REASON_MAX];

				snprintf(reason, sizeof(reason), "retention: %s%s%s", why,
					 o->reason && o->reason[0] ? "; " : "",
					 o->reason ? o->reason : "");
				rc = version_remove(st, who, model, x->name, reason, why, tags);
				if (rc == -EMLINK || rc == -EBUSY || rc == -ENOENT) {
					/* Changed since the plan (aliased, opened, gone): kept. */
					gc_note(kept, model, x->name, "%s", cm_err_msg());
					cm_err_clear();
					rc = 0;
					continue;
				}
				if (rc < 0)
					goto done;
			}
			gc_note(removed, model, x->name, "%s", why);
		}
	}
done:
	json_decref(policy);
	json_decref(recent);
	json_decref(tags);
	free(al);
	free(v);
	return rc;
}

int reg_gc_run(struct reg_store *st, const struct reg_actor *who, const struct reg_gc_opts *o,
	       json_t **out)
{
	struct reg_model *models = NULL, one;
	json_t *removed = json_array(), *kept = json_array(), *res = NULL;
	int64_t now = o->now_us ? o->now_us : cm_time_now_us();
	size_t n = 0;
	int rc;

	if (!removed || !kept) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	rc = reason_check(o->reason);
	if (rc == 0 && !o->dry_run) {
		struct reg_authz_target t = { .model = o->model };

		rc = reg_authz_check(st, who, REG_AUTHZ_DELETE, &t);
	}
	if (rc < 0)
		goto done;
	if (o->model) {
		rc = reg_model_get(st, o->model, &one);
		if (rc < 0)
			goto done;
		models = malloc(sizeof(*models));
		if (!models) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			goto done;
		}
		models[0] = one;
		n = 1;
	} else {
		rc = reg_model_list(st, NULL, 0, &models, &n);
		if (rc < 0)
			goto done;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = gc_model(st, who, models[i].name, o, now, removed, kept);
	if (rc < 0)
		goto done;
	res = json_pack("{s:b s:O s:O}", "dry_run", o->dry_run, "removed", removed, "kept", kept);
	if (!res) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	*out = res;
	res = NULL;
done:
	json_decref(removed);
	json_decref(kept);
	json_decref(res);
	free(models);
	return rc;
}
