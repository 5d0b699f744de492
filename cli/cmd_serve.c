/* SPDX-License-Identifier: Apache-2.0 */
/*
 * modelfs serve: opens the store (taking its writer lock), mounts the FUSE
 * view, and runs until SIGINT/SIGTERM; then unmounts, checkpoints and closes
 * the db and exits 0. Configuration comes from one table (flags and
 * MODELFS_* environment variables), which also makes --help and
 * --check-config.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	long long admin_gid;
	long long fuse_threads;
	int log_json;
	int fuse_debug;
	int check_config;
	int help;
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
	OPT("admin-group", "MODELFS_ADMIN_GROUP", CM_OPT_INT, admin_gid, "-1", -1, 4294967295LL,
	    "GID", "only this group (and root) may change current and canary through the mount"),
	OPT("fuse-threads", "MODELFS_FUSE_THREADS", CM_OPT_INT, fuse_threads, "16", 1, 256, "N",
	    "FUSE worker threads"),
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

/* Without a mount there is no FUSE loop to stop on signals: wait for one here. */
static void wait_for_signal(void)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigwait(&set, &sig);
	cm_log(CM_LOG_INFO, "serve", "signal %d: stopping", sig);
}

int cli_serve(int argc, char **argv)
{
	struct serve_cfg c = { 0 };
	struct reg_store *st = NULL;
	struct fs_mount *m = NULL;
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
		printf("usage: modelfs serve --store DIR [--mount DIR] [options]\n\n");
		cm_config_help(serve_opts, N_OPTS, stdout);
		return CLI_OK;
	}
	rc = check(&c);
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
		reg_store_set_hook(st, fs_on_change, m);
	}
	cm_log(CM_LOG_INFO, "serve", "modelfs %s serving store=%s mount=%s pid=%ld", MODELFS_VERSION,
	       c.store, c.mount ? c.mount : "-", (long)getpid());
	if (c.ready_file) {
		rc = ready_write(c.ready_file, 0);
		if (rc < 0) {
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
			goto done;
		}
	}
	if (m) {
		rc = fs_mount_run(m);
		if (rc < 0)
			cm_log(CM_LOG_ERROR, "serve", "%s", cm_err_msg());
	} else {
		wait_for_signal();
	}
done:
	reg_store_set_hook(st, NULL, NULL);
	fs_mount_close(m);
	reg_store_close(st);
	cm_log(CM_LOG_INFO, "serve", "stopped");
	return rc < 0 ? CLI_ERROR : CLI_OK;
}
