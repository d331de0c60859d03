//! [`HttpSender`]: one pooled HTTP/1.1 client that POSTs a signed delivery
//! and reports whatever happens as a [`SendOutcome`], reading at most
//! [`MAX_RESPONSE_BODY_BYTES`] of the answer and its `Retry-After`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ipnet::IpNet;
use thiserror::Error;
use tokio::time::{timeout_at, Instant};
use url::{Host, Url};
use webhooks_domain::{OutboundSender, SendOutcome, SignedRequest, MAX_RESPONSE_BODY_BYTES};

use super::failure::{classify, Failure};
use super::ssrf::DestinationGuard;

/// The log target this module has always had, kept when it moved to its folder,
/// so log filters and log lines stay the same.
const LOG_TARGET: &str = "webhooks_adapters_http::sender";

/// Connecting (DNS included) never takes longer than this, even with a longer
/// total timeout: a host that does not accept within 10 s is down.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest attempt timeout accepted; far longer than any receiver should
/// need, and short enough that deadlines never overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const POOL_MAX_IDLE_PER_HOST: usize = 32;
/// The client's connector: the guard resolves names, rustls speaks TLS.
type Connector = HttpsConnector<HttpConnector<DestinationGuard>>;

/// How the sender behaves; the `app` crate fills it from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderSettings {
    /// The most one attempt may take, from connecting to the last byte kept
    /// of the answer (`delivery.timeout`, 15 s by default).
    pub timeout: Duration,
    /// Networks reachable although [`is_forbidden`](super::is_forbidden) refuses them, such as
    /// `127.0.0.0/8` in development and tests.
    pub allow_networks: Vec<IpNet>,
    /// The `user-agent` of every request, e.g. `okaya-webhooks/0.1.0`.
    pub user_agent: String,
}

/// Why [`HttpSender::new`] refused its settings.
#[derive(Debug, Error)]
pub enum SenderError {
    /// [`SenderSettings::timeout`] is zero or longer than 24 hours.
    #[error("the delivery timeout must be longer than zero and at most 24h, not {0:?}")]
    InvalidTimeout(Duration),
    /// [`SenderSettings::user_agent`] cannot be sent as a header.
    #[error("the user agent {0:?} is not a valid header value")]
    InvalidUserAgent(String),
    /// The HTTP client could not be built (such as its TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Sends signed deliveries over one pooled HTTP/1.1 client.
///
/// Cheap to clone: clones share the connection pool.
///
/// ```
/// use std::time::Duration;
/// use webhooks_adapters_http::{HttpSender, SenderSettings};
/// let sender = HttpSender::new(SenderSettings {
///     timeout: Duration::from_secs(15),
///     allow_networks: Vec::new(),
///     user_agent: "my-service/1.0".to_owned(),
/// })?;
/// // An `Arc<dyn OutboundSender>` for the domain's `Dispatcher`:
/// let sender: std::sync::Arc<dyn webhooks_domain::OutboundSender> = std::sync::Arc::new(sender);
/// # Ok::<(), webhooks_adapters_http::SenderError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: Client<Connector, Full<Bytes>>,
    guard: DestinationGuard,
    user_agent: HeaderValue,
    timeout: Duration,
    connect_timeout: Duration,
}

impl HttpSender {
    /// Builds the client once. It uses no proxy (one would connect on our
    /// behalf and bypass the guard) and follows no redirect.
    pub fn new(settings: SenderSettings) -> Result<Self, SenderError> {
        if settings.timeout.is_zero() || settings.timeout > MAX_TIMEOUT {
            return Err(SenderError::InvalidTimeout(settings.timeout));
        }
        let user_agent = HeaderValue::from_str(&settings.user_agent)
            .map_err(|_| SenderError::InvalidUserAgent(settings.user_agent.clone()))?;
        let connect_timeout = settings.timeout.min(MAX_CONNECT_TIMEOUT);
        let guard = DestinationGuard::new(settings.allow_networks);
        let mut http = HttpConnector::new_with_resolver(guard.clone());
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .build(connector);
        Ok(Self {
            client,
            guard,
            user_agent,
            timeout: settings.timeout,
            connect_timeout,
        })
    }

