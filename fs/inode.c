/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inode table: one entry per backing object the kernel holds a lookup
 * on, keyed by (st_dev, st_ino), with the FUSE inode number being the entry's
 * address. Guarded by fs_mount.mu; entries live until the kernel forgets them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_i.h"

static size_t slot(const struct fs_mount *m, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;

	return (size_t)(h >> 16) & (m->tab_cap - 1);
}

int fs_table_init(struct fs_mount *m)
{
	m->tab_cap = 1024;
	m->tab = calloc(m->tab_cap, sizeof(*m->tab));
	if (!m->tab)
		return cm_err_set(-ENOMEM, "out of memory");
	return 0;
}

void fs_table_free(struct fs_mount *m)
{
	for (size_t i = 0; m->tab && i < m->tab_cap; i++) {
		struct fs_inode *in = m->tab[i];

		while (in) {
			struct fs_inode *next = in->hnext;

			if (in->fd >= 0)
				close(in->fd);
			free(in->target);
			free(in);
			in = next;
		}
	}
	free(m->tab);
	m->tab = NULL;
}

static void grow(struct fs_mount *m)
{
	size_t cap = m->tab_cap * 2;
	struct fs_inode **t = calloc(cap, sizeof(*t));
	size_t old = m->tab_cap;
	struct fs_inode **ot = m->tab;

	if (!t)
		return; /* longer chains, still correct */
	m->tab = t;
	m->tab_cap = cap;
	for (size_t i = 0; i < old; i++) {
		struct fs_inode *in = ot[i];

		while (in) {
			struct fs_inode *next = in->hnext;
			size_t s = slot(m, in->dev, in->ino);

			in->hnext = t[s];
			t[s] = in;
			in = next;
		}
	}
	free(ot);
}

struct fs_inode *fs_inode_get(struct fs_mount *m, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &m->root;
	return (struct fs_inode *)(uintptr_t)ino;
}

struct fs_inode *fs_inode_ref(struct fs_mount *m, int fd, const struct stat *sb, enum fs_kind kind,
			      const char *model, const char *version)
{
	struct fs_inode *in;
	size_t s;

	pthread_mutex_lock(&m->mu);
	s = slot(m, sb->st_dev, sb->st_ino);
	for (in = m->tab[s]; in; in = in->hnext) {
		if (in->dev == sb->st_dev && in->ino == sb->st_ino) {
			in->nlookup++;
			pthread_mutex_unlock(&m->mu);
			close(fd);
			return in;
		}
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		pthread_mutex_unlock(&m->mu);
		close(fd);
		return NULL;
	}
	in->fd = fd;
	in->dev = sb->st_dev;
	in->ino = sb->st_ino;
	in->nlookup = 1;
	in->kind = kind;
	cm_strlcpy(in->model, model ? model : "", sizeof(in->model));
	cm_strlcpy(in->version, version ? version : "", sizeof(in->version));
	in->hnext = m->tab[s];
	m->tab[s] = in;
	if (++m->tab_n > m->tab_cap)
		grow(m);
	pthread_mutex_unlock(&m->mu);
	return in;
}

void fs_inode_unref(struct fs_mount *m, struct fs_inode *in, uint64_t n)
{
	struct fs_inode **pp;

	if (in == &m->root)
		return;
	pthread_mutex_lock(&m->mu);
	if (in->nlookup > n) {
		in->nlookup -= n;
		pthread_mutex_unlock(&m->mu);
		return;
	}
	in->nlookup = 0;
	if (in->kind != FS_PENDING) {
		for (pp = &m->tab[slot(m, in->dev, in->ino)]; *pp; pp = &(*pp)->hnext) {
			if (*pp == in) {
				*pp = in->hnext;
				m->tab_n--;
				break;
			}
		}
	} else if (in->listed) {
		/* Still a pending link of its model: freed when unlinked or renamed. */
		pthread_mutex_unlock(&m->mu);
		return;
	}
	pthread_mutex_unlock(&m->mu);
	if (in->fd >= 0)
		close(in->fd);
	free(in->target);
	free(in);
}

fuse_ino_t fs_inode_find(struct fs_mount *m, enum fs_kind kind, const char *model,
			 const char *version)
{
	fuse_ino_t found = 0;

	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->tab_cap && !found; i++) {
		for (struct fs_inode *in = m->tab[i]; in; in = in->hnext) {
			if (in->kind == kind && !strcmp(in->model, model) &&
			    (!version || !strcmp(in->version, version))) {
				found = (fuse_ino_t)(uintptr_t)in;
				break;
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	return found;
}
