//! The dispatch loop: claim due deliveries, sign, send, record, reschedule.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::delivery::{
    Attempt, AttemptRecord, DeliveryJob, EndpointHealth, NextStep, RetryPolicy, SendOutcome,
    SignedRequest,
};
use crate::ids::WebhookId;
use crate::ports::{Clock, DeliveryQueue, OutboundSender};
use crate::secret::SecretCipher;
use crate::time::UnixMillis;
use crate::wakeup::Wakeup;

/// How a dispatcher shares out its work.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Deliveries in flight at once in this process.
    pub workers: usize,
    /// Deliveries in flight at once to one webhook, in this process.
    pub per_endpoint: usize,
    /// How long a claim hides a delivery from other workers: the attempt
    /// timeout plus a margin. A worker that dies leaves its claims due again
    /// after this.
    pub lease: Duration,
    /// Safety-net poll when no wake-up comes.
    pub poll_interval: Duration,
    /// A webhook failing for this long without one success is disabled.
    pub disable_after: Duration,
    /// How long after a busy or rate-limited endpoint a delivery is offered again.
    pub busy_backoff: Duration,
}

impl DispatchSettings {
    /// Sensible values for an attempt timeout.
    pub fn for_timeout(timeout: Duration, workers: usize) -> Self {
        Self {
            workers: workers.max(1),
            per_endpoint: 32,
            lease: timeout + Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            busy_backoff: Duration::from_millis(200),
        }
    }
}

/// The most attempts written in one transaction.
const RECORD_BATCH: usize = 256;

/// Claims due deliveries and sends them, as many at once as the settings allow.
pub struct Dispatcher {
    queue: Arc<dyn DeliveryQueue>,
    sender: Arc<dyn OutboundSender>,
    clock: Arc<dyn Clock>,
    cipher: SecretCipher,
    policy: RetryPolicy,
    settings: DispatchSettings,
    wakeup: Wakeup,
    slots: Arc<Semaphore>,
    endpoints: Mutex<HashMap<WebhookId, EndpointState>>,
    /// Attempts made by the workers, on their way to the recorder task.
    records: mpsc::Sender<AttemptRecord>,
    /// The recorder's end of `records`, until [`Dispatcher::run`] takes it.
    unrecorded: Mutex<Option<mpsc::Receiver<AttemptRecord>>>,
}

/// A webhook's deliveries in this process: in flight, and claimed but waiting.
#[derive(Default)]
struct EndpointState {
    in_flight: usize,
    waiting: VecDeque<DeliveryJob>,
}

