//! Lifeguard suspicion: a timeout that shrinks as independent confirmations arrive.
//!
//! Go's `suspicion` (docs/protocol.md §9.5) runs a timer and re-arms it on each confirmation; here the
//! suspicion is a plain value with a deadline that the caller compares with its clock.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use core::time::Duration;

use crate::time::Instant;

/// A running suspicion of one node, expecting `k` independent confirmations.
#[derive(Debug, Clone)]
pub(crate) struct Suspicion {
    /// The node that raised the suspicion; its own message gossiped back must not count.
    accuser: Box<str>,
    /// Nodes whose confirmations were counted; never more than `k` (counting stops there).
    confirmed: BTreeSet<Box<str>>,
    /// Confirmations needed to drive the timeout down to `min`.
    k: u32,
    /// Shortest timeout, reached after `k` confirmations.
    min: Duration,
    /// Timeout with no confirmations (when `k >= 1`).
    max: Duration,
    /// When the suspicion started; every timeout is measured from here.
    start: Instant,
    /// When the suspicion expires.
    deadline: Instant,
}

impl Suspicion {
    /// Starts a suspicion raised by `from` (pre-registered, never counts as a confirmation),
    /// expecting `k` confirmations, with timeouts `min`..`max`, at `now`. Deadline = now + max if
    /// k >= 1, else now + min.
    pub(crate) fn new(from: &str, k: u32, min: Duration, max: Duration, now: Instant) -> Self {
        // With no confirmations to wait for, nothing could ever shorten `max`: use `min` at once.
        let timeout = if k >= 1 { max } else { min };
        Suspicion {
            accuser: Box::from(from),
            confirmed: BTreeSet::new(),
            k,
            min,
            max,
            start: now,
            deadline: now + timeout,
        }
    }

    /// When the suspicion expires.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Registers a confirmation from `from`. Returns true if it was new and counted: it is
    /// ignored once `k` confirmations are in, or if `from` is the accuser or already counted.
    /// A counted confirmation moves the deadline to `start + timeout(n)`, which may lie in the
    /// past (the caller then fires it at once).
    pub(crate) fn confirm(&mut self, from: &str) -> bool {
        if self.confirmations() >= self.k {
            return false;
        }
        if *self.accuser == *from || self.confirmed.contains(from) {
            return false;
        }
        self.confirmed.insert(Box::from(from));
        self.deadline = self.start + self.timeout(self.confirmations());
        true
    }

    /// Whether `who` raised the suspicion or confirmed it (while
    /// confirmations were still counted).
    pub(crate) fn raised_or_confirmed_by(&self, who: &str) -> bool {
        *self.accuser == *who || self.confirmed.contains(who)
    }

    /// Confirmations counted so far.
    pub(crate) fn confirmations(&self) -> u32 {
        // At most k (a u32) names are ever stored, so this never saturates.
        u32::try_from(self.confirmed.len()).unwrap_or(u32::MAX)
    }

    /// Total timeout after `n` confirmations (Go's `remainingSuspicionTime` before subtracting
    /// the elapsed time): `max(min, floor_ms(max − ln(n+1)/ln(k+1) × (max − min)))`.
    fn timeout(&self, n: u32) -> Duration {
        remaining_timeout(n, self.k, self.min, self.max)
    }
}

