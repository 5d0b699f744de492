/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Webhook delivery: the outbox's "webhook" subscribers, each item POSTed as a
 * CloudEvents 1.0 JSON message (structured mode) with an HMAC-SHA256
 * signature over "<timestamp>.<body>", at least once and in order per
 * subscription: a failed item is retried with the registry's backoff and
 * the subscription's later items wait behind it.
 *
 * Threads: one worker thread makes every delivery (libcurl easy handle of
 * its own); commits wake it through an outbox observer; it sleeps until the
 * earliest item is due otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cm.h"
#include "modelfs_config.h"
#include "reg.h"
#include "reg_json.h"
#include "sync.h"

#define WH_IDLE_US 5000000LL

struct sync_webhooks {
	struct reg_store *st;
	struct sync_webhook_opts o;
	char source[256];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int kicked;
	atomic_int stop;
	CURL *curl;
};

json_t *sync_cloudevent(json_t *event, const char *source)
{
	const char *kind = json_string_value(json_object_get(event, "kind"));
	const char *model = json_string_value(json_object_get(event, "model"));
	const char *version = json_string_value(json_object_get(event, "version"));
	const char *alias = json_string_value(json_object_get(event, "alias"));
	json_int_t id = json_integer_value(json_object_get(event, "id"));
	char type[160], src[512], ids[32];
	json_t *ce;

	snprintf(type, sizeof(type), "io.modelfs.%s", kind ? kind : "event");
	if (model)
		snprintf(src, sizeof(src), "%s/models/%s", source, model);
	else
		snprintf(src, sizeof(src), "%s", source);
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	ce = json_pack("{s:s s:s s:s s:s s:O s:s s:O}", "specversion", "1.0", "type", type,
		       "source", src, "id", ids, "time", json_object_get(event, "ts"),
		       "datacontenttype", "application/json", "data", event);
	if (ce && (alias || version))
		json_object_set_new(ce, "subject", json_string(alias ? alias : version));
	return ce;
}

