//! Datagrams: what arrives is opened, decoded and handed to the concern it
//! belongs to; what leaves is sealed, with gossip piggybacked on protocol
//! messages (Go's `sendMsg`).

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::{Output, Swim};
use crate::delegate::Delegate;
use crate::member::WireIp;
use crate::members::{AliveClaim, Claim};
use crate::rejection::Rejection;
use crate::time::Instant;
use crate::wire::{
    encode_compound, for_each_batch, Message, Transport, COMPOUND_OVERHEAD, MAX_COMPOUND_PARTS,
};

/// A message in its packet form.
pub(super) fn encode_packet(m: &Message<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    m.encode(Transport::Packet, &mut buf);
    buf
}

/// Where to answer a message that names its sender's address: that
/// address, or the datagram's source when it names none usable.
pub(super) fn reply_addr(from: SocketAddr, addr: &[u8], port: u16) -> SocketAddr {
    match WireIp::from_bytes(addr).socket_addr(port) {
        Some(to) if port > 0 => to,
        _ => from,
    }
}

impl<D: Delegate> Swim<D> {
    /// A datagram arrived from `from`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.input(now, |s| s.ingest_packet(now, from, data));
    }

    fn ingest_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        if !self.config.ip_allowed(from.ip()) {
            self.stats.count_rejected(Rejection::PacketCidr);
            return;
        }
        let body = match self.envelope.open_packet(data) {
            Ok(body) => body,
            Err(e) => {
                self.stats.count_wire_error(&e);
                return;
            }
        };
        let limits = self.envelope.limits().clone();
        for_each_batch(&body, &limits, &mut |batch| {
            if batch.len() > 1 {
                // Gossip names members whose records lie far apart: looking them all up first
                // lets those cache misses overlap instead of coming one after another.
                self.members.warm(batch.iter().filter_map(|m| match m {
                    Ok(Message::Alive(a)) => Some(a.node),
                    Ok(Message::Suspect(a) | Message::Dead(a)) => Some(a.node),
                    _ => None,
                }));
            }
            for m in batch.drain(..) {
                match m {
                    Ok(m) => self.dispatch(now, from, m),
                    Err(e) => self.stats.count_wire_error(&e),
                }
            }
        });
    }

    /// Hands one message of a datagram to its concern.
    fn dispatch(&mut self, now: Instant, from: SocketAddr, m: Message<'_>) {
        self.stats.count_message(m.message_type());
        match m {
            Message::Ping(p) => self.handle_ping(now, from, p),
            Message::IndirectPing(ind) => self.handle_indirect_ping(now, from, ind),
            Message::Ack(a) => self.handle_ack(now, a.seq_no, &a.payload),
            Message::Nack(n) => self.handle_nack(n.seq_no),
            Message::Alive(a) => {
                let claim = AliveClaim {
                    node: a.node,
                    addr: &a.addr,
                    port: self.fix_port(a.port),
                    meta: &a.meta,
                    incarnation: a.incarnation,
                    vsn: &a.vsn,
                };
                self.with_rules(now, |m, ctx| m.alive(claim, false, ctx));
            }
            Message::Suspect(s) => {
                self.with_rules_from(now, Some(from), |m, ctx| m.suspect(Claim::from(&s), ctx));
                if s.node == &**self.members.local_name() {
                    self.refute_directly(now, from, s.from);
                }
            }
            Message::Dead(d) if self.doubts(&d) => {
                self.stats.doubted_deaths += 1;
                self.with_rules_from(now, Some(from), |m, ctx| m.suspect(Claim::from(&d), ctx));
            }
            Message::Dead(d) => {
                self.with_rules_from(now, Some(from), |m, ctx| m.dead(Claim::from(&d), ctx));
                if d.node == &**self.members.local_name() && d.from != d.node {
                    self.refute_directly(now, from, d.from);
                }
            }
            Message::User(payload) => self.receive_user_message(from, payload, Transport::Packet),
            // Stream-only messages are refused by the packet decoder.
            Message::PushPull(_) | Message::Error(_) => {}
        }
    }

    /// Go substitutes its own port for a zero one (and for all, below v2).
    pub(super) fn fix_port(&self, port: u16) -> u16 {
        if port == 0 || self.config.protocol_version < 2 {
            self.config.advertise.port()
        } else {
            port
        }
    }

    /// The bytes left in one datagram for the parts of a compound once
    /// `taken` bytes of it are spoken for: the configured UDP buffer less
    /// the envelope's layers (label, encryption, CRC) and the compound's
    /// header. The one measure of a packet's room: for a gossip round
    /// (`taken` 0), for piggybacking on a message (`taken` its length), and
    /// for the largest user broadcast (`taken` its part's overhead).
    pub(super) fn packet_room(&self, taken: usize) -> usize {
        self.config
            .udp_buffer_size
            .saturating_sub(taken + COMPOUND_OVERHEAD + self.envelope.packet_overhead())
    }

    /// Go's `sendMsg`: piggyback gossip on a protocol message. No CRC (Go's
    /// lookup of the recipient by address practically never finds it).
    pub(super) fn send_msg(&mut self, to: SocketAddr, msg: Vec<u8>) {
        let budget = self.packet_room(msg.len());
        let extra = self.take_broadcasts(budget, MAX_COMPOUND_PARTS - 1);
        if extra.is_empty() {
            self.send_packet(to, &msg, false);
        } else {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(extra.len() + 1);
            parts.push(&msg);
            parts.extend(extra.iter());
            let mut compound = Vec::with_capacity(budget + msg.len() + 64);
            match encode_compound(&parts, &mut compound) {
                Ok(()) => self.send_packet(to, &compound, false),
                Err(_) => self.send_packet(to, &msg, false),
            }
        }
    }

    /// Seals `msg` (with a CRC for a peer at protocol 5 when `crc`) and
    /// sends it.
    pub(super) fn send_packet(&mut self, to: SocketAddr, msg: &[u8], crc: bool) {
        let mut data = Vec::with_capacity(msg.len() + 64);
        let rng = &mut self.rng;
        self.envelope
            .seal_packet(msg, crc, || rng.nonce(), &mut data);
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += data.len() as u64;
        self.outputs.push_back(Output::Packet { to, data });
    }
}
