//! The sans-IO core of a Rust implementation of HashiCorp's `memberlist`.
//!
//! [`Swim`] is the protocol — SWIM failure detection with the Lifeguard
//! extensions, infection-style gossip, push/pull anti-entropy, join and
//! leave — as a deterministic state machine: it never reads a clock, opens a
//! socket or spawns a thread. [`wire`] reads and writes memberlist's wire
//! protocol byte for byte, so Rust and Go nodes share one cluster. Adapters
//! (`swim-tokio`, `swim-async-std`) run it on real sockets; `swim-sim` runs
//! thousands of copies on a virtual clock.
//!
//! The crate is `no_std` with `alloc`; the default `std` feature adds
//! `std::error::Error` implementations. The `simulation` feature adds what
//! only a process running many nodes needs (names shared between nodes, a
//! formed cluster's start); a node in a real cluster has no use for it.
//!
//! # Example
//!
//! Two nodes wired by hand: `b` joins through `a` with a push/pull, the
//! stream exchange an adapter would carry over TCP.
//!
//! ```
//! use swim_core::{Config, Instant, Output, StreamId, Swim};
//!
//! let (addr_a, addr_b) = ("127.0.0.1:7001".parse().unwrap(), "127.0.0.1:7002".parse().unwrap());
//! let now = Instant::ZERO;
//! let mut a = Swim::new(Config::local("a", addr_a), 1, now).unwrap();
//! let mut b = Swim::new(Config::local("b", addr_b), 2, now).unwrap();
//!
//! b.join(now, &[addr_a]);
//! // `b` asks for a push/pull with the seed (after an event: it joined itself).
//! let (id, data) = std::iter::from_fn(|| b.poll_output())
//!     .find_map(|o| match o {
//!         Output::Connect { id, data, .. } => Some((id, data)),
//!         _ => None,
//!     })
//!     .unwrap();
//! // The adapter dials `a`, writes `data`; `a` answers with its own state.
//! a.handle_stream(now, StreamId(1), addr_b, &data);
//! let reply = std::iter::from_fn(|| a.poll_output())
//!     .find_map(|o| match o {
//!         Output::StreamReply { data, .. } => data,
//!         _ => None,
//!     })
//!     .unwrap();
//! b.handle_exchange(now, id, Ok(&reply));
//! assert_eq!(a.num_members(), 2);
//! assert_eq!(b.num_members(), 2);
//! ```
//!
//! # The wire codec
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
pub mod broadcast;
mod budget;
mod config;
mod delegate;
pub mod detection;
mod event;
mod ids;
mod member;
mod members;
mod names;
mod rejection;
mod rng;
mod stats;
mod suspicion;
mod swim;
mod time;
pub mod wire;

pub use config::{
    CatchUp, Cidr, Config, ConfigError, Preset, SuspicionTimeouts, META_MAX_SIZE,
    PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};
pub use delegate::{DefaultDelegate, Delegate};
pub use event::{BroadcastOutcome, Event, ExchangeError, IoKind};
pub use ids::{BroadcastId, ExchangeId, JoinId, PingId, StreamId};
pub use member::{Member, MemberChange, MemberCounts, MemberState};
#[cfg(feature = "simulation")]
pub use names::SharedNames;
pub use rejection::Rejection;
pub use stats::Stats;
pub use swim::{Builder, CommandError, Output, Swim};
pub use time::Instant;
