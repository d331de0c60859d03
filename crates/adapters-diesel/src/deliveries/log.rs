//! A page of the delivery log
//! ([`DeliveryQueue::list`](webhooks_domain::DeliveryQueue::list)), and how
//! PostgreSQL plans it: once per connection for the unfiltered page of the
//! default size, per call for a page filtered by status.

use diesel::prelude::*;
use diesel::sql_types::Text;
use webhooks_domain::{Delivery, DeliveryId, DeliveryStatus, RepositoryError, DEFAULT_PAGE_SIZE};

use super::rows::{DeliveryRow, DELIVERY_COLUMNS};
use crate::database::{storage_error, DbConnection};
use crate::schema::{deliveries, events};
use crate::statements::WrittenLimit;

/// A page of a webhook's deliveries, newest first (see
/// [`DeliveryQueue::list`](webhooks_domain::DeliveryQueue::list)).
pub(super) fn log_page(
    connection: &mut DbConnection,
    webhook: String,
    status: Option<DeliveryStatus>,
    before: Option<DeliveryId>,
    limit: usize,
) -> Result<Vec<Delivery>, RepositoryError> {
    let mut query = deliveries::table
        .inner_join(events::table)
        .select(DELIVERY_COLUMNS)
        .order_by(deliveries::id.desc())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(deliveries::id.lt(before.as_str().to_owned()));
    }
    let rows = match status {
        // Planned for the status asked, at every call: one plan for every
        // status walks a large webhook's whole log for a status it rarely
        // has (322 ms a call, forced, on a webhook of 50,000 deliveries
        // none of them pending, against 0.4 ms planned per call).
        Some(status) => query
            .filter(deliveries::webhook_id.eq(webhook))
            .filter(deliveries::status.eq(status.as_str()))
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .load::<DeliveryRow>(connection),
        // Planned once per connection. PostgreSQL keeps one plan for a
        // prepared statement only when no call's own plan looks cheaper.
        // Its planner reads the webhook out of a sub-select (`= (SELECT
        // $1 LIMIT 1)`) as "some webhook", so each call's plan costs what the shared
        // one does; with the webhook in view, one newer than the last
        // ANALYZE (no statistics: about one row) always looked cheaper, and
        // every call was planned again. The limit is written for the same
        // reason (see `WrittenLimit`). On millions of deliveries, planning
        // a call cost more than running it.
        None => {
            let webhook = diesel::select(webhook.into_sql::<Text>()).single_value();
            let query = query.filter(deliveries::webhook_id.nullable().eq(webhook));
            // Kept prepared for the default page, which the log asks one
            // delivery more than (to know whether another page follows):
            // the page nearly every caller reads.
            WrittenLimit::new(query, limit, limit == DEFAULT_PAGE_SIZE + 1)
                .load::<DeliveryRow>(connection)
        }
    };
    rows.map_err(storage_error)?
        .into_iter()
        .map(DeliveryRow::into_delivery)
        .collect()
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::testing::PreparedPlans;

    /// 20,000 finished deliveries of one webhook, analyzed, then 100 of a
    /// webhook newer than the statistics: the one PostgreSQL costs at about
    /// a row, whose own plan looked cheaper than any shared one.
    const HISTORY: &str = "
        INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'Log', 0);
        INSERT INTO groups (id, organization_id, name, created_at, operations)
        VALUES (1, 'org_1', 'Log', 0, FALSE);
        INSERT INTO webhooks (id, group_id, url, description, status, enabled_events,
                              rate_limit, secret, created_at, updated_at)
        SELECT 'we_' || lpad(n::text, 26, '0'), 1, 'http://127.0.0.1:9/', 'log', 'disabled',
               'log.sample', NULL, 'x1:log', 0, 0
        FROM generate_series(1, 2) AS n;
        CREATE TEMP TABLE history AS
        SELECT n, CASE WHEN n <= 20000 THEN 1 ELSE 2 END AS webhook FROM generate_series(1, 20100) AS n;
        INSERT INTO events (id, group_id, event_type, payload, idempotency_key, created_at)
        SELECT 'evt_' || lpad(n::text, 26, '0'), 1, 'log.sample', '{}', NULL, n FROM history;
        INSERT INTO deliveries (id, event_id, webhook_id, group_id, status, attempt_count,
                                next_attempt_at, created_at, updated_at, leased_until)
        SELECT 'dlv_' || lpad(n::text, 26, '0'), 'evt_' || lpad(n::text, 26, '0'),
               'we_' || lpad(webhook::text, 26, '0'), 1, 'succeeded', 1, NULL, n, n, NULL
        FROM history WHERE webhook = 1;
        ANALYZE;
        INSERT INTO deliveries (id, event_id, webhook_id, group_id, status, attempt_count,
                                next_attempt_at, created_at, updated_at, leased_until)
        SELECT 'dlv_' || lpad(n::text, 26, '0'), 'evt_' || lpad(n::text, 26, '0'),
               'we_' || lpad(webhook::text, 26, '0'), 1, 'succeeded', 1, NULL, n, n, NULL
        FROM history WHERE webhook = 2;
    ";

    #[tokio::test]
    async fn postgres_plans_the_default_page_of_the_log_once_however_large_the_history() {
        let test_database = crate::TestDatabase::postgres().await;
        let (pages, plans, filtered) = test_database
            .database()
            .run(|connection| {
                connection.batch_execute(HISTORY).map_err(storage_error)?;
                let newest = format!("we_{:0>26}", 2);
                let mut pages = Vec::new();
                for _ in 0..10 {
                    pages.push(log_page(
                        connection,
                        newest.clone(),
                        None,
                        None,
                        DEFAULT_PAGE_SIZE + 1,
                    )?);
                }
                let plans = PreparedPlans::of(
                    connection,
                    &["%FROM (\"deliveries\" INNER JOIN \"events\"%"],
                )?;
                let filtered = log_page(
                    connection,
                    newest,
                    Some(DeliveryStatus::Succeeded),
                    None,
                    DEFAULT_PAGE_SIZE + 1,
                )?;
                Ok((pages, plans, filtered))
            })
            .await
            .unwrap();

        for page in &pages {
            let created: Vec<i64> = page.iter().map(|d| d.created_at.as_millis()).collect();
            let newest_first: Vec<i64> = (20_050..=20_100).rev().collect();
            assert_eq!(created, newest_first);
        }
        assert_eq!(filtered, pages[0]);
        // Five calls planned each (PostgreSQL's trial), then the one plan.
        let PreparedPlans {
            generic, custom, ..
        } = plans;
        assert!(generic >= 5, "generic plans: {generic}, custom: {custom}");
        assert!(custom <= 5, "generic plans: {generic}, custom: {custom}");
    }
}
