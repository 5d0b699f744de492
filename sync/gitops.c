/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GitOps manifests: on every change of a model's current or canary alias,
 * the model's rendered InferenceService (reg_isvc_text: the bytes GET
 * …/inferenceservice answers) is committed at a path of a branch and pushed,
 * so that ArgoCD (or Flux) applies it. The manifest is derived, so there is
 * never a merge: each delivery fetches the remote branch, rebuilds the
 * commit on top of its tip (or of the local branch without a remote), and
 * commits only when the bytes change. A push the remote refuses (it moved
 * meanwhile) fails the item, and the retry rebuilds on the new tip.
 *
 * The repository is modelfs's own clone (bare or not; its working tree is
 * never touched): the branch ref is moved by the commits made here.
 *
 * Threads: one worker thread, woken by an outbox observer after commits.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <git2.h>

#include "cm.h"
#include "reg.h"
#include "sync.h"

#define GO_IDLE_US 5000000LL
#define GO_LEASE_US 120000000LL

struct sync_gitops {
	struct reg_store *st;
	struct sync_gitops_opts o;
	int64_t sub;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int kicked;
	atomic_int stop;
};

static const struct reg_actor gitops_actor = { .channel = "cli", .name = "gitops" };

static const char *git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown libgit2 error";
}

/* "deploy/isvc/{model}.yaml" with the model name; -ENAMETOOLONG past n. */
static int path_for(const char *fmt, const char *model, char *out, size_t n)
{
	const char *p = strstr(fmt, "{model}");
	int len;

	if (p)
		len = snprintf(out, n, "%.*s%s%s", (int)(p - fmt), fmt, model, p + 7);
	else
		len = snprintf(out, n, "%s", fmt);
	if (len < 0 || (size_t)len >= n)
		return cm_err_set(-ENAMETOOLONG, "the GitOps path is too long");
	return 0;
}

int sync_gitops_path_check(const char *fmt)
{
	if (!fmt || !fmt[0] || fmt[0] == '/' || strstr(fmt, "..") || strstr(fmt, "//") ||
	    fmt[strlen(fmt) - 1] == '/')
		return cm_err_set(-EINVAL, "--gitops-path must be a relative file path inside the "
				  "repository (e.g. deploy/isvc/{model}.yaml)");
	if (!strstr(fmt, "{model}"))
		return cm_err_set(-EINVAL, "--gitops-path must contain {model}: one file per model");
	return 0;
}

struct push_state {
	char refused[256];
};

static int push_update_cb(const char *refname, const char *status, void *payload)
{
	struct push_state *p = payload;

	if (status)
		snprintf(p->refused, sizeof(p->refused), "%s: %s", refname, status);
	return 0;
}

/*
 * An in-memory remote for a URL, without insteadOf rewriting or a default
 * fetchspec: libgit2 1.5 leaks PCRE2 match data for every config entry its
 * glob iterator skips, which git_remote_create_anonymous() runs each time.
 */
static int remote_new(git_repository *repo, const char *url, git_remote **out)
{
	git_remote_create_options o;

	git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	o.repository = repo;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(out, url, &o);
}

/* remote.<name>.url of the repository (no insteadOf rewriting). */
static int remote_url(git_repository *repo, const char *name, git_buf *out)
{
	git_config *cfg = NULL;
	char key[256];
	int grc;

	snprintf(key, sizeof(key), "remote.%s.url", name);
	grc = git_repository_config_snapshot(&cfg, repo);
	if (grc == 0)
		grc = git_config_get_string_buf(out, cfg, key);
	git_config_free(cfg);
	return grc;
}

/* The remote's branch tip into refs/remotes/<remote>/<branch>. */
static int fetch(git_repository *repo, const char *url, const struct sync_gitops_opts *o,
		 char *err, size_t n)
{
	git_remote *r = NULL;
	git_fetch_options fo;
	char spec[512];
	char *specs[1] = { spec };
	git_strarray arr = { specs, 1 };
	int grc;

	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.prune = GIT_FETCH_NO_PRUNE;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	snprintf(spec, sizeof(spec), "+refs/heads/%s:refs/remotes/%s/%s", o->branch, o->remote,
		 o->branch);
	grc = remote_new(repo, url, &r);
	if (grc == 0)
		grc = git_remote_fetch(r, &arr, &fo, "modelfs gitops: fetch");
	if (grc < 0)
		snprintf(err, n, "fetching %s from '%s': %s", o->branch, o->remote, git_msg());
	git_remote_free(r);
	return grc;
}

