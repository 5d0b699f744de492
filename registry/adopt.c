/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Adoption of a volume laid out the way teams already keep models
 * (<model>/<version>/<files>, <model>/current -> v1, metadata.json files):
 * every model, version and alias is recorded, files are hashed, versions are
 * sealed (they are already published), and each model gets one import event.
 * Originals of files the registry regenerates are kept in .modelfs/adopted/.
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

static const struct reg_actor import_actor = { .channel = "import", .name = "modelfs" };

struct name_list {
	char (*v)[REG_NAME_MAX];
	char (*target)[REG_NAME_MAX];
	size_t n, cap;
};

static int names_add(struct name_list *l, const char *name, const char *target)
{
	if (l->n == l->cap) {
		size_t cv = l->cap, ct = l->cap; /* the two arrays grow in step */
		int rc = cm_grow(&l->v, &cv, l->n + 1, sizeof(*l->v), 16);

		if (rc == 0)
			rc = cm_grow(&l->target, &ct, l->n + 1, sizeof(*l->target), 16);
		if (rc < 0)
			return rc;
		l->cap = cv;
	}
	cm_strlcpy(l->v[l->n], name, REG_NAME_MAX);
	cm_strlcpy(l->target[l->n], target ? target : "", REG_NAME_MAX);
	l->n++;
	return 0;
}

static void names_free(struct name_list *l)
{
	free(l->v);
	free(l->target);
}

static int vers_cmp(const void *a, const void *b)
{
	return strverscmp((const char *)a, (const char *)b);
}

/* Keeps a copy of a file the registry is about to regenerate. */
static void keep_original(struct reg_store *st, int dirfd, const char *model, const char *version)
{
	char name[NAME_MAX + 1];
	char *data = NULL;
	size_t len = 0;
	int afd = -1;

	if (st_read_file(dirfd, REG_METADATA_FILE, REG_META_MAX * 4, &data, &len) < 0)
		return;
	if (mkdirat(st->meta_fd, "adopted", 0755) < 0 && errno != EEXIST)
		goto done;
	if (st_openat_dir(st->meta_fd, "adopted", &afd) < 0)
		goto done;
	snprintf(name, sizeof(name), "%s%s%s.metadata.json", model, version ? "__" : "",
		 version ? version : "");
	if (st_write_atomic(afd, name, data, len, 0444) == 0)
		st_fsync_dir(afd);
done:
	if (afd >= 0)
		close(afd);
	free(data);
}

/* Reads a version's metadata.json; an unreadable one becomes {} and a note. */
static json_t *read_record(struct reg_store *st, int vfd, const char *model, const char *version,
			   json_t *notes)
{
	json_error_t jerr;
	char *data = NULL;
	json_t *rec;
	int rc;

	rc = st_read_file(vfd, REG_METADATA_FILE, REG_META_MAX, &data, NULL);
	if (rc == -ENOENT)
		return json_object();
	if (rc < 0) {
		json_array_append_new(notes, json_sprintf("%s/%s/metadata.json: %s", model, version,
							  cm_err_msg()));
		keep_original(st, vfd, model, version);
		return json_object();
	}
	rec = reg_json_loads(data, &jerr);
	free(data);
	if (!rec) {
		json_array_append_new(notes, json_sprintf("%s/%s/metadata.json is not JSON (%s, line "
							  "%d); kept in .modelfs/adopted/", model,
							  version, jerr.text, jerr.line));
		keep_original(st, vfd, model, version);
		return json_object();
	}
	if (meta_check(rec, model, version) < 0) {
		json_array_append_new(notes, json_sprintf("%s/%s/metadata.json: %s; kept in "
							  ".modelfs/adopted/", model, version,
							  cm_err_msg()));
		keep_original(st, vfd, model, version);
		json_decref(rec);
		return json_object();
	}
	json_object_del(rec, "deployed_to");
	return rec;
}

struct adopted {
	char name[REG_NAME_MAX];
	json_t *rec;
	struct reg_file *files;
	size_t n;
	int64_t total;
	char digest[65];
	int ok;
};

