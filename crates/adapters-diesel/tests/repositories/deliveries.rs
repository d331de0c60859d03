//! The delivery queue and log: claims and leases, attempts and endpoint
//! health, rate slots, the log's pages and actions; and what the webhook
//! repository does to deliveries (secret rotation, deletion).

use std::collections::HashSet;

use webhooks_adapters_diesel::DieselDeliveryQueue;
use webhooks_domain::{
    Attempt, AttemptRecord, DeliveryId, DeliveryJob, DeliveryQueue, DeliveryStatus, EndpointHealth,
    EventStore, NextStep, QueueDepth, Requeue, Webhook,
};

use super::{
    count_rows, event, events_store, execute_raw, group, sealed_secret, stored, webhook, Database,
    DieselWebhookRepository, GroupId, RateLimit, RepositoryError, TestDatabase, UnixMillis,
    WebhookRepository, WebhookStatus,
};

on_both_backends!(
    claim_due_takes_only_due_deliveries_oldest_due_first,
    claim_due_takes_at_most_the_limit,
    a_claim_hides_its_deliveries_until_the_lease_ends,
    claim_due_carries_what_sending_needs,
    deliveries_of_disabled_webhooks_are_not_claimed,
    concurrent_claimers_never_share_a_delivery,
    a_successful_attempt_ends_the_delivery,
    a_failed_attempt_with_a_retry_reschedules_the_delivery,
    a_final_failure_fails_the_delivery,
    a_failure_streak_disables_the_webhook_once_it_is_old_enough,
    a_success_ends_the_failure_streak,
    gone_disables_the_webhook_at_once,
    recording_an_attempt_twice_keeps_the_first_and_applies_the_step,
    an_attempt_of_a_deleted_delivery_is_ignored,
    a_batch_records_each_delivery_of_several_webhooks,
    a_batch_applies_health_in_order,
    a_batch_with_an_attempt_twice_keeps_the_first_attempt_and_the_last_step,
    a_batch_skips_deleted_deliveries_and_records_the_others,
    release_makes_a_claimed_delivery_due_at_the_given_time,
    release_leaves_a_final_delivery_alone,
    a_claim_skips_the_excluded_webhooks,
    release_many_makes_claimed_deliveries_due_again,
    rate_slots_allow_n_per_second_and_start_over_the_next,
    concurrent_rate_slots_never_overbook_a_second,
    list_is_newest_first_and_pages_with_a_cursor,
    list_filters_by_status,
    find_answers_the_delivery_with_its_attempts_oldest_first,
    requeue_makes_any_delivery_of_the_webhook_due_now,
    a_claimed_delivery_is_not_requeued_until_its_attempt_is_recorded,
    a_delivery_is_requeued_once_its_lease_has_run_out_or_it_was_released,
    a_requeue_racing_a_claim_never_makes_the_claimed_delivery_due,
    requeue_failed_since_requeues_the_failed_deliveries_created_since,
    depth_counts_pending_deliveries_due_and_scheduled,
    rotate_secret_keeps_the_previous_secret_signing_until_it_expires,
    enabling_a_disabled_webhook_ends_its_failure_streak,
);

on_both_test_databases!(
    deleting_a_webhook_deletes_its_deliveries_and_attempts,
    a_claimed_row_that_no_longer_parses_does_not_block_the_others,
    delivery_rows_that_no_longer_parse_are_corrupt,
);

/// Far enough ahead that no test reaches it: claims that should stay hidden.
const LONG_LEASE: UnixMillis = UnixMillis(1_000_000_000);

// ---- claims ----------------------------------------------------------------

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
    assert_eq!(webhooks(db).update(&sleeper).await, Ok(true));
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

// ---- attempts and endpoint health ------------------------------------------

