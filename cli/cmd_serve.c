/* SPDX-License-Identifier: Apache-2.0 */
/*
 * modelfs serve: opens the store (taking its writer lock), mounts the FUSE
 * view when asked, serves the REST API, and runs until SIGINT/SIGTERM; then
 * stops the API, unmounts, checkpoints and closes the db and exits 0. SIGHUP
 * reloads what can change without a restart (the token file; git retries).
 * Under systemd (Type=notify) it reports READY=1, RELOADING=1 and STOPPING=1.
 * Configuration comes from one table (flags and MODELFS_* environment
 * variables), which also makes --help and --check-config.
 *
 * Threads and signals. SIGINT, SIGTERM, SIGHUP and FS_WAKE_SIGNAL are
 * blocked before any thread starts, so every thread inherits the mask; the
 * main thread alone reads the first three from a signalfd, and does every
 * start, reload and stop step itself. The mount's request loop runs on its
 * own thread (fs_mount_start), which takes FS_WAKE_SIGNAL only.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "cm.h"
#include "fs.h"
#include "modelfs_config.h"
#include "reg.h"
#include "sync.h"

struct serve_cfg {
	const char *store;
	const char *db;
	const char *mount;
	const char *ready_file;
	const char *log_level;
	const char *read_path;
	const char *listen;
	const char *token_file;
	const char *pvc;
	const char *namespace_;
	const char *runtime;
	long long admin_gid;
	long long fuse_threads;
	long long max_body;
	long long max_upload;
	long long http_memory;
	long long max_conns;
	long long per_ip_conns;
	long long idle_timeout;
	long long request_timeout;
	long long http_threads;
	long long cache_bytes;
	long long webhook_timeout;
	long long backoff_max;
	const char *webhooks_file;
	const char *gitops_repo;
	const char *gitops_branch;
	const char *gitops_path;
	const char *gitops_remote;
	int auth_reads;
	int insecure;
	int log_json;
	int fuse_debug;
	int show_archived;
	long long gc_interval;
	int check_config;
	int help;
	struct cli_git_opts git;
};

#define OPT(name, env, type, field, def, min, max, metavar, help) \
	{ name, env, type, offsetof(struct serve_cfg, field), def, min, max, metavar, help }

static const struct cm_opt serve_opts[] = {
	OPT("store", "MODELFS_STORE", CM_OPT_STRING, store, NULL, 0, 0, "DIR",
	    "the model volume (created and adopted if it is not a store yet)"),
	OPT("db", "MODELFS_DB", CM_OPT_STRING, db, NULL, 0, 0, "URL",
	    "keep the metadata in PostgreSQL (postgresql://... or a conninfo), not .modelfs/"),
	OPT("mount", "MODELFS_MOUNT", CM_OPT_STRING, mount, NULL, 0, 0, "DIR",
	    "mount the versioned view here"),
	OPT("ready-file", "MODELFS_READY_FILE", CM_OPT_STRING, ready_file, NULL, 0, 0, "FILE",
	    "write port=<n> here once everything is up"),
	OPT("listen", "MODELFS_LISTEN", CM_OPT_STRING, listen, "127.0.0.1:8080", 0, 0, "HOST:PORT",
	    "serve the REST API here (port 0 picks a free port, written to --ready-file)"),
	OPT("token-file", "MODELFS_TOKEN_FILE", CM_OPT_STRING, token_file, NULL, 0, 0, "FILE",
	    "bearer tokens, '<name> <role> <secret>' a line (roles: reader, writer, admin); "
	    "re-read on SIGHUP"),
	OPT("auth-reads", "MODELFS_AUTH_READS", CM_OPT_BOOL, auth_reads, "false", 0, 0, NULL,
	    "reads need a token too (reader role or above)"),
	OPT("insecure", "MODELFS_INSECURE", CM_OPT_BOOL, insecure, "false", 0, 0, NULL,
	    "allow a non-loopback --listen without --token-file"),
	OPT("pvc", "MODELFS_PVC", CM_OPT_STRING, pvc, "model-storage-pvc", 0, 0, "NAME",
	    "the volume's PVC, for rendered InferenceServices (storageUri pvc://NAME/...)"),
	OPT("namespace", "MODELFS_NAMESPACE", CM_OPT_STRING, namespace_, NULL, 0, 0, "NS",
	    "namespace of rendered InferenceServices"),
	OPT("runtime", "MODELFS_RUNTIME", CM_OPT_STRING, runtime, NULL, 0, 0, "NAME",
	    "KServe serving runtime of rendered InferenceServices"),
	OPT("max-body", "MODELFS_MAX_BODY", CM_OPT_INT, max_body, "1048576", 1024, 67108864, "BYTES",
	    "largest JSON request body (larger: 413)"),
	OPT("max-upload", "MODELFS_MAX_UPLOAD", CM_OPT_INT, max_upload, "0", 0, INT64_MAX, "BYTES",
	    "largest uploaded file, 0 for no limit (larger: 413)"),
	OPT("http-memory", "MODELFS_HTTP_MEMORY", CM_OPT_INT, http_memory, "32768", 8192, 16777216,
	    "BYTES", "memory per HTTP connection, which bounds request headers (larger: 431)"),
	OPT("max-connections", "MODELFS_MAX_CONNECTIONS", CM_OPT_INT, max_conns, "1024", 1, 65536,
	    "N", "HTTP connections at once"),
	OPT("per-ip-connections", "MODELFS_PER_IP_CONNECTIONS", CM_OPT_INT, per_ip_conns, "0", 0,
	    65536, "N", "HTTP connections at once from one address, 0 for no limit"),
	OPT("idle-timeout", "MODELFS_IDLE_TIMEOUT", CM_OPT_INT, idle_timeout, "60", 1, 86400, "SECONDS",
	    "close HTTP connections idle this long"),
	OPT("request-timeout", "MODELFS_REQUEST_TIMEOUT", CM_OPT_INT, request_timeout, "30", 1, 86400,
	    "SECONDS", "a JSON body must arrive within this time (else 408)"),
	OPT("http-threads", "MODELFS_HTTP_THREADS", CM_OPT_INT, http_threads, "0", 0, 1024, "N",
	    "0: a thread per HTTP connection; N: a pool of N event-loop threads"),
	OPT("response-cache", "MODELFS_RESPONSE_CACHE", CM_OPT_INT, cache_bytes, "16777216", 0,
	    1073741824, "BYTES", "memory for cached answers to model and sealed-version reads"),
	OPT("admin-group", "MODELFS_ADMIN_GROUP", CM_OPT_INT, admin_gid, "-1", -1, 4294967295LL,
	    "GID", "only this group (and root) may change current and canary through the mount, "
	    "and seal others' drafts; needs --token-file"),
	OPT("fuse-threads", "MODELFS_FUSE_THREADS", CM_OPT_INT, fuse_threads, "16", 1, 256, "N",
	    "FUSE worker threads"),
	OPT("read-path", "MODELFS_READ_PATH", CM_OPT_STRING, read_path, "auto", 0, 0, "PATH",
	    "sealed files: auto (kernel passthrough where offered, else splice), passthrough "
	    "(or refuse to start), splice"),
	OPT("git-repo", "MODELFS_GIT_REPO", CM_OPT_STRING, git.repo, NULL, 0, 0, "DIR",
	    "tag sealed versions (and, with --git-gto-tags, alias changes) in this git repository"),
	OPT("git-remote", "MODELFS_GIT_REMOTE", CM_OPT_STRING, git.remote, NULL, 0, 0, "NAME",
	    "push the tags to this remote of --git-repo"),
	OPT("git-gto-tags", "MODELFS_GIT_GTO_TAGS", CM_OPT_BOOL, git.gto, "false", 0, 0, NULL,
	    "also write GTO tags: {model}@v{semver}, {model}#{alias}#{n}, {model}#{alias}!#{n}"),
	OPT("git-tagger", "MODELFS_GIT_TAGGER", CM_OPT_STRING, git.tagger, NULL, 0, 0,
	    "'NAME <EMAIL>'", "who signs the tags (default modelfs <modelfs@localhost>)"),
	OPT("git-tag-format", "MODELFS_GIT_TAG_FORMAT", CM_OPT_STRING, git.tag_format, NULL, 0, 0,
	    "FORMAT", "version tag format (default " REG_GIT_TAG_FORMAT_DEFAULT ")"),
	OPT("git-token-file", "MODELFS_GIT_TOKEN_FILE", CM_OPT_STRING, git.token_file, NULL, 0, 0,
	    "FILE", "HTTPS token for --git-remote, 'TOKEN' or 'USER:TOKEN' (ssh uses ssh-agent)"),
	OPT("gitops-repo", "MODELFS_GITOPS_REPO", CM_OPT_STRING, gitops_repo, NULL, 0, 0, "DIR",
	    "commit each model's rendered InferenceService to this git repository when its "
	    "current or canary changes (modelfs's own clone; its working tree is not touched)"),
	OPT("gitops-branch", "MODELFS_GITOPS_BRANCH", CM_OPT_STRING, gitops_branch, "main", 0, 0,
	    "BRANCH", "the branch the manifests are committed to"),
	OPT("gitops-path", "MODELFS_GITOPS_PATH", CM_OPT_STRING, gitops_path,
	    "deploy/isvc/{model}.yaml", 0, 0, "PATH", "where each model's manifest goes"),
	OPT("gitops-remote", "MODELFS_GITOPS_REMOTE", CM_OPT_STRING, gitops_remote, NULL, 0, 0,
	    "NAME", "push the branch to this remote of --gitops-repo (fetched and rebuilt on "
	    "when it moved)"),
	OPT("webhooks-file", "MODELFS_WEBHOOKS_FILE", CM_OPT_STRING, webhooks_file, NULL, 0, 0,
	    "FILE", "webhook subscriptions to add at start: a JSON array of {\"url\", \"events\", "
	    "\"models\"?, \"secret\"} (those already there are kept)"),
	OPT("webhook-timeout", "MODELFS_WEBHOOK_TIMEOUT", CM_OPT_INT, webhook_timeout, "10000", 100,
	    600000, "MS", "one webhook delivery, connecting included"),
	OPT("outbox-backoff-max", "MODELFS_OUTBOX_BACKOFF_MAX", CM_OPT_INT, backoff_max, "60000", 100,
	    86400000, "MS", "the longest wait before a failed delivery is tried again"),
	OPT("log-level", "MODELFS_LOG_LEVEL", CM_OPT_STRING, log_level, "info", 0, 0, "LEVEL",
	    "debug, info, warn or error"),
	OPT("log-json", "MODELFS_LOG_JSON", CM_OPT_BOOL, log_json, "false", 0, 0, NULL,
	    "log one JSON object a line"),
	OPT("show-archived", "MODELFS_SHOW_ARCHIVED", CM_OPT_BOOL, show_archived, "false", 0, 0, NULL,
	    "list archived versions in the mount's ls of their model (by name they always open)"),
	OPT("gc-interval", "MODELFS_GC_INTERVAL", CM_OPT_INT, gc_interval, "0", 0, 31536000,
	    "SECONDS", "apply the models' retention policies this often; 0: only when asked"),
	OPT("fuse-debug", "MODELFS_FUSE_DEBUG", CM_OPT_BOOL, fuse_debug, "false", 0, 0, NULL,
	    "trace every FUSE request (libfuse -d)"),
	OPT("check-config", NULL, CM_OPT_BOOL, check_config, "false", 0, 0, NULL,
	    "print the effective configuration, check it, and exit"),
	OPT("help", NULL, CM_OPT_BOOL, help, "false", 0, 0, NULL, "print this help"),
};
#define N_OPTS (sizeof(serve_opts) / sizeof(serve_opts[0]))

static int level_parse(const char *s, enum cm_log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };

	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum cm_log_level)i;
			return 0;
		}
	}
	return cm_err_set(-EINVAL, "--log-level: '%s' is not debug, info, warn or error", s);
}

static int read_path_parse(const char *s, enum fs_read_path *out)
{
	static const char *const names[] = { "auto", "passthrough", "splice" };

	for (int i = 0; i < 3; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum fs_read_path)i;
			return 0;
		}
	}
	return cm_err_set(-EINVAL, "--read-path: '%s' is not auto, passthrough or splice", s);
}

static int check(const struct serve_cfg *c)
{
	enum fs_read_path rp;
	struct stat sb;

	if (!c->store)
		return cm_err_set(-EINVAL, "--store DIR is required");
	if (read_path_parse(c->read_path, &rp) < 0)
		return -EINVAL;
	if (stat(c->store, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return cm_err_set(-ENOENT, "--store: '%s' is not a directory", c->store);
	/* ENOTCONN: the dead mount of a killed daemon, detached when serve starts. */
	if (c->mount && (stat(c->mount, &sb) < 0 ? errno != ENOTCONN : !S_ISDIR(sb.st_mode)))
		return cm_err_set(-ENOENT, "--mount: '%s' is not a directory", c->mount);
	/*
	 * Without tokens every HTTP request is an admin: an admin group would
	 * limit the mount and leave the API open to the users it keeps out.
	 */
	if (c->admin_gid >= 0 && !(c->token_file && c->token_file[0]))
		return cm_err_set(-EINVAL, "--admin-group limits who may change current and canary, "
				  "but without --token-file every HTTP request may: give a token "
				  "file too");
	return 0;
}

