//! Hostile input: every malformed, truncated, oversized or mislabelled input
//! gets a typed [`WireError`], nothing panics, and no declared size is
//! trusted before the bytes behind it have arrived.
//!
//! Where a test guards against allocating from a declared size it uses a
//! declared size so large (with the limits lifted) that trusting it would
//! abort the process ("capacity overflow" or a failed multi-terabyte
//! allocation): returning at all is the assertion.

use std::collections::{BTreeMap, HashSet};
use std::mem::discriminant;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use swim_core::wire::{
    encode_compound, encode_compress, for_each_message, lzw, Accusation, Ack, Alive, CompoundParts,
    EncryptionVersion, Envelope, ErrorResponse, Frame, IndirectPing, Keyring, Limits, Message,
    MessageType, NodeState, Ping, PushNodeState, PushPull, SecretKey, StreamFramer, StreamRole,
    Transport, WireError,
};

const MIB: usize = 1 << 20;

// ------------------------------------------------------------ helpers

fn limits() -> Limits {
    Limits::default()
}

/// Limits with every declared-size bound lifted: only the input's real
/// length can stop a decoder from trusting a declared size.
fn unbounded() -> Limits {
    Limits {
        max_push_nodes: usize::MAX,
        max_user_state: usize::MAX,
        max_user_message: usize::MAX,
        max_stream_frame: usize::MAX,
        max_stream_message: usize::MAX,
        ..Limits::default()
    }
}

fn key16() -> SecretKey {
    SecretKey::new(&[0x42; 16]).unwrap()
}

fn keyed() -> Envelope {
    Envelope::new().with_keyring(Keyring::new(key16()))
}

fn plain() -> Envelope {
    Envelope::new().with_compression(false)
}

/// A fixstr map key.
fn key(out: &mut Vec<u8>, k: &str) {
    assert!(k.len() < 32);
    out.push(0xa0 | k.len() as u8);
    out.extend_from_slice(k.as_bytes());
}

/// `06 ‖ {Join: false, Nodes: <nodes>, UserStateLen: <user_state_len>}`,
/// with the two values given as raw msgpack.
fn push_pull_header(nodes: &[u8], user_state_len: &[u8]) -> Vec<u8> {
    let mut v = vec![MessageType::PushPull as u8, 0x83];
    key(&mut v, "Join");
    v.push(0xc2);
    key(&mut v, "Nodes");
    v.extend_from_slice(nodes);
    key(&mut v, "UserStateLen");
    v.extend_from_slice(user_state_len);
    v
}

/// `08 ‖ {UserMsgLen: <len>}` with the value given as raw msgpack.
fn user_stream_header(len: &[u8]) -> Vec<u8> {
    let mut v = vec![MessageType::User as u8, 0x81];
    key(&mut v, "UserMsgLen");
    v.extend_from_slice(len);
    v
}

/// `ce ‖ u32 BE`.
fn u32_value(n: u32) -> Vec<u8> {
    let mut v = vec![0xce];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

/// `cf ‖ u64 BE`.
fn u64_value(n: u64) -> Vec<u8> {
    let mut v = vec![0xcf];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

fn ping_bytes(seq_no: u32) -> Vec<u8> {
    let mut out = Vec::new();
    Message::Ping(Ping {
        seq_no,
        node: "node-b",
        source_addr: [10, 0, 0, 1][..].into(),
        source_port: 7946,
        source_node: "node-a",
    })
    .encode(Transport::Packet, &mut out);
    out
}

fn ping_value(seq_no: u32) -> Message<'static> {
    Message::Ping(Ping {
        seq_no,
        node: "node-b",
        source_addr: [10, 0, 0, 1][..].into(),
        source_port: 7946,
        source_node: "node-a",
    })
}

/// Every message `for_each_message` reports, as `Debug` strings.
fn walk(body: &[u8], limits: &Limits) -> Vec<Result<String, WireError>> {
    let mut seen = Vec::new();
    for_each_message(body, limits, &mut |m| {
        seen.push(m.map(|m| format!("{m:?}")))
    });
    seen
}

fn ok(m: &Message<'_>) -> Result<String, WireError> {
    Ok(format!("{m:?}"))
}

fn frame(bytes: &[u8], role: StreamRole, limits: Limits) -> Result<Frame, WireError> {
    StreamFramer::new(role, limits).frame(bytes)
}

/// The framer's answer for both roles (the input has no label header).
fn frame_both(bytes: &[u8], limits: Limits) -> [Result<Frame, WireError>; 2] {
    [
        frame(bytes, StreamRole::Accept, limits.clone()),
        frame(bytes, StreamRole::Reply, limits),
    ]
}

fn compound(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_compound(parts, &mut out).unwrap();
    out
}

fn compress(inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_compress(inner, &mut out);
    out
}

/// An error's metric name and message are never empty.
fn check_error(e: &WireError) -> Result<(), TestCaseError> {
    prop_assert!(!e.kind().is_empty());
    prop_assert!(!e.to_string().is_empty());
    Ok(())
}

// ------------------------------------------------------------ fuzzing

/// The envelopes hostile packets and streams are thrown at.
fn envelopes() -> Vec<Envelope> {
    vec![
        Envelope::new(),
        Envelope::new().with_label(b"prod").unwrap(),
        keyed(),
        keyed()
            .with_label(b"prod")
            .unwrap()
            .with_encryption_version(EncryptionVersion::V0),
        // Migration mode: undecryptable input is read as plaintext.
        keyed().with_verify_incoming(false),
        Envelope::new()
            .with_label(b"prod")
            .unwrap()
            .with_skip_inbound_label_check(true),
        Envelope::new().with_limits(Limits {
            max_decompressed: 4096,
            max_packet_decompressed: 4096,
            max_stream_message: 4096,
            max_nesting: 1,
            ..Limits::default()
        }),
    ]
}

/// Whatever a decoder accepts re-encodes to bytes that decode to the same
/// value: accepted input is always something the encoder could have sent.
fn check_reencodes(m: &Message<'_>, transport: Transport) -> Result<(), TestCaseError> {
    let mut again = Vec::new();
    m.encode(transport, &mut again);
    let back = Message::decode(&again, transport, &unbounded());
    prop_assert_eq!(back.as_ref(), Ok(m), "re-encoded as {:02x?}", again);
    Ok(())
}

fn walk_checked(body: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    let mut result = Ok(());
    for_each_message(body, limits, &mut |m| {
        if result.is_ok() {
            result = match m {
                Ok(m) => check_reencodes(&m, Transport::Packet),
                Err(e) => check_error(&e),
            };
        }
    });
    result
}

/// Throws `bytes` at every entry point; checks what comes back is sane.
fn feed_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    for env in envelopes() {
        match env.open_packet(bytes) {
            Ok(body) => {
                prop_assert!(!body.is_empty());
                prop_assert!(body.len() <= bytes.len());
                walk_checked(&body, env.limits())?;
            }
            Err(e) => check_error(&e)?,
        }
        for role in [StreamRole::Accept, StreamRole::Reply] {
            let mut framer = StreamFramer::new(role, env.limits().clone());
            match framer.frame(bytes) {
                Ok(Frame::Complete { len }) => {
                    prop_assert!(len >= 1 && len <= bytes.len(), "len {}", len);
                    match env.open_stream(&bytes[..len], role) {
                        Ok(opened) => {
                            match Message::decode(&opened, Transport::Stream, env.limits()) {
                                Ok(m) => check_reencodes(&m, Transport::Stream)?,
                                Err(e) => check_error(&e)?,
                            }
                        }
                        Err(e) => check_error(&e)?,
                    }
                }
                Ok(Frame::NeedMore) => {}
                Err(e) => check_error(&e)?,
            }
        }
    }
    walk_checked(bytes, &limits())?;
    for transport in [Transport::Packet, Transport::Stream] {
        match Message::decode(bytes, transport, &limits()) {
            Ok(m) => check_reencodes(&m, transport)?,
            Err(e) => check_error(&e)?,
        }
        // Lifting the limits changes which errors come back, never a panic.
        let _ = Message::decode(bytes, transport, &unbounded());
    }
    for role in [StreamRole::Accept, StreamRole::Reply] {
        let _ = frame(bytes, role, unbounded());
    }
    for max in [0, 1, 4096] {
        match lzw::decompress(bytes, max) {
            Ok(out) => prop_assert!(out.len() <= max, "{} > {}", out.len(), max),
            Err(e) => check_error(&e)?,
        }
    }
    Ok(())
}

