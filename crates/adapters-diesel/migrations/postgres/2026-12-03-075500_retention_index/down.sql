DROP INDEX events_created_at;
DROP INDEX deliveries_status_updated_at;
