//! The application's messages: user broadcasts (gossiped, transmit-limited,
//! relayed when configured), best-effort and reliable messages to one
//! member, and those that arrive.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::SocketAddr;

use super::gossip::USER_PART_OVERHEAD;
use super::packet::encode_packet;
use super::stream::Exchange;
use super::{CommandError, ExchangeId, Swim};
use crate::delegate::Delegate;
use crate::event::Event;
use crate::ids::BroadcastId;
use crate::time::Instant;
use crate::wire::{Message, Transport};

/// Hashes of recently relayed user payloads, oldest first, and as a set.
#[derive(Debug)]
pub(super) struct Relayed {
    order: VecDeque<u64>,
    set: hashbrown::HashSet<u64, foldhash::fast::FixedState>,
}

impl Default for Relayed {
    fn default() -> Self {
        Relayed {
            order: VecDeque::new(),
            set: hashbrown::HashSet::with_hasher(foldhash::fast::FixedState::with_seed(1)),
        }
    }
}

impl Relayed {
    /// Records a user payload as seen, remembering the last `memory`; false
    /// if it already was.
    fn remember(&mut self, payload: &[u8], memory: usize) -> bool {
        let h = foldhash::fast::FixedState::with_seed(0x0072_656c_6179).hash_one(payload);
        if !self.set.insert(h) {
            return false;
        }
        self.order.push_back(h);
        while self.order.len() > memory {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

impl<D: Delegate> Swim<D> {
    /// Queues `payload` to be gossiped to every member (transmit-limited,
    /// like membership updates). It must fit a packet with room to spare.
    /// [`Event::BroadcastFinished`] with the id returned says when it has
    /// been sent its full number of times.
    pub fn broadcast(&mut self, now: Instant, payload: &[u8]) -> Result<BroadcastId, CommandError> {
        self.user_broadcast(now, None, payload)
    }

    /// [`broadcast`](Self::broadcast) under a name (Go's `NamedBroadcast`):
    /// it replaces a queued broadcast of the same `key`, whose
    /// [`Event::BroadcastFinished`] then says
    /// [`Replaced`](crate::BroadcastOutcome::Replaced). For "the latest value
    /// of K": only the newest is sent.
    pub fn broadcast_named(
        &mut self,
        now: Instant,
        key: &str,
        payload: &[u8],
    ) -> Result<BroadcastId, CommandError> {
        self.user_broadcast(now, Some(key), payload)
    }

    fn user_broadcast(
        &mut self,
        now: Instant,
        key: Option<&str>,
        payload: &[u8],
    ) -> Result<BroadcastId, CommandError> {
        self.input(now, |s| {
            if payload.is_empty() {
                return Err(CommandError::BadPayload("empty"));
            }
            let limit = s.packet_room(USER_PART_OVERHEAD);
            if payload.len() > limit {
                return Err(CommandError::PayloadTooLarge {
                    len: payload.len(),
                    limit,
                    limit_of: "a broadcast may hold: it must fit one packet \
                               (Config::udp_buffer_size) beside its framing",
                });
            }
            if s.leave.has_left() {
                return Err(CommandError::Left);
            }
            let queue = &s.gossip.user;
            let replaces = key.is_some_and(|k| queue.contains_key(k));
            if queue.len() >= s.config.max_broadcast_queue && !replaces {
                return Err(CommandError::QueueFull(queue.len()));
            }
            if s.config.relay_user_broadcasts {
                s.relayed.remember(payload, s.config.relay_memory);
            }
            Ok(s.queue_user_broadcast(key, payload, true))
        })
    }

    /// Sends `payload` to a member in one datagram, not piggybacked (Go's
    /// `SendBestEffort`).
    pub fn send_best_effort(
        &mut self,
        now: Instant,
        node: &str,
        payload: &[u8],
    ) -> Result<(), CommandError> {
        self.input(now, |s| {
            if payload.is_empty() {
                return Err(CommandError::BadPayload("empty"));
            }
            let r = s.members.get(node).ok_or(CommandError::UnknownMember)?;
            let to = r.socket_addr().ok_or(CommandError::UnknownMember)?;
            let crc = r.pmax() >= 5;
            let msg = encode_packet(&Message::User(payload));
            s.send_packet(to, &msg, crc);
            Ok(())
        })
    }

    /// Sends `payload` to a member over a stream (Go's `SendReliable`); the
    /// caller learns the outcome from the exchange with the id returned.
    pub fn send_reliable(
        &mut self,
        now: Instant,
        node: &str,
        payload: &[u8],
    ) -> Result<ExchangeId, CommandError> {
        self.input(now, |s| {
            if payload.is_empty() {
                return Err(CommandError::BadPayload("empty"));
            }
            let limit = s.envelope.limits().max_user_message;
            if payload.len() > limit {
                // The receiver refuses it (Limits::max_user_message, alike
                // on every node unless configured otherwise).
                return Err(CommandError::PayloadTooLarge {
                    len: payload.len(),
                    limit,
                    limit_of: "a stream user message may hold (Limits::max_user_message)",
                });
            }
            let r = s.members.get(node).ok_or(CommandError::UnknownMember)?;
            let to = r.socket_addr().ok_or(CommandError::UnknownMember)?;
            let mut msg = Vec::with_capacity(payload.len() + 16);
            Message::User(payload).encode(Transport::Stream, &mut msg);
            let deadline = now + s.config.tcp_timeout;
            Ok(s.connect(now, to, &msg, false, deadline, Exchange::Reliable))
        })
    }

    /// The member a user message from `from` came from: a datagram's source
    /// is a member's address; a stream's port is ephemeral, so only its IP
    /// can name a member, when just one advertises it.
    fn sender_of(&self, from: SocketAddr, transport: Transport) -> Option<alloc::sync::Arc<str>> {
        let mut found = self.members.records().iter().filter(|r| {
            r.socket_addr().is_some_and(|a| match transport {
                Transport::Packet => a == from,
                Transport::Stream => a.ip() == from.ip(),
            })
        });
        let first = found.next()?;
        found.next().is_none().then(|| first.name.clone())
    }

    /// A user message arrived from `from`. One that came in a datagram is
    /// relayed, if relaying is on and it was not seen recently (a repeat is
    /// neither relayed nor delivered again).
    pub(super) fn receive_user_message(
        &mut self,
        from: SocketAddr,
        payload: &[u8],
        transport: Transport,
    ) {
        if payload.is_empty() {
            return;
        }
        let relay = transport == Transport::Packet && self.config.relay_user_broadcasts;
        if relay && !self.relayed.remember(payload, self.config.relay_memory) {
            return; // seen it: delivered and relayed already
        }
        let node = self.sender_of(from, transport);
        self.emit(Event::UserMessage {
            from,
            node,
            payload: payload.to_vec(),
        });
        if relay {
            self.queue_user_broadcast(None, payload, false);
        }
    }
}
