/* SPDX-License-Identifier: Apache-2.0 */
/* registry internals: the store struct, db access, disk helpers. */
#ifndef MODELFS_REG_I_H
#define MODELFS_REG_I_H

#include <pthread.h>
#include <sys/stat.h>
#include <stdatomic.h>

#include "cm.h"
#include "gitsync_i.h"
#include "reg.h"
#include "reg_json.h"

#define REG_META_DIR ".modelfs"
#define REG_DB_NAME "registry.db"
#define REG_LOCK_NAME "lock"
/* The store's identity (a random id also kept in the db's store_info as store_id). */
#define REG_ID_NAME "store-id"
#define REG_METADATA_FILE "metadata.json"
#define REG_READERS 4
#define REGI_BUCKETS 64 /* actors whose refusal rate is tracked at once */
#define REG_OBSERVERS 8

/* search.c: ids bound per batch, and the columns of a version summary. */
#define SRCH_BATCH 50
#define SRCH_IDS "?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,?32,?33,?34,?35,?36,?37,?38,?39,?40,?41,?42,?43,?44,?45,?46,?47,?48,?49,?50"
#define SRCH_SUMMARY_COLS "v.id, m.name, v.name, v.seq, v.state, v.created_at, v.sealed_at, " \
	"v.total_size, v.digest, v.validation_status, v.git_commit"

/*
 * Every statement the registry runs, prepared once per connection:
 * X(ID, "SQL") in the SQL that SQLite and PostgreSQL both accept (?N
 * parameters become $N for PostgreSQL), or X(ID, "SQLite's", "PostgreSQL's")
 * where the dialects differ.
 */