/* Atomically, so a waiting script never reads half a line. */
static int ready_write(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return cm_err_set(-errno, "--ready-file: %s: %s", tmp, strerror(errno));
	fprintf(f, "port=%d\n", port);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		unlink(tmp);
		return cm_err_set(-EIO, "--ready-file: writing %s failed", tmp);
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		int rc = cm_err_set(-errno, "--ready-file: %s: %s", path, strerror(errno));

		unlink(tmp);
		return rc;
	}
	return 0;
}

static void serve_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

/*
 * The registry has one change hook; serve shares it out: the mount drops
 * kernel caches for changes made elsewhere, the API drops cached answers.
 * Promotions, rollbacks and refusals are counted by the API from the event
 * log itself (so changes from every channel count, and counts survive
 * restarts), not here.
 */
struct hook_fanout {
	struct fs_mount *mount;
	struct api_server *api;
};

static void hook_dispatch(void *ctx, const struct reg_change *c)
{
	struct hook_fanout *h = ctx;

	if (h->mount)
		fs_on_change(h->mount, c);
	if (h->api)
		api_on_change(h->api, c);
}

static void fs_stats_get(void *ctx, struct api_fs_stats *out)
{
	struct fs_stats st;

	fs_mount_stats(ctx, &st);
	out->ops = st.ops;
	out->bytes_read = st.bytes_read;
	out->passthrough_opens = st.passthrough_opens;
	out->passthrough = st.passthrough;
	out->bytes_written = st.bytes_written;
	out->errors = st.errors;
}

