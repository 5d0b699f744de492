/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jansson prints every real with 17 significant digits, which is exact but
 * shows 0.85 as 0.84999999999999998 in answers, in the materialised
 * metadata.json files and in the event log. The shortest exact form needs at
 * most 17 digits and usually 15; jansson takes one precision per dump, so the
 * document gets the largest its reals need. Nothing is rounded: every real
 * still reads back as the same double.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cm.h"
#include "reg_json.h"

int reg_json_real_digits(double x)
{
	char buf[32];

	for (int p = 15; p < 17; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, x);
		if (strtod(buf, NULL) == x)
			return p;
	}
	return 17;
}

/* The most digits any real below j needs, or 0 for none. */
static int digits_needed(const json_t *j, int have)
{
	const char *key;
	json_t *v;
	size_t i;

	if (have == 17)
		return have;
	switch (json_typeof(j)) {
	case JSON_REAL: {
		int p = reg_json_real_digits(json_real_value(j));

		return p > have ? p : have;
	}
	case JSON_OBJECT:
		/* jansson's iteration takes a non-const object; nothing is changed. */
		json_object_foreach((json_t *)j, key, v)
			have = digits_needed(v, have);
		return have;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
			have = digits_needed(v, have);
		return have;
	default:
		return have;
	}
}

size_t reg_json_real_flags(const json_t *j)
{
	int p = j ? digits_needed(j, 0) : 0;

	return p ? JSON_REAL_PRECISION(p) : 0;
}

/*
 * jansson 2.14 does not always report its own allocation failures: a loaded
 * text can come back with a character or a key missing, a dump with a key
 * missing (both found by tests/unit/registry/test_faults.c). Its allocations
 * go through here, which counts failures per thread, and the registry's
 * loads and dumps fail when a failure happened during them.
 */
static _Thread_local unsigned long json_oom;

static void *json_alloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		json_oom++;
	return p;
}

static void json_release(void *p)
{
	free(p);
}

static void json_hooks_set(void)
{
	json_set_alloc_funcs(json_alloc, json_release);
}

void reg_json_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, json_hooks_set);
}

json_t *reg_json_loads(const char *text, json_error_t *err)
{
	unsigned long before = json_oom;
	json_t *j = text ? json_loads(text, 0, err) : NULL;

	if (j && json_oom != before) {
		json_decref(j);
		j = NULL;
	}
	if (!j && json_oom != before && err)
		snprintf(err->text, sizeof(err->text), "out of memory");
	return j;
}

struct dump_buf {
	struct cm_buf b;
	int failed;
};

static int dump_append(const char *data, size_t len, void *ctx)
{
	struct dump_buf *d = ctx;

	if (cm_buf_append(&d->b, data, len) < 0) {
		d->failed = 1;
		return -1;
	}
	return 0;
}

/*
 * Through our own buffer, not json_dumps: jansson 2.14 ignores a failed
 * write of an object key and returns the text without it as if complete
 * (found by tests/unit/registry/test_faults.c), so a record stored under
 * memory pressure would be silently damaged. The flag sees every failure.
 */
char *reg_json_dumps(const json_t *j, size_t flags)
{
	struct dump_buf d = { 0 };
	unsigned long before = json_oom;

	if (json_dump_callback(j, dump_append, &d, flags | reg_json_real_flags(j)) != 0 || d.failed ||
	    !d.b.data || json_oom != before) {
		cm_buf_free(&d.b);
		return NULL;
	}
	return d.b.data;
}
