//! Per-node clocks: each node's application reads its own clock — an
//! offset, a drift and jumps drawn from the run's seed — and its timers run
//! on it, so clock skew, drift and jumps can be tested.
//!
//! A node has two clocks, as a real machine does: [`NodeContext::now`]
//! reads its wall clock (offset, drift and jumps, never below zero);
//! [`NodeContext::set_timer`] waits on its monotonic clock (drift only, as
//! a timer on a real machine does). The protocol itself keeps the true
//! time: its timeouts are durations, which only drift would change.
//!
//! [`NodeContext::now`]: crate::NodeContext::now
//! [`NodeContext::set_timer`]: crate::NodeContext::set_timer

use std::time::Duration;

use crate::rng::{derive, SimRng};
use crate::time::nanos;

/// How far the nodes' clocks stray: each node draws its own from the seed
/// (its own random stream: the run's other draws stay as they were).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clocks {
    /// Each wall clock is ahead of the true time by up to this much.
    pub max_offset: Duration,
    /// Each clock runs fast or slow by up to this many parts per million.
    pub max_drift_ppm: u32,
    /// How many times each wall clock jumps during the run.
    pub jumps: u32,
    /// The largest jump, forward or back.
    pub max_jump: Duration,
}

impl Default for Clocks {
    /// NTP-disciplined machines: 50 ms apart, 100 ppm, no jumps.
    fn default() -> Self {
        Clocks {
            max_offset: Duration::from_millis(50),
            max_drift_ppm: 100,
            jumps: 0,
            max_jump: Duration::from_secs(1),
        }
    }
}

/// One node's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Clock {
    offset: u64,
    /// Parts per million fast (positive) or slow.
    drift_ppm: i64,
    /// (when, by how much), in time order.
    jumps: Vec<(u64, i64)>,
}

/// The random stream clocks are drawn from.
const STREAM: u64 = 0x0043_4c4f_434b;

impl Clock {
    /// Node `i`'s clock in a run of `seed` lasting `duration` ns.
    pub(crate) fn draw(c: &Clocks, seed: u64, i: usize, duration: u64) -> Clock {
        let mut r = SimRng::new(derive(seed, STREAM, i as u64));
        let offset = r.below(nanos(c.max_offset) + 1);
        let span = 2 * u64::from(c.max_drift_ppm) + 1;
        let drift_ppm = r.below(span) as i64 - i64::from(c.max_drift_ppm);
        let max_jump = nanos(c.max_jump).min(i64::MAX as u64 / 2);
        let mut jumps: Vec<(u64, i64)> = (0..c.jumps)
            .map(|_| {
                let at = r.below(duration.max(1));
                let by = r.below(2 * max_jump + 1) as i64 - max_jump as i64;
                (at, by)
            })
            .collect();
        jumps.sort_unstable();
        Clock {
            offset,
            drift_ppm,
            jumps,
        }
    }

    /// The wall clock at true time `t`.
    pub(crate) fn wall(&self, t: u64) -> u64 {
        let mut w = i128::from(t) + i128::from(self.offset) + self.drift(t);
        for &(at, by) in &self.jumps {
            if at > t {
                break;
            }
            w += i128::from(by);
        }
        w.clamp(0, i128::from(u64::MAX)) as u64
    }

    fn drift(&self, t: u64) -> i128 {
        i128::from(t) * i128::from(self.drift_ppm) / 1_000_000
    }

    /// The true time a timer of `delay` on the monotonic clock takes.
    pub(crate) fn true_delay(&self, delay: u64) -> u64 {
        let d = i128::from(delay) * 1_000_000 / (1_000_000 + i128::from(self.drift_ppm));
        d.clamp(0, i128::from(u64::MAX)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_skews_drifts_and_jumps() {
        let c = Clock {
            offset: 5,
            drift_ppm: 1_000,
            jumps: vec![(2_000_000, -3_000_000)],
        };
        assert_eq!(c.wall(0), 5);
        assert_eq!(c.wall(1_000_000), 1_001_005);
        assert_eq!(c.wall(2_000_000), 0, "jumped back, never below zero");
        assert_eq!(
            c.true_delay(1_001_000),
            1_000_000,
            "a fast clock's timer is early"
        );
        let same = |i| Clock::draw(&Clocks::default(), 7, i, 1_000_000_000);
        assert_eq!(same(3), same(3));
        assert_ne!(same(3), same(4));
    }
}
