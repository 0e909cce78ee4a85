//! [`Swim`]: memberlist's protocol as a sans-IO state machine.
//!
//! One file per protocol concern, each with its own state owned by [`Swim`]:
//!
//! | file | concern | Go memberlist |
//! |---|---|---|
//! | `mod.rs` | the type, its construction and queries, the input wrapper, running a member-table rule | `memberlist.go` |
//! | `timers.rs` | one timer table (the gossip tick included), [`Swim::handle_timeout`] | the tickers in `state.go` |
//! | `packet.rs` | datagrams in and out: intake, dispatch, piggybacking | `net.go` (packets) |
//! | `probe.rs` | probe cycle, acks, indirect pings, nacks, TCP fallback, pings | `state.go` (`probeNode`, `Ping`) |
//! | `gossip.rs` | broadcast queues, gossip rounds, what a packet piggybacks | `state.go` (`gossip`), `queue.go` |
//! | `stream.rs` | stream exchanges out, incoming streams in | `net.go` (streams) |
//! | `push_pull.rs` | push/pull anti-entropy and join | `state.go` (`pushPull`), `memberlist.go` (`Join`) |
//! | `catch_up/` | anti-entropy out of turn: push/pulls when news settles, on contact, with the dead; corrections; one entry, [`Swim::catch_up_on`] | Serf's reconnect |
//! | `leave.rs` | a graceful departure | `memberlist.go` (`Leave`) |
//! | `user.rs` | user messages and broadcasts | `memberlist.go` (`Send*`), `delegate.go` |
//! | `local.rs` | what the local node announces: metadata, state, ack payload, keys | `memberlist.go`, `keyring.go` |
//! | `output.rs` | [`Output`]: what the caller must do | — |

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::awareness::Awareness;
use crate::config::{Config, ConfigError};
use crate::delegate::{DefaultDelegate, Delegate};
use crate::event::Event;
use crate::member::{Member, MemberChange, MemberCounts};
use crate::members::{Ctx, Effect, Members};
use crate::names::SharedNames;
use crate::rng::Rng;
use crate::stats::Stats;
use crate::time::{nanos, Instant};
use crate::wire::{Accusation, Envelope, Message};

mod catch_up;
mod gossip;
mod leave;
mod local;
mod output;
mod packet;
mod probe;
mod push_pull;
mod stream;
mod timers;
mod user;

use crate::ids::{ExchangeId, JoinId, PingId, StreamId};
pub use local::CommandError;
pub use output::Output;

use catch_up::{CatchUpState, Happened};
use gossip::Gossip;
use leave::Leave;
use local::LocalData;
use probe::Probing;
use push_pull::Joins;
use stream::Exchanges;
use timers::{Timer, Timers};
use user::Relayed;

/// Capacity kept by scratch buffers between calls; a burst beyond it is
/// given back afterwards. Small: a simulator holds thousands of nodes, and
/// 256 outputs of 160 bytes kept by each of 10,000 came to 400 MB.
const SCRATCH_KEEP: usize = 32;

/// HashiCorp memberlist's protocol — SWIM with Lifeguard, gossip and
/// push/pull — as a deterministic state machine.
///
/// It never reads a clock, opens a socket or spawns a thread. Feed it what
/// happens ([`handle_packet`](Self::handle_packet),
/// [`handle_timeout`](Self::handle_timeout),
/// [`handle_stream`](Self::handle_stream),
/// [`handle_exchange`](Self::handle_exchange) and the commands), then carry
/// out what [`poll_output`](Self::poll_output) asks and call back at
/// [`poll_timeout`](Self::poll_timeout). Every input and command takes the
/// caller's time. The same configuration, seed and inputs give the same
/// outputs, byte for byte.
///
/// See the [crate example](crate#example): two nodes wired by hand.
#[derive(Debug)]
pub struct Swim<D: Delegate = DefaultDelegate> {
    config: Config,
    envelope: Envelope,
    delegate: D,
    rng: Rng,
    members: Members,
    awareness: Awareness,
    timers: Timers,
    probing: Probing,
    gossip: Gossip,
    relayed: Relayed,
    exchanges: Exchanges,
    joins: Joins,
    catch_up: CatchUpState,
    local: LocalData,
    leave: Leave,
    outputs: VecDeque<Output>,
    /// Where a member-table rule leaves its effects (kept for reuse).
    effects: Vec<Effect>,
    /// While a full state from a push/pull is merged (not a joiner's own):
    /// alive messages it teaches are queued behind fresh news.
    merging_state: bool,
    stats: Stats,
}

