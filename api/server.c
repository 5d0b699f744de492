/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server: libmicrohttpd on a socket we bind ourselves (so port 0
 * works and the loopback rule can be checked), the life of one request
 * (route, auth, body or upload stream, handler, response), limits, the
 * response cache and request metrics.
 *
 * Threading. libmicrohttpd runs either a thread per connection or a pool of
 * event-loop threads (api_config.threads); handlers run on those threads and
 * call the registry, which is safe from any thread. Per-request state lives
 * in struct conn_req and is touched by one thread at a time. The cache and
 * the metrics have their own locks (see cache.c, metrics.c).
 *
 * Limits. JSON bodies stop at max_body (413; Content-Length is checked before
 * reading); headers and buffers stay inside conn_memory per connection (MHD
 * answers 431 past it); a JSON body not received within request_timeout gets
 * 408; idle connections close after idle_timeout; connections are capped in
 * total and per address. Uploads stream to disk and are capped by max_upload.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_i.h"
#include "reg_json.h"

/*
 * libmicrohttpd 0.9.75 cannot send an answer before the whole body is read:
 * after a failure mid-body the rest is read and dropped, up to this much (or
 * twice the request timeout), and then the connection is closed instead.
 */
#define DISCARD_MAX (64ULL * 1024 * 1024)

/*
 * Warnings a client causes at will (a refused connection, a request cut
 * short, a failed answer): at most ten a second each, the rest counted. 1,500
 * connections over the limit once wrote 70,000 lines in 8 s.
 */
static struct cm_log_limit mhd_warn_limit = CM_LOG_LIMIT_INIT(10, 1000000);
static struct cm_log_limit request_warn_limit = CM_LOG_LIMIT_INIT(10, 1000000);

void api_config_default(struct api_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen = "127.0.0.1:8080";
	c->pvc = "model-storage-pvc";
	c->max_body = 1024 * 1024;
	/*
	 * libmicrohttpd zeroes a connection's whole memory pool between requests:
	 * its size is paid on every request (256 KiB cost half the throughput of
	 * small reads), so it stays at the library's default.
	 */
	c->conn_memory = 32 * 1024;
	c->max_conns = 1024;
	c->idle_timeout = 60;
	c->request_timeout = 30;
	c->threads = 0;
	c->cache_bytes = 16 * 1024 * 1024;
}

int api_config_check(const struct api_config *c)
{
	struct api_tokens *t = NULL;
	char host[256], port[16];
	int rc = api_listen_split(c->listen, host, sizeof(host), port, sizeof(port));

	if (rc == 0 && c->token_file && c->token_file[0]) {
		rc = api_tokens_load(c->token_file, &t);
		api_tokens_free(t);
	}
	return rc;
}

/* One request, from its headers to its completion. */
struct conn_req {
	struct api_server *s;
	struct MHD_Connection *conn;
	int64_t start_us;
	int route;             /* index into api_routes, -1 before/without a match */
	unsigned method;
	const char *url;       /* borrowed from MHD for the request's life */
	struct api_req q;
	struct api_match m;
	struct cm_buf body;
	struct api_upload *up;
	uint64_t gen;          /* cache generation read before the handler ran */
	int begun;             /* begin() ran: the headers are in */
	int uri_rc;            /* api_uri_check() of the raw target, from on_uri */
	int err;               /* a failure found early, answered once the request is read */
	unsigned allow;        /* methods the path allows, for 405 */
	uint64_t discarded;    /* body bytes dropped since */
	char err_msg[CM_ERR_MAX];
	char who_name[API_TOKEN_NAME_MAX]; /* the token's name, copied out of the table */
	int responded;
	int closing;           /* the answer carries Connection: close */
	int status;
	size_t params_len;
	char params[];         /* decoded path parameters: as long as the path, at most */
};

static const char *io_lookup(void *io, enum api_lookup_kind kind, const char *key)
{
	struct conn_req *cr = io;

	return MHD_lookup_connection_value(cr->conn, kind == API_ARG ? MHD_GET_ARGUMENT_KIND
								      : MHD_HEADER_KIND,
					   key);
}

