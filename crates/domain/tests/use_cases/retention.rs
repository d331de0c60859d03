//! Retention: what is old, and how the pruning is paced.

use std::sync::Arc;
use std::time::Duration;

use mockall::predicate::eq;
use tokio::sync::watch;
use webhooks_domain::ports::{MockClock, MockRetentionStore};
use webhooks_domain::{
    PruneReport, PrunedDeliveries, PrunedEvents, Pruner, RetentionPolicy, UnixMillis,
};

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
const DAY: i64 = 24 * 3600 * 1000;

fn pruner(store: MockRetentionStore, policy: RetentionPolicy) -> Pruner {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(NOW);
    Pruner::new(Arc::new(store), Arc::new(clock), policy)
}

fn policy(deliveries_days: Option<u64>, events_days: Option<u64>) -> RetentionPolicy {
    let days = |n: u64| Duration::from_secs(n * 24 * 3600);
    RetentionPolicy {
        deliveries: deliveries_days.map(days),
        events: events_days.map(days),
        rows_per_chunk: 10,
        pause: Duration::from_millis(1),
        ..RetentionPolicy::default()
    }
}

fn running() -> watch::Receiver<bool> {
    watch::channel(false).1
}

#[tokio::test]
async fn deliveries_that_finished_before_the_retention_go_chunk_by_chunk_until_a_short_chunk() {
    let mut store = MockRetentionStore::new();
    let mut sizes = vec![10, 10, 3].into_iter();
    store
        .expect_prune_finished_deliveries()
        .with(eq(NOW.plus_millis(-30 * DAY)), eq(None), eq(10))
        .times(3)
        .returning(move |_, _, _| {
            let deliveries = sizes.next().unwrap();
            Ok(PrunedDeliveries {
                deliveries,
                attempts: deliveries * 2,
                events: 0,
            })
        });
    let report = pruner(store, policy(Some(30), None))
        .prune(&running())
        .await
        .unwrap();
    assert_eq!(
        report,
        PruneReport {
            deliveries: 23,
            attempts: 46,
            events: 0
        }
    );
}

#[tokio::test]
async fn events_go_after_the_deliveries_once_older_than_their_retention() {
    let mut store = MockRetentionStore::new();
    let mut sequence = mockall::Sequence::new();
    store
        .expect_prune_finished_deliveries()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, _| Ok(PrunedDeliveries::default()));
    store
        .expect_prune_events()
        .with(eq(NOW.plus_millis(-7 * DAY)), eq(10))
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _| {
            Ok(PrunedEvents {
                checked: 6,
                deleted: 4,
            })
        });
    let report = pruner(store, policy(Some(30), Some(7)))
        .prune(&running())
        .await
        .unwrap();
    assert_eq!(report.events, 4);
}

#[tokio::test]
async fn the_deliveries_take_their_old_events_with_them() {
    let mut store = MockRetentionStore::new();
    let mut sizes = vec![10, 2].into_iter();
    store
        .expect_prune_finished_deliveries()
        .with(
            eq(NOW.plus_millis(-30 * DAY)),
            eq(Some(NOW.plus_millis(-7 * DAY))),
            eq(10),
        )
        .times(2)
        .returning(move |_, _, _| {
            let deliveries = sizes.next().unwrap();
            Ok(PrunedDeliveries {
                deliveries,
                attempts: deliveries,
                events: deliveries / 2,
            })
        });
    store
        .expect_prune_events()
        .times(1)
        .returning(|_, _| Ok(PrunedEvents::default()));
    let report = pruner(store, policy(Some(30), Some(7)))
        .prune(&running())
        .await
        .unwrap();
    assert_eq!(report.events, 6);
}

#[tokio::test]
async fn events_are_looked_at_chunk_by_chunk_until_a_short_chunk_even_when_none_goes() {
    let mut store = MockRetentionStore::new();
    let mut checked = vec![10, 10, 4].into_iter();
    store.expect_prune_events().times(3).returning(move |_, _| {
        Ok(PrunedEvents {
            checked: checked.next().unwrap(),
            deleted: 1,
        })
    });
    let report = pruner(store, policy(None, Some(7)))
        .prune(&running())
        .await
        .unwrap();
    assert_eq!(report.events, 3);
}

#[tokio::test]
async fn events_are_kept_at_least_the_idempotency_window() {
    let mut store = MockRetentionStore::new();
    store
        .expect_prune_events()
        .with(eq(NOW.plus_millis(-DAY)), eq(10))
        .times(1)
        .returning(|_, _| Ok(PrunedEvents::default()));
    let mut short = policy(None, None);
    short.events = Some(Duration::from_secs(60));
    pruner(store, short).prune(&running()).await.unwrap();
}

#[tokio::test]
async fn a_retention_that_is_off_prunes_nothing() {
    // No expectation: any call to the store fails the test.
    let store = MockRetentionStore::new();
    let report = pruner(store, policy(None, None))
        .prune(&running())
        .await
        .unwrap();
    assert_eq!(report, PruneReport::default());
}

#[tokio::test]
async fn a_shutdown_stops_the_pass_after_the_current_chunk() {
    let mut store = MockRetentionStore::new();
    store
        .expect_prune_finished_deliveries()
        .times(1)
        .returning(|_, _, _| {
            Ok(PrunedDeliveries {
                deliveries: 10,
                attempts: 10,
                events: 0,
            })
        });
    let (stop, shutdown) = watch::channel(false);
    stop.send(true).unwrap();
    let report = pruner(store, policy(Some(30), None))
        .prune(&shutdown)
        .await
        .unwrap();
    assert_eq!(report.deliveries, 10);
}

#[tokio::test]
async fn a_failing_store_fails_the_pass() {
    let mut store = MockRetentionStore::new();
    store
        .expect_prune_finished_deliveries()
        .returning(|_, _, _| Err(webhooks_domain::RepositoryError::Unavailable("down".into())));
    let result = pruner(store, policy(Some(30), Some(1)))
        .prune(&running())
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn the_task_runs_a_pass_at_start_and_stops_on_shutdown() {
    let mut store = MockRetentionStore::new();
    store
        .expect_prune_finished_deliveries()
        .returning(|_, _, _| Ok(PrunedDeliveries::default()));
    store
        .expect_oldest_kept()
        .returning(|| Ok(Default::default()));
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(pruner(store, policy(Some(30), None)).run(shutdown));
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
