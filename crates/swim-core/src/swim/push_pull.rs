//! Anti-entropy: a push/pull sends this node's whole member table (and the
//! application's state) over a stream and merges the table the other side
//! sends back. Periodically with a random member, and with every seed of a
//! join.

use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::catch_up::Happened;
use super::stream::Exchange;
use super::timers::Timer;
use super::{JoinId, Swim};
use crate::delegate::Delegate;
use crate::event::{Event, ExchangeError};

/// Confirming push/pulls of a checked join that must find us missing
/// before the seed is said not to have taken us in.
pub(super) const CONFIRM_ATTEMPTS: u8 = 4;

/// The pause before the second confirming push/pull, and added before
/// each one after it (50, 100, 150 ms: 300 ms in all).
pub(super) const CONFIRM_RETRY: core::time::Duration = core::time::Duration::from_millis(50);
use crate::member::{Member, MemberState, WireIp};
use crate::rejection::Rejection;
use crate::time::Instant;
use crate::wire::{
    ErrorResponse, Message, NodeState, PushNodeState, PushPull, Transport, WireError,
};

/// A join waiting for its seeds.
#[derive(Debug, Clone, Default)]
struct JoinState {
    pending: usize,
    joined: usize,
    failed: Vec<(SocketAddr, ExchangeError)>,
    /// Whether each seed's reply is checked for whether it took us in
    /// ([`Swim::join_checked`]).
    checked: bool,
}

/// What a push/pull reply says of our own name.
enum Listed {
    /// At our address, in this state.
    Here(Option<MemberState>),
    /// At another address, in this state.
    Elsewhere(SocketAddr, Option<MemberState>),
    /// Not at all.
    Absent,
}

/// The joins in progress.
#[derive(Debug, Default)]
pub(super) struct Joins {
    pending: hashbrown::HashMap<JoinId, JoinState, foldhash::fast::FixedState>,
    last_id: u64,
}

