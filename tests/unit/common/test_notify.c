/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sd_notify protocol: each message arrives as one datagram on the socket
 * named by the address (a path or an '@' abstract name), and every address
 * the module cannot use is refused with a message and nothing sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

struct nfx {
	char dir[4096];
	char addr[4200];
	int fd;
};

/* A bound receiving socket at `name` (a path or "@abstract"). */
static int bind_dgram(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(n < sizeof(sa.sun_path));
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
					  (name[0] == '/'))),
			 0);
	return fd;
}

/* The next datagram, or "" when none is waiting. */
static const char *next_msg(int fd, char *buf, size_t n)
{
	ssize_t got = recv(fd, buf, n - 1, MSG_DONTWAIT);

	buf[got > 0 ? got : 0] = '\0';
	return buf;
}

static int setup(void **state)
{
	struct nfx *x = calloc(1, sizeof(*x));

	fx_mkdtemp(x->dir, sizeof(x->dir));
	snprintf(x->addr, sizeof(x->addr), "%s/notify", x->dir);
	if (strlen(x->addr) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		/* A socket path must fit sun_path: fall back to a short directory. */
		fx_rmrf(x->dir);
		snprintf(x->dir, sizeof(x->dir), "/tmp/modelfs-notify-XXXXXX");
		assert_non_null(mkdtemp(x->dir));
		snprintf(x->addr, sizeof(x->addr), "%s/notify", x->dir);
	}
	x->fd = bind_dgram(x->addr);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct nfx *x = *state;

	close(x->fd);
	fx_rmrf(x->dir);
	free(x);
	return 0;
}

static void one_datagram_per_message(void **state)
{
	struct nfx *x = *state;
	char buf[8192];

	assert_int_equal(cm_notify_send(x->addr, "READY=1\nSTATUS=serving"), 0);
	assert_int_equal(cm_notify_sendf(x->addr, "STOPPING=1\nMAINPID=%d", 42), 0);
	assert_string_equal(next_msg(x->fd, buf, sizeof(buf)), "READY=1\nSTATUS=serving");
	assert_string_equal(next_msg(x->fd, buf, sizeof(buf)), "STOPPING=1\nMAINPID=42");
	assert_string_equal(next_msg(x->fd, buf, sizeof(buf)), "");
}

static void abstract_names(void **state)
{
	char name[128], buf[256];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@modelfs-test-notify-%ld", (long)getpid());
	fd = bind_dgram(name);
	assert_int_equal(cm_notify_send(name, "RELOADING=1"), 0);
	assert_string_equal(next_msg(fd, buf, sizeof(buf)), "RELOADING=1");
	close(fd);
}

static void no_socket_is_a_no_op(void **state)
{
	struct nfx *x = *state;
	char buf[64];

	assert_int_equal(cm_notify_send(NULL, "READY=1"), 0);
	assert_int_equal(cm_notify_send("", "READY=1"), 0);
	assert_int_equal(cm_notify_sendf(NULL, "READY=%d", 1), 0);
	assert_string_equal(next_msg(x->fd, buf, sizeof(buf)), "");
}

static void bad_addresses_are_refused(void **state)
{
	struct nfx *x = *state;
	char longpath[300], missing[4300];

	cm_err_clear();
	assert_int_equal(cm_notify_send("relative/sock", "READY=1"), -EAFNOSUPPORT);
	assert_non_null(strstr(cm_err_msg(), "relative/sock"));
	/* systemd also knows vsock:CID:PORT (virtual machines); that is not ours to reach. */
	assert_int_equal(cm_notify_send("vsock:2:1234", "READY=1"), -EAFNOSUPPORT);
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(cm_notify_send(longpath, "READY=1"), -ENAMETOOLONG);
	assert_int_equal(cm_notify_send("@", "READY=1"), -ENAMETOOLONG);
	snprintf(missing, sizeof(missing), "%s/nobody-listens", x->dir);
	assert_int_equal(cm_notify_send(missing, "READY=1"), -ENOENT);
	assert_non_null(strstr(cm_err_msg(), "nobody-listens"));
}

static void long_messages_are_refused_whole(void **state)
{
	struct nfx *x = *state;
	char *big = malloc(CM_NOTIFY_MAX + 10);
	char buf[64];

	memset(big, 'x', CM_NOTIFY_MAX + 9);
	big[CM_NOTIFY_MAX + 9] = '\0';
	assert_int_equal(cm_notify_sendf(x->addr, "STATUS=%s", big), -E2BIG);
	assert_string_equal(next_msg(x->fd, buf, sizeof(buf)), "");
	free(big);
}

static void monotonic_usec_is_clock_monotonic(void **state)
{
	struct timespec ts;
	uint64_t a, b, now;

	(void)state;
	a = cm_notify_monotonic_usec();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b = cm_notify_monotonic_usec();
	now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	assert_true(a <= now && now <= b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(one_datagram_per_message, setup, teardown),
		cmocka_unit_test(abstract_names),
		cmocka_unit_test_setup_teardown(no_socket_is_a_no_op, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_addresses_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(long_messages_are_refused_whole, setup, teardown),
		cmocka_unit_test(monotonic_usec_is_clock_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
