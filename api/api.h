/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api: the REST API (v1, JSON) over libmicrohttpd. A table of routes, one
 * registry call per handler, one errno → HTTP status mapping, bearer-token
 * roles, limits on every client-fed buffer, and /metrics. Knows nothing of
 * FUSE: the mount's counters come in through a callback.
 */
#ifndef MODELFS_API_H
#define MODELFS_API_H

#include <stddef.h>
#include <stdint.h>

#include "reg.h"

/* Counters of the FUSE view, for /metrics (filled by the caller's callback). */
struct api_fs_stats {
	uint64_t ops;
	uint64_t bytes_read;        /* not the reads of passthrough opens (the kernel serves them) */
	uint64_t passthrough_opens;
	int passthrough;            /* sealed files open in passthrough mode */
	uint64_t bytes_written;
	uint64_t errors;
};
typedef void (*api_fs_stats_cb)(void *ctx, struct api_fs_stats *out);

struct api_config {
	const char *listen;        /* "HOST:PORT"; port 0 picks a free one */
	const char *token_file;    /* NULL: no tokens (loopback only, unless insecure) */
	int auth_reads;            /* reads need a reader token too */
	int insecure;              /* allow no tokens on a non-loopback address */
	const char *pvc;           /* InferenceService defaults */
	const char *namespace_;
	const char *runtime;
	size_t max_body;           /* largest JSON body, bytes */
	uint64_t max_upload;       /* largest uploaded file, bytes; 0: no limit */
	size_t conn_memory;        /* per-connection memory (headers and buffers), bytes */
	unsigned max_conns;
	unsigned per_ip_conns;     /* 0: no per-address limit */
	unsigned idle_timeout;     /* seconds without traffic before a connection is closed */
	unsigned request_timeout;  /* seconds to receive a JSON body before 408 */
	unsigned threads;          /* 0: a thread per connection; N: a pool of N */
	size_t cache_bytes;        /* response cache for sealed reads; 0 disables it */
	api_fs_stats_cb fs_stats;  /* NULL when nothing is mounted */
	void *fs_stats_ctx;
};

/* Fills c with the defaults (127.0.0.1:8080, 1 MiB bodies, ...). */
void api_config_default(struct api_config *c);

/*
 * Checks a configuration without binding or starting anything (for
 * --check-config): the listen address's form and the token file. Returns 0
 * or -errno with a message.
 */
int api_config_check(const struct api_config *c);

struct api_server;

/*
 * Prepares a server for store st (borrowed; must outlive the server): reads
 * the token file, resolves and binds the listen address. Refuses a
 * non-loopback address without tokens unless cfg->insecure. Nothing is
 * served until api_server_start(). Returns 0 and *out, or -errno with a
 * message.
 */
int api_server_new(struct reg_store *st, const struct api_config *cfg, struct api_server **out);
/* Starts serving (libmicrohttpd's threads). Returns 0 or -errno. */
int api_server_start(struct api_server *s);
/* The bound port (useful with port 0). */
int api_server_port(const struct api_server *s);
/*
 * Re-reads the token file (cfg->token_file) and replaces the token table in
 * one step, for credential rotation without a restart: requests whose
 * headers arrive after the swap are checked against the new tokens only;
 * requests already authorised finish as they began. When the file cannot be
 * read or is refused (any bad line, no tokens), the table in use stays and
 * -errno with a message is returned. Returns the number of tokens now in
 * use, or 0 when the server runs without a token file. Safe from any
 * thread while serving.
 */
int api_server_tokens_reload(struct api_server *s);
/* The number of tokens in use; 0 without a token file. */
int api_server_tokens_count(struct api_server *s);
/*
 * Stops accepting and waits for the requests in flight (their changes still
 * reach the change hook). The server stays allocated, so the hook may still
 * call api_on_change(). Idempotent; accepts NULL.
 */
void api_server_stop(struct api_server *s);
/* api_server_stop(), then frees. Accepts NULL. */
void api_server_free(struct api_server *s);

/*
 * The registry change hook's share for the API: drops cached responses so a
 * change made through any channel is served at once. Safe from any thread.
 */
void api_on_change(void *ctx, const struct reg_change *c);

#endif
