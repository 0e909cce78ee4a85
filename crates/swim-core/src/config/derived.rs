//! Go's formulas that derive timing and fan-out from the configuration and
//! the cluster's size. They live here once: the protocol runs on them, and
//! the simulator derives its bounds from them.
//!
//! `n` is always the number of members in the table, in any state (Go's
//! `estNumNodes`).

use core::time::Duration;

use super::Config;

impl Config {
    /// How many times each broadcast is sent in a cluster of `n` members:
    /// `retransmit_mult × ceil(log10(n + 1))` (Go's `retransmitLimit`).
    pub fn retransmit_limit(&self, n: usize) -> usize {
        retransmit_limit(self.retransmit_mult, n)
    }

    /// The timeouts of a suspicion raised in a cluster of `n` members
    /// (Go's `suspicionTimeout` and Lifeguard's confirmations).
    pub fn suspicion_timeouts(&self, n: usize) -> SuspicionTimeouts {
        suspicion_timeouts(
            self.suspicion_mult,
            self.suspicion_max_timeout_mult,
            n,
            self.probe_interval,
        )
    }

    /// The interval of periodic push/pulls in a cluster of `n` members:
    /// [`push_pull_interval`](Self::push_pull_interval), one more time for
    /// every doubling beyond 32 members (Go's `pushPullScale`).
    pub fn push_pull_interval_at(&self, n: usize) -> Duration {
        push_pull_scale(self.push_pull_interval, n)
    }
}

/// How long a suspicion lasts before the suspect is declared dead
/// ([`Config::suspicion_timeouts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuspicionTimeouts {
    /// Independent confirmations that bring the timeout down to `min`
    /// (0 in clusters too small to provide them).
    pub confirmations: u32,
    /// The timeout once every confirmation has arrived:
    /// `suspicion_mult × max(1, log10(n)) × probe_interval`.
    pub min: Duration,
    /// The timeout without confirmations: `suspicion_max_timeout_mult × min`.
    pub max: Duration,
}

/// `mult × ceil(log10(n + 1))`: how many times each broadcast is sent in a cluster of `n` nodes.
///
/// `ceil(log10(n + 1))` is the number of decimal digits of `n` (0 for 0). Go computes it with
/// floats; that agrees with the digit count for every n up to 10^8 (checked exhaustively against
/// Go 1.19), and integer math cannot round differently on another platform.
pub(crate) fn retransmit_limit(mult: usize, n: usize) -> usize {
    let mut digits = 0usize;
    let mut rest = n;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    // Go's int multiplication would wrap; saturating is the sane reading of a huge multiplier.
    mult.saturating_mul(digits)
}

/// The timeouts of a new suspicion in a table of `n` nodes (docs/protocol.md §9.5).
///
/// k = suspicion_mult − 2 (the accuser and the suspect cannot confirm), or 0 if fewer than k
/// other nodes exist to confirm; min = suspicion_mult × max(1, log10(max(1, n))) ×
/// probe_interval with the scale truncated to thousandths, exactly as Go's integer nanosecond
/// math; max = max_timeout_mult × min. Where Go's int64 would overflow, this saturates.
pub(crate) fn suspicion_timeouts(
    suspicion_mult: u32,
    max_timeout_mult: u32,
    n: usize,
    probe_interval: Duration,
) -> SuspicionTimeouts {
    // Go's signed `k := mult - 2; if n-2 < k { k = 0 }`; a negative k behaves like 0 there.
    let mut k = suspicion_mult.saturating_sub(2);
    let others = n.saturating_sub(2);
    if n < 2 || others < usize::try_from(k).unwrap_or(usize::MAX) {
        k = 0;
    }

    // `libm::log10` agrees with Go's `math.Log10` after this truncation for every n up to 10^7
    // (checked exhaustively against Go 1.19); usize → f64 rounding only matters beyond 2^53.
    let scale = libm::log10((n as f64).max(1.0)).max(1.0);
    // Truncation toward zero like Go's `time.Duration(nodeScale * 1000)`; `as` saturates.
    let scale_milli = (scale * 1000.0) as u128;
    // Go: `time.Duration(mult) * time.Duration(scale_milli) * interval / 1000`, left to right.
    let min_nanos = u128::from(suspicion_mult)
        .saturating_mul(scale_milli)
        .saturating_mul(probe_interval.as_nanos())
        / 1000;
    let max_nanos = u128::from(max_timeout_mult).saturating_mul(min_nanos);
    SuspicionTimeouts {
        confirmations: k,
        min: duration_from_nanos(min_nanos),
        max: duration_from_nanos(max_nanos),
    }
}

