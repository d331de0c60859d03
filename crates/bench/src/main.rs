//! The benchmark harness of `scripts/bench.sh`: a loopback
//! receiver, a closed-loop load generator and the scenarios, each printing
//! one JSON object per run on standard output and a summary on standard
//! error; `collect` and `report` turn runs into `docs/benchmarks/*.json`,
//! the tables of `docs/benchmarks.md` and its SVG charts.
//!
//! ```text
//! cargo run --release -p webhooks-bench -- ceiling
//! cargo run --release -p webhooks-bench -- api --base http://127.0.0.1:8080 --key okw_…
//! cargo run --release -p webhooks-bench -- deliver --base … --key … --service-token … --events 20000 --webhooks 1
//! ```
//!
//! Everything goes to 127.0.0.1 only, and every loop is bounded in time and
//! count.

mod arrivals;
mod cli;
mod load;
mod net;
mod procfs;
mod publisher;
mod report;
mod scenarios;

use clap::Parser;

use cli::{Cli, Cmd};
use scenarios::{api, deliver, history, idle};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Ceiling(args) => api::ceiling(args).await,
            Cmd::Api(args) => api::api(args).await,
            Cmd::Deliver(args) => deliver::deliver(args).await,
            Cmd::IdleLatency(args) => idle::idle_latency(args).await,
            Cmd::Drain(args) => deliver::drain(args).await,
            Cmd::History(args) => history::history(args).await,
            Cmd::Machine { pg_url } => {
                println!("{}", report::machine(pg_url.as_deref()));
                Ok(())
            }
            Cmd::Collect {
                machine,
                runs,
                out,
                backend,
                command,
                wall_seconds,
            } => report::collect(&machine, &runs, &out, &backend, &command, wall_seconds),
            Cmd::Report { docs } => report::write(&docs),
        }
    })
}
