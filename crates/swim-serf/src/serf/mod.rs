//! The Serf state machine: Go Serf's `serf.go` and `delegate.go` rules
//! without its goroutines, sockets or clock.
//!
//! [`Serf`] does not own the [`Swim`](swim_core::Swim) it runs on; it is fed
//! the Swim's events ([`Serf::handle_event`]) and hands back what the Swim
//! must do ([`SerfOutput::UpdateMeta`], [`SerfOutput::SendTo`]), so it
//! composes with a Swim driven directly or by swim-node's driver. The
//! Swim asks it through [`SerfDelegate`] for Serf's state (push/pulls) and
//! for the messages Serf gossips, which wait in Serf's own queues
//! ([`Serf::broadcasts`]). Time only comes in as an argument.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_core::{Event, Instant};

use crate::bounds::{EVENTS_PER_LTIME_MAX, LAMPORT_TIME_LIMIT, RECENT_INTENTS_MAX};
use crate::clock::{LamportClock, LamportTime};
use crate::coalesce::Coalescer;
use crate::coordinate::{Coordinate, CoordinateClient, CoordinateConfig};
use crate::messages::{
    DecodeError, EventRecord, EventsAt, Join, Leave, Message, PushPull, UserEvent,
};
use crate::stats::{SerfRejection, SerfStats};
use crate::tags::{decode_tags, encode_tags, Tags, TagsTooLarge};

mod broadcast;
mod internal;
mod query;
mod reap;

pub use broadcast::{IntentId, QueueDepth, QueueDepths};
pub use internal::{KeyOp, INTERNAL_QUERY_PREFIX};
pub use query::{IncomingQuery, QueryId, QueryParams, QueryProgress};

/// Go Serf's lowest protocol version.
pub const PROTOCOL_VERSION_MIN: u8 = 2;
/// Go Serf's highest protocol version (the agent's default).
pub const PROTOCOL_VERSION_MAX: u8 = 5;
/// Most bytes of a user event's name and payload together, and of its
/// encoding (Go's `UserEventSizeLimit`, the hard limit).
pub const USER_EVENT_SIZE_MAX: usize = 9 * 1024;

/// Serf's settings (the part of Go's `serf.Config` implemented so far).
#[derive(Debug, Clone)]
pub struct SerfConfig {
    /// This node's name; must be the Swim's.
    pub name: String,
    /// This node's initial tags.
    pub tags: Tags,
    /// The Serf protocol spoken, [`PROTOCOL_VERSION_MIN`]..=[`PROTOCOL_VERSION_MAX`].
    pub protocol_version: u8,
    /// Slots of the event buffer: events within this many event clock ticks
    /// of the newest are remembered, deduplicated and handed to late
    /// joiners (Go: 512).
    pub event_buffer: usize,
    /// How long an intent for a node not (yet) a member is kept (Go: 5 min).
    pub recent_intent_timeout: Duration,
    /// Most bytes of a user event's name and payload, and of its encoding
    /// (Go: 512; at most [`USER_EVENT_SIZE_MAX`]).
    pub user_event_size_limit: usize,
    /// How long a leave waits for its intent to be gossiped, and then for
    /// the Swim's leave (Go's `BroadcastTimeout`: 5 s).
    pub broadcast_timeout: Duration,
    /// How long a leave then stays up, answering probes while the news
    /// spreads (Go's `LeavePropagateDelay`: 1 s).
    pub leave_propagate_delay: Duration,
    /// The Swim's gossip interval, which queries' default timeout scales
    /// (`SerfNode` copies it from the Swim's settings; Go: 200 ms).
    pub gossip_interval: Duration,
    /// Queries' default timeout in gossip intervals, before the cluster
    /// size factor (Go's `QueryTimeoutMult`: 16).
    pub query_timeout_mult: u32,
    /// Slots of the query buffer: queries within this many query clock
    /// ticks of the newest are remembered and deduplicated (Go: 512).
    pub query_buffer: usize,
    /// Most bytes of an encoded query (Go's `QuerySizeLimit`: 1024).
    pub query_size_limit: usize,
    /// Most bytes of an encoded query response, and of a relayed one (Go's
    /// `QueryResponseSizeLimit`: 1024).
    pub query_response_size_limit: usize,
    /// Seeds the random choices (query ids, relays); random by default.
    pub seed: u64,
    /// No network coordinates: acks carry no payload, none are kept (Go's
    /// `DisableCoordinates`).
    pub disable_coordinates: bool,
    /// The Vivaldi settings (Go's `coordinate.DefaultConfig`).
    pub coordinate: CoordinateConfig,
    /// When another node claims our name, ask the cluster who holds it and
    /// stop if the majority says the other one (Go's
    /// `EnableNameConflictResolution`: on).
    pub enable_name_conflict_resolution: bool,
    /// Member events are held and merged for up to this long (Go's
    /// `CoalescePeriod`; zero, the default, turns coalescing off).
    pub coalesce_period: Duration,
    /// ... or until no member event came for this long (Go's
    /// `QuiescentPeriod`; zero turns coalescing off).
    pub quiescent_period: Duration,
    /// The same for user events sent with `coalesce` (Go's
    /// `UserCoalescePeriod`).
    pub user_coalesce_period: Duration,
    /// The same for user events (Go's `UserQuiescentPeriod`).
    pub user_quiescent_period: Duration,
    /// Where `SerfNode` keeps a snapshot, replayed at start (Go's
    /// `SnapshotPath`; none by default).
    pub snapshot_path: Option<std::path::PathBuf>,
    /// Where `SerfNode` writes the keyring each time a key query changes it
    /// (Go's `KeyringFile`: a JSON list of base64 keys, the primary first,
    /// mode 0600; none by default). Reading it at start is the caller's.
    pub keyring_file: Option<std::path::PathBuf>,
    /// Rejoin the snapshot's nodes even after a graceful leave (Go's
    /// `RejoinAfterLeave`).
    pub rejoin_after_leave: bool,
    /// How often a failed member may be tried again (Go's
    /// `ReconnectInterval`: 30 s).
    pub reconnect_interval: Duration,
    /// A failed member is forgotten this long after it failed (Go's
    /// `ReconnectTimeout`: 24 h).
    pub reconnect_timeout: Duration,
    /// A member that left is forgotten this long after (Go's
    /// `TombstoneTimeout`: 24 h).
    pub tombstone_timeout: Duration,
    /// The Swim's `retransmit_mult`: each message Serf gossips is sent
    /// `retransmit_mult × ceil(log10(n + 1))` times, `n` the Serf members
    /// in any status (`SerfNode` copies it from the Swim's settings; Go
    /// Serf's memberlist LAN default: 4).
    pub retransmit_mult: usize,
    /// Most messages each of Serf's broadcast queues holds; beyond, the
    /// most-sent are dropped (Go's `MaxQueueDepth`: 4096).
    pub max_queue_depth: usize,
    /// When positive, the bound is instead twice the number of members, at
    /// least this (Go's `MinQueueDepth`: 0).
    pub min_queue_depth: usize,
    /// A queue reaching this many messages is logged as a warning (Go's
    /// `QueueDepthWarning`: 128).
    pub queue_depth_warning: usize,
}

