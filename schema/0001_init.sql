-- SPDX-License-Identifier: Apache-2.0
-- The registry's first schema: models, versions, files, aliases, policy and the
-- append-only event log. Times are microseconds since the epoch (UTC).

CREATE TABLE models (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	-- The promotion policy as a JSON document (see registry/policy.c).
	policy     TEXT NOT NULL DEFAULT '{"validation_status":"passed"}'
);

CREATE TABLE versions (
	id                 INTEGER PRIMARY KEY,
	model_id           INTEGER NOT NULL REFERENCES models(id),
	name               TEXT NOT NULL,
	-- Creation order within the model: 1, 2, 3, ...
	seq                INTEGER NOT NULL,
	state              TEXT NOT NULL CHECK (state IN ('draft', 'sealed', 'archived')),
	created_at         INTEGER NOT NULL,
	sealed_at          INTEGER,
	-- The version's metadata record (a JSON object), without derived fields.
	metadata           TEXT NOT NULL DEFAULT '{}',
	-- Copies of record fields, kept for filtering and reverse lineage.
	git_commit         TEXT,
	training_data_hash TEXT,
	validation_status  TEXT,
	parent_version     TEXT,
	-- Bytes of content (every file but metadata.json), set when sealed.
	total_size         INTEGER NOT NULL DEFAULT 0,
	-- SHA-256 over the sorted (path, sha256) list, set when sealed.
	digest             TEXT,
	UNIQUE (model_id, name),
	UNIQUE (model_id, seq)
);
CREATE INDEX versions_git_commit ON versions(git_commit) WHERE git_commit IS NOT NULL;
CREATE INDEX versions_data_hash ON versions(training_data_hash) WHERE training_data_hash IS NOT NULL;

-- Content files of sealed versions (drafts are listed from disk).
CREATE TABLE files (
	version_id INTEGER NOT NULL REFERENCES versions(id),
	path       TEXT NOT NULL,
	size       INTEGER NOT NULL,
	sha256     TEXT NOT NULL,
	mode       INTEGER NOT NULL,
	PRIMARY KEY (version_id, path)
) WITHOUT ROWID;

CREATE TABLE aliases (
	model_id   INTEGER NOT NULL REFERENCES models(id),
	name       TEXT NOT NULL,
	version_id INTEGER NOT NULL REFERENCES versions(id),
	-- Traffic percent for canary aliases; NULL for others.
	percent    INTEGER CHECK (percent IS NULL OR (percent BETWEEN 0 AND 100)),
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (model_id, name)
) WITHOUT ROWID;

CREATE TABLE events (
	id       INTEGER PRIMARY KEY,
	ts       INTEGER NOT NULL,
	model    TEXT,
	version  TEXT,
	alias    TEXT,
	kind     TEXT NOT NULL,
	channel  TEXT NOT NULL,
	actor    TEXT NOT NULL,
	before   TEXT,
	after    TEXT,
	-- A JSON object with whatever else the kind carries (gates, reason, ...).
	detail   TEXT
);
CREATE INDEX events_model ON events(model, id);
CREATE INDEX events_alias ON events(model, alias, ts) WHERE alias IS NOT NULL;

-- The log is append-only: the database itself refuses changes to history.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE(ABORT, 'the event log is append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'the event log is append-only');
END;
