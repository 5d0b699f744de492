/* SPDX-License-Identifier: Apache-2.0 */
/* The log sink: one line per call on stderr, text or JSON, filtered by level. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

/*
 * stderr is pointed at a temp file between capture_begin() and capture_end();
 * nothing is asserted in between so that cmocka's own messages reach the
 * real stderr.
 */
struct capture {
	char path[4200];
	int saved;
	int fd;
};

static void capture_begin(struct capture *c)
{
	char dir[4096];

	fx_mkdtemp(dir, sizeof(dir));
	snprintf(c->path, sizeof(c->path), "%s/stderr", dir);
	c->fd = open(c->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(c->fd >= 0);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns everything written meanwhile (free it). */
static char *capture_end(struct capture *c)
{
	struct stat sb;
	char *text;
	ssize_t n;
	char *slash;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	assert_int_equal(fstat(c->fd, &sb), 0);
	text = calloc(1, (size_t)sb.st_size + 1);
	assert_non_null(text);
	n = pread(c->fd, text, (size_t)sb.st_size, 0);
	assert_int_equal(n, sb.st_size);
	close(c->fd);
	unlink(c->path);
	slash = strrchr(c->path, '/');
	*slash = '\0';
	rmdir(c->path);
	return text;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The ts field: an RFC 3339 time within a minute of now. */
static void check_ts(const char *ts)
{
	int64_t us;

	assert_int_equal(strlen(ts), CM_TIME_RFC3339_LEN - 5);
	assert_int_equal(ts[strlen(ts) - 1], 'Z');
	assert_int_equal(cm_time_parse(ts, &us), 0);
	assert_true(llabs(cm_time_now_us() - us) < 60LL * 1000000);
}

static void text_line(void **state)
{
	struct capture c;
	char *out, *nl;
	char ts[64], level[16], module[16], msg[128];

	(void)state;
	cm_log_setup(CM_LOG_DEBUG, 0);
	capture_begin(&c);
	cm_log(CM_LOG_INFO, "api", "listening on %s port=%d", "127.0.0.1", 8080);
	out = capture_end(&c);

	assert_int_equal(count_lines(out), 1);
	nl = strchr(out, '\n');
	assert_int_equal(nl[1], '\0');
	*nl = '\0';
	assert_int_equal(sscanf(out, "%63s %15s %15s %127[^\n]", ts, level, module, msg), 4);
	check_ts(ts);
	assert_string_equal(level, "info");
	assert_string_equal(module, "api");
	assert_string_equal(msg, "listening on 127.0.0.1 port=8080");
	/* Exactly one space between fields. */
	assert_string_equal(out + strlen(ts), " info api listening on 127.0.0.1 port=8080");
	free(out);
}

static void one_line_per_call_and_level_names(void **state)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	struct capture c;
	char *out, *line, *save = NULL;
	int i = 0;

	(void)state;
	cm_log_setup(CM_LOG_DEBUG, 0);
	capture_begin(&c);
	cm_log(CM_LOG_DEBUG, "fs", "m%d", 0);
	cm_log(CM_LOG_INFO, "fs", "m%d", 1);
	cm_log(CM_LOG_WARN, "fs", "m%d", 2);
	cm_log(CM_LOG_ERROR, "fs", "m%d", 3);
	out = capture_end(&c);

	assert_int_equal(count_lines(out), 4);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		char want[64];

		snprintf(want, sizeof(want), " %s fs m%d", names[i], i);
		assert_string_equal(line + CM_TIME_RFC3339_LEN - 5, want);
	}
	assert_int_equal(i, 4);
	free(out);
}

static void level_filtering(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	cm_log_setup(CM_LOG_WARN, 0);
	capture_begin(&c);
	cm_log(CM_LOG_DEBUG, "cli", "dropped debug");
	cm_log(CM_LOG_INFO, "cli", "dropped info");
	cm_log(CM_LOG_WARN, "cli", "kept warn");
	cm_log(CM_LOG_ERROR, "cli", "kept error");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 2);
	assert_null(strstr(out, "dropped"));
	assert_non_null(strstr(out, " warn cli kept warn\n"));
	assert_non_null(strstr(out, " error cli kept error\n"));
	free(out);

	cm_log_setup(CM_LOG_ERROR, 1);
	capture_begin(&c);
	cm_log(CM_LOG_WARN, "cli", "dropped warn");
	cm_log(CM_LOG_ERROR, "cli", "kept");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 1);
	assert_null(strstr(out, "dropped"));
	assert_non_null(strstr(out, "\"msg\":\"kept\""));
	free(out);

	cm_log_setup(CM_LOG_DEBUG, 0);
	capture_begin(&c);
	cm_log(CM_LOG_DEBUG, "cli", "now kept");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 1);
	free(out);
}

