//! Simulated time: nanoseconds since the run's start.

use std::time::Duration;

/// `d` in nanoseconds, saturating (about 584 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `ns` nanoseconds in seconds.
pub(crate) fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}
