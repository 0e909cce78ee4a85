//! Hostile peers: garbage datagrams, half-open and slow connections, and
//! streams that declare huge messages. Tokio only; the node code under test
//! is the same for every adapter.
//!
//! The tests here take one lock so they run one at a time: they measure the
//! process's resident memory, which a neighbour's allocations would skew.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use swim_tests::swim_core::wire::{
    self, Accusation, Ack, Alive, IndirectPing, Message, Nack, Ping, Transport,
};
use swim_tests::{
    is_departure_of, local_config, member_names, resident_bytes, Event, MemberState, Net, Node,
    NodeStats, Rng, Runtime, CONVERGE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const MIB: u64 = 1 << 20;

async fn stats(node: &Node) -> NodeStats {
    node.stats().await.expect("stats of a running node")
}

fn rss() -> u64 {
    resident_bytes().unwrap_or(0)
}

// ---------------------------------------------------------------- garbage --

/// The families of garbage the flood mixes, with a name for the report.
const KINDS: [&str; 7] = [
    "random bytes",
    "truncated valid message",
    "huge declared length",
    "bogus type byte",
    "nesting too deep",
    "bit-flipped ping",
    "empty or one byte",
];

/// A valid message about no real member: a ghost, so that even if one
/// decoded it could not touch the cluster (only ever sent truncated).
fn valid_message(rng: &mut Rng) -> Vec<u8> {
    let ghost = format!("ghost-{}", rng.below(1000));
    let ip: &[u8] = &[127, 0, 0, 1];
    let message = match rng.below(7) {
        0 => Message::Ping(Ping {
            seq_no: rng.next_u64() as u32,
            node: &ghost,
            source_addr: ip.into(),
            source_port: 9,
            source_node: "ghost-source",
        }),
        1 => Message::IndirectPing(IndirectPing {
            seq_no: rng.next_u64() as u32,
            target: ip.into(),
            port: 9,
            node: &ghost,
            nack: true,
            source_addr: ip.into(),
            source_port: 9,
            source_node: "ghost-source",
        }),
        2 => Message::Ack(Ack {
            seq_no: rng.next_u64() as u32,
            payload: vec![0xab; rng.below(64)].into(),
        }),
        3 => Message::Nack(Nack {
            seq_no: rng.next_u64() as u32,
        }),
        4 => Message::Suspect(Accusation {
            incarnation: 7,
            node: &ghost,
            from: "ghost-source",
        }),
        5 => Message::Dead(Accusation {
            incarnation: 7,
            node: &ghost,
            from: "ghost-source",
        }),
        _ => Message::Alive(Alive {
            incarnation: 1,
            node: &ghost,
            addr: ip.into(),
            port: 9,
            meta: vec![1; rng.below(100)].into(),
            vsn: vec![1, 5, 2, 0, 0, 0].into(),
        }),
    };
    let mut out = Vec::new();
    message.encode(Transport::Packet, &mut out);
    out
}

/// One garbage datagram of family `kind` (an index into [`KINDS`]).
fn garbage(rng: &mut Rng, kind: usize) -> Vec<u8> {
    match kind {
        0 => {
            let len = if rng.below(100) == 0 {
                rng.below(65_000)
            } else {
                rng.below(1400)
            };
            rng.bytes(len)
        }
        1 => {
            // A valid message, maybe wrapped in one compound part, a
            // compress or a CRC layer, then cut short so it no longer
            // decodes.
            let inner = valid_message(rng);
            let mut whole = Vec::new();
            match rng.below(4) {
                0 => wire::encode_compound(&[&inner], &mut whole).expect("one part"),
                1 => wire::encode_compress(&inner, &mut whole),
                2 => {
                    whole.push(12);
                    whole.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
                    whole.extend_from_slice(&inner);
                }
                _ => whole = inner,
            }
            let keep = 1 + rng.below(whole.len() - 1);
            whole.truncate(keep);
            whole
        }
        2 => {
            let tail = rng.some_bytes(64);
            let mut out = match rng.below(6) {
                // Compound: 255 parts of 65,535 bytes each.
                0 => {
                    let mut v = vec![7, 255];
                    v.extend_from_slice(&[0xff; 510]);
                    v
                }
                // Compress whose buffer claims 4 GiB (bin32).
                1 => {
                    let mut v = vec![9, 0x82, 0xa4];
                    v.extend_from_slice(b"Algo");
                    v.extend_from_slice(&[0x00, 0xa3]);
                    v.extend_from_slice(b"Buf");
                    v.extend_from_slice(&[0xc6, 0xff, 0xff, 0xff, 0xff]);
                    v
                }
                // Alive whose name claims 4 GiB (str32).
                2 => {
                    let mut v = vec![4, 0x86, 0xa4];
                    v.extend_from_slice(b"Node");
                    v.extend_from_slice(&[0xdb, 0xff, 0xff, 0xff, 0xff]);
                    v
                }
                // A label header of 255 bytes with a few present.
                3 => vec![244, 255, b'x', b'y'],
                // A push/pull over UDP claiming 4 billion members.
                4 => {
                    let mut v = vec![6, 0x83, 0xa5];
                    v.extend_from_slice(b"Nodes");
                    v.extend_from_slice(&[0xce, 0xff, 0xff, 0xff, 0xff]);
                    v
                }
                // An ack whose payload claims 4 GiB (bin32).
                _ => {
                    let mut v = vec![2, 0x82, 0xa7];
                    v.extend_from_slice(b"Payload");
                    v.extend_from_slice(&[0xc6, 0xff, 0xff, 0xff, 0xff]);
                    v
                }
            };
            out.extend_from_slice(&tail);
            out
        }
        3 => {
            const TYPES: [u8; 8] = [6, 7, 9, 10, 11, 12, 13, 244];
            let ty = if rng.below(2) == 0 {
                TYPES[rng.below(TYPES.len())]
            } else {
                14 + rng.below(230) as u8 // 14..=243: unknown types
            };
            let mut v = vec![ty];
            v.extend(rng.some_bytes(200));
            v
        }
        4 => {
            // Compound-in-compound or compress-in-compress, deeper than
            // the nesting limit, around a ping to nobody.
            let mut msg = valid_message(rng);
            let compress = rng.below(2) == 0;
            for _ in 0..(6 + rng.below(10)) {
                let mut outer = Vec::new();
                if compress {
                    wire::encode_compress(&msg, &mut outer);
                } else {
                    wire::encode_compound(&[&msg], &mut outer).expect("one part");
                }
                msg = outer;
            }
            msg
        }
        5 => {
            // A ping to a name nobody has, with a few bits flipped.
            let mut v = Vec::new();
            Message::Ping(Ping {
                seq_no: rng.next_u64() as u32,
                node: "nobody-here",
                source_addr: [127u8, 0, 0, 1][..].into(),
                source_port: 9,
                source_node: "flooder",
            })
            .encode(Transport::Packet, &mut v);
            for _ in 0..(1 + rng.below(4)) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            v
        }
        _ => rng.some_bytes(2),
    }
}

/// Sends `count` garbage datagrams to `to`, in batches of `batch` with a
/// short pause between, and returns how many of each family went out.
fn flood(to: SocketAddr, count: usize, batch: usize, seed: u64) -> [usize; KINDS.len()] {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the flooding socket");
    let mut rng = Rng::new(seed);
    let mut sent = [0; KINDS.len()];
    for i in 0..count {
        let kind = rng.below(KINDS.len());
        let datagram = garbage(&mut rng, kind);
        // A full send buffer is the kernel's business, not the node's.
        if socket.send_to(&datagram, to).is_ok() {
            sent[kind] += 1;
        }
        if i % batch == batch - 1 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    sent
}

/// Flood one node of a three-node cluster with ~50k garbage datagrams.
async fn garbage_flood(rt: Runtime) {
    const COUNT: usize = 50_000;
    let nodes = rt
        .cluster(vec![
            local_config("a"),
            local_config("b"),
            local_config("c"),
        ])
        .await;
    let target = &nodes[0].0;
    let before = stats(target).await;
    let rss_before = rss();

    let to = target.bound_addr();
    let started = Instant::now();
    let flooder = std::thread::spawn(move || flood(to, COUNT, 100, 0x5eed));
    let mut fewest_members = 3;
    let mut peak_rss = rss_before;
    while !flooder.is_finished() {
        for (node, _) in &nodes {
            fewest_members = fewest_members.min(node.num_members());
        }
        peak_rss = peak_rss.max(rss());
        rt.sleep(Duration::from_millis(20)).await;
    }
    let sent = flooder.join().expect("the flooding thread");
    let flood_time = started.elapsed();
    // Let the node drain its socket and a couple of probe rounds pass.
    rt.sleep(Duration::from_secs(2)).await;
    let after = stats(target).await;
    let rss_after = rss();
    peak_rss = peak_rss.max(rss_after);

    let total: usize = sent.iter().sum();
    let received = after.core.packets_received - before.core.packets_received;
    let wire_errors = after.core.wire_errors - before.core.wire_errors;
    let rejected = after.core.rejected - before.core.rejected;
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!("garbage flood: sent {total} datagrams in {flood_time:?}");
    for (kind, n) in KINDS.iter().zip(sent) {
        eprintln!("  {kind}: {n}");
    }
    eprintln!(
        "  target received {received}, wire_errors +{wire_errors}, rejected +{rejected}, \
         last wire error {:?}",
        after.core.last_wire_error
    );
    eprintln!(
        "  resident memory {} MiB -> {} MiB (peak {} MiB, growth {} KiB)",
        rss_before / MIB,
        rss_after / MIB,
        peak_rss / MIB,
        growth / 1024
    );

    // Nobody was declared failed, during the flood or after.
    assert_eq!(fewest_members, 3, "a member dropped out during the flood");
    for (node, events) in &nodes {
        while let Some(event) = events.try_recv() {
            assert!(
                !["a", "b", "c"].iter().any(|n| is_departure_of(&event, n)),
                "{node:?} saw {event:?} during the flood"
            );
        }
        assert_eq!(member_names(node), ["a", "b", "c"]);
    }
    rt.wait_until(CONVERGE, "every member alive everywhere", || {
        nodes
            .iter()
            .all(|(node, _)| node.members().iter().all(|m| m.state == MemberState::Alive))
    })
    .await;
    target.ping("b").await.expect("the target still answers");
    nodes[1]
        .0
        .ping("a")
        .await
        .expect("the target is still reachable");

    assert!(total >= COUNT * 9 / 10, "only {total} datagrams went out");
    assert!(received > 0, "the target read none of the flood");
    // Nearly everything it read was invalid (a few are well-formed user
    // messages or pings by chance, and some of the read packets are the
    // cluster's own gossip).
    assert!(
        wire_errors >= received / 2,
        "wire_errors +{wire_errors} for {received} datagrams read"
    );
    // The node keeps one 64 KiB receive buffer and nothing per packet;
    // decoding is bounded by the limits before any allocation. 50k
    // datagrams averaging ~400 bytes are ~20 MB: retaining even a fraction
    // of them, or queueing them, would show. 64 MiB leaves room for
    // allocator and runtime noise.
    assert!(
        growth < 64 * MIB,
        "resident memory grew by {} MiB during the flood",
        growth / MIB
    );
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

#[test]
fn garbage_flood_on_tokio() {
    let _serial = serial();
    Runtime::Tokio(Net::UdpTcp).run(garbage_flood);
}

// ------------------------------------------------------------ compression --

/// A compress packet whose LZW body expands to `size` zero bytes.
fn compression_bomb(size: usize) -> Vec<u8> {
    let mut packet = Vec::new();
    wire::encode_compress(&vec![0; size], &mut packet);
    packet
}

/// A ~31 KB datagram that would decompress to just over 40 MiB (the stream
/// limit): the packet limit (1 MiB) stops it early; the node frees the
/// buffer and the cluster stays up.
async fn compression_bombs(rt: Runtime) {
    const BOMBS: usize = 6;
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let target = &nodes[0].0;
    let limit = local_config("any").swim.limits.max_decompressed;
    let bomb = compression_bomb(limit + 1);
    let before = stats(target).await;
    let rss_before = rss();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut stalls = Vec::new();
    for _ in 0..BOMBS {
        let errors = stats(target).await.core.wire_errors;
        let sent = Instant::now();
        socket
            .send_to(&bomb, target.bound_addr())
            .expect("send the bomb");
        // Until the node has refused it: roughly what one bomb costs the
        // driver (the stats commands queue behind it).
        while stats(target).await.core.wire_errors == errors {
            assert!(sent.elapsed() < CONVERGE, "the bomb was never refused");
            rt.sleep(Duration::from_millis(5)).await;
        }
        stalls.push(sent.elapsed());
        rt.sleep(Duration::from_millis(500)).await;
    }
    let after = stats(target).await;
    let growth = rss().saturating_sub(rss_before);
    eprintln!(
        "compression bombs: {BOMBS} datagrams of {} bytes expanding past {} MiB; \
         each refused after {stalls:?}; wire_errors +{}, last {:?}; resident growth {} KiB",
        bomb.len(),
        limit as u64 / MIB,
        after.core.wire_errors - before.core.wire_errors,
        after.core.last_wire_error,
        growth / 1024
    );
    assert!(after.core.wire_errors - before.core.wire_errors >= BOMBS as u64);
    assert!(
        growth < 64 * MIB,
        "resident memory grew by {} MiB",
        growth / MIB
    );
    for (node, events) in &nodes {
        while let Some(event) = events.try_recv() {
            assert!(
                !is_departure_of(&event, "a") && !is_departure_of(&event, "b"),
                "{node:?} saw {event:?}"
            );
        }
        assert_eq!(node.num_members(), 2);
    }
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

#[test]
fn compression_bombs_on_tokio() {
    let _serial = serial();
    Runtime::Tokio(Net::UdpTcp).run(compression_bombs);
}

// ---------------------------------------------------------------- streams --

/// How one attacking connection ended.
#[derive(Debug)]
struct Closed {
    /// From connect until the node closed it.
    lived: Duration,
}

/// Connects to `to`; when `trickle`, sends a push/pull header one byte
/// every 200 ms; either way reads until the node closes the connection.
async fn attacker(to: SocketAddr, trickle: bool) -> Closed {
    const HEADER: &[u8] = b"\x06\x83\xa4Join\xc2\xa5Nodes\x01\xacUserStateLen\x00";
    let stream = TcpStream::connect(to).await.expect("connect");
    let opened = Instant::now();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if trickle {
            for byte in HEADER {
                if wr.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // Keep the write half (and so the connection) open until the
        // reader sees the close and this task is aborted.
        std::future::pending::<()>().await;
    });
    let mut buf = [0u8; 64];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    writer.abort();
    Closed {
        lived: opened.elapsed(),
    }
}

/// Far more silent or trickling connections than max_incoming_streams:
/// the cap holds (accepting pauses at it, the rest wait in the kernel's
/// backlog), every accepted one is closed by the stream timeout however
/// it trickles, so the backlog drains a cap-full per timeout, and a real
/// join works afterwards.
async fn half_open_and_slow_streams(rt: Runtime) {
    const CAP: usize = 8;
    const ATTACKERS: usize = 40;
    let mut config = local_config("target");
    config.max_incoming_streams = CAP;
    config.swim.tcp_timeout = Duration::from_secs(1);
    let tcp_timeout = config.swim.tcp_timeout;
    // A cap-full of attackers is served per timeout.
    let waves = ATTACKERS.div_ceil(CAP) as u32;
    let deadline = tcp_timeout * waves + Duration::from_secs(3);
    let (target, _events) = rt.start(config).await.expect("start");
    let to = target.bound_addr();
    let before = stats(&target).await;
    let rss_before = rss();

    let started = Instant::now();
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| rt.spawn(attacker(to, i % 2 == 1)))
        .collect();
    let mut most_in_flight = 0;
    let mut samples = 0;
    let mut closed = Vec::new();
    let mut attackers = attackers.into_iter().peekable();
    while let Some(next) = attackers.peek_mut() {
        // Collect the attackers as they finish, in order.
        if let Some(done) = rt.timeout(Duration::from_millis(20), next).await {
            closed.push(done);
            attackers.next();
        }
        let s = stats(&target).await;
        most_in_flight = most_in_flight.max(s.incoming_streams);
        samples += 1;
        assert!(
            started.elapsed() < deadline,
            "attacking connections still open after {deadline:?} ({waves} × tcp_timeout + 3 s)"
        );
    }
    let all_closed = started.elapsed();
    let after = stats(&target).await;
    let at_capacity = after.streams_at_capacity - before.streams_at_capacity;
    let failed = after.stream_errors - before.stream_errors;
    let longest = closed.iter().map(|c| c.lived).max().unwrap();
    let shortest = closed.iter().map(|c| c.lived).min().unwrap();
    eprintln!(
        "half-open/slow: {ATTACKERS} connections, cap {CAP}, tcp_timeout {tcp_timeout:?}: \
         most in flight {most_in_flight} over {samples} samples; at capacity {at_capacity} \
         times; stream errors +{failed}; lived {shortest:?} to {longest:?}; all closed after \
         {all_closed:?}; resident growth {} KiB",
        rss().saturating_sub(rss_before) / 1024
    );
    assert!(
        most_in_flight <= CAP,
        "{most_in_flight} streams in flight, cap {CAP}"
    );
    assert!(at_capacity >= 1, "the cap was never reached");
    assert_eq!(failed, ATTACKERS as u64, "every attacking stream fails");
    assert!(
        shortest >= tcp_timeout * 9 / 10,
        "a connection sending nothing valid was closed after {shortest:?}, before the timeout"
    );
    assert_eq!(stats(&target).await.incoming_streams, 0);

    // With the attackers gone a real peer joins, both ways.
    let (peer, _) = rt.start(local_config("peer")).await.expect("start");
    assert_eq!(peer.join(&[to]).await, Ok(1));
    assert_eq!(target.join(&[peer.bound_addr()]).await, Ok(1));
    rt.wait_until(CONVERGE, "target and peer listing both", || {
        target.num_members() == 2 && peer.num_members() == 2
    })
    .await;
    peer.send_reliable("target", b"still serving")
        .await
        .expect("send_reliable");
    target.shutdown().await;
    peer.shutdown().await;
}

#[test]
fn half_open_and_slow_streams_on_tokio() {
    let _serial = serial();
    Runtime::Tokio(Net::UdpTcp).run(half_open_and_slow_streams);
}

/// Writes `header` on a fresh connection and returns how long until the
/// node closed it.
async fn send_header(to: SocketAddr, header: &[u8]) -> Duration {
    let mut stream = TcpStream::connect(to).await.expect("connect");
    let start = Instant::now();
    stream.write_all(header).await.expect("write the header");
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
    }
}

/// Streams declaring messages far over the limits (a 2 GiB user message, a
/// 4 GiB encrypted frame, a push/pull of 4 billion members) are refused as
/// soon as the header is read, without allocating what they declare.
async fn huge_declared_streams(rt: Runtime) {
    let mut config = local_config("target");
    // Long, so a refusal is told apart from a timeout.
    config.swim.tcp_timeout = Duration::from_secs(5);
    let tcp_timeout = config.swim.tcp_timeout;
    let (target, target_events) = rt.start(config).await.expect("start");
    let to = target.bound_addr();

    let mut user = vec![8u8, 0x81, 0xaa];
    user.extend_from_slice(b"UserMsgLen");
    user.extend_from_slice(&[0xce, 0x80, 0x00, 0x00, 0x00]); // 2 GiB
    let encrypted = vec![10u8, 0xff, 0xff, 0xff, 0xff]; // 4 GiB frame
    let mut push_pull = vec![6u8, 0x83, 0xa5];
    push_pull.extend_from_slice(b"Nodes");
    push_pull.extend_from_slice(&[0xce, 0xff, 0xff, 0xff, 0xff]);
    let mut user_state = vec![6u8, 0x83, 0xa5];
    user_state.extend_from_slice(b"Nodes");
    user_state.push(0x00);
    user_state.extend_from_slice(&[0xac]);
    user_state.extend_from_slice(b"UserStateLen");
    user_state.extend_from_slice(&[0xce, 0xff, 0xff, 0xff, 0xff]);
    let cases = [
        ("user message of 2 GiB", user),
        ("encrypted frame of 4 GiB", encrypted),
        ("push/pull of 4 billion members", push_pull),
        ("push/pull with 4 GiB of state", user_state),
    ];

    let rss_before = rss();
    for (what, header) in &cases {
        let before = stats(&target).await;
        let closed_after = send_header(to, header).await;
        let after = stats(&target).await;
        eprintln!("huge declared stream, {what}: closed after {closed_after:?}");
        assert!(
            closed_after < tcp_timeout / 2,
            "{what}: closed after {closed_after:?}, not refused at once"
        );
        assert_eq!(after.stream_errors, before.stream_errors + 1, "{what}");
        assert_eq!(after.incoming_streams, 0, "{what}");
    }
    // A compress message whose buffer declares 2 GiB: the framer refuses
    // the declared length as soon as the header is in.
    let mut compress = vec![9u8, 0x82, 0xa4];
    compress.extend_from_slice(b"Algo");
    compress.extend_from_slice(&[0x00, 0xa3]);
    compress.extend_from_slice(b"Buf");
    compress.extend_from_slice(&[0xc6, 0x80, 0x00, 0x00, 0x00]);
    let before = stats(&target).await;
    let closed_after = send_header(to, &compress).await;
    let after = stats(&target).await;
    eprintln!("huge declared stream, compress buffer of 2 GiB: closed after {closed_after:?}");
    assert!(
        closed_after < tcp_timeout / 2,
        "compress of 2 GiB: closed after {closed_after:?}, not refused at once"
    );
    assert_eq!(
        after.stream_errors,
        before.stream_errors + 1,
        "compress of 2 GiB"
    );

    let growth = rss().saturating_sub(rss_before);
    eprintln!(
        "huge declared streams: resident growth {} KiB",
        growth / 1024
    );
    assert!(
        growth < 16 * MIB,
        "resident memory grew by {} MiB",
        growth / MIB
    );

    // Still serving: a reliable message arrives.
    let (peer, _) = rt.start(local_config("peer")).await.expect("start");
    assert_eq!(peer.join(&[to]).await, Ok(1));
    peer.send_reliable("target", b"after the giants")
        .await
        .expect("send");
    rt.next_event_matching(
        &target_events,
        CONVERGE,
        "the message after the giants",
        |e| matches!(e, Event::UserMessage { payload, .. } if payload == b"after the giants"),
    )
    .await;
    target.shutdown().await;
    peer.shutdown().await;
}

#[test]
fn huge_declared_streams_on_tokio() {
    let _serial = serial();
    Runtime::Tokio(Net::UdpTcp).run(huge_declared_streams);
}
