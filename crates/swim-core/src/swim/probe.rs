//! Failure detection: the probe cycle (a ping, then indirect pings through
//! other members, nacks, and a TCP ping as a fallback), the acks that end
//! probes and pings, answering other nodes' pings, and the application's
//! own [`Swim::ping`].

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::catch_up::Happened;
use super::packet::{encode_packet, reply_addr};
use super::stream::Exchange;
use super::timers::Timer;
use super::{CommandError, PingId, Swim};
use crate::delegate::Delegate;
use crate::event::Event;
use crate::member::{MemberState, WireIp};
use crate::members::Claim;
use crate::rejection::Rejection;
use crate::time::Instant;
use crate::wire::{encode_compound, Accusation, Ack, IndirectPing, Message, Nack, Ping, Transport};

/// Most ack handlers waiting at once. Each indirect-ping request a peer
/// sends holds one for the probe timeout, so this bounds what a flood of
/// requests can make us hold (a healthy node has a handful).
const MAX_PENDING_ACKS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    None,
    Pending,
    Succeeded,
    Failed,
}

/// The one probe in flight (Go probes one member at a time).
#[derive(Debug, Clone)]
struct Probe {
    seq: u32,
    target: Arc<str>,
    /// The target's incarnation when the probe began (what a suspicion names).
    incarnation: u32,
    sent: Instant,
    /// When the probe fails without an ack (scaled by the health score).
    deadline: Instant,
    expected_nacks: u32,
    nacks: u32,
    fallback: Fallback,
    /// The deadline passed while the TCP fallback was still running.
    expired: bool,
}

/// Who waits for the ack of a sequence number.
#[derive(Debug, Clone)]
enum AckHandler {
    /// The probe in flight.
    Probe,
    /// We ping for another node; relay its ack, or nack on expiry.
    Relay {
        origin_seq: u32,
        origin: SocketAddr,
        nack: bool,
    },
    /// The last probe of a suspect before its death (catch-up's
    /// `last_probe.rs`).
    LastProbe,
    /// [`Swim::ping`] by the application.
    UserPing {
        id: PingId,
        node: Arc<str>,
        sent: Instant,
    },
}

/// The state of failure detection.
#[derive(Debug, Default)]
pub(super) struct Probing {
    current: Option<Probe>,
    /// Where the probe order continues.
    cursor: usize,
    /// A tick came while a probe was in flight (Go's ticker keeps one).
    tick_pending: bool,
    /// The last sequence number used (Go's `sequenceNum`).
    seq_no: u32,
    acks: hashbrown::HashMap<u32, AckHandler, foldhash::fast::FixedState>,
    last_ping: u64,
}

impl Probing {
    pub(super) fn is_current(&self, seq: u32) -> bool {
        self.current.as_ref().is_some_and(|p| p.seq == seq)
    }

    pub(super) fn awaits_ack(&self, seq: u32) -> bool {
        self.acks.contains_key(&seq)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq_no = self.seq_no.wrapping_add(1);
        self.seq_no
    }

    /// The probe in flight, if its sequence number is `seq`.
    fn current_mut(&mut self, seq: u32) -> Option<&mut Probe> {
        self.current.as_mut().filter(|p| p.seq == seq)
    }
}

impl<D: Delegate> Swim<D> {
    // ---------------------------------------------------------------- probe cycle

    pub(super) fn probe_tick(&mut self, now: Instant) {
        self.timers
            .schedule(now + self.config.probe_interval, Timer::ProbeTick);
        if self.probing.current.is_some() {
            // Go's ticker keeps one tick for a busy receiver.
            self.probing.tick_pending = true;
        } else {
            self.start_probe(now);
        }
    }

    fn start_probe(&mut self, now: Instant) {
        let target = self.members.next_probe_target(
            &mut self.probing.cursor,
            now,
            self.config.gossip_to_the_dead_time,
            &mut self.rng,
        );
        let Some(target) = target else { return };
        let Some(r) = self.members.get(&target) else {
            return;
        };
        let Some(to) = r.socket_addr() else { return };
        let (state, incarnation, pmax) = (r.state, r.incarnation, r.pmax());
        let seq = self.probing.next_seq();
        let scaled = self.awareness.scale(self.config.probe_interval);
        self.probing.current = Some(Probe {
            seq,
            target: target.clone(),
            incarnation,
            sent: now,
            deadline: now + scaled,
            expected_nacks: 0,
            nacks: 0,
            fallback: Fallback::None,
            expired: false,
        });
        self.probing.acks.insert(seq, AckHandler::Probe);
        self.stats.probes += 1;
        if state == MemberState::Alive {
            let ping = self.ping_message(seq, &target);
            self.send_msg(to, ping);
        } else {
            self.ping_accused(to, seq, &target, incarnation, pmax);
        }
        self.timers
            .schedule(now + self.config.probe_timeout, Timer::ProbeIndirect(seq));
        self.timers
            .schedule(now + scaled, Timer::ProbeDeadline(seq));
    }

