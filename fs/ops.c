/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE operations. Each one works out where it is in the tree (root,
 * model, version, content), asks the registry when the action is a registry
 * action (mkdir of a model or version, an alias symlink, a seal), and
 * otherwise acts on the backing file through the inode's O_PATH descriptor.
 * Sealed files are opened in kernel passthrough mode where the kernel and
 * libfuse offer it: the kernel reads the backing file itself, and no READ
 * reaches fs_read(). Every other read (drafts, metadata files, or all of
 * them on the fallback) is answered with the backing fd so the kernel
 * splices the bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_i.h"

#define TIMEOUT_LONG 86400.0 /* sealed content and registry-managed names: invalidated on change */
#define TIMEOUT_DRAFT 1.0
#define DROP_WINDOW (8 << 20) /* drop the backing pages in aligned windows this far behind a reader */
#define FS_MAX_WRITE (128 << 10) /* largest WRITE: its pipe must stay growable (fs_init) */

static struct fs_mount *mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_file *ffile(struct fuse_file_info *fi)
{
	return (struct fs_file *)(uintptr_t)fi->fh;
}

static void actor_of(fuse_req_t req, struct reg_actor *a, char *buf, size_t n);

/*
 * What the current request on this thread is doing, for the refusal record:
 * set by op_begin() in the operations that change something, cleared by
 * count_op() at the start of every operation (a FUSE worker thread answers
 * one request at a time).
 */
static __thread struct {
	fuse_req_t req;
	const char *op;
	char model[REG_NAME_MAX], version[REG_NAME_MAX], alias[REG_NAME_MAX];
} opctx;

static void op_begin(fuse_req_t req, const struct fs_inode *p, const char *op, const char *name)
{
	opctx.req = req;
	opctx.op = op;
	opctx.model[0] = opctx.version[0] = opctx.alias[0] = '\0';
	if (!p)
		return;
	switch (p->kind) {
	case FS_ROOT:
		if (name)
			cm_strlcpy(opctx.model, name, sizeof(opctx.model));
		break;
	case FS_MODEL:
		cm_strlcpy(opctx.model, p->model, sizeof(opctx.model));
		/* Below a model: a version (mkdir, rmdir) or an alias (the links). */
		if (name && (!strcmp(op, "mkdir") || !strcmp(op, "rmdir")))
			cm_strlcpy(opctx.version, name, sizeof(opctx.version));
		else if (name)
			cm_strlcpy(opctx.alias, name, sizeof(opctx.alias));
		break;
	default:
		cm_strlcpy(opctx.model, p->model, sizeof(opctx.model));
		cm_strlcpy(opctx.version, p->version, sizeof(opctx.version));
	}
}

/* The errors that are a rule saying no (not a missing name, not a broken disk). */
static int is_refusal(int e)
{
	switch (e) {
	case EPERM: case EACCES: case EINVAL: case EBUSY: case EEXIST: case EROFS:
	case ENOTEMPTY: case ENAMETOOLONG: case EXDEV: case EFBIG: case E2BIG: case ESTALE:
		return 1;
	default:
		return 0;
	}
}

/* A refusal is a log line and a record in the registry (what `modelfs why` reads). */
static void refusal_note(fuse_req_t req, struct fs_mount *m, int e)
{
	struct reg_refusal r = { .op = opctx.op, .err = e };
	char buf[64];
	struct reg_actor a;

	actor_of(req, &a, buf, sizeof(buf));
	r.model = opctx.model[0] ? opctx.model : NULL;
	r.version = opctx.version[0] ? opctx.version : NULL;
	r.alias = opctx.alias[0] ? opctx.alias : NULL;
	cm_log(CM_LOG_INFO, "fs", "refused %s %s%s%s%s%s (%s): %s: %s", opctx.op,
	       r.model ? r.model : "/", r.version ? "/" : "", r.version ? r.version : "",
	       r.alias ? "/" : "", r.alias ? r.alias : "", buf, strerror(e), cm_err_msg());
	if (reg_refusal_record(m->st, &a, &r) < 0)
		cm_log(CM_LOG_WARN, "fs", "recording a refusal: %s", cm_err_msg());
	opctx.op = NULL;
}

static void reply_err(fuse_req_t req, int rc)
{
	struct fs_mount *m = mnt(req);
	int e = rc < 0 ? -rc : rc;

	if (e) {
		atomic_fetch_add_explicit((_Atomic uint64_t *)&m->stats.errors, 1, memory_order_relaxed);
		if (opctx.op && opctx.req == req && is_refusal(e))
			refusal_note(req, m, e);
		else if (e != ENOENT)
			cm_log(CM_LOG_DEBUG, "fs", "error %s: %s", strerror(e), cm_err_msg());
	}
	fuse_reply_err(req, e);
}

static void count_op(struct fs_mount *m)
{
	opctx.op = NULL;
	atomic_fetch_add_explicit((_Atomic uint64_t *)&m->stats.ops, 1, memory_order_relaxed);
}

#define ACTOR_GROUPS_MAX 256

/*
 * The caller as an event actor ("uid=1000,gid=1000,pid=42") and as the
 * registry's authority sees it: uid and gid; ACTOR_GROUPS adds the
 * supplementary groups where a decision may need them (reading them costs a
 * read of /proc, too much for every close()).
 */
static void actor_of(fuse_req_t req, struct reg_actor *a, char *buf, size_t n)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	snprintf(buf, n, "uid=%u,gid=%u,pid=%d", (unsigned)c->uid, (unsigned)c->gid, (int)c->pid);
	memset(a, 0, sizeof(*a));
	a->channel = "fs";
	a->name = buf;
	a->kind = REG_ACTOR_UID;
	a->uid = c->uid;
	a->gid = c->gid;
}

static void actor_groups(fuse_req_t req, struct reg_actor *a, gid_t *groups)
{
	int ng = a->uid == 0 ? 0 : fuse_req_getgroups(req, ACTOR_GROUPS_MAX, groups);

	a->groups = groups;
	a->ngroups = ng < 0 ? 0 : ng > ACTOR_GROUPS_MAX ? ACTOR_GROUPS_MAX : ng;
}

#define ACTOR(req)                                   \
	char actor_buf_[64];                         \
	struct reg_actor actor_;                     \
	actor_of((req), &actor_, actor_buf_, sizeof(actor_buf_))

#define ACTOR_GROUPS(req)                            \
	gid_t actor_groups_[ACTOR_GROUPS_MAX];       \
	actor_groups((req), &actor_, actor_groups_)

static void proc_path(char *buf, size_t n, int fd)
{
	snprintf(buf, n, "/proc/self/fd/%d", fd);
}

/* Whether a version is sealed, trusting a cached "sealed" (it never goes back). */
static int version_sealed(struct fs_mount *m, struct fs_inode *in)
{
	struct reg_version v;
	int rc;

	if (atomic_load(&in->sealed))
		return 1;
	rc = reg_version_get(m->st, in->model, in->version, &v);
	if (rc < 0)
		return rc;
	if (v.state != REG_DRAFT) {
		atomic_store(&in->sealed, 1);
		return 1;
	}
	return 0;
}

/*
 * 0 when the version holding `in` may change; -EROFS otherwise, or -EBUSY
 * when `removing` from a version an alias serves (rm -r of a served version).
 */
static int draft_check(struct fs_mount *m, struct fs_inode *in, int removing)
{
	struct reg_alias *al = NULL;
	size_t n = 0;
	int rc = version_sealed(m, in);

	if (rc <= 0)
		return rc;
	if (removing && reg_alias_list(m->st, in->model, &al, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(al[i].version, in->version)) {
				rc = cm_err_set(-EBUSY, "%s/%s is the target of alias '%s'", in->model,
						in->version, al[i].name);
				free(al);
				return rc;
			}
		}
		free(al);
	}
	return cm_err_set(-EROFS, "%s/%s is sealed", in->model, in->version);
}

/*
 * A change to the tree of the draft holding `p` is bracketed by
 * reg_write_begin/end around its system call, so a seal never hashes a tree
 * that is changing: while a seal runs, begin fails with EBUSY.
 */
