/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for what the server checks before any handler runs: the raw
 * request target (api_uri_check), the header list (api_frame_*), and the
 * query string against a route's declared parameters (api_query_arg), with
 * the integer and time parsers the handlers then apply to the values.
 *
 * Input: the first byte picks the part; for framing the rest is a request
 * head (`TARGET\n` then `Name: value` lines, split the way libmicrohttpd
 * splits them: at the first ':', leading blanks of the value dropped); for
 * queries the second byte picks the route and the rest is `a=b&c=d`,
 * %-decoded. Every accepted input is checked again independently: what the
 * checks let through must never be ambiguous.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %XX and '+' decoding in place, as libmicrohttpd does for arguments. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s == '+' ? ' ' : *s;
		}
	}
	*o = '\0';
}

static void framing(char *s)
{
	char *save = NULL, *line, *target = s;
	struct api_frame f = { 0 };
	int ncl = 0, nte = 0, rc;
	char *nl = strchr(s, '\n');

	if (nl)
		*nl = '\0';
	if (api_uri_check(target) == 0) {
		/* Nothing the router could mistake for a separator or an end. */
		size_t pathlen = strcspn(target, "?#");

		for (const char *p = target; (p = strchr(p, '%')) != NULL; p++)
			if ((p[1] == '0' && p[2] == '0') ||
			    ((size_t)(p - target) < pathlen && p[1] == '2' && (p[2] | 0x20) == 'f'))
				abort();
	}
	if (!nl)
		return;
	for (line = strtok_r(nl + 1, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':'), *value;

		if (!colon)
			continue;
		*colon = '\0';
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		if (api_frame_header(&f, line, value) < 0)
			break;
		/* Accepted names are tokens: no blank, no separator. */
		if (strpbrk(line, " \t\"(),/:;<=>?@[\\]{}") || !line[0])
			abort();
		ncl += !strcasecmp(line, "Content-Length");
		nte += !strcasecmp(line, "Transfer-Encoding");
		if (!strcasecmp(line, "Transfer-Encoding") && strcasecmp(value, "chunked"))
			abort();
		if (!strcasecmp(line, "Content-Length") &&
		    (!value[0] || strspn(value, "0123456789") != strlen(value)))
			abort();
	}
	rc = api_frame_end(&f);
	if (rc == 0 && (ncl > 1 || nte > 1 || (ncl && nte)))
		abort();
}

static const char *fake_lookup(void *io, enum api_lookup_kind kind, const char *key)
{
	char **kv = io;

	if (kind != API_ARG)
		return NULL;
	for (size_t i = 0; kv[i]; i += 2)
		if (!strcmp(kv[i], key))
			return kv[i + 1];
	return NULL;
}

static void query(uint8_t pick, char *s)
{
	const struct api_route *rt = &api_routes[pick % api_routes_count];
	struct api_query qs = { .rt = rt };
	char *kv[2 * 16 + 1] = { 0 };
	char *save = NULL, *part;
	size_t n = 0;

	for (part = strtok_r(s, "&", &save); part && n < 32; part = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(part, '=');

		if (eq)
			*eq = '\0';
		unescape(part);
		if (eq)
			unescape(eq + 1);
		kv[n++] = part;
		kv[n++] = eq ? eq + 1 : (char *)"";
	}
	for (size_t i = 0; i < n; i += 2)
		if (api_query_arg(&qs, kv[i]) < 0)
			return;
	/* Accepted: each name is declared, and none twice. */
	for (size_t i = 0; i < n; i += 2) {
		const char *list = api_route_query(rt), *hit = strstr(list, kv[i]);
		size_t len = strlen(kv[i]);

		while (hit && ((hit != list && hit[-1] != ' ') || (hit[len] && hit[len] != ' ')))
			hit = strstr(hit + 1, kv[i]);
		if (!len || !hit)
			abort();
		for (size_t k = i + 2; k < n; k += 2)
			if (!strcmp(kv[i], kv[k]))
				abort();
	}
	/* The parsers the handlers apply to the values. */
	{
		struct api_req q = { .lookup = fake_lookup, .io = kv };
		long long v;
		int64_t us;

		if (api_arg_int(&q, "limit", 10, 1, 1000, &v) == 0 && (v < 1 || v > 1000))
			abort();
		if (api_arg_int(&q, "cursor", 0, 0, INT64_MAX, &v) == 0 && v < 0)
			abort();
		for (size_t i = 0; i < n; i += 2)
			(void)cm_time_parse(kv[i + 1], &us);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 2 || size > 65536)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 2, size - 2);
	s[size - 2] = '\0';
	if (data[0] % 2 == 0)
		framing(s);
	else
		query(data[1], s);
	free(s);
	return 0;
}
