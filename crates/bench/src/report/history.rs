//! The history-size section of the report: `docs/benchmarks/history*.json`
//! (`scripts/bench.sh --history`), an empty database beside a filled one.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::backend_name;
use super::figures::{at, Extract, Figure};
use super::table::{machine_section, row};
use super::units::Goal::{AtLeast, AtMost};
use super::units::{thousands, Unit};

const EMPTY: &str = "history_empty";
const FILLED: &str = "history_filled";

/// The filled run's figure at `pointer` divided by the empty run's, in the
/// same run number.
fn ratio(pointer: &'static str) -> Extract {
    Box::new(move |runs| {
        let of = |name: &str| {
            runs.iter()
                .find(|r| r["scenario"] == name)?
                .pointer(pointer)?
                .as_f64()
        };
        let (empty, filled) = (of(EMPTY)?, of(FILLED)?);
        (empty > 0.0).then(|| filled / empty)
    })
}

fn figure(name: String, unit: Unit, goal: Option<super::units::Goal>, extract: Extract) -> Figure {
    Figure {
        name,
        unit,
        goal,
        reference: None,
        extract,
    }
}

/// The rows, `filled` naming the filled database ("5,000,000 finished
/// deliveries").
fn figures(filled: &str) -> Vec<Figure> {
    let log_p50 = "/deliveries_log/latency/p50_ms";
    let log_p99 = "/deliveries_log/latency/p99_ms";
    vec![
        figure(
            "Empty database: deliveries/s (1 webhook)".into(),
            Unit::PerSecond,
            None,
            at(EMPTY, "/throughput"),
        ),
        figure(
            format!("With {filled}: deliveries/s (1 webhook)"),
            Unit::PerSecond,
            None,
            at(FILLED, "/throughput"),
        ),
        figure(
            "Deliveries/s, filled ÷ empty".into(),
            Unit::Share,
            Some(AtLeast(0.9)),
            ratio("/throughput"),
        ),
        figure(
            "Empty database: delivery log GET p50".into(),
            Unit::Ms,
            None,
            at(EMPTY, log_p50),
        ),
        figure(
            "Empty database: delivery log GET p99".into(),
            Unit::Ms,
            None,
            at(EMPTY, log_p99),
        ),
        figure(
            format!("With {filled}: delivery log GET p50"),
            Unit::Ms,
            None,
            at(FILLED, log_p50),
        ),
        figure(
            format!("With {filled}: delivery log GET p99"),
            Unit::Ms,
            None,
            at(FILLED, log_p99),
        ),
        figure(
            "Delivery log GET p99, filled ÷ empty".into(),
            Unit::Share,
            Some(AtMost(1.1)),
            ratio(log_p99),
        ),
        figure(
            "Filled database's size".into(),
            Unit::MiB,
            None,
            Box::new(|runs| {
                let run = runs.iter().find(|r| r["scenario"] == FILLED)?;
                Some(run["database_bytes"].as_f64()? / 1_048_576.0)
            }),
        ),
    ]
}

/// Appends the section: a table per backend measured, or a line saying how
/// to measure it.
pub fn section(out: &mut String, dir: &Path) -> anyhow::Result<()> {
    out.push_str("### History size\n\n");
    let mut any = false;
    for (backend, file) in [
        ("postgres", "history.json"),
        ("sqlite", "history-sqlite.json"),
    ] {
        let path = dir.join(file);
        if !path.exists() {
            continue;
        }
        let results: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{}", path.display()))?;
        any = true;
        let _ = writeln!(
            out,
            "#### {} (`docs/benchmarks/{file}`)\n",
            backend_name(backend)
        );
        machine_section(out, &results);
        out.push('\n');
        table(out, &results);
        out.push('\n');
    }
    if !any {
        out.push_str(
            "Not measured yet: `scripts/bench.sh --history` writes `docs/benchmarks/history.json`.\n\n",
        );
    }
    Ok(())
}

fn table(out: &mut String, results: &Value) {
    let rows = results["runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["scenario"] == FILLED))
        .and_then(|r| r["history_rows"].as_f64());
    let filled = match rows {
        Some(rows) => format!("{} finished deliveries", thousands(rows)),
        None => "the history".to_owned(),
    };
    out.push_str("| figure | min | median | max | n | target | met? | Svix (reference) |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |\n");
    for figure in figures(&filled) {
        row(out, &figure, results, None);
    }
}