    /// One POST, answered by `deadline`: the answer's status, its first
    /// bytes and its `Retry-After`, or why none came.
    async fn attempt(
        &self,
        request: &SignedRequest,
        deadline: Instant,
    ) -> Result<SendOutcome, Failure> {
        let uri = self.destination(&request.url)?;
        let mut post = Request::new(Full::new(Bytes::from(request.body.clone())));
        *post.method_mut() = Method::POST;
        *post.uri_mut() = uri;
        *post.headers_mut() = webhook_headers(request)?;
        post.headers_mut()
            .insert(USER_AGENT, self.user_agent.clone());
        let mut response = match timeout_at(deadline, self.client.request(post)).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(classify(&err, self.connect_timeout)),
            Err(_elapsed) => return Err(Failure::Timeout(self.timeout)),
        };
        let status = response.status();
        let retry_after = retry_after(status, response.headers(), SystemTime::now());
        let mut kept = Vec::new();
        // The receiver answered: its status counts even if the rest of the
        // body stalls, so keep what came before the deadline.
        if timeout_at(deadline, read_prefix(&mut response, &mut kept))
            .await
            .is_err()
        {
            tracing::debug!(
                target: LOG_TARGET,
                status = status.as_u16(),
                "answer body cut at the timeout"
            );
        }
        Ok(SendOutcome {
            status: Some(status.as_u16()),
            body: Some(kept_text(&kept)),
            error: None,
            retry_after,
            duration_ms: 0,
            timed_out: false,
        })
    }

    /// Parses the URL and checks an address written in it: the client's
    /// resolver, where the guard sits, only ever sees names.
    fn destination(&self, raw: &str) -> Result<Uri, Failure> {
        let url = Url::parse(raw).map_err(|err| Failure::InvalidUrl(err.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::UnsupportedScheme(url.scheme().to_owned()));
        }
        // The API refuses `user:pass@` in URLs (`WebhookUrl`); a webhook saved
        // before that rule is not sent, rather than sent with the credential
        // in view.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Failure::InvalidUrl(
                "a user name or password in the URL is not sent; remove it from the webhook's URL"
                    .to_owned(),
            ));
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => None,
            None => return Err(Failure::InvalidUrl("no host".to_owned())),
        };
        if let Some(ip) = literal {
            self.guard.check(ip).map_err(Failure::Blocked)?;
        }
        // The URL as `url` normalised it (host in punycode, path
        // percent-encoded), which `Uri` accepts; the fragment is not sent.
        let mut sent = url;
        sent.set_fragment(None);
        Uri::try_from(sent.as_str()).map_err(|err| Failure::InvalidUrl(err.to_string()))
    }
}

#[async_trait]
impl OutboundSender for HttpSender {
    async fn send(&self, request: &SignedRequest) -> SendOutcome {
        let started = Instant::now();
        let mut outcome = match self.attempt(request, started + self.timeout).await {
            Ok(outcome) => outcome,
            Err(failure) => SendOutcome {
                timed_out: matches!(failure, Failure::Timeout(_) | Failure::ConnectTimeout(_)),
                error: Some(failure.to_string()),
                ..SendOutcome::default()
            },
        };
        outcome.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        outcome
    }
}

