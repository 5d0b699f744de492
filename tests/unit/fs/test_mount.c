/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE view mounted in-process: changes made through the registry from
 * another thread (as the HTTP API and git sync do) are visible through the
 * mount at once, although the kernel caches entries for a day.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "fs.h"

struct mfx {
	struct fx *f;
	struct fs_mount *m;
	char mnt[4200];
};

static const struct reg_actor api = { .channel = "api", .name = "pipeline" };

static int setup_read_path(void **state, enum fs_read_path rp)
{
	struct mfx *x = calloc(1, sizeof(*x));
	struct fs_config cfg = { .admin_gid = -1, .max_threads = 4, .read_path = rp };
	void *fst;

	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		free(x);
		return -1;
	}
	fx_setup(&fst);
	x->f = fst;
	snprintf(x->mnt, sizeof(x->mnt), "%s.mnt", x->f->dir);
	mkdir(x->mnt, 0755);
	cfg.mountpoint = x->mnt;
	if (fs_mount_open(x->f->st, &cfg, &x->m) < 0) {
		fprintf(stderr, "mount: %s\n", cm_err_msg());
		return -1;
	}
	reg_store_set_hook(x->f->st, fs_on_change, x->m);
	if (fs_mount_start(x->m, NULL, NULL) < 0) {
		fprintf(stderr, "loop: %s\n", cm_err_msg());
		return -1;
	}
	*state = x;
	return 0;
}

static int setup(void **state)
{
	return setup_read_path(state, FS_READ_AUTO);
}

static int setup_splice(void **state)
{
	return setup_read_path(state, FS_READ_SPLICE);
}

static int teardown(void **state)
{
	struct mfx *x = *state;
	void *fst = x->f;

	assert_int_equal(fs_mount_end(x->m), 0);
	reg_store_set_hook(x->f->st, NULL, NULL);
	fs_mount_close(x->m);
	rmdir(x->mnt);
	fx_teardown(&fst);
	free(x);
	return 0;
}

static const char *mread(struct mfx *x, const char *rel)
{
	return fx_read(x->mnt, rel);
}

static void other_channel_changes_show_at_once(void **state)
{
	struct mfx *x = *state;
	struct fx *f = x->f;
	struct reg_alias_opts canary = { .percent = 10 };
	struct stat sb;
	char p[4400];

	fx_version(f, "m", "v1", "model.pkl", "one", NULL);
	fx_version(f, "m", "v2", "model.pkl", "two", NULL);
	fx_pass(f, "m", "v1");
	fx_pass(f, "m", "v2");
	assert_int_equal(reg_alias_set(f->st, &api, "m", "current", "v1", NULL, NULL), 0);
	assert_string_equal(fx_readlink(x->mnt, "m/current"), "v1");
	assert_string_equal(mread(x, "m/current/model.pkl"), "one");
	/* The kernel now holds "current" -> v1 with a long timeout. */
	for (int i = 0; i < 20; i++) {
		const char *want = i % 2 ? "v1" : "v2";

		assert_int_equal(reg_alias_set(f->st, &api, "m", "current", want, NULL, NULL), 0);
		assert_string_equal(fx_readlink(x->mnt, "m/current"), want);
		assert_string_equal(mread(x, "m/current/model.pkl"), i % 2 ? "one" : "two");
	}
	/* A new alias, a removed alias, a new version, a seal: all seen at once. */
	assert_int_equal(reg_alias_set(f->st, &api, "m", "canary", "v2", &canary, NULL), 0);
	assert_string_equal(fx_readlink(x->mnt, "m/canary"), "v2");
	assert_int_equal(reg_alias_delete(f->st, &api, "m", "canary", NULL), 0);
	assert_null(fx_readlink(x->mnt, "m/canary"));
	fx_version(f, "m", "v3", "model.pkl", "three", NULL);
	snprintf(p, sizeof(p), "%s/m", x->mnt);
	{
		DIR *d = opendir(p);
		struct dirent *de;
		int seen = 0;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			seen |= !strcmp(de->d_name, "v3");
		closedir(d);
		assert_true(seen);
	}
	snprintf(p, sizeof(p), "%s/m/v3", x->mnt);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_mode & 0200);
	assert_int_equal(reg_version_seal(f->st, &api, "m", "v3", NULL), 0);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0222, 0);
	/* A model made elsewhere appears in the root listing. */
	assert_int_equal(reg_model_create(f->st, &api, "late", NULL), 0);
	snprintf(p, sizeof(p), "%s/late", x->mnt);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
}

