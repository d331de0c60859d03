//! Self-healing endpoints: a webhook disabled because it kept failing (not
//! one a person disabled, nor one that answered `410 Gone`) is probed on a
//! back-off schedule with a signed test event, sent straight through the
//! [`OutboundSender`]; after enough 2xx answers in a row it is enabled
//! again, and its waiting deliveries flow.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Map;
use tokio::sync::watch;

use crate::delivery::{sign_envelope, Envelope, Wakeup, TEST_EVENT_TYPE};
use crate::error::RepositoryError;
use crate::events::Event;
use crate::ids::{EventId, GroupId, WebhookId};
use crate::ports::{Clock, IdSource, OutboundSender, ProbeStore};
use crate::signing::{SealedSecret, SecretCipher};
use crate::time::{millis, stopped_within, UnixMillis};
use crate::webhooks::SealedHeaders;

/// The probing schedule.
///
/// ```
/// use std::time::Duration;
/// use webhooks_domain::ProbePolicy;
///
/// let policy = ProbePolicy::default();
/// assert_eq!(policy.wait_after_failure(None), Duration::from_secs(120));
/// assert_eq!(policy.wait_after_failure(Some(Duration::from_secs(3000))), Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePolicy {
    /// After disabling, the first probe; after a successful probe, the next.
    pub first: Duration,
    /// The longest wait between two probes: the wait doubles after each
    /// failed probe up to this.
    pub max: Duration,
    /// How long after disabling probing stops for good.
    pub give_up_after: Duration,
    /// 2xx answers in a row that enable the webhook again.
    pub successes: u32,
}

impl Default for ProbePolicy {
    /// 1 minute, doubling to 1 hour, for 3 days; 3 successes.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(60),
            max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            successes: 3,
        }
    }
}

impl ProbePolicy {
    /// The wait after a failed probe that came `previous` after the one
    /// before it (`None`: the first probe, which came [`ProbePolicy::first`]
    /// after disabling): twice that, at most [`ProbePolicy::max`].
    pub fn wait_after_failure(&self, previous: Option<Duration>) -> Duration {
        previous
            .unwrap_or(self.first)
            .saturating_mul(2)
            .min(self.max)
    }

    /// What follows a probe of `target` answered with `status` at `now`.
    pub fn next(&self, target: &ProbeTarget, status: Option<u16>, now: UnixMillis) -> ProbeNext {
        if status.is_some_and(|status| (200..300).contains(&status)) {
            let successes = target.successes + 1;
            if successes >= self.successes {
                return ProbeNext::Enable;
            }
            return ProbeNext::Again {
                at: now.plus_millis(millis(self.first)),
                wait: self.first,
                successes,
            };
        }
        let wait = self.wait_after_failure(target.wait);
        ProbeNext::Again {
            at: now.plus_millis(millis(wait)),
            wait,
            successes: 0,
        }
    }

    /// How often the prober looks for due probes: the first wait, at most
    /// every few seconds.
    pub fn tick(&self) -> Duration {
        self.first
            .clamp(Duration::from_millis(10), Duration::from_secs(5))
    }
}

/// A webhook whose probe is due, as [`ProbeStore::claim_due_probes`]
/// answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The webhook.
    pub webhook_id: WebhookId,
    /// Its group.
    pub group_id: GroupId,
    /// Its URL as stored.
    pub url: String,
    /// Its signing secret, sealed.
    pub secret: SealedSecret,
    /// Its custom headers, sealed.
    pub headers: Option<SealedHeaders>,
    /// 2xx answers in a row so far.
    pub successes: u32,
    /// The wait before this probe; `None` for the first one.
    pub wait: Option<Duration>,
}

/// What follows a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeNext {
    /// Probe again at `at`, `wait` after this one, with `successes` in a row.
    Again {
        /// When.
        at: UnixMillis,
        /// The wait before that probe.
        wait: Duration,
        /// 2xx answers in a row, this one included.
        successes: u32,
    },
    /// Enough successes: enable the webhook again.
    Enable,
}

