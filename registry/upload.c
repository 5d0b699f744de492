/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streams into and out of a version's files for the front ends that do not
 * go through the kernel (HTTP). An upload writes to an unnamed temporary
 * file (O_TMPFILE) in the target directory and is linked under its name only
 * once complete and synced, so a failed, refused or cut upload leaves
 * nothing behind, not even after a crash. Every path is walked one checked
 * component at a time without following symlinks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

#define UPLOAD_DEPTH_MAX 64

struct reg_upload {
	struct reg_store *st;
	int64_t vid;
	int vfd;                 /* the version directory */
	int dirfd;               /* the file's parent directory */
	int fd;                  /* the temporary file being written */
	int named_tmp;           /* 1: fallback named temporary in tmp[] (no O_TMPFILE) */
	char *path;              /* relative to the version directory */
	size_t created;          /* leading directories that existed before: [0, created) */
	size_t ndirs;            /* directory components in path */
	int64_t size;
	char name[NAME_MAX + 1]; /* final name in dirfd */
	char tmp[NAME_MAX + 1];
};

/* Removes the directories this upload created, deepest first; ones now in use stay. */
static void dirs_unwind(struct reg_upload *u)
{
	char buf[PATH_MAX];

	for (size_t k = u->ndirs; k > u->created; k--) {
		/* Cut the path after component k (1-based). */
		size_t i = 0, seen = 0, len = strlen(u->path);

		for (; i < len; i++) {
			if (u->path[i] == '/' && ++seen == k)
				break;
		}
		memcpy(buf, u->path, i);
		buf[i] = '\0';
		unlinkat(u->vfd, buf, AT_REMOVEDIR); /* ENOTEMPTY: another upload uses it */
	}
}

/* Walks (and creates) the parent directories of u->path; leaves u->dirfd and u->name. */
static int dirs_open(struct reg_upload *u)
{
	const char *p = u->path;
	int cur = u->vfd;
	int rc = 0;

	u->created = SIZE_MAX;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		char part[NAME_MAX + 1];
		int fd;

		memcpy(part, p, len);
		part[len] = '\0';
		if (!slash) {
			memcpy(u->name, part, len + 1);
			break;
		}
		if (++u->ndirs > UPLOAD_DEPTH_MAX) {
			rc = cm_err_set(-EINVAL, "file path '%s' is nested deeper than %d directories",
					u->path, UPLOAD_DEPTH_MAX);
			break;
		}
		if (mkdirat(cur, part, 0755) == 0) {
			if (u->created == SIZE_MAX)
				u->created = u->ndirs - 1;
		} else if (errno != EEXIST) {
			rc = cm_err_set(-errno, "creating a directory for '%s': %s", u->path,
					strerror(errno));
			break;
		}
		fd = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = cm_err_set(errno == ELOOP ? -ENOTDIR : -errno, "opening '%s' in '%s': %s",
					part, u->path, strerror(errno == ELOOP ? ENOTDIR : errno));
			break;
		}
		if (cur != u->vfd)
			close(cur);
		cur = fd;
		p = slash + 1;
	}
	if (u->created == SIZE_MAX)
		u->created = u->ndirs;
	if (rc < 0) {
		if (cur != u->vfd)
			close(cur);
		return rc;
	}
	u->dirfd = cur == u->vfd ? dup(u->vfd) : cur;
	if (u->dirfd < 0)
		return cm_err_set(-errno, "dup: %s", strerror(errno));
	return 0;
}

