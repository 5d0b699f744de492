/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handlers for the end of a version's life: archive, unarchive, delete (a
 * version, a model) and gc. Each is one registry call; the rules (aliased,
 * held open, admin, reason) are the registry's.
 */
#include <errno.h>
#include <string.h>

#include "api_i.h"

static const struct api_field reason_fields[] = { { "reason", API_F_STRING, 0 } };

/* The version's summary as lists show it (aliases, metrics, tags: the search fields). */
static int archive_answer(struct api_req *q, struct api_resp *r, int rc)
{
	json_t *view = NULL;

	if (rc == 0)
		rc = api_version_view(q->st, q->model, q->version, &view, NULL);
	if (rc < 0)
		return rc;
	json_object_del(view, "files");
	json_object_del(view, "metadata");
	json_object_del(view, "model");
	return api_resp_json(r, 200, view);
}

int api_h_version_archive(struct api_req *q, struct api_resp *r)
{
	int rc = api_body_check(q, reason_fields, 1);

	if (rc == 0)
		rc = reg_version_archive(q->st, &q->who, q->model, q->version,
					 api_body_str(q, "reason"));
	return archive_answer(q, r, rc);
}

int api_h_version_unarchive(struct api_req *q, struct api_resp *r)
{
	int rc = api_body_check(q, reason_fields, 1);

	if (rc == 0)
		rc = reg_version_unarchive(q->st, &q->who, q->model, q->version,
					   api_body_str(q, "reason"));
	return archive_answer(q, r, rc);
}

int api_h_version_delete(struct api_req *q, struct api_resp *r)
{
	struct reg_version v;
	json_t *tags = NULL;
	int rc = api_body_check(q, reason_fields, 1);

	/* What is missing is said after what does not exist. */
	if (rc == 0 && !api_body_str(q, "reason")) {
		rc = reg_version_get(q->st, q->model, q->version, &v);
		if (rc == 0)
			rc = cm_err_set(-EBADMSG, "field 'reason' is required: deleting a version is "
					"audited with its reason");
	}
	if (rc == 0)
		rc = reg_version_remove(q->st, &q->who, q->model, q->version,
					api_body_str(q, "reason"), &tags);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, json_pack("{s:s s:s s:b s:o}", "model", q->model, "version",
					       q->version, "deleted", 1, "git_tags", tags));
}

int api_h_model_delete(struct api_req *q, struct api_resp *r)
{
	json_t *res = NULL;
	int rc = api_body_check(q, reason_fields, 1);

	/* Without a reason only a model without versions goes (the first round's rule). */
	if (rc == 0 && !api_body_str(q, "reason")) {
		rc = reg_model_delete(q->st, &q->who, q->model);
		if (rc == -ENOTEMPTY)
			cm_err_set(rc, "model '%s' has versions: deleting it with them needs "
				   "{\"reason\": ...} (admin)", q->model);
		if (rc < 0)
			return rc;
		r->status = 204;
		return 0;
	}
	if (rc == 0)
		rc = reg_model_remove(q->st, &q->who, q->model, api_body_str(q, "reason"), &res);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, res);
}

static const struct api_field gc_fields[] = {
	{ "dry_run", API_F_BOOL, 0 },
	{ "model", API_F_STRING, 0 },
	{ "reason", API_F_STRING, 0 },
};

int api_h_gc(struct api_req *q, struct api_resp *r)
{
	struct reg_gc_opts o = { 0 };
	json_t *res = NULL;
	int rc = api_body_check(q, gc_fields, 3);

	if (rc < 0)
		return rc;
	o.dry_run = api_body_bool(q, "dry_run");
	o.model = api_body_str(q, "model");
	o.reason = api_body_str(q, "reason");
	rc = reg_gc_run(q->st, &q->who, &o, &res);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, res);
}
