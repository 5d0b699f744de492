/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Aliases (current, canary, and free-form names) and the promotion policy
 * that gates the protected ones. Every change is one transaction with its
 * event; the symlink on disk follows the commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reg_i.h"

#define CANARY_DEFAULT_PERCENT 10

static int alias_row(struct reg_conn *c, int64_t mid, const char *model, const char *alias,
		     struct reg_alias *out)
{
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, ALIAS_GET, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, alias);
	rc = db_step(c, s, "reading an alias");
	if (rc > 0) {
		db_col_text(s, 0, out->name, sizeof(out->name));
		db_col_text(s, 1, out->version, sizeof(out->version));
		out->percent = db_col_null(s, 2) ? -1 : db_col_int(s, 2);
		out->updated_us = db_col_int64(s, 3);
		rc = 0;
	} else if (rc == 0) {
		rc = cm_err_set(-ENOENT, "model '%s' has no alias '%s'", model, alias);
	}
	db_reset(s);
done:
	return rc;
}

static int policy_load(struct reg_conn *c, int64_t mid, json_t **out)
{
	json_error_t jerr;
	struct db_stmt *s;
	json_t *p = NULL;
	int rc = 0;

	DB_STMT(c, MODEL_POLICY_GET, s);
	db_bind_int64(s, 1, mid);
	rc = db_step(c, s, "reading a model's policy");
	if (rc > 0 && !db_col_null(s, 0))
		p = reg_json_loads(db_col_str(s, 0), &jerr);
	db_reset(s);
	if (rc < 0)
		goto done;
	rc = 0;
	if (!p)
		rc = cm_err_set(-EIO, "the stored policy could not be read");
	else
		*out = p;
done:
	return rc;
}

/* CAS: `expected` NULL skips; "" expects the alias unset. */
static int cas_check(const char *model, const char *alias, const struct reg_alias *cur, int have,
		     const char *expected)
{
	if (!expected)
		return 0;
	if (!expected[0] && have)
		return cm_err_set(-ESTALE, "alias '%s' of '%s' points at '%s', expected it unset",
				  alias, model, cur->version);
	if (expected[0] && (!have || strcmp(expected, cur->version)))
		return cm_err_set(-ESTALE, "alias '%s' of '%s' points at %s%s%s, not '%s' as expected",
				  alias, model, have ? "'" : "", have ? cur->version : "nothing",
				  have ? "'" : "", expected);
	return 0;
}

/*
 * Evaluates the model's policy for version v on connection c. Returns 0 when
 * it passes, -EPERM with the gates in `failed` (and the message) otherwise.
 */
static int gate(struct reg_conn *c, int64_t mid, const char *model, const char *alias,
		const struct reg_version *v, int64_t total_size, json_t *failed)
{
	json_t *policy = NULL, *rec = NULL;
	int n;
	int rc;

	rc = policy_load(c, mid, &policy);
	if (rc == 0)
		rc = reg_record_load(c, v->id, &rec);
	if (rc < 0)
		goto done;
	n = reg_policy_eval(policy, rec, total_size, failed);
	if (n > 0) {
		struct cm_buf b = { 0 };
		size_t i;
		json_t *g;

		json_array_foreach(failed, i, g)
			cm_buf_printf(&b, "%s%s", i ? "; " : "", json_string_value(g));
		rc = cm_err_set(-EPERM, "setting '%s' of '%s' to '%s' refused by policy: %s", alias,
				model, v->name, b.data ? b.data : "");
		cm_buf_free(&b);
	}
done:
	json_decref(policy);
	json_decref(rec);
	return rc;
}