static int record_version(struct reg_conn *c, int64_t mid, const char *model, int64_t seq,
			  struct adopted *a)
{
	char *text = reg_json_dumps(a->rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	static const char *const cols[] = { "git_commit", "training_data_hash", "validation_status",
					    "parent_version" };
	struct db_stmt *s;
	int64_t vid;
	int64_t now = cm_time_now_us();
	int rc = 0;

	if (!text)
		return cm_err_set(-ENOMEM, "out of memory");
	DB_STMT(c, VERSION_INSERT, s);
	db_bind_int64(s, 1, mid);
	db_bind_text(s, 2, a->name);
	db_bind_int64(s, 3, seq);
	db_bind_int64(s, 4, now);
	db_bind_text(s, 5, text);
	for (int i = 0; i < 4; i++) {
		json_t *v = json_object_get(a->rec, cols[i]);

		db_bind_text(s, 6 + i, json_is_string(v) ? json_string_value(v) : NULL);
	}
	rc = db_exec_stmt(c, s, "adopting a version");
	if (rc < 0)
		goto done;
	vid = db_last_id(c);
	rc = srch_leaves_set(c, vid, a->rec);
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < a->n; i++) {
		DB_STMT(c, FILE_INSERT, s);
		db_bind_int64(s, 1, vid);
		db_bind_text(s, 2, a->files[i].path);
		db_bind_int64(s, 3, a->files[i].size);
		db_bind_text(s, 4, a->files[i].sha256);
		db_bind_int(s, 5, (int)a->files[i].mode);
		integ_stat_bind(s, 6, &a->files[i]);
		rc = db_exec_stmt(c, s, "adopting a file");
		if (rc < 0)
			goto done;
	}
	DB_STMT(c, VERSION_SEAL, s);
	db_bind_int64(s, 1, vid);
	db_bind_int64(s, 2, now);
	db_bind_int64(s, 3, a->total);
	db_bind_text(s, 4, a->digest);
	rc = db_exec_stmt(c, s, "sealing an adopted version");
done:
	free(text);
	return rc;
}

