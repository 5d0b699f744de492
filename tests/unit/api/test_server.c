/* SPDX-License-Identifier: Apache-2.0 */
/* The server over a real socket (api/server.c): routing, keep-alive, limits, cache, shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "apifx.h"

static int connect_to(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Sends req and reads one response (headers and Content-Length body) into out. */
static void exchange(int fd, const char *req, char *out, size_t n)
{
	size_t have = 0;

	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	out[0] = '\0';
	for (;;) {
		ssize_t r = read(fd, out + have, n - 1 - have);
		char *end, *cl;

		if (r <= 0)
			break;
		have += (size_t)r;
		out[have] = '\0';
		end = strstr(out, "\r\n\r\n");
		cl = strstr(out, "Content-Length: ");
		if (end && cl && have >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10))
			break;
	}
}

static struct api_server *start(struct fx *f, struct api_config *cfg)
{
	struct api_server *s = NULL;

	cfg->listen = "127.0.0.1:0";
	assert_int_equal(api_server_new(f->st, cfg, &s), 0);
	assert_int_equal(api_server_start(s), 0);
	assert_true(api_server_port(s) > 0);
	return s;
}

static void requests(void **state)
{
	struct fx *f = *state;
	struct api_config cfg;
	struct api_server *s;
	char out[16384];
	int fd;

	api_config_default(&cfg);
	cfg.max_body = 64;
	s = start(f, &cfg);
	fd = connect_to(api_server_port(s));
	/* Keep-alive: several requests on one connection. */
	exchange(fd, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200"));
	assert_non_null(strstr(out, "{\"status\":\"ok\"}"));
	exchange(fd, "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{\"name\":\"m1\"}",
		 out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 201"));
	assert_non_null(strstr(out, "Location: /v1/models/m1"));
	exchange(fd, "GET /v1/models/m1 HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "\"aliases\":{}"));
	/* Served again from the cache, then dropped by a change. */
	exchange(fd, "GET /v1/models/m1 HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200"));
	fx_version(f, "m1", "v1", "model.pkl", "x", NULL);
	fx_pass(f, "m1", "v1");
	reg_store_set_hook(f->st, api_on_change, s);
	assert_int_equal(reg_alias_set(f->st, &fx_actor, "m1", "current", "v1", NULL, NULL), 0);
	reg_store_set_hook(f->st, NULL, NULL);
	exchange(fd, "GET /v1/models/m1 HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "\"current\""));
	/* Errors. */
	exchange(fd, "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 404"));
	assert_non_null(strstr(out, "\"code\":\"not_found\""));
	exchange(fd, "PATCH /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", out, sizeof(out));
	if (!strstr(out, "HTTP/1.1 405"))
		fail_msg("%s", out);
	assert_non_null(strstr(out, "Allow: GET, HEAD, POST"));
	exchange(fd, "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{bad}", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 400"));
	assert_non_null(strstr(out, "not valid JSON"));
	close(fd);
	/* A body over the limit is refused from its Content-Length, before it is read. */
	fd = connect_to(api_server_port(s));
	exchange(fd, "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 413"));
	close(fd);
	/* Chunked past the limit: dropped as it arrives, 413 at its end. */
	fd = connect_to(api_server_port(s));
	{
		char req[512];

		snprintf(req, sizeof(req),
			 "POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "40\r\n%64s\r\n40\r\n%64s\r\n0\r\n\r\n", "", "");
		exchange(fd, req, out, sizeof(out));
	}
	assert_non_null(strstr(out, "HTTP/1.1 413"));
	close(fd);
	api_server_free(s);
}

static void tokens_and_addresses(void **state)
{
	struct fx *f = *state;
	struct api_config cfg;
	struct api_server *s = NULL;
	char path[4200], out[8192];
	FILE *t;
	int fd;

	api_config_default(&cfg);
	assert_int_equal(api_config_check(&cfg), 0);
	cfg.listen = "localhost";
	assert_int_equal(api_config_check(&cfg), -EINVAL);
	cfg.listen = "127.0.0.1:8080";
	cfg.token_file = "/nonexistent/tokens";
	assert_int_equal(api_config_check(&cfg), -ENOENT);
	cfg.token_file = NULL;
	assert_int_equal(cfg.max_body, 1024 * 1024);
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	/* Not loopback, no tokens: refused unless insecure. */
	cfg.listen = "0.0.0.0:0";
	assert_int_equal(api_server_new(f->st, &cfg, &s), -EACCES);
	assert_non_null(strstr(cm_err_msg(), "--insecure"));
	cfg.insecure = 1;
	assert_int_equal(api_server_new(f->st, &cfg, &s), 0);
	api_server_free(s);
	cfg.insecure = 0;
	assert_int_equal(api_server_new(f->st, &(struct api_config){ .listen = "127.0.0.1" }, &s),
			 -EINVAL);
	assert_int_equal(api_server_new(f->st, &(struct api_config){ .listen = "no.such.host.invalid:0" },
					&s), -EINVAL);
	/* With tokens. */
	snprintf(path, sizeof(path), "%s/tokens", f->dir);
	cfg.token_file = path;
	assert_int_equal(api_server_new(f->st, &cfg, &s), -ENOENT);
	t = fopen(path, "w");
	fprintf(t, "ci writer writer-secret-0123456789\n");
	fclose(t);
	assert_int_equal(chmod(path, 0600), 0); /* a token file others can read is refused */
	s = start(f, &cfg);
	fd = connect_to(api_server_port(s));
	exchange(fd, "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{\"name\":\"m2\"}",
		 out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 401"));
	assert_non_null(strstr(out, "WWW-Authenticate: Bearer"));
	close(fd);
	fd = connect_to(api_server_port(s));
	exchange(fd, "POST /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer writer-secret-0123456789\r\n"
		     "Content-Length: 13\r\n\r\n{\"name\":\"m2\"}", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 201"));
	exchange(fd, "GET /v1/models/m2/history HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "\"actor\":\"ci\""));
	assert_non_null(strstr(out, "\"channel\":\"api\""));
	close(fd);
	api_server_free(s);
	api_server_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(requests, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(tokens_and_addresses, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
