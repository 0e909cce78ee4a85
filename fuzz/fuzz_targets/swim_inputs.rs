//! One `Swim` node driven by a small byte-code: every input it can get —
//! datagrams (raw, built from valid messages with fields from the input, or
//! valid then mutated), time, incoming streams, results of the exchanges it
//! asked for, and every command. No input may panic, and after each
//! operation the cheap invariants of the state rules (docs/protocol.md §10) must
//! hold: the local node never believes itself Suspect or Dead, incarnations
//! never go back and metadata never changes within an incarnation (except
//! where a member left or died and its name was reclaimed), and the member
//! table and broadcast queues stay within their bounds.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use swim_core::wire::{
    encode_compound, for_each_message, Accusation, Ack, Alive, ErrorResponse, IndirectPing,
    Keyring, Message, Nack, NodeState, Ping, PushNodeState, PushPull, SecretKey, StreamRole,
    Transport,
};
use swim_core::{
    Config, ExchangeError, ExchangeId, Instant, Member, MemberState, Output, Rejection, StreamId,
    Swim,
};

const NAMES: [&str; 6] = ["a", "b", "c", "me", "", "a-rather-longer-node-name"];
const ME: &str = "me";
const IPS: [&[u8]; 7] = [
    &[10, 0, 0, 1],
    &[10, 0, 0, 2],
    &[10, 0, 0, 100],
    &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1],
    &[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    &[1, 2, 3],
    &[],
];
const PORTS: [u16; 3] = [7946, 7947, 0];
const VSNS: [&[u8]; 6] = [
    &[1, 5, 2, 0, 0, 0],
    &[1, 5, 5, 0, 0, 0],
    &[],
    &[0, 5, 2, 0, 0, 0],
    &[1, 5, 2, 0, 0, 0, 9],
    &[1, 5],
];
const KEYS: [&[u8]; 4] = [&[0x11; 32], &[0x22; 16], &[0x33; 24], &[0x44; 5]];

/// The fuzz input, read front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.byte() as usize % items.len()]
    }

    /// A length-prefixed run of raw bytes.
    fn bytes(&mut self) -> &'a [u8] {
        let n = (self.byte() as usize).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }

    fn name(&mut self) -> &'static str {
        self.pick(&NAMES)
    }

    /// Mostly small incarnations (to collide), sometimes the edges.
    fn incarnation(&mut self) -> u32 {
        match self.byte() {
            b @ 0..=199 => u32::from(b % 8),
            200..=209 => u32::MAX,
            210..=219 => u32::MAX - 1,
            220..=229 => 1 << 31,
            _ => self.u32(),
        }
    }

    fn meta(&mut self) -> Vec<u8> {
        match self.byte() {
            b @ 0..=239 => vec![b'm'; usize::from(b % 4) * 3],
            b => vec![b; 500 + usize::from(b - 240) * 2],
        }
    }

    fn vsn(&mut self) -> Vec<u8> {
        match self.byte() {
            b @ 0..=249 => VSNS[usize::from(b) % VSNS.len()].to_vec(),
            _ => self.bytes().to_vec(),
        }
    }

    fn alive(&mut self) -> (&'static str, u32, &'static [u8], u16, Vec<u8>, Vec<u8>) {
        (
            self.name(),
            self.incarnation(),
            self.pick(&IPS),
            self.pick(&PORTS),
            self.meta(),
            self.vsn(),
        )
    }

    fn entries(&mut self) -> Vec<Entry> {
        (0..self.byte() % 6)
            .map(|_| {
                let (name, inc, ip, port, meta, vsn) = self.alive();
                Entry {
                    name,
                    inc,
                    ip,
                    port,
                    meta,
                    vsn,
                    state: self.byte() % 5,
                }
            })
            .collect()
    }

    fn error(&mut self) -> ExchangeError {
        match self.byte() % 4 {
            0 => ExchangeError::Io(swim_core::IoKind::Other),
            1 => ExchangeError::Timeout,
            2 => ExchangeError::Remote("boom".into()),
            _ => ExchangeError::Refused(Rejection::MergeVetoed),
        }
    }
}

struct Entry {
    name: &'static str,
    inc: u32,
    ip: &'static [u8],
    port: u16,
    meta: Vec<u8>,
    vsn: Vec<u8>,
    state: u8,
}

fn encode(m: &Message<'_>, t: Transport) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(t, &mut out);
    out
}

