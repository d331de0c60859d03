//! [`HandOff`]: deliveries the dispatcher's own process stores, taken
//! without a claim, within the endpoint's share of the slots.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use webhooks_domain::ports::{MockDeliveryQueue, MockOutboundSender};
use webhooks_domain::{
    DeliveryId, DeliveryJob, DispatchSettings, Dispatcher, HandOff, LocalDispatch, RetryPolicy,
    SendOutcome, UnixMillis, Wakeup,
};

use crate::support::*;

/// 8 slots, 2 deliveries in flight per endpoint (and 2 waiting).
fn small() -> DispatchSettings {
    DispatchSettings {
        workers: 8,
        per_endpoint: 2,
        poll_interval: Duration::from_millis(20),
        ..settings()
    }
}

fn dispatcher(queue: MockDeliveryQueue, sender: MockOutboundSender) -> Arc<Dispatcher> {
    Arc::new(Dispatcher::new(
        Arc::new(queue),
        Arc::new(sender),
        Arc::new(clock_at_now()),
        cipher(),
        RetryPolicy::exact(vec![FIRST_WAIT]),
        small(),
        Wakeup::default(),
    ))
}

/// Job `n` to [`WEBHOOK_ID`].
fn job_number(n: u128) -> DeliveryJob {
    DeliveryJob {
        delivery_id: DeliveryId::from_ulid(ulid::Ulid(n + 1)),
        ..job(0)
    }
}

#[test]
fn a_reservation_takes_what_the_endpoints_share_allows_and_a_cancel_gives_it_back() {
    let hand_off = HandOff::new(dispatcher(
        MockDeliveryQueue::new(),
        MockOutboundSender::new(),
    ));

    let room = hand_off.reserve(&webhook_id(), 10).unwrap();
    assert_eq!(room.webhook_id, webhook_id());
    // Two in flight and two waiting behind them.
    assert_eq!(room.count, 4);
    assert_eq!(room.lease_until, NOW.plus_millis(45_000));
    assert_eq!(hand_off.reserve(&webhook_id(), 1), None);
    hand_off.cancel(room);
    assert_eq!(hand_off.reserve(&webhook_id(), 3).unwrap().count, 3);
}

#[test]
fn reservations_follow_the_fair_share_so_each_new_endpoint_finds_room() {
    let hand_off = HandOff::new(dispatcher(
        MockDeliveryQueue::new(),
        MockOutboundSender::new(),
    ));
    let counts: Vec<usize> = (0..5u128)
        .map(|n| {
            let webhook = webhooks_domain::WebhookId::from_ulid(ulid::Ulid(100 + n));
            hand_off.reserve(&webhook, 4).map_or(0, |room| room.count)
        })
        .collect();
    // An endpoint holding k stops growing when fewer than k slots are
    // free: 4 of 8, then 2 of the 4 left, then 1 and 1; nothing is left.
    assert_eq!(counts, vec![4, 2, 1, 1, 0]);
}

#[tokio::test]
async fn a_running_dispatcher_sends_what_is_handed_over_without_claiming_it() {
    let recorded: Arc<Mutex<Vec<DeliveryId>>> = Arc::default();
    let mut queue = MockDeliveryQueue::new();
    // Claim rounds find nothing: the jobs come by hand-off only.
    queue
        .expect_claim_due()
        .returning(|_, _, _, _| Ok(Vec::new()));
    let recorder = Arc::clone(&recorded);
    queue.expect_record_attempts().returning(move |records| {
        let mut recorded = recorder.lock().unwrap();
        recorded.extend(records.iter().map(|r| r.attempt.delivery_id.clone()));
        Ok(())
    });
    let mut sender = MockOutboundSender::new();
    sender.expect_send().times(3).returning(|_| SendOutcome {
        status: Some(200),
        duration_ms: 3,
        ..SendOutcome::default()
    });
    let dispatcher = dispatcher(queue, sender);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Arc::clone(&dispatcher).run(stopped));
    let hand_off = HandOff::new(dispatcher);

    let room = hand_off.reserve(&webhook_id(), 3).unwrap();
    hand_off.hand_over(room, (0..3).map(job_number).collect());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while recorded.lock().unwrap().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "not all sent");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    let mut sent = recorded.lock().unwrap().clone();
    sent.sort();
    assert_eq!(
        sent,
        (0..3)
            .map(|n| job_number(n).delivery_id)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn room_not_used_by_a_hand_over_is_freed() {
    let hand_off = HandOff::new(dispatcher(
        MockDeliveryQueue::new(),
        MockOutboundSender::new(),
    ));
    let room = hand_off.reserve(&webhook_id(), 4).unwrap();
    hand_off.hand_over(room, Vec::new());
    assert_eq!(hand_off.reserve(&webhook_id(), 4).unwrap().count, 4);
}

#[tokio::test]
async fn a_hand_over_after_the_dispatcher_stopped_goes_back_to_the_queue_and_lets_it_finish() {
    let released: Arc<Mutex<Vec<(DeliveryId, UnixMillis)>>> = Arc::default();
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_claim_due()
        .returning(|_, _, _, _| Ok(Vec::new()));
    let releases = Arc::clone(&released);
    queue.expect_release_many().returning(move |ids, at| {
        let mut released = releases.lock().unwrap();
        released.extend(ids.iter().map(|id| (id.clone(), at)));
        Ok(())
    });
    let dispatcher = dispatcher(queue, MockOutboundSender::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Arc::clone(&dispatcher).run(stopped));
    let hand_off = HandOff::new(dispatcher);
    let room = hand_off.reserve(&webhook_id(), 2).unwrap();

    stop.send(true).unwrap();
    // The reserved slots hold the stop until the hand-over.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!running.is_finished());
    assert_eq!(hand_off.reserve(&webhook_id(), 1), None);
    hand_off.hand_over(room, (0..2).map(job_number).collect());
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the dispatcher stops once the room is used")
        .unwrap();

    // Due at once again, for whichever process claims next.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released = released.lock().unwrap().clone();
    assert_eq!(
        released,
        vec![
            (job_number(0).delivery_id, NOW),
            (job_number(1).delivery_id, NOW)
        ]
    );
}
