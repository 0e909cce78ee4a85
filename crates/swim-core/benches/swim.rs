//! State-machine throughput: `cargo bench -p swim-core --bench swim`.
//!
//! How many inputs one [`Swim`] handles per second on one core, each
//! measured from the datagram's bytes to the outputs drained with
//! `poll_output` (every output is black-boxed, so sealing, compression and
//! event building are all counted). The node under test runs
//! `Config::lan` (compression on, as in Go) and knows 100 members from a
//! join's push/pull merge. Senders seal their datagrams as Go would, with
//! `Envelope::new()` (compression on, no keys).
//!
//! * `ping_ack/*`: a ping in, the ack out. `quiet`: the broadcast queue is
//!   empty (drained before measuring), so the ack goes out alone. With
//!   `piggyback_full` the queue holds 100 alive updates (refilled, untimed,
//!   every 50 pings) and every ack carries a full 1,400-byte compound.
//!   `quiet_uncompressed` is `quiet` with compression off, to show what
//!   trying to compress a 10-byte ack costs.
//! * `probe/*`: `Swim` is not `Clone`, so each probe is started by time: a
//!   probe tick sends a ping, the matching ack completes the probe.
//!   `tick+ack_cycle` times the whole cycle (including this harness decoding
//!   the ping's sequence number and encoding the ack), `tick` only
//!   `handle_timeout` up to the ping and draining it, `ack_in` only the
//!   ack's `handle_packet` and draining its `ProbeAcked` event. The last
//!   two stop and start the clock for every input (about 20 ns each on a
//!   TSC clock). Periodic gossip and push/pull are off in this group, so the
//!   timers that fire are the probe tick and the acked probe's stale
//!   indirect and deadline timers.
//! * `alive_new_member/batch_N`: alive datagrams naming members not yet
//!   known, a different one each time: a fresh node (untimed setup) takes N
//!   of them, its table growing from 101 to N + 101 members and its
//!   broadcast queue from 0 to N (capped at 65,536) re-broadcasts.
//! * `gossip_compound_*`: a gossip packet as Go sends it: a compound of
//!   alive messages filling the 1,400-byte budget, compressed and
//!   CRC-wrapped. `new_members` names members the node does not know (fresh
//!   node every 500 packets, untimed); `known_stale` repeats one packet, so
//!   every claim is stale (the steady-state cost of redundant gossip).
//!   Throughput bytes are the compound's (uncompressed) bytes; time is per
//!   packet.
#![allow(missing_docs)]

use std::borrow::Cow;
use std::hint::black_box;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant as Clock};

use criterion::{criterion_group, criterion_main, Bencher, Criterion, Throughput};
use swim_core::wire::{
    encode_compound, for_each_message, Ack, Alive, Envelope, Message, NodeState, Ping,
    PushNodeState, PushPull, Transport, COMPOUND_OVERHEAD, COMPOUND_PART_OVERHEAD,
};
use swim_core::{Config, Event, Instant, Output, Swim};

const META: &[u8] = b"role=web,zone=eu-west-1a";
const VSN: [u8; 6] = [1, 5, 2, 0, 0, 0];
/// Members the node under test knows besides itself.
const KNOWN: usize = 100;
/// Index of the first member no node knows at the start.
const NEW: usize = 1_000_000;
/// Index of the member that pings the node under test.
const PINGER: usize = 1;
const NOW: Instant = Instant::ZERO;

/// A 16-byte member name.
fn name(i: usize) -> String {
    format!("node-{i:06}.dc01")
}

fn ip(i: usize) -> [u8; 4] {
    (0x0a00_0001 + i as u32).to_be_bytes()
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from((ip(i), 7946))
}

fn encoded(m: &Message<'_>, transport: Transport) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(transport, &mut out);
    out
}

/// Seals a datagram as a Go node with default settings does.
fn seal(message: &[u8], crc: bool) -> Vec<u8> {
    let mut out = Vec::new();
    Envelope::new().seal_packet(message, crc, || unreachable!("not encrypting"), &mut out);
    out
}

fn alive(i: usize, incarnation: u32) -> Vec<u8> {
    let node = name(i);
    let m = Message::Alive(Alive {
        incarnation,
        node: &node,
        addr: Cow::Owned(ip(i).to_vec()),
        port: 7946,
        meta: Cow::Borrowed(META),
        vsn: Cow::Borrowed(&VSN),
    });
    encoded(&m, Transport::Packet)
}

