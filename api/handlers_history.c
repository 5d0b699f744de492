/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handlers that answer questions about the past and about provenance: the
 * event history, lineage forward and reverse, metadata diffs, and the
 * production metrics observed for a version.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"

#define HISTORY_DEFAULT 100
#define HISTORY_MAX 1000
#define DIFF_DEPTH_MAX 32

static int time_arg(const struct api_req *q, const char *key, int64_t *out)
{
	const char *s = api_arg(q, key);
	int rc;

	*out = 0;
	if (!s || !s[0])
		return 0;
	rc = cm_time_parse(s, out);
	if (rc < 0)
		return cm_err_wrap(-EBADMSG, "query parameter '%s'", key);
	return 0;
}

int api_h_history(struct api_req *q, struct api_resp *r)
{
	struct reg_event_filter f = { 0 };
	struct reg_model m;
	long long limit, cursor;
	json_t *ev = NULL;
	size_t n;
	int rc;

	rc = api_arg_int(q, "limit", HISTORY_DEFAULT, 1, HISTORY_MAX, &limit);
	if (rc == 0)
		rc = api_arg_int(q, "cursor", 0, 0, INT64_MAX, &cursor);
	if (rc == 0)
		rc = time_arg(q, "since", &f.since_us);
	if (rc == 0)
		rc = time_arg(q, "until", &f.until_us);
	if (rc == 0)
		rc = reg_name_model_check(q->model);
	if (rc < 0)
		return rc;
	{
		const char *order = api_arg(q, "order");

		if (order && order[0] && strcmp(order, "asc") && strcmp(order, "desc"))
			return cm_err_set(-EBADMSG, "query parameter 'order' must be asc or desc");
		f.desc = order && !strcmp(order, "desc");
	}
	f.kind = api_arg(q, "kind");
	f.after_id = cursor;
	f.limit = (size_t)limit + 1;
	rc = reg_event_list(q->st, q->model, &f, &ev);
	if (rc < 0)
		return rc;
	n = json_array_size(ev);
	/* A deleted model keeps its history; one that never existed has none. */
	if (n == 0 && !cursor && reg_model_get(q->st, q->model, &m) == -ENOENT) {
		json_decref(ev);
		return -ENOENT;
	}
	{
		char next[32] = "";

		if (n > (size_t)limit) {
			snprintf(next, sizeof(next), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(json_object_get(json_array_get(ev, (size_t)limit - 1),
								    "id")));
			json_array_remove(ev, (size_t)limit);
		}
		return api_resp_json(r, 200, json_pack("{s:s s:o s:o}", "model", q->model, "events", ev,
						       "next_cursor",
						       next[0] ? json_string(next) : json_null()));
	}
}

int api_h_lineage_get(struct api_req *q, struct api_resp *r)
{
	json_t *l = NULL;
	int rc = reg_lineage_get(q->st, q->model, q->version, &l);

	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, l);
}

int api_h_lineage_find(struct api_req *q, struct api_resp *r)
{
	const char *commit = api_arg(q, "git_commit");
	const char *hash = api_arg(q, "training_data_hash");
	json_t *found = NULL;
	int rc;

	if (commit && !commit[0])
		commit = NULL;
	if (hash && !hash[0])
		hash = NULL;
	if (!commit == !hash)
		return cm_err_set(-EBADMSG, "give exactly one of the query parameters 'git_commit' "
				  "and 'training_data_hash'");
	rc = reg_lineage_find(q->st, commit, hash, &found);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, json_pack("{s:o}", "versions", found));
}

/* Fields that always differ or are derived, left out of a diff. */
static int diff_skip(const char *prefix, const char *key)
{
	return !prefix[0] && (!strcmp(key, "version") || !strcmp(key, "model_name") ||
			      !strcmp(key, "deployed_to"));
}

static int diff_add(json_t *out, const char *path, const char *op, json_t *a, json_t *b)
{
	json_t *c = json_pack("{s:s s:s s:O? s:O?}", "path", path, "op", op, "from", a, "to", b);

	if (!c || json_array_append_new(out, c) < 0)
		return cm_err_set(-ENOMEM, "out of memory");
	return 0;
}

static int key_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Appends the differences of two objects under a dotted prefix, sorted by key. */
static int diff_objects(const char *prefix, json_t *a, json_t *b, json_t *out, int depth)
{
	const char **keys = calloc(json_object_size(a) + json_object_size(b) + 1, sizeof(*keys));
	const char *k;
	size_t n = 0;
	json_t *v;
	int rc = 0;

	if (!keys)
		return cm_err_set(-ENOMEM, "out of memory");
	json_object_foreach(a, k, v)
		keys[n++] = k;
	json_object_foreach(b, k, v) {
		if (!json_object_get(a, k))
			keys[n++] = k;
	}
	qsort(keys, n, sizeof(*keys), key_cmp); /* a diff reads the same each time */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_t *va = json_object_get(a, keys[i]), *vb = json_object_get(b, keys[i]);
		char path[512];

		if (diff_skip(prefix, keys[i]) || (va && vb && json_equal(va, vb)))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", keys[i]);
		if (json_is_object(va) && json_is_object(vb) && depth < DIFF_DEPTH_MAX)
			rc = diff_objects(path, va, vb, out, depth + 1);
		else
			rc = diff_add(out, path, !va ? "added" : !vb ? "removed" : "changed", va, vb);
	}
	free(keys);
	return rc;
}

