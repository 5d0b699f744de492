/* SPDX-License-Identifier: Apache-2.0 */
/* The modelfs command line: subcommands share this small interface. */
#ifndef MODELFS_CLI_H
#define MODELFS_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Exit codes: 0 done/clean, 1 problems found, 2 usage or operational error. */
enum { CLI_OK = 0, CLI_PROBLEMS = 1, CLI_ERROR = 2 };

int cli_init(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_fsck(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_git_sync(int argc, char **argv);

/* Offline gc (cmd_store.c): the store's writer lock, then the retention rules. */
struct cli_gc_opts {
	const char *store;
	const char *model;  /* NULL: every model */
	const char *reason;
	int dry_run;
};
/* Runs gc on the store; 0 and *out (the API's gc answer), or -errno with a message. */
struct json_t;
int cli_gc_offline(const struct cli_gc_opts *o, struct json_t **out);

/* serve --gc-interval (gc.c): runs retention every interval_s seconds until stopped. */
struct cli_gc_worker;
struct reg_store;
int cli_gc_worker_start(struct reg_store *st, long long interval_s, struct cli_gc_worker **out);
/* Stops and joins the thread (a run in progress finishes first). Accepts NULL. */
void cli_gc_worker_stop(struct cli_gc_worker *w);
/* Installs the registry's test hooks that the environment asks for (MODELFS_TEST_*). */
void cli_test_hooks_install(void);

/* The client commands over the REST API (cmd_client.c): exit statuses in client.h. */
int cli_client_is(const char *name);
int cli_client(int argc, char **argv);
void cli_client_usage(FILE *out);
/* Prints a bash completion script; `others` are the other command names. */
void cli_client_completion(FILE *out, const char *const *others, size_t n_others);
/* Prints the man page (roff): the other commands' usage and help lines, then the client's. */
void cli_client_man(FILE *out, const char *version, const char *const *usages,
		    const char *const *helps, size_t n_others);

/* Git-tag sync options shared by serve and git-sync (strings borrowed). */
struct cli_git_opts {
	const char *repo;
	const char *remote;
	const char *tagger;     /* "Name <email>" */
	const char *tag_format;
	const char *token_file;
	int gto;
};
struct reg_store;
struct reg_git_worker;
/* Splits "Name <email>"; -EINVAL with a message otherwise. */
int cli_git_tagger_parse(const char *s, char *name, size_t nn, char *email, size_t en);
/*
 * serve's git part: stores the configuration when o->repo is set, logs the
 * read-back, starts the worker when the store has git sync configured
 * (*out stays NULL otherwise). Fails only for a bad configuration.
 */
int cli_git_serve_start(struct reg_store *st, const struct cli_git_opts *o,
			struct reg_git_worker **out);

#endif
