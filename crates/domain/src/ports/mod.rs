//! The ports: what the use cases need from the outside world. Adapters
//! (Diesel, HTTP) implement them; tests use the `mockall` mocks (`Mock…`,
//! beside each trait).
//!
//! - `storage`: what is kept: webhooks, tenancy, events, the delivery
//!   queue, portal passes, retention and probes.
//! - `environment`: the rest: sending a request, the time, fresh ids.
//! - `dispatch`: the hand-off of new deliveries from the storage adapter to
//!   the dispatcher of the same process.

mod dispatch;
mod environment;
mod storage;

pub use dispatch::*;
pub use environment::*;
pub use storage::*;
