/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retraining triggers: per-model rules over production observations and a
 * weekly schedule that record a `retrain.requested` event, once per episode
 * (an episode ends when a version is sealed or promoted). The event goes out
 * through the outbox like any other (webhooks to Tekton, say).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reg_i.h"

#define TRIG_WEEK_US (7LL * 86400 * 1000000)

struct trig_row {
	json_t *spec;
	int64_t updated, below_since, fired_at, schedule_at;
	int episode_open;
};

/* 1 with the row, 0 when the model has no rules, -errno. */
static int row_load(struct reg_conn *c, int64_t mid, struct trig_row *r)
{
	struct db_stmt *s;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	DB_STMT(c, TRIG_GET, s);
	db_bind_int64(s, 1, mid);
	rc = db_step(c, s, "reading retraining triggers");
	if (rc > 0) {
		r->spec = json_loads(db_col_str(s, 0) ? db_col_str(s, 0) : "{}", 0, NULL);
		r->updated = db_col_int64(s, 1);
		r->episode_open = db_col_int(s, 2);
		r->below_since = db_col_int64(s, 3);
		r->fired_at = db_col_int64(s, 4);
		r->schedule_at = db_col_int64(s, 5);
		if (!r->spec)
			rc = cm_err_set(-EIO, "stored triggers are not JSON");
	}
	db_reset(s);
done:
	return rc;
}

static int row_store(struct reg_conn *c, int64_t mid, const struct trig_row *r)
{
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, TRIG_STATE, s);
	db_bind_int64(s, 1, mid);
	db_bind_int(s, 2, r->episode_open);
	db_bind_int64(s, 3, r->below_since);
	db_bind_int64(s, 4, r->fired_at);
	db_bind_int64(s, 5, r->schedule_at);
	rc = db_exec_stmt(c, s, "updating retraining triggers");
done:
	return rc;
}

static const struct reg_actor trig_actor = { .channel = "internal", .name = "triggers" };

static int fire(struct reg_conn *c, const char *model, const char *version, const char *rule,
		const char *metric, double value, double threshold, int64_t window_s)
{
	json_t *d = json_pack("{s:s}", "rule", rule);
	int rc;

	if (!d)
		return cm_err_set(-ENOMEM, "out of memory");
	if (metric) {
		json_object_set_new(d, "metric", json_string(metric));
		json_object_set_new(d, "value", json_real(value));
		json_object_set_new(d, "threshold", json_real(threshold));
	}
	if (window_s)
		json_object_set_new(d, "window_seconds", json_integer(window_s));
	rc = reg_event_add(c, &trig_actor, "retrain.requested", model, version, NULL, NULL, NULL,
			   d);
	json_decref(d);
	return rc;
}

static const char *rule_metric(json_t *rule, const char *def)
{
	const char *m = json_string_value(json_object_get(rule, "metric"));

	return m ? m : def;
}

int trig_observe(struct reg_conn *c, int64_t mid, const char *model, const char *version,
		 const char *metric, double value, int64_t ts)
{
	struct trig_row r;
	struct db_stmt *s;
	json_t *acc, *drift;
	char cur[REG_NAME_MAX] = "";
	int rc, changed = 0;

	rc = row_load(c, mid, &r);
	if (rc <= 0)
		return rc;
	/* Only the serving version's observations count. */
	DB_STMT(c, ALIAS_GET, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, "current");
	rc = db_step(c, s, "reading the current alias");
	if (rc > 0)
		db_col_text(s, 1, cur, sizeof(cur));
	db_reset(s);
	if (rc < 0)
		goto done;
	rc = 0;
	if (strcmp(cur, version))
		goto done;
	acc = json_object_get(r.spec, "accuracy");
	drift = json_object_get(r.spec, "drift");
	if (acc && !strcmp(metric, rule_metric(acc, "accuracy"))) {
		double below = json_number_value(json_object_get(acc, "below"));
		int64_t win = json_integer_value(json_object_get(acc, "window_seconds"));

		if (value < below) {
			if (!r.below_since) {
				r.below_since = ts;
				changed = 1;
			}
			if (!r.episode_open && ts - r.below_since >= win * 1000000) {
				rc = fire(c, model, version, "accuracy", metric, value, below, win);
				r.episode_open = 1;
				r.fired_at = ts;
				changed = 1;
			}
		} else if (r.below_since) {
			r.below_since = 0;
			changed = 1;
		}
	}
	if (rc == 0 && drift && !strcmp(metric, rule_metric(drift, "drift_p_value"))) {
		double below = json_number_value(json_object_get(drift, "below"));

		if (value < below && !r.episode_open) {
			rc = fire(c, model, version, "drift", metric, value, below, 0);
			r.episode_open = 1;
			r.fired_at = ts;
			changed = 1;
		}
	}
	if (rc == 0 && changed)
		rc = row_store(c, mid, &r);
done:
	json_decref(r.spec);
	return rc;
}

