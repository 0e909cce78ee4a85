//! Property tests: every message survives encode → decode unchanged, and
//! every packet and stream survives the whole pipeline (compound, compression,
//! CRC, encryption with any key size and payload version, labels, stream
//! framing in arbitrary read sizes) in both directions. Also key rotation.

use std::borrow::Cow;
use std::cell::Cell;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use swim_core::wire::{
    encode_compound, for_each_message, Accusation, Ack, Alive, EncryptionVersion, Envelope,
    ErrorResponse, Frame, IndirectPing, Keyring, Limits, Message, MessageType, Nack, NodeState,
    Ping, PushNodeState, PushPull, SecretKey, StreamFramer, StreamRead, StreamRole, Transport,
    WireError,
};

// ------------------------------------------------------------ owned model

/// An accusation (suspect or dead) that owns its strings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acc {
    incarnation: u32,
    node: String,
    from: String,
}

/// A push/pull member that owns its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    name: String,
    addr: Vec<u8>,
    port: u16,
    meta: Vec<u8>,
    incarnation: u32,
    state: NodeState,
    vsn: Vec<u8>,
}

/// A message that owns its fields; [`Msg::view`] borrows it as a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Msg {
    Ping {
        seq_no: u32,
        node: String,
        source_addr: Vec<u8>,
        source_port: u16,
        source_node: String,
    },
    IndirectPing {
        seq_no: u32,
        target: Vec<u8>,
        port: u16,
        node: String,
        nack: bool,
        source_addr: Vec<u8>,
        source_port: u16,
        source_node: String,
    },
    Ack {
        seq_no: u32,
        payload: Vec<u8>,
    },
    Nack {
        seq_no: u32,
    },
    Suspect(Acc),
    Alive {
        incarnation: u32,
        node: String,
        addr: Vec<u8>,
        port: u16,
        meta: Vec<u8>,
        vsn: Vec<u8>,
    },
    Dead(Acc),
    PushPull {
        join: bool,
        nodes: Vec<Node>,
        user_state: Vec<u8>,
    },
    User(Vec<u8>),
    Error(String),
}

fn b(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(v)
}

impl Acc {
    fn view(&self) -> Accusation<'_> {
        Accusation {
            incarnation: self.incarnation,
            node: &self.node,
            from: &self.from,
        }
    }

    fn of(a: &Accusation<'_>) -> Acc {
        Acc {
            incarnation: a.incarnation,
            node: a.node.to_owned(),
            from: a.from.to_owned(),
        }
    }
}

