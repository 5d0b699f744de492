/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Opening and closing a store: the .modelfs/ directory, the single-writer
 * lock, the database, adoption of an existing tree and the reconcile that
 * heals a crash between a commit and its disk update.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

static char *db_default;

int reg_db_set(const char *url)
{
	char *copy = NULL;

	if (url && url[0]) {
		if (strncmp(url, "postgresql://", 13) && strncmp(url, "postgres://", 11) &&
		    !strchr(url, '='))
			return cm_err_set(-EINVAL, "--db '%.100s' is not a PostgreSQL URI "
					  "(postgresql://...) or conninfo (key=value ...)", url);
		copy = strdup(url);
		if (!copy)
			return cm_err_set(-ENOMEM, "out of memory");
	}
	free(db_default);
	db_default = copy;
	return 0;
}

const char *reg_db_get(void)
{
	return db_default;
}

void reg_store_db_status(struct reg_store *st, struct reg_db_status *out)
{
	out->kind = db_kind(st);
	out->connected = st->db_url ? atomic_load(&st->db_up) : 1;
	out->reconnects = st->db_url ? atomic_load(&st->db_reconnects) : 0;
}

int reg_store_exists(const char *path)
{
	char db[4096];
	struct stat sb;

	/* With PostgreSQL, the store's identity file marks it (the db lives elsewhere). */
	if ((size_t)snprintf(db, sizeof(db), "%s/%s/%s", path, REG_META_DIR,
			     db_default ? REG_ID_NAME : REG_DB_NAME) >= sizeof(db))
		return cm_err_set(-ENAMETOOLONG, "store path is too long");
	if (stat(db, &sb) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return cm_err_set(-errno, "checking '%s': %s", db, strerror(errno));
}

static int take_lock(struct reg_store *st)
{
	char pid[32];
	char other[32] = "";
	int fd;
	int n;

	fd = openat(st->meta_fd, REG_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return cm_err_set(-errno, "opening the store lock: %s", strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = (int)pread(fd, other, sizeof(other) - 1, 0);
		other[n > 0 ? n : 0] = '\0';
		other[strcspn(other, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return cm_err_set(-EBUSY, "the store '%s' is in use by another modelfs process%s%s%s",
					  st->path, other[0] ? " (pid " : "", other, other[0] ? ")" : "");
		return cm_err_set(-e, "locking the store: %s", strerror(e));
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		/* The pid is only for the message above; the flock is what counts. */
	}
	st->lock_fd = fd;
	return 0;
}

int reg_store_open(const char *path, unsigned flags, struct reg_store **out)
{
	struct reg_store *st;
	char db[4096];
	int existed;
	int rc;

	if (!path || !path[0])
		return cm_err_set(-EINVAL, "no store directory given");
	reg_json_init();
	st = calloc(1, sizeof(*st));
	if (!st)
		return cm_err_set(-ENOMEM, "out of memory");
	st->root_fd = st->meta_fd = st->lock_fd = -1;
	st->admin_gid = -1;
	st->flags = flags;
	pthread_mutex_init(&st->live_mu, NULL);
	pthread_mutex_init(&st->integ_mu, NULL);
	pthread_mutex_init(&st->refusal_mu, NULL);
	pthread_mutex_init(&st->obs_mu, NULL);
	pthread_cond_init(&st->live_cv, NULL);
	st->path = strdup(path);
	if (!st->path) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto fail;
	}
	st->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->root_fd < 0) {
		rc = cm_err_set(-errno, "opening the store '%s': %s", path, strerror(errno));
		goto fail;
	}
	existed = reg_store_exists(path);
	if (existed < 0) {
		rc = existed;
		goto fail;
	}
	if (!existed && !(flags & REG_OPEN_CREATE)) {
		rc = cm_err_set(-ENOENT, "'%s' is not a modelfs store (no %s/%s; run 'modelfs init %s')",
				path, REG_META_DIR, db_default ? REG_ID_NAME : REG_DB_NAME, path);
		goto fail;
	}
	if (!existed && !db_default && (flags & REG_OPEN_CREATE) &&
	    (size_t)snprintf(db, sizeof(db), "%s/%s/%s", path, REG_META_DIR, REG_ID_NAME) < sizeof(db) &&
	    access(db, F_OK) == 0) {
		rc = cm_err_set(-ESTALE, "'%s' keeps its metadata in PostgreSQL (%s/%s): give its --db "
				"(or MODELFS_DB), or bring it back with `modelfs migrate --to sqlite`",
				path, REG_META_DIR, REG_ID_NAME);
		goto fail;
	}
	if (!existed && (flags & REG_OPEN_READONLY)) {
		rc = cm_err_set(-EINVAL, "cannot create a store read-only");
		goto fail;
	}
	if (mkdirat(st->root_fd, REG_META_DIR, 0755) < 0 && errno != EEXIST) {
		rc = cm_err_set(-errno, "creating '%s/%s': %s", path, REG_META_DIR, strerror(errno));
		goto fail;
	}
	rc = st_openat_dir(st->root_fd, REG_META_DIR, &st->meta_fd);
	if (rc < 0)
		goto fail;
	/*
	 * The lock keeps a second daemon off a SQLite store. With PostgreSQL,
	 * daemons on many nodes share the store by design: the database
	 * serialises their writers.
	 */
	if ((flags & REG_OPEN_LOCK) && !db_default) {
		rc = take_lock(st);
		if (rc < 0)
			goto fail;
	}
	/*
	 * SQLite names its files by path; this is the one place a path string is
	 * built, from the directory the operator gave us.
	 */
	if ((size_t)snprintf(db, sizeof(db), "%s/%s/%s", path, REG_META_DIR, REG_DB_NAME) >= sizeof(db)) {
		rc = cm_err_set(-ENAMETOOLONG, "store path is too long");
		goto fail;
	}
	if (db_default && !(st->db_url = strdup(db_default))) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto fail;
	}
	rc = db_open(st, db, !!(flags & REG_OPEN_READONLY));
	if (rc == 0)
		rc = db_identity(st, !!(flags & REG_OPEN_READONLY));
	if (rc < 0)
		goto fail;
	if (!existed) {
		st_fsync_dir(st->meta_fd);
		st_fsync_dir(st->root_fd);
	}
	if (!(flags & REG_OPEN_READONLY)) {
		rc = reg_adopt_pending(st);
		if (rc == 1)
			rc = reg_adopt(st);
		if (rc < 0)
			goto fail;
	}
	if (!(flags & (REG_OPEN_READONLY | REG_OPEN_NO_RECONCILE))) {
		rc = reg_reconcile(st);
		if (rc == 0)
			rc = integ_backfill(st);
		if (rc == 0)
			rc = srch_backfill(st);
		if (rc < 0)
			goto fail;
	}
	*out = st;
	return 0;
fail:
	reg_store_close(st);
	return rc;
}

void reg_store_close(struct reg_store *st)
{
	if (!st)
		return;
	reg_follow_stop(st); /* the owner stops it first; this is the backstop */
	db_close(st);
	if (st->lock_fd >= 0)
		close(st->lock_fd); /* releases the flock */
	if (st->meta_fd >= 0)
		close(st->meta_fd);
	if (st->root_fd >= 0)
		close(st->root_fd);
	pthread_mutex_destroy(&st->live_mu);
	integ_free(st);
	pthread_mutex_destroy(&st->integ_mu);
	pthread_mutex_destroy(&st->refusal_mu);
	pthread_mutex_destroy(&st->obs_mu);
	pthread_cond_destroy(&st->live_cv);
	free(st->live);
	free(st->db_url);
	free(st->path);
	free(st);
}

int reg_store_fd(const struct reg_store *st)
{
	return st->root_fd;
}

void reg_store_set_hook(struct reg_store *st, reg_change_cb cb, void *ctx)
{
	st->hook = cb;
	st->hook_ctx = ctx;
}

void reg_disk_error(struct reg_store *st, int rc)
{
	st->disk_errors++;
	snprintf(st->disk_error, sizeof(st->disk_error), "%s", cm_err_describe(rc));
}

int64_t reg_store_disk_errors(struct reg_store *st, char *msg, size_t n)
{
	int64_t count;

	if (!st->writer.db)
		return 0;
	pthread_mutex_lock(&st->writer.mu);
	count = st->disk_errors;
	if (msg && n)
		snprintf(msg, n, "%s", st->disk_error);
	pthread_mutex_unlock(&st->writer.mu);
	return count;
}
