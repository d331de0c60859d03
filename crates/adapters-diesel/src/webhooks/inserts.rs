//! New webhooks, written a batch at a time by the repository's
//! [group commit](crate::batching): concurrent creates share a transaction,
//! so a burst of them costs one commit per batch rather than per webhook.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::{PgConnection, QueryResult, RunQueryDsl};
use webhooks_domain::RepositoryError;

use super::WebhookRow;
use crate::batching::BatchWrite;
use crate::database::{storage_error, DbConnection};
use crate::schema::webhooks;
use crate::statements::{no_value_to_bind, prepared_statement, push_with_binds, BIND};

/// Inserts a batch of new webhooks in one statement, atomic and durable by
/// itself: on PostgreSQL of constant text whatever the batch's size (each
/// column bound as an array and `unnest`ed), so that it stays prepared; on
/// SQLite a multi-row `INSERT`.
#[derive(Debug)]
pub(super) struct InsertWebhooks;

impl BatchWrite for InsertWebhooks {
    type Item = WebhookRow;
    type Outcome = ();

    /// Errors: [`RepositoryError::Conflict`] if an id exists,
    /// [`RepositoryError::Unavailable`] otherwise (including a group that
    /// does not exist).
    fn write(
        &self,
        connection: &mut DbConnection,
        rows: &[WebhookRow],
    ) -> Result<Vec<()>, RepositoryError> {
        match connection {
            DbConnection::Postgres(postgres) => insert_unnested(postgres, rows),
            DbConnection::Sqlite(sqlite) => diesel::insert_into(webhooks::table)
                .values(rows)
                .execute(sqlite)
                .map(drop),
        }
        .map_err(storage_error)?;
        Ok(vec![(); rows.len()])
    }
}

fn insert_unnested(connection: &mut PgConnection, rows: &[WebhookRow]) -> QueryResult<()> {
    let column = |value: fn(&WebhookRow) -> String| rows.iter().map(value).collect::<Vec<_>>();
    InsertStatement {
        id: column(|row| row.id.clone()),
        group_id: rows.iter().map(|row| row.group_id).collect(),
        url: column(|row| row.url.clone()),
        description: column(|row| row.description.clone()),
        status: column(|row| row.status.clone()),
        enabled_events: column(|row| row.enabled_events.clone()),
        rate_limit: rows.iter().map(|row| row.rate_limit).collect(),
        secret: column(|row| row.secret.clone()),
        created_at: rows.iter().map(|row| row.created_at).collect(),
        updated_at: rows.iter().map(|row| row.updated_at).collect(),
        headers: rows.iter().map(|row| row.headers.clone()).collect(),
        ordering: rows.iter().map(|row| row.ordering.clone()).collect(),
    }
    .execute(connection)
    .map(drop)
}

/// The statement of [`insert_unnested`], a column per array.
struct InsertStatement {
    id: Vec<String>,
    group_id: Vec<i64>,
    url: Vec<String>,
    description: Vec<String>,
    status: Vec<String>,
    enabled_events: Vec<String>,
    rate_limit: Vec<Option<i64>>,
    secret: Vec<String>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
    headers: Vec<Option<String>>,
    ordering: Vec<Option<String>>,
}

impl QueryFragment<Pg> for InsertStatement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = format!(
            "INSERT INTO webhooks (id, group_id, url, description, status, enabled_events, \
               rate_limit, secret, created_at, updated_at, headers, ordering) \
             SELECT * FROM unnest({BIND}, {BIND}, {BIND}, {BIND}, {BIND}, {BIND}, \
               {BIND}, {BIND}, {BIND}, {BIND}, {BIND}, {BIND})"
        );
        push_with_binds(&mut out, &sql, |out, n| match n {
            0 => out.push_bind_param::<Array<Text>, _>(&self.id),
            1 => out.push_bind_param::<Array<BigInt>, _>(&self.group_id),
            2 => out.push_bind_param::<Array<Text>, _>(&self.url),
            3 => out.push_bind_param::<Array<Text>, _>(&self.description),
            4 => out.push_bind_param::<Array<Text>, _>(&self.status),
            5 => out.push_bind_param::<Array<Text>, _>(&self.enabled_events),
            6 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.rate_limit),
            7 => out.push_bind_param::<Array<Text>, _>(&self.secret),
            8 => out.push_bind_param::<Array<BigInt>, _>(&self.created_at),
            9 => out.push_bind_param::<Array<BigInt>, _>(&self.updated_at),
            10 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.headers),
            11 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.ordering),
            n => Err(no_value_to_bind(n)),
        })
    }
}

prepared_statement!(InsertStatement);