impl Msg {
    fn view(&self) -> Message<'_> {
        match self {
            Msg::Ping {
                seq_no,
                node,
                source_addr,
                source_port,
                source_node,
            } => Message::Ping(Ping {
                seq_no: *seq_no,
                node,
                source_addr: b(source_addr),
                source_port: *source_port,
                source_node,
            }),
            Msg::IndirectPing {
                seq_no,
                target,
                port,
                node,
                nack,
                source_addr,
                source_port,
                source_node,
            } => Message::IndirectPing(IndirectPing {
                seq_no: *seq_no,
                target: b(target),
                port: *port,
                node,
                nack: *nack,
                source_addr: b(source_addr),
                source_port: *source_port,
                source_node,
            }),
            Msg::Ack { seq_no, payload } => Message::Ack(Ack {
                seq_no: *seq_no,
                payload: b(payload),
            }),
            Msg::Nack { seq_no } => Message::Nack(Nack { seq_no: *seq_no }),
            Msg::Suspect(a) => Message::Suspect(a.view()),
            Msg::Alive {
                incarnation,
                node,
                addr,
                port,
                meta,
                vsn,
            } => Message::Alive(Alive {
                incarnation: *incarnation,
                node,
                addr: b(addr),
                port: *port,
                meta: b(meta),
                vsn: b(vsn),
            }),
            Msg::Dead(a) => Message::Dead(a.view()),
            Msg::PushPull {
                join,
                nodes,
                user_state,
            } => Message::PushPull(PushPull {
                join: *join,
                nodes: nodes
                    .iter()
                    .map(|n| PushNodeState {
                        name: &n.name,
                        addr: b(&n.addr),
                        port: n.port,
                        meta: b(&n.meta),
                        incarnation: n.incarnation,
                        state: n.state,
                        vsn: b(&n.vsn),
                    })
                    .collect(),
                user_state,
            }),
            Msg::User(bytes) => Message::User(bytes),
            Msg::Error(e) => Message::Error(ErrorResponse { error: e }),
        }
    }

    fn of(m: &Message<'_>) -> Msg {
        match m {
            Message::Ping(p) => Msg::Ping {
                seq_no: p.seq_no,
                node: p.node.to_owned(),
                source_addr: p.source_addr.to_vec(),
                source_port: p.source_port,
                source_node: p.source_node.to_owned(),
            },
            Message::IndirectPing(p) => Msg::IndirectPing {
                seq_no: p.seq_no,
                target: p.target.to_vec(),
                port: p.port,
                node: p.node.to_owned(),
                nack: p.nack,
                source_addr: p.source_addr.to_vec(),
                source_port: p.source_port,
                source_node: p.source_node.to_owned(),
            },
            Message::Ack(a) => Msg::Ack {
                seq_no: a.seq_no,
                payload: a.payload.to_vec(),
            },
            Message::Nack(n) => Msg::Nack { seq_no: n.seq_no },
            Message::Suspect(a) => Msg::Suspect(Acc::of(a)),
            Message::Alive(a) => Msg::Alive {
                incarnation: a.incarnation,
                node: a.node.to_owned(),
                addr: a.addr.to_vec(),
                port: a.port,
                meta: a.meta.to_vec(),
                vsn: a.vsn.to_vec(),
            },
            Message::Dead(a) => Msg::Dead(Acc::of(a)),
            Message::PushPull(p) => Msg::PushPull {
                join: p.join,
                nodes: p
                    .nodes
                    .iter()
                    .map(|n| Node {
                        name: n.name.to_owned(),
                        addr: n.addr.to_vec(),
                        port: n.port,
                        meta: n.meta.to_vec(),
                        incarnation: n.incarnation,
                        state: n.state,
                        vsn: n.vsn.to_vec(),
                    })
                    .collect(),
                user_state: p.user_state.to_vec(),
            },
            Message::User(bytes) => Msg::User(bytes.to_vec()),
            Message::Error(e) => Msg::Error(e.error.to_owned()),
        }
    }

    fn encode(&self, transport: Transport) -> Vec<u8> {
        let mut out = Vec::new();
        self.view().encode(transport, &mut out);
        out
    }
}

// ------------------------------------------------------------ strategies

/// How large generated strings and byte fields get.
#[derive(Debug, Clone, Copy)]
enum Size {
    /// Up to a few hundred bytes: fixstr, str16 above 31 and above 255 bytes.
    Full,
    /// Short fields, for the pipeline tests where many messages are built.
    Light,
}

fn text(size: Size) -> BoxedStrategy<String> {
    let chars = |r: std::ops::Range<usize>| vec(any::<char>(), r).prop_map(String::from_iter);
    match size {
        Size::Full => prop_oneof![
            3 => chars(0..8),
            2 => chars(8..40),
            1 => chars(64..300),
            1 => "[a-z]{250,300}",
        ]
        .boxed(),
        Size::Light => prop_oneof![3 => chars(0..6), 1 => chars(6..40)].boxed(),
    }
}

fn bytes(size: Size) -> BoxedStrategy<Vec<u8>> {
    let bytes = |r: std::ops::Range<usize>| vec(any::<u8>(), r);
    match size {
        Size::Full => prop_oneof![
            3 => bytes(0..8),
            2 => bytes(8..40),
            1 => bytes(200..400),
        ]
        .boxed(),
        Size::Light => prop_oneof![3 => bytes(0..6), 1 => bytes(6..40)].boxed(),
    }
}

/// A u32 anywhere in its range, often at a msgpack form boundary.
fn u32s() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        proptest::sample::select(&[0, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX][..]),
    ]
}

/// A u16 anywhere in its range, often at a msgpack form boundary or 0
/// (which the encoder omits for the `omitempty` ports).
fn u16s() -> impl Strategy<Value = u16> {
    prop_oneof![
        any::<u16>(),
        proptest::sample::select(&[0, 1, 127, 128, 255, 256, u16::MAX][..]),
    ]
}

/// Vsn fields, within [`Limits::max_vsn_len`] (32).
fn vsn() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        vec(any::<u8>(), 6),
        vec(any::<u8>(), 0..=32)
    ]
}

