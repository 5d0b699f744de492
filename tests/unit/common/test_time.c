/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 3339 times: formatting, parsing, offsets, fractions and bad input. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fixture.h"

#define US 1000000LL
/* 2026-11-26T12:00:00Z */
#define NOON_US (1795694400LL * US)

static int64_t parse_ok(const char *s)
{
	int64_t us = 0;

	if (cm_time_parse(s, &us) != 0)
		fail_msg("'%s' did not parse: %s", s, cm_err_msg());
	return us;
}

static void format_known_values(void **state)
{
	char out[CM_TIME_RFC3339_LEN];

	(void)state;
	cm_time_format(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
	cm_time_format(NOON_US, out);
	assert_string_equal(out, "2026-11-26T12:00:00.000000Z");
	cm_time_format(NOON_US + 123456, out);
	assert_string_equal(out, "2026-11-26T12:00:00.123456Z");
	/* Before the epoch the fraction still counts forward from the second. */
	cm_time_format(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
	cm_time_format(-14182940LL * US + 500000, out);
	assert_string_equal(out, "1969-07-20T20:17:40.500000Z");
	cm_time_format(951868799LL * US, out);
	assert_string_equal(out, "2000-02-29T23:59:59.000000Z");
}

static void round_trip(void **state)
{
	const int64_t values[] = {
		0, 1, 999999, NOON_US, NOON_US + 1, NOON_US + 654321, 951868799LL * US + 7,
		-1, -US, -14182940LL * US + 500000, 4102444800LL * US - 1, /* 2099-12-31T23:59:59.999999 */
	};
	char out[CM_TIME_RFC3339_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		cm_time_format(values[i], out);
		assert_int_equal(strlen(out), 27);
		if (parse_ok(out) != values[i])
			fail_msg("%lld -> '%s' -> %lld", (long long)values[i], out,
				 (long long)parse_ok(out));
	}
	/* now() survives the trip too. */
	int64_t now = cm_time_now_us();
	cm_time_format(now, out);
	assert_int_equal(parse_ok(out), now);
}

static void offsets(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2026-11-26T12:00:00Z"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26T14:00:00+02:00"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26T06:30:00-05:30"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26T12:00:00+00:00"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26T12:00:00-00:00"), NOON_US);
	/* An offset that crosses midnight and the day before. */
	assert_int_equal(parse_ok("2026-11-27T01:45:00+13:45"), NOON_US);
	assert_int_equal(parse_ok("2026-11-25T23:00:00-13:00"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26T14:00:00.25+02:00"), NOON_US + 250000);
}

static void fractions(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2026-11-26T12:00:00.5Z"), NOON_US + 500000);
	assert_int_equal(parse_ok("2026-11-26T12:00:00.05Z"), NOON_US + 50000);
	assert_int_equal(parse_ok("2026-11-26T12:00:00.123Z"), NOON_US + 123000);
	assert_int_equal(parse_ok("2026-11-26T12:00:00.123456Z"), NOON_US + 123456);
	assert_int_equal(parse_ok("2026-11-26T12:00:00.000001Z"), NOON_US + 1);
	/* Past microseconds the digits are read and dropped (truncated, not rounded). */
	assert_int_equal(parse_ok("2026-11-26T12:00:00.123456999Z"), NOON_US + 123456);
	assert_int_equal(parse_ok("1969-12-31T23:59:59.5Z"), -500000);
}

static void zone_letter_and_separator_case(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2026-11-26T12:00:00z"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26t12:00:00Z"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26 12:00:00Z"), NOON_US);
	assert_int_equal(parse_ok("2026-11-26T12:00:00.5z"), NOON_US + 500000);
}

static void calendar(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2000-02-29T23:59:59Z"), 951868799LL * US);
	assert_int_equal(parse_ok("2024-02-29T00:00:00Z") + 86400 * US,
			 parse_ok("2024-03-01T00:00:00Z"));
	assert_int_equal(parse_ok("2026-12-31T23:59:59Z") + US, parse_ok("2027-01-01T00:00:00Z"));
}

/* Each must fail with -EINVAL, leave *out alone and quote the input. */
static void invalid_inputs(void **state)
{
	static const char *const bad[] = {
		"",
		"2026",
		"2026-13-01T00:00:00Z",  /* month 13 */
		"2026-00-10T00:00:00Z",
		"2026-11-00T00:00:00Z",
		"2026-11-32T00:00:00Z",
		"2026-02-30T00:00:00Z",  /* no such day */
		"2025-02-29T00:00:00Z",  /* not a leap year */
		"2100-02-29T00:00:00Z",  /* nor a century not divisible by 400 */
		"2026-04-31T00:00:00Z",
		"2026-11-26T24:00:00Z",
		"2026-11-26T12:60:00Z",
		"2026-11-26T12:00:61Z",
		"2026-11-26T12:00:00",   /* missing zone */
		"2026-11-26T12:00:00.5", /* missing zone after a fraction */
		"2026-11-26T12:00:00.Z", /* dot without digits */
		"2026-11-26T12:00:00ZZ", /* trailing junk */
		"2026-11-26T12:00:00Z ",
		"2026-11-26T12:00:00+02:00junk",
		"2026-11-26T12:00:00+02",
		"2026-11-26T12:00:00+0200",
		"2026-11-26T12:00:00+24:00",
		"2026-11-26T12:00:00+02:60",
		"2026-11-26X12:00:00Z",
		"2026/11/26T12:00:00Z",
		"26-11-26T12:00:00Z",
		"2026-1a-26T12:00:00Z",
		"not a time at all, no",
	};
	char want[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t us = 4242;
		int rc;

		cm_err_clear();
		rc = cm_time_parse(bad[i], &us);
		if (rc != -EINVAL)
			fail_msg("'%s': rc %d, expected -EINVAL (us=%lld)", bad[i], rc, (long long)us);
		assert_int_equal(us, 4242);
		snprintf(want, sizeof(want), "'%s'", bad[i]);
		if (!strstr(cm_err_msg(), want))
			fail_msg("'%s': message '%s' does not quote the input", bad[i], cm_err_msg());
		assert_non_null(strstr(cm_err_msg(), "RFC 3339"));
	}
}

static int64_t mono_us(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000 + t->tv_nsec / 1000;
}

/* A deadline is now + the wait on the monotonic clock, normalised; a negative wait is none. */
static void deadline(void **state)
{
	struct timespec before, d, after;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &before);
	cm_time_deadline(1999999, &d);
	clock_gettime(CLOCK_MONOTONIC, &after);
	assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
	assert_true(mono_us(&d) >= mono_us(&before) + 1999999);
	assert_true(mono_us(&d) <= mono_us(&after) + 1999999);
	cm_time_deadline(-5000000, &d);
	clock_gettime(CLOCK_MONOTONIC, &after);
	assert_true(mono_us(&d) >= mono_us(&before) && mono_us(&d) <= mono_us(&after));
}

static void now_is_plausible(void **state)
{
	int64_t a, b;

	(void)state;
	a = cm_time_now_us();
	b = cm_time_now_us();
	assert_true(b >= a);
	/* After 2024-01-01 and before 2100. */
	assert_true(a > 1704067200LL * US);
	assert_true(a < 4102444800LL * US);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(format_known_values),
		cmocka_unit_test(round_trip),
		cmocka_unit_test(offsets),
		cmocka_unit_test(fractions),
		cmocka_unit_test(zone_letter_and_separator_case),
		cmocka_unit_test(calendar),
		cmocka_unit_test(invalid_inputs),
		cmocka_unit_test(now_is_plausible),
		cmocka_unit_test(deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
