//! Claims: due deliveries taken under a lease, on each backend. A FIFO
//! webhook's deliveries are claimed one at a time, its oldest pending one
//! first (see [`claim_fifo_heads`] and ADR 0010).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::SqliteConnection;
use webhooks_domain::UnixMillis;

use super::rows::JobRow;
use crate::database::DbConnection;
use crate::schema::{deliveries, events, webhooks};

mod postgres;

#[cfg(feature = "testing")]
pub(crate) use postgres::explain_claim_unordered;

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
            postgres::claim_unordered(postgres, now, limit, lease_until, exclude)
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

/// The condition of a SQLite statement that leaves out `count` excluded
/// webhooks (`column` holding the webhook id), one placeholder each; no
/// condition for none. (PostgreSQL's statements bind the list as one array.)
fn excluded_on_sqlite(column: &str, count: usize) -> String {
    if count == 0 {
        return String::new();
    }
    format!(" AND {column} NOT IN ({})", vec!["?"; count].join(", "))
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
/// can bind `?` by position and PostgreSQL's statements bind each where
/// [`BIND`](crate::statements::BIND) stands (`now` twice).
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
            let locked = postgres::lock_fifo_webhooks(postgres, now, limit, exclude)?;
            if locked.is_empty() {
                return Ok(Vec::new());
            }
            postgres::lease_fifo_heads(postgres, now, limit, lease_until, &locked)
        }
        DbConnection::Sqlite(sqlite) => {
            let picked = select_fifo_heads_on_sqlite(sqlite, now, limit, exclude)?;
            lease_on_sqlite(sqlite, &picked, now, lease_until)
        }
    }
}

/// The heads of FIFO webhooks to claim on SQLite (see [`fifo_heads_sql`]).
fn select_fifo_heads_on_sqlite(
    connection: &mut SqliteConnection,
    now: UnixMillis,
    limit: i64,
    exclude: &[String],
) -> QueryResult<Vec<String>> {
    let condition = excluded_on_sqlite("w.id", exclude.len());
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
        excluded_on_sqlite("d.webhook_id", exclude.len())
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