/* Parses a captured output that must be exactly one JSON line. */
static json_t *one_json_line(const char *out)
{
	json_error_t jerr;
	json_t *j;

	assert_int_equal(count_lines(out), 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	j = json_loads(out, 0, &jerr);
	if (!j)
		fail_msg("not JSON (%s): %s", jerr.text, out);
	assert_true(json_is_object(j));
	return j;
}

static void json_line_and_escaping(void **state)
{
	const char *tricky = "say \"hi\"\nand\\then\ttab \x01 done";
	struct capture c;
	char *out;
	json_t *j;

	(void)state;
	cm_log_setup(CM_LOG_DEBUG, 1);
	capture_begin(&c);
	cm_log(CM_LOG_ERROR, "registry", "%s", tricky);
	out = capture_end(&c);

	j = one_json_line(out);
	/* The newline in the message is escaped (either JSON form), not written raw. */
	assert_true(strstr(out, "\\n") || strstr(out, "\\u000a"));
	assert_non_null(strstr(out, "\\\"hi\\\""));
	assert_int_equal(json_object_size(j), 4);
	check_ts(json_string_value(json_object_get(j, "ts")));
	assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
	assert_string_equal(json_string_value(json_object_get(j, "module")), "registry");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), tricky);
	json_decref(j);
	free(out);

	capture_begin(&c);
	cm_log(CM_LOG_DEBUG, "fs", "plain");
	out = capture_end(&c);
	j = one_json_line(out);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "debug");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "plain");
	json_decref(j);
	free(out);
	cm_log_setup(CM_LOG_INFO, 0);
}

/* A message longer than the line buffer is cut but stays one line (valid JSON). */
static void long_messages_stay_one_line(void **state)
{
	char big[6000];
	struct capture c;
	char *out;
	json_t *j;
	const char *msg;

	(void)state;
	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cm_log_setup(CM_LOG_DEBUG, 1);
	capture_begin(&c);
	cm_log(CM_LOG_WARN, "api", "%s", big);
	out = capture_end(&c);
	j = one_json_line(out);
	msg = json_string_value(json_object_get(j, "msg"));
	assert_non_null(msg);
	assert_true(strlen(msg) > 1000);
	assert_true(strspn(msg, "\"") == strlen(msg));
	json_decref(j);
	free(out);

	memset(big, 'x', sizeof(big) - 1);
	cm_log_setup(CM_LOG_DEBUG, 0);
	capture_begin(&c);
	cm_log(CM_LOG_WARN, "api", "%s", big);
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_non_null(strstr(out, " warn api xxxx"));
	free(out);
	cm_log_setup(CM_LOG_INFO, 0);
}

#define LOG_THREADS 4
#define LOG_LINES 300

static void *log_thread(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < LOG_LINES; i++)
		cm_log(CM_LOG_INFO, "t", "thread=%d line=%d %0200d", id, i, 0);
	return NULL;
}

/* Threads logging at once never interleave within a line. */
static void concurrent_lines_stay_whole(void **state)
{
	pthread_t t[LOG_THREADS];
	int seen[LOG_THREADS] = { 0 };
	struct capture c;
	char *out, *line, *save = NULL;
	size_t n = 0;

	(void)state;
	cm_log_setup(CM_LOG_DEBUG, 0);
	capture_begin(&c);
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i);
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_join(t[i], NULL);
	out = capture_end(&c);

	assert_int_equal(count_lines(out), LOG_THREADS * LOG_LINES);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
		int id, i, len = 0;

		if (sscanf(line + CM_TIME_RFC3339_LEN - 5, " info t thread=%d line=%d %*d%n", &id, &i,
			   &len) != 2 || len == 0 || line[CM_TIME_RFC3339_LEN - 5 + len] != '\0')
			fail_msg("mangled line: %s", line);
		assert_in_range(id, 0, LOG_THREADS - 1);
		/* Each thread's lines arrive in its own order. */
		assert_int_equal(i, seen[id]);
		seen[id]++;
	}
	assert_int_equal(n, LOG_THREADS * LOG_LINES);
	free(out);
	cm_log_setup(CM_LOG_INFO, 0);
}

