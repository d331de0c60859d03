ALTER TABLE webhooks DROP COLUMN disabled_at;
ALTER TABLE webhooks DROP COLUMN disabled_reason;
DROP INDEX groups_one_operations_group;
ALTER TABLE groups DROP COLUMN operations;
