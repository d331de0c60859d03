//! The claim's statements on PostgreSQL, each of constant text: Diesel
//! prepares it once per connection, and the claim's transaction has
//! PostgreSQL plan it once (a generic plan, see
//! [`claim_transaction`](crate::database::claim_transaction)), so a claim
//! round is neither parsed nor planned again. Lists of webhooks are bound
//! as one array each.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel::PgConnection;
use webhooks_domain::UnixMillis;

use super::{fifo_heads_sql, ClaimedId};
use crate::deliveries::rows::JobRow;
use crate::statements::{no_value_to_bind, prepared_statement, push_with_binds, BIND};

/// Claims due deliveries of webhooks without an ordering, in one statement
/// (see [`UnorderedClaim::sql`]).
pub(super) fn claim_unordered(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    UnorderedClaim {
        now: now.as_millis(),
        exclude: exclude.to_vec(),
        limit,
        lease_until: lease_until.as_millis(),
    }
    .load(connection)
}

/// Picks up to `limit` pending deliveries due at `now` whose webhook is
/// enabled, is not excluded and has no ordering, oldest due first, locking
/// them and skipping those another claim holds (`FOR UPDATE SKIP LOCKED`:
/// the delivery rows only, so webhook rows stay free for rate slots and
/// health), so any number of processes claim side by side without waiting
/// for or overlapping each other; then leases them ([`lease_picked`]).
struct UnorderedClaim {
    now: i64,
    exclude: Vec<String>,
    limit: i64,
    lease_until: i64,
}

impl UnorderedClaim {
    /// The statement's text, its values at each [`BIND`]: now, the
    /// excluded webhooks, the limit, then [`lease_picked`]'s.
    ///
    /// The webhook is checked by a sub-select per delivery, not a join,
    /// and the claim's transaction rules out bitmap and sequential scans,
    /// so that the way to the deliveries is the index of pending ones in
    /// due order (`deliveries_pending_due`), read until the limit is
    /// reached. With a join and statistics older than a backlog,
    /// PostgreSQL started from the webhook, read all its pending
    /// deliveries through the FIFO index and sorted them: each claim cost
    /// as much as the backlog.
    pub(super) fn sql() -> String {
        lease_picked(&format!(
            "SELECT d.id, d.next_attempt_at AS due FROM deliveries d \
             WHERE d.status = 'pending' AND d.next_attempt_at <= {BIND} \
               AND d.webhook_id <> ALL({BIND}) \
               AND (SELECT w.status = 'enabled' AND w.ordering IS NULL \
                    FROM webhooks w WHERE w.id = d.webhook_id) \
             ORDER BY d.next_attempt_at, d.id LIMIT {BIND} FOR UPDATE SKIP LOCKED"
        ))
    }
}

impl QueryFragment<Pg> for UnorderedClaim {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        push_with_binds(&mut out, &Self::sql(), |out, n| match n {
            0 | 5 => out.push_bind_param::<BigInt, _>(&self.now),
            1 => out.push_bind_param::<Array<Text>, _>(&self.exclude),
            2 => out.push_bind_param::<BigInt, _>(&self.limit),
            3 | 4 => out.push_bind_param::<BigInt, _>(&self.lease_until),
            n => Err(no_value_to_bind(n)),
        })
    }
}

/// A claim around `picked` (the `id` and `due` of the deliveries it
/// locked): moves them to the end of the lease and answers what sending
/// needs, in the order picked. Its values after `picked`'s, at each
/// [`BIND`]: the lease's end twice, then now.
fn lease_picked(picked: &str) -> String {
    format!(
        "WITH picked AS ({picked}), claimed AS ( \
           UPDATE deliveries d SET next_attempt_at = {BIND}, leased_until = {BIND}, \
             updated_at = {BIND} \
           FROM picked \
           WHERE d.id = picked.id \
           RETURNING d.id, d.event_id, d.attempt_count, d.webhook_id, d.created_at, picked.due \
         ) \
         SELECT c.id AS delivery_id, c.event_id, c.attempt_count, e.payload, c.webhook_id, \
           w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.rate_limit, \
           c.created_at, w.headers, w.ordering \
         FROM claimed c JOIN events e ON e.id = c.event_id JOIN webhooks w ON w.id = c.webhook_id \
         ORDER BY c.due, c.id"
    )
}

/// The first key of the advisory locks of FIFO webhooks' claims (the second
/// is a hash of the webhook id): "fifo" in ASCII. A hash collision only makes
/// two webhooks' heads wait for each other's claims.
const FIFO_LOCK_SPACE: i32 = 0x6669_666f;

/// The FIFO webhooks with a head to claim, each now locked by this
/// transaction; those whose lock another claim holds are left out.
pub(super) fn lock_fifo_webhooks(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    exclude: &[String],
) -> QueryResult<Vec<String>> {
    let locked = LockFifoWebhooks {
        now: now.as_millis(),
        exclude: exclude.to_vec(),
        limit,
    }
    .load::<ClaimedId>(connection)?;
    Ok(locked.into_iter().map(|row| row.id).collect())
}