/// Builds a [`Swim`] with more than a configuration and a seed: a
/// [`Delegate`], or a record of member changes.
///
/// ```
/// use swim_core::{Config, Delegate, Instant, Member, MemberChange, MemberState, Swim};
///
/// /// Accepts members of one zone only.
/// struct SameZone;
///
/// impl Delegate for SameZone {
///     fn allow_alive(&mut self, member: &Member) -> bool {
///         &*member.meta == b"zone=a"
///     }
/// }
///
/// let mut config = Config::lan("a", "10.0.0.1:7946".parse().unwrap());
/// config.meta = b"zone=a".to_vec();
/// let mut swim = Swim::builder(config, 7)
///     .delegate(SameZone)
///     .record_member_changes()
///     .build(Instant::ZERO)?;
/// // Its own first announcement is recorded.
/// let changes: Vec<_> = swim.drain_member_changes().expect("recording").collect();
/// assert!(matches!(
///     changes.last(),
///     Some(MemberChange::Updated(m)) if &*m.name == "a" && m.state == MemberState::Alive
/// ));
/// # Ok::<(), swim_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct Builder<D: Delegate = DefaultDelegate> {
    config: Config,
    seed: u64,
    delegate: D,
    record_member_changes: bool,
    names: SharedNames,
}

impl<D: Delegate> Builder<D> {
    /// Answers what the node asks while it runs (see [`Delegate`]).
    pub fn delegate<E: Delegate>(self, delegate: E) -> Builder<E> {
        Builder {
            config: self.config,
            seed: self.seed,
            delegate,
            record_member_changes: self.record_member_changes,
            names: self.names,
        }
    }

    /// Records every change to the member table for
    /// [`Swim::drain_member_changes`], which the caller must then drain
    /// (the record grows until it does).
    pub fn record_member_changes(mut self) -> Self {
        self.record_member_changes = true;
        self
    }

    /// Lets this node's records share the names of `names` with the other
    /// instances of this process instead of allocating their own: for
    /// processes that run many nodes, like a simulator.
    #[cfg(feature = "simulation")]
    pub fn shared_names(mut self, names: SharedNames) -> Self {
        self.names = names;
        self
    }

    /// The node, started at `now`: it announces itself and staggers its
    /// periodic work, as Go does. Fails if the configuration cannot work.
    pub fn build(self, now: Instant) -> Result<Swim<D>, ConfigError> {
        let Builder {
            config,
            seed,
            delegate,
            record_member_changes,
            names,
        } = self;
        config.validate()?;
        let envelope = config.envelope().map_err(|_| ConfigError {
            field: "label",
            reason: "must be at most 255 bytes",
        })?;
        let mut swim = Swim {
            members: Members::new(
                &config.name,
                config.max_members,
                record_member_changes,
                names,
            ),
            awareness: Awareness::new(config.awareness_max_multiplier),
            timers: Timers::new(),
            probing: Probing::default(),
            gossip: Gossip::new(config.max_broadcast_queue),
            relayed: Relayed::default(),
            exchanges: Exchanges::default(),
            joins: Joins::default(),
            catch_up: CatchUpState::default(),
            local: LocalData::default(),
            leave: Leave::Staying,
            envelope,
            delegate,
            rng: Rng::new(seed),
            outputs: VecDeque::new(),
            effects: Vec::new(),
            merging_state: false,
            stats: Stats::default(),
            config,
        };
        // Our own first announcement (Go's setAlive).
        swim.announce_local(now);
        // Periodic work starts at a random offset, as Go staggers its tickers.
        let stagger = |rng: &mut Rng, d: Duration| Duration::from_nanos(rng.below_nanos(nanos(d)));
        let probe = stagger(&mut swim.rng, swim.config.probe_interval);
        swim.timers.schedule(now + probe, Timer::ProbeTick);
        if !swim.config.gossip_interval.is_zero() {
            let gossip = stagger(&mut swim.rng, swim.config.gossip_interval);
            swim.timers.set_gossip_tick(now + gossip);
        }
        if !swim.config.push_pull_interval.is_zero() {
            let pp = stagger(&mut swim.rng, swim.config.push_pull_interval);
            swim.timers.schedule(now + pp, Timer::PushPullStaggered);
        }
        Ok(swim)
    }
}

