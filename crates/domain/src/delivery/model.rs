//! Deliveries (one event to one webhook), their attempts, and the retry policy.

use std::time::Duration;

use rand::Rng;

use crate::ids::{DeliveryId, EventId, GroupId, WebhookId};
use crate::signing::SealedSecret;
use crate::time::UnixMillis;
use crate::webhooks::RateLimit;

/// The most of a receiver's answer kept with an attempt.
pub const MAX_RESPONSE_BODY_BYTES: usize = 4096;

/// The event type of a test send; no webhook subscribes to it.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted now).
    Pending,
    Succeeded,
    /// Every scheduled attempt failed, or the endpoint is gone.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub webhook_id: WebhookId,
    pub group_id: GroupId,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    /// When the next attempt is due; `None` once the delivery is final.
    pub next_attempt_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// One try at sending a delivery, as recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt.
    pub number: u32,
    pub attempted_at: UnixMillis,
    pub duration_ms: i64,
    /// The receiver's HTTP status, when it answered.
    pub response_status: Option<u16>,
    /// The first 4 KiB of its answer (lossy UTF-8).
    pub response_body: Option<String>,
    /// Why the attempt failed without an HTTP answer (timeout, refused, blocked).
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.response_status
            .is_some_and(|s| (200..300).contains(&s))
    }
}

/// A delivery with its attempts and the body it sends, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub payload: String,
    pub attempts: Vec<Attempt>,
}

/// A claimed delivery with everything needed to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    /// Attempts already made; this one is `attempts_made + 1`.
    pub attempts_made: u32,
    pub payload: String,
    pub webhook_id: WebhookId,
    pub url: String,
    pub secret: SealedSecret,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<SealedSecret>,
    pub rate_limit: Option<RateLimit>,
    /// When the delivery was created, for the send-to-arrival figures.
    pub created_at: UnixMillis,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryAt(UnixMillis),
    Failed,
}

/// What an attempt says about the webhook's health, applied with the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    /// A 2xx: the endpoint works; its failure streak ends.
    Healthy,
    /// A failure: the streak starts now unless it runs already; a streak that
    /// began before `disable_if_failing_since` disables the webhook.
    Failing {
        disable_if_failing_since: UnixMillis,
    },
    /// `410 Gone`: the receiver asks us to stop; disable at once.
    Gone,
    /// The attempt failed on our side (e.g. a secret that cannot be
    /// decrypted): it says nothing about the endpoint.
    Unchanged,
}

/// An attempt with what follows from it, as the queue records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: Attempt,
    pub next: NextStep,
    pub health: EndpointHealth,
}

/// A signed request, ready for the outbound sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub url: String,
    pub body: String,
    pub webhook_id: String,
    pub webhook_timestamp: i64,
    pub webhook_signature: String,
}

/// What the receiver did with a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendOutcome {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<String>,
    /// `Retry-After` of a 429 or 503 answer.
    pub retry_after: Option<Duration>,
    pub duration_ms: i64,
    /// No answer came within the attempt timeout (or the connect timeout):
    /// counted by the endpoint's [`crate::Circuit`].
    pub timed_out: bool,
}

/// When to try again after a failed attempt.
///
/// ```
/// use std::time::Duration;
/// use webhooks_domain::RetryPolicy;
/// let policy = RetryPolicy::new(vec![Duration::from_secs(5), Duration::from_secs(300)]);
/// let wait = policy.wait_after(1, None).unwrap();
/// assert!(wait >= Duration::from_secs(4) && wait <= Duration::from_secs(6));
/// assert_eq!(policy.wait_after(3, None), None); // schedule exhausted: failed
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
    jitter: f64,
}

impl RetryPolicy {
    /// The waits between attempts, with ±20 % jitter.
    pub fn new(schedule: Vec<Duration>) -> Self {
        Self {
            schedule,
            jitter: 0.2,
        }
    }

    /// Without jitter, for tests that pin times.
    pub fn exact(schedule: Vec<Duration>) -> Self {
        Self {
            schedule,
            jitter: 0.0,
        }
    }

    /// The wait after the `attempts_made`-th failure, or `None` when the
    /// schedule is exhausted. A receiver's `Retry-After` may lengthen the
    /// wait up to twice the scheduled one, never shorten it.
    pub fn wait_after(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        let scheduled = *self.schedule.get(index)?;
        let factor = if self.jitter > 0.0 {
            rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter))
        } else {
            1.0
        };
        let jittered = scheduled.mul_f64(factor);
        Some(match retry_after {
            Some(asked) => jittered.max(asked.min(scheduled * 2)),
            None => jittered,
        })
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> usize {
        self.schedule.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_lengthens_up_to_twice_the_schedule_and_never_shortens() {
        let policy = RetryPolicy::exact(vec![Duration::from_secs(10)]);
        let asked = |secs| policy.wait_after(1, Some(Duration::from_secs(secs)));
        assert_eq!(asked(15), Some(Duration::from_secs(15)));
        assert_eq!(asked(3600), Some(Duration::from_secs(20)));
        assert_eq!(asked(1), Some(Duration::from_secs(10)));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(100); 3]);
        for attempt in 1..=3 {
            let wait = policy.wait_after(attempt, None).unwrap();
            assert!(wait >= Duration::from_secs(80) && wait <= Duration::from_secs(120));
        }
        assert_eq!(policy.wait_after(4, None), None);
        assert_eq!(policy.wait_after(0, None), None);
        assert_eq!(policy.max_attempts(), 4);
    }

    #[test]
    fn only_2xx_is_success() {
        let attempt = |status| Attempt {
            delivery_id: DeliveryId::from_ulid(ulid::Ulid::nil()),
            number: 1,
            attempted_at: UnixMillis(0),
            duration_ms: 1,
            response_status: status,
            response_body: None,
            error: None,
        };
        assert!(attempt(Some(200)).succeeded());
        assert!(attempt(Some(204)).succeeded());
        assert!(!attempt(Some(301)).succeeded());
        assert!(!attempt(Some(500)).succeeded());
        assert!(!attempt(None).succeeded());
    }
}