#define REG_SQL_LIST(X) \
	X(MODEL_INSERT, "INSERT INTO models(name, created_at) VALUES (?1, ?2)") \
	X(MODEL_GET, "SELECT id, name, created_at FROM models WHERE name = ?1") \
	X(MODEL_LIST, "SELECT id, name, created_at FROM models WHERE name > ?1 ORDER BY name LIMIT ?2") \
	X(MODEL_DELETE, "DELETE FROM models WHERE id = ?1") \
	X(MODEL_POLICY_GET, "SELECT policy FROM models WHERE id = ?1") \
	X(MODEL_POLICY_SET, "UPDATE models SET policy = ?2 WHERE id = ?1") \
	/* git.* and integrity.* events change nothing materialised: metadata.json's event_id skips them. */ \
	X(MODEL_LAST_EVENT, "SELECT coalesce((SELECT id FROM events WHERE model = ?1 " \
		"AND kind NOT LIKE 'git.%' AND kind NOT LIKE 'integrity.%' AND kind <> 'refused' ORDER BY id DESC LIMIT 1), 0)") \
	X(VERSION_INSERT, "INSERT INTO versions(model_id, name, seq, state, created_at, metadata, " \
		"git_commit, training_data_hash, validation_status, parent_version) " \
		"VALUES (?1, ?2, ?3, 'draft', ?4, ?5, ?6, ?7, ?8, ?9)") \
	X(VERSION_GET, "SELECT v.id, v.name, v.seq, v.state, v.created_at, v.sealed_at, " \
		"v.total_size, v.digest, v.validation_status FROM versions v " \
		"WHERE v.model_id = ?1 AND v.name = ?2") \
	X(VERSION_MAX_SEQ, "SELECT CASE WHEN s > n THEN s ELSE n END FROM (SELECT " \
		"coalesce((SELECT max(seq) FROM versions WHERE model_id = ?1), 0) AS s, " \
		"(SELECT version_counter FROM models WHERE id = ?1) AS n) AS t") \
	X(MODEL_COUNTER_SET, "UPDATE models SET version_counter = CASE WHEN version_counter > ?2 " \
		"THEN version_counter ELSE ?2 END WHERE id = ?1") \
	X(INFO_GET, "SELECT value FROM store_info WHERE key = ?1") \
	X(INFO_SET, "INSERT INTO store_info(key, value) VALUES (?1, ?2) " \
		"ON CONFLICT(key) DO UPDATE SET value = excluded.value") \
	X(INFO_ROWS, "SELECT (SELECT count(*) FROM models) + (SELECT count(*) FROM events)") \
	/* The store's tables, for `modelfs migrate` (db_copy.c refuses one it does not know). */ \
	X(TABLE_NAMES, "SELECT name FROM sqlite_master WHERE type = 'table' " \
		"AND name NOT LIKE 'sqlite_%' ORDER BY name", \
		"SELECT tablename FROM pg_tables WHERE schemaname = current_schema() " \
		"AND tablename NOT IN ('modelfs_schema', 'event_seq') ORDER BY tablename") \
	X(VERSION_LIST, "SELECT v.id, v.name, v.seq, v.state, v.created_at, v.sealed_at, " \
		"v.total_size, v.digest, v.validation_status FROM versions v " \
		"WHERE v.model_id = ?1 AND v.seq > ?2 AND (?3 IS NULL OR v.state = ?3) " \
		"AND (?4 IS NULL OR v.validation_status = ?4) AND (?6 = 0 OR (?6 = 1 AND " \
		"v.state <> 'archived') OR (?6 = 2 AND v.state = 'archived')) ORDER BY v.seq LIMIT ?5") \
	X(VERSION_COUNT, "SELECT count(*) FROM versions WHERE model_id = ?1") \
	X(VERSION_STATES, "SELECT state, count(*) FROM versions WHERE model_id = ?1 GROUP BY state") \
	X(VERSION_LATEST, "SELECT name FROM versions WHERE model_id = ?1 ORDER BY seq DESC LIMIT 1") \
	X(VERSION_META_GET, "SELECT metadata FROM versions WHERE id = ?1") \
	X(VERSION_META_SET, "UPDATE versions SET metadata = ?2, git_commit = ?3, " \
		"training_data_hash = ?4, validation_status = ?5, parent_version = ?6 WHERE id = ?1") \
	X(VERSION_SEAL, "UPDATE versions SET state = 'sealed', sealed_at = ?2, total_size = ?3, " \
		"digest = ?4 WHERE id = ?1 AND state = 'draft'") \
	X(VERSION_STATE_SET, "UPDATE versions SET state = ?2 WHERE id = ?1") \
	X(VERSION_DELETE, "DELETE FROM versions WHERE id = ?1") \
	X(FILE_DELETE_VERSION, "DELETE FROM files WHERE version_id = ?1") \
	X(OBS_DELETE_VERSION, "DELETE FROM observations WHERE version_id = ?1") \
	X(OBS_LATEST_DELETE_VERSION, "DELETE FROM observations_latest WHERE version_id = ?1") \
	X(VERSION_GIT_TAGS, "SELECT tag FROM git_queue WHERE model = ?1 AND version = ?2 " \
		"AND tag IS NOT NULL UNION SELECT tag FROM git_tags WHERE model = ?1 " \
		"AND version = ?2 ORDER BY 1") \
	X(EVENT_ALIASED_SINCE, "SELECT before, after FROM events WHERE model = ?1 " \
		"AND kind IN ('alias.set', 'alias.delete') AND ts >= ?2") \
	X(FILE_INSERT, "INSERT INTO files(version_id, path, size, sha256, mode, ino, mtime_ns, ctime_ns) " \
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)") \
	X(FILE_LIST, "SELECT path, size, sha256, mode, ino, mtime_ns, ctime_ns FROM files " \
		"WHERE version_id = ?1 ORDER BY path") \
	X(ALIAS_UPSERT, "INSERT INTO aliases(model_id, name, version_id, percent, updated_at) " \
		"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(model_id, name) DO UPDATE SET " \
		"version_id = excluded.version_id, percent = excluded.percent, updated_at = excluded.updated_at") \
	X(ALIAS_GET, "SELECT a.name, v.name, a.percent, a.updated_at FROM aliases a " \
		"JOIN versions v ON v.id = a.version_id WHERE a.model_id = ?1 AND a.name = ?2") \
	X(ALIAS_LIST, "SELECT a.name, v.name, a.percent, a.updated_at FROM aliases a " \
		"JOIN versions v ON v.id = a.version_id WHERE a.model_id = ?1 ORDER BY a.name") \
	X(ALIAS_DELETE, "DELETE FROM aliases WHERE model_id = ?1 AND name = ?2") \
	X(ALIAS_PERCENT_CAS, "UPDATE aliases SET percent = ?4, updated_at = ?5 " \
		"WHERE model_id = ?1 AND name = ?2 AND version_id = ?3") \
	X(ALIAS_BY_VERSION, "SELECT name FROM aliases WHERE version_id = ?1 ORDER BY name") \
	/* PostgreSQL: the id from event_seq, under the writers' lock (a gap-free commit order). */ \
	X(EVENT_INSERT, "INSERT INTO events(ts, model, version, alias, kind, channel, actor, " \
		"before, after, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", \
		"WITH n AS (UPDATE event_seq SET last = last + 1 WHERE id = 1 RETURNING last) " \
		"INSERT INTO events(id, ts, model, version, alias, kind, channel, actor, before, " \
		"after, detail) SELECT n.last, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM n " \
		"RETURNING id") \
	X(EVENT_ALIAS_HISTORY, "SELECT before, after, detail FROM events WHERE model = ?1 " \
		"AND alias = ?2 AND kind IN ('alias.set', 'alias.delete') ORDER BY id DESC") \
	X(EVENT_ALIAS_AT, "SELECT after, ts, detail FROM events WHERE model = ?1 AND alias = ?2 " \
		"AND kind IN ('alias.set', 'alias.delete') AND ts <= ?3 ORDER BY ts DESC, id DESC LIMIT 1") \
	X(EVENT_COUNT, "SELECT count(*) FROM events") \
	X(EVENT_DELETED_SINCE, "SELECT DISTINCT version FROM events WHERE model = ?1 " \
		"AND kind = 'version.delete' AND id > ?2") \
	X(EVENT_LAST_MODEL, "SELECT kind FROM events WHERE model = ?1 " \
		"AND kind IN ('model.create', 'import', 'model.delete') ORDER BY id DESC LIMIT 1") \
	X(EVENT_LIST, "SELECT id, ts, model, version, alias, kind, channel, actor, before, after, detail " \
		"FROM events WHERE (?1 IS NULL OR model = ?1) " \
		"AND (?2 IS NULL OR kind = ?2 OR (substr(?2, length(?2), 1) = '.' AND substr(kind, 1, length(?2)) = ?2)) " \
		"AND (?3 = 0 OR ts >= ?3) AND (?4 = 0 OR ts <= ?4) AND id > ?5 ORDER BY id LIMIT ?6") \
	X(REFUSAL_INSERT, "INSERT INTO refusals(ts, model, version, alias, channel, actor, uid, " \
		"token, op, rule, errno, status, code, message, failed_gates, event_id) VALUES (?1, ?2, " \
		"?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)") \
	X(REFUSAL_TRIM, "DELETE FROM refusals WHERE id <= ?1") \
	X(REFUSAL_STATUS_SET, "UPDATE refusals SET status = ?2, code = ?3 WHERE id = ?1") \
	X(REFUSAL_LIST, "SELECT id, ts, model, version, alias, channel, actor, uid, token, op, rule, " \
		"errno, status, code, message, failed_gates, event_id FROM refusals " \
		"WHERE (?1 IS NULL OR model = ?1) " \
		"AND ((CAST(?2 AS BIGINT) IS NULL AND ?3 IS NULL) OR uid = CAST(?2 AS BIGINT) OR token = ?3) " \
		"AND (?4 IS NULL OR token = ?4 OR channel = 'fs') " \
		"AND (?5 = 0 OR id < ?5) ORDER BY id DESC LIMIT ?6") \
	X(LINEAGE_COMMIT, "SELECT m.name, v.name, v.git_commit, v.training_data_hash, v.state " \
		"FROM versions v JOIN models m ON m.id = v.model_id " \
		"WHERE v.git_commit >= ?1 AND v.git_commit < ?2 ORDER BY m.name, v.seq") \
	X(LINEAGE_HASH, "SELECT m.name, v.name, v.git_commit, v.training_data_hash, v.state " \
		"FROM versions v JOIN models m ON m.id = v.model_id " \
		"WHERE v.training_data_hash = ?1 ORDER BY m.name, v.seq") \
	X(FILE_GET, "SELECT size, sha256, mode, ino, mtime_ns, ctime_ns FROM files " \
		"WHERE version_id = ?1 AND path = ?2") \
	X(FILE_BY_INO, "SELECT path, size, sha256, mode, ino, mtime_ns, ctime_ns FROM files " \
		"WHERE version_id = ?1 AND ino = ?2 LIMIT 1") \
	X(FILE_ANY_UNRECORDED, "SELECT 1 FROM files WHERE version_id = ?1 AND ino IS NULL LIMIT 1") \
	X(FILE_UNRECORDED, "SELECT m.name, v.name, v.id, f.path FROM files f " \
		"JOIN versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id " \
		"WHERE f.ino IS NULL ORDER BY v.id, f.path") \
	X(FILE_STAT_SET, "UPDATE files SET ino = ?3, mtime_ns = ?4, ctime_ns = ?5 " \
		"WHERE version_id = ?1 AND path = ?2") \
	X(OBS_INSERT, "INSERT INTO observations(version_id, metric, value, ts, channel, actor) " \
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6)") \
	X(OBS_LATEST_SET, "INSERT INTO observations_latest(version_id, metric, value, ts) " \
		"VALUES (?1, ?2, ?3, ?4) ON CONFLICT(version_id, metric) DO UPDATE SET " \
		"value = excluded.value, ts = excluded.ts") \
	X(OBS_LIST, "SELECT metric, value, ts, channel, actor FROM observations " \
		"WHERE version_id = ?1 AND (?2 IS NULL OR metric = ?2) ORDER BY id DESC LIMIT ?3") \
	X(SUMMARY_VERSIONS, "SELECT m.name, v.state, count(v.id) FROM models m " \
		"LEFT JOIN versions v ON v.model_id = m.id GROUP BY m.id, v.state ORDER BY m.name") \
	X(SUMMARY_ALIASES, "SELECT m.name, a.name, v.name, a.percent FROM aliases a " \
		"JOIN models m ON m.id = a.model_id JOIN versions v ON v.id = a.version_id " \
		"ORDER BY m.name, a.name") \
	X(SUMMARY_OBSERVATIONS, "SELECT m.name, v.name, l.metric, l.value, l.ts " \
		"FROM observations_latest l JOIN versions v ON v.id = l.version_id " \
		"JOIN models m ON m.id = v.model_id ORDER BY m.name, v.seq, l.metric") \
	X(OUTBOX_SUB_ACTIVE, "SELECT id, kinds, models FROM outbox_subscribers " \
		"WHERE deleted_at IS NULL ORDER BY id") \
	X(OUTBOX_SUB_COUNT, "SELECT count(*) FROM outbox_subscribers WHERE deleted_at IS NULL") \
	X(OUTBOX_SUB_INSERT, "INSERT INTO outbox_subscribers(adapter, target, secret, kinds, models, " \
		"created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)") \
	X(OUTBOX_SUB_LIST, "SELECT id, adapter, target, secret, kinds, models, created_at " \
		"FROM outbox_subscribers WHERE deleted_at IS NULL AND (?1 IS NULL OR adapter = ?1) " \
		"AND (?2 = 0 OR id = ?2) ORDER BY id") \
	X(OUTBOX_SUB_DELETE, "UPDATE outbox_subscribers SET deleted_at = ?2 " \
		"WHERE id = ?1 AND deleted_at IS NULL") \
	X(OUTBOX_SUB_DROP, "UPDATE outbox SET state = 'dropped', done_at = ?2 " \
		"WHERE subscriber_id = ?1 AND state = 'pending'") \
	X(OUTBOX_ENQUEUE, "INSERT INTO outbox(subscriber_id, event_id, state, attempts, next_at, " \
		"lease_until, lease_token, created_at) VALUES (?1, ?2, 'pending', 0, 0, 0, 0, ?3)") \
	X(OUTBOX_HEAD, "SELECT o.id, o.attempts, o.next_at, o.lease_until, e.id, e.ts, e.model, " \
		"e.version, e.alias, e.kind, e.channel, e.actor, e.before, e.after, e.detail " \
		"FROM outbox o JOIN events e ON e.id = o.event_id " \
		"WHERE o.subscriber_id = ?1 AND o.state = 'pending' ORDER BY o.id LIMIT 1") \
	X(OUTBOX_LEASE, "UPDATE outbox SET lease_until = ?2, lease_token = ?3 " \
		"WHERE id = ?1 AND state = 'pending' AND lease_until <= ?4") \
	X(OUTBOX_LEASES_RELEASE, "UPDATE outbox SET lease_until = 0 " \
		"WHERE state = 'pending' AND lease_until > 0") \
	X(OUTBOX_COMPLETE, "UPDATE outbox SET state = 'done', done_at = ?3, lease_until = 0, " \
		"last_status = ?4 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'") \
	X(OUTBOX_FAIL, "UPDATE outbox SET attempts = attempts + 1, next_at = ?3, lease_until = 0, " \
		"lease_token = 0, " \
		"last_error = ?4, error_at = ?5, last_status = ?6 " \
		"WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'") \
	X(OUTBOX_STATES, "SELECT subscriber_id, state, count(*), min(created_at), max(attempts) " \
		"FROM outbox GROUP BY subscriber_id, state") \
	X(OUTBOX_LAST_ERROR, "SELECT last_error, error_at, last_status FROM outbox " \
		"WHERE subscriber_id = ?1 AND last_error IS NOT NULL " \
		"ORDER BY error_at DESC, id DESC LIMIT 1") \
	X(OUTBOX_ITEMS, "SELECT o.id, o.event_id, e.kind, e.model, e.version, e.alias, o.state, " \
		"o.attempts, o.next_at, o.last_error, o.error_at, o.last_status, o.created_at, " \
		"o.done_at FROM outbox o JOIN events e ON e.id = o.event_id " \
		"WHERE o.subscriber_id = ?1 AND (?2 IS NULL OR o.state = ?2) " \
		"ORDER BY o.id DESC LIMIT ?3") \
	X(TRIG_GET, "SELECT spec, updated_at, episode_open, below_since, fired_at, schedule_at " \
		"FROM triggers WHERE model_id = ?1") \
	X(TRIG_SET, "INSERT INTO triggers(model_id, spec, updated_at, episode_open, below_since, " \
		"fired_at, schedule_at) VALUES (?1, ?2, ?3, 0, 0, 0, ?3) ON CONFLICT(model_id) DO UPDATE " \
		"SET spec = excluded.spec, updated_at = excluded.updated_at") \
	X(TRIG_STATE, "UPDATE triggers SET episode_open = ?2, below_since = ?3, fired_at = ?4, " \
		"schedule_at = ?5 WHERE model_id = ?1") \
	X(TRIG_CLEAR, "UPDATE triggers SET episode_open = 0, below_since = 0 " \
		"WHERE model_id = (SELECT id FROM models WHERE name = ?1)") \
	X(TRIG_ALL, "SELECT t.model_id, m.name FROM triggers t JOIN models m ON m.id = t.model_id " \
		"ORDER BY m.name") \
	/* search.c: the leaf index, summaries by batches of ids, model descriptions */ \
	X(LEAF_DELETE, "DELETE FROM version_leaves WHERE version_id = ?1") \
	X(LEAF_INSERT, "INSERT INTO version_leaves(version_id, path, num, text) " \
		"VALUES (?1, ?2, ?3, ?4)") \
	X(VERSION_IDS, "SELECT id FROM versions ORDER BY id") \
	X(LEAVES_BY_IDS, "SELECT version_id, path, num, text FROM version_leaves " \
		"WHERE version_id IN (" SRCH_IDS ") AND (substr(path, 1, 20) = 'performance_metrics.' " \
		"OR substr(path, 1, 5) = 'tags.' OR path = 'owner' OR path = 'description') " \
		"ORDER BY version_id, path") \
	X(ALIASES_BY_IDS, "SELECT version_id, name FROM aliases WHERE version_id IN (" SRCH_IDS ") " \
		"ORDER BY name") \
	X(VERSIONS_BY_IDS, "SELECT " SRCH_SUMMARY_COLS " FROM versions v " \
		"JOIN models m ON m.id = v.model_id WHERE v.id IN (" SRCH_IDS ")") \
	X(MODEL_ABOUT_GET, "SELECT description, owner FROM models WHERE id = ?1") \
	X(MODEL_ABOUT_SET, "UPDATE models SET description = ?2, owner = ?3 WHERE id = ?1") \
	X(MODEL_TAGS, "SELECT key, value FROM model_tags WHERE model_id = ?1 ORDER BY key") \
	X(MODEL_TAGS_CLEAR, "DELETE FROM model_tags WHERE model_id = ?1") \
	X(MODEL_TAG_INSERT, "INSERT INTO model_tags(model_id, key, value) VALUES (?1, ?2, ?3)") \
	X(MODEL_OVERVIEW, "SELECT m.id, m.name, m.created_at, m.description, m.owner, " \
		"(SELECT v.id FROM versions v WHERE v.model_id = m.id ORDER BY v.seq DESC LIMIT 1), " \
		"(SELECT max(e.id) FROM events e WHERE e.model = m.name) " \
		"FROM models m WHERE m.name > ?1 ORDER BY m.name LIMIT ?2") \
	X(MODEL_TAGS_BY_IDS, "SELECT model_id, key, value FROM model_tags " \
		"WHERE model_id IN (" SRCH_IDS ") ORDER BY key") \
	X(MODEL_ALIASES_BY_IDS, "SELECT a.model_id, a.name, v.name, a.percent FROM aliases a " \
		"JOIN versions v ON v.id = a.version_id WHERE a.model_id IN (" SRCH_IDS ") " \
		"ORDER BY a.name") \
	X(EVENTS_BY_IDS, "SELECT id, ts, kind, actor, channel FROM events WHERE id IN (" SRCH_IDS ")") \
	X(EVENT_LIST_DESC, "SELECT id, ts, model, version, alias, kind, channel, actor, before, " \
		"after, detail FROM events WHERE (?1 IS NULL OR model = ?1) " \
		"AND (?2 IS NULL OR kind = ?2 OR (substr(?2, length(?2), 1) = '.' " \
		"AND substr(kind, 1, length(?2)) = ?2)) " \
		"AND (?3 = 0 OR ts >= ?3) AND (?4 = 0 OR ts <= ?4) AND (?5 = 0 OR id < ?5) " \
		"ORDER BY id DESC LIMIT ?6")