/// Any state code: the four named ones and arbitrary others (negative,
/// large); `from_code` keeps the mapping canonical (`Other(0)` is `Alive`).
fn node_state() -> impl Strategy<Value = NodeState> {
    prop_oneof![
        (0i64..4),
        (-40i64..40),
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
    ]
    .prop_map(NodeState::from_code)
}

fn acc(size: Size) -> impl Strategy<Value = Acc> {
    (u32s(), text(size), text(size)).prop_map(|(incarnation, node, from)| Acc {
        incarnation,
        node,
        from,
    })
}

fn ping(size: Size) -> impl Strategy<Value = Msg> {
    (u32s(), text(size), bytes(size), u16s(), text(size)).prop_map(
        |(seq_no, node, source_addr, source_port, source_node)| Msg::Ping {
            seq_no,
            node,
            source_addr,
            source_port,
            source_node,
        },
    )
}

fn indirect_ping(size: Size) -> impl Strategy<Value = Msg> {
    (
        (u32s(), bytes(size), u16s(), text(size)),
        (any::<bool>(), bytes(size), u16s(), text(size)),
    )
        .prop_map(
            |((seq_no, target, port, node), (nack, source_addr, source_port, source_node))| {
                Msg::IndirectPing {
                    seq_no,
                    target,
                    port,
                    node,
                    nack,
                    source_addr,
                    source_port,
                    source_node,
                }
            },
        )
}

fn ack(size: Size) -> impl Strategy<Value = Msg> {
    (u32s(), bytes(size)).prop_map(|(seq_no, payload)| Msg::Ack { seq_no, payload })
}

fn nack() -> impl Strategy<Value = Msg> {
    u32s().prop_map(|seq_no| Msg::Nack { seq_no })
}

fn alive(size: Size) -> impl Strategy<Value = Msg> {
    (u32s(), text(size), bytes(size), u16s(), bytes(size), vsn()).prop_map(
        |(incarnation, node, addr, port, meta, vsn)| Msg::Alive {
            incarnation,
            node,
            addr,
            port,
            meta,
            vsn,
        },
    )
}

fn push_node(size: Size) -> impl Strategy<Value = Node> {
    (
        text(size),
        bytes(size),
        u16s(),
        bytes(size),
        u32s(),
        node_state(),
        vsn(),
    )
        .prop_map(|(name, addr, port, meta, incarnation, state, vsn)| Node {
            name,
            addr,
            port,
            meta,
            incarnation,
            state,
            vsn,
        })
}

fn push_pull(size: Size) -> impl Strategy<Value = Msg> {
    let nodes = match size {
        Size::Full => 0..20usize,
        Size::Light => 0..6usize,
    };
    (
        any::<bool>(),
        vec(push_node(size), nodes),
        prop_oneof![Just(Vec::new()), vec(any::<u8>(), 0..3000)],
    )
        .prop_map(|(join, nodes, user_state)| Msg::PushPull {
            join,
            nodes,
            user_state,
        })
}

fn user(size: Size) -> impl Strategy<Value = Msg> {
    bytes(size).prop_map(Msg::User)
}

fn error(size: Size) -> impl Strategy<Value = Msg> {
    text(size).prop_map(Msg::Error)
}

/// Every message valid in a packet (or a compound part).
fn packet_message(size: Size) -> impl Strategy<Value = Msg> {
    prop_oneof![
        ping(size),
        indirect_ping(size),
        ack(size),
        nack(),
        acc(size).prop_map(Msg::Suspect),
        alive(size),
        acc(size).prop_map(Msg::Dead),
        user(size),
    ]
}

/// Every message valid on a stream.
fn stream_message(size: Size) -> impl Strategy<Value = Msg> {
    prop_oneof![
        ping(size),
        ack(size),
        push_pull(size),
        user(size),
        error(size)
    ]
}

/// One node's wire configuration; [`Config::envelope`] builds it, so the
/// sender and the receiver can each have their own copy.
#[derive(Debug, Clone)]
struct Config {
    compression: bool,
    crc: bool,
    key: Option<Vec<u8>>,
    version: EncryptionVersion,
    label: Option<Vec<u8>>,
    nonce: [u8; 12],
}

impl Config {
    fn envelope(&self) -> Envelope {
        let mut e = Envelope::new()
            .with_compression(self.compression)
            .with_encryption_version(self.version);
        if let Some(key) = &self.key {
            e = e.with_keyring(Keyring::new(SecretKey::new(key).unwrap()));
        }
        if let Some(label) = &self.label {
            e = e.with_label(label).unwrap();
        }
        e
    }
}

