//! The Markdown of each backend's results: the machine, then one row per
//! figure with its spread over the runs, its target and, for SQLite, the
//! PostgreSQL median beside it.

use std::fmt::Write as _;

use serde_json::Value;

use super::figures::{figures, Figure};
use super::stats::spread;
use super::units::Unit;

/// The machine, versions and command of a results file, as a list.
pub fn machine_section(out: &mut String, results: &Value) {
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

/// The table of a results file; with `compare`, PostgreSQL's results, two
/// more columns compare each figure with them.
pub fn table(out: &mut String, results: &Value, compare: Option<&Value>) {
    let _ = write!(
        out,
        "| figure | min | median | max | n | target | met? | Svix (reference) |"
    );
    if compare.is_some() {
        let _ = write!(
            out,
            " PostgreSQL median | SQLite ÷ PostgreSQL (at least as fast?) |"
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
        row(out, &figure, results, compare);
    }
}

/// One figure's row.
pub fn row(out: &mut String, figure: &Figure, results: &Value, compare: Option<&Value>) {
    // How busy the machine was is context, not a figure to compare.
    let context = figure.name.starts_with("Machine busy") || figure.name.starts_with('…');
    let unit = figure.unit;
    let suffix = match unit {
        Unit::PerSecond | Unit::Count | Unit::Share => "",
        _ => unit.name(),
    };
    let Some((min, median, max, n)) = spread(results, &figure.extract) else {
        let _ = writeln!(
            out,
            "| {} | – | – | – | 0 | {} | not measured | {} |{}",
            figure.name,
            figure.goal.map(|g| g.text(unit)).unwrap_or_default(),
            figure.reference.unwrap_or(""),
            if compare.is_some() { " | |" } else { "" }
        );
        return;
    };
    let (goal, met) = match figure.goal {
        Some(goal) => (goal.text(unit), goal.verdict(median)),
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
        comparison(out, figure, median, pg);
    }
    if context && compare.is_some() {
        out.push_str(" | |");
    }
    out.push('\n');
}

/// PostgreSQL's median of the figure, and whether `median` is at least as
/// good: as many per second, as short a latency (memory and CPU are shown,
/// not judged: SQLite's CPU includes its database's work).
fn comparison(out: &mut String, figure: &Figure, median: f64, pg: &Value) {
    let unit = figure.unit;
    match spread(pg, &figure.extract) {
        Some((_, pg_median, _, _)) => {
            let within = match unit {
                Unit::PerSecond | Unit::Share => Some(median >= pg_median),
                Unit::Ms => Some(median <= pg_median),
                Unit::MiB | Unit::CpuMs | Unit::Count => None,
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
