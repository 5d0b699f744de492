/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Disk helpers for the volume. Every access goes through a directory fd and
 * the openat() family with O_NOFOLLOW, one checked component at a time, so
 * no name from a client can leave the store and no path length limit but
 * PATH_MAX applies. Writes that readers of the raw volume may see are
 * atomic: a temporary file, fsync, rename, and the caller's directory fsync.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

int st_openat_dir(int dirfd, const char *name, int *out)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return cm_err_set(-errno, "opening directory '%s': %s", name, strerror(errno));
	*out = fd;
	return 0;
}

int st_openat_path(int dirfd, const char *path, int flags, mode_t mode, int *out)
{
	char part[NAME_MAX + 1];
	const char *p = path;
	int cur = dirfd;
	int fd = -1;
	int rc = reg_path_check(path);

	if (rc < 0)
		return rc;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		memcpy(part, p, len);
		part[len] = '\0';
		if (!slash) {
			fd = openat(cur, part, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			if (fd < 0)
				rc = cm_err_set(-errno, "opening '%s': %s", path, strerror(errno));
			break;
		}
		fd = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = cm_err_set(-errno, "opening '%s': %s", path, strerror(errno));
			break;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		fd = -1;
		p = slash + 1;
	}
	if (cur != dirfd)
		close(cur);
	if (rc < 0)
		return rc;
	*out = fd;
	return 0;
}

int st_fsync_dir(int dirfd)
{
	if (fsync(dirfd) < 0)
		return cm_err_set(-errno, "syncing a directory: %s", strerror(errno));
	return 0;
}

static void temp_name(char *buf, size_t n, const char *name)
{
	unsigned int r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (unsigned int)getpid() ^ (unsigned int)cm_time_now_us();
	snprintf(buf, n, ".%.200s.tmp-%08x", name, r);
}

static int write_atomic(int tmpfd, int dirfd, const char *name, const void *data, size_t len,
			mode_t mode, int sync)
{
	char tmp[NAME_MAX + 1];
	const char *p = data;
	size_t left = len;
	int fd;
	int rc = 0;

	temp_name(tmp, sizeof(tmp), name);
	fd = openat(tmpfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cm_err_set(-errno, "creating a temporary file for '%s': %s", name,
				  strerror(errno));
	while (left > 0) {
		ssize_t w = write(fd, p, left);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = cm_err_set(-errno, "writing '%s': %s", name, strerror(errno));
			goto done;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fchmod(fd, mode) < 0 || (sync && fsync(fd) < 0)) {
		rc = cm_err_set(-errno, "syncing '%s': %s", name, strerror(errno));
		goto done;
	}
	if (renameat(tmpfd, tmp, dirfd, name) < 0)
		rc = cm_err_set(-errno, "renaming into '%s': %s", name, strerror(errno));
done:
	close(fd);
	if (rc < 0)
		unlinkat(tmpfd, tmp, 0);
	return rc;
}

int st_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	return write_atomic(dirfd, dirfd, name, data, len, mode, 1);
}

int st_write_atomic_nosync(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	return write_atomic(dirfd, dirfd, name, data, len, mode, 0);
}

int st_write_atomic_via(int tmpfd, int dirfd, const char *name, const void *data, size_t len,
			mode_t mode)
{
	return write_atomic(tmpfd, dirfd, name, data, len, mode, 1);
}

int st_symlink_atomic(int dirfd, const char *name, const char *target)
{
	char tmp[NAME_MAX + 1];

	temp_name(tmp, sizeof(tmp), name);
	if (symlinkat(target, dirfd, tmp) < 0)
		return cm_err_set(-errno, "creating a symlink for '%s': %s", name, strerror(errno));
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;

		unlinkat(dirfd, tmp, 0);
		return cm_err_set(-e, "renaming a symlink into '%s': %s", name, strerror(e));
	}
	return 0;
}

