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
    /// The remote state was refused
    /// ([`IncompatibleProtocol`](Rejection::IncompatibleProtocol) or
    /// [`MergeVetoed`](Rejection::MergeVetoed)).
    Refused(Rejection),
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

/// Why a user broadcast left the queue ([`Event::BroadcastFinished`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BroadcastOutcome {
    /// It was sent its full number of times (Go's `retransmitLimit`).
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
    /// A probe of `node` was acked directly (Go's
    /// `PingDelegate.NotifyPingComplete`).
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