static void api_config_from(const struct serve_cfg *c, struct fs_mount *m, struct api_config *ac)
{
	api_config_default(ac);
	ac->listen = c->listen;
	ac->token_file = c->token_file;
	ac->auth_reads = c->auth_reads;
	ac->insecure = c->insecure;
	ac->pvc = c->pvc;
	ac->namespace_ = c->namespace_;
	ac->runtime = c->runtime;
	ac->max_body = (size_t)c->max_body;
	ac->max_upload = (uint64_t)c->max_upload;
	ac->conn_memory = (size_t)c->http_memory;
	ac->max_conns = (unsigned)c->max_conns;
	ac->per_ip_conns = (unsigned)c->per_ip_conns;
	ac->idle_timeout = (unsigned)c->idle_timeout;
	ac->request_timeout = (unsigned)c->request_timeout;
	ac->threads = (unsigned)c->http_threads;
	ac->cache_bytes = (size_t)c->cache_bytes;
	ac->fs_stats = m ? fs_stats_get : NULL;
	ac->fs_stats_ctx = m;
}

static const char *nonempty(const char *s)
{
	return s && s[0] ? s : NULL;
}

/* What the main loop, reload and stop need. */
struct serve_run {
	const struct serve_cfg *c;
	struct reg_store *st;
	struct fs_mount *m;
	struct api_server *api;
	struct reg_git_worker *git;
	struct cli_gc_worker *gc;
	struct sync_webhooks *webhooks;
	struct sync_gitops *gitops;
	char notify[256];    /* $NOTIFY_SOCKET, taken out of the environment; "" without */
	int notify_failed;   /* a failure is logged once */
	int ended_fd;        /* eventfd: the mount's loop ended */
	int ntokens;         /* tokens in use, for STATUS= */
};

