//! Counters an adapter exports as metrics (after go-metrics' `memberlist.*`).

use crate::rejection::Rejection;
use crate::wire::{MessageType, WireError};

/// What a node has done and refused since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams received.
    pub packets_received: u64,
    /// Bytes of datagrams received.
    pub bytes_received: u64,
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Bytes of datagrams sent.
    pub bytes_sent: u64,
    /// Messages received, by type byte: the index of [`MessageType::ALL`],
    /// under [`MessageType::metric_name`].
    pub messages: [u64; MessageType::COUNT],
    /// Probes started.
    pub probes: u64,
    /// Probes that ended in a suspicion.
    pub probes_failed: u64,
    /// Accusations against us refuted.
    pub refutations: u64,
    /// Members this node saw declared failed.
    pub members_failed: u64,
    /// Name conflicts seen.
    pub name_conflicts: u64,
    /// Push/pull states merged.
    pub push_pulls: u64,
    /// Catch-up push/pulls started (see [`CatchUp`](crate::CatchUp)).
    pub catch_up_push_pulls: u64,
    /// Catch-up push/pulls not started: the budget or the limit on
    /// concurrent push/pulls was spent.
    pub catch_up_limited: u64,
    /// Of the catch-up push/pulls, the settle push/pulls of a small
    /// cluster's cover: with each member not pushed/pulled with since the
    /// news (see [`CatchUp::cover`](crate::CatchUp::cover)).
    pub cover_push_pulls: u64,
    /// Of the catch-up push/pulls, those with a member declared dead.
    pub reconnects: u64,
    /// Outdated accusations answered with the accused's alive message (see
    /// [`CatchUp`](crate::CatchUp)).
    pub corrections: u64,
    /// Refutations sent straight to an accuser or the sender of an
    /// accusation (see [`CatchUp`](crate::CatchUp)).
    pub direct_refutations: u64,
    /// Last probes of a suspect before its death (see
    /// [`CatchUp`](crate::CatchUp)).
    pub last_probes: u64,
    /// Of the last probes, those the suspect answered: a death not declared.
    pub last_probes_answered: u64,
    /// Death notices taken as suspicions: their accuser was held dead (see
    /// [`CatchUp`](crate::CatchUp)).
    pub doubted_deaths: u64,
    /// Raises of our incarnation for a member returning from the dead, a
    /// refutation in advance (see [`CatchUp`](crate::CatchUp)).
    pub raised_for_returning: u64,
    /// Our alive message sent straight to a member returning from the dead
    /// (see [`CatchUp`](crate::CatchUp)).
    pub alive_to_returning: u64,
    /// Members acked over UDP again after a probe only TCP answered (back
    /// from a one-way cut; see [`CatchUp`](crate::CatchUp)).
    pub back_over_udp: u64,
    /// Alive messages learned from a push/pull's full state and queued
    /// behind fresh news (see [`CatchUp::state_gossip`](crate::CatchUp::state_gossip)).
    pub state_gossip_lowered: u64,
    /// Settle push/pulls of a node not picked to settle that no full state
    /// reached (see [`CatchUp::settle_unreached`](crate::CatchUp::settle_unreached)).
    pub settle_unreached: u64,
    /// Suspicions taken from a push/pull's state as hearsay: the peer's,
    /// not gossiped (see [`CatchUp::hearsay_per_second`](crate::CatchUp::hearsay_per_second)).
    pub hearsay_suspicions: u64,
    /// Of those, the ones told to their member in a datagram.
    pub hearsay_told: u64,
    /// Stream exchanges opened.
    pub streams_opened: u64,
    /// Stream exchanges that failed.
    pub streams_failed: u64,
    /// Incoming streams handled.
    pub streams_accepted: u64,
    /// Broadcasts the delegate handed out that did not fit the packet.
    pub pulled_broadcasts_dropped: u64,
    /// Input that failed to decode, by [`WireError::kind`].
    pub wire_errors: u64,
    /// The kind of the last decode failure.
    pub last_wire_error: Option<&'static str>,
    /// Input ignored by a rule (wrong node, filtered, table full…), in all.
    pub rejected: u64,
    /// Why the last input was ignored.
    pub last_rejected: Option<Rejection>,
    /// Input ignored, by reason ([`rejected_for`](Self::rejected_for)).
    rejections: [u64; Rejection::ALL.len()],
}

impl Stats {
    pub(crate) fn count_message(&mut self, t: MessageType) {
        if let Some(c) = self.messages.get_mut(t as usize) {
            *c += 1;
        }
    }

    pub(crate) fn count_wire_error(&mut self, e: &WireError) {
        self.wire_errors += 1;
        self.last_wire_error = Some(e.kind());
    }

    pub(crate) fn count_rejected(&mut self, why: Rejection) {
        self.rejected += 1;
        self.rejections[why.index()] += 1;
        self.last_rejected = Some(why);
    }

    /// Input ignored for `why`.
    pub fn rejected_for(&self, why: Rejection) -> u64 {
        self.rejections[why.index()]
    }
}
