/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the API's parsers of client input: routes and paths,
 * Range, If-None-Match, digest headers, token files, JSON bodies against a
 * field table, listen addresses. The first byte picks the parser; the rest
 * is its input. Built as a libFuzzer binary by tests/fuzz/run.sh (clang), and
 * linked with replay.c into a normal test that replays the corpus.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct api_field fields[] = {
	{ "name", API_F_STRING, 1 },       { "expected_version", API_F_STRING_OR_NULL, 0 },
	{ "percent", API_F_INT, 0 },       { "value", API_F_NUMBER, 0 },
	{ "force", API_F_BOOL, 0 },        { "metadata", API_F_OBJECT, 0 },
};

static void route(const char *s)
{
	static const unsigned methods[] = { API_GET, API_HEAD, API_POST, API_PUT, API_PATCH,
					    API_DELETE, 1u << 30 };
	char buf[1024];

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		struct api_match m;
		unsigned allow = 0;

		if (api_route_match(s, methods[i], buf, sizeof(buf), &m, &allow) == 0 &&
		    (m.index < 0 || (size_t)m.index >= api_routes_count))
			abort();
	}
}

static void range(const char *s)
{
	static const uint64_t sizes[] = { 0, 1, 100, 1ULL << 40, UINT64_MAX };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t off = 0, len = 0;

		/* A satisfiable range must lie inside the file. */
		if (api_range_parse(s, sizes[i], &off, &len) == 0 &&
		    (len == 0 || off >= sizes[i] || len > sizes[i] - off))
			abort();
	}
}

static void body(const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	struct api_req q = { .body = j };

	if (api_body_check(&q, fields, sizeof(fields) / sizeof(fields[0])) == 0) {
		if (!api_body_str(&q, "name"))
			abort(); /* required and checked as a string */
		(void)api_body_int(&q, "percent", -1);
		(void)api_body_bool(&q, "force");
	}
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[65], host[256], port[16];
	struct api_tokens *t = NULL;
	char *s;

	if (size < 1 || size > 65536)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 7) {
	case 0:
		route(s);
		break;
	case 1:
		range(s);
		break;
	case 2:
		if (api_digest_expected(s, NULL, NULL, out) == 1 && strlen(out) != 64)
			abort();
		api_digest_expected(NULL, s, NULL, out);
		api_digest_expected(NULL, NULL, s, out);
		break;
	case 3:
		api_etag_match(s, "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"");
		break;
	case 4:
		if (api_tokens_parse(s, &t) == 0 && t->n == 0)
			abort();
		api_tokens_free(t);
		break;
	case 5:
		body(s, size - 1);
		break;
	case 6:
		api_listen_split(s, host, sizeof(host), port, sizeof(port));
		break;
	}
	free(s);
	return 0;
}
