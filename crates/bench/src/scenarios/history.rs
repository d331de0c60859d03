//! History size: the `deliver` measurement with one webhook, then a closed
//! loop on that webhook's delivery log, on a database that `scripts/bench.sh
//! --history` filled with finished deliveries beforehand, or left empty.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use super::deliver::{measure, receiver_with_webhooks};
use super::{emit, latency_text};
use crate::cli::{DeliverArgs, HistoryArgs};
use crate::load::{closed_loop, MakeRequest};
use crate::net::HttpClient;

/// Measures one database, filled or empty, and prints the run.
pub async fn history(args: HistoryArgs) -> anyhow::Result<()> {
    let HistoryArgs {
        common,
        target,
        scenario,
        events,
        publishers,
        timeout,
        seconds,
        connections,
        history_rows,
        database_bytes,
    } = args;
    let deliver = DeliverArgs {
        common: common.clone(),
        target: target.clone(),
        scenario: scenario.clone(),
        events,
        webhooks: 1,
        publishers,
        rate: None,
        timeout,
    };
    let (receiver, ids) = receiver_with_webhooks(&target, 1).await?;
    let mut value = measure(&deliver, &receiver).await;
    // The log of the webhook that just took `events` deliveries: the same
    // page on both databases, so only the tables' size differs.
    let path = format!("/webhooks/{}/{}/deliveries", target.group, ids[0]);
    let key = target.key.clone();
    let client = HttpClient::new(&target.base, connections);
    let watched = common.watched();
    let make: MakeRequest =
        Box::new(move |c, _| c.request(Method::GET, &path, &[("x-api-key", &key)], None));
    let (result, _) = closed_loop(
        &watched,
        &client,
        connections,
        Duration::from_secs(1),
        Duration::from_secs(seconds),
        make,
        200,
    )
    .await;
    let mut log = result.json();
    log["connections"] = json!(connections);
    value["deliveries_log"] = log;
    value["history_rows"] = json!(history_rows);
    value["database_bytes"] = json!(database_bytes);
    let summary = format!(
        "{} finished deliveries before: {:.0} deliveries/s, send-to-arrival {}; delivery log {:.0} req/s, {}, {} errors",
        history_rows,
        value["throughput"].as_f64().unwrap_or(0.0),
        latency_text(&value["delivery"]["send_to_arrival"]),
        value["deliveries_log"]["throughput"].as_f64().unwrap_or(0.0),
        latency_text(&value["deliveries_log"]["latency"]),
        value["deliveries_log"]["errors"],
    );
    emit(&common, &scenario, value, summary);
    Ok(())
}
