/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one log sink: a line per event on stderr, text or JSON; the escaping
 * of names for terminals and logs; and rate limits for lines a client can
 * cause at will.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cm.h"

static enum cm_log_level log_min = CM_LOG_INFO;
static int log_json;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void cm_log_setup(enum cm_log_level level, int json)
{
	log_min = level;
	log_json = json;
}

/* Escapes s into a JSON string body; cuts rather than overflow. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return n;
}

/*
 * Length of the valid UTF-8 sequence at s (2-4), or 0: overlong forms,
 * surrogates, code points past U+10FFFF and C1 controls (CSI among them)
 * count as invalid.
 */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (n == 0)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 2 && s[0] == 0xc2 && s[1] < 0xa0) || (n == 3 && s[0] == 0xe0 && s[1] < 0xa0) ||
	    (n == 3 && s[0] == 0xed && s[1] >= 0xa0) || (n == 4 && s[0] == 0xf0 && s[1] < 0x90) ||
	    (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

size_t cm_esc(char *out, size_t cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	if (cap == 0)
		return 0;
	while (*p) {
		char tmp[8];
		size_t k, u = 0;

		if (*p == '\\') {
			memcpy(tmp, "\\\\", 2);
			k = 2;
		} else if (*p == '\n' || *p == '\r' || *p == '\t') {
			tmp[0] = '\\';
			tmp[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
			k = 2;
		} else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !(u = utf8_len(p)))) {
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
		} else {
			k = u ? u : 1;
			memcpy(tmp, p, k);
		}
		if (n + k >= cap)
			break; /* cut at a whole character */
		memcpy(out + n, tmp, k);
		n += k;
		p += u ? u : 1;
	}
	out[n] = '\0';
	return n;
}

int cm_log_limit_allow(struct cm_log_limit *l, int64_t now_us, uint64_t *suppressed)
{
	int ok;

	pthread_mutex_lock(&l->mu);
	if (now_us - l->window_us >= l->interval_us || now_us < l->window_us) {
		l->window_us = now_us;
		l->in_window = 0;
	}
	ok = l->in_window < l->burst;
	if (ok) {
		l->in_window++;
		*suppressed = l->suppressed;
		l->suppressed = 0;
	} else {
		l->suppressed++;
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}

void cm_log_limited(struct cm_log_limit *l, enum cm_log_level level, const char *module,
		    const char *fmt, ...)
{
	uint64_t dropped = 0;
	char msg[2048];
	va_list ap;

	if (level < log_min || !cm_log_limit_allow(l, cm_time_now_us(), &dropped))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (dropped)
		cm_log(level, module, "%s (and %llu more like it, not logged)", msg,
		       (unsigned long long)dropped);
	else
		cm_log(level, module, "%s", msg);
}

void cm_log_v(enum cm_log_level level, const char *module, const char *fmt, va_list ap)
{
	char ts[CM_TIME_RFC3339_LEN];
	char msg[2048];
	char line[4608];
	int n;

	if (level < log_min)
		return;
	cm_time_format(cm_time_now_us(), ts);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_json) {
		char esc[4096];

		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"}\n",
			     ts, level_names[level], module, esc);
	} else {
		char esc[4096];

		/* A name with a newline or an escape sequence cannot forge or hide a line. */
		cm_esc(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line), "%s %s %s %s\n", ts, level_names[level], module, esc);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write keeps lines whole when threads log at once. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void cm_log(enum cm_log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cm_log_v(level, module, fmt, ap);
	va_end(ap);
}
