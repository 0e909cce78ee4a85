//! What the core asks its caller to do, and the ids that tie later answers
//! to what started them.

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::event::Event;
use crate::time::Instant;

/// Identifies a stream exchange the core asked for ([`Output::Connect`]),
/// and a [`send_reliable`](crate::Swim::send_reliable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExchangeId(pub u64);

/// Identifies an incoming stream, chosen by the caller
/// ([`Swim::handle_stream`](crate::Swim::handle_stream)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// Identifies a [`Swim::ping`](crate::Swim::ping); its
/// [`PingCompleted`](Event::PingCompleted) or [`PingFailed`](Event::PingFailed)
/// carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PingId(pub u64);

/// Identifies a [`Swim::join`](crate::Swim::join); its
/// [`JoinCompleted`](Event::JoinCompleted) carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JoinId(pub u64);

/// Something the caller must do, from [`Swim::poll_output`](crate::Swim::poll_output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send one UDP datagram.
    Packet {
        /// Destination.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Open a TCP connection to `to`, write `data`, and — if `expect_reply`
    /// — read one message with a [`StreamFramer`](crate::wire::StreamFramer)
    /// in the [`Reply`](crate::wire::StreamRole::Reply) role; then report with
    /// [`Swim::handle_exchange`](crate::Swim::handle_exchange). Give up at
    /// `deadline`.
    Connect {
        /// Which exchange this is.
        id: ExchangeId,
        /// Destination.
        to: SocketAddr,
        /// Bytes to write (label header included).
        data: Vec<u8>,
        /// Whether to read a reply.
        expect_reply: bool,
        /// When to give up.
        deadline: Instant,
    },
    /// Answer an incoming stream: write `data` if any, then close.
    StreamReply {
        /// The stream, as named in [`Swim::handle_stream`](crate::Swim::handle_stream).
        stream: StreamId,
        /// The reply, or `None` to close without one.
        data: Option<Vec<u8>>,
    },
    /// Tell the application.
    Event(Event),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_stay_small() {
        // Every output is moved through the queue and the caller's loop; a
        // simulator moves millions of them a second.
        assert!(
            core::mem::size_of::<Output>() <= 88,
            "{}",
            core::mem::size_of::<Output>()
        );
        assert!(
            core::mem::size_of::<Event>() <= 88,
            "{}",
            core::mem::size_of::<Event>()
        );
    }
}
