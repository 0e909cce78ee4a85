//! One timer table: every deadline the node keeps, the gossip tick included,
//! and [`Swim::handle_timeout`], which runs what is due.

use alloc::collections::BinaryHeap;
use alloc::sync::Arc;
use core::cmp::{Ordering, Reverse};
use core::net::SocketAddr;

use super::catch_up::{CatchUpTimer, Happened};
use super::{ExchangeId, JoinId, Swim};
use crate::delegate::Delegate;
use crate::time::{nanos, Instant};

/// A deadline the node set itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Timer {
    /// Start the next probe.
    ProbeTick,
    /// The direct ack did not come within the probe timeout.
    ProbeIndirect(u32),
    /// The probe's (awareness-scaled) deadline.
    ProbeDeadline(u32),
    /// A relay or user-ping ack handler expires.
    AckExpiry(u32),
    /// A suspicion may have run out, or its last probe be due.
    Suspicion(Arc<str>),
    /// The random initial stagger of periodic push/pulls is over; the first waits a whole
    /// interval more (as Go's `pushPullTrigger` does).
    PushPullStaggered,
    /// A periodic push/pull is due.
    PushPullTick,
    /// One of catch-up's deadlines.
    CatchUp(CatchUpTimer),
    /// A leave gave up waiting for its broadcast.
    LeaveTimeout,
    /// A stream exchange ran out of time.
    ExchangeDeadline(ExchangeId),
    /// A checked join asks its seed again whether it took us in.
    ConfirmJoin {
        to: SocketAddr,
        id: JoinId,
        attempt: u8,
    },
}

#[derive(Debug, Clone)]
struct Scheduled {
    at: Instant,
    seq: u64,
    timer: Timer,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The schedule: timers in order of deadline (then of setting), and the gossip tick.
#[derive(Debug)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    /// The next gossip tick. It is not in `heap`: a tick with nothing to
    /// send does nothing, so it is only a deadline while broadcasts wait,
    /// and an idle node is not woken every gossip interval.
    gossip: Option<Instant>,
}

impl Timers {
    pub(super) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
            gossip: None,
        }
    }

    pub(super) fn schedule(&mut self, at: Instant, timer: Timer) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            timer,
        }));
    }

    /// The earliest timer's deadline.
    fn first(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(s)| s.at)
    }

    fn pop(&mut self) -> Option<Timer> {
        self.heap.pop().map(|Reverse(s)| s.timer)
    }

    /// Drops timers from the top of the schedule while `stale` says they
    /// would do nothing.
    fn drop_stale(&mut self, stale: impl Fn(&Timer) -> bool) {
        while let Some(Reverse(s)) = self.heap.peek() {
            if !stale(&s.timer) {
                break;
            }
            self.heap.pop();
        }
    }

    pub(super) fn set_gossip_tick(&mut self, at: Instant) {
        self.gossip = Some(at);
    }

    /// Moves the gossip tick along its grid of `interval` to the first point
    /// after `until`.
    fn skip_gossip_past(&mut self, until: Instant, interval: core::time::Duration) {
        let Some(next) = self.gossip.filter(|&g| g <= until) else {
            return;
        };
        let interval = nanos(interval).max(1);
        let steps = (until.as_nanos() - next.as_nanos()) / interval + 1;
        self.gossip = Some(Instant::from_nanos(
            next.as_nanos()
                .saturating_add(steps.saturating_mul(interval)),
        ));
    }
}

impl<D: Delegate> Swim<D> {
    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.first();
        match self.gossip_due_at() {
            Some(g) => Some(timer.map_or(g, |t| t.min(g))),
            None => timer,
        }
    }

    /// Runs everything due at or before `now`, in order of deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.input(now, |s| s.run_due(now));
    }

    fn run_due(&mut self, now: Instant) {
        loop {
            let timer = self.timers.first().filter(|&t| t <= now);
            let gossip = self.timers.gossip.filter(|&g| g <= now);
            match (timer, gossip) {
                (_, Some(g)) if timer.is_none_or(|t| g < t) => {
                    if self.gossip_due_at().is_some() {
                        self.timers
                            .set_gossip_tick(now + self.config.gossip_interval);
                        self.gossip(now);
                    } else {
                        self.skip_idle_gossip(now);
                    }
                }
                (Some(_), _) => {
                    let Some(timer) = self.timers.pop() else {
                        break;
                    };
                    self.fire(now, timer);
                }
                _ => break,
            }
        }
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::ProbeTick => self.probe_tick(now),
            Timer::ProbeIndirect(seq) => self.probe_indirect(now, seq),
            Timer::ProbeDeadline(seq) => self.probe_deadline(now, seq),
            Timer::AckExpiry(seq) => self.ack_expired(seq),
            Timer::Suspicion(node) => self.suspicion_due(now, &node),
            Timer::PushPullStaggered => self.push_pull_tick(now, false),
            Timer::PushPullTick => self.push_pull_tick(now, true),
            Timer::CatchUp(t) => self.catch_up_on(now, Happened::Due(t)),
            Timer::LeaveTimeout => self.leave_timed_out(),
            Timer::ExchangeDeadline(id) => self.exchange_timed_out(now, id),
            Timer::ConfirmJoin { to, id, attempt } => self.confirm_join(now, to, id, attempt),
        }
    }

    /// When the next gossip tick must run: only while broadcasts wait.
    pub(super) fn gossip_due_at(&self) -> Option<Instant> {
        let waiting = self.gossip.is_waiting() || self.delegate.has_broadcasts();
        self.timers
            .gossip
            .filter(|_| waiting && !self.leave.has_left())
    }

    /// Passes the gossip ticks up to `now` that would have had nothing to
    /// send, stopping at the first timer due by then (it may queue something
    /// for the tick after it).
    pub(super) fn skip_idle_gossip(&mut self, now: Instant) {
        let Some(tick) = self.timers.gossip.filter(|&g| g <= now) else {
            return;
        };
        let due_timer = self.timers.first().filter(|&t| t <= now);
        if due_timer.is_some_and(|t| tick >= t) || self.gossip_due_at().is_some() {
            return;
        }
        let interval = self.config.gossip_interval;
        self.timers
            .skip_gossip_past(due_timer.unwrap_or(now), interval);
    }

    /// Drops timers of finished probes, relays and exchanges from the top of
    /// the schedule.
    pub(super) fn drop_stale_timers(&mut self) {
        let (probing, exchanges) = (&self.probing, &self.exchanges);
        self.timers.drop_stale(|timer| match timer {
            Timer::ProbeIndirect(seq) | Timer::ProbeDeadline(seq) => !probing.is_current(*seq),
            Timer::AckExpiry(seq) => !probing.awaits_ack(*seq),
            Timer::ExchangeDeadline(id) => !exchanges.is_open(*id),
            _ => false,
        });
    }
}
