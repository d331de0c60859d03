//! The figures of the tables: what each reads from a run, its unit, its
//! target and the reference it is compared with.

use serde_json::Value;

use super::units::Goal::{self, AtLeast, AtMost};
use super::units::Unit::{self, Count, CpuMs, MiB, Ms, PerSecond, Share};

/// Reads a figure from the runs of one run number.
pub type Extract = Box<dyn Fn(&[&Value]) -> Option<f64>>;

/// One figure of the table: how to read it from the runs of one run number.
pub struct Figure {
    pub name: String,
    pub unit: Unit,
    pub goal: Option<Goal>,
    /// Svix's figure for the same measurement, for comparison.
    pub reference: Option<&'static str>,
    pub extract: Extract,
}

/// The figures in table order.
struct Figures(Vec<Figure>);

impl Figures {
    fn add(
        &mut self,
        name: &str,
        unit: Unit,
        goal: Option<Goal>,
        reference: Option<&'static str>,
        extract: Extract,
    ) {
        self.0.push(Figure {
            name: name.to_owned(),
            unit,
            goal,
            reference,
            extract,
        });
    }
}

/// The run of a scenario among one run number's runs.
fn scenario<'a>(runs: &[&'a Value], name: &str) -> Option<&'a Value> {
    runs.iter().copied().find(|r| r["scenario"] == name)
}

/// The number at `pointer` in the scenario's run.
pub fn at(name: &'static str, pointer: &'static str) -> Extract {
    Box::new(move |runs| scenario(runs, name)?.pointer(pointer)?.as_f64())
}

/// The number at `pointer` as a share of the receiver's ceiling in the same runs.
fn share(name: &'static str, pointer: &'static str) -> Extract {
    Box::new(move |runs| {
        let value = scenario(runs, name)?.pointer(pointer)?.as_f64()?;
        let ceiling = scenario(runs, "ceiling")?
            .pointer("/throughput")?
            .as_f64()?;
        (ceiling > 0.0).then(|| value / ceiling)
    })
}

fn mib(kib: Option<f64>) -> Option<f64> {
    kib.map(|k| k / 1024.0)
}

/// Every figure of a backend's table, in order.
pub fn figures() -> Vec<Figure> {
    let mut figures = Figures(Vec::new());
    api(&mut figures);
    delivery(&mut figures);
    idle(&mut figures);
    memory(&mut figures);
    cpu(&mut figures);
    figures.0
}

/// The receiver's ceiling and the webhook API.
fn api(figures: &mut Figures) {
    figures.add(
        "Receiver ceiling (our hello-world receiver, same load generator)",
        PerSecond,
        None,
        Some("≈ 60,000"),
        at("ceiling", "/throughput"),
    );
    figures.add(
        "GET /webhooks/{groupID} (20 webhooks), requests/s",
        PerSecond,
        None,
        Some("1,550"),
        at("api_get", "/throughput"),
    );
    figures.add(
        "GET /webhooks/{groupID}, share of ceiling",
        Share,
        Some(AtLeast(0.15)),
        Some("≈ 2.6 %"),
        share("api_get", "/throughput"),
    );
    figures.add(
        "GET /webhooks/{groupID}, p50",
        Ms,
        None,
        None,
        at("api_get", "/latency/p50_ms"),
    );
    figures.add(
        "GET /webhooks/{groupID}, p99",
        Ms,
        None,
        None,
        at("api_get", "/latency/p99_ms"),
    );
    figures.add(
        "POST /webhooks/{groupID}, requests/s",
        PerSecond,
        None,
        Some("1,100"),
        at("api_post", "/throughput"),
    );
    figures.add(
        "POST /webhooks/{groupID}, share of ceiling",
        Share,
        Some(AtLeast(0.10)),
        None,
        share("api_post", "/throughput"),
    );
    figures.add(
        "POST /webhooks/{groupID}, p50",
        Ms,
        None,
        None,
        at("api_post", "/latency/p50_ms"),
    );
    figures.add(
        "POST /webhooks/{groupID}, p99",
        Ms,
        None,
        None,
        at("api_post", "/latency/p99_ms"),
    );
    figures.add(
        "PUT /webhooks/{groupID}/{id}, requests/s",
        PerSecond,
        None,
        None,
        at("api_put", "/throughput"),
    );
    figures.add(
        "PUT /webhooks/{groupID}/{id}, share of ceiling",
        Share,
        None,
        None,
        share("api_put", "/throughput"),
    );
    figures.add(
        "PUT /webhooks/{groupID}/{id}, p50",
        Ms,
        None,
        None,
        at("api_put", "/latency/p50_ms"),
    );
    figures.add(
        "PUT /webhooks/{groupID}/{id}, p99",
        Ms,
        None,
        None,
        at("api_put", "/latency/p99_ms"),
    );
    figures.add(
        "API errors (GET + POST + PUT, non-2xx or transport)",
        Count,
        Some(AtMost(0.0)),
        None,
        Box::new(|runs| {
            let mut sum = 0.0;
            for name in ["api_get", "api_post", "api_put"] {
                sum += scenario(runs, name)?.pointer("/errors")?.as_f64()?;
            }
            Some(sum)
        }),
    );
}