static const struct reg_actor serve_actor = { .channel = "cli", .name = "serve" };

/*
 * $NOTIFY_SOCKET is read once and removed from the environment, as
 * sd_notify(3) advises, so that programs serve starts (fusermount3) do not
 * talk to the service manager in its name.
 */
static void notify_init(struct serve_run *r)
{
	const char *s = getenv("NOTIFY_SOCKET");

	if (!s || !s[0])
		return;
	if (cm_strlcpy(r->notify, s, sizeof(r->notify)) < 0) {
		cm_log(CM_LOG_WARN, "serve", "NOTIFY_SOCKET is too long; not notifying");
		r->notify[0] = '\0';
	}
	unsetenv("NOTIFY_SOCKET");
}

static void notify(struct serve_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notify(struct serve_run *r, const char *fmt, ...)
{
	char msg[CM_NOTIFY_MAX];
	va_list ap;
	int rc;

	if (!r->notify[0])
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap); /* a long STATUS is cut, not dropped */
	va_end(ap);
	rc = cm_notify_send(r->notify, msg);
	if (rc < 0 && !r->notify_failed) {
		r->notify_failed = 1;
		cm_log(CM_LOG_WARN, "serve", "cannot notify the service manager: %s",
		       cm_err_describe(rc));
	}
}

