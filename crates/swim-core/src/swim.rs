//! [`Swim`]: memberlist's protocol as a sans-IO state machine.

use alloc::collections::{BinaryHeap, VecDeque};
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::{Ordering, Reverse};
use core::net::SocketAddr;
use core::time::Duration;

use crate::awareness::Awareness;
use crate::broadcast::{retransmit_limit, BroadcastQueue, Parts, Token};
use crate::config::{Config, ConfigError, META_MAX_SIZE};
use crate::event::{
    AllowAll, Event, ExchangeError, Member, MemberChange, MemberState, Policy, WireIp,
};
use crate::members::{AliveClaim, AliveMessages, Claim, Ctx, Effect, Members};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::time::{nanos, Instant};
use crate::wire::{
    encode_compound, for_each_batch, Accusation, Ack, Envelope, ErrorResponse, IndirectPing,
    Message, Nack, NodeState, Ping, PushNodeState, PushPull, SecretKey, StreamRole, Transport,
    WireError, COMPOUND_OVERHEAD, COMPOUND_PART_OVERHEAD, MAX_COMPOUND_PARTS,
};

/// Identifies a stream exchange the core asked for ([`Output::Connect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExchangeId(pub u64);

/// Identifies an incoming stream, chosen by the caller
/// ([`Swim::handle_stream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// Something the caller must do, from [`Swim::poll_output`].
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
    /// in the [`Reply`](StreamRole::Reply) role; then report with
    /// [`Swim::handle_exchange`]. Give up at `deadline`.
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
        /// The stream, as named in [`Swim::handle_stream`].
        stream: StreamId,
        /// The reply, or `None` to close without one.
        data: Option<Vec<u8>>,
    },
    /// Tell the application.
    Event(Event),
}

/// Why a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// No member of that name is known (or it has no usable address).
    UnknownMember,
    /// Metadata over [`META_MAX_SIZE`] bytes.
    MetaTooLarge(usize),
    /// A user message or broadcast that is empty or does not fit a packet.
    BadPayload(&'static str),
    /// A key operation failed.
    Key(WireError),
    /// The node has left; it sends nothing more.
    Left,
    /// Our incarnation is at its maximum (a peer accused us at `u32::MAX`),
    /// so no newer announcement of ours can exist.
    IncarnationExhausted,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CommandError::UnknownMember => f.write_str("unknown member"),
            CommandError::MetaTooLarge(n) => {
                write!(f, "metadata of {n} bytes exceeds {META_MAX_SIZE}")
            }
            CommandError::BadPayload(why) => write!(f, "bad payload: {why}"),
            CommandError::Key(e) => write!(f, "key operation failed: {e}"),
            CommandError::Left => f.write_str("the node has left the cluster"),
            CommandError::IncarnationExhausted => {
                f.write_str("the local incarnation is exhausted; restart under a new name")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CommandError {}

/// Token of our own departure broadcast.
const LEAVE_TOKEN: Token = 1;

/// Capacity kept by scratch buffers between calls; a burst beyond it is
/// given back afterwards. Small: a simulator holds thousands of nodes, and
/// 256 outputs of 160 bytes kept by each of 10,000 came to 400 MB.
const SCRATCH_KEEP: usize = 32;

/// Most ack handlers waiting at once. Each indirect-ping request a peer
/// sends holds one for the probe timeout, so this bounds what a flood of
/// requests can make us hold (a healthy node has a handful).
const MAX_PENDING_ACKS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Timer {
    ProbeTick,
    /// The direct ack did not come within the probe timeout.
    ProbeIndirect(u32),
    /// The probe's (awareness-scaled) deadline.
    ProbeDeadline(u32),
    /// A relay or user-ping ack handler expires.
    AckExpiry(u32),
    Suspicion(Arc<str>),
    /// The random initial stagger of periodic push/pulls is over; the first waits a whole
    /// interval more (as Go's `pushPullTrigger` does).
    PushPullStaggered,
    PushPullTick,
    LeaveTimeout,
    ExchangeDeadline(ExchangeId),
}

#[derive(Debug, Clone)]
struct Scheduled {
    at: Instant,
    seq: u64,
    timer: Timer,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    None,
    Pending,
    Succeeded,
    Failed,
}

/// The one probe in flight (Go probes one member at a time).
#[derive(Debug, Clone)]
struct Probe {
    seq: u32,
    target: Arc<str>,
    /// The target's incarnation when the probe began (what a suspicion names).
    incarnation: u32,
    sent: Instant,
    /// When the probe fails without an ack (scaled by the health score).
    deadline: Instant,
    expected_nacks: u32,
    nacks: u32,
    fallback: Fallback,
    /// The deadline passed while the TCP fallback was still running.
    expired: bool,
}

#[derive(Debug, Clone)]
enum AckHandler {
    Probe,
    /// We ping for another node; relay its ack, or nack on expiry.
    Relay {
        origin_seq: u32,
        origin: SocketAddr,
        nack: bool,
    },
    /// [`Swim::ping`] by the application.
    UserPing {
        node: Arc<str>,
        sent: Instant,
    },
}

#[derive(Debug, Clone)]
enum Exchange {
    PushPull { join: Option<u64>, to: SocketAddr },
    TcpPing { seq: u32 },
    Reliable,
}

#[derive(Debug, Clone, Default)]
struct JoinState {
    pending: usize,
    joined: usize,
    failed: Vec<(SocketAddr, ExchangeError)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    Staying,
    Leaving,
    Left,
}

/// HashiCorp memberlist's protocol — SWIM with Lifeguard, gossip and
/// push/pull — as a deterministic state machine.
///
/// It never reads a clock, opens a socket or spawns a thread. Feed it what
/// happens ([`handle_packet`](Self::handle_packet),
/// [`handle_timeout`](Self::handle_timeout),
/// [`handle_stream`](Self::handle_stream),
/// [`handle_exchange`](Self::handle_exchange) and the commands), then carry
/// out what [`poll_output`](Self::poll_output) asks and call back at
/// [`poll_timeout`](Self::poll_timeout). The same configuration, seed and
/// inputs give the same outputs, byte for byte.
///
/// See the [crate example](crate#example): two nodes wired by hand.
#[derive(Debug)]
pub struct Swim<P: Policy = AllowAll> {
    config: Config,
    envelope: Envelope,
    policy: P,
    rng: Rng,
    members: Members,
    local_meta: Arc<[u8]>,
    local_state: Vec<u8>,
    ack_payload: Vec<u8>,
    awareness: Awareness,
    leave: Leave,
    probe_cursor: usize,
    probe: Option<Probe>,
    probe_tick_pending: bool,
    seq_no: u32,
    ack_handlers: hashbrown::HashMap<u32, AckHandler, foldhash::fast::FixedState>,
    broadcasts: BroadcastQueue,
    user_broadcasts: BroadcastQueue,
    timers: BinaryHeap<Reverse<Scheduled>>,
    /// The next gossip tick. It is not in `timers`: a tick with nothing to
    /// send does nothing, so it is only a deadline while broadcasts wait,
    /// and an idle node is not woken every gossip interval.
    gossip_next: Option<Instant>,
    timer_seq: u64,
    exchanges: hashbrown::HashMap<ExchangeId, Exchange, foldhash::fast::FixedState>,
    next_exchange: u64,
    push_pulls_in_flight: usize,
    joins: hashbrown::HashMap<u64, JoinState, foldhash::fast::FixedState>,
    next_join: u64,
    outputs: VecDeque<Output>,
    effects: Vec<Effect>,
    finished: Vec<Token>,
    /// Where an alive message is encoded to learn its length.
    scratch: Vec<u8>,
    /// Hashes of recently relayed user payloads, oldest first, and as a set.
    relayed: VecDeque<u64>,
    relayed_set: hashbrown::HashSet<u64, foldhash::fast::FixedState>,
    stats: Stats,
}

fn fixed<K, V>() -> hashbrown::HashMap<K, V, foldhash::fast::FixedState> {
    hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x5157_494d))
}

