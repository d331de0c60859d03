//! The dispatch loop of one process: claim due deliveries, sign, send,
//! record, reschedule.
//!
//! Each delivery held takes one of `workers` slots. An endpoint has up to
//! `per_endpoint` deliveries in flight and as many claimed ones waiting in
//! memory behind them (a send that finishes goes on with the next one waiting
//! for the same endpoint), and never more than its fair share. A claim skips
//! the endpoints that may take no more, so endpoints that hang hold their
//! share and the rest keeps flowing. An endpoint that times out again and
//! again has its circuit opened: its deliveries wait, visibly in the delivery
//! log, until one probe gets an answer.
//!
//! Workers hand their attempts to one recorder task, which writes whatever
//! has arrived in one transaction while the workers go on. Until it is
//! recorded, a delivery stays claimed, so no other worker sends it again.
//!
//! - `claim.rs`: a claim round, starting what it claimed, handing claims back.
//! - `endpoint.rs`: what this process holds per endpoint, and the fair share.
//! - `worker.rs`: a worker, sending one endpoint's deliveries in turn and
//!   counting them on its circuit.
//! - `attempt.rs`: one attempt at one delivery (rate limit, sign, send) and
//!   what follows from it.
//! - `hand_off.rs`: deliveries this process stores itself, taken without a
//!   claim (the [`LocalDispatch`](crate::ports::LocalDispatch) port).
//! - `shutdown.rs`: stopping without losing or repeating a claim.

mod attempt;
mod hand_off;

pub(crate) use attempt::{sign_envelope, Envelope};
pub use hand_off::HandOff;
mod claim;
mod endpoint;
mod shutdown;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};

use self::endpoint::EndpointState;
use super::recorder::{record_batches, Bookkeeping, RECORD_BATCH};
use crate::delivery::{CircuitSettings, RetryPolicy, Wakeup};
use crate::ids::WebhookId;
use crate::ports::{Clock, DeliveryQueue, OutboundSender};
use crate::signing::SecretCipher;

/// The target of the dispatcher's log lines, in every file of this folder,
/// so that log filters name one module.
const LOG_TARGET: &str = "webhooks_domain::delivery::dispatcher";

/// How a dispatcher shares out its work.
///
/// ```
/// use std::time::Duration;
/// use webhooks_domain::DispatchSettings;
/// let mut settings = DispatchSettings::for_timeout(Duration::from_secs(15), 256);
/// settings.per_endpoint = 8;
/// assert_eq!(settings.lease, Duration::from_secs(45));
/// ```
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
    /// Sensible values for an attempt timeout: a lease of the timeout plus
    /// 30 s, 32 deliveries in flight per endpoint, disabled after 5 days of
    /// failures. `workers` is at least 1.
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
///
/// A service starts one per process that delivers, with the same [`Wakeup`]
/// as its [`EventPublisher`](crate::EventPublisher), and stops it through a
/// `watch` channel:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use webhooks_domain::ports::{MockDeliveryQueue, MockOutboundSender};
/// use webhooks_domain::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A real service passes its storage adapter's queue and its HTTP sender.
/// let mut queue = MockDeliveryQueue::new();
/// queue.expect_claim_due().returning(|_, _, _, _| Ok(Vec::new()));
/// let wakeup = Wakeup::default();
/// let dispatcher = Arc::new(Dispatcher::new(
///     Arc::new(queue),
///     Arc::new(MockOutboundSender::new()),
///     Arc::new(SystemClock),
///     SecretCipher::new(&[7u8; 32])?,
///     RetryPolicy::new(vec![Duration::from_secs(5), Duration::from_secs(300)]),
///     DispatchSettings::for_timeout(Duration::from_secs(15), 64),
///     wakeup.clone(),
/// ));
/// let (stop, stopped) = tokio::sync::watch::channel(false);
/// let running = tokio::spawn(Arc::clone(&dispatcher).run(stopped));
///
/// wakeup.notify(); // what a publisher does: new work is due
///
/// stop.send(true)?; // no more claims; what is in flight finishes
/// running.await?;
/// # Ok(())
/// # }
/// ```
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
    /// Whether due deliveries may have been left in the queue for want of
    /// room (a full claim, endpoints skipped, a FIFO head taken, a
    /// hand-off refused): then a worker that frees its slot starts a claim
    /// round. Otherwise new work announces itself (wake-ups, hand-offs) and
    /// the poll finds retries.
    backlog: AtomicBool,
    /// Set once the last claim round is over: no more hand-offs.
    stopping: AtomicBool,
}

impl Dispatcher {
    /// A dispatcher that does nothing until [`Dispatcher::run`]; `cipher`
    /// opens the sealed signing secrets of the claimed deliveries.
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
            backlog: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
        }
    }

    /// Notes that due deliveries may be waiting in the queue for room.
    fn note_backlog(&self) {
        self.backlog.store(true, Ordering::Release);
    }

    /// Runs until `shutdown` turns true, then stops claiming and waits for the
    /// deliveries in flight to finish (each is bounded by the attempt timeout).
    /// Claims wait for a [`Wakeup`], or for `poll_interval`, when the last
    /// round found nothing more due.
    ///
    /// The recorder task writes whatever the workers handed over in one
    /// transaction (up to 256 attempts at a time): on a busy queue, one round
    /// of statements records many deliveries; on a quiet one, each is
    /// recorded at once. Call it once per dispatcher.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let unrecorded = self
            .unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(unrecorded) = unrecorded else {
            tracing::error!(target: LOG_TARGET, "a dispatcher runs once; this one already ran");
            return;
        };
        let (workers_done, recorder_stop) = watch::channel(false);
        let recorder = tokio::spawn(record_batches(
            Arc::clone(&self.queue),
            unrecorded,
            recorder_stop,
        ));
        tracing::info!(target: LOG_TARGET, workers = self.settings.workers, "delivery workers started");
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
        self.shut_down(workers_done, recorder).await;
    }
}
