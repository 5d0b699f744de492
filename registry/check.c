/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Disk against db: the reconcile that runs at every open (cheap: one small
 * file a model, full rewrite only where a crash left a model behind, and the
 * removal of what a crash left of deleted versions and models) and fsck,
 * which compares everything and optionally repairs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

/*
 * The event id <model>/metadata.json was generated at, read from its first
 * line ({"event_id": N, ...}: materialize.c writes it first) without parsing
 * the rest; -1 when the file is missing, damaged or of another shape.
 */
static int64_t disk_event_id(int root_fd, const char *model)
{
	static const char key[] = "\"event_id\":";
	char buf[128];
	char *p, *end;
	int64_t id;
	int mfd = -1, fd;
	ssize_t n;

	if (st_openat_dir(root_fd, model, &mfd) < 0)
		return -1;
	fd = openat(mfd, REG_METADATA_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(mfd);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, key);
	if (!p || p - buf > 8)
		return -1;
	p += sizeof(key) - 1;
	while (*p == ' ')
		p++;
	id = strtoll(p, &end, 10);
	if (end == p || (*end != ',' && *end != '\n' && *end != '}'))
		return -1;
	return id;
}

/*
 * 1 when every alias link of the model on the volume is what the db says
 * (a readlink per alias: cheap enough for every start). A link someone
 * pointed elsewhere on the raw volume is rewritten from the db.
 */
static int links_follow_db(struct reg_conn *c, int root_fd, const char *model, int64_t mid)
{
	struct reg_alias *al = NULL;
	size_t na = 0;
	int mfd = -1;
	int same = 1;

	if (mat_aliases(c, mid, &al, &na) < 0 || st_openat_dir(root_fd, model, &mfd) < 0) {
		free(al);
		cm_err_clear();
		return 0;
	}
	for (size_t i = 0; same && i < na; i++) {
		char target[PATH_MAX];
		ssize_t len = readlinkat(mfd, al[i].name, target, sizeof(target) - 1);

		same = len >= 0 && (size_t)len == strlen(al[i].version) &&
		       !memcmp(target, al[i].version, (size_t)len);
	}
	close(mfd);
	free(al);
	return same;
}

/*
 * Deleting a version moves its directory into .modelfs/deleted/ inside the
 * deleting transaction, under a name that says whose it was
 * (<model>@<version>@<row id>; neither name can hold an '@'), and removes it
 * there after the commit. What a crash leaves in .modelfs/deleted/ is ours by
 * construction: the db says whether the delete committed (the row is gone:
 * remove it) or not (the row is there: put the directory back). Nothing on
 * the volume outside .modelfs/ is ever removed on the word of a file.
 */
#define TRASH_DIR "deleted"

int trash_put(struct reg_store *st, const char *model, const char *version, int64_t vid,
	      char *entry, size_t n)
{
	char name[2 * REG_NAME_MAX + 32];
	int mfd = -1, tfd = -1;
	int rc;

	entry[0] = '\0'; /* set once the directory is moved, so a restore knows there is one */
	snprintf(name, sizeof(name), "%s@%s@%lld", model, version, (long long)vid);
	rc = st_openat_dir(st->root_fd, model, &mfd);
	if (rc == -ENOENT) {
		cm_err_clear();
		return 0; /* no model directory, no version directory: nothing to move */
	}
	if (rc == 0 && mkdirat(st->meta_fd, TRASH_DIR, 0700) < 0 && errno != EEXIST)
		rc = cm_err_set(-errno, "creating .modelfs/%s: %s", TRASH_DIR, strerror(errno));
	if (rc == 0)
		rc = st_openat_dir(st->meta_fd, TRASH_DIR, &tfd);
	if (rc == 0 && renameat(mfd, version, tfd, name) < 0)
		rc = errno == ENOENT ? 1 : cm_err_set(-errno, "moving %s/%s aside: %s", model, version,
						       strerror(errno));
	else if (rc == 0)
		snprintf(entry, n, "%s", name);
	if (rc == 0)
		rc = st_fsync_dir(tfd);
	if (rc == 0)
		rc = st_fsync_dir(mfd);
	if (mfd >= 0)
		close(mfd);
	if (tfd >= 0)
		close(tfd);
	return rc < 0 ? rc : 0;
}

