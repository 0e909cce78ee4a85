//! Catch-up: anti-entropy out of turn (see [`CatchUp`](crate::CatchUp) for
//! the settings and how to turn it off). A push/pull when news of members
//! settles ([`settle`]; in a small cluster, with every member not
//! pushed/pulled with since the news), with a node that contacts us while we do not know
//! it or suspect it ([`contact`]), with members declared dead
//! ([`reconnect`]); and a correction, one datagram, to the sender of an
//! outdated accusation ([`correction`]). Against false deaths: an accusation
//! against this node answered straight to its accuser ([`refute`]), a
//! last probe of a suspect before its death ([`last_probe`]), and a death
//! notice from an accuser held dead taken as a suspicion ([`doubt`]), and
//! our alive message sent ahead to a member returning from the dead, which
//! may suspect us unheard ([`returning`]), and a push/pull state's verdicts
//! taken as the peer's, told to the accused, not gossiped as ours
//! ([`hearsay`]). Every exchange is ordinary
//! memberlist traffic.
//!
//! The rest of the node only reports what [`Happened`], through one call,
//! [`Swim::catch_up_on`]: the member-table rules' effects (news, a failure,
//! a departure, an outdated accusation), contact and acks from `probe.rs`
//! and `stream.rs`, full states from `push_pull.rs`, and catch-up's own
//! timers. Catch-up owns what it remembers and both its budgets.

mod contact;
mod correction;
mod doubt;
mod hearsay;
mod last_probe;
mod reconnect;
mod refute;
mod returning;
mod settle;

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::time::Duration;

use super::Swim;
use crate::budget::Budget;
use crate::delegate::Delegate;
use crate::time::Instant;

use contact::Contacts;
use last_probe::LastProbes;
use reconnect::Reconnects;
use settle::Settle;

/// Most suspicions held for a suspect's contact, a push/pull meanwhile or a
/// correction to go ahead.
const FEW_SUSPECTS: usize = 3;

/// What happened that catch-up may act on: everything it hears of.
#[derive(Debug, Clone, Copy)]
pub(super) enum Happened<'a> {
    /// Another member joined or came back (a rule's effect): news that may
    /// not have reached everyone.
    News {
        /// The member.
        node: &'a str,
    },
    /// A member was declared dead (a rule's effect).
    Failed {
        /// The member.
        node: &'a Arc<str>,
        /// Where it was.
        addr: SocketAddr,
    },
    /// A member held dead, or suspect on our own probes, is alive again at a
    /// higher incarnation (a rule's effect); it went down at `down_since`.
    Returned {
        /// The member.
        node: &'a str,
        /// When it went down in our table.
        down_since: Instant,
        /// Whether we held it dead (not suspect).
        dead: bool,
    },
    /// A member left on purpose (a rule's effect).
    Left {
        /// The member.
        node: &'a str,
    },
    /// An accusation older than the alive record we hold (a rule's effect):
    /// `sender`, the datagram's, missed the member's refutation.
    Outdated {
        /// The accused.
        node: &'a str,
        /// Who sent the accusation.
        sender: SocketAddr,
    },
    /// A ping or indirect ping from `node`, which announced itself at
    /// `addr:port`.
    Contact {
        /// The sender's name.
        node: &'a str,
        /// Its address as it announced it.
        addr: &'a [u8],
        /// Its port as it announced it.
        port: u16,
    },
    /// Our probe of `node` was answered only by the TCP ping: no ack came
    /// over UDP, direct or relayed.
    OnlyTcp {
        /// The member probed.
        node: &'a str,
    },
    /// Our probe of `node` was acked over UDP (directly or relayed).
    ProbeAcked {
        /// The member probed.
        node: &'a str,
    },
    /// A push/pull brought a full state (a reply, or one we answered that
    /// was not a join).
    Synced {
        /// The member we opened it with (none for one we answered: a
        /// stream's peer address does not say which member opened it).
        with: Option<SocketAddr>,
    },
    /// One of catch-up's timers is due.
    Due(CatchUpTimer),
}

/// Catch-up's deadlines in the node's timer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CatchUpTimer {
    /// News of members may have settled: time for a settle push/pull.
    Settle,
    /// A while after a settle push/pull: time for a confirming one, or
    /// another try.
    Confirm,
    /// Time to try a failed member again.
    Reconnect,
}

