/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry: the core of modelfs. A store is a directory (the model volume)
 * with models, versions, files and alias symlinks on disk and the metadata,
 * policy and event log in .modelfs/registry.db. The FUSE view and the REST
 * API are thin adapters over these calls; nothing here knows of either.
 *
 * Conventions: functions return 0 (or a count) on success and -errno on
 * failure, with detail in cm_err_msg(). `**out` parameters are owned by the
 * caller and untouched on failure. All functions are safe to call from many
 * threads at once on one store (see the threading model in registry/db.c).
 */
#ifndef MODELFS_REG_H
#define MODELFS_REG_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#define REG_NAME_MAX 64 /* names are at most 63 bytes, plus NUL */
#define REG_REASON_MAX 1024 /* bytes of a change's reason (force, rollback) */
#define REG_META_MAX (1024 * 1024) /* largest metadata record, in bytes of JSON */

struct reg_store;

enum reg_state { REG_DRAFT = 0, REG_SEALED = 1, REG_ARCHIVED = 2 };

/*
 * Who asks, for the one authorisation decision (registry/authz.c). A
 * zero-initialised actor is TRUSTED: the store's operator running an offline
 * command (cli, import, git read-back), allowed everything.
 */
enum reg_actor_kind {
	REG_ACTOR_TRUSTED = 0, /* the store's operator: cli, import, git */
	REG_ACTOR_UID,         /* a process through the mount: uid, gid, groups */
	REG_ACTOR_TOKEN,       /* an HTTP request: the role of its bearer token */
};
enum reg_role { REG_ROLE_NONE = 0, REG_ROLE_READER, REG_ROLE_WRITER, REG_ROLE_ADMIN };

/* Who did something, recorded on every event. Strings and groups are borrowed. */
struct reg_actor {
	const char *channel; /* "fs", "api", "git", "cli", "import" */
	const char *name;    /* "uid=1000,gid=1000" or a token's name */
	enum reg_actor_kind kind;
	uid_t uid;           /* REG_ACTOR_UID */
	gid_t gid;
	const gid_t *groups; /* supplementary groups, ngroups of them */
	int ngroups;
	enum reg_role role;  /* REG_ACTOR_TOKEN: the token's role */
	int anonymous;       /* REG_ACTOR_TOKEN: no token presented (role says what that grants) */
};

struct reg_model {
	int64_t id;
	char name[REG_NAME_MAX];
	int64_t created_us;
};

struct reg_version {
	int64_t id;
	char model[REG_NAME_MAX];
	char name[REG_NAME_MAX];
	int64_t seq;
	enum reg_state state;
	int64_t created_us;
	int64_t sealed_us;      /* 0 while a draft */
	int64_t total_size;     /* content bytes; 0 while a draft */
	char digest[65];        /* content digest; "" while a draft */
	char validation_status[16]; /* "" when unset */
};

struct reg_alias {
	char name[REG_NAME_MAX];
	char version[REG_NAME_MAX];
	int percent;            /* -1 when the alias has no traffic percent */
	int64_t updated_us;
};

struct reg_file {
	char *path;             /* relative to the version directory */
	int64_t size;
	char sha256[65];        /* "" for draft files */
	mode_t mode;
	/* Sealed files: what fstat reported after the seal (0 when not recorded). */
	int64_t ino, mtime_ns, ctime_ns;
};

/* ---- store ---- */

enum reg_open_flags {
	REG_OPEN_CREATE = 1 << 0,   /* create .modelfs/ and the db when missing */
	REG_OPEN_LOCK = 1 << 1,     /* take the store's exclusive writer lock */
	REG_OPEN_READONLY = 1 << 2, /* no writes at all: no reconcile, no import */
	REG_OPEN_NO_RECONCILE = 1 << 3, /* skip the disk/db reconcile at open */
};

/*
 * Opens the store at `path`. With REG_OPEN_CREATE a directory without
 * .modelfs/ is initialised; a tree in the ADR layout found there is adopted
 * (models, versions, hashed files, metadata.json records, alias symlinks),
 * as one import event per model (an adoption cut short by a crash resumes at
 * the next open). Unless READONLY or NO_RECONCILE, the disk is then
 * reconciled with the db (alias symlinks, metadata files, sealed file modes,
 * deletes a crash interrupted); directories the db does not know are left to
 * fsck --repair and import.
 * With REG_OPEN_LOCK, fails with -EBUSY when another process holds the lock.
 * Returns 0 and *out, or -errno.
 */
int reg_store_open(const char *path, unsigned flags, struct reg_store **out);

/*
 * The metadata database of stores opened from now on: a PostgreSQL URI or
 * conninfo ("postgresql://host/db", "host=/run/pg dbname=models"), or NULL
 * or "" for SQLite in .modelfs/ (the default). The store directory stays
 * the volume (files, links, lock); a database already holding another
 * store's metadata is refused at open. Call before threads use the registry.
 * 0 or -errno (-EINVAL for a URL that is neither).
 */
int reg_db_set(const char *url);
/* What reg_db_set() set (NULL for SQLite); borrowed. */
const char *reg_db_get(void);

/* The metadata backend of an open store, for /readyz and /metrics. */
struct reg_db_status {
	const char *kind;       /* "sqlite" or "postgresql" */
	int connected;          /* 0 when the last use found the server unreachable */
	int64_t reconnects;     /* connections re-established since the open */
};
void reg_store_db_status(struct reg_store *st, struct reg_db_status *out);

/*
 * Moves the store's metadata and whole event history from its database
 * (reg_db_get(): PostgreSQL, or NULL for SQLite in .modelfs/) to `to`: a
 * PostgreSQL URI/conninfo (an empty database) or "sqlite" (a new
 * .modelfs/registry.db; one left by an earlier move is renamed aside).
 * Holds the store lock and the source's writer lock throughout; the target
 * is committed first, then the source is marked moved (its store id
 * becomes "moved:<id>", so it is refused from then on). report gets
 * {"from", "to", "tables": {name: rows}}. 0 or -errno.
 */
int reg_store_migrate(const char *path, const char *to, json_t **report);

/* Closes the store (checkpoints the WAL, releases the lock). Accepts NULL. */
void reg_store_close(struct reg_store *st);

/* The store's root directory fd, borrowed; valid until reg_store_close(). */
int reg_store_fd(const struct reg_store *st);

/*
 * How many times the disk view (symlinks, metadata files) could not be
 * brought in step after a commit since the store was opened; the last
 * message goes to msg. The db stays the truth; reconcile heals the disk.
 */
int64_t reg_store_disk_errors(struct reg_store *st, char *msg, size_t n);
/*
 * How many opens of sealed files were refused because the file changed on
 * the volume after its seal, since the store was opened; *files (optional)
 * gets how many distinct files, msg the last refusal.
 */
int64_t reg_store_integrity(struct reg_store *st, int64_t *files, char *msg, size_t n);

