/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readiness and state notifications to the service manager (systemd's
 * sd_notify protocol): one datagram per message, `KEY=VALUE` lines, sent to
 * the AF_UNIX socket named by $NOTIFY_SOCKET. sd_notify(3) documents this
 * protocol as stable and invites daemons to implement it themselves instead
 * of linking libsystemd; these few lines do that, so modelfs keeps its short
 * list of dependencies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cm.h"

/* Fills sa from "/path" or "@abstract"; returns the address length or -errno. */
static int addr_parse(const char *addr, struct sockaddr_un *sa)
{
	size_t n = strlen(addr);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (addr[0] != '/' && addr[0] != '@')
		return cm_err_set(-EAFNOSUPPORT, "NOTIFY_SOCKET '%.200s': only an absolute path or "
				  "an '@' abstract name is supported", addr);
	/* A path needs its terminating NUL; an abstract name is counted by length. */
	if (n + (addr[0] == '/') > sizeof(sa->sun_path) || n < 2)
		return cm_err_set(-ENAMETOOLONG, "NOTIFY_SOCKET '%.200s': not a usable socket name",
				  addr);
	memcpy(sa->sun_path, addr, n);
	if (addr[0] == '@')
		sa->sun_path[0] = '\0';
	return (int)(offsetof(struct sockaddr_un, sun_path) + n + (addr[0] == '/'));
}

int cm_notify_send(const char *addr, const char *msg)
{
	struct sockaddr_un sa;
	size_t len = strlen(msg);
	ssize_t sent;
	int salen, fd, rc = 0;

	if (!addr || !addr[0])
		return 0;
	salen = addr_parse(addr, &sa);
	if (salen < 0)
		return salen;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cm_err_set(-errno, "NOTIFY_SOCKET: socket: %s", strerror(errno));
	sent = sendto(fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, (socklen_t)salen);
	if (sent < 0)
		rc = cm_err_set(-errno, "NOTIFY_SOCKET %.200s: %s", addr, strerror(errno));
	else if ((size_t)sent != len)
		rc = cm_err_set(-EMSGSIZE, "NOTIFY_SOCKET %.200s: message cut", addr);
	close(fd);
	return rc;
}

int cm_notify_sendf(const char *addr, const char *fmt, ...)
{
	char msg[CM_NOTIFY_MAX];
	va_list ap;
	int n;

	if (!addr || !addr[0])
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return cm_err_set(-E2BIG, "a notification longer than %d bytes", CM_NOTIFY_MAX - 1);
	return cm_notify_send(addr, msg);
}

uint64_t cm_notify_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
