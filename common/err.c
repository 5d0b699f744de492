/* SPDX-License-Identifier: Apache-2.0 */
/* Per-thread error messages: the detail that travels beside a -errno code. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm.h"

static _Thread_local char err_msg[CM_ERR_MAX];

int cm_err_set(int rc, const char *fmt, ...)
{
	char msg[CM_ERR_MAX];
	va_list ap;

	/* Through a copy: an argument may be cm_err_msg() itself. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(err_msg, msg, sizeof(err_msg));
	return rc;
}

int cm_err_wrap(int rc, const char *fmt, ...)
{
	char prefix[CM_ERR_MAX];
	char old[CM_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err_msg, sizeof(old));
	if (old[0])
		snprintf(err_msg, sizeof(err_msg), "%s: %s", prefix, old);
	else
		snprintf(err_msg, sizeof(err_msg), "%s: %s", prefix, strerror(rc < 0 ? -rc : rc));
	return rc;
}

const char *cm_err_msg(void)
{
	return err_msg;
}

void cm_err_clear(void)
{
	err_msg[0] = '\0';
}

const char *cm_err_describe(int rc)
{
	if (err_msg[0])
		return err_msg;
	return strerror(rc < 0 ? -rc : rc);
}

int cm_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	if (n == 0)
		return -E2BIG;
	if (len >= n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return -E2BIG;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

void cm_free(void *p)
{
	if (!p)
		return;
	/* The whole block, whatever the caller wrote in it (strtok leaves NULs behind). */
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}
