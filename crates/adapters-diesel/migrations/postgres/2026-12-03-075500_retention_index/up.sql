-- Retention finds finished deliveries by when they finished, and old events
-- by when they were accepted, without reading every row.
CREATE INDEX deliveries_status_updated_at ON deliveries (status, updated_at);
CREATE INDEX events_created_at ON events (created_at);
