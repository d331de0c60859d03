//! A worker: sends one endpoint's deliveries one after the other in its
//! slot, counts each on the endpoint's circuit, and hands the attempts to
//! the recorder.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::{Dispatcher, LOG_TARGET};
use crate::delivery::recorder::{write_in_order, Bookkeeping};
use crate::delivery::{Circuit, DeliveryJob, NextStep};
use crate::ids::WebhookId;
use crate::time::UnixMillis;

/// What a worker does after an attempt.
enum AfterAttempt {
    /// Send the next delivery waiting for the same endpoint, in its slot.
    Next(DeliveryJob, OwnedSemaphorePermit),
    /// Stop: nothing waits.
    Done,
    /// Stop: the endpoint's circuit just opened until then; these waited.
    Opened(UnixMillis, Vec<(DeliveryJob, OwnedSemaphorePermit)>),
}

impl Dispatcher {
    /// A worker: delivers its job, then the next ones waiting for the same
    /// endpoint, then frees its slot and wakes the claim loop. A timeout
    /// that opens the endpoint's circuit sends what waits back to the queue.
    pub(super) async fn work(
        self: Arc<Self>,
        mut job: DeliveryJob,
        mut slot: OwnedSemaphorePermit,
    ) {
        let in_flight = metrics::gauge!("webhooks_deliveries_in_flight");
        in_flight.increment(1.0);
        loop {
            let webhook = job.webhook_id.clone();
            let tried = self.attempt(job).await;
            let (next, open_until) =
                self.after_attempt(&webhook, tried.as_ref().map(|tried| tried.timed_out));
            if let Some(mut tried) = tried {
                if let Some(until) = open_until {
                    // No retry before the circuit lets one through.
                    postpone(&mut tried.record.next, until);
                }
                self.hand_over(Bookkeeping::Attempt(tried.record)).await;
            }
            match next {
                AfterAttempt::Next(next, next_slot) => {
                    job = next;
                    slot = next_slot;
                }
                AfterAttempt::Done => break,
                AfterAttempt::Opened(until, waiting) => {
                    self.open_circuit(&webhook, until, waiting).await;
                    break;
                }
            }
        }
        in_flight.decrement(1.0);
        drop(slot);
        if self.backlog.load(Ordering::Acquire) {
            self.wakeup.notify();
        }
    }

    /// Counts the attempt on the endpoint's circuit, then answers what the
    /// worker does next (the next delivery waiting for the same endpoint, or
    /// stop, handing back what waits when the circuit just opened) and until
    /// when the circuit is open, if it is.
    fn after_attempt(
        &self,
        webhook: &WebhookId,
        timed_out: Option<bool>,
    ) -> (AfterAttempt, Option<UnixMillis>) {
        let now = self.clock.now();
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = endpoints.get_mut(webhook) else {
            return (AfterAttempt::Done, None);
        };
        let opened = timed_out.and_then(|timed_out| {
            let was_tripped = state.circuit.is_tripped();
            let opened = state.circuit.record(timed_out, now, &self.settings.circuit);
            circuit_metrics(was_tripped, &state.circuit, opened.is_some());
            opened
        });
        let open_until = state.circuit.open_until(now);
        if opened.is_none() {
            if let Some((next, slot)) = state.waiting.pop_front() {
                return (AfterAttempt::Next(next, slot), open_until);
            }
        }
        state.in_flight = state.in_flight.saturating_sub(1);
        let waiting: Vec<_> = state.waiting.drain(..).collect();
        if state.is_idle() {
            endpoints.remove(webhook);
        }
        let next = match opened {
            Some(until) => AfterAttempt::Opened(until, waiting),
            None => AfterAttempt::Done,
        };
        (next, open_until)
    }

    /// The endpoint's circuit opened until `until`: what waits for it, and
    /// its other pending deliveries in every process, are due then.
    async fn open_circuit(
        &self,
        webhook: &WebhookId,
        until: UnixMillis,
        waiting: Vec<(DeliveryJob, OwnedSemaphorePermit)>,
    ) {
        tracing::warn!(target: LOG_TARGET, webhook = %webhook, until = until.as_millis(), "the endpoint keeps timing out: its circuit is open, its deliveries wait");
        let waiting: Vec<_> = waiting
            .into_iter()
            .map(|(job, _slot)| job.delivery_id)
            .collect();
        self.release_at(&waiting, until).await;
        self.hand_over(Bookkeeping::Defer(webhook.clone(), until))
            .await;
    }

    /// Passes bookkeeping to the recorder task; writes it here if the
    /// recorder has stopped.
    async fn hand_over(&self, item: Bookkeeping) {
        if let Err(mpsc::error::SendError(item)) = self.records.send(item).await {
            write_in_order(self.queue.as_ref(), &mut vec![item]).await;
        }
    }
}

/// A retry due before `until` waits until then.
fn postpone(next: &mut NextStep, until: UnixMillis) {
    if let NextStep::RetryAt(at) = next {
        if *at < until {
            *at = until;
        }
    }
}

/// Counts a circuit that just opened, and keeps the gauge of circuits open
/// or half open: up when a closed one opens, down when one closes again.
fn circuit_metrics(was_tripped: bool, circuit: &Circuit, opened: bool) {
    if opened {
        metrics::counter!("webhooks_circuit_breaker_openings_total").increment(1);
    }
    match (was_tripped, circuit.is_tripped()) {
        (false, true) => metrics::gauge!("webhooks_circuit_breakers_open").increment(1.0),
        (true, false) => metrics::gauge!("webhooks_circuit_breakers_open").decrement(1.0),
        _ => {}
    }
}
