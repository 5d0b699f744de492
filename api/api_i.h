/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api internals: the route table, requests and responses as the handlers see
 * them (no libmicrohttpd types, so handlers run in unit tests without a
 * socket), errors, auth, the response cache and metrics.
 */
#ifndef MODELFS_API_I_H
#define MODELFS_API_I_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "api.h"
#include "cm.h"

/* ---- methods, roles ---- */

enum api_method {
	API_GET = 1 << 0,
	API_HEAD = 1 << 1,
	API_POST = 1 << 2,
	API_PUT = 1 << 3,
	API_PATCH = 1 << 4,
	API_DELETE = 1 << 5,
};
/* The method bit for a method name; 0 when unknown. */
unsigned api_method_parse(const char *s);
const char *api_method_name(unsigned m);

enum api_role { API_ROLE_NONE = 0, API_ROLE_READER, API_ROLE_WRITER, API_ROLE_ADMIN };
int api_role_parse(const char *s, enum api_role *out);
const char *api_role_name(enum api_role r);

/* ---- errors (error.c): the one errno → HTTP mapping ---- */

struct api_status {
	int err;          /* positive errno */
	int status;       /* HTTP status */
	const char *code; /* "not_found", ... */
};
/* The row for -rc (rc < 0); unknown errors map to 500 "internal". */
const struct api_status *api_error_status(int rc);
/* The errno behind a stable error code (the first row that has it); EIO when unknown. */
int api_error_errno(const char *code);
/* {"error": {"code", "message", "details"}}; steals details (may be NULL). */
json_t *api_error_body(int rc, const char *message, json_t *details);

/* ---- requests and responses ---- */

enum api_lookup_kind { API_ARG, API_HEADER };

struct api_server;

struct api_req {
	struct api_server *srv;
	struct reg_store *st;
	const struct api_config *cfg;
	unsigned method;
	const char *model, *version, *alias, *path; /* path parameters, decoded; NULL if absent */
	const char *id;                             /* {id}: a webhook subscription */
	json_t *body;                               /* parsed JSON body; NULL when empty */
	enum api_role role;                         /* what the caller's token grants */
	struct reg_actor who;                       /* channel "api", token name */
	/* Query arguments and headers (case-insensitive names); NULL when absent. */
	const char *(*lookup)(void *io, enum api_lookup_kind kind, const char *key);
	void *io;
};

#define API_HDR_MAX 6

struct api_resp {
	int status;
	json_t *json;          /* JSON body (owned) */
	char *text;            /* other body (owned, malloc) */
	const char *ctext;     /* other body (borrowed, static) */
	size_t text_len;
	const char *ctype;     /* for text bodies */
	int fd;                /* file body when >= 0 (owned): fd_len bytes from fd_off */
	uint64_t fd_off, fd_len;
	json_t *details;       /* error details (owned) */
	int cacheable;         /* may be served again until the next registry change */
	int nhdr;
	struct {
		const char *name;
		char *value;   /* owned */
	} hdr[API_HDR_MAX];
};

