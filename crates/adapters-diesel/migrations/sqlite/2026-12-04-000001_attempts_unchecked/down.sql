CREATE TABLE attempts_checked (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    response_status BIGINT NULL,
    response_body TEXT NULL,
    error TEXT NULL,
    PRIMARY KEY (delivery_id, number)
);
INSERT INTO attempts_checked
    SELECT a.delivery_id, a.number, a.attempted_at, a.duration_ms, a.response_status,
        a.response_body, a.error
    FROM attempts a WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id);
DROP TABLE attempts;
ALTER TABLE attempts_checked RENAME TO attempts;