/* A committed change, as told to the change hook. Strings are borrowed for the call. */
struct reg_change {
	const char *kind;    /* the event kind: "alias.set", "version.seal", ... */
	const char *channel; /* the channel that made it: "fs", "api", "git", "cli" */
	const char *model;
	const char *version; /* NULL when the change is not about one version */
	const char *alias;   /* NULL when the change is not about an alias */
};
typedef void (*reg_change_cb)(void *ctx, const struct reg_change *c);

/*
 * Calls cb after every committed change, from the thread that made it, after
 * the store's locks are released (cb may call back into the registry). Set
 * it before other threads use the store; NULL removes it.
 */
void reg_store_set_hook(struct reg_store *st, reg_change_cb cb, void *ctx);

/* ---- the KServe InferenceService of a model (isvc.c) ---- */

#define REG_ISVC_PVC_DEFAULT "model-storage-pvc"
struct reg_isvc_opts {
	const char *pvc;          /* NULL: REG_ISVC_PVC_DEFAULT */
	const char *namespace_;   /* NULL: none */
	const char *runtime;      /* NULL: none */
	const char *model_format; /* NULL: from the served version's model file */
};
/*
 * The InferenceService for the model's current (and canary) alias, versions
 * pinned (pvc://<pvc>/<model>/<version>). -ENOENT without a current version;
 * -EINVAL when the format cannot be told. *out caller owns.
 */
int reg_isvc_render(struct reg_store *st, const char *model, const struct reg_isvc_opts *o,
		    json_t **out);
/* The same as the exact bytes served and committed: compact JSON and "\n". free(*text). */
int reg_isvc_text(struct reg_store *st, const char *model, const struct reg_isvc_opts *o,
		  char **text, size_t *len);

/* ---- retraining triggers (trigger.c) ---- */

/*
 * A model's retraining rules: {"accuracy": {"metric"?: "accuracy", "below":
 * 0.85, "window_seconds": 3600}, "drift": {"metric"?: "drift_p_value",
 * "below": 0.05}, "schedule": {"weekday": 1 (Monday; 0-6 from Sunday),
 * "hour": 3 (UTC)}}, each optional. The accuracy rule fires when every
 * observation of the metric for the serving (current) version stayed below
 * the threshold for the window; the drift rule on one observation below its
 * threshold; the schedule once a week. A firing records retrain.requested
 * (detail: rule, metric, value, threshold) once per episode; sealing or
 * promoting a version ends the episode. Replacing the rules records
 * triggers.set. -EINVAL for a bad spec; -ENOENT for no model.
 */
int reg_trigger_set(struct reg_store *st, const struct reg_actor *who, const char *model,
		    json_t *spec, json_t **out);
/* {"model","triggers": spec ({} when none),"episode_open","below_since","fired_at"}. */
int reg_trigger_get(struct reg_store *st, const char *model, json_t **out);
/* Runs the weekly schedules that are due at `now_us`; returns how many fired. */
int reg_trigger_tick(struct reg_store *st, int64_t now_us);

/* ---- the outbox (outbox.c): durable deliveries of events to subscribers ---- */

/*
 * Called after a transaction that queued deliveries has committed, from the
 * committing thread, with no registry lock held: a delivery worker's wake-up.
 * It must not block.
 */
typedef void (*reg_outbox_observer_cb)(void *ctx);
/*
 * Adds (or, for reg_store_observer_remove, removes) an observer; at most
 * eight at once (-ENOSPC). Thread-safe; after remove returns, fn is not
 * running and will not be called.
 */
int reg_store_observer_add(struct reg_store *st, reg_outbox_observer_cb fn, void *ctx);
void reg_store_observer_remove(struct reg_store *st, reg_outbox_observer_cb fn, void *ctx);

#define REG_OUTBOX_TARGET_MAX 2048
#define REG_OUTBOX_SECRET_MAX 256
#define REG_OUTBOX_LIST_MAX 64      /* kinds or models of one subscriber */
#define REG_OUTBOX_SUBSCRIBERS_MAX 64 /* at once (-EINVAL past it) */

/*
 * Adds a subscriber. `adapter` names who delivers ("webhook", "gitops"),
 * `target` and `secret` are that adapter's (a URL and an HMAC key); the
 * registry checks only their size. `kinds` is an array of event kinds
 * ("alias.set", "alias.*" for a prefix, "*" for all), `models` an array of
 * model names or NULL/empty for every model. Records an outbox.subscribe
 * event (without the secret). *out: the subscriber as reg_outbox_sub_get
 * answers it (caller owns). Returns 0 or -errno (-EINVAL for a bad spec).
 */
int reg_outbox_sub_add(struct reg_store *st, const struct reg_actor *who, const char *adapter,
		       const char *target, const char *secret, json_t *kinds, json_t *models,
		       json_t **out);
/*
 * Subscribers, oldest first: {"id","adapter","target","events":[…],
 * "models":[…],"created_at", and when `with_secret` "secret"}, of one adapter
 * (NULL for all) or one id (0 for all). *out caller owns.
 */
int reg_outbox_sub_list(struct reg_store *st, const char *adapter, int64_t id, int with_secret,
			json_t **out);
/* One subscriber (as in the list) or -ENOENT. */
int reg_outbox_sub_get(struct reg_store *st, int64_t id, int with_secret, json_t **out);
/*
 * Deletes a subscriber; its open items are dropped (state "dropped").
 * Records an outbox.unsubscribe event. -ENOENT when there is none.
 */
int reg_outbox_sub_delete(struct reg_store *st, const struct reg_actor *who, int64_t id);

/* An item claimed for delivery. */
struct reg_outbox_item {
	int64_t id;
	int64_t subscriber_id;
	int64_t event_id;
	int64_t attempts;   /* failed attempts before this one */
	int64_t token;      /* the lease: complete/fail only with it */
	json_t *event;      /* the event, as history shows it (owned by the item) */
};
void reg_outbox_item_free(struct reg_outbox_item *it);
/*
 * Claims the oldest open item of the subscriber when it is due, leasing it
 * for `lease_us` (another claim gets it again after the lease ends). Items
 * of one subscriber are claimed in order: a later one only after the
 * earlier is complete. Returns 1 with *out (caller frees), 0 when nothing is
 * due (*next_us: when the head is due, 0 when the queue is empty), -errno.
 */
int reg_outbox_claim(struct reg_store *st, int64_t subscriber_id, int64_t lease_us,
		     struct reg_outbox_item **out, int64_t *next_us);
/* The item was delivered (`status` the receiver's answer, 0 if none). -ESTALE: lease lost. */
int reg_outbox_complete(struct reg_store *st, const struct reg_outbox_item *it, int status);
/*
 * The delivery failed: the item stays first in its subscriber's queue, due
 * again after an exponential backoff (attempts × 2 from 250 ms, at most
 * the store's maximum, 60 s by default). -ESTALE: lease lost.
 */
int reg_outbox_fail(struct reg_store *st, const struct reg_outbox_item *it, int status,
		    const char *error);
