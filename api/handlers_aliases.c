/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handlers for aliases and the promotion policy: put (with compare-and-swap
 * and admin-only force), delete, promote, rollback, the canary's set /
 * percent / promote / abort, and policy get/put. Protected aliases (current,
 * canary) and force need the admin role; gate refusals come back as 409 with
 * the failed gates in the error's details.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"

/* A query parameter `key` as a time; 0 in *out when absent. */
static int time_arg(const struct api_req *q, const char *key, int64_t *out)
{
	const char *s = api_arg(q, key);

	*out = 0;
	if (!s || !s[0])
		return 0;
	if (cm_time_parse(s, out) < 0)
		return cm_err_wrap(-EBADMSG, "query parameter '%s'", key);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The aliases as they were at `at_us`, by name: every alias the model's
 * history names up to then, each resolved by reg_alias_at() (those unset at
 * that time are left out).
 */
static int aliases_at(struct api_req *q, int64_t at_us, json_t *arr)
{
	struct reg_event_filter f = { .kind = "alias.", .until_us = at_us };
	struct reg_model m;
	json_t *ev = NULL, *seen = json_object(), *e;
	const char **names = NULL;
	const char *name;
	size_t i, n = 0;
	int rc = reg_model_get(q->st, q->model, &m);

	if (rc == 0 && !seen)
		rc = cm_err_set(-ENOMEM, "out of memory");
	if (rc == 0)
		rc = reg_event_list(q->st, q->model, &f, &ev);
	json_array_foreach(ev, i, e) {
		name = json_string_value(json_object_get(e, "alias"));
		if (rc == 0 && name && json_object_set_new(seen, name, json_true()))
			rc = cm_err_set(-ENOMEM, "out of memory");
	}
	if (rc == 0 && json_object_size(seen)) {
		names = calloc(json_object_size(seen), sizeof(*names));
		if (!names)
			rc = cm_err_set(-ENOMEM, "out of memory");
	}
	if (names) {
		json_object_foreach(seen, name, e)
			names[n++] = name;
		qsort(names, n, sizeof(*names), name_cmp);
	}
	for (i = 0; rc == 0 && i < n; i++) {
		struct reg_alias a;

		rc = reg_alias_at(q->st, q->model, names[i], at_us, &a);
		if (rc == 0)
			json_array_append_new(arr, api_alias_view(q->model, &a));
		else if (rc == -ENOENT)
			rc = 0;
	}
	free(names);
	json_decref(ev);
	json_decref(seen);
	return rc;
}

int api_h_aliases_list(struct api_req *q, struct api_resp *r)
{
	struct reg_alias *a = NULL;
	size_t n = 0;
	int64_t at_us;
	json_t *arr, *out;
	int rc = time_arg(q, "at", &at_us);

	if (rc < 0)
		return rc;
	arr = json_array();
	if (!arr)
		return cm_err_set(-ENOMEM, "out of memory");
	if (at_us) {
		rc = aliases_at(q, at_us, arr);
		if (rc < 0) {
			json_decref(arr);
			return rc;
		}
		out = json_pack("{s:s s:o s:o}", "model", q->model, "aliases", arr, "at",
				api_time(at_us));
		return api_resp_json(r, 200, out);
	}
	rc = reg_alias_list(q->st, q->model, &a, &n);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_alias_view(q->model, &a[i]));
	free(a);
	return api_resp_json(r, 200, json_pack("{s:s s:o}", "model", q->model, "aliases", arr));
}

int api_h_alias_get(struct api_req *q, struct api_resp *r)
{
	struct reg_alias a;
	int64_t at_us;
	json_t *view;
	int rc = time_arg(q, "at", &at_us);

	if (rc < 0)
		return rc;
	if (at_us) {
		rc = reg_alias_at(q->st, q->model, q->alias, at_us, &a);
	} else {
		rc = reg_alias_get(q->st, q->model, q->alias, &a);
	}
	if (rc < 0)
		return rc;
	view = api_alias_view(q->model, &a);
	if (view && at_us)
		json_object_set_new(view, "at", api_time(at_us));
	return api_resp_json(r, 200, view);
}