impl Dispatcher {
    pub fn new(
        queue: Arc<dyn DeliveryQueue>,
        sender: Arc<dyn OutboundSender>,
        clock: Arc<dyn Clock>,
        cipher: SecretCipher,
        policy: RetryPolicy,
        settings: DispatchSettings,
        wakeup: Wakeup,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(settings.workers));
        let (records, unrecorded) = mpsc::channel(settings.workers.max(1));
        Self {
            queue,
            sender,
            clock,
            cipher,
            policy,
            settings,
            wakeup,
            slots,
            endpoints: Mutex::new(HashMap::new()),
            records,
            unrecorded: Mutex::new(Some(unrecorded)),
        }
    }

    /// Runs until `shutdown` turns true, then stops claiming and waits for the
    /// deliveries in flight to finish (each is bounded by the attempt timeout).
    ///
    /// Each endpoint has `per_endpoint` deliveries in flight and as many
    /// claimed ones waiting in memory for them; a worker that finishes a
    /// delivery goes on with the next one waiting for the same endpoint. A
    /// claim takes no more than the free workers minus what already waits,
    /// and skips endpoints whose waiting line is half full, so a slow
    /// endpoint holds at most its own share while the rest keeps flowing.
    ///
    /// Workers hand their attempts to one recorder task, which writes
    /// whatever has arrived in one transaction (up to 256 at a time) while
    /// the workers go on: on a busy queue, one round of statements records
    /// many deliveries; on a quiet one, each is recorded at once. Until it is
    /// recorded, a delivery stays claimed, so no other worker sends it again.
    /// Call it once per dispatcher.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let unrecorded = self
            .unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(unrecorded) = unrecorded else {
            tracing::error!("a dispatcher runs once; this one already ran");
            return;
        };
        let (workers_done, recorder_stop) = watch::channel(false);
        let recorder = tokio::spawn(record_batches(
            Arc::clone(&self.queue),
            unrecorded,
            recorder_stop,
        ));
        tracing::info!(workers = self.settings.workers, "delivery workers started");
        while !*shutdown.borrow() {
            let (saturated, waiting) = self.saturation();
            let free = self.slots.available_permits().saturating_sub(waiting);
            if free == 0 {
                // Every worker busy or spoken for: wait for one to finish.
                tokio::select! {
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let now = self.clock.now();
            let lease_until = now.plus_millis(millis(self.settings.lease));
            let limit = free.min(self.settings.per_endpoint.max(1) * 2);
            let jobs = match self
                .queue
                .claim_due(now, limit, lease_until, &saturated)
                .await
            {
                Ok(jobs) => jobs,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot claim deliveries; retrying");
                    Vec::new()
                }
            };
            let claimed = jobs.len();
            let mut surplus = Vec::new();
            for job in jobs {
                if let Some(job) = self.start(job) {
                    surplus.push(job.delivery_id);
                }
            }
            if !surplus.is_empty() {
                let at = self
                    .clock
                    .now()
                    .plus_millis(millis(self.settings.busy_backoff));
                if let Err(err) = self.queue.release_many(&surplus, at).await {
                    // Their leases run out by themselves; nothing is lost.
                    tracing::warn!(error = %err, "cannot release deliveries");
                }
            }
            // A full batch that all started means more may be due: claim
            // again at once. Otherwise wait for new work, a finished
            // delivery, or the safety-net poll.
            if claimed < limit || !surplus.is_empty() {
                tokio::select! {
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        // Claimed deliveries still waiting go back to the queue, due now for
        // the other processes; those in flight finish.
        let waiting: Vec<_> = {
            let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            endpoints
                .values_mut()
                .flat_map(|state| state.waiting.drain(..))
                .map(|job| job.delivery_id)
                .collect()
        };
        if let Err(err) = self.queue.release_many(&waiting, self.clock.now()).await {
            tracing::warn!(error = %err, "cannot release waiting deliveries; their leases will expire");
        }
        let all = u32::try_from(self.settings.workers).unwrap_or(u32::MAX);
        let _drained = self.slots.acquire_many(all).await;
        // Every worker finished: the recorder writes what is left and stops.
        let _ = workers_done.send(true);
        if let Err(err) = recorder.await {
            tracing::error!(error = %err, "the attempt recorder failed; unrecorded deliveries are sent again when their leases run out");
        }
        tracing::info!("delivery workers stopped; nothing in flight");
    }

    /// The endpoints not to claim for (their waiting line is half full or
    /// more), and how many claimed deliveries wait in all.
    fn saturation(&self) -> (Vec<WebhookId>, usize) {
        let endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let half = self.settings.per_endpoint.div_ceil(2);
        let saturated = endpoints
            .iter()
            .filter(|(_, state)| {
                state.in_flight >= self.settings.per_endpoint && state.waiting.len() >= half
            })
            .map(|(id, _)| id.clone())
            .collect();
        let waiting = endpoints.values().map(|state| state.waiting.len()).sum();
        (saturated, waiting)
    }

    /// Starts a claimed job on a worker of its own, or queues it behind its
    /// endpoint's deliveries in flight; hands it back when neither has room.
    fn start(self: &Arc<Self>, job: DeliveryJob) -> Option<DeliveryJob> {
        let cap = self.settings.per_endpoint.max(1);
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let state = endpoints.entry(job.webhook_id.clone()).or_default();
        if state.in_flight < cap {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                return Some(job);
            };
            state.in_flight += 1;
            drop(endpoints);
            let dispatcher = Arc::clone(self);
            tokio::spawn(async move { dispatcher.work(job, permit).await });
            None
        } else if state.waiting.len() < cap {
            state.waiting.push_back(job);
            None
        } else {
            Some(job)
        }
    }

    /// A worker: delivers its job, then the next ones waiting for the same
    /// endpoint, then frees its slot and wakes the claim loop.
    async fn work(self: Arc<Self>, mut job: DeliveryJob, permit: OwnedSemaphorePermit) {
        let in_flight = metrics::gauge!("webhooks_deliveries_in_flight");
        in_flight.increment(1.0);
        loop {
            let webhook = job.webhook_id.clone();
            if let Some(record) = self.attempt(job).await {
                self.hand_over(record).await;
            }
            let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            let Some(state) = endpoints.get_mut(&webhook) else {
                break;
            };
            if let Some(next) = state.waiting.pop_front() {
                job = next;
                continue;
            }
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 {
                endpoints.remove(&webhook);
            }
            break;
        }
        in_flight.decrement(1.0);
        drop(permit);
        self.wakeup.notify();
    }

    async fn release(&self, job: &DeliveryJob) {
        let at = self
            .clock
            .now()
            .plus_millis(millis(self.settings.busy_backoff));
        if let Err(err) = self.queue.release(&job.delivery_id, at).await {
            // The lease expires by itself; nothing is lost.
            tracing::warn!(delivery = %job.delivery_id, error = %err, "cannot release a delivery");
        }
    }

    /// Passes an attempt to the recorder task; records it here if the
    /// recorder has stopped.
    async fn hand_over(&self, record: AttemptRecord) {
        if let Err(mpsc::error::SendError(record)) = self.records.send(record).await {
            record_now(self.queue.as_ref(), std::slice::from_ref(&record)).await;
        }
    }

    /// One attempt at one delivery: rate limit, sign, send, record.
    pub async fn deliver(&self, job: DeliveryJob) {
        if let Some(record) = self.attempt(job).await {
            record_now(self.queue.as_ref(), std::slice::from_ref(&record)).await;
        }
    }

    /// One attempt at one delivery: rate limit, sign, send; answers what to
    /// record, or `None` when the delivery went back to the queue unsent.
    async fn attempt(&self, job: DeliveryJob) -> Option<AttemptRecord> {
        if let Some(limit) = job.rate_limit {
            let second = self.clock.now().as_secs();
            match self
                .queue
                .take_rate_slot(&job.webhook_id, second, limit.per_second())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    let next_second = UnixMillis((second + 1) * 1000);
                    if let Err(err) = self.queue.release(&job.delivery_id, next_second).await {
                        tracing::warn!(delivery = %job.delivery_id, error = %err, "cannot release a delivery");
                    }
                    return None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot check the rate limit; trying later");
                    self.release(&job).await;
                    return None;
                }
            }
        }
        let started = self.clock.now();
        let signed = self.sign(&job, started);
        let outcome = match &signed {
            Some(request) => self.sender.send(request).await,
            None => SendOutcome {
                error: Some("cannot decrypt the signing secret".to_owned()),
                ..SendOutcome::default()
            },
        };
        let attempt = Attempt {
            delivery_id: job.delivery_id.clone(),
            number: job.attempts_made + 1,
            attempted_at: started,
            duration_ms: outcome.duration_ms,
            response_status: outcome.status,
            response_body: outcome.body,
            error: outcome.error,
        };
        let (next, mut health) = self.next_step(&attempt, outcome.retry_after);
        if signed.is_none() {
            // Our fault (wrong encryption key?), not the endpoint's.
            tracing::error!(delivery = %attempt.delivery_id, "cannot decrypt a signing secret: check secrets.encryption_key");
            health = EndpointHealth::Unchanged;
        }
        tracing::debug!(
            delivery = %attempt.delivery_id,
            attempt = attempt.number,
            status = ?attempt.response_status,
            next = ?next,
            "attempt made"
        );
        metrics::histogram!("webhooks_delivery_attempt_duration_seconds")
            .record(attempt.duration_ms as f64 / 1000.0);
        let outcome = match next {
            NextStep::Succeeded => "succeeded",
            NextStep::RetryAt(_) => "retry",
            NextStep::Failed => "failed",
        };
        metrics::counter!("webhooks_delivery_attempts_total", "outcome" => outcome).increment(1);
        Some(AttemptRecord {
            attempt,
            next,
            health,
        })
    }

    /// The Standard Webhooks request for this attempt: signed by the current
    /// secret and, during a rotation's grace period, by the previous one too.
    fn sign(&self, job: &DeliveryJob, now: UnixMillis) -> Option<SignedRequest> {
        let timestamp = now.as_secs();
        let current = self.cipher.open(&job.secret).ok()?;
        let mut signature = current.sign(job.event_id.as_str(), timestamp, job.payload.as_bytes());
        if let Some(previous) = job
            .previous_secret
            .as_ref()
            .and_then(|s| self.cipher.open(s).ok())
        {
            signature.push(' ');
            signature.push_str(&previous.sign(
                job.event_id.as_str(),
                timestamp,
                job.payload.as_bytes(),
            ));
        }
        Some(SignedRequest {
            url: job.url.clone(),
            body: job.payload.clone(),
            webhook_id: job.event_id.as_str().to_owned(),
            webhook_timestamp: timestamp,
            webhook_signature: signature,
        })
    }

    /// What follows an attempt: success ends the delivery; `410 Gone` fails it
    /// and disables the webhook; other failures wait per the retry policy.
    pub fn next_step(
        &self,
        attempt: &Attempt,
        retry_after: Option<Duration>,
    ) -> (NextStep, EndpointHealth) {
        if attempt.succeeded() {
            return (NextStep::Succeeded, EndpointHealth::Healthy);
        }
        if attempt.response_status == Some(410) {
            return (NextStep::Failed, EndpointHealth::Gone);
        }
        let now = self.clock.now();
        let health = EndpointHealth::Failing {
            disable_if_failing_since: now.plus_millis(-millis(self.settings.disable_after)),
        };
        let next = match self.policy.wait_after(attempt.number, retry_after) {
            Some(wait) => NextStep::RetryAt(now.plus_millis(millis(wait))),
            None => NextStep::Failed,
        };
        (next, health)
    }
}

