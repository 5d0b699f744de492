/* SPDX-License-Identifier: Apache-2.0 */
/* Growable buffers: append, printf, reset, free, growth, and the size cap. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static void append_and_terminate(void **state)
{
	struct cm_buf b = { 0 };

	(void)state;
	assert_int_equal(cm_buf_append(&b, "abc", 3), 0);
	assert_int_equal(b.len, 3);
	assert_true(b.cap >= 4);
	assert_string_equal(b.data, "abc");
	assert_int_equal(cm_buf_append(&b, "defg", 2), 0);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "abcde");
	/* Bytes are bytes: an embedded NUL is kept and counted. */
	assert_int_equal(cm_buf_append(&b, "x\0y", 3), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.data, "abcdex\0y", 9);
	cm_buf_free(&b);
}

static void empty_append_terminates(void **state)
{
	struct cm_buf b = { 0 };

	(void)state;
	assert_int_equal(cm_buf_append(&b, "", 0), 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	cm_buf_free(&b);
}

static void printf_appends(void **state)
{
	struct cm_buf b = { 0 };

	(void)state;
	assert_int_equal(cm_buf_printf(&b, "%s=%d", "rows", 42), 0);
	assert_string_equal(b.data, "rows=42");
	assert_int_equal(cm_buf_printf(&b, "; %s", "more"), 0);
	assert_string_equal(b.data, "rows=42; more");
	assert_int_equal(b.len, strlen("rows=42; more"));
	assert_int_equal(cm_buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, strlen("rows=42; more"));
	cm_buf_free(&b);
}

static void reset_keeps_storage(void **state)
{
	struct cm_buf b = { 0 };
	size_t cap;
	char *data;

	(void)state;
	cm_buf_reset(&b); /* on a never-used buffer: nothing to do, no crash */
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(cm_buf_printf(&b, "%0100d", 7), 0);
	cap = b.cap;
	data = b.data;
	cm_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.data, data);
	assert_int_equal(cm_buf_append(&b, "new", 3), 0);
	assert_string_equal(b.data, "new");
	cm_buf_free(&b);
}

static void free_clears_and_accepts_null(void **state)
{
	struct cm_buf b = { 0 };

	(void)state;
	cm_buf_free(NULL);
	cm_buf_free(&b);
	assert_int_equal(cm_buf_append(&b, "abc", 3), 0);
	cm_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	cm_buf_free(&b); /* twice is fine */
	/* A freed buffer is a fresh one. */
	assert_int_equal(cm_buf_append(&b, "z", 1), 0);
	assert_string_equal(b.data, "z");
	cm_buf_free(&b);
}

static void grows_over_many_appends(void **state)
{
	struct cm_buf b = { 0 };
	const size_t rounds = 20000;
	char piece[16];

	(void)state;
	for (size_t i = 0; i < rounds; i++) {
		snprintf(piece, sizeof(piece), "%05zu|", i);
		assert_int_equal(cm_buf_append(&b, piece, 6), 0);
	}
	assert_int_equal(b.len, rounds * 6);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	for (size_t i = 0; i < rounds; i++) {
		snprintf(piece, sizeof(piece), "%05zu|", i);
		if (memcmp(b.data + i * 6, piece, 6))
			fail_msg("piece %zu is '%.6s', expected '%s'", i, b.data + i * 6, piece);
	}
	cm_buf_free(&b);
}

static void large_printf(void **state)
{
	struct cm_buf b = { 0 };
	const size_t n = 300 * 1024;
	char *big = malloc(n + 1);
	size_t want;

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	assert_int_equal(cm_buf_append(&b, "<", 1), 0);
	assert_int_equal(cm_buf_printf(&b, "%s|%d|%s", big, -12345, big), 0);
	want = 1 + n + strlen("|-12345|") + n;
	assert_int_equal(b.len, want);
	assert_int_equal(strlen(b.data), want);
	assert_int_equal(b.data[0], '<');
	assert_memory_equal(b.data + 1, big, n);
	assert_memory_equal(b.data + 1 + n, "|-12345|", 8);
	assert_memory_equal(b.data + 1 + n + 8, big, n);
	free(big);
	cm_buf_free(&b);
}

static void impossible_size_is_refused(void **state)
{
	struct cm_buf b = { 0 };
	size_t huge = SIZE_MAX - 1;

	(void)state;
	assert_int_equal(cm_buf_append(&b, "abc", 3), 0);
	cm_err_clear();
	/* Never read: the size check comes first and leaves the buffer as it was. */
	assert_int_equal(cm_buf_append(&b, "x", huge), -ENOMEM);
	assert_non_null(strstr(cm_err_msg(), "too large"));
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	cm_buf_free(&b);
}

/* cm_grow: doubling from `first`, contents kept, nothing changed on a refusal. */
static void grow_arrays(void **state)
{
	struct pair {
		int a;
		double b;
	} *v = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(cm_grow(&v, &cap, 0, sizeof(*v), 4), 0);
	assert_null(v);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(cm_grow(&v, &cap, (size_t)i + 1, sizeof(*v), 4), 0);
		assert_true(cap >= (size_t)i + 1);
		v[i] = (struct pair){ i, i / 2.0 };
	}
	assert_int_equal(cap, 1024); /* 4, 8, ... */
	for (int i = 0; i < 1000; i++)
		assert_true(v[i].a == i && v[i].b == i / 2.0);
	assert_int_equal(cm_grow(&v, &cap, 5000, sizeof(*v), 4), 0);
	assert_int_equal(cap, 8192);
	assert_int_equal(v[999].a, 999);
	/* Too large: refused, the array and its capacity untouched. */
	cm_err_clear();
	assert_int_equal(cm_grow(&v, &cap, SIZE_MAX / 2 + 2, sizeof(*v), 4), -ENOMEM);
	assert_string_equal(cm_err_msg(), "out of memory");
	assert_int_equal(cap, 8192);
	assert_int_equal(v[999].a, 999);
	assert_int_equal(cm_grow(&v, &cap, SIZE_MAX / sizeof(*v), sizeof(*v), 4), -ENOMEM);
	assert_int_equal(cap, 8192);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(append_and_terminate),
		cmocka_unit_test(empty_append_terminates),
		cmocka_unit_test(printf_appends),
		cmocka_unit_test(reset_keeps_storage),
		cmocka_unit_test(free_clears_and_accepts_null),
		cmocka_unit_test(grows_over_many_appends),
		cmocka_unit_test(large_printf),
		cmocka_unit_test(impossible_size_is_refused),
		cmocka_unit_test(grow_arrays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
