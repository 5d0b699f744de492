/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffers for building text: SQL never, JSON and paths yes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm.h"

static int buf_reserve(struct cm_buf *b, size_t extra)
{
	size_t need;
	size_t cap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		return cm_err_set(-ENOMEM, "buffer too large");
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return cm_err_set(-ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int cm_buf_append(struct cm_buf *b, const void *data, size_t len)
{
	int rc = buf_reserve(b, len);

	if (rc < 0)
		return rc;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int cm_buf_printf(struct cm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	int rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return cm_err_set(-EINVAL, "bad format");
	rc = buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void cm_buf_reset(struct cm_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void cm_buf_free(struct cm_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int cm_grow(void *arrp, size_t *cap, size_t need, size_t size, size_t first)
{
	size_t n = *cap ? *cap : (first ? first : 1);
	void *old, *p;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return cm_err_set(-ENOMEM, "out of memory");
		n *= 2;
	}
	if (size && n > SIZE_MAX / size)
		return cm_err_set(-ENOMEM, "out of memory");
	memcpy(&old, arrp, sizeof(old));
	p = realloc(old, n * size);
	if (!p)
		return cm_err_set(-ENOMEM, "out of memory");
	memcpy(arrp, &p, sizeof(p));
	*cap = n;
	return 0;
}
