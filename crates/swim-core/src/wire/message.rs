//! memberlist's messages (docs/protocol.md §2, §4): their types, encoders and decoders.
//!
//! Messages borrow from the bytes they were decoded from. Encoders write
//! exactly what Go memberlist v0.2.2 writes: map keys in byte-wise order,
//! strings and byte slices as raw strings, empty byte slices as nil, Go
//! `int`s in unsigned forms. Decoders take everything Go takes (docs/protocol.md §3.2).

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::msgpack::{self, Container, Reader};
use super::{Limits, WireError};

/// The first byte of every message (docs/protocol.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// A probe.
    Ping = 0,
    /// A request to probe a node on the sender's behalf.
    IndirectPing = 1,
    /// The answer to a ping.
    Ack = 2,
    /// An accusation that a node may have failed.
    Suspect = 3,
    /// A node's announcement that it is alive (join, refutation, update).
    Alive = 4,
    /// A declaration that a node has failed, or left when it names itself.
    Dead = 5,
    /// Full state exchange (streams only).
    PushPull = 6,
    /// Several messages in one packet.
    Compound = 7,
    /// Application data.
    User = 8,
    /// An LZW-compressed message.
    Compress = 9,
    /// An encrypted stream frame.
    Encrypt = 10,
    /// An indirect probe's report that the target did not answer.
    Nack = 11,
    /// A CRC-protected packet.
    Crc = 12,
    /// A stream responder's error report.
    Error = 13,
    /// A label header (memberlist ≥ 0.3).
    Label = 244,
}

impl MessageType {
    /// How many types are numbered 0 to 13: the length of [`ALL`](Self::ALL)
    /// and of [`Stats::messages`](crate::Stats::messages).
    pub const COUNT: usize = 14;

    /// Every type numbered 0 to 13, in type-byte order, so that a type's
    /// byte is its index here and in [`Stats::messages`](crate::Stats::messages).
    /// [`Label`](Self::Label) is not among them: it is a header a packet
    /// starts with, not a message, and is not counted.
    pub const ALL: [MessageType; Self::COUNT] = [
        MessageType::Ping,
        MessageType::IndirectPing,
        MessageType::Ack,
        MessageType::Suspect,
        MessageType::Alive,
        MessageType::Dead,
        MessageType::PushPull,
        MessageType::Compound,
        MessageType::User,
        MessageType::Compress,
        MessageType::Encrypt,
        MessageType::Nack,
        MessageType::Crc,
        MessageType::Error,
    ];

    /// The name of the counter of messages received of this type,
    /// `memberlist.msg.*` as go-metrics spells it (`has_crc`, `err`); `None`
    /// for [`Label`](Self::Label), which is not counted.
    pub fn metric_name(self) -> Option<&'static str> {
        Some(match self {
            MessageType::Ping => "memberlist.msg.ping",
            MessageType::IndirectPing => "memberlist.msg.indirect_ping",
            MessageType::Ack => "memberlist.msg.ack",
            MessageType::Suspect => "memberlist.msg.suspect",
            MessageType::Alive => "memberlist.msg.alive",
            MessageType::Dead => "memberlist.msg.dead",
            MessageType::PushPull => "memberlist.msg.push_pull",
            MessageType::Compound => "memberlist.msg.compound",
            MessageType::User => "memberlist.msg.user",
            MessageType::Compress => "memberlist.msg.compress",
            MessageType::Encrypt => "memberlist.msg.encrypt",
            MessageType::Nack => "memberlist.msg.nack",
            MessageType::Crc => "memberlist.msg.has_crc",
            MessageType::Error => "memberlist.msg.err",
            MessageType::Label => return None,
        })
    }

    /// The type named by a message's first byte, if any.
    pub fn from_byte(b: u8) -> Option<MessageType> {
        match b {
            244 => Some(MessageType::Label),
            _ => MessageType::ALL.get(usize::from(b)).copied(),
        }
    }
}

/// Where a message travels; user messages and the set of valid types differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram (or a part of a compound).
    Packet,
    /// One message on a TCP stream.
    Stream,
}

