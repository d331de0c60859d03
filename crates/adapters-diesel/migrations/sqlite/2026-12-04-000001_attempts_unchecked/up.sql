-- No foreign key checks an attempt's delivery any more, as on PostgreSQL
-- (see its copy of this migration for why, and what keeps every attempt's
-- delivery there). SQLite cannot drop a constraint, so the table is made
-- again without it. (Keep the PostgreSQL and SQLite copies in step.)
CREATE TABLE attempts_unchecked (
    delivery_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    response_status BIGINT NULL,
    response_body TEXT NULL,
    error TEXT NULL,
    PRIMARY KEY (delivery_id, number)
);
INSERT INTO attempts_unchecked
    SELECT delivery_id, number, attempted_at, duration_ms, response_status, response_body, error
    FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_unchecked RENAME TO attempts;
