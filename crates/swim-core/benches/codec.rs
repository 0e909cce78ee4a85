//! Codec throughput: `cargo bench -p swim-core --bench codec`.
//!
//! Each benchmark reports elements (messages or packets) and bytes per
//! second; BENCHMARKS.md records the numbers.
#![allow(missing_docs)]

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use swim_core::wire::{
    encode_compound, for_each_message, lzw, Ack, Alive, Envelope, Keyring, Limits, Message,
    NodeState, Ping, PushNodeState, PushPull, SecretKey, Transport, COMPOUND_OVERHEAD,
    COMPOUND_PART_OVERHEAD,
};

fn ping() -> Message<'static> {
    Message::Ping(Ping {
        seq_no: 1_234_567,
        node: "node-b.example.internal",
        source_addr: Cow::Borrowed(&[10, 0, 0, 1]),
        source_port: 7946,
        source_node: "node-a.example.internal",
    })
}

fn ack() -> Message<'static> {
    Message::Ack(Ack {
        seq_no: 1_234_567,
        payload: Cow::Borrowed(&[]),
    })
}

fn alive(name: &str, i: u8) -> Message<'_> {
    Message::Alive(Alive {
        incarnation: 3,
        node: name,
        addr: Cow::Owned(vec![10, 0, 1, i]),
        port: 7946,
        meta: Cow::Borrowed(b"role=web,zone=eu-west-1a"),
        vsn: Cow::Borrowed(&[1, 5, 2, 0, 0, 0]),
    })
}

fn encoded(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(Transport::Packet, &mut out);
    out
}

/// A gossip packet as a node sends it: a compound of alive messages filling
/// the 1,400-byte budget.
fn gossip_compound() -> Vec<u8> {
    let names: Vec<String> = (0..64)
        .map(|i| format!("node-{i:03}.example.internal"))
        .collect();
    let mut parts = Vec::new();
    let mut size = COMPOUND_OVERHEAD;
    for (i, name) in names.iter().enumerate() {
        let part = encoded(&alive(name, i as u8));
        if size + part.len() + COMPOUND_PART_OVERHEAD > 1400 {
            break;
        }
        size += part.len() + COMPOUND_PART_OVERHEAD;
        parts.push(part);
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let mut out = Vec::new();
    encode_compound(&refs, &mut out).unwrap();
    out
}

fn messages(c: &mut Criterion) {
    let limits = Limits::default();
    let alive_msg = alive("node-a.example.internal", 1);
    for (name, m) in [("ping", ping()), ("ack", ack()), ("alive", alive_msg)] {
        let bytes = encoded(&m);
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        let mut out = Vec::with_capacity(256);
        g.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                black_box(&m).encode(Transport::Packet, &mut out);
                black_box(&out);
            })
        });
        g.bench_function("decode", |b| {
            b.iter(|| {
                black_box(Message::decode(
                    black_box(&bytes),
                    Transport::Packet,
                    &limits,
                ))
            })
        });
        g.finish();
    }
}

fn compound(c: &mut Criterion) {
    let limits = Limits::default();
    let packet = gossip_compound();
    let parts: Vec<Vec<u8>> = {
        let mut v = Vec::new();
        for_each_message(&packet, &limits, &mut |m| v.push(encoded(&m.unwrap())));
        v
    };
    let mut g = c.benchmark_group(format!("compound_{}_parts_{}B", parts.len(), packet.len()));
    g.throughput(Throughput::Bytes(packet.len() as u64));
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let mut out = Vec::with_capacity(2048);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_compound(black_box(&refs), &mut out).unwrap();
            black_box(&out);
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0;
            for_each_message(black_box(&packet), &limits, &mut |m| {
                black_box(m.unwrap());
                n += 1;
            });
            n
        })
    });
    g.finish();

    lzw_group(c, "gossip", &packet);
}

/// A push/pull state of 1,000 members, as a simulated node sends it: in its
/// probe order, which is shuffled.
fn push_pull_state() -> Vec<u8> {
    let order: Vec<usize> = (0..1000).map(|i| i * 7919 % 1000).collect();
    let names: Vec<String> = order.iter().map(|i| format!("node-{i}")).collect();
    let nodes = names
        .iter()
        .zip(order)
        .map(|(name, i)| PushNodeState {
            name,
            addr: Cow::Owned(vec![10, 0, (i >> 8) as u8, i as u8]),
            port: 7946,
            meta: Cow::Borrowed(&[]),
            incarnation: 1 + (i % 3) as u32,
            state: NodeState::Alive,
            vsn: Cow::Borrowed(&[1, 5, 2, 0, 0, 0]),
        })
        .collect();
    let mut out = Vec::new();
    Message::PushPull(PushPull {
        join: false,
        nodes,
        user_state: &[],
    })
    .encode(Transport::Stream, &mut out);
    out
}

fn push_pull_lzw(c: &mut Criterion) {
    lzw_group(c, "push_pull", &push_pull_state());
}

/// LZW compress and decompress of `input`, as group `lzw_<len>B_<what>`.
fn lzw_group(c: &mut Criterion, what: &str, input: &[u8]) {
    let mut g = c.benchmark_group(format!("lzw_{}B_{what}", input.len()));
    g.throughput(Throughput::Bytes(input.len() as u64));
    let mut compressed = Vec::new();
    lzw::compress(input, &mut compressed);
    g.bench_function("compress", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(input.len()),
            |out| lzw::compress(black_box(input), out),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decompress", |b| {
        b.iter(|| lzw::decompress(black_box(&compressed), input.len()).unwrap())
    });
    g.finish();
}

fn encryption(c: &mut Criterion) {
    let packet = gossip_compound();
    let keyring = Keyring::new(SecretKey::new(&[7; 32]).unwrap());
    let envelope = Envelope::new()
        .with_compression(false)
        .with_keyring(keyring);
    let mut g = c.benchmark_group(format!("aes256gcm_{}B_packet", packet.len()));
    g.throughput(Throughput::Bytes(packet.len() as u64));
    let mut sealed = Vec::with_capacity(2048);
    g.bench_function("seal+open", |b| {
        b.iter(|| {
            sealed.clear();
            envelope.seal_packet(black_box(&packet), true, || [9; 12], &mut sealed);
            black_box(envelope.open_packet(&sealed).unwrap());
        })
    });
    g.finish();

    // The whole send and receive path with Go's defaults plus encryption.
    let envelope = envelope.with_compression(true);
    let limits = Limits::default();
    let mut g = c.benchmark_group(format!("pipeline_{}B_packet", packet.len()));
    g.throughput(Throughput::Bytes(packet.len() as u64));
    g.bench_function("compress+crc+seal+open+decode", |b| {
        b.iter(|| {
            sealed.clear();
            envelope.seal_packet(black_box(&packet), true, || [9; 12], &mut sealed);
            let body = envelope.open_packet(&sealed).unwrap();
            for_each_message(&body, &limits, &mut |m| {
                black_box(m.unwrap());
            });
        })
    });
    g.finish();
}

criterion_group!(benches, messages, compound, push_pull_lzw, encryption);
criterion_main!(benches);