/* The longest backoff after failures (set before workers start). */
void reg_outbox_backoff_set(struct reg_store *st, int64_t max_us);
/*
 * Releases every lease: called by the one delivery process at start, when
 * no other can hold one (the store lock). Returns the number released.
 */
int reg_outbox_leases_release(struct reg_store *st);
/*
 * Per-subscriber state: {"subscribers": [{"id","adapter","target","events",
 * "models","pending","done","dropped","failing" (open items that failed at
 * least once),"attempts" (most failures of an open item),"oldest_pending_at",
 * "last_error","last_error_at","last_status"}], "pending","failing"} (totals).
 * `items` > 0 adds each subscriber's newest items (its delivery log), of
 * `state` when not NULL. *out caller owns.
 */
int reg_outbox_state(struct reg_store *st, int64_t subscriber_id, const char *state,
		     size_t items, json_t **out);
/* Totals only, for /metrics and /readyz: open items, those that failed, oldest open (µs, 0). */
int reg_outbox_totals(struct reg_store *st, int64_t *pending, int64_t *failing, int64_t *oldest_us);

/*
 * Change propagation between nodes (PostgreSQL only). reg_follow_start()
 * starts a thread with a connection of its own that LISTENs for the doorbell
 * writers ring on commit, and polls every REG_FOLLOW_POLL_MS as a backstop;
 * each time it reads every event after the last one it applied, in sequence
 * order, and reports each to the change hook (channel "node") so the front
 * ends drop what they cached of that model. Events made on this node are
 * reported too (dropping a cache twice is harmless). After a reconnect it
 * catches up the same way. Start it after the hook is set; stop it while
 * the hook's consumers still answer (the mount's loop runs). For SQLite,
 * start does nothing and returns 0. Stop accepts a store without a follower.
 */
#define REG_FOLLOW_POLL_MS 1000
int reg_follow_start(struct reg_store *st);
void reg_follow_stop(struct reg_store *st);

/* How far behind the other nodes this node is, for /readyz and /metrics. */
struct reg_follow_status {
	int active;            /* 0: SQLite, or no follower running */
	int connected;         /* the follower's own connection answers */
	int64_t applied;       /* the last event applied */
	int64_t head;          /* the last event committed, as last read */
	int64_t behind;        /* head - applied */
	double seconds_behind; /* 0 when in step; else since the node was last in step */
	double since_applied;  /* seconds since the last event was applied (-1: none yet) */
	int64_t notifications; /* doorbells received */
	int64_t polls;         /* catch-ups started by the backstop poll */
	int64_t reconnects;    /* the follower's connection re-established */
	int64_t events;        /* events applied since the start */
};
void reg_follow_status(struct reg_store *st, struct reg_follow_status *out);

/* Whether `path` already holds a store (.modelfs/registry.db): 1, 0, -errno. */
int reg_store_exists(const char *path);

/* ---- authority (one decision for both front ends) ---- */

enum reg_authz_op {
	REG_AUTHZ_FILE_READ,     /* read a content file (target: model, version, path) */
	REG_AUTHZ_SEAL,          /* seal a draft, by request or by pointing an alias at it */
	REG_AUTHZ_ALIAS_SET,     /* set, move, remove or roll back an alias (target: alias) */
	REG_AUTHZ_FORCE,         /* skip the policy's gates, or loosen the policy */
	REG_AUTHZ_POLICY_SET,    /* change a model's promotion policy */
	REG_AUTHZ_DELETE,        /* delete sealed content: a version, a model, gc */
};

struct reg_authz_target {
	const char *model;
	const char *version; /* FILE_READ, SEAL */
	const char *path;    /* FILE_READ: relative to the version directory */
	const char *alias;   /* ALIAS_SET */
};

/*
 * Whether `who` may do `op` on `t`. The rules (README, Security):
 *   FILE_READ   sealed files: anyone who reached the call (reads are gated by
 *               the route). Draft files: a uid needs read permission on the
 *               file and search permission on its directories, as the kernel
 *               would check them; a token needs the writer or admin role; an
 *               anonymous request gets nothing with a token file, and without
 *               one what a user outside the file's owner and group gets.
 *   SEAL        the draft directory's owner, root, a member of the admin group,
 *               or a writer/admin token.
 *   ALIAS_SET   free-form aliases: anyone who reached the call. Protected ones
 *               (current, canary): root or the admin group (any uid when no
 *               admin group is configured), or an admin token.
 *   FORCE, POLICY_SET, DELETE   an admin token, root or the admin group.
 * A TRUSTED actor may do everything. Returns 0, -EACCES with a message
 * naming what is needed, or -errno when the target cannot be examined.
 */
int reg_authz_check(struct reg_store *st, const struct reg_actor *who, enum reg_authz_op op,
		    const struct reg_authz_target *t);
/*
 * Sets the group whose members (with root) administer the store through the
 * mount: protected aliases, sealing others' drafts. -1 (the default): none.
 * Set before other threads use the store.
 */
void reg_store_set_admin_group(struct reg_store *st, long long gid);

/* ---- names ---- */

/* Each returns 0 or -EINVAL with a message saying what is wrong. */
int reg_name_model_check(const char *name);
int reg_name_version_check(const char *name);
int reg_name_alias_check(const char *name);
/* A file path inside a version: relative, no "." / ".." / empty parts, no NUL. */
int reg_path_check(const char *path);
/* 1 when `alias` is protected by the model's policy (current, canary). */
int reg_alias_is_protected(const char *alias);
const char *reg_state_name(enum reg_state s);

/* ---- models ---- */

int reg_model_create(struct reg_store *st, const struct reg_actor *who, const char *name,
		     struct reg_model *out);
int reg_model_get(struct reg_store *st, const char *name, struct reg_model *out);
/*
 * Lists models ordered by name, after `after` (NULL for the start), at most
 * `limit` (0 for all). *out is an array of *n models; free with free().
 */
int reg_model_list(struct reg_store *st, const char *after, size_t limit,
		   struct reg_model **out, size_t *n);
/* Removes a model that has no versions. -ENOTEMPTY otherwise. */
int reg_model_delete(struct reg_store *st, const struct reg_actor *who, const char *name);

/* ---- versions ---- */

/*
 * Creates a draft version. `name` NULL (or "") picks v<N+1>, N being the
 * number of versions the model has had (deleted ones count: names are never
 * reused), skipping names already taken. `metadata` (borrowed) becomes the
 * record; it is validated first. With NULL the version has no record and its
 * directory is empty (no metadata.json), as mkdir makes a directory.
 */
int reg_version_create(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *name, json_t *metadata, struct reg_version *out);
int reg_version_get(struct reg_store *st, const char *model, const char *name,
		    struct reg_version *out);

