//! The delivery log (pages, one delivery with its attempts, requeues, the
//! queue's depth), and deleting a webhook with its deliveries.

use std::collections::HashSet;

use webhooks_adapters_diesel::{Database, TestDatabase};
use webhooks_domain::{
    DeliveryId, DeliveryQueue, DeliveryStatus, EndpointHealth, EventStore, NextStep, QueueDepth,
    RepositoryError, Requeue, UnixMillis, WebhookRepository, WebhookStatus, DEFAULT_PAGE_SIZE,
};

use super::{attempt, deliver, finish, job_ids, RecordOne, LONG_LEASE};
use crate::support::{
    event, events_store, execute_raw, queue, receiver, receiver_in, ulid_id, webhooks,
};

on_both_backends!(
    list_is_newest_first_and_pages_with_a_cursor,
    list_filters_by_status,
    find_answers_the_delivery_with_its_attempts_oldest_first,
    requeue_makes_any_delivery_of_the_webhook_due_now,
    a_claimed_delivery_is_not_requeued_until_its_attempt_is_recorded,
    a_delivery_is_requeued_once_its_lease_has_run_out_or_it_was_released,
    a_requeue_racing_a_claim_never_makes_the_claimed_delivery_due,
    requeue_failed_since_requeues_the_failed_deliveries_created_since,
    depth_counts_pending_deliveries_due_and_scheduled,
);

on_both_backends!(test_database:
    delivery_rows_that_no_longer_parse_are_corrupt,
    deleting_a_webhook_deletes_its_deliveries_and_attempts,
);

async fn list_is_newest_first_and_pages_with_a_cursor(db: &Database) {
    let receiver = receiver(db, 19).await;
    let other = receiver_in(db, &receiver, 2_000).await;
    let mut made = Vec::new();
    for n in 0..5 {
        made.push(deliver(db, &receiver, 1_000 + n).await);
        deliver(db, &other, 1_000 + n).await;
    }
    let queue = queue(db);
    let page = |before: Option<DeliveryId>| {
        let queue = queue.clone();
        let webhook = receiver.id.clone();
        async move {
            let listed = queue.list(&webhook, None, before, 2).await.unwrap();
            assert!(listed.iter().all(|delivery| delivery.webhook_id == webhook));
            listed
                .into_iter()
                .map(|delivery| delivery.id)
                .collect::<Vec<_>>()
        }
    };

    let first = page(None).await;
    assert_eq!(first, vec![made[4].clone(), made[3].clone()]);
    let second = page(first.last().cloned()).await;
    assert_eq!(second, vec![made[2].clone(), made[1].clone()]);
    let third = page(second.last().cloned()).await;
    assert_eq!(third, vec![made[0].clone()]);
    assert_eq!(page(third.last().cloned()).await, vec![]);

    // The default page is a statement of its own, kept prepared.
    let whole: Vec<_> = queue
        .list(&receiver.id, None, None, DEFAULT_PAGE_SIZE + 1)
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| delivery.id)
        .collect();
    assert_eq!(whole, made.iter().rev().cloned().collect::<Vec<_>>());
}

async fn list_filters_by_status(db: &Database) {
    let receiver = receiver(db, 20).await;
    let queue = queue(db);
    let mut failed = Vec::new();
    for n in 0..3 {
        let succeeded = deliver(db, &receiver, 1_000 + n).await;
        finish(&queue, &succeeded, NextStep::Succeeded).await;
        let gave_up = deliver(db, &receiver, 1_000 + n).await;
        finish(&queue, &gave_up, NextStep::Failed).await;
        failed.push(gave_up);
        deliver(db, &receiver, 1_000 + n).await;
    }
    let listed = |status, before| {
        let queue = queue.clone();
        let webhook = receiver.id.clone();
        async move {
            queue
                .list(&webhook, Some(status), before, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|delivery| (delivery.id, delivery.status))
                .collect::<Vec<_>>()
        }
    };

    let failed_newest_first: Vec<_> = failed
        .iter()
        .rev()
        .map(|id| (id.clone(), DeliveryStatus::Failed))
        .collect();
    assert_eq!(
        listed(DeliveryStatus::Failed, None).await,
        failed_newest_first
    );
    assert_eq!(
        listed(DeliveryStatus::Failed, Some(failed[2].clone())).await,
        failed_newest_first[1..]
    );
    assert_eq!(listed(DeliveryStatus::Pending, None).await.len(), 3);
    assert_eq!(listed(DeliveryStatus::Succeeded, None).await.len(), 3);
}

