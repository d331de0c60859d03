//! Webhooks: the entity and its value objects (URL, description, event
//! types, rate limit), and the use cases of the public webhook API.

mod model;
mod service;
mod url;

pub use model::*;
pub use service::*;
pub use url::*;
