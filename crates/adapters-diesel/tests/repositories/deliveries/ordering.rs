//! FIFO webhooks: a claim takes only a webhook's oldest pending delivery, and
//! none while one of its deliveries is leased.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use webhooks_adapters_diesel::{Database, DieselDeliveryQueue, TestDatabase};
use webhooks_domain::{
    DeliveryId, DeliveryOrdering, DeliveryQueue, NextStep, Requeue, UnixMillis, Webhook, WebhookId,
};

use super::{deliver, finish, job_ids, LONG_LEASE};
use crate::support::{group, queue, receiver_in, stored, webhook};

on_both_backends!(
    a_fifo_claim_takes_only_the_oldest_pending_delivery_of_the_webhook,
    the_next_delivery_waits_until_the_head_succeeds_or_fails_for_good,
    fifo_order_is_the_order_deliveries_were_stored_not_their_due_time,
    other_webhooks_are_claimed_beside_a_fifo_one,
    a_requeued_delivery_takes_its_place_again_but_waits_for_the_one_in_flight,
    concurrent_claimers_never_hold_two_deliveries_of_a_fifo_webhook,
    concurrent_claimers_deliver_each_fifo_webhook_in_order,
);

/// A stored FIFO webhook of a new group.
async fn fifo_receiver(db: &Database, group_id: i64) -> Webhook {
    let group = group(db, group_id).await;
    let mut fifo = webhook(&group, 1_000);
    fifo.ordering = Some(DeliveryOrdering::Fifo);
    stored(db, vec![fifo]).await.remove(0)
}

/// Claims at `now` with a long lease.
async fn claim(queue: &DieselDeliveryQueue, now: i64) -> Vec<DeliveryId> {
    job_ids(
        &queue
            .claim_due(UnixMillis(now), 10, LONG_LEASE, &[])
            .await
            .unwrap(),
    )
}

async fn a_fifo_claim_takes_only_the_oldest_pending_delivery_of_the_webhook(db: &Database) {
    let fifo = fifo_receiver(db, 51).await;
    let first = deliver(db, &fifo, 1_000).await;
    let second = deliver(db, &fifo, 2_000).await;
    let _third = deliver(db, &fifo, 3_000).await;
    let queue = queue(db);

    let claimed = queue
        .claim_due(UnixMillis(5_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&claimed), vec![first.clone()]);
    assert_eq!(claimed[0].ordering, Some(DeliveryOrdering::Fifo));
    assert_eq!(claim(&queue, 5_000).await, vec![], "the head is in flight");

    finish(&queue, &first, NextStep::Succeeded).await;
    assert_eq!(claim(&queue, 5_000).await, vec![second]);
}

async fn the_next_delivery_waits_until_the_head_succeeds_or_fails_for_good(db: &Database) {
    let fifo = fifo_receiver(db, 52).await;
    let first = deliver(db, &fifo, 1_000).await;
    let second = deliver(db, &fifo, 2_000).await;
    let queue = queue(db);
    assert_eq!(claim(&queue, 5_000).await, vec![first.clone()]);

    // A failed attempt with a retry later: the head waits for it, and so does
    // everything behind it.
    finish(&queue, &first, NextStep::RetryAt(UnixMillis(60_000))).await;
    assert_eq!(claim(&queue, 59_999).await, vec![]);
    assert_eq!(claim(&queue, 60_000).await, vec![first.clone()]);

    finish(&queue, &first, NextStep::Failed).await;
    assert_eq!(claim(&queue, 60_000).await, vec![second]);
}

async fn fifo_order_is_the_order_deliveries_were_stored_not_their_due_time(db: &Database) {
    let fifo = fifo_receiver(db, 53).await;
    // Stored first, but made by a process whose clock runs behind: its id
    // and time sort after the second's.
    let stored_first = deliver(db, &fifo, 3_000).await;
    let stored_second = deliver(db, &fifo, 1_000).await;
    let queue = queue(db);

    assert_eq!(claim(&queue, 5_000).await, vec![stored_first.clone()]);
    finish(&queue, &stored_first, NextStep::Succeeded).await;
    assert_eq!(claim(&queue, 5_000).await, vec![stored_second]);
}

async fn other_webhooks_are_claimed_beside_a_fifo_one(db: &Database) {
    let fifo = fifo_receiver(db, 54).await;
    let plain = receiver_in(
        db,
        &Webhook {
            ordering: None,
            ..fifo.clone()
        },
        2_000,
    )
    .await;
    let head = deliver(db, &fifo, 1_000).await;
    let _behind = deliver(db, &fifo, 1_500).await;
    let mut unordered = Vec::new();
    for at in [1_000, 2_000, 3_000] {
        unordered.push(deliver(db, &plain, at).await);
    }

    let claimed = claim(&queue(db), 5_000).await;

    let expected: HashSet<_> = unordered.into_iter().chain([head]).collect();
    assert_eq!(claimed.len(), 4);
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), expected);
}

