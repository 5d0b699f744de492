/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refusals: every operation either door refused, recorded once in a bounded
 * table (what `modelfs why` and GET /v1/refusals read) and, when there is a
 * model, as a "refused" event in its history. Both doors call
 * reg_refusal_record() after they have their answer; the registry names the
 * rule that refused, so the shell and HTTP explain a failure the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reg_i.h"

static const struct {
	int err;
	const char *name;
} errnames[] = {
	{ EPERM, "EPERM" },   { EACCES, "EACCES" },       { EINVAL, "EINVAL" },
	{ EBUSY, "EBUSY" },   { EEXIST, "EEXIST" },       { EROFS, "EROFS" },
	{ ENOTEMPTY, "ENOTEMPTY" }, { ENAMETOOLONG, "ENAMETOOLONG" }, { EXDEV, "EXDEV" },
	{ ESTALE, "ESTALE" }, { EBADMSG, "EBADMSG" },     { E2BIG, "E2BIG" },
	{ EFBIG, "EFBIG" },   { EISDIR, "EISDIR" },       { ENOTDIR, "ENOTDIR" },
	{ ENOENT, "ENOENT" }, { EMEDIUMTYPE, "EMEDIUMTYPE" }, { ENOKEY, "ENOKEY" },
};

static const char *errname(int err)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	return "EIO";
}

/*
 * The rule behind a refusal, from what the registry answered: one word a
 * script can match on ("gate", "name", "aliased", ...); the message says it
 * in full.
 */
static const char *rule_of(const struct reg_refusal *r, const char *msg)
{
	if (r->failed_gates && json_array_size(r->failed_gates) > 0)
		return "gate";
	switch (r->err) {
	case EACCES:
		return "authority";
	case EBUSY:
		return strstr(msg, "alias '") ? "aliased" : strstr(msg, "sealed") ? "sealing"
										   : "busy";
	case EEXIST:
		return "name_taken";
	case EROFS:
		return "sealed";
	case ENOTEMPTY:
		return "not_empty";
	case EINVAL:
	case ENAMETOOLONG:
		return strstr(msg, "name") ? "name" : "invalid";
	case EPERM:
		return strstr(msg, "policy") ? "gate" : "layout";
	case EXDEV:
		return "layout";
	case ESTALE:
		return "compare_and_swap";
	case EBADMSG:
		return "request";
	case E2BIG:
	case EFBIG:
		return "size";
	default:
		return "refused";
	}
}

/* The last record this thread made itself, so the adapter's call adds to it. */
static __thread struct {
	int64_t id;
	int err;
	char msg[CM_ERR_MAX];
} last;

/* 1 when `who` may have one more refusal recorded now (a token bucket per actor). */
static int rate_take(struct reg_store *st, const struct reg_actor *who)
{
	char key[sizeof(st->refusal_buckets[0].key)];
	struct regi_bucket *b = NULL, *oldest = NULL;
	int64_t now = cm_time_now_us();
	int ok;

	if (who && who->kind == REG_ACTOR_UID)
		snprintf(key, sizeof(key), "uid=%u", (unsigned)who->uid);
	else
		snprintf(key, sizeof(key), "%s:%s", who && who->channel ? who->channel : "internal",
			 who && who->name ? who->name : "modelfs");
	pthread_mutex_lock(&st->refusal_mu);
	for (size_t i = 0; i < REGI_BUCKETS; i++) {
		struct regi_bucket *x = &st->refusal_buckets[i];

		if (!strcmp(x->key, key)) {
			b = x;
			break;
		}
		if (!oldest || x->at_us < oldest->at_us)
			oldest = x;
	}
	if (!b) {
		/* A new actor takes the least recently refused slot with a full bucket. */
		b = oldest;
		cm_strlcpy(b->key, key, sizeof(b->key));
		b->tokens = REG_REFUSAL_BURST;
	} else {
		b->tokens += (double)(now - b->at_us) / 1e6 * REG_REFUSAL_RATE;
		if (b->tokens > REG_REFUSAL_BURST)
			b->tokens = REG_REFUSAL_BURST;
	}
	b->at_us = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		st->refusals_dropped++;
	pthread_mutex_unlock(&st->refusal_mu);
	return ok;
}

