/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel cache invalidation. The kernel keeps entries and attributes for a
 * long time (they rarely change); when an alias moves over HTTP or git, its
 * dentry must be dropped at once (fs_on_change, synchronous). Invalidations
 * that a FUSE request itself needs (after renaming a temporary link onto an
 * alias) go out from a thread of their own: a notification waits for the
 * directory lock that the request in flight holds.
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
	if (m->qstop) {
		/* The loop is ending: a notification now could wait for ever. */
		pthread_mutex_unlock(&m->qmu);
		free(q);
		return;
	}
	if (m->qtail)
		m->qtail->next = q;
	else
		m->qhead = q;
	m->qtail = q;
	pthread_cond_signal(&m->qcv);
	pthread_mutex_unlock(&m->qmu);
}

static void inval_now(struct fs_mount *m, fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	if (name)
		fuse_lowlevel_notify_inval_entry(m->se, parent, name, strlen(name));
	if (ino)
		fuse_lowlevel_notify_inval_inode(m->se, ino, 0, 0);
}

/*
 * Runs in the thread that made the change, after the registry released its
 * locks, and returns once the kernel has dropped what it cached: an HTTP
 * promotion is answered only when the mount already shows it. (Never called
 * for changes made through the mount itself, whose requests hold the very
 * directory locks a notification waits for.)
 */
void fs_on_change(void *ctx, const struct reg_change *c)
{
	struct fs_mount *m = ctx;
	fuse_ino_t mino;

	/* Changes made through the mount are already in the kernel's view. */
	if (!m || !m->se || (c->channel && !strcmp(c->channel, "fs")))
		return;
	/*
	 * A notification waits for directory locks that requests in the kernel
	 * hold until the loop answers them: once the loop is ending, nobody will.
	 * (serve stops every other thread that changes the store first; this is
	 * the backstop.)
	 */
	if (atomic_load(&m->ending))
		return;
	if (!c->model)
		return;
	mino = fs_inode_find(m, FS_MODEL, c->model, NULL);
	if (c->alias) {
		if (mino)
			inval_now(m, mino, c->alias, mino);
		return;
	}
	if (c->version) {
		fuse_ino_t vino = fs_inode_find(m, FS_VERSION, c->model, c->version);

		if (mino)
			inval_now(m, mino, c->version, mino);
		if (vino)
			inval_now(m, 0, NULL, vino);
		return;
	}
	inval_now(m, FUSE_ROOT_ID, c->model, FUSE_ROOT_ID);
}
