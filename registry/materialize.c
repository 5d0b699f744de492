/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The disk view of the db: alias symlinks, each version's metadata.json and
 * the generated <model>/metadata.json. It is written after the db commits,
 * with the writer connection still held so that disk changes follow commit
 * order. <model>/metadata.json is written last and carries the id of the
 * model's latest event: when it matches the log at open, everything before
 * it reached the disk; when not, the model is rewritten in full.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_i.h"

/* The version's record as written to disk: stored fields plus its names. */
static json_t *record_for_disk(json_t *rec, const char *model, const char *version)
{
	json_t *r = json_deep_copy(rec);

	if (!r)
		return NULL;
	json_object_del(r, "deployed_to");
	if (!json_object_get(r, "model_name"))
		json_object_set_new(r, "model_name", json_string(model));
	if (!json_object_get(r, "version"))
		json_object_set_new(r, "version", json_string(version));
	return r;
}

/*
 * Writes name in dirfd when its bytes differ; returns 1 if written, 0 if same.
 * `sync` 0 skips the data fsync (the directory fsync that follows still
 * orders the rename).
 */
static int write_if_changed(int dirfd, const char *name, const char *data, mode_t mode, int sync,
			    int tmpfd)
{
	size_t len = strlen(data);
	char *old = NULL;
	size_t olen = 0;
	struct stat sb;
	int same;
	int rc;

	same = st_read_file(dirfd, name, REG_META_MAX * 2, &old, &olen) == 0 && olen == len &&
	       !memcmp(old, data, len);
	free(old);
	if (same) {
		if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && (sb.st_mode & 07777) != mode)
			fchmodat(dirfd, name, mode, 0);
		return 0;
	}
	if (tmpfd >= 0)
		rc = st_write_atomic_via(tmpfd, dirfd, name, data, len, mode);
	else
		rc = sync ? st_write_atomic(dirfd, name, data, len, mode)
			  : st_write_atomic_nosync(dirfd, name, data, len, mode);
	return rc < 0 ? rc : 1;
}

/* JSON text with a final newline, as the files on disk hold it. */
static char *dump_line(json_t *j)
{
	char *text = reg_json_dumps(j, JSON_INDENT(2));
	size_t len;
	char *t2;

	if (!text)
		return NULL;
	len = strlen(text);
	t2 = realloc(text, len + 2);
	if (!t2) {
		free(text);
		return NULL;
	}
	memcpy(t2 + len, "\n", 2);
	return t2;
}

int mat_version_text(struct reg_conn *c, const char *model, const struct reg_version *v,
		     char **out)
{
	json_t *rec = NULL, *r;
	int rc = reg_record_present(c, v->id);

	if (rc == 0) {
		*out = NULL;
		return 1;
	}
	if (rc > 0)
		rc = reg_record_load(c, v->id, &rec);
	if (rc < 0)
		return rc;
	r = record_for_disk(rec, model, v->name);
	json_decref(rec);
	*out = r ? dump_line(r) : NULL;
	json_decref(r);
	return *out ? 0 : cm_err_set(-ENOMEM, "out of memory");
}

/*
 * A version without a record has no metadata.json; an empty one stays (a tool
 * created the name and has not written the record yet). Returns 1 if removed.
 */