static void allow_header(struct api_resp *r, unsigned methods)
{
	static const unsigned order[] = { API_GET, API_HEAD, API_POST, API_PUT, API_PATCH, API_DELETE };
	char buf[64] = "";

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(methods & order[i]))
			continue;
		if (buf[0])
			strcat(buf, ", ");
		strcat(buf, api_method_name(order[i]));
	}
	api_resp_header(r, "Allow", "%s", buf);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
	return cm_buf_append(data, buf, size) < 0 ? -1 : 0;
}

static void mhd_release(void *val)
{
	MHD_destroy_response(val);
}

/* Builds the libmicrohttpd response for r; takes r's fd and bodies. NULL on failure. */
static struct MHD_Response *response_build(struct api_resp *r, size_t *bytes)
{
	struct MHD_Response *resp = NULL;
	const char *ctype = r->ctype;

	*bytes = 0;
	if (r->fd >= 0) {
		resp = MHD_create_response_from_fd_at_offset64(r->fd_len, r->fd, r->fd_off);
		if (resp)
			r->fd = -1; /* MHD closes it */
	} else if (r->json) {
		struct cm_buf b = { 0 };

		if (json_dump_callback(r->json, dump_cb, &b,
				       JSON_COMPACT | reg_json_real_flags(r->json)) == 0 &&
		    cm_buf_append(&b, "\n", 1) == 0)
			resp = MHD_create_response_from_buffer_with_free_callback(b.len, b.data, free);
		*bytes = b.len;
		if (!resp)
			cm_buf_free(&b);
		ctype = "application/json";
	} else if (r->text) {
		resp = MHD_create_response_from_buffer_with_free_callback(r->text_len, r->text, free);
		if (resp)
			r->text = NULL;
	} else if (r->ctext) {
		resp = MHD_create_response_from_buffer(r->text_len, (void *)(uintptr_t)r->ctext,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
		ctype = NULL;
	}
	if (!resp)
		return NULL;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	for (int i = 0; i < r->nhdr; i++)
		MHD_add_response_header(resp, r->hdr[i].name, r->hdr[i].value);
	return resp;
}

/* The statuses that are a rule saying no (not 401: an unknown caller has no record to read). */
static int is_refusal(int status)
{
	return status == 400 || status == 403 || status == 409 || status == 413 ||
	       status == 414 || status == 415 || status == 422;
}

/*
 * A refused request is recorded in the registry (what GET /v1/refusals and
 * `modelfs why` read) before its answer leaves, so a client that asks why
 * right after finds it.
 */
static void refusal_note(struct conn_req *cr, const struct api_resp *r)
{
	json_t *e = json_object_get(r->json, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	json_t *gates = json_object_get(json_object_get(e, "details"), "failed_gates");
	char op[160];
	struct reg_refusal rf = {
		.model = cr->q.model, .version = cr->q.version, .alias = cr->q.alias,
		.status = r->status, .code = code,
		.message = json_string_value(json_object_get(e, "message")),
		.failed_gates = json_is_array(gates) ? gates : NULL,
	};

	if (!code || !cr->q.st)
		return;
	snprintf(op, sizeof(op), "%s %s", api_method_name(cr->method),
		 cr->route >= 0 ? api_routes[cr->route].pattern : "(no route)");
	rf.op = op;
	rf.err = api_error_errno(code);
	if (!cr->q.who.channel)
		cr->q.who.channel = "api";
	if (!cr->q.who.name) {
		/* Refused before its token was read: recorded as the anonymous caller. */
		cr->q.who.name = api_anonymous;
		cr->q.who.kind = REG_ACTOR_TOKEN;
	}
	cm_log(CM_LOG_INFO, "api", "refused %s %s (%s): %s: %s", op, cr->q.model ? cr->q.model : "-",
	       cr->q.who.name, code, rf.message ? rf.message : "");
	if (reg_refusal_record(cr->q.st, &cr->q.who, &rf) < 0)
		cm_log(CM_LOG_WARN, "api", "recording a refusal: %s", cm_err_msg());
}

/* Queues r on the connection (and keeps it in the cache when it may be). */
static enum MHD_Result respond(struct conn_req *cr, struct api_resp *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t bytes;

	if (cr->responded)
		return MHD_YES;
	if (is_refusal(r->status) && r->json)
		refusal_note(cr, r);
	resp = response_build(r, &bytes);
	if (!resp) {
		api_resp_clear(r);
		api_resp_init(r);
		cm_err_set(-ENOMEM, "out of memory building a response");
		api_resp_error(r, -ENOMEM);
		resp = response_build(r, &bytes);
		if (!resp)
			return MHD_NO;
	}
	cr->responded = 1;
	cr->status = r->status;
	ret = MHD_queue_response(cr->conn, (unsigned)r->status, resp);
	if (ret == MHD_YES && r->cacheable && r->status == 200 && cr->route >= 0 &&
	    (api_routes[cr->route].flags & API_R_CACHE) && cr->method == API_GET &&
	    api_cache_put(&cr->s->cache, cr->gen, cr->url, resp, 200,
			  bytes + strlen(cr->url) + 256) == 0)
		return ret; /* the cache keeps our reference */
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result respond_error(struct conn_req *cr, int rc)
{
	struct api_resp r;
	enum MHD_Result ret;

	api_resp_init(&r);
	if (cr->closing)
		api_resp_header(&r, "Connection", "close");
	if (rc == -EOPNOTSUPP)
		allow_header(&r, cr->allow);
	api_resp_error(&r, rc);
	if (rc == -ENOKEY)
		api_resp_header(&r, "WWW-Authenticate", "Bearer realm=\"modelfs\"");
	ret = respond(cr, &r);
	api_resp_clear(&r);
	return ret;
}

/* Runs the handler and queues its answer (or its error). */
static enum MHD_Result run_handler(struct conn_req *cr)
{
	const struct api_route *rt = &api_routes[cr->route];
	struct api_resp r;
	enum MHD_Result ret;
	int rc;

	api_resp_init(&r);
	cm_err_clear();
	cr->gen = api_cache_gen(&cr->s->cache);
	rc = rt->fn(&cr->q, &r);
	if (rc < 0) {
		api_resp_error(&r, rc);
		if (rc == -ENOKEY)
			api_resp_header(&r, "WWW-Authenticate", "Bearer realm=\"modelfs\"");
	}
	ret = respond(cr, &r);
	api_resp_clear(&r);
	return ret;
}

static enum MHD_Result finish_upload(struct conn_req *cr)
{
	struct api_resp r;
	enum MHD_Result ret;
	int rc;

	api_resp_init(&r);
	rc = api_upload_finish(cr->up, &cr->q, &r);
	cr->up = NULL;
	if (rc < 0)
		api_resp_error(&r, rc);
	ret = respond(cr, &r);
	api_resp_clear(&r);
	return ret;
}

static enum MHD_Result finish_body(struct conn_req *cr)
{
	json_error_t jerr;

	if (cr->body.len) {
		cr->q.body = json_loadb(cr->body.data, cr->body.len, JSON_REJECT_DUPLICATES, &jerr);
		if (!cr->q.body)
			return respond_error(cr, cm_err_set(-EBADMSG, "the body is not valid JSON: %s "
							    "(line %d, column %d)", jerr.text,
							    jerr.line, jerr.column));
	}
	return run_handler(cr);
}

static int has_query(struct MHD_Connection *c)
{
	return MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0;
}

static int use_cached(void *ctx, void *val, int status)
{
	struct conn_req *cr = ctx;

	if (MHD_queue_response(cr->conn, (unsigned)status, val) != MHD_YES)
		return -EIO;
	cr->responded = 1;
	cr->status = status;
	return 0;
}

/*
 * A failure found from the headers alone. Without a body it is answered on
 * the next call, after which the connection stays open for the next request
 * (libmicrohttpd closes a connection whose answer was queued early); with a
 * body it is answered now, so that body is never read.
 */
static enum MHD_Result fail_early(struct conn_req *cr, int rc, int has_body)
{
	if (has_body)
		return respond_error(cr, rc);
	cr->err = rc;
	cm_strlcpy(cr->err_msg, cm_err_msg(), sizeof(cr->err_msg));
	return MHD_YES;
}

static enum MHD_Result frame_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	(void)kind;
	return api_frame_header(cls, key, value) < 0 ? MHD_NO : MHD_YES;
}

static enum MHD_Result query_arg_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	(void)kind;
	(void)value;
	return api_query_arg(cls, key) < 0 ? MHD_NO : MHD_YES;
}

/*
 * Refuses a request whose framing or target is ambiguous (see api_frame_*):
 * answered at once with Connection: close, so no byte after its headers is
 * ever read as a request. Returns 0 when the request may go on.
 */
static int frame_check(struct conn_req *cr)
{
	struct api_frame f = { 0 };

	if (cr->uri_rc < 0)
		return cr->uri_rc; /* the message is the one on_uri left in cr->err_msg */
	MHD_get_connection_values(cr->conn, MHD_HEADER_KIND, frame_header_cb, &f);
	return api_frame_end(&f);
}

/* First call for a request: route, authorise, and prepare for the body. */
static enum MHD_Result begin(struct conn_req *cr, const char *url, const char *method)
{
	struct api_server *s = cr->s;
	const struct api_route *rt;
	struct api_query qs = { 0 };
	const char *cl = MHD_lookup_connection_value(cr->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	int has_body = (cl && strcmp(cl, "0")) ||
		       MHD_lookup_connection_value(cr->conn, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_TRANSFER_ENCODING);
	enum api_role need;
	int rc;

	cr->begun = 1;
	cr->url = url;
	cr->method = api_method_parse(method);
	rc = frame_check(cr);
	if (rc < 0) {
		if (cr->uri_rc < 0)
			cm_err_set(rc, "%s", cr->err_msg);
		cr->closing = 1;
		return respond_error(cr, rc);
	}
	rc = api_route_match(url, cr->method ? cr->method : 1u << 30, cr->params, cr->params_len,
			     &cr->m, &cr->allow);
	if (rc < 0)
		return fail_early(cr, rc, has_body);
	cr->route = cr->m.index;
	rt = &api_routes[cr->route];
	qs.rt = rt;
	need = rt->role;
	if ((rt->flags & API_R_OPEN) || (need == API_ROLE_READER && !s->cfg.auth_reads))
		need = API_ROLE_NONE;
	cr->q.srv = s;
	cr->q.st = s->st;
	cr->q.cfg = &s->cfg;
	cr->q.method = cr->method;
	cr->q.model = cr->m.model;
	cr->q.version = cr->m.version;
	cr->q.alias = cr->m.alias;
	cr->q.id = cr->m.id;
	cr->q.path = cr->m.path;
	cr->q.lookup = io_lookup;
	cr->q.io = cr;
	cr->q.who.channel = "api";
	pthread_rwlock_rdlock(&s->tokens_lock);
	rc = api_auth_check(s->tokens, MHD_lookup_connection_value(cr->conn, MHD_HEADER_KIND,
								   MHD_HTTP_HEADER_AUTHORIZATION),
			    need, &cr->q.role, &cr->q.who.name);
	if (cr->q.who.name) {
		int anonymous = cr->q.who.name == api_anonymous;

		/* Also for a 403, to log who; the table may be replaced by a reload. */
		cm_strlcpy(cr->who_name, cr->q.who.name, sizeof(cr->who_name));
		cr->q.who.name = cr->who_name;
		api_auth_actor(&cr->q, cr->q.role, anonymous);
	}
	pthread_rwlock_unlock(&s->tokens_lock);
	if (rc < 0)
		return fail_early(cr, rc, has_body);
	MHD_get_connection_values(cr->conn, MHD_GET_ARGUMENT_KIND, query_arg_cb, &qs);
	if (qs.rc < 0)
		return fail_early(cr, qs.rc, has_body);
	if (rt->flags & API_R_UPLOAD) {
		rc = api_upload_begin(&cr->q, &cr->up);
		return rc < 0 ? fail_early(cr, rc, has_body) : MHD_YES;
	}
	if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body)
		return fail_early(cr, cm_err_set(-E2BIG, "the body is %s bytes, more than the limit "
						 "of %zu", cl, s->cfg.max_body), has_body);
	/*
	 * Answers wait for the next call, when the request is fully read:
	 * libmicrohttpd closes the connection after an answer queued earlier.
	 */
	return MHD_YES;
}

/* Drops body bytes after a failure; closes the connection past the bounds. */
static enum MHD_Result body_drop(struct conn_req *cr, size_t n)
{
	int64_t limit_us = (int64_t)(cr->s->cfg.request_timeout ? cr->s->cfg.request_timeout : 30) *
			   2000000;