    /// Pings suspect `target` at `to` with the accusation beside the ping,
    /// so it can refute at once (the buddy system).
    fn ping_accused(&mut self, to: SocketAddr, seq: u32, target: &str, incarnation: u32, pmax: u8) {
        let ping = self.ping_message(seq, target);
        let suspect = encode_packet(&Message::Suspect(Accusation {
            incarnation,
            node: target,
            from: &self.config.name,
        }));
        let mut compound = Vec::with_capacity(ping.len() + suspect.len() + 6);
        if encode_compound(&[&ping, &suspect], &mut compound).is_ok() {
            self.send_packet(to, &compound, pmax >= 5);
        }
    }

    /// No direct ack within the probe timeout: ask other members to ping
    /// the target, and try a TCP ping.
    pub(super) fn probe_indirect(&mut self, now: Instant, seq: u32) {
        let Some(p) = self.probing.current_mut(seq) else {
            return;
        };
        let target = p.target.clone();
        let Some(r) = self.members.get(&target) else {
            return;
        };
        let pmax = r.pmax();
        let expected = self.ask_helpers(seq, &target, true);
        let tcp = !self.config.disable_tcp_pings && pmax >= 3;
        let deadline = self.probing.current.as_ref().map_or(now, |p| p.deadline);
        if let Some(p) = &mut self.probing.current {
            p.expected_nacks = expected;
            if tcp {
                p.fallback = Fallback::Pending;
            }
        }
        if tcp {
            if let Some(to) = self.members.get(&target).and_then(|r| r.socket_addr()) {
                let ping = self.ping_message(seq, &target);
                self.connect(now, to, &ping, true, deadline, Exchange::TcpPing { seq });
            }
        }
    }

    /// Asks `indirect_checks` random alive members to ping `target` for us
    /// under `seq`, with gossip piggybacked if `piggyback`; returns how many
    /// will nack if they get no answer.
    fn ask_helpers(&mut self, seq: u32, target: &Arc<str>, piggyback: bool) -> u32 {
        let Some(r) = self.members.get(target) else {
            return 0;
        };
        let (addr, port) = (r.addr, r.port);
        let target = target.clone();
        let local = self.local_name();
        let helpers =
            self.members
                .random_members(self.config.indirect_checks, &mut self.rng, |r| {
                    r.name != local && r.name != target && r.state == MemberState::Alive
                });
        let adv = self.config.advertise;
        let own_ip = WireIp::from_ip(adv.ip());
        let mut expected = 0;
        let mut sends = Vec::with_capacity(helpers.len());
        for i in helpers {
            let h = self.members.record(i);
            let Some(to) = h.socket_addr() else { continue };
            let nack = h.pmax() >= 4;
            expected += u32::from(nack);
            let mut buf = Vec::with_capacity(128);
            Message::IndirectPing(IndirectPing {
                seq_no: seq,
                target: addr.as_bytes().into(),
                port,
                node: &target,
                nack,
                source_addr: own_ip.as_bytes().into(),
                source_port: adv.port(),
                source_node: &self.config.name,
            })
            .encode(Transport::Packet, &mut buf);
            sends.push((to, buf));
        }
        for (to, buf) in sends {
            if piggyback {
                self.send_msg(to, buf);
            } else {
                self.send_packet(to, &buf, false);
            }
        }
        expected
    }

    /// The last probe of suspect `target` before its death (catch-up's
    /// `last_probe.rs`): a ping carrying the accusation at `incarnation`,
    /// and the same ping asked of `indirect_checks` members, answered
    /// within `wait`. Its sequence number, if the suspect has an address.
    pub(super) fn send_last_probe(
        &mut self,
        now: Instant,
        target: &Arc<str>,
        incarnation: u32,
        wait: core::time::Duration,
    ) -> Option<u32> {
        let r = self.members.get(target)?;
        let to = r.socket_addr()?;
        let pmax = r.pmax();
        if self.probing.acks.len() >= MAX_PENDING_ACKS {
            return None;
        }
        let seq = self.probing.next_seq();
        self.probing.acks.insert(seq, AckHandler::LastProbe);
        self.timers.schedule(now + wait, Timer::AckExpiry(seq));
        self.ping_accused(to, seq, target, incarnation, pmax);
        // No gossip rides on these: a partition makes many last probes at
        // once, and gossip sent with them into the cut would spend its
        // retransmissions where they cannot arrive.
        self.ask_helpers(seq, target, false);
        Some(seq)
    }