int api_h_diff(struct api_req *q, struct api_resp *r)
{
	const char *from = api_arg(q, "from"), *to = api_arg(q, "to");
	json_t *a = NULL, *b = NULL, *changes = json_array();
	int rc = 0;

	if (!from || !from[0] || !to || !to[0])
		rc = cm_err_set(-EBADMSG, "query parameters 'from' and 'to' (version names) are "
				"required");
	if (rc == 0 && !changes)
		rc = cm_err_set(-ENOMEM, "out of memory");
	if (rc == 0)
		rc = reg_version_metadata_get(q->st, q->model, from, &a);
	if (rc == 0)
		rc = reg_version_metadata_get(q->st, q->model, to, &b);
	if (rc == 0)
		rc = diff_objects("", a, b, changes, 0);
	if (rc == 0) {
		rc = api_resp_json(r, 200, json_pack("{s:s s:s s:s s:O}", "model", q->model, "from",
						     from, "to", to, "changes", changes));
	}
	json_decref(a);
	json_decref(b);
	json_decref(changes);
	return rc;
}

int api_h_observations_list(struct api_req *q, struct api_resp *r)
{
	const char *metric = api_arg(q, "metric");
	json_t *list = NULL;
	long long limit;
	int rc;

	if (metric && !metric[0])
		metric = NULL;
	rc = api_arg_int(q, "limit", HISTORY_DEFAULT, 1, HISTORY_MAX, &limit);
	if (rc == 0)
		rc = reg_observation_list(q->st, q->model, q->version, metric, (size_t)limit, &list);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, json_pack("{s:s s:s s:o}", "model", q->model, "version",
					       q->version, "observations", list));
}

static const struct api_field observation_fields[] = {
	{ "metric", API_F_STRING, 1 },
	{ "value", API_F_NUMBER, 1 },
};

int api_h_observation_add(struct api_req *q, struct api_resp *r)
{
	int64_t ts = 0;
	double value;
	int rc;

	rc = api_body_check(q, observation_fields, 2);
	if (rc < 0)
		return rc;
	value = json_number_value(json_object_get(q->body, "value"));
	rc = reg_observation_add(q->st, &q->who, q->model, q->version, api_body_str(q, "metric"),
				 value, &ts);
	if (rc < 0)
		return rc;
	/* Not a registry change (no hook): /metrics must still show it at once. */
	if (q->srv)
		api_cache_clear(&q->srv->cache);
	return api_resp_json(r, 201, json_pack("{s:s s:s s:s s:f s:o}", "model", q->model, "version",
					       q->version, "metric", api_body_str(q, "metric"),
					       "value", value, "observed_at", api_time(ts)));
}

#define REFUSALS_DEFAULT 20
#define REFUSALS_MAX 1000

/*
 * GET /v1/refusals: the newest refusals first. An admin sees every one; any
 * other caller sees those of its own token and those made through the mount
 * (which the model's history shows to readers anyway). uid and token select
 * (either may match when both are given); token=me is the caller's token.
 */
int api_h_refusals(struct api_req *q, struct api_resp *r)
{
	struct reg_refusal_filter f = { .uid = -1 };
	long long limit, cursor, uid;
	json_t *list = NULL, *last;
	const char *token = api_arg(q, "token");
	size_t n;
	int rc;

	rc = api_arg_int(q, "limit", REFUSALS_DEFAULT, 1, REFUSALS_MAX, &limit);
	if (rc == 0)
		rc = api_arg_int(q, "cursor", 0, 0, INT64_MAX, &cursor);
	if (rc == 0)
		rc = api_arg_int(q, "uid", -1, 0, UINT32_MAX, &uid);
	if (rc == 0 && api_arg(q, "model"))
		rc = reg_name_model_check(api_arg(q, "model"));
	if (rc < 0)
		return rc;
	f.model = api_arg(q, "model");
	f.uid = uid;
	f.token = token && !strcmp(token, "me") ? q->who.name : token;
	f.visible_token = q->role >= API_ROLE_ADMIN ? NULL : q->who.name ? q->who.name : "";
	f.before_id = cursor;
	f.limit = (size_t)limit + 1;
	rc = reg_refusal_list(q->st, &f, &list);
	if (rc < 0)
		return rc;
	n = json_array_size(list);
	if (n > (size_t)limit) {
		json_array_remove(list, n - 1);
		last = json_array_get(list, n - 2);
		return api_resp_json(r, 200, json_pack("{s o s I}", "refusals", list, "next_cursor",
						       json_integer_value(json_object_get(last, "id"))));
	}
	return api_resp_json(r, 200, json_pack("{s o s n}", "refusals", list, "next_cursor"));
}
