//! What the core tells its caller: members, events, and the decisions Go
//! leaves to the application.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;

/// A member's state (Go's `NodeStateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Missed a probe; will be declared dead unless it refutes in time.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left the cluster on purpose.
    Left,
}

/// A member as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Unique name.
    pub name: Arc<str>,
    /// Where it is reached (UDP and TCP). IPv4-mapped IPv6 addresses are
    /// shown as IPv4.
    pub addr: SocketAddr,
    /// Application metadata.
    pub meta: Arc<[u8]>,
    /// Incarnation: bumped by the member to refute suspicion or update metadata.
    pub incarnation: u32,
    /// State.
    pub state: MemberState,
    /// Versions `[protocol min, max, current, delegate min, max, current]`.
    pub vsn: [u8; 6],
}

impl Member {
    /// The highest protocol version the member understands.
    pub fn protocol_max(&self) -> u8 {
        self.vsn[1]
    }
}

/// One change to a node's member table, recorded when
/// [`Config::record_member_changes`](crate::Config::record_member_changes) is
/// on — every change, including suspicions and refutations, which raise no
/// [`Event`]. For observers that check invariants, like the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// The member's record now reads like this.
    Updated(Member),
    /// The member was reaped from the table.
    Removed(Arc<str>),
}

/// Raw IP bytes as a member advertised them (4 or 16 bytes), kept verbatim:
/// Go compares addresses byte for byte, so re-encoding a 16-byte mapped
/// address as 4 bytes would look like an address change to Go peers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct WireIp {
    bytes: [u8; 16],
    len: u8,
}

impl WireIp {
    pub(crate) fn from_bytes(b: &[u8]) -> WireIp {
        let mut bytes = [0; 16];
        let len = b.len().min(16);
        bytes[..len].copy_from_slice(&b[..len]);
        WireIp {
            bytes,
            len: len as u8,
        }
    }

    pub(crate) fn from_ip(ip: IpAddr) -> WireIp {
        match ip {
            IpAddr::V4(v4) => WireIp::from_bytes(&v4.octets()),
            IpAddr::V6(v6) => WireIp::from_bytes(&v6.octets()),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The address to dial; `None` for lengths other than 4 and 16.
    pub(crate) fn to_ip(self) -> Option<IpAddr> {
        match self.len {
            4 => {
                let [a, b, c, d, ..] = self.bytes;
                Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            16 => {
                let v6 = Ipv6Addr::from(self.bytes);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => None,
        }
    }
}

impl fmt::Debug for WireIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_ip() {
            Some(ip) => write!(f, "{ip}"),
            None => write!(f, "{:02x?}", self.as_bytes()),
        }
    }
}

/// Why a stream exchange the core asked for did not deliver a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    /// The connection could not be made or broke.
    Io,
    /// The deadline passed.
    Timeout,
    /// The reply could not be opened or decoded, or was not what was asked.
    BadReply(crate::wire::WireError),
    /// The peer answered with an error response.
    Remote(alloc::string::String),
    /// The remote state was refused (incompatible versions, or the merge
    /// was vetoed).
    Refused(&'static str),
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Io => f.write_str("connection failed"),
            ExchangeError::Timeout => f.write_str("timed out"),
            ExchangeError::BadReply(e) => write!(f, "bad reply: {e}"),
            ExchangeError::Remote(e) => write!(f, "remote error: {e}"),
            ExchangeError::Refused(why) => write!(f, "remote state refused: {why}"),
        }
    }
}

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member joined (or came back).
    MemberJoined(Member),
    /// A member's metadata changed.
    MemberUpdated(Member),
    /// A member left on purpose.
    MemberLeft(Member),
    /// A member was declared failed.
    MemberFailed(Member),
    /// A user message arrived (packet or stream).
    UserMessage {
        /// Where it came from (the packet's source, or the stream's peer).
        from: SocketAddr,
        /// The bytes.
        payload: Vec<u8>,
    },
    /// A push/pull carried the remote application state.
    RemoteState {
        /// Whether the exchange was a join.
        join: bool,
        /// The state bytes.
        state: Vec<u8>,
    },
    /// A ping finished: a probe ack or a [`Swim::ping`](crate::Swim::ping) answer.
    PingCompleted {
        /// The member pinged.
        node: Arc<str>,
        /// Round-trip time.
        rtt: Duration,
        /// The ack's payload.
        payload: Vec<u8>,
    },
    /// A [`Swim::ping`](crate::Swim::ping) got no answer within the probe timeout.
    PingFailed {
        /// The member pinged.
        node: Arc<str>,
    },
    /// Another node claims a known member's name from another address; the
    /// claim was ignored.
    ///
    /// Boxed: a rare event should not double the size of every other one.
    NameConflict {
        /// The member as known.
        existing: Box<Member>,
        /// The other claim.
        other: Box<Member>,
    },
    /// A [`Swim::join`](crate::Swim::join) finished.
    JoinCompleted {
        /// Seeds whose push/pull succeeded.
        joined: usize,
        /// Seeds that failed, and why.
        failed: Vec<(SocketAddr, ExchangeError)>,
    },
    /// A [`Swim::leave`](crate::Swim::leave) finished: the departure was
    /// gossiped enough times, or `timed_out`.
    LeaveCompleted {
        /// Whether the timeout passed first.
        timed_out: bool,
    },
}

/// The decisions Go memberlist leaves to the application (its
/// `AliveDelegate` and `MergeDelegate`). Both default to accepting.
pub trait Policy {
    /// Whether to accept an alive message that would add or change `member`.
    fn allow_alive(&mut self, member: &Member) -> bool {
        let _ = member;
        true
    }

    /// Whether to merge the state a join brought (`members` as the remote
    /// side listed them). Refusing fails the join with that seed.
    fn allow_merge(&mut self, members: &[Member]) -> bool {
        let _ = members;
        true
    }
}

/// The default [`Policy`]: accept everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Policy for AllowAll {}
