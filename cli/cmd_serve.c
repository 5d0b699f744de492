/* SPDX-License-Identifier: Apache-2.0 */
/*
 * modelfs serve: opens the store (taking its writer lock), mounts the FUSE
 * view when asked, serves the REST API, and runs until SIGINT/SIGTERM; then
 * stops the API, unmounts, checkpoints and closes the db and exits 0.
 * Configuration comes from one table (flags and MODELFS_* environment
 * variables), which also makes --help and --check-config.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "cm.h"
#include "fs.h"
#include "modelfs_config.h"
#include "reg.h"

struct serve_cfg {
	const char *store;
	const char *mount;
	const char *ready_file;
	const char *log_level;
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
	int auth_reads;
	int insecure;
	int log_json;
	int fuse_debug;
	int check_config;
	int help;
	struct cli_git_opts git;
};

#define OPT(name, env, type, field, def, min, max, metavar, help) \
	{ name, env, type, offsetof(struct serve_cfg, field), def, min, max, metavar, help }

static const struct cm_opt serve_opts[] = {
	OPT("store", "MODELFS_STORE", CM_OPT_STRING, store, NULL, 0, 0, "DIR",
	    "the model volume (created and adopted if it is not a store yet)"),
	OPT("mount", "MODELFS_MOUNT", CM_OPT_STRING, mount, NULL, 0, 0, "DIR",
	    "mount the versioned view here"),
	OPT("ready-file", "MODELFS_READY_FILE", CM_OPT_STRING, ready_file, NULL, 0, 0, "FILE",
	    "write port=<n> here once everything is up"),
	OPT("listen", "MODELFS_LISTEN", CM_OPT_STRING, listen, "127.0.0.1:8080", 0, 0, "HOST:PORT",
	    "serve the REST API here (port 0 picks a free port, written to --ready-file)"),
	OPT("token-file", "MODELFS_TOKEN_FILE", CM_OPT_STRING, token_file, NULL, 0, 0, "FILE",
	    "bearer tokens, '<name> <role> <secret>' a line (roles: reader, writer, admin)"),
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
	    "GID", "only this group (and root) may change current and canary through the mount"),
	OPT("fuse-threads", "MODELFS_FUSE_THREADS", CM_OPT_INT, fuse_threads, "16", 1, 256, "N",
	    "FUSE worker threads"),
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
	OPT("log-level", "MODELFS_LOG_LEVEL", CM_OPT_STRING, log_level, "info", 0, 0, "LEVEL",
	    "debug, info, warn or error"),
	OPT("log-json", "MODELFS_LOG_JSON", CM_OPT_BOOL, log_json, "false", 0, 0, NULL,
	    "log one JSON object a line"),
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

static int check(const struct serve_cfg *c)
{
	struct stat sb;

	if (!c->store)
		return cm_err_set(-EINVAL, "--store DIR is required");
	if (stat(c->store, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return cm_err_set(-ENOENT, "--store: '%s' is not a directory", c->store);
	if (c->mount && (stat(c->mount, &sb) < 0 || !S_ISDIR(sb.st_mode)))
		return cm_err_set(-ENOENT, "--mount: '%s' is not a directory", c->mount);
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
		unlink(tmp);
		return cm_err_set(-errno, "--ready-file: %s: %s", path, strerror(errno));
	}
	return 0;
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

/* Without a mount there is no FUSE loop to stop on signals: wait for one here. */
static void wait_for_signal(void)
{
	sigset_t set;
	int sig = 0;

	stop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigwait(&set, &sig);
	cm_log(CM_LOG_INFO, "serve", "signal %d: stopping", sig);
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

int cli_serve(int argc, char **argv)
{
	struct serve_cfg c = { 0 };
	struct reg_store *st = NULL;
	struct fs_mount *m = NULL;
	struct api_server *api = NULL;
	struct hook_fanout fan = { 0 };
	struct reg_git_worker *git = NULL;
	struct api_config ac;
	sigset_t stop, old;
	enum cm_log_level level = CM_LOG_INFO;
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
	/*
	 * Before any thread exists: every thread serve starts (the mount's, the
	 * API's, workers) inherits this mask, so SIGINT/SIGTERM/SIGHUP reach only
	 * the main thread, which waits for them with sigwait() or, with a mount,
	 * lets libfuse's handler end the FUSE loop.
	 */
	signal(SIGPIPE, SIG_IGN);
	stop_signals(&stop);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	rc = reg_store_open(c.store, REG_OPEN_CREATE | REG_OPEN_LOCK, &st);
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "serve", "cannot open store %s: %s", c.store, cm_err_describe(rc));
		return CLI_ERROR;
	}
	if (c.mount) {
		struct fs_config fc = { .mountpoint = c.mount, .admin_gid = c.admin_gid,
					.max_threads = (unsigned)c.fuse_threads, .debug = c.fuse_debug };

		rc = fs_mount_open(st, &fc, &m);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "cannot mount %s: %s", c.mount, cm_err_describe(rc));
			goto done;
		}
	}
	api_config_from(&c, m, &ac);
	rc = api_server_new(st, &ac, &api);
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "serve", "cannot serve the API: %s", cm_err_msg());
		goto done;
	}
	/* Before any thread can change the store: the hook is read without a lock. */
	fan.mount = m;
	fan.api = api;
	reg_store_set_hook(st, hook_dispatch, &fan);
	/* Git sync: configuration, read-back and the tag worker (a missing repo is only logged). */
	rc = cli_git_serve_start(st, &c.git, &git);
	if (rc < 0)
		goto done;
	rc = api_server_start(api);
	if (rc < 0) {
		cm_log(CM_LOG_ERROR, "serve", "cannot serve the API: %s", cm_err_msg());
		goto done;
	}
	cm_log(CM_LOG_INFO, "serve", "modelfs %s serving store=%s mount=%s api=%s port=%d pid=%ld",
	       MODELFS_VERSION, c.store, c.mount ? c.mount : "-", c.listen, api_server_port(api),
	       (long)getpid());
	if (c.ready_file) {
		rc = ready_write(c.ready_file, api_server_port(api));
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			goto done;
		}
	}
	if (m) {
		pthread_sigmask(SIG_SETMASK, &old, NULL); /* libfuse's handlers take them now */
		rc = fs_mount_run(m);
		if (rc < 0)
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
	} else {
		wait_for_signal();
	}
done:
	/* The API first: its requests may still be changing the store. */
	api_server_free(api);
	reg_git_worker_stop(git);
	reg_store_set_hook(st, NULL, NULL);
	fs_mount_close(m);
	reg_store_close(st);
	cm_log(CM_LOG_INFO, "serve", "stopped");
	return rc < 0 ? CLI_ERROR : CLI_OK;
}