fn push_pull(entries: &[Entry], join: bool, user_state: &[u8]) -> Vec<u8> {
    let nodes = entries
        .iter()
        .map(|e| PushNodeState {
            name: e.name,
            addr: e.ip.into(),
            port: e.port,
            meta: e.meta[..].into(),
            incarnation: e.inc,
            state: NodeState::from_code(i64::from(e.state)),
            vsn: e.vsn[..].into(),
        })
        .collect();
    encode(
        &Message::PushPull(PushPull {
            join,
            nodes,
            user_state,
        }),
        Transport::Stream,
    )
}

struct Harness {
    swim: Swim,
    now: Instant,
    max_members: usize,
    max_queue: usize,
    /// Exchanges asked for and not yet answered: id and the bytes to write.
    connects: Vec<(ExchangeId, Vec<u8>)>,
    /// Pings the node sent: where, and their sequence numbers.
    pings: Vec<(SocketAddr, u32)>,
    next_stream: u64,
    /// Every member's incarnation as last seen.
    last: BTreeMap<String, Member>,
    /// Metadata seen per (name, incarnation).
    meta_at: BTreeMap<(String, u32), Vec<u8>>,
    /// Names that the input since the last check said left: a leave may
    /// be followed by a reclaim (a new life) within one datagram or stream.
    left: BTreeSet<String>,
}

impl Harness {
    fn drain(&mut self) {
        while let Some(o) = self.swim.poll_output() {
            match o {
                Output::Packet { to, data } => {
                    let Ok(body) = self.swim.envelope().open_packet(&data) else {
                        continue;
                    };
                    let limits = self.swim.envelope().limits().clone();
                    let pings = &mut self.pings;
                    for_each_message(&body, &limits, &mut |m| match m {
                        Ok(Message::Ping(p)) => pings.push((to, p.seq_no)),
                        Ok(Message::IndirectPing(p)) => pings.push((to, p.seq_no)),
                        _ => {}
                    });
                    if pings.len() > 16 {
                        pings.drain(..pings.len() - 16);
                    }
                }
                Output::Connect { id, data, .. } => {
                    self.connects.push((id, data));
                    if self.connects.len() > 32 {
                        self.connects.remove(0);
                    }
                }
                Output::StreamReply { .. } | Output::Event(_) => {}
            }
        }
    }

    fn seal_packet(&self, message: &[u8], crc: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.swim
            .envelope()
            .seal_packet(message, crc, || [7; 12], &mut out);
        out
    }

    fn seal_stream(&self, message: &[u8], label: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if label {
            self.swim.envelope().write_stream_label(&mut out);
        }
        self.swim
            .envelope()
            .seal_stream(message, || [9; 12], &mut out);
        out
    }

    /// One valid packet message with fields from the input.
    fn message(&self, input: &mut Input<'_>) -> Vec<u8> {
        match input.byte() % 9 {
            0..=2 => {
                let (node, incarnation, ip, port, meta, vsn) = input.alive();
                let m = Alive {
                    incarnation,
                    node,
                    addr: ip.into(),
                    port,
                    meta: meta.into(),
                    vsn: vsn.into(),
                };
                encode(&Message::Alive(m), Transport::Packet)
            }
            3 => {
                let m = Accusation {
                    incarnation: input.incarnation(),
                    node: input.name(),
                    from: input.name(),
                };
                encode(&Message::Suspect(m), Transport::Packet)
            }
            4 => {
                let m = Accusation {
                    incarnation: input.incarnation(),
                    node: input.name(),
                    from: input.name(),
                };
                encode(&Message::Dead(m), Transport::Packet)
            }
            5 => {
                let m = Ping {
                    seq_no: input.u32(),
                    node: input.name(),
                    source_addr: input.pick(&IPS).into(),
                    source_port: input.pick(&PORTS),
                    source_node: input.name(),
                };
                encode(&Message::Ping(m), Transport::Packet)
            }
            6 => {
                let m = IndirectPing {
                    seq_no: input.u32(),
                    target: input.pick(&IPS).into(),
                    port: input.pick(&PORTS),
                    node: input.name(),
                    nack: input.byte() & 1 == 0,
                    source_addr: input.pick(&IPS).into(),
                    source_port: input.pick(&PORTS),
                    source_node: input.name(),
                };
                encode(&Message::IndirectPing(m), Transport::Packet)
            }
            7 => {
                let seq_no = match self.pings.len() {
                    0 => input.u32(),
                    n => self.pings[input.byte() as usize % n].1,
                };
                if input.byte() & 1 == 0 {
                    encode(
                        &Message::Ack(Ack {
                            seq_no,
                            payload: input.bytes().into(),
                        }),
                        Transport::Packet,
                    )
                } else {
                    encode(&Message::Nack(Nack { seq_no }), Transport::Packet)
                }
            }
            _ => encode(&Message::User(input.bytes()), Transport::Packet),
        }
    }