async fn find_answers_the_delivery_with_its_attempts_oldest_first(db: &Database) {
    let receiver = receiver(db, 21).await;
    let other = receiver_in(db, &receiver, 2_000).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let mut made = Vec::new();
    for (number, status, next) in [
        (1, Some(500), NextStep::RetryAt(UnixMillis(3_000))),
        (2, None, NextStep::RetryAt(UnixMillis(5_000))),
        (3, Some(200), NextStep::Succeeded),
    ] {
        let mut one = attempt(&delivery, number, i64::from(number) * 2_000, status);
        one.error = status.is_none().then(|| "timed out after 15s".to_owned());
        queue
            .record_attempt(&one, next, EndpointHealth::Healthy)
            .await
            .unwrap();
        made.push(one);
    }

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.id, delivery);
    assert_eq!(detail.delivery.attempt_count, 3);
    assert_eq!(detail.attempts, made);
    // Another webhook's view, and an unknown id, find nothing.
    assert_eq!(queue.find(&other.id, &delivery).await, Ok(None));
    assert_eq!(
        queue
            .find(&receiver.id, &ulid_id(DeliveryId::from_ulid))
            .await,
        Ok(None)
    );
}

async fn delivery_rows_that_no_longer_parse_are_corrupt(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 29).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);

    for sql in [
        "UPDATE deliveries SET status = 'lost'",
        "UPDATE deliveries SET status = 'pending', attempt_count = -1",
    ] {
        execute_raw(test_database.url(), sql);
        assert!(
            matches!(
                queue.list(&receiver.id, None, None, 10).await,
                Err(RepositoryError::Corrupt(_))
            ),
            "{sql}"
        );
        assert!(
            matches!(
                queue.find(&receiver.id, &delivery).await,
                Err(RepositoryError::Corrupt(_))
            ),
            "{sql}"
        );
    }
}

async fn requeue_makes_any_delivery_of_the_webhook_due_now(db: &Database) {
    let receiver = receiver(db, 22).await;
    let other = receiver_in(db, &receiver, 2_000).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    finish(&queue, &delivery, NextStep::Failed).await;

    assert_eq!(
        queue
            .requeue(&other.id, &delivery, UnixMillis(70_000))
            .await,
        Ok(Requeue::NotFound)
    );
    assert_eq!(
        queue
            .requeue(
                &receiver.id,
                &ulid_id(DeliveryId::from_ulid),
                UnixMillis(70_000)
            )
            .await,
        Ok(Requeue::NotFound)
    );
    assert_eq!(
        queue
            .requeue(&receiver.id, &delivery, UnixMillis(70_000))
            .await,
        Ok(Requeue::Requeued)
    );

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Pending);
    assert_eq!(detail.delivery.next_attempt_at, Some(UnixMillis(70_000)));
    assert_eq!(detail.delivery.updated_at, UnixMillis(70_000));
    let jobs = queue
        .claim_due(UnixMillis(70_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&jobs), vec![delivery]);
    // The numbering of attempts goes on.
    assert_eq!(jobs[0].attempts_made, 1);
}

