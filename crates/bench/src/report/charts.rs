//! The three charts of `docs/benchmarks.md`: deliveries per second,
//! send-to-arrival latency and API requests per second, each backend a series.

use std::path::Path;

use serde_json::Value;

use super::backend_name;
use super::figures::{at, Extract};
use super::stats::spread;
use super::svg::{chart, Bar, Group};
use super::units::thousands;

/// One bar: the figure's min, median and max over the runs.
fn bar(results: &Value, extract: &Extract) -> Option<Bar> {
    spread(results, extract).map(|(lo, mid, hi, _)| Bar { lo, mid, hi })
}

/// One group of bars per (label, scenario, target): the scenario's
/// throughput in each backend's results.
fn throughput_groups(
    all: &[(&str, Value)],
    scenarios: &[(&str, &'static str, Option<f64>)],
) -> Vec<Group> {
    scenarios
        .iter()
        .map(|&(label, name, target)| Group {
            label: label.to_owned(),
            bars: all
                .iter()
                .map(|(_, r)| bar(r, &at(name, "/throughput")))
                .collect(),
            target,
        })
        .collect()
}

/// Writes `deliveries.svg`, `latency.svg` and `api.svg` into `dir`.
pub fn charts(dir: &Path, all: &[(&str, Value)]) -> anyhow::Result<()> {
    let names: Vec<String> = all
        .iter()
        .map(|(b, _)| backend_name(b).to_owned())
        .collect();
    // Deliveries per second.
    let groups = throughput_groups(
        all,
        &[
            ("1 webhook, flat out", "deliver_1", Some(2_500.0)),
            ("1 webhook, 1,000/s offered", "rate_1000", None),
            ("10-way fan-out", "fanout_10", Some(6_000.0)),
            ("backlog drain (worker only)", "drain", Some(5_000.0)),
        ],
    );
    std::fs::write(
        dir.join("deliveries.svg"),
        chart(
            "Deliveries per second (first to last arrival)",
            "deliveries/s",
            &names,
            &groups,
            false,
            "okaya-webhooks, one process, 2 cores shared with the load generator and the receiver",
        ),
    )?;
    // Latency.
    let mut series = Vec::new();
    for name in &names {
        series.push(format!("{name} p50"));
        series.push(format!("{name} p99"));
    }
    let groups: Vec<Group> = [
        ("idle, single event", "idle", Some(2.0)),
        ("1,000 events/s offered", "rate_1000", Some(50.0)),
        ("1 webhook, flat out", "deliver_1", None),
        ("10-way fan-out", "fanout_10", None),
    ]
    .into_iter()
    .map(|(label, name, target)| Group {
        label: label.to_owned(),
        bars: all
            .iter()
            .flat_map(|(_, r)| {
                [
                    bar(r, &at(name, "/delivery/send_to_arrival/p50_ms")),
                    bar(r, &at(name, "/delivery/send_to_arrival/p99_ms")),
                ]
            })
            .collect(),
        target,
    })
    .collect();
    std::fs::write(
        dir.join("latency.svg"),
        chart(
            "Send-to-arrival latency (log scale)",
            "milliseconds",
            &series,
            &groups,
            true,
            "target of the idle group applies to p50, of the 1,000/s group to p99",
        ),
    )?;
    // API.
    let groups = throughput_groups(
        all,
        &[
            ("GET /webhooks/{groupID}", "api_get", Some(10_000.0)),
            ("POST /webhooks/{groupID}", "api_post", Some(3_500.0)),
            ("PUT /webhooks/{groupID}/{id}", "api_put", None),
        ],
    );
    let ceiling = all
        .iter()
        .filter_map(|(b, r)| {
            bar(r, &at("ceiling", "/throughput"))
                .map(|c| format!("{}: {}", backend_name(b), thousands(c.mid)))
        })
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        dir.join("api.svg"),
        chart(
            "API requests per second (32 connections, closed loop)",
            "requests/s",
            &names,
            &groups,
            false,
            &format!("receiver ceiling in the same runs (median req/s): {ceiling}"),
        ),
    )?;
    Ok(())
}
