CREATE INDEX events_created_at ON events (created_at);
DROP INDEX events_created_at_id;
DROP TABLE events_checked;
