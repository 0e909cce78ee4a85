//! A graceful departure (Go's `Leave`): the node declares itself left and
//! gossips it until the message has been sent its full number of times, or
//! a timeout passes; then it sends nothing more.

use alloc::sync::Arc;
use core::time::Duration;

use super::timers::Timer;
use super::Swim;
use crate::broadcast::Token;
use crate::delegate::Delegate;
use crate::event::Event;
use crate::members::Claim;
use crate::time::Instant;

/// Token of our own departure broadcast.
pub(super) const LEAVE_TOKEN: Token = 1;

/// Where the node is in leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leave {
    Staying,
    /// Our departure is being gossiped.
    Leaving,
    /// Done: the node gossips no more.
    Left,
}

impl Leave {
    pub(super) fn is_leaving(self) -> bool {
        self != Leave::Staying
    }

    pub(super) fn has_left(self) -> bool {
        self == Leave::Left
    }

    /// The token a death notice about `node` carries: ours while we leave,
    /// so its last send completes the leave.
    pub(super) fn token_for(self, node: &Arc<str>, local: &Arc<str>) -> Option<Token> {
        (**node == **local && self.is_leaving()).then_some(LEAVE_TOKEN)
    }
}

impl<D: Delegate> Swim<D> {
    /// Leaves the cluster: gossips our departure until it has been sent
    /// often enough, or `timeout` passed; then [`Event::LeaveCompleted`].
    /// The node keeps answering pings and streams, and probes no more.
    pub fn leave(&mut self, now: Instant, timeout: Duration) {
        self.input(now, |s| {
            if s.leave.is_leaving() {
                return;
            }
            s.leave = Leave::Leaving;
            let local = s.local_name();
            let incarnation = s.members.local().map_or(0, |r| r.incarnation);
            s.with_rules(now, |m, ctx| {
                m.dead(
                    Claim {
                        node: &local,
                        incarnation,
                        from: &local,
                    },
                    ctx,
                )
            });
            if s.leave == Leave::Leaving {
                if !s.members.any_other_alive() {
                    s.complete_leave(false);
                } else if !timeout.is_zero() {
                    s.timers.schedule(now + timeout, Timer::LeaveTimeout);
                }
            }
        });
    }

    /// Whether [`leave`](Self::leave) was called.
    pub fn is_leaving(&self) -> bool {
        self.leave.is_leaving()
    }

    /// Our departure left the queue: the leave is complete.
    pub(super) fn departure_gossiped(&mut self) {
        if self.leave == Leave::Leaving {
            self.complete_leave(false);
        }
    }

    pub(super) fn leave_timed_out(&mut self) {
        if self.leave == Leave::Leaving {
            self.complete_leave(true);
        }
    }

    /// After leaving the node gossips no more, so what is queued is dropped.
    fn complete_leave(&mut self, timed_out: bool) {
        self.leave = Leave::Left;
        self.gossip.clear(true);
        self.finished_broadcasts();
        self.emit(Event::LeaveCompleted { timed_out });
    }
}
