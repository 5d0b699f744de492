/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sync: delivery adapters over the registry's outbox. Each adapter claims
 * its subscribers' items (reg_outbox_claim), delivers them to the outside
 * world and completes or fails them; none touches SQL, and the registry
 * knows none of them.
 */
#ifndef MODELFS_SYNC_H
#define MODELFS_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "reg.h"

struct reg_store;

/* ---- webhooks (webhook.c) ---- */

struct sync_webhook_opts {
	int64_t timeout_ms;  /* one delivery, connect included */
	const char *source;  /* CloudEvents source prefix ("/modelfs" when NULL) */
};

struct sync_webhooks;

/*
 * Starts the webhook worker: one thread that delivers every webhook
 * subscriber's items in order, each as a CloudEvents 1.0 structured-mode
 * JSON POST signed with the subscription's secret. Releases leases left by
 * a process that died (the caller holds the store lock), then registers an
 * outbox observer so that commits wake it. *out caller stops.
 */
int sync_webhooks_start(struct reg_store *st, const struct sync_webhook_opts *o,
			struct sync_webhooks **out);
/* Stops and frees the worker (a delivery in progress ends first). Accepts NULL. */
void sync_webhooks_stop(struct sync_webhooks *w);

/*
 * The CloudEvent for an outbox event (as history shows it): *out caller
 * owns. The body of a delivery is its compact JSON text.
 */
json_t *sync_cloudevent(json_t *event, const char *source);
/*
 * "sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>" into out (at least
 * 72 bytes). Returns 0 or -EIO.
 */
int sync_signature(const char *secret, const char *ts, const char *body, size_t body_len,
		   char *out, size_t n);

/*
 * Adds the subscriptions of a JSON file ([{"url","events","models"?,
 * "secret"}, ...]) that are not there yet (same url and events).
 * Returns the number added or -errno (detail set).
 */
int sync_webhooks_load(struct reg_store *st, const char *path);

/* ---- GitOps manifests (gitops.c) ---- */

struct sync_gitops_opts {
	const char *repo;     /* modelfs's clone (bare or not; its working tree is not touched) */
	const char *branch;   /* "main" */
	const char *path;     /* "deploy/isvc/{model}.yaml" */
	const char *remote;   /* NULL: commit locally only */
	struct reg_isvc_opts isvc; /* as the API renders by default */
};

struct sync_gitops;

/* Checks a --gitops-path: relative, inside the repository, with {model}. */
int sync_gitops_path_check(const char *fmt);
/*
 * Starts the GitOps worker: finds or adds the store's "gitops" subscriber
 * for o->repo (alias.set, alias.delete), then commits the rendered
 * InferenceService of each model whose current or canary changes. The
 * strings in o must outlive the worker. *out caller stops.
 */
int sync_gitops_start(struct reg_store *st, const struct sync_gitops_opts *o,
		      struct sync_gitops **out);
void sync_gitops_stop(struct sync_gitops *g);

#endif
