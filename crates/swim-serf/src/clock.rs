//! Lamport clocks, as Go Serf keeps them (`lamport.go`).

use core::fmt;

/// A point on a Lamport clock (Go's `LamportTime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LamportTime(pub u64);

impl fmt::Display for LamportTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A Lamport clock (Go's `LamportClock`). Serf keeps three: members,
/// events, queries.
#[derive(Debug, Clone, Default)]
pub struct LamportClock {
    counter: u64,
}

impl LamportClock {
    /// A clock at zero.
    pub fn new() -> Self {
        LamportClock::default()
    }

    /// The current time.
    pub fn time(&self) -> LamportTime {
        LamportTime(self.counter)
    }

    /// Advances the clock by one and returns the new time.
    pub fn increment(&mut self) -> LamportTime {
        self.counter = self.counter.wrapping_add(1);
        self.time()
    }

    /// Takes in a time seen from another node: afterwards the clock is past
    /// it — at `seen + 1` when `seen` was not older than the clock (Go
    /// moves an equal clock too).
    pub fn witness(&mut self, seen: LamportTime) {
        if seen.0 >= self.counter {
            self.counter = seen.0.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_moves_one_past_a_newer_or_equal_time_and_ignores_an_older_one() {
        let mut c = LamportClock::new();
        c.witness(LamportTime(10));
        assert_eq!(c.time(), LamportTime(11));
        c.witness(LamportTime(11)); // equal: Go still moves one past it
        assert_eq!(c.time(), LamportTime(12));
        c.witness(LamportTime(3));
        assert_eq!(c.time(), LamportTime(12));
        assert_eq!(c.increment(), LamportTime(13));
    }
}
