-- Deliveries whose webhook or event is gone (and their attempts) go first:
-- the keys would refuse them.
CREATE TEMP TABLE orphans AS
    SELECT d.id FROM deliveries d
    WHERE NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)
       OR NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id);
DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM orphans);
DELETE FROM deliveries WHERE id IN (SELECT id FROM orphans);
DROP TABLE orphans;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES events (id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_webhook_id_fkey
    FOREIGN KEY (webhook_id) REFERENCES webhooks (id) ON DELETE CASCADE;