impl Swim<AllowAll> {
    /// A node that accepts every member and merge. `seed` drives all its
    /// randomness; `now` is the caller's current time.
    pub fn new(config: Config, seed: u64, now: Instant) -> Result<Self, ConfigError> {
        Swim::with_policy(config, AllowAll, seed, now)
    }
}

impl<P: Policy> Swim<P> {
    /// A node whose alive filter and merge veto are `policy`.
    pub fn with_policy(
        config: Config,
        policy: P,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let envelope = config.envelope().map_err(|_| ConfigError {
            field: "label",
            reason: "must be at most 255 bytes",
        })?;
        let name = config.shared_names.share(&config.name);
        let mut swim = Swim {
            members: Members::new(name, config.max_members, config.record_member_changes),
            awareness: Awareness::new(config.awareness_max_multiplier),
            broadcasts: BroadcastQueue::new(config.max_broadcast_queue),
            user_broadcasts: BroadcastQueue::new(config.max_broadcast_queue),
            envelope,
            policy,
            rng: Rng::new(seed),
            local_meta: Arc::from(config.meta.as_slice()),
            local_state: Vec::new(),
            ack_payload: Vec::new(),
            leave: Leave::Staying,
            probe_cursor: 0,
            probe: None,
            probe_tick_pending: false,
            seq_no: 0,
            ack_handlers: fixed(),
            timers: BinaryHeap::new(),
            gossip_next: None,
            timer_seq: 0,
            exchanges: fixed(),
            next_exchange: 0,
            push_pulls_in_flight: 0,
            joins: fixed(),
            next_join: 0,
            outputs: VecDeque::new(),
            effects: Vec::new(),
            scratch: Vec::new(),
            finished: Vec::new(),
            relayed: VecDeque::new(),
            relayed_set: hashbrown::HashSet::with_hasher(foldhash::fast::FixedState::with_seed(1)),
            stats: Stats::default(),
            config,
        };
        // Our own first announcement (Go's setAlive).
        let (addr, meta, vsn) = (
            swim.config.advertise,
            swim.local_meta.clone(),
            swim.config.vsn(),
        );
        swim.with_ctx(now, |m, ctx| m.announce_local(addr, &meta, vsn, ctx));
        // Periodic work starts at a random offset, as Go staggers its tickers.
        let stagger = |rng: &mut Rng, d: Duration| Duration::from_nanos(rng.below_nanos(nanos(d)));
        let probe = stagger(&mut swim.rng, swim.config.probe_interval);
        swim.schedule(now + probe, Timer::ProbeTick);
        if !swim.config.gossip_interval.is_zero() {
            let gossip = stagger(&mut swim.rng, swim.config.gossip_interval);
            swim.gossip_next = Some(now + gossip);
        }
        if !swim.config.push_pull_interval.is_zero() {
            let pp = stagger(&mut swim.rng, swim.config.push_pull_interval);
            swim.schedule(now + pp, Timer::PushPullStaggered);
        }
        Ok(swim)
    }

    // ================================================================ queries

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The application policy.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    /// Members believed alive, ourselves included.
    pub fn members(&self) -> Vec<Member> {
        self.members
            .records()
            .iter()
            .filter(|r| r.state == MemberState::Alive)
            .map(|r| r.to_member())
            .collect()
    }

    /// Every member in the table, in any state, ourselves included.
    pub fn all_members(&self) -> Vec<Member> {
        self.members
            .records()
            .iter()
            .map(|r| r.to_member())
            .collect()
    }

    /// One member by name.
    pub fn member(&self, name: &str) -> Option<Member> {
        self.members.get(name).map(|r| r.to_member())
    }

    /// How many members are alive, ourselves included.
    pub fn num_alive(&self) -> usize {
        self.members.num_alive()
    }

    /// Members in the table (any state).
    pub fn num_members(&self) -> usize {
        self.members.len()
    }

    /// This node as the cluster sees it.
    pub fn local_member(&self) -> Member {
        self.members
            .local()
            .map(|r| r.to_member())
            .expect("the local node is always in the table")
    }

    /// Lifeguard's local health score (0 is healthy).
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// The protocol version this node speaks.
    pub fn protocol_version(&self) -> u8 {
        self.config.protocol_version
    }

    /// Membership broadcasts waiting to be gossiped.
    pub fn broadcast_queue_len(&self) -> usize {
        self.broadcasts.len()
    }

    /// User broadcasts waiting to be gossiped.
    pub fn user_broadcast_queue_len(&self) -> usize {
        self.user_broadcasts.len()
    }

    /// Bytes of broadcasts (membership and user) waiting to be gossiped.
    pub fn broadcast_queue_bytes(&self) -> usize {
        self.broadcasts.bytes() + self.user_broadcasts.bytes()
    }

    /// Every change to the member table since the last call, when
    /// [`Config::record_member_changes`] is on (empty otherwise).
    pub fn drain_member_changes(&mut self) -> impl Iterator<Item = MemberChange> {
        self.members.take_changes().into_iter()
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The wire layers in use (the adapter's stream framers take their
    /// [`Limits`](crate::wire::Limits) from here).
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Whether [`leave`](Self::leave) was called.
    pub fn is_leaving(&self) -> bool {
        self.leave != Leave::Staying
    }

    // ================================================================ outputs

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        let out = self.outputs.pop_front();
        if out.is_none() && self.outputs.capacity() > SCRATCH_KEEP {
            // A burst (a big merge) must not pin its peak size.
            self.outputs.shrink_to(SCRATCH_KEEP);
        }
        out
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse(s)| s.at);
        match self.gossip_due_at() {
            Some(g) => Some(timer.map_or(g, |t| t.min(g))),
            None => timer,
        }
    }

    // ================================================================ time

