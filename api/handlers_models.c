/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handlers for models, versions and their metadata: list, create, get,
 * merge-patch, seal, verify. Each translates the request, makes its registry
 * call and renders the result; errors go back as -errno with the registry's
 * message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

json_t *api_time(int64_t us)
{
	char ts[CM_TIME_RFC3339_LEN];

	if (!us)
		return json_null();
	cm_time_format(us, ts);
	return json_string(ts);
}

static json_t *str_or_null(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

json_t *api_version_summary(const struct reg_version *v)
{
	return json_pack("{s:s s:s s:b s:I s:o s:o s:o s:o s:o}", "name", v->name, "state",
			 reg_state_name(v->state), "archived", v->state == REG_ARCHIVED, "seq",
			 (json_int_t)v->seq, "created_at",
			 api_time(v->created_us), "sealed_at", api_time(v->sealed_us), "total_size",
			 v->state == REG_DRAFT ? json_null() : json_integer(v->total_size), "digest",
			 str_or_null(v->digest), "validation_status",
			 str_or_null(v->validation_status));
}

json_t *api_alias_view(const char *model, const struct reg_alias *a)
{
	return json_pack("{s:s s:s s:s s:o s:o}", "model", model, "alias", a->name, "version",
			 a->version, "percent", a->percent >= 0 ? json_integer(a->percent) : json_null(),
			 "updated_at", api_time(a->updated_us));
}

int api_version_view(struct reg_store *st, const char *model, const char *version, json_t **out,
		     enum reg_state *state)
{
	struct reg_version v;
	struct reg_file *files = NULL;
	size_t n = 0;
	json_t *meta = NULL, *view = NULL, *fl = NULL, *aliases;
	int64_t total = 0;
	int rc;

	rc = reg_version_get(st, model, version, &v);
	if (rc == 0)
		rc = reg_version_files(st, model, version, &files, &n);
	if (rc == 0)
		rc = reg_version_metadata_get(st, model, version, &meta);
	if (rc < 0)
		goto done;
	fl = json_array();
	for (size_t i = 0; fl && i < n; i++) {
		total += files[i].size;
		json_array_append_new(fl, json_pack("{s:s s:I s:o}", "path", files[i].path, "size",
						    (json_int_t)files[i].size, "sha256",
						    str_or_null(files[i].sha256)));
	}
	view = api_version_summary(&v);
	if (!view || !fl) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (v.state == REG_DRAFT)
		json_object_set_new(view, "total_size", json_integer(total));
	json_object_set_new(view, "model", json_string(model));
	aliases = json_object_get(meta, "deployed_to"); /* derived from the aliases */
	json_object_set_new(view, "aliases", aliases ? json_incref(aliases) : json_array());
	{
		/* The summary's search fields, from the record itself. */
		json_t *pm = json_object_get(meta, "performance_metrics"), *metrics = json_object();
		json_t *tags = json_object_get(meta, "tags"), *x;
		const char *k;

		json_object_foreach(pm, k, x)
			if (json_is_number(x))
				json_object_set(metrics, k, x);
		json_object_set_new(view, "archived", json_boolean(v.state == REG_ARCHIVED));
		json_object_set_new(view, "metrics", metrics);
		x = json_object_get(meta, "git_commit");
		json_object_set_new(view, "git_commit", x ? json_incref(x) : json_null());
		x = json_object_get(meta, "description");
		json_object_set_new(view, "description", x ? json_incref(x) : json_null());
		x = json_object_get(meta, "owner");
		json_object_set_new(view, "owner", x ? json_incref(x) : json_null());
		json_object_set_new(view, "tags", json_is_object(tags) ? json_incref(tags) : json_object());
	}
	json_object_set_new(view, "files", fl);
	fl = NULL;
	json_object_set_new(view, "metadata", meta);
	meta = NULL;
	if (state)
		*state = v.state;
	*out = view;
	view = NULL;
done:
	reg_files_free(files, n);
	json_decref(meta);
	json_decref(fl);
	json_decref(view);
	return rc;
}

int api_h_models_list(struct api_req *q, struct api_resp *r)
{
	const char *cursor = api_arg(q, "cursor");
	json_t *page = NULL;
	long long limit;
	int rc;

	rc = api_arg_int(q, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit);
	if (rc == 0)
		rc = reg_model_overview(q->st, cursor && cursor[0] ? cursor : NULL, (size_t)limit,
					&page);
	if (rc < 0)
		return rc;
	/* Every registry change clears the cache: last_event and latest never go stale. */
	r->cacheable = !cursor && !api_arg(q, "limit");
	return api_resp_json(r, 200, page);
}

static const struct api_field model_create_fields[] = { { "name", API_F_STRING, 1 } };

int api_h_model_create(struct api_req *q, struct api_resp *r)
{
	struct reg_model m;
	int rc;

	rc = api_body_check(q, model_create_fields, 1);
	if (rc == 0)
		rc = reg_model_create(q->st, &q->who, api_body_str(q, "name"), &m);
	if (rc < 0)
		return rc;
	api_resp_header(r, "Location", "/v1/models/%s", m.name);
	return api_resp_json(r, 201, json_pack("{s:s s:o}", "name", m.name, "created_at",
					       api_time(m.created_us)));
}

int api_h_model_get(struct api_req *q, struct api_resp *r)
{
	struct reg_model m;
	struct reg_alias *a = NULL;
	size_t na = 0;
	int64_t count[3] = { 0, 0, 0 };
	char latest[REG_NAME_MAX] = "";
	json_t *aliases = NULL, *about = NULL;
	int rc;

	rc = reg_model_get(q->st, q->model, &m);
	if (rc == 0)
		rc = reg_alias_list(q->st, q->model, &a, &na);
	if (rc == 0)
		rc = reg_version_counts(q->st, q->model, count, latest);
	if (rc == 0)
		rc = reg_model_about(q->st, q->model, &about);
	if (rc < 0)
		goto done;
	aliases = json_object();
	for (size_t i = 0; aliases && i < na; i++)
		json_object_set_new(aliases, a[i].name, api_alias_view(q->model, &a[i]));
	rc = api_resp_json(r, 200,
			   json_pack("{s:s s:o s:O s:O s:O s:o* s:{s:I s:I s:I s:I s:o}}", "name", m.name,
				     "created_at", api_time(m.created_us), "description",
				     json_object_get(about, "description"), "owner",
				     json_object_get(about, "owner"), "tags",
				     json_object_get(about, "tags"), "aliases", aliases,
				     "versions", "count",
				     (json_int_t)(count[REG_DRAFT] + count[REG_SEALED] +
						  count[REG_ARCHIVED]),
				     "draft", (json_int_t)count[REG_DRAFT], "sealed",
				     (json_int_t)count[REG_SEALED], "archived",
				     (json_int_t)count[REG_ARCHIVED], "latest",
				     latest[0] ? json_string(latest) : json_null()));
	aliases = NULL;
	r->cacheable = 1;
done:
	json_decref(about);
	free(a);
	return rc;
}

/* state=draft|sealed|archived, or absent. */
static int state_arg(const struct api_req *q, int *out)
{
	static const enum reg_state states[] = { REG_DRAFT, REG_SEALED, REG_ARCHIVED };
	const char *s = api_arg(q, "state");

	*out = -1;
	if (!s || !s[0])
		return 0;
	for (size_t i = 0; i < 3; i++) {
		if (!strcmp(s, reg_state_name(states[i]))) {
			*out = (int)states[i];
			return 0;
		}
	}
	return cm_err_set(-EBADMSG, "query parameter 'state' must be draft, sealed or archived");
}

/* archived=include|only, or absent (hidden). */
static int api_archived_arg(const struct api_req *q, enum reg_archived_filter *out)
{
	const char *a = api_arg(q, "archived");

	*out = REG_ARCHIVED_HIDE;
	if (!a || !a[0] || !strcmp(a, "exclude"))
		return 0;
	if (!strcmp(a, "include"))
		*out = REG_ARCHIVED_INCLUDE;
	else if (!strcmp(a, "only"))
		*out = REG_ARCHIVED_ONLY;
	else
		return cm_err_set(-EBADMSG, "query parameter 'archived' must be include, only or "
				  "exclude");
	return 0;
}

static const char *nonempty(const char *s)
{
	return s && s[0] ? s : NULL;
}

/* GET .../versions (model, !cross) and GET /v1/search (cross). */
static int search_run(struct api_req *q, struct api_resp *r, const char *model, int cross)
{
	struct reg_search f = { 0 };
	json_t *page = NULL;
	long long limit;
	int state;
	int rc;

	rc = state_arg(q, &state);
	if (rc == 0)
		rc = api_archived_arg(q, &f.archived);
	if (rc == 0)
		rc = api_arg_int(q, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit);
	if (rc < 0)
		return rc;
	f.model = model;
	f.cross = cross;
	f.state = state >= 0 ? reg_state_name((enum reg_state)state) : NULL;
	f.validation_status = nonempty(api_arg(q, "validation_status"));
	f.filter = nonempty(api_arg(q, "filter"));
	f.sort = nonempty(api_arg(q, "sort"));
	f.cursor = nonempty(api_arg(q, "cursor"));
	f.limit = (size_t)limit;
	rc = reg_version_search(q->st, &f, &page);
	/* A filter, sort or cursor the registry cannot read is the request's fault. */
	if (rc == -EINVAL || rc == -E2BIG)
		return cm_err_set(-EBADMSG, "%s", cm_err_msg());
	if (rc < 0)
		return rc;
	if (!cross)
		json_object_set_new(page, "model", json_string(model));
	return api_resp_json(r, 200, page);
}

int api_h_versions_list(struct api_req *q, struct api_resp *r)
{
	return search_run(q, r, q->model, 0);
}

static const struct api_field version_create_fields[] = {
	{ "name", API_F_STRING, 0 },
	{ "metadata", API_F_OBJECT, 0 },
};

int api_h_version_create(struct api_req *q, struct api_resp *r)
{
	struct reg_version v;
	json_t *view = NULL;
	int rc;

	rc = api_body_check(q, version_create_fields, 2);
	if (rc == 0)
		rc = reg_version_create(q->st, &q->who, q->model, api_body_str(q, "name"),
					q->body ? json_object_get(q->body, "metadata") : NULL, &v);
	if (rc == 0)
		rc = api_version_view(q->st, q->model, v.name, &view, NULL);
	if (rc < 0)
		return rc;
	api_resp_header(r, "Location", "/v1/models/%s/versions/%s", q->model, v.name);
	return api_resp_json(r, 201, view);
}

int api_h_version_get(struct api_req *q, struct api_resp *r)
{
	enum reg_state state = REG_DRAFT;
	json_t *view = NULL;
	int rc = api_version_view(q->st, q->model, q->version, &view, &state);

	if (rc < 0)
		return rc;
	/* A draft's files change without registry events (writes through the mount). */
	r->cacheable = state != REG_DRAFT;
	return api_resp_json(r, 200, view);
}

int api_h_metadata_get(struct api_req *q, struct api_resp *r)
{
	json_t *meta = NULL;
	int rc = reg_version_metadata_get(q->st, q->model, q->version, &meta);

	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, meta);
}

