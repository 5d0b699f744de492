/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry internals of git-tag sync (gitsync.c): its SQL statements, which
 * join the registry's statement table, and the calls the rest of the
 * registry makes into it. Included by reg_i.h only.
 */
#ifndef MODELFS_GITSYNC_I_H
#define MODELFS_GITSYNC_I_H

#include <jansson.h>

struct reg_conn;
struct reg_store;
struct reg_actor;

#define REG_SQL_GIT_LIST(X) \
	X(GIT_CONFIG_GET, "SELECT repo, remote, tagger_name, tagger_email, tag_format, gto, " \
		"token_file, enabled, updated_at FROM git_config WHERE id = 1") \
	X(GIT_CONFIG_SET, "INSERT INTO git_config(id, repo, remote, tagger_name, tagger_email, " \
		"tag_format, gto, token_file, enabled, updated_at) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8) " \
		"ON CONFLICT(id) DO UPDATE SET repo = excluded.repo, remote = excluded.remote, " \
		"tagger_name = excluded.tagger_name, tagger_email = excluded.tagger_email, " \
		"tag_format = excluded.tag_format, gto = excluded.gto, token_file = excluded.token_file, " \
		"enabled = 1, updated_at = excluded.updated_at") \
	X(GIT_CONFIG_DISABLE, "UPDATE git_config SET enabled = 0, updated_at = ?1 WHERE id = 1") \
	X(GIT_ENABLED, "SELECT gto, tag_format FROM git_config WHERE id = 1 AND enabled = 1") \
	X(GIT_ENQUEUE, "INSERT INTO git_queue(created_at, event_id, kind, model, version, alias, " \
		"git_commit, message, tag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)") \
	X(GIT_OPEN_ITEMS, "SELECT id, created_at, kind, model, version, alias, git_commit, message, " \
		"tag, attempts, next_at FROM git_queue WHERE state = ?1 ORDER BY id LIMIT ?2") \
	X(GIT_TAG_FIX, "UPDATE git_queue SET tag = ?2 WHERE id = ?1 AND tag IS NULL") \
	X(GIT_ITEM_MADE, "UPDATE git_queue SET state = ?2, commit_sha = ?3, attempts = 0, " \
		"next_at = 0, done_at = ?4 WHERE id = ?1") \
	X(GIT_ITEM_DONE, "UPDATE git_queue SET state = 'done', done_at = ?2 WHERE id = ?1") \
	X(GIT_PUSH_DROP, "UPDATE git_queue SET state = 'done', done_at = ?1 WHERE state = 'pushing'") \
	X(GIT_ITEM_FAIL, "UPDATE git_queue SET state = 'failed', reason = ?2, last_error = ?3, " \
		"error_at = ?4, attempts = attempts + 1 WHERE id = ?1") \
	X(GIT_ITEM_RETRY, "UPDATE git_queue SET attempts = attempts + 1, next_at = ?2, " \
		"last_error = ?3, error_at = ?4 WHERE id = ?1") \
	X(GIT_TAG_RECORD, "INSERT INTO git_tags(tag, model, version, commit_sha, source, seen_at) " \
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(tag) DO UPDATE SET model = excluded.model, " \
		"version = excluded.version, commit_sha = excluded.commit_sha, " \
		"source = CASE WHEN git_tags.commit_sha = excluded.commit_sha THEN git_tags.source " \
		"ELSE excluded.source END, seen_at = excluded.seen_at") \
	X(GIT_TAG_FORGET, "DELETE FROM git_tags WHERE tag = ?1") \
	X(GIT_TAGS_ALL, "SELECT tag FROM git_tags ORDER BY tag") \
	X(GIT_STATUS_STATES, "SELECT state, count(*), min(created_at) FROM git_queue GROUP BY state") \
	X(GIT_STATUS_REASONS, "SELECT reason, count(*) FROM git_queue WHERE state = 'failed' " \
		"GROUP BY reason") \
	X(GIT_STATUS_ERROR, "SELECT last_error, error_at FROM git_queue " \
		"WHERE state != 'done' AND last_error IS NOT NULL ORDER BY error_at DESC, id DESC LIMIT 1") \
	X(GIT_LIST, "SELECT id, created_at, event_id, kind, model, version, alias, git_commit, tag, " \
		"state, reason, attempts, next_at, last_error, error_at, commit_sha, done_at " \
		"FROM git_queue WHERE (?1 IS NULL OR state = ?1) AND id > ?2 ORDER BY id LIMIT ?3") \
	X(GIT_RETRY, "UPDATE git_queue SET state = 'pending', reason = NULL, attempts = 0, " \
		"next_at = 0 WHERE state = 'failed' AND (?1 = 0 OR id = ?1)") \
	X(GIT_UNQUEUED, "SELECT m.name, v.name FROM versions v JOIN models m ON m.id = v.model_id " \
		"WHERE v.state != 'draft' AND NOT EXISTS (SELECT 1 FROM git_queue q " \
		"WHERE q.kind = 'version' AND q.model = m.name AND q.version = v.name) " \
		"ORDER BY v.sealed_at, v.id") \
	X(GIT_SEALED, "SELECT m.name, v.name, v.git_commit FROM versions v " \
		"JOIN models m ON m.id = v.model_id WHERE v.state != 'draft' ORDER BY m.name, v.name") \
	X(GIT_VERSION_ITEM, "SELECT state, attempts, last_error FROM git_queue " \
		"WHERE model = ?1 AND version = ?2 AND kind = 'version' ORDER BY id DESC LIMIT 1") \
	X(GIT_LINEAGE, "SELECT m.name, v.name, v.git_commit, v.training_data_hash, v.state, t.tag " \
		"FROM git_tags t JOIN models m ON m.name = t.model " \
		"JOIN versions v ON v.model_id = m.id AND v.name = t.version " \
		"WHERE t.commit_sha >= ?1 AND t.commit_sha < ?2 ORDER BY m.name, v.seq, t.tag")

/*
 * Called by reg_event_add() for every event, inside its transaction: when
 * git sync is enabled for the store, queues the tags the change calls for
 * (version.seal and import: the version tag and GTO registration; alias.set
 * and alias.delete: GTO assignment / unassignment), so they commit or roll
 * back with the change. `event_id` is the new event's id. Returns 0 or -errno.
 */
int gs_event_enqueue(struct reg_conn *c, int64_t event_id, const struct reg_actor *who,
		     const char *kind, const char *model, const char *version, const char *alias,
		     const char *before, const char *after, json_t *detail);
/*
 * Versions found through tags at a commit (reverse lineage): appends
 * {model, version, git_commit, training_data_hash, state, git_tag} for each
 * tag in git_tags whose commit lies in [lo, hi) and whose version is not
 * already in arr.
 */
int gs_lineage_add(struct reg_conn *c, const char *lo, const char *hi, json_t *arr);

/*
 * Fault injection for the crash tests: when set, called at each step of a
 * run where a crash must lose nothing ("named": a tag name committed, the
 * tag not made; "made": a tag made, its outcome not recorded; "pushed": a
 * push done, its outcome not recorded). NULL outside tests.
 */
extern void (*gs_fault_hook)(const char *point);

#endif
