-- SPDX-License-Identifier: Apache-2.0
-- Production feedback: metrics observed for a deployed version (accuracy from
-- labelled traffic, drift scores), posted by monitoring jobs. They are
-- measurements, not changes to the registry, so they live beside the event
-- log rather than in it; the latest value per version and metric is kept
-- apart so that exporting them costs one row per series.

CREATE TABLE observations (
	id         INTEGER PRIMARY KEY,
	version_id INTEGER NOT NULL REFERENCES versions(id),
	metric     TEXT NOT NULL,
	value      REAL NOT NULL,
	ts         INTEGER NOT NULL,
	channel    TEXT NOT NULL,
	actor      TEXT NOT NULL
);
CREATE INDEX observations_version ON observations(version_id, metric, id);

CREATE TABLE observations_latest (
	version_id INTEGER NOT NULL REFERENCES versions(id),
	metric     TEXT NOT NULL,
	value      REAL NOT NULL,
	ts         INTEGER NOT NULL,
	PRIMARY KEY (version_id, metric)
) WITHOUT ROWID;
