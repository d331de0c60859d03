//! The command line: one subcommand per scenario, and the commands that turn
//! runs into results files and the report.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::procfs::Watched;

#[derive(Parser)]
#[command(about = "Benchmarks of okaya-webhooks (see docs/benchmarks.md)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

/// What every measuring subcommand takes.
#[derive(Args, Clone)]
pub struct Common {
    /// Label of the storage under test, copied into the output.
    #[arg(long, default_value = "postgres")]
    pub backend: String,
    /// Run number (1, 2, 3), copied into the output.
    #[arg(long, default_value_t = 1)]
    pub run: u32,
    /// Service process(es) whose CPU and memory are measured.
    #[arg(long = "pid")]
    pub pids: Vec<u32>,
    /// PostgreSQL database whose backends' CPU is measured.
    #[arg(long)]
    pub pg_database: Option<String>,
}

impl Common {
    /// The processes whose CPU and memory a run reports.
    pub fn watched(&self) -> Watched {
        Watched {
            service_pids: self.pids.clone(),
            pg_database: self.pg_database.clone(),
        }
    }
}

/// The service under test.
#[derive(Args, Clone)]
pub struct Target {
    /// e.g. http://127.0.0.1:8080
    #[arg(long)]
    pub base: String,
    /// An API key of the group.
    #[arg(long)]
    pub key: String,
    #[arg(long, default_value_t = 123456)]
    pub group: i64,
    /// Bearer token of /internal/events.
    #[arg(long, default_value = "")]
    pub service_token: String,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// A bare hello-world receiver of ours under the same closed loop: the
    /// machine's ceiling.
    Ceiling(CeilingArgs),
    /// GET, PUT and POST /webhooks/{groupID} with 20 webhooks in the group.
    Api(ApiArgs),
    /// Publish events (as fast as accepted, or at --rate per second) to
    /// webhooks on our receiver and time their arrival.
    Deliver(DeliverArgs),
    /// One event at a time with a pause between: send-to-arrival on an idle
    /// system.
    IdleLatency(IdleArgs),
    /// Publish a backlog to an API-only service, then wait for a worker
    /// process (started by the caller when `--ready-file` appears, its pid
    /// written to `<ready-file>.pid`) to drain it.
    Drain(DrainArgs),
    /// 1-webhook delivery throughput, then the delivery log's latency, on a
    /// database the caller filled (or left empty) beforehand.
    History(HistoryArgs),
    /// The machine and versions, as JSON.
    Machine {
        #[arg(long)]
        pg_url: Option<String>,
    },
    /// Bundles the machine and the runs (JSON lines) into one results file.
    Collect {
        #[arg(long)]
        machine: PathBuf,
        #[arg(long)]
        runs: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        backend: String,
        /// The command that produced the runs.
        #[arg(long)]
        command: String,
        /// Seconds the whole benchmark took.
        #[arg(long)]
        wall_seconds: Option<f64>,
    },
    /// Writes the tables and charts of docs/benchmarks.md from
    /// docs/benchmarks/results*.json.
    Report {
        #[arg(long, default_value = "docs")]
        docs: PathBuf,
    },
}

#[derive(Args)]
pub struct CeilingArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
}

#[derive(Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    #[arg(long, default_value_t = 20)]
    pub webhooks: usize,
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
}

#[derive(Args, Clone)]
pub struct DeliverArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub target: Target,
    /// Name of the scenario in the output.
    #[arg(long, default_value = "deliver")]
    pub scenario: String,
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    #[arg(long, default_value_t = 1)]
    pub webhooks: usize,
    /// Concurrent publishers (closed loop).
    #[arg(long, default_value_t = 32)]
    pub publishers: usize,
    /// Open loop: events per second offered, for --events events.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Longest wait for the arrivals after publishing, seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub target: Target,
    /// Name of the scenario in the output.
    #[arg(long, default_value = "idle")]
    pub scenario: String,
    #[arg(long, default_value_t = 200)]
    pub events: usize,
    #[arg(long, default_value_t = 20)]
    pub pause_ms: u64,
    /// Webhooks to a receiver that never answers, each sent
    /// --hanging-events deliveries before the measurement starts.
    #[arg(long, default_value_t = 0)]
    pub hanging: usize,
    #[arg(long, default_value_t = 40)]
    pub hanging_events: usize,
}

#[derive(Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    #[arg(long, default_value_t = 1)]
    pub webhooks: usize,
    #[arg(long, default_value_t = 32)]
    pub publishers: usize,
    #[arg(long)]
    pub ready_file: PathBuf,
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub target: Target,
    /// Name of the scenario in the output (`history_empty`, `history_filled`).
    #[arg(long)]
    pub scenario: String,
    /// Events published to the one webhook (closed loop).
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    #[arg(long, default_value_t = 32)]
    pub publishers: usize,
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Seconds of the closed loop on the delivery log.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent callers of the delivery log.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Finished deliveries the caller put in the database beforehand, copied
    /// into the output.
    #[arg(long, default_value_t = 0)]
    pub history_rows: u64,
    /// The database's size once filled, bytes, copied into the output.
    #[arg(long)]
    pub database_bytes: Option<u64>,
}
