//! Retention: exactly the old finished deliveries (with their attempts) go,
//! then the old events of which no delivery remains; several pruners at once
//! delete each row once.

use std::sync::Arc;

use webhooks_adapters_diesel::{Database, DieselRetention, TestDatabase};
use webhooks_domain::{
    DeliveryId, DeliveryQueue, EndpointHealth, EventStore, NextStep, OldestKept, PrunedDeliveries,
    PrunedEvents, RetentionStore, UnixMillis, Webhook, WebhookRepository,
};

use super::{attempt, deliver, RecordOne};
use crate::support::{
    count_from, event, events_store, group, queue, receiver, receiver_in, webhooks,
};

on_both_backends!(
    a_prune_takes_at_most_its_limit_of_deliveries,
    oldest_kept_answers_the_oldest_finished_delivery_and_event,
    concurrent_pruners_delete_each_delivery_once,
    concurrent_pruners_delete_every_event_of_the_deliveries_they_share,
);

on_both_backends!(test_database:
    exactly_the_old_finished_deliveries_and_their_attempts_go,
    events_go_once_old_and_none_of_their_deliveries_remains,
    an_event_walked_past_goes_with_its_last_delivery,
    a_deleted_webhooks_old_events_are_looked_at_again,
);

/// Finished deliveries go when they finished before this; events when they
/// were accepted before it.
const CUTOFF: UnixMillis = UnixMillis(50_000);
const OLD: i64 = 10_000;
const NEW: i64 = 90_000;

fn retention(db: &Database) -> DieselRetention {
    DieselRetention::new(db.clone())
}

/// A delivery of an event made at `created_at`, its attempts recorded at
/// `finished_at`: the last one ends it as `next` says.
async fn delivery(
    db: &Database,
    receiver: &Webhook,
    created_at: i64,
    attempts: u32,
    next: NextStep,
    finished_at: i64,
) -> DeliveryId {
    let id = deliver(db, receiver, created_at).await;
    let queue = queue(db);
    for number in 1..=attempts {
        let last = number == attempts;
        let (status, step) = match (last, next) {
            (true, NextStep::Succeeded) => (200, NextStep::Succeeded),
            (true, step) => (500, step),
            (false, _) => (500, NextStep::RetryAt(UnixMillis(finished_at + 1_000))),
        };
        queue
            .record_attempt(
                &attempt(&id, number, finished_at, Some(status)),
                step,
                EndpointHealth::Unchanged,
            )
            .await
            .unwrap();
    }
    id
}

/// Four pruners side by side, each taking `limit` finished deliveries (and,
/// with `events_before`, their events) per chunk until none is left: what
/// they deleted together.
async fn prune_side_by_side(
    db: &Database,
    events_before: Option<UnixMillis>,
    limit: usize,
) -> PrunedDeliveries {
    let retention = Arc::new(retention(db));
    let pruners: Vec<_> = (0..4)
        .map(|_| {
            let retention = retention.clone();
            tokio::spawn(async move {
                let mut total = PrunedDeliveries::default();
                loop {
                    let chunk = retention
                        .prune_finished_deliveries(CUTOFF, events_before, limit)
                        .await
                        .unwrap();
                    add(&mut total, chunk);
                    if chunk.deliveries == 0 {
                        return total;
                    }
                }
            })
        })
        .collect();
    let mut total = PrunedDeliveries::default();
    for pruner in pruners {
        add(&mut total, pruner.await.unwrap());
    }
    total
}

fn add(total: &mut PrunedDeliveries, more: PrunedDeliveries) {
    total.deliveries += more.deliveries;
    total.attempts += more.attempts;
    total.events += more.events;
}

async fn exists(db: &Database, receiver: &Webhook, id: &DeliveryId) -> bool {
    queue(db).find(&receiver.id, id).await.unwrap().is_some()
}

