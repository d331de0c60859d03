//! Operational events in the caller's transaction: each goes, as an event
//! of the organization's operations group with its deliveries, to the
//! operator endpoints that take its type. Nothing is written for a webhook
//! of the operations group itself (no loops), for an organization without
//! an operations group, or when no enabled webhook of it takes the type.

use std::collections::HashMap;

use diesel::prelude::*;
use webhooks_domain::{
    DisabledReason, EventId, EventType, GroupId, OperationalEvent, RepositoryError, StatusChange,
    UnixMillis,
};

use crate::database::{storage_error, DbConnection};
use crate::events::{enabled_receivers, fan_out_and_store, FanOut};
use crate::schema::{groups, webhooks};

/// Writes `news`, stamped `at`, in the caller's transaction; answers the
/// types written, for [`OperationalEvent::count_sent`] once committed.
pub(crate) fn announce(
    connection: &mut DbConnection,
    news: &[OperationalEvent],
    at: UnixMillis,
) -> Result<Vec<EventType>, RepositoryError> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let operations_group_of = operations_groups(connection, news)?;
    let events: Vec<_> = news
        .iter()
        .filter_map(|one| {
            let operations = operations_group_of.get(&one.group_id().get())?;
            let id = EventId::from_ulid(ulid::Ulid::new());
            Some(one.to_event(id, *operations, at))
        })
        .collect();
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let (_, types) = fan_out_and_store(connection, |connection| {
        let receivers = enabled_receivers(connection, &events)?;
        let taken: Vec<_> = events
            .iter()
            .filter(|event| receivers.iter().any(|receiver| receiver.receives(event)))
            .cloned()
            .collect();
        let types = taken
            .iter()
            .filter_map(|event| EventType::parse(&event.event_type))
            .collect();
        Ok((FanOut::of(&taken, &receivers), types))
    })?;
    Ok(types)
}

/// The operations group of each subject group's organization, by subject
/// group; a subject group that is an operations group has none.
fn operations_groups(
    connection: &mut DbConnection,
    news: &[OperationalEvent],
) -> Result<HashMap<i64, GroupId>, RepositoryError> {
    let subjects: Vec<i64> = news.iter().map(|one| one.group_id().get()).collect();
    let subject_orgs: Vec<(i64, String)> = groups::table
        .filter(groups::id.eq_any(&subjects))
        .filter(groups::operations.eq(false))
        .select((groups::id, groups::organization_id))
        .load(connection)
        .map_err(storage_error)?;
    let orgs: Vec<&str> = subject_orgs.iter().map(|(_, org)| org.as_str()).collect();
    let operations: HashMap<String, i64> = groups::table
        .filter(groups::organization_id.eq_any(&orgs))
        .filter(groups::operations.eq(true))
        .select((groups::organization_id, groups::id))
        .load::<(String, i64)>(connection)
        .map_err(storage_error)?
        .into_iter()
        .collect();
    subject_orgs
        .iter()
        .filter_map(|(subject, org)| Some((*subject, *operations.get(org)?)))
        .map(|(subject, id)| {
            GroupId::new(id)
                .map(|id| (subject, id))
                .map_err(|_| RepositoryError::Corrupt(format!("group {id}: id is not positive")))
        })
        .collect()
}

/// Stores why the webhook's status changed: the reason and time of a
/// disabling, nothing once enabled again.
pub(crate) fn store_status_change(
    connection: &mut DbConnection,
    webhook: &str,
    change: StatusChange,
    at: UnixMillis,
) -> QueryResult<()> {
    let (reason, disabled_at) = match change {
        StatusChange::Disabled(reason) => (Some(reason.as_str()), Some(at.as_millis())),
        StatusChange::Enabled(_) => (None, None),
    };
    diesel::update(webhooks::table.filter(webhooks::id.eq(webhook)))
        .set((
            webhooks::disabled_reason.eq(reason),
            webhooks::disabled_at.eq(disabled_at),
            no_probes(),
        ))
        .execute(connection)
        .map(drop)
}

/// The probe columns of a webhook whose status just changed: none yet.
#[allow(clippy::type_complexity)]
pub(crate) fn no_probes() -> (
    diesel::dsl::Eq<webhooks::probe_at, Option<i64>>,
    diesel::dsl::Eq<webhooks::probe_wait, Option<i64>>,
    diesel::dsl::Eq<webhooks::probe_successes, i64>,
) {
    (
        webhooks::probe_at.eq(None),
        webhooks::probe_wait.eq(None),
        webhooks::probe_successes.eq(0),
    )
}

/// Why the webhook is disabled; `None` while it is enabled.
/// Errors: [`RepositoryError::Corrupt`] for an unknown reason.
pub(crate) fn disabled_reason(
    connection: &mut DbConnection,
    webhook: &str,
) -> Result<Option<DisabledReason>, RepositoryError> {
    let stored: Option<Option<String>> = webhooks::table
        .filter(webhooks::id.eq(webhook))
        .select(webhooks::disabled_reason)
        .first(connection)
        .optional()
        .map_err(storage_error)?;
    stored
        .flatten()
        .map(|raw| {
            DisabledReason::parse(&raw).ok_or_else(|| {
                RepositoryError::Corrupt(format!("webhook {webhook}: unknown disabled_reason"))
            })
        })
        .transpose()
}
