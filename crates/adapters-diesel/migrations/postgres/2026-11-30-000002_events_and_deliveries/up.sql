-- Events, their fan-out into deliveries (the queue), each delivery's attempts,
-- and the webhook columns the delivery engine keeps. Instants are BIGINT Unix
-- milliseconds, counts BIGINT, so this file reads the same on PostgreSQL and
-- SQLite (keep the two copies in step).

-- failing_since: when the current run of failed attempts began (NULL while
-- the endpoint works). rate_window and rate_count: the one-second window
-- (Unix seconds) of the rate limit shared by every worker process, and the
-- deliveries started in it.
ALTER TABLE webhooks ADD COLUMN failing_since BIGINT NULL;
ALTER TABLE webhooks ADD COLUMN rate_window BIGINT NULL;
ALTER TABLE webhooks ADD COLUMN rate_count BIGINT NOT NULL DEFAULT 0;

-- payload is the exact JSON body receivers get, fixed at publication.
-- Events outlive the webhooks they went to: the log of the group.
CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    group_id BIGINT NOT NULL REFERENCES groups (id),
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT NULL,
    created_at BIGINT NOT NULL
);

-- Serves the idempotency lookup: this group, this key, since the window began.
CREATE INDEX events_group_id_idempotency_key_created_at
    ON events (group_id, idempotency_key, created_at);

-- One event on its way to one webhook. status: 'pending', 'succeeded' or
-- 'failed'. next_attempt_at: when a worker may claim it; a claim moves it to
-- the end of the claim's lease, so a worker that dies leaves it due again.
-- NULL once the delivery is final. Deleting a webhook deletes its deliveries.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL REFERENCES events (id),
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    group_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempt_count BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Serves the claim (pending, due first) and the queue depth. A plain index
-- rather than a partial one on status = 'pending': a planner can use a partial
-- index only when the query spells out that literal, and Diesel binds values
-- as parameters.
CREATE INDEX deliveries_status_next_attempt_at ON deliveries (status, next_attempt_at);
-- The delivery log, newest first by id (ULIDs sort by creation time).
CREATE INDEX deliveries_webhook_id_id ON deliveries (webhook_id, id);
-- Recovery: a webhook's failed deliveries since a moment.
CREATE INDEX deliveries_webhook_id_status_created_at
    ON deliveries (webhook_id, status, created_at);
-- The delivery count of an event (an idempotent repeat answers it).
CREATE INDEX deliveries_event_id ON deliveries (event_id);

-- One try at sending a delivery; number 1 is the first. response_body holds at
-- most the first 4 KiB of the answer, error why there was no answer.
CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    response_status BIGINT NULL,
    response_body TEXT NULL,
    error TEXT NULL,
    PRIMARY KEY (delivery_id, number)
);
