//! Recording attempts, alone and in batches, and what they do to the
//! webhook's health.

use webhooks_adapters_diesel::{Database, TestDatabase};
use webhooks_domain::{
    DeliveryQueue, DeliveryStatus, EndpointHealth, NextStep, UnixMillis, WebhookRepository,
    WebhookStatus,
};

use super::{
    attempt, count_status_changes, deliver, failing_since, job_ids, record, status_changes,
    status_of, RecordOne, LONG_LEASE,
};
use crate::support::{queue, receiver, receiver_in, webhooks, DeleteInProgress};

on_both_backends!(
    a_successful_attempt_ends_the_delivery,
    a_failed_attempt_with_a_retry_reschedules_the_delivery,
    a_final_failure_fails_the_delivery,
    a_failure_streak_disables_the_webhook_once_it_is_old_enough,
    a_success_ends_the_failure_streak,
    gone_disables_the_webhook_at_once,
    enabling_a_disabled_webhook_ends_its_failure_streak,
    recording_an_attempt_twice_keeps_the_first_and_applies_the_step,
    an_attempt_of_a_deleted_delivery_is_ignored,
    a_batch_records_each_delivery_of_several_webhooks,
    a_batch_applies_health_in_order,
    a_batch_with_an_attempt_twice_keeps_the_first_attempt_and_the_last_step,
);
on_both_backends!(test_database: a_batch_skips_deleted_deliveries_and_records_the_others);

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
    let told = count_status_changes(db);
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
    assert_eq!(status_changes(&told), 0, "no status change yet");
    // …and at or before 10 000: disabled, and told (a list cache forgets).
    fail(3, 30_000, 10_000).await;
    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Disabled);
    assert_eq!(status_changes(&told), 1);
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
        assert_eq!(webhooks(db).update(&receiver, None).await, Ok(true));
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

async fn a_batch_skips_deleted_deliveries_and_records_the_others(test_database: &TestDatabase) {
    let db = test_database.database();
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
    // Nothing was stored for the deleted delivery, not even unseen.
    assert_eq!(test_database.row_counts().await.attempts, 1);
}

/// A recorder whose update waits for a webhook's delete (which locks the
/// webhook's deliveries first) finds the delivery gone and stores no
/// attempt: no foreign key would stop an attempt outliving its delivery.
#[tokio::test]
async fn a_postgres_record_that_waits_for_a_webhook_delete_stores_no_attempt() {
    let test_database = TestDatabase::postgres().await;
    let db = test_database.database();
    let receiver = receiver(db, 20).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    // The delete, in another process, between its lock and its delete.
    let delete = DeleteInProgress::begin(
        &test_database,
        receiver.id.as_str(),
        &format!(
            "SELECT id FROM deliveries WHERE webhook_id = '{}' FOR UPDATE",
            receiver.id
        ),
    );
    let recording = tokio::spawn({
        let queue = queue(db);
        let record = record(
            attempt(&delivery, 1, 2_000, Some(200)),
            NextStep::Succeeded,
            EndpointHealth::Healthy,
        );
        async move { queue.record_attempts(&[record]).await }
    });
    delete.finish().await;

    assert_eq!(recording.await.unwrap(), Ok(()));
    assert_eq!(test_database.row_counts().await.attempts, 0);
}