    /// Delivers a datagram, noting the departures it announces.
    fn packet(&mut self, from: SocketAddr, data: &[u8]) {
        if let Ok(body) = self.swim.envelope().open_packet(data) {
            let limits = self.swim.envelope().limits().clone();
            let left = &mut self.left;
            for_each_message(&body, &limits, &mut |m| {
                if let Ok(Message::Dead(d)) = m {
                    if d.node == d.from {
                        left.insert(d.node.to_string());
                    }
                }
            });
        }
        self.swim.handle_packet(self.now, from, data);
    }

    /// Notes the departures a stream message announces (Left entries of a
    /// push/pull).
    fn note_stream(&mut self, frame: &[u8], role: StreamRole) {
        let Ok(m) = self.swim.envelope().open_stream(frame, role) else {
            return;
        };
        let limits = self.swim.envelope().limits().clone();
        if let Ok(Message::PushPull(pp)) = Message::decode(&m, Transport::Stream, &limits) {
            for n in pp.nodes.iter().filter(|n| n.state == NodeState::Left) {
                self.left.insert(n.name.to_string());
            }
        }
    }

    fn from(&self, input: &mut Input<'_>) -> SocketAddr {
        match input.byte() % 4 {
            0 => "10.0.0.1:7946".parse().unwrap(),
            1 => "10.0.0.2:7946".parse().unwrap(),
            2 => "[fd00::1]:7946".parse().unwrap(),
            _ => match self.pings.first() {
                Some((to, _)) => *to,
                None => "10.0.0.3:7946".parse().unwrap(),
            },
        }
    }

