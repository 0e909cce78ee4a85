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
        match spacing(count, period) {
            Some(interval) => {
                let burst = interval.saturating_mul(u64::from(count) - 1);
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
}
