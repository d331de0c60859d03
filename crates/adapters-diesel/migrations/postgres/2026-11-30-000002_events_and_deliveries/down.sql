DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
ALTER TABLE webhooks DROP COLUMN rate_count;
ALTER TABLE webhooks DROP COLUMN rate_window;
ALTER TABLE webhooks DROP COLUMN failing_since;