/* Records a refusal in its own transaction (the refused change rolled back). */
static void refusal_record(struct reg_store *st, const struct reg_actor *who, const char *model,
			   const char *alias, const char *version, const char *before,
			   json_t *failed)
{
	struct reg_conn *c = NULL;
	json_t *detail = json_pack("{sOss}", "gates", failed, "message", cm_err_msg());
	char msg[CM_ERR_MAX];

	cm_strlcpy(msg, cm_err_msg(), sizeof(msg));
	if (db_write_begin(st, &c) == 0) {
		if (reg_event_add(c, who, "alias.refused", model, version, alias, before, version,
				  detail) == 0 &&
		    db_write_commit(c) == 0) {
			reg_materialize(st, c, model, NULL, 0);
			db_write_end(c);
			c = NULL;
		}
		db_write_abort(c);
	}
	json_decref(detail);
	cm_err_set(0, "%s", msg); /* keep the refusal as the caller's message */
}

/*
 * Commits an alias change whose link moves first when the alias existed
 * (`moved`; see reg_alias_set). When the commit fails after the link moved,
 * the transaction is rolled back and the link pointed again at what the db
 * keeps, so a refused change leaves the volume as it was; a link that cannot
 * be put back is a disk error, and the next start rewrites it from the db.
 */
static int link_commit(struct reg_conn *c, int64_t mid, const char *model, const char *alias,
		       int moved)
{
	int rc = moved ? mat_link(c, mid, model, alias) : 0;

	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0 && moved) {
		int back;

		db_write_rollback(c);
		back = mat_link(c, mid, model, alias);
		if (back < 0)
			reg_disk_error(c->st, back);
	}
	return rc;
}

/* Upserts alias → v and records the event, inside the caller's transaction. */
static int alias_apply(struct reg_conn *c, const struct reg_actor *who, int64_t mid,
		       const char *model, const char *alias, const struct reg_version *v,
		       int percent, const char *before, json_t *detail)
{
	struct db_stmt *s;
	int rc = names_claim(c, mid, model, alias, NAMES_ALIAS);

	if (rc < 0)
		return rc;
	DB_STMT(c, ALIAS_UPSERT, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, alias);
	db_bind_int64(s, 3, v->id);
	if (percent >= 0)
		db_bind_int(s, 4, percent);
	db_bind_int64(s, 5, cm_time_now_us());
	rc = db_exec_stmt(c, s, "setting an alias");
	if (rc == 0)
		rc = reg_event_add(c, who, "alias.set", model, v->name, alias, before, v->name, detail);
done:
	return rc;
}

static int alias_remove(struct reg_conn *c, const struct reg_actor *who, int64_t mid,
			const char *model, const char *alias, const struct reg_alias *cur,
			json_t *detail)
{
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, ALIAS_DELETE, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, alias);
	rc = db_exec_stmt(c, s, "removing an alias");
	if (rc == 0)
		rc = reg_event_add(c, who, "alias.delete", model, cur->version, alias, cur->version,
				   NULL, detail);
done:
	return rc;
}

/* Sum of a draft's file sizes, for gating before sealing. */
static int draft_size(struct reg_store *st, const char *model, const char *version, int64_t *out)
{
	struct reg_file *files = NULL;
	size_t n = 0;
	int rc = reg_version_files(st, model, version, &files, &n);

	*out = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		*out += files[i].size;
	reg_files_free(files, n);
	return rc;
}

/* Whether `who` may change `alias` of `model` (with force when asked). */
static int alias_authz(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *alias, int force)
{
	struct reg_authz_target t = { .model = model, .alias = alias };
	int rc = reg_authz_check(st, who, REG_AUTHZ_ALIAS_SET, &t);

	if (rc == 0 && force)
		rc = reg_authz_check(st, who, REG_AUTHZ_FORCE, &t);
	return rc;
}

static int reason_check(const char *reason)
{
	if (reason && strlen(reason) > REG_REASON_MAX)
		return cm_err_set(-EINVAL, "a reason is at most %d bytes (got %zu)", REG_REASON_MAX,
				  strlen(reason));
	return 0;
}

