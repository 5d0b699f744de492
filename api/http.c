/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small HTTP parsers with hard limits: listen addresses, Range, If-None-Match,
 * upload digest headers, and Prometheus label escaping. Each returns a clear
 * error for malformed input and never allocates.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_i.h"

int api_listen_split(const char *s, char *host, size_t hn, char *port, size_t pn)
{
	const char *colon, *h = s;
	size_t hl;

	if (!s || !s[0])
		return cm_err_set(-EINVAL, "--listen: empty address");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return cm_err_set(-EINVAL, "--listen: '%s' is not [IPv6]:PORT", s);
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return cm_err_set(-EINVAL, "--listen: '%s' is not HOST:PORT", s);
		hl = (size_t)(colon - s);
	}
	if (hl >= hn || strlen(colon + 1) >= pn)
		return cm_err_set(-EINVAL, "--listen: '%s' is too long", s);
	if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atol(colon + 1) > 65535)
		return cm_err_set(-EINVAL, "--listen: '%s' needs a port from 0 to 65535", s);
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* Parses an unsigned decimal of at most 19 digits; returns the end or NULL. */
static const char *parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	while (*s >= '0' && *s <= '9') {
		if (++n > 19)
			return NULL;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	if (n == 0)
		return NULL;
	*out = v;
	return s;
}

int api_range_parse(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
	uint64_t a = 0, b = 0;
	const char *p;
	int have_a, have_b;

	if (!h)
		return 1;
	while (*h == ' ')
		h++;
	if (strncasecmp(h, "bytes=", 6))
		return 1; /* other units: ignore, as RFC 9110 allows */
	p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return 1; /* several ranges: answer with the whole file */
	have_a = *p != '-';
	if (have_a && !(p = parse_u64(p, &a)))
		return 1;
	if (*p++ != '-')
		return 1;
	have_b = *p >= '0' && *p <= '9';
	if (have_b && !(p = parse_u64(p, &b)))
		return 1;
	while (*p == ' ')
		p++;
	if (*p || (!have_a && !have_b))
		return 1;
	if (!have_a) { /* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return -ERANGE;
		*len = b < size ? b : size;
		*off = size - *len;
		return 0;
	}
	if (have_b && b < a)
		return 1; /* invalid: ignored */
	if (a >= size)
		return -ERANGE;
	if (!have_b || b >= size)
		b = size - 1;
	*off = a;
	*len = b - a + 1;
	return 0;
}

int api_etag_match(const char *inm, const char *etag)
{
	size_t el;

	if (!inm || !etag || !etag[0])
		return 0;
	el = strlen(etag);
	for (const char *p = inm; *p;) {
		const char *end;
		size_t n;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return 1;
		if (!strncmp(p, "W/", 2))
			p += 2; /* weak comparison, as If-None-Match uses */
		end = p;
		while (*end && *end != ',')
			end++;
		n = (size_t)(end - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == el && !memcmp(p, etag, el))
			return 1;
		p = end;
	}
	return 0;
}

static int hex_of_base64(const char *b64, size_t n, char out[65])
{
	unsigned char raw[64];
	int len;

	/* 32 bytes are 44 base64 characters with one '='. */
	if (n != 44)
		return -1;
	len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len != 33 || b64[43] != '=' || b64[42] == '=')
		return -1;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* Finds "sha-256=<value>" in a comma-separated list; value up to ',' or end. */
static const char *find_sha256(const char *h, size_t *n)
{
	for (const char *p = h; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!strncasecmp(p, "sha-256=", 8)) {
			const char *v = p + 8;

			*n = strcspn(v, ", ");
			return v;
		}
		p = strchr(p, ',');
	}
	return NULL;
}

int api_digest_expected(const char *digest, const char *content_digest, const char *xsum,
			char out[65])
{
	const char *v;
	size_t n = 0;

	if (xsum) {
		while (*xsum == ' ')
			xsum++;
		n = strcspn(xsum, " ");
		if (n != 64 || strspn(xsum, "0123456789abcdefABCDEF") < 64)
			return cm_err_set(-EBADMSG, "X-Checksum-Sha256 must be 64 hex digits");
		for (int i = 0; i < 64; i++)
			out[i] = (char)tolower((unsigned char)xsum[i]);
		out[64] = '\0';
		return 1;
	}
	if (content_digest) {
		v = find_sha256(content_digest, &n);
		if (!v)
			return cm_err_set(-EBADMSG, "Content-Digest has no sha-256 value");
		if (n < 2 || v[0] != ':' || v[n - 1] != ':' || hex_of_base64(v + 1, n - 2, out) < 0)
			return cm_err_set(-EBADMSG, "Content-Digest sha-256 must be :<base64>:");
		return 1;
	}
	if (digest) {
		v = find_sha256(digest, &n);
		if (!v)
			return cm_err_set(-EBADMSG, "Digest has no sha-256 value");
		if (hex_of_base64(v, n, out) < 0)
			return cm_err_set(-EBADMSG, "Digest sha-256 must be base64 of 32 bytes");
		return 1;
	}
	return 0;
}

