//! Dissemination: the two transmit-limited queues (membership updates and
//! user broadcasts), what a packet piggybacks from them and from the
//! delegate, and the gossip round that sends them to a few random members
//! every gossip interval.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::leave::LEAVE_TOKEN;
use super::packet::encode_packet;
use super::Swim;
use crate::broadcast::{BroadcastQueue, Finished, Parts, Token};
use crate::delegate::Delegate;
use crate::event::Event;
use crate::ids::BroadcastId;
use crate::member::MemberState;
use crate::members::AliveMessages;
use crate::time::Instant;
use crate::wire::{
    encode_compound, Message, Transport, COMPOUND_PART_OVERHEAD, MAX_COMPOUND_PARTS,
};

/// What a user message costs in a compound beyond its payload: the part's
/// length header and the message's type byte.
pub(super) const USER_PART_OVERHEAD: usize = COMPOUND_PART_OVERHEAD + 1;

/// What waits to be gossiped.
#[derive(Debug)]
pub(super) struct Gossip {
    /// Alive, suspect and dead messages, keyed by member name.
    membership: BroadcastQueue,
    /// User broadcasts: anonymous, or keyed by the application's name for them.
    pub(super) user: BroadcastQueue,
    /// Membership broadcasts with a token (our departure) that just left the queue.
    membership_done: Finished,
    /// The application's broadcasts that just left the queue, by id.
    user_done: Finished,
    /// The last [`BroadcastId`] handed out.
    last_id: u64,
    /// Where an alive message is encoded to learn its length.
    scratch: Vec<u8>,
}

impl Gossip {
    pub(super) fn new(max_queue: usize) -> Gossip {
        Gossip {
            membership: BroadcastQueue::new(max_queue),
            user: BroadcastQueue::new(max_queue),
            membership_done: Vec::new(),
            user_done: Vec::new(),
            last_id: 0,
            scratch: Vec::new(),
        }
    }

    pub(super) fn membership_len(&self) -> usize {
        self.membership.len()
    }

    pub(super) fn user_len(&self) -> usize {
        self.user.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.membership.bytes() + self.user.bytes()
    }

    /// Whether anything waits in the queues.
    pub(super) fn is_waiting(&self) -> bool {
        !self.membership.is_empty() || !self.user.is_empty()
    }

    /// Drops membership updates (`user` too: everything), reporting their tokens.
    pub(super) fn clear(&mut self, user: bool) {
        self.membership.clear(&mut self.membership_done);
        if user {
            self.user.clear(&mut self.user_done);
        }
    }
}

impl<D: Delegate> Swim<D> {
    /// Queues the alive message of `node`, whose record is at or near `at`.
    ///
    /// It is derived from the record whenever it is sent: every later change
    /// to the record queues a broadcast under the same key, which replaces
    /// this one. A member first learned (`first`) from a full state ranks
    /// behind fresh news and is sent `state_gossip` times
    /// ([`CatchUp::state_gossip`](crate::CatchUp::state_gossip)); a newer
    /// record of a member already known (a refutation, say) is news.
    pub(super) fn queue_alive(&mut self, node: &Arc<str>, at: usize, first: bool) {
        if let Some(at) = self.members.position_near(node, at) {
            let sent = if self.merging_state && first {
                self.stats.state_gossip_lowered += 1;
                let limit = self.config.retransmit_limit(self.members.len());
                let left = self.config.catch_up.state_gossip as usize;
                u32::try_from(limit.saturating_sub(left)).unwrap_or(u32::MAX)
            } else {
                0
            };
            let g = &mut self.gossip;
            g.scratch.clear();
            let len = self.members.encode_alive(at, &mut g.scratch);
            g.membership
                .push_derived(node, len, at, sent, &mut g.membership_done);
            self.finished_broadcasts();
        }
    }

    /// Queues a membership update about `node`, replacing any older one.
    pub(super) fn queue_membership(
        &mut self,
        node: &Arc<str>,
        message: &Message<'_>,
        token: Option<Token>,
    ) {
        let bytes = encode_packet(message);
        let g = &mut self.gossip;
        g.membership
            .push(Some(node), &bytes, token, &mut g.membership_done);
        self.finished_broadcasts();
    }

    /// Drops the membership update queued about `node`, if any.
    pub(super) fn unqueue_membership(&mut self, node: &str) {
        let g = &mut self.gossip;
        g.membership.remove_key(node, &mut g.membership_done);
        self.finished_broadcasts();
    }

    /// Queues a user message for gossip, replacing a queued one of the same
    /// `key`; the application's own broadcasts get an id, reported when they
    /// leave the queue (relayed ones do not).
    pub(super) fn queue_user_broadcast(
        &mut self,
        key: Option<&str>,
        payload: &[u8],
        tracked: bool,
    ) -> BroadcastId {
        let bytes = encode_packet(&Message::User(payload));
        let g = &mut self.gossip;
        g.last_id += 1;
        let id = BroadcastId(g.last_id);
        let key: Option<Arc<str>> = key.map(Arc::from);
        let token = tracked.then_some(id.0);
        g.user.push(key.as_ref(), &bytes, token, &mut g.user_done);
        self.finished_broadcasts();
        id
    }

