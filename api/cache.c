/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cache of finished responses for reads that only a registry change can
 * alter (a model, a sealed version). Every change clears it (api_on_change)
 * and bumps a generation; a response computed from a read that began before
 * the clear carries the old generation and is refused, so a stale answer is
 * never kept. Bounded by bytes and entries; when full, new answers are
 * simply not kept.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"

#define CACHE_SLOTS 4096 /* entries at most 3/4 of this */

struct api_cache_slot {
	char *key;
	uint64_t hash;
	void *val;
	int status;
	size_t bytes;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

int api_cache_init(struct api_cache *c, size_t max_bytes, void (*release)(void *val))
{
	memset(c, 0, sizeof(*c));
	c->max_bytes = max_bytes;
	c->release = release;
	atomic_init(&c->gen, 1);
	if (max_bytes) {
		c->cap = CACHE_SLOTS;
		c->slots = calloc(c->cap, sizeof(*c->slots));
		if (!c->slots)
			return cm_err_set(-ENOMEM, "out of memory for the response cache");
	}
	{
		/* Writers first: a stream of reads must never hold off the clear a change waits on. */
		pthread_rwlockattr_t a;

		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&c->lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	return 0;
}

static void slots_free(struct api_cache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		if (!c->slots[i].key)
			continue;
		free(c->slots[i].key);
		if (c->release)
			c->release(c->slots[i].val);
		memset(&c->slots[i], 0, sizeof(c->slots[i]));
	}
	c->n = 0;
	c->bytes = 0;
}

void api_cache_destroy(struct api_cache *c)
{
	if (c->slots) {
		slots_free(c);
		free(c->slots);
		c->slots = NULL;
	}
	pthread_rwlock_destroy(&c->lock);
}

uint64_t api_cache_gen(struct api_cache *c)
{
	return atomic_load(&c->gen);
}

static struct api_cache_slot *slot_find(struct api_cache *c, const char *key, uint64_t h)
{
	for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
		struct api_cache_slot *s = &c->slots[i];

		if (!s->key || (s->hash == h && !strcmp(s->key, key)))
			return s;
	}
}

int api_cache_use(struct api_cache *c, const char *key, int (*use)(void *ctx, void *val, int status),
		  void *ctx)
{
	struct api_cache_slot *s;
	int rc = -ENOENT;

	if (!c->slots)
		return -ENOENT;
	pthread_rwlock_rdlock(&c->lock);
	s = slot_find(c, key, hash_str(key));
	if (s->key)
		rc = use(ctx, s->val, s->status);
	pthread_rwlock_unlock(&c->lock);
	return rc;
}

int api_cache_put(struct api_cache *c, uint64_t gen, const char *key, void *val, int status,
		  size_t bytes)
{
	struct api_cache_slot *s;
	uint64_t h = hash_str(key);
	int rc = 0;

	if (!c->slots)
		return -ENOSPC;
	pthread_rwlock_wrlock(&c->lock);
	if (atomic_load(&c->gen) != gen) {
		rc = -ESTALE; /* a change happened after this answer was read */
		goto done;
	}
	if (c->n + 1 > c->cap / 4 * 3 || c->bytes + bytes > c->max_bytes) {
		rc = -ENOSPC;
		goto done;
	}
	s = slot_find(c, key, h);
	if (s->key) {
		rc = -EEXIST; /* another thread was first; keep its answer */
		goto done;
	}
	s->key = strdup(key);
	if (!s->key) {
		rc = -ENOMEM;
		goto done;
	}
	s->hash = h;
	s->val = val;
	s->status = status;
	s->bytes = bytes;
	c->n++;
	c->bytes += bytes;
done:
	pthread_rwlock_unlock(&c->lock);
	return rc;
}

void api_cache_clear(struct api_cache *c)
{
	pthread_rwlock_wrlock(&c->lock);
	atomic_fetch_add(&c->gen, 1);
	if (c->slots && c->n)
		slots_free(c);
	pthread_rwlock_unlock(&c->lock);
}