/// A probe (`ping`, type 0), over UDP or as the TCP fallback ping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ping<'a> {
    /// Probe sequence number, echoed by the ack.
    pub seq_no: u32,
    /// The node the sender means to reach ("" for any); others ignore it.
    pub node: &'a str,
    /// Sender's advertised IP (4 or 16 bytes), where the ack goes.
    pub source_addr: Cow<'a, [u8]>,
    /// Sender's advertised port.
    pub source_port: u16,
    /// Sender's name.
    pub source_node: &'a str,
}

/// A request to probe `node` for the sender (`indirectPingReq`, type 1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndirectPing<'a> {
    /// The originator's sequence number, echoed in the relayed ack or nack.
    pub seq_no: u32,
    /// Target IP (4 or 16 bytes).
    pub target: Cow<'a, [u8]>,
    /// Target port (0: use the helper's own port).
    pub port: u16,
    /// Target's name.
    pub node: &'a str,
    /// Whether the helper should send a nack if the target stays silent.
    pub nack: bool,
    /// Originator's advertised IP.
    pub source_addr: Cow<'a, [u8]>,
    /// Originator's advertised port.
    pub source_port: u16,
    /// Originator's name.
    pub source_node: &'a str,
}

/// The answer to a ping (`ackResp`, type 2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ack<'a> {
    /// The ping's sequence number.
    pub seq_no: u32,
    /// Application payload of a direct ack (empty when none).
    pub payload: Cow<'a, [u8]>,
}

/// An indirect probe's report that the target did not answer (`nackResp`, type 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nack {
    /// The originator's sequence number.
    pub seq_no: u32,
}

/// An accusation (`suspect`, type 3) or a death notice (`dead`, type 5).
///
/// A death notice whose `from` equals `node` is a graceful leave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accusation<'a> {
    /// The accused node's incarnation as the accuser knows it.
    pub incarnation: u32,
    /// The accused node.
    pub node: &'a str,
    /// The accuser.
    pub from: &'a str,
}

/// A node's announcement that it is alive (`alive`, type 4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alive<'a> {
    /// The node's incarnation; never 0 on the wire (docs/protocol.md §10.1).
    pub incarnation: u32,
    /// The node's name.
    pub node: &'a str,
    /// Advertised IP, kept byte for byte (4 or 16 bytes).
    pub addr: Cow<'a, [u8]>,
    /// Advertised port.
    pub port: u16,
    /// Application metadata.
    pub meta: Cow<'a, [u8]>,
    /// Versions `[pmin, pmax, pcur, dmin, dmax, dcur]`; six bytes when sent.
    pub vsn: Cow<'a, [u8]>,
}

/// A member's state code in a push/pull (Go `NodeStateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// 0.
    Alive,
    /// 1.
    Suspect,
    /// 2.
    Dead,
    /// 3.
    Left,
    /// Any other value; Go ignores such entries when merging.
    Other(i64),
}

impl NodeState {
    /// The code on the wire.
    pub fn code(self) -> i64 {
        match self {
            NodeState::Alive => 0,
            NodeState::Suspect => 1,
            NodeState::Dead => 2,
            NodeState::Left => 3,
            NodeState::Other(c) => c,
        }
    }

    /// The state for a wire code.
    pub fn from_code(code: i64) -> NodeState {
        match code {
            0 => NodeState::Alive,
            1 => NodeState::Suspect,
            2 => NodeState::Dead,
            3 => NodeState::Left,
            c => NodeState::Other(c),
        }
    }
}

/// One member in a push/pull (`pushNodeState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushNodeState<'a> {
    /// The member's name.
    pub name: &'a str,
    /// Advertised IP, kept byte for byte.
    pub addr: Cow<'a, [u8]>,
    /// Advertised port.
    pub port: u16,
    /// Application metadata.
    pub meta: Cow<'a, [u8]>,
    /// The member's incarnation.
    pub incarnation: u32,
    /// The member's state.
    pub state: NodeState,
    /// Versions `[pmin, pmax, pcur, dmin, dmax, dcur]`.
    pub vsn: Cow<'a, [u8]>,
}