static void esc_names(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "model.pkl", "model.pkl" },
		{ "a\nb", "a\\nb" },
		{ "tab\there\r", "tab\\there\\r" },
		{ "back\\slash", "back\\\\slash" },
		{ "\x1b[2Jclear", "\\x1b[2Jclear" },
		{ "del\x7f", "del\\x7f" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "csi\xc2\x9b" "31m", "csi\\xc2\\x9b31m" },  /* C1 control as UTF-8 */
		{ "raw\x9b" "31m", "raw\\x9b31m" },           /* 8-bit CSI */
		{ "bad\xc3", "bad\\xc3" },                    /* truncated sequence */
		{ "\xff\xfe", "\\xff\\xfe" },
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(cm_esc(out, sizeof(out), cases[i].in), strlen(cases[i].out));
		assert_string_equal(out, cases[i].out);
	}
	/* Cut at a whole escape, never half of one. */
	assert_int_equal(cm_esc(out, 6, "ab\x1b" "cd"), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(cm_esc(out, 1, "abc"), 0);
	assert_string_equal(out, "");
}

static void text_line_escapes_names(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	cm_log_setup(CM_LOG_DEBUG, 0);
	capture_begin(&c);
	cm_log(CM_LOG_WARN, "api", "PUT /v1/%s 400", "a\n2026-01-01T00:00:00Z info api forged\x1b[2J");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, "PUT /v1/a\\n2026-01-01T00:00:00Z info api forged\\x1b[2J 400\n"));
	free(out);
}

static void limit_counts_what_it_drops(void **state)
{
	struct cm_log_limit l = CM_LOG_LIMIT_INIT(3, 1000000);
	uint64_t dropped = 99;
	int64_t t = 5000000;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cm_log_limit_allow(&l, t + i, &dropped), 1);
		assert_int_equal(dropped, 0);
	}
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cm_log_limit_allow(&l, t + 10 + i, &dropped), 0);
	/* A new window: the first line says how many were dropped; the count starts again. */
	assert_int_equal(cm_log_limit_allow(&l, t + 1000000, &dropped), 1);
	assert_int_equal(dropped, 1000);
	assert_int_equal(cm_log_limit_allow(&l, t + 1000001, &dropped), 1);
	assert_int_equal(dropped, 0);
	/* A clock that goes back starts a window too, rather than silencing forever. */
	assert_int_equal(cm_log_limit_allow(&l, t + 1000002, &dropped), 1);
	assert_int_equal(cm_log_limit_allow(&l, t + 1000003, &dropped), 0);
	assert_int_equal(cm_log_limit_allow(&l, 1, &dropped), 1);
	assert_int_equal(dropped, 1);
}

static void limited_lines(void **state)
{
	struct cm_log_limit l = CM_LOG_LIMIT_INIT(5, 3600LL * 1000000);
	struct capture c;
	char *out;

	(void)state;
	cm_log_setup(CM_LOG_DEBUG, 0);
	capture_begin(&c);
	for (int i = 0; i < 70000; i++)
		cm_log_limited(&l, CM_LOG_WARN, "http", "connection %d refused", i);
	l.window_us -= l.interval_us; /* as if the hour had passed */
	cm_log_limited(&l, CM_LOG_WARN, "http", "connection %d refused", 70000);
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 6);
	assert_non_null(strstr(out, "connection 4 refused\n"));
	assert_null(strstr(out, "connection 5 refused"));
	assert_non_null(strstr(out, "connection 70000 refused (and 69995 more like it, not logged)\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_line),
		cmocka_unit_test(one_line_per_call_and_level_names),
		cmocka_unit_test(level_filtering),
		cmocka_unit_test(json_line_and_escaping),
		cmocka_unit_test(long_messages_stay_one_line),
		cmocka_unit_test(concurrent_lines_stay_whole),
		cmocka_unit_test(esc_names),
		cmocka_unit_test(text_line_escapes_names),
		cmocka_unit_test(limit_counts_what_it_drops),
		cmocka_unit_test(limited_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
