/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sealed file is served only while the kernel reports what it reported
 * just after the seal: size, inode, mtime and ctime, compared with one fstat
 * on every open through the mount and over HTTP (a re-hash is fsck's job).
 * A file edited, replaced or only touched on the raw volume is refused with
 * EIO, counted, and reported once per file and process by an
 * `integrity.mismatch` event.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

static const struct reg_actor integ_actor = { .channel = "registry", .name = "integrity" };

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int integ_stat_take(int fd, struct reg_file *f)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return cm_err_set(-errno, "stat '%s': %s", f->path, strerror(errno));
	f->ino = (int64_t)sb.st_ino;
	f->mtime_ns = ts_ns(&sb.st_mtim);
	f->ctime_ns = ts_ns(&sb.st_ctim);
	return 0;
}

void integ_stat_bind(struct db_stmt *s, int i, const struct reg_file *f)
{
	if (!f->ino) {
		db_bind_null(s, i);
		db_bind_null(s, i + 1);
		db_bind_null(s, i + 2);
		return;
	}
	db_bind_int64(s, i, f->ino);
	db_bind_int64(s, i + 1, f->mtime_ns);
	db_bind_int64(s, i + 2, f->ctime_ns);
}

/* 1 the first time this process sees (vid, path) mismatch; counts every refusal. */
static int integ_note(struct reg_store *st, int64_t vid, const char *path, const char *msg)
{
	char key[PATH_MAX + 32];
	int first = 1;

	snprintf(key, sizeof(key), "%" PRId64 "/%s", vid, path);
	pthread_mutex_lock(&st->integ_mu);
	st->integ_refused++;
	cm_strlcpy(st->integ_last, msg, sizeof(st->integ_last));
	for (size_t i = 0; i < st->integ_n && first; i++)
		first = strcmp(st->integ_seen[i], key) != 0;
	if (first && cm_grow(&st->integ_seen, &st->integ_cap, st->integ_n + 1,
			     sizeof(*st->integ_seen), 8) == 0) {
		st->integ_seen[st->integ_n] = strdup(key);
		if (st->integ_seen[st->integ_n])
			st->integ_n++;
	}
	pthread_mutex_unlock(&st->integ_mu);
	return first;
}

/* Leaves the integrity event; best effort (a read-only store cannot). */
static void integ_event(struct reg_store *st, const char *model, const char *version,
			const char *path, const char *differs, const struct reg_file *rec,
			const struct stat *sb)
{
	struct reg_conn *c = NULL;
	json_t *detail;

	if (!st->writer.db)
		return;
	detail = json_pack("{s:s s:s s:{s:I s:I s:I s:I} s:{s:I s:I s:I s:I}}", "path", path,
			   "differs", differs, "sealed", "size", (json_int_t)rec->size, "ino",
			   (json_int_t)rec->ino, "mtime_ns", (json_int_t)rec->mtime_ns, "ctime_ns",
			   (json_int_t)rec->ctime_ns, "found", "size", (json_int_t)sb->st_size, "ino",
			   (json_int_t)sb->st_ino, "mtime_ns", (json_int_t)ts_ns(&sb->st_mtim),
			   "ctime_ns", (json_int_t)ts_ns(&sb->st_ctim));
	if (detail && db_write_begin(st, &c) == 0) {
		if (reg_event_add(c, &integ_actor, "integrity.mismatch", model, version, NULL, NULL,
				  NULL, detail) == 0 &&
		    db_write_commit(c) == 0) {
			db_write_end(c);
			c = NULL;
		}
		db_write_abort(c);
	}
	json_decref(detail);
}