enum reg_sql {
#define X(id, ...) REG_SQL_##id,
	REG_SQL_LIST(X)
	REG_SQL_GIT_LIST(X)
#undef X
	REG_SQL_COUNT
};

/* A change waiting for its transaction's end before the hook hears of it. */
struct reg_note {
	struct reg_note *next;
	char *kind, *channel, *model, *version, *alias;
};

struct db_stmt; /* a prepared statement of the store's backend (db_i.h) */
struct db_ops;

/* One backend connection, its statements, and the mutex that owns both. */
struct reg_conn {
	void *db;                  /* the backend's handle (sqlite3 *, PGconn *); NULL when closed */
	const struct db_ops *ops;  /* the store's backend */
	pthread_mutex_t mu;
	int mu_init;
	struct db_stmt *stmt[REG_SQL_COUNT];
	struct reg_store *st;
	struct reg_note *notes, **notes_tail; /* writer only: this transaction's changes */
	int kick;                             /* writer only: this transaction queued deliveries */
	void *be;                  /* the backend's per-connection state */
};

/* In-memory state of a version being written or sealed. */
struct reg_live {
	int64_t vid;
	int writers;
	int sealing;
	int holds;   /* files open for reading through the mount (reg_version_hold) */
	int deleting; /* a delete is under way: no new holds or writes (ver_delete_begin) */
};