impl<D: Delegate> Swim<D> {
    /// Joins the cluster through `seeds`: a push/pull with each. The result
    /// comes as [`Event::JoinCompleted`] with the id returned here (at once
    /// when `seeds` is empty).
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) -> JoinId {
        self.start_join(now, seeds, false)
    }

    /// [`join`](Self::join), and a seed counts as joined only once it took
    /// us in. A seed answers a push/pull before it merges the state we sent,
    /// so its reply shows the cluster as it was: if it lists a live member
    /// under our name at another address, the seed refused us
    /// ([`ExchangeError::NameTaken`]); if it does not list us, a second
    /// push/pull (an ordinary one, not a join) asks again, and a reply that
    /// still does not list us at our address means the seed refused us — its
    /// alive filter, merge veto or protocol versions
    /// ([`ExchangeError::NotAccepted`]), or a live member holding our name
    /// ([`ExchangeError::NameTaken`]). Go's seeds answer it unchanged.
    pub fn join_checked(&mut self, now: Instant, seeds: &[SocketAddr]) -> JoinId {
        self.start_join(now, seeds, true)
    }

    fn start_join(&mut self, now: Instant, seeds: &[SocketAddr], checked: bool) -> JoinId {
        self.input(now, |s| {
            s.joins.last_id += 1;
            let id = JoinId(s.joins.last_id);
            if seeds.is_empty() {
                s.emit(Event::JoinCompleted {
                    id,
                    joined: 0,
                    failed: Vec::new(),
                });
                return id;
            }
            s.joins.pending.insert(
                id,
                JoinState {
                    pending: seeds.len(),
                    checked,
                    ..JoinState::default()
                },
            );
            for &seed in seeds {
                s.push_pull(now, seed, Some(id));
            }
            id
        })
    }

    /// Whether join `id` checks that its seeds took us in.
    pub(super) fn join_is_checked(&self, id: JoinId) -> bool {
        self.joins.pending.get(&id).is_some_and(|j| j.checked)
    }

    /// Confirming push/pull number `attempt` of a checked join with seed
    /// `to`: an ordinary one, whose reply shows whether the seed merged the
    /// state our join sent it. The first goes at once; a seed may answer
    /// it before it merged our join's state (Go's seed replies first and
    /// merges after, on the join's own connection), so a reply without us
    /// is asked again, [`CONFIRM_RETRY`] later each time more, until
    /// [`CONFIRM_ATTEMPTS`] agree that the seed did not take us in.
    pub(super) fn confirm_join_after(
        &mut self,
        now: Instant,
        to: SocketAddr,
        id: JoinId,
        attempt: u8,
    ) {
        if attempt <= 1 {
            return self.confirm_join(now, to, id, attempt);
        }
        let wait = CONFIRM_RETRY * u32::from(attempt - 1);
        self.timers
            .schedule(now + wait, Timer::ConfirmJoin { to, id, attempt });
    }

    pub(super) fn confirm_join(&mut self, now: Instant, to: SocketAddr, id: JoinId, attempt: u8) {
        if !self.joins.pending.contains_key(&id) {
            return;
        }
        let state = self.local_push_pull(false);
        let deadline = now + self.config.join_timeout;
        let kind = Exchange::PushPull {
            join: Some(id),
            to,
            confirm: attempt,
        };
        self.connect(now, to, &state, true, deadline, kind);
    }

    /// One seed of join `id` answered, or failed.
    pub(super) fn join_progress(
        &mut self,
        id: JoinId,
        result: Result<(), (SocketAddr, ExchangeError)>,
    ) {
        let Some(j) = self.joins.pending.get_mut(&id) else {
            return;
        };
        j.pending -= 1;
        match result {
            Ok(()) => j.joined += 1,
            Err(e) => j.failed.push(e),
        }
        if j.pending == 0 {
            let j = self.joins.pending.remove(&id).unwrap_or_default();
            self.emit(Event::JoinCompleted {
                id,
                joined: j.joined,
                failed: j.failed,
            });
        }
    }

    /// The periodic push/pull timer: the next one comes a scaled interval
    /// later; `run` is false for the first timer, which only ends the
    /// initial stagger.
    pub(super) fn push_pull_tick(&mut self, now: Instant, run: bool) {
        let interval = self.config.push_pull_interval_at(self.members.len());
        self.timers.schedule(now + interval, Timer::PushPullTick);
        if run {
            self.periodic_push_pull(now);
        }
    }

    fn periodic_push_pull(&mut self, now: Instant) {
        if self.exchanges.push_pulls() >= self.config.max_concurrent_push_pulls {
            self.stats.count_rejected(Rejection::PushPullBusy);
            return;
        }
        if let Some(to) = self.random_alive_peer() {
            self.push_pull(now, to, None);
        }
    }

    /// A random alive member other than us, to push/pull with.
    pub(super) fn random_alive_peer(&mut self) -> Option<SocketAddr> {
        let local = self.local_name();
        let picked = self.members.random_members(1, &mut self.rng, |r| {
            *r.name != *local && r.state == MemberState::Alive
        });
        picked
            .first()
            .and_then(|&i| self.members.record(i).socket_addr())
    }

    pub(super) fn push_pull(&mut self, now: Instant, to: SocketAddr, join: Option<JoinId>) {
        let state = self.local_push_pull(join.is_some());
        let timeout = match join {
            Some(_) => self.config.join_timeout,
            None => self.config.tcp_timeout,
        };
        let deadline = now + timeout;
        let kind = Exchange::PushPull {
            join,
            to,
            confirm: 0,
        };
        self.connect(now, to, &state, true, deadline, kind);
    }

    /// Our push/pull state: every member in the table and the application's
    /// state (the delegate's, or what was stored).
    fn local_push_pull(&mut self, join: bool) -> Vec<u8> {
        let asked = self.delegate.local_state(join);
        let user_state = asked.as_deref().unwrap_or(&self.local.push_pull_state);
        let nodes = self
            .members
            .records()
            .iter()
            .map(|r| PushNodeState {
                name: &r.name,
                addr: r.addr.as_bytes().into(),
                port: r.port,
                meta: (&*r.meta).into(),
                incarnation: r.incarnation,
                state: r.state.to_wire(),
                vsn: r.vsn[..].into(),
            })
            .collect();
        let mut buf = Vec::with_capacity(64 + self.members.len() * 96 + user_state.len());
        Message::PushPull(PushPull {
            join,
            nodes,
            user_state,
        })
        .encode(Transport::Stream, &mut buf);
        buf
    }

    /// A push/pull another node opened: our state for the reply (echoing
    /// its join flag), then its state merged.
    pub(super) fn answer_push_pull(
        &mut self,
        now: Instant,
        from: SocketAddr,
        pp: PushPull<'_>,
    ) -> Vec<u8> {
        let reply = self.local_push_pull(pp.join);
        let join = pp.join;
        // A joiner's state is news: its seed gossips it the whole limit.
        match self.merge_remote(now, from, pp, join, !join) {
            // A joiner's state is its own: not the cluster's.
            Ok(()) if !join => self.catch_up_on(now, Happened::Synced { with: None }),
            Ok(()) => {}
            Err(why) => self.stats.count_rejected(why),
        }
        reply
    }

    /// The reply to our push/pull, merged. With `check` (a checked join;
    /// `Some(n)` for its n-th confirming push/pull, `Some(0)` for its
    /// own), the reply is first read for our own name; `Ok(true)` says the
    /// seed must be asked (again).
    pub(super) fn merge_reply(
        &mut self,
        now: Instant,
        to: SocketAddr,
        reply: &[u8],
        join: bool,
        check: Option<u8>,
    ) -> Result<bool, ExchangeError> {
        let opened = self.open_reply(reply)?;
        let limits = self.envelope.limits().clone();
        match Message::decode(&opened, Transport::Stream, &limits) {
            Ok(Message::PushPull(pp)) => {
                let mut again = false;
                if let Some(attempt) = check {
                    let confirming = attempt > 0;
                    let live = |state: Option<MemberState>| {
                        matches!(state, Some(MemberState::Alive | MemberState::Suspect))
                    };
                    match self.listed_self(&pp) {
                        Listed::Elsewhere(addr, state) if confirming || live(state) => {
                            return Err(ExchangeError::NameTaken { addr });
                        }
                        Listed::Absent if attempt >= CONFIRM_ATTEMPTS => {
                            return Err(ExchangeError::NotAccepted)
                        }
                        // Listed dead here: our refutation is on its way.
                        Listed::Here(state) => again = !confirming && !live(state),
                        Listed::Elsewhere(..) | Listed::Absent => again = true,
                    }
                }
                self.merge_remote(now, to, pp, join, true)
                    .map_err(ExchangeError::Refused)?;
                self.catch_up_on(now, Happened::Synced { with: Some(to) });
                Ok(again)
            }
            Ok(Message::Error(ErrorResponse { error })) => {
                Err(ExchangeError::Remote(error.to_string()))
            }
            Ok(other) => Err(ExchangeError::BadReply(WireError::UnexpectedMessageType(
                other.message_type() as u8,
            ))),
            Err(e) => Err(ExchangeError::BadReply(e)),
        }
    }

    /// Where a push/pull state lists our name.
    fn listed_self(&self, pp: &PushPull<'_>) -> Listed {
        let local = self.local_name();
        let Some(n) = pp.nodes.iter().find(|n| n.name == &*local) else {
            return Listed::Absent;
        };
        let state = MemberState::from_wire(n.state);
        let port = self.fix_port(n.port);
        match self.members.local() {
            Some(r) if r.addr.as_bytes() == &n.addr[..] && r.port == port => Listed::Here(state),
            _ => Listed::Elsewhere(WireIp::from_bytes(&n.addr).shown(port), state),
        }
    }

    /// Go's `mergeRemoteState`: verify versions, ask the delegate (joins),
    /// merge, hand over the user state. With `cluster_state` (a reply, or
    /// any push/pull but a join's), members it teaches rank behind fresh
    /// news ([`CatchUp::state_gossip`](crate::CatchUp::state_gossip)).
    fn merge_remote(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        mut pp: PushPull<'_>,
        join: bool,
        cluster_state: bool,
    ) -> Result<(), Rejection> {
        for n in &mut pp.nodes {
            n.port = self.fix_port(n.port);
        }
        if !self.members.verify_protocol(&pp.nodes) {
            return Err(Rejection::IncompatibleProtocol);
        }
        if join {
            let members: Vec<Member> = pp.nodes.iter().filter_map(listed_member).collect();
            if !self.delegate.allow_merge(&members) {
                return Err(Rejection::MergeVetoed);
            }
        }
        self.stats.push_pulls += 1;
        self.merging_state = cluster_state && self.config.catch_up.state_gossip > 0;
        // Named only when the state holds verdicts: the lookup scans the table.
        let verdicts = pp
            .nodes
            .iter()
            .any(|n| matches!(n.state, NodeState::Suspect | NodeState::Dead));
        let accuser = verdicts.then(|| self.hearsay_accuser(peer)).flatten();
        self.with_rules(now, |m, ctx| m.merge(&pp.nodes, accuser.as_deref(), ctx));
        self.merging_state = false;
        if !pp.user_state.is_empty() {
            self.emit(Event::RemoteState {
                join,
                state: pp.user_state.to_vec(),
            });
        }
        Ok(())
    }
}