/* READY=1 with the pid and what is served, plus `extra` (may be ""). */
static void notify_ready(struct serve_run *r, const char *extra)
{
	notify(r, "READY=1\nMAINPID=%ld\nSTATUS=serving store=%s mount=%s api=%s port=%d%s",
	       (long)getpid(), r->c->store, r->c->mount ? r->c->mount : "-", r->c->listen,
	       api_server_port(r->api), extra);
}

/*
 * SIGHUP. Options come from the command line and the environment, which a
 * running process cannot be given again, so reload is what can change under
 * it: the token file (credential rotation, without dropping the mount or
 * connections) and the git queue (failed tags queued again, the worker run
 * at once past its backoff, e.g. after the repository or its credentials
 * were fixed). A bad token file keeps the tokens in use.
 */
static void reload(struct serve_run *r)
{
	char extra[CM_ERR_MAX + 64] = "";
	int64_t requeued = 0;
	int rc;

	notify(r, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	       (unsigned long long)cm_notify_monotonic_usec());
	cm_log(CM_LOG_INFO, "serve", "SIGHUP: reloading");
	if (r->c->token_file && r->c->token_file[0]) {
		rc = api_server_tokens_reload(r->api);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "reload: %s; the %d tokens in use stay",
			       cm_err_describe(rc), r->ntokens);
			snprintf(extra, sizeof(extra), "; reload failed, old tokens kept: %s",
				 cm_err_describe(rc));
		} else {
			r->ntokens = rc;
			cm_log(CM_LOG_INFO, "serve", "reload: %d token%s from %s", rc,
			       rc == 1 ? "" : "s", r->c->token_file);
		}
	} else {
		cm_log(CM_LOG_INFO, "serve", "reload: no --token-file to read");
	}
	if (r->git) {
		rc = reg_git_retry(r->st, &serve_actor, 0, &requeued);
		if (rc < 0)
			cm_log(CM_LOG_ERROR, "serve", "reload: git: %s", cm_err_describe(rc));
		reg_git_worker_wake(r->git, REG_GIT_RUN_NOW);
		cm_log(CM_LOG_INFO, "serve", "reload: git: %lld failed tag%s queued again; the queue "
		       "runs now, past its backoff", (long long)requeued, requeued == 1 ? "" : "s");
	}
	notify_ready(r, extra);
}

