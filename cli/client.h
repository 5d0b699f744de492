/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of the modelfs command line, internal to cli/: an HTTP
 * connection to the REST API (libcurl, JSON bodies through jansson), the
 * mapping from an answer to an exit status, and aligned text tables whose
 * cells are escaped so no name the server returns can reach the terminal raw.
 */
#ifndef MODELFS_CLI_CLIENT_H
#define MODELFS_CLI_CLIENT_H

#include <stdio.h>

#include <jansson.h>

#include "cm.h"

/* Exit statuses of the client commands (README, "Client"). */
enum {
	CLI_C_OK = 0,       /* done */
	CLI_C_REFUSED = 1,  /* the server said no: a gate or policy, a conflict, an invalid value */
	CLI_C_USAGE = 2,    /* bad arguments, unreadable token or input file, a malformed request */
	CLI_C_NOTFOUND = 3, /* no such model, version or alias (404) */
	CLI_C_AUTH = 4,     /* no token, a wrong token, or a role too low (401, 403) */
	CLI_C_SERVER = 5,   /* no connection, a timeout, a 5xx, an answer that is not the API's */
};

struct cli_conn;

/*
 * Opens a connection description for base URL `url` (http:// or https://;
 * a trailing '/' is ignored) with an optional bearer token and a timeout in
 * seconds for each call. Returns 0 and *out (caller frees with
 * cli_conn_close), or -EINVAL / -ENOMEM with a message.
 */
int cli_conn_open(const char *url, const char *token, long timeout_s, struct cli_conn **out);
void cli_conn_close(struct cli_conn *c);

/* One answer: the HTTP status and its JSON body (NULL when empty). */
struct cli_answer {
	long status;
	json_t *body;
};
void cli_answer_clear(struct cli_answer *a);

/*
 * Sends `method` to `path` (already escaped, starting with '/') with an
 * optional JSON body; fills *a on any HTTP answer, whatever its status.
 * Returns 0, or -errno with a message when there was no usable answer
 * (connection refused, timeout, a body that is not JSON): CLI_C_SERVER.
 */
int cli_conn_call(struct cli_conn *c, const char *method, const char *path, const json_t *body,
		  struct cli_answer *a);

/* Appends s to b percent-encoded (RFC 3986 unreserved kept): a path segment or query value. */
int cli_buf_escape(struct cm_buf *b, const char *s);

/* The exit status an HTTP status means (the table in client.c). */
int cli_status_exit(long status);

/*
 * Prints "modelfs: <server's message> (HTTP <status> <code>)" to `err`, then
 * one line per failed gate from details.failed_gates; returns the exit status.
 */
int cli_answer_fail(const struct cli_answer *a, FILE *err);

/*
 * cm_esc() of s (NULL reads as ""), returning out so that it can stand in
 * a printf argument list.
 */
char *cli_esc(char *out, size_t cap, const char *s);

/* An aligned table of text cells, escaped as they are added. */
struct cli_table {
	size_t ncol;
	size_t nrow;
	size_t cap;
	char **cells; /* nrow * ncol, owned */
};
/* Starts a table with a header row of ncol cells (ncol <= 16). */
int cli_table_init(struct cli_table *t, size_t ncol, const char *const *header);
/* Adds a row; NULL cells print as "-". Returns 0 or -ENOMEM. */
int cli_table_add(struct cli_table *t, const char *const *cells);
/* Prints the rows, columns padded to their widest cell (in characters); the last unpadded. */
void cli_table_print(const struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);

/* A JSON value as short text: strings bare, null "-", others compact JSON. Caller frees. */
char *cli_json_text(const json_t *v);

#endif