	cr->discarded += n;
	if (cr->discarded > DISCARD_MAX || cm_time_now_us() - cr->start_us > limit_us) {
		cm_log_limited(&request_warn_limit, CM_LOG_WARN, "api",
			       "%s %s: closing the connection without an answer (%s)",
			       api_method_name(cr->method), cr->url, cr->err_msg);
		return MHD_NO;
	}
	return MHD_YES;
}

/* Remembers a failure while the body arrives; it is answered once the body ends. */
static enum MHD_Result body_fail(struct conn_req *cr, int rc, size_t n)
{
	cr->err = rc;
	cm_strlcpy(cr->err_msg, cm_err_msg(), sizeof(cr->err_msg));
	cm_buf_free(&cr->body);
	return body_drop(cr, n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct conn_req *cr = *con_cls;
	int rc;

	(void)cls;
	if (!cr)
		return MHD_NO; /* on_uri ran out of memory */
	if (!cr->begun) {
		cr->conn = conn;
		return begin(cr, url, method);
	}
	if (cr->responded) {
		*data_size = 0; /* an early answer is out: the rest of the body is dropped */
		return MHD_YES;
	}
	if (*data_size > 0) {
		size_t n = *data_size;

		*data_size = 0;
		if (cr->err)
			return body_drop(cr, n);
		if (cr->up) {
			rc = api_upload_feed(cr->up, data, n);
			if (rc < 0) {
				api_upload_abort(cr->up);
				cr->up = NULL;
				return body_fail(cr, rc, n);
			}
			return MHD_YES;
		}
		if (cr->s->cfg.request_timeout && cm_time_now_us() - cr->start_us >
							  (int64_t)cr->s->cfg.request_timeout * 1000000)
			return body_fail(cr, cm_err_set(-ETIMEDOUT, "the body did not arrive within %u "
							"seconds", cr->s->cfg.request_timeout), n);
		if (cr->body.len + n > cr->s->cfg.max_body)
			return body_fail(cr, cm_err_set(-E2BIG, "the body is larger than the limit of %zu "
							"bytes", cr->s->cfg.max_body), n);
		if (cm_buf_append(&cr->body, data, n) < 0)
			return body_fail(cr, cm_err_set(-ENOMEM, "out of memory"), n);
		return MHD_YES;
	}
	if (cr->err)
		return respond_error(cr, cm_err_set(cr->err, "%s", cr->err_msg));
	if (cr->up)
		return finish_upload(cr);
	if (cr->route >= 0 && (api_routes[cr->route].flags & API_R_CACHE) && cr->method == API_GET &&
	    !cr->body.len && !has_query(conn) &&
	    api_cache_use(&cr->s->cache, cr->url, use_cached, cr) == 0)
		return MHD_YES;
	return finish_body(cr);
}

/*
 * Called by libmicrohttpd with the raw request target, before it decodes it
 * in place: the one point where %2F and %00 can still be told from '/' and
 * the end of the string. What it returns is the request's state (con_cls).
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	/* The decoded path is never longer than the raw target. */
	size_t len = strlen(uri) + 1;
	struct conn_req *cr = malloc(sizeof(*cr) + len);

