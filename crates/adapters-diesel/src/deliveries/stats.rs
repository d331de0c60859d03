//! A webhook's activity over a stats window: its deliveries created in the
//! window by status, and their attempts' durations and latest outcomes.
//!
//! Every statement starts from the deliveries index
//! `(webhook_id, status, created_at)`: naming the three statuses lets both
//! backends read one range of it per status, so the cost grows with the
//! webhook's deliveries in the window, never with the table. Their attempts
//! are found by the attempts' primary key `(delivery_id, number)`.
//! Percentiles are left to the domain: the durations come back as a count per
//! millisecond value, which both backends compute the same way and which
//! stays small (durations are bounded by the attempt timeout).

use diesel::dsl::{case_when, count_star, max};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use webhooks_domain::{
    AttemptDurations, DeliveryCounts, DeliveryStatus, RepositoryError, StatsWindow, UnixMillis,
    WindowActivity,
};

use crate::database::{storage_error, DbConnection};
use crate::schema::{attempts, deliveries};

const STATUSES: [DeliveryStatus; 3] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Succeeded,
    DeliveryStatus::Failed,
];

/// The webhook's deliveries created in the window.
#[diesel::dsl::auto_type(no_type_alias)]
fn in_window<'a>(webhook: &'a str, since: i64, until: i64) -> _ {
    let statuses: [&'static str; 3] = STATUSES.map(DeliveryStatus::as_str);
    deliveries::webhook_id
        .eq(webhook)
        .and(deliveries::status.eq_any(statuses))
        .and(deliveries::created_at.ge(since))
        .and(deliveries::created_at.lt(until))
}

/// What the statements read, before it becomes a [`WindowActivity`]:
/// deliveries per status, and per attempt duration how many attempts took
/// it and the latest of them that answered 2xx and that did not.
struct ActivityRows {
    by_status: Vec<(String, i64)>,
    by_duration: Vec<(i64, i64, Option<i64>, Option<i64>)>,
}

/// Reads [`WindowActivity`] in two statements on one connection.
/// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
pub(super) fn window_activity(
    connection: &mut DbConnection,
    webhook: &str,
    window: StatsWindow,
) -> Result<WindowActivity, RepositoryError> {
    let rows = read_rows(connection, webhook, window).map_err(storage_error)?;
    let mut activity = WindowActivity {
        deliveries: counts(rows.by_status)?,
        ..WindowActivity::default()
    };
    let mut durations = Vec::with_capacity(rows.by_duration.len());
    for (duration_ms, count, last_success_at, last_failure_at) in rows.by_duration {
        durations.push((duration_ms, u64::try_from(count).unwrap_or(0)));
        activity.last_success_at = activity
            .last_success_at
            .max(last_success_at.map(UnixMillis));
        activity.last_failure_at = activity
            .last_failure_at
            .max(last_failure_at.map(UnixMillis));
    }
    activity.durations = AttemptDurations::new(durations);
    Ok(activity)
}

fn read_rows(
    connection: &mut DbConnection,
    webhook: &str,
    window: StatsWindow,
) -> QueryResult<ActivityRows> {
    let (since, until) = (window.since().as_millis(), window.until().as_millis());
    let by_status = deliveries::table
        .filter(in_window(webhook, since, until))
        .group_by(deliveries::status)
        .select((deliveries::status, count_star()))
        .load(connection)?;
    let answered_2xx = || attempts::response_status.between(200_i64, 299_i64);
    // No answer leaves the condition NULL, which falls to the failure side.
    let succeeded_at = case_when(answered_2xx(), attempts::attempted_at);
    let failed_at = case_when::<_, _, Nullable<BigInt>>(answered_2xx(), None::<i64>)
        .otherwise(attempts::attempted_at.nullable());
    let by_duration = attempts::table
        .inner_join(deliveries::table)
        .filter(in_window(webhook, since, until))
        .group_by(attempts::duration_ms)
        .select((
            attempts::duration_ms,
            count_star(),
            max(succeeded_at),
            max(failed_at),
        ))
        .load(connection)?;
    Ok(ActivityRows {
        by_status,
        by_duration,
    })
}

fn counts(by_status: Vec<(String, i64)>) -> Result<DeliveryCounts, RepositoryError> {
    let mut counts = DeliveryCounts::default();
    for (status, count) in by_status {
        let count = u64::try_from(count).unwrap_or(0);
        match DeliveryStatus::parse(&status) {
            Some(DeliveryStatus::Pending) => counts.pending = count,
            Some(DeliveryStatus::Succeeded) => counts.succeeded = count,
            Some(DeliveryStatus::Failed) => counts.failed = count,
            None => {
                return Err(RepositoryError::Corrupt(format!(
                    "delivery status {status}"
                )))
            }
        }
    }
    Ok(counts)
}