/* Adds status and code to the record this thread made for the same failure. */
static int status_add(struct reg_store *st, int64_t id, const struct reg_refusal *r)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	DB_STMT(c, REFUSAL_STATUS_SET, s);
	db_bind_int64(s, 1, id);
	db_bind_int(s, 2, r->status);
	db_bind_text(s, 3, r->code);
	rc = db_exec_stmt(c, s, "recording a refusal's status");
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
	}
done:
	db_write_abort(c);
	return rc;
}

static int record(struct reg_store *st, const struct reg_actor *who, const struct reg_refusal *r,
		  const char *msg, int64_t *id_out)
{
	const char *rule = r->rule ? r->rule : rule_of(r, msg);
	struct reg_conn *c = NULL;
	json_t *detail = NULL;
	char *gates = NULL;
	int64_t mid, event_id = 0, id;
	int committed = 0;
	struct db_stmt *s;
	int rc;

	detail = json_pack("{ss ss ss so so ss so}", "op", r->op ? r->op : "unknown", "rule", rule,
			   "errno", errname(r->err), "status",
			   r->status ? json_integer(r->status) : json_null(), "code",
			   r->code ? json_string(r->code) : json_null(), "message", msg,
			   "failed_gates",
			   r->failed_gates ? json_incref(r->failed_gates) : json_array());
	if (!detail)
		return cm_err_set(-ENOMEM, "out of memory recording a refusal");
	if (r->failed_gates && !(gates = reg_json_dumps(r->failed_gates, JSON_COMPACT))) {
		rc = cm_err_set(-ENOMEM, "out of memory recording a refusal");
		goto done;
	}
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	if (r->model && reg_model_id(c, r->model, &mid) == 0) {
		rc = reg_event_add(c, who, "refused", r->model, r->version, r->alias, r->before,
				   r->after, detail);
		if (rc < 0)
			goto done;
		event_id = db_last_id(c);
	}
	cm_err_clear();
	DB_STMT(c, REFUSAL_INSERT, s);
	db_bind_int64(s, 1, cm_time_now_us());
	db_bind_text(s, 2, r->model);
	db_bind_text(s, 3, r->version);
	db_bind_text(s, 4, r->alias);
	db_bind_text(s, 5, who && who->channel ? who->channel : "internal");
	db_bind_text(s, 6, who && who->name ? who->name : "modelfs");
	if (who && who->kind == REG_ACTOR_UID)
		db_bind_int64(s, 7, (int64_t)who->uid);
	else
		db_bind_null(s, 7);
	db_bind_text(s, 8, who && who->kind == REG_ACTOR_TOKEN ? who->name : NULL);
	db_bind_text(s, 9, r->op ? r->op : "unknown");
	db_bind_text(s, 10, rule);
	db_bind_text(s, 11, errname(r->err));
	if (r->status)
		db_bind_int(s, 12, r->status);
	else
		db_bind_null(s, 12);
	db_bind_text(s, 13, r->code);
	db_bind_text(s, 14, msg);
	db_bind_text(s, 15, gates);
	if (event_id)
		db_bind_int64(s, 16, event_id);
	else
		db_bind_null(s, 16);
	rc = db_exec_stmt(c, s, "recording a refusal");
	if (rc < 0)
		goto done;
	id = db_last_id(c);
	if (id > REG_REFUSALS_KEEP) {
		DB_STMT(c, REFUSAL_TRIM, s);
		db_bind_int64(s, 1, id - REG_REFUSALS_KEEP);
		rc = db_exec_stmt(c, s, "trimming old refusals");
		if (rc < 0)
			goto done;
	}
	rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	committed = 1;
	if (r->materialize && r->model)
		reg_materialize(st, c, r->model, NULL, 0);
	*id_out = id;
done:
	if (committed)
		db_write_end(c);
	else
		db_write_abort(c);
	free(gates);
	json_decref(detail);
	return rc;
}