int adopt_model_dir(struct reg_store *st, const char *name, json_t *report)
{
	struct name_list vers = { 0 }, links = { 0 };
	struct adopted *ad = NULL;
	struct reg_conn *c = NULL;
	json_t *notes = json_array();
	json_t *detail = NULL, *jv = NULL, *ja = NULL;
	struct dirent *de;
	DIR *d = NULL;
	int mfd = -1, dfd;
	int64_t mid, seq = 1;
	int rc;

	rc = st_openat_dir(st->root_fd, name, &mfd);
	if (rc < 0)
		goto done;
	dfd = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		rc = cm_err_set(-errno, "listing '%s': %s", name, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		goto done;
	}
	while ((rc = cm_readdir(d, &de)) > 0) {
		struct stat sb;

		rc = 0;
		if (de->d_name[0] == '.' || !strcmp(de->d_name, REG_METADATA_FILE))
			continue;
		if (fstatat(mfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISLNK(sb.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(mfd, de->d_name, target, sizeof(target) - 1);

			if (len < 0)
				continue;
			target[len] = '\0';
			if (len >= 2 && target[len - 1] == '/')
				target[len - 1] = '\0';
			if (!strncmp(target, "./", 2))
				memmove(target, target + 2, strlen(target + 2) + 1);
			if (reg_name_alias_check(de->d_name) < 0 || reg_name_version_check(target) < 0) {
				json_array_append_new(notes, json_sprintf("%s/%s -> %s is not an alias "
									  "of a version here; left "
									  "as it was", name,
									  de->d_name, target));
				continue;
			}
			rc = names_add(&links, de->d_name, target);
		} else if (S_ISDIR(sb.st_mode)) {
			if (reg_name_version_check(de->d_name) < 0) {
				json_array_append_new(notes, json_sprintf("%s/%s: %s; not adopted", name,
									  de->d_name, cm_err_msg()));
				continue;
			}
			rc = names_add(&vers, de->d_name, NULL);
		}
		if (rc < 0)
			goto done;
	}
	if (rc < 0) {
		rc = cm_err_wrap(rc, "listing '%s'", name);
		goto done;
	}
	if (vers.n)
		qsort(vers.v, vers.n, sizeof(*vers.v), vers_cmp);
	ad = calloc(vers.n ? vers.n : 1, sizeof(*ad));
	if (!ad) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	/* Hash and write-protect outside the db lock. */
	for (size_t i = 0; i < vers.n; i++) {
		int vfd = -1;

		cm_strlcpy(ad[i].name, vers.v[i], sizeof(ad[i].name));
		if (st_openat_dir(mfd, vers.v[i], &vfd) < 0)
			continue;
		ad[i].rec = read_record(st, vfd, name, vers.v[i], notes);
		rc = st_list_files(vfd, &ad[i].files, &ad[i].n);
		if (rc == 0)
			rc = ver_seal_files(vfd, ad[i].files, ad[i].n, &ad[i].total);
		if (rc == 0)
			rc = ver_sync_dirs(vfd, ad[i].files, ad[i].n);
		if (rc == 0)
			rc = ver_digest(ad[i].files, ad[i].n, ad[i].digest);
		close(vfd);
		if (rc < 0) {
			json_array_append_new(notes, json_sprintf("%s/%s not adopted: %s", name,
								  vers.v[i], cm_err_msg()));
			rc = 0;
			continue;
		}
		ad[i].ok = 1;
	}
	keep_original(st, mfd, name, NULL);

	rc = db_write_begin(st, &c);
	if (rc < 0)
		goto done;
	rc = reg_model_id(c, name, &mid);
	if (rc == -ENOENT) {
		struct db_stmt *s;

		DB_STMT(c, MODEL_INSERT, s);
		db_bind_text(s, 1, name);
		db_bind_int64(s, 2, cm_time_now_us());
		rc = db_exec_stmt(c, s, "adopting a model");
		mid = db_last_id(c);
	}
	if (rc < 0)
		goto done;
	jv = json_array();
	ja = json_object();
	{
		struct db_stmt *s;

		DB_STMT(c, VERSION_MAX_SEQ, s);
		db_bind_int64(s, 1, mid);
		rc = db_step(c, s, "numbering adopted versions");
		if (rc > 0)
			seq = db_col_int64(s, 0) + 1;
		db_reset(s);
		if (rc < 0)
			goto done;
		rc = 0;
	}
	for (size_t i = 0; i < vers.n; i++) {
		struct reg_version existing;

		if (!ad[i].ok)
			continue;
		if (reg_version_row(c, mid, name, ad[i].name, &existing) == 0)
			continue; /* already recorded */
		rc = record_version(c, mid, name, seq++, &ad[i]);
		if (rc < 0)
			goto done;
		json_array_append_new(jv, json_string(ad[i].name));
	}
	for (size_t i = 0; i < links.n; i++) {
		struct reg_version v;
		struct db_stmt *s;

		if (reg_version_row(c, mid, name, links.target[i], &v) < 0 || v.state != REG_SEALED) {
			json_array_append_new(notes, json_sprintf("%s/%s -> %s: no such adopted version; "
								  "alias not set", name, links.v[i],
								  links.target[i]));
			continue;
		}
		DB_STMT(c, ALIAS_UPSERT, s);
		db_bind_int64(s, 1, mid);
		db_bind_text(s, 2, links.v[i]);
		db_bind_int64(s, 3, v.id);
		if (!strcmp(links.v[i], "canary"))
			db_bind_int(s, 4, 10);
		db_bind_int64(s, 5, cm_time_now_us());
		rc = db_exec_stmt(c, s, "adopting an alias");
		if (rc == 0)
			rc = reg_event_add(c, &import_actor, "alias.set", name, v.name, links.v[i], NULL,
					   v.name, NULL);
		if (rc < 0)
			goto done;
		json_object_set_new(ja, links.v[i], json_string(v.name));
	}
	{
		struct db_stmt *s;

		DB_STMT(c, MODEL_COUNTER_SET, s);
		db_bind_int64(s, 1, mid);
		db_bind_int64(s, 2, seq - 1);
		rc = db_exec_stmt(c, s, "counting versions");
		if (rc < 0)
			goto done;
	}
	detail = json_pack("{sOsOsO}", "versions", jv, "aliases", ja, "notes", notes);
	rc = reg_event_add(c, &import_actor, "import", name, NULL, NULL, NULL, NULL, detail);
	if (rc == 0)
		rc = db_write_commit(c);
	if (rc < 0)
		goto done;
	reg_materialize(st, c, name, NULL, MAT_ALIASES | MAT_VERSIONS);
	db_write_end(c);
	c = NULL;
	if (report)
		json_array_append(report, detail);
done:
	db_write_abort(c);
	if (d)
		closedir(d);
	if (mfd >= 0)
		close(mfd);
	for (size_t i = 0; ad && i < vers.n; i++) {
		json_decref(ad[i].rec);
		reg_files_free(ad[i].files, ad[i].n);
	}
	free(ad);
	names_free(&vers);
	names_free(&links);
	json_decref(notes);
	json_decref(detail);
	json_decref(jv);
	json_decref(ja);
	return rc;
}

int adopt_version_dir(struct reg_store *st, const char *model, const char *name)
{
	json_t *notes = json_array();
	json_t *rec = NULL;
	int vfd = -1;
	int rc;

	rc = reg_version_dir_open(st, model, name, &vfd);
	if (rc == 0) {
		rec = read_record(st, vfd, model, name, notes);
		close(vfd);
		rc = reg_version_create(st, &import_actor, model, name, rec, NULL);
	}
	json_decref(rec);
	json_decref(notes);
	return rc;
}

/*
 * Adoption runs until it has finished once: a crash half way resumes at the
 * next open. 1 while pending, 0 when done, -errno when the db cannot say.
 */
int reg_adopt_pending(struct reg_store *st)
{
	struct reg_conn *c = db_read_begin(st);
	struct db_stmt *s;
	int rc;

	DB_STMT(c, INFO_GET, s);
	db_bind_text(s, 1, "adopted");
	rc = db_step(c, s, "reading whether the store was adopted");
	if (rc >= 0)
		rc = !rc;
	db_reset(s);
done:
	db_read_end(c);
	return rc;
}

static int adopt_mark_done(struct reg_store *st)
{
	struct reg_conn *c = NULL;
	struct db_stmt *s;
	int rc = db_write_begin(st, &c);

	if (rc < 0)
		return rc;
	DB_STMT(c, INFO_SET, s);
	db_bind_text(s, 1, "adopted");
	db_bind_text(s, 2, "1");
	rc = db_exec_stmt(c, s, "recording the adoption");
	if (rc == 0)
		rc = db_write_commit(c);
done:
	if (rc == 0) {
		db_write_end(c);
		c = NULL;
	}
	db_write_abort(c);
	return rc;
}

int reg_adopt(struct reg_store *st)
{
	struct name_list models = { 0 };
	struct dirent *de;
	DIR *d;
	int dfd = openat(st->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	int more = 0;

	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		rc = cm_err_set(-errno, "listing the store: %s", strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	while ((more = cm_readdir(d, &de)) > 0) {
		struct stat sb;

		if (de->d_name[0] == '.' || reg_name_model_check(de->d_name) < 0)
			continue;
		if (fstatat(st->root_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(sb.st_mode)) {
			rc = names_add(&models, de->d_name, NULL);
			if (rc < 0)
				break;
		}
	}
	closedir(d);
	if (rc == 0 && more < 0)
		rc = cm_err_wrap(more, "listing the store");
	if (rc < 0) {
		names_free(&models);
		return rc;
	}
	cm_err_clear();
	for (size_t i = 0; rc == 0 && i < models.n; i++)
		rc = adopt_model_dir(st, models.v[i], NULL);
	names_free(&models);
	if (rc == 0)
		rc = adopt_mark_done(st);
	return rc;
}
