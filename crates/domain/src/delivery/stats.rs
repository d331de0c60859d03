//! A webhook's stats over a window of time: how its deliveries stand, its
//! success rate, its attempts' latency, and when it last succeeded and failed.
//!
//! What counts is one cohort: the webhook's deliveries created in the window
//! (`since` included, `until` excluded), each in its current status, and every
//! attempt those deliveries have had so far, whenever it was made.

use crate::error::{Field, InvalidValue};
use crate::time::UnixMillis;

const HOUR_MILLIS: i64 = 60 * 60 * 1000;

/// The window asked for when none is given: the 24 hours before its end.
pub const DEFAULT_STATS_WINDOW_MILLIS: i64 = 24 * HOUR_MILLIS;
/// The longest window: 31 days, so one request reads at most a month of a
/// webhook's deliveries.
pub const MAX_STATS_WINDOW_MILLIS: i64 = 31 * 24 * HOUR_MILLIS;

/// The span of time a webhook's stats describe: from `since` (included) to
/// `until` (excluded), `since` before `until`, at most 31 days long.
///
/// ```
/// use webhooks_domain::{Field, StatsWindow, UnixMillis};
///
/// let now = UnixMillis(1_796_000_000_000);
/// let last_day = StatsWindow::resolve(None, None, now).unwrap();
/// assert_eq!(last_day.until(), now);
/// assert_eq!(last_day.since(), now.plus_millis(-24 * 3_600_000));
///
/// let backwards = StatsWindow::new(now, now.plus_millis(-1)).unwrap_err();
/// assert_eq!(backwards.field(), Field::StatsWindow);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsWindow {
    since: UnixMillis,
    until: UnixMillis,
}

impl StatsWindow {
    /// Checks `since` comes before `until` ([`Field::StatsWindow`]) and the
    /// two are at most [`MAX_STATS_WINDOW_MILLIS`] apart
    /// ([`Field::StatsWindowLength`]).
    pub fn new(since: UnixMillis, until: UnixMillis) -> Result<Self, InvalidValue> {
        if since >= until {
            return Err(InvalidValue::new(
                Field::StatsWindow,
                "since is not before until",
            ));
        }
        if until.as_millis().saturating_sub(since.as_millis()) > MAX_STATS_WINDOW_MILLIS {
            return Err(InvalidValue::new(
                Field::StatsWindowLength,
                "longer than 31 days",
            ));
        }
        Ok(Self { since, until })
    }

    /// The window a request names, with the defaults filled in: `until` is
    /// `now` when absent, and `since` the 24 hours before `until`; then as
    /// [`StatsWindow::new`].
    pub fn resolve(
        since: Option<UnixMillis>,
        until: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<Self, InvalidValue> {
        let until = until.unwrap_or(now);
        let since = since.unwrap_or_else(|| until.plus_millis(-DEFAULT_STATS_WINDOW_MILLIS));
        Self::new(since, until)
    }

    /// The first instant in the window.
    pub fn since(self) -> UnixMillis {
        self.since
    }

    /// The first instant after the window.
    pub fn until(self) -> UnixMillis {
        self.until
    }
}

/// How many deliveries are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Waiting for an attempt, or being attempted.
    pub pending: u64,
    /// Delivered.
    pub succeeded: u64,
    /// Failed for good.
    pub failed: u64,
}

impl DeliveryCounts {
    /// Every delivery counted.
    pub fn total(self) -> u64 {
        self.pending + self.succeeded + self.failed
    }

    /// The share of finished deliveries that succeeded, from 0 to 1; `None`
    /// while none has finished (pending ones are left out: they may still
    /// go either way).
    ///
    /// ```
    /// use webhooks_domain::DeliveryCounts;
    /// let counts = DeliveryCounts { pending: 5, succeeded: 3, failed: 1 };
    /// assert_eq!(counts.success_rate(), Some(0.75));
    /// assert_eq!(DeliveryCounts { pending: 5, ..Default::default() }.success_rate(), None);
    /// ```
    pub fn success_rate(self) -> Option<f64> {
        let finished = self.succeeded + self.failed;
        (finished > 0).then(|| self.succeeded as f64 / finished as f64)
    }
}

/// How long attempts took: how many took each duration, in milliseconds.
/// Durations are whole milliseconds bounded by the attempt timeout, so the
/// table stays small however many attempts it counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptDurations {
    /// `(duration in ms, attempts that took it)`, shortest first, each
    /// duration once, counts above zero.
    counts: Vec<(i64, u64)>,
}

impl AttemptDurations {
    /// The table from `(duration in ms, count)` pairs in any order; pairs of
    /// one duration add up, zero counts are dropped.
    ///
    /// ```
    /// use webhooks_domain::AttemptDurations;
    /// let durations = AttemptDurations::new(vec![(30, 1), (10, 2), (30, 1)]);
    /// assert_eq!(durations.attempts(), 4);
    /// assert_eq!(durations.percentile(50), Some(10));
    /// assert_eq!(durations.percentile(99), Some(30));
    /// assert_eq!(AttemptDurations::default().percentile(50), None);
    /// ```
    pub fn new(mut counts: Vec<(i64, u64)>) -> Self {
        counts.retain(|&(_, count)| count > 0);
        counts.sort_unstable_by_key(|&(duration, _)| duration);
        counts.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 += later.1;
            }
            same
        });
        Self { counts }
    }

    /// How many attempts the table counts.
    pub fn attempts(&self) -> u64 {
        self.counts.iter().map(|&(_, count)| count).sum()
    }

    /// The nearest-rank `percent`-th percentile (1 to 100): the shortest
    /// duration that at least `percent` % of the attempts took no longer
    /// than. `None` without attempts.
    pub fn percentile(&self, percent: u8) -> Option<i64> {
        let total = self.attempts();
        // The rank is at least 1, so an empty table finds nothing.
        let rank = (total * u64::from(percent.clamp(1, 100)))
            .div_ceil(100)
            .max(1);
        let mut seen = 0;
        self.counts.iter().find_map(|&(duration, count)| {
            seen += count;
            (seen >= rank).then_some(duration)
        })
    }
}