int trig_event(struct reg_conn *c, const char *kind, const char *model, const char *alias)
{
	struct db_stmt *s;
	int rc = 0;

	if (!model || !kind)
		return 0;
	if (strcmp(kind, "version.seal") &&
	    !(!strcmp(kind, "alias.set") && alias && !strcmp(alias, "current")))
		return 0;
	DB_STMT(c, TRIG_CLEAR, s);
	db_bind_text(s, 1, model);
	rc = db_exec_stmt(c, s, "closing a retraining episode");
done:
	return rc;
}

/* Checks a number field in [lo, hi]; *present 1 when given. */
static int num_check(json_t *o, const char *rule, const char *key, double lo, double hi,
		     int required, int integer)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return required ? cm_err_set(-EINVAL, "'%s' needs '%s'", rule, key) : 0;
	if (integer ? !json_is_integer(v) : !json_is_number(v))
		return cm_err_set(-EINVAL, "'%s.%s' must be %s", rule, key,
				  integer ? "an integer" : "a number");
	if (json_number_value(v) < lo || json_number_value(v) > hi)
		return cm_err_set(-EINVAL, "'%s.%s' must be between %g and %g", rule, key, lo, hi);
	return 0;
}

static int spec_check(json_t *spec)
{
	static const char *const allowed[][4] = {
		{ "accuracy", "metric", "below", "window_seconds" },
		{ "drift", "metric", "below", NULL },
		{ "schedule", "weekday", "hour", NULL },
	};
	const char *key, *k2;
	json_t *v, *v2;
	int rc = 0;

	if (!json_is_object(spec))
		return cm_err_set(-EINVAL, "triggers must be a JSON object");
	json_object_foreach(spec, key, v) {
		size_t i;

		for (i = 0; i < 3; i++)
			if (!strcmp(key, allowed[i][0]))
				break;
		if (i == 3)
			return cm_err_set(-EINVAL, "unknown trigger '%.64s' (accuracy, drift, "
					  "schedule)", key);
		if (!json_is_object(v))
			return cm_err_set(-EINVAL, "'%s' must be an object", key);
		json_object_foreach(v, k2, v2) {
			int ok = 0;

			for (size_t k = 1; k < 4; k++)
				if (allowed[i][k] && !strcmp(k2, allowed[i][k]))
					ok = 1;
			if (!ok)
				return cm_err_set(-EINVAL, "unknown field '%s.%.64s'", key, k2);
		}
		if (json_object_get(v, "metric")) {
			if (!json_is_string(json_object_get(v, "metric")))
				return cm_err_set(-EINVAL, "'%s.metric' must be a string", key);
			rc = reg_metric_name_check(json_string_value(json_object_get(v, "metric")));
			if (rc < 0)
				return rc;
		}
	}
	if ((v = json_object_get(spec, "accuracy"))) {
		rc = num_check(v, "accuracy", "below", -1e300, 1e300, 1, 0);
		if (rc == 0)
			rc = num_check(v, "accuracy", "window_seconds", 0, 31 * 86400, 1, 1);
	}
	if (rc == 0 && (v = json_object_get(spec, "drift")))
		rc = num_check(v, "drift", "below", 0, 1, 1, 0);
	if (rc == 0 && (v = json_object_get(spec, "schedule"))) {
		rc = num_check(v, "schedule", "weekday", 0, 6, 1, 1);
		if (rc == 0)
			rc = num_check(v, "schedule", "hour", 0, 23, 1, 1);
	}
	return rc;
}

