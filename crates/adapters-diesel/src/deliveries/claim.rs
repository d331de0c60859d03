//! Claims: due deliveries taken under a lease, on each backend. A FIFO
//! webhook's deliveries are claimed one at a time, its oldest pending one
//! first (see [`claim_fifo_heads`] and ADR 0010).

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel::{PgConnection, SqliteConnection};
use webhooks_domain::UnixMillis;

use super::rows::JobRow;
use crate::database::{Backend, DbConnection};
use crate::schema::{deliveries, events, webhooks};
use crate::statements::placeholders;

/// The claim of [`DeliveryQueue::claim_due`](webhooks_domain::DeliveryQueue::claim_due),
/// in its transaction: first the heads of FIFO webhooks (at most half the
/// limit, so neither kind starves the other), then the other webhooks'
/// deliveries, then more heads if room is left. See [`claim_fifo_heads`]
/// and [`claim_unordered`].
pub(super) fn claim(
    connection: &mut DbConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    let fifo_share = (limit + 1) / 2;
    let mut rows = claim_fifo_heads(connection, now, fifo_share, lease_until, exclude)?;
    let heads = rows.len() as i64;
    rows.extend(claim_unordered(
        connection,
        now,
        limit - heads,
        lease_until,
        exclude,
    )?);
    let room = limit - rows.len() as i64;
    if heads == fifo_share && room > 0 {
        rows.extend(claim_fifo_heads(
            connection,
            now,
            room,
            lease_until,
            exclude,
        )?);
    }
    Ok(rows)
}

/// Claims due deliveries of webhooks without an ordering: one statement on
/// PostgreSQL; on SQLite a pick, then [`lease_on_sqlite`].
fn claim_unordered(
    connection: &mut DbConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    match connection {
        DbConnection::Postgres(postgres) => {
            claim_on_postgres(postgres, now, limit, lease_until, exclude)
        }
        DbConnection::Sqlite(sqlite) => {
            let picked = select_due_for_claim_on_sqlite(sqlite, now, limit, exclude)?;
            lease_on_sqlite(sqlite, &picked, now, lease_until)
        }
    }
}

/// Leases the deliveries picked on SQLite, and reads what sending needs in
/// the order picked.
fn lease_on_sqlite(
    sqlite: &mut SqliteConnection,
    claimed: &[String],
    now: UnixMillis,
    lease_until: UnixMillis,
) -> QueryResult<Vec<JobRow>> {
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(deliveries::table.filter(deliveries::id.eq_any(claimed)))
        .set((
            deliveries::next_attempt_at.eq(Some(lease_until.as_millis())),
            deliveries::leased_until.eq(Some(lease_until.as_millis())),
            deliveries::updated_at.eq(now.as_millis()),
        ))
        .execute(sqlite)?;
    let mut rows = deliveries::table
        .inner_join(events::table)
        .inner_join(webhooks::table)
        .filter(deliveries::id.eq_any(claimed))
        .select((
            deliveries::id,
            deliveries::event_id,
            deliveries::attempt_count,
            events::payload,
            deliveries::webhook_id,
            webhooks::url,
            webhooks::secret,
            webhooks::previous_secret,
            webhooks::previous_secret_expires_at,
            webhooks::rate_limit,
            deliveries::created_at,
            webhooks::headers,
            webhooks::ordering,
        ))
        .load::<JobRow>(sqlite)?;
    rows.sort_by_key(|row| claimed.iter().position(|id| *id == row.delivery_id));
    Ok(rows)
}

#[derive(Debug, QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// The condition that leaves out the excluded webhooks (`column` holding the
/// webhook id), one placeholder per id from the statement's `first`; an
/// empty list excludes nothing.
fn excluded_webhooks(backend: Backend, column: &str, first: usize, count: usize) -> String {
    if count == 0 {
        return String::new();
    }
    format!(
        " AND {column} NOT IN ({})",
        placeholders(backend, first, count).join(", ")
    )
}

