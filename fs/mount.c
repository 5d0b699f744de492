/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mounting, serving and unmounting the FUSE view, and clearing the dead mount
 * a killed daemon leaves behind. Signals are the caller's: no libfuse signal
 * handlers are installed, so SIGHUP can mean "reload" to the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
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

#ifdef FS_HAVE_PASSTHROUGH
/* CAP_SYS_ADMIN in the effective set: the kernel asks it of whoever registers a backing file. */
static int have_sys_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}
#endif

/*
 * What rules passthrough out before the kernel is asked (fs_init asks it):
 * the configuration, the libfuse modelfs was built against, the daemon's
 * capabilities. Leaves m->pt_off empty when nothing does.
 */
static void read_path_prepare(struct fs_mount *m)
{
	m->pt_off[0] = '\0';
	if (m->cfg.read_path == FS_READ_SPLICE) {
		snprintf(m->pt_off, sizeof(m->pt_off), "--read-path splice");
		return;
	}
#ifndef FS_HAVE_PASSTHROUGH
	snprintf(m->pt_off, sizeof(m->pt_off), "modelfs was built against libfuse %s, which lacks "
		 "passthrough (3.17 has it)", fuse_pkgversion());
#else
	if (!have_sys_admin())
		snprintf(m->pt_off, sizeof(m->pt_off), "the daemon lacks CAP_SYS_ADMIN, which the "
			 "kernel requires to register backing files");
#endif
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
	pthread_mutex_init(&m->bmu, NULL);
	read_path_prepare(m);
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

/* Serves requests until fs_mount_end() or an unmount from outside. */
static int loop_run(struct fs_mount *m)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	int rc;

	if (!lc)
		return cm_err_set(-ENOMEM, "out of memory");
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, m->cfg.max_threads ? m->cfg.max_threads : 16);
	rc = fuse_session_loop_mt(m->se, lc);
	fuse_loop_cfg_destroy(lc);
	/* fs_mount_end() or an unmount from outside ends the loop; that is a clean stop. */
	return rc < 0 ? cm_err_set(rc, "the FUSE loop failed: %s", strerror(-rc)) : 0;
}

static void wake_handler(int sig)
{
	(void)sig; /* only there so the signal interrupts sem_wait() in libfuse's loop */
}

static void *loop_main(void *arg)
{
	struct fs_mount *m = arg;
	sigset_t wake;

	sigemptyset(&wake);
	sigaddset(&wake, FS_WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	m->loop_rc = loop_run(m);
	if (m->loop_rc < 0)
		cm_strlcpy(m->loop_err, cm_err_msg(), sizeof(m->loop_err));
	if (m->on_end)
		m->on_end(m->on_end_ctx);
	return NULL;
}

/*
 * libfuse's multi-threaded loop waits for its workers in sem_wait(), and a
 * worker ends only when its read of /dev/fuse fails. fuse_session_exit()
 * alone wakes neither; libfuse's own signal handlers rely on the signal
 * interrupting sem_wait(). The loop thread is the only one that takes
 * FS_WAKE_SIGNAL, and fs_mount_end() sends it until the thread has ended (a
 * signal that arrives between the loop's check and its sem_wait() is lost,
 * hence the repeat).
 */
int fs_mount_start(struct fs_mount *m, void (*on_end)(void *ctx), void *ctx)
{
	struct sigaction sa;
	sigset_t all, old;
	int err;

	if (m->loop_started)
		return cm_err_set(-EBUSY, "the FUSE loop runs already");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;
	/*
	 * No SA_RESTART: the loop's sem_wait() must return EINTR to see the exit
	 * flag (with SA_RESTART glibc restarts the futex wait and the loop never
	 * ends). Worker threads, started from the loop thread, have the signal
	 * unblocked too; only fs_mount_end() sends it, to the loop thread.
	 */
	sigemptyset(&sa.sa_mask);
	if (sigaction(FS_WAKE_SIGNAL, &sa, NULL) < 0)
		return cm_err_set(-errno, "sigaction: %s", strerror(errno));
	m->on_end = on_end;
	m->on_end_ctx = ctx;
	m->loop_rc = 0;
	m->loop_err[0] = '\0';
	/* The thread unblocks FS_WAKE_SIGNAL itself and takes no other signal. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&m->loop_thread, NULL, loop_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return cm_err_set(-err, "cannot start the FUSE loop: %s", strerror(err));
	m->loop_started = 1;
	return 0;
}

int fs_mount_end(struct fs_mount *m)
{
	if (!m || !m->loop_started)
		return 0;
	/*
	 * Queued invalidations go out while the loop still answers the requests
	 * whose directory locks they wait for; after that none are sent.
	 */
	atomic_store(&m->ending, 1);
	fs_inval_stop(m);
	fuse_session_exit(m->se);
	for (;;) {
		struct timespec until;

		pthread_kill(m->loop_thread, FS_WAKE_SIGNAL);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 50 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(m->loop_thread, NULL, &until) == 0)
			break;
	}
	m->loop_started = 0;
	if (m->loop_rc < 0)
		return cm_err_set(m->loop_rc, "%s", m->loop_err);
	return 0;
}

void fs_mount_close(struct fs_mount *m)
{
	if (!m)
		return;
	fs_mount_end(m);
	fs_inval_stop(m);
	if (m->se) {
		if (m->mounted)
			fuse_session_unmount(m->se);
		fuse_session_destroy(m->se);
	}
	fs_files_free_all(m);
	fs_table_free(m);
	fs_pending_free_all(m);
	if (m->root.fd >= 0)
		close(m->root.fd);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->bmu);
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
	out->passthrough_opens = atomic_load_explicit((_Atomic uint64_t *)&m->stats.passthrough_opens,
						      memory_order_relaxed);
	out->passthrough = atomic_load(&m->pt_on);
}

