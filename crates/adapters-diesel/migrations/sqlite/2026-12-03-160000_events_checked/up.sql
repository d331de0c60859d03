-- How far retention has looked at old events (ordered by created_at, then
-- id) for ones of which no delivery remains: one row. Each event is looked
-- at once when it passes retention.events; an event whose deliveries go
-- later is deleted with them, or looked at again after a webhook delete
-- (which moves this mark back). Before this table, every pass looked at
-- every old event again, a cost that grew with the history.
CREATE TABLE events_checked (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    created_at BIGINT NOT NULL,
    id TEXT NOT NULL
);
INSERT INTO events_checked (one, created_at, id) VALUES (1, -1, '');
-- The walk's order, so that each step reads only the events it takes.
CREATE INDEX events_created_at_id ON events (created_at, id);
DROP INDEX events_created_at;