    /// Runs everything due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        loop {
            let timer = self
                .timers
                .peek()
                .map(|Reverse(s)| s.at)
                .filter(|&t| t <= now);
            let gossip = self.gossip_next.filter(|&g| g <= now);
            match (timer, gossip) {
                (_, Some(g)) if timer.map_or(true, |t| g < t) => {
                    if self.gossip_due_at().is_some() {
                        self.gossip_next = Some(now + self.config.gossip_interval);
                        self.gossip(now);
                    } else {
                        self.skip_idle_gossip(timer.unwrap_or(now));
                    }
                }
                (Some(_), _) => {
                    let Some(Reverse(s)) = self.timers.pop() else {
                        break;
                    };
                    self.fire(now, s.timer);
                }
                _ => break,
            }
        }
        self.drop_stale_timers();
    }

    /// When the next gossip tick must run: only while broadcasts wait.
    fn gossip_due_at(&self) -> Option<Instant> {
        let waiting = !self.broadcasts.is_empty() || !self.user_broadcasts.is_empty();
        self.gossip_next
            .filter(|_| waiting && self.leave != Leave::Left)
    }

    /// Moves the gossip tick along its grid to the first point after
    /// `until`, if nothing waits to be sent: those ticks would have done
    /// nothing. Inputs call this first, so an update they queue leaves at
    /// the next tick, as with a ticker that never stopped.
    fn skip_idle_gossip(&mut self, until: Instant) {
        let Some(next) = self.gossip_next else { return };
        if next > until || self.gossip_due_at().is_some() {
            return;
        }
        let interval = nanos(self.config.gossip_interval).max(1);
        let steps = (until.as_nanos() - next.as_nanos()) / interval + 1;
        self.gossip_next = Some(Instant::from_nanos(
            next.as_nanos()
                .saturating_add(steps.saturating_mul(interval)),
        ));
    }

    /// Drops timers of finished probes, relays and exchanges from the top of
    /// the schedule, so [`poll_timeout`](Self::poll_timeout) does not wake
    /// the caller for nothing.
    fn drop_stale_timers(&mut self) {
        while let Some(Reverse(s)) = self.timers.peek() {
            let stale = match &s.timer {
                Timer::ProbeIndirect(seq) | Timer::ProbeDeadline(seq) => {
                    self.probe.as_ref().map_or(true, |p| p.seq != *seq)
                }
                Timer::AckExpiry(seq) => !self.ack_handlers.contains_key(seq),
                Timer::ExchangeDeadline(id) => !self.exchanges.contains_key(id),
                _ => false,
            };
            if !stale {
                break;
            }
            self.timers.pop();
        }
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse(Scheduled {
            at,
            seq: self.timer_seq,
            timer,
        }));
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::ProbeTick => {
                self.schedule(now + self.config.probe_interval, Timer::ProbeTick);
                if self.probe.is_some() {
                    // Go's ticker keeps one tick for a busy receiver.
                    self.probe_tick_pending = true;
                } else {
                    self.start_probe(now);
                }
            }
            Timer::ProbeIndirect(seq) => self.probe_indirect(now, seq),
            Timer::ProbeDeadline(seq) => self.probe_deadline(now, seq),
            Timer::AckExpiry(seq) => self.ack_expired(seq),
            Timer::Suspicion(node) => self.with_ctx(now, |m, ctx| m.suspicion_expired(&node, ctx)),
            Timer::PushPullStaggered | Timer::PushPullTick => {
                let n = self.members.len();
                let interval = push_pull_scale(self.config.push_pull_interval, n);
                self.schedule(now + interval, Timer::PushPullTick);
                if timer == Timer::PushPullTick {
                    self.periodic_push_pull(now);
                }
            }
            Timer::LeaveTimeout => {
                if self.leave == Leave::Leaving {
                    self.complete_leave(true);
                }
            }
            Timer::ExchangeDeadline(id) => {
                if self.exchanges.contains_key(&id) {
                    self.exchange_failed(now, id, ExchangeError::Timeout);
                }
            }
        }
    }

    // ================================================================ rules glue

    /// Runs a member-table rule and acts on its effects.
    fn with_ctx<R>(&mut self, now: Instant, f: impl FnOnce(&mut Members, &mut Ctx<'_>) -> R) -> R {
        let mut effects = core::mem::take(&mut self.effects);
        let r = {
            let mut ctx = Ctx {
                now,
                config: &self.config,
                leaving: self.leave != Leave::Staying,
                rng: &mut self.rng,
                policy: &mut self.policy,
                effects: &mut effects,
            };
            f(&mut self.members, &mut ctx)
        };
        for e in effects.drain(..) {
            self.apply(now, e);
        }
        effects.shrink_to(SCRATCH_KEEP);
        self.effects = effects;
        r
    }

    fn apply(&mut self, now: Instant, effect: Effect) {
        match effect {
            Effect::GossipAlive { node, at } => {
                // Derived from the record whenever it is sent: every later change to the
                // record queues a broadcast under the same key, which replaces this one.
                if let Some(at) = self.members.position_near(&node, at) {
                    self.scratch.clear();
                    let len = self.members.encode_alive(at, &mut self.scratch);
                    self.broadcasts
                        .push_derived(&node, len, at, &mut self.finished);
                    self.check_finished();
                }
            }
            Effect::GossipSuspect {
                node,
                incarnation,
                from,
            } => {
                let m = Message::Suspect(Accusation {
                    incarnation,
                    node: &node,
                    from: &from,
                });
                self.queue_broadcast(&node, encode_packet(&m), None);
            }
            Effect::GossipDead {
                node,
                incarnation,
                from,
            } => {
                let m = Message::Dead(Accusation {
                    incarnation,
                    node: &node,
                    from: &from,
                });
                let own_leave =
                    *node == **self.members.local_name() && self.leave != Leave::Staying;
                self.queue_broadcast(&node, encode_packet(&m), own_leave.then_some(LEAVE_TOKEN));
            }
            Effect::Refuted => {
                self.stats.refutations += 1;
                self.awareness.apply(1);
            }
            Effect::SuspicionDeadline { node, deadline } => {
                self.schedule(deadline.max(now), Timer::Suspicion(node));
            }
            Effect::Event(e) => {
                match &e {
                    Event::MemberFailed(_) => self.stats.members_failed += 1,
                    Event::NameConflict { .. } => self.stats.name_conflicts += 1,
                    _ => {}
                }
                self.outputs.push_back(Output::Event(e));
            }
            Effect::Rejected(why) => self.stats.count_rejected(why),
        }
    }

    fn queue_broadcast(&mut self, key: &Arc<str>, message: Vec<u8>, token: Option<Token>) {
        self.broadcasts
            .push(Some(key), &message, token, &mut self.finished);
        self.check_finished();
    }

    fn check_finished(&mut self) {
        let done = self.finished.contains(&LEAVE_TOKEN);
        self.finished.clear();
        if done && self.leave == Leave::Leaving {
            self.complete_leave(false);
        }
    }

    /// After leaving the node gossips no more, so what is queued is dropped.
    fn complete_leave(&mut self, timed_out: bool) {
        self.leave = Leave::Left;
        let mut ignored = Vec::new();
        self.broadcasts.clear(&mut ignored);
        self.user_broadcasts.clear(&mut ignored);
        self.outputs
            .push_back(Output::Event(Event::LeaveCompleted { timed_out }));
    }

    // ================================================================ packets

    /// A datagram arrived from `from`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.skip_idle_gossip(now);
        self.ingest_packet(now, from, data);
        self.drop_stale_timers();
    }

    fn ingest_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        if !self.config.ip_allowed(from.ip()) {
            self.stats.count_rejected("packet_cidr");
            return;
        }
        let body = match self.envelope.open_packet(data) {
            Ok(body) => body,
            Err(e) => {
                self.stats.count_wire_error(&e);
                return;
            }
        };
        let limits = self.envelope.limits().clone();
        for_each_batch(&body, &limits, &mut |batch| {
            if batch.len() > 1 {
                // Gossip names members whose records lie far apart: looking them all up first
                // lets those cache misses overlap instead of coming one after another.
                self.members.warm(batch.iter().filter_map(|m| match m {
                    Ok(Message::Alive(a)) => Some(a.node),
                    Ok(Message::Suspect(a) | Message::Dead(a)) => Some(a.node),
                    _ => None,
                }));
            }
            for m in batch.drain(..) {
                match m {
                    Ok(m) => self.handle_message(now, from, m),
                    Err(e) => self.stats.count_wire_error(&e),
                }
            }
        });
    }

    fn handle_message(&mut self, now: Instant, from: SocketAddr, m: Message<'_>) {
        self.stats.count_message(m.message_type());
        match m {
            Message::Ping(p) => self.handle_ping(from, p),
            Message::IndirectPing(ind) => self.handle_indirect_ping(now, from, ind),
            Message::Ack(a) => self.handle_ack(now, a.seq_no, &a.payload),
            Message::Nack(n) => {
                if let Some(p) = &mut self.probe {
                    if p.seq == n.seq_no {
                        p.nacks += 1;
                    }
                }
            }
            Message::Alive(a) => {
                let port = self.fix_port(a.port);
                let claim = AliveClaim {
                    node: a.node,
                    addr: &a.addr,
                    port,
                    meta: &a.meta,
                    incarnation: a.incarnation,
                    vsn: &a.vsn,
                };
                self.with_ctx(now, |m, ctx| m.alive(claim, false, ctx));
            }
            Message::Suspect(s) => {
                self.with_ctx(now, |m, ctx| m.suspect(Claim::from(&s), ctx));
            }
            Message::Dead(d) => {
                self.with_ctx(now, |m, ctx| m.dead(Claim::from(&d), ctx));
            }
            Message::User(payload) => {
                if payload.is_empty() {
                    return;
                }
                if self.config.relay_user_broadcasts && !self.remember_relayed(payload) {
                    return; // seen it: delivered and relayed already
                }
                self.outputs.push_back(Output::Event(Event::UserMessage {
                    from,
                    payload: payload.to_vec(),
                }));
                if self.config.relay_user_broadcasts {
                    self.queue_user_broadcast(payload);
                }
            }
            // Stream-only messages are refused by the packet decoder.
            Message::PushPull(_) | Message::Error(_) => {}
        }
    }

    /// Go substitutes its own port for a zero one (and for all, below v2).
    fn fix_port(&self, port: u16) -> u16 {
        if port == 0 || self.config.protocol_version < 2 {
            self.config.advertise.port()
        } else {
            port
        }
    }

    fn reply_addr(from: SocketAddr, addr: &[u8], port: u16) -> SocketAddr {
        match WireIp::from_bytes(addr).to_ip() {
            Some(ip) if port > 0 => SocketAddr::new(ip, port),
            _ => from,
        }
    }

    fn handle_ping(&mut self, from: SocketAddr, p: Ping<'_>) {
        if !p.node.is_empty() && p.node != self.config.name {
            self.stats.count_rejected("ping_wrong_node");
            return;
        }
        let to = Self::reply_addr(from, &p.source_addr, p.source_port);
        let ack = encode_packet(&Message::Ack(Ack {
            seq_no: p.seq_no,
            payload: self.ack_payload[..].into(),
        }));
        self.send_msg(to, ack);
    }

    fn handle_indirect_ping(&mut self, now: Instant, from: SocketAddr, ind: IndirectPing<'_>) {
        let Some(ip) = WireIp::from_bytes(&ind.target).to_ip() else {
            self.stats.count_rejected("indirect_ping_bad_target");
            return;
        };
        if self.ack_handlers.len() >= MAX_PENDING_ACKS {
            self.stats.count_rejected("indirect_ping_busy");
            return;
        }
        let target = SocketAddr::new(ip, self.fix_port(ind.port));
        let origin = Self::reply_addr(from, &ind.source_addr, ind.source_port);
        let seq = self.next_seq();
        self.ack_handlers.insert(
            seq,
            AckHandler::Relay {
                origin_seq: ind.seq_no,
                origin,
                nack: ind.nack,
            },
        );
        self.schedule(now + self.config.probe_timeout, Timer::AckExpiry(seq));
        let ping = self.ping_message(seq, ind.node);
        self.send_msg(target, ping);
    }

    fn handle_ack(&mut self, now: Instant, seq: u32, payload: &[u8]) {
        let Some(handler) = self.ack_handlers.remove(&seq) else {
            self.stats.count_rejected("ack_unknown_seq");
            return;
        };
        match handler {
            AckHandler::Probe => {
                let Some(p) = self.probe.take_if(|p| p.seq == seq) else {
                    return;
                };
                let rtt = now.saturating_duration_since(p.sent);
                self.outputs.push_back(Output::Event(Event::PingCompleted {
                    node: p.target.clone(),
                    rtt,
                    payload: payload.to_vec(),
                }));
                self.finish_probe(now, -1);
            }
            AckHandler::Relay {
                origin_seq, origin, ..
            } => {
                let ack = encode_packet(&Message::Ack(Ack {
                    seq_no: origin_seq,
                    payload: (&[][..]).into(),
                }));
                self.send_msg(origin, ack);
            }
            AckHandler::UserPing { node, sent } => {
                self.outputs.push_back(Output::Event(Event::PingCompleted {
                    node,
                    rtt: now.saturating_duration_since(sent),
                    payload: payload.to_vec(),
                }));
            }
        }
    }

    fn ack_expired(&mut self, seq: u32) {
        match self.ack_handlers.get(&seq) {
            Some(AckHandler::Relay { .. }) | Some(AckHandler::UserPing { .. }) => {}
            _ => return,
        }
        match self.ack_handlers.remove(&seq) {
            Some(AckHandler::Relay {
                origin_seq,
                origin,
                nack: true,
            }) => {
                let nack = encode_packet(&Message::Nack(Nack { seq_no: origin_seq }));
                self.send_msg(origin, nack);
            }
            Some(AckHandler::UserPing { node, .. }) => {
                self.outputs
                    .push_back(Output::Event(Event::PingFailed { node }));
            }
            _ => {}
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq_no = self.seq_no.wrapping_add(1);
        self.seq_no
    }

    fn ping_message(&self, seq: u32, node: &str) -> Vec<u8> {
        let adv = self.config.advertise;
        let ip = WireIp::from_ip(adv.ip());
        let mut buf = Vec::with_capacity(96);
        Message::Ping(Ping {
            seq_no: seq,
            node,
            source_addr: ip.as_bytes().into(),
            source_port: adv.port(),
            source_node: &self.config.name,
        })
        .encode(Transport::Packet, &mut buf);
        buf
    }

    // ================================================================ sending

    /// Go's `sendMsg`: piggyback gossip on a protocol message. No CRC (Go's
    /// lookup of the recipient by address practically never finds it).
    fn send_msg(&mut self, to: SocketAddr, msg: Vec<u8>) {
        let budget = self
            .config
            .udp_buffer_size
            .saturating_sub(msg.len() + COMPOUND_OVERHEAD + self.envelope.packet_overhead());
        let extra = self.take_broadcasts(budget, MAX_COMPOUND_PARTS - 1);
        if extra.is_empty() {
            self.send_packet(to, &msg, false);
        } else {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(extra.len() + 1);
            parts.push(&msg);
            parts.extend(extra.iter());
            let mut compound = Vec::with_capacity(budget + msg.len() + 64);
            match encode_compound(&parts, &mut compound) {
                Ok(()) => self.send_packet(to, &compound, false),
                Err(_) => self.send_packet(to, &msg, false),
            }
        }
    }

    fn send_packet(&mut self, to: SocketAddr, msg: &[u8], crc: bool) {
        let mut data = Vec::with_capacity(msg.len() + 64);
        let rng = &mut self.rng;
        self.envelope
            .seal_packet(msg, crc, || rng.nonce(), &mut data);
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += data.len() as u64;
        self.outputs.push_back(Output::Packet { to, data });
    }

    /// Broadcasts for one packet with `budget` bytes free. Membership
    /// updates and user broadcasts share the space so neither starves: with
    /// both waiting, user broadcasts get at most half and membership the rest.
    fn take_broadcasts(&mut self, budget: usize, max_parts: usize) -> Parts {
        let mut out = Parts::default();
        if budget == 0 || (self.broadcasts.is_empty() && self.user_broadcasts.is_empty()) {
            return out;
        }
        let limit = retransmit_limit(self.config.retransmit_mult, self.members.len());
        let user_share = if self.broadcasts.is_empty() {
            budget
        } else {
            budget / 2
        };
        let mut user = Parts::default();
        let used = self.user_broadcasts.fill(
            COMPOUND_PART_OVERHEAD,
            user_share,
            limit,
            max_parts,
            &mut user,
            &mut self.finished,
        );
        self.broadcasts.fill_deriving(
            COMPOUND_PART_OVERHEAD,
            budget - used,
            limit,
            max_parts - user.len(),
            &mut out,
            &mut self.finished,
            AliveMessages(&self.members),
        );
        out.append(&user);
        self.check_finished();
        out
    }

    // ================================================================ probing

    fn start_probe(&mut self, now: Instant) {
        let target = self.members.next_probe_target(
            &mut self.probe_cursor,
            now,
            self.config.gossip_to_the_dead_time,
            &mut self.rng,
        );
        let Some(target) = target else { return };
        let Some(r) = self.members.get(&target) else {
            return;
        };
        let Some(to) = r.socket_addr() else { return };
        let (state, incarnation, pmax) = (r.state, r.incarnation, r.pmax());
        let seq = self.next_seq();
        let scaled = self.awareness.scale(self.config.probe_interval);
        self.probe = Some(Probe {
            seq,
            target: target.clone(),
            incarnation,
            sent: now,
            deadline: now + scaled,
            expected_nacks: 0,
            nacks: 0,
            fallback: Fallback::None,
            expired: false,
        });
        self.ack_handlers.insert(seq, AckHandler::Probe);
        self.stats.probes += 1;
        let ping = self.ping_message(seq, &target);
        if state == MemberState::Alive {
            self.send_msg(to, ping);
        } else {
            // A suspect hears the accusation with the ping, so it can refute
            // at once (the buddy system).
            let suspect = encode_packet(&Message::Suspect(Accusation {
                incarnation,
                node: &target,
                from: &self.config.name,
            }));
            let mut compound = Vec::with_capacity(ping.len() + suspect.len() + 6);
            if encode_compound(&[&ping, &suspect], &mut compound).is_ok() {
                self.send_packet(to, &compound, pmax >= 5);
            }
        }
        self.schedule(now + self.config.probe_timeout, Timer::ProbeIndirect(seq));
        self.schedule(now + scaled, Timer::ProbeDeadline(seq));
    }

    fn probe_indirect(&mut self, now: Instant, seq: u32) {
        let Some(p) = &self.probe else { return };
        if p.seq != seq {
            return;
        }
        let target = p.target.clone();
        let Some(r) = self.members.get(&target) else {
            return;
        };
        let (addr, port, pmax) = (r.addr, r.port, r.pmax());
        let local = self.members.local_name().clone();
        let helpers =
            self.members
                .random_members(self.config.indirect_checks, &mut self.rng, |r| {
                    r.name != local && r.name != target && r.state == MemberState::Alive
                });
        let adv = self.config.advertise;
        let own_ip = WireIp::from_ip(adv.ip());
        let mut expected = 0;
        let mut sends = Vec::with_capacity(helpers.len());
        for i in helpers {
            let h = self.members.record(i);
            let Some(to) = h.socket_addr() else { continue };
            let nack = h.pmax() >= 4;
            expected += u32::from(nack);
            let mut buf = Vec::with_capacity(128);
            Message::IndirectPing(IndirectPing {
                seq_no: seq,
                target: addr.as_bytes().into(),
                port,
                node: &target,
                nack,
                source_addr: own_ip.as_bytes().into(),
                source_port: adv.port(),
                source_node: &self.config.name,
            })
            .encode(Transport::Packet, &mut buf);
            sends.push((to, buf));
        }
        for (to, buf) in sends {
            self.send_msg(to, buf);
        }
        let tcp = !self.config.disable_tcp_pings && pmax >= 3;
        let deadline = self.probe.as_ref().map_or(now, |p| p.deadline);
        if let Some(p) = &mut self.probe {
            p.expected_nacks = expected;
            if tcp {
                p.fallback = Fallback::Pending;
            }
        }
        if tcp {
            if let Some(to) = self.members.get(&target).and_then(|r| r.socket_addr()) {
                let ping = self.ping_message(seq, &target);
                self.connect(now, to, &ping, true, deadline, Exchange::TcpPing { seq });
            }
        }
    }

    fn probe_deadline(&mut self, now: Instant, seq: u32) {
        let Some(p) = &mut self.probe else { return };
        if p.seq != seq {
            return;
        }
        // The ack handler expires with the probe.
        self.ack_handlers.remove(&seq);
        match p.fallback {
            Fallback::Pending => p.expired = true, // decide when TCP reports
            Fallback::Succeeded => self.finish_probe(now, -1),
            Fallback::None | Fallback::Failed => self.fail_probe(now),
        }
    }

    fn fail_probe(&mut self, now: Instant) {
        let Some(p) = self.probe.take() else { return };
        let delta = if p.expected_nacks > 0 {
            p.expected_nacks.saturating_sub(p.nacks) as i32
        } else {
            1
        };
        self.stats.probes_failed += 1;
        let local = self.members.local_name().clone();
        self.with_ctx(now, |m, ctx| {
            m.suspect(
                Claim {
                    node: &p.target,
                    incarnation: p.incarnation,
                    from: &local,
                },
                ctx,
            )
        });
        self.finish_probe(now, delta);
    }

    /// Ends the current probe (if still set) and applies the awareness delta.
    fn finish_probe(&mut self, now: Instant, awareness_delta: i32) {
        self.probe = None;
        self.awareness.apply(awareness_delta);
        if core::mem::take(&mut self.probe_tick_pending) {
            self.start_probe(now);
        }
    }

    /// Ping a member directly, as the application asks; the answer comes as
    /// [`Event::PingCompleted`] or [`Event::PingFailed`].
    pub fn ping(&mut self, now: Instant, node: &str) -> Result<(), CommandError> {
        let r = self.members.get(node).ok_or(CommandError::UnknownMember)?;
        let to = r.socket_addr().ok_or(CommandError::UnknownMember)?;
        let name = r.name.clone();
        let seq = self.next_seq();
        self.ack_handlers.insert(
            seq,
            AckHandler::UserPing {
                node: name,
                sent: now,
            },
        );
        self.schedule(now + self.config.probe_timeout, Timer::AckExpiry(seq));
        let ping = self.ping_message(seq, node);
        self.send_msg(to, ping);
        Ok(())
    }

    // ================================================================ gossip

    fn gossip(&mut self, now: Instant) {
        if self.leave == Leave::Left {
            return;
        }
        let local = self.members.local_name().clone();
        let dead_time = self.config.gossip_to_the_dead_time;
        let targets = self
            .members
            .random_members(self.config.gossip_nodes, &mut self.rng, |r| {
                *r.name != *local
                    && match r.state {
                        MemberState::Alive | MemberState::Suspect => true,
                        MemberState::Dead => {
                            now.saturating_duration_since(r.state_change) <= dead_time
                        }
                        MemberState::Left => false,
                    }
            });
        let budget = self
            .config
            .udp_buffer_size
            .saturating_sub(COMPOUND_OVERHEAD + self.envelope.packet_overhead());
        for i in targets {
            let r = self.members.record(i);
            let (Some(to), crc) = (r.socket_addr(), r.pmax() >= 5) else {
                continue;
            };
            let msgs = self.take_broadcasts(budget, MAX_COMPOUND_PARTS);
            match msgs.len() {
                0 => return,
                1 => self.send_packet(to, msgs.iter().next().unwrap_or_default(), crc),
                _ => {
                    let parts: Vec<&[u8]> = msgs.iter().collect();
                    let mut compound = Vec::with_capacity(budget + 8);
                    if encode_compound(&parts, &mut compound).is_ok() {
                        self.send_packet(to, &compound, crc);
                    }
                }
            }
        }
    }

    // ================================================================ streams

    fn connect(
        &mut self,
        now: Instant,
        to: SocketAddr,
        message: &[u8],
        expect_reply: bool,
        deadline: Instant,
        kind: Exchange,
    ) -> ExchangeId {
        self.next_exchange += 1;
        let id = ExchangeId(self.next_exchange);
        let mut data = Vec::with_capacity(message.len() + 64);
        self.envelope.write_stream_label(&mut data);
        let rng = &mut self.rng;
        self.envelope
            .seal_stream(message, || rng.nonce(), &mut data);
        if matches!(kind, Exchange::PushPull { .. }) {
            self.push_pulls_in_flight += 1;
        }
        self.exchanges.insert(id, kind);
        self.schedule(deadline.max(now), Timer::ExchangeDeadline(id));
        self.stats.streams_opened += 1;
        self.outputs.push_back(Output::Connect {
            id,
            to,
            data,
            expect_reply,
            deadline,
        });
        id
    }

    /// Our push/pull state: every member in the table and our user state.
    fn local_push_pull(&self, join: bool) -> Vec<u8> {
        let nodes = self
            .members
            .records()
            .iter()
            .map(|r| PushNodeState {
                name: &r.name,
                addr: r.addr.as_bytes().into(),
                port: r.port,
                meta: (&*r.meta).into(),
                incarnation: r.incarnation,
                state: match r.state {
                    MemberState::Alive => NodeState::Alive,
                    MemberState::Suspect => NodeState::Suspect,
                    MemberState::Dead => NodeState::Dead,
                    MemberState::Left => NodeState::Left,
                },
                vsn: r.vsn[..].into(),
            })
            .collect();
        let mut buf = Vec::with_capacity(64 + self.members.len() * 96 + self.local_state.len());
        Message::PushPull(PushPull {
            join,
            nodes,
            user_state: &self.local_state,
        })
        .encode(Transport::Stream, &mut buf);
        buf
    }

    fn push_pull(&mut self, now: Instant, to: SocketAddr, join: Option<u64>) {
        let state = self.local_push_pull(join.is_some());
        let deadline = now + self.config.tcp_timeout;
        self.connect(
            now,
            to,
            &state,
            true,
            deadline,
            Exchange::PushPull { join, to },
        );
    }

    fn periodic_push_pull(&mut self, now: Instant) {
        if self.push_pulls_in_flight >= self.config.max_concurrent_push_pulls {
            self.stats.count_rejected("push_pull_busy");
            return;
        }
        let local = self.members.local_name().clone();
        let picked = self.members.random_members(1, &mut self.rng, |r| {
            *r.name != *local && r.state == MemberState::Alive
        });
        if let Some(to) = picked
            .first()
            .and_then(|&i| self.members.record(i).socket_addr())
        {
            self.push_pull(now, to, None);
        }
    }

    /// Joins the cluster through `seeds`: a push/pull with each. The result
    /// comes as [`Event::JoinCompleted`].
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) {
        self.next_join += 1;
        let id = self.next_join;
        if seeds.is_empty() {
            self.outputs.push_back(Output::Event(Event::JoinCompleted {
                joined: 0,
                failed: Vec::new(),
            }));
            return;
        }
        self.joins.insert(
            id,
            JoinState {
                pending: seeds.len(),
                ..JoinState::default()
            },
        );
        for &seed in seeds {
            self.push_pull(now, seed, Some(id));
        }
    }

    /// The result of an exchange from [`Output::Connect`]: the reply's bytes
    /// as framed by a [`StreamFramer`](crate::wire::StreamFramer) (empty when
    /// no reply was expected), or why it failed.
    pub fn handle_exchange(
        &mut self,
        now: Instant,
        id: ExchangeId,
        result: Result<&[u8], ExchangeError>,
    ) {
        self.skip_idle_gossip(now);
        match result {
            Ok(reply) => self.exchange_succeeded(now, id, reply),
            Err(e) => self.exchange_failed(now, id, e),
        }
        self.drop_stale_timers();
    }

    fn exchange_failed(&mut self, now: Instant, id: ExchangeId, error: ExchangeError) {
        let Some(kind) = self.exchanges.remove(&id) else {
            return;
        };
        self.stats.streams_failed += 1;
        match kind {
            Exchange::PushPull { join, to } => {
                self.push_pulls_in_flight -= 1;
                if let Some(j) = join {
                    self.join_progress(j, Err((to, error)));
                }
            }
            Exchange::TcpPing { seq } => self.fallback_done(now, seq, false),
            Exchange::Reliable => {}
        }
    }

    fn exchange_succeeded(&mut self, now: Instant, id: ExchangeId, reply: &[u8]) {
        let Some(kind) = self.exchanges.remove(&id) else {
            return;
        };
        match kind {
            Exchange::Reliable => {}
            Exchange::TcpPing { seq } => {
                let ok = self.open_reply(reply).is_ok_and(|m| {
                    let limits = self.envelope.limits();
                    matches!(Message::decode(&m, Transport::Stream, limits), Ok(Message::Ack(a)) if a.seq_no == seq)
                });
                self.fallback_done(now, seq, ok);
            }
            Exchange::PushPull { join, to } => {
                self.push_pulls_in_flight -= 1;
                let result = self.merge_reply(now, reply, join.is_some());
                if result.is_err() {
                    self.stats.streams_failed += 1;
                }
                if let Some(j) = join {
                    self.join_progress(j, result.map_err(|e| (to, e)));
                }
            }
        }
    }

    fn open_reply<'a>(
        &self,
        reply: &'a [u8],
    ) -> Result<alloc::borrow::Cow<'a, [u8]>, ExchangeError> {
        self.envelope
            .open_stream(reply, StreamRole::Reply)
            .map_err(ExchangeError::BadReply)
    }

    fn merge_reply(&mut self, now: Instant, reply: &[u8], join: bool) -> Result<(), ExchangeError> {
        let opened = self.open_reply(reply)?;
        let limits = self.envelope.limits().clone();
        match Message::decode(&opened, Transport::Stream, &limits) {
            Ok(Message::PushPull(pp)) => self.merge_remote(now, pp, join),
            Ok(Message::Error(ErrorResponse { error })) => {
                Err(ExchangeError::Remote(error.to_string()))
            }
            Ok(other) => Err(ExchangeError::BadReply(WireError::UnexpectedMessageType(
                other.message_type() as u8,
            ))),
            Err(e) => Err(ExchangeError::BadReply(e)),
        }
    }

    /// Go's `mergeRemoteState`: verify versions, ask the policy (joins),
    /// merge, hand over the user state.
    fn merge_remote(
        &mut self,
        now: Instant,
        mut pp: PushPull<'_>,
        join: bool,
    ) -> Result<(), ExchangeError> {
        for n in &mut pp.nodes {
            n.port = self.fix_port(n.port);
        }
        if !self.members.verify_protocol(&pp.nodes) {
            return Err(ExchangeError::Refused("incompatible protocol version"));
        }
        if join {
            let members: Vec<Member> = pp
                .nodes
                .iter()
                .map(|n| Member {
                    name: Arc::from(n.name),
                    addr: SocketAddr::new(
                        WireIp::from_bytes(&n.addr)
                            .to_ip()
                            .unwrap_or(core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)),
                        n.port,
                    ),
                    meta: Arc::from(&*n.meta),
                    incarnation: n.incarnation,
                    state: match n.state {
                        NodeState::Alive | NodeState::Other(_) => MemberState::Alive,
                        NodeState::Suspect => MemberState::Suspect,
                        NodeState::Dead => MemberState::Dead,
                        NodeState::Left => MemberState::Left,
                    },
                    vsn: n
                        .vsn
                        .get(..6)
                        .and_then(|v| v.try_into().ok())
                        .unwrap_or_default(),
                })
                .collect();
            if !self.policy.allow_merge(&members) {
                return Err(ExchangeError::Refused("merge vetoed by policy"));
            }
        }
        self.stats.push_pulls += 1;
        self.with_ctx(now, |m, ctx| m.merge(&pp.nodes, ctx));
        if !pp.user_state.is_empty() {
            self.outputs.push_back(Output::Event(Event::RemoteState {
                join,
                state: pp.user_state.to_vec(),
            }));
        }
        Ok(())
    }

    fn join_progress(&mut self, id: u64, result: Result<(), (SocketAddr, ExchangeError)>) {
        let Some(j) = self.joins.get_mut(&id) else {
            return;
        };
        j.pending -= 1;
        match result {
            Ok(()) => j.joined += 1,
            Err(e) => j.failed.push(e),
        }
        if j.pending == 0 {
            let j = self.joins.remove(&id).unwrap_or_default();
            self.outputs.push_back(Output::Event(Event::JoinCompleted {
                joined: j.joined,
                failed: j.failed,
            }));
        }
    }

    fn fallback_done(&mut self, now: Instant, seq: u32, ok: bool) {
        let Some(p) = &mut self.probe else { return };
        if p.seq != seq {
            return;
        }
        p.fallback = if ok {
            Fallback::Succeeded
        } else {
            Fallback::Failed
        };
        if p.expired {
            if ok {
                self.finish_probe(now, -1);
            } else {
                self.fail_probe(now);
            }
        }
    }

    /// One whole message from an incoming stream, as measured by a
    /// [`StreamFramer`](crate::wire::StreamFramer) in the
    /// [`Accept`](StreamRole::Accept) role. The answer comes as
    /// [`Output::StreamReply`] for `stream`.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        stream: StreamId,
        from: SocketAddr,
        frame: &[u8],
    ) {
        self.stats.streams_accepted += 1;
        self.skip_idle_gossip(now);
        let reply = self.answer_stream(now, from, frame);
        self.outputs.push_back(Output::StreamReply {
            stream,
            data: reply,
        });
    }

    fn answer_stream(&mut self, now: Instant, from: SocketAddr, frame: &[u8]) -> Option<Vec<u8>> {
        if !self.config.ip_allowed(from.ip()) {
            self.stats.count_rejected("stream_cidr");
            return None;
        }
        let opened = match self.envelope.open_stream(frame, StreamRole::Accept) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count_wire_error(&e);
                // Go answers read errors with an error response, except for
                // a wrong label, where it just closes.
                if matches!(e, WireError::LabelMismatch | WireError::BadLabelHeader) {
                    return None;
                }
                return Some(self.stream_error(&e.to_string()));
            }
        };
        let limits = self.envelope.limits().clone();
        let message = match Message::decode(&opened, Transport::Stream, &limits) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count_wire_error(&e);
                return None;
            }
        };
        self.stats.count_message(message.message_type());
        match message {
            Message::PushPull(pp) => {
                // Answer first, echoing the initiator's join flag, then merge.
                let reply = self.local_push_pull(pp.join);
                let join = pp.join;
                if let Err(e) = self.merge_remote(now, pp, join) {
                    self.stats.count_rejected(match e {
                        ExchangeError::Refused(why) => why,
                        _ => "push_pull_merge",
                    });
                }
                Some(self.seal_reply(&reply))
            }
            Message::Ping(p) => {
                if !p.node.is_empty() && p.node != self.config.name {
                    self.stats.count_rejected("ping_wrong_node");
                    return None;
                }
                let mut ack = Vec::with_capacity(24);
                Message::Ack(Ack {
                    seq_no: p.seq_no,
                    payload: (&[][..]).into(),
                })
                .encode(Transport::Stream, &mut ack);
                Some(self.seal_reply(&ack))
            }
            Message::User(payload) => {
                if !payload.is_empty() {
                    self.outputs.push_back(Output::Event(Event::UserMessage {
                        from,
                        payload: payload.to_vec(),
                    }));
                }
                None
            }
            _ => None,
        }
    }

    fn seal_reply(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 64);
        let rng = &mut self.rng;
        self.envelope.seal_stream(message, || rng.nonce(), &mut out);
        out
    }

    fn stream_error(&mut self, text: &str) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 + text.len());
        Message::Error(ErrorResponse { error: text }).encode(Transport::Stream, &mut buf);
        self.seal_reply(&buf)
    }

    // ================================================================ commands

    /// Forgets every queued membership update, as if gossip had already carried it to every
    /// node.
    ///
    /// For simulations and tests that start from a cluster formed long ago. A node handed the
    /// full member list (by a push/pull or by alive messages) queues an alive broadcast for
    /// every member it learnt, so N nodes started that way spend minutes gossiping what each
    /// of them already knows. A node in a real cluster should not call this: it silences
    /// updates its peers may not have yet. User broadcasts stay queued; a departure being
    /// gossiped is cut short and completes ([`Event::LeaveCompleted`]).
    pub fn forget_membership_gossip(&mut self) {
        self.broadcasts.clear(&mut self.finished);
        self.check_finished();
    }

    /// Leaves the cluster: gossips our departure until it has been sent
    /// often enough, or `timeout` passed; then [`Event::LeaveCompleted`].
    pub fn leave(&mut self, now: Instant, timeout: Duration) {
        self.skip_idle_gossip(now);
        if self.leave != Leave::Staying {
            return;
        }
        self.leave = Leave::Leaving;
        let local = self.members.local_name().clone();
        let incarnation = self.members.local().map_or(0, |r| r.incarnation);
        self.with_ctx(now, |m, ctx| {
            m.dead(
                Claim {
                    node: &local,
                    incarnation,
                    from: &local,
                },
                ctx,
            )
        });
        if self.leave == Leave::Leaving {
            if !self.members.any_other_alive() {
                self.complete_leave(false);
            } else if !timeout.is_zero() {
                self.schedule(now + timeout, Timer::LeaveTimeout);
            }
        }
    }

    /// Changes our metadata and announces it with a new incarnation.
    pub fn update_meta(&mut self, now: Instant, meta: &[u8]) -> Result<(), CommandError> {
        self.skip_idle_gossip(now);
        if meta.len() > META_MAX_SIZE {
            return Err(CommandError::MetaTooLarge(meta.len()));
        }
        if self.leave != Leave::Staying {
            return Err(CommandError::Left);
        }
        if self
            .members
            .local()
            .is_some_and(|r| r.incarnation == u32::MAX)
        {
            return Err(CommandError::IncarnationExhausted);
        }
        self.local_meta = Arc::from(meta);
        let (addr, vsn) = (self.config.advertise, self.config.vsn());
        self.with_ctx(now, |m, ctx| m.announce_local(addr, meta, vsn, ctx));
        Ok(())
    }

    /// Sets the application state sent in every push/pull.
    pub fn set_local_state(&mut self, state: Vec<u8>) {
        self.local_state = state;
    }

    /// Sets the payload of our acks to direct pings.
    pub fn set_ack_payload(&mut self, payload: Vec<u8>) {
        self.ack_payload = payload;
    }

    /// Queues `payload` to be gossiped to every member (transmit-limited,
    /// like membership updates). It must fit a packet with room to spare.
    pub fn broadcast(&mut self, payload: &[u8]) -> Result<(), CommandError> {
        let room = self.config.udp_buffer_size.saturating_sub(
            COMPOUND_OVERHEAD + COMPOUND_PART_OVERHEAD + 1 + self.envelope.packet_overhead(),
        );
        if payload.is_empty() || payload.len() > room {
            return Err(CommandError::BadPayload("empty, or larger than a packet"));
        }
        if self.config.relay_user_broadcasts {
            self.remember_relayed(payload);
        }
        self.queue_user_broadcast(payload);
        Ok(())
    }

    fn queue_user_broadcast(&mut self, payload: &[u8]) {
        let msg = encode_packet(&Message::User(payload));
        self.user_broadcasts
            .push(None, &msg, None, &mut self.finished);
        self.check_finished();
    }

    /// Records a user payload as seen; false if it already was.
    fn remember_relayed(&mut self, payload: &[u8]) -> bool {
        use core::hash::BuildHasher;
        let h = foldhash::fast::FixedState::with_seed(0x0072_656c_6179).hash_one(payload);
        if !self.relayed_set.insert(h) {
            return false;
        }
        self.relayed.push_back(h);
        while self.relayed.len() > self.config.relay_memory {
            if let Some(old) = self.relayed.pop_front() {
                self.relayed_set.remove(&old);
            }
        }
        true
    }

    /// Sends `payload` to a member in one datagram, not piggybacked (Go's
    /// `SendBestEffort`).
    pub fn send_best_effort(
        &mut self,
        now: Instant,
        node: &str,
        payload: &[u8],
    ) -> Result<(), CommandError> {
        let _ = now; // every command takes the time; this one needs none
        if payload.is_empty() {
            return Err(CommandError::BadPayload("empty"));
        }
        let r = self.members.get(node).ok_or(CommandError::UnknownMember)?;
        let to = r.socket_addr().ok_or(CommandError::UnknownMember)?;
        let crc = r.pmax() >= 5;
        let msg = encode_packet(&Message::User(payload));
        self.send_packet(to, &msg, crc);
        Ok(())
    }

    /// Sends `payload` to a member over a stream (Go's `SendReliable`).
    pub fn send_reliable(
        &mut self,
        now: Instant,
        node: &str,
        payload: &[u8],
    ) -> Result<ExchangeId, CommandError> {
        if payload.is_empty() {
            return Err(CommandError::BadPayload("empty"));
        }
        let r = self.members.get(node).ok_or(CommandError::UnknownMember)?;
        let to = r.socket_addr().ok_or(CommandError::UnknownMember)?;
        let mut msg = Vec::with_capacity(payload.len() + 16);
        Message::User(payload).encode(Transport::Stream, &mut msg);
        let deadline = now + self.config.tcp_timeout;
        Ok(self.connect(now, to, &msg, false, deadline, Exchange::Reliable))
    }

    /// Installs a key for decryption (Go's `AddKey`).
    pub fn add_key(&mut self, key: SecretKey) -> Result<(), CommandError> {
        let ring = self
            .envelope
            .keyring_mut()
            .ok_or(CommandError::Key(WireError::NoKeyring))?;
        ring.add(key);
        Ok(())
    }

    /// Makes an installed key the one used to encrypt (Go's `UseKey`).
    pub fn use_key(&mut self, key: &SecretKey) -> Result<(), CommandError> {
        let ring = self
            .envelope
            .keyring_mut()
            .ok_or(CommandError::Key(WireError::NoKeyring))?;
        ring.use_key(key).map_err(CommandError::Key)
    }

    /// Removes a key that is not the primary (Go's `RemoveKey`).
    pub fn remove_key(&mut self, key: &SecretKey) -> Result<(), CommandError> {
        let ring = self
            .envelope
            .keyring_mut()
            .ok_or(CommandError::Key(WireError::NoKeyring))?;
        ring.remove(key).map_err(CommandError::Key)
    }
}

/// A message in its packet form.
fn encode_packet(m: &Message<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    m.encode(Transport::Packet, &mut buf);
    buf
}

/// Go's `pushPullScale`: slower anti-entropy in big clusters.
fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    const THRESHOLD: usize = 32;
    if n <= THRESHOLD {
        return interval;
    }
    let mult = libm::ceil(libm::log2(n as f64) - libm::log2(THRESHOLD as f64)) as u32 + 1;
    interval.saturating_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_scale_matches_go() {
        let s = Duration::from_secs(30);
        assert_eq!(push_pull_scale(s, 32), s);
        assert_eq!(push_pull_scale(s, 33), s * 2);
        assert_eq!(push_pull_scale(s, 64), s * 2);
        assert_eq!(push_pull_scale(s, 65), s * 3);
        assert_eq!(push_pull_scale(s, 256), s * 4);
        assert_eq!(push_pull_scale(s, 1000), s * 6);
    }

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
