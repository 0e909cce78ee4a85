//! The sans-IO core of a Rust implementation of HashiCorp's `memberlist`.
//!
//! Today this crate holds [`wire`]: a codec that reads and writes memberlist's
//! wire protocol byte for byte, so Rust and Go nodes can share one cluster.
//! The protocol state machine (`Swim`) is the next piece to land here.
//!
//! The crate is `no_std` with `alloc`; the default `std` feature adds
//! `std::error::Error` implementations.
//!
//! # Example
//!
//! Encode a ping, seal it as a datagram (compressed when that is smaller,
//! CRC-wrapped for a peer at protocol version 5), then open it on the
//! receiving side and walk its messages:
//!
//! ```
//! use swim_core::wire::{self, Envelope, Message, Ping, Transport};
//!
//! let ping = Message::Ping(Ping {
//!     seq_no: 1,
//!     node: "node-b",
//!     source_addr: [10, 0, 0, 1][..].into(),
//!     source_port: 7946,
//!     source_node: "node-a",
//! });
//! let mut encoded = Vec::new();
//! ping.encode(Transport::Packet, &mut encoded);
//!
//! let envelope = Envelope::new(); // Go's defaults: compression on, no keys
//! let mut datagram = Vec::new();
//! envelope.seal_packet(&encoded, true, || unreachable!("not encrypting"), &mut datagram);
//!
//! let body = envelope.open_packet(&datagram)?;
//! let mut received = Vec::new();
//! wire::for_each_message(&body, envelope.limits(), &mut |m| {
//!     received.push(m.map(|m| m.message_type()))
//! });
//! assert_eq!(received, [Ok(wire::MessageType::Ping)]);
//! # Ok::<(), wire::WireError>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod awareness;
mod broadcast;
mod config;
mod event;
mod members;
mod names;
mod rng;
mod stats;
mod suspicion;
mod swim;
mod time;
pub mod wire;

pub use config::{
    Cidr, Config, ConfigError, META_MAX_SIZE, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};
pub use event::{AllowAll, Event, ExchangeError, Member, MemberChange, MemberState, Policy};
pub use names::SharedNames;
pub use stats::Stats;
pub use swim::{CommandError, ExchangeId, Output, StreamId, Swim};
pub use time::Instant;