    /// Acts on broadcasts that just left the queues: the application hears
    /// of its own, and the last send of our departure completes the leave.
    pub(super) fn finished_broadcasts(&mut self) {
        if !self.gossip.user_done.is_empty() {
            let mut done = core::mem::take(&mut self.gossip.user_done);
            for (token, outcome) in done.drain(..) {
                self.emit(Event::BroadcastFinished {
                    id: BroadcastId(token),
                    outcome,
                });
            }
            self.gossip.user_done = done;
        }
        let g = &mut self.gossip;
        let departed = g.membership_done.iter().any(|&(t, _)| t == LEAVE_TOKEN);
        g.membership_done.clear();
        if departed {
            self.departure_gossiped();
        }
    }

    /// Broadcasts for one packet with `budget` bytes free. Membership
    /// updates and user broadcasts share the space so neither starves: with
    /// both waiting, user broadcasts get at most half and membership the rest.
    pub(super) fn take_broadcasts(&mut self, budget: usize, max_parts: usize) -> Parts {
        let mut out = Parts::default();
        let pulling = self.delegate.has_broadcasts();
        let g = &mut self.gossip;
        if budget == 0 || !(g.is_waiting() || pulling) {
            return out;
        }
        let limit = self.config.retransmit_limit(self.members.len());
        let user_share = if g.membership.is_empty() {
            budget
        } else {
            budget / 2
        };
        let mut user = Parts::default();
        let mut used = g.user.fill(
            COMPOUND_PART_OVERHEAD,
            user_share,
            limit,
            max_parts,
            &mut user,
            &mut g.user_done,
        );
        used += g.membership.fill_deriving(
            COMPOUND_PART_OVERHEAD,
            budget - used,
            limit,
            max_parts - user.len(),
            &mut out,
            &mut g.membership_done,
            AliveMessages(&self.members),
        );
        out.append(&user);
        if pulling {
            self.pull_broadcasts(budget - used, max_parts, &mut out);
        }
        self.finished_broadcasts();
        out
    }

    /// Adds what the delegate hands out (Go's `GetBroadcasts`) to a packet
    /// with `room` bytes left, each as a user message; what does not fit is
    /// dropped and counted.
    fn pull_broadcasts(&mut self, room: usize, max_parts: usize, out: &mut Parts) {
        let overhead = USER_PART_OVERHEAD;
        if room <= overhead {
            return;
        }
        let mut left = room;
        let mut message = Vec::new();
        for payload in self.delegate.broadcasts(overhead, room) {
            let need = payload.len() + overhead;
            if payload.is_empty() || need > left || out.len() >= max_parts {
                self.stats.pulled_broadcasts_dropped += 1;
                continue;
            }
            left -= need;
            message.clear();
            Message::User(&payload).encode(Transport::Packet, &mut message);
            out.push(&message);
        }
    }

    /// A gossip round: what waits goes to a few random members, those dead
    /// only recently included (so they learn they were declared dead).
    pub(super) fn gossip(&mut self, now: Instant) {
        if self.leave.has_left() {
            return;
        }
        let local = self.local_name();
        let dead_time = self.config.gossip_to_the_dead_time;
        let targets = self
            .members
            .random_members(self.config.gossip_nodes, &mut self.rng, |r| {
                *r.name != *local
                    && match r.state {
                        MemberState::Alive | MemberState::Suspect => true,
                        MemberState::Dead => {
                            now.saturating_duration_since(r.state_change) <= dead_time
                        }
                        MemberState::Left => false,
                    }
            });
        let budget = self.packet_room(0);
        for i in targets {
            let r = self.members.record(i);
            let (Some(to), crc) = (r.socket_addr(), r.pmax() >= 5) else {
                continue;
            };
            let msgs = self.take_broadcasts(budget, MAX_COMPOUND_PARTS);
            match msgs.len() {
                0 => return,
                1 => self.send_packet(to, msgs.iter().next().unwrap_or_default(), crc),
                _ => {
                    let parts: Vec<&[u8]> = msgs.iter().collect();
                    let mut compound = Vec::with_capacity(budget + 8);
                    if encode_compound(&parts, &mut compound).is_ok() {
                        self.send_packet(to, &compound, crc);
                    }
                }
            }
        }
    }
}

#[cfg(feature = "simulation")]
impl<D: Delegate> Swim<D> {
    /// Forgets every queued membership update, as if gossip had already carried it to every
    /// node.
    ///
    /// For simulations that start from a cluster formed long ago: a node handed the full
    /// member list queues an alive broadcast for every member it learnt, so N nodes started
    /// that way spend minutes gossiping what each of them already knows. A node in a real
    /// cluster must not call this: it silences updates its peers may not have yet. User
    /// broadcasts stay queued; a departure being gossiped is cut short and completes
    /// ([`Event::LeaveCompleted`](crate::Event::LeaveCompleted)).
    pub fn forget_membership_gossip(&mut self, now: Instant) {
        self.input(now, |s| {
            s.gossip.clear(false);
            s.finished_broadcasts();
        });
    }
}