/// The ping member `PINGER` sends to the node under test.
fn ping_datagram() -> Vec<u8> {
    let (target, source) = (name(0), name(PINGER));
    let m = Message::Ping(Ping {
        seq_no: 1_234_567,
        node: &target,
        source_addr: Cow::Owned(ip(PINGER).to_vec()),
        source_port: 7946,
        source_node: &source,
    });
    seal(&encoded(&m, Transport::Packet), false)
}

fn ack_datagram(seq_no: u32) -> Vec<u8> {
    let m = Message::Ack(Ack {
        seq_no,
        payload: Cow::Borrowed(&[]),
    });
    seal(&encoded(&m, Transport::Packet), false)
}

/// A seed's push/pull reply naming members `members` (all alive).
fn push_pull_reply(members: Range<usize>) -> Vec<u8> {
    let names: Vec<String> = members.clone().map(name).collect();
    let nodes = members
        .zip(&names)
        .map(|(i, n)| PushNodeState {
            name: n,
            addr: Cow::Owned(ip(i).to_vec()),
            port: 7946,
            meta: Cow::Borrowed(META),
            incarnation: 1,
            state: NodeState::Alive,
            vsn: Cow::Borrowed(&VSN),
        })
        .collect();
    let m = Message::PushPull(PushPull {
        join: true,
        nodes,
        user_state: &[],
    });
    let mut out = Vec::new();
    Envelope::new().seal_stream(&encoded(&m, Transport::Stream), || [0; 12], &mut out);
    out
}

/// Drains every output, black-boxed; returns how many there were.
fn drain(swim: &mut Swim) -> usize {
    let mut n = 0;
    while let Some(o) = swim.poll_output() {
        black_box(o);
        n += 1;
    }
    n
}

fn outputs(swim: &mut Swim) -> Vec<Output> {
    std::iter::from_fn(|| swim.poll_output()).collect()
}

/// A node (member 0) that learned `KNOWN` members from a join's push/pull,
/// with its broadcast queue drained by answering pings (no time passes, so
/// no probe runs and every member stays alive).
fn node(config: Config) -> Swim {
    let mut swim = Swim::new(config, 7, NOW).unwrap();
    drain(&mut swim);
    swim.join(NOW, &[addr(PINGER)]);
    let id = outputs(&mut swim)
        .into_iter()
        .find_map(|o| match o {
            Output::Connect { id, .. } => Some(id),
            _ => None,
        })
        .expect("join asks for a push/pull");
    swim.handle_exchange(NOW, id, Ok(&push_pull_reply(1..KNOWN + 1)));
    drain(&mut swim);
    assert_eq!(swim.member_counts().alive, KNOWN + 1);
    quiesce(&mut swim);
    swim
}

/// Answers pings until nothing is left to piggyback.
fn quiesce(swim: &mut Swim) {
    let ping = ping_datagram();
    for _ in 0..1_000_000 {
        if swim.broadcast_queue_len() == 0 {
            return;
        }
        swim.handle_packet(NOW, addr(PINGER), &ping);
        drain(swim);
    }
    panic!("the broadcast queue does not drain");
}

fn lan() -> Config {
    Config::lan(name(0), addr(0))
}

