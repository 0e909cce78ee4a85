//! Sans-IO [Serf](https://github.com/hashicorp/serf) over swim-core: the
//! gossip layer Go Serf puts on memberlist — Lamport-clocked join and leave
//! intents, user events delivered once per node, tags as node metadata —
//! byte for byte on Go Serf 0.9's wire, so a Go `serf agent` and a Rust
//! node share one cluster.
//!
//! * [`messages`]: every Serf message, encoded as Go writes it and decoded
//!   with bounds (docs/serf.md describes the wire).
//! * [`tags`]: tags in node metadata.
//! * [`LamportClock`]: Serf's clocks and their witness rule.
//! * [`SerfStats`]: what Serf refused from its peers, and why
//!   ([`SerfRejection`]); [`bounds`]: where it bounds more than Go.
//! * [`coordinate`]: network coordinates (Vivaldi) and the ack payload
//!   that carries them.
//! * [`Serf`]: the sans-IO state, fed a Swim's events.
//! * [`snapshot`]: Go's snapshot file (who was alive, how far the clocks
//!   went), for restarts.
//! * [`SerfNode`]: Serf running on a swim-node `Node`, on any runtime
//!   (swim-tokio, swim-async-std), with its events as [`SerfEvents`].

pub mod bounds;
mod clock;
mod coalesce;
pub mod coordinate;
pub mod messages;
pub mod tags;

pub use clock::{LamportClock, LamportTime};
mod node;
mod serf;
pub mod snapshot;
mod stats;

pub use stats::{SerfRejection, SerfStats};

pub use node::{
    ClusterKeyResponse, NodeError, NodeResponse, QueryResponses, SerfEvents, SerfNode,
    SerfStartError,
};

pub use serf::{
    IncomingQuery, IntentId, KeyOp, Member, MemberStatus, QueryId, QueryParams, QueryProgress,
    QueueDepth, QueueDepths, Serf, SerfConfig, SerfDelegate, SerfError, SerfEvent, SerfOutput,
    SerfState, INTERNAL_QUERY_PREFIX, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
    USER_EVENT_SIZE_MAX,
};