static int opts_check(const char *alias, const struct reg_alias_opts *o)
{
	if (o->percent < -1 || o->percent > 100)
		return cm_err_set(-EINVAL, "traffic percent must be between 0 and 100 (got %d)",
				  o->percent);
	if (o->percent >= 0 && strcmp(alias, "canary"))
		return cm_err_set(-EINVAL, "only the canary alias has a traffic percent");
	if (o->force && (!o->reason || !o->reason[0]))
		return cm_err_set(-EINVAL, "a forced change needs a reason");
	return reason_check(o->reason);
}

/* The event detail of an alias change; NULL when out of memory (never a partial one). */
static json_t *change_detail(const struct reg_alias_opts *o, int percent, const char *how)
{
	json_t *d = json_object();
	int bad = !d;

	if (d && percent >= 0)
		bad |= json_object_set_new(d, "percent", json_integer(percent));
	if (d && o && o->force)
		bad |= json_object_set_new(d, "force", json_true());
	if (d && o && o->reason && o->reason[0])
		bad |= json_object_set_new(d, "reason", json_string(o->reason));
	if (d && how)
		bad |= json_object_set_new(d, "via", json_string(how));
	if (bad) {
		json_decref(d);
		return NULL;
	}
	return d;
}

int reg_alias_set(struct reg_store *st, const struct reg_actor *who, const char *model,
		  const char *alias, const char *version, struct reg_alias_opts *opts,
		  struct reg_alias *out)
{
	struct reg_alias_opts none = { .percent = -1 };
	struct reg_alias_opts *o = opts ? opts : &none;
	struct reg_conn *c = NULL;
	struct reg_alias cur = { 0 };
	struct reg_version v;
	json_t *failed = NULL, *detail = NULL;
	int protect, have;
	int percent;
	int64_t mid;
	int rc;

	rc = reg_name_alias_check(alias);
	if (rc == 0)
		rc = opts_check(alias, o);
	if (rc == 0)
		rc = alias_authz(st, who, model, alias, o->force);
	if (rc == 0)
		rc = reg_version_get(st, model, version, &v);
	if (rc < 0)
		return rc;
	protect = reg_alias_is_protected(alias);
	failed = o->failed_gates ? json_incref(o->failed_gates) : json_array();
	if (v.state == REG_ARCHIVED) {
		rc = cm_err_set(-EINVAL, "version %s/%s is archived and cannot be an alias target",
				model, version);
		goto done;
	}
	if (v.state == REG_DRAFT) {
		/* Gate before sealing, so a refused draft stays a draft. */
		if (protect && !o->force) {
			struct reg_conn *r;
			int64_t size = 0;

			rc = draft_size(st, model, version, &size);
			if (rc < 0)
				goto done;
			/* One reader at a time per thread: never wait for a second one. */
			r = db_read_begin(st);
			rc = reg_model_id(r, model, &mid);
			if (rc == 0)
				rc = gate(r, mid, model, alias, &v, size, failed);
			db_read_end(r);
			if (rc == -EPERM) {
				refusal_record(st, who, model, alias, version, NULL, failed);
				goto done;
			}
			if (rc < 0)
				goto done;
		}
		rc = reg_version_seal(st, who, model, version, &v);
		if (rc < 0)
			goto done;
	}

	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, &v);
	if (rc < 0)
		goto done;
	if (v.state != REG_SEALED) {
		rc = cm_err_set(-EINVAL, "version %s/%s is %s and cannot be an alias target", model,
				version, reg_state_name(v.state));
		goto done;
	}
	rc = alias_row(c, mid, model, alias, &cur);
	have = rc == 0;
	if (rc < 0 && rc != -ENOENT)
		goto done;
	rc = cas_check(model, alias, &cur, have, o->expected);
	if (rc < 0)
		goto done;
	percent = o->percent;
	if (percent < 0 && !strcmp(alias, "canary"))
		percent = have && cur.percent >= 0 ? cur.percent : CANARY_DEFAULT_PERCENT;
	if (have && !strcmp(cur.version, version) && cur.percent == percent) {
		if (out)
			*out = cur; /* already so: nothing changes, nothing to record */
		goto done;
	}
	if (protect && !o->force && !(have && !strcmp(cur.version, version))) {
		rc = gate(c, mid, model, alias, &v, v.total_size, failed);
		if (rc == -EPERM) {
			db_write_abort(c);
			c = NULL;
			refusal_record(st, who, model, alias, version, have ? cur.version : NULL, failed);
			goto done;
		}
		if (rc < 0)
			goto done;
	}
	detail = change_detail(o, percent, NULL);
	rc = !detail ? cm_err_set(-ENOMEM, "out of memory") : alias_apply(c, who, mid, model, alias, &v, percent, have ? cur.version : NULL, detail);
	if (rc == 0)
		rc = alias_row(c, mid, model, alias, &cur);
	/*
	 * An alias that moves gets its link before the commit: a link that cannot
	 * be written commits nothing, and a crash in between leaves a link of ours
	 * that the next start points back. A new alias's link follows the commit
	 * (a crash before it must not leave a link the db never made); its name
	 * was checked free in this transaction.
	 */
	if (rc == 0)
		rc = link_commit(c, mid, model, alias, have);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, NULL, MAT_ALIASES);
	db_write_end(c);
	c = NULL;
	if (out)
		*out = cur;
