//! The RPC's messages as Go's agent writes them (`ipc.go`): field names
//! and order of its structs, strings as str, `[]byte` as bin.

use std::collections::BTreeMap;

use swim_serf::coordinate::Coordinate;
use swim_serf::{ClusterKeyResponse, Member, MemberStatus};

use crate::serf::handlers::AgentEvent;
use crate::serf::msgpack::Encoder;

/// The IPC versions Go's agent speaks (`MinIPCVersion`, `MaxIPCVersion`).
pub const IPC_VERSION: i64 = 1;

/// Go's error strings (`ipc.go`).
pub mod errors {
    /// An unknown command.
    pub const UNSUPPORTED_COMMAND: &str = "Unsupported command";
    /// A handshake for another version.
    pub const UNSUPPORTED_IPC_VERSION: &str = "Unsupported IPC version";
    /// A second handshake.
    pub const DUPLICATE_HANDSHAKE: &str = "Handshake already performed";
    /// A command before the handshake.
    pub const HANDSHAKE_REQUIRED: &str = "Handshake required";
    /// A second monitor.
    pub const MONITOR_EXISTS: &str = "Monitor already exists";
    /// A stream filter Go does not know.
    pub const INVALID_FILTER: &str = "Invalid event filter";
    /// A stream on a sequence number in use.
    pub const STREAM_EXISTS: &str = "Stream with given sequence exists";
    /// A respond to no pending query.
    pub const INVALID_QUERY_ID: &str = "No pending queries matching ID";
    /// A command before auth.
    pub const AUTH_REQUIRED: &str = "Authentication required";
    /// A wrong token.
    pub const INVALID_AUTH_TOKEN: &str = "Invalid authentication token";
}

/// Go's response header: `{Seq, Error}`.
pub fn header(e: &mut Encoder, seq: u64, error: &str) {
    e.map(2).str("Seq").uint(seq).str("Error").str(error);
}

/// Go's `MemberStatus.String()`.
pub fn status_name(s: MemberStatus) -> &'static str {
    match s {
        MemberStatus::None => "none",
        MemberStatus::Alive => "alive",
        MemberStatus::Leaving => "leaving",
        MemberStatus::Left => "left",
        MemberStatus::Failed => "failed",
    }
}

/// Go's IPC `Member`.
pub fn member(e: &mut Encoder, m: &Member) {
    let ip = match m.addr.ip() {
        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    e.map(11)
        .str("Name")
        .str(&m.name)
        .str("Addr")
        .bin(Some(&ip))
        .str("Port")
        .uint(u64::from(m.addr.port()))
        .str("Tags")
        .string_map(m.tags.iter())
        .str("Status")
        .str(status_name(m.status));
    for (i, name) in [
        "ProtocolMin",
        "ProtocolMax",
        "ProtocolCur",
        "DelegateMin",
        "DelegateMax",
        "DelegateCur",
    ]
    .iter()
    .enumerate()
    {
        e.str(name).uint(u64::from(m.vsn[i]));
    }
}

/// Go's `membersResponse`.
pub fn members(e: &mut Encoder, members: &[Member]) {
    e.map(1).str("Members").array(members.len());
    for m in members {
        member(e, m);
    }
}

/// Go's `joinResponse`.
pub fn join(e: &mut Encoder, num: usize) {
    e.map(1).str("Num").uint(num as u64);
}

/// Go's `keyResponse`; `Keys` only for a listing (nil otherwise, as Go).
pub fn keys(e: &mut Encoder, r: &ClusterKeyResponse, list: bool) {
    e.map(5)
        .str("Messages")
        .string_map(r.messages.iter())
        .str("Keys");
    if list {
        e.map(r.keys.len());
        for (k, n) in &r.keys {
            e.str(k).uint(*n as u64);
        }
    } else {
        e.nil();
    }
    e.str("NumNodes")
        .uint(r.num_nodes as u64)
        .str("NumErr")
        .uint(r.num_err as u64)
        .str("NumResp")
        .uint(r.num_resp as u64);
}

/// Go's `coordinateResponse`; a zero coordinate when there is none.
pub fn coordinate(e: &mut Encoder, c: Option<&Coordinate>) {
    e.map(2).str("Coord").map(4).str("Vec");
    match c {
        Some(c) => {
            e.array(c.vec.len());
            for v in &c.vec {
                e.f64(*v);
            }
            e.str("Error")
                .f64(c.error)
                .str("Adjustment")
                .f64(c.adjustment)
                .str("Height")
                .f64(c.height);
        }
        None => {
            e.nil()
                .str("Error")
                .f64(0.0)
                .str("Adjustment")
                .f64(0.0)
                .str("Height")
                .f64(0.0);
        }
    }
    e.str("Ok").bool(c.is_some());
}

/// Go's `map[string]map[string]string` of `stats`.
pub fn stats(e: &mut Encoder, s: &BTreeMap<String, BTreeMap<String, String>>) {
    e.map(s.len());
    for (k, inner) in s {
        e.str(k).string_map(inner.iter());
    }
}

/// Go's `queryRecord`: an ack, a response or the end.
pub fn query_record(e: &mut Encoder, kind: &str, from: &str, payload: Option<&[u8]>) {
    e.map(3)
        .str("Type")
        .str(kind)
        .str("From")
        .str(from)
        .str("Payload")
        .bin(payload);
}

/// Go's `logRecord`.
pub fn log_record(e: &mut Encoder, line: &str) {
    e.map(1).str("Log").str(line);
}

/// An event as Go's event stream sends it (`memberEventRecord`,
/// `userEventRecord`, `queryEventRecord`); `query_id` is the id this
/// client responds with.
pub fn event_record(e: &mut Encoder, ev: &AgentEvent, query_id: u64) {
    match ev {
        AgentEvent::User(u) => {
            e.map(5)
                .str("Event")
                .str("user")
                .str("LTime")
                .uint(u.ltime.0)
                .str("Name")
                .str(&u.name)
                .str("Payload")
                .bin(u.payload.as_deref())
                .str("Coalesce")
                .bool(u.coalesce);
        }
        AgentEvent::Query(q) => {
            e.map(5)
                .str("Event")
                .str("query")
                .str("ID")
                .uint(query_id)
                .str("LTime")
                .uint(q.query.ltime.0)
                .str("Name")
                .str(&q.name)
                .str("Payload")
                .bin(Some(&q.payload));
        }
        AgentEvent::Members { kind, members } => {
            e.map(2)
                .str("Event")
                .str(kind)
                .str("Members")
                .array(members.len());
            for m in members {
                member(e, m);
            }
        }
    }
}