enum reg_archived_filter {
	REG_ARCHIVED_INCLUDE = 0, /* archived versions listed with the others */
	REG_ARCHIVED_HIDE,        /* what listings show by default */
	REG_ARCHIVED_ONLY,
};
struct reg_version_filter {
	int state;                     /* -1 for any, else enum reg_state */
	enum reg_archived_filter archived;
	const char *validation_status; /* NULL for any */
	int64_t after_seq;             /* cursor: only versions with seq > this */
	size_t limit;                  /* 0 for all */
};
/* Lists a model's versions in creation order. Free *out with free(). */
int reg_version_list(struct reg_store *st, const char *model, const struct reg_version_filter *f,
		     struct reg_version **out, size_t *n);

/*
 * The version's metadata record with `deployed_to` derived from the aliases
 * (and `model_name`/`version` filled in). *out is a new reference.
 */
int reg_version_metadata_get(struct reg_store *st, const char *model, const char *version,
			     json_t **out);
/*
 * Replaces the whole record (borrowed). For a draft any valid record is taken;
 * for a sealed version only the fields that later steps fill in may differ
 * (validation_status, validation_metrics, production_metrics, notes): a
 * change to another field fails with -EROFS naming the field.
 */
int reg_version_metadata_set(struct reg_store *st, const struct reg_actor *who,
			     const char *model, const char *version, json_t *record);
/* Applies a JSON merge patch (RFC 7386, borrowed) under the same rules. */
int reg_version_metadata_patch(struct reg_store *st, const struct reg_actor *who,
			       const char *model, const char *version, json_t *patch);
/*
 * reg_version_metadata_set() from the bytes of a metadata.json a client
 * wrote: -EFBIG past REG_META_MAX, -EINVAL for a NUL byte or text that is
 * not one JSON object. While a draft is being sealed its record holds still
 * (-EBUSY), as its files do.
 */
int reg_version_metadata_set_text(struct reg_store *st, const struct reg_actor *who,
				  const char *model, const char *version, const char *text,
				  size_t len);
/*
 * Removes a draft's record (rm of its metadata.json): the version then has
 * none until one is written, and no metadata.json on disk. 0 when it had
 * none; -EROFS once sealed.
 */
int reg_version_metadata_remove(struct reg_store *st, const struct reg_actor *who,
				const char *model, const char *version);

/*
 * Seals a draft: fsyncs and hashes every file, records sizes and SHA-256,
 * makes the files read-only on disk. Idempotent (a sealed version returns 0).
 * A seal is one critical section over the version's tree: from its start
 * every reg_write_begin() on the version (and every change to its record)
 * fails with -EBUSY, and it waits briefly for the ones under way to end;
 * -EBUSY when a file stays open for writing. Every entry of the tree on disk
 * is hashed (no name is special inside a version); a name that is not UTF-8
 * or an entry that is not a file or directory fails the seal with -EINVAL.
 * Hashing runs outside the store's locks; other versions go on meanwhile,
 * and a second seal of the same version waits for the first.
 */
int reg_version_seal(struct reg_store *st, const struct reg_actor *who, const char *model,
		     const char *version, struct reg_version *out);
/*
 * Archives a sealed version: hidden from default listings (API, the mount's
 * `ls` of its model), still readable by path, never an alias target while
 * archived. -EMLINK ("aliased") when an alias points at it, -EINVAL for a
 * draft; archiving an archived version changes nothing. `reason` (may be
 * NULL, at most REG_REASON_MAX bytes) is kept in the version.archive event.
 */
int reg_version_archive(struct reg_store *st, const struct reg_actor *who, const char *model,
			const char *version, const char *reason);
/* Makes an archived version sealed again (version.unarchive); 0 when it is not archived. */
int reg_version_unarchive(struct reg_store *st, const struct reg_actor *who, const char *model,
			  const char *version, const char *reason);
/*
 * Deletes a version, the one rule for both doors: -EMLINK ("aliased") while
 * an alias points at it, -EBUSY while a file of it is open through the mount
 * (reg_version_hold), being written or sealed. A draft goes without more; a
 * sealed or archived version needs a reason (-EROFS without one: the mount's
 * rmdir has none) and the REG_AUTHZ_DELETE authority. The directory moves
 * to .modelfs/deleted/ inside the transaction and is removed after the
 * commit, so a crash leaves the version whole or gone (open finishes it).
 * Git tags made for it stay in the repository; *git_tags (may be NULL) gets
 * their names as a new JSON array. Event version.delete {reason, git_tags}.
 */
int reg_version_remove(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *version, const char *reason, json_t **git_tags);
/* reg_version_remove() without a reason (drafts: rmdir through the mount). */
int reg_version_delete(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *version);
/*
 * Deletes a model with all its versions in one transaction (REG_AUTHZ_DELETE,
 * a reason required): refused with -EMLINK while the model has any alias
 * (they are what serves it; remove them first), -EBUSY while a version is
 * held or written. Events: version.delete per version, then model.delete.
 * *out (may be NULL): {"model", "deleted": true, "versions": [...],
 * "git_tags": [...]}.
 */
int reg_model_remove(struct reg_store *st, const struct reg_actor *who, const char *model,
		     const char *reason, json_t **out);
/*
 * Holds a version while a file of it is open through the mount: delete and
 * gc refuse it (-EBUSY) until every hold is released. *vid identifies it for
 * reg_version_unhold(). In memory only (a restart drops every open file).
 */
int reg_version_hold(struct reg_store *st, const char *model, const char *version, int64_t *vid);
/*
 * As reg_version_hold for a version id a hold returned before (no lookup, for
 * the mount's hot open path): -ENOENT while the version is being deleted.
 * Each successful hold is released with one reg_version_unhold().
 */
int reg_version_hold_id(struct reg_store *st, int64_t vid);
void reg_version_unhold(struct reg_store *st, int64_t vid);

/*
 * Retention: a model's policy may hold "retention": {"keep_last": N,
 * "keep_aliased_days": D, "min_age_days": A}. gc keeps, of the model's sealed
 * and archived versions, the newest N, every version an alias points at or
 * pointed at within the last D days, and every version sealed within the
 * last A days (default 0); it never removes one with files open through the
 * mount. The rest is deleted as by reg_version_remove, one transaction each.
 * Drafts and models without retention are left alone.
 */
struct reg_gc_opts {
	const char *model;  /* NULL: every model */
	int dry_run;        /* only list what would go */
	const char *reason; /* added to each delete's reason (may be NULL) */
	int64_t now_us;     /* 0: now (tests move the clock) */
};
/*
 * Runs gc (REG_AUTHZ_DELETE unless dry_run). *out: {"dry_run", "removed":
 * [{"model", "version", "why"}], "kept": [{"model", "version", "why"}]}.
 */
int reg_gc_run(struct reg_store *st, const struct reg_actor *who, const struct reg_gc_opts *o,
	       json_t **out);
/* Checks a policy's "retention" value (null allowed); 0 or -EINVAL naming the problem. */
int reg_retention_check(json_t *retention);
/*
 * Test hook: called at named points of a delete: "delete.moved" (the
 * directory is in .modelfs/deleted/, the transaction open) and
 * "delete.committed" (committed, the directory not yet removed). Tests only.
 */
extern void (*reg_delete_test_hook)(const char *point);

