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
