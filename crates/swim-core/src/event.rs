//! What the core tells its caller besides what to send: events.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use crate::ids::{BroadcastId, JoinId, PingId};
use crate::member::Member;
use crate::rejection::Rejection;

/// What kind of I/O error ended a stream exchange: the kinds of
/// `std::io::ErrorKind` a connection meets, kept here so the core stays
/// `no_std` (with `std`, it converts both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoKind {
    /// Nothing listens there (`ECONNREFUSED`).
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The connection was aborted.
    ConnectionAborted,
    /// No route to the host (`EHOSTUNREACH`).
    HostUnreachable,
    /// The network is unreachable (`ENETUNREACH`).
    NetworkUnreachable,
    /// The operating system gave up connecting or waiting.
    TimedOut,
    /// The local address cannot be used.
    AddrNotAvailable,
    /// Writing to a connection the peer closed.
    BrokenPipe,
    /// The peer closed the connection before a whole message.
    UnexpectedEof,
    /// Any other kind.
    Other,
}

impl IoKind {
    fn as_str(self) -> &'static str {
        match self {
            IoKind::ConnectionRefused => "connection refused",
            IoKind::ConnectionReset => "connection reset",
            IoKind::ConnectionAborted => "connection aborted",
            IoKind::HostUnreachable => "host unreachable",
            IoKind::NetworkUnreachable => "network unreachable",
            IoKind::TimedOut => "connection timed out",
            IoKind::AddrNotAvailable => "address not available",
            IoKind::BrokenPipe => "broken pipe",
            IoKind::UnexpectedEof => "closed early",
            IoKind::Other => "other",
        }
    }
}

#[cfg(feature = "std")]
impl From<std::io::ErrorKind> for IoKind {
    fn from(kind: std::io::ErrorKind) -> IoKind {
        use std::io::ErrorKind as K;
        match kind {
            K::ConnectionRefused => IoKind::ConnectionRefused,
            K::ConnectionReset => IoKind::ConnectionReset,
            K::ConnectionAborted => IoKind::ConnectionAborted,
            K::HostUnreachable => IoKind::HostUnreachable,
            K::NetworkUnreachable => IoKind::NetworkUnreachable,
            K::TimedOut => IoKind::TimedOut,
            K::AddrNotAvailable => IoKind::AddrNotAvailable,
            K::BrokenPipe => IoKind::BrokenPipe,
            K::UnexpectedEof => IoKind::UnexpectedEof,
            _ => IoKind::Other,
        }
    }
}

#[cfg(feature = "std")]
impl From<IoKind> for std::io::ErrorKind {
    fn from(kind: IoKind) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match kind {
            IoKind::ConnectionRefused => K::ConnectionRefused,
            IoKind::ConnectionReset => K::ConnectionReset,
            IoKind::ConnectionAborted => K::ConnectionAborted,
            IoKind::HostUnreachable => K::HostUnreachable,
            IoKind::NetworkUnreachable => K::NetworkUnreachable,
            IoKind::TimedOut => K::TimedOut,
            IoKind::AddrNotAvailable => K::AddrNotAvailable,
            IoKind::BrokenPipe => K::BrokenPipe,
            IoKind::UnexpectedEof => K::UnexpectedEof,
            IoKind::Other => K::Other,
        }
    }
}

/// Why a stream exchange the core asked for did not deliver a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    /// The connection could not be made or broke, and how.
    Io(IoKind),
    /// The deadline passed.
    Timeout,
    /// The reply could not be opened or decoded, or was not what was asked.
    BadReply(crate::wire::WireError),
    /// The peer answered with a TLS record: it expects TLS on its streams
    /// and this node dialled without it.
    PeerSpeaksTls,
    /// The peer answered with an error response.
    Remote(alloc::string::String),
    /// The remote state was refused
    /// ([`IncompatibleProtocol`](Rejection::IncompatibleProtocol) or
    /// [`MergeVetoed`](Rejection::MergeVetoed)).
    Refused(Rejection),
    /// A join was refused: the seed lists a live member under our name at
    /// another address (Go's seed logs a conflict and ignores us).
    NameTaken {
        /// Where the member holding our name is.
        addr: SocketAddr,
    },
    /// A join was refused: a second push/pull with the seed shows it did
    /// not take us in (its alive filter or merge veto refused us, or it
    /// cannot speak our protocol versions).
    NotAccepted,
}