done:
	db_write_abort(c);
	json_decref(failed);
	json_decref(detail);
	return rc;
}

int reg_alias_delete(struct reg_store *st, const struct reg_actor *who, const char *model,
		     const char *alias, const char *expected)
{
	struct reg_conn *c = NULL;
	struct reg_alias cur;
	int64_t mid;
	int rc;

	rc = reg_name_alias_check(alias);
	if (rc == 0)
		rc = alias_authz(st, who, model, alias, 0);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = alias_row(c, mid, model, alias, &cur);
	if (rc == 0)
		rc = cas_check(model, alias, &cur, 1, expected);
	if (rc == 0)
		rc = alias_remove(c, who, mid, model, alias, &cur, NULL);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, NULL, MAT_ALIASES | MAT_ALIAS_SCAN);
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	return rc;
}

int reg_alias_get(struct reg_store *st, const char *model, const char *alias,
		  struct reg_alias *out)
{
	struct reg_conn *c = db_read_begin(st);
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc == 0)
		rc = alias_row(c, mid, model, alias, out);
	db_read_end(c);
	return rc;
}

int reg_alias_list(struct reg_store *st, const char *model, struct reg_alias **out, size_t *n)
{
	struct reg_conn *c = db_read_begin(st);
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc == 0)
		rc = mat_aliases(c, mid, out, n);
	db_read_end(c);
	return rc;
}

int reg_alias_at(struct reg_store *st, const char *model, const char *alias, int64_t at_us,
		 struct reg_alias *out)
{
	struct reg_conn *c = db_read_begin(st);
	struct reg_alias a = { 0 };
	struct db_stmt *s;
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc < 0)
		goto done;
	DB_STMT(c, EVENT_ALIAS_AT, s);
	db_bind_text(s, 1, model);
	db_bind_text(s, 2, alias);
	db_bind_int64(s, 3, at_us);
	rc = db_step(c, s, "reading an alias's history");
	if (rc < 0) {
		db_reset(s);
		goto done;
	}
	if (rc > 0 && !db_col_null(s, 0)) {
		json_t *d = NULL;
		const unsigned char *dt = db_col_ustr(s, 2);

		rc = 0;
		cm_strlcpy(a.name, alias, sizeof(a.name));
		db_col_text(s, 0, a.version, sizeof(a.version));
		a.updated_us = db_col_int64(s, 1);
		a.percent = -1;
		if (dt && (d = json_loads((const char *)dt, 0, NULL)) &&
		    json_is_integer(json_object_get(d, "percent")))
			a.percent = (int)json_integer_value(json_object_get(d, "percent"));
		json_decref(d);
		*out = a;
	} else {
		char ts[CM_TIME_RFC3339_LEN];

		cm_time_format(at_us, ts);
		rc = cm_err_set(-ENOENT, "alias '%s' of '%s' was not set at %s", alias, model, ts);
	}
	db_reset(s);
