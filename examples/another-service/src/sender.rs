//! The outbound port, implemented with a plain `reqwest` client: the domain's
//! `Dispatcher` sends through whatever `OutboundSender` it is given.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use webhooks_domain::{OutboundSender, SendOutcome, SignedRequest};

/// POSTs each delivery with the Standard Webhooks headers.
pub struct ReqwestSender(reqwest::Client);

impl ReqwestSender {
    /// A client that gives up on an attempt after `timeout`. No proxy: the
    /// receiver is on loopback.
    pub fn new(timeout: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()?;
        Ok(Self(client))
    }
}

#[async_trait]
impl OutboundSender for ReqwestSender {
    async fn send(&self, request: &SignedRequest) -> SendOutcome {
        let started = Instant::now();
        let answer = self
            .0
            .post(&request.url)
            .header("content-type", "application/json")
            .header("webhook-id", &request.webhook_id)
            .header("webhook-timestamp", request.webhook_timestamp.to_string())
            .header("webhook-signature", &request.webhook_signature)
            .body(request.body.clone())
            .send()
            .await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match answer {
            Ok(response) => SendOutcome {
                status: Some(response.status().as_u16()),
                duration_ms,
                ..SendOutcome::default()
            },
            Err(err) => SendOutcome {
                error: Some(err.to_string()),
                timed_out: err.is_timeout(),
                duration_ms,
                ..SendOutcome::default()
            },
        }
    }
}