static int tmp_open(struct reg_upload *u)
{
	struct stat sb;

	if (fstatat(u->dirfd, u->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(sb.st_mode))
		return cm_err_set(S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL,
				  "'%s' exists and is not a regular file", u->path);
	u->fd = openat(u->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
	if (u->fd >= 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return cm_err_set(-errno, "creating a temporary file for '%s': %s", u->path,
				  strerror(errno));
	/* No O_TMPFILE on this file system: a named temporary in .modelfs/, removed on abort. */
	snprintf(u->tmp, sizeof(u->tmp), ".%.200s.tmp-%08x", u->name,
		 (unsigned)(cm_time_now_us() ^ (int64_t)getpid()));
	u->fd = openat(u->st->meta_fd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0644);
	if (u->fd < 0)
		return cm_err_set(-errno, "creating a temporary file for '%s': %s", u->path,
				  strerror(errno));
	u->named_tmp = 1;
	return 0;
}

int reg_upload_begin(struct reg_store *st, const char *model, const char *version,
		     const char *path, struct reg_upload **out)
{
	struct reg_upload *u = NULL;
	int rc;

	rc = reg_path_check(path);
	if (rc == 0 && !strcmp(path, REG_METADATA_FILE))
		rc = cm_err_set(-EINVAL, "'%s' is the version's metadata record, not a content file: "
				"change it through the metadata calls", path);
	if (rc < 0)
		return rc;
	u = calloc(1, sizeof(*u));
	if (!u)
		return cm_err_set(-ENOMEM, "out of memory");
	u->st = st;
	u->vid = -1;
	u->vfd = u->dirfd = u->fd = -1;
	u->path = strdup(path);
	if (!u->path) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	rc = reg_write_begin(st, model, version, &u->vid);
	if (rc < 0) {
		u->vid = -1;
		goto done;
	}
	rc = reg_version_dir_open(st, model, version, &u->vfd);
	if (rc == 0)
		rc = dirs_open(u);
	if (rc == 0)
		rc = tmp_open(u);
	if (rc < 0)
		goto done;
	*out = u;
	u = NULL;
done:
	reg_upload_abort(u);
	return rc;
}

int reg_upload_write(struct reg_upload *u, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(u->fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return cm_err_set(-errno, "writing '%s': %s", u->path, strerror(errno));
		p += w;
		len -= (size_t)w;
		u->size += w;
	}
	return 0;
}

int64_t reg_upload_size(const struct reg_upload *u)
{
	return u->size;
}

/*
 * Links the O_TMPFILE under a temporary name (linkat cannot replace), then
 * renames it over. The temporary name lives in .modelfs/ (the same file
 * system), never in the version: inside a version every name is content.
 */
static int tmp_link(struct reg_upload *u)
{
	char proc[64];

	snprintf(u->tmp, sizeof(u->tmp), ".%.200s.tmp-%08x", u->name,
		 (unsigned)(cm_time_now_us() ^ (int64_t)getpid()));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", u->fd);
	if (linkat(AT_FDCWD, proc, u->st->meta_fd, u->tmp, AT_SYMLINK_FOLLOW) < 0)
		return cm_err_set(-errno, "linking '%s' into place: %s", u->path, strerror(errno));
	u->named_tmp = 1;
	return 0;
}

int reg_upload_commit(struct reg_upload *u)
{
	int rc = 0;

	if (fsync(u->fd) < 0)
		rc = cm_err_set(-errno, "syncing '%s': %s", u->path, strerror(errno));
	if (rc == 0 && !u->named_tmp)
		rc = tmp_link(u);
	if (rc == 0 && renameat(u->st->meta_fd, u->tmp, u->dirfd, u->name) < 0)
		rc = cm_err_set(-errno, "renaming into '%s': %s", u->path, strerror(errno));
	if (rc == 0) {
		u->named_tmp = 0; /* the name is the file now: nothing to remove */
		u->created = u->ndirs;
		rc = st_fsync_dir(u->dirfd);
	}
	if (rc < 0)
		return rc;
	reg_upload_abort(u); /* releases everything; the file stays */
	return 0;
}

void reg_upload_abort(struct reg_upload *u)
{
	if (!u)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (u->named_tmp)
		unlinkat(u->st->meta_fd, u->tmp, 0);
	if (u->dirfd >= 0)
		close(u->dirfd);
	if (u->vfd >= 0) {
		dirs_unwind(u);
		close(u->vfd);
	}
	if (u->vid >= 0)
		reg_write_end(u->st, u->vid);
	free(u->path);
	free(u);
}

/* The recorded size and digest of a sealed version's file; ENOENT when not recorded. */
static int file_row(struct reg_store *st, const char *model, const char *version,
		    const char *path, struct reg_version *v, struct reg_file *out)
{
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	int64_t mid;
	int rc = reg_model_id(c, model, &mid);
	int src;

	if (rc == 0)
		rc = reg_version_row(c, mid, model, version, v);
	if (rc < 0 || v->state == REG_DRAFT)
		goto done;
	DB_STMT(c, FILE_GET, s);
	db_bind_int64(s, 1, v->id);
	db_bind_text(s, 2, path);
	src = db_step(c, s, "reading a file record");
	if (src > 0) {
		out->size = db_col_int64(s, 0);
		db_col_text(s, 1, out->sha256, sizeof(out->sha256));
		out->mode = (mode_t)db_col_int(s, 2);
		out->ino = db_col_int64(s, 3);
		out->mtime_ns = db_col_int64(s, 4);
		out->ctime_ns = db_col_int64(s, 5);
	} else if (src == 0) {
		rc = cm_err_set(-ENOENT, "no file '%s' in %s/%s", path, model, version);
	} else {
		rc = src;
	}
	db_reset(s);
done:
	db_read_end(c);
	return rc;
}

int reg_version_file_open(struct reg_store *st, const char *model, const char *version,
			  const char *path, int *fd, struct reg_file *out)
{
	struct reg_version v;
	struct reg_file info = { 0 };
	struct stat sb;
	int vfd = -1, f = -1;
	int rc;

	rc = reg_path_check(path);
	if (rc == 0)
		rc = file_row(st, model, version, path, &v, &info);
	if (rc == 0)
		rc = reg_version_dir_open(st, model, version, &vfd);
	if (rc == 0) {
		/* v is only known here: a failed lookup above leaves it unset. */
		rc = st_openat_path(vfd, path, O_RDONLY, 0, &f);
		if (rc == -ELOOP || rc == -ENOTDIR || (rc == -ENOENT && v.state == REG_DRAFT))
			rc = cm_err_set(-ENOENT, "no file '%s' in %s/%s", path, model, version);
	}
	if (rc < 0)
		goto done;
	if (fstat(f, &sb) < 0) {
		rc = cm_err_set(-errno, "stat '%s': %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = cm_err_set(-ENOENT, "no file '%s' in %s/%s (it is a directory)", path, model,
				version);
		goto done;
	}
	if (v.state != REG_DRAFT) {
		info.path = (char *)path; /* borrowed for the check only */
		rc = integ_verify(st, model, version, v.id, &info, f);
		info.path = NULL;
		if (rc < 0)
			goto done;
	}
	info.size = sb.st_size;
	info.mode = sb.st_mode & 07777;
	*fd = f;
	f = -1;
	if (out)
		*out = info;
done:
	if (f >= 0)
		close(f);
	if (vfd >= 0)
		close(vfd);
	return rc;
}