async fn a_claimed_delivery_is_not_requeued_until_its_attempt_is_recorded(db: &Database) {
    let receiver = receiver(db, 25).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let claimed = queue
        .claim_due(UnixMillis(2_000), 10, UnixMillis(32_000), &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&claimed), vec![delivery.clone()]);

    assert_eq!(
        queue
            .requeue(&receiver.id, &delivery, UnixMillis(3_000))
            .await,
        Ok(Requeue::InFlight)
    );
    // Nothing changed: still hidden under the claim's lease.
    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Pending);
    assert_eq!(detail.delivery.next_attempt_at, Some(UnixMillis(32_000)));
    assert_eq!(
        queue
            .claim_due(UnixMillis(3_000), 10, LONG_LEASE, &[])
            .await,
        Ok(vec![])
    );

    // The attempt failed and a retry is scheduled for later: not in flight.
    queue
        .record_attempt(
            &attempt(&delivery, 1, 4_000, Some(500)),
            NextStep::RetryAt(UnixMillis(60_000)),
            EndpointHealth::Unchanged,
        )
        .await
        .unwrap();
    assert_eq!(
        queue
            .requeue(&receiver.id, &delivery, UnixMillis(5_000))
            .await,
        Ok(Requeue::Requeued)
    );
    let jobs = queue
        .claim_due(UnixMillis(5_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&jobs), vec![delivery]);
    assert_eq!(jobs[0].attempts_made, 1);
}

async fn a_delivery_is_requeued_once_its_lease_has_run_out_or_it_was_released(db: &Database) {
    let receiver = receiver(db, 26).await;
    let abandoned = deliver(db, &receiver, 1_000).await;
    let handed_back = deliver(db, &receiver, 1_001).await;
    let queue = queue(db);
    queue
        .claim_due(UnixMillis(2_000), 10, UnixMillis(32_000), &[])
        .await
        .unwrap();
    queue
        .release(&handed_back, UnixMillis(2_200))
        .await
        .unwrap();

    // Its worker died: at the end of the lease nobody holds it.
    assert_eq!(
        queue
            .requeue(&receiver.id, &abandoned, UnixMillis(31_999))
            .await,
        Ok(Requeue::InFlight)
    );
    assert_eq!(
        queue
            .requeue(&receiver.id, &abandoned, UnixMillis(32_000))
            .await,
        Ok(Requeue::Requeued)
    );
    // Handed back without an attempt (endpoint busy): nobody holds it.
    assert_eq!(
        queue
            .requeue(&receiver.id, &handed_back, UnixMillis(2_100))
            .await,
        Ok(Requeue::Requeued)
    );
}

async fn a_requeue_racing_a_claim_never_makes_the_claimed_delivery_due(db: &Database) {
    let receiver = receiver(db, 27).await;
    let queue = queue(db);
    let mut in_flight_seen = 0;
    for round in 0..20 {
        let now = UnixMillis(10_000 + round * 100);
        let delivery = deliver(db, &receiver, now.as_millis()).await;
        let claim = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.claim_due(now, 10, LONG_LEASE, &[]).await })
        };
        let requeue = {
            let (queue, webhook, delivery) = (queue.clone(), receiver.id.clone(), delivery.clone());
            tokio::spawn(async move { queue.requeue(&webhook, &delivery, now).await })
        };
        let claimed = claim.await.unwrap().unwrap();
        let requeued = requeue.await.unwrap().unwrap();
        if requeued == Requeue::InFlight {
            in_flight_seen += 1;
        }
        // Whichever came first, exactly one claim holds the delivery: the
        // racing one, or (PostgreSQL skips a row another statement is
        // updating) the next one. None may take it while that lease runs.
        let next = queue.claim_due(now, 10, LONG_LEASE, &[]).await.unwrap();
        let mut holders = job_ids(&claimed);
        holders.extend(job_ids(&next));
        assert_eq!(
            holders,
            vec![delivery.clone()],
            "round {round}: {requeued:?}"
        );
        assert_eq!(
            queue.claim_due(now, 10, LONG_LEASE, &[]).await,
            Ok(vec![]),
            "round {round}: {requeued:?}"
        );
        queue
            .record_attempt(
                &attempt(&delivery, 1, now.as_millis(), Some(200)),
                NextStep::Succeeded,
                EndpointHealth::Unchanged,
            )
            .await
            .unwrap();
    }
    eprintln!("requeue after the claim (refused) in {in_flight_seen} of 20 rounds");
}

