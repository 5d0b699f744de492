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
	struct reg_model *m = NULL;
	long long limit;
	size_t n = 0;
	json_t *arr;
	int rc;

	rc = api_arg_int(q, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit);
	if (rc == 0)
		rc = reg_model_list(q->st, cursor && cursor[0] ? cursor : NULL, (size_t)limit + 1, &m,
				    &n);
	if (rc < 0)
		return rc;
	arr = json_array();
	for (size_t i = 0; arr && i < n && i < (size_t)limit; i++)
		json_array_append_new(arr, json_pack("{s:s s:o}", "name", m[i].name, "created_at",
						     api_time(m[i].created_us)));
	rc = api_resp_json(r, 200, json_pack("{s:o* s:o}", "models", arr, "next_cursor",
					     n > (size_t)limit ? json_string(m[limit - 1].name)
							       : json_null()));
	free(m);
	r->cacheable = !cursor && !api_arg(q, "limit");
	return rc;
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
	struct reg_version *v = NULL;
	size_t na = 0, nv = 0;
	json_int_t count[3] = { 0, 0, 0 };
	json_t *aliases = NULL;
	int rc;

	rc = reg_model_get(q->st, q->model, &m);
	if (rc == 0)
		rc = reg_alias_list(q->st, q->model, &a, &na);
	if (rc == 0)
		rc = reg_version_list(q->st, q->model, NULL, &v, &nv);
	if (rc < 0)
		goto done;
	aliases = json_object();
	for (size_t i = 0; aliases && i < na; i++)
		json_object_set_new(aliases, a[i].name, api_alias_view(q->model, &a[i]));
	for (size_t i = 0; i < nv; i++)
		count[v[i].state]++;
	rc = api_resp_json(r, 200,
			   json_pack("{s:s s:o s:o* s:{s:I s:I s:I s:I s:o}}", "name", m.name,
				     "created_at", api_time(m.created_us), "aliases", aliases,
				     "versions", "count", (json_int_t)nv, "draft", count[REG_DRAFT],
				     "sealed", count[REG_SEALED], "archived", count[REG_ARCHIVED],
				     "latest", nv ? json_string(v[nv - 1].name) : json_null()));
	aliases = NULL;
	r->cacheable = 1;
done:
	free(a);
	free(v);
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

/* archived=include|only|exclude; archived versions are hidden unless asked (or state=archived). */
static int archived_arg(const struct api_req *q, int state, enum reg_archived_filter *out)
{
	const char *s = api_arg(q, "archived");

	*out = state == REG_ARCHIVED ? REG_ARCHIVED_INCLUDE : REG_ARCHIVED_HIDE;
	if (!s || !s[0] || !strcmp(s, "exclude"))
		return 0;
	if (!strcmp(s, "include"))
		*out = REG_ARCHIVED_INCLUDE;
	else if (!strcmp(s, "only"))
		*out = REG_ARCHIVED_ONLY;
	else
		return cm_err_set(-EBADMSG, "query parameter 'archived' must be include, only or "
				  "exclude");
	return 0;
}

int api_h_versions_list(struct api_req *q, struct api_resp *r)
{
	struct reg_version_filter f = { .state = -1 };
	struct reg_version *v = NULL;
	long long limit, cursor;
	size_t n = 0;
	json_t *arr;
	int rc;

	rc = state_arg(q, &f.state);
	if (rc == 0)
		rc = archived_arg(q, f.state, &f.archived);
	if (rc == 0)
		rc = api_arg_int(q, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit);
	if (rc == 0)
		rc = api_arg_int(q, "cursor", 0, 0, INT64_MAX, &cursor);
	if (rc < 0)
		return rc;
	f.validation_status = api_arg(q, "validation_status");
	if (f.validation_status && !f.validation_status[0])
		f.validation_status = NULL;
	f.after_seq = cursor;
	f.limit = (size_t)limit + 1;
	rc = reg_version_list(q->st, q->model, &f, &v, &n);
	if (rc < 0)
		return rc;
	arr = json_array();
	for (size_t i = 0; arr && i < n && i < (size_t)limit; i++)
		json_array_append_new(arr, api_version_summary(&v[i]));
	{
		int more = n > (size_t)limit;
		char next[32];

		snprintf(next, sizeof(next), "%lld", more ? (long long)v[limit - 1].seq : 0LL);
		rc = api_resp_json(r, 200, json_pack("{s:s s:o* s:o}", "model", q->model, "versions",
						     arr, "next_cursor",
						     more ? json_string(next) : json_null()));
	}
	free(v);
	return rc;
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
