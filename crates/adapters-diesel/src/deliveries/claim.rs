//! Claims: due deliveries taken under a lease, on each backend.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, SqliteConnection};
use webhooks_domain::UnixMillis;

use super::rows::JobRow;
use crate::database::{Backend, DbConnection};
use crate::schema::{deliveries, events, webhooks};
use crate::statements::placeholders;

/// The claim of [`DeliveryQueue::claim_due`](webhooks_domain::DeliveryQueue::claim_due),
/// in its transaction: one statement on PostgreSQL; on SQLite a pick, an
/// update and a read, in the order picked.
pub(super) fn claim(
    connection: &mut DbConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    let sqlite = match connection {
        DbConnection::Postgres(postgres) => {
            return claim_on_postgres(postgres, now, limit, lease_until, exclude);
        }
        DbConnection::Sqlite(sqlite) => sqlite,
    };
    let claimed = select_due_for_claim_on_sqlite(sqlite, now, limit, exclude)?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(deliveries::table.filter(deliveries::id.eq_any(&claimed)))
        .set((
            deliveries::next_attempt_at.eq(Some(lease_until.as_millis())),
            deliveries::leased_until.eq(Some(lease_until.as_millis())),
            deliveries::updated_at.eq(now.as_millis()),
        ))
        .execute(sqlite)?;
    let mut rows = deliveries::table
        .inner_join(events::table)
        .inner_join(webhooks::table)
        .filter(deliveries::id.eq_any(&claimed))
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

/// The condition that leaves out the excluded webhooks, one placeholder per
/// id from the statement's `first`; an empty list excludes nothing.
fn excluded_webhooks(backend: Backend, first: usize, count: usize) -> String {
    if count == 0 {
        return String::new();
    }
    format!(
        " AND d.webhook_id NOT IN ({})",
        placeholders(backend, first, count).join(", ")
    )
}

/// The placeholder of the first excluded webhook id in the PostgreSQL claim:
/// `$1` to `$3` are `now`, the limit and the lease's end.
const FIRST_EXCLUDED_ON_POSTGRES: usize = 4;

/// The placeholder of the first excluded webhook id in the SQLite pick, after
/// `now`.
const FIRST_EXCLUDED_ON_SQLITE: usize = 2;

/// The claim on PostgreSQL, in one statement: picks up to `limit` pending
/// deliveries due at `now` whose webhook is enabled, oldest due first,
/// locking them and skipping those another claim holds (`FOR UPDATE OF d
/// SKIP LOCKED`: the delivery rows only, so webhook rows stay free for rate
/// slots and health), so any number of processes claim side by side without
/// waiting for or overlapping each other; moves them to the end of the
/// lease; and answers what sending needs, in the order picked.
fn claim_on_postgres(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    let sql = format!(
        "WITH picked AS ( \
           SELECT d.id, d.next_attempt_at AS due FROM deliveries d \
           JOIN webhooks w ON w.id = d.webhook_id \
           WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.status = 'enabled'{} \
           ORDER BY d.next_attempt_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED \
         ), claimed AS ( \
           UPDATE deliveries d SET next_attempt_at = $3, leased_until = $3, updated_at = $1 \
           FROM picked \
           WHERE d.id = picked.id \
           RETURNING d.id, d.event_id, d.attempt_count, d.webhook_id, d.created_at \
         ) \
         SELECT c.id AS delivery_id, c.event_id, c.attempt_count, e.payload, c.webhook_id, \
           w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.rate_limit, \
           c.created_at, w.headers \
         FROM claimed c JOIN picked p ON p.id = c.id \
         JOIN events e ON e.id = c.event_id JOIN webhooks w ON w.id = c.webhook_id \
         ORDER BY p.due, p.id",
        excluded_webhooks(Backend::Postgres, FIRST_EXCLUDED_ON_POSTGRES, exclude.len())
    );
    let mut query = diesel::sql_query(sql)
        .bind::<BigInt, _>(now.as_millis())
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(lease_until.as_millis())
        .into_boxed::<diesel::pg::Pg>();
    for id in exclude {
        query = query.bind::<Text, _>(id.clone());
    }
    query.load::<JobRow>(connection)
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
         WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.status = 'enabled'{} \
         ORDER BY d.next_attempt_at, d.id \
         LIMIT ?",
        excluded_webhooks(Backend::Sqlite, FIRST_EXCLUDED_ON_SQLITE, exclude.len())
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
