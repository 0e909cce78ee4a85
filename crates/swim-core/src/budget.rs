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
        let count = u64::from(count);
        if count == 0 {
            return false;
        }
        let interval = nanos(period) / count;
        let burst = interval.saturating_mul(count - 1);
        let t = now.as_nanos();
        let tat = self.tat.max(t);
        if tat - t > burst {
            return false;
        }
        self.tat = tat.saturating_add(interval);
        true
    }

    /// When [`take`](Self::take) will next allow an event (`Instant::MAX`
    /// if never).
    pub(crate) fn ready_at(&self, count: u32, period: Duration) -> Instant {
        let count = u64::from(count);
        if count == 0 {
            return Instant::MAX;
        }
        let interval = nanos(period) / count;
        Instant::from_nanos(self.tat.saturating_sub(interval.saturating_mul(count - 1)))
    }
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