/*
 * The version's content files (not metadata.json), sorted by path: from the
 * db for sealed versions (with digests), from disk for drafts. Free with
 * reg_files_free().
 */
int reg_version_files(struct reg_store *st, const char *model, const char *version,
		      struct reg_file **out, size_t *n);
void reg_files_free(struct reg_file *files, size_t n);

/* Progress of reg_version_verify(): called after each file. */
typedef void (*reg_verify_cb)(void *ctx, const char *model, const char *version,
			      const struct reg_file *f, int ok, int64_t bytes_done);
/*
 * Re-hashes a sealed version's files against the recorded digests. Returns
 * the number of files that are missing or differ (0 when all match), or
 * -errno; -EINVAL for a draft.
 */
int reg_version_verify(struct reg_store *st, const char *model, const char *version,
		       reg_verify_cb cb, void *ctx);

/*
 * Begins/ends a change to a draft version's tree: a file open for writing,
 * an upload, and every single change the mount makes (create, unlink,
 * rename, mkdir, chmod, truncate, utimes) around its system call. While any
 * change is open, a seal waits for it (then -EBUSY); once sealing has begun,
 * begin fails with -EBUSY; on a sealed version with -EROFS. `*vid`
 * identifies the version for end.
 */
int reg_write_begin(struct reg_store *st, const char *model, const char *version, int64_t *vid);
void reg_write_end(struct reg_store *st, int64_t vid);

/*
 * Opens the version's directory (O_DIRECTORY|O_PATH-free, read) for the
 * front ends' file I/O, which then goes through openat() on this fd with
 * each component checked by reg_path_check(). Caller closes *fd.
 */
int reg_version_dir_open(struct reg_store *st, const char *model, const char *version, int *fd);

/* ---- aliases and policy ---- */

struct reg_alias_opts {
	const char *expected;   /* CAS: NULL skips the check; "" expects unset */
	int percent;            /* -1 keeps (or leaves unset); 0-100 sets */
	int force;              /* skip the policy (the caller checks the role) */
	const char *reason;     /* recorded with the event; required with force */
	json_t *failed_gates;   /* optional array: failed gates are appended */
};

/*
 * Points `alias` at `version` of the same model. A draft target is sealed
 * first; an archived one is refused. `current` and `canary` pass the model's
 * policy unless force: a refusal returns -EPERM naming the failed gates and
 * is recorded as an event. A CAS mismatch returns -ESTALE. The db commits
 * first; the symlink and <model>/metadata.json follow atomically.
 */
int reg_alias_set(struct reg_store *st, const struct reg_actor *who, const char *model,
		  const char *alias, const char *version, struct reg_alias_opts *opts,
		  struct reg_alias *out);
/* Removes an alias; -ENOENT when unset. `expected` as for reg_alias_set. */
int reg_alias_delete(struct reg_store *st, const struct reg_actor *who, const char *model,
		     const char *alias, const char *expected);
int reg_alias_get(struct reg_store *st, const char *model, const char *alias,
		  struct reg_alias *out);
/* Free *out with free(). */
int reg_alias_list(struct reg_store *st, const char *model, struct reg_alias **out, size_t *n);
/* The alias's value at time `at_us`, from the event log; -ENOENT if unset then. */
int reg_alias_at(struct reg_store *st, const char *model, const char *alias, int64_t at_us,
		 struct reg_alias *out);
/*
 * Walks `alias` back through its history (the event log): each rollback
 * undoes the latest change not undone yet, so a second rollback goes further
 * back, never forward to the version just left (going forward again is a
 * promote, gated). A removed alias comes back as it was; the canary with the
 * traffic percent it had with that version. Not gated: that version held
 * the alias before. -ENOENT when there is no earlier version. `reason` (may
 * be NULL) is kept in the event.
 */
int reg_alias_rollback(struct reg_store *st, const struct reg_actor *who, const char *model,
		       const char *alias, const char *reason, struct reg_alias *out);
/*
 * Changes only the canary's traffic percent (0-100), as one compare-and-swap
 * in the write transaction: the canary must exist and still point at the
 * version it points at (and at `expected` when not NULL), or -ESTALE; a
 * removed canary is never recreated (-ENOENT). Not gated: the version
 * passed when it became the canary.
 */
int reg_canary_percent_set(struct reg_store *st, const struct reg_actor *who, const char *model,
			   int percent, const char *expected, struct reg_alias *out);
/* canary → current, canary cleared, in one transaction; gated as current. */
int reg_canary_promote(struct reg_store *st, const struct reg_actor *who, const char *model,
		       struct reg_alias_opts *opts, struct reg_alias *out);

/*
 * The model's promotion policy (a new reference). Shape:
 *   {"validation_status": "passed",                     (null: no gate)
 *    "metrics": {"performance_metrics.accuracy": {"min": 0.85},
 *                "validation_metrics.latency_ms": {"max": 100}},
 *    "max_total_size": 104857600,
 *    "required_fields": ["git_commit", "training_data.start_date"]}
 */
int reg_policy_get(struct reg_store *st, const char *model, json_t **out);
struct reg_policy_opts {
	int force;          /* allow removing or loosening gates (needs an admin) */
	const char *reason; /* required with force; kept in the event */
};
/*
 * Changes the model's policy by `changes` (borrowed): each field given
 * replaces that gate, null removes it; within "metrics" each path given
 * replaces that metric's bounds and null removes it; fields not given stay
 * (so the default validation_status gate stays unless removed by name).
 * The result is validated (-EINVAL with the reason, metric paths included).
 * A change that removes or loosens a gate is refused with -EPERM naming
 * the gates unless opts->force with a reason (and the admin authority);
 * the policy.set event then records force, reason and what was loosened.
 * `opts` may be NULL. A change that changes nothing records no event.
 */
int reg_policy_set(struct reg_store *st, const struct reg_actor *who, const char *model,
		   json_t *changes, const struct reg_policy_opts *opts);
/*
 * Checks a whole policy document without storing it. Metric paths are
 * "<section>.<metric>", the section one of the metadata schema's metric
 * sections (performance_metrics, validation_metrics, production_metrics); a
 * section whose metrics the schema lists takes only those names.
 */
int reg_policy_check(json_t *policy);
/* The policy `changes` make of `policy` (both borrowed; see reg_policy_set). *out new. */
int reg_policy_merge(json_t *policy, json_t *changes, json_t **out);
/*
 * Appends to `loosened` (may be NULL) one string per gate of `old` that `new`
 * removes or loosens; returns how many.
 */
int reg_policy_loosened(json_t *old, json_t *new, json_t *loosened);
/*
 * Evaluates `policy` against a record and a content size; appends one string
 * per failed gate to `failed` (may be NULL). Returns the number of failures.
 */
int reg_policy_eval(json_t *policy, json_t *record, int64_t total_size, json_t *failed);

/* ---- events and lineage ---- */