/// The messages in a datagram, as a Go receiver would see them.
fn messages(datagram: &[u8], f: &mut dyn FnMut(Message<'_>)) {
    let envelope = Envelope::new();
    let body = envelope.open_packet(datagram).unwrap();
    for_each_message(&body, envelope.limits(), &mut |m| f(m.unwrap()));
}

/// The only packet among `outs`: (destination, datagram).
fn only_packet(outs: &[Output]) -> (SocketAddr, &[u8]) {
    let mut packets = outs.iter().filter_map(|o| match o {
        Output::Packet { to, data } => Some((*to, data.as_slice())),
        _ => None,
    });
    let p = packets.next().expect("a packet");
    assert!(packets.next().is_none(), "one packet");
    p
}

// ==================================================================== ping → ack

fn ping_ack(c: &mut Criterion) {
    let ping = ping_datagram();
    let from = addr(PINGER);
    let mut g = c.benchmark_group("ping_ack");
    g.throughput(Throughput::Elements(1));

    for (label, compression) in [("quiet", true), ("quiet_uncompressed", false)] {
        let mut config = lan();
        config.enable_compression = compression;
        let mut swim = node(config);
        // Check once: one ack, alone, to the ping's source.
        swim.handle_packet(NOW, from, &ping);
        let outs = outputs(&mut swim);
        let (to, data) = only_packet(&outs);
        assert_eq!(to, from);
        let mut acks = 0;
        messages(data, &mut |m| match m {
            Message::Ack(a) if a.seq_no == 1_234_567 => acks += 1,
            other => panic!("unexpected {other:?}"),
        });
        assert_eq!(acks, 1);
        eprintln!(
            "ping_ack/{label}: ping {} B in, ack {} B out",
            ping.len(),
            data.len()
        );
        g.bench_function(label, |b| {
            b.iter(|| {
                swim.handle_packet(NOW, from, black_box(&ping));
                drain(&mut swim)
            })
        });
        assert_eq!(swim.broadcast_queue_len(), 0);
    }

    // Every ack carries a full compound of alive updates.
    let mut swim = node(lan());
    let mut incarnation = 1;
    let mut refill = |swim: &mut Swim| {
        incarnation += 1;
        for i in 1..KNOWN + 1 {
            swim.handle_packet(NOW, from, &alive(i, incarnation));
        }
        drain(swim);
    };
    refill(&mut swim);
    swim.handle_packet(NOW, from, &ping);
    let outs = outputs(&mut swim);
    let (_, data) = only_packet(&outs);
    let mut parts = 0;
    messages(data, &mut |_| parts += 1);
    assert!(parts > 10, "the ack carries gossip");
    eprintln!(
        "ping_ack/piggyback_full: ack + {} alive updates in a {} B datagram",
        parts - 1,
        data.len()
    );
    const REFILL_EVERY: u64 = 50;
    let mut since_refill = REFILL_EVERY;
    g.bench_function("piggyback_full", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if since_refill == REFILL_EVERY {
                    refill(&mut swim);
                    since_refill = 0;
                }
                let k = left.min(REFILL_EVERY - since_refill);
                let start = Clock::now();
                for _ in 0..k {
                    swim.handle_packet(NOW, from, black_box(&ping));
                    drain(&mut swim);
                }
                total += start.elapsed();
                since_refill += k;
                left -= k;
            }
            total
        })
    });
    g.finish();
}

// ==================================================================== probe ← ack

/// Advances time timer by timer until the node sends a probe ping; returns
/// the outputs of that step.
fn tick_to_ping(swim: &mut Swim, outs: &mut Vec<Output>) {
    loop {
        let at = swim.poll_timeout().expect("a probe timer");
        swim.handle_timeout(at);
        outs.clear();
        outs.extend(std::iter::from_fn(|| swim.poll_output()));
        if !outs.is_empty() {
            return;
        }
    }
}

/// The sequence number of the probe ping among `outs`.
fn probe_seq(outs: &[Output]) -> u32 {
    let (_, data) = only_packet(outs);
    let mut seq = None;
    messages(data, &mut |m| {
        if let Message::Ping(p) = m {
            seq = Some(p.seq_no);
        }
    });
    seq.expect("a ping")
}

fn probe(c: &mut Criterion) {
    let from = addr(PINGER);
    let mut config = lan();
    config.gossip_interval = Duration::ZERO;
    config.push_pull_interval = Duration::ZERO;
    let mut swim = node(config);
    let mut outs = Vec::new();
    // Check once: the ack completes the probe.
    tick_to_ping(&mut swim, &mut outs);
    swim.handle_packet(NOW, from, &ack_datagram(probe_seq(&outs)));
    let done = outputs(&mut swim);
    assert!(matches!(
        done.as_slice(),
        [Output::Event(Event::ProbeAcked { .. })]
    ));

    let mut g = c.benchmark_group("probe");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tick+ack_cycle", |b| {
        b.iter(|| {
            tick_to_ping(&mut swim, &mut outs);
            let ack = ack_datagram(probe_seq(&outs));
            swim.handle_packet(NOW, from, black_box(&ack));
            drain(&mut swim)
        })
    });
    let mut timed = |b: &mut Bencher<'_>, tick: bool| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Clock::now();
                tick_to_ping(&mut swim, &mut outs);
                if tick {
                    total += start.elapsed();
                }
                let ack = ack_datagram(probe_seq(&outs));
                let start = Clock::now();
                swim.handle_packet(NOW, from, black_box(&ack));
                drain(&mut swim);
                if !tick {
                    total += start.elapsed();
                }
            }
            total
        })
    };
    g.bench_function("tick", |b| timed(b, true));
    g.bench_function("ack_in", |b| timed(b, false));
    g.finish();
    assert_eq!(
        swim.member_counts().alive,
        KNOWN + 1,
        "every probe was acked"
    );
}

