//! What a dispatcher holds for each endpoint, and the fair share that keeps
//! endpoints that hang from taking every slot.

use std::collections::VecDeque;

use tokio::sync::OwnedSemaphorePermit;

use crate::delivery::{Circuit, DeliveryJob};
use crate::time::UnixMillis;

/// A webhook's deliveries in this process (in flight, claimed but
/// waiting, each with its slot, and reserved for a hand-off with their
/// slots), and its circuit.
#[derive(Default)]
pub(super) struct EndpointState {
    pub(super) in_flight: usize,
    pub(super) waiting: VecDeque<(DeliveryJob, OwnedSemaphorePermit)>,
    /// Deliveries being stored by this process for a hand-off, and the
    /// slots kept for them (one permit per delivery, merged).
    pub(super) reserved: usize,
    pub(super) reserved_slots: Option<OwnedSemaphorePermit>,
    pub(super) circuit: Circuit,
}

impl EndpointState {
    /// Deliveries in flight, waiting and reserved.
    pub(super) fn held(&self) -> usize {
        self.in_flight + self.waiting.len() + self.reserved
    }

    /// Keeps `slot` for one more delivery being stored.
    pub(super) fn keep_reserved(&mut self, slot: OwnedSemaphorePermit) {
        self.reserved += 1;
        match &mut self.reserved_slots {
            Some(kept) => kept.merge(slot),
            None => self.reserved_slots = Some(slot),
        }
    }

    /// The slot of one reserved delivery, no longer reserved; `None` when
    /// none is left.
    pub(super) fn take_reserved(&mut self) -> Option<OwnedSemaphorePermit> {
        if self.reserved == 0 {
            return None;
        }
        self.reserved -= 1;
        if self.reserved == 0 {
            return self.reserved_slots.take();
        }
        self.reserved_slots.as_mut()?.split(1)
    }

    /// Whether the endpoint may hold one more delivery while `free` slots
    /// are left: not while its circuit is open; one probe at a time while it
    /// is half open; otherwise up to `per_endpoint` in flight and as many
    /// waiting, and only while it leaves at least as many slots free as it
    /// holds. That last rule is the fair share: an endpoint holding `k`
    /// stops growing when fewer than `k` slots are free, so endpoints that
    /// hang settle at about `workers / (n + 1)` each and a new endpoint
    /// always finds a slot.
    pub(super) fn may_take(&self, free: usize, per_endpoint: usize, now: UnixMillis) -> bool {
        if self.circuit.is_open(now) {
            return false;
        }
        let held = self.held();
        if self.circuit.is_half_open(now) {
            return held == 0 && free > 0;
        }
        held < per_endpoint * 2 && free > held
    }

    /// Nothing in flight, nothing waiting, nothing to remember.
    pub(super) fn is_idle(&self) -> bool {
        self.held() == 0 && self.circuit.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::CircuitSettings;

    const NOW: UnixMillis = UnixMillis(10_000_000);

    fn holding(in_flight: usize) -> EndpointState {
        EndpointState {
            in_flight,
            ..EndpointState::default()
        }
    }

    #[test]
    fn an_endpoint_holding_none_takes_a_delivery_while_one_slot_is_free() {
        assert!(holding(0).may_take(1, 32, NOW));
        assert!(!holding(0).may_take(0, 32, NOW));
    }

    #[test]
    fn an_endpoint_takes_another_only_while_it_leaves_as_many_slots_free_as_it_holds() {
        assert!(holding(10).may_take(11, 32, NOW));
        assert!(!holding(10).may_take(10, 32, NOW));
    }

    #[test]
    fn endpoints_that_hang_settle_at_a_fair_share_and_leave_room_for_another() {
        // 100 endpoints that never finish anything, 4096 slots: each grabs
        // what the rule allows, round after round.
        let workers = 4096;
        let mut held = vec![0usize; 100];
        loop {
            let mut grew = false;
            for n in 0..held.len() {
                let free = workers - held.iter().sum::<usize>();
                if holding(held[n]).may_take(free, 32, NOW) {
                    held[n] += 1;
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        let free = workers - held.iter().sum::<usize>();
        assert!(held.iter().all(|k| *k <= 64), "{held:?}");
        assert!(free >= 32, "{free} slots left");
        assert!(
            holding(0).may_take(free, 32, NOW),
            "a newcomer still gets one"
        );
    }

    #[test]
    fn no_more_than_per_endpoint_in_flight_and_as_many_waiting() {
        assert!(holding(63).may_take(4000, 32, NOW));
        assert!(!holding(64).may_take(4000, 32, NOW));
    }

    #[test]
    fn an_open_circuit_takes_nothing_and_a_half_open_one_one_probe() {
        let settings = CircuitSettings {
            timeouts_to_open: 1,
            ..CircuitSettings::default()
        };
        let mut state = holding(0);
        let until = state.circuit.record(true, NOW, &settings).unwrap();
        assert!(!state.may_take(4000, 32, NOW));
        assert!(state.may_take(4000, 32, until));
        state.in_flight = 1;
        assert!(!state.may_take(4000, 32, until), "one probe at a time");
    }
}
