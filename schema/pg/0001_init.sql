-- SPDX-License-Identifier: Apache-2.0
-- PostgreSQL only, after the translation of 0001_init.sql (tools/pg_schema.py).
-- The log is append-only: the database itself refuses changes to history.
CREATE FUNCTION modelfs_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the event log is append-only';
END
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
	FOR EACH ROW EXECUTE FUNCTION modelfs_events_append_only();
-- Event ids are a gap-free sequence in commit order: each writing transaction
-- takes the next number from this row (its row lock is held to the commit), so
-- a reader that has applied event N has seen every change up to N. A plain
-- sequence is neither gap-free (rollbacks) nor in commit order.
CREATE TABLE event_seq (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	last BIGINT NOT NULL
);
INSERT INTO event_seq(id, last) VALUES (1, 0);
