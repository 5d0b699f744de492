/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's plumbing: HTTP calls to the REST API through libcurl with
 * JSON bodies, what an HTTP status means as an exit status, and the text
 * tables the commands print. Nothing here knows a command.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client.h"
#include "reg_json.h"

/* An answer larger than this is not one the API gives: refused, not buffered. */
#define ANSWER_MAX (64 * 1024 * 1024)

struct cli_conn {
	CURL *curl;
	char *base;
	char *auth; /* "Authorization: Bearer …", or NULL */
	long timeout_s;
};

int cli_conn_open(const char *url, const char *token, long timeout_s, struct cli_conn **out)
{
	struct cli_conn *c = NULL;
	size_t n;
	int rc = 0;

	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return cm_err_set(-EINVAL, "--url: '%s' is not an http:// or https:// URL", url);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return cm_err_set(-ENOMEM, "libcurl could not start");
	c = calloc(1, sizeof(*c));
	if (!c || !(c->base = strdup(url)) || !(c->curl = curl_easy_init())) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (token && token[0]) {
		if (strpbrk(token, "\r\n")) {
			rc = cm_err_set(-EINVAL, "the token holds a line break");
			goto done;
		}
		if (asprintf(&c->auth, "Authorization: Bearer %s", token) < 0) {
			c->auth = NULL;
			rc = cm_err_set(-ENOMEM, "out of memory");
			goto done;
		}
	}
	c->timeout_s = timeout_s;
	*out = c;
	c = NULL;
done:
	cli_conn_close(c);
	return rc;
}

void cli_conn_close(struct cli_conn *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->base);
	cm_free(c->auth);
	free(c);
}

void cli_answer_clear(struct cli_answer *a)
{
	json_decref(a->body);
	a->body = NULL;
	a->status = 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct cm_buf *b = ctx;

	if (b->len + n > ANSWER_MAX || cm_buf_append(b, p, n) < 0)
		return 0; /* curl reports a write error */
	return n;
}

int cli_conn_call(struct cli_conn *c, const char *method, const char *path, const json_t *body,
		  struct cli_answer *a)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL, *h;
	struct cm_buf url = { 0 }, resp = { 0 };
	char *payload = NULL;
	json_error_t jerr;
	CURLcode cc;
	long status = 0;
	json_t *parsed = NULL;
	int rc = 0;

	if (cm_buf_printf(&url, "%s%s", c->base, path) < 0) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (body && !(payload = json_dumps(body, JSON_COMPACT))) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	h = curl_slist_append(hdr, "Accept: application/json");
	if (h)
		hdr = h;
	if (h && payload && (h = curl_slist_append(hdr, "Content-Type: application/json")))
		hdr = h;
	if (h && c->auth && (h = curl_slist_append(hdr, c->auth)))
		hdr = h;
	if (!h) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url.data);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "modelfs-client");
	if (payload) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
	}
	cc = curl_easy_perform(c->curl);
	if (cc != CURLE_OK) {
		rc = cm_err_set(cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED,
				"%s %s: %s", method, url.data, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (resp.len > 0) {
		parsed = json_loadb(resp.data, resp.len, JSON_DECODE_ANY, &jerr);
		if (!parsed) {
			rc = cm_err_set(-EPROTO, "%s %s: HTTP %ld with an answer that is not JSON "
					"(is --url the modelfs API?)", method, url.data, status);
			goto done;
		}
	}
	a->status = status;
	a->body = parsed;
	parsed = NULL;
done:
	json_decref(parsed);
	curl_slist_free_all(hdr);
	free(payload);
	cm_buf_free(&url);
	cm_buf_free(&resp);
	return rc;
}

int cli_buf_escape(struct cm_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int rc;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			rc = cm_buf_append(b, s, 1);
		} else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };

			rc = cm_buf_append(b, e, 3);
		}
		if (rc < 0)
			return cm_err_set(rc, "out of memory");
	}
	return 0;
}