done:
	db_read_end(c);
	return rc;
}

/* The detail's "via" and "percent" of an alias event (detail text may be NULL). */
static void detail_read(const unsigned char *text, int *rollback, int *percent)
{
	json_t *d = text ? json_loads((const char *)text, 0, NULL) : NULL;
	json_t *via = json_object_get(d, "via"), *p = json_object_get(d, "percent");

	*rollback = json_is_string(via) && !strcmp(json_string_value(via), "rollback");
	*percent = json_is_integer(p) ? (int)json_integer_value(p) : -1;
	json_decref(d);
}

/*
 * Where a rollback of `alias` goes, from its events (newest first): each
 * rollback undid the latest forward change not undone yet, so this one
 * undoes the next: the alias goes back to what that change replaced, with
 * the traffic percent it had then. Never forward to a version just left.
 */
static int rollback_target(struct reg_conn *c, const char *model, const char *alias,
			   char prev[REG_NAME_MAX], int *percent)
{
	struct db_stmt *s;
	int undone = 0, found = 0;
	int rc = 0;
	int src;

	prev[0] = '\0';
	*percent = -1;
	DB_STMT(c, EVENT_ALIAS_HISTORY, s);
	db_bind_text(s, 1, model);
	db_bind_text(s, 2, alias);
	while ((src = db_step(c, s, "reading an alias's history")) > 0) {
		int is_rollback, pct;
		char after[REG_NAME_MAX];

		detail_read(db_col_ustr(s, 2), &is_rollback, &pct);
		db_col_text(s, 1, after, sizeof(after));
		if (found) {
			/* The percent prev had: from the latest older change that set it. */
			if (after[0] && !strcmp(after, prev)) {
				*percent = pct;
				break;
			}
			continue;
		}
		if (is_rollback) {
			undone++;
		} else if (undone > 0) {
			undone--;
		} else {
			db_col_text(s, 0, prev, REG_NAME_MAX);
			found = 1;
			if (!prev[0])
				break;
		}
	}
	if (src < 0)
		rc = src;
	db_reset(s);
	if (rc == 0 && !prev[0])
		rc = cm_err_set(-ENOENT, "alias '%s' of '%s' has no earlier version to roll back to",
				alias, model);
done:
	return rc;
}

int reg_alias_rollback(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *alias, const char *reason, struct reg_alias *out)
{
	struct reg_alias_opts why = { .percent = -1, .reason = reason };
	struct reg_conn *c = NULL;
	struct reg_alias cur = { 0 };
	struct reg_version v;
	char prev[REG_NAME_MAX] = "";
	json_t *detail = NULL;
	int64_t mid;
	int have, percent = -1;
	int rc;

	rc = reg_name_alias_check(alias);
	if (rc == 0)
		rc = reason_check(reason);
	if (rc == 0)
		rc = alias_authz(st, who, model, alias, 0);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = rollback_target(c, model, alias, prev, &percent);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, prev, &v);
	if (rc == 0 && v.state != REG_SEALED)
		rc = cm_err_set(-EINVAL, "cannot roll '%s' back to %s/%s: it is %s", alias, model, prev,
				reg_state_name(v.state));
	if (rc < 0)
		goto done;
	rc = alias_row(c, mid, model, alias, &cur);
	have = rc == 0;
	if (rc < 0 && rc != -ENOENT)
		goto done;
	if (strcmp(alias, "canary"))
		percent = -1;
	else if (percent < 0)
		percent = CANARY_DEFAULT_PERCENT;
	detail = change_detail(&why, percent, "rollback");
	rc = !detail ? cm_err_set(-ENOMEM, "out of memory")
		     : alias_apply(c, who, mid, model, alias, &v, percent, have ? cur.version : NULL,
				   detail);
	if (rc == 0)
		rc = alias_row(c, mid, model, alias, &cur);
	if (rc == 0)
		rc = link_commit(c, mid, model, alias, have);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, NULL, MAT_ALIASES);
	db_write_end(c);
	c = NULL;
	if (out)
		*out = cur;
