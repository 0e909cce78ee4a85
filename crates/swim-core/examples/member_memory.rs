//! Heap bytes per known member:
//! `cargo run --release -p swim-core --example member_memory -- [N]`.
//!
//! A counting global allocator (`stats_alloc`: `std::alloc::System` wrapped,
//! live bytes kept in atomics; the workspace forbids `unsafe`, so the
//! wrapper comes from a crate) measures the live heap of a `Swim`
//! (`Config::lan`) before and after it learns `N` members (default 10,000)
//! from alive datagrams, with 16-byte names ("node-000001.dc01") and 24-byte
//! metadata, one datagram at a time with outputs drained after each, as an
//! adapter would. The broadcast queue the new members fill is measured,
//! then drained by answering pings (no time passes, so no probe runs and
//! every member stays alive), and the table is measured alone.
//!
//! Name and metadata bytes are the application's and are subtracted; each
//! is stored once per member in an `Arc` whose 16-byte reference-count
//! header is shown both ways (as overhead, and not).

use std::alloc::System;
use std::borrow::Cow;
use std::net::SocketAddr;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use swim_core::wire::{Alive, Envelope, Message, Ping, Transport};
use swim_core::{Config, Instant, Swim};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const META: &[u8] = b"role=web,zone=eu-west-1a";
const VSN: [u8; 6] = [1, 5, 2, 0, 0, 0];
/// Reference counts in front of every `Arc`'s data (strong and weak).
const ARC_HEADER: usize = 16;
/// The goal, in bytes per member beyond name and metadata.
const GOAL: f64 = 128.0;

/// (live bytes, live blocks) on the heap.
fn live() -> (usize, usize) {
    let s = INSTRUMENTED_SYSTEM.stats();
    (
        s.bytes_allocated - s.bytes_deallocated,
        s.allocations - s.deallocations,
    )
}

fn name(i: usize) -> String {
    format!("node-{i:06}.dc01")
}

fn ip(i: usize) -> [u8; 4] {
    (0x0a00_0001 + i as u32).to_be_bytes()
}

fn encoded(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(Transport::Packet, &mut out);
    out
}

fn drain(swim: &mut Swim) {
    while swim.poll_output().is_some() {}
}

fn main() {
    let n: usize = match std::env::args().nth(1) {
        None => 10_000,
        Some(a) => a.parse().expect("usage: member_memory [N]"),
    };
    let now = Instant::ZERO;
    let me = SocketAddr::from((ip(0), 7946));
    let pinger = SocketAddr::from((ip(1), 7946));
    let mut config = Config::lan(name(0), me);
    config.max_members = config.max_members.max(n + 1);
    let ping = {
        let (target, source) = (name(0), name(1));
        encoded(&Message::Ping(Ping {
            seq_no: 1,
            node: &target,
            source_addr: Cow::Owned(ip(1).to_vec()),
            source_port: 7946,
            source_node: &source,
        }))
    };
    let envelope = Envelope::new();
    let datagram = |i: usize| {
        let node = name(i);
        let m = Message::Alive(Alive {
            incarnation: 1,
            node: &node,
            addr: Cow::Owned(ip(i).to_vec()),
            port: 7946,
            meta: Cow::Borrowed(META),
            vsn: Cow::Borrowed(&VSN),
        });
        let mut out = Vec::new();
        envelope.seal_packet(&encoded(&m), false, || unreachable!(), &mut out);
        out
    };

    let mut swim = Swim::new(config, 7, now).unwrap();
    drain(&mut swim);
    let pings_to_drain = |swim: &mut Swim| {
        let mut pings = 0usize;
        while swim.broadcast_queue_len() > 0 {
            swim.handle_packet(now, pinger, &ping);
            drain(swim);
            pings += 1;
        }
        pings
    };
    pings_to_drain(&mut swim);
    let (before, blocks_before) = live();

    for i in 1..=n {
        let d = datagram(i);
        swim.handle_packet(now, pinger, &d);
        drain(&mut swim);
    }
    assert_eq!(swim.member_counts().alive, n + 1, "every member was taken");
    let (with_queue, blocks_with_queue) = live();
    let queued = swim.broadcast_queue_len();
    let queued_bytes = swim.broadcast_queue_bytes();
    let pings = pings_to_drain(&mut swim);
    let (after, blocks_after) = live();
    assert_eq!(
        swim.member_counts().alive,
        n + 1,
        "draining changed nothing"
    );

    let per = |bytes: usize| bytes as f64 / n as f64;
    let table = after - before;
    let app = n * (name(1).len() + META.len());
    let arcs = n * 2 * ARC_HEADER;
    let without_arcs = table - app - arcs;
    let with_arcs = table - app;
    let queue = with_queue - after;
    println!(
        "{n} members: {:.1} bytes of heap per member beyond name and metadata \
         ({:.1} counting the two Arc headers as the application's) — goal < {GOAL}: {}",
        per(with_arcs),
        per(without_arcs),
        if per(with_arcs) < GOAL {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  table, total:                 {table:>12} B  {:>8.1} B/member",
        per(table)
    );
    println!(
        "  - names + metadata (16 + 24): {app:>12} B  {:>8.1} B/member",
        per(app)
    );
    println!(
        "  - Arc headers (2 × 16):       {arcs:>12} B  {:>8.1} B/member",
        per(arcs)
    );
    println!(
        "  = record, index, slack:       {without_arcs:>12} B  {:>8.1} B/member",
        per(without_arcs)
    );
    println!(
        "  heap blocks per member:       {:>12.2}",
        (blocks_after - blocks_before) as f64 / n as f64
    );
    println!(
        "  pending broadcast queue:      {queue:>12} B  {:>8.1} B/member \
         ({queued} broadcasts of {queued_bytes} B of messages, {:.2} blocks each; \
         drained by {pings} piggybacking acks)",
        per(queue),
        (blocks_with_queue - blocks_after) as f64 / queued.max(1) as f64,
    );
}
