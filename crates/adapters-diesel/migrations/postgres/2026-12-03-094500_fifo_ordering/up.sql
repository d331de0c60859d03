-- ordering: 'fifo' for a webhook whose deliveries go out one at a time, in
-- the order their events were accepted; NULL for none. (Keep the PostgreSQL
-- and SQLite copies in step: the columns and indexes are the same, only how
-- seq is numbered differs.)
ALTER TABLE webhooks ADD COLUMN ordering TEXT NULL;

-- seq: the order in which deliveries were stored, numbered by the database
-- rather than by the clock of the process that made the id, so a delivery
-- stored after another one committed always has a greater seq. Rows already
-- there are numbered in the order they were made.
ALTER TABLE deliveries ADD COLUMN seq BIGINT NULL;
CREATE SEQUENCE deliveries_seq OWNED BY deliveries.seq;
UPDATE deliveries SET seq = ordered.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM deliveries) AS ordered
WHERE deliveries.id = ordered.id;
SELECT setval('deliveries_seq', (SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries), false);
ALTER TABLE deliveries
    ALTER COLUMN seq SET DEFAULT nextval('deliveries_seq'),
    ALTER COLUMN seq SET NOT NULL;

-- The claim of a FIFO webhook: its oldest pending delivery, and whether one
-- of its deliveries is leased. Both partial, so they hold only the few rows
-- they serve (queries spell out the same literal conditions).
CREATE INDEX deliveries_pending_webhook_id_seq
    ON deliveries (webhook_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_leased_webhook_id
    ON deliveries (webhook_id, leased_until) WHERE leased_until IS NOT NULL;
-- The FIFO webhooks, without reading the others.
CREATE INDEX webhooks_ordered ON webhooks (id) WHERE ordering IS NOT NULL;