/// A full state exchange (type 6, streams only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushPull<'a> {
    /// Whether this exchange is a join (echoed by the responder).
    pub join: bool,
    /// Every member the sender knows, itself included.
    pub nodes: Vec<PushNodeState<'a>>,
    /// The application's local state (raw bytes).
    pub user_state: &'a [u8],
}

/// A stream responder's error report (`errResp`, type 13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorResponse<'a> {
    /// The error text.
    pub error: &'a str,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// See [`Ping`].
    Ping(Ping<'a>),
    /// See [`IndirectPing`].
    IndirectPing(IndirectPing<'a>),
    /// See [`Ack`].
    Ack(Ack<'a>),
    /// See [`Nack`].
    Nack(Nack),
    /// A suspicion; see [`Accusation`].
    Suspect(Accusation<'a>),
    /// See [`Alive`].
    Alive(Alive<'a>),
    /// A death or leave notice; see [`Accusation`].
    Dead(Accusation<'a>),
    /// See [`PushPull`] (streams only).
    PushPull(PushPull<'a>),
    /// Application bytes (packet: raw to the end; stream: length-prefixed).
    User(&'a [u8]),
    /// See [`ErrorResponse`] (streams only).
    Error(ErrorResponse<'a>),
}

impl Message<'_> {
    /// This message's type byte.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Ping(_) => MessageType::Ping,
            Message::IndirectPing(_) => MessageType::IndirectPing,
            Message::Ack(_) => MessageType::Ack,
            Message::Nack(_) => MessageType::Nack,
            Message::Suspect(_) => MessageType::Suspect,
            Message::Alive(_) => MessageType::Alive,
            Message::Dead(_) => MessageType::Dead,
            Message::PushPull(_) => MessageType::PushPull,
            Message::User(_) => MessageType::User,
            Message::Error(_) => MessageType::Error,
        }
    }

    /// Appends the message (type byte first) to `out`, in its form for
    /// `transport`. Only user messages differ between the two forms.
    pub fn encode(&self, transport: Transport, out: &mut Vec<u8>) {
        out.push(self.message_type() as u8);
        match self {
            Message::Ping(m) => encode_ping(m, out),
            Message::IndirectPing(m) => encode_indirect_ping(m, out),
            Message::Ack(m) => {
                msgpack::put_map_len(out, 2);
                msgpack::put_key(out, "Payload");
                msgpack::put_byte_slice(out, &m.payload);
                msgpack::put_key(out, "SeqNo");
                msgpack::put_uint(out, m.seq_no.into());
            }
            Message::Nack(m) => {
                msgpack::put_map_len(out, 1);
                msgpack::put_key(out, "SeqNo");
                msgpack::put_uint(out, m.seq_no.into());
            }
            Message::Suspect(m) | Message::Dead(m) => encode_accusation(m, out),
            Message::Alive(m) => encode_alive(m, out),
            Message::PushPull(m) => encode_push_pull(m, out),
            Message::User(bytes) => {
                if transport == Transport::Stream {
                    msgpack::put_map_len(out, 1);
                    msgpack::put_key(out, "UserMsgLen");
                    msgpack::put_int(out, bytes.len() as i64);
                }
                out.extend_from_slice(bytes);
            }
            Message::Error(m) => {
                msgpack::put_map_len(out, 1);
                msgpack::put_key(out, "Error");
                msgpack::put_raw(out, m.error.as_bytes());
            }
        }
    }
}

impl<'a> Message<'a> {
    /// Decodes one message (type byte first) as it arrives on `transport`.
    ///
    /// Layers (compound, compress, CRC, encryption, label) are not messages:
    /// they are removed by [`Envelope`](super::Envelope) and
    /// [`for_each_message`](super::for_each_message) first, and are
    /// [`WireError::UnexpectedMessageType`] here. Trailing bytes after the
    /// message are ignored, as Go ignores them.
    pub fn decode(
        bytes: &'a [u8],
        transport: Transport,
        limits: &Limits,
    ) -> Result<Message<'a>, WireError> {
        let (&first, body) = bytes.split_first().ok_or(WireError::Empty)?;
        let ty = MessageType::from_byte(first).ok_or(WireError::UnknownMessageType(first))?;
        let mut r = Reader::new(body);
        let packet = transport == Transport::Packet;
        Ok(match ty {
            MessageType::Ping => Message::Ping(decode_ping(&mut r)?),
            MessageType::Ack => Message::Ack(decode_ack(&mut r)?),
            MessageType::IndirectPing if packet => {
                Message::IndirectPing(decode_indirect_ping(&mut r)?)
            }
            MessageType::Nack if packet => Message::Nack(decode_nack(&mut r)?),
            MessageType::Suspect if packet => Message::Suspect(decode_accusation(&mut r)?),
            MessageType::Dead if packet => Message::Dead(decode_accusation(&mut r)?),
            MessageType::Alive if packet => Message::Alive(decode_alive(&mut r, limits)?),
            MessageType::User if packet => Message::User(body),
            MessageType::User => Message::User(decode_user_stream(&mut r, limits)?),
            MessageType::PushPull if !packet => {
                Message::PushPull(decode_push_pull(&mut r, limits)?)
            }
            MessageType::Error if !packet => Message::Error(decode_error(&mut r)?),
            _ => return Err(WireError::UnexpectedMessageType(first)),
        })
    }
}

// ---------------------------------------------------------------- encoders

fn encode_ping(m: &Ping<'_>, out: &mut Vec<u8>) {
    // SourceAddr, SourceNode and SourcePort are `omitempty` in Go.
    let n = 2
        + usize::from(!m.source_addr.is_empty())
        + usize::from(!m.source_node.is_empty())
        + usize::from(m.source_port != 0);
    msgpack::put_map_len(out, n);
    msgpack::put_key(out, "Node");
    msgpack::put_raw(out, m.node.as_bytes());
    msgpack::put_key(out, "SeqNo");
    msgpack::put_uint(out, m.seq_no.into());
    put_source(out, &m.source_addr, m.source_node, m.source_port);
}

fn put_source(out: &mut Vec<u8>, addr: &[u8], node: &str, port: u16) {
    if !addr.is_empty() {
        msgpack::put_key(out, "SourceAddr");
        msgpack::put_raw(out, addr);
    }
    if !node.is_empty() {
        msgpack::put_key(out, "SourceNode");
        msgpack::put_raw(out, node.as_bytes());
    }
    if port != 0 {
        msgpack::put_key(out, "SourcePort");
        msgpack::put_uint(out, port.into());
    }
}

fn encode_indirect_ping(m: &IndirectPing<'_>, out: &mut Vec<u8>) {
    let n = 5
        + usize::from(!m.source_addr.is_empty())
        + usize::from(!m.source_node.is_empty())
        + usize::from(m.source_port != 0);
    msgpack::put_map_len(out, n);
    msgpack::put_key(out, "Nack");
    msgpack::put_bool(out, m.nack);
    msgpack::put_key(out, "Node");
    msgpack::put_raw(out, m.node.as_bytes());
    msgpack::put_key(out, "Port");
    msgpack::put_uint(out, m.port.into());
    msgpack::put_key(out, "SeqNo");
    msgpack::put_uint(out, m.seq_no.into());
    put_source(out, &m.source_addr, m.source_node, m.source_port);
    msgpack::put_key(out, "Target");
    msgpack::put_byte_slice(out, &m.target);
}

fn encode_accusation(m: &Accusation<'_>, out: &mut Vec<u8>) {
    msgpack::put_map_len(out, 3);
    msgpack::put_key(out, "From");
    msgpack::put_raw(out, m.from.as_bytes());
    msgpack::put_key(out, "Incarnation");
    msgpack::put_uint(out, m.incarnation.into());
    msgpack::put_key(out, "Node");
    msgpack::put_raw(out, m.node.as_bytes());
}

fn encode_alive(m: &Alive<'_>, out: &mut Vec<u8>) {
    msgpack::put_map_len(out, 6);
    msgpack::put_key(out, "Addr");
    msgpack::put_byte_slice(out, &m.addr);
    msgpack::put_key(out, "Incarnation");
    msgpack::put_uint(out, m.incarnation.into());
    msgpack::put_key(out, "Meta");
    msgpack::put_byte_slice(out, &m.meta);
    msgpack::put_key(out, "Node");
    msgpack::put_raw(out, m.node.as_bytes());
    msgpack::put_key(out, "Port");
    msgpack::put_uint(out, m.port.into());
    msgpack::put_key(out, "Vsn");
    msgpack::put_byte_slice(out, &m.vsn);
}

fn encode_push_pull(m: &PushPull<'_>, out: &mut Vec<u8>) {
    msgpack::put_map_len(out, 3);
    msgpack::put_key(out, "Join");
    msgpack::put_bool(out, m.join);
    msgpack::put_key(out, "Nodes");
    msgpack::put_int(out, m.nodes.len() as i64);
    msgpack::put_key(out, "UserStateLen");
    msgpack::put_int(out, m.user_state.len() as i64);
    for n in &m.nodes {
        msgpack::put_map_len(out, 7);
        msgpack::put_key(out, "Addr");
        msgpack::put_byte_slice(out, &n.addr);
        msgpack::put_key(out, "Incarnation");
        msgpack::put_uint(out, n.incarnation.into());
        msgpack::put_key(out, "Meta");
        msgpack::put_byte_slice(out, &n.meta);
        msgpack::put_key(out, "Name");
        msgpack::put_raw(out, n.name.as_bytes());
        msgpack::put_key(out, "Port");
        msgpack::put_uint(out, n.port.into());
        msgpack::put_key(out, "State");
        msgpack::put_int(out, n.state.code());
        msgpack::put_key(out, "Vsn");
        msgpack::put_byte_slice(out, &n.vsn);
    }
    out.extend_from_slice(m.user_state);
}

// ---------------------------------------------------------------- decoders

/// Reads a Go struct sent as a map (any key order, unknown keys skipped,
/// last duplicate wins) or as a positional array in declaration order
/// (extra elements skipped). `set` receives the index into `fields`.
pub(crate) fn decode_struct<'a>(
    r: &mut Reader<'a>,
    fields: &[&'static str],
    mut set: impl FnMut(usize, &mut Reader<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    match r.container("body")? {
        Container::Map(n) => {
            for _ in 0..n {
                let key = r.key()?;
                match fields.iter().position(|f| f.as_bytes() == key) {
                    Some(i) => set(i, r)?,
                    None => r.skip_value()?,
                }
            }
        }
        Container::Array(n) => {
            for i in 0..n {
                if i < fields.len() {
                    set(i, r)?;
                } else {
                    r.skip_value()?;
                }
            }
        }
    }
    Ok(())
}

const U16: u64 = u16::MAX as u64;
const U32: u64 = u32::MAX as u64;

fn decode_ping<'a>(r: &mut Reader<'a>) -> Result<Ping<'a>, WireError> {
    const FIELDS: [&str; 5] = ["SeqNo", "Node", "SourceAddr", "SourcePort", "SourceNode"];
    let mut m = Ping::default();
    decode_struct(r, &FIELDS, |i, r| {
        match i {
            0 => m.seq_no = r.uint(FIELDS[0], U32)? as u32,
            1 => m.node = r.str(FIELDS[1])?,
            2 => m.source_addr = r.byte_slice(FIELDS[2])?,
            3 => m.source_port = r.uint(FIELDS[3], U16)? as u16,
            _ => m.source_node = r.str(FIELDS[4])?,
        }
        Ok(())
    })?;
    Ok(m)
}

fn decode_indirect_ping<'a>(r: &mut Reader<'a>) -> Result<IndirectPing<'a>, WireError> {
    const FIELDS: [&str; 8] = [
        "SeqNo",
        "Target",
        "Port",
        "Node",
        "Nack",
        "SourceAddr",
        "SourcePort",
        "SourceNode",
    ];
    let mut m = IndirectPing::default();
    decode_struct(r, &FIELDS, |i, r| {
        match i {
            0 => m.seq_no = r.uint(FIELDS[0], U32)? as u32,
            1 => m.target = r.byte_slice(FIELDS[1])?,
            2 => m.port = r.uint(FIELDS[2], U16)? as u16,
            3 => m.node = r.str(FIELDS[3])?,
            4 => m.nack = r.bool(FIELDS[4])?,
            5 => m.source_addr = r.byte_slice(FIELDS[5])?,
            6 => m.source_port = r.uint(FIELDS[6], U16)? as u16,
            _ => m.source_node = r.str(FIELDS[7])?,
        }
        Ok(())
    })?;
    Ok(m)
}

fn decode_ack<'a>(r: &mut Reader<'a>) -> Result<Ack<'a>, WireError> {
    const FIELDS: [&str; 2] = ["SeqNo", "Payload"];
    let mut m = Ack::default();
    decode_struct(r, &FIELDS, |i, r| {
        match i {
            0 => m.seq_no = r.uint(FIELDS[0], U32)? as u32,
            _ => m.payload = r.byte_slice(FIELDS[1])?,
        }
        Ok(())
    })?;
    Ok(m)
}

