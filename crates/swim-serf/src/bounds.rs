//! Where Serf bounds what peers can make it hold more tightly than Go Serf
//! 0.9 does (docs/serf.md, "Bounds beyond Go's"). Input past a bound is
//! refused, counted ([`SerfRejection`](crate::SerfRejection)) and changes
//! nothing.

/// Lamport times at or past this are refused, in every message and
/// push/pull, before any clock witnesses them. Go witnesses any time, and
/// its clock wraps to 0 after `u64::MAX`; a limit of 2^63 leaves every
/// clock 2^63 ticks of room whatever peers send, more than any cluster
/// uses (a million ticks a second for 290,000 years), while a clock below
/// it still jumps as far as a peer's times take it, as Lamport clocks must.
pub const LAMPORT_TIME_LIMIT: u64 = 1 << 63;

/// Most intents kept for nodes not (yet) members. Go keeps every one for
/// its `RecentIntentTimeout` (5 min), so a peer naming made-up nodes
/// grows its table without end; members' intents are taken from it only
/// while memberlist has not yet told of the node, which is few at a time.
pub const RECENT_INTENTS_MAX: usize = 16_384;

/// Most distinct user events kept at one Lamport time. Go appends every
/// distinct name and payload to the time's slot; events share a time only
/// when sent concurrently by nodes that had not seen each other's.
pub const EVENTS_PER_LTIME_MAX: usize = 64;

/// Most distinct query ids kept at one query time (as for events: Go
/// appends every id).
pub const QUERIES_PER_LTIME_MAX: usize = 64;