async fn a_requeued_delivery_takes_its_place_again_but_waits_for_the_one_in_flight(db: &Database) {
    let fifo = fifo_receiver(db, 55).await;
    let first = deliver(db, &fifo, 1_000).await;
    let second = deliver(db, &fifo, 2_000).await;
    let third = deliver(db, &fifo, 3_000).await;
    let queue = queue(db);
    assert_eq!(claim(&queue, 5_000).await, vec![first.clone()]);
    finish(&queue, &first, NextStep::Failed).await;
    assert_eq!(claim(&queue, 5_000).await, vec![second.clone()]);

    // Retried while the second is in flight: first in line again, but the
    // second finishes before it goes.
    assert_eq!(
        queue.requeue(&fifo.id, &first, UnixMillis(6_000)).await,
        Ok(Requeue::Requeued)
    );
    assert_eq!(claim(&queue, 6_000).await, vec![]);
    finish(&queue, &second, NextStep::Succeeded).await;
    assert_eq!(claim(&queue, 6_000).await, vec![first.clone()]);
    finish(&queue, &first, NextStep::Succeeded).await;
    assert_eq!(claim(&queue, 6_000).await, vec![third]);
}

/// Four FIFO webhooks of one group with `per_webhook` deliveries each, in
/// the order stored.
async fn fifo_backlog(
    db: &Database,
    group_id: i64,
    per_webhook: i64,
) -> HashMap<WebhookId, Vec<DeliveryId>> {
    let first = fifo_receiver(db, group_id).await;
    let mut receivers = vec![first.clone()];
    for n in 1..4 {
        receivers.push(receiver_in(db, &first, 1_000 + n).await);
    }
    let mut backlog: HashMap<WebhookId, Vec<DeliveryId>> = HashMap::new();
    for at in 0..per_webhook {
        for receiver in &receivers {
            let delivery = deliver(db, receiver, 1_000 + at).await;
            backlog
                .entry(receiver.id.clone())
                .or_default()
                .push(delivery);
        }
    }
    backlog
}

async fn concurrent_claimers_never_hold_two_deliveries_of_a_fifo_webhook(db: &Database) {
    let backlog = fifo_backlog(db, 56, 10).await;
    let mut claimers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let queue = queue(db);
        claimers.spawn(async move {
            let mut claimed = Vec::new();
            for _ in 0..5 {
                let jobs = queue
                    .claim_due(UnixMillis(5_000), 3, LONG_LEASE, &[])
                    .await
                    .unwrap();
                claimed.extend(jobs.into_iter().map(|job| job.webhook_id));
            }
            claimed
        });
    }
    let mut held = Vec::new();
    while let Some(claimed) = claimers.join_next().await {
        held.extend(claimed.unwrap());
    }

    held.sort();
    let mut webhooks: Vec<_> = backlog.into_keys().collect();
    webhooks.sort();
    assert_eq!(held, webhooks, "one delivery held per FIFO webhook");
}

async fn concurrent_claimers_deliver_each_fifo_webhook_in_order(db: &Database) {
    let backlog = fifo_backlog(db, 57, 8).await;
    // Every claim, in the order claimed: a delivery is pushed before it is
    // finished, and the next of its webhook is claimable only after that.
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut claimers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let queue = queue(db);
        let sent = Arc::clone(&sent);
        claimers.spawn(async move {
            let mut idle_rounds = 0;
            while idle_rounds < 20 {
                let jobs = queue
                    .claim_due(UnixMillis(5_000), 3, LONG_LEASE, &[])
                    .await
                    .unwrap();
                idle_rounds = if jobs.is_empty() { idle_rounds + 1 } else { 0 };
                for job in jobs {
                    sent.lock()
                        .unwrap()
                        .push((job.webhook_id, job.delivery_id.clone()));
                    finish(&queue, &job.delivery_id, NextStep::Succeeded).await;
                }
            }
        });
    }
    while let Some(done) = claimers.join_next().await {
        done.unwrap();
    }

    let sent = sent.lock().unwrap();
    for (webhook, in_order) in backlog {
        let claimed: Vec<_> = sent
            .iter()
            .filter(|(of, _)| *of == webhook)
            .map(|(_, delivery)| delivery.clone())
            .collect();
        assert_eq!(claimed, in_order, "{webhook}");
    }
}

/// The first key of the advisory locks a PostgreSQL claim takes on FIFO
/// webhooks ("fifo" in ASCII).
const FIFO_LOCK_SPACE: i32 = 0x6669_666f;

#[tokio::test]
async fn a_postgres_claim_skips_a_fifo_webhook_another_claim_is_taking() {
    use diesel::{Connection, PgConnection, RunQueryDsl};

    let test_database = TestDatabase::postgres().await;
    let db = test_database.database();
    let busy = fifo_receiver(db, 58).await;
    let free = receiver_in(db, &busy, 2_000).await;
    let busy_head = deliver(db, &busy, 1_000).await;
    let free_head = deliver(db, &free, 1_000).await;
    // Another process's claim of `busy`, caught between its two statements.
    let mut other = PgConnection::establish(test_database.url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    diesel::sql_query(format!(
        "SELECT pg_advisory_xact_lock({FIFO_LOCK_SPACE}, hashtext('{}'))",
        busy.id
    ))
    .execute(&mut other)
    .unwrap();
    let queue = queue(db);

    assert_eq!(claim(&queue, 5_000).await, vec![free_head]);

    diesel::sql_query("COMMIT").execute(&mut other).unwrap();
    assert_eq!(claim(&queue, 5_000).await, vec![busy_head]);
}
