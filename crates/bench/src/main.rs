//! The benchmark harness of `scripts/bench.sh`: a loopback
//! receiver, a closed-loop load generator and the scenarios, each printing
//! one JSON object per run on standard output and a summary on standard
//! error; `collect` and `report` turn runs into `docs/benchmarks/*.json`,
//! the tables of `docs/benchmarks.md` and its SVG charts.
//!
//! ```text
//! cargo run --release -p webhooks-bench -- ceiling
//! cargo run --release -p webhooks-bench -- api --base http://127.0.0.1:8080 --key okw_…
//! cargo run --release -p webhooks-bench -- deliver --base … --key … --service-token … --events 20000 --webhooks 1
//! ```
//!
//! Everything goes to 127.0.0.1 only, and every loop is bounded in time and
//! count.

mod load;
mod net;
mod procfs;
mod report;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use load::{closed_loop, Latencies, MakeRequest};
use net::{unix_nanos, Arrival, HangingReceiver, HttpClient, Receiver};
use procfs::Watched;

#[derive(Parser)]
#[command(about = "Benchmarks of okaya-webhooks (see docs/benchmarks.md)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// What every measuring subcommand takes.
#[derive(Args, Clone)]
struct Common {
    /// Label of the storage under test, copied into the output.
    #[arg(long, default_value = "postgres")]
    backend: String,
    /// Run number (1, 2, 3), copied into the output.
    #[arg(long, default_value_t = 1)]
    run: u32,
    /// Service process(es) whose CPU and memory are measured.
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// PostgreSQL database whose backends' CPU is measured.
    #[arg(long)]
    pg_database: Option<String>,
}

impl Common {
    fn watched(&self) -> Watched {
        Watched {
            service_pids: self.pids.clone(),
            pg_database: self.pg_database.clone(),
        }
    }
}