static json_t *state_json(const char *model, const struct trig_row *r)
{
	char ts[CM_TIME_RFC3339_LEN];
	json_t *spec = r->spec ? json_incref(r->spec) : json_object();
	json_t *o = json_pack("{s:s s:o s:b}", "model", model, "triggers", spec, "episode_open",
			      r->episode_open);

	if (r->below_since) {
		cm_time_format(r->below_since, ts);
		json_object_set_new(o, "below_since", json_string(ts));
	} else {
		json_object_set_new(o, "below_since", json_null());
	}
	if (r->fired_at) {
		cm_time_format(r->fired_at, ts);
		json_object_set_new(o, "fired_at", json_string(ts));
	} else {
		json_object_set_new(o, "fired_at", json_null());
	}
	return o;
}

int reg_trigger_set(struct reg_store *st, const struct reg_actor *who, const char *model,
		    json_t *spec, json_t **out)
{
	struct reg_conn *c = NULL;
	struct trig_row r = { 0 };
	struct db_stmt *s;
	char *text = NULL;
	int64_t mid, now = cm_time_now_us();
	int rc;

	rc = spec_check(spec);
	if (rc < 0)
		return rc;
	text = reg_json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = reg_model_id(c, model, &mid);
	if (rc < 0)
		goto done;
	DB_STMT(c, TRIG_SET, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, text);
	db_bind_int64(s, 3, now);
	rc = db_exec_stmt(c, s, "setting retraining triggers");
	if (rc == 0)
		rc = reg_event_add(c, who, "triggers.set", model, NULL, NULL, NULL, text, NULL);
	if (rc == 0)
		rc = row_load(c, mid, &r);
	if (rc >= 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
		*out = state_json(model, &r);
	}
done:
	json_decref(r.spec);
	db_write_abort(c);
	free(text);
	return rc;
}

int reg_trigger_get(struct reg_store *st, const char *model, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	struct trig_row r = { 0 };
	int64_t mid;
	int rc;

	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = row_load(c, mid, &r);
	if (rc >= 0) {
		*out = state_json(model, &r);
		rc = 0;
	}
	json_decref(r.spec);
	db_read_end(c);
	return rc;
}

/* The latest weekly instant (weekday, hour, UTC) at or before now. */
static int64_t slot_before(int64_t now_us, int weekday, int hour)
{
	time_t t = (time_t)(now_us / 1000000);
	struct tm tm;
	int64_t day_start, back;

	gmtime_r(&t, &tm);
	day_start = (int64_t)t - tm.tm_hour * 3600 - tm.tm_min * 60 - tm.tm_sec;
	back = (tm.tm_wday - weekday + 7) % 7;
	day_start -= back * 86400;
	if (day_start + hour * 3600 > (int64_t)t)
		day_start -= 7 * 86400;
	return (day_start + hour * 3600) * 1000000;
}

int reg_trigger_tick(struct reg_store *st, int64_t now_us)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int64_t ids[256];
	char names[256][REG_NAME_MAX];
	size_t n = 0;
	int rc, src, fired = 0;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, TRIG_ALL, s);
	while ((src = db_step(c, s, "reading retraining triggers")) > 0 && n < 256) {
		ids[n] = db_col_int64(s, 0);
		db_col_text(s, 1, names[n], sizeof(names[n]));
		n++;
	}
	db_reset(s);
	if (src < 0) {
		rc = src;
		goto done;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct trig_row r;
		json_t *sch;
		int64_t slot;

		rc = row_load(c, ids[i], &r);
		if (rc <= 0)
			continue;
		rc = 0;
		sch = json_object_get(r.spec, "schedule");
		if (sch) {
			slot = slot_before(now_us,
					   (int)json_integer_value(json_object_get(sch, "weekday")),
					   (int)json_integer_value(json_object_get(sch, "hour")));
			/* Once per slot; a slot before the rules were set does not count. */
			if (slot > r.schedule_at) {
				char cur[REG_NAME_MAX] = "";

				DB_STMT(c, ALIAS_GET, s);
				db_bind_int64(s, 1, ids[i]);
				db_bind_text(s, 2, "current");
				if (db_step(c, s, "reading the current alias") > 0)
					db_col_text(s, 1, cur, sizeof(cur));
				db_reset(s);
				rc = fire(c, names[i], cur[0] ? cur : NULL, "schedule", NULL, 0, 0, 0);
				r.schedule_at = slot;
				if (rc == 0)
					rc = row_store(c, ids[i], &r);
				fired++;
			}
		}
		json_decref(r.spec);
	}
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
	}
done:
	db_write_abort(c);
	return rc < 0 ? rc : fired;
}