fn key_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 16),
        vec(any::<u8>(), 24),
        vec(any::<u8>(), 32)
    ]
}

fn version() -> impl Strategy<Value = EncryptionVersion> {
    prop_oneof![Just(EncryptionVersion::V0), Just(EncryptionVersion::V1)]
}

fn config() -> impl Strategy<Value = Config> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(key_bytes()),
        version(),
        proptest::option::of(vec(any::<u8>(), 1..=255)),
        any::<[u8; 12]>(),
    )
        .prop_map(|(compression, crc, key, version, label, nonce)| Config {
            compression,
            crc,
            key,
            version,
            label,
            nonce,
        })
}

// ------------------------------------------------------------ helpers

/// Encodes, decodes, and checks the value, the re-encoding and (on streams)
/// the framer's measurement.
fn check_roundtrip(msg: &Msg, transport: Transport) -> Result<(), TestCaseError> {
    let m = msg.view();
    let encoded = msg.encode(transport);
    prop_assert_eq!(encoded[0], m.message_type() as u8);
    let decoded = Message::decode(&encoded, transport, &Limits::default());
    prop_assert_eq!(decoded.as_ref(), Ok(&m));
    let decoded = decoded.unwrap();
    prop_assert_eq!(&Msg::of(&decoded), msg);
    let mut again = Vec::new();
    decoded.encode(transport, &mut again);
    prop_assert_eq!(&again, &encoded, "re-encoding differs");
    if transport == Transport::Stream {
        for role in [StreamRole::Accept, StreamRole::Reply] {
            let mut framer = StreamFramer::new(role, Limits::default());
            prop_assert_eq!(
                framer.frame(&encoded),
                Ok(Frame::Complete { len: encoded.len() })
            );
        }
    }
    Ok(())
}

/// Every message of an opened packet body, as owned values.
fn messages_of(body: &[u8], limits: &Limits) -> Vec<Result<Msg, WireError>> {
    let mut seen = Vec::new();
    for_each_message(body, limits, &mut |m| seen.push(m.map(|m| Msg::of(&m))));
    seen
}

/// Sorted, distinct cut points strictly inside `0..len`, always including 0
/// and `len - 1`.
fn cuts(picks: &[Index], len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len)).collect();
    cuts.extend([0, len.saturating_sub(1)]);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Seals `encoded` as the dialler (`Accept` reads it: label header first)
/// or the responder (`Reply`: no label header).
fn seal_stream(env: &Envelope, encoded: &[u8], nonce: [u8; 12], role: StreamRole) -> Vec<u8> {
    let mut bytes = Vec::new();
    if role == StreamRole::Accept {
        env.write_stream_label(&mut bytes);
    }
    env.seal_stream(encoded, || nonce, &mut bytes);
    bytes
}

/// Feeds growing prefixes of `bytes` (ending at each cut, then the whole)
/// to one framer: `NeedMore` for every strict prefix, then `Complete` with
/// exactly `bytes.len()`.
fn frame_in_chunks(bytes: &[u8], role: StreamRole, picks: &[Index]) -> Result<(), TestCaseError> {
    let mut framer = StreamFramer::new(role, Limits::default());
    for cut in cuts(picks, bytes.len()) {
        prop_assert_eq!(
            framer.frame(&bytes[..cut]),
            Ok(Frame::NeedMore),
            "prefix of {} of {} bytes",
            cut,
            bytes.len()
        );
    }
    prop_assert_eq!(
        framer.frame(bytes),
        Ok(Frame::Complete { len: bytes.len() })
    );
    // Bytes after the message are not part of it.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0x00, 0x82, 0xa1, b'x', 0x06, 0xff]);
    let mut framer = StreamFramer::new(role, Limits::default());
    prop_assert_eq!(
        framer.frame(&longer),
        Ok(Frame::Complete { len: bytes.len() })
    );
    Ok(())
}

fn ring(keys: &[Vec<u8>]) -> Keyring {
    let mut ring = Keyring::new(SecretKey::new(&keys[0]).unwrap());
    for k in &keys[1..] {
        ring.add(SecretKey::new(k).unwrap());
    }
    ring
}