/// The service under test.
#[derive(Args, Clone)]
struct Target {
    /// e.g. http://127.0.0.1:8080
    #[arg(long)]
    base: String,
    /// An API key of the group.
    #[arg(long)]
    key: String,
    #[arg(long, default_value_t = 123456)]
    group: i64,
    /// Bearer token of /internal/events.
    #[arg(long, default_value = "")]
    service_token: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// A bare hello-world receiver of ours under the same closed loop: the
    /// machine's ceiling.
    Ceiling {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 1)]
        warmup: u64,
    },
    /// GET, PUT and POST /webhooks/{groupID} with 20 webhooks in the group.
    Api {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 20)]
        webhooks: usize,
        #[arg(long, default_value_t = 1)]
        warmup: u64,
    },
    /// Publish events (as fast as accepted, or at --rate per second) to
    /// webhooks on our receiver and time their arrival.
    Deliver {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        target: Target,
        /// Name of the scenario in the output.
        #[arg(long, default_value = "deliver")]
        scenario: String,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        #[arg(long, default_value_t = 1)]
        webhooks: usize,
        /// Concurrent publishers (closed loop).
        #[arg(long, default_value_t = 32)]
        publishers: usize,
        /// Open loop: events per second offered, for --events events.
        #[arg(long)]
        rate: Option<f64>,
        /// Longest wait for the arrivals after publishing, seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// One event at a time with a pause between: send-to-arrival on an idle
    /// system.
    IdleLatency {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        target: Target,
        /// Name of the scenario in the output.
        #[arg(long, default_value = "idle")]
        scenario: String,
        #[arg(long, default_value_t = 200)]
        events: usize,
        #[arg(long, default_value_t = 20)]
        pause_ms: u64,
        /// Webhooks to a receiver that never answers, each sent
        /// --hanging-events deliveries before the measurement starts.
        #[arg(long, default_value_t = 0)]
        hanging: usize,
        #[arg(long, default_value_t = 40)]
        hanging_events: usize,
    },
    /// Publish a backlog to an API-only service, then wait for a worker
    /// process (started by the caller when `--ready-file` appears, its pid
    /// written to `<ready-file>.pid`) to drain it.
    Drain {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        #[arg(long, default_value_t = 1)]
        webhooks: usize,
        #[arg(long, default_value_t = 32)]
        publishers: usize,
        #[arg(long)]
        ready_file: PathBuf,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// The machine and versions, as JSON.
    Machine {
        #[arg(long)]
        pg_url: Option<String>,
    },
    /// Bundles the machine and the runs (JSON lines) into one results file.
    Collect {
        #[arg(long)]
        machine: PathBuf,
        #[arg(long)]
        runs: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        backend: String,
        /// The command that produced the runs.
        #[arg(long)]
        command: String,
        /// Seconds the whole benchmark took.
        #[arg(long)]
        wall_seconds: Option<f64>,
    },
    /// Writes the tables and charts of docs/benchmarks.md from
    /// docs/benchmarks/results*.json.
    Report {
        #[arg(long, default_value = "docs")]
        docs: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Ceiling {
                common,
                seconds,
                connections,
                warmup,
            } => ceiling(common, seconds, connections, warmup).await,
            Cmd::Api {
                common,
                target,
                seconds,
                connections,
                webhooks,
                warmup,
            } => api(common, target, seconds, connections, webhooks, warmup).await,
            Cmd::Deliver {
                common,
                target,
                scenario,
                events,
                webhooks,
                publishers,
                rate,
                timeout,
            } => {
                deliver(
                    common, target, &scenario, events, webhooks, publishers, rate, timeout,
                )
                .await
            }
            Cmd::IdleLatency {
                common,
                target,
                scenario,
                events,
                pause_ms,
                hanging,
                hanging_events,
            } => {
                let hanging = Hanging {
                    webhooks: hanging,
                    events: hanging_events,
                };
                idle_latency(common, target, &scenario, events, pause_ms, hanging).await
            }
            Cmd::Drain {
                common,
                target,
                events,
                webhooks,
                publishers,
                ready_file,
                timeout,
            } => {
                drain(
                    common, target, events, webhooks, publishers, ready_file, timeout,
                )
                .await
            }
            Cmd::Machine { pg_url } => {
                println!("{}", report::machine(pg_url.as_deref()));
                Ok(())
            }
            Cmd::Collect {
                machine,
                runs,
                out,
                backend,
                command,
                wall_seconds,
            } => report::collect(&machine, &runs, &out, &backend, &command, wall_seconds),
            Cmd::Report { docs } => report::write(&docs),
        }
    })
}

/// Prints one run: JSON on stdout, one line for people on stderr.
fn emit(common: &Common, scenario: &str, mut value: Value, summary: String) {
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

fn latency_text(latency: &Value) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms",
        latency["p50_ms"].as_f64().unwrap_or(f64::NAN),
        latency["p99_ms"].as_f64().unwrap_or(f64::NAN)
    )
}

async fn ceiling(
    common: Common,
    seconds: u64,
    connections: usize,
    warmup: u64,
) -> anyhow::Result<()> {
    let receiver = Receiver::start(false).await?;
    let client = HttpClient::new(&format!("http://{}", receiver.address), connections);
    let watched = common.watched();
    let (result, before) = closed_loop(
        &watched,
        &client,
        connections,
        Duration::from_secs(warmup),
        Duration::from_secs(seconds),
        |client, _| client.request(Method::GET, "/", &[], None),
        200,
    )
    .await;
    let ok = result.ok;
    let mut value = result.json();
    value["connections"] = json!(connections);
    value["cpu"] = watched.cpu_between(&before, &watched.sample(), ok);
    let summary = format!(
        "{:.0} req/s, {}",
        value["throughput"].as_f64().unwrap_or(0.0),
        latency_text(&value["latency"])
    );
    emit(&common, "ceiling", value, summary);
    Ok(())
}

fn webhook_body(url: &str, description: &str) -> Bytes {
    Bytes::from(json!({"url": url, "description": description}).to_string())
}

