//! The `okaya-webhooks` application: configuration, wiring and command line.
//! `main.rs` only dispatches; tests build an [`startup::Application`] on port 0.

pub mod admin;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod startup;
pub mod telemetry;