// ------------------------------------------------------------ messages

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ping_roundtrips(m in ping(Size::Full)) {
        check_roundtrip(&m, Transport::Packet)?;
        check_roundtrip(&m, Transport::Stream)?;
    }

    #[test]
    fn indirect_ping_roundtrips(m in indirect_ping(Size::Full)) {
        check_roundtrip(&m, Transport::Packet)?;
    }

    #[test]
    fn ack_roundtrips(m in ack(Size::Full)) {
        check_roundtrip(&m, Transport::Packet)?;
        check_roundtrip(&m, Transport::Stream)?;
    }

    #[test]
    fn nack_roundtrips(m in nack()) {
        check_roundtrip(&m, Transport::Packet)?;
    }

    #[test]
    fn suspect_roundtrips(a in acc(Size::Full)) {
        check_roundtrip(&Msg::Suspect(a), Transport::Packet)?;
    }

    #[test]
    fn dead_roundtrips(a in acc(Size::Full)) {
        check_roundtrip(&Msg::Dead(a), Transport::Packet)?;
    }

    #[test]
    fn alive_roundtrips(m in alive(Size::Full)) {
        check_roundtrip(&m, Transport::Packet)?;
    }

    #[test]
    fn push_pull_roundtrips(m in push_pull(Size::Full)) {
        check_roundtrip(&m, Transport::Stream)?;
    }

    #[test]
    fn user_packet_roundtrips(m in user(Size::Full)) {
        check_roundtrip(&m, Transport::Packet)?;
        // The packet form is the raw bytes behind the type byte.
        let Msg::User(payload) = &m else { unreachable!() };
        prop_assert_eq!(&m.encode(Transport::Packet)[1..], &payload[..]);
    }

    #[test]
    fn user_stream_roundtrips(m in user(Size::Full)) {
        check_roundtrip(&m, Transport::Stream)?;
    }

    #[test]
    fn error_roundtrips(m in error(Size::Full)) {
        check_roundtrip(&m, Transport::Stream)?;
    }
}

/// Go's raw-string forms at every length boundary: fixstr up to 31 bytes,
/// then str16 (never str8), then str32; each decodes back.
#[test]
fn string_forms_at_boundaries() {
    for len in [0usize, 1, 31, 32, 255, 256, 65_535, 65_536] {
        let node: String = "n".repeat(len);
        let m = Msg::Ping {
            seq_no: 1,
            node,
            source_addr: Vec::new(),
            source_port: 0,
            source_node: String::new(),
        };
        let enc = m.encode(Transport::Packet);
        // 00 ‖ 82 ‖ a4 "Node" ‖ <marker>: "Node" sorts before "SeqNo".
        assert_eq!(&enc[..7], b"\x00\x82\xa4Node", "len {len}");
        let want: &[u8] = match len {
            0..=31 => &[0xa0 | len as u8],
            32..=65_535 => &[0xda, (len >> 8) as u8, len as u8],
            _ => &[0xdb, 0, (len >> 16) as u8, (len >> 8) as u8, len as u8],
        };
        assert_eq!(&enc[7..7 + want.len()], want, "len {len}");
        let dec = Message::decode(&enc, Transport::Packet, &Limits::default()).unwrap();
        assert_eq!(Msg::of(&dec), m, "len {len}");
    }
}

/// Upstream memberlist sends compounds of up to 255 parts; the encoder stops
/// at 127 for v0.2.2's sake, but the decoder takes them all.
#[test]
fn compound_of_255_parts_decodes() {
    let msgs: Vec<Msg> = (0..255u32).map(|seq_no| Msg::Nack { seq_no }).collect();
    let parts: Vec<Vec<u8>> = msgs.iter().map(|m| m.encode(Transport::Packet)).collect();
    let mut bytes = vec![MessageType::Compound as u8, 255];
    for p in &parts {
        bytes.extend_from_slice(&(p.len() as u16).to_be_bytes());
    }
    for p in &parts {
        bytes.extend_from_slice(p);
    }
    let want: Vec<Result<Msg, WireError>> = msgs.into_iter().map(Ok).collect();
    assert_eq!(messages_of(&bytes, &Limits::default()), want);
}

