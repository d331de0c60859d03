//! The hand-off: deliveries this process stores itself (publishing in
//! `serve`), taken by its own dispatcher without a claim. The storage
//! adapter reserves room per webhook before its insert, stores the
//! reserved deliveries leased to this process, and hands them over after
//! the commit; a reserved delivery holds its slot and counts against its
//! endpoint's share from the reservation on, so the fair share and the
//! circuit rule hand-offs as they rule claims.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Dispatcher, LOG_TARGET};
use crate::delivery::DeliveryJob;
use crate::ids::{DeliveryId, WebhookId};
use crate::ports::{LocalDispatch, Reservation};
use crate::time::millis;

/// A dispatcher as the [`LocalDispatch`] of its process's storage adapter.
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// # use webhooks_domain::ports::{MockDeliveryQueue, MockOutboundSender};
/// # use webhooks_domain::*;
/// # let dispatcher = Arc::new(Dispatcher::new(
/// #     Arc::new(MockDeliveryQueue::new()),
/// #     Arc::new(MockOutboundSender::new()),
/// #     Arc::new(SystemClock),
/// #     SecretCipher::new(&[7u8; 32]).unwrap(),
/// #     RetryPolicy::new(vec![Duration::from_secs(5)]),
/// #     DispatchSettings::for_timeout(Duration::from_secs(15), 256),
/// #     Wakeup::default(),
/// # ));
/// let hand_off: Arc<dyn LocalDispatch> = Arc::new(HandOff::new(Arc::clone(&dispatcher)));
/// let webhook = WebhookId::parse("we_01hzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
/// let room = hand_off.reserve(&webhook, 100).unwrap();
/// assert_eq!(room.count, 64); // 32 in flight and 32 waiting per endpoint
/// hand_off.cancel(room);
/// ```
pub struct HandOff {
    dispatcher: Arc<Dispatcher>,
}

impl HandOff {
    /// The hand-off to `dispatcher`, which must be running (or about to
    /// run) in this process.
    pub fn new(dispatcher: Arc<Dispatcher>) -> Self {
        Self { dispatcher }
    }
}

impl LocalDispatch for HandOff {
    fn reserve(&self, webhook: &WebhookId, wanted: usize) -> Option<Reservation> {
        let count = self.dispatcher.reserve(webhook, wanted);
        if count < wanted {
            // The rest is stored due: a claim takes it when room frees up.
            self.dispatcher.note_backlog();
        }
        (count > 0).then(|| Reservation {
            webhook_id: webhook.clone(),
            count,
            lease_until: self
                .dispatcher
                .clock
                .now()
                .plus_millis(millis(self.dispatcher.settings.lease)),
        })
    }

    fn hand_over(&self, reservation: Reservation, jobs: Vec<DeliveryJob>) {
        Arc::clone(&self.dispatcher).take_over(reservation, jobs);
    }

    fn cancel(&self, reservation: Reservation) {
        self.dispatcher
            .unreserve(&reservation.webhook_id, reservation.count);
    }
}

impl Dispatcher {
    /// Keeps a slot, counted against the endpoint, for each of up to
    /// `wanted` deliveries the endpoint may take now; answers how many.
    fn reserve(&self, webhook: &WebhookId, wanted: usize) -> usize {
        if self.stopping.load(Ordering::Acquire) {
            return 0;
        }
        let now = self.clock.now();
        let per_endpoint = self.settings.per_endpoint.max(1);
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let state = endpoints.entry(webhook.clone()).or_default();
        let mut count = 0;
        while count < wanted && state.may_take(self.slots.available_permits(), per_endpoint, now) {
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                break;
            };
            state.keep_reserved(slot);
            count += 1;
        }
        if state.is_idle() {
            endpoints.remove(webhook);
        }
        count
    }

    /// Frees `count` reserved slots of `webhook`.
    fn unreserve(&self, webhook: &WebhookId, count: usize) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = endpoints.get_mut(webhook) else {
            return;
        };
        for _ in 0..count {
            drop(state.take_reserved());
        }
        if state.is_idle() {
            endpoints.remove(webhook);
        }
    }

    /// Starts the handed-over jobs in their reserved slots, or queues them
    /// behind their endpoint's deliveries in flight. They run on the runtime
    /// of the thread that stores them (in `serve`, an HTTP worker's), which
    /// spreads the sends over its threads; the service stops those only
    /// after the dispatcher has finished (see `run_until` in the app). Jobs that may not be
    /// sent now (the dispatcher is stopping, or the endpoint's circuit
    /// opened meanwhile) go back to the queue; reserved room left unused is
    /// freed.
    fn take_over(self: Arc<Self>, reservation: Reservation, jobs: Vec<DeliveryJob>) {
        let now = self.clock.now();
        let per_endpoint = self.settings.per_endpoint.max(1);
        let stopping = self.stopping.load(Ordering::Acquire);
        let mut back: Vec<DeliveryId> = Vec::new();
        let mut back_at = now;
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let state = endpoints.entry(reservation.webhook_id.clone()).or_default();
        let open_until = state.circuit.open_until(now);
        let mut unused = reservation.count;
        for job in jobs {
            let slot = if job.webhook_id == reservation.webhook_id && unused > 0 {
                state.take_reserved()
            } else {
                None
            };
            let Some(slot) = slot else {
                tracing::error!(target: LOG_TARGET, delivery = %job.delivery_id, "a delivery was handed over without room; it is sent when its lease ends");
                continue;
            };
            unused -= 1;
            if stopping || open_until.is_some() {
                back_at = open_until.unwrap_or(now);
                back.push(job.delivery_id);
                drop(slot);
            } else if state.in_flight < per_endpoint {
                state.in_flight += 1;
                let dispatcher = Arc::clone(&self);
                tokio::spawn(async move { dispatcher.work(job, slot).await });
            } else {
                state.waiting.push_back((job, slot));
            }
        }
        for _ in 0..unused {
            drop(state.take_reserved());
        }
        if state.is_idle() {
            endpoints.remove(&reservation.webhook_id);
        }
        drop(endpoints);
        if !back.is_empty() {
            tokio::spawn(async move { self.release_at(&back, back_at).await });
        }
    }

    /// From now on, no hand-off: reservations are refused and jobs handed
    /// over go back to the queue.
    pub(super) fn stop_hand_offs(&self) {
        self.stopping.store(true, Ordering::Release);
    }
}
