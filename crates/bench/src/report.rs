//! Results files, the generated part of `docs/benchmarks.md` and its SVG
//! charts (written by hand: no plotting dependency).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::{json, Value};

const START: &str =
    "<!-- bench:generated:start (scripts/bench.sh writes everything up to the end marker) -->";
const END: &str = "<!-- bench:generated:end -->";

fn run_text(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The machine and versions, as JSON.
pub fn machine(pg_url: Option<&str>) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned());
    let postgres = pg_url.and_then(|url| run_text("psql", &[url, "-tAc", "select version()"]));
    // Others may be editing the tree: the binaries were built from the
    // commit plus these uncommitted changes, as scripts/bench.sh noted at
    // build time (else: the work tree now).
    let build_info = std::env::var("BENCH_BUILD_INFO")
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let (commit, modified): (Option<String>, Vec<String>) = match build_info {
        Some(info) => {
            let mut lines = info.lines().map(str::to_owned);
            (lines.next(), lines.filter(|l| !l.is_empty()).collect())
        }
        None => (
            run_text("git", &["rev-parse", "HEAD"]),
            run_text("git", &["status", "--porcelain", "--untracked-files=no"])
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
                .collect(),
        ),
    };
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu_model,
        "free_h": run_text("free", &["-h"]),
        "kernel": run_text("uname", &["-srm"]),
        "os": os,
        "postgres": postgres,
        "rustc": run_text("rustc", &["--version"]),
        "git_commit": commit,
        "git_modified_tracked_files": modified,
        "date_utc": run_text("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "loadavg_at_start": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "perf": run_text("perf", &["--version"]),
    })
}

/// Bundles the machine and the runs into one results file.
pub fn collect(
    machine: &Path,
    runs: &Path,
    out: &Path,
    backend: &str,
    command: &str,
    wall_seconds: Option<f64>,
) -> anyhow::Result<()> {
    let machine: Value = serde_json::from_str(
        &std::fs::read_to_string(machine).with_context(|| format!("{}", machine.display()))?,
    )?;
    let runs: Vec<Value> = std::fs::read_to_string(runs)
        .with_context(|| format!("{}", runs.display()))?
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let results = json!({
        "backend": backend,
        "command": command,
        "wall_seconds": wall_seconds,
        "loadavg_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "machine": machine,
        "runs": runs,
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&results)? + "\n")?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(t) => value >= t,
            Goal::AtMost(t) => value <= t,
        }
    }

    fn text(self, unit: Unit) -> String {
        match self {
            Goal::AtLeast(t) => format!("≥ {}", unit.format(t)),
            Goal::AtMost(t) => format!("≤ {}", unit.format(t)),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    PerSecond,
    Ms,
    MiB,
    Count,
    Share,
    CpuMs,
}

impl Unit {
    fn format(self, v: f64) -> String {
        if v.is_nan() {
            return "–".into();
        }
        match self {
            Unit::PerSecond | Unit::Count => thousands(v.round()),
            Unit::Ms => {
                if v >= 100.0 {
                    format!("{v:.0}")
                } else if v >= 10.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.2}")
                }
            }
            Unit::MiB => format!("{v:.1}"),
            Unit::Share => format!("{:.1} %", v * 100.0),
            Unit::CpuMs => format!("{v:.3}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::PerSecond => "/s",
            Unit::Ms => "ms",
            Unit::MiB => "MiB",
            Unit::Count => "",
            Unit::Share => "",
            Unit::CpuMs => "CPU-ms/op",
        }
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

type Extract = Box<dyn Fn(&[&Value]) -> Option<f64>>;

/// One figure of the table: how to read it from the runs of one run number.
struct Figure {
    name: String,
    unit: Unit,
    goal: Option<Goal>,
    reference: Option<&'static str>,
    extract: Extract,
}

fn scenario<'a>(runs: &[&'a Value], name: &str) -> Option<&'a Value> {
    runs.iter().copied().find(|r| r["scenario"] == name)
}

fn at(name: &'static str, pointer: &'static str) -> Extract {
    Box::new(move |runs| scenario(runs, name)?.pointer(pointer)?.as_f64())
}

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

