//! The integration tests of `okaya-webhooks`, one binary (each test binary
//! links the whole application):
//! - `api`: the real application on a loopback port, over a fresh SQLite file
//!   and a fresh PostgreSQL database, each test on both;
//! - `delivery_processes`, `ordering_processes`, `log_hygiene`,
//!   `seed_examples`: whole processes of
//!   the built binary;
//! - `operations`: `config check`, `--help`, and the references in docs/;
//! - `portal_in_a_browser`: the portal in headless Chromium.
//!
//! No test here changes its own process (global logger, environment): the
//! ones that need a process of their own start the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod api;
mod delivery_processes;
mod log_hygiene;
mod operations;
mod ordering_processes;
mod portal_in_a_browser;
mod seed_examples;
