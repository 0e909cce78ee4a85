//! The ids that tie what completes later to what started it.

/// Identifies a stream exchange the core asked for ([`Output::Connect`](crate::Output::Connect)),
/// and a [`send_reliable`](crate::Swim::send_reliable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExchangeId(pub u64);

/// Identifies an incoming stream, chosen by the caller
/// ([`Swim::handle_stream`](crate::Swim::handle_stream)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// Identifies a [`Swim::ping`](crate::Swim::ping); its
/// [`PingCompleted`](crate::Event::PingCompleted) or [`PingFailed`](crate::Event::PingFailed)
/// carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PingId(pub u64);

/// Identifies a [`Swim::join`](crate::Swim::join); its
/// [`JoinCompleted`](crate::Event::JoinCompleted) carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JoinId(pub u64);

/// Identifies a user broadcast ([`Swim::broadcast`](crate::Swim::broadcast),
/// [`Swim::broadcast_named`](crate::Swim::broadcast_named)); its
/// [`BroadcastFinished`](crate::Event::BroadcastFinished) carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BroadcastId(pub u64);