    /// The probe's deadline passed.
    pub(super) fn probe_deadline(&mut self, now: Instant, seq: u32) {
        let Some(p) = self.probing.current_mut(seq) else {
            return;
        };
        let fallback = p.fallback;
        if fallback == Fallback::Pending {
            p.expired = true; // decide when TCP reports
        }
        let target = p.target.clone();
        // The ack handler expires with the probe.
        self.probing.acks.remove(&seq);
        match fallback {
            Fallback::Pending => {}
            Fallback::Succeeded => {
                self.finish_probe(now, -1);
                self.catch_up_on(now, Happened::OnlyTcp { node: &target });
            }
            Fallback::None | Fallback::Failed => self.fail_probe(now),
        }
    }

    /// The TCP ping of probe `seq` answered (`ok`) or failed.
    pub(super) fn fallback_done(&mut self, now: Instant, seq: u32, ok: bool) {
        let Some(p) = self.probing.current_mut(seq) else {
            return;
        };
        p.fallback = if ok {
            Fallback::Succeeded
        } else {
            Fallback::Failed
        };
        if p.expired {
            if ok {
                let target = p.target.clone();
                self.finish_probe(now, -1);
                self.catch_up_on(now, Happened::OnlyTcp { node: &target });
            } else {
                self.fail_probe(now);
            }
        }
    }

    /// No ack by the deadline: suspect the target. Missed nacks mean the
    /// fault may be ours, so the health score rises by as many.
    fn fail_probe(&mut self, now: Instant) {
        let Some(p) = self.probing.current.take() else {
            return;
        };
        let delta = if p.expected_nacks > 0 {
            p.expected_nacks.saturating_sub(p.nacks) as i32
        } else {
            1
        };
        self.stats.probes_failed += 1;
        let local = self.local_name();
        self.with_rules(now, |m, ctx| {
            m.suspect(
                Claim {
                    node: &p.target,
                    incarnation: p.incarnation,
                    from: &local,
                },
                ctx,
            )
        });
        self.finish_probe(now, delta);
    }

    /// Ends the current probe (if still set) and applies the awareness delta.
    fn finish_probe(&mut self, now: Instant, awareness_delta: i32) {
        self.probing.current = None;
        self.awareness.apply(awareness_delta);
        if core::mem::take(&mut self.probing.tick_pending) {
            self.start_probe(now);
        }
    }

    // ---------------------------------------------------------------- acks

    pub(super) fn handle_ack(&mut self, now: Instant, seq: u32, payload: &[u8]) {
        let Some(handler) = self.probing.acks.remove(&seq) else {
            self.stats.count_rejected(Rejection::AckUnknownSeq);
            return;
        };
        match handler {
            AckHandler::Probe => {
                let Some(p) = self.probing.current.take_if(|p| p.seq == seq) else {
                    return;
                };
                self.emit(Event::ProbeAcked {
                    node: p.target.clone(),
                    rtt: now.saturating_duration_since(p.sent),
                    payload: payload.to_vec(),
                });
                self.finish_probe(now, -1);
                self.catch_up_on(now, Happened::ProbeAcked { node: &p.target });
            }
            AckHandler::Relay {
                origin_seq, origin, ..
            } => {
                let ack = encode_packet(&Message::Ack(Ack {
                    seq_no: origin_seq,
                    payload: (&[][..]).into(),
                }));
                self.send_msg(origin, ack);
            }
            AckHandler::LastProbe => self.last_probe_answered(now, seq),
            AckHandler::UserPing { id, node, sent } => {
                self.emit(Event::PingCompleted {
                    id,
                    node,
                    rtt: now.saturating_duration_since(sent),
                    payload: payload.to_vec(),
                });
            }
        }
    }

    pub(super) fn handle_nack(&mut self, seq: u32) {
        if let Some(p) = self.probing.current_mut(seq) {
            p.nacks += 1;
        }
    }

