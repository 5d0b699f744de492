/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox over HTTP: GET /v1/outbox (delivery state per subscriber, and
 * the git-tag queue's counts) and the webhook subscriptions (/v1/webhooks).
 * A subscription's secret is taken, never answered. And the retraining
 * triggers whose firings the outbox delivers (/v1/models/{model}/triggers).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"
#include "reg.h"

/* A {id} path parameter: a positive decimal; -ENOENT otherwise (no such subscription). */
static int id_parse(const char *s, int64_t *out)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = s ? strtoll(s, &end, 10) : 0;
	if (!s || !s[0] || *end || errno || v <= 0)
		return cm_err_set(-ENOENT, "no webhook '%.32s'", s ? s : "");
	*out = v;
	return 0;
}

static int state_check(const char *state)
{
	if (state && strcmp(state, "pending") && strcmp(state, "done") && strcmp(state, "dropped"))
		return cm_err_set(-EBADMSG, "query parameter 'state' must be pending, done or "
				  "dropped");
	return 0;
}

int api_h_outbox_get(struct api_req *q, struct api_resp *r)
{
	const char *state = api_arg(q, "state"), *sub = api_arg(q, "subscriber");
	struct reg_git_status g;
	json_t *out = NULL;
	long long limit;
	int64_t id = 0;
	int rc;

	if (state && !state[0])
		state = NULL;
	rc = state_check(state);
	if (rc == 0)
		rc = api_arg_int(q, "limit", 0, 0, 1000, &limit);
	if (rc == 0 && sub && sub[0]) {
		rc = id_parse(sub, &id);
		if (rc < 0)
			rc = cm_err_set(-EBADMSG, "query parameter 'subscriber' must be a "
					"subscriber id");
	}
	if (rc == 0)
		rc = reg_outbox_state(q->st, id, state, (size_t)limit, &out);
	if (rc == 0)
		rc = reg_git_status(q->st, &g);
	if (rc < 0) {
		json_decref(out);
		return rc;
	}
	/* The git-tag queue keeps its own table; its counts sit beside the subscribers. */
	json_object_set_new(out, "git_tags",
			    json_pack("{s:b s:I s:I s:I s:I s:o}", "configured", g.configured,
				      "pending", (json_int_t)g.pending, "pushing",
				      (json_int_t)g.pushing, "failed", (json_int_t)g.failed, "done",
				      (json_int_t)g.done, "last_error",
				      g.last_error[0] ? json_string(g.last_error) : json_null()));
	return api_resp_json(r, 200, out);
}

/* The outbox's subscriber as a webhook: "url" for "target", no adapter. */
static json_t *webhook_json(json_t *sub)
{
	json_object_set(sub, "url", json_object_get(sub, "target"));
	json_object_del(sub, "target");
	json_object_del(sub, "adapter");
	return sub;
}

int api_h_webhooks_list(struct api_req *q, struct api_resp *r)
{
	json_t *st = NULL, *out = json_array(), *sub;
	size_t i;
	int rc = reg_outbox_state(q->st, 0, NULL, 0, &st);

	if (rc < 0) {
		json_decref(out);
		return rc;
	}
	json_array_foreach(json_object_get(st, "subscribers"), i, sub) {
		if (!strcmp(json_string_value(json_object_get(sub, "adapter")), "webhook"))
			json_array_append_new(out, webhook_json(json_incref(sub)));
	}
	json_decref(st);
	return api_resp_json(r, 200, json_pack("{s:o}", "webhooks", out));
}