impl SerfConfig {
    /// Go Serf's defaults for a node named `name`, with the agent's protocol.
    pub fn new(name: impl Into<String>) -> Self {
        SerfConfig {
            name: name.into(),
            tags: Tags::new(),
            protocol_version: PROTOCOL_VERSION_MAX,
            event_buffer: 512,
            recent_intent_timeout: Duration::from_secs(300),
            user_event_size_limit: 512,
            broadcast_timeout: Duration::from_secs(5),
            leave_propagate_delay: Duration::from_secs(1),
            gossip_interval: Duration::from_millis(200),
            query_timeout_mult: 16,
            query_buffer: 512,
            query_size_limit: 1024,
            query_response_size_limit: 1024,
            seed: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0u8)
            },
            disable_coordinates: false,
            coordinate: CoordinateConfig::default(),
            enable_name_conflict_resolution: true,
            snapshot_path: None,
            keyring_file: None,
            rejoin_after_leave: false,
            coalesce_period: Duration::ZERO,
            quiescent_period: Duration::ZERO,
            user_coalesce_period: Duration::ZERO,
            user_quiescent_period: Duration::ZERO,
            reconnect_interval: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(24 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            retransmit_mult: 4,
            max_queue_depth: 4096,
            min_queue_depth: 0,
            queue_depth_warning: 128,
        }
    }

    /// `swim` set up as Go Serf sets up its memberlist: our tags as the
    /// metadata, Serf's delegate versions, and no relaying of user messages
    /// (Serf re-broadcasts what is new itself).
    pub fn swim_config(&self, mut swim: swim_core::Config) -> Result<swim_core::Config, SerfError> {
        swim.name = self.name.clone();
        swim.meta = encode_tags(&self.tags)?;
        swim.delegate_protocol = [
            PROTOCOL_VERSION_MIN,
            PROTOCOL_VERSION_MAX,
            self.protocol_version,
        ];
        swim.relay_user_broadcasts = false;
        Ok(swim)
    }
}

/// Why a Serf command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerfError {
    /// Encoded tags over the metadata limit.
    TagsTooLarge(TagsTooLarge),
    /// A user event over the size limit (`len` bytes, `limit` allowed).
    EventTooLarge {
        /// The event's size.
        len: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The node has left or is leaving.
    Left,
    /// A setting out of range.
    BadConfig(&'static str),
    /// Not possible with this protocol or yet.
    Unsupported(&'static str),
    /// An encoded query or response over its limit.
    QueryTooLarge {
        /// Its size.
        len: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The query was answered already.
    QueryAnswered,
    /// The query's deadline passed.
    QueryExpired,
}

impl From<TagsTooLarge> for SerfError {
    fn from(e: TagsTooLarge) -> Self {
        SerfError::TagsTooLarge(e)
    }
}

impl core::fmt::Display for SerfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SerfError::TagsTooLarge(e) => e.fmt(f),
            SerfError::EventTooLarge { len, limit } => {
                write!(f, "user event of {len} bytes exceeds the limit of {limit}")
            }
            SerfError::Left => f.write_str("the node has left the cluster"),
            SerfError::BadConfig(why) => write!(f, "bad configuration: {why}"),
            SerfError::Unsupported(why) => write!(f, "not supported: {why}"),
            SerfError::QueryTooLarge { len, limit } => {
                write!(
                    f,
                    "query message of {len} bytes exceeds the limit of {limit}"
                )
            }
            SerfError::QueryAnswered => f.write_str("response already sent"),
            SerfError::QueryExpired => f.write_str("response is past the deadline"),
        }
    }
}

impl std::error::Error for SerfError {}

/// A member's Serf status (Go's `MemberStatus`; the numbers are its wire
/// values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Not known.
    None = 0,
    /// In the cluster.
    Alive = 1,
    /// Announced its leave; still reachable.
    Leaving = 2,
    /// Left on purpose.
    Left = 3,
    /// Stopped answering without leaving.
    Failed = 4,
}

