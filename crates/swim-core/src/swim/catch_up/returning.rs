//! Refutations in advance for a returning member: a member this node held
//! dead, or suspect on its own failed probes, that comes back alive was cut
//! off from us, and while cut off it may have suspected us. Its suspicion
//! gossip never reached us, so nothing here refutes it, and Go clears a
//! suspicion only with an alive message at a higher incarnation (an ack
//! does not): unrefuted, it becomes our death when its timer runs out, and
//! the death notice spreads. So the returning member gets our alive message
//! straight away, one datagram, above an incarnation raised for it (the
//! refutation's raise, gossiped like one) unless ours has risen since it
//! was cut off (see `note_returned`). One raise covers every member cut
//! off before it: a healing partition returns hundreds at once.
//!
//! A one-way cut hides the cut-off member without a death: it hears us, so
//! our UDP probes reach it, but its acks do not come back, and our TCP ping
//! (its answer rides on our connection) keeps it alive here. Meanwhile its
//! own probes of us fail and it suspects us, unheard. A probe answered
//! only by TCP marks the member; the first UDP ack from it afterwards is
//! its return, answered by a refutation in advance; and its death notices
//! meanwhile are doubted (`doubt.rs`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::delegate::Delegate;
use crate::swim::Swim;
use crate::time::Instant;

/// Most members remembered as reached only by TCP (more are not marked).
const ONLY_TCP_MAX: usize = 64;

/// Members our probes reached only by TCP.
#[derive(Debug, Default)]
pub(super) struct OnlyTcp(Vec<Mark>);

/// A member our probes reached only by TCP.
#[derive(Debug)]
struct Mark {
    node: Arc<str>,
    /// The first probe only TCP answered.
    since: Instant,
    /// The last one.
    last: Instant,
    /// A UDP ack has come since.
    back: bool,
}

impl<D: Delegate> Swim<D> {
    /// `node`, held dead (`dead`) or suspect on our probes here since
    /// `down_since`, is alive again: a refutation in advance for it.
    ///
    /// It was cut off from us before it went down here: since the
    /// suspicion began for a suspect; for a dead member, at least the
    /// shortest suspicion timeout earlier, as every death is a suspicion
    /// run out. A raise after that is above whatever it formed of us while
    /// cut off. So members a healing partition brings back a little later
    /// (their stale suspicions running out here after the heal) need no
    /// further raise: one per heal, not one for every later return, each
    /// of which would be gossiped to everyone again, ahead of the
    /// refutations of members declared dead by the heal's stale verdicts
    /// (measured: docs/protocol.md §15.8).
    pub(super) fn note_returned(
        &mut self,
        now: Instant,
        node: &str,
        down_since: Instant,
        dead: bool,
    ) {
        let cut_off_by = match dead {
            true => down_since - self.config.suspicion_timeouts(self.members.len()).min,
            false => down_since,
        };
        self.refute_in_advance(now, node, cut_off_by);
    }

    /// `node`, cut off from us by `cut_off_by` at the latest, is alive
    /// again: raise our incarnation if it has not risen since, and send it
    /// our alive message within `refute_returning_per_second`.
    fn refute_in_advance(&mut self, now: Instant, node: &str, cut_off_by: Instant) {
        let per_second = self.config.catch_up.refute_returning_per_second;
        if per_second == 0 || self.leave.is_leaving() {
            return;
        }
        if self.members.local_raised_at() <= cut_off_by {
            self.stats.raised_for_returning += 1;
            self.with_rules(now, |m, ctx| m.refute_in_advance(ctx));
        }
        let Some(to) = self.members.get(node).and_then(|r| r.socket_addr()) else {
            return;
        };
        let local = self.local_name();
        let Some(at) = self.members.index_of(&local) else {
            return;
        };
        if !self
            .catch_up
            .returning
            .take(now, per_second, Duration::from_secs(1))
        {
            return;
        }
        let mut alive = Vec::with_capacity(64);
        self.members.encode_alive(at, &mut alive);
        self.stats.alive_to_returning += 1;
        self.send_packet(to, &alive, false);
    }

    /// Our probe of `node` was answered only by the TCP ping: its datagrams
    /// may not reach us, nor its accusations of us.
    pub(super) fn note_only_tcp(&mut self, now: Instant, node: &str) {
        if self.config.catch_up.refute_returning_per_second == 0 {
            return;
        }
        self.forget_old_only_tcp(now);
        let marks = &mut self.catch_up.only_tcp.0;
        let full = marks.len() >= ONLY_TCP_MAX;
        match marks.iter_mut().find(|m| &*m.node == node) {
            Some(m) if m.back => {
                // Cut off again: a new episode.
                (m.since, m.last, m.back) = (now, now, false);
            }
            Some(m) => m.last = now,
            None if !full => marks.push(Mark {
                node: Arc::from(node),
                since: now,
                last: now,
                back: false,
            }),
            None => {}
        }
    }

    /// A UDP ack from `node`: if only TCP reached it before, it is back
    /// from a one-way cut.
    pub(super) fn note_back_over_udp(&mut self, now: Instant, node: &str) {
        self.forget_old_only_tcp(now);
        let Some(m) = self
            .catch_up
            .only_tcp
            .0
            .iter_mut()
            .find(|m| &*m.node == node && !m.back)
        else {
            return;
        };
        m.back = true;
        let since = m.since;
        self.stats.back_over_udp += 1;
        // No push/pull to fetch its suspicions of others: gossiped on as
        // ours, they come back to it as confirmations, and Lifeguard then
        // brings its deadlines forward (its deaths came sooner, tested).
        self.refute_in_advance(now, node, since);
    }

    /// Whether our probes reached `node` only by TCP within the longest
    /// suspicion: its verdicts may rest on a cut (see `doubt.rs`).
    pub(in crate::swim) fn cut_off_lately(&self, node: &str) -> bool {
        self.catch_up.only_tcp.0.iter().any(|m| &*m.node == node)
    }

    /// Marks whose last TCP-only probe is older than the longest suspicion
    /// are forgotten: any suspicion the member raised then has run out.
    fn forget_old_only_tcp(&mut self, now: Instant) {
        let marks = &mut self.catch_up.only_tcp.0;
        if marks.is_empty() {
            return;
        }
        let longest = self.config.suspicion_timeouts(self.members.len()).max;
        marks.retain(|m| now.saturating_duration_since(m.last) < longest);
    }
}
