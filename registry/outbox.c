/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox: who is told of which events (subscribers), one durable item
 * per event and subscriber queued in the event's own transaction, and the
 * claim / complete / fail-with-backoff cycle that delivery adapters (sync/)
 * run over it. Nothing here knows how a delivery is made: an adapter name,
 * a target and a secret are strings the registry stores for the adapter.
 *
 * Locking: writes go through the writer connection (db_write_begin); the
 * observers are called by db_write_end after the writer is unlocked, under
 * obs_mu, so that removing one waits for a call in progress.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reg_i.h"

#define OB_BACKOFF_MIN_US 250000LL
#define OB_BACKOFF_MAX_US 60000000LL

/* ---- observers ---- */

int reg_store_observer_add(struct reg_store *st, reg_outbox_observer_cb fn, void *ctx)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&st->obs_mu);
	for (size_t i = 0; i < REG_OBSERVERS; i++) {
		if (!st->obs[i].fn) {
			st->obs[i].fn = fn;
			st->obs[i].ctx = ctx;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&st->obs_mu);
	return rc < 0 ? cm_err_set(rc, "too many outbox observers") : 0;
}

void reg_store_observer_remove(struct reg_store *st, reg_outbox_observer_cb fn, void *ctx)
{
	pthread_mutex_lock(&st->obs_mu);
	for (size_t i = 0; i < REG_OBSERVERS; i++) {
		if (st->obs[i].fn == fn && st->obs[i].ctx == ctx) {
			st->obs[i].fn = NULL;
			st->obs[i].ctx = NULL;
		}
	}
	pthread_mutex_unlock(&st->obs_mu);
}

void ob_observers_tell(struct reg_store *st)
{
	pthread_mutex_lock(&st->obs_mu);
	for (size_t i = 0; i < REG_OBSERVERS; i++)
		if (st->obs[i].fn)
			st->obs[i].fn(st->obs[i].ctx);
	pthread_mutex_unlock(&st->obs_mu);
}

void reg_outbox_backoff_set(struct reg_store *st, int64_t max_us)
{
	st->outbox_backoff_max_us = max_us;
}

/* ---- matching (space-separated lists) ---- */

