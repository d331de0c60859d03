//! Delivery: deliveries and attempts, the retry schedule, the dispatcher that
//! claims, signs, sends and records (with each endpoint's circuit breaker
//! and the wake-ups that start it), and the delivery log's use cases and stats.

mod circuit;
mod dispatcher;
mod log;
mod model;
mod recorder;
mod retry;
mod stats;
mod wakeup;

pub use circuit::*;
pub use dispatcher::*;
pub(crate) use dispatcher::{sign_envelope, Envelope};
pub use log::*;
pub use model::*;
pub use retry::*;
pub use stats::*;
pub use wakeup::*;
