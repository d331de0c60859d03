-- leased_until: the end of the lease of the claim whose attempt is not
-- recorded yet (a worker is sending the delivery), NULL otherwise. A claim
-- sets it together with next_attempt_at; recording the attempt or handing the
-- delivery back clears it. A manual retry leaves a delivery alone while it
-- runs past now, so the same delivery is never sent twice at once. A plain
-- column rather than a reading of next_attempt_at: a scheduled retry and a
-- lease both put next_attempt_at in the future. (Keep the PostgreSQL and
-- SQLite copies in step.)
ALTER TABLE deliveries ADD COLUMN leased_until BIGINT NULL;
