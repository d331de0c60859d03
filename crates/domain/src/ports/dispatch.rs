//! The hand-off port: a process that both stores deliveries and sends them
//! gives the deliveries it stores to its own dispatcher, leased to it from
//! the start, so that no claim has to find them again (ADR 0012).

use crate::delivery::DeliveryJob;
use crate::ids::WebhookId;
use crate::time::UnixMillis;

/// Room a [`LocalDispatch`] keeps for `count` deliveries to `webhook_id`
/// about to be stored, each holding one of its slots. They are to be stored
/// leased until `lease_until`, then given with [`LocalDispatch::hand_over`];
/// [`LocalDispatch::cancel`] gives the room back when they were not stored.
#[derive(Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The webhook the deliveries go to.
    pub webhook_id: WebhookId,
    /// How many deliveries the room is for (at least one).
    pub count: usize,
    /// The end of the lease to store them with: no other process claims
    /// them before, and after it they are due again if this one died.
    pub lease_until: UnixMillis,
}

/// The dispatcher of the process that stores deliveries, seen from the
/// storage adapter that stores them.
///
/// The adapter asks for room per webhook before its insert
/// ([`reserve`](Self::reserve)), stores that many deliveries leased until
/// the reservation's `lease_until` and the rest as usual, and after the
/// commit hands the stored ones over. Crash safety is the lease's: a
/// process that dies between the commit and the send leaves leased
/// deliveries that come due when the lease ends, as a claim would.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait LocalDispatch: Send + Sync {
    /// Room for up to `wanted` new deliveries to `webhook`, as much as the
    /// dispatcher's free slots and the endpoint's share allow now; `None`
    /// for none (the endpoint is busy or its circuit open, every slot is
    /// held, or the dispatcher is stopping). Never for a FIFO webhook: the
    /// adapter leaves those to claims, which keep their order.
    fn reserve(&self, webhook: &WebhookId, wanted: usize) -> Option<Reservation>;

    /// The deliveries stored under `reservation` (at most its `count`):
    /// the dispatcher sends them as if it had claimed them. Room not used is
    /// given back.
    fn hand_over(&self, reservation: Reservation, jobs: Vec<DeliveryJob>);

    /// Gives the room back: nothing was stored under `reservation`.
    fn cancel(&self, reservation: Reservation);
}