	if (!cr)
		return NULL;
	/* Not calloc(): only the struct needs zeroing, not the parameter space. */
	memset(cr, 0, sizeof(*cr));
	cr->params_len = len;
	cr->s = cls;
	cr->conn = conn;
	cr->route = -1;
	cr->start_us = cm_time_now_us();
	cr->uri_rc = api_uri_check(uri);
	if (cr->uri_rc < 0)
		cm_strlcpy(cr->err_msg, cm_err_msg(), sizeof(cr->err_msg));
	return cr;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	struct conn_req *cr = *con_cls;
	int64_t dur;

	if (!cr)
		return;
	if (!cr->begun) {
		/* libmicrohttpd refused the request itself (and logged why). */
		free(cr);
		*con_cls = NULL;
		return;
	}
	dur = cm_time_now_us() - cr->start_us;
	api_upload_abort(cr->up); /* a client that went away mid-upload leaves nothing */
	if (cr->responded)
		api_metrics_observe(&s->metrics, cr->route, cr->status, dur);
	else
		atomic_fetch_add(&s->metrics.aborted, 1);
	if (cr->method != API_GET && cr->method != API_HEAD && cr->responded && cr->status < 500)
		cm_log(CM_LOG_INFO, "api", "%s %s %d %.1fms actor=%s", api_method_name(cr->method),
		       cr->url ? cr->url : "-", cr->status, (double)dur / 1000.0,
		       cr->q.who.name ? cr->q.who.name : "-");
	else if (cr->method != API_GET && cr->method != API_HEAD)
		cm_log_limited(&request_warn_limit, CM_LOG_WARN, "api", "%s %s %d %.1fms actor=%s%s",
			       api_method_name(cr->method), cr->url ? cr->url : "-",
			       cr->responded ? cr->status : 0, (double)dur / 1000.0,
			       cr->q.who.name ? cr->q.who.name : "-",
			       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
	else if (cr->status >= 500)
		cm_log_limited(&request_warn_limit, CM_LOG_WARN, "api", "%s %s %d %.1fms",
			       api_method_name(cr->method), cr->url ? cr->url : "-", cr->status,
			       (double)dur / 1000.0);
	else
		cm_log(CM_LOG_DEBUG, "api", "%s %s %d %.1fms", api_method_name(cr->method),
		       cr->url ? cr->url : "-", cr->status, (double)dur / 1000.0);
	json_decref(cr->q.body);
	cm_buf_free(&cr->body);
	free(cr);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	cm_log_limited(&mhd_warn_limit, CM_LOG_WARN, "http", "%s", line);
}

static int is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

/* Binds and listens on cfg->listen; sets s->listen_fd, port and loopback. */
static int listen_open(struct api_server *s)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16];
	int fd = -1, one = 1;
	int rc, gai, err = 0;

