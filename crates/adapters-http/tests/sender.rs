//! The outbound sender against real receivers on loopback. Every request of
//! these tests goes to 127.0.0.1 or ::1; the guard's other ranges are covered
//! by the unit tests of `is_forbidden`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use svix::webhooks::Webhook;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use webhooks_adapters_http::{HttpSender, SenderError, SenderSettings};
use webhooks_domain::{CustomHeaders, OutboundSender, SendOutcome, SignedRequest, SigningSecret};

const BODY: &str = r#"{"id":"evt_1","object":"event","type":"user.created","created":1700000000,"groupID":123456,"data":{"name":"Ada"}}"#;
const USER_AGENT: &str = "okaya-webhooks/0.1.0-test";

// ---------------------------------------------------------------- helpers

fn sender_with(allow: &[&str], timeout: Duration) -> HttpSender {
    HttpSender::new(SenderSettings {
        timeout,
        allow_networks: allow.iter().map(|net| net.parse().unwrap()).collect(),
        user_agent: USER_AGENT.to_owned(),
    })
    .unwrap()
}

/// A sender that may reach loopback, as in the dev and test configs.
fn loopback_sender() -> HttpSender {
    sender_with(&["127.0.0.0/8", "::1/128"], Duration::from_secs(5))
}

fn now_secs() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

fn request_to(url: &str, secret: &SigningSecret) -> SignedRequest {
    let timestamp = now_secs();
    SignedRequest {
        url: url.to_owned(),
        body: BODY.to_owned(),
        webhook_id: "evt_1".to_owned(),
        webhook_timestamp: timestamp,
        webhook_signature: secret.sign("evt_1", timestamp, BODY.as_bytes()),
        headers: CustomHeaders::default(),
    }
}

fn unsigned_request_to(url: &str) -> SignedRequest {
    request_to(url, &SigningSecret::generate())
}

fn assert_blocked(outcome: &SendOutcome, ip: &str) {
    assert_eq!(outcome.status, None);
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            format!(
                "blocked: {ip} is a loopback address; add it to delivery.allow_networks to allow it"
            )
            .as_str()
        )
    );
}

/// What a test receiver answers.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Status, headers and the whole body.
    Complete,
    /// Reads the request and never answers.
    Silent,
    /// Sends the head and the body it has, promises more, and stalls.
    StallBody,
    /// Answers the TLS handshake with plain HTTP.
    PlainToTls,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            mode: Mode::Complete,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A hand-written HTTP/1.1 receiver on loopback: one request per connection,
/// recorded, then answered as its [`Reply`] says.
struct Receiver {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start(reply: Reply) -> Self {
        Self::start_on("127.0.0.1:0", reply).await
    }