int api_prom_label(struct cm_buf *b, const char *s)
{
	int rc = 0;

	for (; rc == 0 && *s; s++) {
		if (*s == '\\')
			rc = cm_buf_append(b, "\\\\", 2);
		else if (*s == '"')
			rc = cm_buf_append(b, "\\\"", 2);
		else if (*s == '\n')
			rc = cm_buf_append(b, "\\n", 2);
		else
			rc = cm_buf_append(b, s, 1);
	}
	return rc;
}

/*
 * Request framing. libmicrohttpd 0.9.75 takes the first of two Content-Length
 * headers, ignores a Transfer-Encoding it does not know (and then waits for a
 * body it cannot delimit), keeps a header whose name ends in whitespace, and
 * decodes %2F and %00 before routing. Any of these lets one side of a proxy
 * read a request differently from the other, so they are refused here before
 * any handler runs, and the connection is closed after the 400.
 */

/* RFC 9110 token characters. */
static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

int api_uri_check(const char *raw)
{
	size_t pathlen = strcspn(raw, "?#");

	for (const char *p = raw; (p = strchr(p, '%')) != NULL; p++) {
		int in_path = (size_t)(p - raw) < pathlen;

		if (p[1] == '0' && p[2] == '0')
			return cm_err_set(-EBADMSG, "the request target holds an encoded NUL (%%00)");
		if (in_path && p[1] == '2' && (p[2] == 'F' || p[2] == 'f'))
			return cm_err_set(-EBADMSG, "the request path holds an encoded '/' (%%2F) "
					  "inside a segment");
	}
	for (const unsigned char *p = (const unsigned char *)raw; *p; p++)
		if (*p < 0x21 || *p == 0x7f)
			return cm_err_set(-EBADMSG, "the request target holds a control character");
	return 0;
}

static const char *const framing[] = { "Content-Length", "Transfer-Encoding" };

int api_frame_header(struct api_frame *f, const char *name, const char *value)
{
	const unsigned char *n = (const unsigned char *)name;

	if (f->rc < 0)
		return f->rc;
	if (!n || !n[0])
		return f->rc = cm_err_set(-EBADMSG, "a header has an empty name");
	for (; *n; n++) {
		if (*n == ' ' || *n == '\t')
			return f->rc = cm_err_set(-EBADMSG, "header name '%.64s' holds whitespace "
						  "(before the colon?)", name);
		if (!is_tchar(*n))
			return f->rc = cm_err_set(-EBADMSG, "header name '%.64s' holds a character "
						  "that is not allowed", name);
	}
	/*
	 * libmicrohttpd 0.9.75 appends a folded line (one starting with a blank)
	 * to the previous header's NAME: "Content-Length: 0\r\n 42" arrives as
	 * "Content-Length42: 0", which a proxy that unfolds reads as a length of
	 * 42. No real header starts with a framing header's name.
	 */
	for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (!strncasecmp(name, framing[i], strlen(framing[i])) && name[strlen(framing[i])])
			return f->rc = cm_err_set(-EBADMSG, "header name '%.64s' runs on from %s "
						  "(a folded line?)", name, framing[i]);
	if (!value)
		value = "";
	if (!strcasecmp(name, "Content-Length")) {
		size_t len = strlen(value);

		if (++f->content_length > 1)
			return f->rc = cm_err_set(-EBADMSG, "more than one Content-Length header");
		if (len == 0 || len > 19 || strspn(value, "0123456789") != len)
			return f->rc = cm_err_set(-EBADMSG, "Content-Length '%.32s' is not a decimal "
						  "number", value);
	} else if (!strcasecmp(name, "Transfer-Encoding")) {
		if (++f->transfer_encoding > 1)
			return f->rc = cm_err_set(-EBADMSG, "more than one Transfer-Encoding header");
		if (strcasecmp(value, "chunked"))
			return f->rc = cm_err_set(-EBADMSG, "Transfer-Encoding '%.64s' is not "
						  "supported (only 'chunked')", value);
	} else if (!strcasecmp(name, "Host")) {
		if (++f->host > 1)
			return f->rc = cm_err_set(-EBADMSG, "more than one Host header");
	}
	return 0;
}

int api_frame_end(struct api_frame *f)
{
	if (f->rc < 0)
		return f->rc;
	if (f->content_length && f->transfer_encoding)
		return f->rc = cm_err_set(-EBADMSG, "both Content-Length and Transfer-Encoding");
	return 0;
}
