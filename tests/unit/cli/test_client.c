/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's plumbing: escaping of what the server sends before it reaches
 * a terminal, aligned tables, percent-encoding of path segments, the exit
 * status of each HTTP status, the failure message with its gates, and a
 * call to a closed port.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "fixture.h"

static void esc_controls_and_utf8(void **state)
{
	char out[64];

	assert_string_equal(cli_esc(out, sizeof(out), "plain-v1.2_x"), "plain-v1.2_x");
	assert_string_equal(cli_esc(out, sizeof(out), "a\x1b[2Jb"), "a\\x1b[2Jb");
	assert_string_equal(cli_esc(out, sizeof(out), "l1\nl2\t\\"), "l1\\nl2\\t\\\\");
	assert_string_equal(cli_esc(out, sizeof(out), "caf\xc3\xa9"), "caf\xc3\xa9");
	/* a C1 control (U+009B, CSI), a lone continuation byte, DEL, an overlong */
	assert_string_equal(cli_esc(out, sizeof(out), "\xc2\x9b|\x80|\x7f|\xc0\xaf"),
			    "\\xc2\\x9b|\\x80|\\x7f|\\xc0\\xaf");
	assert_string_equal(cli_esc(out, sizeof(out), NULL), "");
	/* cut at a whole escape, always terminated */
	assert_string_equal(cli_esc(out, 6, "ab\x01" "cd"), "ab");
	assert_string_equal(cli_esc(out, 4, "\xc3\xa9\xc3\xa9"), "\xc3\xa9");
}

static char *table_text(struct cli_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	cli_table_print(t, f);
	fclose(f);
	return buf;
}

static void table_aligned(void **state)
{
	struct cli_table t;
	char *s;

	assert_int_equal(cli_table_init(&t, 3, (const char *const[]){ "NAME", "STATE", "NOTE" }), 0);
	assert_int_equal(cli_table_add(&t, (const char *const[]){ "v10", "sealed", "ok" }), 0);
	assert_int_equal(cli_table_add(&t, (const char *const[]){ "caf\xc3\xa9", NULL, "x\ny" }), 0);
	s = table_text(&t);
	/* widths in characters (é is one), NULL as "-", cells escaped, the last column unpadded */
	assert_string_equal(s, "NAME  STATE   NOTE\n"
			       "v10   sealed  ok\n"
			       "caf\xc3\xa9  -       x\\ny\n");
	free(s);
	cli_table_free(&t);
}

static void escape_segments(void **state)
{
	struct cm_buf b = { 0 };

	assert_int_equal(cli_buf_escape(&b, "v1.2-rc_3~"), 0);
	assert_int_equal(cli_buf_escape(&b, "/a b?&=%#"), 0);
	assert_string_equal(b.data, "v1.2-rc_3~%2Fa%20b%3F%26%3D%25%23");
	cm_buf_free(&b);
}

static void status_exits(void **state)
{
	static const struct {
		long status;
		int exit;
	} cases[] = {
		{ 200, CLI_C_OK },      { 201, CLI_C_OK },       { 204, CLI_C_OK },
		{ 400, CLI_C_USAGE },   { 401, CLI_C_AUTH },     { 403, CLI_C_AUTH },
		{ 404, CLI_C_NOTFOUND }, { 405, CLI_C_SERVER },  { 408, CLI_C_SERVER },
		{ 409, CLI_C_REFUSED }, { 413, CLI_C_USAGE },    { 422, CLI_C_REFUSED },
		{ 500, CLI_C_SERVER },  { 503, CLI_C_SERVER },   { 507, CLI_C_SERVER },
		{ 302, CLI_C_SERVER },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(cli_status_exit(cases[i].status), cases[i].exit);
}

static void failure_names_gates(void **state)
{
	struct cli_answer a = { 409, NULL };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	a.body = json_pack("{s:{s:s s:s s:{s:[s s]}}}", "error", "code", "gate_refused", "message",
			   "setting 'current' refused by policy", "details", "failed_gates",
			   "validation_status == \"passed\" (is \"failed\")", "x >= 1 (is \x1b)");
	f = open_memstream(&buf, &len);
	assert_int_equal(cli_answer_fail(&a, f), CLI_C_REFUSED);
	fclose(f);
	assert_string_equal(buf, "modelfs: setting 'current' refused by policy (HTTP 409 gate_refused)\n"
				 "  failed gate: validation_status == \"passed\" (is \"failed\")\n"
				 "  failed gate: x >= 1 (is \\x1b)\n");
	free(buf);
	cli_answer_clear(&a);
	/* no body at all: still a line, and the status decides */
	a.status = 502;
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_int_equal(cli_answer_fail(&a, f), CLI_C_SERVER);
	fclose(f);
	assert_string_equal(buf, "modelfs: the server gave no message (HTTP 502)\n");
	free(buf);
}

static void closed_port_and_bad_url(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct cli_conn *c = NULL;
	struct cli_answer a = { 0 };
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd); /* nothing listens there now */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
	assert_int_equal(cli_conn_open(url, "secret", 5, &c), 0);
	assert_int_equal(cli_conn_call(c, "GET", "/v1/models", NULL, &a), -ECONNREFUSED);
	assert_non_null(strstr(cm_err_msg(), "GET http://127.0.0.1:"));
	assert_int_equal(a.status, 0);
	assert_null(a.body);
	cli_conn_close(c);

	c = NULL;
	assert_int_equal(cli_conn_open("ftp://x/", NULL, 5, &c), -EINVAL);
	assert_null(c);
	assert_int_equal(cli_conn_open("http://x/", "a\nb", 5, &c), -EINVAL);
	assert_null(c);
	cli_conn_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(esc_controls_and_utf8),
		cmocka_unit_test(table_aligned),
		cmocka_unit_test(escape_segments),
		cmocka_unit_test(status_exits),
		cmocka_unit_test(failure_names_gates),
		cmocka_unit_test(closed_port_and_bad_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
