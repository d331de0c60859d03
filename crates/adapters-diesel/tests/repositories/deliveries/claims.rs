//! Claims and their leases, releases, rate slots.

use std::collections::HashSet;

use webhooks_adapters_diesel::{Database, TestDatabase};
use webhooks_domain::{
    DeliveryJob, DeliveryQueue, DeliveryStatus, EndpointHealth, EventStore, GroupId, NextStep,
    RateLimit, UnixMillis, WebhookId, WebhookRepository, WebhookStatus,
};

use super::{attempt, deliver, job_ids, RecordOne, LONG_LEASE};
use crate::support::{
    event, events_store, execute_raw, group, queue, receiver, receiver_in, sealed_headers,
    sealed_secret, stored, ulid_id, webhook, webhooks,
};

on_both_backends!(
    claim_due_takes_only_due_deliveries_oldest_due_first,
    claim_due_takes_at_most_the_limit,
    a_claim_hides_its_deliveries_until_the_lease_ends,
    claim_due_carries_what_sending_needs,
    deliveries_of_disabled_webhooks_are_not_claimed,
    concurrent_claimers_never_share_a_delivery,
    a_claim_skips_the_excluded_webhooks,
    rotate_secret_keeps_the_previous_secret_signing_until_it_expires,
    release_makes_a_claimed_delivery_due_at_the_given_time,
    release_leaves_a_final_delivery_alone,
    release_many_makes_claimed_deliveries_due_again,
    rate_slots_allow_n_per_second_and_start_over_the_next,
    concurrent_rate_slots_never_overbook_a_second,
);

on_both_backends!(test_database:
    a_claimed_row_that_no_longer_parses_does_not_block_the_others,
);

async fn claim_due_takes_only_due_deliveries_oldest_due_first(db: &Database) {
    let receiver = receiver(db, 1).await;
    let third = deliver(db, &receiver, 3_000).await;
    let first = deliver(db, &receiver, 1_000).await;
    let second = deliver(db, &receiver, 2_000).await;
    let _later = deliver(db, &receiver, 9_000).await;

    let jobs = queue(db)
        .claim_due(UnixMillis(5_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();

    assert_eq!(job_ids(&jobs), vec![first, second, third]);
}

async fn claim_due_takes_at_most_the_limit(db: &Database) {
    let receiver = receiver(db, 2).await;
    let mut due = Vec::new();
    for at in 1..=5 {
        due.push(deliver(db, &receiver, at * 1_000).await);
    }
    let queue = queue(db);
    let claim = || queue.claim_due(UnixMillis(10_000), 2, LONG_LEASE, &[]);

    assert_eq!(job_ids(&claim().await.unwrap()), due[0..2]);
    assert_eq!(job_ids(&claim().await.unwrap()), due[2..4]);
    assert_eq!(job_ids(&claim().await.unwrap()), due[4..5]);
    assert_eq!(claim().await, Ok(vec![]));
    assert_eq!(
        queue
            .claim_due(UnixMillis(10_000), 0, LONG_LEASE, &[])
            .await,
        Ok(vec![])
    );
}

async fn a_claim_hides_its_deliveries_until_the_lease_ends(db: &Database) {
    let receiver = receiver(db, 3).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);

    let claimed = queue
        .claim_due(UnixMillis(2_000), 10, UnixMillis(32_000), &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&claimed), vec![delivery.clone()]);
    assert_eq!(
        queue
            .claim_due(UnixMillis(31_999), 10, UnixMillis(61_999), &[])
            .await,
        Ok(vec![])
    );

    // The worker died: once the lease ends, the delivery is due again.
    let again = queue
        .claim_due(UnixMillis(32_000), 10, UnixMillis(62_000), &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&again), vec![delivery]);
    assert_eq!(again[0].attempts_made, 0);
}