async fn a_successful_attempt_ends_the_delivery(db: &Database) {
    let receiver = receiver(db, 7).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    queue
        .claim_due(UnixMillis(1_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    let mut made = attempt(&delivery, 1, 2_000, Some(200));
    made.response_body = Some("merci ✓ — 受信".to_owned());

    queue
        .record_attempt(&made, NextStep::Succeeded, EndpointHealth::Healthy)
        .await
        .unwrap();

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(detail.delivery.attempt_count, 1);
    assert_eq!(detail.delivery.next_attempt_at, None);
    assert_eq!(detail.delivery.updated_at, UnixMillis(2_000));
    assert_eq!(detail.attempts, vec![made]);
    assert_eq!(
        queue.claim_due(LONG_LEASE, 10, LONG_LEASE, &[]).await,
        Ok(vec![])
    );
}

async fn a_failed_attempt_with_a_retry_reschedules_the_delivery(db: &Database) {
    let receiver = receiver(db, 8).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let mut made = attempt(&delivery, 1, 2_000, None);
    made.error = Some("connection refused".to_owned());

    queue
        .record_attempt(
            &made,
            NextStep::RetryAt(UnixMillis(7_000)),
            failing_since(0),
        )
        .await
        .unwrap();

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Pending);
    assert_eq!(detail.delivery.attempt_count, 1);
    assert_eq!(detail.delivery.next_attempt_at, Some(UnixMillis(7_000)));
    assert_eq!(detail.attempts, vec![made]);
    assert_eq!(
        queue
            .claim_due(UnixMillis(6_999), 10, LONG_LEASE, &[])
            .await,
        Ok(vec![])
    );
    let retried = queue
        .claim_due(UnixMillis(7_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&retried), vec![delivery]);
    assert_eq!(retried[0].attempts_made, 1);
}

async fn a_final_failure_fails_the_delivery(db: &Database) {
    let receiver = receiver(db, 9).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);

    queue
        .record_attempt(
            &attempt(&delivery, 1, 2_000, Some(500)),
            NextStep::Failed,
            failing_since(0),
        )
        .await
        .unwrap();

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Failed);
    assert_eq!(detail.delivery.next_attempt_at, None);
    assert_eq!(
        queue.claim_due(LONG_LEASE, 10, LONG_LEASE, &[]).await,
        Ok(vec![])
    );
}

async fn a_failure_streak_disables_the_webhook_once_it_is_old_enough(db: &Database) {
    let receiver = receiver(db, 10).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let fail = |number, at, disable_if_failing_since| {
        let queue = queue.clone();
        let made = attempt(&delivery, number, at, Some(503));
        async move {
            queue
                .record_attempt(
                    &made,
                    NextStep::RetryAt(UnixMillis(at + 1_000)),
                    failing_since(disable_if_failing_since),
                )
                .await
                .unwrap();
        }
    };

    // The streak starts at the first failure, 10 000…
    fail(1, 10_000, 0).await;
    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Enabled);
    // …which is after 9 999: not old enough yet…
    fail(2, 20_000, 9_999).await;
    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Enabled);
    // …and at or before 10 000: disabled.
    fail(3, 30_000, 10_000).await;
    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Disabled);
}

async fn a_success_ends_the_failure_streak(db: &Database) {
    let receiver = receiver(db, 11).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let retry = NextStep::RetryAt(UnixMillis(1_000));

    queue
        .record_attempt(
            &attempt(&delivery, 1, 10_000, None),
            retry,
            failing_since(0),
        )
        .await
        .unwrap();
    queue
        .record_attempt(
            &attempt(&delivery, 2, 20_000, Some(204)),
            NextStep::Succeeded,
            EndpointHealth::Healthy,
        )
        .await
        .unwrap();
    // Had the streak of 10 000 run on, this would disable the webhook.
    queue
        .record_attempt(
            &attempt(&delivery, 3, 30_000, None),
            retry,
            failing_since(25_000),
        )
        .await
        .unwrap();

    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Enabled);
}

async fn gone_disables_the_webhook_at_once(db: &Database) {
    let receiver = receiver(db, 12).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);

    queue
        .record_attempt(
            &attempt(&delivery, 1, 2_000, Some(410)),
            NextStep::Failed,
            EndpointHealth::Gone,
        )
        .await
        .unwrap();

    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Disabled);
    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Failed);
}

async fn recording_an_attempt_twice_keeps_the_first_and_applies_the_step(db: &Database) {
    let receiver = receiver(db, 13).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let first = attempt(&delivery, 1, 2_000, Some(500));
    queue
        .record_attempt(
            &first,
            NextStep::RetryAt(UnixMillis(7_000)),
            failing_since(0),
        )
        .await
        .unwrap();

    // A lease ran out mid-send and another worker sent attempt 1 again.
    let duplicate = attempt(&delivery, 1, 40_000, Some(200));
    assert_eq!(
        queue
            .record_attempt(&duplicate, NextStep::Succeeded, EndpointHealth::Healthy)
            .await,
        Ok(())
    );

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.attempts, vec![first]);
    assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(detail.delivery.attempt_count, 1);
}

async fn an_attempt_of_a_deleted_delivery_is_ignored(db: &Database) {
    let receiver = receiver(db, 14).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    assert_eq!(
        webhooks(db).delete(receiver.group_id, &receiver.id).await,
        Ok(true)
    );

    let recorded = queue(db)
        .record_attempt(
            &attempt(&delivery, 1, 2_000, Some(200)),
            NextStep::Succeeded,
            EndpointHealth::Healthy,
        )
        .await;

    assert_eq!(recorded, Ok(()));
}