int api_h_webhook_create(struct api_req *q, struct api_resp *r)
{
	static const char *const known[] = { "url", "events", "models", "secret" };
	json_t *sub = NULL, *v;
	const char *key;
	int rc;

	if (!json_is_object(q->body))
		return cm_err_set(-EBADMSG, "the request body must be a JSON object "
				  "{\"url\", \"events\", \"models\"?, \"secret\"}");
	json_object_foreach(q->body, key, v) {
		size_t i;

		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(key, known[i]))
				break;
		if (i == sizeof(known) / sizeof(known[0]))
			return cm_err_set(-EBADMSG, "unknown field '%.64s'", key);
	}
	if (!json_is_string(json_object_get(q->body, "url")))
		return cm_err_set(-EBADMSG, "field 'url' is required (a string)");
	if (!json_is_string(json_object_get(q->body, "secret")))
		return cm_err_set(-EBADMSG, "field 'secret' is required (a string)");
	if (!json_is_array(json_object_get(q->body, "events")))
		return cm_err_set(-EBADMSG, "field 'events' is required (an array of event kinds)");
	v = json_object_get(q->body, "models");
	if (v && !json_is_null(v) && !json_is_array(v))
		return cm_err_set(-EBADMSG, "field 'models' must be an array of model names");
	rc = reg_outbox_sub_add(q->st, &q->who, "webhook", api_body_str(q, "url"),
				api_body_str(q, "secret"), json_object_get(q->body, "events"),
				json_is_array(v) ? v : NULL, &sub);
	if (rc < 0)
		return rc;
	api_resp_header(r, "Location", "/v1/webhooks/%lld",
			(long long)json_integer_value(json_object_get(sub, "id")));
	return api_resp_json(r, 201, webhook_json(sub));
}

int api_h_webhook_get(struct api_req *q, struct api_resp *r)
{
	const char *state = api_arg(q, "state");
	json_t *st = NULL, *sub;
	long long limit;
	int64_t id;
	int rc;

	if (state && !state[0])
		state = NULL;
	rc = id_parse(q->id, &id);
	if (rc == 0)
		rc = state_check(state);
	if (rc == 0)
		rc = api_arg_int(q, "limit", 50, 1, 1000, &limit);
	if (rc == 0)
		rc = reg_outbox_state(q->st, id, state, (size_t)limit, &st);
	if (rc < 0)
		return rc;
	sub = json_array_get(json_object_get(st, "subscribers"), 0);
	if (!sub || strcmp(json_string_value(json_object_get(sub, "adapter")), "webhook")) {
		json_decref(st);
		return cm_err_set(-ENOENT, "no webhook %lld", (long long)id);
	}
	json_incref(sub);
	json_decref(st);
	/* The delivery log: newest first. */
	json_object_set(sub, "deliveries", json_object_get(sub, "items"));
	json_object_del(sub, "items");
	return api_resp_json(r, 200, webhook_json(sub));
}

int api_h_webhook_delete(struct api_req *q, struct api_resp *r)
{
	json_t *sub = NULL;
	int64_t id;
	int rc;

	rc = id_parse(q->id, &id);
	if (rc == 0)
		rc = reg_outbox_sub_get(q->st, id, 0, &sub);
	if (rc == 0 && strcmp(json_string_value(json_object_get(sub, "adapter")), "webhook"))
		rc = cm_err_set(-ENOENT, "no webhook %lld", (long long)id);
	json_decref(sub);
	if (rc == 0)
		rc = reg_outbox_sub_delete(q->st, &q->who, id);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, json_pack("{s:I s:b}", "id", (json_int_t)id, "deleted", 1));
}

int api_h_triggers_get(struct api_req *q, struct api_resp *r)
{
	json_t *out = NULL;
	int rc = reg_trigger_get(q->st, q->model, &out);

	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, out);
}

int api_h_triggers_put(struct api_req *q, struct api_resp *r)
{
	json_t *out = NULL;
	int rc;

	if (!json_is_object(q->body))
		return cm_err_set(-EBADMSG, "the request body must be a JSON object of triggers "
				  "(accuracy, drift, schedule)");
	rc = reg_trigger_set(q->st, &q->who, q->model, q->body, &out);
	if (rc < 0)
		return rc;
	return api_resp_json(r, 200, out);
}