/// What catch-up remembers between inputs.
#[derive(Debug, Default)]
pub(super) struct CatchUpState {
    settle: Settle,
    contacts: Contacts,
    reconnects: Reconnects,
    /// Push/pulls started: `per_minute`, a minute's worth at once.
    push_pulls: Budget,
    /// A small cluster's cover push/pulls: `cover` per minute, one whole
    /// cover at once (not taken from `push_pulls`, which contact in a
    /// join storm spends).
    covers: Budget,
    /// Corrections sent: `corrections_per_second`, a second's worth at once.
    corrections: Budget,
    /// Direct refutations sent: `refutations_per_second`.
    refutations: Budget,
    /// Last probes of suspects outstanding or answered.
    last_probes: LastProbes,
    /// Last probes started: `last_probes_per_second`.
    last_probe_budget: Budget,
    /// Alive messages sent to returning members: `refute_returning_per_second`.
    returning: Budget,
    /// Suspicions from a push/pull's state told to their member:
    /// `hearsay_per_second`.
    hearsay: Budget,
    /// Members our probes reached only by TCP, and since when.
    only_tcp: returning::OnlyTcp,
}

impl<D: Delegate> Swim<D> {
    /// Catch-up hears what happened: the one way into it.
    pub(super) fn catch_up_on(&mut self, now: Instant, what: Happened<'_>) {
        match what {
            Happened::News { node } => {
                self.forget_failed(node);
                self.note_news(now);
            }
            Happened::Failed { node, addr } => self.note_failed(now, node, addr),
            Happened::Returned {
                node,
                down_since,
                dead,
            } => self.note_returned(now, node, down_since, dead),
            Happened::Left { node } => self.forget_failed(node),
            Happened::Outdated { node, sender } => self.correct(now, sender, node),
            Happened::Contact { node, addr, port } => self.note_contact(now, node, addr, port),
            Happened::OnlyTcp { node } => self.note_only_tcp(now, node),
            Happened::ProbeAcked { node } => {
                self.note_back_over_udp(now, node);
                self.note_probe_acked(now, node);
            }
            Happened::Synced { with } => self.note_synced(now, with),
            Happened::Due(CatchUpTimer::Settle) => self.catch_up_settle(now),
            Happened::Due(CatchUpTimer::Confirm) => self.catch_up_confirm(now),
            Happened::Due(CatchUpTimer::Reconnect) => self.reconnect(now),
        }
    }

    /// Whether we suspect few members, if any. Many suspicions at once are
    /// a partition healing (see [`contact`](Self::contact)): a push/pull
    /// then spreads more of them, so the contact and meanwhile push/pulls
    /// wait, and so do corrections (the settle push/pull, once news stops,
    /// does not).
    fn few_suspects(&self) -> bool {
        self.members.counts().suspect <= FEW_SUSPECTS
    }

    /// A catch-up push/pull with a random alive member; whether it started.
    fn catch_up_with_random_peer(&mut self, now: Instant) -> bool {
        self.random_alive_peer()
            .is_some_and(|to| self.start_catch_up(now, to))
    }

    /// Starts a catch-up push/pull with `to` if the budget and the limit on
    /// concurrent push/pulls allow; whether it did.
    fn start_catch_up(&mut self, now: Instant, to: SocketAddr) -> bool {
        self.start_catch_up_from(now, to, false)
    }

    /// [`start_catch_up`](Self::start_catch_up), from the cover budget
    /// with `cover`.
    fn start_catch_up_from(&mut self, now: Instant, to: SocketAddr, cover: bool) -> bool {
        if self.exchanges.push_pulls() >= self.config.max_concurrent_push_pulls {
            self.stats.catch_up_limited += 1;
            return false;
        }
        let c = &self.config.catch_up;
        let (budget, per_minute) = match cover {
            true => (
                &mut self.catch_up.covers,
                u32::try_from(c.cover).unwrap_or(u32::MAX),
            ),
            false => (&mut self.catch_up.push_pulls, c.per_minute),
        };
        if !budget.take(now, per_minute, Duration::from_secs(60)) {
            self.stats.catch_up_limited += 1;
            return false;
        }
        self.stats.catch_up_push_pulls += 1;
        self.push_pull(now, to, None);
        true
    }
}
