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
        // Cleared before the claim reads the queue: whatever limits this
        // round, or comes after it, sets it again.
        self.backlog.store(false, Ordering::Release);
        let excluded = self.excluded(free, now);
        let lease_until = now.plus_millis(millis(self.settings.lease));
        let limit = free.min(self.settings.per_endpoint.max(1) * 2);
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
        if claimed == limit || !excluded.is_empty() || fifo {
            self.note_backlog();
        }
        let mut surplus: HashMap<UnixMillis, Vec<DeliveryId>> = HashMap::new();
        for job in jobs {
            if let Some((delivery, at)) = self.start(job) {
                surplus.entry(at).or_default().push(delivery);
            }
        }
        let started_all = surplus.is_empty();
        if !started_all {
            self.note_backlog();
        }
        for (at, deliveries) in surplus {
            self.release_at(&deliveries, at).await;
        }
        claimed == limit && started_all
    }

    /// The endpoints a claim must skip: those that may take no more.
    fn excluded(&self, free: usize, now: UnixMillis) -> Vec<WebhookId> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let per_endpoint = self.settings.per_endpoint.max(1);
        endpoints
            .iter()
            .filter(|(_, state)| !state.may_take(free, per_endpoint, now))
            .map(|(id, _)| id.clone())
            .collect()
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
