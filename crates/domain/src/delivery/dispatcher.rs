//! The dispatch loop: claim due deliveries, sign, send, record, reschedule.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use super::recorder::{record_batches, record_now, write_in_order, Bookkeeping, RECORD_BATCH};
use crate::delivery::Wakeup;
use crate::delivery::{
    Attempt, AttemptRecord, DeliveryJob, EndpointHealth, NextStep, RetryPolicy, SendOutcome,
    SignedRequest,
};
use crate::delivery::{Circuit, CircuitSettings};
use crate::ids::{DeliveryId, WebhookId};
use crate::ports::{Clock, DeliveryQueue, OutboundSender};
use crate::signing::SecretCipher;
use crate::time::UnixMillis;

/// How a dispatcher shares out its work.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Deliveries held at once in this process: in flight, or claimed and
    /// waiting behind their endpoint's. A request waiting for its answer
    /// costs a task and a socket, not a thread, so this can be thousands.
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
    /// When an endpoint that keeps timing out is left alone.
    pub circuit: CircuitSettings,
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
            circuit: CircuitSettings::default(),
        }
    }
}

/// Claims due deliveries and sends them, as many at once as the settings allow.
pub struct Dispatcher {
    queue: Arc<dyn DeliveryQueue>,
    sender: Arc<dyn OutboundSender>,
    clock: Arc<dyn Clock>,
    cipher: SecretCipher,
    policy: RetryPolicy,
    settings: DispatchSettings,
    wakeup: Wakeup,
    /// One permit per delivery held (in flight or waiting).
    slots: Arc<Semaphore>,
    endpoints: Mutex<HashMap<WebhookId, EndpointState>>,
    /// Attempts made by the workers, and circuits opened, on their way to
    /// the recorder task, which writes them in this order.
    records: mpsc::Sender<Bookkeeping>,
    /// The recorder's end of `records`, until [`Dispatcher::run`] takes it.
    unrecorded: Mutex<Option<mpsc::Receiver<Bookkeeping>>>,
}

/// A webhook's deliveries in this process (in flight, and claimed but
/// waiting, each with its slot), and its circuit.
#[derive(Default)]
struct EndpointState {
    in_flight: usize,
    waiting: VecDeque<(DeliveryJob, OwnedSemaphorePermit)>,
    circuit: Circuit,
}

impl EndpointState {
    fn held(&self) -> usize {
        self.in_flight + self.waiting.len()
    }

    /// Whether the endpoint may hold one more delivery while `free` slots
    /// are left: not while its circuit is open; one probe at a time while it
    /// is half open; otherwise up to `per_endpoint` in flight and as many
    /// waiting, and only while it leaves at least as many slots free as it
    /// holds. That last rule is the fair share: an endpoint holding `k`
    /// stops growing when fewer than `k` slots are free, so endpoints that
    /// hang settle at about `workers / (n + 1)` each and a new endpoint
    /// always finds a slot.
    fn may_take(&self, free: usize, per_endpoint: usize, now: UnixMillis) -> bool {
        if self.circuit.is_open(now) {
            return false;
        }
        let held = self.held();
        if self.circuit.is_half_open(now) {
            return held == 0 && free > 0;
        }
        held < per_endpoint * 2 && free > held
    }

    /// Nothing in flight, nothing waiting, nothing to remember.
    fn is_idle(&self) -> bool {
        self.held() == 0 && self.circuit.is_closed()
    }
}

/// What a worker does after an attempt.
enum AfterAttempt {
    /// Send the next delivery waiting for the same endpoint, in its slot.
    Next(DeliveryJob, OwnedSemaphorePermit),
    /// Stop: nothing waits.
    Done,
    /// Stop: the endpoint's circuit just opened until then; these waited.
    Opened(UnixMillis, Vec<(DeliveryJob, OwnedSemaphorePermit)>),
}