/* 1 when `word` is in the list: exactly, or through "prefix.*" or "*". */
static int list_match(const char *list, const char *word, int patterns)
{
	const char *p = list;

	if (!list[0])
		return 1;
	if (!word)
		return 0;
	while (*p) {
		size_t n = strcspn(p, " ");

		if (n == strlen(word) && !memcmp(p, word, n))
			return 1;
		if (patterns && n == 1 && p[0] == '*')
			return 1;
		if (patterns && n >= 2 && p[n - 1] == '*' && p[n - 2] == '.' &&
		    !strncmp(word, p, n - 1))
			return 1;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

int ob_event_enqueue(struct reg_conn *c, int64_t event_id, const char *kind, const char *model)
{
	struct db_stmt *s, *ins;
	int64_t ids[REG_OUTBOX_SUBSCRIBERS_MAX];
	size_t n = 0;
	int rc = 0, src;

	/* A subscriber's own lifecycle is no delivery (its subscribe event would be its first). */
	if (kind && !strncmp(kind, "outbox.", 7))
		return 0;
	DB_STMT(c, OUTBOX_SUB_ACTIVE, s);
	while ((src = db_step(c, s, "reading outbox subscribers")) > 0) {
		const char *kinds = db_col_str(s, 1), *models = db_col_str(s, 2);

		if (n < sizeof(ids) / sizeof(ids[0]) && list_match(kinds ? kinds : "", kind, 1) &&
		    list_match(models ? models : "", model, 0))
			ids[n++] = db_col_int64(s, 0);
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		DB_STMT(c, OUTBOX_ENQUEUE, ins);
		db_bind_int64(ins, 1, ids[i]);
		db_bind_int64(ins, 2, event_id);
		db_bind_int64(ins, 3, cm_time_now_us());
		rc = db_exec_stmt(c, ins, "queueing an outbox item");
		if (rc < 0)
			goto done;
	}
	if (n)
		c->kick = 1;
done:
	return rc;
}

/* ---- subscribers ---- */

/* A JSON array of strings as a space-separated list; checks each word. */
static int list_from(json_t *arr, const char *what, int patterns, char **out)
{
	struct cm_buf b = { 0 };
	size_t i;
	json_t *v;
	int rc = 0;

	if (arr && !json_is_array(arr))
		return cm_err_set(-EINVAL, "'%s' must be an array of strings", what);
	if (json_array_size(arr) > REG_OUTBOX_LIST_MAX)
		return cm_err_set(-EINVAL, "'%s' holds more than %d entries", what,
				  REG_OUTBOX_LIST_MAX);
	json_array_foreach(arr, i, v) {
		const char *w = json_string_value(v);
		size_t len = w ? strlen(w) : 0;

		if (!w || !len || len > 255 || strpbrk(w, " \t\r\n") ||
		    (!patterns && strchr(w, '*'))) {
			rc = cm_err_set(-EINVAL, "'%s' entry %zu must be a non-empty name without "
					"spaces%s", what, i, patterns ? "" : " or '*'");
			goto done;
		}
		if (patterns && strchr(w, '*') && strcmp(w, "*") &&
		    (len < 3 || strcmp(w + len - 2, ".*") || strchr(w, '*') != w + len - 1)) {
			rc = cm_err_set(-EINVAL, "'%s' entry '%s': '*' only as the whole entry or "
					"as a '.*' suffix (alias.*)", what, w);
			goto done;
		}
		rc = cm_buf_printf(&b, "%s%s", b.len ? " " : "", w);
		if (rc < 0)
			goto done;
	}
	if (!b.data)
		rc = cm_buf_printf(&b, "%s", "");
done:
	if (rc < 0) {
		cm_buf_free(&b);
		return rc;
	}
	*out = b.data;
	return 0;
}

static json_t *list_json(const char *list)
{
	json_t *arr = json_array();
	const char *p = list ? list : "";

	while (*p) {
		size_t n = strcspn(p, " ");

		json_array_append_new(arr, json_stringn(p, n));
		p += n;
		while (*p == ' ')
			p++;
	}
	return arr;
}

static json_t *time_json(int64_t us)
{
	char ts[CM_TIME_RFC3339_LEN];

	if (!us)
		return json_null();
	cm_time_format(us, ts);
	return json_string(ts);
}

static json_t *text_json(struct db_stmt *s, int col)
{
	const char *t = db_col_str(s, col);

	return t ? json_string(t) : json_null();
}

/* Reads subscribers into an array (a reader or the writer connection). */
static int subs_read(struct reg_conn *c, const char *adapter, int64_t id, int with_secret,
		     json_t **out)
{
	json_t *arr = json_array();
	struct db_stmt *s;
	int rc = 0, src;

	DB_STMT(c, OUTBOX_SUB_LIST, s);
	db_bind_text(s, 1, adapter);
	db_bind_int64(s, 2, id);
	while ((src = db_step(c, s, "reading outbox subscribers")) > 0) {
		json_t *o = json_pack("{s:I s:o s:o s:o s:o s:o}", "id",
				      (json_int_t)db_col_int64(s, 0), "adapter", text_json(s, 1),
				      "target", text_json(s, 2), "events", list_json(db_col_str(s, 4)),
				      "models", list_json(db_col_str(s, 5)), "created_at",
				      time_json(db_col_int64(s, 6)));

		if (o && with_secret)
			json_object_set_new(o, "secret", text_json(s, 3));
		if (!o || json_array_append_new(arr, o) < 0) {
			src = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	*out = arr;
	arr = NULL;
done:
	json_decref(arr);
	return rc;
}

int reg_outbox_sub_add(struct reg_store *st, const struct reg_actor *who, const char *adapter,
		       const char *target, const char *secret, json_t *kinds, json_t *models,
		       json_t **out)
{
	char *k = NULL, *m = NULL;
	struct reg_conn *c = NULL;
	json_t *arr = NULL, *detail = NULL;
	struct db_stmt *s;
	int64_t id;
	int rc;

	if (!adapter || !adapter[0] || strlen(adapter) > 31)
		return cm_err_set(-EINVAL, "an outbox subscriber needs an adapter name");
	if (!target || !target[0] || strlen(target) > REG_OUTBOX_TARGET_MAX)
		return cm_err_set(-EINVAL, "an outbox subscriber needs a target of 1-%d bytes",
				  REG_OUTBOX_TARGET_MAX);
	if (secret && strlen(secret) > REG_OUTBOX_SECRET_MAX)
		return cm_err_set(-EINVAL, "the secret is longer than %d bytes",
				  REG_OUTBOX_SECRET_MAX);
	/* A webhook's target is an HTTP(S) URL and it signs with a secret. */
	if (!strcmp(adapter, "webhook") && strncmp(target, "http://", 7) &&
	    strncmp(target, "https://", 8))
		return cm_err_set(-EINVAL, "a webhook's url must start with http:// or https://");
	if (!strcmp(adapter, "webhook") && (!secret || !secret[0]))
		return cm_err_set(-EINVAL, "a webhook needs a 'secret' to sign its deliveries");
	if (strpbrk(target, " \t\r\n"))
		return cm_err_set(-EINVAL, "the target must not hold spaces or line breaks");
	if (!kinds || !json_array_size(kinds))
		return cm_err_set(-EINVAL, "'events' must list at least one event kind "
				  "(\"*\" for every kind)");
	rc = list_from(kinds, "events", 1, &k);
	if (rc == 0)
		rc = list_from(models, "models", 0, &m);
	if (rc < 0)
		goto done;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	/* Every event reads the subscribers in its transaction: their number is capped. */
	DB_STMT(c, OUTBOX_SUB_COUNT, s);
	rc = db_step(c, s, "counting outbox subscribers");
	id = rc > 0 ? db_col_int64(s, 0) : 0;
	db_reset(s);
	if (rc < 0)
		goto done;
	if (id >= REG_OUTBOX_SUBSCRIBERS_MAX) {
		rc = cm_err_set(-EINVAL, "there are %d outbox subscribers already (the most there "
				"can be)", REG_OUTBOX_SUBSCRIBERS_MAX);
		goto done;
	}
	DB_STMT(c, OUTBOX_SUB_INSERT, s);
	db_bind_text(s, 1, adapter);
	db_bind_text(s, 2, target);
	db_bind_text(s, 3, secret);
	db_bind_text(s, 4, k);
	db_bind_text(s, 5, m);
	db_bind_int64(s, 6, cm_time_now_us());
	rc = db_exec_stmt(c, s, "adding an outbox subscriber");
	if (rc < 0)
		goto done;
	id = db_last_id(c);
	detail = json_pack("{s:I s:s s:s s:s s:s}", "subscriber", (json_int_t)id, "adapter",
			   adapter, "target", target, "events", k, "models", m);
	rc = reg_event_add(c, who, "outbox.subscribe", NULL, NULL, NULL, NULL, NULL, detail);
	if (rc == 0)
		rc = subs_read(c, NULL, id, 0, &arr);
	if (rc == 0 && json_array_size(arr) != 1)
		rc = cm_err_set(-EIO, "the new subscriber %lld cannot be read back", (long long)id);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		*out = json_incref(json_array_get(arr, 0));
		db_write_end(c);
		c = NULL;
	}
done:
	db_write_abort(c);
	json_decref(arr);
	json_decref(detail);
	free(k);
	free(m);
	return rc;
}

int reg_outbox_sub_list(struct reg_store *st, const char *adapter, int64_t id, int with_secret,
			json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	int rc = subs_read(c, adapter, id, with_secret, out);

	db_read_end(c);
	return rc;
}

int reg_outbox_sub_get(struct reg_store *st, int64_t id, int with_secret, json_t **out)
{
	json_t *arr = NULL;
	int rc;

	if (id <= 0)
		return cm_err_set(-ENOENT, "no subscriber %lld", (long long)id);
	rc = reg_outbox_sub_list(st, NULL, id, with_secret, &arr);
	if (rc < 0)
		return rc;
	if (json_array_size(arr) != 1) {
		json_decref(arr);
		return cm_err_set(-ENOENT, "no subscriber %lld", (long long)id);
	}
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return 0;
}

int reg_outbox_sub_delete(struct reg_store *st, const struct reg_actor *who, int64_t id)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	json_t *detail = NULL;
	int64_t now = cm_time_now_us(), dropped;
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	DB_STMT(c, OUTBOX_SUB_DELETE, s);
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, now);
	rc = db_exec_stmt(c, s, "deleting an outbox subscriber");
	if (rc < 0)
		goto done;
	if (db_changes(c) != 1) {
		rc = cm_err_set(-ENOENT, "no subscriber %lld", (long long)id);
		goto done;
	}
	DB_STMT(c, OUTBOX_SUB_DROP, s);
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, now);
	rc = db_exec_stmt(c, s, "dropping a subscriber's open items");
	if (rc < 0)
		goto done;
	dropped = db_changes(c);
	detail = json_pack("{s:I s:I}", "subscriber", (json_int_t)id, "dropped",
			   (json_int_t)dropped);
	rc = reg_event_add(c, who, "outbox.unsubscribe", NULL, NULL, NULL, NULL, NULL, detail);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
	}