/// The recorder task: writes the attempts the workers hand over, as many as
/// have arrived at a time, until `workers_done` turns true; then writes what
/// is left and stops.
async fn record_batches(
    queue: Arc<dyn DeliveryQueue>,
    mut unrecorded: mpsc::Receiver<AttemptRecord>,
    mut workers_done: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        tokio::select! {
            biased;
            received = unrecorded.recv_many(&mut batch, RECORD_BATCH) => {
                if received == 0 {
                    return;
                }
                record_batch(queue.as_ref(), &batch).await;
                batch.clear();
            }
            _ = workers_done.changed() => {
                unrecorded.close();
                while unrecorded.recv_many(&mut batch, RECORD_BATCH).await > 0 {
                    record_batch(queue.as_ref(), &batch).await;
                    batch.clear();
                }
                return;
            }
        }
    }
}

/// Records a batch, trying once more after a failure (a dropped connection,
/// a deadlock between two processes): a lost batch means many deliveries
/// sent twice.
async fn record_batch(queue: &dyn DeliveryQueue, batch: &[AttemptRecord]) {
    if let Err(err) = queue.record_attempts(batch).await {
        tracing::warn!(attempts = batch.len(), error = %err, "cannot record attempts; trying once more");
        tokio::time::sleep(Duration::from_millis(50)).await;
        record_now(queue, batch).await;
    }
}

/// Records attempts in one transaction.
async fn record_now(queue: &dyn DeliveryQueue, records: &[AttemptRecord]) {
    if let Err(err) = queue.record_attempts(records).await {
        // The claims' leases run out and the deliveries are sent again: at
        // least once, never lost.
        for record in records {
            tracing::error!(delivery = %record.attempt.delivery_id, error = %err, "cannot record an attempt");
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
