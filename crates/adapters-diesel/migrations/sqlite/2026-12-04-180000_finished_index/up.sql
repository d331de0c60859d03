-- Retention's index holds finished deliveries only (succeeded or failed),
-- the only ones it prunes. A new delivery (pending) adds no entry to it,
-- nor does a claim's lease or a retry, which leave the delivery pending:
-- only its last update, which finishes it. Queries that use it spell the
-- literal condition `status IN ('succeeded', 'failed')` (a planner can
-- prove a partial index's condition only from literals, and SQLite only
-- from the very same term). (Keep the PostgreSQL and SQLite copies in
-- step.)
CREATE INDEX deliveries_finished_updated_at ON deliveries (status, updated_at)
    WHERE status IN ('succeeded', 'failed');
DROP INDEX deliveries_status_updated_at;