/// Bits of msgpack and memberlist framing that hostile inputs are made of:
/// map and array headers (some declaring billions of entries), huge string
/// and ext lengths, the field names the decoders look for, every integer
/// width, floats, and random bytes.
fn token() -> impl Strategy<Value = Vec<u8>> {
    const NAMES: [&str; 23] = [
        "SeqNo",
        "Node",
        "SourceAddr",
        "SourcePort",
        "SourceNode",
        "Target",
        "Port",
        "Nack",
        "Payload",
        "Incarnation",
        "From",
        "Addr",
        "Meta",
        "Vsn",
        "Name",
        "State",
        "Join",
        "Nodes",
        "UserStateLen",
        "UserMsgLen",
        "Algo",
        "Buf",
        "Error",
    ];
    prop_oneof![
        4 => proptest::sample::select(&NAMES[..]).prop_map(|n| {
            let mut v = Vec::new();
            key(&mut v, n);
            v
        }),
        2 => (0u8..16).prop_map(|n| vec![0x80 | n]),
        1 => (0u8..16).prop_map(|n| vec![0x90 | n]),
        1 => Just(vec![0xde, 0xff, 0xff]),
        1 => Just(vec![0xdf, 0xff, 0xff, 0xff, 0xff]),
        1 => Just(vec![0xdc, 0xff, 0xff]),
        1 => Just(vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        1 => Just(vec![0xdb, 0xff, 0xff, 0xff, 0xff]),
        1 => Just(vec![0xc6, 0x7f, 0xff, 0xff, 0xff]),
        1 => Just(vec![0xc9, 0xff, 0xff, 0xff, 0xff]),
        1 => (0u8..32).prop_map(|n| vec![0xa0 | n]),
        1 => any::<u8>().prop_map(|n| vec![0xd9, n]),
        2 => any::<u8>().prop_map(|b| vec![b]),
        1 => any::<u64>().prop_map(u64_value),
        1 => any::<u32>().prop_map(u32_value),
        1 => any::<i64>().prop_map(|n| {
            let mut v = vec![0xd3];
            v.extend_from_slice(&n.to_be_bytes());
            v
        }),
        1 => Just(vec![0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18]),
        1 => prop_oneof![Just(0xc0u8), Just(0xc2), Just(0xc3), Just(0xff), Just(0xe0)]
            .prop_map(|b| vec![b]),
        1 => vec(any::<u8>(), 0..16),
    ]
}

/// A message-looking input: an optional label header, a type byte, then
/// tokens.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    let ty = prop_oneof![
        (0u8..=13),
        Just(MessageType::Label as u8),
        Just(200u8),
        any::<u8>()
    ];
    (
        proptest::option::of(prop_oneof![
            Just(b"\xf4\x04prod".to_vec()),
            Just(b"\xf4\x00".to_vec()),
            Just(b"\xf4\x09pr".to_vec()),
        ]),
        ty,
        vec(token(), 0..24),
    )
        .prop_map(|(label, ty, tokens)| {
            let mut v = label.unwrap_or_default();
            v.push(ty);
            v.extend(tokens.concat());
            v
        })
}

fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..300), structured()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in hostile_bytes()) {
        feed_everything(&bytes)?;
    }

    /// Feeding a stream in pieces gives what feeding it whole gives, and a
    /// complete message is exactly complete: its strict prefixes need more.
    #[test]
    fn framer_is_consistent(bytes in hostile_bytes(), picks in vec(any::<Index>(), 0..8)) {
        for role in [StreamRole::Accept, StreamRole::Reply] {
            let whole = frame(&bytes, role, limits());
            let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut framer = StreamFramer::new(role, limits());
            let mut incremental = None;
            for cut in cuts {
                match framer.frame(&bytes[..cut]) {
                    Ok(Frame::NeedMore) => {}
                    done => {
                        incremental = Some((cut, done));
                        break;
                    }
                }
            }
            match incremental {
                // Nothing decided early: the last call must agree with a fresh framer.
                None => prop_assert_eq!(framer.frame(&bytes), whole.clone()),
                // Decided on a prefix: the whole buffer decides the same way.
                Some((cut, done)) => {
                    prop_assert_eq!(done.clone(), frame(&bytes[..cut], role, limits()));
                    prop_assert_eq!(done, whole.clone());
                }
            }
            if let Ok(Frame::Complete { len }) = whole {
                prop_assert_eq!(frame(&bytes[..len], role, limits()), Ok(Frame::Complete { len }));
                prop_assert_eq!(frame(&bytes[..len - 1], role, limits()), Ok(Frame::NeedMore));
            }
        }
    }

    #[test]
    fn lzw_decompress_never_panics(bytes in vec(any::<u8>(), 0..2000), max in 0usize..100_000) {
        match lzw::decompress(&bytes, max) {
            Ok(out) => prop_assert!(out.len() <= max),
            Err(e @ (WireError::TooLarge { what: "max_decompressed", .. }
                | WireError::CorruptCompression)) => check_error(&e)?,
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }
}

// ------------------------------------------------------------ mutations

/// Valid packet messages, already encoded.
fn packet_message() -> impl Strategy<Value = Vec<u8>> {
    let s = || "[a-z0-9-]{0,40}";
    let bytes = || vec(any::<u8>(), 0..40);
    prop_oneof![
        (any::<u32>(), s(), bytes(), any::<u16>(), s()).prop_map(|(seq_no, node, a, p, src)| {
            encode(
                &Message::Ping(Ping {
                    seq_no,
                    node: &node,
                    source_addr: a.into(),
                    source_port: p,
                    source_node: &src,
                }),
                Transport::Packet,
            )
        }),
        (any::<u32>(), bytes(), any::<u16>(), s(), any::<bool>()).prop_map(
            |(seq_no, t, p, n, nack)| {
                encode(
                    &Message::IndirectPing(IndirectPing {
                        seq_no,
                        target: t.into(),
                        port: p,
                        node: &n,
                        nack,
                        source_addr: vec![10, 0, 0, 2].into(),
                        source_port: 7946,
                        source_node: "x",
                    }),
                    Transport::Packet,
                )
            }
        ),
        (any::<u32>(), bytes()).prop_map(|(seq_no, p)| {
            encode(
                &Message::Ack(Ack {
                    seq_no,
                    payload: p.into(),
                }),
                Transport::Packet,
            )
        }),
        (any::<u32>(), s(), s(), any::<bool>()).prop_map(|(inc, node, from, dead)| {
            let a = Accusation {
                incarnation: inc,
                node: &node,
                from: &from,
            };
            encode(
                &if dead {
                    Message::Dead(a)
                } else {
                    Message::Suspect(a)
                },
                Transport::Packet,
            )
        }),
        (
            any::<u32>(),
            s(),
            bytes(),
            any::<u16>(),
            bytes(),
            vec(any::<u8>(), 0..=32)
        )
            .prop_map(|(inc, node, addr, port, meta, vsn)| {
                encode(
                    &Message::Alive(Alive {
                        incarnation: inc,
                        node: &node,
                        addr: addr.into(),
                        port,
                        meta: meta.into(),
                        vsn: vsn.into(),
                    }),
                    Transport::Packet,
                )
            }),
        bytes().prop_map(|b| encode(&Message::User(&b), Transport::Packet)),
    ]
}