	rc = api_listen_split(s->cfg.listen, host, sizeof(host), port, sizeof(port));
	if (rc < 0)
		return rc;
	gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai != 0)
		return cm_err_set(-EINVAL, "--listen %s: %s", s->cfg.listen, gai_strerror(gai));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return cm_err_set(-err, "--listen %s: %s", s->cfg.listen, strerror(err));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		err = errno;
		close(fd);
		return cm_err_set(-err, "getsockname: %s", strerror(err));
	}
	s->listen_fd = fd;
	s->loopback = is_loopback(&ss);
	s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/*
 * Every request takes the lock shared; a reload takes it exclusively for the
 * time of a pointer swap. Writers are preferred so that a steady stream of
 * requests cannot hold a reload off.
 */
static int tokens_lock_init(pthread_rwlock_t *l)
{
	pthread_rwlockattr_t a;
	int err;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	err = pthread_rwlock_init(l, &a);
	pthread_rwlockattr_destroy(&a);
	return err ? cm_err_set(-err, "cannot make a lock: %s", strerror(err)) : 0;
}

int api_server_new(struct reg_store *st, const struct api_config *cfg, struct api_server **out)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return cm_err_set(-ENOMEM, "out of memory");
	s->st = st;
	s->cfg = *cfg;
	s->listen_fd = -1;
	s->started_us = cm_time_now_us();
	rc = tokens_lock_init(&s->tokens_lock);
	if (rc < 0) {
		free(s);
		return rc;
	}
	rc = api_metrics_init(&s->metrics, api_routes_count);
	if (rc < 0) {
		pthread_rwlock_destroy(&s->tokens_lock);
		free(s);
		return rc;
	}
	rc = api_cache_init(&s->cache, cfg->cache_bytes, mhd_release);
	if (rc < 0) {
		api_metrics_destroy(&s->metrics);
		pthread_rwlock_destroy(&s->tokens_lock);
		free(s);
		return rc;
	}
	if (cfg->token_file && cfg->token_file[0]) {
		rc = api_tokens_load(cfg->token_file, &s->tokens);
		if (rc < 0)
			goto done;
	}
	rc = listen_open(s);
	if (rc < 0)
		goto done;
	if (!s->tokens && !s->loopback && !cfg->insecure) {
		rc = cm_err_set(-EACCES, "--listen %s is not a loopback address and there is no "
				"--token-file: anyone who can reach it could change the registry; "
				"give tokens, or --insecure if that is really wanted", cfg->listen);
		goto done;
	}