static int refusal_store(struct reg_store *st, const struct reg_actor *who,
			 const struct reg_refusal *r, int remember)
{
	char msg[CM_ERR_MAX];
	int64_t id = 0;
	int rc;

	cm_strlcpy(msg, r->message ? r->message : cm_err_msg(), sizeof(msg));
	if (!msg[0])
		cm_strlcpy(msg, strerror(r->err), sizeof(msg));
	if (last.id && last.err == r->err && !strcmp(last.msg, msg)) {
		/* The registry recorded this one already; the adapter adds what only it knows. */
		id = last.id;
		last.id = 0;
		rc = r->status ? status_add(st, id, r) : 0;
		cm_err_set(0, "%s", msg);
		return rc;
	}
	last.id = 0;
	if (!rate_take(st, who)) {
		cm_err_set(0, "%s", msg);
		return 0;
	}
	rc = record(st, who, r, msg, &id);
	if (rc == 0 && remember) {
		last.id = id;
		last.err = r->err;
		cm_strlcpy(last.msg, msg, sizeof(last.msg));
	}
	cm_err_set(0, "%s", msg); /* keep the refusal as the caller's message */
	return rc < 0 ? rc : 1;
}

int reg_refusal_record(struct reg_store *st, const struct reg_actor *who,
		       const struct reg_refusal *r)
{
	return refusal_store(st, who, r, 0);
}

int regi_refusal_add(struct reg_store *st, const struct reg_actor *who,
		     const struct reg_refusal *r)
{
	return refusal_store(st, who, r, 1);
}

static json_t *text_or_null(struct db_stmt *s, int col)
{
	const unsigned char *t = db_col_ustr(s, col);

	return t ? json_string((const char *)t) : json_null();
}

static json_t *int_or_null(struct db_stmt *s, int col)
{
	return db_col_null(s, col) ? json_null()
							   : json_integer(db_col_int64(s, col));
}

int reg_refusal_list(struct reg_store *st, const struct reg_refusal_filter *f, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	json_t *arr = json_array();
	struct db_stmt *s;
	int rc = 0;
	int src;

	if (!arr) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	DB_STMT(c, REFUSAL_LIST, s);
	db_bind_text(s, 1, f->model);
	if (f->uid >= 0)
		db_bind_int64(s, 2, f->uid);
	else
		db_bind_null(s, 2);
	db_bind_text(s, 3, f->token);
	db_bind_text(s, 4, f->visible_token);
	db_bind_int64(s, 5, f->before_id);
	db_bind_int64(s, 6, f->limit ? (int64_t)f->limit : 100);
	while ((src = db_step(c, s, "reading refusals")) > 0) {
		const unsigned char *g = db_col_ustr(s, 15);
		char ts[CM_TIME_RFC3339_LEN];
		json_t *gates = g ? json_loads((const char *)g, 0, NULL) : NULL;
		json_t *o;

		cm_time_format(db_col_int64(s, 1), ts);
		o = json_pack("{sI ss so so so so so so so so so so so so so so so}", "id",
			      (json_int_t)db_col_int64(s, 0), "ts", ts, "model",
			      text_or_null(s, 2), "version", text_or_null(s, 3), "alias",
			      text_or_null(s, 4), "channel", text_or_null(s, 5), "actor",
			      text_or_null(s, 6), "uid", int_or_null(s, 7), "token",
			      text_or_null(s, 8), "op", text_or_null(s, 9), "rule",
			      text_or_null(s, 10), "errno", text_or_null(s, 11), "status",
			      int_or_null(s, 12), "code", text_or_null(s, 13), "message",
			      text_or_null(s, 14), "failed_gates", gates ? gates : json_array(),
			      "event_id", int_or_null(s, 16));
		if (!o || json_array_append_new(arr, o) < 0) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
	if (rc == 0) {
		*out = arr;
		arr = NULL;
	}
done:
	json_decref(arr);
	db_read_end(c);
	return rc;
}

int64_t reg_refusals_dropped(struct reg_store *st)
{
	int64_t n;

	pthread_mutex_lock(&st->refusal_mu);
	n = st->refusals_dropped;
	pthread_mutex_unlock(&st->refusal_mu);
	return n;
}