fn decode_nack(r: &mut Reader<'_>) -> Result<Nack, WireError> {
    let mut m = Nack::default();
    decode_struct(r, &["SeqNo"], |_, r| {
        m.seq_no = r.uint("SeqNo", U32)? as u32;
        Ok(())
    })?;
    Ok(m)
}

fn decode_accusation<'a>(r: &mut Reader<'a>) -> Result<Accusation<'a>, WireError> {
    const FIELDS: [&str; 3] = ["Incarnation", "Node", "From"];
    let mut m = Accusation::default();
    decode_struct(r, &FIELDS, |i, r| {
        match i {
            0 => m.incarnation = r.uint(FIELDS[0], U32)? as u32,
            1 => m.node = r.str(FIELDS[1])?,
            _ => m.from = r.str(FIELDS[2])?,
        }
        Ok(())
    })?;
    Ok(m)
}

fn vsn<'a>(r: &mut Reader<'a>, limits: &Limits) -> Result<Cow<'a, [u8]>, WireError> {
    let v = r.byte_slice("Vsn")?;
    limits.check("max_vsn_len", v.len(), limits.max_vsn_len)?;
    Ok(v)
}

fn decode_alive<'a>(r: &mut Reader<'a>, limits: &Limits) -> Result<Alive<'a>, WireError> {
    const FIELDS: [&str; 6] = ["Incarnation", "Node", "Addr", "Port", "Meta", "Vsn"];
    let mut m = Alive::default();
    decode_struct(r, &FIELDS, |i, r| {
        match i {
            0 => m.incarnation = r.uint(FIELDS[0], U32)? as u32,
            1 => m.node = r.str(FIELDS[1])?,
            2 => m.addr = r.byte_slice(FIELDS[2])?,
            3 => m.port = r.uint(FIELDS[3], U16)? as u16,
            4 => m.meta = r.byte_slice(FIELDS[4])?,
            _ => m.vsn = vsn(r, limits)?,
        }
        Ok(())
    })?;
    Ok(m)
}

