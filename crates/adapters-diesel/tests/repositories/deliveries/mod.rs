//! The delivery queue and log: claims and leases, attempts and endpoint
//! health, rate slots, the log's pages and actions; and what the webhook
//! repository does to deliveries (secret rotation, deletion). This module
//! holds what its three parts share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use webhooks_adapters_diesel::{Database, DieselDeliveryQueue};
use webhooks_domain::{
    Attempt, AttemptRecord, DeliveryId, DeliveryJob, DeliveryQueue, DeliveryStatus, DisabledReason,
    EnabledEvents, EndpointHealth, EventStore, EventType, Group, GroupId, NextStep,
    RepositoryError, TenancyRepository, UnixMillis, Webhook, WebhookRepository, WebhookStatus,
};

use crate::support::{event, events_store, group, queue, stored, tenancy, webhook, webhooks};

mod attempts;
mod claims;
mod log;
mod operational_events;
mod ordering;
mod probes;
mod retention;
mod stats;

/// Far enough ahead that no test reaches it: claims that should stay hidden.
const LONG_LEASE: UnixMillis = UnixMillis(1_000_000_000);

/// Recording one attempt: a batch of one.
#[async_trait::async_trait]
trait RecordOne {
    async fn record_attempt(
        &self,
        attempt: &Attempt,
        next: NextStep,
        health: EndpointHealth,
    ) -> Result<(), RepositoryError>;
}

#[async_trait::async_trait]
impl RecordOne for DieselDeliveryQueue {
    async fn record_attempt(
        &self,
        attempt: &Attempt,
        next: NextStep,
        health: EndpointHealth,
    ) -> Result<(), RepositoryError> {
        self.record_attempts(&[record(attempt.clone(), next, health)])
            .await
    }
}

fn record(attempt: Attempt, next: NextStep, health: EndpointHealth) -> AttemptRecord {
    AttemptRecord {
        attempt,
        next,
        health,
    }
}

/// A pending delivery to the webhook alone, of an event made (and due) at `at`.
async fn deliver(db: &Database, receiver: &Webhook, at: i64) -> DeliveryId {
    events_store(db)
        .publish_to(&event(receiver.group_id, at, None), &receiver.id)
        .await
        .unwrap()
}

fn attempt(delivery: &DeliveryId, number: u32, at: i64, status: Option<u16>) -> Attempt {
    Attempt {
        delivery_id: delivery.clone(),
        number,
        attempted_at: UnixMillis(at),
        duration_ms: 42,
        response_status: status,
        response_body: status.map(|status| format!("answer {status}")),
        error: None,
    }
}

/// Records a first attempt that ends the delivery as `next` says.
async fn finish(queue: &DieselDeliveryQueue, delivery: &DeliveryId, next: NextStep) {
    let (status, health) = match next {
        NextStep::Succeeded => (Some(200), EndpointHealth::Healthy),
        _ => (Some(500), failing_since(0)),
    };
    queue
        .record_attempt(&attempt(delivery, 1, 3_000, status), next, health)
        .await
        .unwrap();
}

fn failing_since(disable_if_failing_since: i64) -> EndpointHealth {
    EndpointHealth::Failing {
        disable_if_failing_since: UnixMillis(disable_if_failing_since),
    }
}

/// Counts the calls of `db`'s status-change hook from now on (what a list
/// cache in front of the webhooks would be told).
fn count_status_changes(db: &Database) -> Arc<AtomicUsize> {
    let told = Arc::new(AtomicUsize::new(0));
    db.on_webhook_status_change({
        let told = told.clone();
        move || {
            told.fetch_add(1, Ordering::SeqCst);
        }
    });
    told
}

/// What [`count_status_changes`] has counted so far.
fn status_changes(count: &AtomicUsize) -> usize {
    count.load(Ordering::SeqCst)
}

async fn status_of(db: &Database, webhook: &Webhook) -> WebhookStatus {
    webhooks(db)
        .find(webhook.group_id, &webhook.id)
        .await
        .unwrap()
        .unwrap()
        .status
}

fn job_ids(jobs: &[DeliveryJob]) -> Vec<DeliveryId> {
    jobs.iter().map(|job| job.delivery_id.clone()).collect()
}

// ---- operational events and probes ------------------------------------------

/// A group of its own organization, with one stored enabled webhook.
async fn subject(db: &Database, id: i64) -> (Group, Webhook) {
    let group = group(db, id).await;
    let receiver = stored(db, vec![webhook(&group, 1_000)]).await.remove(0);
    (group, receiver)
}

/// The operations group `id` of `of`'s organization, with an operator
/// endpoint taking `events`.
async fn operator_endpoint(db: &Database, of: &Group, id: i64, events: &[EventType]) -> Webhook {
    let operations = Group {
        id: GroupId::new(id).unwrap(),
        organization_id: of.organization_id.clone(),
        name: "Operations".to_owned(),
        operations: true,
        created_at: UnixMillis(1),
    };
    tenancy(db).insert_group(&operations).await.unwrap();
    let endpoint = Webhook {
        enabled_events: EnabledEvents::new(events.iter().copied()).unwrap(),
        ..webhook(&operations, 500)
    };
    stored(db, vec![endpoint]).await.remove(0)
}

/// The bodies of the operator endpoint's pending deliveries, oldest first.
async fn told(db: &Database, endpoint: &Webhook) -> Vec<Value> {
    let queue = queue(db);
    let mut bodies = Vec::new();
    let listed = queue
        .list(&endpoint.id, Some(DeliveryStatus::Pending), None, 100)
        .await
        .unwrap();
    for delivery in listed.iter().rev() {
        let detail = queue
            .find(&endpoint.id, &delivery.id)
            .await
            .unwrap()
            .unwrap();
        bodies.push(serde_json::from_str(&detail.payload).unwrap());
    }
    bodies
}

async fn disabled_reason(db: &Database, webhook: &Webhook) -> Option<DisabledReason> {
    webhooks(db).disabled_reason(&webhook.id).await.unwrap()
}