int sync_signature(const char *secret, const char *ts, const char *body, size_t body_len,
		   char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	HMAC_CTX *h = NULL;
	int rc = 0;

	/* HMAC_* is deprecated in OpenSSL 3 but kept; EVP_MAC would do the same in more lines. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	h = HMAC_CTX_new();
	if (!h || !HMAC_Init_ex(h, secret, (int)strlen(secret), EVP_sha256(), NULL) ||
	    !HMAC_Update(h, (const unsigned char *)ts, strlen(ts)) ||
	    !HMAC_Update(h, (const unsigned char *)".", 1) ||
	    !HMAC_Update(h, (const unsigned char *)body, body_len) ||
	    !HMAC_Final(h, mac, &len) || n < 7 + 2 * (size_t)len + 1)
		rc = cm_err_set(-EIO, "cannot compute the webhook signature");
	HMAC_CTX_free(h);
#pragma GCC diagnostic pop
	if (rc < 0)
		return rc;
	memcpy(out, "sha256=", 7);
	for (unsigned int i = 0; i < len; i++) {
		out[7 + 2 * i] = hex[mac[i] >> 4];
		out[7 + 2 * i + 1] = hex[mac[i] & 15];
	}
	out[7 + 2 * len] = '\0';
	return 0;
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * nmemb;
}

/*
 * One POST. Returns 0 when the receiver answered 2xx; -EIO with the reason
 * otherwise (*status the HTTP status when there was one).
 */
static int deliver(struct sync_webhooks *w, const char *url, const char *secret,
		   json_t *event, int *status)
{
	struct curl_slist *hdr = NULL;
	char *body = NULL, sig[80], line[160], ts[32];
	json_t *ce = NULL;
	long code = 0;
	CURLcode cc;
	int rc = 0;

	*status = 0;
	ce = sync_cloudevent(event, w->source);
	body = ce ? reg_json_dumps(ce, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!body) {
		rc = cm_err_set(-ENOMEM, "out of memory");
		goto done;
	}
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	rc = sync_signature(secret ? secret : "", ts, body, strlen(body), sig, sizeof(sig));
	if (rc < 0)
		goto done;
	hdr = curl_slist_append(hdr, "Content-Type: application/cloudevents+json; charset=utf-8");
	snprintf(line, sizeof(line), "X-Modelfs-Signature: %s", sig);
	hdr = curl_slist_append(hdr, line);
	snprintf(line, sizeof(line), "X-Modelfs-Timestamp: %s", ts);
	hdr = curl_slist_append(hdr, line);
	/* The event id: a receiver that saw it already may answer 2xx and do nothing. */
	snprintf(line, sizeof(line), "Idempotency-Key: %lld",
		 (long long)json_integer_value(json_object_get(event, "id")));
	hdr = curl_slist_append(hdr, line);
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_reset(w->curl);
	curl_easy_setopt(w->curl, CURLOPT_URL, url);
	curl_easy_setopt(w->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(w->curl, CURLOPT_USERAGENT, "modelfs/" MODELFS_VERSION);
	curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, (long)w->o.timeout_ms);
	curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)w->o.timeout_ms);
	curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(w->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(w->curl);
	if (cc != CURLE_OK) {
		rc = cm_err_set(-EIO, "%s", curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
	*status = (int)code;
	if (code < 200 || code > 299)
		rc = cm_err_set(-EIO, "the receiver answered HTTP %ld", code);
done:
	curl_slist_free_all(hdr);
	free(body);
	json_decref(ce);
	return rc;
}

/*
 * Delivers one subscriber's due items in order until one fails or none is
 * due. Returns when the next item is due (µs, 0 for none).
 */
static int64_t sub_run(struct sync_webhooks *w, json_t *sub)
{
	int64_t id = json_integer_value(json_object_get(sub, "id"));
	const char *url = json_string_value(json_object_get(sub, "target"));
	const char *secret = json_string_value(json_object_get(sub, "secret"));
	/* A lease outlives one delivery: another claim cannot take it meanwhile. */
	int64_t lease = (w->o.timeout_ms + 30000) * 1000;

	while (!w->stop) {
		struct reg_outbox_item *it = NULL;
		int64_t next = 0;
		int status, rc;

		rc = reg_outbox_claim(w->st, id, lease, &it, &next);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "webhook", "subscriber %lld: %s", (long long)id,
			       cm_err_msg());
			return cm_time_now_us() + 1000000;
		}
		if (rc == 0)
			return next;
		rc = deliver(w, url, secret, it->event, &status);
		if (rc == 0) {
			rc = reg_outbox_complete(w->st, it, status);
			if (rc < 0)
				cm_log(CM_LOG_ERROR, "webhook", "subscriber %lld event %lld: %s",
				       (long long)id, (long long)it->event_id, cm_err_msg());
		} else {
			char why[CM_ERR_MAX];

			cm_strlcpy(why, cm_err_msg(), sizeof(why));
			cm_log(CM_LOG_WARN, "webhook", "subscriber %lld event %lld attempt %lld: %s",
			       (long long)id, (long long)it->event_id, (long long)it->attempts + 1,
			       why);
			if (reg_outbox_fail(w->st, it, status, why) < 0)
				cm_log(CM_LOG_ERROR, "webhook", "subscriber %lld: %s", (long long)id,
				       cm_err_msg());
			reg_outbox_item_free(it);
			continue; /* the claim answers when the retry is due */
		}
		reg_outbox_item_free(it);
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct sync_webhooks *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		int64_t wake = cm_time_now_us() + WH_IDLE_US;
		json_t *subs = NULL, *sub;
		struct timespec until;
		size_t i;

		w->kicked = 0;
		pthread_mutex_unlock(&w->mu);
		if (reg_outbox_sub_list(w->st, "webhook", 0, 1, &subs) < 0)
			cm_log(CM_LOG_ERROR, "webhook", "%s", cm_err_msg());
		json_array_foreach(subs, i, sub) {
			int64_t next = sub_run(w, sub);

			if (next && next < wake)
				wake = next;
		}
		json_decref(subs);
		cm_time_deadline(wake - cm_time_now_us(), &until);
		pthread_mutex_lock(&w->mu);
		while (!w->stop && !w->kicked &&
		       pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void observe(void *ctx)
{
	struct sync_webhooks *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->kicked = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int sync_webhooks_start(struct reg_store *st, const struct sync_webhook_opts *o,
			struct sync_webhooks **out)
{
	struct sync_webhooks *w;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc, err;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return cm_err_set(-EIO, "cannot initialise libcurl");
	w = calloc(1, sizeof(*w));
	if (!w)
		return cm_err_set(-ENOMEM, "out of memory");
	w->st = st;
	w->o = *o;
	if (w->o.timeout_ms <= 0)
		w->o.timeout_ms = 10000;
	cm_strlcpy(w->source, o->source && o->source[0] ? o->source : "/modelfs",
		   sizeof(w->source));
	w->curl = curl_easy_init();
	if (!w->curl) {
		free(w);
		return cm_err_set(-ENOMEM, "cannot create a libcurl handle");
	}
	rc = reg_outbox_leases_release(st);
	if (rc < 0)
		goto fail_early;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* The worker takes no signals: a daemon's stop signals belong to its main loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		rc = cm_err_set(-err, "cannot start the webhook worker: %s", strerror(err));
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		goto fail_early;
	}
	rc = reg_store_observer_add(st, observe, w);
	if (rc < 0) {
		sync_webhooks_stop(w);
		return rc;
	}
	*out = w;
	return 0;
fail_early:
	curl_easy_cleanup(w->curl);
	free(w);
	return rc;
}

void sync_webhooks_stop(struct sync_webhooks *w)
{
	if (!w)
		return;
	reg_store_observer_remove(w->st, observe, w);
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	curl_easy_cleanup(w->curl);
	free(w);
}

static const struct reg_actor config_actor = { .channel = "cli", .name = "webhooks-file" };

/* 1 when a webhook with the same url and events exists in subs. */
static int sub_exists(json_t *subs, const char *url, json_t *events)
{
	size_t i;
	json_t *s;

	json_array_foreach(subs, i, s) {
		if (!strcmp(json_string_value(json_object_get(s, "target")), url) &&
		    json_equal(json_object_get(s, "events"), events))
			return 1;
	}
	return 0;
}

int sync_webhooks_load(struct reg_store *st, const char *path)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr), *subs = NULL, *e, *added;
	size_t i;
	int rc = 0, n = 0;

	if (!doc)
		return cm_err_set(-EINVAL, "%s:%d: %s", path, jerr.line, jerr.text);
	if (!json_is_array(doc)) {
		rc = cm_err_set(-EINVAL, "%s: must hold a JSON array of {\"url\", \"events\", "
				"\"models\"?, \"secret\"}", path);
		goto done;
	}
	rc = reg_outbox_sub_list(st, "webhook", 0, 0, &subs);
	if (rc < 0)
		goto done;
	json_array_foreach(doc, i, e) {
		const char *url = json_string_value(json_object_get(e, "url"));
		json_t *events = json_object_get(e, "events");

		if (!url || !json_is_array(events)) {
			rc = cm_err_set(-EINVAL, "%s: entry %zu needs \"url\" and \"events\"", path, i);
			goto done;
		}
		if (sub_exists(subs, url, events))
			continue;
		rc = reg_outbox_sub_add(st, &config_actor, "webhook", url,
					json_string_value(json_object_get(e, "secret")), events,
					json_object_get(e, "models"), &added);
		if (rc < 0) {
			rc = cm_err_wrap(rc, "%s: entry %zu", path, i);
			goto done;
		}
		json_decref(added);
		n++;
	}
	rc = n;
done:
	json_decref(subs);
	json_decref(doc);
	return rc;
}
