//! What a dispatcher holds for each endpoint, and the fair share that keeps
//! endpoints that hang from taking every slot.

use std::collections::VecDeque;

use tokio::sync::OwnedSemaphorePermit;

use crate::delivery::{Circuit, DeliveryJob};
use crate::time::UnixMillis;

/// Requests an endpoint may have in flight before it has answered any:
/// the start of its [window](EndpointState::in_flight_limit).
pub(super) const FIRST_WINDOW: usize = 4;

/// How long an endpoint's state, window included, is kept after its last
/// answer while it holds nothing, so that the next burst starts at the
/// window it had rather than at [`FIRST_WINDOW`].
const WINDOW_KEPT_MS: i64 = 60_000;

/// A webhook's deliveries in this process (in flight, claimed but
/// waiting, each with its slot, and reserved for a hand-off with their
/// slots), its window and its circuit.
pub(super) struct EndpointState {
    pub(super) in_flight: usize,
    /// How many may be in flight now (see [`EndpointState::in_flight_limit`]).
    window: usize,
    /// When the endpoint last answered.
    answered_at: Option<UnixMillis>,
    pub(super) waiting: VecDeque<(DeliveryJob, OwnedSemaphorePermit)>,
    /// Deliveries being stored by this process for a hand-off, and the
    /// slots kept for them (one permit per delivery, merged).
    pub(super) reserved: usize,
    pub(super) reserved_slots: Option<OwnedSemaphorePermit>,
    pub(super) circuit: Circuit,
}

impl Default for EndpointState {
    fn default() -> Self {
        Self {
            in_flight: 0,
            window: FIRST_WINDOW,
            answered_at: None,
            waiting: VecDeque::new(),
            reserved: 0,
            reserved_slots: None,
            circuit: Circuit::default(),
        }
    }
}

impl EndpointState {
    /// How many deliveries may be in flight to the endpoint now: its window,
    /// at most `per_endpoint`. The window starts at [`FIRST_WINDOW`],
    /// doubles with each answer (up to `per_endpoint`: 32 after three) and
    /// halves with each timeout, down to one. An endpoint that never answers
    /// therefore keeps a few requests open, not `per_endpoint`: each costs a
    /// socket and tens of KiB of buffers. Its other deliveries wait in memory
    /// behind them, holding their slots as before, so the fair share does
    /// not change. An endpoint that holds nothing keeps its window for a
    /// minute after its last answer (see [`EndpointState::is_idle`]), so a
    /// burst after a pause goes at the speed the endpoint had.
    pub(super) fn in_flight_limit(&self, per_endpoint: usize) -> usize {
        self.window.min(per_endpoint).max(1)
    }

    /// Counts an attempt, made `now`, on the window: answered (`timed_out`
    /// false) or not.
    pub(super) fn count_on_window(
        &mut self,
        timed_out: bool,
        per_endpoint: usize,
        now: UnixMillis,
    ) {
        if timed_out {
            self.window = (self.window / 2).max(1);
        } else {
            self.window = (self.window * 2).min(per_endpoint.max(FIRST_WINDOW));
            self.answered_at = Some(now);
        }
    }

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

    /// Nothing in flight, nothing waiting, nothing to remember: its circuit
    /// is closed, and it has not answered within a minute (before that, its
    /// window is worth keeping). Idle states are dropped; those kept for
    /// their window are dropped by the next claim round after that minute.
    pub(super) fn is_idle(&self, now: UnixMillis) -> bool {
        let window_kept = self
            .answered_at
            .is_some_and(|at| now.as_millis() - at.as_millis() < WINDOW_KEPT_MS);
        self.held() == 0 && self.circuit.is_closed() && !window_kept
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
    fn the_window_starts_small_doubles_per_answer_and_halves_per_timeout() {
        let mut state = EndpointState::default();
        assert_eq!(state.in_flight_limit(32), FIRST_WINDOW);
        assert_eq!(state.in_flight_limit(1), 1, "a FIFO webhook keeps one");
        state.count_on_window(false, 32, NOW);
        assert_eq!(state.in_flight_limit(32), 2 * FIRST_WINDOW);
        state.count_on_window(false, 32, NOW);
        state.count_on_window(false, 32, NOW);
        assert_eq!(state.in_flight_limit(32), 32, "after three answers");
        for _ in 0..100 {
            state.count_on_window(false, 32, NOW);
        }
        assert_eq!(state.in_flight_limit(32), 32, "never above per_endpoint");
        state.count_on_window(true, 32, NOW);
        assert_eq!(state.in_flight_limit(32), 16);
        for _ in 0..10 {
            state.count_on_window(true, 32, NOW);
        }
        assert_eq!(state.in_flight_limit(32), 1, "never below one");
    }

    #[test]
    fn an_endpoint_that_answered_within_a_minute_keeps_its_window_while_it_holds_nothing() {
        let mut state = EndpointState::default();
        assert!(state.is_idle(NOW), "nothing to keep before an answer");
        state.count_on_window(true, 32, NOW);
        assert!(state.is_idle(NOW), "nor after a timeout alone");
        state.count_on_window(false, 32, NOW);
        assert!(!state.is_idle(NOW.plus_millis(59_999)));
        assert!(state.is_idle(NOW.plus_millis(60_000)));
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