static int absent_file_remove(int vfd)
{
	struct stat sb;

	if (fstatat(vfd, REG_METADATA_FILE, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : cm_err_set(-errno, "stat %s: %s", REG_METADATA_FILE,
							  strerror(errno));
	if (!S_ISREG(sb.st_mode) || sb.st_size == 0)
		return 0;
	if (unlinkat(vfd, REG_METADATA_FILE, 0) < 0 &&
	    errno != ENOENT)
		return cm_err_set(-errno, "removing %s: %s", REG_METADATA_FILE, strerror(errno));
	return 1;
}

static int version_file_write(struct reg_conn *c, int mfd, const struct reg_version *v,
			      const char *model)
{
	int absent;
	char *text = NULL;
	int vfd = -1;
	int rc;

	rc = mat_version_text(c, model, v, &text);
	if (rc < 0)
		return rc;
	absent = rc == 1;
	if (mkdirat(mfd, v->name, 0755) < 0 && errno != EEXIST) {
		rc = cm_err_set(-errno, "creating version directory '%s/%s': %s", model, v->name,
				strerror(errno));
		goto done;
	}
	rc = st_openat_dir(mfd, v->name, &vfd);
	if (rc < 0)
		goto done;
	if (absent)
		rc = absent_file_remove(vfd);
	else
		/* Its temporary file waits in .modelfs/: inside a version every name is content. */
		rc = write_if_changed(vfd, REG_METADATA_FILE, text,
				      v->state == REG_DRAFT ? 0644 : 0444, 1, c->st->meta_fd);
	if (rc > 0)
		rc = st_fsync_dir(vfd);
done:
	if (vfd >= 0)
		close(vfd);
	free(text);
	return rc;
}

/* Sealed content is read-only on disk too; put back write bits someone added. */
static int sealed_modes(struct reg_conn *c, int mfd, const struct reg_version *v)
{
	struct db_stmt *s;
	int vfd = -1;
	int rc;

	rc = st_openat_dir(mfd, v->name, &vfd);
	if (rc < 0)
		return rc;
	DB_STMT(c, FILE_LIST, s);
	db_bind_int64(s, 1, v->id);
	while ((rc = db_step(c, s, "listing a version's files")) > 0) {
		const char *path = db_col_str(s, 0);
		int fd = -1;
		struct stat sb;

		if (st_openat_path(vfd, path, O_RDONLY, 0, &fd) < 0)
			continue; /* missing content is fsck's to report */
		if (fstat(fd, &sb) == 0 && (sb.st_mode & 0222))
			fchmod(fd, sb.st_mode & 07555);
		close(fd);
	}
	db_reset(s);
done:
	close(vfd);
	return rc;
}

static int alias_is_db(struct reg_alias *a, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i].name, name))
			return 1;
	return 0;
}

int mat_alias_removed(struct reg_conn *c, const char *model, const char *name)
{
	struct db_stmt *s;
	int removed = 0;
	int rc = 0;

	DB_STMT(c, EVENT_ALIAS_HISTORY, s); /* newest first: one row read */
	db_bind_text(s, 1, model);
	db_bind_text(s, 2, name);
	rc = db_step(c, s, "reading an alias's last change");
	if (rc > 0)
		removed = db_col_null(s, 1);
	db_reset(s);
done:
	return rc < 0 ? 0 : removed;
}

/*
 * Points the link `name` at `target`. Only a symlink (or nothing) is
 * replaced: a directory or file under an alias's name is a clash that is
 * reported (-EEXIST), never overwritten. 1 when written, 0 when already so.
 */
static int alias_link_write(int mfd, const char *model, const char *name, const char *target)
{
	char cur[PATH_MAX];
	struct stat sb;
	ssize_t len = readlinkat(mfd, name, cur, sizeof(cur) - 1);
	int rc;

	if (len >= 0) {
		cur[len] = '\0';
		if (!strcmp(cur, target))
			return 0;
	} else if (fstatat(mfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		return cm_err_set(-EEXIST, "alias '%s' of model '%s' clashes with the %s '%s/%s' on "
				  "the volume; its link is not written (modelfs fsck --repair "
				  "removes the alias)", name, model,
				  S_ISDIR(sb.st_mode) ? "directory" : "file", model, name);
	}
	rc = st_symlink_atomic(mfd, name, target);
	return rc < 0 ? rc : 1;
}

/*
 * Writes every alias link of the db. `strict`: stop at the first failure and
 * return it (a change that has not committed yet gives up); otherwise every
 * failure is recorded as a disk error, the rest still written, and the first
 * failure returned at the end. `scan` also clears links of removed aliases
 * (the event log says we made them) and temporary links of atomic renames a
 * crash left behind; links the db never made stay.
 */
static int aliases_write(struct reg_store *st, struct reg_conn *c, int mfd, const char *model,
			 struct reg_alias *a, size_t n, int scan, int strict)
{
	int changed = 0, first = 0;
	DIR *d;
	struct dirent *de;
	int dfd;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		rc = alias_link_write(mfd, model, a[i].name, a[i].version);
		if (rc < 0 && strict)
			return rc;
		if (rc < 0) {
			reg_disk_error(st, rc);
			first = first ? first : rc;
			continue;
		}
		changed |= rc;
	}
	if (!scan)
		return first ? first : changed; /* setting an alias removes none: no large readdir */
	dfd = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return cm_err_set(-errno, "reopening a directory: %s", strerror(errno));
	d = fdopendir(dfd);
	if (!d) {
		rc = cm_err_set(-errno, "listing a model directory: %s", strerror(errno));
		close(dfd);
		return rc;
	}
	while ((rc = cm_readdir(d, &de)) > 0) {
		char target[PATH_MAX];
		ssize_t len;

		if (de->d_type != DT_LNK || alias_is_db(a, n, de->d_name))
			continue;
		len = readlinkat(mfd, de->d_name, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (reg_name_version_check(target) < 0)
			continue; /* not our kind of link (alias -> version name) */
		/* .<alias>.tmp-<n>: the temporary link of an atomic rename a crash left behind. */
		if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp-")) {
			unlinkat(mfd, de->d_name, 0);
			continue;
		}
		if (reg_name_alias_check(de->d_name) < 0 || !mat_alias_removed(c, model, de->d_name))
			continue;
		if (unlinkat(mfd, de->d_name, 0) == 0)
			changed = 1;
	}
	closedir(d);
	if (rc < 0)
		return rc;
	return first ? first : changed;
}

