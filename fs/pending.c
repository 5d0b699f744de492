/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pending links: symlinks made under a temporary name (coreutils' `ln -sfn`
 * makes "CuXXXXXX", then renames it over the alias) held in memory until
 * they are renamed onto an alias or unlinked. Any user who may write a
 * model directory can make them, so they are capped per user and per model
 * (ENOSPC past a cap), expire after FS_PENDING_TTL_S, and sit in a hash
 * table by (model, name) so a lookup in one model never walks another's.
 * All calls run under fs_mount.mu.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_i.h"

#define PENDING_BUCKETS 1024 /* a power of two */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t bucket(const char *model, const char *name)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const char *s = model; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const char *s = name; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & (PENDING_BUCKETS - 1));
}

/* Takes p out of the table; frees it when the kernel holds no reference. */
static void unlist_at(struct fs_mount *m, struct fs_inode **pp)
{
	struct fs_inode *p = *pp;

	*pp = p->pnext;
	p->pnext = NULL;
	p->listed = 0;
	m->pend_n--;
	if (p->nlookup == 0) {
		free(p->target);
		free(p);
	}
}

struct fs_inode *fs_pending_find(struct fs_mount *m, const char *model, const char *name)
{
	struct fs_inode **pp;

	if (!m->pend_tab)
		return NULL;
	for (pp = &m->pend_tab[bucket(model, name)]; *pp; pp = &(*pp)->pnext) {
		struct fs_inode *p = *pp;

		if (strcmp(p->name, name) || strcmp(p->model, model))
			continue;
		if (now_us() > p->pend_until) {
			unlist_at(m, pp); /* expired: as if it was never made */
			return NULL;
		}
		return p;
	}
	return NULL;
}

int fs_pending_add(struct fs_mount *m, struct fs_inode *in)
{
	int64_t now = now_us();
	size_t in_model = 0, of_uid = 0;
	struct fs_inode **pp;

	if (!m->pend_tab) {
		m->pend_tab = calloc(PENDING_BUCKETS, sizeof(*m->pend_tab));
		if (!m->pend_tab)
			return cm_err_set(-ENOMEM, "out of memory");
	}
	/* Counting walks every bucket (bounded by the caps); expired links go on the way. */
	for (size_t b = 0; b < PENDING_BUCKETS; b++) {
		for (pp = &m->pend_tab[b]; *pp;) {
			struct fs_inode *p = *pp;

			if (now > p->pend_until) {
				unlist_at(m, pp);
				continue;
			}
			if (!strcmp(p->model, in->model)) {
				in_model++;
				if (!strcmp(p->name, in->name))
					return cm_err_set(-EEXIST, "%s/%s exists", in->model, in->name);
			}
			of_uid += p->pst.st_uid == in->pst.st_uid;
			pp = &p->pnext;
		}
	}
	if (of_uid >= FS_PENDING_PER_UID)
		return cm_err_set(-ENOSPC, "uid %u has %zu temporary links pending (at most %d, each "
				  "kept %d s): rename them onto aliases or remove them",
				  (unsigned)in->pst.st_uid, of_uid, FS_PENDING_PER_UID, FS_PENDING_TTL_S);
	if (in_model >= FS_PENDING_PER_MODEL || m->pend_n >= FS_PENDING_MAX)
		return cm_err_set(-ENOSPC, "too many temporary links pending in %s (at most %d a "
				  "model, %d in all)", in->model, FS_PENDING_PER_MODEL, FS_PENDING_MAX);
	in->pend_until = now + (int64_t)FS_PENDING_TTL_S * 1000000;
	in->listed = 1;
	pp = &m->pend_tab[bucket(in->model, in->name)];
	in->pnext = *pp;
	*pp = in;
	m->pend_n++;
	return 0;
}

void fs_pending_unlist(struct fs_mount *m, struct fs_inode *p)
{
	struct fs_inode **pp;

	if (!p->listed || !m->pend_tab)
		return;
	for (pp = &m->pend_tab[bucket(p->model, p->name)]; *pp; pp = &(*pp)->pnext) {
		if (*pp == p) {
			unlist_at(m, pp);
			return;
		}
	}
}

int fs_pending_each(struct fs_mount *m, const char *model,
		    int (*fn)(void *ctx, struct fs_inode *p), void *ctx)
{
	int64_t now = now_us();
	int rc;

	if (!m->pend_tab || !m->pend_n)
		return 0;
	for (size_t b = 0; b < PENDING_BUCKETS; b++)
		for (struct fs_inode *p = m->pend_tab[b]; p; p = p->pnext)
			if (!strcmp(p->model, model) && now <= p->pend_until &&
			    (rc = fn(ctx, p)) < 0)
				return rc;
	return 0;
}

void fs_pending_free_all(struct fs_mount *m)
{
	if (!m->pend_tab)
		return;
	for (size_t b = 0; b < PENDING_BUCKETS; b++) {
		while (m->pend_tab[b]) {
			struct fs_inode *p = m->pend_tab[b];

			m->pend_tab[b] = p->pnext;
			free(p->target);
			free(p);
		}
	}
	free(m->pend_tab);
	m->pend_tab = NULL;
	m->pend_n = 0;
}