done:
	db_write_abort(c);
	json_decref(detail);
	return rc;
}

/* ---- claim, complete, fail ---- */

void reg_outbox_item_free(struct reg_outbox_item *it)
{
	if (!it)
		return;
	json_decref(it->event);
	free(it);
}

/* before/after hold a version name or a JSON document (metadata, policy). */
static json_t *value_json(struct db_stmt *s, int col)
{
	const char *t = db_col_str(s, col);
	json_t *j;

	if (!t)
		return json_null();
	if (t[0] == '{' && (j = json_loads(t, 0, NULL)))
		return j;
	return json_string(t);
}

/* The event of an OUTBOX_HEAD row (columns 4..14), as history shows it. */
static json_t *event_json(struct db_stmt *s)
{
	const char *d = db_col_str(s, 14);
	json_t *detail = d ? json_loads(d, 0, NULL) : NULL;

	return json_pack("{s:I s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o}", "id",
			 (json_int_t)db_col_int64(s, 4), "ts", time_json(db_col_int64(s, 5)),
			 "model", text_json(s, 6), "version", text_json(s, 7), "alias",
			 text_json(s, 8), "kind", text_json(s, 9), "channel", text_json(s, 10),
			 "actor", text_json(s, 11), "before", value_json(s, 12), "after",
			 value_json(s, 13), "detail", detail ? detail : json_object());
}

