/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Change propagation between nodes sharing one PostgreSQL database: a thread
 * with a connection of its own LISTENs on modelfs_events (the doorbell that
 * schema/pg/0006_follow.sql rings on commit), polls as a backstop, and applies
 * every event after the last one it applied, in the gap-free commit order of
 * event ids, by reporting it to the store's change hook.
 *
 * Threading: one follower thread owns `pg`; status fields are guarded by mu
 * and read by any thread (reg_follow_status). The hook runs on the follower
 * thread with no registry lock held. The two statements here are the
 * follower's own (run on its dedicated libpq connection, not through the
 * statement list): both are plain SQL with $1, PostgreSQL only.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "reg_i.h"

#define FOLLOW_BATCH "500"
#define FOLLOW_HEAD_SQL "SELECT last FROM event_seq WHERE id = 1"
#define FOLLOW_EVENTS_SQL                                                                          \
	"SELECT id, kind, model, version, alias FROM events WHERE id > $1 ORDER BY id LIMIT " \
	FOLLOW_BATCH
#define FOLLOW_RETRY_MS 500

struct reg_follow {
	struct reg_store *st;
	pthread_t thread;
	int wake_fd; /* eventfd: written to stop the thread */
	PGconn *pg;
	pthread_mutex_t mu;
	int connected;
	int started; /* applied is known (the head at the first connect) */
	int64_t applied, head;
	int64_t synced_us;  /* when the node was last in step */
	int64_t applied_us; /* when the last event was applied (0: none yet) */
	int64_t notifications, polls, reconnects, events;
};

