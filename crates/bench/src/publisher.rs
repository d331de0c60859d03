//! Publishing events to the service under test, shared by the delivery
//! scenarios: each event carries its send time, so that the receiver can
//! time its arrival.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::Target;
use crate::load::Latencies;
use crate::net::{unix_nanos, HttpClient};

/// Publishing, shared by the delivery scenarios.
pub struct Publisher {
    client: HttpClient,
    group: i64,
    auth: String,
    accepted: Mutex<Vec<String>>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    latencies: Mutex<Vec<u64>>,
}

impl Publisher {
    pub fn new(target: &Target, connections: usize) -> Arc<Publisher> {
        Arc::new(Publisher {
            client: HttpClient::new(&target.base, connections),
            group: target.group,
            auth: format!("Bearer {}", target.service_token),
            accepted: Mutex::new(Vec::new()),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            latencies: Mutex::new(Vec::new()),
        })
    }

    /// Publishes event `seq` with `data.sentAt` = now (unix ns).
    pub async fn publish(&self, seq: usize) {
        let sent_ns = unix_nanos();
        let started = Instant::now();
        let body = json!({
            "groupID": self.group,
            "type": "user.created",
            "data": {"sentAt": sent_ns, "seq": seq},
        });
        let outcome = async {
            let request = self.client.request(
                Method::POST,
                "/internal/events",
                &[("authorization", &self.auth)],
                Some(Bytes::from(body.to_string())),
            )?;
            let answer = tokio::time::timeout(Duration::from_secs(30), self.client.send(request))
                .await
                .map_err(|_| anyhow::anyhow!("publishing took over 30 s"))??;
            if answer.status != 202 {
                bail!(
                    "{} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                );
            }
            let value: Value = serde_json::from_slice(&answer.body)?;
            value["id"]
                .as_str()
                .map(str::to_owned)
                .context("no id in the answer")
        }
        .await;
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        match outcome {
            Ok(id) => {
                if let Ok(mut accepted) = self.accepted.lock() {
                    accepted.push(id);
                }
                if let Ok(mut latencies) = self.latencies.lock() {
                    latencies.push(took);
                }
            }
            Err(err) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| err.to_string());
                }
            }
        }
    }

    /// `events` events from `publishers` callers in a closed loop.
    pub async fn closed(self: &Arc<Self>, events: usize, publishers: usize) {
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..publishers {
            let this = self.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let seq =
                        usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                    if seq >= events {
                        break;
                    }
                    this.publish(seq).await;
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// `events` events at `rate` per second, each sent on schedule whatever
    /// the service's answers (open loop). Answers the largest lag behind
    /// schedule, ms.
    pub async fn open(self: &Arc<Self>, events: usize, rate: f64) -> f64 {
        let start = tokio::time::Instant::now();
        let mut lag = Duration::ZERO;
        let mut tasks = Vec::with_capacity(events);
        for seq in 0..events {
            let due = start + Duration::from_secs_f64(seq as f64 / rate);
            tokio::time::sleep_until(due).await;
            lag = lag.max(tokio::time::Instant::now().saturating_duration_since(due));
            let this = self.clone();
            tasks.push(tokio::spawn(async move { this.publish(seq).await }));
        }
        for task in tasks {
            let _ = task.await;
        }
        lag.as_secs_f64() * 1000.0
    }

    pub fn accepted(&self) -> Vec<String> {
        self.accepted.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn json(&self, seconds: f64) -> Value {
        let accepted = self.accepted().len();
        let latencies = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        json!({
            "accepted": accepted,
            "errors": self.errors.load(Ordering::Relaxed),
            "first_error": self.first_error.lock().ok().and_then(|e| e.clone()),
            "seconds": seconds,
            "events_per_s": accepted as f64 / seconds.max(1e-9),
            "latency": Latencies(latencies).summary(),
        })
    }
}
