//! Publishes without an idempotency key, written a batch at a time by the
//! [group commit](crate::batching) of [`DieselEventStore`](super::DieselEventStore).

use webhooks_domain::{Event, PublishOutcome, RepositoryError, UnixMillis};

use super::{enabled_receivers, fan_out_and_store, FanOut, HandOffSlot, Leases};
use crate::batching::BatchWrite;
use crate::database::{write_transaction, DbConnection};

/// Writes a batch of publishes, handing the new deliveries the process's
/// dispatcher has room for over to it once committed (see `hand_off.rs`).
#[derive(Debug)]
pub(super) struct PublishBatch {
    pub(super) hand_off: HandOffSlot,
}

impl BatchWrite for PublishBatch {
    type Item = Event;
    type Outcome = PublishOutcome;

    /// Stores the events and their deliveries. On PostgreSQL a batch takes
    /// two round trips and no explicit transaction: the read of the
    /// receivers, then one statement that inserts events and deliveries and
    /// notifies, atomic and durable by itself. On SQLite, one write
    /// transaction.
    fn write(
        &self,
        connection: &mut DbConnection,
        events: &[Event],
    ) -> Result<Vec<PublishOutcome>, RepositoryError> {
        let now = events
            .iter()
            .map(|event| event.created_at)
            .max()
            .unwrap_or(UnixMillis(0));
        let fan_out_of = |connection: &mut DbConnection| {
            let receivers = enabled_receivers(connection, events)?;
            let mut fan_out = FanOut::of(events, &receivers);
            let leases = Leases::take(self.hand_off.get(), &mut fan_out, &receivers, now);
            Ok::<_, RepositoryError>((fan_out, leases))
        };
        if matches!(connection, DbConnection::Sqlite(_)) {
            let (fan_out, leases) = write_transaction(connection, |connection| {
                fan_out_and_store(connection, fan_out_of)
            })?;
            leases.hand_over();
            return Ok(fan_out.outcomes);
        }
        let (fan_out, leases) = fan_out_and_store(connection, fan_out_of)?;
        leases.hand_over();
        Ok(fan_out.outcomes)
    }
}