/// rustls with its ring provider, the default protocol versions (TLS 1.2
/// and 1.3) and the Mozilla roots, as browsers trust them; HTTP/1.1 by ALPN.
fn tls_config() -> Result<rustls::ClientConfig, SenderError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| SenderError::Client(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The webhook's custom headers, then `content-type` and the three Standard
/// Webhooks headers, which replace any custom header of the same name (the
/// domain refuses such names; this keeps them ours whatever a sender is given).
fn webhook_headers(request: &SignedRequest) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::with_capacity(4);
    for (name, value) in request.headers.iter() {
        let name = HeaderName::try_from(name).map_err(|_| Failure::InvalidHeader("custom"))?;
        let value = HeaderValue::try_from(value).map_err(|_| Failure::InvalidHeader("custom"))?;
        headers.insert(name, value);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let webhook_headers = [
        ("webhook-id", request.webhook_id.clone()),
        ("webhook-timestamp", request.webhook_timestamp.to_string()),
        ("webhook-signature", request.webhook_signature.clone()),
    ];
    for (name, value) in webhook_headers {
        let value = HeaderValue::try_from(value).map_err(|_| Failure::InvalidHeader(name))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(headers)
}

/// Reads the answer into `kept` until it ends or `kept` holds
/// [`MAX_RESPONSE_BODY_BYTES`]; the rest is never read. Writing into the
/// caller's buffer keeps what came when the deadline cancels the read.
async fn read_prefix(response: &mut Response<Incoming>, kept: &mut Vec<u8>) {
    while kept.len() < MAX_RESPONSE_BODY_BYTES {
        match response.body_mut().frame().await {
            Some(Ok(frame)) => {
                // Trailers carry no body: skip them.
                if let Ok(chunk) = frame.into_data() {
                    let room = MAX_RESPONSE_BODY_BYTES - kept.len();
                    kept.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
                }
            }
            // The end, or a receiver that hung up mid-answer: keep what came.
            None | Some(Err(_)) => break,
        }
    }
}

/// The kept bytes as text. A cut at the limit may split a character: its
/// first bytes are dropped rather than shown as U+FFFD. Bytes that are no
/// UTF-8, and NUL, which PostgreSQL `text` cannot store, show as U+FFFD.
fn kept_text(kept: &[u8]) -> String {
    let end = match std::str::from_utf8(kept) {
        Err(err) if err.error_len().is_none() && kept.len() >= MAX_RESPONSE_BODY_BYTES => {
            err.valid_up_to()
        }
        _ => kept.len(),
    };
    String::from_utf8_lossy(kept.get(..end).unwrap_or(kept)).replace('\0', "\u{fffd}")
}

/// `Retry-After` of a 429 or 503 answer (RFC 9110 §10.2.3): delta-seconds or
/// an HTTP-date; a date already past asks for nothing.
fn retry_after(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    at.duration_since(now).ok().filter(|wait| !wait.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_future_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), None);
        for junk in ["", "-5", "+5", "1.5", "soon", "99999999999999999999999"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn retry_after_counts_only_on_429_and_503() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        let now = SystemTime::now();
        let wait = Some(Duration::from_secs(30));
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &headers, now),
            wait
        );
        assert_eq!(
            retry_after(StatusCode::SERVICE_UNAVAILABLE, &headers, now),
            wait
        );
        assert_eq!(
            retry_after(StatusCode::INTERNAL_SERVER_ERROR, &headers, now),
            None
        );
        assert_eq!(retry_after(StatusCode::OK, &headers, now), None);
    }

    #[test]
    fn a_character_split_at_the_limit_is_dropped() {
        let mut kept = vec![b'a'; MAX_RESPONSE_BODY_BYTES - 1];
        kept.push(0xc3); // first byte of "é"
        assert_eq!(kept_text(&kept), "a".repeat(MAX_RESPONSE_BODY_BYTES - 1));
        assert_eq!(kept_text(b"ok \xff"), "ok \u{fffd}");
        assert_eq!(kept_text("héllo".as_bytes()), "héllo");
    }

    #[test]
    fn nul_in_an_answer_is_kept_as_a_replacement_character() {
        assert_eq!(kept_text(b"a\0b\0"), "a\u{fffd}b\u{fffd}");
        assert_eq!(kept_text(b"tab\tline\n"), "tab\tline\n");
    }
}