struct reg_event_filter {
	const char *kind;  /* exact kind or prefix ending in '.', NULL for all */
	int64_t since_us;  /* 0: no bound */
	int64_t until_us;  /* 0: no bound */
	int64_t after_id;  /* cursor: events after this id (before it with desc) */
	size_t limit;      /* 0 for all */
	int desc;          /* newest first */
};
/*
 * A model's events (or every model's when model is NULL), oldest first, as a
 * JSON array of {id, ts, kind, model, version, alias, channel, actor,
 * before, after, detail}. *out is a new reference.
 */
int reg_event_list(struct reg_store *st, const char *model, const struct reg_event_filter *f,
		   json_t **out);
/* ---- descriptions, owners, tags and search (search.c, filter.c) ---- */

struct reg_search {
	const char *model;             /* NULL: every model */
	int cross;                     /* a search across models (items name their model) */
	const char *filter;            /* filter expression (see filter.c), NULL for none */
	const char *sort;              /* field or path, '-' first for descending; NULL: creation */
	const char *state;             /* NULL for any */
	const char *validation_status; /* NULL for any */
	enum reg_archived_filter archived; /* the API sets HIDE by default; zero is INCLUDE */
	const char *cursor;            /* next_cursor of the previous page, or NULL */
	size_t limit;
};
/*
 * One page of version summaries matching q, as {"versions": [...],
 * "next_cursor": str|null}; each summary carries aliases, metrics (numeric
 * performance_metrics), git_commit, description, owner, tags (and "model"
 * when q->model is NULL). Answered from the leaf index in a fixed number of
 * queries. -EINVAL naming the position for a bad filter; -ENOENT for an
 * unknown model. *out is a new reference.
 */
int reg_version_search(struct reg_store *st, const struct reg_search *q, json_t **out);
/* A model's {description, owner, tags}; *out a new reference. */
int reg_model_about(struct reg_store *st, const char *model, json_t **out);
/*
 * Merges {description?, owner?, tags?: {k: v|null}} into the model's (null
 * removes), validated; records a model.describe event when anything changed
 * and rewrites <model>/metadata.json. *out (may be NULL) gets the result.
 */
int reg_model_describe(struct reg_store *st, const struct reg_actor *who, const char *model,
		       json_t *patch, json_t **out);
/*
 * A page of models after `after` for an overview: {"models": [{name,
 * created_at, description, owner, tags, aliases: [{alias, version, percent}],
 * latest: summary|null, last_event: {id, ts, kind, actor, channel}|null}],
 * "next_cursor"}, in a fixed number of queries per page.
 */
int reg_model_overview(struct reg_store *st, const char *after, size_t limit, json_t **out);
/*
 * A model's version count per state (indexed by enum reg_state) and the
 * newest version's name ("" when none), from two indexed queries.
 */
int reg_version_counts(struct reg_store *st, const char *model, int64_t counts[3],
		       char latest[REG_NAME_MAX]);
/* 0 when `key` may be a tag key, else -EINVAL with why. */
int reg_tag_key_check(const char *key);

/* Total number of events in the log (for tests and metrics). */
int reg_event_count(struct reg_store *st, int64_t *out);

/* ---- refusals (refusal.c): what `modelfs why` reads ---- */

#define REG_REFUSALS_KEEP 10000 /* newest refusal records kept; older ones are trimmed */
#define REG_REFUSAL_BURST 120   /* refusals one actor may have recorded at once ... */
#define REG_REFUSAL_RATE 2.0    /* ... and then this many per second */

/* One refused operation, as either door saw it. Strings and gates are borrowed. */
struct reg_refusal {
	const char *op;      /* "mkdir", "rmdir", "alias.set", "POST /v1/models/{model}/promote" */
	const char *model;   /* may be NULL (a bad model name, a request without a model) */
	const char *version; /* may be NULL */
	const char *alias;   /* may be NULL */
	const char *rule;    /* NULL: the registry names it from err, gates and message */
	int err;             /* positive errno the caller got (or that the API mapped) */
	int status;          /* HTTP status; 0 through the mount */
	const char *code;    /* HTTP error code; NULL through the mount */
	const char *message; /* NULL: cm_err_msg() */
	json_t *failed_gates; /* array of the gates' texts with actual values, or NULL */
	const char *before, *after; /* for the event (a gate refusal: the alias's old and asked value) */
	int materialize;     /* rewrite the model's files after (a refused link put back) */
};

/*
 * Records a refusal: a row of the refusals table (trimmed to the newest
 * REG_REFUSALS_KEEP) and, when the model exists, an event of kind "refused"
 * with detail {op, rule, errno, status, code, message, failed_gates}, in a
 * transaction of its own (the refused change has been rolled back). Each
 * actor (uid through the mount, token over HTTP) may have REG_REFUSAL_BURST
 * recorded at once and REG_REFUSAL_RATE more per second; past that the
 * refusal is counted, not stored. When the registry already recorded this
 * same failure on this thread (a gate), only status and code are added.
 * Returns 1 when stored, 0 when not (rate, duplicate), -errno on failure;
 * the thread's error message is kept as it was either way.
 */
int reg_refusal_record(struct reg_store *st, const struct reg_actor *who,
		       const struct reg_refusal *r);

struct reg_refusal_filter {
	const char *model; /* NULL: every model */
	long long uid;     /* -1: any; with token, either matches */
	const char *token; /* NULL: any */
	const char *visible_token; /* NULL: all visible; else only this token's and the mount's */
	int64_t before_id; /* cursor: older than this id; 0 for the newest */
	size_t limit;      /* 0: 100 */
};
/*
 * The newest refusals first, as a JSON array of {id, ts, model, version,
 * alias, channel, actor, uid, token, op, rule, errno, status, code, message,
 * failed_gates, event_id}. *out is a new reference.
 */
int reg_refusal_list(struct reg_store *st, const struct reg_refusal_filter *f, json_t **out);
/* How many refusals were counted but not stored because of the rate limit. */
int64_t reg_refusals_dropped(struct reg_store *st);

/*
 * A version's lineage: {model, version, git_commit, training_notebook,
 * training_data, training_data_hash, hyperparameters, performance_metrics,
 * parent_version, digest, state}. *out is a new reference.
 */
int reg_lineage_get(struct reg_store *st, const char *model, const char *version, json_t **out);
/*
 * Reverse lineage: versions whose git_commit starts with `commit_prefix`
 * (at least 4 hex digits) or whose training_data_hash equals `data_hash`
 * (give one). *out is a JSON array of {model, version, git_commit,
 * training_data_hash, state}. By commit, versions named by a git tag at a
 * matching commit (made by git sync or found by read-back) follow, each with
 * a "git_tag" member naming the tag.
 */
int reg_lineage_find(struct reg_store *st, const char *commit_prefix, const char *data_hash,
		     json_t **out);

/* ---- git-tag sync ---- */

#define REG_GIT_TAG_FORMAT_DEFAULT "model-{model}-{version}"

