/* SPDX-License-Identifier: Apache-2.0 */
/* Listen addresses, Range, If-None-Match, digest headers, label escaping (api/http.c). */
#include <errno.h>
#include <string.h>

#include "apifx.h"

static void listen_split(void **state)
{
	char h[64], p[16];

	assert_int_equal(api_listen_split("127.0.0.1:8080", h, sizeof(h), p, sizeof(p)), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_string_equal(p, "8080");
	assert_int_equal(api_listen_split("[::1]:0", h, sizeof(h), p, sizeof(p)), 0);
	assert_string_equal(h, "::1");
	assert_string_equal(p, "0");
	assert_int_equal(api_listen_split(":9000", h, sizeof(h), p, sizeof(p)), 0);
	assert_string_equal(h, "");
	assert_int_equal(api_listen_split("localhost:1", h, sizeof(h), p, sizeof(p)), 0);
	assert_int_equal(api_listen_split("127.0.0.1", h, sizeof(h), p, sizeof(p)), -EINVAL);
	assert_int_equal(api_listen_split("127.0.0.1:", h, sizeof(h), p, sizeof(p)), -EINVAL);
	assert_int_equal(api_listen_split("127.0.0.1:http", h, sizeof(h), p, sizeof(p)), -EINVAL);
	assert_int_equal(api_listen_split("127.0.0.1:65536", h, sizeof(h), p, sizeof(p)), -EINVAL);
	assert_int_equal(api_listen_split("::1:80", h, sizeof(h), p, sizeof(p)), -EINVAL);
	assert_int_equal(api_listen_split("[::1]80", h, sizeof(h), p, sizeof(p)), -EINVAL);
	assert_int_equal(api_listen_split("", h, sizeof(h), p, sizeof(p)), -EINVAL);
	assert_int_equal(api_listen_split("a-very-long-host-name:1", h, 8, p, sizeof(p)), -EINVAL);
}

static void range(void **state)
{
	static const struct {
		const char *h;
		uint64_t size;
		int rc;
		uint64_t off, len;
	} cases[] = {
		{ "bytes=0-9", 100, 0, 0, 10 },      { "bytes=90-", 100, 0, 90, 10 },
		{ "bytes=90-500", 100, 0, 90, 10 },  { "bytes=-10", 100, 0, 90, 10 },
		{ "bytes=-500", 100, 0, 0, 100 },    { "bytes=99-99", 100, 0, 99, 1 },
		{ "Bytes= 5-6 ", 100, 0, 5, 2 },     { "bytes=100-", 100, -ERANGE, 0, 0 },
		{ "bytes=-0", 100, -ERANGE, 0, 0 },  { "bytes=0-0", 0, -ERANGE, 0, 0 },
		{ "bytes=-5", 0, -ERANGE, 0, 0 },    { "bytes=5-1", 100, 1, 0, 0 },
		{ "bytes=0-1,5-6", 100, 1, 0, 0 },   { "items=0-1", 100, 1, 0, 0 },
		{ "bytes=-", 100, 1, 0, 0 },         { "bytes=a-b", 100, 1, 0, 0 },
		{ "bytes=1-2x", 100, 1, 0, 0 },      { "bytes=99999999999999999999-", 100, 1, 0, 0 },
		{ NULL, 100, 1, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t off = 0, len = 0;
		int rc = api_range_parse(cases[i].h, cases[i].size, &off, &len);

		if (rc != cases[i].rc)
			fail_msg("'%s' size %llu: rc %d, want %d", cases[i].h ? cases[i].h : "(null)",
				 (unsigned long long)cases[i].size, rc, cases[i].rc);
		if (rc == 0 && (off != cases[i].off || len != cases[i].len))
			fail_msg("'%s': %llu+%llu", cases[i].h, (unsigned long long)off,
				 (unsigned long long)len);
	}
}

static void etag(void **state)
{
	const char *e = "\"abc\"";

	assert_true(api_etag_match("\"abc\"", e));
	assert_true(api_etag_match("W/\"abc\"", e));
	assert_true(api_etag_match("\"x\", \"abc\"", e));
	assert_true(api_etag_match("*", e));
	assert_false(api_etag_match("\"abcd\"", e));
	assert_false(api_etag_match("abc", e));
	assert_false(api_etag_match(NULL, e));
	assert_false(api_etag_match("\"abc\"", ""));
}

static void digests(void **state)
{
	/* SHA-256 of "abc". */
	const char *hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	const char *b64 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
	char out[65], h[128];

	assert_int_equal(api_digest_expected(NULL, NULL, NULL, out), 0);
	assert_int_equal(api_digest_expected(NULL, NULL, hex, out), 1);
	assert_string_equal(out, hex);
	assert_int_equal(api_digest_expected(NULL, NULL, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", out), 1);
	assert_string_equal(out, hex);
	snprintf(h, sizeof(h), "md5=xyz, SHA-256=%s", b64);
	assert_int_equal(api_digest_expected(h, NULL, NULL, out), 1);
	assert_string_equal(out, hex);
	snprintf(h, sizeof(h), "sha-256=:%s:", b64);
	assert_int_equal(api_digest_expected(NULL, h, NULL, out), 1);
	assert_string_equal(out, hex);
	assert_int_equal(api_digest_expected(NULL, NULL, "abc", out), -EBADMSG);
	assert_int_equal(api_digest_expected("md5=xyz", NULL, NULL, out), -EBADMSG);
	assert_int_equal(api_digest_expected("sha-256=notbase64", NULL, NULL, out), -EBADMSG);
	assert_int_equal(api_digest_expected(NULL, "sha-256=abc", NULL, out), -EBADMSG);
	/* 33 bytes of base64-decoded data is not a SHA-256. */
	assert_int_equal(api_digest_expected("sha-256=ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0A", NULL,
					     NULL, out), -EBADMSG);
}

static void labels(void **state)
{
	struct cm_buf b = { 0 };

	assert_int_equal(api_prom_label(&b, "a\"b\\c\nd"), 0);
	assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
	cm_buf_free(&b);
}

static void uri_check(void **state)
{
	static const struct {
		const char *uri;
		int rc;
		const char *msg;
	} cases[] = {
		{ "/v1/models/m1", 0, NULL },
		{ "/v1/models/m1/history?kind=alias%2Fset", 0, NULL },
		{ "/v1/models/a%20b", 0, NULL },
		{ "/v1/models/m1%2Fpromote", -EBADMSG, "encoded '/'" },
		{ "/v1/models/m1%2fpromote", -EBADMSG, "encoded '/'" },
		{ "/v1/models/m%00x", -EBADMSG, "NUL" },
		{ "/v1/models/m/versions/v1/files/model.pkl%00.txt", -EBADMSG, "NUL" },
		{ "/v1/models/m/history?kind=a%00b", -EBADMSG, "NUL" },
		{ "/v1/models/m\x01", -EBADMSG, "control" },
		{ "/v1/%", 0, NULL },
		{ "/v1/%2", 0, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cm_err_clear();
		assert_int_equal(api_uri_check(cases[i].uri), cases[i].rc);
		if (cases[i].msg)
			assert_non_null(strstr(cm_err_msg(), cases[i].msg));
	}
}

/* Header lists as the parser kept them; NULL name ends a request. */
static void frame(void **state)
{
	static const struct {
		const char *h[8];
		int rc;
		const char *msg;
	} cases[] = {
		{ { "Host", "x", "Content-Length", "12", NULL }, 0, NULL },
		{ { "Host", "x", "Transfer-Encoding", "chunked", NULL }, 0, NULL },
		{ { "Host", "x", "transfer-encoding", "Chunked", NULL }, 0, NULL },
		{ { "Content-Length", "0", "Content-Length", "33", NULL }, -EBADMSG, "more than one" },
		{ { "Content-Length", "5", "content-length", "5", NULL }, -EBADMSG, "more than one" },
		{ { "Content-Length", "+5", NULL }, -EBADMSG, "not a decimal" },
		{ { "Content-Length", "5, 5", NULL }, -EBADMSG, "not a decimal" },
		{ { "Content-Length", "", NULL }, -EBADMSG, "not a decimal" },
		{ { "Content-Length", "99999999999999999999", NULL }, -EBADMSG, "not a decimal" },
		{ { "Transfer-Encoding ", "chunked", NULL }, -EBADMSG, "whitespace" },
		{ { "X-Foo\t", "1", NULL }, -EBADMSG, "whitespace" },
		{ { "X(Foo)", "1", NULL }, -EBADMSG, "not allowed" },
		{ { "", "1", NULL }, -EBADMSG, "empty name" },
		{ { "Transfer-Encoding", "chunked, identity", NULL }, -EBADMSG, "not supported" },
		{ { "Transfer-Encoding", "gzip", NULL }, -EBADMSG, "not supported" },
		{ { "Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", NULL }, -EBADMSG,
		  "more than one" },
		{ { "Content-Length", "3", "Transfer-Encoding", "chunked", NULL }, -EBADMSG,
		  "both" },
		{ { "Host", "a", "Host", "b", NULL }, -EBADMSG, "Host" },
		/* A folded line, as libmicrohttpd 0.9.75 hands it over. */
		{ { "Content-Length42", "0", NULL }, -EBADMSG, "folded" },
		{ { "transfer-encodingchunked", "", NULL }, -EBADMSG, "folded" },
		{ { "Content-Type", "text/plain", "Content-MD5", "x", NULL }, 0, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_frame f = { 0 };

		cm_err_clear();
		for (size_t k = 0; cases[i].h[k]; k += 2)
			api_frame_header(&f, cases[i].h[k], cases[i].h[k + 1]);
		assert_int_equal(api_frame_end(&f), cases[i].rc);
		if (cases[i].msg)
			assert_non_null(strstr(cm_err_msg(), cases[i].msg));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(listen_split),
		cmocka_unit_test(range),
		cmocka_unit_test(etag),
		cmocka_unit_test(digests),
		cmocka_unit_test(labels),
		cmocka_unit_test(uri_check),
		cmocka_unit_test(frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