static int push(git_repository *repo, const char *url, const struct sync_gitops_opts *o,
		char *err, size_t n)
{
	struct push_state ps = { "" };
	git_remote *r = NULL;
	git_push_options po;
	char spec[512];
	char *specs[1] = { spec };
	git_strarray arr = { specs, 1 };
	int grc;

	git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
	po.callbacks.push_update_reference = push_update_cb;
	po.callbacks.payload = &ps;
	/* Never forced: a remote that moved refuses, and the retry rebuilds on its tip. */
	snprintf(spec, sizeof(spec), "refs/heads/%s:refs/heads/%s", o->branch, o->branch);
	grc = remote_new(repo, url, &r);
	if (grc == 0)
		grc = git_remote_push(r, &arr, &po);
	if (grc < 0)
		snprintf(err, n, "pushing %s to '%s': %s", o->branch, o->remote, git_msg());
	else if (ps.refused[0]) {
		snprintf(err, n, "the remote '%s' refused %s (it moved; rebuilt on top next)",
			 o->remote, ps.refused);
		grc = -1;
	}
	git_remote_free(r);
	return grc;
}

/*
 * Makes the branch hold `text` at `path` (or no file when text is NULL), on
 * top of the remote's tip when there is a remote. *made: 1 when a commit was
 * made. Returns 0 or -1 with err set.
 */
static int commit_manifest(struct sync_gitops *g, const char *path, const char *text, size_t len,
			   const char *message, int *made, char *err, size_t n)
{
	const struct sync_gitops_opts *o = &g->o;
	git_repository *repo = NULL;
	git_reference *base_ref = NULL;
	git_commit *base = NULL;
	git_tree *base_tree = NULL, *tree = NULL;
	git_index *idx = NULL;
	git_signature *sig = NULL;
	git_buf url = { 0 };
	git_oid blob, tree_oid, commit_oid;
	const git_index_entry *have;
	char ref[512], local[512];
	int grc, changed;

	*made = 0;
	grc = git_repository_open(&repo, o->repo);
	if (grc < 0) {
		snprintf(err, n, "opening %s: %s", o->repo, git_msg());
		goto done;
	}
	snprintf(local, sizeof(local), "refs/heads/%s", o->branch);
	if (o->remote) {
		grc = remote_url(repo, o->remote, &url);
		if (grc < 0) {
			snprintf(err, n, "remote '%s' of %s: %s", o->remote, o->repo, git_msg());
			goto done;
		}
		grc = fetch(repo, url.ptr, o, err, n);
		if (grc < 0)
			goto done;
		snprintf(ref, sizeof(ref), "refs/remotes/%s/%s", o->remote, o->branch);
	} else {
		snprintf(ref, sizeof(ref), "%s", local);
	}
	grc = git_reference_lookup(&base_ref, repo, ref);
	if (grc == 0)
		grc = git_reference_peel((git_object **)&base, base_ref, GIT_OBJECT_COMMIT);
	if (grc == 0)
		grc = git_commit_tree(&base_tree, base);
	if (grc < 0 && grc != GIT_ENOTFOUND) {
		snprintf(err, n, "reading %s: %s", ref, git_msg());
		goto done;
	}
	grc = git_index_new(&idx);
	if (grc == 0 && base_tree)
		grc = git_index_read_tree(idx, base_tree);
	if (grc < 0) {
		snprintf(err, n, "reading the tree of %s: %s", ref, git_msg());
		goto done;
	}
	have = git_index_get_bypath(idx, path, 0);
	if (text) {
		grc = git_odb_hash(&blob, text, len, GIT_OBJECT_BLOB);
		changed = !have || !git_oid_equal(&have->id, &blob);
	} else {
		changed = have != NULL;
	}
	if (!changed) {
		/* Nothing to commit; the local branch follows the remote's tip. */
		grc = 0;
		if (o->remote && base) {
			git_reference *lr = NULL;

			grc = git_reference_create(&lr, repo, local, git_commit_id(base), 1,
						   "modelfs gitops: follow the remote");
			git_reference_free(lr);
			if (grc < 0)
				snprintf(err, n, "moving %s: %s", local, git_msg());
		}
		goto done;
	}
	if (text) {
		git_index_entry e;

		memset(&e, 0, sizeof(e));
		e.path = path;
		e.mode = GIT_FILEMODE_BLOB;
		e.file_size = (uint32_t)len;
		/* An in-memory index has no repository to write the blob: write it first. */
		grc = git_blob_create_from_buffer(&e.id, repo, text, len);
		if (grc == 0)
			grc = git_index_add(idx, &e);
	} else {
		grc = git_index_remove_bypath(idx, path);
	}
	if (grc == 0)
		grc = git_index_write_tree_to(&tree_oid, idx, repo);
	if (grc == 0)
		grc = git_tree_lookup(&tree, repo, &tree_oid);
	if (grc == 0)
		grc = git_signature_now(&sig, "modelfs", "modelfs@localhost");
	if (grc == 0) {
		const git_commit *parents[1] = { base };

		grc = git_commit_create(&commit_oid, repo, NULL, sig, sig, NULL, message, tree,
					base ? 1 : 0, parents);
	}
	if (grc == 0) {
		git_reference *lr = NULL;

		/* The manifest is derived: the branch is rebuilt on the tip, never merged. */
		grc = git_reference_create(&lr, repo, local, &commit_oid, 1, "modelfs gitops");
		git_reference_free(lr);
	}
	if (grc < 0) {
		snprintf(err, n, "committing %s: %s", path, git_msg());
		goto done;
	}
	*made = 1;
	if (o->remote)
		grc = push(repo, url.ptr, o, err, n);
done:
	git_buf_dispose(&url);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(idx);
	git_tree_free(base_tree);
	git_commit_free(base);
	git_reference_free(base_ref);
	git_repository_free(repo);
	return grc < 0 ? -1 : 0;
}

