-- SPDX-License-Identifier: Apache-2.0
-- Descriptions, owners and tags of models; the search index of version
-- metadata. version_leaves holds every scalar leaf of a version's metadata
-- record (dotted path, numeric value or text), rewritten by the registry in the
-- same transaction as every change of the record, so that filters and sorts
-- are answered from indexes and never by parsing JSON.

ALTER TABLE models ADD COLUMN description TEXT;
ALTER TABLE models ADD COLUMN owner TEXT;

CREATE TABLE model_tags (
	model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
	key      TEXT NOT NULL,
	value    TEXT NOT NULL,
	PRIMARY KEY (model_id, key)
);

-- One row per (version_id, path): the registry deletes a version's rows and
-- writes them again in one transaction. Every index covers what its queries
-- read, so that a filter never touches the table itself: by version (the
-- per-row checks of a scan in sort order, and summaries), by value (a range
-- or equality that drives a query).
CREATE TABLE version_leaves (
	version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
	-- Dotted path of the leaf: performance_metrics.accuracy, tags.team, owner.
	path       TEXT NOT NULL,
	-- Numbers here; strings and booleans ('true'/'false') in text.
	num        REAL,
	text       TEXT
);
CREATE INDEX version_leaves_key ON version_leaves(version_id, path, num, text);
CREATE INDEX version_leaves_num ON version_leaves(path, num, version_id);
CREATE INDEX version_leaves_text ON version_leaves(path, text, version_id);

-- Summaries list the aliases of a page of versions by version id.
CREATE INDEX aliases_version ON aliases(version_id);
