-- The claim's index holds pending deliveries only, in the claim's order.
-- Finished deliveries (nearly every row of a long history) are not in it,
-- and recording a success adds no entry to it. Queries that use it spell the
-- literal status = 'pending' (a planner can prove a partial index's condition
-- only from a literal, not from a bound parameter).
CREATE INDEX deliveries_pending_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
DROP INDEX deliveries_status_next_attempt_at;