/// Deliveries: flat out, at a rate, fanned out, and a backlog drained.
fn delivery(figures: &mut Figures) {
    figures.add(
        "1 webhook, published flat out: deliveries/s (first to last arrival)",
        PerSecond,
        None,
        Some("500"),
        at("deliver_1", "/throughput"),
    );
    figures.add(
        "1 webhook, flat out: share of ceiling",
        Share,
        Some(AtLeast(0.08)),
        None,
        share("deliver_1", "/throughput"),
    );
    figures.add(
        "1 webhook, flat out: events/s accepted by the API",
        PerSecond,
        None,
        None,
        at("deliver_1", "/publish/events_per_s"),
    );
    figures.add(
        "1 webhook, flat out: send-to-arrival p50",
        Ms,
        None,
        Some("87"),
        at("deliver_1", "/delivery/send_to_arrival/p50_ms"),
    );
    figures.add(
        "1 webhook, flat out: send-to-arrival p99",
        Ms,
        None,
        Some("151"),
        at("deliver_1", "/delivery/send_to_arrival/p99_ms"),
    );
    figures.add(
        "1 webhook, flat out: missing at the timeout",
        Count,
        Some(AtMost(0.0)),
        None,
        at("deliver_1", "/delivery/missing"),
    );
    figures.add(
        "1 webhook, flat out: duplicates",
        Count,
        None,
        None,
        at("deliver_1", "/delivery/duplicates"),
    );
    figures.add(
        "1 webhook, 1,000 events/s offered: deliveries/s",
        PerSecond,
        None,
        None,
        at("rate_1000", "/throughput"),
    );
    figures.add(
        "1 webhook, 1,000 events/s offered: send-to-arrival p50",
        Ms,
        None,
        None,
        at("rate_1000", "/delivery/send_to_arrival/p50_ms"),
    );
    figures.add(
        "1 webhook, 1,000 events/s offered: send-to-arrival p99",
        Ms,
        Some(AtMost(50.0)),
        None,
        at("rate_1000", "/delivery/send_to_arrival/p99_ms"),
    );
    figures.add(
        "1 webhook, 1,000 events/s offered: missing",
        Count,
        Some(AtMost(0.0)),
        None,
        at("rate_1000", "/delivery/missing"),
    );
    figures.add(
        "10-way fan-out: deliveries/s",
        PerSecond,
        None,
        Some("1,800"),
        at("fanout_10", "/throughput"),
    );
    figures.add(
        "10-way fan-out: share of ceiling",
        Share,
        Some(AtLeast(0.10)),
        None,
        share("fanout_10", "/throughput"),
    );
    figures.add(
        "10-way fan-out: send-to-arrival p50",
        Ms,
        None,
        None,
        at("fanout_10", "/delivery/send_to_arrival/p50_ms"),
    );
    figures.add(
        "10-way fan-out: send-to-arrival p99",
        Ms,
        None,
        None,
        at("fanout_10", "/delivery/send_to_arrival/p99_ms"),
    );
    figures.add(
        "10-way fan-out: missing at the timeout",
        Count,
        Some(AtMost(0.0)),
        None,
        at("fanout_10", "/delivery/missing"),
    );
    figures.add(
        "Backlog drain by a worker-only process: deliveries/s",
        PerSecond,
        None,
        Some("1,300"),
        at("drain", "/throughput"),
    );
    figures.add(
        "Backlog drain: share of ceiling",
        Share,
        Some(AtLeast(0.08)),
        None,
        share("drain", "/throughput"),
    );
    figures.add(
        "Backlog drain: missing at the timeout",
        Count,
        Some(AtMost(0.0)),
        None,
        at("drain", "/delivery/missing"),
    );
}

