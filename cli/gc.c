/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve --gc-interval: a thread that applies the models' retention policies
 * every N seconds (reg_gc_run, the rules are the registry's), logging what
 * went; and the delete test hook that crash tests set by environment.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cm.h"
#include "reg.h"

struct cli_gc_worker {
	struct reg_store *st;
	long long interval_s;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
};

static void gc_once(struct cli_gc_worker *w)
{
	struct reg_actor who = { .channel = "gc", .name = "retention" };
	struct reg_gc_opts o = { 0 };
	json_t *res = NULL, *e;
	size_t i;
	int rc = reg_gc_run(w->st, &who, &o, &res);

	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "gc", "retention run failed: %s", cm_err_msg());
		return;
	}
	json_array_foreach(json_object_get(res, "removed"), i, e)
		cm_log(CM_LOG_INFO, "gc", "removed %s/%s: %s",
		       json_string_value(json_object_get(e, "model")),
		       json_string_value(json_object_get(e, "version")),
		       json_string_value(json_object_get(e, "why")));
	json_decref(res);
}

static void *gc_main(void *arg)
{
	struct cli_gc_worker *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += w->interval_s;
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mu);
		gc_once(w);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int cli_gc_worker_start(struct reg_store *st, long long interval_s, struct cli_gc_worker **out)
{
	struct cli_gc_worker *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int e;

	if (!w)
		return cm_err_set(-ENOMEM, "out of memory");
	w->st = st;
	w->interval_s = interval_s;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	e = pthread_create(&w->thread, NULL, gc_main, w);
	if (e) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return cm_err_set(-e, "starting the gc thread: %s", strerror(e));
	}
	*out = w;
	return 0;
}

void cli_gc_worker_stop(struct cli_gc_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* MODELFS_TEST_DELETE_STALL=<point>: a delete stops there for a minute (crash tests kill it). */
static char stall_point[64];

static void stall(const char *point)
{
	if (!strcmp(point, stall_point))
		sleep(60);
}

void cli_test_hooks_install(void)
{
	const char *p = getenv("MODELFS_TEST_DELETE_STALL");

	if (p && p[0]) {
		cm_strlcpy(stall_point, p, sizeof(stall_point));
		reg_delete_test_hook = stall;
	}
}
