/* SPDX-License-Identifier: Apache-2.0 */
/* Per-thread error messages and cm_strlcpy: what travels beside a -errno code. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "fixture.h"

static void set_returns_rc_and_keeps_message(void **state)
{
	(void)state;
	cm_err_clear();
	assert_string_equal(cm_err_msg(), "");
	assert_int_equal(cm_err_set(-ENOENT, "no version '%s' of %d", "v7", 3), -ENOENT);
	assert_string_equal(cm_err_msg(), "no version 'v7' of 3");
	/* rc is returned unchanged, whatever it is. */
	assert_int_equal(cm_err_set(0, "fine"), 0);
	assert_string_equal(cm_err_msg(), "fine");
	assert_int_equal(cm_err_set(-EPERM, "second"), -EPERM);
	assert_string_equal(cm_err_msg(), "second");
	cm_err_clear();
	assert_string_equal(cm_err_msg(), "");
}

static void set_cuts_long_messages(void **state)
{
	char big[CM_ERR_MAX * 2];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cm_err_set(-E2BIG, "%s", big), -E2BIG);
	assert_int_equal(strlen(cm_err_msg()), CM_ERR_MAX - 1);
	assert_int_equal(cm_err_msg()[0], 'x');
	cm_err_clear();
}

static void wrap_prefixes(void **state)
{
	(void)state;
	cm_err_clear();
	cm_err_set(-EIO, "disk on fire");
	assert_int_equal(cm_err_wrap(-EIO, "sealing '%s'", "v1"), -EIO);
	assert_string_equal(cm_err_msg(), "sealing 'v1': disk on fire");
	assert_int_equal(cm_err_wrap(-EIO, "model %s", "m"), -EIO);
	assert_string_equal(cm_err_msg(), "model m: sealing 'v1': disk on fire");

	/* Without a message, the wrap names the errno. */
	cm_err_clear();
	assert_int_equal(cm_err_wrap(-ENOENT, "opening %s", "x"), -ENOENT);
	assert_string_equal(cm_err_msg(), "opening x: No such file or directory");
	cm_err_clear();
}

static void describe_prefers_message(void **state)
{
	(void)state;
	cm_err_clear();
	assert_string_equal(cm_err_describe(-ENOENT), strerror(ENOENT));
	assert_string_equal(cm_err_describe(EACCES), strerror(EACCES));
	cm_err_set(-ENOENT, "no model 'm'");
	assert_string_equal(cm_err_describe(-ENOENT), "no model 'm'");
	cm_err_clear();
	assert_string_equal(cm_err_describe(-EBUSY), strerror(EBUSY));
}

/* Two threads each set and read back their own message while the other does too. */
struct err_thread {
	const char *mine;
	pthread_barrier_t *bar;
	char seen_before[CM_ERR_MAX];
	char seen_after[CM_ERR_MAX];
	int rc;
};

static void *err_thread_run(void *arg)
{
	struct err_thread *t = arg;

	/* A new thread starts with no message, whatever the others hold. */
	cm_strlcpy(t->seen_before, cm_err_msg(), sizeof(t->seen_before));
	t->rc = cm_err_set(-EINVAL, "%s", t->mine);
	/* Both threads have set theirs before either reads again. */
	pthread_barrier_wait(t->bar);
	cm_strlcpy(t->seen_after, cm_err_msg(), sizeof(t->seen_after));
	pthread_barrier_wait(t->bar);
	return NULL;
}

static void message_is_per_thread(void **state)
{
	pthread_barrier_t bar;
	struct err_thread a = { .mine = "thread A's message", .bar = &bar };
	struct err_thread b = { .mine = "thread B's message", .bar = &bar };
	pthread_t ta, tb;

	(void)state;
	assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
	cm_err_set(-EIO, "main's message");
	assert_int_equal(pthread_create(&ta, NULL, err_thread_run, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, err_thread_run, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);

	assert_string_equal(a.seen_before, "");
	assert_string_equal(b.seen_before, "");
	assert_int_equal(a.rc, -EINVAL);
	assert_int_equal(b.rc, -EINVAL);
	assert_string_equal(a.seen_after, "thread A's message");
	assert_string_equal(b.seen_after, "thread B's message");
	assert_string_equal(cm_err_msg(), "main's message");
	cm_err_clear();
}

static void strlcpy_fits(void **state)
{
	char dst[8];

	(void)state;
	assert_int_equal(cm_strlcpy(dst, "abc", sizeof(dst)), 0);
	assert_string_equal(dst, "abc");
	/* Exactly n-1 bytes still fit with the NUL. */
	assert_int_equal(cm_strlcpy(dst, "1234567", sizeof(dst)), 0);
	assert_string_equal(dst, "1234567");
	assert_int_equal(cm_strlcpy(dst, "", sizeof(dst)), 0);
	assert_string_equal(dst, "");
}

static void strlcpy_truncates(void **state)
{
	char dst[8];

	(void)state;
	assert_int_equal(cm_strlcpy(dst, "12345678", sizeof(dst)), -E2BIG);
	assert_string_equal(dst, "1234567");
	assert_int_equal(cm_strlcpy(dst, "a much longer string", sizeof(dst)), -E2BIG);
	assert_string_equal(dst, "a much ");
	assert_int_equal(cm_strlcpy(dst, "xy", 1), -E2BIG);
	assert_string_equal(dst, "");
	/* n == 0: nothing may be written at all. */
	memcpy(dst, "keep", 5);
	assert_int_equal(cm_strlcpy(dst, "xy", 0), -E2BIG);
	assert_string_equal(dst, "keep");
}

/*
 * The test is linked with -Wl,--wrap=free: every free() of common/ comes
 * here first, so what cm_free() left in a block can be read just before the
 * block goes back to the allocator.
 */
void __real_free(void *p);
void __wrap_free(void *p);
static const void *watched;
static size_t watched_len;
static int watched_clean = -1;

void __wrap_free(void *p)
{
	if (p && p == watched) {
		const unsigned char *b = p;

		watched_clean = 1;
		for (size_t i = 0; i < watched_len; i++)
			if (b[i])
				watched_clean = 0;
		watched = NULL;
	}
	__real_free(p);
}

static void free_accepts_null(void **state)
{
	(void)state;
	cm_free(NULL);
	cm_free(strdup("x"));
}

static void free_wipes_the_whole_block(void **state)
{
	char *s = strdup("alice admin secret-0123456789abcdef\nbob reader x");

	(void)state;
	s[5] = '\0'; /* a NUL in the middle, as strtok leaves: the rest is wiped too */
	watched = s;
	watched_len = strlen(s + 6) + 7;
	watched_clean = -1;
	cm_free(s);
	assert_int_equal(watched_clean, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(set_returns_rc_and_keeps_message),
		cmocka_unit_test(set_cuts_long_messages),
		cmocka_unit_test(wrap_prefixes),
		cmocka_unit_test(describe_prefers_message),
		cmocka_unit_test(message_is_per_thread),
		cmocka_unit_test(strlcpy_fits),
		cmocka_unit_test(strlcpy_truncates),
		cmocka_unit_test(free_accepts_null),
		cmocka_unit_test(free_wipes_the_whole_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
