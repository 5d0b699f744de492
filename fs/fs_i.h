/* SPDX-License-Identifier: Apache-2.0 */
/* fs internals: the inode table, open files, and the mount's shared state. */
#ifndef MODELFS_FS_I_H
#define MODELFS_FS_I_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "cm.h"
#include "fs.h"
#include "reg.h"

/* Where an inode sits in the tree decides what may happen to it. */
enum fs_kind {
	FS_ROOT,     /* the store root: models */
	FS_MODEL,    /* a model directory: versions, aliases, metadata.json */
	FS_ALIAS,    /* an alias symlink (backing symlink) */
	FS_PENDING,  /* a symlink made under a temporary name, not yet an alias */
	FS_MMETA,    /* <model>/metadata.json (generated, read-only) */
	FS_VERSION,  /* a version directory */
	FS_CONTENT,  /* a file or directory inside a version */
};

struct fs_inode {
	struct fs_inode *hnext;     /* hash chain by (dev, ino) */
	struct fs_inode *pnext;     /* pending links: the hash chain (pending.c) */
	int fd;                     /* O_PATH fd of the backing object; -1 for pending */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;           /* guarded by fs->mu */
	enum fs_kind kind;
	int is_meta;                /* a version's metadata.json */
	int meta_owned;             /* a draft's metadata.json: shown as its version's owner's */
	uid_t meta_uid;
	gid_t meta_gid;
	atomic_int sealed;          /* version sealed or archived (only ever goes 0 -> 1) */
	_Atomic int64_t vid;        /* FS_CONTENT: its version's id once a hold learnt it; 0 before */
	/*
	 * The kernel puts an inode in one io mode at a time: opens in
	 * passthrough mode and cached (splice) opens must not overlap, or the
	 * later open fails with EIO. Guarded by fs_mount.bmu.
	 */
	int backing_id;             /* registered backing file, shared by its passthrough opens */
	unsigned backing_opens;     /* open files using backing_id */
	unsigned cached_opens;      /* open files on the splice path (fs_open's only) */
	char model[REG_NAME_MAX];
	char version[REG_NAME_MAX];
	/* FS_PENDING only: */
	int listed;                 /* still a pending link of its model (not renamed/unlinked) */
	char name[NAME_MAX + 1];
	char *target;
	struct stat pst;
	int64_t pend_until;         /* CLOCK_MONOTONIC µs when it expires */
};

/* One directory entry of a snapshot taken at opendir. */
struct fs_dirent {
	char *name;
	ino_t ino;
	unsigned char type;
};

/* An open file or directory. */
struct fs_file {
	struct fs_file *prev, *next; /* the mount's open files (fs_mount.files, under mu) */
	int fd;
	int64_t vid;                /* >0 while counted as a writer of a draft */
	int64_t hold;               /* >0: a reading open holding its version (reg_version_hold) */
	int meta;                   /* staging copy of a version's metadata.json */
	int meta_dirty;
	off_t size;                 /* a sealed file's size, fixed at open; -1 when it may change */
	off_t seq_next;             /* sequential-read tracking for page-cache drops */
	off_t dropped;
	int passthrough;            /* counted in its inode's backing_opens */
	int cached;                 /* counted in its inode's cached_opens */
	/* directories: a snapshot, offsets are indexes + 1 */
	struct fs_dirent *ents;
	size_t nents;
};

struct fs_inval {
	struct fs_inval *next;
	fuse_ino_t parent;          /* inval_entry(parent, name) when name[0] */
	fuse_ino_t ino;             /* inval_inode(ino) when set */
	char name[NAME_MAX + 1];
};

struct fs_mount {
	struct reg_store *st;
	struct fs_config cfg;
	struct fuse_session *se;
	int mounted;
	int store_fd;
	pthread_mutex_t mu;         /* inode table and pending links */
	struct fs_inode **pend_tab; /* pending links by (model, name), pending.c; NULL until one */
	size_t pend_n;
	struct fs_file *files;      /* open files: the ones never released are freed at close */
	struct fs_inode root;
	struct fs_inode **tab;
	size_t tab_cap, tab_n;
	/* invalidations, sent by their own thread so no request path waits on the kernel */
	pthread_t inval_thread;
	int inval_started;
	pthread_mutex_t qmu;
	pthread_cond_t qcv;
	struct fs_inval *qhead, *qtail;
	int qstop;
	/* set by fs_mount_end(): no more kernel notifications (nobody would answer them) */
	atomic_int ending;
	struct fs_stats stats;
	/* read path: decided at fs_mount_open and in fs_init, read-only afterwards */
	atomic_int pt_on;           /* sealed files open in passthrough mode */
	char pt_off[256];           /* why not, when pt_on is 0 */
	atomic_int pt_decided;      /* set (release) once fs_init has settled pt_on and pt_off */
	atomic_int pt_warned;       /* a failed fuse_passthrough_open was logged */
	pthread_mutex_t bmu;        /* backing ids and io-mode counts of inodes */
	/* the request loop's thread (fs_mount_start/fs_mount_end) */
	pthread_t loop_thread;
	int loop_started;
	int loop_rc;
	char loop_err[CM_ERR_MAX];
	void (*on_end)(void *ctx);
	void *on_end_ctx;
};

/* inode.c */
int fs_table_init(struct fs_mount *m);
void fs_table_free(struct fs_mount *m);
struct fs_inode *fs_inode_get(struct fs_mount *m, fuse_ino_t ino);
/* Finds or adds the inode for an O_PATH fd (ownership of fd passes), taking a lookup ref. */
struct fs_inode *fs_inode_ref(struct fs_mount *m, int fd, const struct stat *sb, enum fs_kind kind,
			      const char *model, const char *version);
void fs_inode_unref(struct fs_mount *m, struct fs_inode *in, uint64_t n);
/* Inode of model `model` (or of its version) if the kernel knows it; 0 otherwise. */
fuse_ino_t fs_inode_find(struct fs_mount *m, enum fs_kind kind, const char *model,
			 const char *version);

/* pending.c: temporary-name links, all calls under m->mu */
#define FS_PENDING_PER_UID 64
#define FS_PENDING_PER_MODEL 256
#define FS_PENDING_MAX 4096
#define FS_PENDING_TTL_S 60
/* The live pending link `name` of `model`, or NULL (an expired one is dropped). */
struct fs_inode *fs_pending_find(struct fs_mount *m, const char *model, const char *name);
/* Lists `in` (model, name, pst.st_uid set); -EEXIST, or -ENOSPC past a cap. */
int fs_pending_add(struct fs_mount *m, struct fs_inode *in);
/* Takes p out (renamed, unlinked, shadowed); frees it when the kernel holds no reference. */
void fs_pending_unlist(struct fs_mount *m, struct fs_inode *p);
/* Calls fn for each live pending link of `model`; stops at, and returns, its first error. */
int fs_pending_each(struct fs_mount *m, const char *model,
		    int (*fn)(void *ctx, struct fs_inode *p), void *ctx);
void fs_pending_free_all(struct fs_mount *m);

/* notify.c */
int fs_inval_start(struct fs_mount *m);
void fs_inval_stop(struct fs_mount *m);
void fs_inval_push(struct fs_mount *m, fuse_ino_t parent, const char *name, fuse_ino_t ino);

extern const struct fuse_lowlevel_ops fs_ops;
/* Frees the files the kernel never released (the mount went away first). */
void fs_files_free_all(struct fs_mount *m);

#endif
