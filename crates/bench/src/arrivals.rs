//! What arrived at the receiver, against what the service accepted: counts,
//! duplicates, strays, rates and send-to-arrival latency.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::load::Latencies;
use crate::net::Arrival;

/// What arrived, against what was published.
pub fn analyse(
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
