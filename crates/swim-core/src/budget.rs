//! A rate budget: at most `count` events per `period`, a whole period's
//! worth at once (a generic cell rate algorithm, one number of state).

use core::time::Duration;

use crate::time::{nanos, Instant};

/// When the budget is next whole again, as the algorithm's theoretical
/// arrival time.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    tat: u64,
}

impl Budget {
    /// Takes one event from a budget of `count` per `period`, if there is
    /// one; `count = 0` never allows any.
    pub(crate) fn take(&mut self, now: Instant, count: u32, period: Duration) -> bool {
        let Some(interval) = spacing(count, period) else {
            return false;
        };
        if now < self.ready_at(count, period) {
            return false;
        }
        self.tat = self.tat.max(now.as_nanos()).saturating_add(interval);
        true
    }

    /// When [`take`](Self::take) will next allow an event (`Instant::MAX`
    /// if never).
    pub(crate) fn ready_at(&self, count: u32, period: Duration) -> Instant {
        self.ready_for(1, count, period)
    }

    /// Whether an event taken now would leave `keep` more to take at once.
    pub(crate) fn spares(&self, now: Instant, keep: u32, count: u32, period: Duration) -> bool {
        now >= self.ready_for(keep.saturating_add(1), count, period)
    }

    /// When `events` could be taken at once (`Instant::MAX` if never).
    fn ready_for(&self, events: u32, count: u32, period: Duration) -> Instant {
        match spacing(count, period).filter(|_| events <= count) {
            Some(interval) => {
                let burst = interval.saturating_mul(u64::from(count - events));
                Instant::from_nanos(self.tat.saturating_sub(burst))
            }
            None => Instant::MAX,
        }
    }
}

/// Nanoseconds between events at `count` per `period`; `None` for none.
fn spacing(count: u32, period: Duration) -> Option<u64> {
    (count > 0).then(|| nanos(period) / u64::from(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_period_at_once_then_one_per_interval() {
        let mut b = Budget::default();
        let t = Instant::ZERO + Duration::from_secs(100);
        let second = Duration::from_secs(1);
        assert_eq!((0..20).filter(|_| b.take(t, 10, second)).count(), 10);
        assert_eq!(b.ready_at(10, second), t + Duration::from_millis(100));
        let t = t + Duration::from_millis(250);
        assert_eq!((0..20).filter(|_| b.take(t, 10, second)).count(), 2);
        assert!(b.ready_at(10, second) > t);
        let t = t + Duration::from_secs(60);
        assert!(b.ready_at(10, second) <= t);
        assert_eq!((0..20).filter(|_| b.take(t, 10, second)).count(), 10);
        assert!(!Budget::default().take(t, 0, second));
        assert_eq!(Budget::default().ready_at(0, second), Instant::MAX);
    }

    #[test]
    fn spares_says_whether_a_take_leaves_enough() {
        let mut b = Budget::default();
        let minute = Duration::from_secs(60);
        let t = Instant::ZERO + Duration::from_secs(100);
        // Six a minute, all there: a take leaves five.
        assert!(b.spares(t, 5, 6, minute));
        assert!(!b.spares(t, 6, 6, minute));
        for _ in 0..3 {
            assert!(b.take(t, 6, minute));
        }
        // Three left: one taken leaves two, not three.
        assert!(b.spares(t, 2, 6, minute));
        assert!(!b.spares(t, 3, 6, minute));
        // Ten seconds refill one.
        assert!(b.spares(t + Duration::from_secs(10), 3, 6, minute));
        assert!(!Budget::default().spares(t, 0, 0, minute));
    }
}