/// A duration of `nanos` nanoseconds, saturating at `Duration::MAX`.
fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder is below 10^9, so it fits a u32 and `Duration::new` cannot carry over.
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// Go's `pushPullScale`: slower anti-entropy in big clusters.
fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    const THRESHOLD: usize = 32;
    if n <= THRESHOLD {
        return interval;
    }
    let mult = libm::ceil(libm::log2(n as f64) - libm::log2(THRESHOLD as f64)) as u32 + 1;
    interval.saturating_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn secs(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn retransmit_limit_matches_table() {
        let cases = [
            (0, 0),
            (1, 4),
            (9, 4),
            (10, 8),
            (99, 8),
            (100, 12),
            (999, 12),
            (1000, 16),
            (9999, 16),
            (10_000, 20),
            (9_999_999, 28),
            (10_000_000, 32),
        ];
        for (n, want) in cases {
            assert_eq!(retransmit_limit(4, n), want, "n = {n}");
        }
        assert_eq!(retransmit_limit(3, 10), 6);
        assert_eq!(retransmit_limit(1, 10), 2);
        assert_eq!(retransmit_limit(0, 1000), 0);
        assert_eq!(retransmit_limit(usize::MAX, usize::MAX), usize::MAX);
    }

    #[test]
    fn params_match_wire_examples() {
        // LAN: suspicion mult 4, max timeout mult 6, probe interval 1 s.
        let lan = |n| suspicion_timeouts(4, 6, n, secs(1));
        for n in 0..=10 {
            let SuspicionTimeouts { min, max, .. } = lan(n);
            assert_eq!(min, secs(4), "n = {n}");
            assert_eq!(max, secs(24), "n = {n}");
        }
        assert_eq!(lan(50).min, ms(6_792));
        assert_eq!(lan(100).min, secs(8));
        assert_eq!(lan(1000).min, secs(12));
        for n in [50, 100, 1000, 12_345] {
            let SuspicionTimeouts { min, max, .. } = lan(n);
            assert_eq!(max, min * 6, "n = {n}");
        }
        // WAN: suspicion mult 6, probe interval 5 s.
        for n in 0..=10 {
            assert_eq!(
                suspicion_timeouts(6, 6, n, secs(5)).min,
                secs(30),
                "n = {n}"
            );
        }
    }

    #[test]
    fn params_k() {
        assert_eq!(suspicion_timeouts(4, 6, 5, secs(1)).confirmations, 2);
        assert_eq!(suspicion_timeouts(4, 6, 4, secs(1)).confirmations, 2);
        assert_eq!(suspicion_timeouts(4, 6, 3, secs(1)).confirmations, 0);
        for n in 0..3 {
            assert_eq!(
                suspicion_timeouts(4, 6, n, secs(1)).confirmations,
                0,
                "n = {n}"
            );
        }
        // Multipliers below 2 give a non-positive k in Go, which acts as 0.
        for mult in 0..2 {
            for n in [0, 1, 2, 100] {
                assert_eq!(suspicion_timeouts(mult, 6, n, secs(1)).confirmations, 0);
            }
        }
        assert_eq!(suspicion_timeouts(6, 6, 100, secs(5)).confirmations, 4);
    }

    #[test]
    fn params_saturate() {
        let SuspicionTimeouts {
            confirmations: k,
            min,
            max,
        } = suspicion_timeouts(u32::MAX, u32::MAX, usize::MAX, Duration::MAX);
        assert_eq!(k, u32::MAX - 2);
        assert_eq!(min, Duration::MAX);
        assert_eq!(max, Duration::MAX);
        let SuspicionTimeouts { min, max, .. } = suspicion_timeouts(4, 6, 10, Duration::ZERO);
        assert_eq!((min, max), (Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn push_pull_scale_matches_go() {
        let s = Duration::from_secs(30);
        assert_eq!(push_pull_scale(s, 32), s);
        assert_eq!(push_pull_scale(s, 33), s * 2);
        assert_eq!(push_pull_scale(s, 64), s * 2);
        assert_eq!(push_pull_scale(s, 65), s * 3);
        assert_eq!(push_pull_scale(s, 256), s * 4);
        assert_eq!(push_pull_scale(s, 1000), s * 6);
    }
}