int trash_restore(struct reg_store *st, const char *model, const char *version, const char *entry)
{
	int mfd = -1, tfd = -1;
	int rc;

	if (!entry[0])
		return 0;
	rc = st_openat_dir(st->meta_fd, TRASH_DIR, &tfd);
	if (rc == 0)
		rc = st_openat_dir(st->root_fd, model, &mfd);
	/* RENAME_NOREPLACE: something that took the name meanwhile is not ours to replace. */
	if (rc == 0 && renameat2(tfd, entry, mfd, version, RENAME_NOREPLACE) < 0)
		rc = cm_err_set(-errno, "putting %s/%s back from .modelfs/%s/%s: %s", model, version,
				TRASH_DIR, entry, strerror(errno));
	if (rc == 0)
		rc = st_fsync_dir(mfd);
	if (mfd >= 0)
		close(mfd);
	if (tfd >= 0)
		close(tfd);
	return rc;
}

int trash_remove(struct reg_store *st, const char *entry)
{
	int tfd = -1;
	int rc;

	if (!entry[0])
		return 0;
	rc = st_openat_dir(st->meta_fd, TRASH_DIR, &tfd);
	if (rc == 0)
		rc = st_remove_tree(tfd, entry);
	if (tfd >= 0)
		close(tfd);
	return rc;
}