/// A member of the Serf cluster (Go's `serf.Member`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Name.
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    /// Tags, from its metadata.
    pub tags: Tags,
    /// Status.
    pub status: MemberStatus,
    /// Versions `[protocol min, max, current, delegate min, max, current]`.
    pub vsn: [u8; 6],
}

/// What Serf tells the application (Go's `EventCh`; member events are not
/// coalesced: one per member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerfEvent {
    /// A member joined or came back.
    MemberJoin(Member),
    /// A member left on purpose.
    MemberLeave(Member),
    /// A member failed.
    MemberFailed(Member),
    /// A member's tags (or address) changed.
    MemberUpdate(Member),
    /// A failed or departed member was forgotten: reaped after its timeout,
    /// or pruned by a `force-leave -prune`.
    MemberReap(Member),
    /// A user event, delivered once per node.
    User(UserEvent),
    /// A query to answer ([`Serf::respond`]), delivered once per node;
    /// internal ones (`_serf_…`) are Serf's and never come here.
    Query(IncomingQuery),
}

/// What the application must do for Serf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerfOutput {
    /// An intent returned by [`Serf::leave`] or
    /// [`Serf::remove_failed_node`] left Serf's queue: sent its number of
    /// times, or dropped (Go closes the notify channel either way).
    IntentFinished {
        /// The intent.
        id: IntentId,
        /// Why it left.
        outcome: swim_core::BroadcastOutcome,
    },
    /// Announce new tags: hand them to
    /// [`Swim::update_meta`](swim_core::Swim::update_meta).
    UpdateMeta(Vec<u8>),
    /// Send these bytes to member `node` in one datagram: hand them to
    /// [`Swim::send_best_effort`](swim_core::Swim::send_best_effort) (Go
    /// Serf's `SendToAddress`, for acks, answers and relays).
    SendTo {
        /// The member.
        node: String,
        /// The message.
        payload: Vec<u8>,
    },
    /// Do this to the Swim's keyring, then answer with
    /// [`Serf::respond_key`] (a key-management query from the cluster).
    KeyQuery {
        /// The query to answer.
        query: IncomingQuery,
        /// What it asks.
        op: KeyOp,
    },
    /// Try to rejoin a failed member: hand the address to a join (Go's
    /// reconnect, `Memberlist.Join`), without waiting for it.
    Reconnect {
        /// The member.
        node: String,
        /// Its address.
        addr: SocketAddr,
    },
    /// This node lost a name conflict: stop it (Go's `Shutdown`, without
    /// leaving).
    Shutdown,
    /// Tell the application.
    Event(SerfEvent),
    /// News of one of our queries.
    Query(QueryProgress),
}

/// Whether this node is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerfState {
    /// Running.
    Alive,
    /// [`Serf::leave`] was called.
    Leaving,
    /// The leave finished ([`Serf::leave_completed`]).
    Left,
}

