//! The results files: the machine a benchmark ran on, and every run's JSON
//! bundled into `docs/benchmarks/results*.json`.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::{json, Value};

/// A command's standard output, trimmed; `None` if it cannot run or fails.
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
