//! The retry schedule: how long a delivery waits after each failed attempt,
//! and when it has had its last one.

use std::time::Duration;

use rand::Rng;

/// When to try again after a failed attempt: entry *n* of the schedule is
/// the wait after the *n*-th failure; after the last, the delivery is
/// `failed`. The service reads its schedule from `delivery.retry_schedule`.
///
/// ```
/// use std::time::Duration;
/// use webhooks_domain::RetryPolicy;
/// let policy = RetryPolicy::new(vec![Duration::from_secs(5), Duration::from_secs(300)]);
/// assert_eq!(policy.max_attempts(), 3);
/// let wait = policy.wait_after(1, None).unwrap();
/// assert!(wait >= Duration::from_secs(4) && wait <= Duration::from_secs(6));
/// assert_eq!(policy.wait_after(3, None), None); // schedule exhausted: failed
///
/// // A receiver's `Retry-After` (on 429 or 503) may ask for longer.
/// let exact = RetryPolicy::exact(vec![Duration::from_secs(60)]);
/// let asked = Some(Duration::from_secs(90));
/// assert_eq!(exact.wait_after(1, asked), Some(Duration::from_secs(90)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
    jitter: f64,
}

impl RetryPolicy {
    /// The waits between attempts, with ±20 % jitter.
    pub fn new(schedule: Vec<Duration>) -> Self {
        Self {
            schedule,
            jitter: 0.2,
        }
    }

    /// Without jitter, for tests that pin times.
    pub fn exact(schedule: Vec<Duration>) -> Self {
        Self {
            schedule,
            jitter: 0.0,
        }
    }

    /// The wait after the `attempts_made`-th failure, or `None` when the
    /// schedule is exhausted. A receiver's `Retry-After` may lengthen the
    /// wait up to twice the scheduled one, never shorten it.
    pub fn wait_after(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        let scheduled = *self.schedule.get(index)?;
        let factor = if self.jitter > 0.0 {
            rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter))
        } else {
            1.0
        };
        let jittered = scheduled.mul_f64(factor);
        Some(match retry_after {
            Some(asked) => jittered.max(asked.min(scheduled * 2)),
            None => jittered,
        })
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> usize {
        self.schedule.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_lengthens_up_to_twice_the_schedule_and_never_shortens() {
        let policy = RetryPolicy::exact(vec![Duration::from_secs(10)]);
        let asked = |secs| policy.wait_after(1, Some(Duration::from_secs(secs)));
        assert_eq!(asked(15), Some(Duration::from_secs(15)));
        assert_eq!(asked(3600), Some(Duration::from_secs(20)));
        assert_eq!(asked(1), Some(Duration::from_secs(10)));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(100); 3]);
        for attempt in 1..=3 {
            let wait = policy.wait_after(attempt, None).unwrap();
            assert!(wait >= Duration::from_secs(80) && wait <= Duration::from_secs(120));
        }
        assert_eq!(policy.wait_after(4, None), None);
        assert_eq!(policy.wait_after(0, None), None);
        assert_eq!(policy.max_attempts(), 4);
    }
}