done:
	json_decref(detail);
	db_write_abort(c);
	return rc;
}

int reg_canary_percent_set(struct reg_store *st, const struct reg_actor *who, const char *model,
			   int percent, const char *expected, struct reg_alias *out)
{
	struct reg_alias_opts o = { .percent = percent };
	struct reg_conn *c = NULL;
	struct reg_alias cur;
	struct reg_version v;
	json_t *detail = NULL;
	struct db_stmt *s;
	int64_t mid;
	int rc;

	rc = opts_check("canary", &o);
	if (rc == 0 && percent < 0)
		rc = cm_err_set(-EINVAL, "traffic percent must be between 0 and 100 (got %d)", percent);
	if (rc == 0)
		rc = alias_authz(st, who, model, "canary", 0);
	if (rc < 0)
		return rc;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = alias_row(c, mid, model, "canary", &cur);
	if (rc == -ENOENT && !strstr(cm_err_msg(), "no model"))
		rc = cm_err_set(-ENOENT, "model '%s' has no canary: give a version to start one", model);
	if (rc == 0)
		rc = cas_check(model, "canary", &cur, 1, expected);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, cur.version, &v);
	if (rc < 0 || cur.percent == percent)
		goto unchanged;
	DB_STMT(c, ALIAS_PERCENT_CAS, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, "canary");
	db_bind_int64(s, 3, v.id);
	db_bind_int(s, 4, percent);
	db_bind_int64(s, 5, cm_time_now_us());
	rc = db_exec_stmt(c, s, "changing the canary's percent");
	if (rc == 0 && db_changes(c) != 1)
		rc = cm_err_set(-ESTALE, "the canary of '%s' changed meanwhile", model);
	detail = change_detail(NULL, percent, NULL);
	if (rc == 0)
		rc = reg_event_add(c, who, "alias.set", model, v.name, "canary", v.name, v.name, detail);
	if (rc == 0)
		rc = alias_row(c, mid, model, "canary", &cur);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, NULL, MAT_ALIASES);
	db_write_end(c);
	c = NULL;
unchanged:
	if (rc == 0 && out)
		*out = cur;
done:
	db_write_abort(c);
	json_decref(detail);
	return rc;
}

int reg_canary_promote(struct reg_store *st, const struct reg_actor *who, const char *model,
		       struct reg_alias_opts *opts, struct reg_alias *out)
{
	struct reg_alias_opts none = { .percent = -1 };
	struct reg_alias_opts *o = opts ? opts : &none;
	struct reg_conn *c = NULL;
	struct reg_alias canary, cur = { 0 };
	struct reg_version v;
	json_t *failed = NULL, *detail = NULL;
	int64_t mid;
	int have;
	int rc;

	if (o->force && (!o->reason || !o->reason[0]))
		return cm_err_set(-EINVAL, "a forced change needs a reason");
	rc = alias_authz(st, who, model, "current", o->force);
	if (rc < 0)
		return rc;
	failed = o->failed_gates ? json_incref(o->failed_gates) : json_array();
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = alias_row(c, mid, model, "canary", &canary);
	if (rc == -ENOENT)
		rc = cm_err_set(-ENOENT, "model '%s' has no canary to promote", model);
	if (rc == 0)
		rc = cas_check(model, "canary", &canary, 1, o->expected);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, canary.version, &v);
	if (rc < 0)
		goto done;
	rc = alias_row(c, mid, model, "current", &cur);
	have = rc == 0;
	if (rc < 0 && rc != -ENOENT)
		goto done;
	rc = 0;
	if (!o->force) {
		rc = gate(c, mid, model, "current", &v, v.total_size, failed);
		if (rc == -EPERM) {
			db_write_abort(c);
			c = NULL;
			refusal_record(st, who, model, "current", v.name, have ? cur.version : NULL,
				       failed);
			goto done;
		}
		if (rc < 0)
			goto done;
	}
	detail = change_detail(o, -1, "canary.promote");
	rc = !detail ? cm_err_set(-ENOMEM, "out of memory") : alias_apply(c, who, mid, model, "current", &v, -1, have ? cur.version : NULL, detail);
	if (rc == 0)
		rc = alias_remove(c, who, mid, model, "canary", &canary, detail);
	if (rc == 0)
		rc = alias_row(c, mid, model, "current", &cur);
	if (rc == 0)
		rc = link_commit(c, mid, model, "current", have);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, NULL, MAT_ALIASES | MAT_ALIAS_SCAN);
	db_write_end(c);
	c = NULL;
	if (out)
		*out = cur;
