-- No foreign key checks a delivery's event or webhook any more on
-- PostgreSQL. Each check ran for every delivery stored: a query of its own
-- and a lock of the event's and of the webhook's row, with its WAL record
-- (and a multixact when several publishes lock one webhook at once). A
-- 10-way fan-out spent about a quarter less PostgreSQL CPU per delivery
-- without them (docs/benchmarks.md). What the keys did, the code does: a
-- delivery is only stored with its event, in the event's statement; that
-- statement locks each webhook's row once (FOR KEY SHARE, as the key check
-- did) and stores nothing unless every webhook is still there; deleting a
-- webhook locks its row (FOR UPDATE), then deletes its deliveries, which
-- the cascade did (see events/fan_out.rs and webhooks.rs). SQLite keeps its
-- keys: there a check is an in-process lookup, with no lock to write.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_webhook_id_fkey;