int reg_outbox_claim(struct reg_store *st, int64_t subscriber_id, int64_t lease_us,
		     struct reg_outbox_item **out, int64_t *next_us)
{
	static _Atomic int64_t tokens;
	struct reg_outbox_item *it = NULL;
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int64_t now = cm_time_now_us(), due, lease;
	int rc;

	*next_us = 0;
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	DB_STMT(c, OUTBOX_HEAD, s);
	db_bind_int64(s, 1, subscriber_id);
	rc = db_step(c, s, "reading the outbox");
	if (rc <= 0) {
		db_reset(s);
		goto done; /* 0: the queue is empty */
	}
	due = db_col_int64(s, 2);
	lease = db_col_int64(s, 3);
	if (lease > due)
		due = lease;
	if (due > now) {
		db_reset(s);
		*next_us = due;
		rc = 0;
		goto done;
	}
	it = calloc(1, sizeof(*it));
	if (!it) {
		db_reset(s);
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	it->id = db_col_int64(s, 0);
	it->attempts = db_col_int64(s, 1);
	it->subscriber_id = subscriber_id;
	it->event_id = db_col_int64(s, 4);
	it->event = event_json(s);
	it->token = ((now & 0xffffffffffLL) << 20) + (++tokens & 0xfffff);
	db_reset(s);
	if (!it->event) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	DB_STMT(c, OUTBOX_LEASE, s);
	db_bind_int64(s, 1, it->id);
	db_bind_int64(s, 2, now + lease_us);
	db_bind_int64(s, 3, it->token);
	db_bind_int64(s, 4, now);
	rc = db_exec_stmt(c, s, "leasing an outbox item");
	if (rc == 0 && db_changes(c) != 1)
		rc = cm_err_set(-EAGAIN, "outbox item %lld was claimed meanwhile", (long long)it->id);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
		*out = it;
		it = NULL;
		rc = 1;
	}
done:
	db_write_abort(c);
	reg_outbox_item_free(it);
	return rc;
}

