//! What the core asks its caller to do.

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::event::Event;
use crate::ids::{ExchangeId, StreamId};
use crate::time::Instant;

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
