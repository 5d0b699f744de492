/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests and responses as handlers see them: argument and body checks that
 * turn malformed input into 400s with a message, role checks, and response
 * building. No libmicrohttpd here, so handlers run in unit tests.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api_i.h"

static const struct {
	unsigned bit;
	const char *name;
} methods[] = {
	{ API_GET, "GET" },     { API_HEAD, "HEAD" },     { API_POST, "POST" },
	{ API_PUT, "PUT" },     { API_PATCH, "PATCH" },   { API_DELETE, "DELETE" },
};

unsigned api_method_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(s, methods[i].name))
			return methods[i].bit;
	return 0;
}

const char *api_method_name(unsigned m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (m == methods[i].bit)
			return methods[i].name;
	return "?";
}

static const char *const roles[] = { "none", "reader", "writer", "admin" };

int api_role_parse(const char *s, enum api_role *out)
{
	for (int i = API_ROLE_READER; i <= API_ROLE_ADMIN; i++) {
		if (!strcmp(s, roles[i])) {
			*out = (enum api_role)i;
			return 0;
		}
	}
	return cm_err_set(-EINVAL, "role '%s' is not reader, writer or admin", s);
}

const char *api_role_name(enum api_role r)
{
	return r <= API_ROLE_ADMIN ? roles[r] : "?";
}

void api_resp_init(struct api_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

void api_resp_clear(struct api_resp *r)
{
	json_decref(r->json);
	json_decref(r->details);
	free(r->text);
	if (r->fd >= 0)
		close(r->fd);
	for (int i = 0; i < r->nhdr; i++)
		free(r->hdr[i].value);
	api_resp_init(r);
}

int api_resp_json(struct api_resp *r, int status, json_t *body)
{
	if (!body)
		return cm_err_set(-ENOMEM, "out of memory building a response");
	json_decref(r->json);
	r->json = body;
	r->status = status;
	return 0;
}

void api_resp_header(struct api_resp *r, const char *name, const char *fmt, ...)
{
	char *v = NULL;
	va_list ap;
	int n;

	if (r->nhdr >= API_HDR_MAX)
		return;
	va_start(ap, fmt);
	n = vasprintf(&v, fmt, ap);
	va_end(ap);
	if (n < 0)
		return; /* out of memory: the header is left out */
	r->hdr[r->nhdr].name = name;
	r->hdr[r->nhdr].value = v;
	r->nhdr++;
}

void api_resp_error(struct api_resp *r, int rc)
{
	json_t *details = r->details;

	r->details = NULL;
	json_decref(r->json);
	r->json = NULL;
	free(r->text);
	r->text = NULL;
	r->ctext = NULL;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->cacheable = 0;
	r->status = api_error_status(rc)->status;
	r->json = api_error_body(rc, cm_err_msg(), details);
}

const char *api_arg(const struct api_req *q, const char *key)
{
	return q->lookup ? q->lookup(q->io, API_ARG, key) : NULL;
}

const char *api_header(const struct api_req *q, const char *key)
{
	return q->lookup ? q->lookup(q->io, API_HEADER, key) : NULL;
}

int api_arg_int(const struct api_req *q, const char *key, long long def, long long min,
		long long max, long long *out)
{
	const char *s = api_arg(q, key);
	char *end = NULL;
	long long v;

	if (!s || !s[0]) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return cm_err_set(-EBADMSG, "query parameter '%s' must be an integer from %lld to "
				  "%lld (got '%.64s')", key, min, max, s);
	*out = v;
	return 0;
}

int api_role_require(const struct api_req *q, enum api_role need, const char *why)
{
	if (q->role >= need)
		return 0;
	return cm_err_set(-EACCES, "%s needs the %s role; token '%s' is %s", why,
			  api_role_name(need), q->who.name ? q->who.name : "-", api_role_name(q->role));
}

static const char *const type_names[] = {
	[API_F_STRING] = "a string",  [API_F_STRING_OR_NULL] = "a string or null",
	[API_F_INT] = "an integer",   [API_F_NUMBER] = "a number",
	[API_F_BOOL] = "a boolean",   [API_F_OBJECT] = "an object",
};

static int type_ok(json_t *v, enum api_ftype t)
{
	switch (t) {
	case API_F_STRING:
		return json_is_string(v);
	case API_F_STRING_OR_NULL:
		return json_is_string(v) || json_is_null(v);
	case API_F_INT:
		return json_is_integer(v);
	case API_F_NUMBER:
		return json_is_number(v);
	case API_F_BOOL:
		return json_is_boolean(v);
	case API_F_OBJECT:
		return json_is_object(v);
	}
	return 0;
}

int api_body_check(const struct api_req *q, const struct api_field *f, size_t n)
{
	const char *key;
	json_t *v;

	if (q->body && !json_is_object(q->body))
		return cm_err_set(-EBADMSG, "the request body must be a JSON object");
	for (size_t i = 0; i < n; i++) {
		v = q->body ? json_object_get(q->body, f[i].name) : NULL;
		if (!v) {
			if (f[i].required)
				return cm_err_set(-EBADMSG, "field '%s' is required", f[i].name);
			continue;
		}
		if (!type_ok(v, f[i].type))
			return cm_err_set(-EBADMSG, "field '%s' must be %s", f[i].name,
					  type_names[f[i].type]);
	}
	if (q->body) {
		json_object_foreach(q->body, key, v) {
			size_t i = 0;

			while (i < n && strcmp(f[i].name, key))
				i++;
			if (i == n)
				return cm_err_set(-EBADMSG, "unknown field '%.64s'", key);
		}
	}
	return 0;
}

const char *api_body_str(const struct api_req *q, const char *name)
{
	return q->body ? json_string_value(json_object_get(q->body, name)) : NULL;
}

long long api_body_int(const struct api_req *q, const char *name, long long def)
{
	json_t *v = q->body ? json_object_get(q->body, name) : NULL;

	return json_is_integer(v) ? json_integer_value(v) : def;
}

int api_body_bool(const struct api_req *q, const char *name)
{
	return q->body && json_is_true(json_object_get(q->body, name));
}

int api_body_has(const struct api_req *q, const char *name)
{
	return q->body && json_object_get(q->body, name) != NULL;
}
