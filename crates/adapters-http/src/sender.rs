//! The outbound side: [`HttpSender`] POSTs a signed delivery to a receiver
//! and turns whatever happens (an answer, a timeout, a refused or blocked
//! connection) into a [`SendOutcome`]; it never fails as a call.
//!
//! Webhook URLs are chosen by customers, so the sender guards the service's
//! own network (SSRF, SPEC §3): [`is_forbidden`] says which addresses are not
//! globally routable, and [`DestinationGuard`] applies that rule with the
//! configured allow-list (`delivery.allow_networks`) to the address actually
//! connected to. The guard is the HTTP client's DNS resolver, so a name whose
//! DNS answer is 127.0.0.1 or 169.254.169.254 is caught at connect time, not
//! only when the webhook was saved; an address written in the URL never
//! reaches a resolver and is checked before sending.
//!
//! A receiver cannot hurt the worker either: one total timeout per attempt,
//! redirects are not followed (a 3xx is a failed attempt), and at most
//! [`MAX_RESPONSE_BODY_BYTES`] of an answer are read.

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{redirect, Response, StatusCode};
use thiserror::Error;
use tokio::time::{timeout_at, Instant};
use url::{Host, Url};
use webhooks_domain::{OutboundSender, SendOutcome, SignedRequest, MAX_RESPONSE_BODY_BYTES};

/// Connecting (DNS included) never takes longer than this, even with a longer
/// total timeout: a host that does not accept within 10 s is down.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest attempt timeout accepted; far longer than any receiver should
/// need, and short enough that deadlines never overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const POOL_MAX_IDLE_PER_HOST: usize = 32;

/// How the sender behaves; the `app` crate fills it from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderSettings {
    /// The most one attempt may take, from connecting to the last byte kept
    /// of the answer (SPEC §3: 15 s by default).
    pub timeout: Duration,
    /// Networks reachable although [`is_forbidden`] refuses them, such as
    /// `127.0.0.0/8` in development and tests.
    pub allow_networks: Vec<IpNet>,
    /// The `user-agent` of every request, e.g. `okaya-webhooks/0.1.0`.
    pub user_agent: String,
}

/// Why [`HttpSender::new`] refused its settings.
#[derive(Debug, Error)]
pub enum SenderError {
    #[error("the delivery timeout must be longer than zero and at most 24h, not {0:?}")]
    InvalidTimeout(Duration),
    #[error("the user agent {0:?} is not a valid header value")]
    InvalidUserAgent(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Sends signed deliveries over one pooled HTTP/1.1 client.
///
/// Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    guard: DestinationGuard,
    timeout: Duration,
    connect_timeout: Duration,
}

impl HttpSender {
    /// Builds the client once. Proxies from the environment are ignored: a
    /// proxy would connect on our behalf and bypass the guard.
    pub fn new(settings: SenderSettings) -> Result<Self, SenderError> {
        if settings.timeout.is_zero() || settings.timeout > MAX_TIMEOUT {
            return Err(SenderError::InvalidTimeout(settings.timeout));
        }
        let user_agent = HeaderValue::from_str(&settings.user_agent)
            .map_err(|_| SenderError::InvalidUserAgent(settings.user_agent.clone()))?;
        let connect_timeout = settings.timeout.min(MAX_CONNECT_TIMEOUT);
        let guard = DestinationGuard::new(settings.allow_networks);
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .tcp_nodelay(true)
            .http1_only()
            .dns_resolver(Arc::new(guard.clone()))
            .build()
            .map_err(|err| SenderError::Client(innermost_message(&err)))?;
        Ok(Self {
            client,
            guard,
            timeout: settings.timeout,
            connect_timeout,
        })
    }

