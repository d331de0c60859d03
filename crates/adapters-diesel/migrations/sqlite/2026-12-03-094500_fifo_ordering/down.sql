DROP INDEX webhooks_ordered;
DROP INDEX deliveries_leased_webhook_id;
DROP INDEX deliveries_pending_webhook_id_seq;
DROP TRIGGER deliveries_seq;
DROP TABLE delivery_sequence;
ALTER TABLE deliveries DROP COLUMN seq;
ALTER TABLE webhooks DROP COLUMN ordering;