impl Swim<DefaultDelegate> {
    /// A node that accepts every member and merge. `seed` drives all its
    /// randomness; `now` is the caller's current time.
    pub fn new(config: Config, seed: u64, now: Instant) -> Result<Self, ConfigError> {
        Swim::builder(config, seed).build(now)
    }

    /// A node to configure further: see [`Builder`].
    pub fn builder(config: Config, seed: u64) -> Builder<DefaultDelegate> {
        Builder {
            config,
            seed,
            delegate: DefaultDelegate,
            record_member_changes: false,
            names: SharedNames::default(),
        }
    }
}

impl<D: Delegate> Swim<D> {
    // ================================================================ queries

    /// The configuration, with the metadata and keys in use now.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The delegate.
    pub fn delegate_mut(&mut self) -> &mut D {
        &mut self.delegate
    }

    /// The members in the cluster — alive or suspect — this node included
    /// (Go's `Members`).
    pub fn members(&self) -> Vec<Member> {
        self.members
            .records()
            .iter()
            .filter(|r| r.state.is_member())
            .map(|r| r.to_member())
            .collect()
    }

    /// How many members [`members`](Self::members) lists (Go's `NumMembers`).
    pub fn num_members(&self) -> usize {
        self.members.counts().members()
    }

    /// How many members of each state the table holds.
    pub fn member_counts(&self) -> MemberCounts {
        self.members.counts()
    }

    /// Every member in the table, whatever its state (the dead and departed
    /// are kept for `gossip_to_the_dead_time`), this node included.
    pub fn all_members(&self) -> Vec<Member> {
        self.members
            .records()
            .iter()
            .map(|r| r.to_member())
            .collect()
    }

    /// Every record in the table, whatever its state, this node included,
    /// each with when this node recorded the member entering that state (a
    /// new incarnation or new metadata in the same state does not move it;
    /// a member reaped and learned again starts afresh).
    pub fn member_table(&self) -> Vec<(Member, Instant)> {
        self.members
            .records()
            .iter()
            .map(|r| (r.to_member(), r.state_change))
            .collect()
    }

    /// One member by name, whatever its state.
    pub fn member(&self, name: &str) -> Option<Member> {
        self.members.get(name).map(|r| r.to_member())
    }

    /// This node as the cluster sees it (Go's `LocalNode`).
    pub fn local_node(&self) -> Member {
        self.members
            .local()
            .map(|r| r.to_member())
            .expect("the local node is always in the table")
    }

    /// Lifeguard's local health score (0 is healthy).
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// Membership broadcasts waiting to be gossiped.
    pub fn broadcast_queue_len(&self) -> usize {
        self.gossip.membership_len()
    }

    /// User broadcasts waiting to be gossiped.
    pub fn user_broadcast_queue_len(&self) -> usize {
        self.gossip.user_len()
    }

    /// Bytes of broadcasts (membership and user) waiting to be gossiped.
    pub fn broadcast_queue_bytes(&self) -> usize {
        self.gossip.bytes()
    }

