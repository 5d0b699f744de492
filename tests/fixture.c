/* SPDX-License-Identifier: Apache-2.0 */
/* The unit-test fixture: real directories, real SQLite files, nothing mocked. */
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

const struct reg_actor fx_actor = { .channel = "cli", .name = "test" };

void fx_mkdtemp(char *out, size_t n)
{
	const char *base = getenv("MODELFS_TEST_TMP");

	if (!base || !base[0])
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(out, n, "%s/modelfs-test-XXXXXX", base);
	if (!mkdtemp(out)) {
		fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
		abort();
	}
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP) {
		rmdir(p);
		return 0;
	}
	/* Never chmod through a symlink: tests make links to /etc and /tmp. */
	if (flag == FTW_F)
		chmod(p, 0644);
	unlink(p);
	return 0;
}

void fx_rmrf(const char *path)
{
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

/*
 * The PostgreSQL run (meson's registry-pg entries set MODELFS_TEST_PG_RUN=1;
 * ./dev test exports MODELFS_TEST_PG, the conninfo base of its server):
 * without a server the whole executable is skipped (exit 77).
 */
int fx_pg(void)
{
	const char *run = getenv("MODELFS_TEST_PG_RUN");

	return run && !strcmp(run, "1");
}

__attribute__((constructor)) static void fx_pg_check(void)
{
	if (fx_pg() && !(getenv("MODELFS_TEST_PG") && getenv("MODELFS_TEST_PG")[0])) {
		fprintf(stderr, "no PostgreSQL for this run (MODELFS_TEST_PG): skipped\n");
		_exit(77);
	}
}

static PGconn *pg_admin(void)
{
	char info[1024];
	PGconn *h;

	snprintf(info, sizeof(info), "%s dbname=postgres", getenv("MODELFS_TEST_PG"));
	h = PQconnectdb(info);
	if (PQstatus(h) != CONNECTION_OK)
		fail_msg("connecting to the test PostgreSQL: %s", PQerrorMessage(h));
	return h;
}

static void pg_sql(const char *sql)
{
	PGconn *h = pg_admin();
	PGresult *res = PQexec(h, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(h));
	PQclear(res);
	PQfinish(h);
}

void fx_pg_newdb(struct fx *f)
{
	static int seq;
	char sql[256], url[1024];

	snprintf(f->db, sizeof(f->db), "fx_%ld_%d", (long)getpid(), ++seq);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", f->db);
	pg_sql(sql);
	snprintf(url, sizeof(url), "%s dbname=%s", getenv("MODELFS_TEST_PG"), f->db);
	assert_int_equal(reg_db_set(url), 0);
}

static void pg_dropdb(struct fx *f)
{
	char sql[256];

	if (!f->db[0])
		return;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", f->db);
	pg_sql(sql);
	f->db[0] = '\0';
}

int fx_sql(struct fx *f, const char *sql, char *err, size_t n)
{
	char path[4200];
	int rc = 0;

	if (err && n)
		err[0] = '\0';
	if (f->db[0]) {
		PGconn *h;
		PGresult *res;

		snprintf(path, sizeof(path), "%s dbname=%s", getenv("MODELFS_TEST_PG"), f->db);
		h = PQconnectdb(path);
		res = PQexec(h, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = -1;
			if (err && n)
				snprintf(err, n, "%s", PQerrorMessage(h));
		}
		PQclear(res);
		PQfinish(h);
	} else {
		sqlite3 *h = NULL;
		char *msg = NULL;

		snprintf(path, sizeof(path), "%s/.modelfs/registry.db", f->dir);
		if (sqlite3_open(path, &h) != SQLITE_OK) {
			sqlite3_close(h);
			return -1;
		}
		sqlite3_busy_timeout(h, 5000);
		if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
			rc = -1;
			if (err && n)
				snprintf(err, n, "%s", msg ? msg : "?");
		}
		sqlite3_free(msg);
		sqlite3_close(h);
	}
	return rc;
}

int fx_setup_empty(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	fx_mkdtemp(f->dir, sizeof(f->dir));
	if (fx_pg())
		fx_pg_newdb(f);
	*state = f;
	return 0;
}

int fx_setup(void **state)
{
	struct fx *f;
	int rc;

	fx_setup_empty(state);
	f = *state;
	rc = reg_store_open(f->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &f->st);
	if (rc < 0) {
		fprintf(stderr, "open: %s\n", cm_err_msg());
		return -1;
	}
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	reg_store_close(f->st);
	if (!getenv("MODELFS_TEST_KEEP")) {
		fx_rmrf(f->dir);
		pg_dropdb(f);
	}
	free(f);
	return 0;
}

void fx_reopen(struct fx *f)
{
	reg_store_close(f->st);
	f->st = NULL;
	if (reg_store_open(f->dir, REG_OPEN_CREATE | REG_OPEN_LOCK, &f->st) < 0)
		fail_msg("reopen: %s", cm_err_msg());
}

void fx_write(const char *dir, const char *relpath, const char *content)
{
	char path[PATH_MAX];
	char *slash;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, relpath);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	fp = fopen(path, "w");
	if (!fp)
		fail_msg("fopen %s: %s", path, strerror(errno));
	fputs(content, fp);
	fclose(fp);
}

const char *fx_read(const char *dir, const char *relpath)
{
	static char buf[1 << 20];
	char path[PATH_MAX];
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, relpath);
	fp = fopen(path, "r");
	if (!fp)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

const char *fx_readlink(const char *dir, const char *relpath)
{
	static char buf[PATH_MAX];
	char path[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, relpath);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

void fx_version(struct fx *f, const char *m, const char *v, ...)
{
	struct reg_model model;
	va_list ap;
	const char *name;

	if (reg_model_get(f->st, m, &model) == -ENOENT)
		assert_int_equal(reg_model_create(f->st, &fx_actor, m, NULL), 0);
	if (reg_version_create(f->st, &fx_actor, m, v, NULL, NULL) < 0)
		fail_msg("create %s/%s: %s", m, v, cm_err_msg());
	va_start(ap, v);
	while ((name = va_arg(ap, const char *)) != NULL) {
		const char *content = va_arg(ap, const char *);
		char rel[PATH_MAX];

		snprintf(rel, sizeof(rel), "%s/%s/%s", m, v, name);
		fx_write(f->dir, rel, content);
	}
	va_end(ap);
}

void fx_pass(struct fx *f, const char *m, const char *v)
{
	json_t *patch = json_pack("{ss}", "validation_status", "passed");

	if (reg_version_metadata_patch(f->st, &fx_actor, m, v, patch) < 0)
		fail_msg("patch %s/%s: %s", m, v, cm_err_msg());
	json_decref(patch);
}

int fx_fsck(struct fx *f)
{
	int rc = reg_store_fsck(f->st, 0, 1, NULL, NULL);

	if (rc < 0)
		fail_msg("fsck: %s", cm_err_msg());
	return rc;
}