async fn claim_due_carries_what_sending_needs(db: &Database) {
    let group = group(db, 4).await;
    let mut receiver = webhook(&group, 1_000);
    receiver.rate_limit = Some(RateLimit::new(5).unwrap());
    receiver.headers = Some(sealed_headers());
    stored(db, vec![receiver.clone()]).await;
    let published = event(group.id, 1_500, None);
    let delivery = events_store(db)
        .publish_to(&published, &receiver.id)
        .await
        .unwrap();

    let jobs = queue(db)
        .claim_due(UnixMillis(2_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();

    assert_eq!(
        jobs,
        vec![DeliveryJob {
            delivery_id: delivery,
            event_id: published.id,
            attempts_made: 0,
            payload: published.payload,
            webhook_id: receiver.id,
            url: receiver.url.as_str().to_owned(),
            secret: receiver.secret,
            previous_secret: None,
            rate_limit: receiver.rate_limit,
            headers: receiver.headers,
            ordering: None,
            created_at: UnixMillis(1_500),
        }]
    );
}

async fn deliveries_of_disabled_webhooks_are_not_claimed(db: &Database) {
    let group = group(db, 5).await;
    let mut sleeper = webhook(&group, 1_000);
    sleeper.status = WebhookStatus::Disabled;
    stored(db, vec![sleeper.clone()]).await;
    let delivery = deliver(db, &sleeper, 1_000).await;
    let queue = queue(db);

    assert_eq!(
        queue
            .claim_due(UnixMillis(2_000), 10, LONG_LEASE, &[])
            .await,
        Ok(vec![])
    );

    sleeper.status = WebhookStatus::Enabled;
    assert_eq!(webhooks(db).update(&sleeper, None).await, Ok(true));
    let jobs = queue
        .claim_due(UnixMillis(2_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&jobs), vec![delivery]);
}

async fn concurrent_claimers_never_share_a_delivery(db: &Database) {
    let group = group(db, 6).await;
    let receivers = stored(db, (0..4).map(|n| webhook(&group, 1_000 + n)).collect()).await;
    let store = events_store(db);
    for n in 0..50 {
        let outcome = store
            .publish(&event(group.id, 1_000 + n, None), UnixMillis(0))
            .await
            .unwrap();
        assert_eq!(outcome.deliveries, 4);
    }
    assert_eq!(receivers.len(), 4);

    let mut claimers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let queue = queue(db);
        claimers.spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let jobs = queue
                    .claim_due(UnixMillis(5_000), 7, LONG_LEASE, &[])
                    .await
                    .unwrap();
                if jobs.is_empty() {
                    return claimed;
                }
                claimed.extend(job_ids(&jobs));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(claimed) = claimers.join_next().await {
        all.extend(claimed.unwrap());
    }

    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(
        all.len(),
        200,
        "claimed twice: {}",
        all.len() - distinct.len()
    );
    assert_eq!(distinct.len(), 200);
}

async fn a_claimed_row_that_no_longer_parses_does_not_block_the_others(
    test_database: &TestDatabase,
) {
    let db = test_database.database();
    let broken = receiver(db, 28).await;
    let healthy = receiver_in(db, &broken, 2_000).await;
    // The broken webhook's delivery is due first: it would head every claim.
    deliver(db, &broken, 1_000).await;
    let fine = deliver(db, &healthy, 2_000).await;
    execute_raw(
        test_database.url(),
        &format!(
            "UPDATE webhooks SET rate_limit = 0 WHERE id = '{}'",
            broken.id
        ),
    );
    let queue = queue(db);

    let jobs = queue
        .claim_due(UnixMillis(5_000), 1, UnixMillis(60_000), &[])
        .await
        .unwrap();
    assert_eq!(jobs, vec![]);
    let jobs = queue
        .claim_due(UnixMillis(5_000), 1, UnixMillis(60_000), &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&jobs), vec![fine]);
}

async fn a_claim_skips_the_excluded_webhooks(db: &Database) {
    let busy = receiver(db, 41).await;
    let other = receiver_in(db, &busy, 2_000).await;
    let busy_delivery = deliver(db, &busy, 1_000).await;
    let other_delivery = deliver(db, &other, 1_000).await;
    let queue = queue(db);

    let jobs = queue
        .claim_due(
            UnixMillis(1_000),
            10,
            LONG_LEASE,
            std::slice::from_ref(&busy.id),
        )
        .await
        .unwrap();
    assert_eq!(job_ids(&jobs), vec![other_delivery]);
    let jobs = queue
        .claim_due(UnixMillis(1_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&jobs), vec![busy_delivery]);
}

async fn rotate_secret_keeps_the_previous_secret_signing_until_it_expires(db: &Database) {
    let receiver = receiver(db, 25).await;
    let repository = webhooks(db);
    let replacement = sealed_secret();

    assert_eq!(
        repository
            .rotate_secret(
                receiver.group_id,
                &receiver.id,
                &replacement,
                UnixMillis(50_000)
            )
            .await,
        Ok(true)
    );

    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let during_grace = queue
        .claim_due(UnixMillis(20_000), 10, UnixMillis(50_000), &[])
        .await
        .unwrap();
    assert_eq!(during_grace[0].secret, replacement);
    assert_eq!(
        during_grace[0].previous_secret,
        Some(receiver.secret.clone())
    );

    queue.release(&delivery, UnixMillis(50_000)).await.unwrap();
    let after_grace = queue
        .claim_due(UnixMillis(50_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(after_grace[0].secret, replacement);
    assert_eq!(after_grace[0].previous_secret, None);

    // Another group, or an unknown id: nothing to rotate.
    assert_eq!(
        repository
            .rotate_secret(
                GroupId::new(999).unwrap(),
                &receiver.id,
                &sealed_secret(),
                UnixMillis(50_000)
            )
            .await,
        Ok(false)
    );
    assert_eq!(
        repository
            .rotate_secret(
                receiver.group_id,
                &ulid_id(WebhookId::from_ulid),
                &sealed_secret(),
                UnixMillis(50_000)
            )
            .await,
        Ok(false)
    );
}

async fn release_makes_a_claimed_delivery_due_at_the_given_time(db: &Database) {
    let receiver = receiver(db, 15).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    queue
        .claim_due(UnixMillis(1_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();

    queue.release(&delivery, UnixMillis(5_000)).await.unwrap();

    assert_eq!(
        queue
            .claim_due(UnixMillis(4_999), 10, LONG_LEASE, &[])
            .await,
        Ok(vec![])
    );
    let jobs = queue
        .claim_due(UnixMillis(5_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&jobs), vec![delivery.clone()]);
    // Releasing counts no attempt.
    assert_eq!(jobs[0].attempts_made, 0);
}

async fn release_leaves_a_final_delivery_alone(db: &Database) {
    let receiver = receiver(db, 16).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    queue
        .record_attempt(
            &attempt(&delivery, 1, 2_000, Some(200)),
            NextStep::Succeeded,
            EndpointHealth::Healthy,
        )
        .await
        .unwrap();

    queue.release(&delivery, UnixMillis(5_000)).await.unwrap();

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(detail.delivery.next_attempt_at, None);
}

async fn release_many_makes_claimed_deliveries_due_again(db: &Database) {
    let receiver = receiver(db, 42).await;
    let first = deliver(db, &receiver, 1_000).await;
    let second = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    queue
        .claim_due(UnixMillis(1_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();

    queue
        .release_many(&[first.clone(), second.clone()], UnixMillis(3_000))
        .await
        .unwrap();
    queue.release_many(&[], UnixMillis(3_000)).await.unwrap();

    assert_eq!(
        queue
            .claim_due(UnixMillis(2_999), 10, LONG_LEASE, &[])
            .await,
        Ok(vec![])
    );
    let jobs = queue
        .claim_due(UnixMillis(3_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    let mut ids = job_ids(&jobs);
    ids.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(ids, expected);
}

async fn rate_slots_allow_n_per_second_and_start_over_the_next(db: &Database) {
    let receiver = receiver(db, 17).await;
    let other = receiver_in(db, &receiver, 2_000).await;
    let queue = queue(db);
    let mut taken = Vec::new();
    for second in [100, 100, 100, 100, 101, 101, 101, 101] {
        taken.push(queue.take_rate_slot(&receiver.id, second, 3).await.unwrap());
    }
    assert_eq!(taken, [true, true, true, false, true, true, true, false]);
    // Each webhook has its own windows.
    assert_eq!(queue.take_rate_slot(&other.id, 101, 1).await, Ok(true));
    assert_eq!(queue.take_rate_slot(&other.id, 101, 1).await, Ok(false));
}

async fn concurrent_rate_slots_never_overbook_a_second(db: &Database) {
    let receiver = receiver(db, 18).await;
    let mut takers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let queue = queue(db);
        let webhook = receiver.id.clone();
        takers.spawn(async move { queue.take_rate_slot(&webhook, 100, 5).await.unwrap() });
    }
    let mut granted = 0;
    while let Some(taken) = takers.join_next().await {
        granted += usize::from(taken.unwrap());
    }
    assert_eq!(granted, 5);
}

/// A backlog stored after PostgreSQL last analyzed the queue (a burst of
/// publishes, faster than autovacuum) is claimed through the index of
/// pending deliveries in due order, stopping at the limit: not by reading
/// every pending delivery of the webhook and sorting them, which made each
/// claim cost as much as the backlog (docs/benchmarks.md, round 3).
#[tokio::test]
async fn a_postgres_claim_reads_a_backlog_in_due_order_whatever_the_statistics_say() {
    let test_database = TestDatabase::postgres().await;
    let db = test_database.database();
    let receiver = receiver(db, 1).await;
    execute_raw(test_database.url(), "ANALYZE");
    execute_raw(
        test_database.url(),
        "INSERT INTO events (id, group_id, event_type, payload, created_at) \
         SELECT 'evt_backlog' || n, 1, 'user.created', '{}', n FROM generate_series(1, 5000) n",
    );
    execute_raw(
        test_database.url(),
        &format!(
            "INSERT INTO deliveries (id, event_id, webhook_id, group_id, status, attempt_count, \
               next_attempt_at, created_at, updated_at) \
             SELECT 'dlv_backlog' || n, 'evt_backlog' || n, '{}', 1, 'pending', 0, n, n, n \
             FROM generate_series(1, 5000) n",
            receiver.id.as_str()
        ),
    );

    let plan = test_database
        .explain_claim(UnixMillis(10_000), 32)
        .await
        .expect("a PostgreSQL plan");

    assert!(
        plan.contains("Index Scan using deliveries_pending_due on deliveries d"),
        "{plan}"
    );
    assert!(!plan.contains("Sort Key: d.next_attempt_at"), "{plan}");
    assert!(!plan.contains("Bitmap"), "{plan}");
    // The plan kept for every claim: made without the values.
    assert!(plan.contains("next_attempt_at <= $1"), "{plan}");
}