/// A push/pull entry as the delegate sees it; `None` for a state this version
/// does not know (the merge ignores those).
fn listed_member(n: &PushNodeState<'_>) -> Option<Member> {
    let state = MemberState::from_wire(n.state)?;
    Some(Member {
        name: Arc::from(n.name),
        addr: WireIp::from_bytes(&n.addr).shown(n.port),
        meta: Arc::from(&*n.meta),
        incarnation: n.incarnation,
        state,
        vsn: n
            .vsn
            .get(..6)
            .and_then(|v| v.try_into().ok())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NodeState;

    #[test]
    fn the_delegate_sees_entries_in_known_states_only() {
        let entry = |state| PushNodeState {
            name: "b",
            addr: [10, 0, 0, 2][..].into(),
            port: 7946,
            meta: (&b"m"[..]).into(),
            incarnation: 3,
            state,
            vsn: [1, 5, 2, 0, 0, 0][..].into(),
        };
        let listed = listed_member(&entry(NodeState::Suspect)).unwrap();
        assert_eq!(listed.state, MemberState::Suspect);
        assert_eq!(listed.addr, "10.0.0.2:7946".parse().unwrap());
        assert_eq!((listed.incarnation, listed.vsn), (3, [1, 5, 2, 0, 0, 0]));
        // The merge ignores an unknown state; so does the list the delegate sees.
        assert_eq!(listed_member(&entry(NodeState::Other(7))), None);
    }

    #[test]
    fn a_join_waits_longer_for_its_seed_than_other_push_pulls_wait() {
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let config = crate::Config::local("me", at(7000));
        let (tcp, join) = (config.tcp_timeout, config.join_timeout);
        assert!(join > tcp, "Local: {join:?} for joins, {tcp:?} otherwise");
        let mut swim: Swim = Swim::new(config, 1, Instant::ZERO).unwrap();
        let now = Instant::ZERO + core::time::Duration::from_secs(1);
        swim.join(now, &[at(7001)]);
        swim.input(now, |s| s.push_pull(now, at(7002), None));
        let deadlines: Vec<_> = core::iter::from_fn(|| swim.poll_output())
            .filter_map(|o| match o {
                crate::Output::Connect { to, deadline, .. } => Some((to.port(), deadline)),
                _ => None,
            })
            .collect();
        assert_eq!(deadlines, [(7001, now + join), (7002, now + tcp)]);
    }
}