/// The Lifeguard timeout formula, in the same float steps as Go (`Duration.Seconds()` is
/// `secs + nanos / 1e9`, as is `as_secs_f64`; `libm::log` matches Go's `math.Log` bit for bit
/// on integers) so the millisecond floor lands on the same value.
fn remaining_timeout(n: u32, k: u32, min: Duration, max: Duration) -> Duration {
    let frac = libm::log(f64::from(n) + 1.0) / libm::log(f64::from(k) + 1.0);
    let max_s = max.as_secs_f64();
    let raw = max_s - frac * (max_s - min.as_secs_f64());
    let millis = libm::floor(1000.0 * raw);
    // NaN (k = 0, never reached by `confirm`) and negatives become 0 and then `min`; `as`
    // saturates huge values instead of panicking.
    let timeout = if millis > 0.0 {
        Duration::from_millis(millis as u64)
    } else {
        Duration::ZERO
    };
    timeout.max(min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::suspicion_timeouts;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn secs(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn at(d: Duration) -> Instant {
        Instant::from_duration(d)
    }

    #[test]
    fn remaining_time_table() {
        // Go's TestSuspicion_remainingSuspicionTime: (n, k, elapsed, min, max, remaining).
        // Negative remainders are expressed as a deadline before `now`.
        let cases: [(u32, u32, u64, i64); 6] = [
            (0, 3, 0, 30_000),
            (1, 3, 2_000, 14_000),
            (2, 3, 3_000, 4_810),
            (3, 3, 4_000, -2_000),
            (4, 3, 5_000, -3_000),
            (5, 3, 10_000, -8_000),
        ];
        for (n, k, elapsed, remaining) in cases {
            let total = remaining_timeout(n, k, secs(2), secs(30));
            let want = i64::try_from(elapsed).unwrap() + remaining;
            assert_eq!(total, ms(u64::try_from(want).unwrap()), "n = {n}, k = {k}");
        }
    }

    #[test]
    fn deadline_moves_with_confirmations() {
        // Go's TestSuspicion_Timer: k = 3, min 500 ms, max 2 s; the deadline is measured from
        // the start, whenever the confirmations arrive. (Go's test expects 810 ms within its
        // 25 ms slack; the formula gives floor(2000 − ln 3/ln 4 × 1500) = 811 ms.)
        let start = at(secs(100));
        /// Confirmations in arrival order, each with whether it should count.
        type Steps = &'static [(&'static str, bool)];
        let cases: [(Steps, u32, u64); 6] = [
            (&[], 0, 2_000),
            (&[("me", false), ("foo", true)], 1, 1_250),
            (
                &[("me", false), ("foo", true), ("foo", false), ("foo", false)],
                1,
                1_250,
            ),
            (&[("me", false), ("foo", true), ("bar", true)], 2, 811),
            (
                &[("me", false), ("foo", true), ("bar", true), ("baz", true)],
                3,
                500,
            ),
            (
                &[
                    ("me", false),
                    ("foo", true),
                    ("bar", true),
                    ("baz", true),
                    ("zoo", false),
                ],
                3,
                500,
            ),
        ];
        for (i, (confirmations, count, total)) in cases.into_iter().enumerate() {
            let mut s = Suspicion::new("me", 3, ms(500), secs(2), start);
            assert_eq!(s.deadline(), start + secs(2));
            for (from, new_info) in confirmations {
                assert_eq!(s.confirm(from), *new_info, "case {i}: {from}");
            }
            assert_eq!(s.confirmations(), count, "case {i}");
            assert_eq!(s.deadline(), start + ms(total), "case {i}");
            assert!(s.confirmed.len() <= 3);
        }
    }

    #[test]
    fn zero_k_uses_min_and_ignores_confirmations() {
        // Go's TestSuspicion_Timer_ZeroK.
        let start = at(secs(1));
        let mut s = Suspicion::new("me", 0, ms(25), secs(30), start);
        assert_eq!(s.deadline(), start + ms(25));
        assert!(!s.confirm("foo"));
        assert_eq!(s.confirmations(), 0);
        assert_eq!(s.deadline(), start + ms(25));
        assert!(s.confirmed.is_empty());
    }

    #[test]
    fn late_confirmation_puts_deadline_in_the_past() {
        // Go's TestSuspicion_Timer_Immediate: k = 1, min 100 ms, confirmed after 200 ms.
        let start = at(secs(1));
        let mut s = Suspicion::new("me", 1, ms(100), secs(30), start);
        assert!(s.confirm("foo"));
        let now = start + ms(200);
        assert_eq!(s.deadline(), start + ms(100));
        assert!(s.deadline() <= now, "the caller fires it at once");
        assert!(!s.confirm("bar"), "no confirmations beyond k");
    }

    #[test]
    fn accuser_never_counts() {
        let mut s = Suspicion::new("accuser", 2, secs(4), secs(24), Instant::ZERO);
        assert!(!s.confirm("accuser"));
        assert!(!s.confirm("accuser"));
        assert_eq!(s.confirmations(), 0);
        assert_eq!(s.deadline(), at(secs(24)));
        assert!(s.confirm("other"));
        assert!(!s.confirm("accuser"));
        assert_eq!(s.confirmations(), 1);
    }

    #[test]
    fn deadline_saturates() {
        let mut s = Suspicion::new("a", 2, Duration::MAX, Duration::MAX, Instant::MAX);
        assert_eq!(s.deadline(), Instant::MAX);
        assert!(s.confirm("b"));
        assert_eq!(s.deadline(), Instant::MAX);
        // max < min (a nonsensical configuration) still yields at least min.
        let mut s = Suspicion::new("a", 2, secs(5), secs(1), Instant::ZERO);
        assert_eq!(s.deadline(), at(secs(1)));
        assert!(s.confirm("b"));
        assert_eq!(s.deadline(), at(secs(5)));
    }

    #[test]
    fn lan_five_nodes_walkthrough() {
        let t = suspicion_timeouts(4, 6, 5, secs(1));
        let (k, min, max) = (t.confirmations, t.min, t.max);
        assert_eq!((k, min, max), (2, secs(4), secs(24)));
        let start = at(secs(7));
        let mut s = Suspicion::new("accuser", k, min, max, start);
        assert_eq!(s.deadline(), start + secs(24));
        assert!(s.confirm("b"));
        assert_eq!(s.deadline(), start + ms(11_381));
        assert!(s.confirm("c"));
        assert_eq!(s.deadline(), start + secs(4));
        assert!(!s.confirm("d"));
        assert_eq!(s.confirmations(), 2);
    }

    #[test]
    fn lan_three_nodes_has_no_confirmations() {
        let t = suspicion_timeouts(4, 6, 3, secs(1));
        let (k, min, max) = (t.confirmations, t.min, t.max);
        assert_eq!(k, 0);
        let s = Suspicion::new("accuser", k, min, max, Instant::ZERO);
        assert_eq!(s.deadline(), at(secs(4)));
    }
}
