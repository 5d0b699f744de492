-- SPDX-License-Identifier: Apache-2.0
-- Git-tag sync (registry/gitsync.c): the store's git configuration, the durable
-- queue of git side effects (enqueued in the same transaction as the registry
-- change that causes them, so a crash can delay a tag but never lose it), and
-- the tags known to name versions (made by the sync or found by read-back),
-- which reverse lineage by commit also searches.

-- One row once `serve --git-repo` (or `modelfs git-sync --repo --run`) has
-- configured the store; while enabled = 1 every seal and alias change queues
-- its tags.
CREATE TABLE git_config (
	id           INTEGER PRIMARY KEY CHECK (id = 1),
	repo         TEXT NOT NULL,
	remote       TEXT,
	tagger_name  TEXT NOT NULL,
	tagger_email TEXT NOT NULL,
	tag_format   TEXT NOT NULL,
	gto          INTEGER NOT NULL DEFAULT 0,
	token_file   TEXT,
	enabled      INTEGER NOT NULL DEFAULT 1,
	updated_at   INTEGER NOT NULL
);

CREATE TABLE git_queue (
	id          INTEGER PRIMARY KEY,
	created_at  INTEGER NOT NULL,
	-- The event that caused it (its id in events); NULL for a backfill.
	event_id    INTEGER,
	-- version: the version tag; register: GTO {model}@v{semver};
	-- assign / unassign: GTO {model}#{alias}#{n} / {model}#{alias}!#{n}.
	kind        TEXT NOT NULL CHECK (kind IN ('version', 'register', 'assign', 'unassign')),
	model       TEXT NOT NULL,
	version     TEXT NOT NULL,
	alias       TEXT,
	-- The version's git_commit when the item was queued (NULL: it had none).
	git_commit  TEXT,
	-- The annotated tag's message, fixed when queued.
	message     TEXT NOT NULL,
	-- The tag's name: fixed when queued, or (GTO counters) committed here
	-- before the tag is made, so a retry after a crash makes the same tag.
	tag         TEXT,
	-- pending: to be made; pushing: made, to be pushed; done; failed: needs
	-- attention (reason says why), retried only when asked.
	state       TEXT NOT NULL DEFAULT 'pending'
		    CHECK (state IN ('pending', 'pushing', 'done', 'failed')),
	reason      TEXT,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT,
	error_at    INTEGER,
	-- The full commit id the tag points at, once made.
	commit_sha  TEXT,
	done_at     INTEGER
);
CREATE INDEX git_queue_open ON git_queue(state, id) WHERE state IN ('pending', 'pushing');
CREATE INDEX git_queue_version ON git_queue(model, version, kind);

CREATE TABLE git_tags (
	tag        TEXT PRIMARY KEY,
	model      TEXT NOT NULL,
	version    TEXT NOT NULL,
	commit_sha TEXT NOT NULL,
	-- 'sync' (made by modelfs) or 'read-back' (found in the repository)
	source     TEXT NOT NULL,
	seen_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX git_tags_commit ON git_tags(commit_sha);