/// Empty byte fields go out as msgpack nil and come back empty and borrowed.
#[test]
fn empty_bytes_are_nil() {
    let m = Msg::Ack {
        seq_no: 9,
        payload: Vec::new(),
    };
    let enc = m.encode(Transport::Packet);
    assert_eq!(enc, b"\x02\x82\xa7Payload\xc0\xa5SeqNo\x09");
    match Message::decode(&enc, Transport::Packet, &Limits::default()) {
        Ok(Message::Ack(Ack {
            seq_no: 9,
            payload: Cow::Borrowed(p),
        })) => assert!(p.is_empty()),
        other => panic!("{other:?}"),
    }
}

/// A 32-byte vsn is the most the decoder takes; 33 bytes is `TooLarge`, in
/// an alive and in a push/pull member.
#[test]
fn vsn_over_limit_is_too_large() {
    let too_large = Err(WireError::TooLarge {
        what: "max_vsn_len",
        len: 33,
        limit: 32,
    });
    for (n, want) in [(32, None), (33, Some(too_large))] {
        let alive = Msg::Alive {
            incarnation: 1,
            node: "a".into(),
            addr: vec![10, 0, 0, 1],
            port: 7946,
            meta: Vec::new(),
            vsn: vec![2; n],
        };
        let enc = alive.encode(Transport::Packet);
        let got = Message::decode(&enc, Transport::Packet, &Limits::default()).map(|m| Msg::of(&m));
        assert_eq!(got, want.clone().unwrap_or(Ok(alive)), "alive vsn {n}");

        let pp = Msg::PushPull {
            join: false,
            nodes: vec![Node {
                name: "a".into(),
                addr: vec![10, 0, 0, 1],
                port: 7946,
                meta: Vec::new(),
                incarnation: 1,
                state: NodeState::Alive,
                vsn: vec![2; n],
            }],
            user_state: Vec::new(),
        };
        let enc = pp.encode(Transport::Stream);
        let got = Message::decode(&enc, Transport::Stream, &Limits::default()).map(|m| Msg::of(&m));
        assert_eq!(got, want.unwrap_or(Ok(pp)), "push/pull vsn {n}");
    }
}