/*
 * What an HTTP status means to a script. 409 and 422 are the server's "no"
 * to a well-formed request (a gate, a policy, a compare-and-swap, a value it
 * will not take); 400 and the size statuses mean the request as given
 * cannot be made (a bad time, a policy file too large).
 */
static const struct {
	long status;
	int exit;
} status_exits[] = {
	{ 400, CLI_C_USAGE },    { 401, CLI_C_AUTH },     { 403, CLI_C_AUTH },
	{ 404, CLI_C_NOTFOUND }, { 409, CLI_C_REFUSED },  { 413, CLI_C_USAGE },
	{ 414, CLI_C_USAGE },    { 415, CLI_C_USAGE },    { 422, CLI_C_REFUSED },
	{ 431, CLI_C_USAGE },
};

int cli_status_exit(long status)
{
	if (status >= 200 && status < 300)
		return CLI_C_OK;
	for (size_t i = 0; i < sizeof(status_exits) / sizeof(status_exits[0]); i++)
		if (status_exits[i].status == status)
			return status_exits[i].exit;
	return CLI_C_SERVER; /* 405, 408, 5xx, anything else */
}

int cli_answer_fail(const struct cli_answer *a, FILE *err)
{
	json_t *e = json_object_get(a->body, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));
	json_t *gates = json_object_get(json_object_get(e, "details"), "failed_gates");
	char buf[2048];
	size_t i;
	json_t *g;

	fprintf(err, "modelfs: %s (HTTP %ld%s%s)\n",
		cli_esc(buf, sizeof(buf), msg ? msg : "the server gave no message"), a->status,
		code ? " " : "", code ? cli_esc(buf + 1024, 1024, code) : "");
	json_array_foreach(gates, i, g) {
		char *t = cli_json_text(g);

		fprintf(err, "  failed gate: %s\n", cli_esc(buf, sizeof(buf), t ? t : "?"));
		free(t);
	}
	return cli_status_exit(a->status);
}

char *cli_esc(char *out, size_t cap, const char *s)
{
	cm_esc(out, cap, s ? s : "");
	return out;
}

int cli_table_init(struct cli_table *t, size_t ncol, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->ncol = ncol;
	return cli_table_add(t, header);
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	char buf[4096];
	char **row;

	if (cm_grow(&t->cells, &t->cap, (t->nrow + 1) * t->ncol, sizeof(*t->cells), 64) < 0)
		return -ENOMEM;
	row = t->cells + t->nrow * t->ncol;
	for (size_t i = 0; i < t->ncol; i++) {
		row[i] = strdup(cli_esc(buf, sizeof(buf), cells[i] ? cells[i] : "-"));
		if (!row[i]) {
			while (i-- > 0)
				free(row[i]);
			return cm_err_set(-ENOMEM, "out of memory");
		}
	}
	t->nrow++;
	return 0;
}

/* Characters, not bytes: cells are valid UTF-8 once escaped. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
	size_t width[16] = { 0 };

	for (size_t r = 0; r < t->nrow; r++)
		for (size_t c = 0; c < t->ncol && c < 16; c++) {
			size_t w = text_width(t->cells[r * t->ncol + c]);

			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrow; r++) {
		for (size_t c = 0; c < t->ncol; c++) {
			const char *cell = t->cells[r * t->ncol + c];

			if (c + 1 == t->ncol) {
				fputs(cell, out);
				break;
			}
			fputs(cell, out);
			for (size_t pad = text_width(cell); c < 16 && pad < width[c] + 2; pad++)
				fputc(' ', out);
		}
		fputc('\n', out);
	}
}

void cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrow * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

char *cli_json_text(const json_t *v)
{
	if (!v || json_is_null(v))
		return strdup("-");
	if (json_is_string(v))
		return strdup(json_string_value(v));
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | reg_json_real_flags(v));
}