/// The event type only the hanging webhooks of the isolation scenarios take
/// (the measured webhook takes `user.created` only).
const HANGING_TYPE: &str = "user.session.result";

/// Creates `count` webhooks in the group; answers their ids.
async fn create_webhooks(
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

async fn api(
    common: Common,
    target: Target,
    seconds: u64,
    connections: usize,
    webhooks: usize,
    warmup: u64,
) -> anyhow::Result<()> {
    let client = HttpClient::new(&target.base, connections);
    let watched = common.watched();
    let idle_memory = watched.memory();
    // Enabled, but nothing is ever published to them: never called.
    let ids = Arc::new(
        create_webhooks(&client, &target, webhooks, |_| {
            "http://127.0.0.1:9/never".to_owned()
        })
        .await?,
    );
    let path = Arc::new(format!("/webhooks/{}", target.group));
    let key = Arc::new(target.key.clone());
    let warmup = Duration::from_secs(warmup);
    let duration = Duration::from_secs(seconds);
    for operation in ["get", "put", "post"] {
        let (path, key, ids) = (path.clone(), key.clone(), ids.clone());
        let make: MakeRequest = match operation {
            "get" => {
                Box::new(move |c, _| c.request(Method::GET, &path, &[("x-api-key", &key)], None))
            }
            "put" => Box::new(move |c, n| {
                let id = &ids[usize::try_from(n).unwrap_or(0) % ids.len().max(1)];
                c.request(
                    Method::PUT,
                    &format!("{path}/{id}"),
                    &[("x-api-key", &key)],
                    Some(webhook_body(
                        "http://127.0.0.1:9/never",
                        &format!("bench put {n}"),
                    )),
                )
            }),
            _ => Box::new(move |c, n| {
                c.request(
                    Method::POST,
                    &path,
                    &[("x-api-key", &key)],
                    Some(webhook_body(
                        "http://127.0.0.1:9/never",
                        &format!("bench post {n}"),
                    )),
                )
            }),
        };
        let (result, before) =
            closed_loop(&watched, &client, connections, warmup, duration, make, 200).await;
        let after = watched.sample();
        let ok = result.ok;
        let mut value = result.json();
        value["connections"] = json!(connections);
        value["webhooks_in_group"] = json!(webhooks);
        value["cpu"] = watched.cpu_between(&before, &after, ok);
        value["memory_idle"] = idle_memory.clone();
        value["memory_end"] = watched.memory();
        let summary = format!(
            "{:.0} req/s, {}, {} errors{}",
            value["throughput"].as_f64().unwrap_or(0.0),
            latency_text(&value["latency"]),
            value["errors"],
            value["first_error"]
                .as_str()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        emit(&common, &format!("api_{operation}"), value, summary);
    }
    Ok(())
}

/// Publishing, shared by the delivery scenarios.
struct Publisher {
    client: HttpClient,
    group: i64,
    auth: String,
    accepted: Mutex<Vec<String>>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    latencies: Mutex<Vec<u64>>,
}

impl Publisher {
    fn new(target: &Target, connections: usize) -> Arc<Publisher> {
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
    async fn publish(&self, seq: usize) {
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
    async fn closed(self: &Arc<Self>, events: usize, publishers: usize) {
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
    async fn open(self: &Arc<Self>, events: usize, rate: f64) -> f64 {
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

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn json(&self, seconds: f64) -> Value {
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

/// What arrived, against what was published.
fn analyse(
    arrivals: &[Arrival],
    accepted: &[String],
    webhooks: usize,
    first_send_ns: u64,
) -> Value {
    let mut seen: HashMap<(&str, &str), u32> = HashMap::new();
    let mut latencies = Vec::with_capacity(arrivals.len());
    let mut first = u64::MAX;
    let mut last = 0u64;
    let mut unparsed = 0u64;
    for arrival in arrivals {
        let count = seen
            .entry((arrival.path.as_str(), arrival.event_id.as_str()))
            .or_insert(0);
        *count += 1;
        if *count > 1 {
            continue;
        }
        first = first.min(arrival.at_ns);
        last = last.max(arrival.at_ns);
        let sent = serde_json::from_slice::<Value>(&arrival.body)
            .ok()
            .and_then(|body| {
                let sent = &body["data"]["sentAt"];
                sent.as_u64().or_else(|| sent.as_f64().map(|f| f as u64))
            });
        match sent {
            Some(sent) => latencies.push(arrival.at_ns.saturating_sub(sent)),
            None => unparsed += 1,
        }
    }
    let distinct = seen.len();
    let duplicates: u64 = seen.values().map(|n| u64::from(n - 1)).sum();
    let ids: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    let mut unexpected = 0u64;
    for (_, id) in seen.keys() {
        if ids.contains(id) {
            *per_event.entry(id).or_insert(0) += 1;
        } else {
            unexpected += 1;
        }
    }
    let expected = accepted.len() * webhooks;
    let delivered_expected: usize = per_event.values().sum();
    let missing = expected.saturating_sub(delivered_expected);
    let missing_events: Vec<&str> = ids
        .iter()
        .filter(|id| per_event.get(*id).copied().unwrap_or(0) < webhooks)
        .take(5)
        .copied()
        .collect();
    let span = if distinct > 1 {
        (last - first) as f64 / 1e9
    } else {
        0.0
    };
    let from_first_send = if distinct > 0 && last > first_send_ns {
        (last - first_send_ns) as f64 / 1e9
    } else {
        0.0
    };
    json!({
        "expected": expected,
        "delivered": distinct,
        "missing": missing,
        "missing_examples": missing_events,
        "duplicates": duplicates,
        "unexpected": unexpected,
        "unparsed": unparsed,
        "first_to_last_s": span,
        "deliveries_per_s": if span > 0.0 { (distinct - 1) as f64 / span } else { 0.0 },
        "first_send_to_last_arrival_s": from_first_send,
        "deliveries_per_s_from_first_send": if from_first_send > 0.0 { distinct as f64 / from_first_send } else { 0.0 },
        "send_to_arrival": Latencies(latencies).summary(),
    })
}

fn delivery_summary(value: &Value) -> String {
    let d = &value["delivery"];
    format!(
        "{:.0} deliveries/s first-to-last, send-to-arrival {}, {} of {} delivered, {} missing, {} duplicates; published {:.0} events/s ({} errors)",
        d["deliveries_per_s"].as_f64().unwrap_or(0.0),
        latency_text(&d["send_to_arrival"]),
        d["delivered"],
        d["expected"],
        d["missing"],
        d["duplicates"],
        value["publish"]["events_per_s"].as_f64().unwrap_or(0.0),
        value["publish"]["errors"],
    )
}

#[allow(clippy::too_many_arguments)]
async fn deliver(
    common: Common,
    target: Target,
    scenario: &str,
    events: usize,
    webhooks: usize,
    publishers: usize,
    rate: Option<f64>,
    timeout: u64,
) -> anyhow::Result<()> {
    let receiver = Receiver::start(true).await?;
    let setup = HttpClient::new(&target.base, 4);
    create_webhooks(&setup, &target, webhooks, |n| {
        receiver.url(&format!("/hook/{n}"))
    })
    .await?;
    let watched = common.watched();
    let idle_memory = watched.memory();
    let publisher = Publisher::new(&target, if rate.is_some() { 512 } else { publishers });
    let before = watched.sample();
    let started = Instant::now();
    let first_send_ns = unix_nanos();
    let lag_ms = match rate {
        Some(rate) => Some(publisher.open(events, rate).await),
        None => {
            publisher.closed(events, publishers).await;
            None
        }
    };
    let publish_seconds = started.elapsed().as_secs_f64();
    let accepted = publisher.accepted();
    let expected = accepted.len() * webhooks;
    let arrived = receiver
        .wait_for(expected, Instant::now() + Duration::from_secs(timeout))
        .await;
    let timed_out = arrived < expected;
    // Late duplicates would show up right after.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = watched.sample();
    let arrivals = receiver.take();
    let delivery = analyse(&arrivals, &accepted, webhooks, first_send_ns);
    let delivered = delivery["delivered"].as_u64().unwrap_or(0);
    let value = json!({
        "events": events,
        "webhooks": webhooks,
        "publishers": if rate.is_some() { Value::Null } else { json!(publishers) },
        "offered_rate": rate,
        "max_schedule_lag_ms": lag_ms,
        "timeout_s": timeout,
        "timed_out": timed_out,
        "publish": publisher.json(publish_seconds),
        "delivery": delivery,
        "throughput": delivery["deliveries_per_s"],
        "cpu": watched.cpu_between(&before, &after, delivered),
        "memory_idle": idle_memory,
        "memory_end": watched.memory(),
    });
    let summary = delivery_summary(&value);
    emit(&common, scenario, value, summary);
    Ok(())
}

/// Dead endpoints beside the one measured: `webhooks` webhooks to a
/// receiver that never answers, each sent `events` deliveries.
struct Hanging {
    webhooks: usize,
    events: usize,
}

/// Starts the attack of an isolation scenario: the hanging webhooks, their
/// deliveries, and a wait until the service holds requests to each (at most
/// 30 s). Answers the receiver, which must live as long as the measurement.
async fn start_hanging(
    setup: &HttpClient,
    target: &Target,
    hanging: &Hanging,
) -> anyhow::Result<Option<HangingReceiver>> {
    if hanging.webhooks == 0 {
        return Ok(None);
    }
    let dead = HangingReceiver::start().await?;
    let path = format!("/webhooks/{}", target.group);
    for n in 0..hanging.webhooks {
        let body = json!({
            "url": dead.url(&format!("/dead/{n}")),
            "description": format!("hanging {n}"),
            "enabledEvents": [HANGING_TYPE],
        });
        let request = setup.request(
            Method::POST,
            &path,
            &[("x-api-key", &target.key)],
            Some(Bytes::from(body.to_string())),
        )?;
        let answer = setup.send(request).await?;
        if answer.status != 200 {
            bail!("creating a hanging webhook answered {}", answer.status);
        }
    }
    let auth = format!("Bearer {}", target.service_token);
    for seq in 0..hanging.events {
        let body = json!({"groupID": target.group, "type": HANGING_TYPE, "data": {"seq": seq}});
        let request = setup.request(
            Method::POST,
            "/internal/events",
            &[("authorization", &auth)],
            Some(Bytes::from(body.to_string())),
        )?;
        let answer = setup.send(request).await?;
        if answer.status != 202 {
            bail!(
                "publishing to the hanging webhooks answered {}",
                answer.status
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = hanging.webhooks * hanging.events.min(8);
    while dead.connections() < wanted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Some(dead))
}

async fn idle_latency(
    common: Common,
    target: Target,
    scenario: &str,
    events: usize,
    pause_ms: u64,
    hanging: Hanging,
) -> anyhow::Result<()> {
    let receiver = Receiver::start(true).await?;
    let setup = HttpClient::new(&target.base, 2);
    let idle_url = receiver.url("/hook/idle");
    let request = setup.request(
        Method::POST,
        &format!("/webhooks/{}", target.group),
        &[("x-api-key", &target.key)],
        Some(Bytes::from(
            json!({"url": idle_url, "description": "idle", "enabledEvents": ["user.created"]})
                .to_string(),
        )),
    )?;
    let answer = setup.send(request).await?;
    if answer.status != 200 {
        bail!("creating the webhook answered {}", answer.status);
    }
    let dead = start_hanging(&setup, &target, &hanging).await?;
    let held_at_start = dead.as_ref().map_or(0, HangingReceiver::connections);
    let watched = common.watched();
    let publisher = Publisher::new(&target, 2);
    let before = watched.sample();
    let started = Instant::now();
    let first_send_ns = unix_nanos();
    let mut late = 0u64;
    for seq in 0..events {
        publisher.publish(seq).await;
        let want = publisher.accepted().len();
        if receiver
            .wait_for(want, Instant::now() + Duration::from_secs(5))
            .await
            < want
        {
            late += 1;
        }
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    let accepted = publisher.accepted();
    receiver
        .wait_for(accepted.len(), Instant::now() + Duration::from_secs(5))
        .await;
    let after = watched.sample();
    let seconds = started.elapsed().as_secs_f64();
    let delivery = analyse(&receiver.take(), &accepted, 1, first_send_ns);
    let delivered = delivery["delivered"].as_u64().unwrap_or(0);
    let value = json!({
        "events": events,
        "pause_ms": pause_ms,
        "hanging_webhooks": hanging.webhooks,
        "hanging_events": if hanging.webhooks > 0 { json!(hanging.events) } else { Value::Null },
        "hanging_connections_at_start": held_at_start,
        "hanging_connections_at_end": dead.as_ref().map_or(0, HangingReceiver::connections),
        "not_within_5s": late,
        "publish": publisher.json(seconds),
        "delivery": delivery,
        "cpu": watched.cpu_between(&before, &after, delivered),
        "memory_end": watched.memory(),
    });
    let summary = format!(
        "send-to-arrival {}, publish answer {}, {} missing{}",
        latency_text(&value["delivery"]["send_to_arrival"]),
        latency_text(&value["publish"]["latency"]),
        value["delivery"]["missing"],
        if hanging.webhooks > 0 {
            format!(
                ", beside {} hanging webhooks holding {held_at_start} requests",
                hanging.webhooks
            )
        } else {
            String::new()
        }
    );
    emit(&common, scenario, value, summary);
    Ok(())
}

async fn drain(
    common: Common,
    target: Target,
    events: usize,
    webhooks: usize,
    publishers: usize,
    ready_file: PathBuf,
    timeout: u64,
) -> anyhow::Result<()> {
    let receiver = Receiver::start(true).await?;
    let setup = HttpClient::new(&target.base, 4);
    create_webhooks(&setup, &target, webhooks, |n| {
        receiver.url(&format!("/hook/{n}"))
    })
    .await?;
    let publisher = Publisher::new(&target, publishers);
    let first_send_ns = unix_nanos();
    let started = Instant::now();
    publisher.closed(events, publishers).await;
    let publish_seconds = started.elapsed().as_secs_f64();
    let accepted = publisher.accepted();
    if receiver.count() > 0 {
        bail!("deliveries arrived before the worker started: is the service --role api?");
    }
    std::fs::write(&ready_file, "ready\n")?;
    // The caller starts the worker and writes its pid.
    let pid_file = PathBuf::from(format!("{}.pid", ready_file.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let worker: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        if Instant::now() > deadline {
            bail!("no worker pid in {} within 60 s", pid_file.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut common = common;
    common.pids.push(worker);
    let watched = common.watched();
    let before = watched.sample();
    let expected = accepted.len() * webhooks;
    let arrived = receiver
        .wait_for(expected, Instant::now() + Duration::from_secs(timeout))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = watched.sample();
    let delivery = analyse(&receiver.take(), &accepted, webhooks, first_send_ns);
    let delivered = delivery["delivered"].as_u64().unwrap_or(0);
    let value = json!({
        "events": events,
        "webhooks": webhooks,
        "publishers": publishers,
        "timeout_s": timeout,
        "timed_out": arrived < expected,
        "publish": publisher.json(publish_seconds),
        "delivery": delivery,
        "throughput": delivery["deliveries_per_s"],
        "worker_pid": worker,
        "cpu": watched.cpu_between(&before, &after, delivered),
        "memory_end": watched.memory(),
    });
    let summary = delivery_summary(&value);
    emit(&common, "drain", value, summary);
    Ok(())
}
