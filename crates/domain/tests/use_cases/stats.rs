//! [`DeliveryService::stats`] and [`DeliveryService::stats_window`]: a
//! webhook's stats over a window, behind the webhook's checks.

use std::time::Duration;

use mockall::predicate::eq;
use webhooks_domain::ports::MockDeliveryQueue;
use webhooks_domain::{
    AttemptDurations, DeliveryCounts, DeliveryService, DomainError, Field, Latency, Resource,
    StatsWindow, Wakeup, WebhookStats, WindowActivity,
};

use crate::support::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn last_day() -> StatsWindow {
    StatsWindow::new(now_minus(DAY), NOW).unwrap()
}

/// The stats of [`WEBHOOK_ID`] in group [`GROUP`] over [`last_day`], as the caller.
async fn last_day_stats(service: &DeliveryService) -> Result<WebhookStats, DomainError> {
    service
        .stats(&principal(), group_id(), &webhook_id(), last_day())
        .await
}

/// A queue whose `window_activity` of [`WEBHOOK_ID`] over [`last_day`] answers `activity`.
fn queue_reading(activity: WindowActivity) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_window_activity()
        .with(eq(webhook_id()), eq(last_day()))
        .times(1)
        .returning(move |_, _| Ok(activity.clone()));
    queue
}

#[tokio::test]
async fn stats_answer_counts_rate_latency_and_last_times_of_the_window() {
    let last_success_at = now_minus(Duration::from_secs(60));
    let last_failure_at = now_minus(Duration::from_secs(3600));
    let activity = WindowActivity {
        deliveries: DeliveryCounts {
            pending: 1,
            succeeded: 3,
            failed: 1,
        },
        durations: AttemptDurations::new(vec![(40, 3), (900, 1), (12, 2)]),
        last_success_at: Some(last_success_at),
        last_failure_at: Some(last_failure_at),
    };
    let service = Ports {
        queue: queue_reading(activity),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    let stats = last_day_stats(&service).await.unwrap();

    assert_eq!(stats.window, last_day());
    assert_eq!(stats.deliveries.total(), 5);
    assert_eq!(stats.success_rate, Some(0.75));
    assert_eq!(stats.attempts, 6);
    assert_eq!(stats.latency, Some(Latency { p50: 40, p99: 900 }));
    assert_eq!(stats.last_success_at, Some(last_success_at));
    assert_eq!(stats.last_failure_at, Some(last_failure_at));
}

#[tokio::test]
async fn stats_of_a_quiet_webhook_have_no_rate_latency_or_last_times() {
    let service = Ports {
        queue: queue_reading(WindowActivity::default()),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    let stats = last_day_stats(&service).await.unwrap();

    assert_eq!(stats.deliveries, DeliveryCounts::default());
    assert_eq!((stats.success_rate, stats.latency), (None, None));
    assert_eq!((stats.last_success_at, stats.last_failure_at), (None, None));
}

#[tokio::test]
async fn stats_of_unknown_webhook_is_webhook_not_found_without_reading_the_queue() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(None),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        last_day_stats(&service).await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn stats_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        last_day_stats(&service).await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn stats_when_the_queue_fails_is_unexpected() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_window_activity()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    let service = Ports {
        queue,
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(last_day_stats(&service).await, unexpected());
}

#[test]
fn the_default_window_is_the_24_hours_before_the_service_clock() {
    let service = Ports {
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_eq!(service.stats_window(None, None), Ok(last_day()));
}

#[test]
fn a_window_starting_after_the_service_clock_is_refused() {
    let service = Ports {
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    let since = Some(NOW.plus_millis(1));
    let err = service.stats_window(since, None).unwrap_err();
    assert_eq!(err.field(), Field::StatsWindow);
    assert_eq!(service.stats_window(None, Some(NOW)), Ok(last_day()));
}
