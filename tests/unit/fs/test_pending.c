/* SPDX-License-Identifier: Apache-2.0 */
/* Pending temporary links (fs/pending.c): caps per user and model, expiry, lookups by name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "fs_i.h"

static struct fs_inode *link_new(const char *model, const char *name, uid_t uid)
{
	struct fs_inode *in = calloc(1, sizeof(*in));

	assert_non_null(in);
	in->fd = -1;
	in->kind = FS_PENDING;
	in->target = strdup("v1");
	cm_strlcpy(in->model, model, sizeof(in->model));
	cm_strlcpy(in->name, name, sizeof(in->name));
	in->pst.st_uid = uid;
	return in;
}

static int add(struct fs_mount *m, const char *model, const char *name, uid_t uid)
{
	struct fs_inode *in = link_new(model, name, uid);
	int rc = fs_pending_add(m, in);

	if (rc < 0) {
		free(in->target);
		free(in);
	}
	return rc;
}

static void caps(void **state)
{
	struct fs_mount m = { 0 };
	char name[32];

	(void)state;
	for (int i = 0; i < FS_PENDING_PER_UID; i++) {
		snprintf(name, sizeof(name), "Cu%06d", i);
		assert_int_equal(add(&m, "a", name, 1000), 0);
	}
	cm_err_clear();
	assert_int_equal(add(&m, "a", "CuXXXXXX", 1000), -ENOSPC);
	assert_non_null(strstr(cm_err_msg(), "uid 1000"));
	/* Per user, across models; another user goes on until the model is full. */
	assert_int_equal(add(&m, "b", "CuXXXXXX", 1000), -ENOSPC);
	assert_int_equal(add(&m, "a", "Cu000000", 1001), -EEXIST);
	for (uid_t u = 1001; u < 1004; u++) {
		for (int i = 0; i < FS_PENDING_PER_UID; i++) {
			snprintf(name, sizeof(name), "Cu%02u%04d", (unsigned)u % 100, i);
			assert_int_equal(add(&m, "a", name, u), 0);
		}
	}
	assert_int_equal(add(&m, "a", "CuYYYYYY", 2000), -ENOSPC);
	assert_int_equal(add(&m, "b", "CuYYYYYY", 2000), 0);
	assert_int_equal(m.pend_n, (size_t)FS_PENDING_PER_MODEL + 1);
	assert_non_null(fs_pending_find(&m, "a", "Cu000063"));
	assert_null(fs_pending_find(&m, "b", "Cu000063"));
	fs_pending_unlist(&m, fs_pending_find(&m, "a", "Cu000063"));
	assert_null(fs_pending_find(&m, "a", "Cu000063"));
	assert_int_equal(add(&m, "a", "CuYYYYYY", 2000), 0);
	fs_pending_free_all(&m);
	assert_null(m.pend_tab);
}

static int count_each(void *ctx, struct fs_inode *p)
{
	(void)p;
	(*(int *)ctx)++;
	return 0;
}

static void expiry(void **state)
{
	struct fs_mount m = { 0 };
	struct fs_inode *p;
	int n = 0;

	(void)state;
	assert_int_equal(add(&m, "a", "CuAAAAAA", 1000), 0);
	assert_int_equal(add(&m, "a", "CuBBBBBB", 1000), 0);
	p = fs_pending_find(&m, "a", "CuAAAAAA");
	assert_non_null(p);
	p->pend_until -= (int64_t)(FS_PENDING_TTL_S + 1) * 1000000; /* as if made a minute ago */
	fs_pending_each(&m, "a", count_each, &n);
	assert_int_equal(n, 1);
	assert_null(fs_pending_find(&m, "a", "CuAAAAAA"));
	assert_int_equal(m.pend_n, 1);
	/* A link the kernel still holds stays allocated when it expires; adding sweeps. */
	p = fs_pending_find(&m, "a", "CuBBBBBB");
	p->nlookup = 1;
	p->pend_until = 0;
	assert_int_equal(add(&m, "a", "CuCCCCCC", 1000), 0);
	assert_int_equal(m.pend_n, 1);
	assert_int_equal(p->listed, 0);
	free(p->target);
	free(p);
	fs_pending_free_all(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(caps),
		cmocka_unit_test(expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