    async fn attempt(
        &self,
        request: &SignedRequest,
        deadline: Instant,
    ) -> Result<SendOutcome, Failure> {
        let url = self.destination(&request.url)?;
        let headers = webhook_headers(request)?;
        let sending = self
            .client
            .post(url)
            .headers(headers)
            .body(request.body.clone())
            .send();
        let mut response = match timeout_at(deadline, sending).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(self.classify(&err)),
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
            tracing::debug!(status = status.as_u16(), "answer body cut at the timeout");
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
    fn destination(&self, raw: &str) -> Result<Url, Failure> {
        let url = Url::parse(raw).map_err(|err| Failure::InvalidUrl(err.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::UnsupportedScheme(url.scheme().to_owned()));
        }
        // The API refuses `user:pass@` in URLs (`WebhookUrl`); a webhook saved
        // before that rule is not sent, rather than sent with the credential
        // as `Authorization: Basic` (which reqwest would add).
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
        Ok(url)
    }

    fn classify(&self, err: &reqwest::Error) -> Failure {
        if let Some(failure) = known_cause(err) {
            return failure;
        }
        match (err.is_timeout(), err.is_connect()) {
            (true, true) => Failure::ConnectTimeout(self.connect_timeout),
            (true, false) => Failure::Timeout(self.timeout),
            (false, true) => Failure::Connect(innermost_message(err)),
            (false, false) => Failure::Other(innermost_message(err)),
        }
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

/// Why an attempt got no answer, as the delivery log shows it: short, and
/// never with the URL (it may carry credentials) or headers.
#[derive(Debug, Error)]
enum Failure {
    #[error("{0}")]
    Blocked(Blocked),
    #[error("timeout after {}", human(*.0))]
    Timeout(Duration),
    #[error("connect timeout after {}", human(*.0))]
    ConnectTimeout(Duration),
    #[error("connection refused")]
    Refused,
    #[error("{0}")]
    Dns(String),
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("unsupported URL scheme {0:?}: only http and https are sent")]
    UnsupportedScheme(String),
    #[error("the {0} header is not a valid header value")]
    InvalidHeader(&'static str),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Other(String),
}

/// Finds, down an error's chain of causes, one the log names precisely.
fn known_cause(err: &(dyn StdError + 'static)) -> Option<Failure> {
    let mut cause = Some(err);
    while let Some(current) = cause {
        if let Some(resolve) = current.downcast_ref::<ResolveError>() {
            return Some(match resolve {
                ResolveError::Blocked(blocked) => Failure::Blocked(*blocked),
                other => Failure::Dns(other.to_string()),
            });
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(Failure::Tls(tls.to_string()));
        }
        let refused = current
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::ConnectionRefused);
        if refused {
            return Some(Failure::Refused);
        }
        cause = next_cause(current);
    }
    None
}

/// The deepest cause's text: the outer layers only say "error sending
/// request for url (…)", with the URL.
fn innermost_message(err: &(dyn StdError + 'static)) -> String {
    let mut deepest = err;
    while let Some(next) = next_cause(deepest) {
        deepest = next;
    }
    if std::ptr::addr_eq(deepest, err) {
        return "no details".to_owned();
    }
    deepest.to_string()
}

/// The cause of `err`. An `io::Error` hides its payload from `source()`
/// (it answers the payload's own source), and rustls's failures arrive as
/// the payload of an `io::Error` inside another: step into payloads.
fn next_cause<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        Some(payload) => Some(payload),
        None => err.source(),
    }
}

fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

fn webhook_headers(request: &SignedRequest) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::with_capacity(4);
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
async fn read_prefix(response: &mut Response, kept: &mut Vec<u8>) {
    while kept.len() < MAX_RESPONSE_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BODY_BYTES - kept.len();
                kept.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            }
            // The end, or a receiver that hung up mid-answer: keep what came.
            Ok(None) | Err(_) => break,
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

/// A destination the SSRF guard refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("blocked: {ip} is {reason}; add it to delivery.allow_networks to allow it")]
pub struct Blocked {
    pub ip: IpAddr,
    /// What [`is_forbidden`] said, e.g. "a loopback address".
    pub reason: &'static str,
}

/// Why [`DestinationGuard::lookup`] found nothing to connect to.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// Every address of the name is forbidden; the first one is named.
    #[error(transparent)]
    Blocked(#[from] Blocked),
    #[error("DNS lookup of {host} failed: {source}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("DNS lookup of {host} found no address")]
    NoAddress { host: String },
}

/// The SSRF guard: [`is_forbidden`] plus the allow-list. It is also the HTTP
/// client's resolver ([`reqwest::dns::Resolve`]), so the check runs on the
/// addresses the client will connect to, whatever name the URL holds.
///
/// Cheap to clone: clones share the allow-list.
#[derive(Debug, Clone, Default)]
pub struct DestinationGuard {
    allow_networks: Arc<[IpNet]>,
}

impl DestinationGuard {
    pub fn new(allow_networks: Vec<IpNet>) -> Self {
        Self {
            allow_networks: allow_networks.into(),
        }
    }

    /// Whether the sender may connect to `ip`. An IPv4-mapped IPv6 address
    /// counts as its IPv4 address for the allow-list too.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let Some(reason) = is_forbidden(ip) else {
            return Ok(());
        };
        let canonical = ip.to_canonical();
        let allowed = self
            .allow_networks
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical));
        if allowed {
            Ok(())
        } else {
            Err(Blocked { ip, reason })
        }
    }

    /// Resolves `host` with the system resolver and keeps the addresses
    /// [`check`](Self::check) lets through, in the resolver's order. A name
    /// with a public and a private address connects to the public one only.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let found =
            tokio::net::lookup_host((host, 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    host: host.to_owned(),
                    source,
                })?;
        let mut allowed = Vec::new();
        let mut first_blocked = None;
        for ip in found.map(|addr| addr.ip()) {
            match self.check(ip) {
                Ok(()) if !allowed.contains(&ip) => allowed.push(ip),
                Ok(()) => {}
                Err(blocked) => {
                    first_blocked.get_or_insert(blocked);
                }
            }
        }
        match (allowed.is_empty(), first_blocked) {
            (false, _) => Ok(allowed),
            (true, Some(blocked)) => Err(ResolveError::Blocked(blocked)),
            (true, None) => Err(ResolveError::NoAddress {
                host: host.to_owned(),
            }),
        }
    }
}

