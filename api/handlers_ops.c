/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operations and serving: health, readiness, Prometheus metrics, the OpenAPI
 * document, the git-tag sync queue, and the KServe InferenceService rendered
 * from a model's aliases.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_i.h"
#include "modelfs_config.h"

#define TAIL_PAGE 5000

int api_h_livez(struct api_req *q, struct api_resp *r)
{
	return api_resp_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* With PostgreSQL: how far behind the other nodes this node is (registry/follow.c). */
static void follow_add(struct reg_store *st, json_t *backend)
{
	struct reg_follow_status f;

	reg_follow_status(st, &f);
	if (!backend || !f.active)
		return;
	json_object_set_new(backend, "follow",
			    json_pack("{s:b s:I s:I s:I s:f s:f s:I s:I s:I}", "connected", f.connected,
				      "applied", (json_int_t)f.applied, "head", (json_int_t)f.head,
				      "events_behind", (json_int_t)f.behind, "seconds_behind",
				      f.seconds_behind, "seconds_since_applied", f.since_applied,
				      "notifications", (json_int_t)f.notifications, "polls",
				      (json_int_t)f.polls, "reconnects", (json_int_t)f.reconnects));
}

int api_h_readyz(struct api_req *q, struct api_resp *r)
{
	char msg[256] = "";
	int64_t errors = reg_store_disk_errors(q->st, msg, sizeof(msg));
	struct reg_model *m = NULL;
	int64_t refused, files = 0, pending = 0, failing = 0, oldest = 0;
	json_t *outbox;
	size_t n = 0;
	int rc;

	struct reg_db_status db;
	json_t *backend;

	/* The db answers (one indexed read), and the disk view is in step. */
	rc = reg_model_list(q->st, NULL, 1, &m, &n);
	free(m);
	reg_store_db_status(q->st, &db);
	backend = json_pack("{s:s s:b s:I}", "kind", db.kind, "connected", rc < 0 ? 0 : db.connected,
			    "reconnects", (json_int_t)db.reconnects);
	follow_add(q->st, backend);
	if (rc < 0) {
		r->details = json_pack("{s:o}", "backend", backend);
		return cm_err_wrap(-EAGAIN, "the registry database does not answer");
	}
	if (errors > 0) {
		r->details = json_pack("{s:I s:s s:o}", "disk_errors", (json_int_t)errors, "last", msg,
				       "backend", backend);
		return cm_err_set(-EAGAIN, "%lld disk updates failed after their commit (last: %s); "
				  "a restart reconciles the volume", (long long)errors, msg);
	}
	/*
	 * Sealed files that changed on the volume are refused one by one (EIO,
	 * 500) but leave the daemon ready: every replica reads the same volume,
	 * so failing readiness would take them all out of service for one bad
	 * file. The warning here, the event and the metric are the alarm.
	 */
	refused = reg_store_integrity(q->st, &files, msg, sizeof(msg));
	/*
	 * The outbox's backlog and failing subscribers are shown, not failed on:
	 * an unreachable receiver must not take the registry out of service.
	 */
	rc = reg_outbox_totals(q->st, &pending, &failing, &oldest);
	if (rc < 0) {
		r->details = json_pack("{s:o}", "backend", backend);
		return cm_err_wrap(-EAGAIN, "the registry database does not answer");
	}
	outbox = json_pack("{s:I s:I s:o}", "pending", (json_int_t)pending, "failing",
			   (json_int_t)failing, "oldest_pending_seconds",
			   oldest ? json_real((double)(cm_time_now_us() - oldest) / 1e6) : json_null());
	if (refused > 0)
		return api_resp_json(r, 200, json_pack("{s:s s:i s:I s:s s:o s:o}", "status",
						       "ready", "disk_errors", 0,
						       "integrity_mismatches", (json_int_t)files,
						       "warning", msg, "outbox", outbox, "backend",
						       backend));
	return api_resp_json(r, 200, json_pack("{s:s s:i s:o s:o}", "status", "ready", "disk_errors", 0,
					       "outbox", outbox, "backend", backend));
}

/* Rebuilds the store's share of /metrics if a change happened since the last build. */
static int metrics_store(struct api_server *s, struct cm_buf *out)
{
	struct api_metrics *m = &s->metrics;
	uint64_t gen = api_cache_gen(&s->cache);
	json_t *sum = NULL;
	int rc = 0;

	pthread_mutex_lock(&m->mu);
	if (!m->store_valid || m->store_gen != gen) {
		struct cm_buf b = { 0 };

		/* New events since the last build: promotions, rollbacks, refusals. */
		for (;;) {
			struct reg_event_filter f = { .after_id = m->last_event,
						      .limit = TAIL_PAGE };
			json_t *ev = NULL;
			size_t n;

			rc = reg_event_list(s->st, NULL, &f, &ev);
			if (rc < 0)
				break;
			n = json_array_size(ev);
			api_metrics_tally(m, ev);
			json_decref(ev);
			if (n < TAIL_PAGE)
				break;
		}
		if (rc == 0)
			rc = reg_store_summary(s->st, &sum);
		if (rc == 0)
			rc = api_metrics_render_store(m, sum, &b);
		if (rc == 0) {
			cm_buf_free(&m->store_text);
			m->store_text = b;
			m->store_gen = gen;
			m->store_valid = 1;
		} else {
			cm_buf_free(&b);
		}
	}
	if (rc == 0 && m->store_text.len)
		rc = cm_buf_append(out, m->store_text.data, m->store_text.len);
	pthread_mutex_unlock(&m->mu);
	json_decref(sum);
	return rc;
}

/* The git tag queue, read fresh: retries change it without registry events. */
static int metrics_git(struct api_server *s, struct cm_buf *b)
{
	struct reg_git_status g;
	int64_t now = cm_time_now_us();
	int rc = reg_git_status(s->st, &g);

	if (rc < 0)
		return rc;
	return cm_buf_printf(
		b,
		"# HELP modelfs_git_sync_configured 1 while seals and alias changes queue git tags.\n"
		"# TYPE modelfs_git_sync_configured gauge\n"
		"modelfs_git_sync_configured %d\n"
		"# HELP modelfs_git_queue_items Git tag queue items by state.\n"
		"# TYPE modelfs_git_queue_items gauge\n"
		"modelfs_git_queue_items{state=\"pending\"} %lld\n"
		"modelfs_git_queue_items{state=\"pushing\"} %lld\n"
		"modelfs_git_queue_items{state=\"failed\"} %lld\n"
		"modelfs_git_queue_items{state=\"done\"} %lld\n"
		"# HELP modelfs_git_queue_failed_items Failed git tag queue items by reason.\n"
		"# TYPE modelfs_git_queue_failed_items gauge\n"
		"modelfs_git_queue_failed_items{reason=\"missing_commit\"} %lld\n"
		"modelfs_git_queue_failed_items{reason=\"conflict\"} %lld\n"
		"modelfs_git_queue_failed_items{reason=\"other\"} %lld\n"
		"# HELP modelfs_git_queue_oldest_seconds Age of the oldest tag not yet made or "
		"pushed (0: none).\n"
		"# TYPE modelfs_git_queue_oldest_seconds gauge\n"
		"modelfs_git_queue_oldest_seconds %.3f\n"
		"# HELP modelfs_git_last_error_timestamp_seconds When an open or failed item last "
		"failed (0: none).\n"
		"# TYPE modelfs_git_last_error_timestamp_seconds gauge\n"
		"modelfs_git_last_error_timestamp_seconds %.3f\n",
		g.configured, (long long)g.pending, (long long)g.pushing, (long long)g.failed,
		(long long)g.done, (long long)g.missing_commit, (long long)g.conflicts,
		(long long)(g.failed - g.missing_commit - g.conflicts),
		g.oldest_open_us ? (double)(now - g.oldest_open_us) / 1e6 : 0.0,
		(double)g.last_error_us / 1e6);
}

/* The outbox per subscriber, read fresh: deliveries change it without registry events. */
static int metrics_outbox(struct api_server *s, struct cm_buf *b)
{
	static const char *const states[] = { "pending", "done", "dropped" };
	json_t *o = NULL, *sub;
	size_t i;
	int rc = reg_outbox_state(s->st, 0, NULL, 0, &o);

	if (rc < 0)
		return rc;
	rc = cm_buf_printf(b, "# HELP modelfs_outbox_items Outbox items by subscriber and state.\n"
			      "# TYPE modelfs_outbox_items gauge\n");
	json_array_foreach(json_object_get(o, "subscribers"), i, sub) {
		long long id = (long long)json_integer_value(json_object_get(sub, "id"));
		const char *ad = json_string_value(json_object_get(sub, "adapter"));

		for (size_t k = 0; rc == 0 && k < sizeof(states) / sizeof(states[0]); k++)
			rc = cm_buf_printf(b, "modelfs_outbox_items{subscriber=\"%lld\",adapter=\"%s\","
					   "state=\"%s\"} %lld\n", id, ad, states[k],
					   (long long)json_integer_value(json_object_get(sub,
											  states[k])));
	}
	if (rc == 0)
		rc = cm_buf_printf(b, "# HELP modelfs_outbox_attempts Failed attempts of the "
				      "subscriber's oldest open item (0: delivering fine).\n"
				      "# TYPE modelfs_outbox_attempts gauge\n");
	json_array_foreach(json_object_get(o, "subscribers"), i, sub) {
		if (rc < 0)
			break;
		rc = cm_buf_printf(b, "modelfs_outbox_attempts{subscriber=\"%lld\",adapter=\"%s\"} "
				   "%lld\n", (long long)json_integer_value(json_object_get(sub, "id")),
				   json_string_value(json_object_get(sub, "adapter")),
				   (long long)json_integer_value(json_object_get(sub, "attempts")));
	}
	if (rc == 0)
		rc = cm_buf_printf(b, "# HELP modelfs_outbox_pending Open outbox items, all "
				      "subscribers.\n"
				      "# TYPE modelfs_outbox_pending gauge\n"
				      "modelfs_outbox_pending %lld\n"
				      "# HELP modelfs_outbox_failing_subscribers Subscribers whose oldest "
				      "open item has failed at least once.\n"
				      "# TYPE modelfs_outbox_failing_subscribers gauge\n"
				      "modelfs_outbox_failing_subscribers %lld\n",
				   (long long)json_integer_value(json_object_get(o, "pending")),
				   (long long)json_integer_value(json_object_get(o, "failing")));
	json_decref(o);
	return rc;
}

static int metrics_process(struct api_server *s, struct cm_buf *b)
{
	int64_t files = 0;
	int64_t refused = reg_store_integrity(s->st, &files, NULL, 0);
	char msg[256];
	int rc;

	rc = cm_buf_printf(b, "# HELP modelfs_build_info The running modelfs (always 1).\n"
			      "# TYPE modelfs_build_info gauge\n"
			      "modelfs_build_info{version=\"%s\"} 1\n"
			      "# HELP process_start_time_seconds Start time since the epoch.\n"
			      "# TYPE process_start_time_seconds gauge\n"
			      "process_start_time_seconds %.3f\n"
			      "# HELP modelfs_store_disk_errors Disk updates that failed after their "
			      "commit since the store was opened.\n"
			      "# TYPE modelfs_store_disk_errors gauge\n"
			      "modelfs_store_disk_errors %lld\n"
			      "# HELP modelfs_integrity_mismatches_total Opens of sealed files refused "
			      "because the file changed on the volume after its seal.\n"
			      "# TYPE modelfs_integrity_mismatches_total counter\n"
			      "modelfs_integrity_mismatches_total %lld\n"
			      "# HELP modelfs_integrity_mismatched_files Distinct sealed files found "
			      "changed on the volume since the store was opened.\n"
			      "# TYPE modelfs_integrity_mismatched_files gauge\n"
			      "modelfs_integrity_mismatched_files %lld\n",
			   MODELFS_VERSION, (double)s->started_us / 1e6,
			   (long long)reg_store_disk_errors(s->st, msg, sizeof(msg)),
			   (long long)refused, (long long)files);
	if (rc == 0) {
		struct reg_db_status db;

		reg_store_db_status(s->st, &db);
		rc = cm_buf_printf(b, "# HELP modelfs_db_backend_info The metadata backend (always 1).\n"
				      "# TYPE modelfs_db_backend_info gauge\n"
				      "modelfs_db_backend_info{kind=\"%s\"} 1\n"
				      "# HELP modelfs_db_connected 1 while the metadata backend answered "
				      "its last use, 0 when it was unreachable.\n"
				      "# TYPE modelfs_db_connected gauge\n"
				      "modelfs_db_connected %d\n"
				      "# HELP modelfs_db_reconnects_total Connections to the metadata "
				      "backend re-established since the start.\n"
				      "# TYPE modelfs_db_reconnects_total counter\n"
				      "modelfs_db_reconnects_total %lld\n",
				   db.kind, db.connected, (long long)db.reconnects);
	}
	if (rc == 0) {
		struct reg_follow_status f;

		reg_follow_status(s->st, &f);
		if (f.active)
			rc = cm_buf_printf(b, "# HELP modelfs_follow_events_behind Events committed by "
					      "any node and not yet applied on this one.\n"
					      "# TYPE modelfs_follow_events_behind gauge\n"
					      "modelfs_follow_events_behind %lld\n"
					      "# HELP modelfs_follow_seconds_behind Seconds since this node "
					      "was last in step with the database (0 when in step).\n"
					      "# TYPE modelfs_follow_seconds_behind gauge\n"
					      "modelfs_follow_seconds_behind %.3f\n"
					      "# HELP modelfs_follow_seconds_since_applied Seconds since this "
					      "node last applied an event (-1: none yet).\n"
					      "# TYPE modelfs_follow_seconds_since_applied gauge\n"
					      "modelfs_follow_seconds_since_applied %.3f\n"
					      "# HELP modelfs_follow_applied_event The last event applied.\n"
					      "# TYPE modelfs_follow_applied_event gauge\n"
					      "modelfs_follow_applied_event %lld\n"
					      "# HELP modelfs_follow_notifications_total Doorbells received.\n"
					      "# TYPE modelfs_follow_notifications_total counter\n"
					      "modelfs_follow_notifications_total %lld\n"
					      "# HELP modelfs_follow_polls_total Catch-ups started by the "
					      "backstop poll.\n"
					      "# TYPE modelfs_follow_polls_total counter\n"
					      "modelfs_follow_polls_total %lld\n"
					      "# HELP modelfs_follow_reconnects_total The follower's connection "
					      "re-established.\n"
					      "# TYPE modelfs_follow_reconnects_total counter\n"
					      "modelfs_follow_reconnects_total %lld\n",
					   (long long)f.behind, f.seconds_behind, f.since_applied,
					   (long long)f.applied, (long long)f.notifications,
					   (long long)f.polls, (long long)f.reconnects);
	}
	/* Without the metadata backend the db's series are left out; the process's still answer. */
	if (rc == 0 && (rc = metrics_git(s, b)) == -EAGAIN)
		rc = 0;
	if (rc == 0 && (rc = metrics_outbox(s, b)) == -EAGAIN)
		rc = 0;
	if (rc == 0 && s->cfg.fs_stats) {
		struct api_fs_stats fs = { 0 };

		s->cfg.fs_stats(s->cfg.fs_stats_ctx, &fs);
		rc = cm_buf_printf(b, "# HELP modelfs_fuse_operations_total FUSE requests served.\n"
				      "# TYPE modelfs_fuse_operations_total counter\n"
				      "modelfs_fuse_operations_total %" PRIu64 "\n"
				      "# HELP modelfs_fuse_read_bytes_total Bytes read through the mount "
				      "on the splice path; reads of files opened in passthrough mode are "
				      "served by the kernel and not counted.\n"
				      "# TYPE modelfs_fuse_read_bytes_total counter\n"
				      "modelfs_fuse_read_bytes_total %" PRIu64 "\n"
				      "# HELP modelfs_fuse_passthrough_opens_total Opens of sealed files "
				      "answered in kernel passthrough mode (their bytes are not counted).\n"
				      "# TYPE modelfs_fuse_passthrough_opens_total counter\n"
				      "modelfs_fuse_passthrough_opens_total %" PRIu64 "\n"
				      "# HELP modelfs_fuse_passthrough 1 when sealed files are opened in "
				      "kernel passthrough mode, 0 on the splice fallback.\n"
				      "# TYPE modelfs_fuse_passthrough gauge\n"
				      "modelfs_fuse_passthrough %d\n"
				      "# HELP modelfs_fuse_written_bytes_total Bytes written through the "
				      "mount.\n"
				      "# TYPE modelfs_fuse_written_bytes_total counter\n"
				      "modelfs_fuse_written_bytes_total %" PRIu64 "\n"
				      "# HELP modelfs_fuse_errors_total FUSE requests answered with an "
				      "error.\n"
				      "# TYPE modelfs_fuse_errors_total counter\n"
				      "modelfs_fuse_errors_total %" PRIu64 "\n",
				   fs.ops, fs.bytes_read, fs.passthrough_opens, fs.passthrough,
				   fs.bytes_written, fs.errors);
	}
	return rc;
}

int api_h_metrics(struct api_req *q, struct api_resp *r)
{
	struct cm_buf b = { 0 };
	int rc;

	if (!q->srv)
		return cm_err_set(-EAGAIN, "no server");
	rc = metrics_process(q->srv, &b);
	if (rc == 0 && (rc = metrics_store(q->srv, &b)) == -EAGAIN)
		rc = 0;
	if (rc == 0)
		rc = api_metrics_render_http(&q->srv->metrics, &b);
	if (rc < 0) {
		cm_buf_free(&b);
		return rc;
	}
	r->status = 200;
	r->text = b.data;
	r->text_len = b.len;
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
	return 0;
}

int api_h_openapi(struct api_req *q, struct api_resp *r)
{
	r->status = 200;
	r->ctext = (const char *)api_openapi;
	r->text_len = api_openapi_len;
	r->ctype = "application/json";
	r->cacheable = 1;
	return 0;
}

/* A Kubernetes name: lowercase letters, digits, '-' and '.', 1-253 characters. */
static int k8s_name_check(const char *what, const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") != n)
		return cm_err_set(-EBADMSG, "query parameter '%s' must be a Kubernetes name "
				  "(lowercase letters, digits, '-' and '.')", what);
	return 0;
}

static json_t *time_or_null(int64_t us)
{
	char ts[CM_TIME_RFC3339_LEN];

	if (!us)
		return json_null();
	cm_time_format(us, ts);
	return json_string(ts);
}

/* Git-tag sync: the configuration, the queue's counts and its open or failed items. */
int api_h_git_get(struct api_req *q, struct api_resp *r)
{
	static const char *const open_states[] = { "failed", "pending", "pushing" };
	const char *state = api_arg(q, "state");
	struct reg_git_status g;
	json_t *cfg = NULL, *items = NULL, *part = NULL;
	long long limit;
	int rc;

	if (state && !state[0])
		state = NULL;
	if (state && strcmp(state, "pending") && strcmp(state, "pushing") &&
	    strcmp(state, "failed") && strcmp(state, "done"))
		return cm_err_set(-EBADMSG, "query parameter 'state' must be pending, pushing, failed "
				  "or done");
	rc = api_arg_int(q, "limit", 100, 1, 1000, &limit);
	if (rc == 0)
		rc = reg_git_status(q->st, &g);
	if (rc == 0) {
		rc = reg_git_config_get(q->st, &cfg);
		if (rc == -ENOENT)
			rc = 0;
	}
	items = json_array();
	for (size_t i = 0; rc == 0 && i < (state ? 1 : 3); i++) {
		size_t have = json_array_size(items);

		if (have >= (size_t)limit)
			break;
		rc = reg_git_queue_list(q->st, state ? state : open_states[i], 0, (size_t)limit - have,
					&part);
		if (rc == 0)
			json_array_extend(items, part);
		json_decref(part);
		part = NULL;
	}
	if (rc < 0) {
		json_decref(cfg);
		json_decref(items);
		return rc;
	}
	return api_resp_json(
		r, 200,
		json_pack("{s:b s:o s:{s:I s:I s:I s:I s:I s:I s:o s:o s:o} s:o}", "configured",
			  g.configured, "config", cfg ? cfg : json_null(), "queue", "pending",
			  (json_int_t)g.pending, "pushing", (json_int_t)g.pushing, "failed",
			  (json_int_t)g.failed, "done", (json_int_t)g.done, "missing_commit",
			  (json_int_t)g.missing_commit, "conflicts", (json_int_t)g.conflicts,
			  "oldest_open_at", time_or_null(g.oldest_open_us), "last_error",
			  g.last_error[0] ? json_string(g.last_error) : json_null(), "last_error_at",
			  time_or_null(g.last_error_us), "items", items));
}

static const char *arg_or(const struct api_req *q, const char *key, const char *def)
{
	const char *v = api_arg(q, key);

	return v && v[0] ? v : def && def[0] ? def : NULL;
}

int api_h_inferenceservice(struct api_req *q, struct api_resp *r)
{
	struct reg_isvc_opts o = {
		.pvc = arg_or(q, "pvc", q->cfg ? q->cfg->pvc : NULL),
		.namespace_ = arg_or(q, "namespace", q->cfg ? q->cfg->namespace_ : NULL),
		.runtime = arg_or(q, "runtime", q->cfg ? q->cfg->runtime : NULL),
		.model_format = arg_or(q, "model_format", NULL),
	};
	size_t len = 0;
	char *text = NULL;
	int rc;

	rc = k8s_name_check("pvc", o.pvc ? o.pvc : REG_ISVC_PVC_DEFAULT);
	if (rc == 0 && o.namespace_)
		rc = k8s_name_check("namespace", o.namespace_);
	if (rc == 0 && o.runtime)
		rc = k8s_name_check("runtime", o.runtime);
	if (rc == 0 && o.model_format)
		rc = k8s_name_check("model_format", o.model_format);
	/* The same bytes the GitOps adapter commits. */
	if (rc == 0)
		rc = reg_isvc_text(q->st, q->model, &o, &text, &len);
	if (rc < 0)
		return rc;
	r->status = 200;
	r->text = text;
	r->text_len = len;
	r->ctype = "application/json";
	return 0;
}