async fn exactly_the_old_finished_deliveries_and_their_attempts_go(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 60).await;
    let old_succeeded = delivery(db, &receiver, OLD, 2, NextStep::Succeeded, OLD).await;
    let old_failed = delivery(db, &receiver, OLD, 3, NextStep::Failed, OLD).await;
    let retrying = delivery(
        db,
        &receiver,
        OLD,
        1,
        NextStep::RetryAt(UnixMillis(OLD)),
        OLD,
    )
    .await;
    let never_tried = deliver(db, &receiver, OLD).await;
    let new_succeeded = delivery(db, &receiver, OLD, 1, NextStep::Succeeded, NEW).await;
    let new_failed = delivery(db, &receiver, NEW, 1, NextStep::Failed, NEW).await;

    let pruned = retention(db)
        .prune_finished_deliveries(CUTOFF, None, 100)
        .await;

    assert_eq!(
        pruned,
        Ok(PrunedDeliveries {
            deliveries: 2,
            attempts: 5,
            events: 0,
        })
    );
    for gone in [&old_succeeded, &old_failed] {
        assert!(!exists(db, &receiver, gone).await, "{gone:?} kept");
    }
    for kept in [&retrying, &never_tried, &new_succeeded, &new_failed] {
        assert!(exists(db, &receiver, kept).await, "{kept:?} pruned");
    }
    let counts = test_database.row_counts().await;
    assert_eq!((counts.deliveries, counts.attempts), (4, 3));
    // Pruning again deletes nothing more.
    assert_eq!(
        retention(db)
            .prune_finished_deliveries(CUTOFF, None, 100)
            .await,
        Ok(PrunedDeliveries::default())
    );
}

async fn events_go_once_old_and_none_of_their_deliveries_remains(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 61).await;
    let lonely = group(db, 62).await;
    // Old, its only delivery pruned below.
    delivery(db, &receiver, OLD, 1, NextStep::Succeeded, OLD).await;
    // Old, a delivery still pending.
    deliver(db, &receiver, OLD).await;
    // Old, a finished delivery that is kept (it finished recently).
    delivery(db, &receiver, OLD, 1, NextStep::Failed, NEW).await;
    // Old and new events of a group without webhooks: no delivery ever.
    let store = events_store(db);
    for at in [OLD, NEW] {
        store
            .publish(&event(lonely.id, at, None), UnixMillis(0))
            .await
            .unwrap();
    }
    let retention = retention(db);
    let pruned = retention
        .prune_finished_deliveries(CUTOFF, Some(CUTOFF), 100)
        .await
        .unwrap();
    // The event whose only delivery was pruned went with it.
    assert_eq!((pruned.deliveries, pruned.events), (1, 1));

    // The walk looks at the three old events left and deletes the lonely one.
    assert_eq!(
        retention.prune_events(CUTOFF, 100).await,
        Ok(PrunedEvents {
            checked: 3,
            deleted: 1
        })
    );

    assert_eq!(test_database.row_counts().await.events, 3);
    let orphans = "events e WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)";
    assert_eq!(count_from(test_database.url(), orphans), 1);
    // The walk remembers: the next pass looks at nothing it saw.
    assert_eq!(
        retention.prune_events(CUTOFF, 100).await,
        Ok(PrunedEvents::default())
    );
}

async fn an_event_walked_past_goes_with_its_last_delivery(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 66).await;
    // Old, its delivery finished recently: kept by the walk.
    delivery(db, &receiver, OLD, 1, NextStep::Succeeded, NEW).await;
    let retention = retention(db);
    assert_eq!(
        retention.prune_events(CUTOFF, 100).await,
        Ok(PrunedEvents {
            checked: 1,
            deleted: 0
        })
    );
    // Later, the delivery's own retention ends: the event goes with it.
    let later = UnixMillis(NEW + 1);
    let pruned = retention
        .prune_finished_deliveries(later, Some(CUTOFF), 100)
        .await
        .unwrap();
    assert_eq!((pruned.deliveries, pruned.events), (1, 1));
    assert_eq!(test_database.row_counts().await.events, 0);
    // Events younger than the events' retention stay, delivery or not.
    delivery(db, &receiver, NEW, 1, NextStep::Succeeded, NEW).await;
    let pruned = retention
        .prune_finished_deliveries(later, Some(CUTOFF), 100)
        .await
        .unwrap();
    assert_eq!((pruned.deliveries, pruned.events), (1, 0));
    assert_eq!(test_database.row_counts().await.events, 1);
}

