-- operations: the organization's operations group, whose webhooks receive
-- the operational events about the organization's other webhooks; at most
-- one per organization. (Keep the PostgreSQL and SQLite copies in step.)
ALTER TABLE groups ADD COLUMN operations BOOLEAN NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX groups_one_operations_group ON groups (organization_id) WHERE operations = 1;
-- disabled_reason: why a disabled webhook is disabled (failures, gone or
-- manual), and disabled_at when; both NULL while it is enabled.
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT NULL;
ALTER TABLE webhooks ADD COLUMN disabled_at BIGINT NULL;
