//! Send-to-arrival of one event at a time on an idle service, alone or
//! beside webhooks whose receiver never answers (the isolation scenarios).

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use super::{emit, latency_text};
use crate::arrivals::analyse;
use crate::cli::{IdleArgs, Target};
use crate::net::{unix_nanos, HangingReceiver, HttpClient, Receiver};
use crate::publisher::Publisher;

/// The event type only the hanging webhooks of the isolation scenarios take
/// (the measured webhook takes `user.created` only).
const HANGING_TYPE: &str = "user.session.result";

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

/// Publishes `events` events one at a time, each after the previous one
/// arrived (or 5 s passed) and a pause.
pub async fn idle_latency(args: IdleArgs) -> anyhow::Result<()> {
    let IdleArgs {
        common,
        target,
        scenario,
        events,
        pause_ms,
        hanging,
        hanging_events,
    } = args;
    let hanging = Hanging {
        webhooks: hanging,
        events: hanging_events,
    };
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
    emit(&common, &scenario, value, summary);
    Ok(())
}