/// The probing task of a worker process.
pub struct Prober {
    store: Arc<dyn ProbeStore>,
    sender: Arc<dyn OutboundSender>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    cipher: SecretCipher,
    policy: ProbePolicy,
    wakeup: Wakeup,
}

/// Probes one pass takes at most.
const PROBES_PER_PASS: usize = 32;
/// How long a claimed probe stays hidden from other processes. A pass
/// sends no probe after half of it, so that with an attempt timeout of up
/// to a minute no probe outlives its lease; those it leaves are due again
/// when the lease ends.
const PROBE_LEASE: Duration = Duration::from_secs(120);

impl Prober {
    /// A prober over its ports; `wakeup` tells this process's dispatcher
    /// that a webhook's deliveries may flow again.
    pub fn new(
        store: Arc<dyn ProbeStore>,
        sender: Arc<dyn OutboundSender>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        cipher: SecretCipher,
        policy: ProbePolicy,
        wakeup: Wakeup,
    ) -> Self {
        Self {
            store,
            sender,
            clock,
            ids,
            cipher,
            policy,
            wakeup,
        }
    }

    /// Probes until `shutdown` turns true; a failed pass is logged and
    /// retried at the next tick.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            if let Err(error) = self.probe_due().await {
                tracing::warn!(%error, "probe pass failed");
            }
            let tick = self.policy.tick();
            if stopped_within(&mut shutdown, tick).await {
                return;
            }
        }
    }

    /// One pass: claims the due probes, sends each (until half the lease
    /// has gone) and records what follows; answers how many webhooks it
    /// enabled again.
    /// Errors: those of the [`ProbeStore`].
    pub async fn probe_due(&self) -> Result<usize, RepositoryError> {
        let now = self.clock.now();
        let give_up = now.plus_millis(-millis(self.policy.give_up_after));
        let lease = now.plus_millis(millis(PROBE_LEASE));
        let targets = self
            .store
            .claim_due_probes(now, self.policy.first, give_up, PROBES_PER_PASS, lease)
            .await?;
        let stop_sending = now.plus_millis(millis(PROBE_LEASE) / 2);
        let mut enabled = 0;
        for target in targets {
            if self.clock.now() >= stop_sending {
                break;
            }
            let status = self.send(&target).await;
            let outcome = if status.is_some_and(|s| (200..300).contains(&s)) {
                "succeeded"
            } else {
                "failed"
            };
            metrics::counter!("webhooks_probes_total", "outcome" => outcome).increment(1);
            let next = self.policy.next(&target, status, self.clock.now());
            let recorded = self
                .store
                .record_probe(&target.webhook_id, next, self.clock.now())
                .await?;
            if recorded && next == ProbeNext::Enable {
                metrics::counter!("webhooks_probe_reenabled_total").increment(1);
                tracing::info!(webhook = %target.webhook_id, "webhook enabled again by probes");
                enabled += 1;
            }
        }
        if enabled > 0 {
            self.wakeup.notify();
        }
        Ok(enabled)
    }

    /// Sends a signed test event to the target; the answer's status, if any.
    async fn send(&self, target: &ProbeTarget) -> Option<u16> {
        let now = self.clock.now();
        let event = Event::new(
            EventId::from_ulid(self.ids.ulid()),
            target.group_id,
            TEST_EVENT_TYPE,
            &Map::new(),
            now,
            None,
        );
        let envelope = Envelope {
            url: &target.url,
            event_id: &event.id,
            payload: &event.payload,
            secret: &target.secret,
            previous: None,
            headers: target.headers.as_ref(),
        };
        match sign_envelope(&self.cipher, &envelope, now) {
            Ok(request) => self.sender.send(&request).await.status,
            Err(what) => {
                tracing::warn!(webhook = %target.webhook_id, what, "cannot sign a probe");
                None
            }
        }
    }
}