// ==================================================================== new members

/// Feeds input `i` to the `i`th call on a node, timing only the inputs; a
/// fresh node (untimed) replaces the current one after `per_node` inputs,
/// so every input is measured on a node that has taken 0 to `per_node - 1`
/// before it, whatever iteration counts criterion asks for.
fn fresh_nodes(b: &mut Bencher<'_>, per_node: usize, mut input: impl FnMut(&mut Swim, usize)) {
    let mut swim = node(lan());
    let mut used = 0;
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            if used == per_node {
                swim = node(lan());
                used = 0;
            }
            let k = left.min(per_node - used);
            let start = Clock::now();
            for i in used..used + k {
                input(&mut swim, i);
            }
            total += start.elapsed();
            used += k;
            left -= k;
        }
        total
    })
}

fn alive_new_member(c: &mut Criterion) {
    let from = addr(PINGER);
    let pool: Vec<Vec<u8>> = (0..100_000)
        .map(|i| seal(&alive(NEW + i, 1), false))
        .collect();
    eprintln!("alive_new_member: {} B datagrams", pool[0].len());
    let mut g = c.benchmark_group("alive_new_member");
    g.throughput(Throughput::Elements(1));
    for batch in [1_000, 10_000, 100_000] {
        g.bench_function(format!("batch_{batch}"), |b| {
            fresh_nodes(b, batch, |swim, i| {
                swim.handle_packet(NOW, from, black_box(&pool[i]));
                drain(swim);
            })
        });
    }
    g.finish();

    // Check: they were all taken and queued.
    let mut swim = node(lan());
    for d in &pool[..1000] {
        swim.handle_packet(NOW, from, d);
    }
    drain(&mut swim);
    assert_eq!(swim.member_counts().alive, KNOWN + 1 + 1000);
    assert_eq!(swim.broadcast_queue_len(), 1000);
}

// ==================================================================== compound

/// Alive messages for members `first..` filling a 1,400-byte compound.
fn gossip_compound(first: usize) -> (Vec<u8>, usize) {
    let mut parts = Vec::new();
    let mut size = COMPOUND_OVERHEAD;
    for i in first.. {
        let part = alive(i, 1);
        if size + part.len() + COMPOUND_PART_OVERHEAD > 1400 {
            break;
        }
        size += part.len() + COMPOUND_PART_OVERHEAD;
        parts.push(part);
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let mut out = Vec::new();
    encode_compound(&refs, &mut out).unwrap();
    (out, parts.len())
}

fn compound(c: &mut Criterion) {
    let from = addr(PINGER);
    let (first, per_packet) = gossip_compound(NEW);
    const PACKETS: usize = 500;
    // Go adds a CRC for peers at protocol 5 and up (us), and compresses.
    let pool: Vec<Vec<u8>> = (0..PACKETS)
        .map(|p| seal(&gossip_compound(NEW + p * per_packet).0, true))
        .collect();
    let name = format!(
        "gossip_compound_{per_packet}_alive_{}B_sealed_{}B",
        first.len(),
        pool[0].len()
    );
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(first.len() as u64));
    g.bench_function("new_members", |b| {
        fresh_nodes(b, PACKETS, |swim, i| {
            swim.handle_packet(NOW, from, black_box(&pool[i]));
            drain(swim);
        })
    });
    let mut swim = node(lan());
    swim.handle_packet(NOW, from, &pool[0]);
    drain(&mut swim);
    assert_eq!(swim.member_counts().alive, KNOWN + 1 + per_packet);
    quiesce(&mut swim);
    g.bench_function("known_stale", |b| {
        b.iter(|| {
            swim.handle_packet(NOW, from, black_box(&pool[0]));
            drain(&mut swim)
        })
    });
    assert_eq!(
        swim.broadcast_queue_len(),
        0,
        "stale claims are not gossiped"
    );
    g.finish();

    // Check: a fresh node takes every member of every packet.
    let mut swim = node(lan());
    for d in &pool {
        swim.handle_packet(NOW, from, d);
    }
    drain(&mut swim);
    assert_eq!(swim.member_counts().alive, KNOWN + 1 + PACKETS * per_packet);
}

criterion_group!(benches, ping_ack, probe, alive_new_member, compound);
criterion_main!(benches);
