CREATE INDEX deliveries_status_next_attempt_at ON deliveries (status, next_attempt_at);
DROP INDEX deliveries_pending_due;
