/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the api unit tests: a request as a handler sees it, with query
 * arguments and headers from small tables, against a fixture store.
 */
#ifndef MODELFS_TEST_APIFX_H
#define MODELFS_TEST_APIFX_H

#include <string.h>
#include <strings.h>

#include "api_i.h"
#include "fixture.h"

#define APIFX_KV_MAX 8

struct apifx_io {
	const char *args[APIFX_KV_MAX][2];
	const char *headers[APIFX_KV_MAX][2];
};

static inline const char *apifx_lookup(void *io, enum api_lookup_kind kind, const char *key)
{
	struct apifx_io *x = io;
	const char *(*t)[2] = kind == API_ARG ? x->args : x->headers;

	for (int i = 0; i < APIFX_KV_MAX && t[i][0]; i++)
		if (kind == API_ARG ? !strcmp(t[i][0], key) : !strcasecmp(t[i][0], key))
			return t[i][1];
	return NULL;
}

/* A request by an admin "tester" on store st; body is JSON text or NULL. */
static inline void apifx_req(struct api_req *q, struct apifx_io *io, struct reg_store *st,
			     const char *body)
{
	memset(q, 0, sizeof(*q));
	memset(io, 0, sizeof(*io));
	q->st = st;
	q->method = API_GET;
	q->role = API_ROLE_ADMIN;
	q->who.channel = "api";
	q->who.name = "tester";
	q->lookup = apifx_lookup;
	q->io = io;
	q->body = body ? json_loads(body, 0, NULL) : NULL;
	if (body && !q->body)
		fail_msg("test body is not JSON: %s", body);
}

static inline void apifx_arg(struct apifx_io *io, const char *k, const char *v)
{
	for (int i = 0; i < APIFX_KV_MAX; i++) {
		if (!io->args[i][0]) {
			io->args[i][0] = k;
			io->args[i][1] = v;
			return;
		}
	}
}

static inline void apifx_header(struct apifx_io *io, const char *k, const char *v)
{
	for (int i = 0; i < APIFX_KV_MAX; i++) {
		if (!io->headers[i][0]) {
			io->headers[i][0] = k;
			io->headers[i][1] = v;
			return;
		}
	}
}

/* Runs a handler; returns its rc, with r filled (errors rendered as the server would). */
static inline int apifx_call(api_handler h, struct api_req *q, struct api_resp *r)
{
	int rc;

	api_resp_init(r);
	cm_err_clear();
	rc = h(q, r);
	if (rc < 0)
		api_resp_error(r, rc);
	json_decref(q->body);
	q->body = NULL;
	return rc;
}

/* A string at a dotted path of the response's JSON, or NULL. */
static inline const char *apifx_str(const struct api_resp *r, const char *a, const char *b)
{
	json_t *v = json_object_get(r->json, a);

	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

static inline const char *apifx_header_value(const struct api_resp *r, const char *name)
{
	for (int i = 0; i < r->nhdr; i++)
		if (!strcmp(r->hdr[i].name, name))
			return r->hdr[i].value;
	return NULL;
}

#endif
