//! A webhook's activity over a stats window: which deliveries and attempts
//! count, on both backends.

use webhooks_adapters_diesel::Database;
use webhooks_domain::{
    Attempt, AttemptDurations, DeliveryCounts, DeliveryId, DeliveryQueue, EndpointHealth, NextStep,
    StatsWindow, UnixMillis, WindowActivity,
};

use super::{attempt, deliver, failing_since, RecordOne};
use crate::support::{queue, receiver, receiver_in};

on_both_backends!(
    activity_counts_the_deliveries_created_in_the_window_and_all_their_attempts,
    activity_of_a_window_without_deliveries_is_empty,
);

fn window(since: i64, until: i64) -> StatsWindow {
    StatsWindow::new(UnixMillis(since), UnixMillis(until)).unwrap()
}

/// An attempt that took `duration_ms`; `status` `None` is no answer.
fn timed(delivery: &DeliveryId, number: u32, at: i64, status: Option<u16>, ms: i64) -> Attempt {
    Attempt {
        duration_ms: ms,
        ..attempt(delivery, number, at, status)
    }
}

async fn activity_counts_the_deliveries_created_in_the_window_and_all_their_attempts(
    db: &Database,
) {
    let receiver = receiver(db, 31).await;
    let other = receiver_in(db, &receiver, 2_000).await;
    let queue = queue(db);
    let retry = NextStep::RetryAt(UnixMillis(50_000));
    // Outside the window (before `since`, at `until`, another webhook), each
    // with an attempt that would show if it counted.
    for (webhook, created) in [(&receiver, 9_999), (&receiver, 20_000), (&other, 15_000)] {
        let outside = deliver(db, webhook, created).await;
        let late = timed(&outside, 1, 40_000, Some(200), 7);
        queue
            .record_attempt(&late, NextStep::Succeeded, EndpointHealth::Healthy)
            .await
            .unwrap();
    }
    let succeeded = deliver(db, &receiver, 10_000).await;
    let failed = deliver(db, &receiver, 15_000).await;
    deliver(db, &receiver, 19_999).await;
    let steps = [
        (timed(&succeeded, 1, 11_000, Some(500), 100), retry),
        // After `until`: attempts count whenever they were made.
        (
            timed(&succeeded, 2, 30_000, Some(204), 30),
            NextStep::Succeeded,
        ),
        (timed(&failed, 1, 16_000, None, 5_000), NextStep::Failed),
    ];
    for (attempt, next) in steps {
        let health = match next {
            NextStep::Succeeded => EndpointHealth::Healthy,
            _ => failing_since(0),
        };
        queue.record_attempt(&attempt, next, health).await.unwrap();
    }

    let activity = queue
        .window_activity(&receiver.id, window(10_000, 20_000))
        .await
        .unwrap();

    assert_eq!(
        activity,
        WindowActivity {
            deliveries: DeliveryCounts {
                pending: 1,
                succeeded: 1,
                failed: 1,
            },
            durations: AttemptDurations::new(vec![(30, 1), (100, 1), (5_000, 1)]),
            last_success_at: Some(UnixMillis(30_000)),
            last_failure_at: Some(UnixMillis(16_000)),
        }
    );
}

async fn activity_of_a_window_without_deliveries_is_empty(db: &Database) {
    let receiver = receiver(db, 32).await;
    deliver(db, &receiver, 1_000).await;

    let activity = queue(db)
        .window_activity(&receiver.id, window(2_000, 3_000))
        .await
        .unwrap();

    assert_eq!(activity, WindowActivity::default());
}