// ---- release and rate slots ------------------------------------------------

async fn a_batch_records_each_delivery_of_several_webhooks(db: &Database) {
    let first = receiver(db, 15).await;
    let second = receiver_in(db, &first, 2_000).await;
    let succeeds = deliver(db, &first, 1_000).await;
    let retries = deliver(db, &second, 1_000).await;
    let fails = deliver(db, &first, 1_000).await;
    let queue = queue(db);
    let claimed = queue
        .claim_due(UnixMillis(1_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let batch = vec![
        record(
            attempt(&succeeds, 1, 2_000, Some(200)),
            NextStep::Succeeded,
            EndpointHealth::Healthy,
        ),
        record(
            attempt(&retries, 1, 2_100, Some(503)),
            NextStep::RetryAt(UnixMillis(9_000)),
            failing_since(0),
        ),
        record(
            attempt(&fails, 4, 2_200, Some(500)),
            NextStep::Failed,
            failing_since(0),
        ),
    ];

    assert_eq!(queue.record_attempts(&batch).await, Ok(()));

    let succeeded = queue.find(&first.id, &succeeds).await.unwrap().unwrap();
    assert_eq!(succeeded.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(succeeded.delivery.next_attempt_at, None);
    assert_eq!(succeeded.delivery.updated_at, UnixMillis(2_000));
    assert_eq!(succeeded.attempts, vec![batch[0].attempt.clone()]);
    let retrying = queue.find(&second.id, &retries).await.unwrap().unwrap();
    assert_eq!(retrying.delivery.status, DeliveryStatus::Pending);
    assert_eq!(retrying.delivery.attempt_count, 1);
    assert_eq!(retrying.delivery.next_attempt_at, Some(UnixMillis(9_000)));
    assert_eq!(retrying.attempts, vec![batch[1].attempt.clone()]);
    let failed = queue.find(&first.id, &fails).await.unwrap().unwrap();
    assert_eq!(failed.delivery.status, DeliveryStatus::Failed);
    assert_eq!(failed.delivery.attempt_count, 4);
    assert_eq!(failed.attempts, vec![batch[2].attempt.clone()]);
    // Only the rescheduled one comes back, when it is due.
    let due = queue
        .claim_due(UnixMillis(9_000), 10, LONG_LEASE, &[])
        .await
        .unwrap();
    assert_eq!(job_ids(&due), vec![retries]);
}

async fn a_batch_applies_health_in_order(db: &Database) {
    let recovered = receiver(db, 16).await;
    let relapsed = receiver_in(db, &recovered, 2_000).await;
    let queue = queue(db);
    let one = deliver(db, &recovered, 1_000).await;
    let two = deliver(db, &recovered, 1_000).await;
    let three = deliver(db, &relapsed, 1_000).await;
    let four = deliver(db, &relapsed, 1_000).await;
    let retry = NextStep::RetryAt(UnixMillis(1_000));

    // `recovered` fails then succeeds; `relapsed` succeeds then fails at 10 000.
    queue
        .record_attempts(&[
            record(attempt(&one, 1, 10_000, Some(500)), retry, failing_since(0)),
            record(
                attempt(&three, 1, 10_000, Some(200)),
                NextStep::Succeeded,
                EndpointHealth::Healthy,
            ),
            record(
                attempt(&two, 1, 10_001, Some(200)),
                NextStep::Succeeded,
                EndpointHealth::Healthy,
            ),
            record(
                attempt(&four, 1, 10_001, Some(500)),
                retry,
                failing_since(0),
            ),
        ])
        .await
        .unwrap();
    // A failure at 30 000 disables a webhook whose streak began by 10 001.
    queue
        .record_attempts(&[
            record(
                attempt(&one, 2, 30_000, Some(500)),
                retry,
                failing_since(10_001),
            ),
            record(
                attempt(&four, 2, 30_000, Some(500)),
                retry,
                failing_since(10_001),
            ),
        ])
        .await
        .unwrap();

    assert_eq!(status_of(db, &recovered).await, WebhookStatus::Enabled);
    assert_eq!(status_of(db, &relapsed).await, WebhookStatus::Disabled);
}

async fn a_batch_with_an_attempt_twice_keeps_the_first_attempt_and_the_last_step(db: &Database) {
    let receiver = receiver(db, 17).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let first = attempt(&delivery, 1, 2_000, Some(500));
    // A lease ran out mid-send and another worker sent attempt 1 again.
    let again = attempt(&delivery, 1, 2_500, Some(200));

    queue
        .record_attempts(&[
            record(
                first.clone(),
                NextStep::RetryAt(UnixMillis(7_000)),
                failing_since(0),
            ),
            record(again, NextStep::Succeeded, EndpointHealth::Healthy),
        ])
        .await
        .unwrap();

    let detail = queue.find(&receiver.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.attempts, vec![first]);
    assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(detail.delivery.updated_at, UnixMillis(2_500));
}

async fn a_batch_skips_deleted_deliveries_and_records_the_others(db: &Database) {
    let kept = receiver(db, 18).await;
    let deleted = receiver(db, 19).await;
    let stays = deliver(db, &kept, 1_000).await;
    let gone = deliver(db, &deleted, 1_000).await;
    assert_eq!(
        webhooks(db).delete(deleted.group_id, &deleted.id).await,
        Ok(true)
    );

    let recorded = queue(db)
        .record_attempts(&[
            record(
                attempt(&gone, 1, 2_000, Some(200)),
                NextStep::Succeeded,
                EndpointHealth::Healthy,
            ),
            record(
                attempt(&stays, 1, 2_000, Some(200)),
                NextStep::Succeeded,
                EndpointHealth::Healthy,
            ),
        ])
        .await;

    assert_eq!(recorded, Ok(()));
    let detail = queue(db).find(&kept.id, &stays).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(detail.attempts.len(), 1);
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

// ---- the delivery log ------------------------------------------------------

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
            .find(&receiver.id, &DeliveryId::from_ulid(ulid::Ulid::new()))
            .await,
        Ok(None)
    );
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
                &DeliveryId::from_ulid(ulid::Ulid::new()),
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
    webhooks(db).update(&sleeper).await.unwrap();

    assert_eq!(
        queue.depth(UnixMillis(5_000)).await,
        Ok(QueueDepth {
            due: 3,
            scheduled: 1,
            oldest_due_at: Some(UnixMillis(1_000)),
        })
    );
}

// ---- what the webhook repository does to deliveries ------------------------

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
                &webhooks_domain::WebhookId::from_ulid(ulid::Ulid::new()),
                &sealed_secret(),
                UnixMillis(50_000)
            )
            .await,
        Ok(false)
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
    assert_eq!(count_rows(test_database.url(), "deliveries"), 1);
    assert_eq!(count_rows(test_database.url(), "attempts"), 1);
    // The event stays: it went to the other webhook too.
    assert_eq!(count_rows(test_database.url(), "events"), 1);
}

