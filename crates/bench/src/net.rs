//! Loopback HTTP for the benchmark: a fast receiver (hyper 1) that answers
//! 200 and records what arrived, and a pooled keep-alive client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Nanoseconds since the Unix epoch, from the wall clock (the service and
/// the receiver are on the same machine, so send and arrival times compare).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One request as it arrived at the receiver.
pub struct Arrival {
    pub at_ns: u64,
    pub path: String,
    pub event_id: String,
    pub body: Bytes,
}

struct ReceiverState {
    record: bool,
    count: AtomicUsize,
    arrivals: Mutex<Vec<Arrival>>,
    notify: Notify,
}

/// A receiver on `127.0.0.1:0`. With `record` false it is a bare hello-world
/// server (the machine's ceiling); with `record` true it keeps every request.
pub struct Receiver {
    pub address: SocketAddr,
    state: Arc<ReceiverState>,
    accept: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(record: bool) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(ReceiverState {
            record,
            count: AtomicUsize::new(0),
            arrivals: Mutex::new(Vec::with_capacity(if record { 64 * 1024 } else { 0 })),
            notify: Notify::new(),
        });
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver {
            address,
            state,
            accept,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.state.count.load(Ordering::Acquire)
    }

    /// Waits until `count` requests arrived or `deadline` passed; answers
    /// how many arrived.
    pub async fn wait_for(&self, count: usize, deadline: Instant) -> usize {
        loop {
            let notified = self.state.notify.notified();
            let now = self.count();
            if now >= count || Instant::now() >= deadline {
                return now;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), notified).await;
        }
    }

    /// Every recorded arrival, leaving the log empty.
    pub fn take(&self) -> Vec<Arrival> {
        match self.state.arrivals.lock() {
            Ok(mut log) => std::mem::take(&mut *log),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A receiver on `127.0.0.1:0` that accepts every connection and never
/// answers: a dead endpoint that holds its callers' requests until they time
/// out. The sockets stay open until it is dropped.
pub struct HangingReceiver {
    pub address: SocketAddr,
    connections: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl HangingReceiver {
    pub async fn start() -> anyhow::Result<HangingReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::AcqRel);
                held.push(stream);
            }
        });
        Ok(HangingReceiver {
            address,
            connections,
            accept,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
}

impl Drop for HangingReceiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn answer(state: &ReceiverState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if !state.record {
        let _ = req.into_body().collect().await;
        state.count.fetch_add(1, Ordering::Relaxed);
        return Response::new(Full::new(Bytes::from_static(b"Hello, world!")));
    }
    let path = req.uri().path().to_owned();
    let event_id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    // The arrival is when the whole request is in.
    let at_ns = unix_nanos();
    if let Ok(mut log) = state.arrivals.lock() {
        log.push(Arrival {
            at_ns,
            path,
            event_id,
            body,
        });
    }
    state.count.fetch_add(1, Ordering::Release);
    state.notify.notify_waiters();
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// A keep-alive HTTP/1.1 client; each request in flight uses its own pooled
/// connection, so N concurrent callers use at most N connections.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// A finished request.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl HttpClient {
    pub fn new(base: &str, max_connections: usize) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_connections)
            // Below the service's keep-alive (actix: 5 s), so that the
            // client never sends on a connection the server is closing.
            .pool_idle_timeout(Duration::from_secs(3))
            .build(connector);
        HttpClient {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        builder
            .body(Full::new(body.unwrap_or_default()))
            .context("request")
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| anyhow!("request failed: {err}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| anyhow!("reading the answer: {err}"))?
            .to_bytes();
        Ok(Answer { status, body })
    }
}