/* Runs OUTBOX_COMPLETE or OUTBOX_FAIL on the item; -ESTALE when its lease is gone. */
static int item_finish(struct reg_store *st, const struct reg_outbox_item *it, int ok, int status,
		       const char *error)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int64_t now = cm_time_now_us();
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	if (ok) {
		DB_STMT(c, OUTBOX_COMPLETE, s);
		db_bind_int64(s, 1, it->id);
		db_bind_int64(s, 2, it->token);
		db_bind_int64(s, 3, now);
		db_bind_int(s, 4, status);
	} else {
		int64_t max = st->outbox_backoff_max_us > 0 ? st->outbox_backoff_max_us
							    : OB_BACKOFF_MAX_US;
		int64_t wait = OB_BACKOFF_MIN_US;

		for (int64_t i = 0; i < it->attempts && wait < max; i++)
			wait *= 2;
		if (wait > max)
			wait = max;
		DB_STMT(c, OUTBOX_FAIL, s);
		db_bind_int64(s, 1, it->id);
		db_bind_int64(s, 2, it->token);
		db_bind_int64(s, 3, now + wait);
		db_bind_text(s, 4, error && error[0] ? error : "failed");
		db_bind_int64(s, 5, now);
		if (status)
			db_bind_int(s, 6, status);
		else
			db_bind_null(s, 6);
	}
	rc = db_exec_stmt(c, s, ok ? "completing an outbox item" : "failing an outbox item");
	if (rc == 0 && db_changes(c) != 1)
		rc = cm_err_set(-ESTALE, "outbox item %lld: its lease ended before the delivery "
				"finished", (long long)it->id);
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

int reg_outbox_complete(struct reg_store *st, const struct reg_outbox_item *it, int status)
{
	return item_finish(st, it, 1, status, NULL);
}

int reg_outbox_fail(struct reg_store *st, const struct reg_outbox_item *it, int status,
		    const char *error)
{
	return item_finish(st, it, 0, status, error);
}

int reg_outbox_leases_release(struct reg_store *st)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int64_t n = 0;
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	DB_STMT(c, OUTBOX_LEASES_RELEASE, s);
	rc = db_exec_stmt(c, s, "releasing outbox leases");
	n = rc == 0 ? db_changes(c) : 0;
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
	}
done:
	db_write_abort(c);
	return rc < 0 ? rc : (int)n;
}

/* ---- state ---- */

static json_t *items_read(struct reg_conn *c, int64_t sub, const char *state, size_t limit,
			  int *rc)
{
	json_t *arr = json_array();
	struct db_stmt *s = db_stmt(c, REG_SQL_OUTBOX_ITEMS);
	int src;

	if (!s) {
		*rc = -EIO;
		json_decref(arr);
		return NULL;
	}
	db_bind_int64(s, 1, sub);
	db_bind_text(s, 2, state);
	db_bind_int64(s, 3, (int64_t)limit);
	while ((src = db_step(c, s, "reading the outbox")) > 0) {
		json_t *o = json_pack("{s:I s:I s:o s:o s:o s:o s:o s:I s:o s:o s:o s:o s:o s:o}",
				      "id", (json_int_t)db_col_int64(s, 0), "event_id",
				      (json_int_t)db_col_int64(s, 1), "kind", text_json(s, 2),
				      "model", text_json(s, 3), "version", text_json(s, 4), "alias",
				      text_json(s, 5), "state", text_json(s, 6), "attempts",
				      (json_int_t)db_col_int64(s, 7), "next_at",
				      time_json(db_col_int64(s, 8)), "last_error", text_json(s, 9),
				      "last_error_at", time_json(db_col_int64(s, 10)), "last_status",
				      db_col_null(s, 11) ? json_null()
							 : json_integer(db_col_int64(s, 11)),
				      "created_at", time_json(db_col_int64(s, 12)), "done_at",
				      time_json(db_col_int64(s, 13)));

		json_array_append_new(arr, o);
	}
	db_reset(s);
	if (src < 0) {
		*rc = src;
		json_decref(arr);
		return NULL;
	}
	return arr;
}

