//! The ports: what the use cases need from the outside world. Adapters
//! (Diesel, HTTP) implement them; tests use the `mockall` mocks (`Mock…`,
//! beside each trait).
//!
//! - `storage`: what is kept: webhooks, tenancy, events, the delivery
//!   queue, portal passes, retention and probes.
//! - `environment`: the rest: sending a request, the time, fresh ids.

mod environment;
mod storage;

pub use environment::*;
pub use storage::*;