/* On the mount's loop thread, when the loop ends: wakes the main loop. */
static void mount_ended(void *ctx)
{
	struct serve_run *r = ctx;
	uint64_t one = 1;

	/* An eventfd write of 1 fails only on counter overflow, which one write cannot reach. */
	(void)!write(r->ended_fd, &one, sizeof(one));
}

/*
 * Until SIGINT or SIGTERM, or until the mount goes away: SIGHUP reloads.
 * Returns 0 for a stop, -errno when waiting itself failed.
 */
static int serve_wait(struct serve_run *r, int sfd)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
				       { .fd = r->ended_fd, .events = POLLIN } };
		struct signalfd_siginfo si;
		ssize_t n;

		int pr = poll(p, 2, 30000);

		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return cm_err_set(-errno, "poll: %s", strerror(errno));
		}
		if (pr == 0) {
			/* Every 30 s: the retraining triggers' weekly schedules. */
			if (reg_trigger_tick(r->st, cm_time_now_us()) < 0)
				cm_log(CM_LOG_ERROR, "serve", "retraining schedule: %s", cm_err_msg());
			continue;
		}
		if (p[1].revents) {
			cm_log(CM_LOG_WARN, "serve", "the mount at %s went away: stopping", r->c->mount);
			return 0;
		}
		n = read(sfd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			reload(r);
			continue;
		}
		cm_log(CM_LOG_INFO, "serve", "signal %u from pid %u: stopping", si.ssi_signo,
		       si.ssi_pid);
		return 0;
	}
}

