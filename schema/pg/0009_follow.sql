-- SPDX-License-Identifier: Apache-2.0
-- PostgreSQL only. A doorbell for the other nodes: every transaction that
-- appends events notifies channel modelfs_events once (notifications are sent
-- at commit, and only if it commits; duplicates in a transaction fold into
-- one). The payload is empty: a listener reads every event after the last it
-- applied (registry/follow.c), so a lost notification costs only latency.
CREATE FUNCTION modelfs_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('modelfs_events', '');
	RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
	FOR EACH STATEMENT EXECUTE FUNCTION modelfs_events_notify();
