//! One log line and the metrics of every request, under a request id that is
//! taken from `x-request-id` (when it looks like one) or made up, and echoed
//! back. Headers are never logged: they carry API keys and tokens.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;
use tracing::Instrument;

/// The log target this module has always had, kept when it moved to its folder,
/// so log filters and log lines stay the same.
const LOG_TARGET: &str = "webhooks_adapters_http::telemetry";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id accepted from a client.
const MAX_REQUEST_ID_LEN: usize = 128;

/// A client's request id is kept only if it is short and plain, so it cannot
/// forge log lines or carry anything odd into them.
fn accepted_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let plain = !text.is_empty()
        && text.len() <= MAX_REQUEST_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    plain.then(|| text.to_owned())
}

/// The middleware: wrap the whole `App` with `from_fn(observe)`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(accepted_request_id)
        .unwrap_or_else(|| ulid::Ulid::new().to_string().to_ascii_lowercase());
    let method = req.method().to_string();
    // The route's pattern, not the path, keeps the metric labels few.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let path = req.path().to_owned();
    let span = tracing::info_span!(target: LOG_TARGET, "request", request_id = %request_id);
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.as_response_error().status_code().as_u16(),
    };
    span.in_scope(|| {
        tracing::info!(
            target: LOG_TARGET,
            method = %method,
            path = %path,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    });
    metrics::counter!(
        "webhooks_http_requests_total",
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "webhooks_http_request_duration_seconds",
        "route" => route,
        "method" => method
    )
    .record(elapsed.as_secs_f64());
    let mut response = result?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_request_ids_are_kept_and_others_replaced() {
        let id = |raw: &str| accepted_request_id(&HeaderValue::from_str(raw).unwrap());
        assert_eq!(id("abc-123_x.y:z").as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(id(""), None);
        assert_eq!(id("has space"), None);
        assert_eq!(id("new\\nline"), None);
        assert_eq!(id(&"a".repeat(129)), None);
    }
}
