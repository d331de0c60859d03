-- ordering: 'fifo' for a webhook whose deliveries go out one at a time, in
-- the order their events were accepted; NULL for none. (Keep the PostgreSQL
-- and SQLite copies in step: the columns and indexes are the same, only how
-- seq is numbered differs.)
ALTER TABLE webhooks ADD COLUMN ordering TEXT NULL;

-- seq: the order in which deliveries were stored, numbered by the database
-- rather than by the clock of the process that made the id. Rows already
-- there are numbered in the order they were made. SQLite has no sequence and
-- a column default cannot count, so a trigger numbers each new row from
-- delivery_sequence (one row); writers take turns, so the numbers follow
-- the commits. Not the rowid: VACUUM may renumber it.
ALTER TABLE deliveries ADD COLUMN seq BIGINT NULL;
UPDATE deliveries SET seq = ordered.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM deliveries) AS ordered
WHERE deliveries.id = ordered.id;
CREATE TABLE delivery_sequence (last BIGINT NOT NULL);
INSERT INTO delivery_sequence (last) SELECT COALESCE(MAX(seq), 0) FROM deliveries;
CREATE TRIGGER deliveries_seq AFTER INSERT ON deliveries FOR EACH ROW WHEN NEW.seq IS NULL
BEGIN
    UPDATE delivery_sequence SET last = last + 1;
    UPDATE deliveries SET seq = (SELECT last FROM delivery_sequence) WHERE rowid = NEW.rowid;
END;

-- The claim of a FIFO webhook: its oldest pending delivery, and whether one
-- of its deliveries is leased. Both partial, so they hold only the few rows
-- they serve (queries spell out the same literal conditions).
CREATE INDEX deliveries_pending_webhook_id_seq
    ON deliveries (webhook_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_leased_webhook_id
    ON deliveries (webhook_id, leased_until) WHERE leased_until IS NOT NULL;
-- The FIFO webhooks, without reading the others.
CREATE INDEX webhooks_ordered ON webhooks (id) WHERE ordering IS NOT NULL;
