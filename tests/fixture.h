/* SPDX-License-Identifier: Apache-2.0 */
/* Shared test fixture: a fresh store directory per test, helpers to write files. */
#ifndef MODELFS_TEST_FIXTURE_H
#define MODELFS_TEST_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cm.h"
#include "reg.h"

struct fx {
	char dir[4096];          /* a new empty directory, removed at teardown */
	struct reg_store *st;    /* open store in dir (REG_OPEN_CREATE|REG_OPEN_LOCK), or NULL */
	char db[64];             /* the PostgreSQL run: this test's database ("" otherwise) */
};

/* 1 in the PostgreSQL run of the unit tests (every store's metadata in a fresh database). */
int fx_pg(void);
/* The PostgreSQL run: a new database for f, made the registry's --db. */
void fx_pg_newdb(struct fx *f);
/*
 * Runs SQL straight on the store's database (the SQLite file, or the test's
 * PostgreSQL database), beside the registry: 0, or -1 with the error in err.
 */
int fx_sql(struct fx *f, const char *sql, char *err, size_t n);
/* Skips a test that is about SQLite itself (its file, pragmas, raw handles). */
#define FX_SQLITE_ONLY()                \
	do {                            \
		if (fx_pg()) {          \
			skip();         \
		}                       \
	} while (0)

extern const struct reg_actor fx_actor; /* channel "cli", name "test" */

/* Makes a new empty directory below $MODELFS_TEST_TMP (or /tmp). */
void fx_mkdtemp(char *out, size_t n);
/* rm -rf, for teardown. */
void fx_rmrf(const char *path);
/* cmocka setup/teardown: a fresh store (fx->st open) in a fresh directory. */
int fx_setup(void **state);
int fx_setup_empty(void **state);  /* directory only, no store opened */
int fx_teardown(void **state);
/* Closes and reopens fx->st (runs the open-time reconcile). */
void fx_reopen(struct fx *f);
/* Writes a file at dir/relpath (creating parent directories), mode 0644. */
void fx_write(const char *dir, const char *relpath, const char *content);
/* Reads a whole file into a static buffer; NULL if it cannot. */
const char *fx_read(const char *dir, const char *relpath);
/* readlink dir/relpath into a static buffer; NULL if it is not a symlink. */
const char *fx_readlink(const char *dir, const char *relpath);
/* Creates model m and version v with the given files ("name", "content", ... NULL). */
void fx_version(struct fx *f, const char *m, const char *v, ...);
/* Sets validation_status "passed" (and accuracy) so the default policy lets v be promoted. */
void fx_pass(struct fx *f, const char *m, const char *v);
/* Number of problems fsck reports (read-only, hashing). */
int fx_fsck(struct fx *f);

#endif
