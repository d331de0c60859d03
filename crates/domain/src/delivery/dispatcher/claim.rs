//! A claim round: claim what the free slots and the fair share allow, start
//! it or queue it behind its endpoint, and hand back what cannot start.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Dispatcher, LOG_TARGET};
use crate::delivery::DeliveryJob;
use crate::ids::{DeliveryId, WebhookId};
use crate::time::millis;
use crate::time::UnixMillis;
use crate::webhooks::DeliveryOrdering;

impl Dispatcher {
    /// Claims what the free slots allow and starts it; answers whether more
    /// may be due at once (a full batch that all started).
    pub(super) async fn claim_round(self: &Arc<Self>) -> bool {
        let now = self.clock.now();
        let free = self.slots.available_permits();
        if free == 0 {
            // Every slot held: wait for a delivery to finish, which claims.
            self.note_backlog();
            return false;
        }
        let (excluded, room) = self.excluded(free, now);
        let lease_until = now.plus_millis(millis(self.settings.lease));
        let limit = free.min(room);
        let jobs = match self
            .queue
            .claim_due(now, limit, lease_until, &excluded)
            .await
        {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(target: LOG_TARGET, error = %err, "cannot claim deliveries; retrying");
                self.note_backlog();
                return false;
            }
        };
        let claimed = jobs.len();
        let fifo = jobs
            .iter()
            .any(|job| job.ordering == Some(DeliveryOrdering::Fifo));
        let mut surplus: HashMap<UnixMillis, Vec<DeliveryId>> = HashMap::new();
        for job in jobs {
            if let Some((delivery, at)) = self.start(job) {
                surplus.entry(at).or_default().push(delivery);
            }
        }
        let started_all = surplus.is_empty();
        // Decided at the end of the round, so that workers finishing while
        // it ran (and saw the last round's answer) are not missed.
        let backlog = claimed == limit || !excluded.is_empty() || fifo || !started_all;
        self.backlog.store(backlog, Ordering::Release);
        let first_again = surplus.keys().min().copied();
        for (at, deliveries) in surplus {
            self.release_at(&deliveries, at).await;
        }
        if let Some(at) = first_again {
            // What was handed back is due again then: claim it then,
            // rather than at the next poll.
            self.wake_at(at);
        }
        claimed == limit && started_all
    }

    /// Wakes the claim loop at `at` (at once if it has passed).
    fn wake_at(&self, at: UnixMillis) {
        let wait = u64::try_from(at.as_millis() - self.clock.now().as_millis()).unwrap_or(0);
        let wakeup = self.wakeup.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            wakeup.notify();
        });
    }

    /// The endpoints a claim must skip, and the least room left among the
    /// others this process holds deliveries of (at most `per_endpoint` × 2).
    /// Skipped: those that may take no more, and those holding more than
    /// `per_endpoint`; so every endpoint a claim may reach has room for at
    /// least `per_endpoint`, and a claim limited to that room never brings
    /// more deliveries than their endpoints can keep (each one handed back
    /// would cost two more writes).
    fn excluded(&self, free: usize, now: UnixMillis) -> (Vec<WebhookId>, usize) {
        let endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let per_endpoint = self.settings.per_endpoint.max(1);
        let mut room = per_endpoint * 2;
        let mut skipped = Vec::new();
        for (id, state) in endpoints.iter() {
            if !state.may_take(free, per_endpoint, now) || state.held() > per_endpoint {
                skipped.push(id.clone());
            } else {
                room = room.min(per_endpoint * 2 - state.held());
            }
        }
        (skipped, room)
    }

    /// Starts a claimed job at once, or queues it behind its endpoint's
    /// deliveries in flight; when its endpoint may take no more, answers the
    /// delivery to hand back and when to offer it again.
    fn start(self: &Arc<Self>, job: DeliveryJob) -> Option<(DeliveryId, UnixMillis)> {
        let now = self.clock.now();
        let per_endpoint = self.in_flight_limit(&job);
        let busy = now.plus_millis(millis(self.settings.busy_backoff));
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let state = endpoints.entry(job.webhook_id.clone()).or_default();
        if let Some(until) = state.circuit.open_until(now) {
            return Some((job.delivery_id, until));
        }
        if !state.may_take(self.slots.available_permits(), per_endpoint, now) {
            return Some((job.delivery_id, busy));
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return Some((job.delivery_id, busy));
        };
        if state.in_flight < per_endpoint {
            state.in_flight += 1;
            drop(endpoints);
            let dispatcher = Arc::clone(self);
            tokio::spawn(async move { dispatcher.work(job, slot).await });
        } else {
            state.waiting.push_back((job, slot));
        }
        None
    }

    /// How many deliveries of the job's endpoint may be in flight at once:
    /// one for a FIFO webhook, whose next delivery waits for this one.
    fn in_flight_limit(&self, job: &DeliveryJob) -> usize {
        match job.ordering {
            Some(DeliveryOrdering::Fifo) => 1,
            None => self.settings.per_endpoint.max(1),
        }
    }

    /// Hands claimed deliveries back to the queue, due at `at`.
    pub(super) async fn release_at(&self, deliveries: &[DeliveryId], at: UnixMillis) {
        if deliveries.is_empty() {
            return;
        }
        if let Err(err) = self.queue.release_many(deliveries, at).await {
            // Their leases run out by themselves; nothing is lost.
            tracing::warn!(target: LOG_TARGET, deliveries = deliveries.len(), error = %err, "cannot release deliveries");
        }
    }

    /// Hands one claimed delivery back, offered again after `busy_backoff`.
    pub(super) async fn release(&self, job: &DeliveryJob) {
        let at = self
            .clock
            .now()
            .plus_millis(millis(self.settings.busy_backoff));
        if let Err(err) = self.queue.release(&job.delivery_id, at).await {
            // The lease expires by itself; nothing is lost.
            tracing::warn!(target: LOG_TARGET, delivery = %job.delivery_id, error = %err, "cannot release a delivery");
        }
    }
}