int integ_differs(const struct reg_file *rec, const struct stat *sb, char out[64])
{
	out[0] = '\0';
	if (sb->st_size != rec->size)
		strcat(out, ",size");
	if (rec->ino && (int64_t)sb->st_ino != rec->ino)
		strcat(out, ",inode");
	if (rec->ino && ts_ns(&sb->st_mtim) != rec->mtime_ns)
		strcat(out, ",mtime");
	if (rec->ino && ts_ns(&sb->st_ctim) != rec->ctime_ns)
		strcat(out, ",ctime");
	return out[0] != '\0';
}

int integ_verify(struct reg_store *st, const char *model, const char *version, int64_t vid,
		 const struct reg_file *rec, int fd)
{
	char differs[64] = "";
	char msg[CM_ERR_MAX];
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return cm_err_set(-errno, "stat '%s': %s", rec->path, strerror(errno));
	if (!integ_differs(rec, &sb, differs))
		return 0;
	snprintf(msg, sizeof(msg), "%s/%s/%s changed on the volume after it was sealed (%s "
		 "differ%s): it is not served; `modelfs fsck --repair` re-hashes it and serves it "
		 "again if its bytes are the sealed ones", model, version, rec->path, differs + 1,
		 strchr(differs + 1, ',') ? "" : "s");
	if (integ_note(st, vid, rec->path, msg))
		integ_event(st, model, version, rec->path, differs + 1, rec, &sb);
	return cm_err_set(-EIO, "%s", msg);
}

int reg_file_check(struct reg_store *st, const char *model, const char *version,
		   const char *path, int fd)
{
	struct reg_conn *c = db_read_begin(st);
	struct reg_file rec = { 0 };
	struct reg_version v;
	char rpath[PATH_MAX] = "";
	struct stat sb;
	struct db_stmt *s;
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);

	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, &v);
	if (rc < 0 || v.state == REG_DRAFT)
		goto done;
	if (path) {
		DB_STMT(c, FILE_GET, s);
		db_bind_int64(s, 1, v.id);
		db_bind_text(s, 2, path);
		rc = db_step(c, s, "reading a file record");
		if (rc > 0) {
			cm_strlcpy(rpath, path, sizeof(rpath));
			rec.size = db_col_int64(s, 0);
			rec.ino = db_col_int64(s, 3);
			rec.mtime_ns = db_col_int64(s, 4);
			rec.ctime_ns = db_col_int64(s, 5);
		}
	} else {
		/* The mount knows the file by its inode: the seal recorded it. */
		if (fstat(fd, &sb) < 0) {
			rc = cm_err_set(-errno, "stat: %s", strerror(errno));
			goto done;
		}
		DB_STMT(c, FILE_BY_INO, s);
		db_bind_int64(s, 1, v.id);
		db_bind_int64(s, 2, (int64_t)sb.st_ino);
		rc = db_step(c, s, "finding a file record by inode");
		if (rc > 0) {
			db_col_text(s, 0, rpath, sizeof(rpath));
			rec.size = db_col_int64(s, 1);
			rec.ino = db_col_int64(s, 4);
			rec.mtime_ns = db_col_int64(s, 5);
			rec.ctime_ns = db_col_int64(s, 6);
		}
	}
	db_reset(s);
	if (rc < 0)
		goto done;
	if (rc == 0 && path) {
		rc = cm_err_set(-ENOENT, "no file '%s' in %s/%s", path, model, version);
		goto done;
	}
	if (rc == 0) {
		/* No sealed file has this inode: replaced, unless the version predates records. */
		DB_STMT(c, FILE_ANY_UNRECORDED, s);
		db_bind_int64(s, 1, v.id);
		rc = db_step(c, s, "looking for unrecorded files");
		db_reset(s);
		if (rc != 0) {
			rc = rc < 0 ? rc : 0;
			goto done;
		}
		db_read_end(c);
		c = NULL;
		snprintf(rpath, sizeof(rpath), "(inode %llu)", (unsigned long long)sb.st_ino);
		rec.size = sb.st_size;
		rec.ino = -1; /* no recorded inode matches: reported as replaced */
		rec.mtime_ns = ts_ns(&sb.st_mtim);
		rec.ctime_ns = ts_ns(&sb.st_ctim);
	} else {
		db_read_end(c);
		c = NULL;
	}
	rec.path = rpath;
	rc = integ_verify(st, model, version, v.id, &rec, fd);