int mat_link(struct reg_conn *c, int64_t mid, const char *model, const char *alias)
{
	struct reg_alias *a = NULL;
	size_t n = 0;
	int mfd = -1;
	int rc;

	if (mkdirat(c->st->root_fd, model, 0755) < 0 && errno != EEXIST)
		return cm_err_set(-errno, "creating model directory '%s': %s", model, strerror(errno));
	rc = st_openat_dir(c->st->root_fd, model, &mfd);
	if (rc == 0)
		rc = mat_aliases(c, mid, &a, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!strcmp(a[i].name, alias))
			rc = alias_link_write(mfd, model, alias, a[i].version);
	if (rc > 0)
		rc = st_fsync_dir(mfd);
	if (mfd >= 0)
		close(mfd);
	free(a);
	return rc;
}

/*
 * The version summary of <model>/metadata.json: counts by state and the
 * newest version. Its size does not grow with the model, so a promotion
 * costs the same at 10 versions as at 10,000 (the list is `ls` away).
 */
static json_t *versions_summary(struct reg_conn *c, int64_t mid)
{
	json_t *sum = json_pack("{sisisisisn}", "count", 0, "draft", 0, "sealed", 0, "archived", 0,
				"latest");
	json_int_t total = 0;
	struct db_stmt *s;
	int rc = 0;

	if (!sum)
		return NULL;
	DB_STMT(c, VERSION_STATES, s);
	db_bind_int64(s, 1, mid);
	while ((rc = db_step(c, s, "counting versions by state")) > 0) {
		json_int_t n = db_col_int64(s, 1);

		if (json_object_set_new(sum, db_col_str(s, 0),
					json_integer(n)) < 0) {
			rc = cm_err_set(-ENOMEM, "out of memory");
			break;
		}
		total += n;
	}
	db_reset(s);
	if (rc < 0)
		goto done;
	if (json_object_set_new(sum, "count", json_integer(total)) < 0) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	DB_STMT(c, VERSION_LATEST, s);
	db_bind_int64(s, 1, mid);
	rc = db_step(c, s, "reading the latest version");
	if (rc > 0)
		rc = json_object_set_new(sum, "latest",
					 json_string(db_col_str(s, 0))) < 0
			     ? cm_err_set(-ENOMEM, "out of memory")
			     : 0;
	db_reset(s);
done:
	if (rc < 0) {
		json_decref(sum);
		sum = NULL;
	}
	return sum;
}

static json_t *model_document(struct reg_conn *c, const char *model, int64_t mid,
			      struct reg_alias *aliases, size_t na)
{
	json_t *doc = NULL;
	json_t *jal = json_object();
	json_t *jvers = versions_summary(c, mid);
	json_t *deployed = json_array();
	const char *current = NULL;
	struct db_stmt *s;
	int64_t last = 0;
	int bad = !jal || !deployed; /* a failed set or append: the document would lack a part */
	int rc = 0;

