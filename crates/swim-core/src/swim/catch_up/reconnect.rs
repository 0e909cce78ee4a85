//! Reconnects: a push/pull, now and then, with a member declared dead, so
//! the two sides of a partition that outlasted the suspicion timeout come
//! back together (Go memberlist never talks to the dead again; Serf does).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::net::SocketAddr;

use super::CatchUpTimer;
use crate::delegate::Delegate;
use crate::swim::timers::Timer;
use crate::swim::Swim;
use crate::time::Instant;

/// Most failed members remembered for reconnects; the oldest are forgotten
/// first (any one that answers brings its side's view along).
const FAILED_MAX: usize = 1024;

/// A member declared dead, to try again.
#[derive(Debug)]
struct Failed {
    name: Arc<str>,
    addr: SocketAddr,
    since: Instant,
}

/// What reconnects remember.
#[derive(Debug, Default)]
pub(super) struct Reconnects {
    /// Members declared dead, oldest first.
    failed: VecDeque<Failed>,
    /// Whether a reconnect timer is scheduled.
    scheduled: bool,
}

impl<D: Delegate> Swim<D> {
    /// `name`, at `addr`, was declared dead: try it again later.
    pub(super) fn note_failed(&mut self, now: Instant, name: &Arc<str>, addr: SocketAddr) {
        let c = &self.config.catch_up;
        if !c.enabled() || c.reconnect_interval.is_zero() {
            return;
        }
        let r = &mut self.catch_up.reconnects;
        r.failed.retain(|f| f.name != *name);
        if r.failed.len() >= FAILED_MAX {
            r.failed.pop_front();
        }
        r.failed.push_back(Failed {
            name: name.clone(),
            addr,
            since: now,
        });
        if !r.scheduled {
            r.scheduled = true;
            self.timers.schedule(
                now + c.reconnect_interval,
                Timer::CatchUp(CatchUpTimer::Reconnect),
            );
        }
    }

    /// `name` is back, or left on purpose: no need to try it again.
    pub(super) fn forget_failed(&mut self, name: &str) {
        self.catch_up.reconnects.failed.retain(|f| &*f.name != name);
    }

    /// The reconnect timer: a push/pull with a random failed member, with
    /// probability `failed / alive`, so the cluster as a whole tries each
    /// about once per interval.
    pub(super) fn reconnect(&mut self, now: Instant) {
        self.catch_up.reconnects.scheduled = false;
        let c = &self.config.catch_up;
        let (interval, timeout) = (c.reconnect_interval, c.reconnect_timeout);
        let failed = &mut self.catch_up.reconnects.failed;
        failed.retain(|f| now.saturating_duration_since(f.since) < timeout);
        if failed.is_empty() {
            return;
        }
        self.catch_up.reconnects.scheduled = true;
        self.timers
            .schedule(now + interval, Timer::CatchUp(CatchUpTimer::Reconnect));
        let failed = self.catch_up.reconnects.failed.len();
        // Others than us, alive or suspect.
        let alive = self.members.counts().members().saturating_sub(1);
        if failed < alive && self.rng.below(alive) >= failed {
            return;
        }
        let pick = self.rng.below(failed);
        let to = self.catch_up.reconnects.failed[pick].addr;
        if self.start_catch_up(now, to) {
            self.stats.reconnects += 1;
        }
    }
}
