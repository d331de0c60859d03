//! What statements written as SQL text share: how PostgreSQL's statements
//! place their bound values and stay prepared, and how many rows one
//! multi-row statement carries; and [`on_its_backend!`] for the statements
//! Diesel builds per backend only.
//!
//! Most queries go through Diesel's query builder, written once for both
//! backends. A few are SQL text because the builder cannot say them on
//! [`DbConnection`](crate::DbConnection): the claim (`SKIP LOCKED`, a list of
//! excluded webhooks), recording a batch's outcomes (`UPDATE … FROM (VALUES
//! …)`), PostgreSQL's one-statement publish. On SQLite their placeholders
//! are `?`, bound by position; PostgreSQL's are pushed as values are bound
//! ([`push_with_binds`]), so that the text stays constant and prepared.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// Rows per multi-row statement (`INSERT … VALUES`, `UPDATE … FROM (VALUES
/// …)`), for every table: a longer list is written in statements of this
/// many rows.
///
/// Each row binds its values, and a statement's bound values are limited:
/// SQLite's limit (`SQLITE_MAX_VARIABLE_NUMBER`: 32,766, which the bundled
/// build keeps) is the stricter of the two backends' (PostgreSQL's is
/// 65,535). 1,000 rows of the widest row, a new webhook's 12 values, bind
/// 12,000: far below it, and few enough round trips for the largest batches.
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

/// The most rows one retention delete takes (and the ids it binds): a few
/// thousand, so that each delete is short and holds its locks briefly.
pub(crate) const ROWS_PER_PRUNE: usize = 5_000;

const _: () = assert!(ROWS_PER_PRUNE <= SQLITE_MAX_BOUND_VALUES);

/// SQLite's limit on the values bound to one statement.
const SQLITE_MAX_BOUND_VALUES: usize = 32_766;

/// The most values one row of a multi-row statement binds (a new webhook).
const WIDEST_ROW: usize = 12;

const _: () = assert!(ROWS_PER_STATEMENT * WIDEST_ROW <= SQLITE_MAX_BOUND_VALUES);

/// Runs a statement that Diesel builds per backend only (multi-row
/// `INSERT`s, `ON CONFLICT`, SQL text with bound values), which its
/// multi-backend connection cannot run: `on_its_backend!(connection, inner
/// => statement)` writes `statement` once against `inner`, the
/// `PgConnection` or `SqliteConnection` inside `connection`.
macro_rules! on_its_backend {
    ($connection:expr, $inner:ident => $statement:expr) => {
        match $connection {
            $crate::database::DbConnection::Postgres($inner) => $statement,
            $crate::database::DbConnection::Sqlite($inner) => $statement,
        }
    };
}
pub(crate) use on_its_backend;

/// Where a value is bound in the text of a PostgreSQL statement written
/// with [`push_with_binds`].
pub(crate) const BIND: &str = "$?";

/// Pushes `sql`, binding a value at each [`BIND`] in it: the `n`th (from 0)
/// is pushed by `bind(out, n)`, which answers an error for an `n` it has
/// no value for.
///
/// For SQL text kept prepared: Diesel prepares a statement once per
/// connection only when its text and the types of its values are those of
/// the last time (a `QueryId` that is static, or a cache key made of the
/// text), and numbers its placeholders itself as values are pushed, so a
/// value used twice is bound twice. `sql_query`'s statements are never kept.
pub(crate) fn push_with_binds<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    sql: &str,
    mut bind: impl FnMut(&mut AstPass<'_, 'b, Pg>, usize) -> QueryResult<()>,
) -> QueryResult<()> {
    for (n, part) in sql.split(BIND).enumerate() {
        if n > 0 {
            bind(out, n - 1)?;
        }
        out.push_sql(part);
    }
    Ok(())
}

/// The error of a [`push_with_binds`] closure asked for a value it lacks.
pub(crate) fn no_value_to_bind(n: usize) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(format!("no value to bind at place {n}").into())
}

/// Makes each of these types (a [`QueryFragment`] on PostgreSQL of one
/// constant text, whose rows are loaded by name) a statement that Diesel
/// keeps prepared, keyed by its type.
macro_rules! prepared_statement {
    ($($statement:ty),*) => {$(
        impl diesel::query_builder::QueryId for $statement {
            type QueryId = Self;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::Query for $statement {
            type SqlType = diesel::sql_types::Untyped;
        }

        impl diesel::RunQueryDsl<diesel::PgConnection> for $statement {}
    )*};
}
pub(crate) use prepared_statement;

/// `sql` with its [`BIND`]s numbered `$1`, `$2`, … in order: the text
/// PostgreSQL gets, for a test's own `PREPARE`.
#[cfg(feature = "testing")]
pub(crate) fn numbered_binds(sql: &str) -> String {
    let mut numbered = String::with_capacity(sql.len());
    for (n, part) in sql.split(BIND).enumerate() {
        if n > 0 {
            numbered.push_str(&format!("${n}"));
        }
        numbered.push_str(part);
    }
    numbered
}

/// `query … LIMIT n` with `n` written into the SQL text instead of bound,
/// for a query whose statement PostgreSQL should plan once, not per call.
///
/// PostgreSQL keeps one generic plan for a prepared statement only when it
/// costs no more than the plans made for each call's values. A bound limit
/// is unknown to the generic plan, which PostgreSQL then costs as if it
/// read a tenth of the matching rows (on a long history, a parallel scan),
/// so every call is planned again: on a table of millions of rows that
/// planning (its statistics read and decompressed) costs more than running
/// the query. With the limit written, the generic plan can cost what each
/// call's does, and PostgreSQL keeps it, provided the planner cannot see
/// the other values either (the delivery log's page hides its webhook in a
/// sub-select: `deliveries/log.rs`).
///
/// `cached` says whether Diesel may keep the statement prepared: only for
/// the few limits callers use again and again (each written limit is its own
/// statement, so caching every one would let callers fill the connection
/// with prepared statements).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrittenLimit<Q> {
    query: Q,
    limit: usize,
    cached: bool,
}

impl<Q> WrittenLimit<Q> {
    /// `query` (which must have no `LIMIT` of its own) limited to `limit`
    /// rows, kept prepared when `cached`.
    pub(crate) fn new(query: Q, limit: usize, cached: bool) -> Self {
        Self {
            query,
            limit,
            cached,
        }
    }
}

impl<Q: Query> Query for WrittenLimit<Q> {
    type SqlType = Q::SqlType;
}

/// Not static: the statement's text depends on the limit, so Diesel keys its
/// cache by the text.
impl<Q> QueryId for WrittenLimit<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<DB>, DB: diesel::backend::Backend> QueryFragment<DB> for WrittenLimit<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cached {
            out.unsafe_to_cache_prepared();
        }
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_sql(&self.limit.to_string());
        Ok(())
    }
}

impl<Q, C> RunQueryDsl<C> for WrittenLimit<Q> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "testing")]
    #[test]
    fn binds_are_numbered_in_the_order_they_appear() {
        assert_eq!(
            numbered_binds("SELECT $? WHERE a = $? LIMIT $?"),
            "SELECT $1 WHERE a = $2 LIMIT $3"
        );
        assert_eq!(numbered_binds("SELECT 1"), "SELECT 1");
    }
}