    async fn start_on(bind: &str, reply: Reply) -> Self {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let connections = connections.clone();
            let requests = requests.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, reply.clone(), requests.clone()));
                }
            }
        });
        Self {
            addr,
            connections,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, reply: Reply, requests: Arc<Mutex<Vec<Recorded>>>) {
    if reply.mode == Mode::PlainToTls {
        let mut hello = [0u8; 512];
        let _ = stream.read(&mut hello).await;
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    let Some(recorded) = read_request(&mut stream).await else {
        return;
    };
    requests.lock().unwrap().push(recorded);
    tokio::time::sleep(reply.delay).await;
    if reply.mode == Mode::Silent {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    let promised = match reply.mode {
        Mode::StallBody => reply.body.len() + 1000,
        _ => reply.body.len(),
    };
    let mut head = format!(
        "HTTP/1.1 {} Test\r\ncontent-length: {promised}\r\nconnection: close\r\n",
        reply.status
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // The client may hang up after 4 KiB of a long answer: write errors are expected.
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.write_all(&reply.body).await;
    let _ = stream.flush().await;
    if reply.mode == Mode::StallBody {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let mut headers = HeaderMap::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let length: usize = headers
        .get("content-length")
        .map_or(Some(0), |v| v.to_str().ok()?.parse().ok())?;
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

fn header<'a>(recorded: &'a Recorded, name: &str) -> &'a str {
    recorded.headers.get(name).unwrap().to_str().unwrap()
}

// ---------------------------------------------------------- the request

#[tokio::test]
async fn the_request_carries_the_exact_body_and_the_five_headers() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let request = unsigned_request_to(&receiver.url());

    let outcome = loopback_sender().send(&request).await;

    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let got = &requests[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/hooks");
    assert_eq!(got.body, BODY.as_bytes());
    assert_eq!(header(got, "content-type"), "application/json");
    assert_eq!(header(got, "user-agent"), USER_AGENT);
    assert_eq!(header(got, "webhook-id"), "evt_1");
    assert_eq!(
        header(got, "webhook-timestamp"),
        request.webhook_timestamp.to_string()
    );
    assert_eq!(header(got, "webhook-signature"), request.webhook_signature);
}

#[tokio::test]
async fn custom_headers_are_sent_beside_ours_as_given() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let request = SignedRequest {
        headers: CustomHeaders::new([("X-Api-Key", "k3y"), ("Authorization", "Bearer a b\tc")])
            .unwrap(),
        ..unsigned_request_to(&receiver.url())
    };

    let outcome = loopback_sender().send(&request).await;

    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    let got = &receiver.requests()[0];
    assert_eq!(header(got, "x-api-key"), "k3y");
    assert_eq!(header(got, "authorization"), "Bearer a b\tc");
    assert_eq!(header(got, "content-type"), "application/json");
    assert_eq!(header(got, "user-agent"), USER_AGENT);
    assert_eq!(header(got, "webhook-signature"), request.webhook_signature);
}

#[tokio::test]
async fn the_signature_verifies_with_the_svix_verifier() {
    let receiver = Receiver::start(Reply::status(204)).await;
    let secret = SigningSecret::generate();

    loopback_sender()
        .send(&request_to(&receiver.url(), &secret))
        .await;

    let got = &receiver.requests()[0];
    Webhook::new(&secret.expose())
        .unwrap()
        .verify(&got.body, &got.headers)
        .unwrap();
    let stranger = SigningSecret::generate();
    assert!(Webhook::new(&stranger.expose())
        .unwrap()
        .verify(&got.body, &got.headers)
        .is_err());
}

#[tokio::test]
async fn two_signatures_verify_with_either_secret() {
    let receiver = Receiver::start(Reply::status(204)).await;
    let (current, previous) = (SigningSecret::generate(), SigningSecret::generate());
    let mut request = request_to(&receiver.url(), &current);
    let old = previous.sign(
        &request.webhook_id,
        request.webhook_timestamp,
        BODY.as_bytes(),
    );
    request.webhook_signature = format!("{} {old}", request.webhook_signature);

    loopback_sender().send(&request).await;

    let got = &receiver.requests()[0];
    assert_eq!(header(got, "webhook-signature"), request.webhook_signature);
    for secret in [&current, &previous] {
        Webhook::new(&secret.expose())
            .unwrap()
            .verify(&got.body, &got.headers)
            .unwrap();
    }
    assert!(Webhook::new(&SigningSecret::generate().expose())
        .unwrap()
        .verify(&got.body, &got.headers)
        .is_err());
}

// ----------------------------------------------------------- the answer

#[tokio::test]
async fn success_client_and_server_errors_are_recorded_with_their_body() {
    let sender = loopback_sender();
    for status in [200, 202, 400, 404, 410, 500, 502] {
        let receiver =
            Receiver::start(Reply::status(status).body(format!("answer {status}"))).await;

        let outcome = sender.send(&unsigned_request_to(&receiver.url())).await;

        assert_eq!(outcome.status, Some(status));
        assert_eq!(outcome.body, Some(format!("answer {status}")));
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.retry_after, None);
    }
}

#[tokio::test]
async fn an_answer_with_a_long_head_is_read_whole() {
    // Proxies and frameworks may answer with kilobytes of cookies and policy
    // headers: the client reads a head of any usual size (hyper's limit).
    let padding = "p".repeat(20_000);
    let receiver = Receiver::start(
        Reply::status(201)
            .header("x-padding", &padding)
            .body("created"),
    )
    .await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(201), "{outcome:?}");
    assert_eq!(outcome.body.as_deref(), Some("created"));
}

#[tokio::test]
async fn the_duration_covers_the_wait_for_the_answer() {
    let receiver = Receiver::start(Reply::status(200).after(Duration::from_millis(300))).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(200));
    assert!(
        (300..3000).contains(&outcome.duration_ms),
        "{}",
        outcome.duration_ms
    );
}