/* One item: 0 when delivered (or nothing to do), -EIO with the reason. */
static int deliver(struct sync_gitops *g, json_t *event)
{
	const char *model = json_string_value(json_object_get(event, "model"));
	const char *alias = json_string_value(json_object_get(event, "alias"));
	const char *kind = json_string_value(json_object_get(event, "kind"));
	const char *actor = json_string_value(json_object_get(event, "actor"));
	const char *channel = json_string_value(json_object_get(event, "channel"));
	const char *reason = json_string_value(json_object_get(json_object_get(event, "detail"),
								"reason"));
	json_t *isvc = NULL, *ann;
	char path[1024], msg[2048], err[1024] = "";
	char *text = NULL;
	size_t len = 0;
	int rc, made = 0;

	if (!model || !alias || (strcmp(alias, "current") && strcmp(alias, "canary")))
		return 0; /* only what the manifest follows */
	rc = path_for(g->o.path, model, path, sizeof(path));
	if (rc < 0)
		return rc;
	/* The model's state now (the manifest is derived): no current, no file. */
	rc = reg_isvc_text(g->st, model, &g->o.isvc, &text, &len);
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0)
		return cm_err_wrap(-EIO, "rendering %s", model);
	if (text)
		isvc = json_loadb(text, len, 0, NULL);
	ann = json_object_get(json_object_get(isvc, "metadata"), "annotations");
	snprintf(msg, sizeof(msg),
		 "%s: current %s, canary %s\n\n"
		 "modelfs-event: %lld (%s %s)\nactor: %s:%s\nreason: %s\n",
		 model,
		 json_string_value(json_object_get(ann, "modelfs.io/current"))
			 ? json_string_value(json_object_get(ann, "modelfs.io/current"))
			 : "none",
		 json_string_value(json_object_get(ann, "modelfs.io/canary"))
			 ? json_string_value(json_object_get(ann, "modelfs.io/canary"))
			 : "none",
		 (long long)json_integer_value(json_object_get(event, "id")), kind ? kind : "-",
		 alias, channel ? channel : "-", actor ? actor : "-", reason ? reason : "-");
	json_decref(isvc);
	rc = commit_manifest(g, path, text, len, msg, &made, err, sizeof(err));
	free(text);
	if (rc < 0)
		return cm_err_set(-EIO, "%s", err);
	if (made)
		cm_log(CM_LOG_INFO, "gitops", "committed %s for event %lld", path,
		       (long long)json_integer_value(json_object_get(event, "id")));
	return 0;
}