done:
	if (rc < 0) {
		api_server_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int api_server_start(struct api_server *s)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem ops[16];
	int n = 0;

#define OPTION(o, v, p) ops[n++] = (struct MHD_OptionItem){ o, (intptr_t)(v), p }
	OPTION(MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s); /* first, or MHD complains on stderr */
	if (s->cfg.threads == 0) {
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	} else {
		flags |= MHD_USE_EPOLL | MHD_USE_TURBO;
		OPTION(MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads, NULL);
	}
	OPTION(MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL);
	OPTION(MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->cfg.conn_memory, NULL);
	/* The read buffer grows by this much (default 1 KiB): uploads read in big pieces. */
	OPTION(MHD_OPTION_CONNECTION_MEMORY_INCREMENT, s->cfg.conn_memory / 4, NULL);
	OPTION(MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_conns, NULL);
	OPTION(MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.idle_timeout, NULL);
	if (s->cfg.per_ip_conns)
		OPTION(MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.per_ip_conns, NULL);
	OPTION(MHD_OPTION_NOTIFY_COMPLETED, on_completed, s);
	OPTION(MHD_OPTION_URI_LOG_CALLBACK, on_uri, s);
	OPTION(MHD_OPTION_END, 0, NULL);
#undef OPTION
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, ops,
				  MHD_OPTION_END);
	if (!s->mhd)
		return cm_err_set(-EIO, "libmicrohttpd could not start on %s", s->cfg.listen);
	s->listen_fd = -1; /* MHD owns and closes it now */
	if (!s->tokens)
		cm_log(CM_LOG_WARN, "api", "no --token-file: every request is allowed (as "
		       "'anonymous', admin)%s", s->loopback ? " because the address is loopback"
						     : " because of --insecure");
	cm_log(CM_LOG_INFO, "api", "listening on %s (port %d, %s, auth=%s%s)", s->cfg.listen, s->port,
	       s->cfg.threads ? "thread pool" : "thread per connection",
	       s->tokens ? "tokens" : "none", s->cfg.auth_reads ? ", reads too" : "");
	return 0;
}