#[tokio::test]
async fn a_1_mib_answer_is_cut_to_its_first_4096_bytes() {
    let body: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let receiver = Receiver::start(Reply::status(200).body(body.clone())).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(200));
    let kept = outcome.body.unwrap();
    assert_eq!(kept.len(), 4096);
    assert_eq!(kept.as_bytes(), &body[..4096]);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let target = Receiver::start(Reply::status(200)).await;
    let receiver = Receiver::start(Reply::status(302).header("location", &target.url())).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(302));
    assert_eq!(outcome.error, None);
    assert_eq!(target.connections(), 0);
}

#[tokio::test]
async fn retry_after_seconds_on_a_429_is_kept() {
    let receiver = Receiver::start(Reply::status(429).header("retry-after", "120")).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(429));
    assert_eq!(outcome.retry_after, Some(Duration::from_secs(120)));
}

#[tokio::test]
async fn retry_after_http_date_on_a_503_is_kept() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(600));
    let receiver = Receiver::start(Reply::status(503).header("retry-after", &date)).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(503));
    let wait = outcome.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(590) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
}

#[tokio::test]
async fn retry_after_on_a_500_is_ignored() {
    let receiver = Receiver::start(Reply::status(500).header("retry-after", "120")).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(500));
    assert_eq!(outcome.retry_after, None);
}

// ------------------------------------------------------------ no answer

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let receiver = Receiver::start(Reply::status(200).mode(Mode::Silent)).await;
    let sender = sender_with(&["127.0.0.0/8"], Duration::from_secs(1));
    let started = Instant::now();

    let outcome = sender.send(&unsigned_request_to(&receiver.url())).await;

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, None);
    assert_eq!(outcome.error.as_deref(), Some("timeout after 1s"));
    assert!(outcome.timed_out, "counted by the endpoint's circuit");
    assert!(outcome.duration_ms >= 1000, "{}", outcome.duration_ms);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn a_stalled_answer_keeps_its_status_and_what_arrived_by_the_timeout() {
    let receiver = Receiver::start(Reply::status(200).body("partial").mode(Mode::StallBody)).await;
    let sender = sender_with(&["127.0.0.0/8"], Duration::from_secs(1));
    let started = Instant::now();

    let outcome = sender.send(&unsigned_request_to(&receiver.url())).await;

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.body.as_deref(), Some("partial"));
    assert!(
        !outcome.timed_out,
        "an answer came: the endpoint is reachable"
    );
}

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&format!(
            "http://127.0.0.1:{port}/hooks"
        )))
        .await;

    assert_eq!(outcome.status, None);
    assert_eq!(outcome.error.as_deref(), Some("connection refused"));
    assert!(!outcome.timed_out, "refused at once: no slot held");
}

#[tokio::test]
async fn a_tls_failure_is_reported_as_one() {
    let receiver = Receiver::start(Reply::status(200).mode(Mode::PlainToTls)).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&format!(
            "https://127.0.0.1:{}/hooks",
            receiver.port()
        )))
        .await;

    assert_eq!(outcome.status, None);
    let error = outcome.error.unwrap();
    assert!(error.starts_with("TLS error: "), "{error}");
}

