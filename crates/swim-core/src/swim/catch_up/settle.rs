//! The settle push/pull: once news of members stops, a push/pull with a
//! random member mends what gossip missed; a confirming one follows, or
//! another try if no full state came. In a small cluster (at most
//! [`cover`](crate::CatchUp::cover) members) it covers: a push/pull with
//! every alive member not pushed/pulled with since the news.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::CatchUpTimer;
use crate::delegate::Delegate;
use crate::member::MemberState;
use crate::swim::timers::Timer;
use crate::swim::Swim;
use crate::time::Instant;

/// How many `settle`s news may go on before a settle push/pull runs
/// anyway (and again), and how many after it a confirming one follows.
const SETTLE_ROUNDS: u32 = 4;
/// Catch-up push/pulls a push/pull while news goes on must leave in the
/// budget: the settle push/pull and its confirmation, once news stops.
const MEANWHILE_KEEPS: u32 = 2;
/// Most partners remembered for a cover (more than a small cluster has).
const COVER_MEMORY: usize = 32;

/// What the settle push/pull remembers.
#[derive(Debug, Default)]
pub(super) struct Settle {
    /// While news waits to settle: when it began (or a push/pull last ran
    /// for news that went on), and when the last came.
    news: Option<(Instant, Instant)>,
    /// When the last settle push/pull was tried and when its follow-up (a
    /// confirming push/pull, or another try) is due, while one is to come.
    settled: Option<(Instant, Instant)>,
    /// Settle push/pulls still to try, while none brought a full state.
    retries: u32,
    /// Whether a settle timer is scheduled.
    scheduled: bool,
    /// Whether the pending follow-up is that of a node not picked to
    /// settle: it settles then only if no full state reached it.
    unpicked: bool,
    /// When a push/pull last brought us a full state (a reply, or a
    /// non-join push/pull we answered) after our own rumours were all sent.
    synced: Option<Instant>,
    /// When a push/pull last brought us a full state, storm or not.
    merged: Option<Instant>,
    /// In a small cluster, the members our own push/pulls brought a full
    /// state from (so taught ours), and when, latest last.
    pushed: Vec<(SocketAddr, Instant)>,
    /// While a cover is under way: when the news it covers last came.
    cover_since: Option<Instant>,
}

impl<D: Delegate> Swim<D> {
    /// A member became known, or came back: news that may not have reached
    /// everyone. Once it settles, a push/pull catches up.
    pub(super) fn note_news(&mut self, now: Instant) {
        if !self.config.catch_up.enabled() {
            return;
        }
        let s = &mut self.catch_up.settle;
        let since = s.news.map_or(now, |(since, _)| since);
        s.news = Some((since, now));
        if !s.scheduled {
            s.scheduled = true;
            self.timers.schedule(
                now + self.config.catch_up.settle,
                Timer::CatchUp(CatchUpTimer::Settle),
            );
        }
    }

    /// A push/pull brought a full state: news before it needs no settle
    /// push/pull of ours. Only once our own rumours are all sent: while
    /// they are not, the storm goes on, and a full state is a snapshot
    /// others are still adding to (counting those let a node skip its
    /// settle push/pull, take a partner's stale view for the cluster's and
    /// miss a member for a minute and more, in about one 1,000-node
    /// bootstrap in five). Any full state ends the tries of a settle
    /// push/pull, though.
    pub(super) fn note_synced(&mut self, now: Instant, with: Option<SocketAddr>) {
        self.catch_up.settle.merged = Some(now);
        if self.gossip.membership_len() == 0 {
            self.catch_up.settle.synced = Some(now);
        }
        if let Some(to) = with.filter(|_| self.covers()) {
            let pushed = &mut self.catch_up.settle.pushed;
            pushed.retain(|(a, _)| *a != to);
            if pushed.len() >= COVER_MEMORY {
                pushed.remove(0);
            }
            pushed.push((to, now));
        }
    }