impl Resolve for DestinationGuard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let ips = guard.lookup(name.as_str()).await?;
            // Port 0: the client puts in the URL's port.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

const UNSPECIFIED: &str = "an unspecified address";
const LOOPBACK: &str = "a loopback address";
const PRIVATE: &str = "a private address";
const LINK_LOCAL: &str = "a link-local address";
const SHARED: &str = "a shared (CGNAT) address";
const MULTICAST: &str = "a multicast address";
const BROADCAST: &str = "a broadcast address";
const DOCUMENTATION: &str = "a documentation address";
const BENCHMARKING: &str = "a benchmarking address";
const RESERVED: &str = "a reserved address";

/// IPv4 ranges that are not globally routable, first match wins
/// (IANA special-purpose registry).
const FORBIDDEN_V4: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 32, UNSPECIFIED),
    ([255, 255, 255, 255], 32, BROADCAST),
    ([0, 0, 0, 0], 8, RESERVED), // "this network"
    ([10, 0, 0, 0], 8, PRIVATE),
    ([100, 64, 0, 0], 10, SHARED),
    ([127, 0, 0, 0], 8, LOOPBACK),
    ([169, 254, 0, 0], 16, LINK_LOCAL), // includes the cloud metadata 169.254.169.254
    ([172, 16, 0, 0], 12, PRIVATE),
    ([192, 0, 0, 0], 24, RESERVED), // IETF protocol assignments
    ([192, 0, 2, 0], 24, DOCUMENTATION),
    ([192, 168, 0, 0], 16, PRIVATE),
    ([198, 18, 0, 0], 15, BENCHMARKING),
    ([198, 51, 100, 0], 24, DOCUMENTATION),
    ([203, 0, 113, 0], 24, DOCUMENTATION),
    ([224, 0, 0, 0], 4, MULTICAST),
    ([240, 0, 0, 0], 4, RESERVED),
];

/// IPv6 ranges that are not globally routable, first match wins. Ranges that
/// embed an IPv4 address are handled before this table.
const FORBIDDEN_V6: &[(u128, u8, &str)] = &[
    (0, 128, UNSPECIFIED),
    (1, 128, LOOPBACK),
    (0x0064_ff9b_0001 << 80, 48, RESERVED), // local-use NAT64
    (0x0100 << 112, 64, RESERVED),          // discard-only
    (0x2001_0db8 << 96, 32, DOCUMENTATION),
    (0x2001_0002 << 96, 48, BENCHMARKING),
    (0x2001 << 112, 23, RESERVED), // IETF protocol assignments, Teredo
    (0x3fff << 112, 20, DOCUMENTATION),
    (0xfc00 << 112, 7, PRIVATE), // unique local
    (0xfe80 << 112, 10, LINK_LOCAL),
    (0xfec0 << 112, 10, PRIVATE), // site-local, deprecated
    (0xff00 << 112, 8, MULTICAST),
];

