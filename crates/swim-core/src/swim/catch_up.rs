//! Catch-up push/pulls: anti-entropy out of turn, when news of members
//! settles, when a node we do not know contacts us, and with members
//! declared dead (see [`CatchUp`](crate::CatchUp) for why and the
//! settings). Every exchange is an ordinary push/pull; a budget bounds how
//! many a node starts.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::timers::Timer;
use super::Swim;
use crate::budget::Budget;
use crate::delegate::Delegate;
use crate::member::{Member, MemberState, WireIp};
use crate::time::Instant;

/// How long a sender that made contact is not pushed/pulled again.
const CONTACT_MEMORY: Duration = Duration::from_secs(60);
/// Most senders remembered at once; contact from more is ignored until
/// older ones are forgotten (a flood of forged senders cannot grow it).
const CONTACT_MAX: usize = 64;
/// How many `settle`s news may go on before a settle push/pull runs
/// anyway, and how many after it a confirming one follows.
const SETTLE_ROUNDS: u32 = 4;
/// Most suspicions held for a suspect's contact to start a push/pull.
const FEW_SUSPECTS: usize = 3;
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

/// What catch-up remembers between inputs.
#[derive(Debug, Default)]
pub(super) struct CatchUpState {
    /// When the first news waiting to settle came (until a push/pull ran
    /// for news that went on), and the last.
    news: Option<(Option<Instant>, Instant)>,
    /// When the last settle push/pull was tried and when its follow-up (a
    /// confirming push/pull, or another try) is due, while one is to come.
    settled: Option<(Instant, Instant)>,
    /// Settle push/pulls still to try, while none brought a full state.
    retries: u32,
    /// Whether a settle timer is scheduled.
    settle_scheduled: bool,
    /// When a push/pull last brought us a full state (a reply, or a
    /// non-join push/pull we answered) after our own rumours were all sent.
    synced: Option<Instant>,
    /// When a push/pull last brought us a full state, storm or not.
    merged: Option<Instant>,
    /// Exchanges started: `per_minute`, a minute's worth at once.
    budget: Budget,
    /// Senders pushed/pulled because they made contact, and when.
    contacted: Vec<(Arc<str>, Instant)>,
    /// Members declared dead, oldest first.
    failed: VecDeque<Failed>,
    /// Whether a reconnect timer is scheduled.
    reconnect_scheduled: bool,
}

