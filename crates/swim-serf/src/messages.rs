//! Serf's messages, byte for byte as Go Serf 0.9 writes them (docs/serf.md).
//!
//! A message is one type byte ([`MessageType`]) and a msgpack map of the Go
//! struct's fields, **sorted by field name** (Go's codec sorts them), in
//! the profile docs/serf.md §2.1 describes. [`Message::encode`] writes exactly
//! Go's bytes (maps of more than one entry aside: Go writes those in random
//! order, we in sorted order); [`Message::decode`] takes what Go takes,
//! bounded: every failure is a [`DecodeError`], never a panic.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;
use std::collections::BTreeMap;

use crate::clock::LamportTime;
use crate::tags::Tags;
use swim_core::wire::msgpack::{self as mp, Reader};
use swim_core::wire::WireError;

/// Largest message [`Message::decode`] takes: memberlist's bound on a
/// push/pull's application state (20 MiB), the largest carrier of a Serf
/// message.
pub const MAX_MESSAGE_LEN: usize = 20 * 1024 * 1024;

/// Why bytes are not a Serf message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all.
    Empty,
    /// A type byte Serf does not define.
    UnknownType(u8),
    /// The input ends inside a value.
    Truncated,
    /// A value of the wrong msgpack type: `found` is its marker byte.
    Unexpected {
        /// The field being read.
        field: &'static str,
        /// The marker byte found.
        found: u8,
    },
    /// An integer outside its field's range.
    OutOfRange {
        /// The field being read.
        field: &'static str,
    },
    /// A declared count larger than the input can hold.
    TooLarge {
        /// The field being read.
        field: &'static str,
        /// The count declared.
        len: usize,
    },
    /// The whole message is over [`MAX_MESSAGE_LEN`].
    MessageTooLarge(usize),
    /// Containers nested deeper than any Serf message.
    TooDeep,
    /// Another failure of the msgpack reader.
    Wire(WireError),
}

/// The msgpack reader's failures, in Serf's terms.
impl From<WireError> for DecodeError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DecodeError::Truncated,
            WireError::UnexpectedValue { field, found } => DecodeError::Unexpected { field, found },
            WireError::IntegerOutOfRange { field } => DecodeError::OutOfRange { field },
            WireError::TooLarge { what, len, .. } => DecodeError::TooLarge {
                field: what,
                len: usize::try_from(len).unwrap_or(usize::MAX),
            },
            WireError::TooDeep => DecodeError::TooDeep,
            other => DecodeError::Wire(other),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty message"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeError::Truncated => f.write_str("truncated message"),
            DecodeError::Unexpected { field, found } => {
                write!(f, "unexpected msgpack marker {found:#04x} in {field}")
            }
            DecodeError::OutOfRange { field } => write!(f, "{field} out of range"),
            DecodeError::TooLarge { field, len } => {
                write!(
                    f,
                    "{field} declares {len} elements, more than the input holds"
                )
            }
            DecodeError::MessageTooLarge(n) => {
                write!(f, "message of {n} bytes exceeds {MAX_MESSAGE_LEN}")
            }
            DecodeError::TooDeep => f.write_str("containers nested too deep"),
            DecodeError::Wire(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// A stable snake_case name of the error's kind, for metric labels
    /// and logs ([`SerfStats::last_decode_error`](crate::SerfStats::last_decode_error)).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::Truncated => "truncated",
            DecodeError::Unexpected { .. } => "unexpected_value",
            DecodeError::OutOfRange { .. } => "out_of_range",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::MessageTooLarge(_) => "message_too_large",
            DecodeError::TooDeep => "too_deep",
            DecodeError::Wire(_) => "wire",
        }
    }
}

/// The first byte of every Serf message (Go's `messageType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// [`Leave`].
    Leave = 0,
    /// [`Join`].
    Join = 1,
    /// [`PushPull`].
    PushPull = 2,
    /// [`UserEvent`].
    UserEvent = 3,
    /// [`Query`].
    Query = 4,
    /// [`QueryResponse`].
    QueryResponse = 5,
    /// [`Message::ConflictResponse`].
    ConflictResponse = 6,
    /// [`KeyRequest`].
    KeyRequest = 7,
    /// [`KeyResponse`].
    KeyResponse = 8,
    /// [`Relay`].
    Relay = 9,
}

