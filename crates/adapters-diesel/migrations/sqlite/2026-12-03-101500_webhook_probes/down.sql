ALTER TABLE webhooks DROP COLUMN probe_successes;
ALTER TABLE webhooks DROP COLUMN probe_wait;
ALTER TABLE webhooks DROP COLUMN probe_at;