    /// A relay or user ping got no ack in time: nack the relay's origin (if
    /// it asked), fail the ping. (The probe's handler ends with the probe.)
    pub(super) fn ack_expired(&mut self, seq: u32) {
        match self.probing.acks.get(&seq) {
            Some(
                AckHandler::Relay { .. } | AckHandler::UserPing { .. } | AckHandler::LastProbe,
            ) => {}
            _ => return,
        }
        match self.probing.acks.remove(&seq) {
            Some(AckHandler::Relay {
                origin_seq,
                origin,
                nack: true,
            }) => {
                let nack = encode_packet(&Message::Nack(Nack { seq_no: origin_seq }));
                self.send_msg(origin, nack);
            }
            Some(AckHandler::UserPing { id, node, .. }) => {
                self.emit(Event::PingFailed { id, node });
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- other nodes' pings

    /// The ack that answers `ping`, encoded for `transport`; `None` if the
    /// ping names another node. Over a stream the ack carries no payload,
    /// as in Go.
    pub(super) fn answer_ping(&mut self, ping: &Ping<'_>, transport: Transport) -> Option<Vec<u8>> {
        if !ping.node.is_empty() && ping.node != self.config.name {
            self.stats.count_rejected(Rejection::PingWrongNode);
            return None;
        }
        let asked = match transport {
            Transport::Packet => self.delegate.ack_payload(),
            Transport::Stream => None,
        };
        let payload = match (transport, &asked) {
            (Transport::Packet, Some(asked)) => &asked[..],
            (Transport::Packet, None) => &self.local.ack_payload[..],
            (Transport::Stream, _) => &[][..],
        };
        let mut ack = Vec::with_capacity(24 + payload.len());
        Message::Ack(Ack {
            seq_no: ping.seq_no,
            payload: payload.into(),
        })
        .encode(transport, &mut ack);
        Some(ack)
    }

    pub(super) fn handle_ping(&mut self, now: Instant, from: SocketAddr, ping: Ping<'_>) {
        if let Some(ack) = self.answer_ping(&ping, Transport::Packet) {
            let to = reply_addr(from, &ping.source_addr, ping.source_port);
            self.send_msg(to, ack);
            self.catch_up_on(
                now,
                Happened::Contact {
                    node: ping.source_node,
                    addr: &ping.source_addr,
                    port: ping.source_port,
                },
            );
        }
    }

    /// Another node asks us to ping `ind.node` for it.
    pub(super) fn handle_indirect_ping(
        &mut self,
        now: Instant,
        from: SocketAddr,
        ind: IndirectPing<'_>,
    ) {
        let Some(ip) = WireIp::from_bytes(&ind.target).to_ip() else {
            self.stats.count_rejected(Rejection::IndirectPingBadTarget);
            return;
        };
        if self.probing.acks.len() >= MAX_PENDING_ACKS {
            self.stats.count_rejected(Rejection::IndirectPingBusy);
            return;
        }
        let target = SocketAddr::new(ip, self.fix_port(ind.port));
        let origin = reply_addr(from, &ind.source_addr, ind.source_port);
        let seq = self.probing.next_seq();
        self.probing.acks.insert(
            seq,
            AckHandler::Relay {
                origin_seq: ind.seq_no,
                origin,
                nack: ind.nack,
            },
        );
        self.timers
            .schedule(now + self.config.probe_timeout, Timer::AckExpiry(seq));
        let ping = self.ping_message(seq, ind.node);
        self.send_msg(target, ping);
        self.catch_up_on(
            now,
            Happened::Contact {
                node: ind.source_node,
                addr: &ind.source_addr,
                port: ind.source_port,
            },
        );
    }

    /// A ping of ours, in its packet form.
    pub(super) fn ping_message(&self, seq: u32, node: &str) -> Vec<u8> {
        let adv = self.config.advertise;
        let ip = WireIp::from_ip(adv.ip());
        let mut buf = Vec::with_capacity(96);
        Message::Ping(Ping {
            seq_no: seq,
            node,
            source_addr: ip.as_bytes().into(),
            source_port: adv.port(),
            source_node: &self.config.name,
        })
        .encode(Transport::Packet, &mut buf);
        buf
    }

    // ---------------------------------------------------------------- the application's pings

    /// Pings a member directly, as the application asks; the answer comes as
    /// [`Event::PingCompleted`] or [`Event::PingFailed`] with the id
    /// returned here.
    pub fn ping(&mut self, now: Instant, node: &str) -> Result<PingId, CommandError> {
        self.input(now, |s| {
            let r = s.members.get(node).ok_or(CommandError::UnknownMember)?;
            let to = r.socket_addr().ok_or(CommandError::UnknownMember)?;
            let name = r.name.clone();
            s.probing.last_ping += 1;
            let id = PingId(s.probing.last_ping);
            let seq = s.probing.next_seq();
            s.probing.acks.insert(
                seq,
                AckHandler::UserPing {
                    id,
                    node: name,
                    sent: now,
                },
            );
            s.timers
                .schedule(now + s.config.probe_timeout, Timer::AckExpiry(seq));
            let ping = s.ping_message(seq, node);
            s.send_msg(to, ping);
            Ok(id)
        })
    }
}
