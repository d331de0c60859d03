//! The portal: the pages where a webhook's owner sees and fixes its
//! deliveries. A platform hands its customer a single-use link scoped to one
//! group; opening it (or signing in with an API key) starts a session that
//! the public API accepts in place of the key, for that one group only.

mod model;
mod service;

pub use model::*;
pub use service::*;