async fn a_deleted_webhooks_old_events_are_looked_at_again(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 67).await;
    let other = receiver_in(db, &receiver, 2_000).await;
    deliver(db, &receiver, OLD).await;
    deliver(db, &receiver, OLD + 1).await;
    deliver(db, &other, OLD + 2).await;
    let retention = retention(db);
    assert_eq!(
        retention.prune_events(CUTOFF, 100).await,
        Ok(PrunedEvents {
            checked: 3,
            deleted: 0
        })
    );
    // Deleting a webhook of another group changes nothing.
    assert_eq!(
        webhooks(db)
            .delete(group(db, 68).await.id, &receiver.id)
            .await,
        Ok(false)
    );
    assert_eq!(
        retention.prune_events(CUTOFF, 100).await,
        Ok(PrunedEvents::default())
    );

    assert_eq!(
        webhooks(db).delete(receiver.group_id, &receiver.id).await,
        Ok(true)
    );

    // The walk goes back to the deleted webhook's oldest delivery: its two
    // events go, the other webhook's stays.
    assert_eq!(
        retention.prune_events(CUTOFF, 100).await,
        Ok(PrunedEvents {
            checked: 3,
            deleted: 2
        })
    );
    assert_eq!(test_database.row_counts().await.events, 1);
}

async fn concurrent_pruners_delete_every_event_of_the_deliveries_they_share(db: &Database) {
    // Each event goes to two webhooks and four pruners take a delivery at a
    // time, so the two deliveries of one event may go in two pruners at once:
    // every event must still go, once.
    let first = receiver(db, 69).await;
    let second = receiver_in(db, &first, 2_000).await;
    let store = events_store(db);
    for at in 0..20 {
        let outcome = store
            .publish(&event(first.group_id, OLD + at, None), UnixMillis(0))
            .await
            .unwrap();
        assert_eq!(outcome.deliveries, 2);
    }
    let queue = queue(db);
    for webhook in [&first, &second] {
        for delivery in queue.list(&webhook.id, None, None, 100).await.unwrap() {
            queue
                .record_attempt(
                    &attempt(&delivery.id, 1, OLD, Some(200)),
                    NextStep::Succeeded,
                    EndpointHealth::Unchanged,
                )
                .await
                .unwrap();
        }
    }
    let pruned = prune_side_by_side(db, Some(CUTOFF), 1).await;
    assert_eq!((pruned.deliveries, pruned.events), (40, 20));
}

async fn a_prune_takes_at_most_its_limit_of_deliveries(db: &Database) {
    let receiver = receiver(db, 63).await;
    for _ in 0..5 {
        delivery(db, &receiver, OLD, 1, NextStep::Succeeded, OLD).await;
    }
    let retention = retention(db);
    let mut chunks = Vec::new();
    for _ in 0..4 {
        let chunk = retention.prune_finished_deliveries(CUTOFF, None, 2).await;
        chunks.push(chunk.unwrap().deliveries);
    }
    assert_eq!(chunks, [2, 2, 1, 0]);
}

async fn oldest_kept_answers_the_oldest_finished_delivery_and_event(db: &Database) {
    let retention = retention(db);
    assert_eq!(retention.oldest_kept().await, Ok(OldestKept::default()));
    let receiver = receiver(db, 64).await;
    // Pending deliveries are not retention's: only finished ones count.
    deliver(db, &receiver, 1_000).await;
    delivery(db, &receiver, 5_000, 1, NextStep::Failed, 7_000).await;
    delivery(db, &receiver, 2_000, 1, NextStep::Succeeded, 8_000).await;
    assert_eq!(
        retention.oldest_kept().await,
        Ok(OldestKept {
            finished_delivery: Some(UnixMillis(7_000)),
            event: Some(UnixMillis(1_000)),
        })
    );
}

async fn concurrent_pruners_delete_each_delivery_once(db: &Database) {
    let receiver = receiver(db, 65).await;
    for _ in 0..40 {
        delivery(db, &receiver, OLD, 1, NextStep::Succeeded, OLD).await;
    }
    assert_eq!(prune_side_by_side(db, None, 3).await.deliveries, 40);
    assert_eq!(
        queue(db).list(&receiver.id, None, None, 100).await,
        Ok(vec![])
    );
}