impl MessageType {
    /// The type a byte names, if any.
    pub fn from_byte(b: u8) -> Option<Self> {
        use MessageType::*;
        Some(match b {
            0 => Leave,
            1 => Join,
            2 => PushPull,
            3 => UserEvent,
            4 => Query,
            5 => QueryResponse,
            6 => ConflictResponse,
            7 => KeyRequest,
            8 => KeyResponse,
            9 => Relay,
            _ => return None,
        })
    }
}

/// A node's intent to leave (Go's `messageLeave`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leave {
    /// Member clock time of the intent.
    pub ltime: LamportTime,
    /// The leaving node.
    pub node: String,
    /// Whether to erase the node at once (`force-leave -prune`).
    pub prune: bool,
}

/// A node's join, stamping it with a member clock time (Go's `messageJoin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Join {
    /// Member clock time of the intent.
    pub ltime: LamportTime,
    /// The joining node.
    pub node: String,
}

/// One user event as remembered in the event buffer (Go's `userEvent`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRecord {
    /// The event's name.
    pub name: String,
    /// Its payload; `None` is Go's nil slice.
    pub payload: Option<Vec<u8>>,
}

/// The user events seen at one event clock time (Go's `userEvents`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventsAt {
    /// The event clock time.
    pub ltime: LamportTime,
    /// The events, in arrival order.
    pub events: Vec<EventRecord>,
}

/// Serf's state in a memberlist push/pull (Go's `messagePushPull`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPull {
    /// The sender's member clock.
    pub ltime: LamportTime,
    /// Every known member's status time.
    pub status_ltimes: BTreeMap<String, LamportTime>,
    /// Members that left.
    pub left_members: Vec<String>,
    /// The sender's event clock.
    pub event_ltime: LamportTime,
    /// The sender's event buffer, slot by slot (`None`: an empty slot).
    pub events: Vec<Option<EventsAt>>,
    /// The sender's query clock.
    pub query_ltime: LamportTime,
}

/// A user event (Go's `messageUserEvent`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEvent {
    /// Event clock time.
    pub ltime: LamportTime,
    /// Name.
    pub name: String,
    /// Payload; `None` is Go's nil slice.
    pub payload: Option<Vec<u8>>,
    /// "Can coalesce".
    pub coalesce: bool,
}

/// Query flag: every recipient acks (Go's `queryFlagAck`).
pub const QUERY_FLAG_ACK: u32 = 1;
/// Query flag: recipients do not re-broadcast (Go's `queryFlagNoBroadcast`).
pub const QUERY_FLAG_NO_BROADCAST: u32 = 2;

/// A query (Go's `messageQuery`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Query clock time.
    pub ltime: LamportTime,
    /// Random id.
    pub id: u32,
    /// Source IP for direct replies (4 or 16 bytes; `None`: nil).
    pub addr: Option<Vec<u8>>,
    /// Source port for direct replies.
    pub port: u16,
    /// Source node name for direct replies.
    pub source_node: String,
    /// Encoded [`Filter`]s.
    pub filters: Vec<Vec<u8>>,
    /// [`QUERY_FLAG_ACK`], [`QUERY_FLAG_NO_BROADCAST`].
    pub flags: u32,
    /// How many extra members relay each response.
    pub relay_factor: u8,
    /// Deadline after delivery (Go's `time.Duration`, in nanoseconds).
    pub timeout: Duration,
    /// Name.
    pub name: String,
    /// Payload; `None` is Go's nil slice.
    pub payload: Option<Vec<u8>>,
}

/// A query filter, carried encoded inside [`Query::filters`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Only these nodes answer (type byte 0, a msgpack array of names).
    Nodes(Vec<String>),
    /// Only nodes whose tag `tag` matches the regular expression `expr`
    /// (type byte 1, a map `{Expr, Tag}`).
    Tag {
        /// The tag.
        tag: String,
        /// The regular expression (Go's RE2 syntax).
        expr: String,
    },
}

/// A response or ack to a query (Go's `messageQueryResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResponse {
    /// The query's clock time.
    pub ltime: LamportTime,
    /// The query's id.
    pub id: u32,
    /// The responding node.
    pub from: String,
    /// [`QUERY_FLAG_ACK`] for an ack.
    pub flags: u32,
    /// Payload; `None` is Go's nil slice.
    pub payload: Option<Vec<u8>>,
}