/// Reads a Go `int` length or count that must lie in `0..=limit`.
fn length(
    r: &mut Reader<'_>,
    field: &'static str,
    what: &'static str,
    limit: usize,
) -> Result<usize, WireError> {
    let v = r.i64(field)?;
    let v = u64::try_from(v).map_err(|_| WireError::IntegerOutOfRange { field })?;
    if v > limit as u64 {
        return Err(WireError::TooLarge {
            what,
            len: v,
            limit: limit as u64,
        });
    }
    Ok(v as usize)
}

fn decode_user_stream<'a>(r: &mut Reader<'a>, limits: &Limits) -> Result<&'a [u8], WireError> {
    let mut len = 0;
    decode_struct(r, &["UserMsgLen"], |_, r| {
        len = length(r, "UserMsgLen", "max_user_message", limits.max_user_message)?;
        Ok(())
    })?;
    r.take(len)
}

/// The push/pull header: `(join, nodes, user_state_len)`.
pub(crate) fn decode_push_pull_header(
    r: &mut Reader<'_>,
    limits: &Limits,
) -> Result<(bool, usize, usize), WireError> {
    const FIELDS: [&str; 3] = ["Nodes", "UserStateLen", "Join"];
    let (mut join, mut nodes, mut user_state_len) = (false, 0, 0);
    decode_struct(r, &FIELDS, |i, r| {
        match i {
            0 => nodes = length(r, FIELDS[0], "max_push_nodes", limits.max_push_nodes)?,
            1 => user_state_len = length(r, FIELDS[1], "max_user_state", limits.max_user_state)?,
            _ => join = r.bool(FIELDS[2])?,
        }
        Ok(())
    })?;
    Ok((join, nodes, user_state_len))
}