int cli_serve(int argc, char **argv)
{
	struct serve_cfg c = { 0 };
	struct serve_run r = { .c = &c, .ended_fd = -1 };
	struct hook_fanout fan = { 0 };
	struct api_config ac;
	sigset_t sigs;
	enum cm_log_level level = CM_LOG_INFO;
	int sfd = -1, ready = 0;
	int rc;

	rc = cm_config_parse(serve_opts, N_OPTS, &c, argc, argv);
	if (rc == 0)
		rc = level_parse(c.log_level, &level);
	if (rc < 0) {
		fprintf(stderr, "modelfs serve: %s\n", cm_err_msg());
		return CLI_ERROR;
	}
	if (c.help) {
		printf("usage: modelfs serve --store DIR [--mount DIR] [--listen HOST:PORT] [options]\n\n"
		       "Serves the store: the versioned mount (with --mount) and the REST API.\n"
		       "Every option also reads from its environment variable.\n\n");
		cm_config_help(serve_opts, N_OPTS, stdout);
		return CLI_OK;
	}
	rc = check(&c);
	if (rc == 0) {
		api_config_from(&c, NULL, &ac);
		rc = api_config_check(&ac);
	}
	if (c.check_config) {
		cm_config_dump(serve_opts, N_OPTS, &c, stdout);
		if (rc < 0)
			fprintf(stderr, "modelfs serve: %s\n", cm_err_msg());
		return rc < 0 ? CLI_ERROR : CLI_OK;
	}
	if (rc < 0) {
		fprintf(stderr, "modelfs serve: %s\n", cm_err_msg());
		return CLI_ERROR;
	}
	cm_log_setup(level, c.log_json);
	cli_test_hooks_install();
	notify_init(&r);
	/*
	 * Before any thread exists: every thread serve starts (the mount's, the
	 * API's, workers) inherits this mask, so SIGINT/SIGTERM/SIGHUP reach only
	 * the main thread's signalfd, and FS_WAKE_SIGNAL only the mount's loop.
	 */
	signal(SIGPIPE, SIG_IGN);
	serve_signals(&sigs);
	sigaddset(&sigs, FS_WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sigdelset(&sigs, FS_WAKE_SIGNAL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	r.ended_fd = eventfd(0, EFD_CLOEXEC);
	if (sfd < 0 || r.ended_fd < 0) {
		int e = errno;

		cm_log(CM_LOG_ERROR, "serve", "signalfd/eventfd: %s", strerror(e));
		rc = -e;
		goto done;
	}
	rc = reg_db_set(c.db);
	if (rc == 0)
		rc = reg_store_open(c.store, REG_OPEN_CREATE | REG_OPEN_LOCK, &r.st);
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "serve", "cannot open store %s: %s", c.store, cm_err_describe(rc));
		goto done;
	}
	reg_store_set_admin_group(r.st, c.admin_gid);
	if (c.mount) {
		struct fs_config fc = { .mountpoint = c.mount, .admin_gid = c.admin_gid,
					.max_threads = (unsigned)c.fuse_threads, .debug = c.fuse_debug,
					.show_archived = c.show_archived };

		read_path_parse(c.read_path, &fc.read_path); /* checked by check() */

		/* After the store lock: no live modelfs of this store can be behind it. */
		rc = fs_mount_detach_stale(c.mount);
		if (rc > 0)
			cm_log(CM_LOG_WARN, "serve", "%s was the dead mount of a modelfs that did not "
			       "stop cleanly: detached it", c.mount);
		if (rc >= 0)
			rc = fs_mount_open(r.st, &fc, &r.m);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "cannot mount %s: %s", c.mount, cm_err_describe(rc));
			goto done;
		}
	}
	api_config_from(&c, r.m, &ac);
	rc = api_server_new(r.st, &ac, &r.api);
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "serve", "cannot serve the API: %s", cm_err_msg());
		goto done;
	}
	r.ntokens = api_server_tokens_count(r.api);
	/* Before any thread can change the store: the hook is read without a lock. */
	fan.mount = r.m;
	fan.api = r.api;
	reg_store_set_hook(r.st, hook_dispatch, &fan);
	/* PostgreSQL: other nodes' changes reach this node's mount and API (no-op on SQLite). */
	rc = reg_follow_start(r.st);
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
		goto done;
	}
	/* Git sync: configuration, read-back and the tag worker (a missing repo is only logged). */
	rc = cli_git_serve_start(r.st, &c.git, &r.git);
	if (rc < 0)
		goto done;
	/* The outbox's webhook deliveries (the registry queues them whether or not this runs). */
	reg_outbox_backoff_set(r.st, c.backoff_max * 1000);
	if (c.webhooks_file && c.webhooks_file[0]) {
		rc = sync_webhooks_load(r.st, c.webhooks_file);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "webhook", "%s", cm_err_msg());
			goto done;
		}
		cm_log(CM_LOG_INFO, "webhook", "%d subscription%s added from %s", rc,
		       rc == 1 ? "" : "s", c.webhooks_file);
	}
	{
		struct sync_webhook_opts wo = { .timeout_ms = c.webhook_timeout };

		rc = sync_webhooks_start(r.st, &wo, &r.webhooks);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "webhook", "%s", cm_err_msg());
			goto done;
		}
	}
	if (c.gitops_repo && c.gitops_repo[0]) {
		struct sync_gitops_opts go = {
			.repo = c.gitops_repo, .branch = c.gitops_branch, .path = c.gitops_path,
			.remote = c.gitops_remote && c.gitops_remote[0] ? c.gitops_remote : NULL,
			/* As GET .../inferenceservice renders without query parameters. */
			.isvc = { .pvc = nonempty(c.pvc), .namespace_ = nonempty(c.namespace_),
				  .runtime = nonempty(c.runtime) },
		};

		rc = sync_gitops_start(r.st, &go, &r.gitops);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "gitops", "%s", cm_err_msg());
			goto done;
		}
		cm_log(CM_LOG_INFO, "gitops", "manifests: repo=%s branch=%s path=%s remote=%s",
		       go.repo, go.branch, go.path, go.remote ? go.remote : "-");
	}
	rc = api_server_start(r.api);
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "serve", "cannot serve the API: %s", cm_err_msg());
		goto done;
	}
	if (c.gc_interval > 0) {
		rc = cli_gc_worker_start(r.st, c.gc_interval, &r.gc);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			goto done;
		}
	}
	if (r.m) {
		struct stat sb;

		rc = fs_mount_start(r.m, mount_ended, &r);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			goto done;
		}
		/* Answered by the loop: the kernel's FUSE_INIT is done and the mount serves. */
		if (stat(c.mount, &sb) < 0) {
			int e = errno;

			rc = cm_err_set(-e, "the mount at %s does not answer: %s", c.mount, strerror(e));
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			goto done;
		}
		rc = fs_mount_read_path_check(r.m);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			goto done;
		}
	}
	cm_log(CM_LOG_INFO, "serve", "modelfs %s serving store=%s mount=%s api=%s port=%d pid=%ld",
	       MODELFS_VERSION, c.store, c.mount ? c.mount : "-", c.listen, api_server_port(r.api),
	       (long)getpid());
	if (c.ready_file) {
		rc = ready_write(c.ready_file, api_server_port(r.api));
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			goto done;
		}
	}
	/* The store is open, the mount is up and its loop runs, the API listens. */
	notify_ready(&r, "");
	ready = 1;
	rc = serve_wait(&r, sfd);
	if (rc < 0)
		cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
