//! Deliveries (one event to one webhook) and their attempts.

use std::time::Duration;

use crate::ids::{DeliveryId, EventId, GroupId, WebhookId};
use crate::signing::SealedSecret;
use crate::time::UnixMillis;
use crate::webhooks::{CustomHeaders, DeliveryOrdering, RateLimit, SealedHeaders};

/// The most of a receiver's answer kept with an attempt.
pub const MAX_RESPONSE_BODY_BYTES: usize = 4096;

/// The event type of a test send; no webhook subscribes to it.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted now).
    Pending,
    /// The receiver answered 2xx: done.
    Succeeded,
    /// Every scheduled attempt failed, or the endpoint is gone.
    Failed,
}

impl DeliveryStatus {
    /// The name the API and the database use: `pending`, `succeeded`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status of one of the names [`DeliveryStatus::as_str`] gives;
    /// `None` for anything else (case matters).
    ///
    /// ```
    /// use webhooks_domain::DeliveryStatus;
    /// assert_eq!(DeliveryStatus::parse("failed"), Some(DeliveryStatus::Failed));
    /// assert_eq!(DeliveryStatus::parse("Failed"), None);
    /// ```
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
    /// Its id (`dlv_…`).
    pub id: DeliveryId,
    /// The event delivered; the same for every webhook the event went to.
    pub event_id: EventId,
    /// The event's type, such as `user.created`.
    pub event_type: String,
    /// The webhook it goes to.
    pub webhook_id: WebhookId,
    /// The webhook's group.
    pub group_id: GroupId,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempt_count: u32,
    /// When the next attempt is due; `None` once the delivery is final.
    pub next_attempt_at: Option<UnixMillis>,
    /// When it was made, with its event.
    pub created_at: UnixMillis,
    /// When it last changed.
    pub updated_at: UnixMillis,
}

/// One try at sending a delivery, as recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery tried.
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt.
    pub number: u32,
    /// When the request was signed and sent.
    pub attempted_at: UnixMillis,
    /// How long the attempt took.
    pub duration_ms: i64,
    /// The receiver's HTTP status, when it answered.
    pub response_status: Option<u16>,
    /// The first 4 KiB of its answer (lossy UTF-8).
    pub response_body: Option<String>,
    /// Why the attempt failed without an HTTP answer (timeout, refused, blocked).
    pub error: Option<String>,
}

impl Attempt {
    /// Whether the receiver answered 2xx; any other answer, or none, is a failure.
    pub fn succeeded(&self) -> bool {
        self.response_status
            .is_some_and(|s| (200..300).contains(&s))
    }
}

/// A delivery with its attempts and the body it sends, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDetail {
    /// The delivery.
    pub delivery: Delivery,
    /// The exact body every attempt sends.
    pub payload: String,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// A claimed delivery with everything needed to send it, as
/// [`DeliveryQueue::claim_due`](crate::DeliveryQueue::claim_due) answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    /// The delivery claimed.
    pub delivery_id: DeliveryId,
    /// Its event: the `webhook-id` header, and part of what is signed.
    pub event_id: EventId,
    /// Attempts already made; this one is `attempts_made + 1`.
    pub attempts_made: u32,
    /// The exact body to send.
    pub payload: String,
    /// The webhook it goes to.
    pub webhook_id: WebhookId,
    /// The webhook's URL as stored.
    pub url: String,
    /// The webhook's signing secret, sealed.
    pub secret: SealedSecret,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<SealedSecret>,
    /// The webhook's limit on deliveries per second, if it has one.
    pub rate_limit: Option<RateLimit>,
    /// The webhook's custom headers, sealed; `None` for none.
    pub headers: Option<SealedHeaders>,
    /// The webhook's ordering: with [`DeliveryOrdering::Fifo`] a dispatcher
    /// sends one of its deliveries at a time.
    pub ordering: Option<DeliveryOrdering>,
    /// When the delivery was created.
    pub created_at: UnixMillis,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Done: the delivery is `succeeded`.
    Succeeded,
    /// Still `pending`, due again then.
    RetryAt(UnixMillis),
    /// Done: the delivery is `failed` (no attempt left, or `410 Gone`).
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
        /// `now - disable_after`: a streak older than this disables.
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
    /// The attempt, for the delivery log.
    pub attempt: Attempt,
    /// The delivery's new status and schedule.
    pub next: NextStep,
    /// What to change in the webhook's health.
    pub health: EndpointHealth,
}

/// A signed request, ready for the outbound sender: a `POST` of `body` to
/// `url` with the three Standard Webhooks headers and the webhook's custom
/// headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// Where to send it, as the webhook stores it.
    pub url: String,
    /// The JSON body, sent byte for byte as signed.
    pub body: String,
    /// The `webhook-id` header: the event id, the same on every attempt.
    pub webhook_id: String,
    /// The `webhook-timestamp` header: this attempt's time, Unix seconds.
    pub webhook_timestamp: i64,
    /// The `webhook-signature` header: `v1,<base64>`, two of them separated
    /// by a space during a secret rotation's grace period.
    pub webhook_signature: String,
    /// The webhook's custom headers, in the clear (`Debug` masks them); the
    /// sender adds them beside its own, which they can never replace.
    pub headers: CustomHeaders,
}

/// What the receiver did with a request, as an
/// [`OutboundSender`](crate::OutboundSender) reports it: an answer (`status`
/// and `body`) or an `error`, never both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendOutcome {
    /// The HTTP status of the answer, if one came.
    pub status: Option<u16>,
    /// The start of the answer's body, at most [`MAX_RESPONSE_BODY_BYTES`].
    pub body: Option<String>,
    /// Why no answer came, in a short text for the delivery log (never the
    /// URL or the headers).
    pub error: Option<String>,
    /// `Retry-After` of a 429 or 503 answer.
    pub retry_after: Option<Duration>,
    /// How long the request took.
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