/*
 * Git-tag sync writes sealed versions and alias changes as annotated tags in
 * a git repository. Every tag goes through a durable queue in the db: it is
 * queued in the same transaction as the change that calls for it (only while
 * git sync is enabled for the store, see reg_git_configure), and made later
 * by reg_git_sync_run() or the background worker, in queue order, with
 * retries and backoff, idempotently (an existing tag of that name at the same
 * commit counts as made; one at another commit is a conflict and is never
 * moved). Tags:
 *   version tag    the format (default model-{model}-{version}) at the
 *                  version's git_commit, made when it is sealed
 *   GTO (opt-in)   {model}@v{semver} when a version named X.Y.Z or vX.Y.Z is
 *                  sealed; {model}#{alias}#{n} when an alias is set and
 *                  {model}#{alias}!#{n} when it is cleared, n being one more
 *                  than the highest counter on any annotated tag of the model
 * The configuration is stored in the db, so every process that changes the
 * store queues tags, and a daemon started later makes them.
 */
struct reg_git_config {
	const char *repo;         /* the repository: a bare one or a work tree (required) */
	const char *remote;       /* push made tags to this remote; NULL or "": no push */
	const char *tagger_name;  /* NULL: "modelfs" */
	const char *tagger_email; /* NULL: "modelfs@localhost" */
	const char *tag_format;   /* NULL: REG_GIT_TAG_FORMAT_DEFAULT */
	const char *token_file;   /* HTTPS token ("TOKEN" or "USER:TOKEN"), read at each push */
	int gto;                  /* also write GTO-grammar tags */
};

/*
 * Checks a version tag format: exactly one {model} and one {version}, with
 * literal text between them, other characters from [A-Za-z0-9._/-], and
 * producing valid tag names. 0 or -EINVAL naming the problem.
 */
int reg_git_format_check(const char *format);
/* The tag name for model/version under `format`; -E2BIG when longer than n. */
int reg_git_tag_name(const char *format, const char *model, const char *version, char *out,
		     size_t n);

/*
 * Stores the git configuration and enables git sync for the store (the
 * repository need not exist yet: a missing or read-only repository is
 * reported by the sync without blocking registry changes). Records a
 * git.configure event when something changed. -EINVAL for a bad format,
 * tagger or remote name, -EROFS for a read-only store.
 */
int reg_git_configure(struct reg_store *st, const struct reg_actor *who,
		      const struct reg_git_config *cfg);
/* Stops queueing tags (the queue is kept). -ENOENT when never configured. */
int reg_git_disable(struct reg_store *st, const struct reg_actor *who);
/*
 * The stored configuration: {repo, remote, tagger_name, tagger_email,
 * tag_format, gto, token_file, enabled, updated_at}. *out is a new
 * reference; -ENOENT when git sync was never configured.
 */
int reg_git_config_get(struct reg_store *st, json_t **out);

/* How serious a message from the sync is (the caller logs it). */
enum reg_git_level { REG_GIT_INFO, REG_GIT_WARN, REG_GIT_ERROR };
typedef void (*reg_git_report_cb)(void *ctx, enum reg_git_level level, const char *msg);

enum reg_git_run_flags {
	REG_GIT_RUN_NOW = 1 << 0, /* ignore backoff: try every open item now */
};
struct reg_git_run_stats {
	int64_t made;     /* tags made (or found already made) in this run */
	int64_t pushed;   /* tags pushed to the remote */
	int64_t failed;   /* items that failed for good (conflict, missing commit, bad name) */
	int64_t retry;    /* items left to retry later (repository or remote unavailable) */
};
/*
 * Processes the queue now, in order: makes due tags, then pushes them when a
 * remote is configured. A transient failure (repository missing or
 * unwritable, remote unreachable) leaves the item queued with exponential
 * backoff (1 s doubling to 5 min) and stops the run there, so that GTO
 * counters follow event order; permanent failures (conflict, missing
 * commit, invalid tag name) mark the item failed, record an event
 * (git.conflict, git.missing_commit, git.error) and go on. `cb` (may be NULL)
 * hears of each outcome. Runs in one process are serialised. Returns 0
 * (with *out, may be NULL), or -errno when the store cannot be read or
 * written (failures of git itself are recorded, not returned); -ENOENT when
 * git sync is not configured.
 */
int reg_git_sync_run(struct reg_store *st, unsigned flags, reg_git_report_cb cb, void *ctx,
		     struct reg_git_run_stats *out);

struct reg_git_worker;
/*
 * Starts a thread that runs the queue whenever a commit queues tags, when
 * backoff expires, and every 30 s. `cb` hears of outcomes from that thread.
 * Stop it with reg_git_worker_stop() before closing the store.
 */
int reg_git_worker_start(struct reg_store *st, reg_git_report_cb cb, void *ctx,
			 struct reg_git_worker **out);
/*
 * Makes the worker run the queue now instead of at its next wake-up; with
 * REG_GIT_RUN_NOW that run also ignores backoff, so items waiting to retry
 * are tried at once (one that fails again waits as its attempts say). A run in
 * progress is not interrupted: the wake-up takes effect when it ends.
 * Returns at once; safe from any thread. Accepts NULL.
 */
void reg_git_worker_wake(struct reg_git_worker *w, unsigned flags);
/* Stops and joins the worker (a push in progress is abandoned). Accepts NULL. */
void reg_git_worker_stop(struct reg_git_worker *w);

/* The queue's state, for metrics and the API. */
struct reg_git_status {
	int configured;           /* 1 when tags are being queued */
	int64_t pending;          /* tags to be made (including ones waiting to retry) */
	int64_t pushing;          /* made, waiting to be pushed */
	int64_t failed;           /* given up: see reg_git_queue_list, reg_git_retry */
	int64_t done;
	int64_t missing_commit;   /* failed: no git_commit, or it is not in the repository */
	int64_t conflicts;        /* failed: the tag exists at another commit (here or remote) */
	int64_t oldest_open_us;   /* when the oldest pending/pushing item was queued; 0: none */
	int64_t last_error_us;    /* 0 when no open or failed item has an error */
	char last_error[512];
};
int reg_git_status(struct reg_store *st, struct reg_git_status *out);
/*
 * Queue items in order, after id `after_id`, optionally of one state
 * ("pending", "pushing", "done", "failed"), at most `limit` (0: all): a JSON
 * array of {id, created_at, event_id, kind, model, version, alias,
 * git_commit, tag, state, reason, attempts, next_at, last_error, error_at,
 * commit, done_at} (times RFC 3339). *out is a new reference.
 */
int reg_git_queue_list(struct reg_store *st, const char *state, int64_t after_id, size_t limit,
		       json_t **out);
/* Puts failed items (one by id, or all with id 0) back in the queue; *n = how many. */
int reg_git_retry(struct reg_store *st, const struct reg_actor *who, int64_t id, int64_t *n);
/*
 * Queues version tags for sealed versions that never had one queued (adopted
 * versions, versions sealed while git sync was off); *n = how many.
 */
int reg_git_backfill(struct reg_store *st, const struct reg_actor *who, int64_t *n);

