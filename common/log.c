/* SPDX-License-Identifier: Apache-2.0 */
/* The one log sink: a line per event on stderr, text or JSON. */
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
		n = snprintf(line, sizeof(line), "%s %s %s %s\n", ts, level_names[level], module, msg);
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