async fn enabling_a_disabled_webhook_ends_its_failure_streak(db: &Database) {
    let mut receiver = receiver(db, 27).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let retry = NextStep::RetryAt(UnixMillis(1_000));
    queue
        .record_attempt(
            &attempt(&delivery, 1, 10_000, None),
            retry,
            failing_since(0),
        )
        .await
        .unwrap();

    // The owner pauses the endpoint, fixes it, and enables it again.
    for status in [WebhookStatus::Disabled, WebhookStatus::Enabled] {
        receiver.status = status;
        assert_eq!(webhooks(db).update(&receiver).await, Ok(true));
    }
    // A streak still running since 10 000 would disable the webhook here.
    queue
        .record_attempt(
            &attempt(&delivery, 2, 30_000, None),
            retry,
            failing_since(25_000),
        )
        .await
        .unwrap();

    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Enabled);
}

// ---- helpers ---------------------------------------------------------------

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

fn queue(db: &Database) -> DieselDeliveryQueue {
    DieselDeliveryQueue::new(db.clone())
}

fn webhooks(db: &Database) -> DieselWebhookRepository {
    DieselWebhookRepository::new(db.clone())
}

/// A group with one enabled webhook that receives every event.
async fn receiver(db: &Database, group_id: i64) -> Webhook {
    let group = group(db, group_id).await;
    stored(db, vec![webhook(&group, 1_000)]).await.remove(0)
}

/// Another enabled webhook of the same group.
async fn receiver_in(db: &Database, sibling: &Webhook, created_at: i64) -> Webhook {
    let webhook = Webhook {
        id: webhooks_domain::WebhookId::from_ulid(ulid::Ulid::new()),
        secret: sealed_secret(),
        created_at: UnixMillis(created_at),
        updated_at: UnixMillis(created_at),
        ..sibling.clone()
    };
    stored(db, vec![webhook]).await.remove(0)
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