enum reg_git_mismatch {
	REG_GIT_WRONG_COMMIT,    /* a tag names a version but is not at its git_commit */
	REG_GIT_UNKNOWN_VERSION, /* a tag names a model or version the registry does not have */
	REG_GIT_MISSING_TAG,     /* a sealed version has no tag in the repository */
};
const char *reg_git_mismatch_name(enum reg_git_mismatch kind);
typedef void (*reg_git_check_cb)(void *ctx, enum reg_git_mismatch kind, const char *tag,
				 const char *model, const char *version, const char *detail);
/*
 * Read-back: compares the repository's tags that match the version tag
 * format (and, with GTO, the GTO grammar) with the registry and calls cb for
 * each mismatch. `cfg` NULL uses the stored configuration; otherwise its
 * repo, format and gto are used. On a writable store, the tags that name
 * versions are remembered, so reverse lineage finds versions through them.
 * Returns the number of mismatches, or -errno (-ENOENT: no repository there
 * or nothing configured).
 */
int reg_git_check(struct reg_store *st, const struct reg_git_config *cfg, reg_git_check_cb cb,
		  void *ctx);

/* ---- checks ---- */

enum reg_fsck_kind {
	REG_FSCK_MISSING_FILE,     /* recorded file absent on disk */
	REG_FSCK_EXTRA_FILE,       /* file in a sealed version not recorded */
	REG_FSCK_DIGEST,           /* content differs from the recorded digest */
	REG_FSCK_SIZE,             /* size differs */
	REG_FSCK_MODE,             /* sealed file is writable on disk */
	REG_FSCK_MISSING_DIR,      /* version or model directory absent */
	REG_FSCK_EXTRA_DIR,        /* directory the db does not know */
	REG_FSCK_ALIAS_STALE,      /* symlink on disk differs from the db */
	REG_FSCK_ALIAS_DANGLING,   /* link of a removed alias (ours to clear) */
	REG_FSCK_ALIAS_MISSING,    /* alias in the db without its symlink */
	REG_FSCK_METADATA,         /* materialised metadata.json differs from the db */
	REG_FSCK_ALIAS_UNKNOWN,    /* symlink the db never made: reported, never removed */
	REG_FSCK_NAME_CLASH,       /* an alias whose name a version or a directory holds */
	REG_FSCK_STAT,             /* sealed file's inode, mtime or ctime changed: not served */
};
typedef void (*reg_fsck_cb)(void *ctx, enum reg_fsck_kind kind, const char *where,
			    const char *detail, int repaired);
/*
 * Compares disk with the db. With `repair`, fixes what the db is the truth
 * for (symlinks, metadata files, modes), adopts unknown directories as
 * drafts and removes (with an event) an alias whose name a version or a
 * directory holds; symlinks the db never made are reported and left; content that differs from its digest cannot be repaired. `hash`
 * re-hashes sealed files (slow); without it sizes are compared. Returns the
 * number of problems left (not repaired), or -errno.
 */
int reg_store_fsck(struct reg_store *st, int repair, int hash, reg_fsck_cb cb, void *ctx);
const char *reg_fsck_kind_name(enum reg_fsck_kind kind);

/* ---- file streams (front ends without a kernel in between: HTTP) ---- */

struct reg_upload;

/*
 * Begins writing `path` (relative, checked) into a draft version: counts as
 * a write (reg_write_begin, so the version cannot be sealed meanwhile),
 * creates missing parent directories and opens an unnamed temporary file
 * beside the target. Nothing is visible under `path` until
 * reg_upload_commit(). -EROFS for a sealed version, -EINVAL for the
 * version's metadata.json or a reserved temporary name, -EISDIR when `path`
 * is a directory. *out is owned by the caller: end it with commit or abort.
 */
int reg_upload_begin(struct reg_store *st, const char *model, const char *version,
		     const char *path, struct reg_upload **out);
/* Appends bytes; returns 0 or -errno (ENOSPC, EIO) with a message. */
int reg_upload_write(struct reg_upload *u, const void *data, size_t len);
/* Bytes written so far. */
int64_t reg_upload_size(const struct reg_upload *u);
/*
 * Syncs the file and moves it into place atomically (replacing an existing
 * file of the same name), then frees u. On failure u is still the caller's
 * and must be aborted.
 */
int reg_upload_commit(struct reg_upload *u);
/* Discards the upload (and directories it created), frees u. Accepts NULL. */
void reg_upload_abort(struct reg_upload *u);

/*
 * Opens a content file of a version for reading, without following
 * symlinks. For sealed versions only recorded files open, and out->sha256
 * is the recorded digest; for drafts it is "". out->path is left NULL.
 * -EIO when a sealed file changed on disk after its seal (reg_file_check's
 * rule). Caller closes *fd.
 */
int reg_version_file_open(struct reg_store *st, const char *model, const char *version,
			  const char *path, int *fd, struct reg_file *out);
/*
 * For an fd open on a file of model/version (path relative to the version,
 * or NULL to find the file by fd's inode): 0 for a draft or when fstat(fd)
 * reports what the seal recorded (size, inode, mtime, ctime); -EIO with
 * detail when the file changed on the volume after its seal, after leaving
 * an `integrity.mismatch` event (once per file and process) and counting it
 * (reg_store_integrity). One indexed read and one fstat; no hashing.
 */
int reg_file_check(struct reg_store *st, const char *model, const char *version,
		   const char *path, int fd);

/* ---- observations (production feedback) and store summaries ---- */

/* `^[a-z][a-z0-9_]{0,62}$`, so it can name a Prometheus series. 0 or -EINVAL. */
int reg_metric_name_check(const char *name);
/*
 * Records an observed metric (accuracy on live traffic, drift) for a sealed
 * or archived version; -EINVAL for drafts. Observations are measurements,
 * not registry changes: they are not events and the change hook is not
 * called. *ts_out (may be NULL) receives the recorded time.
 */
int reg_observation_add(struct reg_store *st, const struct reg_actor *who, const char *model,
			const char *version, const char *metric, double value, int64_t *ts_out);
/*
 * A version's observations, newest first, optionally of one metric, at most
 * `limit` (0 for all): a JSON array of {metric, value, ts, channel, actor}.
 */
int reg_observation_list(struct reg_store *st, const char *model, const char *version,
			 const char *metric, size_t limit, json_t **out);
/*
 * What a metrics endpoint shows of the whole store, in three queries:
 * {"versions": [{model, state (null for a model without versions), count}],
 *  "aliases": [{model, alias, version, percent?}],
 *  "observations": [{model, version, metric, value, ts}] (latest per series)}.
 * *out is a new reference.
 */
int reg_store_summary(struct reg_store *st, json_t **out);

/* ---- digests ---- */

/* SHA-256 of everything readable from fd (from offset 0), as 64 hex chars. */
int reg_digest_fd(int fd, char out[65], int64_t *size);
int reg_digest_mem(const void *data, size_t len, char out[65]);

#endif
