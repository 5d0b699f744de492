/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel cache invalidation for changes made by other channels. The kernel
 * keeps entries and attributes for a long time (they rarely change); when an
 * alias moves over HTTP or git, its dentry must be dropped at once. The
 * notifications go out from a thread of their own: a notification can wait
 * for a directory lock that a request in flight holds, and no request or
 * registry call should wait on that.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

static void *inval_main(void *arg)
{
	struct fs_mount *m = arg;

	for (;;) {
		struct fs_inval *q;

		pthread_mutex_lock(&m->qmu);
		while (!m->qhead && !m->qstop)
			pthread_cond_wait(&m->qcv, &m->qmu);
		q = m->qhead;
		if (q) {
			m->qhead = q->next;
			if (!m->qhead)
				m->qtail = NULL;
		}
		pthread_mutex_unlock(&m->qmu);
		if (!q)
			break; /* stopping and drained */
		if (q->name[0])
			fuse_lowlevel_notify_inval_entry(m->se, q->parent, q->name, strlen(q->name));
		if (q->ino)
			fuse_lowlevel_notify_inval_inode(m->se, q->ino, 0, 0);
		free(q);
	}
	return NULL;
}

int fs_inval_start(struct fs_mount *m)
{
	pthread_mutex_init(&m->qmu, NULL);
	pthread_cond_init(&m->qcv, NULL);
	if (pthread_create(&m->inval_thread, NULL, inval_main, m) != 0)
		return cm_err_set(-EAGAIN, "cannot start the invalidation thread");
	m->inval_started = 1;
	return 0;
}

void fs_inval_stop(struct fs_mount *m)
{
	if (!m->inval_started)
		return;
	pthread_mutex_lock(&m->qmu);
	m->qstop = 1;
	pthread_cond_signal(&m->qcv);
	pthread_mutex_unlock(&m->qmu);
	pthread_join(m->inval_thread, NULL);
	m->inval_started = 0;
}

void fs_inval_push(struct fs_mount *m, fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	struct fs_inval *q = calloc(1, sizeof(*q));

	if (!q)
		return; /* entries then expire by their timeouts */
	q->parent = parent;
	q->ino = ino;
	if (name)
		cm_strlcpy(q->name, name, sizeof(q->name));
	pthread_mutex_lock(&m->qmu);
	if (m->qtail)
		m->qtail->next = q;
	else
		m->qhead = q;
	m->qtail = q;
	pthread_cond_signal(&m->qcv);
	pthread_mutex_unlock(&m->qmu);
}

void fs_on_change(void *ctx, const struct reg_change *c)
{
	struct fs_mount *m = ctx;
	fuse_ino_t mino;

	/* Changes made through the mount are already in the kernel's view. */
	if (!m || !m->se || (c->channel && !strcmp(c->channel, "fs")))
		return;
	if (!c->model)
		return;
	mino = fs_inode_find(m, FS_MODEL, c->model, NULL);
	if (c->alias) {
		if (mino)
			fs_inval_push(m, mino, c->alias, mino);
		return;
	}
	if (c->version) {
		fuse_ino_t vino = fs_inode_find(m, FS_VERSION, c->model, c->version);

		if (mino)
			fs_inval_push(m, mino, c->version, mino);
		if (vino)
			fs_inval_push(m, 0, NULL, vino);
		return;
	}
	fs_inval_push(m, FUSE_ROOT_ID, c->model, FUSE_ROOT_ID);
}