/// Valid stream messages, already encoded.
fn stream_message() -> impl Strategy<Value = Vec<u8>> {
    let s = || "[a-z0-9-]{0,40}";
    let node = (
        s(),
        vec(any::<u8>(), 0..18),
        any::<u16>(),
        any::<u32>(),
        any::<i64>(),
    )
        .prop_map(|(name, addr, port, inc, state)| (name, addr, port, inc, state));
    prop_oneof![
        (any::<u32>(), s()).prop_map(|(seq_no, node)| {
            encode(
                &Message::Ping(Ping {
                    seq_no,
                    node: &node,
                    ..Ping::default()
                }),
                Transport::Stream,
            )
        }),
        (any::<u32>(), vec(any::<u8>(), 0..40)).prop_map(|(seq_no, p)| {
            encode(
                &Message::Ack(Ack {
                    seq_no,
                    payload: p.into(),
                }),
                Transport::Stream,
            )
        }),
        vec(any::<u8>(), 0..300).prop_map(|b| encode(&Message::User(&b), Transport::Stream)),
        s().prop_map(|e| encode(
            &Message::Error(ErrorResponse { error: &e }),
            Transport::Stream
        )),
        (any::<bool>(), vec(node, 0..6), vec(any::<u8>(), 0..300)).prop_map(|(join, nodes, us)| {
            let nodes = nodes
                .iter()
                .map(|(name, addr, port, inc, state)| PushNodeState {
                    name: name.as_str(),
                    addr: addr.as_slice().into(),
                    port: *port,
                    meta: (&b"meta"[..]).into(),
                    incarnation: *inc,
                    state: NodeState::from_code(*state),
                    vsn: (&[1, 5, 2, 0, 0, 0][..]).into(),
                })
                .collect();
            encode(
                &Message::PushPull(PushPull {
                    join,
                    nodes,
                    user_state: &us,
                }),
                Transport::Stream,
            )
        }),
    ]
}

fn encode(m: &Message<'_>, t: Transport) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(t, &mut out);
    out
}

/// A sender's and receiver's configuration: compression, CRC, key, label.
#[derive(Debug, Clone)]
struct Config {
    compression: bool,
    crc: bool,
    key: bool,
    label: bool,
}

impl Config {
    fn envelope(&self) -> Envelope {
        let mut e = Envelope::new().with_compression(self.compression);
        if self.key {
            e = e.with_keyring(Keyring::new(key16()));
        }
        if self.label {
            e = e.with_label(b"prod").unwrap();
        }
        e
    }
}

fn config() -> impl Strategy<Value = Config> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(compression, crc, key, label)| Config {
            compression,
            crc,
            key,
            label,
        },
    )
}

/// A valid datagram: one message or a compound of several, sealed.
fn datagram() -> impl Strategy<Value = (Config, Vec<u8>)> {
    (config(), vec(packet_message(), 1..8), any::<bool>()).prop_map(|(cfg, msgs, wrap)| {
        let message = if wrap {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            compound(&refs)
        } else {
            msgs[0].clone()
        };
        let mut out = Vec::new();
        cfg.envelope()
            .seal_packet(&message, cfg.crc, || [7; 12], &mut out);
        (cfg, out)
    })
}