#[derive(Debug, Clone)]
struct MemberEntry {
    member: Member,
    /// Lamport time of the last intent that changed it (Go's `statusLTime`).
    status_ltime: LamportTime,
    /// When the Swim declared it gone (Go's `leaveTime`): reaped a timeout
    /// after.
    leave_time: Option<Instant>,
    /// A pruning leave intent erases it at this time.
    prune_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntentKind {
    Join,
    Leave,
}

/// An intent about a node not yet a member (Go's `nodeIntent`).
#[derive(Debug, Clone, Copy)]
struct Intent {
    kind: IntentKind,
    seen: Instant,
    ltime: LamportTime,
}

/// How long a join that ignores old events lasts, in join push/pulls.
#[derive(Debug, Clone, Copy)]
struct JoinIgnore {
    /// Join push/pulls merged since it began.
    seen: usize,
    /// How many the join made, once it finished, and until when to wait
    /// for them (a driver may have dropped one).
    expected: Option<(usize, Instant)>,
}

/// Serf's state for one node.
#[derive(Debug)]
pub struct Serf {
    config: SerfConfig,
    state: SerfState,
    clock: LamportClock,
    event_clock: LamportClock,
    query_clock: LamportClock,
    members: HashMap<String, MemberEntry>,
    /// Names of members that left, oldest first (Go's `leftMembers`).
    left_members: Vec<String>,
    recent_intents: HashMap<String, Intent>,
    /// Slot `t % len` holds the events seen at event time `t`.
    event_buffer: Vec<Option<EventsAt>>,
    /// Events before this time are ignored (Go's `eventMinTime`).
    event_min_time: LamportTime,
    queries: query::Queries,
    /// A join that ignores old events is under way (Go's
    /// `eventJoinIgnore`).
    join_ignore: Option<JoinIgnore>,
    /// Where member and user events wait to be merged.
    coalescer: Coalescer,
    /// The latest time an input brought (events emitted by a command
    /// without a time are coalesced as of then).
    now: Instant,
    /// Our running name-conflict query, and its tally.
    conflict: Option<internal::ConflictVote>,
    /// When a failed member may next be tried again.
    next_reconnect: Option<Instant>,
    /// This node's coordinate; `None` when disabled.
    coord_client: Option<CoordinateClient>,
    /// The last coordinate each member sent in an ack, ours included.
    coord_cache: HashMap<String, Coordinate>,
    /// splitmix64's state.
    rng: u64,
    /// What waits to be gossiped.
    broadcasts: broadcast::Broadcasts,
    outputs: VecDeque<SerfOutput>,
    /// What was refused from peers.
    stats: SerfStats,
}

impl Serf {
    /// Serf for a node; its Swim must run with
    /// [`SerfConfig::swim_config`] and a [`SerfDelegate`].
    pub fn new(config: SerfConfig) -> Result<Self, SerfError> {
        if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&config.protocol_version) {
            return Err(SerfError::BadConfig(
                "protocol_version must be between 2 and 5",
            ));
        }
        if config.event_buffer == 0 {
            return Err(SerfError::BadConfig("event_buffer must be positive"));
        }
        if config.query_buffer == 0 {
            return Err(SerfError::BadConfig("query_buffer must be positive"));
        }
        if config.user_event_size_limit > USER_EVENT_SIZE_MAX {
            return Err(SerfError::BadConfig("user_event_size_limit exceeds 9 KiB"));
        }
        encode_tags(&config.tags)?;
        if config.coordinate.dimensionality == 0 {
            return Err(SerfError::BadConfig(
                "coordinate dimensionality must be positive",
            ));
        }
        let coord_client = (!config.disable_coordinates)
            .then(|| CoordinateClient::new(config.coordinate.clone(), config.seed ^ 0x636f_6f72));
        let coord_cache = coord_client
            .iter()
            .map(|c| (config.name.clone(), c.coordinate().clone()))
            .collect();
        // Go starts every clock at 1, so that a join intent at the default
        // time 0 is never newer than a member's status.
        let started = || {
            let mut c = LamportClock::new();
            c.increment();
            c
        };
        Ok(Serf {
            broadcasts: broadcast::Broadcasts::new(&config),
            coord_client,
            coord_cache,
            event_buffer: vec![None; config.event_buffer],
            queries: query::Queries::new(config.query_buffer),
            next_reconnect: None,
            conflict: None,
            join_ignore: None,
            coalescer: Coalescer::new(
                (config.coalesce_period, config.quiescent_period),
                (config.user_coalesce_period, config.user_quiescent_period),
            ),
            now: Instant::ZERO,
            rng: config.seed,
            config,
            state: SerfState::Alive,
            clock: started(),
            event_clock: started(),
            query_clock: started(),
            members: HashMap::new(),
            left_members: Vec::new(),
            recent_intents: HashMap::new(),
            event_min_time: LamportTime(0),
            outputs: VecDeque::new(),
            stats: SerfStats::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &SerfConfig {
        &self.config
    }

    /// Whether the node is running or leaving.
    pub fn state(&self) -> SerfState {
        self.state
    }

    /// The member clock.
    pub fn clock(&self) -> LamportTime {
        self.clock.time()
    }

    /// The event clock.
    pub fn event_clock(&self) -> LamportTime {
        self.event_clock.time()
    }

    /// The query clock.
    pub fn query_clock(&self) -> LamportTime {
        self.query_clock.time()
    }

    /// What this node refused from its peers, and why.
    pub fn stats(&self) -> &SerfStats {
        &self.stats
    }

    /// Every member known, any status, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        let mut all: Vec<Member> = self.members.values().map(|e| e.member.clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// One member.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.get(name).map(|e| &e.member)
    }

    /// The next thing to do for Serf, if any.
    pub fn poll_output(&mut self) -> Option<SerfOutput> {
        self.outputs.pop_front()
    }

    /// Whether [`poll_output`](Self::poll_output) has something: a driver
    /// that lets the Swim call [`SerfDelegate`] on its own learns this way
    /// that handing out broadcasts finished an intent.
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work: the
    /// oldest buffered intent expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let intents = self
            .recent_intents
            .values()
            .map(|i| i.seen + self.config.recent_intent_timeout);
        intents
            .chain(self.queries.next_deadline())
            .chain(self.next_reap())
            .chain(self.next_reconnect)
            .chain(self.coalescer.poll_timeout())
            .min()
    }

    /// Forgets intents older than `recent_intent_timeout` (Go's reaper);
    /// closes queries past their timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.at(now);
        for event in self.coalescer.flush(now) {
            self.outputs.push_back(SerfOutput::Event(event));
        }
        let timeout = self.config.recent_intent_timeout;
        self.recent_intents.retain(|_, i| i.seen + timeout > now);
        self.expire_queries(now);
        self.reap(now);
        self.reconnect(now);
    }

    /// The next random number (splitmix64).
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Takes in one of the Swim's events. Besides membership changes, user
    /// messages and push/pull state (Serf's messages), a join that reached
    /// any seed makes us broadcast our join intent, as Go's `Serf.Join` does.
    pub fn handle_event(&mut self, now: Instant, event: &Event) {
        self.at(now);
        match event {
            Event::MemberJoined(m) => self.handle_node_join(m),
            Event::MemberUpdated(m) => self.handle_node_update(m),
            Event::MemberLeft(m) | Event::MemberFailed(m) => self.handle_node_leave(now, &m.name),
            Event::UserMessage { payload, .. } => {
                // Malformed messages are dropped, as Go drops them (it
                // logs); handle_message counts them.
                let _ = self.handle_message(now, payload);
            }
            Event::RemoteState { join, state } => {
                let _ = self.merge_remote_state(now, state, *join);
            }
            Event::JoinCompleted { joined, .. } => self.join_completed(now, *joined),
            Event::ProbeAcked { node, rtt, payload } => self.ping_completed(node, *rtt, payload),
            Event::NameConflict { existing, .. } if *existing.name == self.config.name => {
                self.resolve_name_conflict(now)
            }
            _ => {}
        }
    }