    /// Every change to the member table since the last call, oldest first;
    /// `None` unless the node was built with
    /// [`Builder::record_member_changes`].
    pub fn drain_member_changes(&mut self) -> Option<impl Iterator<Item = MemberChange>> {
        self.members.take_changes().map(Vec::into_iter)
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

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    // ================================================================ inputs

    /// Every input and command runs through here, so the bookkeeping around
    /// them is done once: before, the gossip tick passes the ticks that had
    /// nothing to send (so what the input queues leaves at the next tick, as
    /// with a ticker that never stopped); after, timers the input made stale
    /// leave the top of the schedule (so [`poll_timeout`](Self::poll_timeout)
    /// does not wake the caller for nothing).
    fn input<R>(&mut self, now: Instant, f: impl FnOnce(&mut Self) -> R) -> R {
        self.skip_idle_gossip(now);
        let r = f(self);
        self.drop_stale_timers();
        r
    }

    // ================================================================ rules

    /// Runs a member-table rule and acts on its effects.
    fn with_rules<R>(
        &mut self,
        now: Instant,
        rule: impl FnOnce(&mut Members, &mut Ctx<'_>) -> R,
    ) -> R {
        self.with_rules_from(now, None, rule)
    }

    /// [`with_rules`](Self::with_rules) for a claim from a datagram's
    /// `sender`, if it came in one (an outdated accusation is answered).
    fn with_rules_from<R>(
        &mut self,
        now: Instant,
        sender: Option<SocketAddr>,
        rule: impl FnOnce(&mut Members, &mut Ctx<'_>) -> R,
    ) -> R {
        let mut effects = core::mem::take(&mut self.effects);
        let r = {
            let mut ctx = Ctx {
                now,
                config: &self.config,
                leaving: self.leave.is_leaving(),
                sender,
                rng: &mut self.rng,
                delegate: &mut self.delegate,
                effects: &mut effects,
            };
            rule(&mut self.members, &mut ctx)
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
            Effect::GossipAlive { node, at, first } => self.queue_alive(&node, at, first),
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
                self.queue_membership(&node, &m, None);
            }
            Effect::TellSuspect {
                node,
                incarnation,
                from,
                raised,
            } => {
                if raised {
                    self.unqueue_membership(&node);
                }
                self.tell_suspect(now, &node, incarnation, &from);
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
                let token = self.leave.token_for(&node, self.members.local_name());
                self.queue_membership(&node, &m, token);
            }
            Effect::Refuted => {
                self.stats.refutations += 1;
                self.awareness.apply(1);
            }
            Effect::SuspicionDeadline { node, deadline } => {
                self.schedule_last_probe(now, &node, deadline);
                self.timers
                    .schedule(deadline.max(now), Timer::Suspicion(node));
            }
            Effect::Event(e) => {
                match &e {
                    Event::MemberFailed(_) => self.stats.members_failed += 1,
                    Event::NameConflict { .. } => self.stats.name_conflicts += 1,
                    _ => {}
                }
                self.emit(e);
            }
            Effect::Rejected(why) => self.stats.count_rejected(why),
            Effect::News { node } => self.catch_up_on(now, Happened::News { node: &node }),
            Effect::Failed { node, addr } => {
                self.catch_up_on(now, Happened::Failed { node: &node, addr })
            }
            Effect::Left { node } => self.catch_up_on(now, Happened::Left { node: &node }),
            Effect::Returned {
                node,
                down_since,
                dead,
            } => self.catch_up_on(
                now,
                Happened::Returned {
                    node: &node,
                    down_since,
                    dead,
                },
            ),
            Effect::Outdated { node, sender } => self.catch_up_on(
                now,
                Happened::Outdated {
                    node: &node,
                    sender,
                },
            ),
        }
    }

    /// The local name, cheaply cloned (rules borrow the table mutably).
    fn local_name(&self) -> Arc<str> {
        self.members.local_name().clone()
    }
}
