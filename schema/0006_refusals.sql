-- SPDX-License-Identifier: Apache-2.0
-- Every refused operation, from either door, for `modelfs why` and
-- GET /v1/refusals. Unlike the event log this table is bounded: the registry
-- keeps the newest REG_REFUSALS_KEEP rows (refusal.c), and a per-actor rate
-- limit keeps a flood from one caller out of it. A refusal with a model is
-- also an event of kind "refused" (event_id), which stays in the history.
CREATE TABLE refusals (
	id           INTEGER PRIMARY KEY,
	ts           INTEGER NOT NULL,
	model        TEXT,
	version      TEXT,
	alias        TEXT,
	channel      TEXT NOT NULL,
	actor        TEXT NOT NULL,
	uid          INTEGER,
	token        TEXT,
	op           TEXT NOT NULL,
	rule         TEXT NOT NULL,
	errno        TEXT NOT NULL,
	status       INTEGER,
	code         TEXT,
	message      TEXT NOT NULL,
	failed_gates TEXT,
	event_id     INTEGER
);
CREATE INDEX refusals_uid ON refusals(uid, id) WHERE uid IS NOT NULL;
CREATE INDEX refusals_token ON refusals(token, id) WHERE token IS NOT NULL;
CREATE INDEX refusals_model ON refusals(model, id);
