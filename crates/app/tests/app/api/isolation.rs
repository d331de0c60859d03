//! No tenant can stall another: endpoints that accept a connection and never
//! answer hold their own share of the workers, the rest keeps its latency,
//! and an endpoint that keeps timing out has its circuit opened.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{for_both_backends, Backend, Receiver, Tenant, TestApp};

for_both_backends!(
    five_hanging_endpoints_leave_another_organization_its_latency,
    twenty_hanging_endpoints_leave_another_organization_its_latency,
    a_hundred_hanging_endpoints_leave_another_organization_its_latency,
    an_endpoint_that_keeps_timing_out_has_its_circuit_opened_then_closed,
);

/// A loopback receiver that accepts every connection and, while `hang` is
/// set, never answers; otherwise it answers `200` once the request is read.
struct HangingReceiver {
    address: String,
    connections: Arc<AtomicUsize>,
    hang: Arc<AtomicBool>,
    /// The sockets left hanging, kept open until the receiver is dropped.
    held: Arc<Mutex<Vec<TcpStream>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl HangingReceiver {
    async fn start() -> HangingReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let hang = Arc::new(AtomicBool::new(true));
        let held = Arc::new(Mutex::new(Vec::new()));
        let accepting = tokio::spawn({
            let (connections, hang, held) = (connections.clone(), hang.clone(), held.clone());
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    if hang.load(Ordering::SeqCst) {
                        held.lock().unwrap().push(socket);
                    } else {
                        tokio::spawn(answer_ok(socket));
                    }
                }
            }
        });
        HangingReceiver {
            address,
            connections,
            hang,
            held,
            accepting,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// From now on, new connections get an answer.
    fn start_answering(&self) {
        self.hang.store(false, Ordering::SeqCst);
    }
}

impl Drop for HangingReceiver {
    fn drop(&mut self) {
        self.accepting.abort();
        self.held.lock().unwrap().clear();
    }
}

/// Reads one request (headers and `content-length` bytes of body), answers
/// `200 OK` and closes.
async fn answer_ok(mut socket: TcpStream) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let Ok(read) = socket.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..read]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    let _ = socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await;
    let _ = socket.shutdown().await;
}

