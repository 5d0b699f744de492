/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs: the FUSE view of a store (libfuse3 low-level API). Each POSIX call
 * becomes one registry call. Sealed files are opened in kernel passthrough
 * mode where the kernel and libfuse offer it (the kernel reads the backing
 * file itself); other reads are answered with the backing file descriptor so
 * the kernel splices them.
 */
#ifndef MODELFS_FS_H
#define MODELFS_FS_H

#include <signal.h>
#include <stdint.h>

#include "reg.h"

/* How sealed files are read (serve --read-path). */
enum fs_read_path {
	FS_READ_AUTO,        /* passthrough where possible, else splice (logged) */
	FS_READ_PASSTHROUGH, /* passthrough or refuse to serve (fs_mount_read_path_check) */
	FS_READ_SPLICE,      /* the splice path for every file */
};

struct fs_config {
	const char *mountpoint;
	enum fs_read_path read_path;
	long long admin_gid;   /* -1: anyone may change protected aliases */
	unsigned max_threads;  /* FUSE worker threads */
	int debug;             /* libfuse request tracing */
	int show_archived;     /* list archived versions in `ls` of their model (always reachable by name) */
};

struct fs_mount;

/* Counters for /metrics; read without locks (monotonic). */
struct fs_stats {
	uint64_t ops;
	/* Bytes the daemon served; reads of passthrough opens never reach it and are not counted. */
	uint64_t bytes_read;
	uint64_t passthrough_opens; /* opens answered in passthrough mode */
	int passthrough;            /* 1: sealed files are opened in passthrough mode */
	uint64_t bytes_written;
	uint64_t errors;
};

/*
 * Mounts the store at cfg->mountpoint. Returns 0 and *out, or -errno with a
 * message (mount point missing, not empty-able, /dev/fuse unavailable).
 * Installs no signal handlers: signals belong to the caller. Requests are
 * served once fs_mount_start() runs the loop.
 */
int fs_mount_open(struct reg_store *st, const struct fs_config *cfg, struct fs_mount **out);

/*
 * fs_mount_start() runs the request loop on a thread of its own;
 * fs_mount_end() leaves it and waits for it, keeping the mount until
 * fs_mount_close(), so requests that arrive meanwhile wait in the kernel
 * instead of failing. The loop thread takes FS_WAKE_SIGNAL (a handler that
 * does nothing is installed for it; other threads should keep it blocked)
 * and no other signal. `on_end` (may be NULL) is called on the loop thread
 * when the loop ends, also when the mount is taken away from outside
 * (fusermount3 -u), so the caller can notice. fs_mount_start returns 0 or
 * -errno; fs_mount_end returns the loop's result (0, or -errno with its
 * message) and accepts NULL or a mount whose loop never started. Both from
 * one controlling thread.
 */
#define FS_WAKE_SIGNAL SIGUSR2
int fs_mount_start(struct fs_mount *m, void (*on_end)(void *ctx), void *ctx);
int fs_mount_end(struct fs_mount *m);
/* Ends the loop (fs_mount_end), unmounts and frees. Accepts NULL. */
void fs_mount_close(struct fs_mount *m);
void fs_mount_stats(struct fs_mount *m, struct fs_stats *out);

/*
 * After fs_mount_start() and a first request answered (the kernel's INIT is
 * done): 0 when the read path in effect is one the configuration allows,
 * -ENOTSUP with the reason when --read-path passthrough was asked for and
 * the kernel, libfuse or the daemon's capabilities do not allow it.
 */
int fs_mount_read_path_check(struct fs_mount *m);

/*
 * A daemon killed with SIGKILL leaves its mount behind with nobody serving
 * it: stat() on it fails with ENOTCONN and nothing can be mounted there.
 * When `mountpoint` is such a dead modelfs mount (fuse.modelfs in
 * /proc/self/mountinfo), detaches it lazily (umount2 MNT_DETACH as root,
 * fusermount3 -u -z otherwise) so a restart can mount again; every dead
 * modelfs mount stacked there goes, and a mount counts as dead when statfs
 * (never answered from the kernel's caches) says ENOTCONN. Call with the
 * store lock held. Returns 1 when dead mounts were detached, 0 when there
 * were none, -errno with a message when it cannot be (-EBUSY for a dead mount
 * of another file system, which is left alone, or a live modelfs of another
 * store). Never logs.
 */
int fs_mount_detach_stale(const char *mountpoint);

/*
 * The registry's change hook: queues kernel cache invalidations for changes
 * made by other channels (HTTP, git), so a promotion is visible through the
 * mount at once. Safe from any thread; never blocks on the kernel.
 */
void fs_on_change(void *ctx, const struct reg_change *c);

#endif