    fn op(&mut self, input: &mut Input<'_>) {
        let now = self.now;
        match input.byte() % 20 {
            // A raw datagram.
            0 => {
                let from = self.from(input);
                let data = input.bytes();
                self.packet(from, data);
            }
            // A valid message.
            1..=4 => {
                let from = self.from(input);
                let m = self.message(input);
                let data = self.seal_packet(&m, input.byte() & 1 == 0);
                self.packet(from, &data);
            }
            // A compound of valid messages.
            5 => {
                let from = self.from(input);
                let parts: Vec<Vec<u8>> = (0..1 + input.byte() % 4)
                    .map(|_| self.message(input))
                    .collect();
                let refs: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
                let mut compound = Vec::new();
                if encode_compound(&refs, &mut compound).is_ok() {
                    let data = self.seal_packet(&compound, input.byte() & 1 == 0);
                    self.packet(from, &data);
                }
            }
            // A valid datagram, mutated.
            6 => {
                let from = self.from(input);
                let m = self.message(input);
                let mut data = self.seal_packet(&m, input.byte() & 1 == 0);
                for _ in 0..1 + input.byte() % 4 {
                    let (at, x) = (input.u16() as usize, input.byte());
                    match input.byte() % 3 {
                        _ if data.is_empty() => data.push(x),
                        0 => {
                            let i = at % data.len();
                            data[i] ^= x;
                        }
                        1 => {
                            let i = at % data.len();
                            data.truncate(i);
                        }
                        _ => data.insert(at % (data.len() + 1), x),
                    }
                }
                self.packet(from, &data);
            }
            // Time passes.
            7 | 8 => {
                let ms = match input.byte() {
                    b @ 0..=199 => u64::from(b) * 10,
                    b => u64::from(b - 199) * 2_000,
                };
                let target = now + Duration::from_millis(ms);
                if input.byte() & 1 == 0 {
                    for _ in 0..32 {
                        match self.swim.poll_timeout() {
                            Some(t) if t <= target => {
                                self.now = self.now.max(t);
                                self.swim.handle_timeout(self.now);
                                self.drain();
                                self.check();
                            }
                            _ => break,
                        }
                    }
                }
                self.now = target;
                self.swim.handle_timeout(target);
            }
            // An incoming stream: raw, or a valid push/pull, ping or user message.
            9 | 10 => {
                let from = self.from(input);
                self.next_stream += 1;
                let stream = StreamId(self.next_stream);
                let frame = match input.byte() % 5 {
                    0 => input.bytes().to_vec(),
                    1 => {
                        let m = Ping {
                            seq_no: input.u32(),
                            node: input.name(),
                            ..Ping::default()
                        };
                        self.seal_stream(&encode(&Message::Ping(m), Transport::Stream), true)
                    }
                    2 => self.seal_stream(
                        &encode(&Message::User(input.bytes()), Transport::Stream),
                        true,
                    ),
                    _ => {
                        let entries = input.entries();
                        let join = input.byte() & 1 == 0;
                        self.seal_stream(&push_pull(&entries, join, input.bytes()), true)
                    }
                };
                self.note_stream(&frame, StreamRole::Accept);
                self.swim.handle_stream(now, stream, from, &frame);
            }
            // The result of an exchange the node asked for.
            11 | 12 => {
                if self.connects.is_empty() {
                    return;
                }
                let (id, data) = self
                    .connects
                    .remove(input.byte() as usize % self.connects.len());
                let reply = match input.byte() % 7 {
                    0 => Err(input.error()),
                    1 => Ok(input.bytes().to_vec()),
                    2 => Ok(Vec::new()),
                    3 => Ok(self.seal_stream(
                        &encode(
                            &Message::Error(ErrorResponse { error: "nope" }),
                            Transport::Stream,
                        ),
                        false,
                    )),
                    4 => {
                        // Answer a TCP ping with its ack, or anything with an ack.
                        let seq_no = self
                            .swim
                            .envelope()
                            .open_stream(&data, StreamRole::Accept)
                            .ok()
                            .and_then(|m| {
                                let limits = self.swim.envelope().limits().clone();
                                match Message::decode(&m, Transport::Stream, &limits) {
                                    Ok(Message::Ping(p)) => Some(p.seq_no),
                                    _ => None,
                                }
                            })
                            .unwrap_or(0);
                        let ack = Message::Ack(Ack {
                            seq_no,
                            payload: (&[][..]).into(),
                        });
                        Ok(self.seal_stream(&encode(&ack, Transport::Stream), false))
                    }
                    5 => {
                        // The node talks to itself: its own request, its own answer.
                        self.next_stream += 1;
                        let stream = StreamId(self.next_stream);
                        self.note_stream(&data, StreamRole::Accept);
                        self.swim.handle_stream(
                            now,
                            stream,
                            "10.0.0.100:7946".parse().unwrap(),
                            &data,
                        );
                        let mut reply = None;
                        while let Some(o) = self.swim.poll_output() {
                            match o {
                                Output::StreamReply { stream: s, data } if s == stream => {
                                    reply = data
                                }
                                Output::Connect { id, data, .. } => self.connects.push((id, data)),
                                _ => {}
                            }
                        }
                        reply.ok_or(ExchangeError::Io(swim_core::IoKind::Other))
                    }
                    _ => {
                        let entries = input.entries();
                        Ok(self.seal_stream(
                            &push_pull(&entries, input.byte() & 1 == 0, input.bytes()),
                            false,
                        ))
                    }
                };
                if let Ok(r) = &reply {
                    self.note_stream(r, StreamRole::Reply);
                }
                self.swim
                    .handle_exchange(now, id, reply.as_deref().map_err(Clone::clone));
            }
            13 => {
                let seeds: Vec<SocketAddr> =
                    (0..input.byte() % 3).map(|_| self.from(input)).collect();
                self.swim.join(now, &seeds);
            }
            14 => self
                .swim
                .leave(now, Duration::from_millis(u64::from(input.u16()))),
            15 => {
                let meta = input.meta();
                let _ = self.swim.update_meta(now, &meta);
            }
            16 => {
                let payload = vec![input.byte(); usize::from(input.u16() % 1600)];
                let _ = self.swim.broadcast(now, &payload);
            }
            17 => {
                let node = input.name();
                let payload = input.bytes();
                let _ = match input.byte() % 3 {
                    0 => self.swim.send_best_effort(now, node, payload),
                    1 => self.swim.send_reliable(now, node, payload).map(|_| ()),
                    _ => self.swim.ping(now, node).map(|_| ()),
                };
            }
            18 => {
                let key = input.pick(&KEYS);
                let Ok(key) = SecretKey::new(key) else { return };
                let _ = match input.byte() % 3 {
                    0 => self.swim.add_key(now, key),
                    1 => self.swim.use_key(now, &key),
                    _ => self.swim.remove_key(now, &key),
                };
            }
            _ => {
                if input.byte() & 1 == 0 {
                    self.swim.set_local_state(now, input.bytes().to_vec());
                } else {
                    self.swim.set_ack_payload(now, input.bytes().to_vec());
                }
            }
        }
        self.drain();
        self.check();
    }

