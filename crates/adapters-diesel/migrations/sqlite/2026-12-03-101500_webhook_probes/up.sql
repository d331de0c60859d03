-- The probes of a webhook disabled for failures (disabled_reason =
-- 'failures'): probe_at, when the next one is due (NULL: the first, due the
-- probe interval after disabled_at; a claimed probe's lease while it runs);
-- probe_wait, the wait in milliseconds before that probe (NULL before the
-- first); probe_successes, its 2xx answers in a row. (Keep the PostgreSQL
-- and SQLite copies in step.)
ALTER TABLE webhooks ADD COLUMN probe_at BIGINT NULL;
ALTER TABLE webhooks ADD COLUMN probe_wait BIGINT NULL;
ALTER TABLE webhooks ADD COLUMN probe_successes BIGINT NOT NULL DEFAULT 0;