    /// Whether the cluster is small enough for the settle push/pull to
    /// cover every member (never with catch-up off: `cover` is zero).
    fn covers(&self) -> bool {
        self.config.catch_up.enabled()
            && self.members.counts().members() <= self.config.catch_up.cover
    }

    /// Alive members not pushed/pulled with since `since`, at most
    /// `cover` of them; suspects too while few are (one may only be slow,
    /// and a push/pull tells it to refute; many are a partition).
    fn uncovered(&self, since: Instant) -> Vec<SocketAddr> {
        let local = self.members.local_name();
        let pushed = &self.catch_up.settle.pushed;
        let suspects = self.few_suspects();
        self.members
            .records()
            .iter()
            .filter(|r| match r.state {
                MemberState::Alive => true,
                MemberState::Suspect => suspects,
                MemberState::Dead | MemberState::Left => false,
            })
            .filter(|r| r.name != *local)
            .filter_map(|r| r.socket_addr())
            .filter(|to| !pushed.iter().any(|(a, at)| a == to && *at >= since))
            .take(self.config.catch_up.cover)
            .collect()
    }

    /// A cover: a push/pull with every alive member not pushed/pulled with
    /// since the news of `since` (as far as the budget goes).
    fn cover(&mut self, now: Instant, since: Instant) {
        for to in self.uncovered(since) {
            if self.start_catch_up_from(now, to, true) {
                self.stats.cover_push_pulls += 1;
            }
        }
    }

    /// The settle timer: run the settle push/pull if the news has stopped,
    /// or wait for it to. News that goes on gets a push/pull meanwhile
    /// every `SETTLE_ROUNDS` settles: in a large storm on LAN, gossip
    /// trickles in for seconds while one push/pull brings it all, and a
    /// node that lags keeps hearing news until one does (with one
    /// meanwhile and no more, the slowest of 1,000 LAN nodes in the
    /// simulator learned its last 26 members one by one over 4.5 s). Only
    /// while the budget keeps `MEANWHILE_KEEPS` for the settle push/pull
    /// at the end and its confirmation: a storm of many seconds would
    /// spend them.
    pub(super) fn catch_up_settle(&mut self, now: Instant) {
        self.catch_up.settle.scheduled = false;
        let Some((since, last)) = self.catch_up.settle.news else {
            return;
        };
        let settle = self.config.catch_up.settle;
        let due = last + settle;
        if now < due {
            let mut meanwhile = since + settle * SETTLE_ROUNDS;
            if now >= meanwhile {
                self.catch_up.settle.news = Some((now, last));
                meanwhile = now + settle * SETTLE_ROUNDS;
                let spare = self.catch_up.push_pulls.spares(
                    now,
                    MEANWHILE_KEEPS,
                    self.config.catch_up.per_minute,
                    Duration::from_secs(60),
                );
                if spare && self.few_suspects() && self.picked_to_settle() {
                    self.catch_up_with_random_peer(now);
                }
            }
            let next = meanwhile.min(due);
            self.catch_up.settle.scheduled = true;
            self.timers
                .schedule(next, Timer::CatchUp(CatchUpTimer::Settle));
            return;
        }
        self.catch_up.settle.news = None;
        // In a small cluster, cover: a full state that came to us says we
        // are up to date, not that the others are.
        let cover = self.covers();
        self.catch_up.settle.cover_since = cover.then_some(last);
        // A full state that came once the news had settled (one that came
        // sooner is a snapshot of a storm still spreading).
        if !cover
            && self
                .catch_up
                .settle
                .synced
                .is_some_and(|synced| synced >= due)
        {
            return;
        }
        if self.picked_to_settle() {
            self.catch_up.settle.retries = SETTLE_ROUNDS;
            self.try_settle(now);
        } else if self.config.catch_up.settle_unreached {
            // The picked nodes' push/pulls reach some of the others (each
            // exchange is both ways), not all: above `nodes` members, about
            // a third of those not picked got no full state, and a member
            // their gossip missed stayed missing until the periodic
            // push/pull, a minute and more later.
            let due = now + settle * SETTLE_ROUNDS;
            self.catch_up.settle.settled = Some((now, due));
            self.catch_up.settle.unpicked = true;
            self.timers
                .schedule(due, Timer::CatchUp(CatchUpTimer::Confirm));
        }
    }

