//! Results files, the generated part of `docs/benchmarks.md` and its SVG
//! charts.
//!
//! - `results.rs`: the machine, and the runs bundled into a results file.
//! - `figures.rs`: what each row of a table reads from the runs;
//!   `units.rs` its unit and target; `stats.rs` the spread over the runs.
//! - `history.rs`: the history-size section, from `history*.json`.
//! - `table.rs`: the Markdown tables; `charts.rs` and `svg.rs`: the charts.

mod charts;
mod figures;
mod history;
mod results;
mod stats;
mod svg;
mod table;
mod units;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

pub use results::{collect, machine};

const START: &str =
    "<!-- bench:generated:start (scripts/bench.sh writes everything up to the end marker) -->";
const END: &str = "<!-- bench:generated:end -->";
/// A new `docs/benchmarks.md`, before the first report.
const SKELETON: &str = "# Benchmarks\n\n";

/// How the report names a backend.
fn backend_name(backend: &str) -> &'static str {
    if backend == "sqlite" {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

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
        table::machine_section(&mut out, results);
        out.push('\n');
        let compare = if *backend == "sqlite" {
            pg.as_ref()
        } else {
            None
        };
        table::table(&mut out, results, compare);
        out.push('\n');
    }
    history::section(&mut out, &dir)?;
    out.push_str("### Charts\n\n");
    out.push_str("![Deliveries per second](benchmarks/deliveries.svg)\n\n");
    out.push_str("![Send-to-arrival latency](benchmarks/latency.svg)\n\n");
    out.push_str("![API requests per second](benchmarks/api.svg)\n\n");
    out.push_str(END);
    charts::charts(&dir, &all)?;
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