struct reg_store {
	char *path;
	int root_fd;
	int meta_fd;
	int lock_fd;
	unsigned flags;
	/* The metadata database: NULL for SQLite in .modelfs/, else a PostgreSQL conninfo. */
	char *db_url;
	/* PostgreSQL: 1 while the last use of a connection found the server; reconnections. */
	atomic_int db_up;
	atomic_llong db_reconnects;
	/* The one writer connection; its mutex also orders disk changes. */
	struct reg_conn writer;
	struct reg_conn readers[REG_READERS];
	atomic_uint next_reader;
	pthread_mutex_t live_mu;
	pthread_cond_t live_cv;     /* signalled when a seal ends */
	struct reg_live *live;
	size_t live_n, live_cap;
	reg_change_cb hook;
	void *hook_ctx;
	/* PostgreSQL: the thread applying other nodes' events (follow.c), or NULL. */
	struct reg_follow *follow;
	/* The git worker (gitsync.c's mutex guards it). */
	struct reg_git_worker *git_worker;
	/*
	 * Told after a commit that queued deliveries (outbox items, git tags),
	 * once the writer is unlocked: the delivery workers' wake-ups (obs_mu).
	 */
	pthread_mutex_t obs_mu;
	struct { reg_outbox_observer_cb fn; void *ctx; } obs[REG_OBSERVERS];
	int64_t outbox_backoff_max_us; /* set before workers start */
	/* --admin-group: -1 for none (set before threads start, read-only after). */
	long long admin_gid;
	/* Disk updates that failed after their commit (guarded by writer.mu). */
	int64_t disk_errors;
	char disk_error[256];
	/* Sealed files refused because they changed on disk (integrity.c, under integ_mu). */
	pthread_mutex_t integ_mu;
	char **integ_seen;          /* "<vid>/<path>" already reported by an event */
	size_t integ_n, integ_cap;
	int64_t integ_refused;
	char integ_last[256];
	/* Refusal records: a token bucket per recent actor (refusal.c, under refusal_mu). */
	pthread_mutex_t refusal_mu;
	struct regi_bucket {
		char key[80];       /* "uid=1000", "token=ci", ... ("" when free) */
		double tokens;
		int64_t at_us;
	} refusal_buckets[REGI_BUCKETS];
	int64_t refusals_dropped;
};

