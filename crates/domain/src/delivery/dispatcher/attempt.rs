//! One attempt at one delivery: its endpoint's rate limit, the Standard
//! Webhooks signature, the send, and what follows (done, a retry per the
//! [`RetryPolicy`](crate::RetryPolicy), or failed) with the webhook's health.

use std::time::Duration;

use super::{Dispatcher, LOG_TARGET};
use crate::delivery::recorder::record_now;
use crate::delivery::{
    Attempt, AttemptRecord, DeliveryJob, EndpointHealth, NextStep, SendOutcome, SignedRequest,
};
use crate::ids::EventId;
use crate::signing::{SealedSecret, SecretCipher};
use crate::time::millis;
use crate::time::UnixMillis;
use crate::webhooks::{CustomHeaders, SealedHeaders};

/// What one attempt left to do: the record to write, and whether the
/// endpoint gave no answer in time.
pub(super) struct Tried {
    pub(super) record: AttemptRecord,
    pub(super) timed_out: bool,
}

impl Dispatcher {
    /// One attempt at one delivery, recorded at once: rate limit, sign, send,
    /// record. For a job claimed by the caller, outside [`Dispatcher::run`];
    /// a job its rate limit holds back goes back to the queue unsent.
    pub async fn deliver(&self, job: DeliveryJob) {
        if let Some(tried) = self.attempt(job).await {
            record_now(self.queue.as_ref(), std::slice::from_ref(&tried.record)).await;
        }
    }

    /// One attempt at one delivery: rate limit, sign, send; answers what to
    /// record, or `None` when the delivery went back to the queue unsent.
    pub(super) async fn attempt(&self, job: DeliveryJob) -> Option<Tried> {
        if !self.take_rate_slot(&job).await {
            return None;
        }
        let started = self.clock.now();
        let signed = self.sign(&job, started);
        let outcome = match &signed {
            Ok(request) => self.sender.send(request).await,
            Err(what) => SendOutcome {
                error: Some(format!("cannot decrypt the {what}")),
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
        if let Err(what) = signed {
            // Our fault (wrong encryption key?), not the endpoint's.
            tracing::error!(target: LOG_TARGET, delivery = %attempt.delivery_id, "cannot decrypt the {what}: check secrets.encryption_key");
            health = EndpointHealth::Unchanged;
        }
        observe(&attempt, next);
        Some(Tried {
            record: AttemptRecord {
                attempt,
                next,
                health,
            },
            timed_out,
        })
    }

    /// Takes a slot of the job's rate limit in this second, if it has one;
    /// `false` when it got none and went back to the queue: at the next
    /// second when the window is full, after `busy_backoff` when the limit
    /// cannot be checked.
    async fn take_rate_slot(&self, job: &DeliveryJob) -> bool {
        let Some(limit) = job.rate_limit else {
            return true;
        };
        let second = self.clock.now().as_secs();
        match self
            .queue
            .take_rate_slot(&job.webhook_id, second, limit.per_second())
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                let next_second = UnixMillis((second + 1) * 1000);
                if let Err(err) = self.queue.release(&job.delivery_id, next_second).await {
                    tracing::warn!(target: LOG_TARGET, delivery = %job.delivery_id, error = %err, "cannot release a delivery");
                }
                false
            }
            Err(err) => {
                tracing::warn!(target: LOG_TARGET, error = %err, "cannot check the rate limit; trying later");
                self.release(job).await;
                false
            }
        }
    }

    /// The Standard Webhooks request for this attempt: signed by the current
    /// secret and, during a rotation's grace period, by the previous one too,
    /// with the webhook's custom headers; what could not be decrypted, if
    /// anything.
    fn sign(&self, job: &DeliveryJob, now: UnixMillis) -> Result<SignedRequest, &'static str> {
        let envelope = Envelope {
            url: &job.url,
            event_id: &job.event_id,
            payload: &job.payload,
            secret: &job.secret,
            previous: job.previous_secret.as_ref(),
            headers: job.headers.as_ref(),
        };
        sign_envelope(&self.cipher, &envelope, now)
    }

    /// What follows an attempt: success ends the delivery; `410 Gone` fails it
    /// and disables the webhook; other failures wait per the retry policy
    /// (a `Retry-After` may lengthen the wait) and count towards disabling a
    /// webhook that fails for `disable_after`.
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

/// The attempt's debug line and metrics.
fn observe(attempt: &Attempt, next: NextStep) {
    tracing::debug!(
        target: LOG_TARGET,
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
}

/// What a signed request is made of: where it goes, the event, and the
/// webhook's sealed secrets and custom headers.
pub(crate) struct Envelope<'a> {
    pub(crate) url: &'a str,
    pub(crate) event_id: &'a EventId,
    pub(crate) payload: &'a str,
    pub(crate) secret: &'a SealedSecret,
    /// The secret before the last rotation, while it still signs.
    pub(crate) previous: Option<&'a SealedSecret>,
    pub(crate) headers: Option<&'a SealedHeaders>,
}

/// The Standard Webhooks request of `envelope` at `now`: signed by its
/// secret and, when given, by the previous one too, with its custom
/// headers; what could not be decrypted, if anything.
pub(crate) fn sign_envelope(
    cipher: &SecretCipher,
    envelope: &Envelope<'_>,
    now: UnixMillis,
) -> Result<SignedRequest, &'static str> {
    let timestamp = now.as_secs();
    let (id, body) = (envelope.event_id.as_str(), envelope.payload.as_bytes());
    let current = cipher.open(envelope.secret).map_err(|_| "signing secret")?;
    let headers = match envelope.headers {
        Some(sealed) => cipher.open_headers(sealed).map_err(|_| "custom headers")?,
        None => CustomHeaders::default(),
    };
    let mut signature = current.sign(id, timestamp, body);
    if let Some(previous) = envelope.previous.and_then(|s| cipher.open(s).ok()) {
        signature.push(' ');
        signature.push_str(&previous.sign(id, timestamp, body));
    }
    Ok(SignedRequest {
        url: envelope.url.to_owned(),
        body: envelope.payload.to_owned(),
        webhook_id: id.to_owned(),
        webhook_timestamp: timestamp,
        webhook_signature: signature,
        headers,
    })
}
