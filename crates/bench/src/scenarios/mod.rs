//! The measuring scenarios, one subcommand each: every run prints one JSON
//! object on standard output and a summary line on standard error.
//!
//! - `api`: the receiver's ceiling, and the webhook API under a closed loop.
//! - `deliver`: events published flat out or at a rate, and a backlog
//!   drained by a worker-only process, timed at the receiver.
//! - `idle`: one event at a time, alone or beside endpoints that hang.
//! - `history`: delivery throughput and the delivery log's latency on a
//!   database that already holds millions of finished deliveries.

pub mod api;
pub mod deliver;
pub mod history;
pub mod idle;

use anyhow::{bail, Context};
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::{Common, Target};
use crate::net::{unix_nanos, HttpClient};

/// Prints one run: JSON on stdout, one line for people on stderr.
pub fn emit(common: &Common, scenario: &str, mut value: Value, summary: String) {
    if let Value::Object(map) = &mut value {
        map.insert("scenario".into(), json!(scenario));
        map.insert("backend".into(), json!(common.backend));
        map.insert("run".into(), json!(common.run));
        map.insert("finished_unix".into(), json!(unix_nanos() / 1_000_000_000));
        map.insert(
            "loadavg".into(),
            json!(std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()),
        );
    }
    println!("{value}");
    eprintln!(
        "[{} run {}] {scenario}: {summary}",
        common.backend, common.run
    );
}

pub fn latency_text(latency: &Value) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms",
        latency["p50_ms"].as_f64().unwrap_or(f64::NAN),
        latency["p99_ms"].as_f64().unwrap_or(f64::NAN)
    )
}

pub fn webhook_body(url: &str, description: &str) -> Bytes {
    Bytes::from(json!({"url": url, "description": description}).to_string())
}

/// Creates `count` webhooks in the group; answers their ids.
pub async fn create_webhooks(
    client: &HttpClient,
    target: &Target,
    count: usize,
    url: impl Fn(usize) -> String,
) -> anyhow::Result<Vec<String>> {
    let path = format!("/webhooks/{}", target.group);
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let request = client.request(
            Method::POST,
            &path,
            &[("x-api-key", &target.key)],
            Some(webhook_body(&url(n), &format!("bench {n}"))),
        )?;
        let answer = client.send(request).await?;
        if answer.status != 200 {
            bail!(
                "creating a webhook answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        let body: Value = serde_json::from_slice(&answer.body)?;
        ids.push(
            body["id"]
                .as_str()
                .context("no id in the created webhook")?
                .to_owned(),
        );
    }
    Ok(ids)
}