#[allow(clippy::too_many_lines)]
fn figures() -> Vec<Figure> {
    let mut figures = Vec::new();
    let mut add = |name: &str,
                   unit: Unit,
                   goal: Option<Goal>,
                   reference: Option<&'static str>,
                   extract: Extract| {
        figures.push(Figure {
            name: name.to_owned(),
            unit,
            goal,
            reference,
            extract,
        })
    };
    use Goal::{AtLeast, AtMost};
    use Unit::{Count, CpuMs, Ms, PerSecond, Share};
    add(
        "Receiver ceiling (our hello-world receiver, same load generator)",
        PerSecond,
        None,
        Some("≈ 60,000"),
        at("ceiling", "/throughput"),
    );
    add(
        "GET /webhooks/{groupID} (20 webhooks), requests/s",
        PerSecond,
        Some(AtLeast(10_000.0)),
        Some("1,550"),
        at("api_get", "/throughput"),
    );
    add(
        "GET /webhooks/{groupID}, share of ceiling",
        Share,
        Some(AtLeast(0.15)),
        Some("≈ 2.6 %"),
        share("api_get", "/throughput"),
    );
    add(
        "GET /webhooks/{groupID}, p50",
        Ms,
        None,
        None,
        at("api_get", "/latency/p50_ms"),
    );
    add(
        "GET /webhooks/{groupID}, p99",
        Ms,
        None,
        None,
        at("api_get", "/latency/p99_ms"),
    );
    add(
        "POST /webhooks/{groupID}, requests/s",
        PerSecond,
        Some(AtLeast(3_500.0)),
        Some("1,100"),
        at("api_post", "/throughput"),
    );
    add(
        "POST /webhooks/{groupID}, share of ceiling",
        Share,
        None,
        None,
        share("api_post", "/throughput"),
    );
    add(
        "POST /webhooks/{groupID}, p50",
        Ms,
        None,
        None,
        at("api_post", "/latency/p50_ms"),
    );
    add(
        "POST /webhooks/{groupID}, p99",
        Ms,
        None,
        None,
        at("api_post", "/latency/p99_ms"),
    );
    add(
        "PUT /webhooks/{groupID}/{id}, requests/s",
        PerSecond,
        None,
        None,
        at("api_put", "/throughput"),
    );
    add(
        "PUT /webhooks/{groupID}/{id}, share of ceiling",
        Share,
        None,
        None,
        share("api_put", "/throughput"),
    );
    add(
        "PUT /webhooks/{groupID}/{id}, p50",
        Ms,
        None,
        None,
        at("api_put", "/latency/p50_ms"),
    );
    add(
        "PUT /webhooks/{groupID}/{id}, p99",
        Ms,
        None,
        None,
        at("api_put", "/latency/p99_ms"),
    );
    add(
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
    add(
        "1 webhook, published flat out: deliveries/s (first to last arrival)",
        PerSecond,
        Some(AtLeast(2_500.0)),
        Some("500"),
        at("deliver_1", "/throughput"),
    );
    add(
        "1 webhook, flat out: share of ceiling",
        Share,
        None,
        None,
        share("deliver_1", "/throughput"),
    );
    add(
        "1 webhook, flat out: events/s accepted by the API",
        PerSecond,
        None,
        None,
        at("deliver_1", "/publish/events_per_s"),
    );
    add(
        "1 webhook, flat out: send-to-arrival p50",
        Ms,
        None,
        Some("87"),
        at("deliver_1", "/delivery/send_to_arrival/p50_ms"),
    );
    add(
        "1 webhook, flat out: send-to-arrival p99",
        Ms,
        None,
        Some("151"),
        at("deliver_1", "/delivery/send_to_arrival/p99_ms"),
    );
    add(
        "1 webhook, flat out: missing at the timeout",
        Count,
        Some(AtMost(0.0)),
        None,
        at("deliver_1", "/delivery/missing"),
    );
    add(
        "1 webhook, flat out: duplicates",
        Count,
        None,
        None,
        at("deliver_1", "/delivery/duplicates"),
    );
    add(
        "1 webhook, 1,000 events/s offered: deliveries/s",
        PerSecond,
        None,
        None,
        at("rate_1000", "/throughput"),
    );
    add(
        "1 webhook, 1,000 events/s offered: send-to-arrival p50",
        Ms,
        None,
        None,
        at("rate_1000", "/delivery/send_to_arrival/p50_ms"),
    );
    add(
        "1 webhook, 1,000 events/s offered: send-to-arrival p99",
        Ms,
        Some(AtMost(50.0)),
        None,
        at("rate_1000", "/delivery/send_to_arrival/p99_ms"),
    );
    add(
        "1 webhook, 1,000 events/s offered: missing",
        Count,
        Some(AtMost(0.0)),
        None,
        at("rate_1000", "/delivery/missing"),
    );
    add(
        "10-way fan-out: deliveries/s",
        PerSecond,
        Some(AtLeast(6_000.0)),
        Some("1,800"),
        at("fanout_10", "/throughput"),
    );
    add(
        "10-way fan-out: share of ceiling",
        Share,
        None,
        None,
        share("fanout_10", "/throughput"),
    );
    add(
        "10-way fan-out: send-to-arrival p50",
        Ms,
        None,
        None,
        at("fanout_10", "/delivery/send_to_arrival/p50_ms"),
    );
    add(
        "10-way fan-out: send-to-arrival p99",
        Ms,
        None,
        None,
        at("fanout_10", "/delivery/send_to_arrival/p99_ms"),
    );
    add(
        "10-way fan-out: missing at the timeout",
        Count,
        Some(AtMost(0.0)),
        None,
        at("fanout_10", "/delivery/missing"),
    );
    add(
        "Backlog drain by a worker-only process: deliveries/s",
        PerSecond,
        Some(AtLeast(5_000.0)),
        Some("1,300"),
        at("drain", "/throughput"),
    );
    add(
        "Backlog drain: share of ceiling",
        Share,
        None,
        None,
        share("drain", "/throughput"),
    );
    add(
        "Backlog drain: missing at the timeout",
        Count,
        Some(AtMost(0.0)),
        None,
        at("drain", "/delivery/missing"),
    );
    add(
        "Idle system, single event: send-to-arrival p50",
        Ms,
        Some(AtMost(2.0)),
        Some("3.8"),
        at("idle", "/delivery/send_to_arrival/p50_ms"),
    );
    add(
        "Idle system, single event: send-to-arrival p99",
        Ms,
        None,
        None,
        at("idle", "/delivery/send_to_arrival/p99_ms"),
    );
    add(
        "Idle system, single event: publish call answered, p50",
        Ms,
        None,
        None,
        at("idle", "/publish/latency/p50_ms"),
    );
    add(
        "Beside 5 hanging webhooks: single event send-to-arrival p99",
        Ms,
        Some(AtMost(1_000.0)),
        None,
        at("idle_hang_5", "/delivery/send_to_arrival/p99_ms"),
    );
    add(
        "Beside 20 hanging webhooks: single event send-to-arrival p99",
        Ms,
        Some(AtMost(1_000.0)),
        None,
        at("idle_hang_20", "/delivery/send_to_arrival/p99_ms"),
    );
    add(
        "Beside 100 hanging webhooks: single event send-to-arrival p99",
        Ms,
        Some(AtMost(1_000.0)),
        None,
        at("idle_hang_100", "/delivery/send_to_arrival/p99_ms"),
    );
    add(
        "RSS idle (2 s after start, before the API run), MiB",
        Unit::MiB,
        Some(AtMost(25.0)),
        Some("40"),
        Box::new(|runs| {
            mib(scenario(runs, "api_get")?
                .pointer("/memory_idle/0/rss_kib")?
                .as_f64())
        }),
    );
    add(
        "RSS peak (VmHWM, largest service process of any scenario), MiB",
        Unit::MiB,
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
    for (name, label) in [
        ("api_get", "GET /webhooks"),
        ("deliver_1", "1 webhook, flat out"),
        ("fanout_10", "10-way fan-out"),
        ("drain", "drain"),
    ] {
        add(
            &format!("Machine busy during {label} (all processes, 2 cores = 100 %)"),
            Share,
            None,
            None,
            at(name, "/cpu/machine_busy_share"),
        );
        add(
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
        add(
            &format!("CPU-ms per op, service: {label}"),
            CpuMs,
            None,
            None,
            at(name, "/cpu/service_ms_per_op"),
        );
        add(
            &format!("CPU-ms per op, PostgreSQL: {label}"),
            CpuMs,
            None,
            None,
            at(name, "/cpu/postgres_ms_per_op"),
        );
    }
    figures
}

fn runs_by_number(results: &Value) -> Vec<Vec<&Value>> {
    let runs: Vec<&Value> = results["runs"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let numbers: BTreeSet<u64> = runs.iter().filter_map(|r| r["run"].as_u64()).collect();
    numbers
        .iter()
        .map(|n| {
            runs.iter()
                .copied()
                .filter(|r| r["run"].as_u64() == Some(*n))
                .collect()
        })
        .collect()
}

/// min, median, max.
fn stats(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some((values[0], median, values[n - 1]))
}

fn figure_stats(figure: &Figure, results: &Value) -> Option<(f64, f64, f64, usize)> {
    let values: Vec<f64> = runs_by_number(results)
        .iter()
        .filter_map(|runs| (figure.extract)(runs))
        .collect();
    let n = values.len();
    stats(values).map(|(a, b, c)| (a, b, c, n))
}

fn machine_section(out: &mut String, results: &Value) {
    let m = &results["machine"];
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let _ = writeln!(
        out,
        "- CPU: {} × {} (`nproc` = {})",
        s(&m["cpu_model"]),
        m["nproc"],
        m["nproc"]
    );
    let memory = m["free_h"]
        .as_str()
        .and_then(|f| f.lines().find(|l| l.starts_with("Mem:")))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let _ = writeln!(out, "- Memory (`free -h`): `{memory}`");
    let _ = writeln!(out, "- OS: {}; kernel `{}`", s(&m["os"]), s(&m["kernel"]));
    if m["postgres"].is_string() {
        let _ = writeln!(out, "- PostgreSQL: {}", s(&m["postgres"]));
    }
    let _ = writeln!(out, "- Rust: `{}`", s(&m["rustc"]));
    let modified: Vec<String> = m["git_modified_tracked_files"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(|f| format!("`{f}`")))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "- Commit: `{}`{}",
        s(&m["git_commit"]),
        if modified.is_empty() {
            String::new()
        } else {
            format!(
                ", built with uncommitted changes (work in progress of others) in {}",
                modified.join(", ")
            )
        }
    );
    let _ = writeln!(out, "- Date: {}", s(&m["date_utc"]));
    let _ = writeln!(
        out,
        "- Load average at start: `{}`; at end: `{}`",
        s(&m["loadavg_at_start"]),
        s(&results["loadavg_at_end"])
    );
    if let Some(wall) = results["wall_seconds"].as_f64() {
        let _ = writeln!(
            out,
            "- The whole run took {:.0} s ({:.1} min)",
            wall,
            wall / 60.0
        );
    }
    let _ = writeln!(out, "- Command: `{}`", s(&results["command"]));
}

fn table(out: &mut String, results: &Value, compare: Option<&Value>) {
    let _ = write!(
        out,
        "| figure | min | median | max | n | target | met? | Svix (reference) |"
    );
    if compare.is_some() {
        let _ = write!(
            out,
            " PostgreSQL median | SQLite ÷ PostgreSQL (within 2×?) |"
        );
    }
    out.push('\n');
    let _ = write!(
        out,
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |"
    );
    if compare.is_some() {
        let _ = write!(out, " ---: | --- |");
    }
    out.push('\n');
    let sqlite = results["backend"] == "sqlite";
    for figure in figures() {
        if sqlite && figure.name.starts_with("CPU-ms per op, PostgreSQL") {
            continue;
        }
        // How busy the machine was is context, not a figure to compare.
        let context = figure.name.starts_with("Machine busy") || figure.name.starts_with('…');
        let unit = figure.unit;
        let suffix = match unit {
            Unit::PerSecond | Unit::Count | Unit::Share => "",
            _ => unit.name(),
        };
        let Some((min, median, max, n)) = figure_stats(&figure, results) else {
            let _ = writeln!(
                out,
                "| {} | – | – | – | 0 | {} | not measured | {} |{}",
                figure.name,
                figure.goal.map(|g| g.text(unit)).unwrap_or_default(),
                figure.reference.unwrap_or(""),
                if compare.is_some() { " | |" } else { "" }
            );
            continue;
        };
        let (goal, met) = match figure.goal {
            Some(goal) => (
                goal.text(unit),
                if goal.met(median) {
                    "met".to_owned()
                } else {
                    match goal {
                        Goal::AtLeast(t) if t > 0.0 => {
                            format!("**missed** ({:.0} % of target)", median / t * 100.0)
                        }
                        Goal::AtMost(t) if t > 0.0 => {
                            format!("**missed** ({:.1}× target)", median / t)
                        }
                        _ => "**missed**".to_owned(),
                    }
                },
            ),
            None => (String::new(), String::new()),
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            figure.name,
            unit.format(min),
            format!("{} {}", unit.format(median), suffix).trim_end(),
            unit.format(max),
            n,
            goal,
            met,
            figure.reference.unwrap_or("")
        );
        if let Some(pg) = compare.filter(|_| !context) {
            match figure_stats(&figure, pg) {
                Some((_, pg_median, _, _)) => {
                    let within = match unit {
                        Unit::PerSecond | Unit::Share => Some(median * 2.0 >= pg_median),
                        Unit::Ms | Unit::MiB | Unit::CpuMs => Some(median <= pg_median * 2.0),
                        Unit::Count => None,
                    };
                    let ratio = median / pg_median;
                    let verdict = match within {
                        Some(true) => format!("{ratio:.2}× (yes)"),
                        Some(false) => format!("{ratio:.2}× (**no**)"),
                        None => String::new(),
                    };
                    let _ = write!(out, " {} | {} |", unit.format(pg_median), verdict);
                }
                None => {
                    let _ = write!(out, " – | |");
                }
            }
        }
        if context && compare.is_some() {
            out.push_str(" | |");
        }
        out.push('\n');
    }
}

// ---- SVG ----

struct Bar {
    lo: f64,
    mid: f64,
    hi: f64,
}

struct Group {
    label: String,
    bars: Vec<Option<Bar>>,
    target: Option<f64>,
}

const COLOURS: [&str; 6] = [
    "#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_step(range: f64) -> f64 {
    let raw = range / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if raw <= m * magnitude {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

#[allow(clippy::too_many_lines)]
fn chart(
    title: &str,
    axis: &str,
    series: &[String],
    groups: &[Group],
    log: bool,
    note: &str,
) -> String {
    let (width, height) = (900.0, 440.0);
    let (left, right, top, bottom) = (80.0, 20.0, 56.0, 96.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let values: Vec<f64> = groups
        .iter()
        .flat_map(|g| {
            g.bars
                .iter()
                .flatten()
                .flat_map(|b| [b.lo, b.mid, b.hi])
                .chain(g.target)
        })
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let min_positive = values.iter().copied().fold(f64::INFINITY, f64::min);
    let (lo_scale, hi_scale) = if log {
        let lo = min_positive.log10().floor().min(0.0);
        (lo, max.log10().ceil().max(lo + 1.0))
    } else {
        let step = nice_step(max * 1.1);
        (0.0, (max * 1.1 / step).ceil() * step)
    };
    let y = |v: f64| -> f64 {
        let t = if log {
            (v.max(10f64.powf(lo_scale)).log10() - lo_scale) / (hi_scale - lo_scale)
        } else {
            v / hi_scale
        };
        top + plot_h * (1.0 - t.clamp(0.0, 1.0))
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="42" font-size="11" fill="#555" text-anchor="middle">{}</text>"##,
        width / 2.0,
        escape(note)
    );
    // Grid and axis labels.
    let ticks: Vec<f64> = if log {
        let (a, b) = (lo_scale as i32, hi_scale as i32);
        (a..=b).map(|e| 10f64.powi(e)).collect()
    } else {
        let step = nice_step(hi_scale);
        (0..=((hi_scale / step).round() as i32))
            .map(|i| f64::from(i) * step)
            .collect()
    };
    for tick in ticks {
        let ty = y(tick);
        let label = if tick == 0.0 {
            "0".to_owned()
        } else if tick >= 1000.0 {
            thousands(tick)
        } else if tick >= 1.0 {
            format!("{tick}")
        } else {
            format!("{tick:.3}").trim_end_matches('0').to_owned()
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" stroke="#ddd"/>"##,
            width - right
        );
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#333">{label}</text>"##,
            left - 6.0,
            ty + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="#333">{}</text>"##,
        top + plot_h / 2.0,
        escape(axis)
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" x2="{left}" y1="{top}" y2="{}" stroke="#333"/>"##,
        top + plot_h
    );
    let group_w = plot_w / groups.len().max(1) as f64;
    let per = series.len().max(1) as f64;
    let bar_w = (group_w * 0.72 / per).min(60.0);
    for (gi, group) in groups.iter().enumerate() {
        let gx = left + group_w * gi as f64;
        let start = gx + (group_w - bar_w * per) / 2.0;
        for (si, bar) in group.bars.iter().enumerate() {
            let x = start + bar_w * si as f64;
            let Some(bar) = bar else { continue };
            let colour = COLOURS[si % COLOURS.len()];
            let (yt, yb) = (y(bar.mid), y(if log { 10f64.powf(lo_scale) } else { 0.0 }));
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{yt:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: median {:.3}, min {:.3}, max {:.3}</title></rect>"#,
                x + 1.0,
                bar_w - 2.0,
                (yb - yt).max(0.0),
                escape(&series[si]),
                bar.mid,
                bar.lo,
                bar.hi
            );
            let cx = x + bar_w / 2.0;
            let _ = writeln!(
                svg,
                r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#222"/>"##,
                y(bar.lo),
                y(bar.hi)
            );
            for v in [bar.lo, bar.hi] {
                let _ = writeln!(
                    svg,
                    r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#222"/>"##,
                    cx - 4.0,
                    cx + 4.0,
                    y(v),
                    y(v)
                );
            }
            let label = if bar.mid >= 100.0 {
                thousands(bar.mid)
            } else {
                format!("{:.2}", bar.mid)
            };
            let _ = writeln!(
                svg,
                r#"<text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{label}</text>"#,
                y(bar.hi) - 4.0
            );
        }
        if let Some(target) = group.target {
            let ty = y(target);
            let _ = writeln!(
                svg,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#d62728" stroke-width="2" stroke-dasharray="6 3"/>"##,
                gx + 6.0,
                gx + group_w - 6.0
            );
            let label = if target >= 100.0 {
                thousands(target)
            } else {
                format!("{target}")
            };
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#d62728">target {label}</text>"##,
                gx + 8.0,
                ty - 4.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + group_w / 2.0,
            top + plot_h + 18.0,
            escape(&group.label)
        );
    }
    // Legend.
    let mut lx = left;
    let ly = height - 28.0;
    for (si, name) in series.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/>"#,
            ly - 10.0,
            COLOURS[si % COLOURS.len()]
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{ly:.1}">{}</text>"#,
            lx + 16.0,
            escape(name)
        );
        lx += 24.0 + 7.0 * name.len() as f64;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{ly:.1}" fill="#d62728">- - target (issue 5)</text>"##,
        lx + 8.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="{:.1}" font-size="10" fill="#555">Bars: median of the runs; whiskers: min and max.</text>"##,
        height - 8.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn bar(results: &Value, extract: &Extract) -> Option<Bar> {
    let values: Vec<f64> = runs_by_number(results)
        .iter()
        .filter_map(|runs| extract(runs))
        .collect();
    stats(values).map(|(lo, mid, hi)| Bar { lo, mid, hi })
}

fn backend_name(backend: &str) -> &'static str {
    if backend == "sqlite" {
        "SQLite"
    } else {
        "PostgreSQL"
    }
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

fn charts(dir: &Path, all: &[(&str, Value)]) -> anyhow::Result<()> {
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

const SKELETON: &str = "# Benchmarks\n\n";

/// Rewrites the generated part of `docs/benchmarks.md` and the charts.
pub fn write(docs: &Path) -> anyhow::Result<()> {
    let dir = docs.join("benchmarks");
    let mut all: Vec<(&str, Value)> = Vec::new();
    for (backend, file) in [
        ("postgres", "results.json"),
        ("sqlite", "results-sqlite.json"),
    ] {
        let path = dir.join(file);
        if path.exists() {
            let value: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("{}", path.display()))?;
            all.push((backend, value));
        }
    }
    if all.is_empty() {
        anyhow::bail!("no results in {}", dir.display());
    }
    let mut out = String::new();
    out.push_str(START);
    out.push_str("\n\n");
    let pg = all
        .iter()
        .find(|(b, _)| *b == "postgres")
        .map(|(_, v)| v.clone());
    for (backend, results) in &all {
        let _ = writeln!(
            out,
            "### {} (`docs/benchmarks/{}`)\n",
            backend_name(backend),
            if *backend == "sqlite" {
                "results-sqlite.json"
            } else {
                "results.json"
            }
        );
        machine_section(&mut out, results);
        out.push('\n');
        let compare = if *backend == "sqlite" {
            pg.as_ref()
        } else {
            None
        };
        table(&mut out, results, compare);
        out.push('\n');
    }
    out.push_str("### Charts\n\n");
    out.push_str("![Deliveries per second](benchmarks/deliveries.svg)\n\n");
    out.push_str("![Send-to-arrival latency](benchmarks/latency.svg)\n\n");
    out.push_str("![API requests per second](benchmarks/api.svg)\n\n");
    out.push_str(END);
    charts(&dir, &all)?;
    let path = docs.join("benchmarks.md");
    let existing =
        std::fs::read_to_string(&path).unwrap_or_else(|_| format!("{SKELETON}{START}\n{END}\n"));
    let updated = match (existing.find(START), existing.find(END)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &existing[..a], out, &existing[b + END.len()..])
        }
        _ => format!("{existing}\n{out}\n"),
    };
    std::fs::write(&path, updated)?;
    eprintln!(
        "wrote {} and the charts in {}",
        path.display(),
        dir.display()
    );
    Ok(())
}