int st_read_file(int dirfd, const char *name, size_t max, char **out, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	size_t have = 0;
	int fd;
	int rc = 0;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cm_err_set(-errno, "opening '%s': %s", name, strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		rc = cm_err_set(-EINVAL, "'%s' is not a regular file", name);
		goto done;
	}
	if ((size_t)sb.st_size > max) {
		rc = cm_err_set(-E2BIG, "'%s' is %lld bytes, more than the limit of %zu", name,
				(long long)sb.st_size, max);
		goto done;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		rc = cm_err_set(-ENOMEM, "out of memory reading '%s'", name);
		goto done;
	}
	while (have < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + have, (size_t)sb.st_size - have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = cm_err_set(-errno, "reading '%s': %s", name, strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	buf[have] = '\0';
	*out = buf;
	buf = NULL;
	if (len)
		*len = have;
done:
	free(buf);
	close(fd);
	return rc;
}

static int remove_below(int dirfd)
{
	DIR *d;
	struct dirent *de;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	int more;

	if (fd < 0)
		return cm_err_set(-errno, "reopening a directory: %s", strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		rc = cm_err_set(-errno, "listing a directory: %s", strerror(errno));
		close(fd);
		return rc;
	}
	while ((more = cm_readdir(d, &de)) > 0) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type == DT_DIR) {
			rc = st_remove_tree(dirfd, de->d_name);
			if (rc < 0)
				break;
		} else if (unlinkat(dirfd, de->d_name, 0) < 0) {
			rc = cm_err_set(-errno, "removing '%s': %s", de->d_name, strerror(errno));
			break;
		}
	}
	if (more < 0)
		rc = more;
	closedir(d);
	return rc;
}

int st_remove_tree(int dirfd, const char *name)
{
	int fd = -1;
	int rc;

	rc = st_openat_dir(dirfd, name, &fd);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rc = remove_below(fd);
	close(fd);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = cm_err_set(-errno, "removing directory '%s': %s", name, strerror(errno));
	return rc;
}

struct file_list {
	struct reg_file *v;
	size_t n, cap;
};

static int list_add(struct file_list *l, const char *path, const struct stat *sb)
{
	if (cm_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 16) < 0)
		return cm_err_set(-ENOMEM, "out of memory listing files");
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	l->v[l->n].path = strdup(path);
	if (!l->v[l->n].path)
		return cm_err_set(-ENOMEM, "out of memory listing files");
	l->v[l->n].size = sb->st_size;
	l->v[l->n].mode = sb->st_mode & 07777;
	l->n++;
	return 0;
}

static int list_walk(int dirfd, const char *prefix, struct file_list *l, int depth)
{
	DIR *d;
	struct dirent *de;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (depth > 64)
		return cm_err_set(-ELOOP, "directories nested deeper than 64 under '%s'", prefix);
	int more = 0;

	if (fd < 0)
		return cm_err_set(-errno, "reopening a directory: %s", strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		rc = cm_err_set(-errno, "listing '%s': %s", prefix, strerror(errno));
		close(fd);
		return rc;
	}
	while (rc == 0 && (more = cm_readdir(d, &de)) > 0) {
		char path[PATH_MAX];
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!prefix[0] && !strcmp(de->d_name, REG_METADATA_FILE))
			continue;
		/* Inside a version no other name is special: a seal hashes every entry. */
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "/" : "",
				     de->d_name) >= sizeof(path)) {
			rc = cm_err_set(-ENAMETOOLONG, "a path under '%s' is longer than PATH_MAX", prefix);
			break;
		}
		if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			rc = cm_err_set(-errno, "stat '%s': %s", path, strerror(errno));
			break;
		}
		if (S_ISDIR(sb.st_mode)) {
			int sub = -1;

			rc = st_openat_dir(dirfd, de->d_name, &sub);
			if (rc == 0) {
				rc = list_walk(sub, path, l, depth + 1);
				close(sub);
			}
		} else if (S_ISREG(sb.st_mode)) {
			rc = list_add(l, path, &sb);
		} else {
			rc = cm_err_set(-EINVAL, "'%s' is not a regular file or directory (versions hold "
					"only files and directories)", path);
		}
	}
	if (rc == 0 && more < 0)
		rc = cm_err_wrap(more, "listing '%s'", prefix[0] ? prefix : ".");
	closedir(d);
	return rc;
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct reg_file *)a)->path, ((const struct reg_file *)b)->path);
}

int st_list_files(int dirfd, struct reg_file **out, size_t *n)
{
	struct file_list l = { 0 };
	int rc = list_walk(dirfd, "", &l, 0);

	if (rc < 0) {
		reg_files_free(l.v, l.n);
		return rc;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), file_cmp);
	*out = l.v;
	*n = l.n;
	return 0;
}

void reg_files_free(struct reg_file *files, size_t n)
{
	if (!files)
		return;
	for (size_t i = 0; i < n; i++)
		free(files[i].path);
	free(files);
}