int fs_mount_read_path_check(struct fs_mount *m)
{
	if (!atomic_load_explicit(&m->pt_decided, memory_order_acquire))
		return cm_err_set(-EAGAIN, "the kernel has not initialised the mount yet");
	if (m->cfg.read_path == FS_READ_PASSTHROUGH && !atomic_load(&m->pt_on))
		return cm_err_set(-ENOTSUP, "--read-path passthrough: %s", m->pt_off);
	return 0;
}

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void mountinfo_unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/*
 * The absolute path of `path` without resolving its last component, which
 * cannot be resolved while it is a dead mount (stat gives ENOTCONN).
 */
static int path_abs(const char *path, char *out, size_t n)
{
	char copy[PATH_MAX], parent[PATH_MAX], *base, *dir;
	size_t len;

	if (cm_strlcpy(copy, path, sizeof(copy)) < 0)
		return cm_err_set(-ENAMETOOLONG, "mount point path too long");
	for (len = strlen(copy); len > 1 && copy[len - 1] == '/'; len--)
		copy[len - 1] = '\0';
	base = strrchr(copy, '/');
	if (!base) {
		dir = ".";
		base = copy;
	} else {
		*base++ = '\0';
		dir = copy[0] ? copy : "/";
	}
	if (!realpath(dir, parent))
		return cm_err_set(-errno, "%s: %s", dir, strerror(errno));
	if (snprintf(out, n, "%s/%s", strcmp(parent, "/") ? parent : "", base) >= (int)n)
		return cm_err_set(-ENAMETOOLONG, "mount point path too long");
	return 0;
}

/* The file system type of the topmost mount at `abs` ("fuse.modelfs"); -ENOENT if none. */
static int mount_type(const char *abs, char *type, size_t n)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return cm_err_set(-errno, "/proc/self/mountinfo: %s", strerror(errno));
	/* id parent dev root MOUNTPOINT options [optional...] - FSTYPE source superopts */
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *mp = NULL, *fstype = NULL, *tok;
		int i = 0, after_dash = 0;

		for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save), i++) {
			if (i == 4)
				mp = tok;
			else if (i > 5 && !after_dash && !strcmp(tok, "-"))
				after_dash = 1;
			else if (after_dash == 1) {
				fstype = tok;
				break;
			}
		}
		if (!mp || !fstype)
			continue;
		mountinfo_unescape(mp);
		if (!strcmp(mp, abs)) {
			cm_strlcpy(type, fstype, n);
			rc = 0; /* later lines are mounts on top: keep the last */
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* fusermount3 -u -z, for the user who mounted it; 0 or -EPERM with its exit status. */
static int fusermount_detach(const char *mountpoint)
{
	extern char **environ;
	char *argv[] = { "fusermount3", "-u", "-z", "--", (char *)mountpoint, NULL };
	pid_t pid;
	int err, status = 0;

	posix_spawnattr_t attr;
	sigset_t none;

	/* serve blocks its stop signals in every thread; the child must not inherit that. */
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	err = posix_spawnp(&pid, "fusermount3", NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (err)
		return cm_err_set(-err, "cannot run fusermount3: %s", strerror(err));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cm_err_set(-errno, "waiting for fusermount3: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cm_err_set(-EPERM, "fusermount3 -u -z %s failed (status %d)", mountpoint,
				  status);
	return 0;
}

/*
 * 1 when the topmost mount at `abs` no longer has a daemon. statfs always
 * goes to the daemon (the kernel caches attributes, here for a day, but never
 * statfs answers), so a dead connection answers ENOTCONN even where a stat
 * of the root is still answered from the cache.
 */
static int mount_is_dead(const char *abs)
{
	struct statfs sfs;

	return statfs(abs, &sfs) < 0 && errno == ENOTCONN;
}

int fs_mount_detach_stale(const char *mountpoint)
{
	char abs[PATH_MAX + 1], type[64] = "";
	struct stat sb;
	int detached = 0;
	int rc;

	rc = path_abs(mountpoint, abs, sizeof(abs));
	if (rc < 0)
		return rc;
	/*
	 * Every dead modelfs mount stacked at the mount point, topmost first: a
	 * daemon killed several times leaves one per start that did not clean
	 * up, and detaching only the top one uncovers the next at the next stop.
	 */
	for (int i = 0; i < 64; i++) {
		rc = mount_type(abs, type, sizeof(type));
		if (rc == -ENOENT)
			break;
		if (rc < 0)
			return rc;
		if (!mount_is_dead(abs)) {
			/* The store lock is ours: a live modelfs there serves another store. */
			if (!strcmp(type, "fuse.modelfs"))
				return cm_err_set(-EBUSY, "'%s' is the mount of another live modelfs",
						  abs);
			break; /* someone's live mount: ours goes on top, as mount(8) would */
		}
		/* Only our own kind: another file system's dead mount is for a human to judge. */
		if (strcmp(type, "fuse.modelfs"))
			return cm_err_set(-EBUSY, "'%s' is a dead %s mount, not one of modelfs: "
					  "unmount it by hand", abs, type);
		if (geteuid() == 0) {
			if (umount2(abs, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
				return cm_err_set(-errno, "detaching the dead mount at '%s': %s", abs,
						  strerror(errno));
		} else {
			rc = fusermount_detach(abs);
			if (rc < 0)
				return rc;
		}
		detached++;
	}
	if (stat(mountpoint, &sb) < 0)
		return cm_err_set(-errno, "'%s'%s: %s", abs,
				  detached ? " after detaching the dead mount" : "", strerror(errno));
	return detached > 0;
}
