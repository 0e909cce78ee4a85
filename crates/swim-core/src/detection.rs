//! How fast a failure was detected: the figures the simulator (`swim-sim`)
//! and the chaos bed (`swim-chaos`) both report, defined here once.
//!
//! A measurement feeds a [`Detection`] what the observers of one failed
//! node did — held it suspect, declared it dead — and reads the figures
//! back. Which observers count, and how their views are seen, is the
//! measurement's: the simulator sees every record change of every live
//! node the instant it happens; the bed sees `failed` events as they are
//! printed and suspicions only in the members list it polls. Each report
//! says so beside its figures.

/// The detection figures of one failure, as times on the caller's clock
/// (any ordered time: nanoseconds, milliseconds…); subtract the failure's
/// own time to report them.
///
/// ```
/// use swim_core::detection::Detection;
///
/// let mut d = Detection::default();
/// d.declared(7_000); // a poll missed the suspicion before it
/// d.suspected(8_000);
/// assert_eq!(d.first_suspect(), Some(7_000));
/// assert_eq!(d.first_dead(), Some(7_000));
/// assert_eq!(d.all_dead(), None);
/// d.all_declared(9_000);
/// assert_eq!(d.all_dead(), Some(9_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection<T> {
    suspected: Option<T>,
    declared: Option<T>,
    all_declared: Option<T>,
}

impl<T> Default for Detection<T> {
    fn default() -> Self {
        Detection {
            suspected: None,
            declared: None,
            all_declared: None,
        }
    }
}

impl<T: Ord + Copy> Detection<T> {
    /// An observer holds the failed node suspect at `at` (in any order: the
    /// earliest counts).
    pub fn suspected(&mut self, at: T) {
        self.suspected = Some(self.suspected.map_or(at, |t| t.min(at)));
    }

    /// An observer declares the failed node dead (or gone: a leave) at `at`
    /// (in any order: the earliest counts).
    pub fn declared(&mut self, at: T) {
        self.declared = Some(self.declared.map_or(at, |t| t.min(at)));
    }

    /// Every observer that counts has declared it, the last at `at`.
    pub fn all_declared(&mut self, at: T) {
        self.all_declared = Some(at);
    }

    /// **First suspicion**: the earliest time an observer held it suspect
    /// or declared it. A declaration counts because a suspicion always
    /// precedes it, however briefly: the first declarer's own, or one
    /// raised by a node the measurement does not see.
    pub fn first_suspect(&self) -> Option<T> {
        match (self.suspected, self.declared) {
            (Some(s), Some(d)) => Some(s.min(d)),
            (s, d) => s.or(d),
        }
    }

    /// **First declaration**: the earliest time an observer declared it.
    pub fn first_dead(&self) -> Option<T> {
        self.declared
    }

    /// **Last declaration**: when the last observer that counts declared
    /// it; `None` until every one has.
    pub fn all_dead(&self) -> Option<T> {
        self.all_declared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspicion_before_the_declaration_is_the_first() {
        let mut d = Detection::default();
        assert_eq!((d.first_suspect(), d.first_dead()), (None, None));
        d.suspected(3u64);
        d.suspected(5);
        d.declared(9);
        d.suspected(2);
        assert_eq!(d.first_suspect(), Some(2));
        assert_eq!(d.first_dead(), Some(9));
        d.declared(8);
        assert_eq!(d.first_dead(), Some(8));
    }

    #[test]
    fn a_declaration_alone_is_a_first_suspicion() {
        let mut d = Detection::default();
        d.declared(-4i64);
        assert_eq!(d.first_suspect(), Some(-4));
        assert_eq!(d.all_dead(), None);
    }
}