	for (size_t i = 0; i < na; i++) {
		bad |= json_object_set_new(jal, aliases[i].name, json_string(aliases[i].version));
		if (!strcmp(aliases[i].name, "current"))
			current = aliases[i].version;
	}
	if (current) {
		struct reg_version cv;
		json_t *rec = NULL;

		/* A record that cannot be read now must not become a document without it. */
		rc = reg_version_row(c, mid, model, current, &cv);
		if (rc == 0)
			rc = reg_record_load(c, cv.id, &rec);
		if (rc < 0)
			goto done;
		doc = record_for_disk(rec, model, current);
		json_decref(rec);
	} else {
		doc = json_object();
	}
	if (!doc || !jvers || bad) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	if (current)
		for (size_t i = 0; i < na; i++)
			if (!strcmp(aliases[i].version, current))
				bad |= json_array_append_new(deployed, json_string(aliases[i].name));
	bad |= json_object_set_new(doc, "model_name", json_string(model));
	bad |= json_object_set_new(doc, "deployed_to", deployed);
	deployed = NULL;
	for (size_t i = 0; i < na; i++)
		if (!strcmp(aliases[i].name, "canary") && aliases[i].percent >= 0)
			bad |= json_object_set_new(doc, "canary_traffic_percent",
						   json_integer(aliases[i].percent));
	{
		/* The model's own description, owner and tags (the record's are the version's). */
		json_t *about = NULL;

		rc = srch_model_about(c, mid, &about);
		if (rc < 0)
			goto done;
		bad |= json_object_set(doc, "model_description", json_object_get(about, "description"));
		bad |= json_object_set(doc, "model_owner", json_object_get(about, "owner"));
		bad |= json_object_set(doc, "model_tags", json_object_get(about, "tags"));
		json_decref(about);
	}
	bad |= json_object_set_new(doc, "aliases", jal);
	bad |= json_object_set_new(doc, "versions", jvers);
	jal = jvers = NULL;
	if (bad) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	DB_STMT(c, MODEL_LAST_EVENT, s);
	db_bind_text(s, 1, model);
	rc = db_step(c, s, "reading a model's last event");
	if (rc > 0)
		last = db_col_int64(s, 0);
	db_reset(s);
	if (rc < 0)
		goto done;
	rc = 0;
	/*
	 * event_id goes first, so that opening a store reads a line per model
	 * instead of parsing every model's version summary (check.c).
	 */
	{
		json_t *ordered = json_pack("{sI}", "event_id", (json_int_t)last);

		json_object_del(doc, "event_id");
		if (!ordered || json_object_update(ordered, doc) < 0) {
			json_decref(ordered);
			rc = cm_err_set(-ENOMEM, "out of memory");
			goto done;
		}
		json_decref(doc);
		doc = ordered;
	}
	(void)mid;
done:
	if (rc < 0) {
		json_decref(doc);
		doc = NULL;
	}
	json_decref(jal);
	json_decref(jvers);
	json_decref(deployed);
	return doc;
}

int mat_aliases(struct reg_conn *c, int64_t mid, struct reg_alias **out, size_t *n)
{
	struct reg_alias *a = NULL;
	size_t cnt = 0, cap = 0;
	struct db_stmt *s;
	int rc = 0;

	DB_STMT(c, ALIAS_LIST, s);
	db_bind_int64(s, 1, mid);
	while ((rc = db_step(c, s, "listing aliases")) > 0) {
		rc = cm_grow(&a, &cap, cnt + 1, sizeof(*a), 4);
		if (rc < 0)
			break;
		db_col_text(s, 0, a[cnt].name, sizeof(a[cnt].name));
		db_col_text(s, 1, a[cnt].version, sizeof(a[cnt].version));
		a[cnt].percent = db_col_null(s, 2) ? -1 : db_col_int(s, 2);
		a[cnt].updated_us = db_col_int64(s, 3);
		cnt++;
	}
	db_reset(s);
	if (rc == 0) {
		*out = a;
		*n = cnt;
		a = NULL;
	}
done:
	free(a);
	return rc;
}

