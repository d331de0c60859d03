//! Deliveries (one event to one webhook) and their attempts.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