fn decode_push_node<'a>(
    r: &mut Reader<'a>,
    limits: &Limits,
) -> Result<PushNodeState<'a>, WireError> {
    const FIELDS: [&str; 7] = [
        "Name",
        "Addr",
        "Port",
        "Meta",
        "Incarnation",
        "State",
        "Vsn",
    ];
    let mut m = PushNodeState {
        name: "",
        addr: Cow::Borrowed(&[]),
        port: 0,
        meta: Cow::Borrowed(&[]),
        incarnation: 0,
        state: NodeState::Alive,
        vsn: Cow::Borrowed(&[]),
    };
    decode_struct(r, &FIELDS, |i, r| {
        match i {
            0 => m.name = r.str(FIELDS[0])?,
            1 => m.addr = r.byte_slice(FIELDS[1])?,
            2 => m.port = r.uint(FIELDS[2], U16)? as u16,
            3 => m.meta = r.byte_slice(FIELDS[3])?,
            4 => m.incarnation = r.uint(FIELDS[4], U32)? as u32,
            5 => m.state = NodeState::from_code(r.i64(FIELDS[5])?),
            _ => m.vsn = vsn(r, limits)?,
        }
        Ok(())
    })?;
    Ok(m)
}

fn decode_push_pull<'a>(r: &mut Reader<'a>, limits: &Limits) -> Result<PushPull<'a>, WireError> {
    let (join, count, user_state_len) = decode_push_pull_header(r, limits)?;
    // Every entry takes at least one byte: never reserve more than is there.
    let mut nodes = Vec::with_capacity(count.min(r.remaining()));
    for _ in 0..count {
        nodes.push(decode_push_node(r, limits)?);
    }
    let user_state = r.take(user_state_len)?;
    Ok(PushPull {
        join,
        nodes,
        user_state,
    })
}

fn decode_error<'a>(r: &mut Reader<'a>) -> Result<ErrorResponse<'a>, WireError> {
    let mut m = ErrorResponse::default();
    decode_struct(r, &["Error"], |_, r| {
        m.error = r.str("Error")?;
        Ok(())
    })?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::MessageType;
    use alloc::collections::BTreeSet;

    #[test]
    fn all_is_in_type_byte_order_and_names_each_once() {
        for (i, t) in MessageType::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i);
            assert_eq!(MessageType::from_byte(i as u8), Some(*t));
        }
        assert_eq!(MessageType::from_byte(244), Some(MessageType::Label));
        assert_eq!(MessageType::from_byte(14), None);
        let names: BTreeSet<_> = MessageType::ALL
            .iter()
            .map(|t| t.metric_name().expect("every numbered type is counted"))
            .collect();
        assert_eq!(names.len(), MessageType::COUNT);
        assert_eq!(MessageType::Label.metric_name(), None);
        // go-metrics' spellings, not the types' names.
        assert_eq!(
            MessageType::Crc.metric_name(),
            Some("memberlist.msg.has_crc")
        );
        assert_eq!(MessageType::Error.metric_name(), Some("memberlist.msg.err"));
    }
}