/// One event at a time, alone and beside endpoints that hang.
fn idle(figures: &mut Figures) {
    figures.add(
        "Idle system, single event: send-to-arrival p50",
        Ms,
        Some(AtMost(2.0)),
        Some("3.8"),
        at("idle", "/delivery/send_to_arrival/p50_ms"),
    );
    figures.add(
        "Idle system, single event: send-to-arrival p99",
        Ms,
        Some(AtMost(5.0)),
        None,
        at("idle", "/delivery/send_to_arrival/p99_ms"),
    );
    figures.add(
        "Idle system, single event: publish call answered, p50",
        Ms,
        None,
        None,
        at("idle", "/publish/latency/p50_ms"),
    );
    figures.add(
        "Beside 5 hanging webhooks: single event send-to-arrival p99",
        Ms,
        Some(AtMost(1_000.0)),
        None,
        at("idle_hang_5", "/delivery/send_to_arrival/p99_ms"),
    );
    figures.add(
        "Beside 20 hanging webhooks: single event send-to-arrival p99",
        Ms,
        Some(AtMost(1_000.0)),
        None,
        at("idle_hang_20", "/delivery/send_to_arrival/p99_ms"),
    );
    figures.add(
        "Beside 100 hanging webhooks: single event send-to-arrival p99",
        Ms,
        Some(AtMost(1_000.0)),
        None,
        at("idle_hang_100", "/delivery/send_to_arrival/p99_ms"),
    );
}

/// The service's memory.
fn memory(figures: &mut Figures) {
    figures.add(
        "RSS idle (2 s after start, before the API run), MiB",
        MiB,
        Some(AtMost(25.0)),
        Some("40"),
        Box::new(|runs| {
            mib(scenario(runs, "api_get")?
                .pointer("/memory_idle/0/rss_kib")?
                .as_f64())
        }),
    );
    figures.add(
        "RSS peak (VmHWM, largest service process of any scenario), MiB",
        MiB,
        Some(AtMost(100.0)),
        None,
        Box::new(|runs| {
            let peak = runs
                .iter()
                .filter_map(|r| r["memory_end"].as_array())
                .flatten()
                .filter_map(|m| m["hwm_kib"].as_f64())
                .fold(f64::NAN, f64::max);
            mib((!peak.is_nan()).then_some(peak))
        }),
    );
}

/// How busy the machine was, and CPU time per operation.
fn cpu(figures: &mut Figures) {
    for (name, label) in [
        ("api_get", "GET /webhooks"),
        ("deliver_1", "1 webhook, flat out"),
        ("fanout_10", "10-way fan-out"),
        ("drain", "drain"),
    ] {
        figures.add(
            &format!("Machine busy during {label} (all processes, 2 cores = 100 %)"),
            Share,
            None,
            None,
            at(name, "/cpu/machine_busy_share"),
        );
        figures.add(
            &format!("…of which other processes (not service, PostgreSQL of the bench database, load generator): {label}"),
            Share,
            None,
            None,
            at(name, "/cpu/others_share"),
        );
    }
    for (name, label) in [
        ("api_get", "GET"),
        ("api_post", "POST"),
        ("api_put", "PUT"),
        ("deliver_1", "1 webhook flat out, per delivery"),
        ("fanout_10", "10-way fan-out, per delivery"),
        ("drain", "drain, per delivery"),
    ] {
        figures.add(
            &format!("CPU-ms per op, service: {label}"),
            CpuMs,
            None,
            None,
            at(name, "/cpu/service_ms_per_op"),
        );
        figures.add(
            &format!("CPU-ms per op, PostgreSQL: {label}"),
            CpuMs,
            None,
            None,
            at(name, "/cpu/postgres_ms_per_op"),
        );
    }
}