done:
	db_write_abort(c);
	json_decref(failed);
	json_decref(detail);
	return rc;
}

int reg_policy_get(struct reg_store *st, const char *model, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc == 0)
		rc = policy_load(c, mid, out);
	db_read_end(c);
	return rc;
}

int reg_policy_set(struct reg_store *st, const struct reg_actor *who, const char *model,
		   json_t *changes, const struct reg_policy_opts *opts)
{
	struct reg_policy_opts none = { 0 };
	const struct reg_policy_opts *o = opts ? opts : &none;
	struct reg_authz_target t = { .model = model };
	struct reg_conn *c = NULL;
	json_t *old = NULL, *policy = NULL, *loosened = NULL, *detail = NULL;
	char *text = NULL, *otext = NULL;
	struct db_stmt *s;
	int64_t mid;
	int rc;

	rc = reg_authz_check(st, who, REG_AUTHZ_POLICY_SET, &t);
	if (rc == 0 && o->force)
		rc = reg_authz_check(st, who, REG_AUTHZ_FORCE, &t);
	if (rc == 0 && o->force && (!o->reason || !o->reason[0]))
		rc = cm_err_set(-EINVAL, "a forced policy change needs a reason");
	if (rc == 0)
		rc = reason_check(o->reason);
	if (rc == 0 && !json_is_object(changes))
		rc = cm_err_set(-EINVAL, "a policy must be a JSON object");
	if (rc < 0)
		return rc;
	loosened = json_array();
	if (!loosened)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = policy_load(c, mid, &old);
	if (rc == 0)
		rc = reg_policy_merge(old, changes, &policy);
	if (rc == 0)
		rc = reg_policy_check(policy);
	if (rc < 0)
		goto done;
	if (json_equal(old, policy))
		goto done; /* nothing changes: nothing to record */
	if (reg_policy_loosened(old, policy, loosened) > 0 && !o->force) {
		struct cm_buf b = { 0 };
		size_t i;
		json_t *g;

		json_array_foreach(loosened, i, g)
			cm_buf_printf(&b, "%s%s", i ? "; " : "", json_string_value(g));
		rc = cm_err_set(-EPERM, "the change removes or loosens gates of '%s' (%s): give "
				"force with a reason", model, b.data ? b.data : "");
		cm_buf_free(&b);
		goto done;
	}
	text = reg_json_dumps(policy, JSON_COMPACT);
	otext = reg_json_dumps(old, JSON_COMPACT);
	if (!text || !otext) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (json_array_size(loosened) || o->force) {
		detail = json_pack("{s:O}", "loosened", loosened);
		if (detail && o->force)
			json_object_set_new(detail, "force", json_true());
		if (detail && o->reason && o->reason[0])
			json_object_set_new(detail, "reason", json_string(o->reason));
	}
	DB_STMT(c, MODEL_POLICY_SET, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, text);
	rc = db_exec_stmt(c, s, "storing a policy");
	if (rc == 0)
		rc = reg_event_add(c, who, "policy.set", model, NULL, NULL, otext, text, detail);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, model, NULL, 0);
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	json_decref(old);
	json_decref(policy);
	json_decref(loosened);
	json_decref(detail);
	free(text);
	free(otext);
	return rc;
}
