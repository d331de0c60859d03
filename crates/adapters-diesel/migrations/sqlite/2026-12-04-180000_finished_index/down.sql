CREATE INDEX deliveries_status_updated_at ON deliveries (status, updated_at);
DROP INDEX deliveries_finished_updated_at;