int mat_model_text(struct reg_conn *c, const char *model, char **out)
{
	struct reg_alias *aliases = NULL;
	size_t na = 0;
	json_t *doc = NULL;
	int64_t mid;
	int rc;

	rc = reg_model_id(c, model, &mid);
	if (rc == 0)
		rc = mat_aliases(c, mid, &aliases, &na);
	if (rc == 0) {
		doc = model_document(c, model, mid, aliases, na);
		*out = doc ? dump_line(doc) : NULL;
		if (!*out)
			rc = cm_err_set(-ENOMEM, "out of memory");
	}
	json_decref(doc);
	free(aliases);
	return rc;
}

int reg_materialize(struct reg_store *st, struct reg_conn *c, const char *model,
		    const char *version, unsigned what)
{
	struct reg_alias *aliases = NULL;
	struct reg_version *vers = NULL;
	size_t na = 0, nv = 0;
	json_t *doc = NULL;
	char *text = NULL;
	int mfd = -1;
	int64_t mid;
	int dirty = 0, first = 0;
	int rc;

	rc = reg_model_id(c, model, &mid);
	if (rc < 0)
		goto done;
	if (mkdirat(st->root_fd, model, 0755) == 0) {
		dirty = 1;
		st_fsync_dir(st->root_fd);
	} else if (errno != EEXIST) {
		rc = cm_err_set(-errno, "creating model directory '%s': %s", model, strerror(errno));
		goto done;
	}
	rc = st_openat_dir(st->root_fd, model, &mfd);
	if (rc < 0)
		goto done;
	rc = mat_aliases(c, mid, &aliases, &na);
	if (rc < 0)
		goto done;
	/* Every version when healing a model; otherwise only the one that changed. */
	if (what & MAT_VERSIONS) {
		rc = reg_versions_all(c, mid, model, &vers, &nv);
	} else if (version) {
		vers = calloc(1, sizeof(*vers));
		rc = vers ? reg_version_row(c, mid, model, version, vers) : -ENOMEM;
		nv = rc == 0;
		if (rc == -ENOENT)
			rc = 0; /* deleted: nothing of it to write */
	}
	if (rc < 0)
		goto done;
	/* Aliases first: clearing a removed alias's link can make room for a version. */
	if (what & MAT_ALIASES) {
		int r = aliases_write(st, c, mfd, model, aliases, na,
				      !!(what & (MAT_ALIAS_SCAN | MAT_VERSIONS)), 0);

		if (r < 0)
			first = first ? first : r;
		else
			dirty |= r > 0;
	}
	/* One bad entry never stops the others: each failure is recorded and the rest written. */
	for (size_t i = 0; i < nv; i++) {
		int r;

		if (vers[i].state != REG_DRAFT && faccessat(mfd, vers[i].name, F_OK, AT_SYMLINK_NOFOLLOW))
			continue; /* sealed content lost: fsck reports it, nothing to write into */
		r = version_file_write(c, mfd, &vers[i], model);
		if (r < 0) {
			reg_disk_error(st, cm_err_wrap(r, "updating the disk view of '%s'", model));
			first = first ? first : r;
			continue;
		}
		dirty |= r > 0;
		if ((what & MAT_VERSIONS) && vers[i].state != REG_DRAFT)
			sealed_modes(c, mfd, &vers[i]);
	}
	/*
	 * The model's file carries the event id a start trusts as "all written":
	 * after a failure above it keeps its older id, so the next open rewrites
	 * the model in full.
	 */
	if (first < 0)
		goto done;
	doc = model_document(c, model, mid, aliases, na);
	text = doc ? dump_line(doc) : NULL;
	if (!text) {
		rc = cm_err_set(-ENOMEM, "out of memory building %s/metadata.json", model);
		goto done;
	}
	/*
	 * Not data-synced: the db already holds the change durably, and a file
	 * that a power cut left empty or old carries no readable current event_id,
	 * so the next open rewrites the whole model (reg_reconcile).
	 */
	rc = write_if_changed(mfd, REG_METADATA_FILE, text, 0644, 0, -1);
	if (rc < 0)
		goto done;
	dirty |= rc > 0;
	rc = dirty ? st_fsync_dir(mfd) : 0;
done:
	if (rc < 0)
		reg_disk_error(st, cm_err_wrap(rc, "updating the disk view of '%s'", model));
	else if (first < 0)
		rc = first; /* recorded where it happened */
	free(text);
	json_decref(doc);
	free(aliases);
	free(vers);
	if (mfd >= 0)
		close(mfd);
	return rc;
}