/// The placeholder of the first excluded webhook id in the PostgreSQL claim:
/// `$1` to `$3` are `now`, the limit and the lease's end.
const FIRST_EXCLUDED_ON_POSTGRES: usize = 4;

/// The placeholder of the first excluded webhook id in the SQLite pick, after
/// `now`.
const FIRST_EXCLUDED_ON_SQLITE: usize = 2;

/// The claim on PostgreSQL of webhooks without an ordering, in one
/// statement: picks up to `limit` pending deliveries due at `now` whose
/// webhook is enabled, oldest due first, locking them and skipping those
/// another claim holds (`FOR UPDATE SKIP LOCKED`: the delivery rows only, so
/// webhook rows stay free for rate slots and health), so any number of
/// processes claim side by side without waiting for or overlapping each
/// other; then [`lease_picked_on_postgres`].
///
/// The webhook is checked by a sub-select per delivery, not a join, and the
/// claim's transaction rules out bitmap and sequential scans
/// ([`claim_transaction`](crate::database::claim_transaction)), so that
/// the way to the deliveries is the index of pending ones in due order
/// (`deliveries_pending_due`), read until the limit is reached. With a
/// join and statistics older than a backlog, PostgreSQL started from the
/// webhook, read all its pending deliveries through the FIFO index and
/// sorted them: each claim cost as much as the backlog.
fn claim_on_postgres(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    let mut query = diesel::sql_query(unordered_claim_on_postgres(exclude.len()))
        .bind::<BigInt, _>(now.as_millis())
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(lease_until.as_millis())
        .into_boxed::<diesel::pg::Pg>();
    for id in exclude {
        query = query.bind::<Text, _>(id.clone());
    }
    query.load::<JobRow>(connection)
}

/// The statement of [`claim_on_postgres`] with `excluded` webhook ids
/// (`$4` on); `$1` is now, `$2` the limit, `$3` the lease's end.
fn unordered_claim_on_postgres(excluded: usize) -> String {
    let picked = format!(
        "SELECT d.id, d.next_attempt_at AS due FROM deliveries d \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1{} \
           AND (SELECT w.status = 'enabled' AND w.ordering IS NULL \
                FROM webhooks w WHERE w.id = d.webhook_id) \
         ORDER BY d.next_attempt_at, d.id LIMIT $2 FOR UPDATE SKIP LOCKED",
        excluded_webhooks(
            Backend::Postgres,
            "d.webhook_id",
            FIRST_EXCLUDED_ON_POSTGRES,
            excluded
        )
    );
    lease_picked_on_postgres(&picked)
}

/// A line of `EXPLAIN`'s text output.
#[cfg(feature = "testing")]
#[derive(Debug, QueryableByName)]
struct PlanLine {
    #[diesel(column_name = "QUERY PLAN", sql_type = Text)]
    line: String,
}

