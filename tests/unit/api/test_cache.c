/* SPDX-License-Identifier: Apache-2.0 */
/* The response cache and its generation rule (api/cache.c). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apifx.h"

static int released;

static void release(void *val)
{
	released++;
	free(val);
}

static int use_copy(void *ctx, void *val, int status)
{
	snprintf(ctx, 32, "%s/%d", (const char *)val, status);
	return 0;
}

static void put_use_clear(void **state)
{
	struct api_cache c;
	char got[32];
	uint64_t gen;

	released = 0;
	assert_int_equal(api_cache_init(&c, 1 << 20, release), 0);
	assert_int_equal(api_cache_use(&c, "/a", use_copy, got), -ENOENT);
	gen = api_cache_gen(&c);
	assert_int_equal(api_cache_put(&c, gen, "/a", strdup("A"), 200, 10), 0);
	assert_int_equal(api_cache_use(&c, "/a", use_copy, got), 0);
	assert_string_equal(got, "A/200");
	/* A second answer for the same key: the first stays, the caller keeps its value. */
	{
		char *dup = strdup("A2");

		assert_int_equal(api_cache_put(&c, gen, "/a", dup, 200, 10), -EEXIST);
		free(dup);
	}
	/* Computed before a clear: refused. */
	api_cache_clear(&c);
	assert_int_equal(released, 1);
	assert_int_equal(api_cache_use(&c, "/a", use_copy, got), -ENOENT);
	{
		char *late = strdup("stale");

		assert_int_equal(api_cache_put(&c, gen, "/a", late, 200, 10), -ESTALE);
		free(late);
	}
	assert_true(api_cache_gen(&c) > gen);
	/* Bytes cap. */
	gen = api_cache_gen(&c);
	{
		char *big = strdup("big");

		assert_int_equal(api_cache_put(&c, gen, "/big", big, 200, 2 << 20), -ENOSPC);
		free(big);
	}
	/* Many keys (collisions, probing). */
	for (int i = 0; i < 1000; i++) {
		char key[32];

		snprintf(key, sizeof(key), "/k/%d", i);
		assert_int_equal(api_cache_put(&c, gen, key, strdup(key), 200, 100), 0);
	}
	for (int i = 0; i < 1000; i += 37) {
		char key[32];

		snprintf(key, sizeof(key), "/k/%d", i);
		assert_int_equal(api_cache_use(&c, key, use_copy, got), 0);
		assert_int_equal(strncmp(got, key, strlen(key)), 0);
	}
	api_cache_destroy(&c);
	assert_int_equal(released, 1001);
}

static void disabled(void **state)
{
	struct api_cache c;
	char got[32];
	char *v = strdup("x");

	assert_int_equal(api_cache_init(&c, 0, release), 0);
	assert_int_equal(api_cache_put(&c, api_cache_gen(&c), "/a", v, 200, 1), -ENOSPC);
	free(v);
	assert_int_equal(api_cache_use(&c, "/a", use_copy, got), -ENOENT);
	api_cache_clear(&c);
	api_cache_destroy(&c);
}

struct race {
	struct api_cache *c;
	int stop;
};

static int use_check(void *ctx, void *val, int status)
{
	return strcmp(val, "v") ? -EIO : 0;
}

static void *reader(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		int rc = api_cache_use(r->c, "/x", use_check, NULL);

		if (rc != 0 && rc != -ENOENT)
			return (void *)1;
	}
	return NULL;
}

/* Readers use entries while another thread clears and refills: values stay alive. */
static void concurrent(void **state)
{
	struct api_cache c;
	struct race r = { &c, 0 };
	pthread_t t[4];
	void *ret;

	assert_int_equal(api_cache_init(&c, 1 << 20, release), 0);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, reader, &r);
	for (int i = 0; i < 20000; i++) {
		char *v = strdup("v");

		if (api_cache_put(&c, api_cache_gen(&c), "/x", v, 200, 1) < 0)
			free(v);
		if (i % 3 == 0)
			api_cache_clear(&c);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	api_cache_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_use_clear),
		cmocka_unit_test(disabled),
		cmocka_unit_test(concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