/// A member as Serf describes it to a conflict query (Go's `Member`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberInfo {
    /// Name.
    pub name: String,
    /// IP (Go's `net.IP`: 4 or 16 bytes; `None`: nil).
    pub addr: Option<Vec<u8>>,
    /// Port.
    pub port: u16,
    /// Tags.
    pub tags: Tags,
    /// Go's `MemberStatus`: 0 none, 1 alive, 2 leaving, 3 left, 4 failed.
    pub status: i64,
    /// memberlist protocol versions: min, max, current.
    pub protocol: [u8; 3],
    /// Serf (delegate) protocol versions: min, max, current.
    pub delegate: [u8; 3],
}

/// A key-management request, the payload of a `_serf_*-key` query (Go's
/// `keyRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    /// The key; `None` is Go's nil slice.
    pub key: Option<Vec<u8>>,
}

/// A node's answer to a key query (Go's `nodeKeyResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyResponse {
    /// Whether the operation succeeded.
    pub result: bool,
    /// Why not, or a truncation notice.
    pub message: String,
    /// Keys (base64) for `list-keys`.
    pub keys: Vec<String>,
    /// The primary key (base64) for `list-keys`.
    pub primary_key: String,
}

/// A message to forward to another node (Go's `relayHeader` and the
/// message after it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relay {
    /// Destination IP (Go's `net.IP`: 4 or 16 bytes).
    pub dest_ip: Vec<u8>,
    /// Destination port.
    pub dest_port: u16,
    /// Destination IPv6 zone (Go's `UDPAddr.Zone`).
    pub dest_zone: String,
    /// Destination node name.
    pub dest_name: String,
    /// The message to forward, type byte included.
    pub message: Vec<u8>,
}

impl Relay {
    /// The destination as a socket address, if its IP has 4 or 16 bytes.
    pub fn dest_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(
            ip_from_bytes(&self.dest_ip)?,
            self.dest_port,
        ))
    }
}

/// An IP from Go's `net.IP` bytes (an IPv4-mapped 16-byte form is IPv4).
pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

/// Any Serf message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 0.
    Leave(Leave),
    /// Type 1.
    Join(Join),
    /// Type 2.
    PushPull(PushPull),
    /// Type 3.
    UserEvent(UserEvent),
    /// Type 4.
    Query(Query),
    /// Type 5.
    QueryResponse(QueryResponse),
    /// Type 6: the answer to a `_serf_conflict` query; `None` (nil) when
    /// the responder does not know the node.
    ConflictResponse(Option<MemberInfo>),
    /// Type 7.
    KeyRequest(KeyRequest),
    /// Type 8.
    KeyResponse(KeyResponse),
    /// Type 9.
    Relay(Relay),
}

