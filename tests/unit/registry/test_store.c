/* SPDX-License-Identifier: Apache-2.0 */
/* Disk helpers: safe openat walks, atomic writes and symlinks, file listing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "reg_i.h"

static void openat_path_stays_inside(void **state)
{
	struct fx *f = *state;
	char p[4300];
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	int fd = -1;

	fx_write(f->dir, "a/b/c.txt", "x");
	snprintf(p, sizeof(p), "%s/a/escape", f->dir);
	assert_int_equal(symlink("/etc", p), 0);
	assert_int_equal(st_openat_path(dfd, "a/b/c.txt", O_RDONLY, 0, &fd), 0);
	close(fd);
	/* A symlink on the way is not followed (O_NOFOLLOW on a directory: ENOTDIR or ELOOP). */
	int rc = st_openat_path(dfd, "a/escape/passwd", O_RDONLY, 0, &fd);
	assert_true(rc == -ENOTDIR || rc == -ELOOP);
	assert_int_equal(st_openat_path(dfd, "../etc/passwd", O_RDONLY, 0, &fd), -EINVAL);
	assert_int_equal(st_openat_path(dfd, "/etc/passwd", O_RDONLY, 0, &fd), -EINVAL);
	assert_int_equal(st_openat_path(dfd, "a//b", O_RDONLY, 0, &fd), -EINVAL);
	close(dfd);
}

static void long_paths_work(void **state)
{
	struct fx *f = *state;
	char rel[PATH_MAX];
	size_t len = 0;
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	int fd = -1;

	/* Deeper than a string path below the store could be, but within PATH_MAX. */
	while (len + 201 < sizeof(rel) - 300) {
		memset(rel + len, 'd', 200);
		rel[len + 200] = '/';
		len += 201;
	}
	strcpy(rel + len, "leaf");
	fx_write(f->dir, rel, "deep");
	assert_int_equal(st_openat_path(dfd, rel, O_RDONLY, 0, &fd), 0);
	close(fd);
	close(dfd);
}

static void atomic_write_and_symlink(void **state)
{
	struct fx *f = *state;
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	struct stat sb;
	char p[4300];

	assert_int_equal(st_write_atomic(dfd, "f.json", "{}\n", 3, 0444), 0);
	assert_string_equal(fx_read(f->dir, "f.json"), "{}\n");
	snprintf(p, sizeof(p), "%s/f.json", f->dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0444);
	assert_int_equal(st_write_atomic(dfd, "f.json", "[1]\n", 4, 0644), 0);
	assert_string_equal(fx_read(f->dir, "f.json"), "[1]\n");
	assert_int_equal(st_symlink_atomic(dfd, "current", "v1"), 0);
	assert_int_equal(st_symlink_atomic(dfd, "current", "v2"), 0);
	assert_string_equal(fx_readlink(f->dir, "current"), "v2");
	/* No temporary files are left behind. */
	char *data = NULL;
	assert_int_equal(st_read_file(dfd, "f.json", 2, &data, NULL), -E2BIG);
	assert_int_equal(st_read_file(dfd, "missing", 100, &data, NULL), -ENOENT);
	close(dfd);
}

static void list_files_sorted_and_refuses_specials(void **state)
{
	struct fx *f = *state;
	struct reg_file *files = NULL;
	size_t n = 0;
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	char p[4300];

	fx_write(f->dir, "z.bin", "zz");
	fx_write(f->dir, "a/x.bin", "x");
	fx_write(f->dir, "metadata.json", "{}");
	fx_write(f->dir, "a/metadata.json", "{}");
	assert_int_equal(st_list_files(dfd, &files, &n), 0);
	assert_int_equal(n, 3); /* top-level metadata.json is not content; nested one is */
	assert_string_equal(files[0].path, "a/metadata.json");
	assert_string_equal(files[1].path, "a/x.bin");
	assert_string_equal(files[2].path, "z.bin");
	assert_int_equal(files[2].size, 2);
	reg_files_free(files, n);
	snprintf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_int_equal(st_list_files(dfd, &files, &n), -EINVAL);
	assert_non_null(strstr(cm_err_msg(), "fifo"));
	assert_int_equal(st_remove_tree(dfd, "a"), 0);
	assert_null(fx_read(f->dir, "a/x.bin"));
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(openat_path_stays_inside, fx_setup_empty, fx_teardown),
		cmocka_unit_test_setup_teardown(long_paths_work, fx_setup_empty, fx_teardown),
		cmocka_unit_test_setup_teardown(atomic_write_and_symlink, fx_setup_empty, fx_teardown),
		cmocka_unit_test_setup_teardown(list_files_sorted_and_refuses_specials, fx_setup_empty, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
