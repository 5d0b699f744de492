-- SPDX-License-Identifier: Apache-2.0
-- The outbox (registry/outbox.c): who is told of which events, and one item
-- per event and subscriber, enqueued in the transaction that records the event,
-- so that a crash or an unreachable receiver delays a delivery but never loses
-- it. Delivery adapters (sync/) claim the oldest open item of a subscriber
-- under a lease, then complete it or fail it with a backoff.

-- adapter names the module that delivers (webhook, gitops); target and secret
-- mean something to it only (a URL and an HMAC key for webhooks).
-- kinds and models: space-separated; '' means every one; 'alias.*' is a prefix.
CREATE TABLE outbox_subscribers (
	id          INTEGER PRIMARY KEY,
	adapter     TEXT NOT NULL,
	target      TEXT NOT NULL,
	secret      TEXT,
	kinds       TEXT NOT NULL,
	models      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	deleted_at  INTEGER
);

-- state: pending (open, possibly leased or backing off), done, dropped (its
-- subscriber was deleted). Items of one subscriber are delivered in id order.
CREATE TABLE outbox (
	id            INTEGER PRIMARY KEY,
	subscriber_id INTEGER NOT NULL,
	event_id      INTEGER NOT NULL,
	state         TEXT NOT NULL,
	attempts      INTEGER NOT NULL,
	next_at       INTEGER NOT NULL,
	lease_until   INTEGER NOT NULL,
	lease_token   INTEGER NOT NULL,
	last_error    TEXT,
	last_status   INTEGER,
	error_at      INTEGER,
	created_at    INTEGER NOT NULL,
	done_at       INTEGER
);
CREATE INDEX outbox_subscriber ON outbox(subscriber_id, state, id);
CREATE INDEX outbox_state ON outbox(state, subscriber_id);

-- Retraining triggers (registry/trigger.c): one rule set per model (JSON:
-- accuracy window, drift p-value, weekly schedule) and its episode state. An
-- episode opens when a rule fires (one retrain.requested event) and closes
-- when a version is sealed or promoted.
CREATE TABLE triggers (
	model_id      INTEGER PRIMARY KEY,
	spec          TEXT NOT NULL,
	updated_at    INTEGER NOT NULL,
	episode_open  INTEGER NOT NULL,
	below_since   INTEGER NOT NULL,
	fired_at      INTEGER NOT NULL,
	schedule_at   INTEGER NOT NULL
);