static int change_begin(struct fs_mount *m, struct fs_inode *p, int removing, int64_t *vid)
{
	int rc = draft_check(m, p, removing);

	if (rc == 0)
		rc = reg_write_begin(m->st, p->model, p->version, vid);
	return rc;
}

static void change_end(struct fs_mount *m, int64_t vid)
{
	if (vid > 0)
		reg_write_end(m->st, vid);
}

/* A new name inside a version: what the registry can record and list (UTF-8, <= NAME_MAX). */
static int new_name_check(const char *name)
{
	if (strlen(name) > NAME_MAX)
		return cm_err_set(-ENAMETOOLONG, "names are at most %d bytes", NAME_MAX);
	return reg_path_check(name);
}

static int is_record(const struct fs_inode *p, const char *name)
{
	return p->kind == FS_VERSION && !strcmp(name, "metadata.json");
}

static double timeout_of(const struct fs_inode *in)
{
	switch (in->kind) {
	case FS_ROOT:
	case FS_MODEL:
	case FS_VERSION:
	case FS_ALIAS:
		return TIMEOUT_LONG;
	case FS_PENDING:
	case FS_MMETA:
		return 0;
	case FS_CONTENT:
		if (in->is_meta)
			return 0;
		return atomic_load(&in->sealed) ? TIMEOUT_LONG : TIMEOUT_DRAFT;
	}
	return 0;
}