#[tokio::test]
async fn a_url_that_is_not_http_is_refused_without_sending() {
    let receiver = Receiver::start(Reply::status(200)).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&format!(
            "ftp://127.0.0.1:{}/hooks",
            receiver.port()
        )))
        .await;

    assert_eq!(
        outcome.error.as_deref(),
        Some("unsupported URL scheme \"ftp\": only http and https are sent")
    );
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn the_error_text_never_shows_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sender = loopback_sender();
    for url in [
        format!("http://127.0.0.1:{port}/hunter2?token=hunter2"),
        format!("http://localhost:{port}/hunter2?token=hunter2"),
        format!("http://user:hunter2@127.0.0.1:{port}/"),
    ] {
        let error = sender.send(&unsigned_request_to(&url)).await.error.unwrap();
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[tokio::test]
async fn a_url_with_user_information_is_refused_without_sending() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let sender = loopback_sender();
    for userinfo in ["user:hunter2@", "user@", ":hunter2@"] {
        let url = format!("http://{userinfo}127.0.0.1:{}/hooks", receiver.port());

        let outcome = sender.send(&unsigned_request_to(&url)).await;

        assert_eq!(outcome.status, None);
        assert_eq!(
            outcome.error.as_deref(),
            Some("invalid URL: a user name or password in the URL is not sent; remove it from the webhook's URL")
        );
    }
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn nul_in_an_answer_is_recorded_as_a_replacement_character() {
    let receiver = Receiver::start(Reply::status(500).body(b"bad\0answer".to_vec())).await;

    let outcome = loopback_sender()
        .send(&unsigned_request_to(&receiver.url()))
        .await;

    assert_eq!(outcome.status, Some(500));
    assert_eq!(outcome.body.as_deref(), Some("bad\u{fffd}answer"));
}

// -------------------------------------------------------------- SSRF guard

#[tokio::test]
async fn a_loopback_address_in_the_url_is_blocked_with_an_empty_allow_list() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let sender = sender_with(&[], Duration::from_secs(5));

    let outcome = sender.send(&unsigned_request_to(&receiver.url())).await;

    assert_blocked(&outcome, "127.0.0.1");
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_blocked_with_an_empty_allow_list() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let sender = sender_with(&[], Duration::from_secs(5));

    let url = format!("http://localhost:{}/hooks", receiver.port());
    let outcome = sender.send(&unsigned_request_to(&url)).await;

    assert_blocked(&outcome, "127.0.0.1");
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn an_ipv4_mapped_loopback_address_is_blocked_with_an_empty_allow_list() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let sender = sender_with(&[], Duration::from_secs(5));

    let url = format!("http://[::ffff:127.0.0.1]:{}/hooks", receiver.port());
    let outcome = sender.send(&unsigned_request_to(&url)).await;

    assert_blocked(&outcome, "::ffff:127.0.0.1");
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn another_network_in_the_allow_list_does_not_open_loopback() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let sender = sender_with(&["10.0.0.0/8", "::1/128"], Duration::from_secs(5));

    let outcome = sender.send(&unsigned_request_to(&receiver.url())).await;

    assert_blocked(&outcome, "127.0.0.1");
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn loopback_is_reached_when_127_0_0_0_8_is_allowed() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let sender = sender_with(&["127.0.0.0/8"], Duration::from_secs(5));

    let by_address = sender.send(&unsigned_request_to(&receiver.url())).await;
    let by_name = sender
        .send(&unsigned_request_to(&format!(
            "http://localhost:{}/hooks",
            receiver.port()
        )))
        .await;

    assert_eq!(by_address.status, Some(200), "{by_address:?}");
    assert_eq!(by_name.status, Some(200), "{by_name:?}");
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test]
async fn ipv6_loopback_is_blocked_with_an_empty_allow_list() {
    let receiver = Receiver::start_on("[::1]:0", Reply::status(200)).await;
    let sender = sender_with(&[], Duration::from_secs(5));

    let outcome = sender.send(&unsigned_request_to(&receiver.url())).await;

    assert_blocked(&outcome, "::1");
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn ipv6_loopback_is_reached_when_its_network_is_allowed() {
    let receiver = Receiver::start_on("[::1]:0", Reply::status(200)).await;
    let sender = sender_with(&["::1/128"], Duration::from_secs(5));

    let outcome = sender.send(&unsigned_request_to(&receiver.url())).await;

    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    assert_eq!(receiver.requests().len(), 1);
}

// -------------------------------------------------------------- settings

#[test]
fn a_zero_or_endless_timeout_is_refused() {
    for timeout in [Duration::ZERO, Duration::MAX] {
        let err = HttpSender::new(SenderSettings {
            timeout,
            allow_networks: Vec::new(),
            user_agent: USER_AGENT.to_owned(),
        })
        .unwrap_err();
        assert!(matches!(err, SenderError::InvalidTimeout(t) if t == timeout));
    }
}

#[test]
fn a_user_agent_that_is_no_header_value_is_refused() {
    let err = HttpSender::new(SenderSettings {
        timeout: Duration::from_secs(15),
        allow_networks: Vec::new(),
        user_agent: "bad\nagent".to_owned(),
    })
    .unwrap_err();
    assert!(matches!(err, SenderError::InvalidUserAgent(_)));
}
