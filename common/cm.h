/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common: the helpers every module shares and that know nothing of models:
 * per-thread error messages, the log sink, growable buffers and time.
 */
#ifndef MODELFS_CM_H
#define MODELFS_CM_H

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CM_ERR_MAX 512

/*
 * Records a message for the calling thread and returns rc unchanged, so that
 * a failure reads `return cm_err_set(-ENOENT, "no version '%s'", name);`.
 * The message stays until the next cm_err_set() or cm_err_clear() on the
 * same thread; an argument may be cm_err_msg() itself (cm_err_wrap() reads
 * better for that).
 */
int cm_err_set(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "<prefix>: " and returns rc. */
int cm_err_wrap(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last message; "" when none. Borrowed. */
const char *cm_err_msg(void);

/* Forgets the calling thread's message. */
void cm_err_clear(void);

/* A message for rc: the thread's message when set, strerror(-rc) otherwise. */
const char *cm_err_describe(int rc);

/*
 * readdir() that tells an error from the end: 1 with *out set, 0 at the end,
 * -errno (with detail) when reading failed. A listing that stopped early on
 * an error must never pass for the whole directory.
 */
int cm_readdir(DIR *d, struct dirent **out);

enum cm_log_level { CM_LOG_DEBUG, CM_LOG_INFO, CM_LOG_WARN, CM_LOG_ERROR };

/* Lines below `level` are dropped; `json` switches to one JSON object a line. */
void cm_log_setup(enum cm_log_level level, int json);

/*
 * Writes one line to stderr: `ts level module msg`. Safe from any thread;
 * a line is written with a single write(2) so lines never interleave.
 */
void cm_log(enum cm_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cm_log_v(enum cm_log_level level, const char *module, const char *fmt, va_list ap);

/*
 * Copies s into out (cap bytes, always terminated) so that it prints as one
 * harmless line: backslash, \n, \r, \t become two-character escapes; other
 * control characters, DEL, C1 controls and bytes that are not UTF-8 become
 * \xHH; valid UTF-8 stays. Cut at a whole character when out is too small.
 * Returns the length written. For every name a user chose (file paths) that
 * the CLI prints; the text log applies it to whole messages.
 */
size_t cm_esc(char *out, size_t cap, const char *s);

/*
 * A limit on lines a client can cause at will (one per refused connection,
 * per failed request): at most `burst` lines per `interval_us`; the others
 * are counted, and the next line let through says how many were left out.
 * Safe from any thread.
 */
struct cm_log_limit {
	pthread_mutex_t mu;
	unsigned burst;
	int64_t interval_us;
	int64_t window_us;    /* start of the current window */
	unsigned in_window;   /* lines let through in it */
	uint64_t suppressed;  /* lines dropped since the last one let through */
};
#define CM_LOG_LIMIT_INIT(burst_, interval_us_) \
	{ .mu = PTHREAD_MUTEX_INITIALIZER, .burst = (burst_), .interval_us = (interval_us_) }

/*
 * 1 when a line may be written at now_us, with *suppressed the number of
 * lines dropped before it (then reset); 0 when this one is dropped (counted).
 */
int cm_log_limit_allow(struct cm_log_limit *l, int64_t now_us, uint64_t *suppressed);
/* cm_log() under limit l; a line let through after drops ends with their count. */
void cm_log_limited(struct cm_log_limit *l, enum cm_log_level level, const char *module,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A growable byte buffer, always NUL-terminated when len > 0 or after use. */
struct cm_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Appends; returns 0 or -ENOMEM (the buffer is unchanged on failure). */
int cm_buf_append(struct cm_buf *b, const void *data, size_t len);
int cm_buf_printf(struct cm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cm_buf_reset(struct cm_buf *b);
void cm_buf_free(struct cm_buf *b);

/*
 * Room for at least `need` elements of `size` bytes in the array *arrp
 * (any `T **`) whose capacity is *cap: the capacity doubles, from `first`.
 * Returns 0, or -ENOMEM with a message leaving *arrp and *cap as they were.
 * The usual loop: `rc = cm_grow(&v, &cap, n + 1, sizeof(*v), 16);`.
 */
int cm_grow(void *arrp, size_t *cap, size_t need, size_t size, size_t first);

/* Microseconds since the epoch (CLOCK_REALTIME). */
int64_t cm_time_now_us(void);

struct timespec;
/*
 * The CLOCK_MONOTONIC time `wait_us` from now (a negative wait is none): the
 * deadline for pthread_cond_timedwait() on a condition variable set to that
 * clock, as the delivery workers' are.
 */
void cm_time_deadline(int64_t wait_us, struct timespec *out);

/* Formats `us` as RFC 3339 UTC with microseconds: 2026-11-26T12:00:00.000000Z. */
#define CM_TIME_RFC3339_LEN 32
void cm_time_format(int64_t us, char out[CM_TIME_RFC3339_LEN]);

/*
 * Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`) into microseconds
 * since the epoch. Returns 0 or -EINVAL with a message.
 */
int cm_time_parse(const char *s, int64_t *out);

/* Copies src into dst of size n, always terminating; returns -E2BIG if cut. */
int cm_strlcpy(char *dst, const char *src, size_t n);

/*
 * Configuration from one table: each option has a flag (--name), an
 * environment variable, a default, limits and help text. Precedence: default,
 * then environment, then flag. String values are borrowed from argv, the
 * environment or the table, never copied.
 */
enum cm_opt_type { CM_OPT_STRING, CM_OPT_INT, CM_OPT_BOOL };

struct cm_opt {
	const char *name;      /* flag without dashes: "store" for --store */
	const char *env;       /* "MODELFS_STORE", or NULL */
	enum cm_opt_type type;
	size_t offset;         /* offsetof() the field: const char *, long long or int */
	const char *def;       /* default as text, or NULL */
	long long min, max;    /* limits for CM_OPT_INT */
	const char *metavar;   /* "DIR", "HOST:PORT" */
	const char *help;
};

/*
 * Fills cfg from defaults, the environment and argv[1..argc-1]. Returns 0 or
 * -EINVAL with a message naming the option (unknown flag, missing value,
 * number out of range).
 */
int cm_config_parse(const struct cm_opt *opts, size_t n, void *cfg, int argc, char **argv);
/* Prints one line per option: flag, env, default, help. */
void cm_config_help(const struct cm_opt *opts, size_t n, void *out_file);
/* Prints the effective value of each option and where it came from. */
void cm_config_dump(const struct cm_opt *opts, size_t n, const void *cfg, void *out_file);

/*
 * The service manager's notification protocol (sd_notify(3)). `addr` is the
 * value of $NOTIFY_SOCKET: an absolute socket path or an abstract name
 * starting with '@'; NULL or "" makes every call a no-op returning 0. `msg`
 * is newline-separated KEY=VALUE pairs ("READY=1\nSTATUS=serving"), sent as
 * one datagram. Returns 0 or -errno with a message (-EAFNOSUPPORT for another
 * kind of address, -ENAMETOOLONG, or the socket's error). Never logs; safe
 * from any thread (a socket per call).
 */
#define CM_NOTIFY_MAX 4096
int cm_notify_send(const char *addr, const char *msg);
/* Formats the message first; -E2BIG (nothing sent) past CM_NOTIFY_MAX - 1 bytes. */
int cm_notify_sendf(const char *addr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC= beside RELOADING=1. */
uint64_t cm_notify_monotonic_usec(void);

/*
 * Frees a malloc'd block that held a secret (a token file's text, a token):
 * every byte of the block is zeroed first with explicit_bzero(), which the
 * compiler may not drop. Accepts NULL.
 */
void cm_free(void *p);

#endif