done:
	db_read_end(c);
	return rc;
}

int64_t reg_store_integrity(struct reg_store *st, int64_t *files, char *msg, size_t n)
{
	int64_t refused;

	pthread_mutex_lock(&st->integ_mu);
	refused = st->integ_refused;
	if (files)
		*files = (int64_t)st->integ_n;
	if (msg && n)
		cm_strlcpy(msg, st->integ_last, n);
	pthread_mutex_unlock(&st->integ_mu);
	return refused;
}

void integ_free(struct reg_store *st)
{
	for (size_t i = 0; i < st->integ_n; i++)
		free(st->integ_seen[i]);
	free(st->integ_seen);
	st->integ_seen = NULL;
	st->integ_n = st->integ_cap = 0;
}

struct unrecorded {
	char model[REG_NAME_MAX], version[REG_NAME_MAX];
	int64_t vid;
	struct reg_file f;
};

static void unrecorded_free(struct unrecorded *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(u[i].f.path);
	free(u);
}

/*
 * Versions sealed before migration 0005 have no recorded stat: record what
 * the kernel reports now (the bytes were trusted without it until now, and
 * fsck's re-hash still checks them), in one transaction with one event.
 * Files missing on disk stay unrecorded for fsck to report.
 */
int integ_backfill(struct reg_store *st)
{
	struct unrecorded *u = NULL;
	struct reg_conn *c = NULL;
	size_t n = 0, cap = 0, done_n = 0;
	json_t *detail = NULL;
	struct db_stmt *s;
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	DB_STMT(c, FILE_UNRECORDED, s);
	while ((rc = db_step(c, s, "listing files without a recorded stat")) > 0) {
		rc = cm_grow(&u, &cap, n + 1, sizeof(*u), 64);
		if (rc < 0)
			break;
		memset(&u[n], 0, sizeof(u[n]));
		db_col_text(s, 0, u[n].model, sizeof(u[n].model));
		db_col_text(s, 1, u[n].version, sizeof(u[n].version));
		u[n].vid = db_col_int64(s, 2);
		u[n].f.path = db_col_strdup(s, 3);
		if (!u[n++].f.path) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
	}
	db_reset(s);
	if (rc < 0 || n == 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		int vfd = -1, fd = -1;

		if (reg_version_dir_open(st, u[i].model, u[i].version, &vfd) == 0 &&
		    st_openat_path(vfd, u[i].f.path, O_RDONLY, 0, &fd) == 0 &&
		    integ_stat_take(fd, &u[i].f) == 0) {
			DB_STMT(c, FILE_STAT_SET, s);
			db_bind_int64(s, 1, u[i].vid);
			db_bind_text(s, 2, u[i].f.path);
			integ_stat_bind(s, 3, &u[i].f);
			rc = db_exec_stmt(c, s, "recording a file's stat");
			done_n++;
		}
		if (fd >= 0)
			close(fd);
		if (vfd >= 0)
			close(vfd);
		if (rc < 0)
			goto done;
	}
	cm_err_clear();
	detail = json_pack("{s:I s:I}", "recorded", (json_int_t)done_n, "unreadable",
			   (json_int_t)(n - done_n));
	rc = reg_event_add(c, &integ_actor, "integrity.backfill", NULL, NULL, NULL, NULL, NULL,
			   detail);
done:
	if (rc == 0 && n)
		rc = db_write_commit(c);
	if (rc == 0 && n) {
		db_write_end(c);
		c = NULL;
	}
	db_write_abort(c); /* also ends the transaction that found nothing to record */
	json_decref(detail);
	unrecorded_free(u, n);
	return rc;
}
