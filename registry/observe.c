/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Production feedback and store-wide summaries. Observations are metrics
 * measured on a deployed version (accuracy on labelled traffic, drift); they
 * are kept with their history and their latest value per series, so that
 * monitoring can export them cheaply. The summary gathers, in few queries,
 * what a metrics endpoint shows of the whole store.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "reg_i.h"

int reg_metric_name_check(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63)
		return cm_err_set(-EINVAL, "metric name must be 1 to 63 characters");
	if (!(name[0] >= 'a' && name[0] <= 'z'))
		return cm_err_set(-EINVAL, "metric name '%s' must start with a lowercase letter", name);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return cm_err_set(-EINVAL, "metric name '%s' may only hold lowercase letters, "
					  "digits and '_'", name);
	}
	return 0;
}

int reg_observation_add(struct reg_store *st, const struct reg_actor *who, const char *model,
			const char *version, const char *metric, double value, int64_t *ts_out)
{
	struct reg_conn *c = NULL;
	struct reg_version v;
	struct db_stmt *s;
	int64_t mid, ts = cm_time_now_us();
	int rc;

	rc = reg_metric_name_check(metric);
	if (rc < 0)
		return rc;
	if (!isfinite(value))
		return cm_err_set(-EINVAL, "an observed value must be a finite number");
	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, &v);
	if (rc == 0 && v.state == REG_DRAFT)
		rc = cm_err_set(-EINVAL, "version %s/%s is a draft: observations are for sealed "
				"versions, the ones that can be deployed", model, version);
	if (rc < 0)
		goto done;
	DB_STMT(c, OBS_INSERT, s);
	db_bind_int64(s, 1, v.id);
	db_bind_text(s, 2, metric);
	db_bind_double(s, 3, value);
	db_bind_int64(s, 4, ts);
	db_bind_text(s, 5, who && who->channel ? who->channel : "internal");
	db_bind_text(s, 6, who && who->name ? who->name : "modelfs");
	rc = db_exec_stmt(c, s, "recording an observation");
	if (rc < 0)
		goto done;
	DB_STMT(c, OBS_LATEST_SET, s);
	db_bind_int64(s, 1, v.id);
	db_bind_text(s, 2, metric);
	db_bind_double(s, 3, value);
	db_bind_int64(s, 4, ts);
	rc = db_exec_stmt(c, s, "recording an observation");
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	db_write_end(c);
	c = NULL;
	if (ts_out)
		*ts_out = ts;
done:
	db_write_abort(c);
	return rc;
}

static json_t *ts_json(int64_t us)
{
	char ts[CM_TIME_RFC3339_LEN];

	cm_time_format(us, ts);
	return json_string(ts);
}

int reg_observation_list(struct reg_store *st, const char *model, const char *version,
			 const char *metric, size_t limit, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	struct reg_version v;
	json_t *arr = json_array();
	struct db_stmt *s;
	int64_t mid;
	int rc = 0;
	int src;

	if (!arr) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, &v);
	if (rc < 0)
		goto done;
	DB_STMT(c, OBS_LIST, s);
	db_bind_int64(s, 1, v.id);
	db_bind_text(s, 2, metric);
	db_bind_int64(s, 3, limit ? (int64_t)limit : -1);
	while ((src = db_step(c, s, "listing observations")) > 0) {
		json_t *o = json_pack("{s:s s:f s:o s:s s:s}",
				      "metric", db_col_str(s, 0),
				      "value", db_col_double(s, 1),
				      "ts", ts_json(db_col_int64(s, 2)),
				      "channel", db_col_str(s, 3),
				      "actor", db_col_str(s, 4));

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
	db_read_end(c);
	json_decref(arr);
	return rc;
}

/* Appends one JSON object per row of `id`, built by `row`. */
static int summary_rows(struct reg_conn *c, enum reg_sql id, json_t *arr,
			json_t *(*row)(struct db_stmt *s))
{
	struct db_stmt *s = db_stmt(c, id);
	int rc = 0;
	int src;

	if (!s)
		return -EIO;
	while ((src = db_step(c, s, "summarising the store")) > 0) {
		json_t *o = row(s);

		if (!o || json_array_append_new(arr, o) < 0) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	if (rc == 0 && src < 0)
		rc = src;
	db_reset(s);
	return rc;
}

static json_t *row_versions(struct db_stmt *s)
{
	const unsigned char *state = db_col_ustr(s, 1);

	return json_pack("{s:s s:s? s:I}", "model", db_col_str(s, 0),
			 "state", (const char *)state, "count", (json_int_t)db_col_int64(s, 2));
}

static json_t *row_aliases(struct db_stmt *s)
{
	json_t *o = json_pack("{s:s s:s s:s}", "model", db_col_str(s, 0),
			      "alias", db_col_str(s, 1),
			      "version", db_col_str(s, 2));

	if (o && !db_col_null(s, 3))
		json_object_set_new(o, "percent", json_integer(db_col_int(s, 3)));
	return o;
}

static json_t *row_observations(struct db_stmt *s)
{
	return json_pack("{s:s s:s s:s s:f s:o}", "model", db_col_str(s, 0),
			 "version", db_col_str(s, 1),
			 "metric", db_col_str(s, 2),
			 "value", db_col_double(s, 3),
			 "ts", ts_json(db_col_int64(s, 4)));
}

int reg_store_summary(struct reg_store *st, json_t **out)
{
	struct reg_conn *c = db_read_begin(st);
	json_t *versions = json_array(), *aliases = json_array(), *obs = json_array();
	json_t *sum = NULL;
	int rc = 0;

	if (!versions || !aliases || !obs) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	rc = summary_rows(c, REG_SQL_SUMMARY_VERSIONS, versions, row_versions);
	if (rc == 0)
		rc = summary_rows(c, REG_SQL_SUMMARY_ALIASES, aliases, row_aliases);
	if (rc == 0)
		rc = summary_rows(c, REG_SQL_SUMMARY_OBSERVATIONS, obs, row_observations);
	if (rc < 0)
		goto done;
	sum = json_pack("{s:O s:O s:O}", "versions", versions, "aliases", aliases,
			"observations", obs);
	if (!sum) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	*out = sum;
done:
	db_read_end(c);
	json_decref(versions);
	json_decref(aliases);
	json_decref(obs);
	return rc;
}