    /// Takes up where a snapshot left off (Go's `Create` with a snapshot):
    /// the clocks witness its times, and events and queries up to its
    /// clocks are old news.
    pub fn restore(&mut self, snapshot: &crate::snapshot::Snapshot) {
        self.clock.witness(snapshot.last_clock);
        self.event_clock.witness(snapshot.last_event_clock);
        self.query_clock.witness(snapshot.last_query_clock);
        self.event_min_time = LamportTime(snapshot.last_event_clock.0 + 1);
        self.queries.min_time = LamportTime(snapshot.last_query_clock.0 + 1);
    }

    /// The payload of this node's acks (Go's `pingDelegate.AckPayload`):
    /// our coordinate; `None` when coordinates are disabled.
    pub fn ack_payload(&self) -> Option<Vec<u8>> {
        let client = self.coord_client.as_ref()?;
        Some(client.coordinate().to_ping_payload())
    }

    /// A probe of `node` was acked after `rtt` with `payload` (Go's
    /// `NotifyPingComplete`): its coordinate updates ours and is cached.
    /// [`handle_event`](Self::handle_event) calls it for
    /// [`Event::ProbeAcked`]. An empty, unknown or refused payload is
    /// ignored, as Go ignores it (it logs), and the last two are counted
    /// ([`SerfRejection::CoordinateRefused`]).
    pub fn ping_completed(&mut self, node: &str, rtt: Duration, payload: &[u8]) {
        let Some(client) = self.coord_client.as_mut() else {
            return;
        };
        let coord = match Coordinate::from_ping_payload(payload) {
            Ok(Some(coord)) => coord,
            Ok(None) => return, // a node without coordinates
            Err(_) => {
                self.stats.count_rejected(SerfRejection::CoordinateRefused);
                return;
            }
        };
        if client.update(node, &coord, rtt).is_err() {
            self.stats.count_rejected(SerfRejection::CoordinateRefused);
            return;
        }
        let ours = client.coordinate().clone();
        self.coord_cache.insert(node.to_owned(), coord);
        self.coord_cache.insert(self.config.name.clone(), ours);
    }

    /// This node's network coordinate (Go's `GetCoordinate`); `None` when
    /// disabled.
    pub fn coordinate(&self) -> Option<&Coordinate> {
        self.coord_client.as_ref().map(CoordinateClient::coordinate)
    }

    /// Times our coordinate became invalid and was reset to the origin
    /// (Go's `coordinate_resets` stat); `None` when coordinates are
    /// disabled.
    pub fn coordinate_resets(&self) -> Option<u64> {
        self.coord_client.as_ref().map(CoordinateClient::resets)
    }

    /// The coordinate `node` last sent us (Go's `GetCachedCoordinate`).
    pub fn cached_coordinate(&self, node: &str) -> Option<&Coordinate> {
        self.coord_cache.get(node)
    }

    /// The estimated round-trip time from this node to `node`, from our
    /// coordinate and its cached one.
    pub fn estimated_rtt(&self, node: &str) -> Option<Duration> {
        self.coordinate()?
            .distance_to(self.cached_coordinate(node)?)
    }

    /// The join about to start ignores the events that happened before it
    /// (Go's `Join(ignoreOld = true)`): the push/pulls of the join raise
    /// the minimum event time to the seeds' event clocks, so their buffered
    /// events are not delivered here. Lasts until
    /// [`join_completed`](Self::join_completed) and the join's push/pulls
    /// were merged.
    pub fn ignore_old_events_on_join(&mut self) {
        self.join_ignore = Some(JoinIgnore {
            seen: 0,
            expected: None,
        });
    }

    /// A join finished having reached `joined` seeds: if any, our join
    /// intent is broadcast at the current member time (Go's `Serf.Join`).
    /// [`handle_event`](Self::handle_event) calls it for
    /// [`Event::JoinCompleted`]; a driver that keeps that event to itself
    /// calls it directly.
    pub fn join_completed(&mut self, now: Instant, joined: usize) {
        self.at(now);
        if let Some(ignore) = self.join_ignore.as_mut() {
            ignore.expected = Some((joined, now + self.config.broadcast_timeout));
            if ignore.seen >= joined {
                self.join_ignore = None;
            }
        }
        if joined > 0 {
            let ltime = self.clock.time();
            self.broadcast_join(now, ltime);
        }
    }

    /// Handles a Serf message received as a memberlist user message (Go's
    /// `NotifyMsg`); a new one is re-broadcast as it came. One that does
    /// not decode is the error; one a rule refuses changes nothing but
    /// [`stats`](Self::stats). Both are counted there.
    pub fn handle_message(&mut self, now: Instant, buf: &[u8]) -> Result<(), DecodeError> {
        self.at(now);
        let msg = Message::decode(buf).inspect_err(|e| self.stats.count_decode_error(e))?;
        if let Some(why) = refusal(&msg, buf.len()) {
            self.stats.count_rejected(why);
            return Ok(());
        }
        let rebroadcast = match msg {
            Message::Leave(m) => self.handle_leave_intent(now, &m),
            Message::Join(m) => self.handle_join_intent(now, &m),
            Message::UserEvent(m) => self.handle_user_event(m),
            Message::Query(m) => self.handle_query(now, m),
            Message::QueryResponse(m) => {
                self.handle_query_response(now, m);
                false
            }
            Message::Relay(m) => {
                self.handle_relay(now, m);
                false
            }
            // The other types never come as user messages: refused above.
            _ => false,
        };
        if rebroadcast {
            self.gossip(buf);
        }
        Ok(())
    }

