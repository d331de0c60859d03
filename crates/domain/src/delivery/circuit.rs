//! The circuit breaker of one endpoint: an endpoint that keeps timing out is
//! left alone for a while, so that its hung requests cannot pile up.

use std::time::Duration;

use crate::time::UnixMillis;

/// When a circuit opens and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Timeouts in a row that open the circuit; 0 turns the breaker off.
    pub timeouts_to_open: u32,
    /// How long the circuit stays open the first time; each time the probe
    /// that follows times out too, twice as long, up to `max_open`.
    pub open_for: Duration,
    /// The longest a circuit stays open.
    pub max_open: Duration,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        Self {
            timeouts_to_open: 5,
            open_for: Duration::from_secs(30),
            max_open: Duration::from_secs(600),
        }
    }
}

/// One endpoint's circuit, in one process.
///
/// - Closed: deliveries flow as usual; timeouts in a row are counted.
/// - Open, after `timeouts_to_open` timeouts in a row: nothing is sent to the
///   endpoint until `open_until`.
/// - Half open, once `open_until` has passed: one delivery at a time is sent
///   as a probe. An answer (any HTTP status: the endpoint is reachable again)
///   closes the circuit; another timeout opens it for twice as long.
///
/// ```
/// use std::time::Duration;
/// use webhooks_domain::{Circuit, CircuitSettings, UnixMillis};
/// let settings = CircuitSettings { timeouts_to_open: 2, ..CircuitSettings::default() };
/// let mut circuit = Circuit::default();
/// let now = UnixMillis(1_000_000);
/// assert_eq!(circuit.record(true, now, &settings), None);
/// let until = circuit.record(true, now, &settings).expect("the second timeout opens it");
/// assert_eq!(until, UnixMillis(1_030_000));
/// assert!(circuit.is_open(now));
/// assert!(circuit.is_half_open(until));
/// assert_eq!(circuit.record(false, until, &settings), None);
/// assert!(circuit.is_closed());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Circuit {
    timeouts_in_a_row: u32,
    open_until: Option<UnixMillis>,
    /// Times it opened since it was last closed: the next opening lasts
    /// `open_for × 2^opened`.
    opened: u32,
}

impl Circuit {
    /// No timeout counted and not open: nothing to remember.
    pub fn is_closed(&self) -> bool {
        self.open_until.is_none() && self.timeouts_in_a_row == 0
    }

    /// Open or half open: it opened and no answer has closed it since.
    pub fn is_tripped(&self) -> bool {
        self.open_until.is_some()
    }

    /// Sends to the endpoint wait until the circuit's time is up.
    pub fn is_open(&self, now: UnixMillis) -> bool {
        self.open_until.is_some_and(|until| until > now)
    }

    /// Open before, its time is up: one probe at a time may go.
    pub fn is_half_open(&self, now: UnixMillis) -> bool {
        self.open_until.is_some_and(|until| until <= now)
    }

    /// When the circuit closes again, if it is open at `now`.
    pub fn open_until(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.open_until.filter(|until| *until > now)
    }

    /// Counts an attempt that `timed_out` or not; answers when the circuit
    /// stays open until, if this attempt opened it.
    pub fn record(
        &mut self,
        timed_out: bool,
        now: UnixMillis,
        settings: &CircuitSettings,
    ) -> Option<UnixMillis> {
        if !timed_out {
            *self = Self::default();
            return None;
        }
        self.timeouts_in_a_row = self.timeouts_in_a_row.saturating_add(1);
        if settings.timeouts_to_open == 0
            || self.timeouts_in_a_row < settings.timeouts_to_open
            || self.is_open(now)
        {
            return None;
        }
        let factor = 2u32.saturating_pow(self.opened);
        let open_for = settings
            .open_for
            .saturating_mul(factor)
            .min(settings.max_open);
        let until = now.plus_millis(crate::time::millis(open_for));
        self.opened = self.opened.saturating_add(1);
        self.open_until = Some(until);
        Some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(10_000_000);

    fn settings() -> CircuitSettings {
        CircuitSettings {
            timeouts_to_open: 3,
            open_for: Duration::from_secs(30),
            max_open: Duration::from_secs(100),
        }
    }

    #[test]
    fn opens_after_the_set_number_of_timeouts_in_a_row() {
        let mut circuit = Circuit::default();
        assert_eq!(circuit.record(true, NOW, &settings()), None);
        assert_eq!(circuit.record(true, NOW, &settings()), None);
        assert!(!circuit.is_open(NOW));
        assert_eq!(
            circuit.record(true, NOW, &settings()),
            Some(NOW.plus_millis(30_000))
        );
        assert!(circuit.is_open(NOW));
        assert_eq!(circuit.open_until(NOW), Some(NOW.plus_millis(30_000)));
    }

    #[test]
    fn an_answer_between_timeouts_starts_the_count_again() {
        let mut circuit = Circuit::default();
        circuit.record(true, NOW, &settings());
        circuit.record(true, NOW, &settings());
        assert_eq!(circuit.record(false, NOW, &settings()), None);
        assert!(circuit.is_closed());
        assert_eq!(circuit.record(true, NOW, &settings()), None);
        assert_eq!(circuit.record(true, NOW, &settings()), None);
        assert!(!circuit.is_open(NOW));
    }

    #[test]
    fn timeouts_of_requests_sent_before_it_opened_do_not_extend_it() {
        let mut circuit = Circuit::default();
        for _ in 0..3 {
            circuit.record(true, NOW, &settings());
        }
        let later = NOW.plus_millis(1_000);
        assert_eq!(circuit.record(true, later, &settings()), None);
        assert_eq!(circuit.open_until(later), Some(NOW.plus_millis(30_000)));
    }

    #[test]
    fn a_probe_that_times_out_opens_it_twice_as_long_up_to_the_maximum() {
        let mut circuit = Circuit::default();
        for _ in 0..3 {
            circuit.record(true, NOW, &settings());
        }
        let first_until = NOW.plus_millis(30_000);
        assert!(circuit.is_half_open(first_until));
        assert_eq!(
            circuit.record(true, first_until, &settings()),
            Some(first_until.plus_millis(60_000))
        );
        let second_until = first_until.plus_millis(60_000);
        assert_eq!(
            circuit.record(true, second_until, &settings()),
            Some(second_until.plus_millis(100_000)),
            "capped at max_open"
        );
    }

    #[test]
    fn a_probe_answered_closes_it_and_forgets_the_back_off() {
        let mut circuit = Circuit::default();
        for _ in 0..3 {
            circuit.record(true, NOW, &settings());
        }
        let until = NOW.plus_millis(30_000);
        circuit.record(false, until, &settings());
        assert!(circuit.is_closed());
        for _ in 0..2 {
            circuit.record(true, until, &settings());
        }
        assert_eq!(
            circuit.record(true, until, &settings()),
            Some(until.plus_millis(30_000)),
            "the first length again"
        );
    }

    #[test]
    fn zero_timeouts_to_open_turns_it_off() {
        let settings = CircuitSettings {
            timeouts_to_open: 0,
            ..settings()
        };
        let mut circuit = Circuit::default();
        for _ in 0..100 {
            assert_eq!(circuit.record(true, NOW, &settings), None);
        }
        assert!(!circuit.is_open(NOW));
    }
}