impl<D: Delegate> Swim<D> {
    /// A member became known, or came back: news that may not have reached
    /// everyone. Once it settles, a push/pull catches up.
    pub(super) fn note_news(&mut self, now: Instant) {
        if !self.config.catch_up.enabled() {
            return;
        }
        let first = self.catch_up.news.map_or(Some(now), |(first, _)| first);
        self.catch_up.news = Some((first, now));
        if !self.catch_up.settle_scheduled {
            self.catch_up.settle_scheduled = true;
            self.timers
                .schedule(now + self.config.catch_up.settle, Timer::CatchUpSettle);
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
    pub(super) fn note_synced(&mut self, now: Instant) {
        self.catch_up.merged = Some(now);
        if self.gossip.membership_len() == 0 {
            self.catch_up.synced = Some(now);
        }
    }

    /// The settle timer: run the settle push/pull if the news has stopped,
    /// or wait for it to. News that goes on for `SETTLE_ROUNDS` settles
    /// gets one push/pull meanwhile (in a large storm on LAN, gossip
    /// trickles in for seconds while one push/pull brings it all), and
    /// only one: a storm of many seconds would spend the budget that the
    /// settle push/pull at its end needs.
    pub(super) fn catch_up_settle(&mut self, now: Instant) {
        self.catch_up.settle_scheduled = false;
        let Some((first, last)) = self.catch_up.news else {
            return;
        };
        let settle = self.config.catch_up.settle;
        let due = last + settle;
        if now < due {
            let meanwhile = first.map(|first| first + settle * SETTLE_ROUNDS);
            if meanwhile.is_some_and(|at| now >= at) {
                self.catch_up.news = Some((None, last));
                if self.few_suspects() && self.picked_to_settle() {
                    self.catch_up_with_random_peer(now);
                }
            }
            let next = meanwhile
                .filter(|&at| at > now)
                .map_or(due, |at| at.min(due));
            self.catch_up.settle_scheduled = true;
            self.timers.schedule(next, Timer::CatchUpSettle);
            return;
        }
        self.catch_up.news = None;
        // A full state that came once the news had settled (one that came
        // sooner is a snapshot of a storm still spreading).
        if self.catch_up.synced.is_some_and(|synced| synced >= due) {
            return;
        }
        if self.picked_to_settle() {
            self.catch_up.retries = SETTLE_ROUNDS;
            self.try_settle(now);
        }
    }

    /// A settle push/pull, and its follow-up: a confirming push/pull if
    /// a full state came by then, another try if none did (the push/pull
    /// failed, or the budget was spent: in a storm that starves the host,
    /// many time out, and a node left out waited for the periodic
    /// push/pull, 90 s at 1,000 nodes on Local).
    fn try_settle(&mut self, now: Instant) {
        self.catch_up_with_random_peer(now);
        let due = now + self.config.catch_up.settle * SETTLE_ROUNDS;
        self.catch_up.settled = Some((now, due));
        self.timers.schedule(due, Timer::CatchUpConfirm);
    }

    /// Whether we suspect few members, if any. Many suspicions at once are
    /// a partition healing (see [`contact`](Self::contact)): a push/pull
    /// then spreads more of them, so the contact and meanwhile push/pulls
    /// wait, and so do corrections (the settle push/pull, once news stops,
    /// does not).
    pub(super) fn few_suspects(&self) -> bool {
        self.members.counts().suspect <= FEW_SUSPECTS
    }

    /// Whether this node is one of the about `nodes` of the cluster that
    /// push/pull after news, whatever the cluster's size.
    fn picked_to_settle(&mut self) -> bool {
        let members = self.members.counts().members();
        let nodes = self.config.catch_up.nodes;
        members <= nodes || self.rng.below(members) < nodes
    }

    /// The follow-up of a settle push/pull. If a full state came since, the
    /// confirming push/pull: the partner of that one may have lacked what
    /// we lack (a member whose rumour was still spreading, say), and
    /// nothing else would tell us. If none came, the settle push/pull
    /// again (`SETTLE_ROUNDS` times at most). Only after the last settle
    /// push/pull, and not while news waits to settle (its own settle
    /// push/pull comes first).
    pub(super) fn catch_up_confirm(&mut self, now: Instant) {
        let Some((tried, due)) = self.catch_up.settled else {
            return;
        };
        if now < due {
            return; // a later settle push/pull's timer is pending
        }
        self.catch_up.settled = None;
        if self.catch_up.news.is_some() {
            return;
        }
        if self.catch_up.merged.is_some_and(|merged| merged >= tried) {
            self.catch_up_with_random_peer(now);
        } else if self.catch_up.retries > 0 {
            let per_minute = self.config.catch_up.per_minute;
            let refilled = self
                .catch_up
                .budget
                .ready_at(per_minute, Duration::from_secs(60));
            if refilled > now {
                // Tried when the budget allows, not dropped.
                self.catch_up.settled = Some((tried, refilled));
                self.timers.schedule(refilled, Timer::CatchUpConfirm);
                return;
            }
            self.catch_up.retries -= 1;
            self.try_settle(now);
        }
    }

    /// A catch-up push/pull with a random alive member; whether it started.
    fn catch_up_with_random_peer(&mut self, now: Instant) -> bool {
        self.random_alive_peer()
            .is_some_and(|to| self.start_catch_up(now, to))
    }

    /// A ping or indirect ping from `name` (at `addr:port`, as it announced
    /// itself): if we do not know it, or suspect it, a push/pull with it
    /// mends both views.
    pub(super) fn note_contact(&mut self, now: Instant, name: &str, addr: &[u8], port: u16) {
        if !self.config.catch_up.enabled() || name.is_empty() || port == 0 {
            return;
        }
        let Some(ip) = WireIp::from_bytes(addr).to_ip() else {
            return;
        };
        let to = SocketAddr::new(ip, self.fix_port(port));
        self.contact(now, name, to);
    }

    /// Our probe of `name` was acked directly. If we suspect it, its
    /// refutation missed us (a refutation is gossiped a few times, and a
    /// small cluster can miss all of them; our piggybacked accusation no
    /// longer makes it refute, being older than its incarnation): a
    /// push/pull fetches it before the suspicion turns into a false death.
    pub(super) fn note_probe_acked(&mut self, now: Instant, name: &str) {
        if !self.config.catch_up.enabled() {
            return;
        }
        let Some(to) = self
            .members
            .get(name)
            .filter(|r| r.state == MemberState::Suspect)
            .and_then(|r| r.socket_addr())
        else {
            return;
        };
        self.contact(now, name, to);
    }

    /// `name`, at `to`, is alive and talking to us: if we do not know it, or
    /// suspect it and few others, push/pull with it (once a minute at
    /// most). Not if we hold it dead, or suspect many: that is a partition
    /// healing, each side holding the other dead or suspect, and a
    /// push/pull across it teaches each node the other side's verdicts as
    /// fresh suspicions of its own side, hundreds at once, more than their
    /// refutations outrun (in the simulator, 1,000 LAN nodes healing a 50 %
    /// partition declared up to 28 healthy nodes of their own side dead
    /// 12 s later; none without these push/pulls). Gossip to the dead
    /// tells a node of its death instead, and once the record is gone the
    /// node is unknown.
    fn contact(&mut self, now: Instant, name: &str, to: SocketAddr) {
        if name == &**self.members.local_name() {
            return;
        }
        let settled = self
            .members
            .get(name)
            .is_some_and(|r| r.state != MemberState::Suspect || !self.few_suspects());
        if settled || !self.config.ip_allowed(to.ip()) {
            return;
        }
        let contacted = &mut self.catch_up.contacted;
        contacted.retain(|(_, at)| now.saturating_duration_since(*at) < CONTACT_MEMORY);
        if contacted.len() >= CONTACT_MAX || contacted.iter().any(|(n, _)| &**n == name) {
            return;
        }
        if self.start_catch_up(now, to) {
            self.catch_up.contacted.push((Arc::from(name), now));
        }
    }

    /// `member` was declared dead: try it again later.
    pub(super) fn note_failed(&mut self, now: Instant, member: &Member) {
        let c = &self.config.catch_up;
        if !c.enabled() || c.reconnect_interval.is_zero() {
            return;
        }
        let failed = &mut self.catch_up.failed;
        failed.retain(|f| f.name != member.name);
        if failed.len() >= FAILED_MAX {
            failed.pop_front();
        }
        failed.push_back(Failed {
            name: member.name.clone(),
            addr: member.addr,
            since: now,
        });
        if !self.catch_up.reconnect_scheduled {
            self.catch_up.reconnect_scheduled = true;
            self.timers
                .schedule(now + c.reconnect_interval, Timer::Reconnect);
        }
    }

    /// `name` is back, or left on purpose: no need to try it again.
    pub(super) fn forget_failed(&mut self, name: &str) {
        self.catch_up.failed.retain(|f| &*f.name != name);
    }

    /// The reconnect timer: a push/pull with a random failed member, with
    /// probability `failed / alive`, so the cluster as a whole tries each
    /// about once per interval.
    pub(super) fn reconnect(&mut self, now: Instant) {
        self.catch_up.reconnect_scheduled = false;
        let c = &self.config.catch_up;
        let (interval, timeout) = (c.reconnect_interval, c.reconnect_timeout);
        let failed = &mut self.catch_up.failed;
        failed.retain(|f| now.saturating_duration_since(f.since) < timeout);
        if failed.is_empty() {
            return;
        }
        self.catch_up.reconnect_scheduled = true;
        self.timers.schedule(now + interval, Timer::Reconnect);
        let failed = self.catch_up.failed.len();
        // Others than us, alive or suspect.
        let alive = self.members.counts().members().saturating_sub(1);
        if failed < alive && self.rng.below(alive) >= failed {
            return;
        }
        let pick = self.rng.below(failed);
        let to = self.catch_up.failed[pick].addr;
        if self.start_catch_up(now, to) {
            self.stats.reconnects += 1;
        }
    }

    /// Starts a catch-up push/pull with `to` if the budget and the limit on
    /// concurrent push/pulls allow; whether it did.
    fn start_catch_up(&mut self, now: Instant, to: SocketAddr) -> bool {
        if self.exchanges.push_pulls() >= self.config.max_concurrent_push_pulls {
            self.stats.catch_up_limited += 1;
            return false;
        }
        let per_minute = self.config.catch_up.per_minute;
        if !self
            .catch_up
            .budget
            .take(now, per_minute, Duration::from_secs(60))
        {
            self.stats.catch_up_limited += 1;
            return false;
        }
        self.stats.catch_up_push_pulls += 1;
        self.push_pull(now, to, None);
        true
    }
}