    /// Serf's state for a push/pull (Go's `LocalState`).
    pub fn local_state(&self) -> Vec<u8> {
        let pp = PushPull {
            ltime: self.clock.time(),
            status_ltimes: self
                .members
                .iter()
                .map(|(name, e)| (name.clone(), e.status_ltime))
                .collect(),
            left_members: self.left_members.clone(),
            event_ltime: self.event_clock.time(),
            events: self.event_buffer.clone(),
            query_ltime: self.query_clock.time(),
        };
        Message::PushPull(pp).to_bytes()
    }

    /// Merges a peer's push/pull state (Go's `MergeRemoteState`): its clocks
    /// are witnessed, its left members and status times taken as intents,
    /// its buffered events as received events (each still delivered once).
    /// A state with a Lamport time past [`LAMPORT_TIME_LIMIT`] is refused
    /// whole; each intent and event in it is refused, or not, as one sent
    /// alone would be.
    pub fn merge_remote_state(
        &mut self,
        now: Instant,
        buf: &[u8],
        join: bool,
    ) -> Result<(), DecodeError> {
        self.at(now);
        let pp = match Message::decode(buf) {
            Ok(Message::PushPull(pp)) => Ok(pp),
            Ok(other) => Err(DecodeError::UnknownType(other.message_type() as u8)),
            Err(e) => Err(e),
        }
        .inspect_err(|e| self.stats.count_decode_error(e))?;
        if push_pull_times(&pp).any(|t| t.0 >= LAMPORT_TIME_LIMIT) {
            self.stats.count_rejected(SerfRejection::ClockOutOfRange);
            return Ok(());
        }
        if self
            .join_ignore
            .is_some_and(|i| i.expected.is_some_and(|(_, until)| until < now))
        {
            self.join_ignore = None; // a push/pull of the join never came
        }
        if let Some(ignore) = self.join_ignore.as_mut().filter(|_| join) {
            // Go's eventJoinIgnore: the seed's events are old news.
            if pp.event_ltime > self.event_min_time {
                self.event_min_time = pp.event_ltime;
            }
            ignore.seen += 1;
            if ignore.expected.is_some_and(|(n, _)| ignore.seen >= n) {
                self.join_ignore = None;
            }
        }
        // No message with the sender's current times was sent yet.
        for (clock, t) in [
            (&mut self.clock, pp.ltime),
            (&mut self.event_clock, pp.event_ltime),
            (&mut self.query_clock, pp.query_ltime),
        ] {
            if t.0 > 0 {
                clock.witness(LamportTime(t.0 - 1));
            }
        }
        // Left members first, one past their status time: the leave was
        // accepted after it.
        for name in &pp.left_members {
            let ltime = pp.status_ltimes.get(name).copied().unwrap_or_default();
            let leave = Leave {
                ltime: LamportTime(ltime.0.saturating_add(1)),
                node: name.clone(),
                prune: false,
            };
            self.handle_leave_intent(now, &leave);
        }
        for (name, &ltime) in &pp.status_ltimes {
            if !pp.left_members.contains(name) {
                let join = Join {
                    ltime,
                    node: name.clone(),
                };
                self.handle_join_intent(now, &join);
            }
        }
        for at in pp.events.into_iter().flatten() {
            for e in at.events {
                self.handle_user_event(UserEvent {
                    ltime: at.ltime,
                    name: e.name,
                    payload: e.payload,
                    coalesce: false,
                });
            }
        }
        Ok(())
    }

    /// Sends a user event to every node (Go's `Serf.UserEvent`): delivered
    /// here too, once, like everywhere else.
    pub fn user_event(
        &mut self,
        name: &str,
        payload: &[u8],
        coalesce: bool,
    ) -> Result<(), SerfError> {
        if self.state != SerfState::Alive {
            return Err(SerfError::Left);
        }
        let limit = self.config.user_event_size_limit;
        let len = name.len() + payload.len();
        if len > limit {
            return Err(SerfError::EventTooLarge { len, limit });
        }
        let event = UserEvent {
            ltime: self.event_clock.time(),
            name: name.to_owned(),
            payload: Some(payload.to_vec()),
            coalesce,
        };
        let raw = Message::UserEvent(event.clone()).to_bytes();
        if raw.len() > limit {
            return Err(SerfError::EventTooLarge {
                len: raw.len(),
                limit,
            });
        }
        self.event_clock.increment();
        self.handle_user_event(event);
        self.gossip(&raw);
        Ok(())
    }

    /// Replaces our tags (Go's `SetTags`); the Swim must announce the new
    /// metadata ([`SerfOutput::UpdateMeta`]).
    pub fn set_tags(&mut self, tags: Tags) -> Result<(), SerfError> {
        let meta = encode_tags(&tags)?;
        self.config.tags = tags;
        self.outputs.push_back(SerfOutput::UpdateMeta(meta));
        Ok(())
    }

    /// Starts a graceful leave (Go's `Serf.Leave`, its first half): our
    /// leave intent is gossiped if any other member is alive, and its id
    /// returned. The application then waits for it to go out
    /// ([`SerfOutput::IntentFinished`]) and calls
    /// [`Swim::leave`](swim_core::Swim::leave).
    pub fn leave(&mut self, now: Instant) -> Result<Option<IntentId>, SerfError> {
        self.at(now);
        if self.state != SerfState::Alive {
            return Err(SerfError::Left);
        }
        self.state = SerfState::Leaving;
        Ok(self.announce_leave(now, self.config.name.clone(), false))
    }

    /// The leave finished: the intent was gossiped and the Swim left (Go's
    /// `SerfLeft`).
    pub fn leave_completed(&mut self) {
        self.state = SerfState::Left;
    }