/* ---- refusal.c ---- */
/*
 * Records a refusal the registry itself decided and knows more of (a gate's
 * before and after). Like reg_refusal_record(); also remembers the record on
 * this thread so that the adapter's own call for the same failure only adds
 * its status and code (one record per refusal).
 */
int regi_refusal_add(struct reg_store *st, const struct reg_actor *who,
		     const struct reg_refusal *r);

/* ---- db.c: the metadata backend boundary (db_sqlite.c, db_pg.c behind it) ---- */
/*
 * Opens the store's connections: SQLite at `path` (.modelfs/registry.db), or
 * PostgreSQL when st->db_url is set. Migrates (unless readonly).
 */
int db_open(struct reg_store *st, const char *path, int readonly);
void db_close(struct reg_store *st);
/* "sqlite" or "postgresql". */
const char *db_kind(const struct reg_store *st);
/* Locks a reader connection; release with db_read_end(). */
struct reg_conn *db_read_begin(struct reg_store *st);
void db_read_end(struct reg_conn *c);
/* Locks the writer and begins a write transaction serialised against every writer. */
int db_write_begin(struct reg_store *st, struct reg_conn **out);
/* Commits; the writer stays locked so that disk changes follow in order. */
int db_write_commit(struct reg_conn *c);
/* Rolls back (if a transaction is open); the writer stays locked. */
void db_write_rollback(struct reg_conn *c);
/* Rolls back (if a transaction is open) and unlocks. Accepts NULL. */
void db_write_abort(struct reg_conn *c);
/* Unlocks the writer after a commit, then tells the hook of the changes. */
void db_write_end(struct reg_conn *c);
/* Queues a change for the hook (called by reg_event_add inside the transaction). */
void db_note(struct reg_conn *c, const char *kind, const char *channel, const char *model,
	     const char *version, const char *alias);