impl ExchangeError {
    /// Whether the peer answered and refused us, so asking again the same
    /// way cannot succeed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ExchangeError::Refused(_)
                | ExchangeError::NameTaken { .. }
                | ExchangeError::NotAccepted
        )
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Io(IoKind::Other) => f.write_str("connection failed"),
            ExchangeError::Io(kind) => write!(f, "connection failed: {}", kind.as_str()),
            ExchangeError::Timeout => f.write_str("timed out"),
            ExchangeError::BadReply(e) => write!(f, "bad reply: {e}"),
            ExchangeError::PeerSpeaksTls => f.write_str(
                "the peer answered in TLS: it expects TLS and this node dialled without",
            ),
            ExchangeError::Remote(e) => write!(f, "remote error: {e}"),
            ExchangeError::Refused(why) => write!(f, "remote state refused: {why}"),
            ExchangeError::NameTaken { addr } => {
                write!(f, "our name is taken by a live member at {addr}")
            }
            ExchangeError::NotAccepted => f.write_str(
                "the seed did not take us in (its alive filter or merge veto, or our \
                 protocol versions)",
            ),
        }
    }
}

/// Why a user broadcast left the queue ([`Event::BroadcastFinished`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BroadcastOutcome {
    /// This node sent it its full number of times (Go's `retransmitLimit`)
    /// to random members: not a delivery receipt. Without
    /// [`relay_user_broadcasts`](crate::Config::relay_user_broadcasts) it
    /// reaches only some members of a larger cluster.
    Sent,
    /// A newer broadcast with the same key took its place before that.
    Replaced,
    /// It was dropped before that: the node left, or the queue was full.
    Dropped,
}

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member joined (or came back).
    #[doc(alias = "NotifyJoin")]
    MemberJoined(Member),
    /// A member's metadata changed.
    #[doc(alias = "NotifyUpdate")]
    MemberUpdated(Member),
    /// A member left on purpose.
    #[doc(alias = "NotifyLeave")]
    MemberLeft(Member),
    /// A member was declared failed.
    MemberFailed(Member),
    /// A user message arrived (packet or stream).
    #[doc(alias = "NotifyMsg")]
    UserMessage {
        /// Where it came from (the packet's source, or the stream's peer:
        /// for a stream, the sender's ephemeral port).
        from: SocketAddr,
        /// The member that sent it, when known: for a datagram, the member
        /// whose address is the packet's source — for a gossiped broadcast,
        /// the member that passed it on, not necessarily its author; for a
        /// stream, the only member advertising the peer's IP (`None` when
        /// several share it, as on one host: the stream's port is
        /// ephemeral, and memberlist's user message names no sender).
        node: Option<Arc<str>>,
        /// The bytes.
        payload: Vec<u8>,
    },
    /// A push/pull carried the remote application state.
    #[doc(alias = "MergeRemoteState")]
    RemoteState {
        /// Whether the exchange was a join.
        join: bool,
        /// The state bytes.
        state: Vec<u8>,
    },
    /// A probe of `node` was acked directly (Go's
    /// `PingDelegate.NotifyPingComplete`).
    #[doc(alias = "NotifyPingComplete")]
    ProbeAcked {
        /// The member probed.
        node: Arc<str>,
        /// Round-trip time.
        rtt: Duration,
        /// The ack's payload.
        payload: Vec<u8>,
    },
    /// A [`Swim::ping`](crate::Swim::ping) was answered.
    PingCompleted {
        /// The ping, as `ping` returned it.
        id: PingId,
        /// The member pinged.
        node: Arc<str>,
        /// Round-trip time.
        rtt: Duration,
        /// The ack's payload.
        payload: Vec<u8>,
    },
    /// A [`Swim::ping`](crate::Swim::ping) got no answer within the probe timeout.
    PingFailed {
        /// The ping, as `ping` returned it.
        id: PingId,
        /// The member pinged.
        node: Arc<str>,
    },
    /// Another node claims a known member's name from another address; the
    /// claim was ignored.
    ///
    /// Boxed: a rare event should not double the size of every other one.
    #[doc(alias = "NotifyConflict")]
    #[doc(alias = "ConflictDelegate")]
    NameConflict {
        /// The member as known.
        existing: Box<Member>,
        /// The other claim.
        other: Box<Member>,
    },
    /// A [`Swim::join`](crate::Swim::join) finished.
    JoinCompleted {
        /// The join, as `join` returned it.
        id: JoinId,
        /// Seeds whose push/pull succeeded.
        joined: usize,
        /// Seeds that failed, and why.
        failed: Vec<(SocketAddr, ExchangeError)>,
    },
    /// A user broadcast left the queue (Go's `Broadcast.Finished`).
    #[doc(alias = "Finished")]
    BroadcastFinished {
        /// The broadcast, as `broadcast` or `broadcast_named` returned it.
        id: BroadcastId,
        /// Why it left.
        outcome: BroadcastOutcome,
    },
    /// A [`Swim::leave`](crate::Swim::leave) finished: the departure was
    /// gossiped enough times, or `timed_out`.
    LeaveCompleted {
        /// Whether the timeout passed first.
        timed_out: bool,
    },
}