impl Message {
    /// The message's type byte.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Leave(_) => MessageType::Leave,
            Message::Join(_) => MessageType::Join,
            Message::PushPull(_) => MessageType::PushPull,
            Message::UserEvent(_) => MessageType::UserEvent,
            Message::Query(_) => MessageType::Query,
            Message::QueryResponse(_) => MessageType::QueryResponse,
            Message::ConflictResponse(_) => MessageType::ConflictResponse,
            Message::KeyRequest(_) => MessageType::KeyRequest,
            Message::KeyResponse(_) => MessageType::KeyResponse,
            Message::Relay(_) => MessageType::Relay,
        }
    }

    /// The message as bytes: type byte, then the msgpack body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Appends the message: type byte, then the msgpack body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.message_type() as u8);
        match self {
            Message::Leave(m) => {
                mp::put_map_len(out, 3);
                mp::put_key(out, "LTime");
                mp::put_uint(out, m.ltime.0);
                mp::put_key(out, "Node");
                mp::put_str(out, &m.node);
                mp::put_key(out, "Prune");
                mp::put_bool(out, m.prune);
            }
            Message::Join(m) => {
                mp::put_map_len(out, 2);
                mp::put_key(out, "LTime");
                mp::put_uint(out, m.ltime.0);
                mp::put_key(out, "Node");
                mp::put_str(out, &m.node);
            }
            Message::PushPull(m) => encode_push_pull(m, out),
            Message::UserEvent(m) => {
                mp::put_map_len(out, 4);
                mp::put_key(out, "CC");
                mp::put_bool(out, m.coalesce);
                mp::put_key(out, "LTime");
                mp::put_uint(out, m.ltime.0);
                mp::put_key(out, "Name");
                mp::put_str(out, &m.name);
                mp::put_key(out, "Payload");
                mp::put_bytes(out, m.payload.as_deref());
            }
            Message::Query(m) => encode_query(m, out),
            Message::QueryResponse(m) => encode_query_response(m, out),
            Message::ConflictResponse(None) => mp::put_nil(out),
            Message::ConflictResponse(Some(m)) => encode_member(m, out),
            Message::KeyRequest(m) => {
                mp::put_map_len(out, 1);
                mp::put_key(out, "Key");
                mp::put_bytes(out, m.key.as_deref());
            }
            Message::KeyResponse(m) => {
                mp::put_map_len(out, 4);
                mp::put_key(out, "Keys");
                put_strings_or_nil(out, &m.keys);
                mp::put_key(out, "Message");
                mp::put_str(out, &m.message);
                mp::put_key(out, "PrimaryKey");
                mp::put_str(out, &m.primary_key);
                mp::put_key(out, "Result");
                mp::put_bool(out, m.result);
            }
            Message::Relay(m) => {
                mp::put_map_len(out, 2);
                mp::put_key(out, "DestAddr");
                mp::put_map_len(out, 3);
                mp::put_key(out, "IP");
                mp::put_bytes(out, (!m.dest_ip.is_empty()).then_some(&m.dest_ip[..]));
                mp::put_key(out, "Port");
                mp::put_int(out, m.dest_port as i64);
                mp::put_key(out, "Zone");
                mp::put_str(out, &m.dest_zone);
                mp::put_key(out, "DestName");
                mp::put_str(out, &m.dest_name);
                out.extend_from_slice(&m.message);
            }
        }
    }

    /// Reads a message (type byte and body). Bytes after the body are
    /// ignored, as Go ignores them — except in a [`Relay`], where they are
    /// the message to forward.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        if buf.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::MessageTooLarge(buf.len()));
        }
        let (&ty, body) = buf.split_first().ok_or(DecodeError::Empty)?;
        let ty = MessageType::from_byte(ty).ok_or(DecodeError::UnknownType(ty))?;
        let mut r = Reader::new(body);
        Ok(match ty {
            MessageType::Leave => {
                let mut m = Leave::default();
                r.struct_fields::<DecodeError>("messageLeave", |r, k| {
                    match k {
                        b"LTime" => m.ltime = ltime(r, "LTime")?,
                        b"Node" => m.node = r.string("Node")?,
                        b"Prune" => m.prune = r.bool("Prune")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Message::Leave(m)
            }
            MessageType::Join => {
                let mut m = Join::default();
                r.struct_fields::<DecodeError>("messageJoin", |r, k| {
                    match k {
                        b"LTime" => m.ltime = ltime(r, "LTime")?,
                        b"Node" => m.node = r.string("Node")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Message::Join(m)
            }
            MessageType::PushPull => Message::PushPull(decode_push_pull(&mut r)?),
            MessageType::UserEvent => {
                let mut m = UserEvent::default();
                r.struct_fields::<DecodeError>("messageUserEvent", |r, k| {
                    match k {
                        b"CC" => m.coalesce = r.bool("CC")?,
                        b"LTime" => m.ltime = ltime(r, "LTime")?,
                        b"Name" => m.name = r.string("Name")?,
                        b"Payload" => m.payload = r.bytes("Payload")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Message::UserEvent(m)
            }
            MessageType::Query => Message::Query(decode_query(&mut r)?),
            MessageType::QueryResponse => Message::QueryResponse(decode_query_response(&mut r)?),
            MessageType::ConflictResponse => {
                if r.nil()? {
                    Message::ConflictResponse(None)
                } else {
                    Message::ConflictResponse(Some(decode_member(&mut r)?))
                }
            }
            MessageType::KeyRequest => {
                let mut m = KeyRequest::default();
                r.struct_fields::<DecodeError>("keyRequest", |r, k| {
                    match k {
                        b"Key" => m.key = r.bytes("Key")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Message::KeyRequest(m)
            }
            MessageType::KeyResponse => {
                let mut m = KeyResponse::default();
                r.struct_fields::<DecodeError>("nodeKeyResponse", |r, k| {
                    match k {
                        b"Keys" => m.keys = strings(r, "Keys")?,
                        b"Message" => m.message = r.string("Message")?,
                        b"PrimaryKey" => m.primary_key = r.string("PrimaryKey")?,
                        b"Result" => m.result = r.bool("Result")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Message::KeyResponse(m)
            }
            MessageType::Relay => {
                let mut m = Relay::default();
                r.struct_fields::<DecodeError>("relayHeader", |r, k| {
                    match k {
                        b"DestAddr" => r.struct_fields::<DecodeError>("DestAddr", |r, k| {
                            match k {
                                b"IP" => m.dest_ip = r.bytes("IP")?.unwrap_or_default(),
                                b"Port" => m.dest_port = r.uint("Port", u16::MAX as u64)? as u16,
                                b"Zone" => m.dest_zone = r.string("Zone")?,
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })?,
                        b"DestName" => m.dest_name = r.string("DestName")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                m.message = r.rest().to_vec();
                Message::Relay(m)
            }
        })
    }
}

impl Filter {
    /// The filter as Go's `encodeFilter` writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Filter::Nodes(nodes) => {
                out.push(0);
                put_strings_or_nil(&mut out, nodes);
            }
            Filter::Tag { tag, expr } => {
                out.push(1);
                mp::put_map_len(&mut out, 2);
                mp::put_key(&mut out, "Expr");
                mp::put_str(&mut out, expr);
                mp::put_key(&mut out, "Tag");
                mp::put_str(&mut out, tag);
            }
        }
        out
    }

    /// Reads an encoded filter.
    pub fn decode(buf: &[u8]) -> Result<Filter, DecodeError> {
        let (&ty, body) = buf.split_first().ok_or(DecodeError::Empty)?;
        let mut r = Reader::new(body);
        match ty {
            0 => Ok(Filter::Nodes(strings(&mut r, "filterNode")?)),
            1 => {
                let (mut tag, mut expr) = (String::new(), String::new());
                r.struct_fields::<DecodeError>("filterTag", |r, k| {
                    match k {
                        b"Expr" => expr = r.string("Expr")?,
                        b"Tag" => tag = r.string("Tag")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Ok(Filter::Tag { tag, expr })
            }
            t => Err(DecodeError::UnknownType(t)),
        }
    }
}

fn ltime(r: &mut Reader<'_>, field: &'static str) -> Result<LamportTime, DecodeError> {
    Ok(LamportTime(r.uint(field, u64::MAX)?))
}

/// A Go `[]string`: nil when empty (Go's slices that were never appended to).
fn put_strings_or_nil(out: &mut Vec<u8>, items: &[String]) {
    if items.is_empty() {
        mp::put_nil(out);
        return;
    }
    mp::put_array_len(out, items.len());
    for s in items {
        mp::put_str(out, s);
    }
}

fn strings(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<String>, DecodeError> {
    let n = r.array_len(field)?;
    r.nested(|r| (0..n).map(|_| Ok(r.string(field)?)).collect())
}

fn encode_push_pull(m: &PushPull, out: &mut Vec<u8>) {
    mp::put_map_len(out, 6);
    mp::put_key(out, "EventLTime");
    mp::put_uint(out, m.event_ltime.0);
    mp::put_key(out, "Events");
    // LocalState hands over the event buffer itself: never nil.
    mp::put_array_len(out, m.events.len());
    for slot in &m.events {
        match slot {
            None => mp::put_nil(out),
            Some(at) => {
                mp::put_map_len(out, 2);
                mp::put_key(out, "Events");
                if at.events.is_empty() {
                    mp::put_nil(out);
                } else {
                    mp::put_array_len(out, at.events.len());
                }
                for e in &at.events {
                    mp::put_map_len(out, 2);
                    mp::put_key(out, "Name");
                    mp::put_str(out, &e.name);
                    mp::put_key(out, "Payload");
                    mp::put_bytes(out, e.payload.as_deref());
                }
                mp::put_key(out, "LTime");
                mp::put_uint(out, at.ltime.0);
            }
        }
    }
    mp::put_key(out, "LTime");
    mp::put_uint(out, m.ltime.0);
    // LocalState makes the list and the map with `make`: never nil.
    mp::put_key(out, "LeftMembers");
    mp::put_array_len(out, m.left_members.len());
    for s in &m.left_members {
        mp::put_str(out, s);
    }
    mp::put_key(out, "QueryLTime");
    mp::put_uint(out, m.query_ltime.0);
    mp::put_key(out, "StatusLTimes");
    mp::put_map_len(out, m.status_ltimes.len());
    for (name, t) in &m.status_ltimes {
        mp::put_str(out, name);
        mp::put_uint(out, t.0);
    }
}

fn decode_push_pull(r: &mut Reader<'_>) -> Result<PushPull, DecodeError> {
    let mut m = PushPull::default();
    r.struct_fields::<DecodeError>("messagePushPull", |r, k| {
        match k {
            b"EventLTime" => m.event_ltime = ltime(r, "EventLTime")?,
            b"Events" => {
                let n = r.array_len("Events")?;
                m.events = r.nested(|r| (0..n).map(|_| events_at(r)).collect())?;
            }
            b"LTime" => m.ltime = ltime(r, "LTime")?,
            b"LeftMembers" => m.left_members = strings(r, "LeftMembers")?,
            b"QueryLTime" => m.query_ltime = ltime(r, "QueryLTime")?,
            b"StatusLTimes" => {
                let n = r.map_len("StatusLTimes")?;
                r.nested::<_, DecodeError>(|r| {
                    for _ in 0..n {
                        let name = r.string("StatusLTimes")?;
                        let t = ltime(r, "StatusLTimes")?;
                        m.status_ltimes.insert(name, t);
                    }
                    Ok(())
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(m)
}

fn events_at(r: &mut Reader<'_>) -> Result<Option<EventsAt>, DecodeError> {
    if r.nil()? {
        return Ok(None);
    }
    let mut at = EventsAt::default();
    r.struct_fields::<DecodeError>("userEvents", |r, k| {
        match k {
            b"Events" => {
                let n = r.array_len("Events")?;
                at.events = r.nested::<_, DecodeError>(|r| {
                    (0..n)
                        .map(|_| {
                            let mut e = EventRecord::default();
                            r.struct_fields::<DecodeError>("userEvent", |r, k| {
                                match k {
                                    b"Name" => e.name = r.string("Name")?,
                                    b"Payload" => e.payload = r.bytes("Payload")?,
                                    _ => return Ok(false),
                                }
                                Ok(true)
                            })?;
                            Ok(e)
                        })
                        .collect()
                })?;
            }
            b"LTime" => at.ltime = ltime(r, "LTime")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(Some(at))
}

fn encode_query(m: &Query, out: &mut Vec<u8>) {
    mp::put_map_len(out, 11);
    mp::put_key(out, "Addr");
    mp::put_bytes(out, m.addr.as_deref());
    mp::put_key(out, "Filters");
    if m.filters.is_empty() {
        mp::put_nil(out);
    } else {
        mp::put_array_len(out, m.filters.len());
        for f in &m.filters {
            mp::put_bytes(out, Some(f));
        }
    }
    mp::put_key(out, "Flags");
    mp::put_uint(out, m.flags as u64);
    mp::put_key(out, "ID");
    mp::put_uint(out, m.id as u64);
    mp::put_key(out, "LTime");
    mp::put_uint(out, m.ltime.0);
    mp::put_key(out, "Name");
    mp::put_str(out, &m.name);
    mp::put_key(out, "Payload");
    mp::put_bytes(out, m.payload.as_deref());
    mp::put_key(out, "Port");
    mp::put_uint(out, m.port as u64);
    mp::put_key(out, "RelayFactor");
    mp::put_uint(out, m.relay_factor as u64);
    mp::put_key(out, "SourceNode");
    mp::put_str(out, &m.source_node);
    mp::put_key(out, "Timeout");
    mp::put_int(out, i64::try_from(m.timeout.as_nanos()).unwrap_or(i64::MAX));
}

fn decode_query(r: &mut Reader<'_>) -> Result<Query, DecodeError> {
    let mut m = Query::default();
    r.struct_fields::<DecodeError>("messageQuery", |r, k| {
        match k {
            b"Addr" => m.addr = r.bytes("Addr")?,
            b"Filters" => {
                let n = r.array_len("Filters")?;
                m.filters = r.nested(|r| {
                    (0..n)
                        .map(|_| Ok(r.bytes("Filters")?.unwrap_or_default()))
                        .collect::<Result<_, DecodeError>>()
                })?;
            }
            b"Flags" => m.flags = r.uint("Flags", u32::MAX as u64)? as u32,
            b"ID" => m.id = r.uint("ID", u32::MAX as u64)? as u32,
            b"LTime" => m.ltime = ltime(r, "LTime")?,
            b"Name" => m.name = r.string("Name")?,
            b"Payload" => m.payload = r.bytes("Payload")?,
            b"Port" => m.port = r.uint("Port", u16::MAX as u64)? as u16,
            b"RelayFactor" => m.relay_factor = r.uint("RelayFactor", u8::MAX as u64)? as u8,
            b"SourceNode" => m.source_node = r.string("SourceNode")?,
            b"Timeout" => {
                let nanos = r.i64("Timeout")?;
                let nanos = u64::try_from(nanos)
                    .map_err(|_| DecodeError::OutOfRange { field: "Timeout" })?;
                m.timeout = Duration::from_nanos(nanos);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(m)
}

fn encode_query_response(m: &QueryResponse, out: &mut Vec<u8>) {
    mp::put_map_len(out, 5);
    mp::put_key(out, "Flags");
    mp::put_uint(out, m.flags as u64);
    mp::put_key(out, "From");
    mp::put_str(out, &m.from);
    mp::put_key(out, "ID");
    mp::put_uint(out, m.id as u64);
    mp::put_key(out, "LTime");
    mp::put_uint(out, m.ltime.0);
    mp::put_key(out, "Payload");
    mp::put_bytes(out, m.payload.as_deref());
}

fn decode_query_response(r: &mut Reader<'_>) -> Result<QueryResponse, DecodeError> {
    let mut m = QueryResponse::default();
    r.struct_fields::<DecodeError>("messageQueryResponse", |r, k| {
        match k {
            b"Flags" => m.flags = r.uint("Flags", u32::MAX as u64)? as u32,
            b"From" => m.from = r.string("From")?,
            b"ID" => m.id = r.uint("ID", u32::MAX as u64)? as u32,
            b"LTime" => m.ltime = ltime(r, "LTime")?,
            b"Payload" => m.payload = r.bytes("Payload")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(m)
}

const VERSION_FIELDS: [&str; 6] = [
    "DelegateCur",
    "DelegateMax",
    "DelegateMin",
    "ProtocolCur",
    "ProtocolMax",
    "ProtocolMin",
];

fn encode_member(m: &MemberInfo, out: &mut Vec<u8>) {
    let [pmin, pmax, pcur] = m.protocol;
    let [dmin, dmax, dcur] = m.delegate;
    mp::put_map_len(out, 11);
    mp::put_key(out, "Addr");
    mp::put_bytes(out, m.addr.as_deref());
    for (key, v) in VERSION_FIELDS.iter().zip([dcur, dmax, dmin]) {
        mp::put_key(out, key);
        mp::put_uint(out, v as u64);
    }
    mp::put_key(out, "Name");
    mp::put_str(out, &m.name);
    mp::put_key(out, "Port");
    mp::put_uint(out, m.port as u64);
    for (key, v) in VERSION_FIELDS[3..].iter().zip([pcur, pmax, pmin]) {
        mp::put_key(out, key);
        mp::put_uint(out, v as u64);
    }
    mp::put_key(out, "Status");
    mp::put_int(out, m.status);
    mp::put_key(out, "Tags");
    crate::tags::put_tag_map(out, &m.tags);
}

fn decode_member(r: &mut Reader<'_>) -> Result<MemberInfo, DecodeError> {
    let mut m = MemberInfo::default();
    r.struct_fields::<DecodeError>("Member", |r, k| {
        let version = |r: &mut Reader<'_>, f| Ok::<_, DecodeError>(r.uint(f, 255)? as u8);
        match k {
            b"Addr" => m.addr = r.bytes("Addr")?,
            b"DelegateCur" => m.delegate[2] = version(r, "DelegateCur")?,
            b"DelegateMax" => m.delegate[1] = version(r, "DelegateMax")?,
            b"DelegateMin" => m.delegate[0] = version(r, "DelegateMin")?,
            b"Name" => m.name = r.string("Name")?,
            b"Port" => m.port = r.uint("Port", u16::MAX as u64)? as u16,
            b"ProtocolCur" => m.protocol[2] = version(r, "ProtocolCur")?,
            b"ProtocolMax" => m.protocol[1] = version(r, "ProtocolMax")?,
            b"ProtocolMin" => m.protocol[0] = version(r, "ProtocolMin")?,
            b"Status" => m.status = r.i64("Status")?,
            b"Tags" => m.tags = crate::tags::read_tag_map(r)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(m)
}