/* The reset statement `id` on c; NULL (detail set) when it cannot be prepared. */
struct db_stmt *db_stmt(struct reg_conn *c, enum reg_sql id);
/* Why this thread's last db_stmt() gave NULL (-errno; -EIO when unknown). */
int db_stmt_error(void);
/*
 * Steps s: 1 for a row, 0 when done, -errno for an error (detail names `what`,
 * the statement and the backend's message). Every step in registry/ goes
 * through here, so that an error never reads as "no row" or "end of rows".
 */
int db_step(struct reg_conn *c, struct db_stmt *s, const char *what);
/*
 * Test hook: when set, called before every db_step(); a result other than 0
 * (a -errno) is returned as if the step had failed with it (tests only).
 */
extern int (*db_step_fault)(struct db_stmt *s);
/* Steps a statement expecting no row (or ignoring the rows); returns 0 or -errno. */
int db_exec_stmt(struct reg_conn *c, struct db_stmt *s, const char *what);
/* Resets s (its rows are dropped, its binds cleared). */
int db_reset(struct db_stmt *s);
/*
 * Binds parameter i (from 1). A failed bind fails the thread's next
 * db_step() instead of running the statement without it. db_bind_text
 * binds NULL for a NULL string.
 */
int db_bind_int64(struct db_stmt *s, int i, int64_t v);
int db_bind_int(struct db_stmt *s, int i, int v);
int db_bind_double(struct db_stmt *s, int i, double v);
int db_bind_text(struct db_stmt *s, int i, const char *v);
int db_bind_null(struct db_stmt *s, int i);
/*
 * Column i (from 0) of the current row. db_col_str's pointer is borrowed
 * until the next step or reset of s (NULL for NULL): copy it.
 */
int64_t db_col_int64(struct db_stmt *s, int i);
int db_col_int(struct db_stmt *s, int i);
double db_col_double(struct db_stmt *s, int i);
int db_col_null(struct db_stmt *s, int i);
const char *db_col_str(struct db_stmt *s, int i);
#define db_col_ustr(s, i) ((const unsigned char *)db_col_str((s), (i)))
/* Copies a text column into a fixed buffer ("" for NULL). */
void db_col_text(struct db_stmt *s, int col, char *dst, size_t n);
/* A text column as a new string (NULL for NULL). */
char *db_col_strdup(struct db_stmt *s, int col);
/* Rows changed by c's last statement; the id its last INSERT gave a row. */
int64_t db_changes(struct reg_conn *c);
int64_t db_last_id(struct reg_conn *c);
/* Brings c's schema to the binary's migrations. */
int db_migrate(struct reg_conn *c);
/*
 * Checks that the database belongs to this store directory: store_info's
 * store_id equals .modelfs/store-id (both are created when neither exists).
 * -EEXIST (another store's db) or -ESTALE (the directory's metadata lives
 * in another db) with what to do; SQLite stores pass unless both exist and differ.
 */