/* Finishes or undoes the deletes a crash interrupted (see above). */
static void trash_reconcile(struct reg_store *st, struct reg_conn *c)
{
	struct dirent *de;
	DIR *d;
	int tfd = -1, dfd;

	if (st_openat_dir(st->meta_fd, TRASH_DIR, &tfd) < 0) {
		cm_err_clear();
		return;
	}
	dfd = openat(tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	while (d && (de = readdir(d)) != NULL) {
		char model[REG_NAME_MAX], version[REG_NAME_MAX];
		struct reg_version v;
		char *at1, *at2, *end;
		long long vid;
		int64_t mid;
		int rc;

		if (de->d_name[0] == '.')
			continue;
		at1 = strchr(de->d_name, '@');
		at2 = at1 ? strchr(at1 + 1, '@') : NULL;
		if (!at2 || (size_t)(at1 - de->d_name) >= sizeof(model) ||
		    (size_t)(at2 - at1 - 1) >= sizeof(version))
			continue;
		snprintf(model, sizeof(model), "%.*s", (int)(at1 - de->d_name), de->d_name);
		snprintf(version, sizeof(version), "%.*s", (int)(at2 - at1 - 1), at1 + 1);
		vid = strtoll(at2 + 1, &end, 10);
		if (*end)
			continue;
		if (reg_model_id(c, model, &mid) == 0 &&
		    reg_version_row(c, mid, model, version, &v) == 0 && v.id == vid)
			rc = trash_restore(st, model, version, de->d_name);
		else
			rc = trash_remove(st, de->d_name);
		if (rc < 0)
			reg_disk_error(st, cm_err_wrap(rc, "finishing the delete of %s/%s", model,
						       version));
	}
	if (d)
		closedir(d);
	else if (dfd >= 0)
		close(dfd);
	close(tfd);
	cm_err_clear();
}

/* 1 when the last event that made or removed the model is its delete. */
static int model_deleted(struct reg_conn *c, const char *model)
{
	struct db_stmt *s = db_stmt(c, REG_SQL_EVENT_LAST_MODEL);
	int deleted = 0;

	if (!s)
		return 0;
	db_bind_text(s, 1, model);
	/* An error reads as "not deleted": nothing is removed on a doubt. */
	if (db_step(c, s, "reading a model's last event") > 0)
		deleted = !strcmp(db_col_str(s, 0), "model.delete");
	db_reset(s);
	return deleted;
}

/*
 * Removes what a crash left of a deleted model's directory: our generated
 * metadata.json and temporary files of atomic writes. Anything else in it is
 * someone's content: then nothing is touched and fsck reports the directory.
 */
static int remove_model_remains(struct reg_store *st, const char *model)
{
	struct dirent *de;
	DIR *d;
	int mfd = -1, dfd;
	int pass;
	int rc = st_openat_dir(st->root_fd, model, &mfd);

	if (rc < 0)
		return rc;
	dfd = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		rc = cm_err_set(-errno, "listing '%s': %s", model, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		close(mfd);
		return rc;
	}
	/* Pass 0 checks that everything is ours, pass 1 removes it. */
	for (pass = 0; rc == 0 && pass < 2; pass++) {
		rewinddir(d);
		while (rc == 0 && (rc = cm_readdir(d, &de)) > 0) {
			int ours;

			rc = 0;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (!strcmp(de->d_name, REG_METADATA_FILE))
				ours = disk_event_id(st->root_fd, model) >= 0;
			else
				ours = de->d_name[0] == '.' && strstr(de->d_name, ".tmp-") &&
				       de->d_type != DT_DIR;
			if (!ours)
				rc = -ENOTEMPTY;
			else if (pass == 1 && unlinkat(mfd, de->d_name, 0) < 0 && errno != ENOENT)
				rc = cm_err_set(-errno, "removing '%s/%s': %s", model, de->d_name,
						strerror(errno));
		}
	}
	closedir(d);
	close(mfd);
	if (rc == 0 && unlinkat(st->root_fd, model, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = cm_err_set(-errno, "removing model directory '%s': %s", model, strerror(errno));
	return rc;
}

/*
 * Finishes model deletes a crash interrupted: reg_model_delete commits, then
 * removes <model>/metadata.json and the directory. Looks only at directories
 * the db does not know whose model's last event is its delete.
 */
static void finish_model_deletes(struct reg_store *st, struct reg_conn *c,
				 const struct reg_model *models, size_t n)
{
	struct dirent *de;
	DIR *d;
	int dfd = openat(st->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int removed = 0;
	int more;

	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((more = cm_readdir(d, &de)) > 0) {
		struct stat sb;
		int known = 0;
		int rc;

		if (de->d_name[0] == '.' || reg_name_model_check(de->d_name) < 0)
			continue;
		for (size_t i = 0; i < n && !known; i++)
			known = !strcmp(models[i].name, de->d_name);
		if (known || fstatat(st->root_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(sb.st_mode) || !model_deleted(c, de->d_name))
			continue;
		rc = remove_model_remains(st, de->d_name);
		if (rc < 0 && rc != -ENOTEMPTY)
			reg_disk_error(st, cm_err_wrap(rc, "finishing the delete of model '%s'",
						       de->d_name));
		removed |= rc == 0;
	}
	if (more < 0)
		reg_disk_error(st, cm_err_wrap(more, "looking for deleted models' remains"));
	closedir(d);
	if (removed)
		st_fsync_dir(st->root_fd);
	cm_err_clear();
}

int reg_reconcile(struct reg_store *st)
{
	struct reg_model *models = NULL;
	struct reg_conn *c = &st->writer;
	size_t n = 0;
	int rc;

	rc = reg_model_list(st, NULL, 0, &models, &n);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->mu);
	trash_reconcile(st, c);
	for (size_t i = 0; i < n; i++) {
		struct db_stmt *s = db_stmt(c, REG_SQL_MODEL_LAST_EVENT);
		int64_t last = 0, disk;

		if (!s) {
			rc = -EIO;
			break;
		}
		db_bind_text(s, 1, models[i].name);
		rc = db_step(c, s, "reading a model's last event");
		if (rc > 0)
			last = db_col_int64(s, 0);
		db_reset(s);
		if (rc < 0)
			break;
		rc = 0;
		/*
		 * The event id in <model>/metadata.json only says whether to rewrite
		 * the model in full; it never decides that something is removed.
		 */
		disk = disk_event_id(st->root_fd, models[i].name);
		if (disk == last && links_follow_db(c, st->root_fd, models[i].name, models[i].id))
			continue;
		/* A failure is recorded (disk error) and never stops the other models. */
		reg_materialize(st, c, models[i].name, NULL,
				disk == last ? MAT_ALIASES : MAT_ALIASES | MAT_VERSIONS);
		cm_err_clear();
	}
	if (rc == 0)
		finish_model_deletes(st, c, models, n);
	pthread_mutex_unlock(&c->mu);
	free(models);
	return rc;
}

static const char *const kind_names[] = {
	[REG_FSCK_MISSING_FILE] = "missing-file",
	[REG_FSCK_EXTRA_FILE] = "extra-file",
	[REG_FSCK_DIGEST] = "digest-mismatch",
	[REG_FSCK_SIZE] = "size-mismatch",
	[REG_FSCK_MODE] = "writable-sealed-file",
	[REG_FSCK_MISSING_DIR] = "missing-directory",
	[REG_FSCK_EXTRA_DIR] = "unknown-directory",
	[REG_FSCK_ALIAS_STALE] = "stale-alias",
	[REG_FSCK_ALIAS_DANGLING] = "dangling-symlink",
	[REG_FSCK_ALIAS_MISSING] = "missing-alias",
	[REG_FSCK_METADATA] = "metadata-differs",
	[REG_FSCK_ALIAS_UNKNOWN] = "unknown-alias-link",
	[REG_FSCK_NAME_CLASH] = "name-clash",
	[REG_FSCK_STAT] = "changed-after-seal",
};

const char *reg_fsck_kind_name(enum reg_fsck_kind kind)
{
	if ((size_t)kind < sizeof(kind_names) / sizeof(kind_names[0]) && kind_names[kind])
		return kind_names[kind];
	return "unknown";
}

struct fsck {
	struct reg_store *st;
	int repair, hash;
	reg_fsck_cb cb;
	void *ctx;
	int left;       /* problems not repaired */
	int model_dirty; /* a problem a full materialize repairs */
};

static void report(struct fsck *f, enum reg_fsck_kind kind, int repairable, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void report(struct fsck *f, enum reg_fsck_kind kind, int repairable, const char *fmt, ...)
{
	char where[PATH_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(where, sizeof(where), fmt, ap);
	va_end(ap);
	if (repairable && f->repair)
		f->model_dirty |= 1;
	else
		f->left++;
	if (f->cb)
		f->cb(f->ctx, kind, where, NULL, repairable && f->repair);
}

/*
 * The file holds `want`: the same bytes, or the same JSON written by an
 * earlier release in another format (reals with 17 digits, say).
 */
static int file_same(int dirfd, const char *name, const char *want)
{
	char *have = NULL;
	json_t *a = NULL, *b = NULL;
	int same;

	if (st_read_file(dirfd, name, REG_META_MAX * 4, &have, NULL) < 0)
		return 0;
	same = !strcmp(have, want);
	if (!same) {
		a = json_loads(have, 0, NULL);
		b = json_loads(want, 0, NULL);
		same = a && b && json_equal(a, b);
	}
	json_decref(a);
	json_decref(b);
	free(have);
	return same;
}

static int in_versions(struct reg_version *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return 1;
	return 0;
}

static int check_sealed_files(struct fsck *f, struct reg_conn *c, int vfd, const char *model,
			      const struct reg_version *v)
{
	struct reg_file *disk = NULL, *restat = NULL;
	struct db_stmt *s = db_stmt(c, REG_SQL_FILE_LIST);
	size_t nd = 0, nr = 0, capr = 0;
	int rc;

	if (!s)
		return -EIO;
	db_bind_int64(s, 1, v->id);
	while ((rc = db_step(c, s, "listing a version's files")) > 0) {
		const char *path = db_col_str(s, 0);
		int64_t size = db_col_int64(s, 1);
		const char *sha = db_col_str(s, 2);
		struct reg_file rec = { .path = (char *)path, .size = size,
					.ino = db_col_int64(s, 4),
					.mtime_ns = db_col_int64(s, 5),
					.ctime_ns = db_col_int64(s, 6) };
		char differs[64];
		struct stat sb;
		int fd = -1;
		int same;

		if (st_openat_path(vfd, path, O_RDONLY, 0, &fd) < 0) {
			report(f, REG_FSCK_MISSING_FILE, 0, "%s/%s/%s", model, v->name, path);
			continue;
		}
		if (fstat(fd, &sb) == 0) {
			same = sb.st_size == size;
			if (!same)
				report(f, REG_FSCK_SIZE, 0, "%s/%s/%s", model, v->name, path);
			else if (f->hash) {
				char got[65];

				same = reg_digest_fd(fd, got, NULL) == 0 && !strcmp(got, sha);
				if (!same)
					report(f, REG_FSCK_DIGEST, 0, "%s/%s/%s", model, v->name, path);
			}
			if (sb.st_mode & 0222)
				report(f, REG_FSCK_MODE, 1, "%s/%s/%s", model, v->name, path);
			/*
			 * Opens refuse a file whose stat changed after its seal; bytes
			 * that re-hash to the digest are the sealed ones, so a repair
			 * records the new stat (write bits first: chmod moves ctime).
			 */
			if (same && integ_differs(&rec, &sb, differs)) {
				int ok = f->hash && same;

				report(f, REG_FSCK_STAT, ok, "%s/%s/%s", model, v->name, path);
				if (ok && f->repair &&
				    cm_grow(&restat, &capr, nr + 1, sizeof(*restat), 8) == 0) {
					memset(&restat[nr], 0, sizeof(restat[nr]));
					restat[nr].path = strdup(path);
					if (sb.st_mode & 0222)
						fchmod(fd, sb.st_mode & 07555);
					if (restat[nr].path && integ_stat_take(fd, &restat[nr]) == 0)
						nr++;
					else
						free(restat[nr].path);
				}
			}
		}
		close(fd);
	}
	db_reset(s);
	for (size_t i = 0; rc == 0 && i < nr; i++) {
		s = db_stmt(c, REG_SQL_FILE_STAT_SET);
		if (!s) {
			rc = -EIO;
			break;
		}
		db_bind_int64(s, 1, v->id);
		db_bind_text(s, 2, restat[i].path);
		integ_stat_bind(s, 3, &restat[i]);
		rc = db_exec_stmt(c, s, "recording a file's stat");
	}
	reg_files_free(restat, nr);
	if (rc < 0)
		return rc;
	/* Files on disk the seal did not record. */
	rc = st_list_files(vfd, &disk, &nd);
	for (size_t i = 0; rc == 0 && i < nd; i++) {
		struct db_stmt *q = db_stmt(c, REG_SQL_FILE_GET);
		int known;

		if (!q) {
			rc = -EIO;
			break;
		}
		db_bind_int64(q, 1, v->id);
		db_bind_text(q, 2, disk[i].path);
		known = db_step(c, q, "looking up a file record");
		db_reset(q);
		if (known < 0)
			rc = known;
		else if (!known)
			report(f, REG_FSCK_EXTRA_FILE, 0, "%s/%s/%s", model, v->name, disk[i].path);
	}
	reg_files_free(disk, nd);
	return rc;
}

static int check_model(struct fsck *f, struct reg_conn *c, const char *model, int64_t mid)
{
	struct reg_version *vers = NULL;
	struct reg_alias *al = NULL;
	size_t nv = 0, na = 0;
	char *text = NULL;
	struct dirent *de;
	DIR *d = NULL;
	int mfd = -1, dfd;
	int rc;

	f->model_dirty = 0;
	rc = reg_versions_all(c, mid, model, &vers, &nv);
	if (rc == 0)
		rc = mat_aliases(c, mid, &al, &na);
	if (rc < 0)
		goto done;
	if (st_openat_dir(f->st->root_fd, model, &mfd) < 0) {
		report(f, REG_FSCK_MISSING_DIR, 1, "%s", model);
		goto repair;
	}
	for (size_t i = 0; i < nv; i++) {
		int vfd = -1;

		if (st_openat_dir(mfd, vers[i].name, &vfd) < 0) {
			report(f, REG_FSCK_MISSING_DIR, vers[i].state == REG_DRAFT, "%s/%s", model,
			       vers[i].name);
			continue;
		}
		if (mat_version_text(c, model, &vers[i], &text) == 0 &&
		    !file_same(vfd, REG_METADATA_FILE, text))
			report(f, REG_FSCK_METADATA, 1, "%s/%s/%s", model, vers[i].name,
			       REG_METADATA_FILE);
		free(text);
		text = NULL;
		if (vers[i].state != REG_DRAFT)
			rc = check_sealed_files(f, c, vfd, model, &vers[i]);
		close(vfd);
		if (rc < 0)
			goto done;
	}
	for (size_t i = 0; i < na; i++) {
		char target[PATH_MAX];
		ssize_t len = readlinkat(mfd, al[i].name, target, sizeof(target) - 1);
		struct stat sb;

		if (in_versions(vers, nv, al[i].name) ||
		    (len < 0 && fstatat(mfd, al[i].name, &sb, AT_SYMLINK_NOFOLLOW) == 0)) {
			/* One name, two entries: the alias gives way (its history stays in the log). */
			report(f, REG_FSCK_NAME_CLASH, 1, "%s/%s", model, al[i].name);
			f->model_dirty |= f->repair ? 4 : 0;
			continue;
		}
		if (len < 0) {
			report(f, REG_FSCK_ALIAS_MISSING, 1, "%s/%s", model, al[i].name);
			continue;
		}
		target[len] = '\0';
		if (strcmp(target, al[i].version))
			report(f, REG_FSCK_ALIAS_STALE, 1, "%s/%s", model, al[i].name);
	}
	dfd = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		rc = cm_err_set(-errno, "listing '%s': %s", model, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		goto done;
	}
	while ((rc = cm_readdir(d, &de)) > 0) {
		struct stat sb;
		int known = 0;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, REG_METADATA_FILE))
			continue;
		if (fstatat(mfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISLNK(sb.st_mode)) {
			for (size_t i = 0; i < na; i++)
				known |= !strcmp(al[i].name, de->d_name);
			if (!known) {
				char target[PATH_MAX];
				ssize_t len = readlinkat(mfd, de->d_name, target, sizeof(target) - 1);
				int ours;

				target[len > 0 ? len : 0] = '\0';
				/*
				 * The link of a removed alias is ours to clear; any other link
				 * (a hand-made alias, a link to elsewhere) is the operator's:
				 * reported, never removed.
				 */
				ours = len > 0 && reg_name_alias_check(de->d_name) == 0 &&
				       reg_name_version_check(target) == 0 &&
				       mat_alias_removed(c, model, de->d_name);
				if (ours)
					report(f, REG_FSCK_ALIAS_DANGLING, 1, "%s/%s", model, de->d_name);
				else
					report(f, REG_FSCK_ALIAS_UNKNOWN, 0, "%s/%s -> %s", model,
					       de->d_name, target);
			}
		} else if (S_ISDIR(sb.st_mode) && !in_versions(vers, nv, de->d_name)) {
			int ok = reg_name_version_check(de->d_name) == 0;

			report(f, REG_FSCK_EXTRA_DIR, ok, "%s/%s", model, de->d_name);
			if (ok && f->repair) {
				/* Adoption takes the writer: do it after this model's pass. */
				f->model_dirty |= 2;
			}
		}
	}
	if (rc < 0) {
		rc = cm_err_wrap(rc, "listing '%s'", model);
		goto done;
	}
	if (mat_model_text(c, model, &text) == 0 && !file_same(mfd, REG_METADATA_FILE, text)) {
		/* Only a generated file that is out of date; the event id says why. */
		report(f, REG_FSCK_METADATA, 1, "%s/%s", model, REG_METADATA_FILE);
	}
repair:
	/*
	 * A write that still fails (a clash resolved below, an I/O error) is
	 * recorded and counted as left; the other entries are written all the same.
	 */
	if (f->repair && (f->model_dirty & 1) &&
	    reg_materialize(f->st, c, model, NULL, MAT_ALIASES | MAT_VERSIONS) < 0 &&
	    !(f->model_dirty & 4))
		f->left++;
	cm_err_clear();
done:
	if (d)
		closedir(d);
	if (mfd >= 0)
		close(mfd);
	free(text);
	free(vers);
	free(al);
	return rc;
}

static const struct reg_actor fsck_actor = { .channel = "fsck", .name = "modelfs" };

/*
 * Removes the aliases of `model` whose name a version (db) or a directory or
 * file (volume) holds, each with an alias.delete event that says why, then
 * writes the model's disk view again. The version is content, the alias a
 * pointer whose history stays in the log: the alias gives way.
 */
static int drop_clashing_aliases(struct reg_store *st, const char *model)
{
	struct reg_alias *al = NULL;
	struct reg_conn *c = NULL;
	size_t na = 0;
	int mfd = -1;
	int64_t mid;
	int rc;

	rc = db_write_begin(st, &c);
	if (rc < 0)
		return rc;
	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = mat_aliases(c, mid, &al, &na);
	if (rc < 0)
		goto done;
	st_openat_dir(st->root_fd, model, &mfd);
	for (size_t i = 0; i < na; i++) {
		struct reg_version v;
		struct stat sb;
		struct db_stmt *s;
		json_t *detail;
		int clash = reg_version_row(c, mid, model, al[i].name, &v) == 0;

		if (!clash && mfd >= 0 && fstatat(mfd, al[i].name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			clash = !S_ISLNK(sb.st_mode);
		if (!clash)
			continue;
		DB_STMT(c, ALIAS_DELETE, s);
		db_bind_int64(s, 1, mid);
		db_bind_text(s, 2, al[i].name);
		rc = db_exec_stmt(c, s, "removing a clashing alias");
		if (rc < 0)
			goto done;
		detail = json_pack("{ss}", "reason", "fsck --repair: the name is taken by a version or "
				   "a directory of the model");
		rc = reg_event_add(c, &fsck_actor, "alias.delete", model, al[i].version, al[i].name,
				   al[i].version, NULL, detail);
		json_decref(detail);
		if (rc < 0)
			goto done;
	}
	rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	/* What still cannot be written is recorded (a disk error) and shows in the next fsck. */
	reg_materialize(st, c, model, NULL, MAT_ALIASES | MAT_VERSIONS);
	db_write_end(c);
	c = NULL;
done:
	db_write_abort(c);
	if (mfd >= 0)
		close(mfd);
	free(al);
	return rc;
}

/* Adopts version directories of `model` that the db does not know. */
static int adopt_extra_versions(struct reg_store *st, const char *model)
{
	struct dirent *de;
	DIR *d;
	int mfd = -1, dfd;
	int rc = st_openat_dir(st->root_fd, model, &mfd);

	if (rc < 0)
		return rc;
	dfd = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		rc = cm_err_set(-errno, "listing '%s': %s", model, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		close(mfd);
		return rc;
	}
	while ((rc = cm_readdir(d, &de)) > 0) {
		struct reg_version v;
		struct stat sb;

		if (de->d_name[0] == '.' || reg_name_version_check(de->d_name) < 0)
			continue;
		if (fstatat(mfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
			continue;
		if (reg_version_get(st, model, de->d_name, &v) == 0)
			continue;
		rc = adopt_version_dir(st, model, de->d_name);
		if (rc < 0)
			break;
	}
	closedir(d);
	close(mfd);
	if (rc < 0)
		return rc;
	cm_err_clear();
	return 0;
}

int reg_store_fsck(struct reg_store *st, int repair, int hash, reg_fsck_cb cb, void *ctx)
{
	struct fsck f = { .st = st, .repair = repair, .hash = hash, .cb = cb, .ctx = ctx };
	struct reg_model *models = NULL;
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int dfd;
	int rc;

	if (repair && !st->writer.db)
		return cm_err_set(-EROFS, "repair needs the store opened for writing");
	rc = reg_model_list(st, NULL, 0, &models, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct reg_conn *c = repair ? &st->writer : db_read_begin(st);
		int adopt, clash;

		if (repair)
			pthread_mutex_lock(&c->mu);
		rc = check_model(&f, c, models[i].name, models[i].id);
		adopt = f.model_dirty & 2;
		clash = f.model_dirty & 4;
		if (repair)
			pthread_mutex_unlock(&c->mu);
		else
			db_read_end(c);
		if (rc == 0 && clash)
			rc = drop_clashing_aliases(st, models[i].name);
		if (rc == 0 && adopt)
			rc = adopt_extra_versions(st, models[i].name);
	}
	/* Model directories the db does not know. */
	dfd = rc == 0 ? openat(st->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (rc == 0 && !d) {
		rc = cm_err_set(-errno, "listing the store: %s", strerror(errno));
		if (dfd >= 0)
			close(dfd);
	}
	while (rc == 0 && d && (rc = cm_readdir(d, &de)) > 0) {
		struct stat sb;
		int known = 0;

		rc = 0;
		if (de->d_name[0] == '.' || reg_name_model_check(de->d_name) < 0)
			continue;
		if (fstatat(st->root_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(sb.st_mode))
			continue;
		for (size_t i = 0; i < n; i++)
			known |= !strcmp(models[i].name, de->d_name);
		if (known)
			continue;
		f.model_dirty = 0;
		report(&f, REG_FSCK_EXTRA_DIR, 1, "%s", de->d_name);
		if (repair)
			rc = adopt_model_dir(st, de->d_name, NULL);
	}
	if (d)
		closedir(d);
	cm_err_clear();
	free(models);
	return rc < 0 ? rc : f.left;
}