/* The body fields every alias change shares, and their translation. */
#define CHANGE_FIELDS \
	{ "expected_version", API_F_STRING_OR_NULL, 0 }, { "force", API_F_BOOL, 0 }, \
		{ "reason", API_F_STRING, 0 }

/*
 * Fills opts from the body (who may change the alias, and force, is the
 * registry's decision). `failed` collects failed gates.
 */
static int change_opts(const struct api_req *q, const char *alias, struct reg_alias_opts *o,
		       json_t *failed)
{
	json_t *exp = q->body ? json_object_get(q->body, "expected_version") : NULL;
	long long percent = api_body_int(q, "percent", -1);

	/* Checked before narrowing: 4294967306 is not 10. */
	if (api_body_has(q, "percent") && (percent < 0 || percent > 100))
		return cm_err_set(-EINVAL, "traffic percent must be between 0 and 100");
	o->percent = (int)percent;
	o->expected = !exp ? NULL : json_is_null(exp) ? "" : json_string_value(exp);
	o->force = api_body_bool(q, "force");
	o->reason = api_body_str(q, "reason");
	o->failed_gates = failed;
	(void)alias;
	return 0;
}

/* Turns a refusal's gates into the error details. */
static int refused(struct api_resp *r, int rc, json_t *failed)
{
	if (rc == -EPERM)
		r->details = json_pack("{s:O}", "failed_gates", failed);
	json_decref(failed);
	return rc;
}

/* Sets `alias` to `version` with the body's options; renders the alias. */
static int alias_change(struct api_req *q, struct api_resp *r, const char *alias,
			const char *version)
{
	struct reg_alias_opts o = { .percent = -1 };
	json_t *failed = json_array();
	struct reg_alias a;
	int rc;

	if (!failed)
		return cm_err_set(-ENOMEM, "out of memory");
	rc = change_opts(q, alias, &o, failed);
	if (rc == 0)
		rc = reg_alias_set(q->st, &q->who, q->model, alias, version, &o, &a);
	if (rc < 0)
		return refused(r, rc, failed);
	json_decref(failed);
	return api_resp_json(r, 200, api_alias_view(q->model, &a));
}

static const struct api_field alias_put_fields[] = {
	{ "version", API_F_STRING, 1 }, { "percent", API_F_INT, 0 }, CHANGE_FIELDS,
};

int api_h_alias_put(struct api_req *q, struct api_resp *r)
{
	int rc = api_body_check(q, alias_put_fields, sizeof(alias_put_fields) / sizeof(alias_put_fields[0]));

	if (rc < 0)
		return rc;
	return alias_change(q, r, q->alias, api_body_str(q, "version"));
}

int api_h_alias_delete(struct api_req *q, struct api_resp *r)
{
	const char *expected = api_arg(q, "expected_version");
	int rc = reg_alias_delete(q->st, &q->who, q->model, q->alias, expected);

	if (rc < 0)
		return rc;
	r->status = 204;
	return 0;
}

static const struct api_field promote_fields[] = { { "version", API_F_STRING, 1 }, CHANGE_FIELDS };

int api_h_promote(struct api_req *q, struct api_resp *r)
{
	int rc = api_body_check(q, promote_fields, sizeof(promote_fields) / sizeof(promote_fields[0]));

	if (rc < 0)
		return rc;
	return alias_change(q, r, "current", api_body_str(q, "version"));
}

static const struct api_field rollback_fields[] = { { "alias", API_F_STRING, 0 },
						     { "reason", API_F_STRING, 0 } };

int api_h_rollback(struct api_req *q, struct api_resp *r)
{
	const char *alias;
	struct reg_alias a;
	int rc = api_body_check(q, rollback_fields, 2);

	if (rc < 0)
		return rc;
	alias = api_body_str(q, "alias");
	rc = reg_alias_rollback(q->st, &q->who, q->model, alias ? alias : "current",
				api_body_str(q, "reason"), &a);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, api_alias_view(q->model, &a));
}