int api_h_metadata_patch(struct api_req *q, struct api_resp *r)
{
	json_t *meta = NULL;
	int rc;

	if (!json_is_object(q->body))
		return cm_err_set(-EBADMSG, "the body must be a JSON merge patch (an object)");
	rc = reg_version_metadata_patch(q->st, &q->who, q->model, q->version, q->body);
	if (rc == 0)
		rc = reg_version_metadata_get(q->st, q->model, q->version, &meta);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, meta);
}

static int empty_body(const struct api_req *q)
{
	return api_body_check(q, NULL, 0);
}

int api_h_version_seal(struct api_req *q, struct api_resp *r)
{
	json_t *view = NULL;
	int rc = empty_body(q);

	if (rc == 0)
		rc = reg_version_seal(q->st, &q->who, q->model, q->version, NULL);
	if (rc == 0)
		rc = api_version_view(q->st, q->model, q->version, &view, NULL);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, view);
}

static void verify_cb(void *ctx, const char *model, const char *version, const struct reg_file *f,
		      int ok, int64_t bytes_done)
{
	json_array_append_new(ctx, json_pack("{s:s s:I s:b}", "path", f->path, "size",
					     (json_int_t)f->size, "ok", ok));
}

int api_h_version_verify(struct api_req *q, struct api_resp *r)
{
	json_t *files = json_array();
	int rc = empty_body(q);

	if (rc == 0 && !files)
		rc = cm_err_set(-ENOMEM, "out of memory");
	if (rc == 0)
		rc = reg_version_verify(q->st, q->model, q->version, verify_cb, files);
	if (rc < 0) {
		json_decref(files);
		return rc;
	}
	return api_resp_json(r, 200, json_pack("{s:s s:s s:b s:i s:o}", "model", q->model,
					       "version", q->version, "ok", rc == 0, "mismatches", rc,
					       "files", files));
}

int api_h_search(struct api_req *q, struct api_resp *r)
{
	const char *model = nonempty(api_arg(q, "model"));

	if (model && reg_name_model_check(model) < 0)
		return cm_err_set(-EBADMSG, "query parameter 'model': %s", cm_err_msg());
	return search_run(q, r, model, 1);
}

int api_h_model_patch(struct api_req *q, struct api_resp *r)
{
	json_t *about = NULL;
	int rc;

	if (!json_is_object(q->body))
		return cm_err_set(-EBADMSG, "the body must be an object with description, owner or "
				  "tags");
	rc = reg_model_describe(q->st, &q->who, q->model, q->body, &about);
	if (rc == -EINVAL)
		return cm_err_set(-EBADMSG, "%s", cm_err_msg());
	if (rc < 0)
		return rc;
	json_object_set_new(about, "name", json_string(q->model));
	return api_resp_json(r, 200, about);
}
