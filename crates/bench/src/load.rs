//! A closed-loop load generator (N callers, each sending its next request
//! when the previous one answered) and exact latency percentiles.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};

use crate::net::HttpClient;
use crate::procfs::{CpuSample, Watched};

/// Latencies in nanoseconds; percentiles are exact (every sample is kept:
/// a few million u64 at most).
#[derive(Default)]
pub struct Latencies(pub Vec<u64>);

impl Latencies {
    pub fn summary(mut self) -> Value {
        if self.0.is_empty() {
            return json!({"count": 0});
        }
        self.0.sort_unstable();
        let n = self.0.len();
        let at = |p: f64| {
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            self.0[rank - 1] as f64 / 1e6
        };
        let mean = self.0.iter().map(|v| *v as f64).sum::<f64>() / n as f64 / 1e6;
        json!({
            "count": n,
            "min_ms": self.0[0] as f64 / 1e6,
            "p50_ms": at(0.50),
            "p90_ms": at(0.90),
            "p99_ms": at(0.99),
            "p999_ms": at(0.999),
            "max_ms": self.0[n - 1] as f64 / 1e6,
            "mean_ms": mean,
        })
    }
}

/// What a closed loop measured (the warm-up excluded).
pub struct LoadResult {
    pub seconds: f64,
    pub ok: u64,
    pub errors: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub first_error: Option<String>,
    pub latencies: Latencies,
}

impl LoadResult {
    pub fn json(self) -> Value {
        let rate = self.ok as f64 / self.seconds.max(1e-9);
        json!({
            "seconds": self.seconds,
            "requests_ok": self.ok,
            "errors": self.errors,
            "statuses": self.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "first_error": self.first_error,
            "throughput": rate,
            "latency": self.latencies.summary(),
        })
    }
}

/// Builds the `n`-th request of a closed loop, when the kind of request is
/// chosen at run time.
pub type MakeRequest =
    Box<dyn Fn(&HttpClient, u64) -> anyhow::Result<Request<Full<Bytes>>> + Send + Sync>;

/// Runs `connections` callers for `warmup + duration`; a request counts when
/// it was sent after the warm-up and before the end. `make(n)` builds the
/// n-th request; an answer with status `expected` is a success. Answers the
/// CPU counters of `watched` at the end of the warm-up too.
#[allow(clippy::too_many_arguments)]
pub async fn closed_loop<F>(
    watched: &Watched,
    client: &HttpClient,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    make: F,
    expected: u16,
) -> (LoadResult, CpuSample)
where
    F: Fn(&HttpClient, u64) -> anyhow::Result<Request<Full<Bytes>>> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = client.clone();
        let make = make.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut ok = 0u64;
            let mut errors = 0u64;
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let mut first_error = None;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let counted = sent >= measure_from;
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let outcome = match make(&client, n) {
                    Ok(request) => client.send(request).await,
                    Err(err) => Err(err),
                };
                let took = sent.elapsed();
                match outcome {
                    Ok(answer) => {
                        if counted {
                            *statuses.entry(answer.status.as_u16()).or_insert(0) += 1;
                        }
                        if answer.status.as_u16() == expected {
                            if counted {
                                ok += 1;
                                latencies.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                            }
                        } else {
                            if counted {
                                errors += 1;
                            }
                            if first_error.is_none() {
                                first_error = Some(format!(
                                    "{} {}",
                                    answer.status,
                                    String::from_utf8_lossy(
                                        &answer.body[..answer.body.len().min(200)]
                                    )
                                ));
                            }
                        }
                    }
                    Err(err) => {
                        if counted {
                            errors += 1;
                        }
                        if first_error.is_none() {
                            first_error = Some(err.to_string());
                        }
                        // Do not spin on a refused connection.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (latencies, ok, errors, statuses, first_error)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let before = watched.sample();
    let mut result = LoadResult {
        seconds: duration.as_secs_f64(),
        ok: 0,
        errors: 0,
        statuses: BTreeMap::new(),
        first_error: None,
        latencies: Latencies::default(),
    };
    for task in tasks {
        if let Ok((latencies, ok, errors, statuses, first_error)) = task.await {
            result.latencies.0.extend(latencies);
            result.ok += ok;
            result.errors += errors;
            for (status, n) in statuses {
                *result.statuses.entry(status).or_insert(0) += n;
            }
            if result.first_error.is_none() {
                result.first_error = first_error;
            }
        }
    }
    (result, before)
}