// ------------------------------------------------------------ pipelines

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// message(s) → [compound] → seal_packet → open_packet → for_each_message.
    #[test]
    fn packet_pipeline(
        cfg in config(),
        compound in any::<bool>(),
        msgs in vec(packet_message(Size::Light), 1..=127),
    ) {
        let msgs = if compound { msgs } else { msgs[..1].to_vec() };
        let parts: Vec<Vec<u8>> = msgs.iter().map(|m| m.encode(Transport::Packet)).collect();
        let message = if compound {
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let mut out = Vec::new();
            encode_compound(&refs, &mut out).unwrap();
            prop_assert_eq!(out[0], MessageType::Compound as u8);
            prop_assert_eq!(out[1] as usize, msgs.len());
            out
        } else {
            parts[0].clone()
        };

        let sender = cfg.envelope();
        let nonces = Cell::new(0);
        let mut datagram = Vec::new();
        sender.seal_packet(&message, cfg.crc, || { nonces.set(nonces.get() + 1); cfg.nonce }, &mut datagram);
        prop_assert_eq!(nonces.get(), usize::from(cfg.key.is_some()), "nonce drawn iff encrypting");

        // The layers are where Go puts them.
        let rest = match &cfg.label {
            Some(label) => {
                prop_assert_eq!(datagram[0], MessageType::Label as u8);
                prop_assert_eq!(datagram[1] as usize, label.len());
                prop_assert_eq!(&datagram[2..2 + label.len()], &label[..]);
                &datagram[2 + label.len()..]
            }
            None => &datagram[..],
        };
        if cfg.key.is_some() {
            let vsn = match cfg.version { EncryptionVersion::V0 => 0, EncryptionVersion::V1 => 1 };
            prop_assert_eq!(rest[0], vsn);
            prop_assert_eq!(&rest[1..13], &cfg.nonce[..]);
        } else if cfg.crc {
            prop_assert_eq!(rest[0], MessageType::Crc as u8);
        } else if !cfg.compression {
            prop_assert_eq!(rest, &message[..]);
        }

        let receiver = cfg.envelope();
        let body = receiver.open_packet(&datagram);
        prop_assert!(body.is_ok(), "open_packet: {:?}", body);
        let body = body.unwrap();
        let want: Vec<Result<Msg, WireError>> = msgs.into_iter().map(Ok).collect();
        prop_assert_eq!(messages_of(&body, receiver.limits()), want);
    }

    /// message → [label] → seal_stream → framer (random reads) → open_stream → decode.
    #[test]
    fn stream_pipeline(
        cfg in config(),
        msg in stream_message(Size::Light),
        accept in any::<bool>(),
        picks in vec(any::<Index>(), 0..12),
    ) {
        let role = if accept { StreamRole::Accept } else { StreamRole::Reply };
        let encoded = msg.encode(Transport::Stream);
        let sender = cfg.envelope();
        let nonces = Cell::new(0);
        let mut bytes = Vec::new();
        if role == StreamRole::Accept {
            sender.write_stream_label(&mut bytes);
        }
        sender.seal_stream(&encoded, || { nonces.set(nonces.get() + 1); cfg.nonce }, &mut bytes);
        prop_assert_eq!(nonces.get(), usize::from(cfg.key.is_some()), "nonce drawn iff encrypting");

        let header = match (&cfg.label, role) {
            (Some(label), StreamRole::Accept) => {
                prop_assert_eq!(&bytes[..2], &[0xf4, label.len() as u8][..]);
                prop_assert_eq!(&bytes[2..2 + label.len()], &label[..]);
                2 + label.len()
            }
            // The reply never carries a label header.
            _ => 0,
        };
        let first = bytes[header];
        if cfg.key.is_some() {
            prop_assert_eq!(first, MessageType::Encrypt as u8);
            let len = u32::from_be_bytes(bytes[header + 1..header + 5].try_into().unwrap());
            prop_assert_eq!(len as usize, bytes.len() - header - 5);
        } else if cfg.compression {
            prop_assert_eq!(first, MessageType::Compress as u8);
        } else {
            prop_assert_eq!(&bytes[header..], &encoded[..]);
        }

        frame_in_chunks(&bytes, role, &picks)?;

        let receiver = cfg.envelope();
        let opened = receiver.open_stream(&bytes, role);
        prop_assert!(opened.is_ok(), "open_stream: {:?}", opened);
        let opened = opened.unwrap();
        prop_assert_eq!(&opened[..], &encoded[..]);
        let decoded = Message::decode(&opened, Transport::Stream, receiver.limits())
            .map(|m| Msg::of(&m));
        prop_assert_eq!(decoded, Ok(msg.clone()));

        // read_stream does both steps at once.
        let mut framer = StreamFramer::new(role, Limits::default());
        match receiver.read_stream(&mut framer, &bytes) {
            Ok(StreamRead::Message { message, consumed }) => {
                prop_assert_eq!(consumed, bytes.len());
                prop_assert_eq!(&message[..], &encoded[..]);
            }
            other => prop_assert!(false, "read_stream: {:?}", other),
        }
    }

    /// A sender whose primary is one of the receiver's secondary keys is
    /// understood; a receiver without that key is not.
    #[test]
    fn secondary_key_opens(
        raw_keys in vec(key_bytes(), 2..=5),
        pick in any::<Index>(),
        version in version(),
        label in proptest::option::of(vec(any::<u8>(), 1..=40)),
        crc in any::<bool>(),
        nonce in any::<[u8; 12]>(),
        msg in packet_message(Size::Light),
        stream_msg in stream_message(Size::Light),
    ) {
        // Distinct keys: the first byte is the index.
        let keys: Vec<Vec<u8>> = raw_keys
            .into_iter()
            .enumerate()
            .map(|(i, mut k)| { k[0] = i as u8; k })
            .collect();
        let idx = 1 + pick.index(keys.len() - 1);
        let label = label.unwrap_or_default();
        let env = |ring: Keyring| {
            Envelope::new()
                .with_keyring(ring)
                .with_encryption_version(version)
                .with_label(&label)
                .unwrap()
        };
        let receiver = env(ring(&keys));
        prop_assert_eq!(receiver.keyring().unwrap().primary().as_bytes(), &keys[0][..]);
        let without: Vec<Vec<u8>> =
            keys.iter().enumerate().filter(|(i, _)| *i != idx).map(|(_, k)| k.clone()).collect();
        let stranger = env(ring(&without));

        // Two senders: one holding only the key, one holding all keys with
        // that key made primary.
        let mut all = ring(&keys);
        all.use_key(&SecretKey::new(&keys[idx]).unwrap()).unwrap();
        prop_assert_eq!(all.primary().as_bytes(), &keys[idx][..]);
        for sender in [env(ring(&keys[idx..=idx])), env(all)] {
            let mut datagram = Vec::new();
            sender.seal_packet(&msg.encode(Transport::Packet), crc, || nonce, &mut datagram);
            let body = receiver.open_packet(&datagram);
            prop_assert!(body.is_ok(), "{:?}", body);
            prop_assert_eq!(messages_of(&body.unwrap(), receiver.limits()), vec![Ok(msg.clone())]);
            prop_assert_eq!(stranger.open_packet(&datagram), Err(WireError::DecryptionFailed));

            let encoded = stream_msg.encode(Transport::Stream);
            let bytes = seal_stream(&sender, &encoded, nonce, StreamRole::Accept);
            let opened = receiver.open_stream(&bytes, StreamRole::Accept);
            prop_assert_eq!(opened.as_deref(), Ok(&encoded[..]));
            prop_assert_eq!(
                stranger.open_stream(&bytes, StreamRole::Accept),
                Err(WireError::DecryptionFailed)
            );
        }
    }

    /// Random add / use / remove against a model of Go's keyring rules:
    /// order kept, primary first and the only key that seals, a removed key
    /// no longer opens, the primary cannot be removed.
    #[test]
    fn key_rotation_follows_go(
        raw_keys in vec(key_bytes(), 5),
        ops in vec((0u8..3, 0usize..5), 1..30),
        nonce in any::<[u8; 12]>(),
    ) {
        let keys: Vec<Vec<u8>> = raw_keys
            .into_iter()
            .enumerate()
            .map(|(i, mut k)| { k[0] = i as u8; k })
            .collect();
        let secret = |i: usize| SecretKey::new(&keys[i]).unwrap();
        let ping = Msg::Ping {
            seq_no: 7,
            node: "n".into(),
            source_addr: vec![10, 0, 0, 1],
            source_port: 7946,
            source_node: "m".into(),
        }
        .encode(Transport::Packet);
        // One datagram sealed by each key alone.
        let sealed_by: Vec<Vec<u8>> = (0..keys.len())
            .map(|i| {
                let mut d = Vec::new();
                Envelope::new()
                    .with_keyring(Keyring::new(secret(i)))
                    .seal_packet(&ping, false, || nonce, &mut d);
                d
            })
            .collect();

        let mut model: Vec<usize> = vec![0];
        let mut env = Envelope::new().with_keyring(Keyring::new(secret(0)));
        for (op, k) in ops {
            let ring = env.keyring_mut().unwrap();
            match op {
                0 => {
                    ring.add(secret(k));
                    if !model.contains(&k) {
                        model.push(k);
                    }
                }
                1 => {
                    let got = ring.use_key(&secret(k));
                    match model.iter().position(|&m| m == k) {
                        Some(p) => {
                            prop_assert_eq!(got, Ok(()));
                            model.remove(p);
                            model.insert(0, k);
                        }
                        None => prop_assert_eq!(got, Err(WireError::UnknownKey)),
                    }
                }
                _ => {
                    let got = ring.remove(&secret(k));
                    if model[0] == k {
                        prop_assert_eq!(got, Err(WireError::CannotRemovePrimaryKey));
                    } else {
                        prop_assert_eq!(got, Ok(()));
                        model.retain(|&m| m != k);
                    }
                }
            }
            let ring = env.keyring().unwrap();
            let installed: Vec<&[u8]> = ring.keys().map(SecretKey::as_bytes).collect();
            let expected: Vec<&[u8]> = model.iter().map(|&i| &keys[i][..]).collect();
            prop_assert_eq!(installed, expected);
            prop_assert_eq!(ring.len(), model.len());
            prop_assert_eq!(ring.primary().as_bytes(), &keys[model[0]][..]);

            // Only the primary seals.
            let mut d = Vec::new();
            env.seal_packet(&ping, false, || nonce, &mut d);
            prop_assert_eq!(&d, &sealed_by[model[0]]);

            // Every installed key opens; every other key does not.
            for (i, datagram) in sealed_by.iter().enumerate() {
                let got = env.open_packet(datagram);
                if model.contains(&i) {
                    prop_assert_eq!(got.as_deref(), Ok(&ping[..]), "key {} installed", i);
                } else {
                    prop_assert_eq!(got, Err(WireError::DecryptionFailed), "key {} not installed", i);
                }
            }
        }
    }
}
