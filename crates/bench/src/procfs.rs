//! CPU time and memory of the processes under test, from `/proc`.

use std::collections::HashMap;

use serde_json::{json, Value};

/// Clock ticks per second of `/proc/*/stat` (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    std::env::var("BENCH_CLK_TCK")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process (all its threads), in clock ticks.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields start after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy and total ticks of the whole machine (`/proc/stat`, line `cpu`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Which PostgreSQL processes count: the backends of the benchmark database
/// (their command line names it) and the server's own helpers. Backends of
/// other databases on the same server (other people's tests) do not.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum PgKind {
    Database,
    Auxiliary,
}

fn postgres_processes(database: &str) -> HashMap<u32, PgKind> {
    let mut found = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    let needle = format!(" {database} ");
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if !cmdline.starts_with("postgres") && !cmdline.contains("/bin/postgres") {
            continue;
        }
        let line = format!("{cmdline} ");
        if line.contains(&needle) {
            found.insert(pid, PgKind::Database);
        } else if [
            "/bin/postgres",
            "checkpointer",
            "background writer",
            "walwriter",
            "autovacuum launcher",
            "logical replication launcher",
            "stats collector",
            "archiver",
        ]
        .iter()
        .any(|word| line.contains(word))
        {
            found.insert(pid, PgKind::Auxiliary);
        }
    }
    found
}

/// A snapshot of CPU counters.
pub struct CpuSample {
    service: HashMap<u32, u64>,
    postgres: HashMap<u32, (PgKind, u64)>,
    own: u64,
    machine: (u64, u64),
    at: std::time::Instant,
}

/// What the processes under test are, for sampling.
#[derive(Clone, Default)]
pub struct Watched {
    pub service_pids: Vec<u32>,
    pub pg_database: Option<String>,
}

impl Watched {
    pub fn sample(&self) -> CpuSample {
        let service = self
            .service_pids
            .iter()
            .filter_map(|pid| process_ticks(*pid).map(|t| (*pid, t)))
            .collect();
        let postgres = match &self.pg_database {
            Some(db) => postgres_processes(db)
                .into_iter()
                .filter_map(|(pid, kind)| process_ticks(pid).map(|t| (pid, (kind, t))))
                .collect(),
            None => HashMap::new(),
        };
        CpuSample {
            service,
            postgres,
            own: process_ticks(std::process::id()).unwrap_or(0),
            machine: machine_ticks().unwrap_or((0, 0)),
            at: std::time::Instant::now(),
        }
    }

    /// CPU milliseconds spent between two samples, per group, and per
    /// operation when `operations` > 0. A process that appeared in between
    /// counts from zero; one that exited in between is not counted.
    pub fn cpu_between(&self, before: &CpuSample, after: &CpuSample, operations: u64) -> Value {
        let seconds = after.at.duration_since(before.at).as_secs_f64();
        let ms = 1000.0 / ticks_per_second();
        let service: u64 = after
            .service
            .iter()
            .map(|(pid, t)| t.saturating_sub(before.service.get(pid).copied().unwrap_or(0)))
            .sum();
        let mut pg_db = 0;
        let mut pg_aux = 0;
        for (pid, (kind, t)) in &after.postgres {
            let was = before.postgres.get(pid).map_or(0, |(_, t)| *t);
            match kind {
                PgKind::Database => pg_db += t.saturating_sub(was),
                PgKind::Auxiliary => pg_aux += t.saturating_sub(was),
            }
        }
        let own = after.own.saturating_sub(before.own);
        let busy = after.machine.0.saturating_sub(before.machine.0);
        let total = after.machine.1.saturating_sub(before.machine.1);
        let service_ms = service as f64 * ms;
        let pg_ms = (pg_db + pg_aux) as f64 * ms;
        let per_op = |v: f64| {
            if operations > 0 {
                json!(v / operations as f64)
            } else {
                Value::Null
            }
        };
        let cores = total as f64 / ticks_per_second() / seconds.max(1e-9);
        json!({
            "seconds": seconds,
            "service_ms": service_ms,
            "postgres_db_ms": pg_db as f64 * ms,
            "postgres_aux_ms": pg_aux as f64 * ms,
            "bench_client_ms": own as f64 * ms,
            "machine_busy_ms": busy as f64 * ms,
            "machine_cores": cores,
            "machine_busy_share": if total > 0 { busy as f64 / total as f64 } else { 0.0 },
            // Busy time of everything else on the machine (other people's
            // processes, the kernel's own threads), ms.
            "others_ms": (busy as f64 * ms - service_ms - pg_ms - own as f64 * ms).max(0.0),
            "others_share": if total > 0 { ((busy as f64 * ms - service_ms - pg_ms - own as f64 * ms).max(0.0)) / (total as f64 * ms) } else { 0.0 },
            "operations": operations,
            "service_ms_per_op": per_op(service_ms),
            "postgres_ms_per_op": per_op(pg_ms),
            "service_and_postgres_ms_per_op": per_op(service_ms + pg_ms),
        })
    }

    /// Resident memory now and at its peak, KiB, per service process.
    pub fn memory(&self) -> Value {
        let per_pid: Vec<Value> = self
            .service_pids
            .iter()
            .map(|pid| {
                json!({
                    "pid": pid,
                    "rss_kib": status_kib(*pid, "VmRSS:"),
                    "hwm_kib": status_kib(*pid, "VmHWM:"),
                })
            })
            .collect();
        Value::Array(per_pid)
    }
}

/// A `kB` field of `/proc/PID/status`.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
