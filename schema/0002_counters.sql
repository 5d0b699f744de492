-- SPDX-License-Identifier: Apache-2.0
-- Store-wide facts (adoption finished, ...) and a per-model version counter, so
-- that auto-named versions never reuse the name of a deleted one.

CREATE TABLE store_info (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

ALTER TABLE models ADD COLUMN version_counter INTEGER NOT NULL DEFAULT 0;
UPDATE models SET version_counter = (SELECT coalesce(max(seq), 0) FROM versions
				     WHERE versions.model_id = models.id);
-- Stores created before this migration finished their adoption when they were made.
INSERT INTO store_info(key, value) SELECT 'adopted', '1' WHERE EXISTS (SELECT 1 FROM models);
