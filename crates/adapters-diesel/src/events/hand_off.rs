//! The hand-off of new deliveries to the dispatcher of the process that
//! stores them (ADR 0012): before the insert, room is reserved per webhook;
//! the deliveries with room are stored leased to this process, as a claim
//! would lease them, and handed over once committed. Their jobs are made
//! from what the fan-out already read (the webhooks' sending columns and
//! the events' payloads), so no claim statement reads them again. FIFO
//! webhooks are left to claims, which keep their order.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use webhooks_domain::{DeliveryJob, LocalDispatch, Reservation, UnixMillis, WebhookId};

use super::fan_out::FanOut;
use super::receivers::{Receiver, Sending};
use crate::deliveries::{JobRow, NewDeliveryRow};

/// Where the store hands deliveries over, once the process's dispatcher is
/// set (see [`DieselEventStore::hand_off_to`](crate::DieselEventStore::hand_off_to)).
/// Clones share it.
#[derive(Clone, Default)]
pub(crate) struct HandOffSlot(Arc<OnceLock<Arc<dyn LocalDispatch>>>);

impl HandOffSlot {
    /// Sets the dispatcher; answers false when one was set already.
    pub(crate) fn set(&self, dispatch: Arc<dyn LocalDispatch>) -> bool {
        self.0.set(dispatch).is_ok()
    }

    pub(crate) fn get(&self) -> Option<&Arc<dyn LocalDispatch>> {
        self.0.get()
    }
}

impl fmt::Debug for HandOffSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HandOffSlot")
            .field(&self.0.get().is_some())
            .finish()
    }
}

/// The room reserved for a fan-out's deliveries and their jobs, until they
/// are handed over; dropped without [`Leases::hand_over`] (the insert
/// failed), it gives the room back.
pub(crate) struct Leases {
    dispatch: Option<Arc<dyn LocalDispatch>>,
    taken: Vec<(Reservation, Vec<DeliveryJob>)>,
}

impl Leases {
    /// Reserves room for `fan_out`'s deliveries to each of `receivers`
    /// without an ordering, leases those with room, and counts them in the
    /// outcomes as handed over. `now` decides whether a previous secret
    /// still signs. Without a dispatcher, leases nothing.
    pub(crate) fn take(
        dispatch: Option<&Arc<dyn LocalDispatch>>,
        fan_out: &mut FanOut,
        receivers: &[Receiver],
        now: UnixMillis,
    ) -> Self {
        let mut leases = Self {
            dispatch: dispatch.cloned(),
            taken: Vec::new(),
        };
        let Some(dispatch) = dispatch else {
            return leases;
        };
        let mut by_webhook: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, delivery) in fan_out.deliveries.iter().enumerate() {
            by_webhook
                .entry(delivery.webhook_id.clone())
                .or_default()
                .push(index);
        }
        let event_at: HashMap<&str, usize> = fan_out
            .events
            .iter()
            .enumerate()
            .map(|(index, event)| (event.id.as_str(), index))
            .collect();
        for receiver in receivers {
            if receiver.sending.ordering.is_some() {
                continue;
            }
            let (Some(indexes), Some(webhook)) =
                (by_webhook.get(&receiver.id), WebhookId::parse(&receiver.id))
            else {
                continue;
            };
            let Some(room) = dispatch.reserve(&webhook, indexes.len()) else {
                continue;
            };
            let mut jobs = Vec::with_capacity(room.count);
            for &index in indexes.iter().take(room.count) {
                let delivery = &mut fan_out.deliveries[index];
                let Some(&event) = event_at.get(delivery.event_id.as_str()) else {
                    continue;
                };
                let row = job_row(delivery, &fan_out.events[event].payload, &receiver.sending);
                match row.into_job(now) {
                    Ok(job) => {
                        delivery.lease(room.lease_until);
                        fan_out.outcomes[event].handed_over += 1;
                        jobs.push(job);
                    }
                    // Stored due instead: a claim reports it again.
                    Err(error) => tracing::error!(%error, "cannot hand over a new delivery"),
                }
            }
            leases.taken.push((room, jobs));
        }
        leases
    }

    /// The deliveries are committed: their jobs go to the dispatcher.
    pub(crate) fn hand_over(mut self) {
        let Some(dispatch) = self.dispatch.take() else {
            return;
        };
        for (room, jobs) in self.taken.drain(..) {
            dispatch.hand_over(room, jobs);
        }
    }
}

/// The job of a new delivery, as a claim would read it.
fn job_row(delivery: &NewDeliveryRow, payload: &str, sending: &Sending) -> JobRow {
    JobRow {
        delivery_id: delivery.id.clone(),
        event_id: delivery.event_id.clone(),
        attempt_count: delivery.attempt_count,
        payload: payload.to_owned(),
        webhook_id: delivery.webhook_id.clone(),
        url: sending.url.clone(),
        secret: sending.secret.clone(),
        previous_secret: sending.previous_secret.clone(),
        previous_secret_expires_at: sending.previous_secret_expires_at,
        rate_limit: sending.rate_limit,
        created_at: delivery.created_at,
        headers: sending.headers.clone(),
        ordering: sending.ordering.clone(),
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        if let Some(dispatch) = &self.dispatch {
            for (room, _) in self.taken.drain(..) {
                dispatch.cancel(room);
            }
        }
    }
}
