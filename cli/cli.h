/* SPDX-License-Identifier: Apache-2.0 */
/* The modelfs command line: subcommands share this small interface. */
#ifndef MODELFS_CLI_H
#define MODELFS_CLI_H

/* Exit codes: 0 done/clean, 1 problems found, 2 usage or operational error. */
enum { CLI_OK = 0, CLI_PROBLEMS = 1, CLI_ERROR = 2 };

int cli_init(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_fsck(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_serve(int argc, char **argv);

#endif
