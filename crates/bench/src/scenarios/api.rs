//! The receiver's ceiling and the webhook API, each under the same
//! closed-loop load generator.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::json;

use super::{create_webhooks, emit, latency_text, webhook_body};
use crate::cli::{ApiArgs, CeilingArgs};
use crate::load::{closed_loop, MakeRequest};
use crate::net::{HttpClient, Receiver};

/// A bare hello-world receiver of ours under the closed loop: the most the
/// machine serves to this load generator.
pub async fn ceiling(args: CeilingArgs) -> anyhow::Result<()> {
    let CeilingArgs {
        common,
        seconds,
        connections,
        warmup,
    } = args;
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

/// GET, PUT and POST of `/webhooks/{groupID}`, one after the other.
pub async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let ApiArgs {
        common,
        target,
        seconds,
        connections,
        webhooks,
        warmup,
    } = args;
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
