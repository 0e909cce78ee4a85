//! What an adapter provides besides sockets: the timers, clock and executor
//! of one async runtime.

use std::future::Future;
use std::time::Instant;

/// An async runtime as a node needs it: timers, a clock, an executor for
/// tasks and one for blocking work. Nothing here moves bytes: that is a
/// [`Transport`](crate::Transport)'s job (whose sockets, for the transports
/// of this crate, come from [`Sockets`](crate::Sockets)).
///
/// An adapter crate implements this for its runtime; everything else — the
/// loop that owns the [`Swim`](swim_core::Swim) value, stream framing,
/// deadlines, the handle — is written once, in this crate.
pub trait Runtime: Send + Sync + 'static {
    /// A timer that fires once at its deadline. Dropping it cancels it.
    type Timer: Future<Output = ()> + Unpin + Send + 'static;

    /// A timer firing at `deadline`.
    fn timer_at(deadline: Instant) -> Self::Timer;

    /// Moves `timer` to fire at `deadline` instead. The node moves its one
    /// timer a few times a probe; a runtime that can move a timer in place
    /// saves making a new one each time.
    fn reset_timer(timer: &mut Self::Timer, deadline: Instant) {
        *timer = Self::timer_at(deadline);
    }

    /// The runtime's present time (its clock drives the node's, so a
    /// runtime with a simulated clock runs nodes on it).
    fn now() -> Instant {
        Instant::now()
    }

    /// Runs blocking `work` (name resolution) off the executor's threads.
    fn unblock<T: Send + 'static>(
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send;

    /// Runs `task` to completion in the background (a node's driver, a
    /// transport's connections).
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
}