    fn check(&mut self) {
        let left = std::mem::take(&mut self.left);
        let all = self.swim.all_members();
        let counts = self.swim.member_counts();
        assert_eq!(counts.total(), all.len());
        let members = all.iter().filter(|m| m.state.is_member()).count();
        assert_eq!(self.swim.num_members(), members);
        assert_eq!(counts.members(), members);
        assert!(all.len() <= self.max_members, "{} members", all.len());
        assert!(self.swim.broadcast_queue_len() <= self.max_queue);
        assert!(self.swim.user_broadcast_queue_len() <= self.max_queue);
        let local = self.swim.local_node();
        assert_eq!(&*local.name, ME);
        let want = if self.swim.is_leaving() {
            MemberState::Left
        } else {
            MemberState::Alive
        };
        assert_eq!(
            local.state, want,
            "the local node believes itself {:?}",
            local.state
        );

        let mut cur = BTreeMap::new();
        for m in all {
            let name = m.name.to_string();
            // A member that was dead or left, or left during this input, may
            // have been reclaimed: a new life, a new history.
            let reborn = self
                .last
                .get(&name)
                .is_none_or(|o| matches!(o.state, MemberState::Dead | MemberState::Left))
                || left.contains(&name);
            if reborn {
                self.meta_at.retain(|(n, _), _| *n != name);
            } else if let Some(old) = self.last.get(&name) {
                assert!(
                    m.incarnation >= old.incarnation,
                    "incarnation went back: {old:?} -> {m:?}"
                );
            }
            let meta = self
                .meta_at
                .entry((name.clone(), m.incarnation))
                .or_insert_with(|| m.meta.to_vec());
            assert_eq!(
                &meta[..],
                &*m.meta,
                "metadata of {name} changed at incarnation {}",
                m.incarnation
            );
            cur.insert(name, m);
        }
        for name in self.last.keys() {
            if !cur.contains_key(name) {
                self.meta_at.retain(|(n, _), _| n != name);
            }
        }
        self.last = cur;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte();
    let seed = u64::from(input.u32());
    let advertise: SocketAddr = "10.0.0.100:7946".parse().unwrap();
    let mut config = Config::local(ME, advertise);
    if flags & 1 != 0 {
        config.max_members = 1 + usize::from(input.byte() % 4);
    }
    if flags & 2 != 0 {
        config.max_broadcast_queue = 1 + usize::from(input.byte() % 4);
    }
    if flags & 4 != 0 {
        config.dead_node_reclaim_time = Duration::from_millis(u64::from(input.u16()));
    }
    if flags & 8 != 0 {
        config.keyring = Some(Keyring::new(SecretKey::new(KEYS[0]).unwrap()));
        config.gossip_verify_incoming = flags & 16 != 0;
    }
    if flags & 32 != 0 {
        config.label = b"prod".to_vec();
    }
    config.enable_compression = flags & 64 == 0;
    config.relay_user_broadcasts = flags & 128 != 0;
    config.protocol_version = 1 + input.byte() % 5;
    config.gossip_to_the_dead_time = Duration::from_millis(1_000 + u64::from(input.u16()));
    let (max_members, max_queue) = (config.max_members, config.max_broadcast_queue);
    let Ok(swim) = Swim::new(config, seed, Instant::ZERO) else {
        return;
    };
    let mut h = Harness {
        swim,
        now: Instant::ZERO,
        max_members,
        max_queue,
        connects: Vec::new(),
        pings: Vec::new(),
        next_stream: 0,
        last: BTreeMap::new(),
        meta_at: BTreeMap::new(),
        left: BTreeSet::new(),
    };
    h.drain();
    h.check();
    for _ in 0..256 {
        if input.0.is_empty() {
            break;
        }
        h.op(&mut input);
    }
});