/// The plan PostgreSQL makes for [`claim_on_postgres`] at `now`, as
/// `EXPLAIN` writes it (nothing is claimed); for tests that pin how a claim
/// reads the queue.
#[cfg(feature = "testing")]
pub(crate) fn explain_unordered_claim_on_postgres(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
) -> QueryResult<String> {
    let sql = format!("EXPLAIN {}", unordered_claim_on_postgres(0));
    let lines = diesel::sql_query(sql)
        .bind::<BigInt, _>(now.as_millis())
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(now.as_millis())
        .load::<PlanLine>(connection)?;
    Ok(lines
        .into_iter()
        .map(|plan| plan.line)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// A PostgreSQL claim around `picked` (the `id` and `due` of the deliveries
/// it locked): moves them to the end of the lease (`$3`, `$1` being now) and
/// answers what sending needs, in the order picked.
fn lease_picked_on_postgres(picked: &str) -> String {
    format!(
        "WITH picked AS ({picked}), claimed AS ( \
           UPDATE deliveries d SET next_attempt_at = $3, leased_until = $3, updated_at = $1 \
           FROM picked \
           WHERE d.id = picked.id \
           RETURNING d.id, d.event_id, d.attempt_count, d.webhook_id, d.created_at \
         ) \
         SELECT c.id AS delivery_id, c.event_id, c.attempt_count, e.payload, c.webhook_id, \
           w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.rate_limit, \
           c.created_at, w.headers, w.ordering \
         FROM claimed c JOIN picked p ON p.id = c.id \
         JOIN events e ON e.id = c.event_id JOIN webhooks w ON w.id = c.webhook_id \
         ORDER BY p.due, p.id"
    )
}

/// The heads that may be claimed at `now`: of each enabled FIFO webhook
/// `w` meeting `condition`, its pending delivery stored first (lowest
/// `seq`), when that one is due and no delivery of the webhook is leased;
/// oldest due first, at most `limit`. Columns: `id`, `webhook_id`, `due`.
///
/// The lease test matters even though a leased head is not due: a delivery
/// stored before the head but committed after it, or put back in line by a
/// retry or a recovery, becomes the lowest pending one while the head is
/// still in flight, and must wait for it.
///
/// Placeholders are given as text, in the order they appear, so that SQLite
/// can bind `?` by position (`now` twice).
fn fifo_heads_sql(now: &str, condition: &str, now_again: &str, limit: &str) -> String {
    format!(
        "SELECT h.id, h.webhook_id, h.next_attempt_at AS due FROM webhooks w \
         JOIN deliveries h ON h.id = ( \
           SELECT d.id FROM deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending' \
           ORDER BY d.seq LIMIT 1) \
         WHERE w.ordering = 'fifo' AND w.status = 'enabled' AND h.next_attempt_at <= {now}{condition} \
           AND NOT EXISTS (SELECT 1 FROM deliveries l WHERE l.webhook_id = w.id \
             AND l.leased_until IS NOT NULL AND l.leased_until > {now_again}) \
         ORDER BY h.next_attempt_at, h.id LIMIT {limit}"
    )
}

/// Claims the heads of FIFO webhooks (see [`fifo_heads_sql`]), at most
/// one delivery per webhook, so that a FIFO webhook never has two
/// deliveries leased at once, whichever processes claim.
///
/// - PostgreSQL, two statements. The first finds the webhooks with a head
///   to claim and takes a transaction-scoped advisory lock on each, skipping
///   those another claim holds. The second, whose snapshot is taken after
///   the locks, so it sees every claim of these webhooks that committed
///   before, finds their heads again and leases them. Without the lock, two
///   claims with snapshots taken before either committed could lease two
///   deliveries of one webhook (the head, and one stored before it but
///   committed after).
/// - SQLite: the `BEGIN IMMEDIATE` transaction already makes claims take
///   turns; a pick, then [`lease_on_sqlite`].
fn claim_fifo_heads(
    connection: &mut DbConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    match connection {
        DbConnection::Postgres(postgres) => {
            let locked = lock_fifo_webhooks_on_postgres(postgres, now, limit, exclude)?;
            if locked.is_empty() {
                return Ok(Vec::new());
            }
            lease_fifo_heads_on_postgres(postgres, now, limit, lease_until, &locked)
        }
        DbConnection::Sqlite(sqlite) => {
            let picked = select_fifo_heads_on_sqlite(sqlite, now, limit, exclude)?;
            lease_on_sqlite(sqlite, &picked, now, lease_until)
        }
    }
}

/// The first key of the advisory locks of FIFO webhooks' claims (the second
/// is a hash of the webhook id): "fifo" in ASCII. A hash collision only makes
/// two webhooks' heads wait for each other's claims.
const FIFO_LOCK_SPACE: i32 = 0x6669_666f;

/// The FIFO webhooks with a head to claim, each now locked by this
/// transaction; those whose lock another claim holds are left out.
fn lock_fifo_webhooks_on_postgres(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    exclude: &[String],
) -> QueryResult<Vec<String>> {
    // The lock is taken outside the subquery, so only on the rows it kept.
    let condition = excluded_webhooks(Backend::Postgres, "w.id", 4, exclude.len());
    let sql = format!(
        "SELECT c.webhook_id AS id FROM ({}) c \
         WHERE pg_try_advisory_xact_lock($3, hashtext(c.webhook_id))",
        fifo_heads_sql("$1", &condition, "$1", "$2")
    );
    let mut query = diesel::sql_query(sql)
        .bind::<BigInt, _>(now.as_millis())
        .bind::<BigInt, _>(limit)
        .bind::<Integer, _>(FIFO_LOCK_SPACE)
        .into_boxed::<diesel::pg::Pg>();
    for id in exclude {
        query = query.bind::<Text, _>(id.clone());
    }
    let locked = query.load::<ClaimedId>(connection)?;
    Ok(locked.into_iter().map(|row| row.id).collect())
}

/// Leases the heads of the `locked` FIFO webhooks, found again by a
/// statement that sees every claim committed before the locks were taken.
fn lease_fifo_heads_on_postgres(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    locked: &[String],
) -> QueryResult<Vec<JobRow>> {
    let heads = fifo_heads_sql("$1", " AND w.id = ANY($4)", "$1", "$2");
    let picked = format!(
        "SELECT d.id, heads.due FROM deliveries d JOIN ({heads}) heads ON heads.id = d.id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
         FOR UPDATE OF d SKIP LOCKED"
    );
    diesel::sql_query(lease_picked_on_postgres(&picked))
        .bind::<BigInt, _>(now.as_millis())
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(lease_until.as_millis())
        .bind::<Array<Text>, _>(locked)
        .load::<JobRow>(connection)
}

/// The heads of FIFO webhooks to claim on SQLite (see [`fifo_heads_sql`]).
fn select_fifo_heads_on_sqlite(
    connection: &mut SqliteConnection,
    now: UnixMillis,
    limit: i64,
    exclude: &[String],
) -> QueryResult<Vec<String>> {
    let condition = excluded_webhooks(Backend::Sqlite, "w.id", 2, exclude.len());
    let sql = fifo_heads_sql("?", &condition, "?", "?");
    let mut query = diesel::sql_query(sql)
        .bind::<BigInt, _>(now.as_millis())
        .into_boxed::<diesel::sqlite::Sqlite>();
    for id in exclude {
        query = query.bind::<Text, _>(id.clone());
    }
    let picked = query
        .bind::<BigInt, _>(now.as_millis())
        .bind::<BigInt, _>(limit)
        .load::<ClaimedId>(connection)?;
    Ok(picked.into_iter().map(|row| row.id).collect())
}

/// Picks up to `limit` pending deliveries due at `now` whose webhook is
/// enabled, oldest due first, for a claim on SQLite. SQLite has no row
/// locks: the `BEGIN IMMEDIATE` transaction around the claim makes claimers
/// take turns.
fn select_due_for_claim_on_sqlite(
    connection: &mut SqliteConnection,
    now: UnixMillis,
    limit: i64,
    exclude: &[String],
) -> QueryResult<Vec<String>> {
    let sql = format!(
        "SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.status = 'enabled' \
           AND w.ordering IS NULL{} \
         ORDER BY d.next_attempt_at, d.id \
         LIMIT ?",
        excluded_webhooks(
            Backend::Sqlite,
            "d.webhook_id",
            FIRST_EXCLUDED_ON_SQLITE,
            exclude.len()
        )
    );
    // SQLite numbers `?` in order: the excluded ids come before LIMIT.
    let mut query = diesel::sql_query(sql)
        .bind::<BigInt, _>(now.as_millis())
        .into_boxed::<diesel::sqlite::Sqlite>();
    for id in exclude {
        query = query.bind::<Text, _>(id.clone());
    }
    let picked = query
        .bind::<BigInt, _>(limit)
        .load::<ClaimedId>(connection)?;
    Ok(picked.into_iter().map(|row| row.id).collect())
}
