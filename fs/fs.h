/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs: the FUSE view of a store (libfuse3 low-level API). Each POSIX call
 * becomes one registry call; reads of version files are answered with the
 * backing file descriptor so the kernel splices them.
 */
#ifndef MODELFS_FS_H
#define MODELFS_FS_H

#include <stdint.h>

#include "reg.h"

struct fs_config {
	const char *mountpoint;
	long long admin_gid;   /* -1: anyone may change protected aliases */
	unsigned max_threads;  /* FUSE worker threads */
	int debug;             /* libfuse request tracing */
};

struct fs_mount;

/* Counters for /metrics; read without locks (monotonic). */
struct fs_stats {
	uint64_t ops;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t errors;
};

/*
 * Mounts the store at cfg->mountpoint. Returns 0 and *out, or -errno with a
 * message (mount point missing, not empty-able, /dev/fuse unavailable).
 * Installs libfuse's SIGINT/SIGTERM/SIGHUP handlers, which end fs_mount_run().
 */
int fs_mount_open(struct reg_store *st, const struct fs_config *cfg, struct fs_mount **out);
/* Serves requests until the file system is unmounted or a signal arrives. */
int fs_mount_run(struct fs_mount *m);
/* Ends fs_mount_run() from another thread. */
void fs_mount_stop(struct fs_mount *m);
/* Unmounts and frees. Accepts NULL. */
void fs_mount_close(struct fs_mount *m);
void fs_mount_stats(struct fs_mount *m, struct fs_stats *out);

/*
 * The registry's change hook: queues kernel cache invalidations for changes
 * made by other channels (HTTP, git), so a promotion is visible through the
 * mount at once. Safe from any thread; never blocks on the kernel.
 */
void fs_on_change(void *ctx, const struct reg_change *c);

#endif