async fn requeue_failed_since_requeues_the_failed_deliveries_created_since(db: &Database) {
    let receiver = receiver(db, 23).await;
    let other = receiver_in(db, &receiver, 2_000).await;
    let queue = queue(db);
    let failed_at = |at| {
        let queue = queue.clone();
        let webhook = receiver.clone();
        async move {
            let delivery = deliver(db, &webhook, at).await;
            finish(&queue, &delivery, NextStep::Failed).await;
            delivery
        }
    };
    let too_old = failed_at(4_999).await;
    let on_the_boundary = failed_at(5_000).await;
    let later = failed_at(8_000).await;
    let succeeded = deliver(db, &receiver, 6_000).await;
    finish(&queue, &succeeded, NextStep::Succeeded).await;
    let elsewhere = deliver(db, &other, 6_000).await;
    finish(&queue, &elsewhere, NextStep::Failed).await;

    assert_eq!(
        queue
            .requeue_failed_since(&receiver.id, UnixMillis(5_000), UnixMillis(90_000))
            .await,
        Ok(2)
    );

    let jobs = queue
        .claim_due(UnixMillis(90_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(
        job_ids(&jobs).into_iter().collect::<HashSet<_>>(),
        HashSet::from([on_the_boundary, later])
    );
    for untouched in [(&receiver, too_old), (&other, elsewhere)] {
        let detail = queue
            .find(&untouched.0.id, &untouched.1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.delivery.status, DeliveryStatus::Failed);
    }
    assert_eq!(
        queue
            .requeue_failed_since(&receiver.id, UnixMillis(5_000), UnixMillis(90_000))
            .await,
        Ok(0)
    );
}

async fn depth_counts_pending_deliveries_due_and_scheduled(db: &Database) {
    let receiver = receiver(db, 24).await;
    let queue = queue(db);
    assert_eq!(
        queue.depth(UnixMillis(5_000)).await,
        Ok(QueueDepth::default())
    );

    deliver(db, &receiver, 2_000).await;
    deliver(db, &receiver, 1_000).await;
    deliver(db, &receiver, 5_000).await;
    deliver(db, &receiver, 9_000).await;
    let done = deliver(db, &receiver, 500).await;
    finish(&queue, &done, NextStep::Succeeded).await;
    // Waiting for its webhook to be enabled again: no work for a claim.
    let mut sleeper = receiver_in(db, &receiver, 2_000).await;
    deliver(db, &sleeper, 100).await;
    sleeper.status = WebhookStatus::Disabled;
    webhooks(db).update(&sleeper, None).await.unwrap();

    assert_eq!(
        queue.depth(UnixMillis(5_000)).await,
        Ok(QueueDepth {
            due: 3,
            scheduled: 1,
            oldest_due_at: Some(UnixMillis(1_000)),
        })
    );
}

async fn deleting_a_webhook_deletes_its_deliveries_and_attempts(test_database: &TestDatabase) {
    let db = test_database.database();
    let doomed = receiver(db, 26).await;
    let kept = receiver_in(db, &doomed, 2_000).await;
    let outcome = events_store(db)
        .publish(&event(doomed.group_id, 1_000, None), UnixMillis(0))
        .await
        .unwrap();
    assert_eq!(outcome.deliveries, 2);
    let queue = queue(db);
    for receiver in [&doomed, &kept] {
        let delivery = queue.list(&receiver.id, None, None, 1).await.unwrap()[0]
            .id
            .clone();
        finish(&queue, &delivery, NextStep::Succeeded).await;
    }

    assert_eq!(
        webhooks(db).delete(doomed.group_id, &doomed.id).await,
        Ok(true)
    );

    assert_eq!(queue.list(&doomed.id, None, None, 10).await, Ok(vec![]));
    assert_eq!(queue.list(&kept.id, None, None, 10).await.unwrap().len(), 1);
    assert_eq!(test_database.row_counts().await.deliveries, 1);
    assert_eq!(test_database.row_counts().await.attempts, 1);
    // The event stays: it went to the other webhook too.
    assert_eq!(test_database.row_counts().await.events, 1);
}