done:
	if (ready)
		notify(&r, "STOPPING=1\nSTATUS=stopping");
	else if (rc < 0)
		notify(&r, "STATUS=failed to start: %s", cm_err_describe(rc));
	/*
	 * Every thread that can change the store calls the change hook, which
	 * reaches the mount and the API. A change made over HTTP or by git waits
	 * in the hook until the kernel dropped its cached entries, which needs
	 * the mount's loop to answer the requests holding the directory locks:
	 * so the API (its requests in flight finish) and the git worker stop
	 * while the loop still runs, then the loop (the mount stays, so kernel
	 * requests wait instead of failing), and only then is anything freed.
	 */
	api_server_stop(r.api);
	cli_gc_worker_stop(r.gc);
	reg_git_worker_stop(r.git);
	reg_follow_stop(r.st);
	sync_webhooks_stop(r.webhooks);
	sync_gitops_stop(r.gitops);
	if (r.m) {
		int lrc = fs_mount_end(r.m);

		if (lrc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			rc = lrc;
		}
	}
	if (r.st)
		reg_store_set_hook(r.st, NULL, NULL);
	api_server_free(r.api);
	fs_mount_close(r.m);
	reg_store_close(r.st);
	if (sfd >= 0)
		close(sfd);
	if (r.ended_fd >= 0)
		close(r.ended_fd);
	cm_log(CM_LOG_INFO, "serve", "stopped");
	return rc < 0 ? CLI_ERROR : CLI_OK;
}