int db_identity(struct reg_store *st, int readonly);

/* ---- store.c (disk) ---- */
int st_openat_dir(int dirfd, const char *name, int *out);
/* Opens a relative path (components checked) below dirfd without following symlinks. */
int st_openat_path(int dirfd, const char *path, int flags, mode_t mode, int *out);
int st_fsync_dir(int dirfd);
/* temp + write + fsync + rename over `name`; the caller fsyncs dirfd after. */
int st_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/*
 * As st_write_atomic, without syncing the file's data: for generated files
 * whose loss or damage a reader detects and the next open rewrites.
 */
int st_write_atomic_nosync(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/*
 * As st_write_atomic, with the temporary file in tmpfd (a directory of the
 * same file system): for directories where every name is content (versions).
 */
int st_write_atomic_via(int tmpfd, int dirfd, const char *name, const void *data, size_t len,
			mode_t mode);
/* temp symlink + rename over `name`; the caller fsyncs dirfd after. */
int st_symlink_atomic(int dirfd, const char *name, const char *target);
/* Reads a whole small file; -E2BIG past max. *out NUL-terminated, free(). */
int st_read_file(int dirfd, const char *name, size_t max, char **out, size_t *len);
/* Removes `name` below dirfd recursively. */
int st_remove_tree(int dirfd, const char *name);
/* Lists regular files below dirfd (relative paths, sorted), skipping top-level metadata.json. */
int st_list_files(int dirfd, struct reg_file **out, size_t *n);

/* ---- internal registry helpers (reg.c) ---- */
int reg_model_id(struct reg_conn *c, const char *model, int64_t *id);
int reg_version_row(struct reg_conn *c, int64_t model_id, const char *model, const char *name,
		    struct reg_version *out);
int reg_event_add(struct reg_conn *c, const struct reg_actor *who, const char *kind,
		  const char *model, const char *version, const char *alias, const char *before,
		  const char *after, json_t *detail);


int reg_reconcile(struct reg_store *st);
int reg_adopt(struct reg_store *st);
/* 1 while the first-open adoption has not finished. */
int reg_adopt_pending(struct reg_store *st);

/* ---- outbox.c ---- */
/*
 * Called by reg_event_add() for every event, inside its transaction: one
 * outbox item per subscriber whose kinds and models match the event. Sets
 * c->kick when it queued any. Returns 0 or -errno.
 */
int ob_event_enqueue(struct reg_conn *c, int64_t event_id, const char *kind, const char *model);
/*
 * trigger.c: evaluates the model's retraining rules on an observation of
 * `version` (inside the observation's transaction); records retrain.requested
 * once per episode. And closes the episode on a seal or a promotion
 * (reg_event_add calls it for every event).
 */
int trig_observe(struct reg_conn *c, int64_t mid, const char *model, const char *version,
		 const char *metric, double value, int64_t ts);
int trig_event(struct reg_conn *c, const char *kind, const char *model, const char *alias);
/* Tells the store's observers (db_write_end, after a commit that set c->kick). */
void ob_observers_tell(struct reg_store *st);

/* ---- meta.c ---- */
/* Validates a record against the version metadata schema. */
int meta_check(json_t *record, const char *model, const char *version);
/* 1 if `field` may change after sealing. */
int meta_field_mutable(const char *field);
/* Applies an RFC 7386 merge patch to a copy of target; *out new reference. */
int meta_merge_patch(json_t *target, json_t *patch, json_t **out);
/* Looks up a dotted path ("performance_metrics.accuracy"); borrowed or NULL. */
json_t *meta_path_get(json_t *record, const char *path);

#endif

/* Prepares statement `id` into s, or jumps to done with rc set. */
#define DB_STMT(c, id, s)                               \
	do {                                            \
		(s) = db_stmt((c), REG_SQL_##id);       \
		if (!(s)) {                             \
			rc = db_stmt_error();           \
			goto done;                      \
		}                                       \
	} while (0)

/* What reg_model_materialize() rewrites besides <model>/metadata.json. */
enum {
	MAT_ALIASES = 1 << 0,  /* alias symlinks */
	MAT_ALIAS_SCAN = 1 << 2, /* also remove symlinks of aliases that are gone (reads the dir) */
	MAT_VERSIONS = 1 << 1, /* every version directory, metadata.json and sealed modes */
};
int reg_materialize(struct reg_store *st, struct reg_conn *c, const char *model,
		    const char *version, unsigned what);
/*
 * The exact bytes of a version's / a model's metadata.json; free(*out).
 * mat_version_text returns 1 and *out NULL when the version has no record
 * (no file belongs on disk, or an empty one a tool created).
 */
int mat_version_text(struct reg_conn *c, const char *model, const struct reg_version *v,
		     char **out);
int mat_model_text(struct reg_conn *c, const char *model, char **out);
/*
 * Writes the link of `alias` as the db (inside the current transaction) has
 * it, before the change commits: a link that cannot be written (a clash with
 * a directory or file, an I/O error) is returned and the caller gives up, so
 * an alias change is answered only once its link is on disk.
 */
int mat_link(struct reg_conn *c, int64_t mid, const char *model, const char *alias);
/* 1 when `name` was an alias of the model that was removed (event log). */
int mat_alias_removed(struct reg_conn *c, const char *model, const char *name);
/* A model's aliases from the db; free(*out). */
int mat_aliases(struct reg_conn *c, int64_t mid, struct reg_alias **out, size_t *n);
/*
 * A deleted version's directory, moved into .modelfs/deleted/ inside the
 * deleting transaction (trash_put fills `entry`, empty when there was no
 * directory), put back when the transaction fails (trash_restore), removed
 * after it commits (trash_remove). Open finishes what a crash left (check.c).
 */
int trash_put(struct reg_store *st, const char *model, const char *version, int64_t vid,
	      char *entry, size_t n);
int trash_restore(struct reg_store *st, const char *model, const char *version, const char *entry);
int trash_remove(struct reg_store *st, const char *entry);
/* Who asks for a name in a model directory (names.c). */
enum names_kind { NAMES_VERSION, NAMES_ALIAS };
/*
 * 0 when `name` may become a version / an alias of the model: no entry of
 * the other kind holds it in the db, and nothing else holds it on the volume;
 * -EEXIST with a message otherwise. Inside the caller's write transaction.
 */
int names_claim(struct reg_conn *c, int64_t mid, const char *model, const char *name,
		enum names_kind kind);
/* Adopts one directory of the store root as a model (sealed versions). */
int adopt_model_dir(struct reg_store *st, const char *name, json_t *report);
/* Adopts one directory inside a known model as a draft version. */
int adopt_version_dir(struct reg_store *st, const char *model, const char *name);
/* Sealing steps shared with adoption (version.c). */
int ver_seal_files(int vfd, struct reg_file *files, size_t n, int64_t *total);
int ver_sync_dirs(int vfd, struct reg_file *files, size_t n);
int ver_digest(struct reg_file *files, size_t n, char out[65]);
/* Records a failure to bring the disk in step after a commit; reconcile heals it. */
void reg_disk_error(struct reg_store *st, int rc);
/* Lists a model's versions on connection c (filter may be NULL). free(*out). */
int reg_versions_query(struct reg_conn *c, int64_t mid, const char *model,
		       const struct reg_version_filter *f, struct reg_version **out, size_t *n);
#define reg_versions_all(c, mid, model, out, n) reg_versions_query(c, mid, model, NULL, out, n)
/* The alias names that point at version vid, as a new JSON array in *out (version.c). */
int ver_aliases_of(struct reg_conn *c, int64_t vid, json_t **out);
/*
 * Begins the delete of version vid: -EBUSY naming what holds it (files open
 * through the mount, writes, a seal, another delete); otherwise from now on
 * new holds fail with -ENOENT and writes with -EBUSY until ver_delete_end().
 */
int ver_delete_begin(struct reg_store *st, int64_t vid, const char *model, const char *version);
void ver_delete_end(struct reg_store *st, int64_t vid);
/* ---- integrity.c ---- */
/* Fills f's ino, mtime_ns and ctime_ns from fstat(fd). */
int integ_stat_take(int fd, struct reg_file *f);
/* Binds f's ino, mtime_ns, ctime_ns at i, i+1, i+2 (NULL when not recorded). */
void integ_stat_bind(struct db_stmt *s, int i, const struct reg_file *f);
/*
 * The one rule for serving a sealed file: fd's fstat must equal what the
 * seal recorded in rec (size, and inode, mtime, ctime when recorded). 0, or
 * -EIO with detail after reporting the mismatch (event once per file per
 * process, counters for /metrics and /readyz).
 */
int integ_verify(struct reg_store *st, const char *model, const char *version, int64_t vid,
		 const struct reg_file *rec, int fd);
/* 1 when sb differs from what rec recorded; out lists what (",size,mtime"). */
int integ_differs(const struct reg_file *rec, const struct stat *sb, char out[64]);
/* Records the stat of sealed files that have none (sealed before migration 0005). */
int integ_backfill(struct reg_store *st);
void integ_free(struct reg_store *st);

/* Loads a version's stored record (new reference). */
/*
 * The stored text of a version that has no metadata record (its
 * metadata.json was removed, or it was made without one): no file on disk,
 * {} over the API.
 */
#define REG_RECORD_ABSENT ""
/* Whether version vid has a record: 1, 0 (absent), or -errno. */
int reg_record_present(struct reg_conn *c, int64_t vid);
/* Loads a version's stored record (new reference); {} when absent. */
int reg_record_load(struct reg_conn *c, int64_t vid, json_t **out);

/* ---- search.c ---- */
/* Rewrites version vid's leaf index from its record (NULL or {}: none). In the caller's transaction. */
int srch_leaves_set(struct reg_conn *c, int64_t vid, json_t *rec);
/* Indexes every version once, for stores made before the index existed. */
int srch_backfill(struct reg_store *st);
/*
 * Checks description, owner and tags (each may be NULL: absent). With patch,
 * null values (remove) are allowed for tags and the tags object itself.
 */
int srch_about_check(json_t *description, json_t *owner, json_t *tags, int patch);
/* A model's {description, owner, tags} (new reference). */
int srch_model_about(struct reg_conn *c, int64_t mid, json_t **out);