/// A valid stream message as the accepting side reads it, sealed.
fn stream() -> impl Strategy<Value = (Config, Vec<u8>)> {
    (config(), stream_message()).prop_map(|(cfg, message)| {
        let env = cfg.envelope();
        let mut out = Vec::new();
        env.write_stream_label(&mut out);
        env.seal_stream(&message, || [9; 12], &mut out);
        (cfg, out)
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), prop_oneof![vec(any::<u8>(), 1..8), token()])
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        match m {
            Mutation::Flip(i, x) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Mutation::Flip(..) => {}
            Mutation::Truncate(i) => {
                let i = i.index(bytes.len() + 1);
                bytes.truncate(i);
            }
            Mutation::Insert(i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.splice(i..i, b.iter().copied());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_messages_never_panic(
        message in prop_oneof![packet_message(), stream_message()],
        mutations in vec(mutation(), 1..4),
    ) {
        let mut bytes = message;
        mutate(&mut bytes, &mutations);
        feed_everything(&bytes)?;
    }

    #[test]
    fn mutated_datagrams_never_panic(
        (cfg, datagram) in datagram(),
        mutations in vec(mutation(), 1..4),
    ) {
        let env = cfg.envelope();
        // Unmutated, it opens and every message decodes.
        let body = env.open_packet(&datagram);
        prop_assert!(body.is_ok(), "{:?}", body);
        prop_assert!(walk(&body.unwrap(), env.limits()).iter().all(Result::is_ok));

        let mut bytes = datagram;
        mutate(&mut bytes, &mutations);
        match env.open_packet(&bytes) {
            Ok(body) => walk_checked(&body, env.limits())?,
            Err(e) => check_error(&e)?,
        }
        feed_everything(&bytes)?;
    }

    #[test]
    fn mutated_streams_never_panic(
        (cfg, stream) in stream(),
        mutations in vec(mutation(), 1..4),
    ) {
        let env = cfg.envelope();
        let mut bytes = stream;
        mutate(&mut bytes, &mutations);
        match env.read_stream(&mut StreamFramer::new(StreamRole::Accept, limits()), &bytes) {
            Ok(swim_core::wire::StreamRead::Message { message, consumed }) => {
                prop_assert!(consumed <= bytes.len());
                if let Ok(m) = Message::decode(&message, Transport::Stream, env.limits()) {
                    check_reencodes(&m, Transport::Stream)?;
                }
            }
            Ok(swim_core::wire::StreamRead::NeedMore) => {}
            Err(e) => check_error(&e)?,
        }
        feed_everything(&bytes)?;
    }

    /// Every strict prefix of a valid stream message needs more bytes; the
    /// whole is complete at exactly its length.
    #[test]
    fn truncated_streams_need_more((cfg, stream) in stream(), picks in vec(any::<Index>(), 1..10)) {
        for p in picks {
            let cut = p.index(stream.len());
            prop_assert_eq!(
                frame(&stream[..cut], StreamRole::Accept, limits()),
                Ok(Frame::NeedMore),
                "{} of {} bytes ({:?})", cut, stream.len(), cfg
            );
        }
        prop_assert_eq!(
            frame(&stream, StreamRole::Accept, limits()),
            Ok(Frame::Complete { len: stream.len() })
        );
    }
}

// ------------------------------------------------------------ declared sizes

#[test]
fn million_nodes_with_nothing_behind_them() {
    let header = push_pull_header(&u32_value(1_000_000), &[0]);
    assert!(1_000_000 <= limits().max_push_nodes);
    assert_eq!(
        Message::decode(&header, Transport::Stream, &limits()),
        Err(WireError::Truncated)
    );
    assert_eq!(
        frame_both(&header, limits()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );

    // With one real member behind the header: still waiting for the rest.
    let mut one = Vec::new();
    Message::PushPull(PushPull {
        join: false,
        nodes: vec![PushNodeState {
            name: "a",
            addr: (&[10, 0, 0, 1][..]).into(),
            port: 1,
            meta: (&[][..]).into(),
            incarnation: 1,
            state: NodeState::Alive,
            vsn: (&[][..]).into(),
        }],
        user_state: &[],
    })
    .encode(Transport::Stream, &mut one);
    let one_header = push_pull_header(&[1], &[0]);
    assert_eq!(&one[..one_header.len()], &one_header[..]);
    let member = &one[one_header.len()..];
    let mut longer = header.clone();
    longer.extend_from_slice(member);
    assert_eq!(
        Message::decode(&longer, Transport::Stream, &limits()),
        Err(WireError::Truncated)
    );
    assert_eq!(
        frame_both(&longer, limits()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );

    // With the limit lifted, a count of 2^62 members: trusting it would need
    // exabytes.
    let huge = push_pull_header(&u64_value(1 << 62), &[0]);
    assert_eq!(
        Message::decode(&huge, Transport::Stream, &unbounded()),
        Err(WireError::Truncated)
    );
    assert_eq!(
        frame_both(&huge, unbounded()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );
}

#[test]
fn declared_lengths_beyond_the_input() {
    let huge_array = [0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    let huge_map = [0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    let huge_str = [0xdb, 0xff, 0xff, 0xff, 0xff, b'a', b'b'];
    let huge_bin = [0xc6, 0xff, 0xff, 0xff, 0xff, b'a', b'b'];
    // A []byte field takes arrays and strings, a string field only
    // strings, an unknown field anything.
    let cases = [
        (&huge_array[..], "SourceAddr"),
        (&huge_array[..], "Unknown"),
        (&huge_str[..], "SourceAddr"),
        (&huge_str[..], "Node"),
        (&huge_str[..], "Unknown"),
        (&huge_bin[..], "SourceAddr"),
        (&huge_bin[..], "Node"),
        (&huge_bin[..], "Unknown"),
    ];
    for (v, field) in cases {
        let ping = ping_with(field, v);
        for t in [Transport::Packet, Transport::Stream] {
            assert_eq!(
                Message::decode(&ping, t, &unbounded()),
                Err(WireError::Truncated),
                "{field} {v:02x?}"
            );
        }
        assert_eq!(
            frame_both(&ping, unbounded()),
            [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
        );
    }
    let ping = ping_with("Unknown", &huge_map);
    assert_eq!(
        Message::decode(&ping, Transport::Packet, &unbounded()),
        Err(WireError::Truncated)
    );
    // The struct itself declaring 4 billion fields.
    let mut body = vec![MessageType::Ping as u8];
    body.extend_from_slice(&huge_map[..5]);
    key(&mut body, "SeqNo");
    body.push(1);
    assert_eq!(
        Message::decode(&body, Transport::Packet, &unbounded()),
        Err(WireError::Truncated)
    );
    // A compress layer whose Buf declares 4 GiB.
    let mut compressed = vec![MessageType::Compress as u8, 0x82];
    key(&mut compressed, "Algo");
    compressed.push(0);
    key(&mut compressed, "Buf");
    compressed.extend_from_slice(&huge_str);
    assert_eq!(
        walk(&compressed, &limits()),
        vec![Err(WireError::Truncated)]
    );
    assert_eq!(
        frame(&compressed, StreamRole::Reply, unbounded()),
        Ok(Frame::NeedMore)
    );
}

#[test]
fn nodes_over_the_limit() {
    let max = limits().max_push_nodes as u32;
    let too_large = WireError::TooLarge {
        what: "max_push_nodes",
        len: u64::from(max) + 1,
        limit: u64::from(max),
    };
    let header = push_pull_header(&u32_value(max + 1), &[0]);
    assert_eq!(
        Message::decode(&header, Transport::Stream, &limits()),
        Err(too_large.clone())
    );
    assert_eq!(
        frame_both(&header, limits()),
        [Err(too_large.clone()), Err(too_large)]
    );
    // At the limit it is only waiting for the members.
    let header = push_pull_header(&u32_value(max), &[0]);
    assert_eq!(
        Message::decode(&header, Transport::Stream, &limits()),
        Err(WireError::Truncated)
    );
    // A custom limit is the one enforced.
    let small = Limits {
        max_push_nodes: 3,
        ..limits()
    };
    let header = push_pull_header(&[4], &[0]);
    let want = WireError::TooLarge {
        what: "max_push_nodes",
        len: 4,
        limit: 3,
    };
    assert_eq!(
        Message::decode(&header, Transport::Stream, &small),
        Err(want.clone())
    );
    assert_eq!(frame(&header, StreamRole::Reply, small), Err(want.clone()));
}

#[test]
fn negative_counts_and_lengths() {
    let nodes = WireError::IntegerOutOfRange { field: "Nodes" };
    let state = WireError::IntegerOutOfRange {
        field: "UserStateLen",
    };
    let user = WireError::IntegerOutOfRange {
        field: "UserMsgLen",
    };
    let min = [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0];
    for neg in [&[0xff][..], &[0xd0, 0x80][..], &min[..]] {
        let header = push_pull_header(neg, &[0]);
        assert_eq!(
            Message::decode(&header, Transport::Stream, &limits()),
            Err(nodes.clone())
        );
        assert_eq!(
            frame_both(&header, limits()),
            [Err(nodes.clone()), Err(nodes.clone())]
        );

        let header = push_pull_header(&[0], neg);
        assert_eq!(
            Message::decode(&header, Transport::Stream, &limits()),
            Err(state.clone())
        );
        assert_eq!(
            frame_both(&header, limits()),
            [Err(state.clone()), Err(state.clone())]
        );

        let header = user_stream_header(neg);
        assert_eq!(
            Message::decode(&header, Transport::Stream, &limits()),
            Err(user.clone())
        );
        assert_eq!(
            frame_both(&header, limits()),
            [Err(user.clone()), Err(user.clone())]
        );
    }
    // u64 values above i64::MAX do not wrap to negative lengths either.
    let header = push_pull_header(&u64_value(u64::MAX), &[0]);
    assert_eq!(
        Message::decode(&header, Transport::Stream, &unbounded()),
        Err(nodes.clone())
    );
    assert_eq!(
        frame(&header, StreamRole::Reply, unbounded()),
        Err(nodes.clone())
    );
}

#[test]
fn user_state_over_the_limit() {
    let max = limits().max_user_state;
    let want = WireError::TooLarge {
        what: "max_user_state",
        len: max as u64 + 1,
        limit: max as u64,
    };
    let header = push_pull_header(&[0], &u32_value(max as u32 + 1));
    assert_eq!(
        Message::decode(&header, Transport::Stream, &limits()),
        Err(want.clone())
    );
    assert_eq!(
        frame_both(&header, limits()),
        [Err(want.clone()), Err(want)]
    );
    // At the limit: waiting for the bytes, which are not reserved up front.
    let header = push_pull_header(&[0], &u32_value(max as u32));
    assert_eq!(
        Message::decode(&header, Transport::Stream, &limits()),
        Err(WireError::Truncated)
    );
    assert_eq!(
        frame_both(&header, limits()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );
    // Limits lifted, an exabyte of declared state.
    let header = push_pull_header(&[0], &u64_value(i64::MAX as u64));
    assert_eq!(
        Message::decode(&header, Transport::Stream, &unbounded()),
        Err(WireError::Truncated)
    );
    assert_eq!(
        frame_both(&header, unbounded()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );
}

#[test]
fn user_message_over_the_limit() {
    let max = limits().max_user_message;
    let want = WireError::TooLarge {
        what: "max_user_message",
        len: max as u64 + 1,
        limit: max as u64,
    };
    let header = user_stream_header(&u32_value(max as u32 + 1));
    assert_eq!(
        Message::decode(&header, Transport::Stream, &limits()),
        Err(want.clone())
    );
    assert_eq!(
        frame_both(&header, limits()),
        [Err(want.clone()), Err(want)]
    );
    // At the limit, with a few bytes: waiting.
    let mut header = user_stream_header(&u32_value(max as u32));
    header.extend_from_slice(b"abc");
    assert_eq!(
        Message::decode(&header, Transport::Stream, &limits()),
        Err(WireError::Truncated)
    );
    assert_eq!(
        frame_both(&header, limits()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );
    let header = user_stream_header(&u64_value(i64::MAX as u64));
    assert_eq!(
        Message::decode(&header, Transport::Stream, &unbounded()),
        Err(WireError::Truncated)
    );
    assert_eq!(
        frame_both(&header, unbounded()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );
}

#[test]
fn encrypted_frame_over_the_limit() {
    let max = limits().max_stream_frame as u32;
    for declared in [max + 1, u32::MAX] {
        let want = WireError::TooLarge {
            what: "max_stream_frame",
            len: u64::from(declared),
            limit: u64::from(max),
        };
        // Only the 5-byte header has arrived; refused right away.
        let mut bytes = vec![MessageType::Encrypt as u8];
        bytes.extend_from_slice(&declared.to_be_bytes());
        assert_eq!(
            frame_both(&bytes, limits()),
            [Err(want.clone()), Err(want.clone())]
        );
        let mut labelled = b"\xf4\x04prod".to_vec();
        labelled.extend_from_slice(&bytes);
        assert_eq!(
            frame(&labelled, StreamRole::Accept, limits()),
            Err(want.clone())
        );
    }
    // At the limit the framer waits for the payload.
    let mut bytes = vec![MessageType::Encrypt as u8];
    bytes.extend_from_slice(&max.to_be_bytes());
    assert_eq!(
        frame_both(&bytes, limits()),
        [Ok(Frame::NeedMore), Ok(Frame::NeedMore)]
    );
}

#[test]
fn plain_stream_growing_past_the_limit() {
    let small = Limits {
        max_stream_message: 1024,
        ..limits()
    };
    let too_large = Err(WireError::TooLarge {
        what: "max_stream_message",
        len: 1025,
        limit: 1024,
    });
    // A user message and a push/pull that each declare 4 KiB (within their
    // own limits) and never end.
    let mut user = user_stream_header(&u32_value(4096));
    let mut push_pull = push_pull_header(&[0], &u32_value(4096));
    for bytes in [&mut user, &mut push_pull] {
        bytes.resize(2000, b'x');
        let mut framer = StreamFramer::new(StreamRole::Reply, small.clone());
        for n in [100, 500, 1000, 1024] {
            assert_eq!(framer.frame(&bytes[..n]), Ok(Frame::NeedMore), "{n} bytes");
        }
        assert_eq!(framer.frame(&bytes[..1025]), too_large);
        assert_eq!(
            StreamFramer::new(StreamRole::Reply, small.clone()).frame(&bytes[..1025]),
            too_large
        );
    }
    // A ping whose map never ends (a nested map declaring 65,535 entries).
    let mut ping = vec![0x00, 0x81];
    key(&mut ping, "Zz");
    ping.extend_from_slice(&[0xde, 0xff, 0xff]);
    ping.resize(1025, 0x01);
    assert_eq!(
        frame(&ping[..1024], StreamRole::Reply, small.clone()),
        Ok(Frame::NeedMore)
    );
    assert_eq!(frame(&ping, StreamRole::Reply, small), too_large);
}

#[test]
fn plain_stream_declaring_more_than_the_limit_is_refused_on_sight() {
    // A compress message whose buffer declares 2 GiB: refused once its
    // header is in, not after the peer has sent (or failed to send) it all.
    let mut bomb = vec![MessageType::Compress as u8, 0x82];
    key(&mut bomb, "Algo");
    bomb.push(0x00);
    key(&mut bomb, "Buf");
    bomb.push(0xc6);
    bomb.extend_from_slice(&(2u32 << 30).to_be_bytes());
    bomb.extend_from_slice(b"a few bytes");
    for role in [StreamRole::Accept, StreamRole::Reply] {
        assert!(
            matches!(
                frame(&bomb, role, limits()),
                Err(WireError::TooLarge { what: "max_stream_message", len, .. }) if len > 1 << 31
            ),
            "{role:?}: {:?}",
            frame(&bomb, role, limits())
        );
    }
    // The same header declaring what fits is simply incomplete.
    let fits = 1024u32;
    let at = bomb.len() - 15;
    bomb[at..at + 4].copy_from_slice(&fits.to_be_bytes());
    assert_eq!(
        frame(&bomb, StreamRole::Reply, limits()),
        Ok(Frame::NeedMore)
    );
}

// ------------------------------------------------------------ compression

#[test]
fn compression_bomb() {
    let mut inner = vec![0u8; MIB];
    inner[0] = MessageType::User as u8;
    let bomb = compress(&inner);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());

    // Default limits: the whole MiB is a user message.
    let mut seen = Vec::new();
    for_each_message(&bomb, &limits(), &mut |m| {
        seen.push(m.map(|m| match m {
            Message::User(b) => (b.len(), b.iter().all(|&x| x == 0)),
            other => panic!("{other:?}"),
        }))
    });
    assert_eq!(seen, vec![Ok((MIB - 1, true))]);

    let small = Limits {
        max_decompressed: 64 * 1024,
        max_packet_decompressed: 64 * 1024,
        ..limits()
    };
    let got = walk(&bomb, &small);
    assert_eq!(got.len(), 1);
    match &got[0] {
        Err(WireError::TooLarge {
            what: "max_packet_decompressed",
            len,
            limit: 65_536,
        }) => assert!(*len > 65_536),
        other => panic!("{other:?}"),
    }
    // The same bomb as a stream message.
    let env = plain().with_limits(small);
    assert_eq!(
        frame(&bomb, StreamRole::Reply, limits()),
        Ok(Frame::Complete { len: bomb.len() })
    );
    assert!(matches!(
        env.open_stream(&bomb, StreamRole::Reply),
        Err(WireError::TooLarge {
            what: "max_decompressed",
            limit: 65_536,
            ..
        })
    ));
    // The packet limit is separate from the stream one: a datagram cannot
    // legitimately expand to anything near a stream's 40 MiB.
    let got = walk(
        &bomb,
        &Limits {
            max_packet_decompressed: MIB - 1,
            ..limits()
        },
    );
    assert!(matches!(
        got[..],
        [Err(WireError::TooLarge { what: "max_packet_decompressed", limit, .. })] if limit == (MIB - 1) as u64
    ));
    // The budget is for the whole packet: two bombs of 40 KiB each in one
    // compound exceed 64 KiB together.
    let mut half = vec![0u8; 40 * 1024];
    half[0] = MessageType::User as u8;
    let half = compress(&half);
    let both = compound(&[&half, &half]);
    let got = walk(
        &both,
        &Limits {
            max_packet_decompressed: 64 * 1024,
            ..limits()
        },
    );
    assert_eq!(got.len(), 2);
    assert!(got[0].is_ok());
    assert!(matches!(
        got[1],
        Err(WireError::TooLarge {
            what: "max_packet_decompressed",
            ..
        })
    ));
}

#[test]
fn nesting_deeper_than_the_limit() {
    let ping = ping_bytes(3);
    let max = limits().max_nesting;
    let mut compressed = ping.clone();
    let mut compounded = ping.clone();
    for depth in 1..=max + 1 {
        compressed = compress(&compressed);
        compounded = compound(&[&compounded]);
        let want = if depth <= max {
            vec![ok(&ping_value(3))]
        } else {
            vec![Err(WireError::TooDeep)]
        };
        assert_eq!(
            walk(&compressed, &limits()),
            want,
            "{depth} compress layers"
        );
        assert_eq!(
            walk(&compounded, &limits()),
            want,
            "{depth} compound layers"
        );
    }
    // A custom limit is the one enforced.
    let one = Limits {
        max_nesting: 1,
        ..limits()
    };
    let two = compress(&compress(&ping));
    assert_eq!(walk(&two, &one), vec![Err(WireError::TooDeep)]);
}

#[test]
fn bad_compress_bodies() {
    let mut algo1 = vec![MessageType::Compress as u8, 0x82];
    key(&mut algo1, "Algo");
    algo1.push(1);
    key(&mut algo1, "Buf");
    algo1.extend_from_slice(&[0xa3, 0, 3, 2]);
    assert_eq!(
        walk(&algo1, &limits()),
        vec![Err(WireError::UnknownCompression(1))]
    );

    let empty = compress(&[]);
    assert_eq!(
        walk(&empty, &limits()),
        vec![Err(WireError::EmptyDecompression)]
    );

    // A stream cut inside its EOF code.
    let mut lzw_bytes = Vec::new();
    lzw::compress(&ping_bytes(1), &mut lzw_bytes);
    lzw_bytes.pop();
    let mut cut = vec![MessageType::Compress as u8, 0x82];
    key(&mut cut, "Algo");
    cut.push(0);
    key(&mut cut, "Buf");
    cut.push(0xda);
    cut.extend_from_slice(&(lzw_bytes.len() as u16).to_be_bytes());
    cut.extend_from_slice(&lzw_bytes);
    assert_eq!(
        walk(&cut, &limits()),
        vec![Err(WireError::CorruptCompression)]
    );
    assert_eq!(
        lzw::decompress(&[], 100),
        Err(WireError::CorruptCompression)
    );
}

// ------------------------------------------------------------ compound

#[test]
fn compound_count_without_lengths() {
    let mut bytes = vec![MessageType::Compound as u8, 200];
    bytes.extend_from_slice(&[0; 10]);
    bytes.extend_from_slice(&ping_bytes(1));
    assert_eq!(walk(&bytes, &limits()), vec![Err(WireError::BadCompound)]);
    assert!(matches!(
        CompoundParts::new(&bytes[1..]),
        Err(WireError::BadCompound)
    ));
    // Exactly 2n length bytes and no parts: the header is fine, the first
    // part is truncated. A count of 0 is an empty compound.
    assert_eq!(
        walk(&[MessageType::Compound as u8, 2, 0, 5, 0, 5], &limits()),
        vec![Err(WireError::Truncated)]
    );
    assert_eq!(walk(&[MessageType::Compound as u8, 0], &limits()), vec![]);
    // No count at all.
    assert_eq!(
        walk(&[MessageType::Compound as u8], &limits()),
        vec![Err(WireError::BadCompound)]
    );
}

#[test]
fn compound_part_past_the_end() {
    let (p1, p2) = (ping_bytes(1), ping_bytes(2));
    let mut bytes = vec![MessageType::Compound as u8, 4];
    for len in [p1.len(), p2.len(), 100, 5] {
        bytes.extend_from_slice(&(len as u16).to_be_bytes());
    }
    bytes.extend_from_slice(&p1);
    bytes.extend_from_slice(&p2);
    bytes.extend_from_slice(&ping_bytes(3)[..10]);
    assert_eq!(
        walk(&bytes, &limits()),
        vec![
            ok(&ping_value(1)),
            ok(&ping_value(2)),
            Err(WireError::Truncated)
        ]
    );
    let parts: Vec<_> = CompoundParts::new(&bytes[1..]).unwrap().collect();
    assert_eq!(
        parts,
        vec![Ok(&p1[..]), Ok(&p2[..]), Err(WireError::Truncated)]
    );
}

#[test]
fn unencodable_compounds() {
    let part = ping_bytes(1);
    let big = vec![MessageType::User as u8; 65_536];
    let cases: [(Vec<&[u8]>, bool); 7] = [
        (vec![&part[..]; 127], true),
        (vec![&part[..]; 128], false),
        (vec![], false),
        (vec![&part[..], &[][..], &part[..]], false),
        (vec![&big[..65_535]], true),
        (vec![&part[..], &big[..]], false),
        (vec![&big[..]], false),
    ];
    for (parts, fine) in cases {
        let mut out = b"kept".to_vec();
        let got = encode_compound(&parts, &mut out);
        if fine {
            assert_eq!(got, Ok(()), "{} parts", parts.len());
            assert_eq!(walk(&out[4..], &limits()).len(), parts.len());
        } else {
            assert!(
                matches!(got, Err(WireError::Unencodable(why)) if !why.is_empty()),
                "{} parts: {got:?}",
                parts.len()
            );
            assert_eq!(out, b"kept", "nothing written on failure");
        }
    }
}

#[test]
fn empty_inputs() {
    for env in [
        Envelope::new(),
        keyed(),
        Envelope::new().with_label(b"prod").unwrap(),
    ] {
        assert_eq!(env.open_packet(&[]), Err(WireError::Empty));
    }
    assert_eq!(walk(&[], &limits()), vec![Err(WireError::Empty)]);
    for t in [Transport::Packet, Transport::Stream] {
        assert_eq!(Message::decode(&[], t, &limits()), Err(WireError::Empty));
    }
    // Nothing but a label header, or nothing but a CRC header.
    let labelled = Envelope::new().with_label(b"prod").unwrap();
    assert_eq!(labelled.open_packet(b"\xf4\x04prod"), Err(WireError::Empty));
    let mut crc_only = Vec::new();
    plain().seal_packet(&[], true, || unreachable!(), &mut crc_only);
    assert_eq!(crc_only.len(), 5);
    assert_eq!(plain().open_packet(&crc_only), Err(WireError::Empty));
    // A stream that opens to nothing.
    assert_eq!(
        plain().open_stream(b"\xf4\x04prod", StreamRole::Accept),
        Err(WireError::LabelMismatch)
    );
    assert_eq!(
        labelled.open_stream(b"\xf4\x04prod", StreamRole::Accept),
        Err(WireError::Empty)
    );
}

#[test]
fn compound_with_an_empty_part() {
    let (p1, p3) = (ping_bytes(1), ping_bytes(3));
    let mut bytes = vec![MessageType::Compound as u8, 3];
    for len in [p1.len(), 0, p3.len()] {
        bytes.extend_from_slice(&(len as u16).to_be_bytes());
    }
    bytes.extend_from_slice(&p1);
    bytes.extend_from_slice(&p3);
    assert_eq!(
        walk(&bytes, &limits()),
        vec![
            ok(&ping_value(1)),
            Err(WireError::Empty),
            ok(&ping_value(3))
        ]
    );
}

// ------------------------------------------------------------ layers

#[test]
fn crc_mismatch() {
    let ping = ping_bytes(5);
    let mut datagram = Vec::new();
    plain().seal_packet(&ping, true, || unreachable!(), &mut datagram);
    assert_eq!(datagram[0], MessageType::Crc as u8);
    assert_eq!(&datagram[5..], &ping[..]);
    let good = u32::from_be_bytes(datagram[1..5].try_into().unwrap());
    assert_eq!(plain().open_packet(&datagram).as_deref(), Ok(&ping[..]));

    let mut bad_sum = datagram.clone();
    bad_sum[1] ^= 0x80;
    assert_eq!(
        plain().open_packet(&bad_sum),
        Err(WireError::ChecksumMismatch {
            expected: good ^ 0x8000_0000,
            actual: good
        })
    );
    let mut bad_body = datagram.clone();
    *bad_body.last_mut().unwrap() ^= 1;
    assert!(matches!(
        plain().open_packet(&bad_body),
        Err(WireError::ChecksumMismatch { expected, actual }) if expected == good && actual != good
    ));
    // Under encryption too.
    let env = keyed().with_compression(false);
    let mut sealed = Vec::new();
    let mut tampered_plain = datagram.clone();
    tampered_plain[1] ^= 0x80;
    env.keyring().unwrap().seal(
        EncryptionVersion::V1,
        [1; 12],
        &tampered_plain,
        &[],
        &mut sealed,
    );
    assert!(matches!(
        env.open_packet(&sealed),
        Err(WireError::ChecksumMismatch { .. })
    ));
}

#[test]
fn crc_inside_a_compound() {
    let mut datagram = Vec::new();
    let ping = ping_bytes(1);
    plain().seal_packet(&ping, true, || unreachable!(), &mut datagram);
    let bytes = compound(&[&ping, &datagram, &ping]);
    assert_eq!(
        walk(&bytes, &limits()),
        vec![
            ok(&ping_value(1)),
            Err(WireError::UnexpectedMessageType(12)),
            ok(&ping_value(1))
        ]
    );
    // And inside a compress layer.
    assert_eq!(
        walk(&compress(&datagram), &limits()),
        vec![Err(WireError::UnexpectedMessageType(12))]
    );
}

#[test]
fn wrong_transport() {
    let pp = push_pull_header(&[0], &[0]);
    assert_eq!(
        Message::decode(&pp, Transport::Stream, &limits()).map(|m| m.message_type()),
        Ok(MessageType::PushPull)
    );
    assert_eq!(
        Message::decode(&pp, Transport::Packet, &limits()),
        Err(WireError::UnexpectedMessageType(6))
    );
    assert_eq!(
        walk(&pp, &limits()),
        vec![Err(WireError::UnexpectedMessageType(6))]
    );
    assert_eq!(
        walk(&compound(&[&pp]), &limits()),
        vec![Err(WireError::UnexpectedMessageType(6))]
    );
    // Stream-only errResp in a packet; packet-only alive on a stream.
    let err = encode(
        &Message::Error(ErrorResponse { error: "x" }),
        Transport::Stream,
    );
    assert_eq!(
        walk(&err, &limits()),
        vec![Err(WireError::UnexpectedMessageType(13))]
    );
    let alive = encode(&Message::Alive(Alive::default()), Transport::Packet);
    assert_eq!(
        Message::decode(&alive, Transport::Stream, &limits()),
        Err(WireError::UnexpectedMessageType(4))
    );
    assert_eq!(
        frame_both(&alive, limits()),
        [
            Err(WireError::UnexpectedMessageType(4)),
            Err(WireError::UnexpectedMessageType(4))
        ]
    );
    // Layers are not messages.
    for ty in [
        MessageType::Compound,
        MessageType::Compress,
        MessageType::Encrypt,
        MessageType::Crc,
        MessageType::Label,
    ] {
        let ty = ty as u8;
        for t in [Transport::Packet, Transport::Stream] {
            assert_eq!(
                Message::decode(&[ty, 0x80], t, &limits()),
                Err(WireError::UnexpectedMessageType(ty))
            );
        }
    }
}

#[test]
fn unknown_message_type() {
    let bytes = [200, 0x80];
    for t in [Transport::Packet, Transport::Stream] {
        assert_eq!(
            Message::decode(&bytes, t, &limits()),
            Err(WireError::UnknownMessageType(200))
        );
    }
    assert_eq!(
        walk(&bytes, &limits()),
        vec![Err(WireError::UnknownMessageType(200))]
    );
    assert_eq!(
        frame_both(&bytes, limits()),
        [
            Err(WireError::UnknownMessageType(200)),
            Err(WireError::UnknownMessageType(200))
        ]
    );
    let body = Envelope::new().open_packet(&bytes).unwrap();
    assert_eq!(
        walk(&body, &limits()),
        vec![Err(WireError::UnknownMessageType(200))]
    );
}

#[test]
fn bad_label_headers() {
    let mut zero = vec![0xf4, 0x00];
    zero.extend_from_slice(&ping_bytes(1));
    for env in [
        Envelope::new(),
        Envelope::new().with_label(b"prod").unwrap(),
        keyed(),
    ] {
        assert_eq!(env.open_packet(&zero), Err(WireError::BadLabelHeader));
        assert_eq!(env.open_packet(b"\xf4"), Err(WireError::BadLabelHeader));
        assert_eq!(
            env.open_packet(b"\xf4\x05ab"),
            Err(WireError::BadLabelHeader)
        );
        assert_eq!(
            env.open_packet(b"\xf4\x04pro"),
            Err(WireError::BadLabelHeader)
        );
        assert_eq!(
            env.open_stream(&zero, StreamRole::Accept),
            Err(WireError::BadLabelHeader)
        );
    }
    assert_eq!(
        frame(&zero, StreamRole::Accept, limits()),
        Err(WireError::BadLabelHeader)
    );
    assert_eq!(
        frame(&zero[..2], StreamRole::Accept, limits()),
        Err(WireError::BadLabelHeader)
    );
    // On a stream a short label header is only incomplete.
    for cut in [&b"\xf4"[..], b"\xf4\x05ab", b"\xf4\x04prod"] {
        assert_eq!(
            frame(cut, StreamRole::Accept, limits()),
            Ok(Frame::NeedMore)
        );
    }
    // A reply never has a label header: 0xf4 there is an unexpected type.
    assert_eq!(
        frame(b"\xf4\x04prod\x00\x80", StreamRole::Reply, limits()),
        Err(WireError::UnexpectedMessageType(0xf4))
    );
}

#[test]
fn label_length_limit() {
    let long = vec![b'l'; 256];
    assert!(matches!(
        Envelope::new().with_label(&long),
        Err(WireError::LabelTooLong(256))
    ));
    let env = Envelope::new().with_label(&long[..255]).unwrap();
    assert_eq!(env.label(), &long[..255]);
    let mut datagram = Vec::new();
    env.seal_packet(&ping_bytes(1), false, || unreachable!(), &mut datagram);
    assert_eq!(&datagram[..2], &[0xf4, 255]);
    assert_eq!(
        env.open_packet(&datagram).as_deref(),
        Ok(&ping_bytes(1)[..])
    );
    // A different label, or none, is refused.
    assert_eq!(
        Envelope::new().open_packet(&datagram),
        Err(WireError::LabelMismatch)
    );
    assert_eq!(
        env.open_packet(&ping_bytes(1)),
        Err(WireError::LabelMismatch)
    );
}

#[test]
fn unknown_encryption_version() {
    for label in [&b""[..], b"prod"] {
        let env = keyed().with_label(label).unwrap();
        let mut datagram = Vec::new();
        env.seal_packet(&ping_bytes(1), false, || [3; 12], &mut datagram);
        let at = if label.is_empty() { 0 } else { 2 + label.len() };
        assert_eq!(datagram[at], 1);
        assert!(env.open_packet(&datagram).is_ok());
        for v in [2u8, 0x80, 0xff] {
            let mut bad = datagram.clone();
            bad[at] = v;
            assert_eq!(
                env.open_packet(&bad),
                Err(WireError::UnknownEncryptionVersion(v))
            );
        }
    }
}

// ------------------------------------------------------------ field values

/// `00 ‖ {SeqNo: 1, <field>: <value>}` with the value as raw msgpack.
fn ping_with(field: &str, value: &[u8]) -> Vec<u8> {
    let mut v = vec![MessageType::Ping as u8, 0x82];
    key(&mut v, "SeqNo");
    v.push(1);
    key(&mut v, field);
    v.extend_from_slice(value);
    v
}

#[test]
fn invalid_utf8() {
    let bad = [0xa3, b'a', 0xff, 0xfe];
    for t in [Transport::Packet, Transport::Stream] {
        assert_eq!(
            Message::decode(&ping_with("Node", &bad), t, &limits()),
            Err(WireError::InvalidUtf8 { field: "Node" })
        );
        assert_eq!(
            Message::decode(&ping_with("SourceNode", &bad), t, &limits()),
            Err(WireError::InvalidUtf8 {
                field: "SourceNode"
            })
        );
    }
    let mut err = vec![MessageType::Error as u8, 0x81];
    key(&mut err, "Error");
    err.extend_from_slice(&bad);
    assert_eq!(
        Message::decode(&err, Transport::Stream, &limits()),
        Err(WireError::InvalidUtf8 { field: "Error" })
    );
    // The same bytes in a []byte field are fine.
    assert!(Message::decode(&ping_with("SourceAddr", &bad), Transport::Packet, &limits()).is_ok());
}

#[test]
fn deep_unknown_values() {
    let nested = |depth: usize| {
        let mut v = vec![0x91; depth];
        v.push(0x00);
        ping_with("Unknown", &v)
    };
    let shallow = nested(10);
    assert_eq!(
        Message::decode(&shallow, Transport::Packet, &limits()),
        Ok(Message::Ping(Ping {
            seq_no: 1,
            ..Ping::default()
        }))
    );
    let deep = nested(100);
    for t in [Transport::Packet, Transport::Stream] {
        assert_eq!(
            Message::decode(&deep, t, &limits()),
            Err(WireError::TooDeep)
        );
    }
    assert_eq!(
        frame_both(&deep, limits()),
        [Err(WireError::TooDeep), Err(WireError::TooDeep)]
    );
    assert_eq!(walk(&deep, &limits()), vec![Err(WireError::TooDeep)]);
    // Deep maps too.
    let mut maps = [0x81, 0xa1, b'k'].repeat(100);
    maps.push(0x00);
    assert_eq!(
        Message::decode(&ping_with("Unknown", &maps), Transport::Packet, &limits()),
        Err(WireError::TooDeep)
    );
}

#[test]
fn floats_in_integer_fields() {
    let f64_pi = [0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18];
    let f32_one = [0xca, 0x3f, 0x80, 0, 0];
    for (v, marker) in [(&f64_pi[..], 0xcb), (&f32_one[..], 0xca)] {
        let mut bytes = vec![MessageType::Ping as u8, 0x81];
        key(&mut bytes, "SeqNo");
        bytes.extend_from_slice(v);
        assert_eq!(
            Message::decode(&bytes, Transport::Packet, &limits()),
            Err(WireError::UnexpectedValue {
                field: "SeqNo",
                found: marker
            })
        );
        assert_eq!(
            Message::decode(&ping_with("SourcePort", v), Transport::Packet, &limits()),
            Err(WireError::UnexpectedValue {
                field: "SourcePort",
                found: marker
            })
        );
        let header = push_pull_header(v, &[0]);
        assert_eq!(
            Message::decode(&header, Transport::Stream, &limits()),
            Err(WireError::UnexpectedValue {
                field: "Nodes",
                found: marker
            })
        );
    }
}

#[test]
fn port_out_of_range() {
    assert_eq!(
        Message::decode(
            &ping_with("SourcePort", &[0xcd, 0xff, 0xff]),
            Transport::Packet,
            &limits()
        )
        .map(|m| match m {
            Message::Ping(p) => p.source_port,
            _ => 0,
        }),
        Ok(u16::MAX)
    );
    for v in [
        &u32_value(65_536)[..],
        &u64_value(u64::MAX)[..],
        &[0xff][..],
    ] {
        assert_eq!(
            Message::decode(&ping_with("SourcePort", v), Transport::Packet, &limits()),
            Err(WireError::IntegerOutOfRange {
                field: "SourcePort"
            })
        );
    }
    let mut alive = vec![MessageType::Alive as u8, 0x81];
    key(&mut alive, "Port");
    alive.extend_from_slice(&u32_value(70_000));
    assert_eq!(
        Message::decode(&alive, Transport::Packet, &limits()),
        Err(WireError::IntegerOutOfRange { field: "Port" })
    );
    // SeqNo is a u32.
    assert_eq!(
        Message::decode(
            &ping_with("SeqNo", &u64_value(1 << 32)),
            Transport::Packet,
            &limits()
        ),
        Err(WireError::IntegerOutOfRange { field: "SeqNo" })
    );
}

// ------------------------------------------------------------ the errors themselves

/// Errors produced through the public API, one or more per variant.
fn produced_errors() -> Vec<WireError> {
    let stream = Transport::Stream;
    let packet = Transport::Packet;
    let first = |v: Vec<Result<String, WireError>>| v.into_iter().next().unwrap().unwrap_err();
    let mut errors = vec![
        Envelope::new().open_packet(&[]).unwrap_err(),
        Message::decode(
            &push_pull_header(&u32_value(1_000_000), &[0]),
            stream,
            &limits(),
        )
        .unwrap_err(),
        Message::decode(&[200], packet, &limits()).unwrap_err(),
        Message::decode(&[6, 0x80], packet, &limits()).unwrap_err(),
        Message::decode(
            &ping_with("SeqNo", &[0xcb, 0, 0, 0, 0, 0, 0, 0, 0]),
            packet,
            &limits(),
        )
        .unwrap_err(),
        Message::decode(
            &ping_with("SourcePort", &u32_value(1 << 16)),
            packet,
            &limits(),
        )
        .unwrap_err(),
        Message::decode(&ping_with("Node", &[0xa1, 0xff]), packet, &limits()).unwrap_err(),
        Message::decode(&ping_with("X", &[0x91; 100]), packet, &limits()).unwrap_err(),
        Message::decode(
            &push_pull_header(&u32_value(1 << 21), &[0]),
            stream,
            &limits(),
        )
        .unwrap_err(),
        first(walk(&[7, 200, 0], &limits())),
        SecretKey::new(&[0; 5]).unwrap_err(),
        keyed().open_packet(&[1; 10]).unwrap_err(),
        keyed().open_packet(&[1; 40]).unwrap_err(),
        plain()
            .open_stream(&[10, 0, 0, 0, 29], StreamRole::Reply)
            .unwrap_err(),
        keyed()
            .open_stream(&ping_bytes(1), StreamRole::Reply)
            .unwrap_err(),
        Envelope::new()
            .with_label(b"a")
            .unwrap()
            .open_packet(&ping_bytes(1))
            .unwrap_err(),
        Envelope::new().open_packet(&[0xf4, 0]).unwrap_err(),
        Envelope::new().with_label(&[0; 300]).unwrap_err(),
        encode_compound(&[], &mut Vec::new()).unwrap_err(),
        first(walk(&compress(&[]), &limits())),
        first(walk(
            &compress(&compress(&compress(&compress(&compress(&[8]))))),
            &limits(),
        )),
        lzw::decompress(&[0xff, 0xff, 0xff], 10).unwrap_err(),
        Keyring::new(key16())
            .use_key(&SecretKey::new(&[1; 16]).unwrap())
            .unwrap_err(),
        Keyring::new(key16()).remove(&key16()).unwrap_err(),
    ];
    // A bad CRC.
    let mut crc = Vec::new();
    plain().seal_packet(&ping_bytes(1), true, || unreachable!(), &mut crc);
    crc[1] ^= 1;
    errors.push(plain().open_packet(&crc).unwrap_err());
    // Algo 1.
    let mut algo = vec![9, 0x81];
    key(&mut algo, "Algo");
    algo.push(1);
    errors.push(first(walk(&algo, &limits())));
    // An encryption version byte of 2.
    let mut enc = Vec::new();
    keyed().seal_packet(&ping_bytes(1), false, || [0; 12], &mut enc);
    enc[0] = 2;
    errors.push(keyed().open_packet(&enc).unwrap_err());
    // A version-1 plaintext relabelled as version 0 whose last byte claims
    // more padding than there is.
    let env = keyed().with_compression(false);
    let mut v1 = Vec::new();
    env.keyring()
        .unwrap()
        .seal(EncryptionVersion::V1, [0; 12], &[200; 16], &[], &mut v1);
    v1[0] = 0;
    errors.push(env.open_packet(&v1).unwrap_err());
    errors
}

#[test]
fn errors_have_distinct_kinds_and_messages() {
    let errors = produced_errors();
    let expected_kinds = [
        "empty",
        "truncated",
        "unknown_message_type",
        "unexpected_message_type",
        "unexpected_value",
        "integer_out_of_range",
        "invalid_utf8",
        "too_deep",
        "too_large",
        "bad_compound",
        "checksum_mismatch",
        "unknown_compression",
        "corrupt_compression",
        "empty_decompression",
        "invalid_key_length",
        "unknown_encryption_version",
        "encrypted_too_short",
        "bad_padding",
        "decryption_failed",
        "encrypted_but_no_keyring",
        "plaintext_not_allowed",
        "unknown_key",
        "cannot_remove_primary_key",
        "bad_label_header",
        "label_mismatch",
        "label_too_long",
        "unencodable",
    ];
    // kind → the variant it names; one variant per kind and vice versa.
    let mut by_kind = BTreeMap::new();
    for e in &errors {
        assert!(!e.kind().is_empty(), "{e:?}");
        let shown = e.to_string();
        assert!(!shown.is_empty(), "{e:?}");
        let d = discriminant(e);
        if let Some(prev) = by_kind.insert(e.kind(), (d, e.clone())) {
            assert_eq!(
                prev.0,
                d,
                "{:?} and {:?} share kind {}",
                prev.1,
                e,
                e.kind()
            );
        }
    }
    let kinds: Vec<&str> = by_kind.keys().copied().collect();
    let mut want = expected_kinds.to_vec();
    want.sort_unstable();
    assert_eq!(
        kinds, want,
        "every variant produced, each under its own kind"
    );
    // Distinct variants never share a kind (checked above) and distinct
    // kinds never name one variant.
    let variants: HashSet<_> = by_kind.values().map(|(d, _)| *d).collect();
    assert_eq!(variants.len(), by_kind.len());
    // Messages carry their details.
    let too_large = WireError::TooLarge {
        what: "max_push_nodes",
        len: 7,
        limit: 3,
    };
    let shown = too_large.to_string();
    assert!(shown.contains("max_push_nodes") && shown.contains('7') && shown.contains('3'));
    assert!(WireError::UnknownMessageType(200)
        .to_string()
        .contains("200"));
    let _: &dyn std::error::Error = &too_large;
}