/// The statement of [`lock_fifo_webhooks`].
struct LockFifoWebhooks {
    now: i64,
    exclude: Vec<String>,
    limit: i64,
}

impl QueryFragment<Pg> for LockFifoWebhooks {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // The lock is taken outside the subquery, so only on the rows it kept.
        let sql = format!(
            "SELECT c.webhook_id AS id FROM ({}) c \
             WHERE pg_try_advisory_xact_lock({BIND}, hashtext(c.webhook_id))",
            fifo_heads_sql(BIND, &format!(" AND w.id <> ALL({BIND})"), BIND, BIND)
        );
        push_with_binds(&mut out, &sql, |out, n| match n {
            0 | 2 => out.push_bind_param::<BigInt, _>(&self.now),
            1 => out.push_bind_param::<Array<Text>, _>(&self.exclude),
            3 => out.push_bind_param::<BigInt, _>(&self.limit),
            4 => out.push_bind_param::<Integer, _>(&FIFO_LOCK_SPACE),
            n => Err(no_value_to_bind(n)),
        })
    }
}

/// Leases the heads of the `locked` FIFO webhooks, found again by a
/// statement that sees every claim committed before the locks were taken.
pub(super) fn lease_fifo_heads(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    locked: &[String],
) -> QueryResult<Vec<JobRow>> {
    LeaseFifoHeads {
        now: now.as_millis(),
        locked: locked.to_vec(),
        limit,
        lease_until: lease_until.as_millis(),
    }
    .load(connection)
}

/// The statement of [`lease_fifo_heads`].
struct LeaseFifoHeads {
    now: i64,
    locked: Vec<String>,
    limit: i64,
    lease_until: i64,
}

impl QueryFragment<Pg> for LeaseFifoHeads {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let heads = fifo_heads_sql(BIND, &format!(" AND w.id = ANY({BIND})"), BIND, BIND);
        let sql = lease_picked(&format!(
            "SELECT d.id, heads.due FROM deliveries d JOIN ({heads}) heads ON heads.id = d.id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= {BIND} \
             FOR UPDATE OF d SKIP LOCKED"
        ));
        push_with_binds(&mut out, &sql, |out, n| match n {
            0 | 2 | 4 | 7 => out.push_bind_param::<BigInt, _>(&self.now),
            1 => out.push_bind_param::<Array<Text>, _>(&self.locked),
            3 => out.push_bind_param::<BigInt, _>(&self.limit),
            5 | 6 => out.push_bind_param::<BigInt, _>(&self.lease_until),
            n => Err(no_value_to_bind(n)),
        })
    }
}

prepared_statement!(UnorderedClaim, LockFifoWebhooks, LeaseFifoHeads);

/// The plan PostgreSQL keeps for [`claim_unordered`] in the caller's
/// transaction (a claim's: the generic plan, made without the values), as
/// `EXPLAIN EXECUTE` writes it for a claim at `now` of up to `limit`
/// (nothing is claimed); for tests that pin how a claim reads the queue.
#[cfg(feature = "testing")]
pub(crate) fn explain_claim_unordered(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
) -> QueryResult<String> {
    use diesel::connection::SimpleConnection;

    let numbered = crate::statements::numbered_binds(&UnorderedClaim::sql());
    connection.batch_execute(&format!("PREPARE explained_claim AS {numbered}"))?;
    let now = now.as_millis();
    let lines = diesel::sql_query(format!(
        "EXPLAIN EXECUTE explained_claim({now}, '{{}}', {limit}, {now}, {now}, {now})"
    ))
    .load::<crate::testing::PlanLine>(connection);
    connection.batch_execute("DEALLOCATE explained_claim")?;
    Ok(lines?
        .into_iter()
        .map(|plan| plan.line)
        .collect::<Vec<_>>()
        .join("\n"))
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::database::{claim_transaction, storage_error};
    use crate::testing::PreparedPlans;

    #[tokio::test]
    async fn postgres_prepares_and_plans_a_claims_statements_once_per_connection() {
        let test_database = crate::TestDatabase::postgres().await;
        let plans = test_database
            .database()
            .run(|connection| {
                for round in 0..4 {
                    // With and without excluded webhooks: one text either way.
                    let exclude = vec!["we_excluded".to_owned(); round];
                    claim_transaction(connection, |connection| {
                        let now = UnixMillis(1_000 + round as i64);
                        super::super::claim(connection, now, 32, now.plus_millis(60_000), &exclude)
                            .map_err(storage_error)
                    })?;
                }
                PreparedPlans::of(
                    connection,
                    &["%SKIP LOCKED%", "%pg_try_advisory_xact_lock%"],
                )
            })
            .await
            .unwrap();

        // The FIFO webhooks' lock and the unordered claim, each planned
        // once and that plan used by the four rounds.
        let once = PreparedPlans {
            statements: 2,
            generic: 8,
            custom: 0,
        };
        assert_eq!(plans, once);
    }
}