    fn broadcast_join(&mut self, now: Instant, ltime: LamportTime) {
        let msg = Join {
            ltime,
            node: self.config.name.clone(),
        };
        self.clock.witness(ltime);
        self.handle_join_intent(now, &msg);
        self.gossip(&Message::Join(msg).to_bytes());
    }

    /// Goes out now, or waits in the coalescer.
    fn emit(&mut self, event: SerfEvent) {
        if let Some(event) = self.coalescer.push(self.now, event) {
            self.outputs.push_back(SerfOutput::Event(event));
        }
    }

    /// Time moves on (never back).
    fn at(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Go's `upsertIntent`: true if the intent is new (newer).
    fn upsert_intent(
        &mut self,
        now: Instant,
        node: &str,
        kind: IntentKind,
        ltime: LamportTime,
    ) -> bool {
        match self.recent_intents.get(node) {
            Some(i) if ltime <= i.ltime => false,
            _ => {
                let intent = Intent {
                    kind,
                    seen: now,
                    ltime,
                };
                self.recent_intents.insert(node.to_owned(), intent);
                true
            }
        }
    }

    fn recent_intent(&self, node: &str, kind: IntentKind) -> Option<LamportTime> {
        self.recent_intents
            .get(node)
            .filter(|i| i.kind == kind)
            .map(|i| i.ltime)
    }

    /// Whether an intent about `node` may be taken: it is a member, or has
    /// an intent already, or the table has room (counted if not).
    fn intent_room(&mut self, node: &str) -> bool {
        let room = self.members.contains_key(node)
            || self.recent_intents.contains_key(node)
            || self.recent_intents.len() < RECENT_INTENTS_MAX;
        if !room {
            self.stats.count_rejected(SerfRejection::IntentTableFull);
        }
        room
    }

    /// Go's `handleNodeLeaveIntent`: true to re-broadcast.
    fn handle_leave_intent(&mut self, now: Instant, msg: &Leave) -> bool {
        if !self.intent_room(&msg.node) {
            return false;
        }
        self.clock.witness(msg.ltime);
        let Some(entry) = self.members.get_mut(&msg.node) else {
            return self.upsert_intent(now, &msg.node, IntentKind::Leave, msg.ltime);
        };
        if msg.ltime <= entry.status_ltime {
            return false;
        }
        if msg.node == self.config.name && self.state == SerfState::Alive {
            // Someone says we are leaving, and we are not: refute.
            let ltime = self.clock.time();
            self.broadcast_join(now, ltime);
            return false;
        }
        // Go updates the time even when the status stays, so that repeats
        // are not re-broadcast forever (consul#8179).
        entry.status_ltime = msg.ltime;
        let rebroadcast = match entry.member.status {
            MemberStatus::Alive => {
                entry.member.status = MemberStatus::Leaving;
                true
            }
            MemberStatus::Failed => {
                entry.member.status = MemberStatus::Left;
                let member = entry.member.clone();
                self.left_members.push(member.name.clone());
                self.emit(SerfEvent::MemberLeave(member));
                true
            }
            MemberStatus::Leaving | MemberStatus::Left => true,
            MemberStatus::None => false,
        };
        if rebroadcast && msg.prune {
            self.prune(now, &msg.node);
        }
        rebroadcast
    }

    /// Go's `handleNodeJoinIntent`: true to re-broadcast.
    fn handle_join_intent(&mut self, now: Instant, msg: &Join) -> bool {
        if !self.intent_room(&msg.node) {
            return false;
        }
        self.clock.witness(msg.ltime);
        let Some(entry) = self.members.get_mut(&msg.node) else {
            return self.upsert_intent(now, &msg.node, IntentKind::Join, msg.ltime);
        };
        if msg.ltime <= entry.status_ltime {
            return false;
        }
        entry.status_ltime = msg.ltime;
        if entry.member.status == MemberStatus::Leaving {
            entry.member.status = MemberStatus::Alive;
        }
        true
    }

    /// Go's `handleUserEvent`: true to re-broadcast (it was new, and was
    /// delivered).
    fn handle_user_event(&mut self, msg: UserEvent) -> bool {
        // Go's sender refuses more (UserEventSizeLimit); a push/pull's
        // events come without their encoding, so this is the check both
        // paths share.
        let size = msg.name.len() + msg.payload.as_ref().map_or(0, Vec::len);
        if size > USER_EVENT_SIZE_MAX {
            self.stats.count_rejected(SerfRejection::EventTooLarge);
            return false;
        }
        self.event_clock.witness(msg.ltime);
        let len = self.event_buffer.len() as u64;
        let now = self.event_clock.time().0;
        // Before the minimum, or older than the buffer remembers.
        if msg.ltime < self.event_min_time || (now > len && msg.ltime.0 < now - len) {
            self.stats.count_rejected(SerfRejection::EventTooOld);
            return false;
        }
        let record = EventRecord {
            name: msg.name.clone(),
            payload: msg.payload.clone(),
        };
        let slot = &mut self.event_buffer[(msg.ltime.0 % len) as usize];
        match slot {
            Some(at) if at.ltime == msg.ltime => {
                // Go compares payloads with bytes.Compare: nil equals empty.
                let same = |e: &EventRecord| {
                    e.name == record.name
                        && e.payload.as_deref().unwrap_or_default()
                            == record.payload.as_deref().unwrap_or_default()
                };
                if at.events.iter().any(same) {
                    return false;
                }
                if at.events.len() >= EVENTS_PER_LTIME_MAX {
                    self.stats.count_rejected(SerfRejection::EventTimeFull);
                    return false;
                }
                at.events.push(record);
            }
            _ => {
                *slot = Some(EventsAt {
                    ltime: msg.ltime,
                    events: vec![record],
                })
            }
        }
        self.emit(SerfEvent::User(msg));
        true
    }

    /// Go's `handleNodeJoin`: a new member takes its status time (and a
    /// leaving status) from a buffered intent; a known one is alive again.
    fn handle_node_join(&mut self, m: &swim_core::Member) {
        let name = m.name.to_string();
        let member = Member {
            name: name.clone(),
            addr: m.addr,
            tags: decode_tags(&m.meta).unwrap_or_default(),
            status: MemberStatus::Alive,
            vsn: m.vsn,
        };
        let member = match self.members.get_mut(&name) {
            Some(entry) => {
                if matches!(
                    entry.member.status,
                    MemberStatus::Failed | MemberStatus::Left
                ) {
                    self.left_members.retain(|n| *n != name);
                }
                entry.leave_time = None;
                entry.prune_at = None;
                entry.member = member;
                entry.member.clone()
            }
            None => {
                let mut entry = MemberEntry {
                    member,
                    status_ltime: LamportTime(0),
                    leave_time: None,
                    prune_at: None,
                };
                if let Some(t) = self.recent_intent(&name, IntentKind::Join) {
                    entry.status_ltime = t;
                }
                if let Some(t) = self.recent_intent(&name, IntentKind::Leave) {
                    entry.member.status = MemberStatus::Leaving;
                    entry.status_ltime = t;
                }
                let member = entry.member.clone();
                self.members.insert(name, entry);
                member
            }
        };
        self.emit(SerfEvent::MemberJoin(member));
    }

    /// Go's `handleNodeUpdate`.
    fn handle_node_update(&mut self, m: &swim_core::Member) {
        let Some(entry) = self.members.get_mut(&*m.name) else {
            return;
        };
        entry.member.addr = m.addr;
        entry.member.tags = decode_tags(&m.meta).unwrap_or_default();
        entry.member.vsn = m.vsn;
        let member = entry.member.clone();
        self.emit(SerfEvent::MemberUpdate(member));
    }

    /// Go's `handleNodeLeave`: memberlist says the node is gone; whether it
    /// left or failed is what Serf heard of its intent.
    fn handle_node_leave(&mut self, now: Instant, name: &str) {
        let Some(entry) = self.members.get_mut(name) else {
            return;
        };
        entry.leave_time = Some(now);
        let event = match entry.member.status {
            MemberStatus::Leaving => {
                entry.member.status = MemberStatus::Left;
                self.left_members.push(name.to_owned());
                SerfEvent::MemberLeave
            }
            MemberStatus::Alive => {
                entry.member.status = MemberStatus::Failed;
                if self.next_reconnect.is_none() {
                    self.next_reconnect = Some(now + self.config.reconnect_interval);
                }
                SerfEvent::MemberFailed
            }
            _ => return,
        };
        let member = entry.member.clone();
        self.emit(event(member));
    }
}

/// Why a decoded user message is refused before it touches any state, if
/// it is: a type that never comes as one, a Lamport time a clock must not
/// witness, a user event no Go node sends (`len`: its encoding's size).
fn refusal(msg: &Message, len: usize) -> Option<SerfRejection> {
    let ltime = match msg {
        Message::Leave(m) => m.ltime,
        Message::Join(m) => m.ltime,
        Message::UserEvent(_) if len > USER_EVENT_SIZE_MAX => {
            return Some(SerfRejection::EventTooLarge)
        }
        Message::UserEvent(m) => m.ltime,
        Message::Query(m) => m.ltime,
        Message::QueryResponse(_) | Message::Relay(_) => return None,
        Message::PushPull(_)
        | Message::ConflictResponse(_)
        | Message::KeyRequest(_)
        | Message::KeyResponse(_) => return Some(SerfRejection::UnexpectedType),
    };
    (ltime.0 >= LAMPORT_TIME_LIMIT).then_some(SerfRejection::ClockOutOfRange)
}

/// Every Lamport time merging `pp` would witness: its clocks, its status
/// times (a left member's one past it), its events'.
fn push_pull_times(pp: &PushPull) -> impl Iterator<Item = LamportTime> + '_ {
    let left = pp.left_members.iter().map(|name| {
        let t = pp.status_ltimes.get(name).copied().unwrap_or_default();
        LamportTime(t.0.saturating_add(1))
    });
    [pp.ltime, pp.event_ltime, pp.query_ltime]
        .into_iter()
        .chain(pp.status_ltimes.values().copied())
        .chain(left)
        .chain(pp.events.iter().flatten().map(|at| at.ltime))
}

/// The [`Delegate`](swim_core::Delegate) a Serf node's Swim runs with: its
/// push/pulls carry Serf's state, its packets Serf's broadcasts. Shared
/// with the application, which feeds the same [`Serf`] the Swim's events.
#[derive(Debug, Clone)]
pub struct SerfDelegate(pub Arc<Mutex<Serf>>);

impl swim_core::Delegate for SerfDelegate {
    fn has_broadcasts(&self) -> bool {
        let serf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        serf.has_broadcasts()
    }

    fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let mut serf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        serf.broadcasts(overhead, limit)
    }

    fn local_state(&mut self, _join: bool) -> Option<Vec<u8>> {
        let serf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Some(serf.local_state())
    }

    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        let serf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        serf.ack_payload()
    }
}
