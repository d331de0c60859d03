//! The event store's hand-off to the process's own dispatcher (ADR 0012):
//! deliveries with room are stored leased and their jobs handed over after
//! the commit; FIFO webhooks are left to claims; a failed insert gives the
//! room back.

use std::sync::{Arc, Mutex};

use webhooks_adapters_diesel::Database;
use webhooks_domain::{
    DeliveryJob, DeliveryOrdering, DeliveryQueue, DeliveryStatus, EventStore, LocalDispatch,
    Reservation, UnixMillis, WebhookId,
};

use crate::support::{event, events_store, group, queue, stored, webhook};

on_both_backends!(
    publish_hands_over_what_the_dispatcher_has_room_for_stored_leased,
    a_fifo_webhook_is_never_handed_over,
    a_publish_that_fails_gives_the_room_back,
);

/// The end of the leases the fake dispatcher gives.
const LEASE_UNTIL: UnixMillis = UnixMillis(99_000);

/// A dispatcher with room for `room` deliveries per webhook and call, that
/// keeps what it is given.
#[derive(Default)]
struct Room {
    room: usize,
    asked: Mutex<Vec<(WebhookId, usize)>>,
    handed: Mutex<Vec<DeliveryJob>>,
    cancelled: Mutex<usize>,
}

impl LocalDispatch for Room {
    fn reserve(&self, webhook: &WebhookId, wanted: usize) -> Option<Reservation> {
        self.asked.lock().unwrap().push((webhook.clone(), wanted));
        (self.room > 0).then(|| Reservation {
            webhook_id: webhook.clone(),
            count: wanted.min(self.room),
            lease_until: LEASE_UNTIL,
        })
    }

    fn hand_over(&self, _reservation: Reservation, jobs: Vec<DeliveryJob>) {
        self.handed.lock().unwrap().extend(jobs);
    }

    fn cancel(&self, reservation: Reservation) {
        *self.cancelled.lock().unwrap() += reservation.count;
    }
}

fn room_for(room: usize) -> Arc<Room> {
    Arc::new(Room {
        room,
        ..Room::default()
    })
}

async fn publish_hands_over_what_the_dispatcher_has_room_for_stored_leased(db: &Database) {
    let group = group(db, 1).await;
    let [first, second] = [webhook(&group, 1_000), webhook(&group, 2_000)];
    stored(db, vec![first.clone(), second.clone()]).await;
    let store = events_store(db);
    let room = room_for(1);
    assert!(store.hand_off_to(room.clone()));
    assert!(!store.hand_off_to(room_for(5)), "set once");

    let published = event(group.id, 10_000, None);
    let outcome = store.publish(&published, UnixMillis(0)).await.unwrap();

    assert_eq!((outcome.deliveries, outcome.handed_over), (2, 2));
    let handed = room.handed.lock().unwrap().clone();
    assert_eq!(handed.len(), 2);
    let queue = queue(db);
    for receiver in [&first, &second] {
        let job = handed
            .iter()
            .find(|job| job.webhook_id == receiver.id)
            .unwrap();
        assert_eq!(job.event_id, published.id);
        assert_eq!(job.payload, published.payload);
        assert_eq!(job.url, receiver.url.as_str());
        assert_eq!(job.secret, receiver.secret);
        assert_eq!(job.attempts_made, 0);
        assert_eq!(job.created_at, UnixMillis(10_000));
        let stored = queue.list(&receiver.id, None, None, 10).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id, job.delivery_id);
        assert_eq!(stored[0].status, DeliveryStatus::Pending);
        // Leased as a claim leaves it: not due before the lease ends.
        assert_eq!(stored[0].next_attempt_at, Some(LEASE_UNTIL));
    }
    assert_eq!(
        queue
            .claim_due(UnixMillis(50_000), 10, UnixMillis(60_000), &[])
            .await
            .unwrap(),
        vec![]
    );

    // Room for one of two events to the same webhook: the other is due.
    let (a, b) = (event(group.id, 20_000, None), event(group.id, 20_001, None));
    let (one, other) = tokio::join!(
        store.publish(&a, UnixMillis(0)),
        store.publish(&b, UnixMillis(0))
    );
    let handed_over = one.unwrap().handed_over + other.unwrap().handed_over;
    assert!((2..=4).contains(&handed_over), "{handed_over} handed over");
    let due = queue
        .claim_due(UnixMillis(50_000), 10, UnixMillis(60_000), &[])
        .await
        .unwrap();
    assert_eq!(due.len() as u64, 4 - handed_over);
}

async fn a_fifo_webhook_is_never_handed_over(db: &Database) {
    let group = group(db, 1).await;
    let mut ordered = webhook(&group, 1_000);
    ordered.ordering = Some(DeliveryOrdering::Fifo);
    stored(db, vec![ordered.clone()]).await;
    let store = events_store(db);
    let room = room_for(10);
    store.hand_off_to(room.clone());

    let outcome = store
        .publish(&event(group.id, 10_000, None), UnixMillis(0))
        .await
        .unwrap();

    assert_eq!((outcome.deliveries, outcome.handed_over), (1, 0));
    assert!(room.asked.lock().unwrap().is_empty());
    let stored = queue(db).list(&ordered.id, None, None, 10).await.unwrap();
    assert_eq!(stored[0].next_attempt_at, Some(UnixMillis(10_000)));
}

async fn a_publish_that_fails_gives_the_room_back(db: &Database) {
    let group = group(db, 1).await;
    let receiver = webhook(&group, 1_000);
    stored(db, vec![receiver.clone()]).await;
    let store = events_store(db);
    let room = room_for(10);
    store.hand_off_to(room.clone());
    let published = event(group.id, 10_000, None);
    store.publish(&published, UnixMillis(0)).await.unwrap();

    // The same event again: its id is taken, the insert fails.
    assert!(store.publish(&published, UnixMillis(0)).await.is_err());

    assert_eq!(room.handed.lock().unwrap().len(), 1);
    assert!(*room.cancelled.lock().unwrap() >= 1);
    assert_eq!(
        queue(db)
            .list(&receiver.id, None, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}