static void stats_count_reads(void **state)
{
	struct mfx *x = *state;
	struct fs_stats s0, s1;

	fx_version(x->f, "m", "v1", "model.pkl", "0123456789", NULL);
	fs_mount_stats(x->m, &s0);
	assert_string_equal(mread(x, "m/v1/model.pkl"), "0123456789");
	fs_mount_stats(x->m, &s1);
	assert_true(s1.ops > s0.ops);
	assert_int_equal(s1.bytes_read, s0.bytes_read + 10);
	/* A sealed file's size is taken once at open; the count stays exact. */
	fx_write(x->f->dir, "m/v1/other.bin", "abcdefghij"); /* never read: not in any cache */
	assert_int_equal(reg_version_seal(x->f->st, &api, "m", "v1", NULL), 0);
	assert_string_equal(mread(x, "m/v1/other.bin"), "abcdefghij");
	fs_mount_stats(x->m, &s0);
	assert_int_equal(s0.bytes_read, s1.bytes_read + 10);
}

/*
 * In passthrough mode the kernel reads a sealed file itself: the open is
 * counted, its bytes cannot be, and a draft still goes through the daemon.
 */
static void stats_passthrough_opens(void **state)
{
	struct mfx *x = *state;
	struct fs_stats s0, s1;

	fx_version(x->f, "m", "v1", "model.pkl", "0123456789", NULL);
	assert_int_equal(reg_version_seal(x->f->st, &api, "m", "v1", NULL), 0);
	fs_mount_stats(x->m, &s0);
	if (!s0.passthrough)
		skip(); /* no passthrough here: kernel, libfuse or CAP_SYS_ADMIN (logged) */
	assert_string_equal(mread(x, "m/v1/model.pkl"), "0123456789");
	fs_mount_stats(x->m, &s1);
	assert_int_equal(s1.passthrough_opens, s0.passthrough_opens + 1);
	assert_int_equal(s1.bytes_read, s0.bytes_read);
}

struct change_arg {
	struct mfx *x;
	int rc;
};

static void *promote_v2(void *arg)
{
	struct change_arg *a = arg;

	a->rc = reg_alias_set(a->x->f->st, &api, "m", "current", "v2", NULL, NULL);
	return NULL;
}

/*
 * Once the loop has ended nobody answers the kernel, so a change from
 * another channel must not wait for a notification: a lookup in flight holds
 * the directory lock the notification needs (serve stops the API and git
 * before the loop; this is what happens if one were late).
 */
static void change_after_loop_end_does_not_wait(void **state)
{
	struct mfx *x = *state;
	struct change_arg arg = { .x = x, .rc = 1 };
	char path[4300];
	struct timespec until;
	struct stat sb;
	pthread_t t;
	pid_t child;
	int joined;

	fx_version(x->f, "m", "v1", "model.pkl", "1", NULL);
	fx_version(x->f, "m", "v2", "model.pkl", "2", NULL);
	fx_pass(x->f, "m", "v1");
	fx_pass(x->f, "m", "v2");
	assert_int_equal(reg_alias_set(x->f->st, &api, "m", "current", "v1", NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/m/current", x->mnt);
	assert_int_equal(lstat(path, &sb), 0); /* the kernel knows m and current */
	assert_int_equal(fs_mount_end(x->m), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		snprintf(path, sizeof(path), "%s/m/nosuch", x->mnt);
		lstat(path, &sb); /* waits: the loop is gone */
		_exit(0);
	}
	usleep(300 * 1000);
	assert_int_equal(pthread_create(&t, NULL, promote_v2, &arg), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	joined = pthread_timedjoin_np(t, NULL, &until) == 0;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (!joined) {
		pthread_join(t, NULL);
		fail_msg("a change after the loop ended waited for the kernel");
	}
	assert_int_equal(arg.rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(other_channel_changes_show_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(stats_count_reads, setup_splice, teardown),
		cmocka_unit_test_setup_teardown(stats_passthrough_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(change_after_loop_end_does_not_wait, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