/// A webhook of `tenant` to `url`; answers its id.
async fn webhook_of(app: &TestApp, tenant: &Tenant, url: &str) -> String {
    let response = app
        .call_with_key(
            Method::POST,
            &format!("/webhooks/{}", tenant.group_id),
            Some(json!({"url": url, "description": "isolation"})),
            Some(&tenant.api_key),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn publish_to(app: &TestApp, group_id: i64, n: usize) {
    let response = app
        .publish(json!({"groupID": group_id, "type": "user.created", "data": {"n": n}}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

/// Organization A has `hanging` webhooks whose receiver never answers and
/// enough events for each to fill its share; organization B's one healthy
/// webhook then gets 20 events one after the other, each timed from the
/// publish answer to its arrival. Every one arrives within 1 s.
async fn healthy_latency_beside(backend: Backend, hanging: usize) {
    let app = TestApp::spawn_with(backend, |settings| {
        // Nothing times out during the test: the hung requests stay hung.
        settings.delivery.timeout = Duration::from_secs(60);
    })
    .await;
    let dead = HangingReceiver::start().await;
    for n in 0..hanging {
        webhook_of(&app, &app.tenant, &dead.url(&format!("/dead/{n}"))).await;
    }
    // Each hanging webhook gets 40 deliveries: more than it may have in
    // flight (32 by default).
    for n in 0..40 {
        publish_to(&app, app.tenant.group_id, n).await;
    }
    let other = app.new_tenant().await;
    let healthy = Receiver::start().await;
    webhook_of(&app, &other, &healthy.url("/ok/b")).await;
    // The attack is on: every hanging endpoint holds requests.
    let deadline = Instant::now() + Duration::from_secs(30);
    while dead.connections() < hanging * 8 {
        assert!(
            Instant::now() < deadline,
            "only {} hanging connections",
            dead.connections()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut latencies = Vec::new();
    for n in 0..20 {
        let published = Instant::now();
        publish_to(&app, other.group_id, n).await;
        let arrived = healthy
            .wait_for(Some("/ok/b"), n + 1, Duration::from_secs(30))
            .await;
        latencies.push(arrived[n].at.duration_since(published));
    }
    latencies.sort();
    let worst = *latencies.last().unwrap();
    assert!(
        worst < Duration::from_secs(1),
        "with {hanging} hanging endpoints ({} connections held), B's slowest of 20 took {worst:?}: {latencies:?}",
        dead.connections()
    );
}

async fn five_hanging_endpoints_leave_another_organization_its_latency(backend: Backend) {
    healthy_latency_beside(backend, 5).await;
}

async fn twenty_hanging_endpoints_leave_another_organization_its_latency(backend: Backend) {
    healthy_latency_beside(backend, 20).await;
}

async fn a_hundred_hanging_endpoints_leave_another_organization_its_latency(backend: Backend) {
    healthy_latency_beside(backend, 100).await;
}

/// A webhook whose receiver never answers times out 3 times in a row: its
/// circuit opens for 2 s. Nothing is sent to it meanwhile, its pending
/// deliveries show the reopening time as `nextAttemptAt`, and the metrics
/// count the opening. Once the receiver answers, the probe closes the
/// circuit and the waiting deliveries are delivered.
async fn an_endpoint_that_keeps_timing_out_has_its_circuit_opened_then_closed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.delivery.timeout = Duration::from_millis(300);
        settings.delivery.retry_schedule = vec![Duration::from_millis(100); 8];
        settings.delivery.circuit_breaker_timeouts = 3;
        settings.delivery.circuit_breaker_open_for = Duration::from_secs(2);
    })
    .await;
    let openings_before = app.metric("webhooks_circuit_breaker_openings_total").await;
    let dead = HangingReceiver::start().await;
    let webhook = webhook_of(&app, &app.tenant, &dead.url("/dead")).await;
    for n in 0..3 {
        publish_to(&app, app.tenant.group_id, n).await;
    }
    let path = app.group_path(&format!("/{webhook}/deliveries"));
    // All three time out, the circuit opens, and every pending delivery
    // waits for it (the log's `nextAttemptAt`, RFC 3339, at least ~2 s on).
    let deadline = Instant::now() + Duration::from_secs(20);
    let opened_at = loop {
        let page = app.get_json(&path).await;
        let deliveries = page["data"].as_array().cloned().unwrap_or_default();
        let all_wait = deliveries.len() == 3
            && deliveries.iter().all(|d| {
                d["status"] == "pending"
                    && d["attemptCount"].as_i64().unwrap_or(0) >= 1
                    && seconds_ahead(&d["nextAttemptAt"]).is_some_and(|ahead| ahead > 1.0)
            });
        if all_wait {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the circuit never opened: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(app.metric("webhooks_circuit_breaker_openings_total").await >= openings_before + 1.0);
    assert!(app.metric("webhooks_circuit_breakers_open").await >= 1.0);
    let attempts_when_opened = dead.connections();
    assert!(
        attempts_when_opened >= 3,
        "{attempts_when_opened} connections"
    );

    // Open: nothing is sent for a while, although retries were due 100 ms on.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    if opened_at.elapsed() < Duration::from_millis(1_500) {
        assert_eq!(
            dead.connections(),
            attempts_when_opened,
            "a request went to an open circuit"
        );
    }

    // The endpoint answers again: the next probe closes the circuit and the
    // three deliveries succeed.
    dead.start_answering();
    let delivered = app
        .wait_for_deliveries(&webhook, |deliveries| {
            deliveries.len() == 3 && deliveries.iter().all(|d| d["status"] == "succeeded")
        })
        .await;
    assert_eq!(delivered.len(), 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.metric("webhooks_circuit_breakers_open").await > 0.0 {
        assert!(Instant::now() < deadline, "the circuit gauge stays up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detail = app
        .get_json(&app.group_path(&format!(
            "/{webhook}/deliveries/{}",
            delivered[0]["id"].as_str().unwrap()
        )))
        .await;
    let errors: Vec<&str> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|attempt| attempt["error"].as_str())
        .collect();
    assert!(
        errors
            .iter()
            .any(|error| error.starts_with("timeout after")),
        "{detail}"
    );
}

/// How many seconds from now an RFC 3339 time is.
fn seconds_ahead(value: &Value) -> Option<f64> {
    let at = humantime::parse_rfc3339_weak(value.as_str()?).ok()?;
    let now = std::time::SystemTime::now();
    Some(match at.duration_since(now) {
        Ok(ahead) => ahead.as_secs_f64(),
        Err(behind) => -behind.duration().as_secs_f64(),
    })
}
