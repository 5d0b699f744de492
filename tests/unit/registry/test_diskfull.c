/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A full disk: every call that cannot write says ENOSPC, nothing half-done is
 * left behind, and once space is back the store works and fsck is clean.
 * Uses a small tmpfs (needs root; skipped otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static int fill(const char *dir)
{
	char path[4200], buf[65536];
	int fd;

	snprintf(path, sizeof(path), "%s/filler", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	memset(buf, 'f', sizeof(buf));
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	while (write(fd, buf, 512) > 0)
		;
	while (write(fd, buf, 1) > 0)
		;
	close(fd);
	return 0;
}

static void enospc_loses_nothing(void **state)
{
	struct fx *f = *state;
	struct reg_store *st = NULL;
	char store[4200], path[4300];
	struct reg_version v;
	int64_t before = 0, after = 0;
	int rc, ok = 0, refused = 0;

	FX_SQLITE_ONLY();
	snprintf(store, sizeof(store), "%s/vol", f->dir);
	mkdir(store, 0755);
	if (mount("tmpfs", store, "tmpfs", 0, "size=4m") < 0)
		skip();
	assert_int_equal(reg_store_open(store, REG_OPEN_CREATE | REG_OPEN_LOCK, &st), 0);
	assert_int_equal(reg_model_create(st, &fx_actor, "m", NULL), 0);
	assert_int_equal(reg_version_create(st, &fx_actor, "m", "v1", NULL, NULL), 0);
	assert_int_equal(reg_event_count(st, &before), 0);
	assert_int_equal(fill(store), 0);
	/* Every call either works or says ENOSPC; none crashes or half-applies. */
	for (int i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "v%d", i + 2);
		rc = reg_version_create(st, &fx_actor, "m", name, NULL, NULL);
		if (rc == 0)
			ok++;
		else
			assert_int_equal(rc, -ENOSPC);
		refused += rc == -ENOSPC;
	}
	assert_true(refused > 0);
	assert_non_null(strstr(cm_err_msg(), "full"));
	/* Space back: the store works, and what was refused is not there. */
	snprintf(path, sizeof(path), "%s/filler", store);
	unlink(path);
	assert_int_equal(reg_event_count(st, &after), 0);
	assert_int_equal(after, before + ok);
	assert_int_equal(reg_version_create(st, &fx_actor, "m", "after", NULL, &v), 0);
	reg_store_close(st);
	st = NULL;
	assert_int_equal(reg_store_open(store, REG_OPEN_LOCK, &st), 0);
	assert_int_equal(reg_store_fsck(st, 0, 1, NULL, NULL), 0);
	reg_store_close(st);
	umount2(store, MNT_DETACH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(enospc_loses_nothing, fx_setup_empty, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