    /// A settle push/pull, and its follow-up: a confirming push/pull if
    /// a full state came by then, another try if none did (the push/pull
    /// failed, or the budget was spent: in a storm that starves the host,
    /// many time out).
    fn try_settle(&mut self, now: Instant) {
        match self.catch_up.settle.cover_since.filter(|_| self.covers()) {
            Some(since) => self.cover(now, since),
            None => {
                self.catch_up_with_random_peer(now);
            }
        }
        let due = now + self.config.catch_up.settle * SETTLE_ROUNDS;
        self.catch_up.settle.settled = Some((now, due));
        self.timers
            .schedule(due, Timer::CatchUp(CatchUpTimer::Confirm));
    }

    /// Whether this node is one of the about `nodes` of the cluster that
    /// push/pull after news, whatever the cluster's size.
    fn picked_to_settle(&mut self) -> bool {
        let members = self.members.counts().members();
        let nodes = self.config.catch_up.nodes;
        members <= nodes || self.rng.below(members) < nodes
    }

    /// The follow-up of a settle push/pull, or of a node not picked to run
    /// one: that node runs it now if no full state reached it meanwhile
    /// ([`CatchUp::settle_unreached`](crate::CatchUp::settle_unreached)). If a full state came since, the
    /// confirming push/pull: the partner of that one may have lacked what
    /// we lack (a member whose rumour was still spreading, say), and
    /// nothing else would tell us. If none came, the settle push/pull
    /// again (`SETTLE_ROUNDS` times at most). After a cover, the members
    /// it missed again, if any (none: no confirming push/pull is needed).
    /// Only after the last settle push/pull, and not while news waits to
    /// settle (its own settle push/pull comes first).
    pub(super) fn catch_up_confirm(&mut self, now: Instant) {
        let Some((tried, due)) = self.catch_up.settle.settled else {
            return;
        };
        if now < due {
            return; // a later settle push/pull's timer is pending
        }
        self.catch_up.settle.settled = None;
        let unpicked = core::mem::take(&mut self.catch_up.settle.unpicked);
        if self.catch_up.settle.news.is_some() {
            return;
        }
        let cover = self.catch_up.settle.cover_since.take();
        if let Some(since) = cover.filter(|_| self.covers()) {
            if self.uncovered(since).is_empty() {
                // Every member's state came, and every member has ours:
                // nothing for a confirming push/pull to find.
                return;
            }
            // Some push/pulls failed or found no budget: those again.
            self.catch_up.settle.cover_since = Some(since);
        } else {
            let reached = self
                .catch_up
                .settle
                .merged
                .is_some_and(|merged| merged >= tried);
            if unpicked {
                // Not picked to settle: only if no full state reached us.
                if !reached {
                    self.stats.settle_unreached += 1;
                    self.catch_up.settle.retries = SETTLE_ROUNDS;
                    self.try_settle(now);
                }
                return;
            }
            if reached {
                self.catch_up_with_random_peer(now);
                return;
            }
        }
        if self.catch_up.settle.retries > 0 {
            let refilled = match self.catch_up.settle.cover_since {
                Some(_) => {
                    let per_minute = u32::try_from(self.config.catch_up.cover).unwrap_or(u32::MAX);
                    self.catch_up
                        .covers
                        .ready_at(per_minute, Duration::from_secs(60))
                }
                None => {
                    let per_minute = self.config.catch_up.per_minute;
                    self.catch_up
                        .push_pulls
                        .ready_at(per_minute, Duration::from_secs(60))
                }
            };
            if refilled > now {
                // Tried when the budget allows, not dropped.
                self.catch_up.settle.settled = Some((tried, refilled));
                self.timers
                    .schedule(refilled, Timer::CatchUp(CatchUpTimer::Confirm));
                return;
            }
            self.catch_up.settle.retries -= 1;
            self.try_settle(now);
        }
    }
}