static int64_t col_i64(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *col_str(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int follow_head(struct reg_follow *f, int64_t *out)
{
	PGresult *res = PQexec(f->pg, FOLLOW_HEAD_SQL);
	int rc = -EAGAIN;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		*out = col_i64(res, 0, 0);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

/* Applies every event after f->applied. 0, or -EAGAIN when the connection failed. */
static int follow_catch_up(struct reg_follow *f)
{
	int64_t head;
	int rc;

	rc = follow_head(f, &head);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&f->mu);
	if (!f->started) {
		/* A node starts in step: it has cached nothing from before. */
		f->applied = head;
		f->started = 1;
	}
	f->head = head;
	pthread_mutex_unlock(&f->mu);
	for (;;) {
		char after[32];
		const char *params[1] = { after };
		PGresult *res;
		int n;

		snprintf(after, sizeof(after), "%lld", (long long)f->applied);
		res = PQexecParams(f->pg, FOLLOW_EVENTS_SQL, 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			PQclear(res);
			return -EAGAIN;
		}
		n = PQntuples(res);
		for (int i = 0; i < n; i++) {
			int64_t id = col_i64(res, i, 0);
			struct reg_change ch = { .kind = col_str(res, i, 1), .channel = "node",
						 .model = col_str(res, i, 2),
						 .version = col_str(res, i, 3),
						 .alias = col_str(res, i, 4) };
			reg_change_cb hook = f->st->hook;

			if (hook && ch.kind)
				hook(f->st->hook_ctx, &ch);
			pthread_mutex_lock(&f->mu);
			f->applied = id;
			if (id > f->head)
				f->head = id;
			f->applied_us = cm_time_now_us();
			f->events++;
			pthread_mutex_unlock(&f->mu);
		}
		PQclear(res);
		if (n < atoi(FOLLOW_BATCH))
			break;
	}
	pthread_mutex_lock(&f->mu);
	if (f->applied >= f->head)
		f->synced_us = cm_time_now_us();
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static void follow_disconnect(struct reg_follow *f)
{
	if (f->pg)
		PQfinish(f->pg);
	f->pg = NULL;
	pthread_mutex_lock(&f->mu);
	f->connected = 0;
	pthread_mutex_unlock(&f->mu);
}

static int follow_connect(struct reg_follow *f)
{
	PGresult *res;
	int ok;

	f->pg = PQconnectdb(f->st->db_url);
	if (PQstatus(f->pg) != CONNECTION_OK) {
		follow_disconnect(f);
		return -EAGAIN;
	}
	res = PQexec(f->pg, "LISTEN modelfs_events");
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok) {
		follow_disconnect(f);
		return -EAGAIN;
	}
	pthread_mutex_lock(&f->mu);
	if (f->started)
		f->reconnects++;
	f->connected = 1;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* Waits for a doorbell, the poll interval, or the stop: 1 rung, 0 timeout, -1 stop/failure. */
static int follow_wait(struct reg_follow *f, int ms)
{
	struct pollfd p[2] = { { .fd = f->wake_fd, .events = POLLIN },
			       { .fd = f->pg ? PQsocket(f->pg) : -1, .events = POLLIN } };
	int n = poll(p, f->pg ? 2 : 1, ms);
	int rung = 0;
	PGnotify *nt;

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (p[0].revents)
		return -1;
	if (!f->pg || !p[1].revents)
		return 0;
	if (!PQconsumeInput(f->pg)) {
		follow_disconnect(f);
		return 0;
	}
	while ((nt = PQnotifies(f->pg))) {
		rung = 1;
		PQfreemem(nt);
	}
	if (rung) {
		pthread_mutex_lock(&f->mu);
		f->notifications++;
		pthread_mutex_unlock(&f->mu);
	}
	return rung;
}

static void *follow_main(void *arg)
{
	struct reg_follow *f = arg;

	for (;;) {
		int w;

		if (!f->pg) {
			if (follow_connect(f) < 0) {
				if (follow_wait(f, FOLLOW_RETRY_MS) < 0)
					break;
				continue;
			}
			/* Connected (again): whatever rang meanwhile is read now. */
			if (follow_catch_up(f) < 0)
				follow_disconnect(f);
			continue;
		}
		w = follow_wait(f, REG_FOLLOW_POLL_MS);
		if (w < 0)
			break;
		if (!f->pg)
			continue;
		if (w == 0) {
			pthread_mutex_lock(&f->mu);
			f->polls++;
			pthread_mutex_unlock(&f->mu);
		}
		if (follow_catch_up(f) < 0)
			follow_disconnect(f);
	}
	follow_disconnect(f);
	return NULL;
}

int reg_follow_start(struct reg_store *st)
{
	struct reg_follow *f;

	if (!st->db_url || st->follow)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return cm_err_set(-ENOMEM, "out of memory");
	f->st = st;
	f->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (f->wake_fd < 0) {
		int e = errno;

		free(f);
		return cm_err_set(-e, "eventfd: %s", strerror(e));
	}
	pthread_mutex_init(&f->mu, NULL);
	f->synced_us = cm_time_now_us();
	if (pthread_create(&f->thread, NULL, follow_main, f) != 0) {
		close(f->wake_fd);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return cm_err_set(-EAGAIN, "cannot start the follower thread");
	}
	st->follow = f;
	return 0;
}

void reg_follow_stop(struct reg_store *st)
{
	struct reg_follow *f = st ? st->follow : NULL;
	uint64_t one = 1;

	if (!f)
		return;
	if (write(f->wake_fd, &one, sizeof(one)) < 0) {
		/* An eventfd write fails only on overflow: the thread is woken anyway. */
	}
	pthread_join(f->thread, NULL);
	st->follow = NULL;
	close(f->wake_fd);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void reg_follow_status(struct reg_store *st, struct reg_follow_status *out)
{
	struct reg_follow *f = st ? st->follow : NULL;
	int64_t now = cm_time_now_us();

	memset(out, 0, sizeof(*out));
	out->since_applied = -1;
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	out->active = 1;
	out->connected = f->connected;
	out->applied = f->applied;
	out->head = f->head;
	out->behind = f->head > f->applied ? f->head - f->applied : 0;
	if (out->behind > 0 || !f->connected)
		out->seconds_behind = (double)(now - f->synced_us) / 1e6;
	if (f->applied_us)
		out->since_applied = (double)(now - f->applied_us) / 1e6;
	out->notifications = f->notifications;
	out->polls = f->polls;
	out->reconnects = f->reconnects;
	out->events = f->events;
	pthread_mutex_unlock(&f->mu);
}
