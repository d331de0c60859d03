//! Delivery throughput: events published flat out or at a fixed rate to
//! webhooks on our receiver, and a backlog drained by a worker-only process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use super::{create_webhooks, emit, latency_text};
use crate::arrivals::analyse;
use crate::cli::{DeliverArgs, DrainArgs, Target};
use crate::net::{unix_nanos, HttpClient, Receiver};
use crate::publisher::Publisher;

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

/// Publishes `events` events and times their arrival at `webhooks` webhooks.
pub async fn deliver(args: DeliverArgs) -> anyhow::Result<()> {
    let (receiver, _) = receiver_with_webhooks(&args.target, args.webhooks).await?;
    let value = measure(&args, &receiver).await;
    let summary = delivery_summary(&value);
    emit(&args.common, &args.scenario, value, summary);
    Ok(())
}

/// The `deliver` measurement against webhooks already pointing at
/// `receiver`: the run's JSON, before [`emit`] labels it.
pub async fn measure(args: &DeliverArgs, receiver: &Receiver) -> Value {
    let DeliverArgs {
        common,
        target,
        events,
        webhooks,
        publishers,
        rate,
        timeout,
        ..
    } = args;
    let (events, webhooks, publishers, rate, timeout) =
        (*events, *webhooks, *publishers, *rate, *timeout);
    let watched = common.watched();
    let idle_memory = watched.memory();
    let publisher = Publisher::new(target, if rate.is_some() { 512 } else { publishers });
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
    json!({
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
    })
}

/// Publishes a backlog while no worker runs, then times how fast the worker
/// that the caller starts drains it.
pub async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let DrainArgs {
        common,
        target,
        events,
        webhooks,
        publishers,
        ready_file,
        timeout,
    } = args;
    let (receiver, _) = receiver_with_webhooks(&target, webhooks).await?;
    let publisher = Publisher::new(&target, publishers);
    let first_send_ns = unix_nanos();
    let started = Instant::now();
    publisher.closed(events, publishers).await;
    let publish_seconds = started.elapsed().as_secs_f64();
    let accepted = publisher.accepted();
    if receiver.count() > 0 {
        bail!("deliveries arrived before the worker started: is the service --role api?");
    }
    let worker = start_worker(&ready_file).await?;
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

/// Writes `ready_file`, the caller's signal to start the worker process,
/// then waits (up to 60 s) for the caller to write its pid to
/// `<ready_file>.pid`.
async fn start_worker(ready_file: &Path) -> anyhow::Result<u32> {
    std::fs::write(ready_file, "ready\n")?;
    let pid_file = PathBuf::from(format!("{}.pid", ready_file.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            bail!("no worker pid in {} within 60 s", pid_file.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Our recording receiver, and `webhooks` webhooks of the group pointing at
/// it (`/hook/0`, `/hook/1`, …), with their ids.
pub async fn receiver_with_webhooks(
    target: &Target,
    webhooks: usize,
) -> anyhow::Result<(Receiver, Vec<String>)> {
    let receiver = Receiver::start(true).await?;
    let setup = HttpClient::new(&target.base, 4);
    let ids = create_webhooks(&setup, target, webhooks, |n| {
        receiver.url(&format!("/hook/{n}"))
    })
    .await?;
    Ok((receiver, ids))
}