int api_server_port(const struct api_server *s)
{
	return s->port;
}

void api_server_stop(struct api_server *s)
{
	if (s && s->mhd) {
		MHD_stop_daemon(s->mhd);
		s->mhd = NULL;
	}
}

void api_server_free(struct api_server *s)
{
	if (!s)
		return;
	api_server_stop(s);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	api_cache_destroy(&s->cache);
	api_metrics_destroy(&s->metrics);
	api_tokens_free(s->tokens);
	pthread_rwlock_destroy(&s->tokens_lock);
	free(s);
}

int api_server_tokens_reload(struct api_server *s)
{
	struct api_tokens *t = NULL, *old;
	int n;

	if (!s->cfg.token_file || !s->cfg.token_file[0])
		return 0;
	/* Read and check the whole file first: a bad file leaves the table in use alone. */
	n = api_tokens_load(s->cfg.token_file, &t);
	if (n < 0)
		return n;
	n = (int)t->n;
	pthread_rwlock_wrlock(&s->tokens_lock);
	old = s->tokens;
	s->tokens = t;
	pthread_rwlock_unlock(&s->tokens_lock);
	api_tokens_free(old);
	return n;
}

void api_on_change(void *ctx, const struct reg_change *c)
{
	struct api_server *s = ctx;

	if (s)
		api_cache_clear(&s->cache);
}

int api_server_tokens_count(struct api_server *s)
{
	int n;

	pthread_rwlock_rdlock(&s->tokens_lock);
	n = s->tokens ? (int)s->tokens->n : 0;
	pthread_rwlock_unlock(&s->tokens_lock);
	return n;
}
