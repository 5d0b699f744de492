/* SPDX-License-Identifier: Apache-2.0 */
/* Streamed uploads into drafts and checked reads of version files (registry/upload.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static int exists(struct fx *f, const char *rel)
{
	char p[PATH_MAX];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	return lstat(p, &sb) == 0;
}

/* Entries in a directory other than . and .. (temporaries included). */
static int entries(struct fx *f, const char *rel)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	d = opendir(p);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void upload_commit_creates_dirs_and_replaces(void **state)
{
	struct fx *f = *state;
	struct reg_upload *u = NULL;

	fx_version(f, "m", "v1", NULL);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "sub/dir/model.pkl", &u), 0);
	assert_int_equal(reg_upload_write(u, "hello ", 6), 0);
	assert_int_equal(reg_upload_write(u, "world", 5), 0);
	assert_int_equal(reg_upload_size(u), 11);
	/* Not visible before commit. */
	assert_false(exists(f, "m/v1/sub/dir/model.pkl"));
	assert_int_equal(entries(f, "m/v1/sub/dir"), 0);
	assert_int_equal(reg_upload_commit(u), 0);
	assert_string_equal(fx_read(f->dir, "m/v1/sub/dir/model.pkl"), "hello world");

	/* Replacing keeps one file and no temporary. */
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "sub/dir/model.pkl", &u), 0);
	assert_int_equal(reg_upload_write(u, "v2", 2), 0);
	assert_int_equal(reg_upload_commit(u), 0);
	assert_string_equal(fx_read(f->dir, "m/v1/sub/dir/model.pkl"), "v2");
	assert_int_equal(entries(f, "m/v1/sub/dir"), 1);
	assert_int_equal(fx_fsck(f), 0);
}

static void abort_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct reg_upload *u = NULL;

	fx_version(f, "m", "v1", "keep/a.txt", "a", NULL);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "keep/new/deep/x.bin", &u), 0);
	assert_int_equal(reg_upload_write(u, "partial", 7), 0);
	reg_upload_abort(u);
	assert_false(exists(f, "m/v1/keep/new"));
	assert_true(exists(f, "m/v1/keep/a.txt"));
	assert_int_equal(entries(f, "m/v1/keep"), 1);
	reg_upload_abort(NULL);
}

static void upload_blocks_seal_and_sealed_refuses(void **state)
{
	struct fx *f = *state;
	struct reg_upload *u = NULL;

	fx_version(f, "m", "v1", NULL);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "model.pkl", &u), 0);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), -EBUSY);
	assert_int_equal(reg_upload_commit(u), 0);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	u = NULL;
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "other.pkl", &u), -EROFS);
	assert_non_null(strstr(cm_err_msg(), "sealed"));
	assert_null(u);
}

static void bad_paths(void **state)
{
	struct fx *f = *state;
	struct reg_upload *u = NULL;

	fx_version(f, "m", "v1", "dir/f", "x", NULL);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "../escape", &u), -EINVAL);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "/abs", &u), -EINVAL);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "a//b", &u), -EINVAL);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "metadata.json", &u), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "metadata record"));
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "bad\xff", &u), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "UTF-8"));
	/* No name is special inside a version: a dotted temporary-looking name is content. */
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "d/.x.tmp-1234", &u), 0);
	reg_upload_abort(u);
	u = NULL;
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "dir", &u), -EISDIR);
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "dir/f/g", &u), -ENOTDIR);
	assert_int_equal(reg_upload_begin(f->st, "m", "v9", "f", &u), -ENOENT);
	assert_int_equal(reg_upload_begin(f->st, "nope", "v1", "f", &u), -ENOENT);
	assert_null(u);
	/* A symlink planted in a draft is never followed. */
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/m/v1/link", f->dir);
		assert_int_equal(symlink("/tmp", p), 0);
		assert_int_not_equal(reg_upload_begin(f->st, "m", "v1", "link/f", &u), 0);
		assert_null(u);
	}
	/* metadata.json below the top level is ordinary content. */
	assert_int_equal(reg_upload_begin(f->st, "m", "v1", "sub/metadata.json", &u), 0);
	reg_upload_abort(u);
}

static void file_open_sealed_and_draft(void **state)
{
	struct fx *f = *state;
	struct reg_file info;
	char buf[16] = "";
	int fd = -1;

	fx_version(f, "m", "v1", "model.pkl", "abc", "d/x", "xyz", NULL);
	assert_int_equal(reg_version_file_open(f->st, "m", "v1", "model.pkl", &fd, &info), 0);
	assert_int_equal(info.size, 3);
	assert_string_equal(info.sha256, "");
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	close(fd);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	assert_int_equal(reg_version_file_open(f->st, "m", "v1", "d/x", &fd, &info), 0);
	close(fd);
	assert_int_equal(info.size, 3);
	assert_string_equal(info.sha256,
			    "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282");
	assert_int_equal(reg_version_file_open(f->st, "m", "v1", "nope", &fd, &info), -ENOENT);
	assert_int_equal(reg_version_file_open(f->st, "m", "v1", "d", &fd, &info), -ENOENT);
	assert_int_equal(reg_version_file_open(f->st, "m", "v2", "d/x", &fd, &info), -ENOENT);
	assert_int_equal(reg_version_file_open(f->st, "m", "v1", "../v1/d/x", &fd, &info), -EINVAL);
	/* A draft's directory is not a file. */
	fx_version(f, "m", "v2", "d/x", "1", NULL);
	assert_int_equal(reg_version_file_open(f->st, "m", "v2", "d", &fd, &info), -ENOENT);
	assert_non_null(strstr(cm_err_msg(), "directory"));
	assert_int_equal(reg_version_file_open(f->st, "m", "v2", "d/x/y", &fd, &info), -ENOENT);
}

static void file_open_detects_changed_size(void **state)
{
	struct fx *f = *state;
	struct reg_file info;
	char p[PATH_MAX];
	int fd = -1;

	fx_version(f, "m", "v1", "model.pkl", "abc", NULL);
	assert_int_equal(reg_version_seal(f->st, &fx_actor, "m", "v1", NULL), 0);
	snprintf(p, sizeof(p), "%s/m/v1/model.pkl", f->dir);
	assert_int_equal(chmod(p, 0644), 0);
	fx_write(f->dir, "m/v1/model.pkl", "abcd");
	assert_int_equal(reg_version_file_open(f->st, "m", "v1", "model.pkl", &fd, &info), -EIO);
	assert_non_null(strstr(cm_err_msg(), "fsck"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(upload_commit_creates_dirs_and_replaces, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(abort_leaves_nothing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(upload_blocks_seal_and_sealed_refuses, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(bad_paths, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(file_open_sealed_and_draft, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(file_open_detects_changed_size, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