static int64_t run_once(struct sync_gitops *g)
{
	while (!g->stop) {
		struct reg_outbox_item *it = NULL;
		int64_t next = 0;
		int rc = reg_outbox_claim(g->st, g->sub, GO_LEASE_US, &it, &next);

		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "gitops", "%s", cm_err_msg());
			return cm_time_now_us() + 1000000;
		}
		if (rc == 0)
			return next;
		rc = deliver(g, it->event);
		if (rc == 0) {
			if (reg_outbox_complete(g->st, it, 0) < 0)
				cm_log(CM_LOG_ERROR, "gitops", "%s", cm_err_msg());
		} else {
			char why[CM_ERR_MAX];

			cm_strlcpy(why, cm_err_msg(), sizeof(why));
			cm_log(CM_LOG_WARN, "gitops", "event %lld attempt %lld: %s",
			       (long long)it->event_id, (long long)it->attempts + 1, why);
			if (reg_outbox_fail(g->st, it, 0, why) < 0)
				cm_log(CM_LOG_ERROR, "gitops", "%s", cm_err_msg());
		}
		reg_outbox_item_free(it);
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct sync_gitops *g = arg;

	git_libgit2_init();
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		int64_t wake = cm_time_now_us() + GO_IDLE_US, next;
		struct timespec until;

		g->kicked = 0;
		pthread_mutex_unlock(&g->mu);
		next = run_once(g);
		if (next && next < wake)
			wake = next;
		cm_time_deadline(wake - cm_time_now_us(), &until);
		pthread_mutex_lock(&g->mu);
		while (!g->stop && !g->kicked &&
		       pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&g->mu);
	git_libgit2_shutdown();
	return NULL;
}

static void observe(void *ctx)
{
	struct sync_gitops *g = ctx;

	pthread_mutex_lock(&g->mu);
	g->kicked = 1;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* The store's gitops subscriber for this repository: found, or added. */
static int sub_ensure(struct reg_store *st, const char *repo, int64_t *out)
{
	json_t *subs = NULL, *s, *kinds = NULL, *added = NULL;
	size_t i;
	int rc = reg_outbox_sub_list(st, "gitops", 0, 0, &subs);

	if (rc < 0)
		return rc;
	json_array_foreach(subs, i, s) {
		if (!strcmp(json_string_value(json_object_get(s, "target")), repo)) {
			*out = json_integer_value(json_object_get(s, "id"));
			json_decref(subs);
			return 0;
		}
	}
	json_decref(subs);
	kinds = json_pack("[s s]", "alias.set", "alias.delete");
	rc = reg_outbox_sub_add(st, &gitops_actor, "gitops", repo, NULL, kinds, NULL, &added);
	if (rc == 0)
		*out = json_integer_value(json_object_get(added, "id"));
	json_decref(kinds);
	json_decref(added);
	return rc;
}

int sync_gitops_start(struct reg_store *st, const struct sync_gitops_opts *o,
		      struct sync_gitops **out)
{
	struct sync_gitops *g;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc, err;

	rc = sync_gitops_path_check(o->path);
	if (rc < 0)
		return rc;
	g = calloc(1, sizeof(*g));
	if (!g)
		return cm_err_set(-ENOMEM, "out of memory");
	g->st = st;
	g->o = *o;
	rc = sub_ensure(st, o->repo, &g->sub);
	if (rc < 0) {
		free(g);
		return rc;
	}
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&g->thread, NULL, worker_main, g);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
		free(g);
		return cm_err_set(-err, "cannot start the GitOps worker: %s", strerror(err));
	}
	rc = reg_store_observer_add(st, observe, g);
	if (rc < 0) {
		sync_gitops_stop(g);
		return rc;
	}
	*out = g;
	return 0;
}

void sync_gitops_stop(struct sync_gitops *g)
{
	if (!g)
		return;
	reg_store_observer_remove(g->st, observe, g);
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
