//! A webhook receiver on a loopback port for the tests: it records every
//! request (path, headers, body, arrival time) and answers by path:
//! - `/ok…`: 200 (`/ok/slowish…` after 20 ms, `/ok/slower…` after 200 ms)
//! - `/fail…`: 500
//! - `/gone…`: 410
//! - `/slow…`: answers after 30 s (longer than any test timeout)
//! - `/flaky/N…`: 500 for the first N requests to that path, then 200
//! - `/busy…`: 429 with `Retry-After: 1`
//! - `/nul…`: 200 with a NUL byte in its body

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }

    /// Whether the request verifies with `secret`, by the `svix` crate's
    /// Standard Webhooks verifier.
    pub fn verifies(&self, secret: &str) -> bool {
        let mut headers = http::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            headers.insert(name, self.header(name).parse().expect("a header value"));
        }
        svix::webhooks::Webhook::new(secret)
            .expect("a signing secret")
            .verify(self.body.as_bytes(), &headers)
            .is_ok()
    }
}

#[derive(Default)]
struct Log {
    requests: Vec<Received>,
    per_path: HashMap<String, u32>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub address: String,
    log: Arc<Mutex<Log>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = web::Data::from(log.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(answer))
        })
        .listen(listener)
        .expect("listen")
        .workers(2)
        .disable_signals()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            address,
            log,
            handle,
        }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log").requests.clone()
    }

    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `count` requests arrived on `path` (or any path
    /// for `None`), or panics after `within`.
    pub async fn wait_for(
        &self,
        path: Option<&str>,
        count: usize,
        within: Duration,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got: Vec<Received> = match path {
                Some(path) => self.received_on(path),
                None => self.received(),
            };
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} requests on {path:?}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping needs the runtime; if it is gone the server went with it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { handle.stop(false).await });
        }
    }
}

async fn answer(req: HttpRequest, body: web::Bytes, log: web::Data<Mutex<Log>>) -> HttpResponse {
    let path = req.path().to_owned();
    let seen = {
        let mut log = log.lock().expect("log");
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        log.requests.push(Received {
            path: path.clone(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        let seen = log.per_path.entry(path.clone()).or_insert(0);
        *seen += 1;
        *seen
    };
    if path.starts_with("/ok/slower") {
        tokio::time::sleep(Duration::from_millis(200)).await;
        HttpResponse::Ok().body("thanks")
    } else if path.starts_with("/ok/slowish") {
        tokio::time::sleep(Duration::from_millis(20)).await;
        HttpResponse::Ok().body("thanks")
    } else if path.starts_with("/ok") {
        HttpResponse::Ok().body("thanks")
    } else if path.starts_with("/fail") {
        HttpResponse::InternalServerError().body("boom")
    } else if path.starts_with("/gone") {
        HttpResponse::Gone().finish()
    } else if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_secs(30)).await;
        HttpResponse::Ok().finish()
    } else if path.starts_with("/nul") {
        HttpResponse::Ok().body("ok\0")
    } else if path.starts_with("/busy") {
        HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .finish()
    } else if let Some(rest) = path.strip_prefix("/flaky/") {
        let failures: u32 = rest
            .split('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if seen <= failures {
            HttpResponse::InternalServerError().body(format!("failure {seen}"))
        } else {
            HttpResponse::Ok().body("recovered")
        }
    } else {
        HttpResponse::NotFound().finish()
    }
}