static const struct api_field canary_fields[] = {
	{ "version", API_F_STRING, 0 }, { "percent", API_F_INT, 0 }, CHANGE_FIELDS,
};

int api_h_canary_put(struct api_req *q, struct api_resp *r)
{
	const char *version;
	struct reg_alias cur;
	int rc = api_body_check(q, canary_fields, sizeof(canary_fields) / sizeof(canary_fields[0]));

	if (rc < 0)
		return rc;
	version = api_body_str(q, "version");
	if (!version) {
		/* Only the percent changes: one compare-and-swap in the registry. */
		struct reg_alias_opts o = { .percent = -1 };

		if (!api_body_has(q, "percent"))
			return cm_err_set(-EBADMSG, "give 'version', 'percent' or both");
		if (api_body_bool(q, "force"))
			return cm_err_set(-EBADMSG, "a percent change is not gated: 'force' applies "
					  "to a version");
		rc = change_opts(q, "canary", &o, NULL);
		if (rc == 0)
			rc = reg_canary_percent_set(q->st, &q->who, q->model, o.percent, o.expected,
						    &cur);
		if (rc < 0)
			return rc;
		return api_resp_json(r, 200, api_alias_view(q->model, &cur));
	}
	return alias_change(q, r, "canary", version);
}

static const struct api_field canary_promote_fields[] = { CHANGE_FIELDS };

int api_h_canary_promote(struct api_req *q, struct api_resp *r)
{
	struct reg_alias_opts o = { .percent = -1 };
	json_t *failed = json_array();
	struct reg_alias a;
	int rc = api_body_check(q, canary_promote_fields, 3);

	if (rc == 0 && !failed)
		rc = cm_err_set(-ENOMEM, "out of memory");
	if (rc == 0)
		rc = change_opts(q, "current", &o, failed);
	if (rc == 0)
		rc = reg_canary_promote(q->st, &q->who, q->model, &o, &a);
	if (rc < 0)
		return refused(r, rc, failed);
	json_decref(failed);
	return api_resp_json(r, 200, api_alias_view(q->model, &a));
}

int api_h_canary_delete(struct api_req *q, struct api_resp *r)
{
	int rc = reg_alias_delete(q->st, &q->who, q->model, "canary", api_arg(q, "expected_version"));

	if (rc == -ENOENT && !strstr(cm_err_msg(), "no model"))
		rc = cm_err_set(-ENOENT, "model '%s' has no canary", q->model);
	if (rc < 0)
		return rc;
	r->status = 204;
	return 0;
}

int api_h_policy_get(struct api_req *q, struct api_resp *r)
{
	json_t *p = NULL;
	int rc = reg_policy_get(q->st, q->model, &p);

	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, p);
}

int api_h_policy_put(struct api_req *q, struct api_resp *r)
{
	struct reg_policy_opts o = { 0 };
	json_t *changes = NULL, *p = NULL;
	json_t *force, *reason;
	int rc;

	if (!json_is_object(q->body))
		return cm_err_set(-EBADMSG, "the body must be a policy (a JSON object)");
	force = json_object_get(q->body, "force");
	reason = json_object_get(q->body, "reason");
	if ((force && !json_is_boolean(force)) || (reason && !json_is_string(reason)))
		return cm_err_set(-EBADMSG, "'force' must be a boolean and 'reason' a string");
	o.force = json_is_true(force);
	o.reason = json_string_value(reason);
	changes = json_copy(q->body);
	if (!changes)
		return cm_err_set(-ENOMEM, "out of memory");
	json_object_del(changes, "force");
	json_object_del(changes, "reason");
	rc = reg_policy_set(q->st, &q->who, q->model, changes, &o);
	if (rc == 0)
		rc = reg_policy_get(q->st, q->model, &p);
	json_decref(changes);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, p);
}