/// Why the sender must not connect to `ip` unless the allow-list covers it,
/// or `None` for a globally routable address.
///
/// Refused: loopback, private (RFC 1918, IPv6 unique local), link-local
/// (with 169.254.169.254), CGNAT, multicast, unspecified, broadcast,
/// documentation, benchmarking and reserved ranges, and every IPv6 address
/// outside global unicast `2000::/3`. An IPv6 address that embeds an IPv4
/// one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::/96`, 6to4 `2002::/16`) is judged by that IPv4 address, since
/// that is where the packets end up.
///
/// ```
/// use webhooks_adapters_http::sender::is_forbidden;
/// assert_eq!(is_forbidden("127.0.0.1".parse().unwrap()), Some("a loopback address"));
/// assert_eq!(is_forbidden("::ffff:10.0.0.1".parse().unwrap()), Some("a private address"));
/// assert_eq!(is_forbidden("93.184.215.14".parse().unwrap()), None);
/// ```
pub fn is_forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    FORBIDDEN_V4
        .iter()
        .find(|(network, len, _)| same_prefix_v4(bits, u32::from_be_bytes(*network), *len))
        .map(|(_, _, reason)| *reason)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    if let Some(embedded) = embedded_v4(bits) {
        return forbidden_v4(embedded);
    }
    let listed = FORBIDDEN_V6
        .iter()
        .find(|(network, len, _)| same_prefix_v6(bits, *network, *len))
        .map(|(_, _, reason)| *reason);
    match listed {
        Some(reason) => Some(reason),
        None if same_prefix_v6(bits, 0x2000 << 112, 3) => None,
        None => Some(RESERVED),
    }
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it.
fn embedded_v4(bits: u128) -> Option<Ipv4Addr> {
    // Truncating casts pick the embedded 32 bits on purpose.
    let low = Ipv4Addr::from(bits as u32);
    if same_prefix_v6(bits, 0xffff << 32, 96) || same_prefix_v6(bits, 0x0064_ff9b << 96, 96) {
        return Some(low);
    }
    // IPv4-compatible, except :: and ::1, which are themselves.
    if same_prefix_v6(bits, 0, 96) && bits > 1 {
        return Some(low);
    }
    if same_prefix_v6(bits, 0x2002 << 112, 16) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

fn same_prefix_v4(a: u32, b: u32, len: u8) -> bool {
    let shift = 32 - u32::from(len.min(32));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

fn same_prefix_v6(a: u128, b: u128, len: u8) -> bool {
    let shift = 128 - u32::from(len.min(128));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    fn reason(ip: &str) -> Option<&'static str> {
        is_forbidden(ip.parse().unwrap())
    }

    #[test]
    fn loopback_is_forbidden() {
        for ip in ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(reason(ip), Some(LOOPBACK), "{ip}");
        }
    }

    #[test]
    fn private_ranges_are_forbidden() {
        for ip in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "fc00::1",
            "fd12:3456:789a::1",
            "fec0::1",
        ] {
            assert_eq!(reason(ip), Some(PRIVATE), "{ip}");
        }
    }

    #[test]
    fn neighbours_of_private_ranges_are_allowed() {
        for ip in [
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn link_local_and_the_metadata_endpoint_are_forbidden() {
        for ip in ["169.254.0.1", "169.254.169.254", "fe80::1", "febf::1"] {
            assert_eq!(reason(ip), Some(LINK_LOCAL), "{ip}");
        }
    }

    #[test]
    fn cgnat_is_forbidden() {
        assert_eq!(reason("100.64.0.1"), Some(SHARED));
        assert_eq!(reason("100.127.255.255"), Some(SHARED));
        assert_eq!(reason("100.63.255.255"), None);
        assert_eq!(reason("100.128.0.0"), None);
    }

    #[test]
    fn multicast_unspecified_and_broadcast_are_forbidden() {
        assert_eq!(reason("224.0.0.1"), Some(MULTICAST));
        assert_eq!(reason("239.255.255.255"), Some(MULTICAST));
        assert_eq!(reason("ff02::1"), Some(MULTICAST));
        assert_eq!(reason("0.0.0.0"), Some(UNSPECIFIED));
        assert_eq!(reason("::"), Some(UNSPECIFIED));
        assert_eq!(reason("255.255.255.255"), Some(BROADCAST));
    }

    #[test]
    fn documentation_benchmarking_and_reserved_ranges_are_forbidden() {
        for ip in [
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "2001:db8::1",
            "3fff::1",
        ] {
            assert_eq!(reason(ip), Some(DOCUMENTATION), "{ip}");
        }
        for ip in ["198.18.0.1", "198.19.255.255", "2001:2::1"] {
            assert_eq!(reason(ip), Some(BENCHMARKING), "{ip}");
        }
        for ip in [
            "0.1.2.3",
            "192.0.0.8",
            "240.0.0.1",
            "255.255.255.254",
            "100::1",
            "2001::1",
            "64:ff9b:1::1",
            "4000::1",
        ] {
            assert_eq!(reason(ip), Some(RESERVED), "{ip}");
        }
        assert_eq!(reason("198.17.255.255"), None);
        assert_eq!(reason("198.20.0.0"), None);
    }

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_judged_by_the_ipv4_address() {
        assert_eq!(reason("::ffff:169.254.169.254"), Some(LINK_LOCAL));
        assert_eq!(reason("::ffff:192.168.1.1"), Some(PRIVATE));
        assert_eq!(reason("::127.0.0.1"), Some(LOOPBACK));
        assert_eq!(reason("64:ff9b::7f00:1"), Some(LOOPBACK));
        assert_eq!(reason("64:ff9b::a00:1"), Some(PRIVATE));
        assert_eq!(reason("2002:7f00:1::1"), Some(LOOPBACK));
        assert_eq!(reason("::ffff:8.8.8.8"), None);
        assert_eq!(reason("64:ff9b::808:808"), None);
        assert_eq!(reason("2002:808:808::1"), None);
    }

    #[test]
    fn global_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_allow_list_lets_covered_addresses_through() {
        let guard = DestinationGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(guard.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(guard.check("::ffff:127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(guard.check("8.8.8.8".parse().unwrap()), Ok(()));
        let blocked = guard.check("10.1.2.3".parse().unwrap()).unwrap_err();
        assert_eq!(
            blocked.to_string(),
            "blocked: 10.1.2.3 is a private address; add it to delivery.allow_networks to allow it"
        );
        assert!(guard.check("::1".parse().unwrap()).is_err());
    }

    #[test]
    fn an_empty_allow_list_blocks_every_forbidden_address() {
        let guard = DestinationGuard::default();
        assert_eq!(
            guard.check("127.0.0.1".parse().unwrap()).unwrap_err().to_string(),
            "blocked: 127.0.0.1 is a loopback address; add it to delivery.allow_networks to allow it"
        );
    }

    #[tokio::test]
    async fn lookup_of_localhost_is_blocked_without_an_allow_list() {
        let err = DestinationGuard::default()
            .lookup("localhost")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ResolveError::Blocked(b) if b.reason == LOOPBACK),
            "{err}"
        );
    }

    #[tokio::test]
    async fn lookup_keeps_only_allowed_addresses() {
        let guard = DestinationGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let ips = guard.lookup("localhost").await.unwrap();
        assert!(!ips.is_empty());
        assert!(
            ips.iter().all(|ip| *ip == IpAddr::from([127, 0, 0, 1])),
            "{ips:?}"
        );
    }

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

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(15)), "15s");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
    }

    /// An outer error with a cause, like the layers reqwest and hyper add.
    #[derive(Debug)]
    struct Layer(Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("error sending request for url (http://user:secret@example.com/)")
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn causes_deep_in_the_chain_are_named() {
        let dns = Layer(Box::new(ResolveError::Lookup {
            host: "example.invalid".to_owned(),
            source: io::Error::other("Name or service not known"),
        }));
        assert_eq!(
            known_cause(&dns).unwrap().to_string(),
            "DNS lookup of example.invalid failed: Name or service not known"
        );
        let refused = Layer(Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(
            known_cause(&refused).unwrap().to_string(),
            "connection refused"
        );
        let tls = Layer(Box::new(io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::DecryptError,
        ))));
        assert!(known_cause(&tls)
            .unwrap()
            .to_string()
            .starts_with("TLS error: "));
        let other = Layer(Box::new(io::Error::other("reset")));
        assert!(known_cause(&other).is_none());
        assert_eq!(innermost_message(&other), "reset");
    }
}