int reg_outbox_state(struct reg_store *st, int64_t subscriber_id, const char *state,
		     size_t items, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	json_t *subs = NULL, *sub, *res = NULL;
	struct db_stmt *s;
	int64_t pending = 0, failing = 0;
	size_t i;
	int rc = 0, src;

	rc = subs_read(c, NULL, subscriber_id, 0, &subs);
	if (rc < 0)
		goto done;
	json_array_foreach(subs, i, sub) {
		json_object_set_new(sub, "pending", json_integer(0));
		json_object_set_new(sub, "done", json_integer(0));
		json_object_set_new(sub, "dropped", json_integer(0));
		json_object_set_new(sub, "failing", json_integer(0));
		json_object_set_new(sub, "attempts", json_integer(0));
		json_object_set_new(sub, "oldest_pending_at", json_null());
	}
	DB_STMT(c, OUTBOX_STATES, s);
	while ((src = db_step(c, s, "reading the outbox")) > 0) {
		int64_t id = db_col_int64(s, 0);
		const char *stt = db_col_str(s, 1);

		json_array_foreach(subs, i, sub) {
			if (json_integer_value(json_object_get(sub, "id")) != id || !stt)
				continue;
			json_object_set_new(sub, stt, json_integer(db_col_int64(s, 2)));
			if (!strcmp(stt, "pending")) {
				pending += db_col_int64(s, 2);
				json_object_set_new(sub, "oldest_pending_at",
						    time_json(db_col_int64(s, 3)));
				json_object_set_new(sub, "attempts",
						    json_integer(db_col_int64(s, 4)));
			}
		}
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	json_array_foreach(subs, i, sub) {
		int64_t id = json_integer_value(json_object_get(sub, "id"));
		json_t *log;

		DB_STMT(c, OUTBOX_LAST_ERROR, s);
		db_bind_int64(s, 1, id);
		src = db_step(c, s, "reading the outbox");
		json_object_set_new(sub, "last_error", src > 0 ? text_json(s, 0) : json_null());
		json_object_set_new(sub, "last_error_at",
				    src > 0 ? time_json(db_col_int64(s, 1)) : json_null());
		json_object_set_new(sub, "last_status",
				    src > 0 && !db_col_null(s, 2) ? json_integer(db_col_int64(s, 2))
								 : json_null());
		db_reset(s);
		if (src < 0) {
			rc = src;
			goto done;
		}
		/* Failing: the open items whose head has failed at least once. */
		if (json_integer_value(json_object_get(sub, "attempts")) > 0) {
			json_object_set_new(sub, "failing", json_integer(1));
			failing++;
		}
		if (items) {
			log = items_read(c, id, state, items, &rc);
			if (!log)
				goto done;
			json_object_set_new(sub, "items", log);
		}
	}
	res = json_pack("{s:O s:I s:I}", "subscribers", subs, "pending", (json_int_t)pending,
			"failing", (json_int_t)failing);
	if (!res) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	*out = res;
done:
	json_decref(subs);
	db_read_end(c);
	return rc;
}

int reg_outbox_totals(struct reg_store *st, int64_t *pending, int64_t *failing, int64_t *oldest_us)
{
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	int64_t p = 0, f = 0, old = 0;
	int rc = 0, src;

	DB_STMT(c, OUTBOX_STATES, s);
	while ((src = db_step(c, s, "reading the outbox")) > 0) {
		const char *stt = db_col_str(s, 1);

		if (!stt || strcmp(stt, "pending"))
			continue;
		p += db_col_int64(s, 2);
		if (db_col_int64(s, 4) > 0)
			f++;
		if (!old || db_col_int64(s, 3) < old)
			old = db_col_int64(s, 3);
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	*pending = p;
	*failing = f;
	*oldest_us = old;
done:
	db_read_end(c);
	return rc;
}
