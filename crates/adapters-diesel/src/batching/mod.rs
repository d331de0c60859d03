//! Writes that share a transaction, so that the queue's busiest paths cost a
//! constant number of statements per batch rather than per item (ADR 0007):
//!
//! - [`group_commit`]: writes of one kind wait in one line; a writer task
//!   writes all that are waiting (up to a batch) in one transaction while
//!   the next ones gather, and answers each caller once its item is
//!   committed. Used by [`DieselEventStore`](crate::DieselEventStore) for
//!   publishes without an idempotency key and by
//!   [`DieselWebhookRepository`](crate::DieselWebhookRepository) for new
//!   webhooks; each says how a batch is written ([`BatchWrite`]).
//! - [`attempts`]: the statements that write a batch of attempt records, for
//!   [`DieselDeliveryQueue`](crate::DieselDeliveryQueue)'s `record_attempts`.
//!   The batches themselves are gathered in the domain, by the dispatcher's
//!   recorder task (`webhooks_domain`'s `delivery/recorder.rs`), which hands
//!   each to `record_attempts` as one call.

mod attempts;
mod group_commit;

pub(crate) use attempts::record_batch;
pub(crate) use group_commit::{BatchWrite, GroupCommit};