/// What storage reads for a webhook's stats
/// ([`crate::DeliveryQueue::window_activity`]): the cohort of deliveries
/// created in the window and their attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowActivity {
    /// The deliveries by current status.
    pub deliveries: DeliveryCounts,
    /// Their attempts' durations.
    pub durations: AttemptDurations,
    /// Their latest attempt answered 2xx.
    pub last_success_at: Option<UnixMillis>,
    /// Their latest attempt that was not: another status, or no answer.
    pub last_failure_at: Option<UnixMillis>,
}

/// The attempt latency's percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Half the attempts took no longer.
    pub p50: i64,
    /// 99 % of the attempts took no longer.
    pub p99: i64,
}

/// A webhook's stats over a [`StatsWindow`] ([`crate::DeliveryService::stats`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookStats {
    /// The window described.
    pub window: StatsWindow,
    /// The deliveries created in the window, by current status.
    pub deliveries: DeliveryCounts,
    /// [`DeliveryCounts::success_rate`] of those.
    pub success_rate: Option<f64>,
    /// How many attempts those deliveries have had.
    pub attempts: u64,
    /// Those attempts' latency; `None` without attempts.
    pub latency: Option<Latency>,
    /// When one of those attempts last answered 2xx.
    pub last_success_at: Option<UnixMillis>,
    /// When one of those attempts last failed.
    pub last_failure_at: Option<UnixMillis>,
}

impl WebhookStats {
    /// The stats that storage's figures for `window` give.
    pub fn new(window: StatsWindow, activity: WindowActivity) -> Self {
        let durations = &activity.durations;
        let latency = durations
            .percentile(50)
            .zip(durations.percentile(99))
            .map(|(p50, p99)| Latency { p50, p99 });
        Self {
            window,
            deliveries: activity.deliveries,
            success_rate: activity.deliveries.success_rate(),
            attempts: durations.attempts(),
            latency,
            last_success_at: activity.last_success_at,
            last_failure_at: activity.last_failure_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_796_000_000_000);

    #[test]
    fn a_window_without_bounds_is_the_last_24_hours() {
        let window = StatsWindow::resolve(None, None, NOW).unwrap();
        assert_eq!(
            window.since(),
            NOW.plus_millis(-DEFAULT_STATS_WINDOW_MILLIS)
        );
        assert_eq!(window.until(), NOW);
    }

    #[test]
    fn until_alone_is_the_24_hours_before_it() {
        let until = NOW.plus_millis(-5 * DEFAULT_STATS_WINDOW_MILLIS);
        let window = StatsWindow::resolve(None, Some(until), NOW).unwrap();
        assert_eq!(
            window.since(),
            until.plus_millis(-DEFAULT_STATS_WINDOW_MILLIS)
        );
        assert_eq!(window.until(), until);
    }

    #[test]
    fn since_alone_runs_until_now() {
        let since = NOW.plus_millis(-HOUR_MILLIS);
        let window = StatsWindow::resolve(Some(since), None, NOW).unwrap();
        assert_eq!((window.since(), window.until()), (since, NOW));
    }

    #[test]
    fn since_must_come_before_until() {
        for since in [NOW, NOW.plus_millis(1)] {
            let err = StatsWindow::new(since, NOW).unwrap_err();
            assert_eq!(err.field(), Field::StatsWindow);
        }
        let future = StatsWindow::resolve(Some(NOW.plus_millis(1)), None, NOW).unwrap_err();
        assert_eq!(future.field(), Field::StatsWindow);
    }

    #[test]
    fn a_window_is_at_most_31_days_long() {
        let longest = NOW.plus_millis(-MAX_STATS_WINDOW_MILLIS);
        assert!(StatsWindow::new(longest, NOW).is_ok());
        let err = StatsWindow::new(longest.plus_millis(-1), NOW).unwrap_err();
        assert_eq!(err.field(), Field::StatsWindowLength);
        let err = StatsWindow::new(UnixMillis(i64::MIN), UnixMillis(i64::MAX)).unwrap_err();
        assert_eq!(err.field(), Field::StatsWindowLength);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        // 1..=100 ms, one attempt each.
        let durations = AttemptDurations::new((1..=100).map(|ms| (ms, 1)).collect());
        assert_eq!(durations.percentile(50), Some(50));
        assert_eq!(durations.percentile(99), Some(99));
        assert_eq!(durations.percentile(100), Some(100));
        let one = AttemptDurations::new(vec![(7, 1)]);
        assert_eq!((one.percentile(50), one.percentile(99)), (Some(7), Some(7)));
    }

    #[test]
    fn a_slow_tail_shows_in_p99_only() {
        let durations = AttemptDurations::new(vec![(20, 98), (5_000, 2)]);
        assert_eq!(durations.percentile(50), Some(20));
        assert_eq!(durations.percentile(99), Some(5_000));
    }

    #[test]
    fn stats_without_attempts_have_no_latency_nor_rate() {
        let window = StatsWindow::resolve(None, None, NOW).unwrap();
        let activity = WindowActivity {
            deliveries: DeliveryCounts {
                pending: 2,
                ..DeliveryCounts::default()
            },
            ..WindowActivity::default()
        };
        let stats = WebhookStats::new(window, activity);
        assert_eq!(stats.deliveries.total(), 2);
        assert_eq!((stats.success_rate, stats.latency), (None, None));
        assert_eq!(stats.attempts, 0);
    }
}