/* What the mount shows for an inode's stat. */
static int stat_of(struct fs_mount *m, struct fs_inode *in, struct stat *sb)
{
	if (in->kind == FS_PENDING) {
		*sb = in->pst;
		return 0;
	}
	if (fstatat(in->fd, "", sb, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return cm_err_set(-errno, "stat: %s", strerror(errno));
	if (in->kind == FS_MMETA)
		sb->st_mode &= ~0222u;
	if (in->meta_owned && !atomic_load(&in->sealed)) {
		sb->st_uid = in->meta_uid;
		sb->st_gid = in->meta_gid;
	}
	if (in->kind == FS_VERSION && atomic_load(&in->sealed))
		sb->st_mode &= ~0222u; /* a sealed version reads as chmod a-w */
	sb->st_ino = (ino_t)(uintptr_t)in;
	(void)m;
	return 0;
}

static void entry_fill(struct fs_mount *m, struct fs_inode *in, const struct stat *sb,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = (fuse_ino_t)(uintptr_t)in;
	e->attr = *sb;
	e->attr.st_ino = e->ino;
	if (in->kind == FS_MMETA || (in->kind == FS_VERSION && atomic_load(&in->sealed)))
		e->attr.st_mode &= ~0222u;
	e->attr_timeout = e->entry_timeout = timeout_of(in);
	(void)m;
}

/* coreutils' ln -f and mv make "CuXXXXXX"; hidden names are temporary by convention. */
static int temp_link_name(const char *name)
{
	if (name[0] == '.')
		return 1;
	if (strlen(name) != 8 || name[0] != 'C' || name[1] != 'u')
		return 0;
	for (int i = 2; i < 8; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* Looks `name` up below parent `p`; on success the inode has one more lookup ref. */
static int do_lookup(struct fs_mount *m, struct fs_inode *p, const char *name,
		     struct fuse_entry_param *e)
{
	const char *model = p->model, *version = p->version;
	enum fs_kind kind;
	struct fs_inode *in;
	struct stat sb;
	int sealed = 0;
	int is_meta = 0;
	int fd;
	int rc;

	switch (p->kind) {
	case FS_ROOT:
		if (reg_name_model_check(name) < 0)
			return cm_err_set(-ENOENT, "no model '%s'", name);
		kind = FS_MODEL;
		model = name;
		break;
	case FS_MODEL:
		pthread_mutex_lock(&m->mu);
		in = fs_pending_find(m, p->model, name);
		if (in && fstatat(p->fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			/* A version or alias of that name came since: it wins, the link goes. */
			fs_pending_unlist(m, in);
			in = NULL;
		}
		if (in) {
			in->nlookup++;
			entry_fill(m, in, &in->pst, e);
			pthread_mutex_unlock(&m->mu);
			return 0;
		}
		pthread_mutex_unlock(&m->mu);
		if (name[0] == '.')
			return -ENOENT;
		kind = !strcmp(name, "metadata.json") ? FS_MMETA : FS_VERSION;
		break;
	case FS_VERSION:
	case FS_CONTENT:
		/* Inside a version no name is special: what is on disk is what the seal hashes. */
		kind = FS_CONTENT;
		is_meta = p->kind == FS_VERSION && !strcmp(name, "metadata.json");
		sealed = atomic_load(&p->sealed);
		break;
	default:
		return -ENOTDIR;
	}
	fd = openat(p->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &sb, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = 0;
	if (kind == FS_MODEL) {
		struct reg_model mm;

		if (!S_ISDIR(sb.st_mode) || reg_model_get(m->st, name, &mm) < 0)
			rc = -ENOENT;
	} else if (kind == FS_VERSION) {
		struct reg_version v;

		if (S_ISLNK(sb.st_mode)) {
			kind = FS_ALIAS;
		} else if (!S_ISDIR(sb.st_mode) || reg_name_version_check(name) < 0 ||
			   reg_version_get(m->st, model, name, &v) < 0) {
			rc = -ENOENT;
		} else {
			version = name;
			sealed = v.state != REG_DRAFT;
		}
	} else if (kind == FS_MMETA && !S_ISREG(sb.st_mode)) {
		rc = -ENOENT;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	in = fs_inode_ref(m, fd, &sb, kind, model, version);
	if (!in)
		return -ENOMEM;
	in->is_meta = is_meta;
	if (sealed)
		atomic_store(&in->sealed, 1);
	if (is_meta && !sealed) {
		/*
		 * The registry rewrites a draft's record as itself: the file belongs
		 * to whoever owns the draft, so its owner may write it here as over
		 * HTTP with a writer token.
		 */
		struct stat vsb;

		if (fstat(p->fd, &vsb) == 0) {
			in->meta_uid = sb.st_uid = vsb.st_uid;
			in->meta_gid = sb.st_gid = vsb.st_gid;
			in->meta_owned = 1;
		}
	}
	entry_fill(m, in, &sb, e);
	return 0;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs_mount *m = userdata;

	/* Replies with a backing fd are spliced into /dev/fuse; writes come in by splice. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->want &= ~(unsigned)FUSE_CAP_EXPORT_SUPPORT;
	/*
	 * Passthrough for sealed files, decided once for the mount. Backing
	 * files may sit on a stacked file system (a store inside a container's
	 * overlayfs root); the price is that nothing can be stacked over this
	 * mount, which nothing that serves models does.
	 */
#ifdef FS_HAVE_PASSTHROUGH
	if (!m->pt_off[0] && !(conn->capable & FUSE_CAP_PASSTHROUGH))
		snprintf(m->pt_off, sizeof(m->pt_off), "the kernel does not offer FUSE passthrough "
			 "(CONFIG_FUSE_PASSTHROUGH, Linux 6.9 or later)");
	if (!m->pt_off[0]) {
		conn->want |= FUSE_CAP_PASSTHROUGH;
		conn->max_backing_stack_depth = FUSE_BACKING_STACKED_OVER;
		atomic_store(&m->pt_on, 1);
	}
#endif
	if (atomic_load(&m->pt_on))
		cm_log(CM_LOG_INFO, "fs", "read path: kernel passthrough for sealed files (libfuse %s); "
		       "drafts and metadata files on the splice path", fuse_pkgversion());
	else
		cm_log(CM_LOG_INFO, "fs", "read path: splice for every file (libfuse %s); passthrough "
		       "is off: %s", fuse_pkgversion(), m->pt_off);
	atomic_store_explicit(&m->pt_decided, 1, memory_order_release);
	/*
	 * max_readahead stays at what the kernel offers (the mount's 128 KiB), so
	 * every READ is at most 128 KiB and fits libfuse's splice pipe: a 1 MiB
	 * READ needs a 2 MiB pipe, beyond the default pipe-max-size, and libfuse
	 * then copies through a buffer instead. Larger windows were measured
	 * (bench/run fuse, README "FUSE benchmark"): raising the mount's
	 * read_ahead_kb to 1-8 MiB, with 512 KiB or 1 MiB requests and pipe-max-size
	 * raised to match, moved fewer bytes per second through the mount, not
	 * more. So modelfs changes no system setting for reads.
	 */
#if FUSE_MAJOR_VERSION == 3 && FUSE_MINOR_VERSION >= 17
	/*
	 * libfuse 3.17 receives requests by splice too, into a per-thread pipe
	 * sized for max_write (1 MiB by default) plus a page: more than
	 * pipe-max-size (1 MiB), so growing the pipe fails, and its fallback
	 * (growing to pipe-max-size) fails on the newline of
	 * /proc/sys/fs/pipe-max-size, after which the pipe stays at 64 KiB and
	 * can no longer grow. Every 128 KiB READ reply was then copied through
	 * a fresh buffer instead of spliced: 50-60 MB/s instead of 0.6-2 GB/s
	 * (bench/run fuse, splice path). Writes of 128 KiB keep the pipe
	 * within what it may grow to.
	 */
	if (conn->max_write > FS_MAX_WRITE)
		conn->max_write = FS_MAX_WRITE;
#endif
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *m = mnt(req);
	struct fuse_entry_param e;
	int rc;

	count_op(m);
	rc = do_lookup(m, fs_inode_get(m, parent), name, &e);
	if (rc == -ENOENT) {
		/* Negative entries are not cached: a version made over HTTP shows at once. */
		memset(&e, 0, sizeof(e));
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs_mount *m = mnt(req);

	fs_inode_unref(m, fs_inode_get(m, ino), nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs_mount *m = mnt(req);

	for (size_t i = 0; i < count; i++)
		fs_inode_unref(m, fs_inode_get(m, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *in = fs_inode_get(m, ino);
	struct stat sb;
	int rc;

	(void)fi;
	count_op(m);
	if (in->kind == FS_VERSION && !atomic_load(&in->sealed))
		version_sealed(m, in);
	rc = stat_of(m, in, &sb);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &sb, timeout_of(in));
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *in = fs_inode_get(m, ino);
	char path[64];
	struct stat sb;
	int64_t vid = 0;
	int rc = 0;
	ACTOR(req);

	count_op(m);
	op_begin(req, in, (valid & FUSE_SET_ATTR_MODE) ? "chmod" : "setattr", NULL);
	proc_path(path, sizeof(path), in->fd);
	if (in->kind == FS_VERSION && (valid & FUSE_SET_ATTR_MODE) && !(attr->st_mode & 0222)) {
		ACTOR_GROUPS(req);

		/* chmod a-w on a version directory seals it. */
		rc = reg_version_seal(m->st, &actor_, in->model, in->version, NULL);
		if (rc == 0) {
			atomic_store(&in->sealed, 1);
			cm_log(CM_LOG_INFO, "fs", "sealed %s/%s by chmod (%s)", in->model, in->version,
			       actor_buf_);
		}
		valid &= ~FUSE_SET_ATTR_MODE;
	}
	if (rc == 0 && valid) {
		if (in->kind == FS_MODEL)
			rc = (valid & FUSE_SET_ATTR_SIZE) ? -EISDIR : 0; /* owners and modes: who may promote */
		else if (in->kind != FS_VERSION && in->kind != FS_CONTENT)
			rc = cm_err_set(-EPERM, "only models, versions and their files can change");
		else
			rc = change_begin(m, in, 0, &vid);
	}
	if (rc == 0 && in->is_meta && (valid & FUSE_SET_ATTR_SIZE)) {
		struct fs_file *f = fi ? ffile(fi) : NULL;

		if (!f || !f->meta)
			rc = cm_err_set(-EPERM, "rewrite metadata.json as a whole to change it");
		else if (attr->st_size > REG_META_MAX)
			rc = cm_err_set(-EFBIG, "metadata records are limited to %d bytes",
					REG_META_MAX);
		else if (ftruncate(f->fd, attr->st_size) < 0)
			rc = -errno;
		else
			f->meta_dirty = 1;
		valid &= ~FUSE_SET_ATTR_SIZE;
	}
	if (rc == 0 && (valid & FUSE_SET_ATTR_MODE) && chmod(path, attr->st_mode & 07777) < 0)
		rc = -errno;
	if (rc == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(in->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
	}
	if (rc == 0 && (valid & FUSE_SET_ATTR_SIZE)) {
		struct fs_file *f = fi ? ffile(fi) : NULL;

		if (f)
			rc = ftruncate(f->fd, attr->st_size) < 0 ? -errno : 0;
		else
			rc = truncate(path, attr->st_size) < 0 ? -errno : 0;
	}
	if (rc == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (utimensat(AT_FDCWD, path, tv, 0) < 0)
			rc = -errno;
	}
	change_end(m, vid);
	if (rc == 0)
		rc = stat_of(m, in, &sb);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &sb, timeout_of(in));
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *in = fs_inode_get(m, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;

	count_op(m);
	if (in->kind == FS_PENDING) {
		fuse_reply_readlink(req, in->target);
		return;
	}
	n = readlinkat(in->fd, "", buf, sizeof(buf) - 1);
	if (n < 0) {
		reply_err(req, -errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* `name` below parent was just made for the caller: it is theirs. */
static void chown_new(fuse_req_t req, struct fs_inode *p, const char *name)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	if (fchownat(p->fd, name, c->uid, c->gid, AT_SYMLINK_NOFOLLOW) < 0)
		cm_log(CM_LOG_WARN, "fs", "chown %s to %u:%u: %s", name, (unsigned)c->uid,
		       (unsigned)c->gid, strerror(errno));
}

/* After the registry or a syscall made `name` below parent: chown to the caller, reply the entry. */
static void reply_made(fuse_req_t req, struct fs_inode *p, const char *name, int chown_it)
{
	struct fs_mount *m = mnt(req);
	struct fuse_entry_param e;
	int rc;

	if (chown_it)
		chown_new(req, p, name);
	rc = do_lookup(m, p, name, &e);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *p = fs_inode_get(m, parent);
	int64_t vid = 0;
	int rc;
	ACTOR(req);

	count_op(m);
	op_begin(req, p, "mkdir", name);
	switch (p->kind) {
	case FS_ROOT:
		rc = reg_model_create(m->st, &actor_, name, NULL);
		break;
	case FS_MODEL:
		rc = reg_version_create(m->st, &actor_, p->model, name, NULL, NULL);
		break;
	case FS_VERSION:
	case FS_CONTENT:
		rc = new_name_check(name);
		if (rc == 0 && is_record(p, name))
			rc = cm_err_set(-EPERM, "metadata.json is the version's record, a file");
		if (rc == 0)
			rc = change_begin(m, p, 0, &vid);
		if (rc == 0 && mkdirat(p->fd, name, mode & 07777) < 0)
			rc = -errno;
		if (rc == 0)
			chown_new(req, p, name); /* inside the change: a seal sees the final owner */
		change_end(m, vid);
		if (rc == 0) {
			reply_made(req, p, name, 0);
			return;
		}
		break;
	default:
		rc = -ENOTDIR;
	}
	if (rc < 0) {
		reply_err(req, rc); /* a refusal is logged and recorded there */
		return;
	}
	reply_made(req, p, name, 1);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *p = fs_inode_get(m, parent);
	int64_t vid = 0;
	int rc;

	(void)rdev;
	count_op(m);
	op_begin(req, p, "mknod", name);
	if (p->kind != FS_VERSION && p->kind != FS_CONTENT)
		rc = cm_err_set(-EPERM, "files live in versions");
	else if (!S_ISREG(mode))
		rc = cm_err_set(-EPERM, "versions hold only regular files and directories");
	else
		rc = new_name_check(name);
	/* An empty metadata.json is a name without a record yet, as after create. */
	if (rc == 0)
		rc = change_begin(m, p, 0, &vid);
	if (rc == 0 && mknodat(p->fd, name, (mode & 07777) | S_IFREG, 0) < 0)
		rc = -errno;
	if (rc == 0)
		chown_new(req, p, name);
	change_end(m, vid);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	reply_made(req, p, name, 0);
}

/* Target of an alias symlink: a version of the same model that may be an alias target. */
static int link_target_check(struct fs_mount *m, const char *model, const char *target)
{
	struct reg_version v;
	int rc;

	if (target[0] == '/' || strchr(target, '/'))
		return cm_err_set(-EINVAL, "an alias must name a version of '%s' (like 'v2'), not "
				  "the path '%s'", model, target);
	rc = reg_name_version_check(target);
	if (rc < 0)
		return rc;
	rc = reg_version_get(m->st, model, target, &v);
	if (rc == -ENOENT)
		return cm_err_set(-EINVAL, "'%s' has no version '%s'", model, target);
	if (rc == 0 && v.state == REG_ARCHIVED)
		return cm_err_set(-EINVAL, "%s/%s is archived", model, target);
	return rc;
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *p = fs_inode_get(m, parent);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct fs_inode *in;
	struct stat sb;
	int rc;
	ACTOR(req);
	ACTOR_GROUPS(req);

	count_op(m);
	op_begin(req, p, "symlink", name);
	if (p->kind != FS_MODEL) {
		reply_err(req, cm_err_set(-EPERM, "symlinks are aliases and live in model directories"));
		return;
	}
	if (strlen(name) > NAME_MAX) {
		reply_err(req, cm_err_set(-ENAMETOOLONG, "names are at most %d bytes", NAME_MAX));
		return;
	}
	rc = link_target_check(m, p->model, link);
	if (rc == 0 && reg_name_alias_check(name) < 0 && !temp_link_name(name))
		rc = reg_name_alias_check(name);
	if (rc == 0 && !temp_link_name(name)) {
		rc = reg_alias_set(m->st, &actor_, p->model, name, link, NULL, NULL);
		if (rc < 0) {
			cm_log(CM_LOG_WARN, "fs", "alias %s/%s -> %s refused (%s): %s", p->model, name,
			       link, actor_buf_, cm_err_describe(rc));
			reply_err(req, rc);
			return;
		}
		cm_log(CM_LOG_INFO, "fs", "alias %s/%s -> %s (%s)", p->model, name, link, actor_buf_);
		reply_made(req, p, name, 0);
		return;
	}
	if (rc < 0) {
		cm_log(CM_LOG_WARN, "fs", "symlink %s/%s -> %s refused: %s", p->model, name, link,
		       cm_err_describe(rc));
		reply_err(req, rc);
		return;
	}
	/* A temporary name (ln -sf, mv): held until it is renamed onto an alias (capped in pending.c). */
	in = calloc(1, sizeof(*in));
	if (!in || !(in->target = strdup(link))) {
		free(in);
		reply_err(req, -ENOMEM);
		return;
	}
	in->fd = -1;
	in->kind = FS_PENDING;
	in->nlookup = 1;
	cm_strlcpy(in->model, p->model, sizeof(in->model));
	cm_strlcpy(in->name, name, sizeof(in->name));
	in->pst.st_mode = S_IFLNK | 0777;
	in->pst.st_nlink = 1;
	in->pst.st_size = (off_t)strlen(link);
	in->pst.st_uid = c->uid;
	in->pst.st_gid = c->gid;
	clock_gettime(CLOCK_REALTIME, &in->pst.st_mtim);
	in->pst.st_atim = in->pst.st_ctim = in->pst.st_mtim;
	in->pst.st_ino = (ino_t)(uintptr_t)in;
	pthread_mutex_lock(&m->mu);
	/* Like a native directory: a name that exists cannot be made again. */
	rc = fstatat(p->fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0
		     ? cm_err_set(-EEXIST, "%s/%s exists", p->model, name)
		     : fs_pending_add(m, in);
	if (rc == 0)
		entry_fill(m, in, &in->pst, &e);
	pthread_mutex_unlock(&m->mu);
	if (rc < 0) {
		/* Debug only: a user at the cap could otherwise fill the log. */
		cm_log(CM_LOG_DEBUG, "fs", "symlink %s/%s refused (%s): %s", p->model, name,
		       actor_buf_, cm_err_describe(rc));
		free(in->target);
		free(in);
		reply_err(req, rc);
		return;
	}
	fuse_reply_entry(req, &e);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *p = fs_inode_get(m, parent);
	struct fs_inode *pend;
	struct stat sb;
	int64_t vid = 0;
	int rc = 0;
	ACTOR(req);

	count_op(m);
	op_begin(req, p, "unlink", name);
	switch (p->kind) {
	case FS_MODEL:
		pthread_mutex_lock(&m->mu);
		pend = fs_pending_find(m, p->model, name);
		if (pend)
			fs_pending_unlist(m, pend);
		pthread_mutex_unlock(&m->mu);
		if (pend)
			break;
		if (fstatat(p->fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
		} else if (S_ISDIR(sb.st_mode)) {
			rc = -EISDIR;
		} else if (!S_ISLNK(sb.st_mode)) {
			rc = cm_err_set(-EPERM, "%s/%s is generated by the registry", p->model, name);
		} else {
			ACTOR_GROUPS(req);

			rc = reg_alias_delete(m->st, &actor_, p->model, name, NULL);
			cm_log(rc ? CM_LOG_WARN : CM_LOG_INFO, "fs", "remove alias %s/%s (%s)%s%s",
			       p->model, name, actor_buf_, rc ? ": " : "", rc ? cm_err_describe(rc) : "");
		}
		break;
	case FS_VERSION:
	case FS_CONTENT:
		rc = change_begin(m, p, 1, &vid);
		if (rc == 0 && is_record(p, name)) {
			/* The record goes with its file: the version has none until one is written. */
			if (fstatat(p->fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
				rc = -errno;
			else
				rc = reg_version_metadata_remove(m->st, &actor_, p->model, p->version);
			if (rc == 0 && unlinkat(p->fd, name, 0) < 0 && errno != ENOENT)
				rc = -errno; /* the empty file of a record never written */
		} else if (rc == 0 && unlinkat(p->fd, name, 0) < 0) {
			rc = -errno;
		}
		change_end(m, vid);
		break;
	default:
		rc = cm_err_set(-EPERM, "nothing to unlink here");
	}
	reply_err(req, rc);
}

/* A draft directory is empty when it holds nothing but (maybe) its metadata.json. */
static int version_empty(struct fs_inode *p, const char *name)
{
	int fd = openat(p->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	int empty = 1;
	DIR *d;
	int rc;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((rc = cm_readdir(d, &de)) > 0) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "metadata.json"))
			continue;
		empty = 0;
		break;
	}
	closedir(d);
	return rc < 0 ? rc : empty;
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *p = fs_inode_get(m, parent);
	struct reg_version v;
	int64_t vid = 0;
	int rc;
	ACTOR(req);

	count_op(m);
	op_begin(req, p, "rmdir", name);
	switch (p->kind) {
	case FS_ROOT:
		rc = reg_model_delete(m->st, &actor_, name);
		break;
	case FS_MODEL:
		rc = reg_version_get(m->st, p->model, name, &v);
		if (rc == 0 && v.state == REG_DRAFT) {
			rc = version_empty(p, name);
			rc = rc < 0 ? rc : rc == 0 ? -ENOTEMPTY : 0;
		}
		if (rc == 0)
			rc = reg_version_delete(m->st, &actor_, p->model, name);
		if (rc == -EMLINK)
			rc = -EBUSY; /* aliased: rm -r of a served version says busy */
		break;
	case FS_VERSION:
	case FS_CONTENT:
		rc = change_begin(m, p, 1, &vid);
		if (rc == 0 && unlinkat(p->fd, name, AT_REMOVEDIR) < 0)
			rc = -errno;
		change_end(m, vid);
		break;
	default:
		rc = -ENOTDIR;
	}
	reply_err(req, rc);
}

/* rename in a model directory: only symlinks move, and moving one onto a name sets that alias. */
static int rename_alias(fuse_req_t req, struct fs_inode *p, const char *name, const char *newname,
			unsigned int flags)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *pend;
	char target[PATH_MAX];
	struct stat sb;
	int is_alias = 0;
	int rc;
	ACTOR(req);
	ACTOR_GROUPS(req);

	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return cm_err_set(-EINVAL, "aliases move with rename or RENAME_NOREPLACE only");
	pthread_mutex_lock(&m->mu);
	pend = fs_pending_find(m, p->model, name);
	if (pend)
		cm_strlcpy(target, pend->target, sizeof(target));
	pthread_mutex_unlock(&m->mu);
	if (!pend) {
		ssize_t n;

		if (fstatat(p->fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (!S_ISLNK(sb.st_mode))
			return cm_err_set(-EPERM, "versions and metadata.json cannot be renamed");
		n = readlinkat(p->fd, name, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		is_alias = 1;
	}
	if (fstatat(p->fd, newname, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (!S_ISLNK(sb.st_mode))
			return cm_err_set(-EPERM, "'%s' is not an alias and cannot be replaced", newname);
	}
	rc = reg_name_alias_check(newname);
	if (rc == 0 && is_alias)
		rc = reg_authz_check(m->st, &actor_, REG_AUTHZ_ALIAS_SET,
				     &(struct reg_authz_target){ .model = p->model, .alias = name });
	if (rc == 0)
		rc = link_target_check(m, p->model, target);
	if (rc == 0)
		rc = reg_alias_set(m->st, &actor_, p->model, newname, target, NULL, NULL);
	if (rc < 0) {
		cm_log(CM_LOG_WARN, "fs", "alias %s/%s -> %s refused (%s): %s", p->model, newname,
		       target, actor_buf_, cm_err_describe(rc));
		return rc;
	}
	cm_log(CM_LOG_INFO, "fs", "alias %s/%s -> %s (%s)", p->model, newname, target, actor_buf_);
	if (is_alias && strcmp(name, newname)) {
		rc = reg_alias_delete(m->st, &actor_, p->model, name, NULL);
		if (rc < 0)
			return rc;
	}
	if (pend) {
		pthread_mutex_lock(&m->mu);
		fs_pending_unlist(m, pend);
		pthread_mutex_unlock(&m->mu);
	}
	/* The kernel now maps newname to the old inode; have it look the real link up again. */
	fs_inval_push(m, (fuse_ino_t)(uintptr_t)p, newname, 0);
	return 0;
}

/*
 * mv X metadata.json: the record becomes X's text (validated: bad JSON fails
 * with EINVAL and leaves both names as they were, as a refused rename does),
 * then X goes. An empty X, like an empty metadata.json, is a name without a
 * record.
 */
static int rename_onto_record(fuse_req_t req, struct fs_inode *p, const char *name,
			      struct fs_inode *np, unsigned int flags)
{
	struct fs_mount *m = mnt(req);
	char *text = NULL;
	struct stat sb;
	ssize_t got;
	int fd = -1;
	int rc = 0;
	ACTOR(req);

	if ((flags & RENAME_NOREPLACE) && fstatat(np->fd, "metadata.json", &sb,
						   AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	fd = openat(p->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		goto done;
	}
	if (S_ISDIR(sb.st_mode)) {
		rc = cm_err_set(-EISDIR, "metadata.json is the version's record, a file");
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = -EINVAL;
		goto done;
	}
	if (sb.st_size > REG_META_MAX) {
		rc = cm_err_set(-EFBIG, "metadata records are limited to %d bytes", REG_META_MAX);
		goto done;
	}
	if (sb.st_size == 0) {
		rc = reg_version_metadata_remove(m->st, &actor_, np->model, np->version);
		if (rc == 0 && renameat(p->fd, name, np->fd, "metadata.json") < 0)
			rc = -errno;
		goto done;
	}
	text = malloc((size_t)sb.st_size);
	if (!text) {
		rc = -ENOMEM;
		goto done;
	}
	got = pread(fd, text, (size_t)sb.st_size, 0);
	if (got != sb.st_size) {
		rc = got < 0 ? -errno : -EIO;
		goto done;
	}
	rc = reg_version_metadata_set_text(m->st, &actor_, np->model, np->version, text,
					   (size_t)got);
	if (rc == 0 && unlinkat(p->fd, name, 0) < 0)
		rc = -errno;
	if (rc < 0)
		cm_log(CM_LOG_WARN, "fs", "rename onto %s/%s/metadata.json refused (%s): %s",
		       np->model, np->version, actor_buf_, cm_err_describe(rc));
done:
	free(text);
	if (fd >= 0)
		close(fd);
	return rc == -EROFS || rc == -E2BIG ? -EINVAL : rc;
}

/*
 * rename inside one draft. Flags: RENAME_NOREPLACE, and RENAME_EXCHANGE of
 * two content entries; anything else (RENAME_WHITEOUT makes a device) is
 * EINVAL. metadata.json moves like a file: onto it sets the record, away
 * from it removes the record (the moved file keeps the text).
 */
static int rename_in_version(fuse_req_t req, struct fs_inode *p, const char *name,
			     struct fs_inode *np, const char *newname, unsigned int flags)
{
	struct fs_mount *m = mnt(req);
	int from_rec = is_record(p, name), to_rec = is_record(np, newname);
	int64_t vid = 0;
	int rc;
	ACTOR(req);

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return cm_err_set(-EINVAL, "rename flags 0x%x are not supported", flags);
	if ((flags & RENAME_EXCHANGE) && (from_rec || to_rec))
		return cm_err_set(-EINVAL, "metadata.json cannot be exchanged");
	rc = new_name_check(newname);
	if (rc == 0)
		rc = change_begin(m, p, 1, &vid);
	if (rc < 0)
		return rc;
	if (from_rec && to_rec) {
		rc = 0; /* the same name: nothing moves */
	} else if (to_rec) {
		rc = rename_onto_record(req, p, name, np, flags);
	} else if (renameat2(p->fd, name, np->fd, newname, flags) < 0) {
		rc = -errno;
	} else if (from_rec) {
		rc = reg_version_metadata_remove(m->st, &actor_, p->model, p->version);
		if (rc < 0 && renameat2(np->fd, newname, p->fd, name, RENAME_NOREPLACE) < 0)
			cm_log(CM_LOG_WARN, "fs", "moving %s back to metadata.json: %s", newname,
			       strerror(errno));
	}
	change_end(m, vid);
	return rc;
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *p = fs_inode_get(m, parent);
	struct fs_inode *np = fs_inode_get(m, newparent);
	int rc;

	count_op(m);
	op_begin(req, np, "rename", newname);
	if (p->kind == FS_MODEL && np == p) {
		rc = rename_alias(req, p, name, newname, flags);
	} else if ((p->kind == FS_VERSION || p->kind == FS_CONTENT) &&
		   (np->kind == FS_VERSION || np->kind == FS_CONTENT)) {
		if (strcmp(p->model, np->model) || strcmp(p->version, np->version))
			rc = cm_err_set(-EXDEV, "files move only within one version");
		else
			rc = rename_in_version(req, p, name, np, newname, flags);
	} else if (p->kind == FS_MODEL || np->kind == FS_MODEL) {
		rc = cm_err_set(-EXDEV, "aliases and versions stay in their model");
	} else {
		rc = cm_err_set(-EPERM, "models cannot be renamed");
	}
	reply_err(req, rc);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	op_begin(req, fs_inode_get(mnt(req), newparent), "link", newname);
	reply_err(req, cm_err_set(-EPERM, "hard links are not supported"));
}

static struct fs_file *file_new(struct fs_mount *m, int fd)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->fd = fd;
	f->size = -1;
	pthread_mutex_lock(&m->mu);
	f->next = m->files;
	if (m->files)
		m->files->prev = f;
	m->files = f;
	pthread_mutex_unlock(&m->mu);
	return f;
}

static void file_free(struct fs_mount *m, struct fs_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&m->mu);
	if (f->prev)
		f->prev->next = f->next;
	else if (m->files == f)
		m->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&m->mu);
	if (f->fd >= 0)
		close(f->fd);
	if (f->vid > 0)
		reg_write_end(m->st, f->vid);
	if (f->hold > 0)
		reg_version_unhold(m->st, f->hold);
	for (size_t i = 0; i < f->nents; i++)
		free(f->ents[i].name);
	free(f->ents);
	free(f);
}

void fs_files_free_all(struct fs_mount *m)
{
	while (m->files)
		file_free(m, m->files);
}

/* Opens a draft's metadata.json for writing: a staging copy, checked when closed. */
static int open_meta_staging(struct fs_inode *in, int flags, int *out)
{
	char path[64];
	char buf[65536];
	int src, fd;
	ssize_t n;

	fd = memfd_create("modelfs-metadata", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!(flags & O_TRUNC)) {
		proc_path(path, sizeof(path), in->fd);
		src = open(path, O_RDONLY | O_CLOEXEC);
		if (src >= 0) {
			while ((n = read(src, buf, sizeof(buf))) > 0)
				if (write(fd, buf, (size_t)n) != n)
					break;
			close(src);
		}
	}
	*out = fd;
	return 0;
}

/* Undoes a failed open or create: the fd, the writer count, then the error reply. */
static void open_failed(fuse_req_t req, int fd, int64_t vid, int rc)
{
	if (fd >= 0)
		close(fd);
	if (vid > 0)
		reg_write_end(mnt(req)->st, vid);
	reply_err(req, rc < 0 ? rc : -ENOMEM);
}

/*
 * Picks the read path of an open content file: passthrough for a read-only
 * open of a sealed file, the splice path otherwise. Drafts stay on the splice
 * path: their writes go through the daemon (the writer count that keeps a
 * seal out, the seal's critical section, metadata.json's staging copy), and a
 * passthrough open would route writes around all of that.
 * The kernel refuses (EIO) an open in one io mode while the inode has files
 * open in the other, and a draft reader may keep its file open across the
 * seal: so the choice and the counts are made together under bmu, and a
 * sealed file stays on the splice path while such a reader is still there.
 * The first passthrough open registers its fd as the inode's backing file;
 * later ones share the id; the last release (io_mode_drop) closes it.
 * Returns 1 when fi carries a backing id, 0 for the splice path.
 */
static int io_mode_pick(fuse_req_t req, struct fs_mount *m, struct fs_inode *in,
			struct fs_file *f, struct fuse_file_info *fi, int writing)
{
	int pt = 0;

	if (!atomic_load(&m->pt_on))
		return 0; /* no passthrough open can exist: nothing to count */
	pthread_mutex_lock(&m->bmu);
#ifdef FS_HAVE_PASSTHROUGH
	if (!writing && atomic_load(&in->sealed) && !in->cached_opens) {
		if (!in->backing_id) {
			int id = fuse_passthrough_open(req, f->fd);

			if (id > 0)
				in->backing_id = id;
			else if (!atomic_exchange(&m->pt_warned, 1))
				cm_log(CM_LOG_WARN, "fs", "the kernel refused %s/%s as a backing file "
				       "(%s): such files are read on the splice path (logged once)",
				       in->model, in->version, strerror(errno));
		}
		if (in->backing_id) {
			in->backing_opens++;
			fi->backing_id = in->backing_id;
			f->passthrough = 1;
			pt = 1;
		}
	}
#else
	(void)req;
	(void)writing;
#endif
	if (!pt) {
		in->cached_opens++;
		f->cached = 1;
	}
	pthread_mutex_unlock(&m->bmu);
	if (pt)
		atomic_fetch_add_explicit((_Atomic uint64_t *)&m->stats.passthrough_opens, 1,
					  memory_order_relaxed);
	return pt;
}

/*
 * A file goes away: uncounted if io_mode_pick counted it; the last
 * passthrough open of an inode closes its backing id.
 */
static void io_mode_drop(fuse_req_t req, struct fs_mount *m, struct fs_inode *in,
			 struct fs_file *f)
{
	pthread_mutex_lock(&m->bmu);
	if (f->cached)
		in->cached_opens--;
#ifdef FS_HAVE_PASSTHROUGH
	if (f->passthrough && --in->backing_opens == 0) {
		if (fuse_passthrough_close(req, in->backing_id) < 0)
			cm_log(CM_LOG_DEBUG, "fs", "closing backing id %d of %s/%s: %s",
			       in->backing_id, in->model, in->version, strerror(errno));
		in->backing_id = 0;
	}
#else
	(void)req;
#endif
	pthread_mutex_unlock(&m->bmu);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *in = fs_inode_get(m, ino);
	int writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	struct fs_file *f = NULL;
	char path[64];
	int64_t vid = 0, hold = 0;
	int fd = -1;
	int rc = 0;

	count_op(m);
	op_begin(req, in, "open", NULL);
	if (in->kind != FS_CONTENT && in->kind != FS_MMETA) {
		reply_err(req, -EISDIR);
		return;
	}
	if (writing) {
		if (in->kind == FS_MMETA)
			rc = cm_err_set(-EROFS, "%s/metadata.json is generated by the registry", in->model);
		else
			rc = draft_check(m, in, 0);
		if (rc == 0 && in->is_meta) {
			rc = open_meta_staging(in, fi->flags, &fd);
		} else if (rc == 0) {
			rc = reg_write_begin(m->st, in->model, in->version, &vid);
			if (rc == 0) {
				proc_path(path, sizeof(path), in->fd);
				fd = open(path, (fi->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
				if (fd < 0)
					rc = -errno;
			}
		}
	} else {
		/* A version sealed since this inode was looked up: its files now take passthrough. */
		if (in->kind == FS_CONTENT && !in->is_meta)
			version_sealed(m, in);
		proc_path(path, sizeof(path), in->fd);
		fd = open(path, O_RDONLY | O_CLOEXEC | (fi->flags & O_DIRECT));
		if (fd < 0)
			rc = -errno;
	}
	/* A sealed file changed on the volume behind the registry is never served. */
	if (rc == 0 && !writing && in->kind == FS_CONTENT && !in->is_meta)
		rc = reg_file_check(m->st, in->model, in->version, NULL, fd);
	/*
	 * A file open for reading keeps its version from being deleted (delete,
	 * gc). The inode remembers the version's id: the name lookup runs once.
	 * (reg_file_check has just said the version is there.)
	 */
	if (rc == 0 && !writing && in->kind == FS_CONTENT && !in->is_meta) {
		hold = atomic_load(&in->vid);
		if (hold > 0)
			rc = reg_version_hold_id(m->st, hold);
		else if ((rc = reg_version_hold(m->st, in->model, in->version, &hold)) == 0)
			atomic_store(&in->vid, hold);
		if (rc < 0)
			hold = 0;
	}
	if (rc == 0 && !(f = file_new(m, fd)))
		rc = -ENOMEM;
	if (rc < 0 || !f) {
		if (hold > 0)
			reg_version_unhold(m->st, hold);
		open_failed(req, fd, vid, rc);
		return;
	}
	fd = -1;
	f->vid = vid;
	f->hold = hold;
	f->meta = in->is_meta && writing;
	f->meta_dirty = f->meta && (fi->flags & O_TRUNC);
	fi->fh = (uint64_t)(uintptr_t)f;
	if (in->is_meta || in->kind == FS_MMETA) {
		fi->direct_io = 1; /* small, regenerated on every change: never from a stale cache */
	} else if (!io_mode_pick(req, m, in, f, fi, writing)) {
		struct stat sb;

		fi->keep_cache = atomic_load(&in->sealed); /* sealed content never changes */
		fi->noflush = !writing;
		/* Nor does its size: fs_read counts bytes without a stat per request. */
		if (fi->keep_cache && !writing && fstat(f->fd, &sb) == 0)
			f->size = sb.st_size;
	} else {
		fi->noflush = 1;
	}
	fuse_reply_open(req, fi);
}

/*
 * Creates a draft's metadata.json (after rm, or in a new version): an empty
 * file on disk is the name, the record comes when the written text is
 * stored at close. O_EXCL fails with EEXIST while a record exists.
 */
static void record_create(fuse_req_t req, struct fs_inode *p, struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct fs_file *f = NULL;
	struct fs_inode *in;
	int64_t vid = 0;
	int fd = -1;
	int rc;

	rc = change_begin(m, p, 0, &vid);
	if (rc == 0) {
		fd = openat(p->fd, "metadata.json",
			    O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (fi->flags & O_EXCL), 0644);
		if (fd < 0)
			rc = -errno;
		else if (fchown(fd, c->uid, c->gid) < 0)
			cm_log(CM_LOG_WARN, "fs", "chown metadata.json: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	change_end(m, vid);
	if (rc == 0)
		rc = do_lookup(m, p, "metadata.json", &e);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	in = fs_inode_get(m, e.ino);
	rc = open_meta_staging(in, fi->flags, &fd);
	if (rc == 0 && !(f = file_new(m, fd)))
		rc = -ENOMEM;
	if (rc < 0 || !f) {
		if (fd >= 0)
			close(fd);
		fs_inode_unref(m, in, 1);
		reply_err(req, rc);
		return;
	}
	f->meta = 1;
	f->meta_dirty = !!(fi->flags & O_TRUNC);
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->direct_io = 1;
	fuse_reply_create(req, &e, fi);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *p = fs_inode_get(m, parent);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct fs_file *f = NULL;
	int64_t vid = 0;
	int fd = -1;
	int rc;

	count_op(m);
	op_begin(req, p, "create", name);
	if (p->kind != FS_VERSION && p->kind != FS_CONTENT)
		rc = cm_err_set(-EPERM, "files live in versions (mkdir a version first)");
	else
		rc = new_name_check(name);
	if (rc == 0 && is_record(p, name)) {
		record_create(req, p, fi);
		return;
	}
	if (rc == 0)
		rc = change_begin(m, p, 0, &vid);
	if (rc == 0) {
		fd = openat(p->fd, name, (fi->flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC) & ~O_DIRECTORY,
			    mode & 07777);
		if (fd < 0)
			rc = -errno;
		else if (fchown(fd, c->uid, c->gid) < 0)
			cm_log(CM_LOG_WARN, "fs", "chown %s: %s", name, strerror(errno));
	}
	if (rc == 0)
		rc = do_lookup(m, p, name, &e);
	if (rc == 0 && !(f = file_new(m, fd)))
		rc = -ENOMEM;
	if (rc < 0 || !f) {
		open_failed(req, fd, vid, rc);
		return;
	}
	f->vid = vid;
	fi->fh = (uint64_t)(uintptr_t)f;
	fuse_reply_create(req, &e, fi);
}

/*
 * The kernel now holds the pages just read in the FUSE file's cache; keeping
 * the backing file's copy too would double the memory. Drop the backing pages
 * a window behind the furthest byte served while a reader moves forward.
 * Readahead runs several requests of one file at once on different threads,
 * so they arrive slightly out of order: a read counts as sequential while it
 * lands between the dropped mark and one window past the furthest byte.
 * seq_next (the furthest byte) and dropped only grow while the reader stays
 * sequential, and a CAS on dropped makes one thread drop each range. Ranges
 * are whole, aligned windows: a large folio that straddles a range boundary is
 * not dropped at all, so unaligned ranges would leave one behind every time.
 * A seek elsewhere starts over from there.
 */
static void drop_behind(struct fs_file *f, off_t off, size_t size)
{
	off_t end = off + (off_t)size;
	off_t hw = __atomic_load_n(&f->seq_next, __ATOMIC_RELAXED);
	off_t dropped = __atomic_load_n(&f->dropped, __ATOMIC_RELAXED);
	off_t upto;

	if (off < dropped || off > hw + DROP_WINDOW) {
		__atomic_store_n(&f->dropped, off & ~(off_t)(DROP_WINDOW - 1), __ATOMIC_RELAXED);
		__atomic_store_n(&f->seq_next, end, __ATOMIC_RELAXED);
		return;
	}
	while (end > hw && !__atomic_compare_exchange_n(&f->seq_next, &hw, end, 0, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
		;
	if (end > hw)
		hw = end;
	upto = (hw - DROP_WINDOW) & ~(off_t)(DROP_WINDOW - 1);
	if (upto > dropped && __atomic_compare_exchange_n(&f->dropped, &dropped, upto, 0,
							  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		posix_fadvise(f->fd, dropped, upto - dropped, POSIX_FADV_DONTNEED);
}

/*
 * The splice read path: hand libfuse the backing fd and offset, so the kernel
 * splices the bytes into /dev/fuse without a copy through this process.
 * Files opened in passthrough mode never get here: the kernel reads their
 * backing file itself, so bytes_read does not count them (the metrics say
 * so) and there is no second copy in the page cache for drop_behind to drop.
 */
static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_file *f = ffile(fi);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)ino;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = f->fd;
	buf.buf[0].pos = off;
	/* Counted before the reply, so a reader that got its bytes also sees them counted. */
	{
		struct stat sb;
		off_t end = f->size;
		uint64_t n = size;

		if (end < 0 && fstat(f->fd, &sb) == 0)
			end = sb.st_size; /* a draft: its size may change under us */
		if (end >= 0) {
			uint64_t left = off >= end ? 0 : (uint64_t)(end - off);

			n = left < size ? left : size;
		}
		atomic_fetch_add_explicit((_Atomic uint64_t *)&m->stats.bytes_read, n,
					  memory_order_relaxed);
	}
	/*
	 * Before the reply: once it is sent, a RELEASE may free f on another
	 * thread. The range dropped ends a window behind this read, never in it.
	 */
	drop_behind(f, off, size);
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void fs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_file *f = ffile(fi);
	size_t len = fuse_buf_size(in_buf);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);
	ssize_t n;

	op_begin(req, fs_inode_get(m, ino), "write", NULL);
	if (f->meta && (uint64_t)off + len > REG_META_MAX) {
		reply_err(req, cm_err_set(-EFBIG, "metadata records are limited to %d bytes",
					  REG_META_MAX));
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = f->fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	if (f->meta)
		f->meta_dirty = 1;
	atomic_fetch_add_explicit((_Atomic uint64_t *)&m->stats.bytes_written, (uint64_t)n,
				  memory_order_relaxed);
	fuse_reply_write(req, (size_t)n);
}

/*
 * Stores a rewritten metadata.json's staging copy as the record, or refuses
 * it: bad JSON, a NUL byte or a frozen field is EINVAL (close() and fsync()
 * fail, the prior record stays). Read with its length and capped: the
 * staging file never holds more than REG_META_MAX (write and truncate say
 * EFBIG), so neither does this process.
 */
static int meta_store(fuse_req_t req, struct fs_inode *in, struct fs_file *f)
{
	struct fs_mount *m = mnt(req);
	char *text = NULL;
	struct stat sb;
	ssize_t got;
	int rc = 0;
	ACTOR(req);

	if (!f->meta || !f->meta_dirty)
		return 0;
	if (fstat(f->fd, &sb) < 0)
		return -errno;
	/*
	 * A shell redirection closes a duplicate of the fd before anything is
	 * written; an empty file is "not written yet", not a record. Write {}
	 * to clear a draft's record.
	 */
	if (sb.st_size == 0)
		return 0;
	if (sb.st_size > REG_META_MAX)
		return cm_err_set(-EFBIG, "metadata records are limited to %d bytes", REG_META_MAX);
	text = malloc((size_t)sb.st_size);
	if (!text)
		return -ENOMEM;
	got = pread(f->fd, text, (size_t)sb.st_size, 0);
	if (got < 0)
		rc = -errno;
	if (rc == 0)
		rc = reg_version_metadata_set_text(m->st, &actor_, in->model, in->version, text,
						   (size_t)got);
	free(text);
	if (rc == 0)
		f->meta_dirty = 0;
	else
		cm_log(CM_LOG_WARN, "fs", "metadata.json of %s/%s refused (%s): %s", in->model,
		       in->version, actor_buf_, cm_err_describe(rc));
	/* Bad JSON or schema, a frozen field: EINVAL, and the prior record stays. */
	return rc == -EROFS || rc == -E2BIG ? -EINVAL : rc;
}

/* close(): a rewritten metadata.json is parsed, validated and stored here, or refused. */
static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);

	op_begin(req, fs_inode_get(m, ino), "close", NULL);
	reply_err(req, meta_store(req, fs_inode_get(m, ino), ffile(fi)));
}

/* Files and directories alike: an fs_file goes away. */
static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_file *f = ffile(fi);

	/*
	 * An open file holds a lookup of its inode: ino is still in the table.
	 * Its io-mode flags are read under bmu, which io_mode_pick held when it
	 * set them (the open ran on another thread).
	 */
	if (atomic_load(&m->pt_on))
		io_mode_drop(req, m, fs_inode_get(m, ino), f);
	file_free(m, f);
	fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_file *f = ffile(fi);
	int rc;

	if (f->meta)
		rc = meta_store(req, fs_inode_get(mnt(req), ino), f); /* durable once stored */
	else
		rc = (datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0 ? -errno : 0;
	reply_err(req, rc);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct fs_file *f = ffile(fi);

	(void)ino;
	if (f->meta) {
		reply_err(req, -EOPNOTSUPP);
		return;
	}
	reply_err(req, fallocate(f->fd, mode, off, len) < 0 ? -errno : 0);
}

static int dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fs_dirent *)a)->name, ((const struct fs_dirent *)b)->name);
}

struct pending_ents {
	int dirfd;
	struct fs_dirent **v;
	size_t *n, *cap;
};

/* A pending link for a listing, unless a real entry has its name (that one is listed). */
static int pending_ent(void *ctx, struct fs_inode *p)
{
	struct pending_ents *pe = ctx;
	struct fs_dirent *d;
	struct stat sb;

	if (fstatat(pe->dirfd, p->name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (cm_grow(pe->v, pe->cap, *pe->n + 1, sizeof(**pe->v), 64) < 0)
		return -ENOMEM;
	d = &(*pe->v)[*pe->n];
	d->name = strdup(p->name);
	d->type = DT_LNK;
	d->ino = (ino_t)(uintptr_t)p;
	if (!d->name)
		return -ENOMEM;
	(*pe->n)++;
	return 0;
}

/* What a directory shows: the backing entries less private ones, plus pending links. */
static int dir_snapshot(struct fs_mount *m, struct fs_inode *in, struct fs_file *f)
{
	struct fs_dirent *v = NULL;
	struct reg_version *arch = NULL;
	size_t n = 0, cap = 0, narch = 0;
	struct dirent *de;
	DIR *d;
	int fd;
	int rc;

	if (in->kind == FS_MODEL && !m->cfg.show_archived) {
		struct reg_version_filter af = { .state = REG_ARCHIVED };

		/* Archived versions stay reachable by name; `ls` leaves them out. */
		rc = reg_version_list(m->st, in->model, &af, &arch, &narch);
		if (rc < 0)
			return rc;
	}
	/* openat(".") on the O_PATH fd: half the cost of reopening through /proc. */
	fd = openat(in->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		free(arch);
		return -errno;
	}
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		free(arch);
		return rc;
	}
	for (;;) {
		const char *name;
		unsigned char type;
		ino_t ino;
		int keep;

		rc = cm_readdir(d, &de);
		if (rc <= 0)
			break;
		name = de->d_name;
		type = de->d_type;
		ino = de->d_ino;
		keep = !strcmp(name, ".") || !strcmp(name, "..");
		if (!keep) {
			switch (in->kind) {
			case FS_ROOT:
				keep = name[0] != '.' && type == DT_DIR && reg_name_model_check(name) == 0;
				break;
			case FS_MODEL:
				keep = name[0] != '.';
				for (size_t i = 0; keep && i < narch; i++)
					keep = strcmp(name, arch[i].name) != 0;
				break;
			default:
				keep = 1;
			}
		}
		if (!keep)
			continue;
		rc = -ENOMEM;
		if (cm_grow(&v, &cap, n + 1, sizeof(*v), 64) < 0)
			break;
		v[n].name = strdup(name);
		v[n].type = type;
		v[n].ino = ino;
		if (!v[n].name)
			break;
		n++;
	}
	closedir(d);
	free(arch);
	if (rc == 0 && in->kind == FS_MODEL) {
		struct pending_ents pe = { .dirfd = in->fd, .v = &v, .n = &n, .cap = &cap };

		pthread_mutex_lock(&m->mu);
		rc = fs_pending_each(m, in->model, pending_ent, &pe);
		pthread_mutex_unlock(&m->mu);
	}
	if (rc < 0) {
		/* A short listing must not pass for the directory. */
		for (size_t i = 0; i < n; i++)
			free(v[i].name);
		free(v);
		return rc;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), dirent_cmp);
	f->ents = v;
	f->nents = n;
	return 0;
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *in = fs_inode_get(m, ino);
	struct fs_file *f;
	int rc;

	count_op(m);
	if (in->kind == FS_ALIAS || in->kind == FS_PENDING || in->kind == FS_MMETA) {
		reply_err(req, -ENOTDIR);
		return;
	}
	f = file_new(m, -1);
	if (!f) {
		reply_err(req, -ENOMEM);
		return;
	}
	rc = dir_snapshot(m, in, f);
	if (rc < 0) {
		file_free(m, f);
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	/*
	 * Listings of the root, models and sealed versions are cached by the
	 * kernel; changes through the mount drop the cache themselves and changes
	 * from other channels are invalidated (fs_on_change).
	 */
	if (in->kind == FS_ROOT || in->kind == FS_MODEL ||
	    ((in->kind == FS_VERSION || in->kind == FS_CONTENT) && atomic_load(&in->sealed))) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *in = fs_inode_get(m, ino);
	struct fs_file *f = ffile(fi);
	char *buf = calloc(1, size);
	size_t used = 0;

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < f->nents; i++) {
		struct fs_dirent *d = &f->ents[i];
		size_t need;

		if (plus) {
			struct fuse_entry_param e;

			memset(&e, 0, sizeof(e));
			if (!strcmp(d->name, ".") || !strcmp(d->name, "..")) {
				e.attr.st_ino = d->ino;
				e.attr.st_mode = (mode_t)d->type << 12;
			} else if (do_lookup(m, in, d->name, &e) < 0) {
				continue; /* gone since the snapshot */
			}
			need = fuse_add_direntry_plus(req, buf + used, size - used, d->name, &e,
						      (off_t)i + 1);
			if (need > size - used) {
				if (e.ino)
					fs_inode_unref(m, fs_inode_get(m, e.ino), 1);
				break;
			}
		} else {
			struct stat sb = { .st_ino = d->ino, .st_mode = (mode_t)d->type << 12 };

			need = fuse_add_direntry(req, buf + used, size - used, d->name, &sb,
						 (off_t)i + 1);
			if (need > size - used)
				break;
		}
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_mount *m = mnt(req);
	struct fs_inode *in = fs_inode_get(m, ino);
	int fd, rc = 0;

	(void)datasync;
	(void)fi;
	fd = openat(in->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	reply_err(req, rc);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_mount *m = mnt(req);
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(m->store_fd, &sv) < 0)
		reply_err(req, -errno);
	else
		fuse_reply_statfs(req, &sv);
}

/*
 * No extended attributes: `ls -l` asks for two per entry and the kernel
 * does not cache the answers. ENOSYS makes the kernel stop asking.
 */
static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENOSYS);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	(void)size;
	fuse_reply_err(req, ENOSYS);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, ENOSYS);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fuse_reply_err(req, ENOSYS);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write_buf = fs_write_buf,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_release,
	.fsyncdir = fs_fsyncdir,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
};