/// What one attempt left to do: the record to write, and whether the
/// endpoint gave no answer in time.
struct Tried {
    record: AttemptRecord,
    timed_out: bool,
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
        let (records, unrecorded) = mpsc::channel(settings.workers.clamp(1, RECORD_BATCH * 4));
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
    /// Each delivery held takes one of `workers` slots. An endpoint has up to
    /// `per_endpoint` deliveries in flight and as many claimed ones waiting in
    /// memory behind them (a send that finishes goes on with the next one
    /// waiting for the same endpoint), and never more than its fair share
    /// (see `EndpointState::may_take`). A claim skips the endpoints that may
    /// take no more, so endpoints that hang hold their share and the rest
    /// keeps flowing. An endpoint that times out again and again has its
    /// circuit opened: its deliveries wait, visibly in the delivery log,
    /// until one probe gets an answer.
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
            let more_due = self.claim_round().await;
            if !more_due {
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
                .map(|(job, _slot)| job.delivery_id)
                .collect()
        };
        self.release_at(&waiting, self.clock.now()).await;
        let all = u32::try_from(self.settings.workers).unwrap_or(u32::MAX);
        let _drained = self.slots.acquire_many(all).await;
        // Every worker finished: the recorder writes what is left and stops.
        let _ = workers_done.send(true);
        if let Err(err) = recorder.await {
            tracing::error!(error = %err, "the attempt recorder failed; unrecorded deliveries are sent again when their leases run out");
        }
        tracing::info!("delivery workers stopped; nothing in flight");
    }

    /// Claims what the free slots allow and starts it; answers whether more
    /// may be due at once (a full batch that all started).
    async fn claim_round(self: &Arc<Self>) -> bool {
        let now = self.clock.now();
        let free = self.slots.available_permits();
        if free == 0 {
            // Every slot held: wait for a delivery to finish.
            return false;
        }
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
                tracing::warn!(error = %err, "cannot claim deliveries; retrying");
                return false;
            }
        };
        let claimed = jobs.len();
        let mut surplus: HashMap<UnixMillis, Vec<DeliveryId>> = HashMap::new();
        for job in jobs {
            if let Some((delivery, at)) = self.start(job) {
                surplus.entry(at).or_default().push(delivery);
            }
        }
        let started_all = surplus.is_empty();
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
        let per_endpoint = self.settings.per_endpoint.max(1);
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

    /// A worker: delivers its job, then the next ones waiting for the same
    /// endpoint, then frees its slot and wakes the claim loop. A timeout
    /// that opens the endpoint's circuit sends what waits back to the queue.
    async fn work(self: Arc<Self>, mut job: DeliveryJob, mut slot: OwnedSemaphorePermit) {
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
        self.wakeup.notify();
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
        tracing::warn!(webhook = %webhook, until = until.as_millis(), "the endpoint keeps timing out: its circuit is open, its deliveries wait");
        let waiting: Vec<_> = waiting
            .into_iter()
            .map(|(job, _slot)| job.delivery_id)
            .collect();
        self.release_at(&waiting, until).await;
        self.hand_over(Bookkeeping::Defer(webhook.clone(), until))
            .await;
    }

    /// Hands claimed deliveries back to the queue, due at `at`.
    async fn release_at(&self, deliveries: &[DeliveryId], at: UnixMillis) {
        if deliveries.is_empty() {
            return;
        }
        if let Err(err) = self.queue.release_many(deliveries, at).await {
            // Their leases run out by themselves; nothing is lost.
            tracing::warn!(deliveries = deliveries.len(), error = %err, "cannot release deliveries");
        }
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

    /// Passes bookkeeping to the recorder task; writes it here if the
    /// recorder has stopped.
    async fn hand_over(&self, item: Bookkeeping) {
        if let Err(mpsc::error::SendError(item)) = self.records.send(item).await {
            write_in_order(self.queue.as_ref(), &mut vec![item]).await;
        }
    }

    /// One attempt at one delivery: rate limit, sign, send, record.
    pub async fn deliver(&self, job: DeliveryJob) {
        if let Some(tried) = self.attempt(job).await {
            record_now(self.queue.as_ref(), std::slice::from_ref(&tried.record)).await;
        }
    }

    /// One attempt at one delivery: rate limit, sign, send; answers what to
    /// record, or `None` when the delivery went back to the queue unsent.
    async fn attempt(&self, job: DeliveryJob) -> Option<Tried> {
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
        let timed_out = outcome.timed_out;
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
        Some(Tried {
            record: AttemptRecord {
                attempt,
                next,
                health,
            },
            timed_out,
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

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(10_000_000);

    fn holding(in_flight: usize) -> EndpointState {
        EndpointState {
            in_flight,
            ..EndpointState::default()
        }
    }

    #[test]
    fn an_endpoint_holding_none_takes_a_delivery_while_one_slot_is_free() {
        assert!(holding(0).may_take(1, 32, NOW));
        assert!(!holding(0).may_take(0, 32, NOW));
    }

    #[test]
    fn an_endpoint_takes_another_only_while_it_leaves_as_many_slots_free_as_it_holds() {
        assert!(holding(10).may_take(11, 32, NOW));
        assert!(!holding(10).may_take(10, 32, NOW));
    }

    #[test]
    fn endpoints_that_hang_settle_at_a_fair_share_and_leave_room_for_another() {
        // 100 endpoints that never finish anything, 4096 slots: each grabs
        // what the rule allows, round after round.
        let workers = 4096;
        let mut held = vec![0usize; 100];
        loop {
            let mut grew = false;
            for n in 0..held.len() {
                let free = workers - held.iter().sum::<usize>();
                if holding(held[n]).may_take(free, 32, NOW) {
                    held[n] += 1;
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        let free = workers - held.iter().sum::<usize>();
        assert!(held.iter().all(|k| *k <= 64), "{held:?}");
        assert!(free >= 32, "{free} slots left");
        assert!(
            holding(0).may_take(free, 32, NOW),
            "a newcomer still gets one"
        );
    }

    #[test]
    fn no_more_than_per_endpoint_in_flight_and_as_many_waiting() {
        assert!(holding(63).may_take(4000, 32, NOW));
        assert!(!holding(64).may_take(4000, 32, NOW));
    }

    #[test]
    fn an_open_circuit_takes_nothing_and_a_half_open_one_one_probe() {
        let settings = CircuitSettings {
            timeouts_to_open: 1,
            ..CircuitSettings::default()
        };
        let mut state = holding(0);
        let until = state.circuit.record(true, NOW, &settings).unwrap();
        assert!(!state.may_take(4000, 32, NOW));
        assert!(state.may_take(4000, 32, until));
        state.in_flight = 1;
        assert!(!state.may_take(4000, 32, until), "one probe at a time");
    }
}
