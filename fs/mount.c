/* SPDX-License-Identifier: Apache-2.0 */
/* Mounting, serving and unmounting the FUSE view. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fs_i.h"

/* Every inode the kernel holds keeps an O_PATH fd: allow as many as the system lets us. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int add_arg(struct fuse_args *a, const char *s)
{
	if (fuse_opt_add_arg(a, s) < 0)
		return cm_err_set(-ENOMEM, "out of memory");
	return 0;
}

int fs_mount_open(struct reg_store *st, const struct fs_config *cfg, struct fs_mount **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fs_mount *m;
	char opts[512];
	int rc;

	if (!cfg->mountpoint || !cfg->mountpoint[0])
		return cm_err_set(-EINVAL, "no mount point given");
	if (access("/dev/fuse", R_OK | W_OK) < 0)
		return cm_err_set(-errno, "/dev/fuse is not usable: %s (is the fuse module loaded, "
				  "and is the container privileged?)", strerror(errno));
	m = calloc(1, sizeof(*m));
	if (!m)
		return cm_err_set(-ENOMEM, "out of memory");
	m->st = st;
	m->cfg = *cfg;
	pthread_mutex_init(&m->mu, NULL);
	m->store_fd = reg_store_fd(st);
	m->root.kind = FS_ROOT;
	m->root.nlookup = 1;
	m->root.fd = openat(m->store_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (m->root.fd < 0) {
		rc = cm_err_set(-errno, "opening the store: %s", strerror(errno));
		goto fail;
	}
	rc = fs_table_init(m);
	if (rc < 0)
		goto fail;
	raise_nofile();
	snprintf(opts, sizeof(opts), "default_permissions,fsname=modelfs,subtype=modelfs%s",
		 geteuid() == 0 ? ",allow_other" : "");
	rc = add_arg(&args, "modelfs");
	if (rc == 0)
		rc = add_arg(&args, "-o");
	if (rc == 0)
		rc = add_arg(&args, opts);
	if (rc == 0 && cfg->debug)
		rc = add_arg(&args, "-d");
	if (rc < 0)
		goto fail;
	m->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), m);
	if (!m->se) {
		rc = cm_err_set(-EINVAL, "libfuse refused the session options");
		goto fail;
	}
	if (fuse_set_signal_handlers(m->se) != 0) {
		rc = cm_err_set(-EIO, "cannot install signal handlers");
		goto fail;
	}
	if (fuse_session_mount(m->se, cfg->mountpoint) != 0) {
		rc = cm_err_set(-EIO, "cannot mount on '%s' (does it exist, and is it not already a "
				"mount point in use?)", cfg->mountpoint);
		goto fail;
	}
	m->mounted = 1;
	rc = fs_inval_start(m);
	if (rc < 0)
		goto fail;
	fuse_opt_free_args(&args);
	*out = m;
	return 0;
fail:
	fuse_opt_free_args(&args);
	fs_mount_close(m);
	return rc;
}

int fs_mount_run(struct fs_mount *m)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	int rc;

	if (!lc)
		return cm_err_set(-ENOMEM, "out of memory");
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, m->cfg.max_threads ? m->cfg.max_threads : 16);
	rc = fuse_session_loop_mt(m->se, lc);
	fuse_loop_cfg_destroy(lc);
	/* A signal ends the loop with its number; that is a clean stop. */
	return rc < 0 ? cm_err_set(rc, "the FUSE loop failed: %s", strerror(-rc)) : 0;
}

void fs_mount_stop(struct fs_mount *m)
{
	if (m && m->se)
		fuse_session_exit(m->se);
	/* Wake the loop: the reader threads are blocked on /dev/fuse. */
	if (m && m->se && m->mounted) {
		fuse_session_unmount(m->se);
		m->mounted = 0;
	}
}

void fs_mount_close(struct fs_mount *m)
{
	if (!m)
		return;
	fs_inval_stop(m);
	if (m->se) {
		if (m->mounted)
			fuse_session_unmount(m->se);
		fuse_remove_signal_handlers(m->se);
		fuse_session_destroy(m->se);
	}
	fs_files_free_all(m);
	fs_table_free(m);
	while (m->pending) {
		struct fs_inode *p = m->pending;

		m->pending = p->pnext;
		free(p->target);
		free(p);
	}
	if (m->root.fd >= 0)
		close(m->root.fd);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void fs_mount_stats(struct fs_mount *m, struct fs_stats *out)
{
	out->ops = atomic_load_explicit((_Atomic uint64_t *)&m->stats.ops, memory_order_relaxed);
	out->bytes_read =
		atomic_load_explicit((_Atomic uint64_t *)&m->stats.bytes_read, memory_order_relaxed);
	out->bytes_written = atomic_load_explicit((_Atomic uint64_t *)&m->stats.bytes_written,
						  memory_order_relaxed);
	out->errors = atomic_load_explicit((_Atomic uint64_t *)&m->stats.errors, memory_order_relaxed);
}
