/* SPDX-License-Identifier: Apache-2.0 */
/* modelfs: the executable. Dispatches subcommands from one table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cm.h"
#include "modelfs_config.h"
#include "reg.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *help;
	int own_help; /* prints its own --help (from its option table) */
} commands[] = {
	{ "serve", cli_serve, "serve --store DIR [--mount DIR] [--listen HOST:PORT] ...",
	  "serve the store: the versioned mount and the REST API (see 'modelfs serve --help')", 1 },
	{ "init", cli_init, "init STORE",
	  "create a store in STORE; an existing model tree there is adopted", 0 },
	{ "import", cli_import, "import STORE",
	  "adopt models and versions found on disk that the registry does not know", 0 },
	{ "fsck", cli_fsck, "fsck STORE [--repair] [--no-hash]",
	  "compare disk with the registry; exit 0 clean, 1 problems", 0 },
	{ "verify", cli_verify, "verify STORE [MODEL[/VERSION]]",
	  "re-hash sealed files against their recorded SHA-256", 0 },
	{ "migrate", cli_migrate, "migrate STORE --to postgresql://...|sqlite",
	  "move the metadata and the whole history to another database (--db: where it is now)", 0 },
	{ "git-sync", cli_git_sync, "git-sync STORE [--repo DIR] [--run] ...",
	  "check git tags against the registry; --run makes queued tags (see --help)", 1 },
};

/*
 * The store commands' metadata database: --db URL (anywhere in argv, taken
 * out of it) or MODELFS_DB; serve reads it from its option table instead.
 */
static int db_take(int *argc, char **argv)
{
	const char *url = getenv("MODELFS_DB");
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "--db") && i + 1 < *argc) {
			url = argv[++i];
			continue;
		}
		if (!strncmp(argv[i], "--db=", 5)) {
			url = argv[i] + 5;
			continue;
		}
		argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	if (reg_db_set(url) < 0) {
		fprintf(stderr, "modelfs: %s\n", cm_err_msg());
		return -1;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "modelfs %s: a model registry that lives on the model volume\n\n"
		     "usage: modelfs COMMAND [ARGS]\n\n", MODELFS_VERSION);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  modelfs %-36s %s\n", commands[i].usage, commands[i].help);
	fprintf(out, "  modelfs %-36s %s\n  modelfs %-36s %s\n  modelfs %-36s %s\n", "--version",
		"print the version", "--help", "print this help", "completion",
		"print bash completion: eval \"$(modelfs completion)\"");
	fprintf(out, "\nStore commands take --db postgresql://... (or MODELFS_DB) when the store's "
		     "metadata lives in PostgreSQL.\n");
	fprintf(out, "  modelfs %-36s %s\n", "man", "print the man page (roff): modelfs man | man -l -");
	fprintf(out, "\nClient commands, over the REST API (--url, --token-file, --json; see "
		     "'modelfs COMMAND --help'):\n");
	cli_client_usage(out);
	fprintf(out, "\nExit status: 0 success (or clean), 1 problems found, 2 error; the client "
		     "commands:\n0 done, 1 refused (gate), 2 usage, 3 not found, 4 auth, 5 network "
		     "or server error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_ERROR;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("modelfs %s\n", MODELFS_VERSION);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "completion")) {
		const char *names[sizeof(commands) / sizeof(commands[0]) + 2] = { "completion", "man" };

		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			names[i + 2] = commands[i].name;
		cli_client_completion(stdout, names, sizeof(names) / sizeof(names[0]));
		return CLI_OK;
	}
	if (!strcmp(argv[1], "man")) {
		const char *usages[sizeof(commands) / sizeof(commands[0])];
		const char *helps[sizeof(commands) / sizeof(commands[0])];

		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			usages[i] = commands[i].usage;
			helps[i] = commands[i].help;
		}
		cli_client_man(stdout, MODELFS_VERSION, usages, helps, sizeof(usages) / sizeof(usages[0]));
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (argc > 2 && !commands[i].own_help &&
		    (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			printf("usage: modelfs %s\n  %s\n", commands[i].usage, commands[i].help);
			return CLI_OK;
		}
		if (strcmp(commands[i].name, "serve") && db_take(&argc, argv) < 0)
			return CLI_ERROR;
		return commands[i].run(argc - 1, argv + 1);
	}
	if (cli_client_is(argv[1]))
		return cli_client(argc - 1, argv + 1);
	fprintf(stderr, "modelfs: unknown command '%s' (see 'modelfs --help')\n", argv[1]);
	return CLI_ERROR;
}
