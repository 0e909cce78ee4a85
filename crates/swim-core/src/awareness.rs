//! Lifeguard local health awareness: a score that rises when this node
//! seems to be the slow one (missed nacks, refutations) and scales its
//! probe timing, so a struggling node accuses others less eagerly.

use core::time::Duration;

/// The local health score, `0..max` (0 is healthy).
#[derive(Debug, Clone)]
pub(crate) struct Awareness {
    max: u32,
    score: u32,
}

impl Awareness {
    /// A healthy node whose score can reach `max - 1`.
    pub(crate) fn new(max: u32) -> Self {
        Awareness { max, score: 0 }
    }

    /// Moves the score by `delta`, clamped to `0..max`.
    pub(crate) fn apply(&mut self, delta: i32) {
        let top = self.max.saturating_sub(1) as i64;
        self.score = (self.score as i64 + delta as i64).clamp(0, top) as u32;
    }

    /// The current score.
    pub(crate) fn score(&self) -> u32 {
        self.score
    }

    /// `timeout × (score + 1)`.
    pub(crate) fn scale(&self, timeout: Duration) -> Duration {
        timeout.saturating_mul(self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_clamped_and_scales_timeouts() {
        let mut a = Awareness::new(8);
        a.apply(-1);
        assert_eq!(a.score(), 0);
        a.apply(3);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(4));
        a.apply(100);
        assert_eq!(a.score(), 7);
        a.apply(-2);
        assert_eq!(a.score(), 5);
    }
}