void api_resp_init(struct api_resp *r);
/* Frees bodies and closes fd; the struct can be reused after api_resp_init(). */
void api_resp_clear(struct api_resp *r);
/* Sets a JSON body (stolen). Returns 0, or -ENOMEM when body is NULL. */
int api_resp_json(struct api_resp *r, int status, json_t *body);
void api_resp_header(struct api_resp *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Turns rc (< 0) and the thread's message into an error response. */
void api_resp_error(struct api_resp *r, int rc);

/* Query/header helpers for handlers. */
const char *api_arg(const struct api_req *q, const char *key);
const char *api_header(const struct api_req *q, const char *key);
/* A decimal integer argument in [min, max], or def when absent; -EBADMSG otherwise. */
int api_arg_int(const struct api_req *q, const char *key, long long def, long long min,
		long long max, long long *out);
/* Refuses a caller below `need` with -EACCES and a message naming `why`. */
int api_role_require(const struct api_req *q, enum api_role need, const char *why);

/* Body field checks: a table per handler; unknown fields are refused. */
enum api_ftype { API_F_STRING, API_F_STRING_OR_NULL, API_F_INT, API_F_NUMBER, API_F_BOOL,
		 API_F_OBJECT };
struct api_field {
	const char *name;
	enum api_ftype type;
	int required;
};
/* Checks q->body (NULL counts as {}) against fields; -EBADMSG with a message. */
int api_body_check(const struct api_req *q, const struct api_field *f, size_t n);
/* Borrowed field values (NULL / def when absent or null). */
const char *api_body_str(const struct api_req *q, const char *name);
long long api_body_int(const struct api_req *q, const char *name, long long def);
int api_body_bool(const struct api_req *q, const char *name);
int api_body_has(const struct api_req *q, const char *name);

/* ---- routes (router.c) ---- */

typedef int (*api_handler)(struct api_req *q, struct api_resp *r);

enum api_route_flags {
	API_R_OPEN = 1 << 0,   /* never needs a token (health) */
	API_R_CACHE = 1 << 1,  /* responses marked cacheable are kept until the next change */
	API_R_UPLOAD = 1 << 2, /* the body is streamed to a file, not parsed */
	API_R_RAW = 1 << 3,    /* the response may be a file or text */
};

struct api_route {
	unsigned methods;     /* API_GET | API_HEAD, ... */
	const char *pattern;  /* "/v1/models/{model}/versions/{version}/files/{path*}" */
	api_handler fn;
	enum api_role role;   /* the least role; handlers ask more for protected aliases */
	unsigned flags;
	const char *summary;
};

extern const struct api_route api_routes[];
extern const size_t api_routes_count;

struct api_match {
	int index;                                  /* into api_routes */
	const char *model, *version, *alias, *path; /* pointers into the caller's buffer */
	const char *id;
};

/*
 * Matches a decoded request path and method against the table. Parameters
 * are copied into buf. Returns 0; -ENOENT when no pattern matches; -EOPNOTSUPP
 * when a pattern matches but not the method (*allow gets the methods that
 * would); -ENAMETOOLONG when the path does not fit buf.
 */
int api_route_match(const char *path, unsigned method, char *buf, size_t bufsz,
		    struct api_match *m, unsigned *allow);

/* The query parameters a route takes, space-separated ("" for none). */
const char *api_route_query(const struct api_route *rt);
/*
 * Checks a request's query parameters one name at a time against its route:
 * an unknown name or one given twice is -EBADMSG naming it (kept in rc).
 */
struct api_query {
	const struct api_route *rt;
	unsigned seen; /* bits of the route's names already given */
	int rc;
};
int api_query_arg(struct api_query *qs, const char *name);

/* ---- auth (auth.c) ---- */

#define API_TOKEN_NAME_MAX 64
#define API_SECRET_MIN 16

struct api_token {
	char name[API_TOKEN_NAME_MAX];
	enum api_role role;
	unsigned char digest[32]; /* SHA-256 of the secret */
};

struct api_tokens {
	struct api_token *v;
	size_t n;
};

/* Parses `<name> <role> <secret>` lines (# comments); -EINVAL naming the line. */
int api_tokens_parse(const char *text, struct api_tokens **out);
int api_tokens_load(const char *path, struct api_tokens **out);
void api_tokens_free(struct api_tokens *t);
/*
 * The token whose secret is `secret`, comparing digests in constant time
 * over the whole table; NULL when none.
 */
const struct api_token *api_tokens_find(const struct api_tokens *t, const char *secret);
/*
 * Decides a request: `authorization` is the header (may be NULL), `need` the
 * route's least role. Without tokens everyone is admin "anonymous". Returns
 * 0 with *role and *name (borrowed), -ENOKEY (401) when a needed token is
 * missing or wrong, -EACCES (403) when the role is too low (*role and *name
 * are then the token's, for the log).
 */
int api_auth_check(const struct api_tokens *t, const char *authorization, enum api_role need,
		   enum api_role *role, const char **name);
/* The name api_auth_check() gives a request without a (valid) token; compare pointers. */
extern const char api_anonymous[];
/*
 * Makes q->who the registry's actor for the request: a token's role, or an
 * anonymous caller (no token presented) with what the configuration grants it.
 */
void api_auth_actor(struct api_req *q, enum api_role role, int anonymous);

/* ---- helpers (http.c) ---- */

/* Splits "HOST:PORT" / "[v6]:PORT" / ":PORT"; -EINVAL with a message. */
int api_listen_split(const char *s, char *host, size_t hn, char *port, size_t pn);
/*
 * A Range header against a file of `size` bytes: 0 with *off and *len for one
 * satisfiable range, 1 to ignore it (absent, not bytes, several ranges),
 * -ERANGE when unsatisfiable (416).
 */
int api_range_parse(const char *h, uint64_t size, uint64_t *off, uint64_t *len);
/* 1 when an If-None-Match value matches the strong etag ("\"hex\""), else 0. */
int api_etag_match(const char *if_none_match, const char *etag);
/*
 * The expected SHA-256 of an upload from `Digest: sha-256=<base64>`,
 * `Content-Digest: sha-256=:<base64>:` or `X-Checksum-Sha256: <hex>` (any may
 * be NULL): 1 with out (64 hex), 0 when none given, -EBADMSG when malformed.
 */
int api_digest_expected(const char *digest, const char *content_digest, const char *xsum,
			char out[65]);
/*
 * The raw request target (before any decoding) of a request: -EBADMSG when a
 * path segment holds an encoded '/' (%2F) or the target an encoded NUL (%00)
 * or a control character; 0 otherwise.
 */
int api_uri_check(const char *raw);
/*
 * Framing checks over a request's headers, fed one at a time as the parser
 * kept them: a name that is not a token (whitespace before the colon), a
 * second or non-numeric Content-Length, any Transfer-Encoding other than one
 * "chunked", a second Host, and (api_frame_end) Content-Length beside
 * Transfer-Encoding. The first failure is kept in rc (-EBADMSG, message set).
 */
struct api_frame {
	int content_length, transfer_encoding, host;
	int rc;
};
int api_frame_header(struct api_frame *f, const char *name, const char *value);
int api_frame_end(struct api_frame *f);
/* Appends s to b as a Prometheus label value (escaped). */
int api_prom_label(struct cm_buf *b, const char *s);

/* ---- response cache (cache.c) ---- */

struct api_cache_slot;

struct api_cache {
	pthread_rwlock_t lock;
	struct api_cache_slot *slots;
	size_t cap;            /* slots, a power of two */
	size_t n;
	size_t bytes, max_bytes;
	atomic_uint_fast64_t gen; /* bumped by every clear */
	void (*release)(void *val);
};

int api_cache_init(struct api_cache *c, size_t max_bytes, void (*release)(void *val));
void api_cache_destroy(struct api_cache *c);
uint64_t api_cache_gen(struct api_cache *c);
/*
 * Calls use(ctx, val, status) under the read lock when key is cached (so val
 * stays alive during the call) and returns its result; -ENOENT otherwise.
 */
int api_cache_use(struct api_cache *c, const char *key, int (*use)(void *ctx, void *val, int status),
		  void *ctx);
/*
 * Keeps val (ownership passes to the cache) under key, unless the cache was
 * cleared since `gen` was read (-ESTALE), is full (-ENOSPC) or disabled;
 * on failure val stays the caller's.
 */
int api_cache_put(struct api_cache *c, uint64_t gen, const char *key, void *val, int status,
		  size_t bytes);
/* Forgets everything and bumps the generation. */
void api_cache_clear(struct api_cache *c);

/* ---- metrics (metrics.c) ---- */

#define API_CODES_N 22
#define API_BUCKETS_N 14

struct api_hist {
	atomic_uint_fast64_t count, sum_us;
	atomic_uint_fast64_t b[API_BUCKETS_N];
};

struct api_metrics {
	size_t nroutes;
	struct api_hist *h;    /* (nroutes + 1) x API_CODES_N; the last route row is "unmatched" */
	atomic_uint_fast64_t aborted;
	/* The store's share, rebuilt when the cache generation moves. */
	pthread_mutex_t mu;
	int store_valid;
	uint64_t store_gen;
	struct cm_buf store_text;
	int64_t last_event;    /* events tallied so far */
	json_t *tally;         /* {model: [promotions, rollbacks, refusals]} */
};

int api_metrics_init(struct api_metrics *m, size_t nroutes);
void api_metrics_destroy(struct api_metrics *m);
/* route -1 for requests that matched nothing. */
void api_metrics_observe(struct api_metrics *m, int route, int status, int64_t dur_us);
/* Tallies promotions, rollbacks and refusals from an event list (reg_event_list). */
void api_metrics_tally(struct api_metrics *m, json_t *events);
/* The store's gauges and counters from reg_store_summary() and the tally. */
int api_metrics_render_store(struct api_metrics *m, json_t *summary, struct cm_buf *b);
/* HTTP counters and histograms. */
int api_metrics_render_http(struct api_metrics *m, struct cm_buf *b);

/* ---- the server ---- */

struct api_server {
	struct reg_store *st;
	struct api_config cfg;
	/*
	 * Replaced whole by api_server_tokens_reload(): requests read it under
	 * tokens_lock (shared) and copy what they keep (the token's name), so
	 * the old table can be freed once the write lock is released.
	 */
	pthread_rwlock_t tokens_lock;
	struct api_tokens *tokens;
	int listen_fd;
	int port;
	int loopback;
	void *mhd;             /* struct MHD_Daemon */
	struct api_cache cache;
	struct api_metrics metrics;
	int64_t started_us;
};

/* ---- handlers (handlers_*.c), named after their routes ---- */

#define API_HANDLERS(X) \
	X(livez) X(readyz) X(metrics) X(openapi) \
	X(models_list) X(model_create) X(model_get) X(model_delete) \
	X(versions_list) X(version_create) X(version_get) X(metadata_get) X(metadata_patch) \
	X(version_seal) X(version_verify) X(lineage_get) X(observations_list) X(observation_add) \
	X(file_get) X(file_put) \
	X(aliases_list) X(alias_get) X(alias_put) X(alias_delete) X(promote) X(rollback) \
	X(canary_put) X(canary_promote) X(canary_delete) X(policy_get) X(policy_put) \
	X(history) X(diff) X(inferenceservice) X(lineage_find) X(git_get) X(refusals) \
	X(version_archive) X(version_unarchive) X(version_delete) X(gc) \
	X(ui_root) X(ui_page) X(ui_asset) \
	X(outbox_get) X(webhooks_list) X(webhook_create) X(webhook_get) X(webhook_delete) \
	X(triggers_get) X(triggers_put) \
	X(search) X(model_patch)

#define X(name) int api_h_##name(struct api_req *q, struct api_resp *r);
API_HANDLERS(X)
#undef X

/* Streaming uploads (handlers_files.c): begin after the headers, feed, finish. */
struct api_upload;
int api_upload_begin(struct api_req *q, struct api_upload **out);
int api_upload_feed(struct api_upload *u, const void *data, size_t len);
/* Ends the upload: checks the digest, moves the file into place, fills r. Frees u. */
int api_upload_finish(struct api_upload *u, struct api_req *q, struct api_resp *r);
void api_upload_abort(struct api_upload *u);

/* JSON views shared by handlers (handlers_models.c). */
json_t *api_version_summary(const struct reg_version *v);
json_t *api_alias_view(const char *model, const struct reg_alias *a);
/* The full view of one version: state, files, metadata, aliases. */
int api_version_view(struct reg_store *st, const char *model, const char *version, json_t **out,
		     enum reg_state *state);
json_t *api_time(int64_t us);

/* The embedded OpenAPI document (schema/openapi.json). */
extern const unsigned char api_openapi[];
extern const size_t api_openapi_len;

/* The embedded web UI (ui/, tools/embed.py --assets): parallel arrays. */
extern const unsigned char *const api_ui_data[];
extern const size_t api_ui_len[];
extern const char *const api_ui_names[];
extern const char *const api_ui_etags[];
extern const unsigned api_ui_count;

#endif
