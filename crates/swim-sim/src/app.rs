//! Applications on simulated nodes: a user's system built on membership —
//! a sharded store, a scheduler, a cache ring — runs on every node, reacts
//! to the node's events at their simulated time, issues commands, sets
//! timers, and is checked by invariants over all nodes' states.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use swim_core::{BroadcastId, CommandError, Delegate, Event, ExchangeId, Instant, Member, Swim};

use crate::clock::Clock;
use crate::disk::Disk;
use crate::history::{History, What};
use crate::naming::node_name;
use crate::network::Network;
use crate::node::{Job, Node};
use crate::rng::{SimRng, StableHasher};

/// Lets invariants read an application as its own type (implemented for
/// every type).
pub trait AsAny: Any {
    /// `self`, to downcast.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A user's application on one simulated node.
///
/// One is made for a node when its process starts (and a new one, with
/// fresh state, when it restarts), and dropped when the process crashes or
/// shuts down. Its methods run on the node's own processing, at the
/// simulated time of what caused them; whatever it does through the
/// [`NodeContext`] — commands, timers, randomness — is part of the run, so
/// the same seed gives the same run.
pub trait Application: AsAny + Send {
    /// The node's process has started; [`NodeContext::now`] is its start.
    fn started(&mut self, node: &mut NodeContext<'_>) {
        let _ = node;
    }

    /// The node emitted `event`.
    fn event(&mut self, node: &mut NodeContext<'_>, event: &Event) {
        let _ = (node, event);
    }

    /// A timer set with [`NodeContext::set_timer`] fired.
    fn timer(&mut self, node: &mut NodeContext<'_>, token: u64) {
        let _ = (node, token);
    }

    /// What the node's state machine asks while it runs — ack payloads,
    /// push/pull state, broadcasts to piggyback (Go memberlist's
    /// delegates, see [`Delegate`]): asked once per process, right after
    /// the application is made and before the state machine is built.
    /// `None` (the default): the state machine's own answers
    /// ([`DefaultDelegate`](swim_core::DefaultDelegate)).
    ///
    /// The delegate is called in the middle of the node's processing, so it
    /// reaches the application's state only through what both share (an
    /// `Arc<Mutex<…>>`); whatever it answers must follow from what the node
    /// has seen, for the run to replay.
    fn delegate(&mut self) -> Option<Box<dyn Delegate + Send>> {
        None
    }
}

/// The delegate of a simulated node's state machine: its application's
/// ([`Application::delegate`]), or none, which answers as
/// [`DefaultDelegate`](swim_core::DefaultDelegate) does.
#[derive(Default)]
pub struct AppDelegate(pub(crate) Option<Box<dyn Delegate + Send>>);

impl fmt::Debug for AppDelegate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AppDelegate")
            .field(&self.0.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Delegate for AppDelegate {
    fn allow_alive(&mut self, member: &Member) -> bool {
        self.0.as_mut().is_none_or(|d| d.allow_alive(member))
    }

    fn allow_merge(&mut self, members: &[Member]) -> bool {
        self.0.as_mut().is_none_or(|d| d.allow_merge(members))
    }

    fn local_state(&mut self, join: bool) -> Option<Vec<u8>> {
        self.0.as_mut()?.local_state(join)
    }

    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        self.0.as_mut()?.ack_payload()
    }

    fn has_broadcasts(&self) -> bool {
        self.0.as_ref().is_some_and(|d| d.has_broadcasts())
    }

    fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        match self.0.as_mut() {
            Some(d) => d.broadcasts(overhead, limit),
            None => Vec::new(),
        }
    }
}

/// A simulated node's state machine: a [`Swim`] asking its application's
/// delegate.
pub type SimSwim = Swim<AppDelegate>;

/// Makes the application of node `index`, each time its process starts.
pub type AppFactory = Arc<dyn Fn(usize) -> Box<dyn Application> + Send + Sync>;

/// What an application sees of its node and can do with it.
pub struct NodeContext<'a> {
    pub(crate) index: usize,
    pub(crate) now: u64,
    pub(crate) swim: &'a mut SimSwim,
    pub(crate) rng: &'a mut SimRng,
    /// Timers set during the call: (when, token).
    pub(crate) timers: &'a mut Vec<(u64, u64)>,
    /// The node's trace: every command is hashed into it.
    pub(crate) trace: &'a mut StableHasher,
    pub(crate) history: &'a mut History,
    /// What outlives the process: disk, clock, counters.
    pub(crate) machine: &'a mut Machine,
}

/// What a node's machine keeps across its process's restarts.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    pub(crate) disk: Disk,
    pub(crate) clock: Option<Clock>,
    pub(crate) metrics: BTreeMap<String, u64>,
    /// When its application last acted: a command, a disk write, a user
    /// message taken in (ns), for [`Check::Settled`].
    pub(crate) last_active: u64,
}

impl fmt::Debug for NodeContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeContext")
            .field("index", &self.index)
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

impl NodeContext<'_> {
    /// The node's index in the simulation.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The node's name.
    pub fn name(&self) -> String {
        node_name(self.index)
    }

    /// The node's wall clock: simulated time since the run started, or,
    /// with [`Scenario::clocks`](crate::Scenario::clocks), this node's own
    /// clock (offset, drift, jumps).
    pub fn now(&self) -> Duration {
        Duration::from_nanos(match &self.machine.clock {
            Some(c) => c.wall(self.now),
            None => self.now,
        })
    }

    /// The true simulated time, whatever the node's clock says (for
    /// logging; a real node cannot know it).
    pub fn true_time(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// The node's disk, to read: it survives restarts.
    pub fn disk(&self) -> &Disk {
        &self.machine.disk
    }

    /// Writes `value` under `key` on the node's disk: read back at once,
    /// lost in a crash until [`disk_sync`](Self::disk_sync).
    pub fn disk_write(&mut self, key: &[u8], value: &[u8]) {
        self.disk_op(key, Some(value));
    }

    /// Removes `key` from the node's disk (lost in a crash until synced).
    pub fn disk_remove(&mut self, key: &[u8]) {
        self.disk_op(key, None);
    }

    fn disk_op(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.trace.u64(0x70 ^ self.index as u64);
        self.trace.bytes(key);
        self.trace.bytes(value.unwrap_or(b"\xff-removed"));
        let len = key.len() + value.map_or(0, <[u8]>::len);
        self.history.note(self.now, What::Disk(false), None, len);
        self.machine.last_active = self.now;
        self.machine.disk.write(key, value);
    }

    /// Makes every write so far durable (fsync).
    pub fn disk_sync(&mut self) {
        self.trace.u64(0x71 ^ self.index as u64);
        self.history.note(self.now, What::Disk(true), None, 0);
        self.machine.disk.sync();
    }

    /// Adds `by` to the application metric `name` (summed over every node
    /// and life, in [`Report::app_metrics`](crate::Report::app_metrics)).
    pub fn count(&mut self, name: &str, by: u64) {
        match self.machine.metrics.get_mut(name) {
            Some(v) => *v += by,
            None => {
                self.machine.metrics.insert(name.to_string(), by);
            }
        }
    }

    /// The node's state machine, to read (`members()`, `member_counts()`…).
    pub fn swim(&self) -> &SimSwim {
        self.swim
    }

    /// Runs `command` on the node's state machine now: for what the methods
    /// below do not cover.
    pub fn command<R>(&mut self, command: impl FnOnce(&mut SimSwim, Instant) -> R) -> R {
        self.run(Traced::Other, &[], command)
    }

    /// [`Swim::broadcast`].
    pub fn broadcast(&mut self, payload: &[u8]) -> Result<BroadcastId, CommandError> {
        self.run(Traced::Broadcast, payload, |s, now| {
            s.broadcast(now, payload)
        })
    }

    /// [`Swim::broadcast_named`].
    pub fn broadcast_named(
        &mut self,
        key: &str,
        payload: &[u8],
    ) -> Result<BroadcastId, CommandError> {
        self.trace.bytes(key.as_bytes());
        self.run(Traced::BroadcastNamed, payload, |s, now| {
            s.broadcast_named(now, key, payload)
        })
    }

    /// [`Swim::send_best_effort`].
    pub fn send_best_effort(&mut self, node: &str, payload: &[u8]) -> Result<(), CommandError> {
        self.trace.bytes(node.as_bytes());
        self.run(Traced::SendBestEffort, payload, |s, now| {
            s.send_best_effort(now, node, payload)
        })
    }

    /// [`Swim::send_reliable`].
    pub fn send_reliable(
        &mut self,
        node: &str,
        payload: &[u8],
    ) -> Result<ExchangeId, CommandError> {
        self.trace.bytes(node.as_bytes());
        self.run(Traced::SendReliable, payload, |s, now| {
            s.send_reliable(now, node, payload)
        })
    }

    /// [`Swim::update_meta`].
    pub fn update_meta(&mut self, meta: &[u8]) -> Result<(), CommandError> {
        self.run(Traced::UpdateMeta, meta, |s, now| s.update_meta(now, meta))
    }

    /// [`Swim::set_local_state`]: sent with every push/pull from now on.
    pub fn set_local_state(&mut self, state: Vec<u8>) {
        self.trace.bytes(&state);
        self.run(Traced::SetLocalState, &[], |s, now| {
            s.set_local_state(now, state)
        })
    }

    /// [`Swim::leave`]; the process shuts down when the leave completes.
    pub fn leave(&mut self, timeout: Duration) {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.run(Traced::Leave, &nanos.to_be_bytes(), |s, now| {
            s.leave(now, timeout)
        })
    }

    /// Hashes the command into the node's trace, then runs it.
    fn run<R>(
        &mut self,
        kind: Traced,
        bytes: &[u8],
        command: impl FnOnce(&mut SimSwim, Instant) -> R,
    ) -> R {
        self.trace.u64(0x60 ^ self.index as u64);
        self.trace.u64(kind as u64);
        self.trace.bytes(bytes);
        self.history
            .note(self.now, What::Command(kind as u8), None, bytes.len());
        self.machine.last_active = self.now;
        command(self.swim, Instant::from_nanos(self.now))
    }

    /// Calls [`Application::timer`] with `token` after `delay` on the
    /// node's monotonic clock (drifting with [`Scenario::clocks`](crate::Scenario::clocks)),
    /// unless the process has stopped by then.
    pub fn set_timer(&mut self, delay: Duration, token: u64) {
        let delay = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        let delay = match &self.machine.clock {
            Some(c) => c.true_delay(delay),
            None => delay,
        };
        self.timers.push((self.now.saturating_add(delay), token));
    }

    /// Random bits from the run's seed (this node's own stream).
    pub fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A uniform number below `n` (`0` when `n` is 0).
    pub fn random_below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }
}

/// The commands an application issues, as hashed into the trace.
#[derive(Clone, Copy)]
enum Traced {
    Other = 1,
    Broadcast,
    BroadcastNamed,
    SendBestEffort,
    SendReliable,
    UpdateMeta,
    SetLocalState,
    Leave,
}

/// When an [`AppInvariant`] is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Always: after every application callback (with
    /// [`Granularity::Callback`], the default) — stamped with the
    /// callback's exact time and named in the detail — and after every step
    /// of the run (every window of simulated time, every fault).
    Always,
    /// Once, the first time after the last disturbance (the end of the last
    /// fault) that every live node lists exactly the live nodes as members.
    /// If that never happens before the run ends, it is not checked (the
    /// protocol's `no-convergence` check speaks for that). Membership can
    /// settle before the application has: see [`Settled`](Check::Settled).
    Converged,
    /// Once, when the run has converged after the last disturbance and then
    /// nothing has changed for the given time: no member change, no
    /// application command, disk write or user message on any node. For
    /// what must agree once the application has settled too.
    Settled(Duration),
    /// Liveness: checked after every step from `from` on until it holds
    /// once; if it has not held by `from + within`, it fails then (with
    /// what it said last). See [`Scenario::liveness`](crate::Scenario::liveness).
    Eventually {
        /// From when.
        from: Duration,
        /// How long it may take.
        within: Duration,
    },
    /// Once, when the run reaches its end (also after a stop at the first
    /// violation; never when it is cut short by
    /// [`Scenario::stop_at`](crate::Scenario::stop_at)).
    AtEnd,
}

/// How often [`Check::Always`] invariants run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// After every application callback (and every step): a bad state
    /// that comes and goes within a step is seen, at its exact time. Costs
    /// one check per callback, and the nodes of a window run on one thread.
    #[default]
    Callback,
    /// After every step only: cheaper, coarser.
    Step,
}

/// A broken application invariant: what, and which nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFailure {
    /// The nodes involved (their indices), the first two reported.
    pub nodes: Vec<usize>,
    /// What is wrong.
    pub detail: String,
}

impl AppFailure {
    /// A failure about `nodes`.
    pub fn new(nodes: impl IntoIterator<Item = usize>, detail: impl Into<String>) -> AppFailure {
        AppFailure {
            nodes: nodes.into_iter().collect(),
            detail: detail.into(),
        }
    }
}

/// The function an [`AppInvariant`] runs over every node's application.
pub(crate) type AppCheck = dyn Fn(&Apps<'_>) -> Result<(), AppFailure> + Send + Sync;

/// A check over every node's application, declared with
/// [`Scenario::invariant`](crate::Scenario::invariant).
#[derive(Clone)]
pub struct AppInvariant {
    pub(crate) name: String,
    pub(crate) when: Check,
    pub(crate) check: Arc<AppCheck>,
}

impl fmt::Debug for AppInvariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppInvariant")
            .field("name", &self.name)
            .field("when", &self.when)
            .finish_non_exhaustive()
    }
}

/// Where an invariant finds each node: in the simulation, or — while a
/// window runs — in the job that holds it, or the node running the callback.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) nodes: &'a [Node],
    /// The window's jobs before and after the one running.
    pub(crate) jobs: (&'a [Job], &'a [Job]),
    /// Node `i`'s job in the window (`u32::MAX`: none), the running one's.
    pub(crate) job_of: &'a [u32],
    pub(crate) running: usize,
    /// The node whose callback just ran.
    pub(crate) this: Option<(usize, &'a Node)>,
}

impl<'a> View<'a> {
    /// Every node in the simulation.
    pub(crate) fn of(nodes: &'a [Node]) -> View<'a> {
        View {
            nodes,
            jobs: (&[], &[]),
            job_of: &[],
            running: usize::MAX,
            this: None,
        }
    }

    fn node(&self, i: usize) -> Option<&'a Node> {
        if let Some((t, node)) = self.this {
            if t == i {
                return Some(node);
            }
        }
        match self.job_of.get(i).copied() {
            Some(k) if k != u32::MAX => {
                let k = k as usize;
                if k < self.running {
                    self.jobs.0.get(k).map(|j| &j.node)
                } else {
                    self.jobs.1.get(k - self.running - 1).map(|j| &j.node)
                }
            }
            _ => self.nodes.get(i),
        }
    }
}

/// Every node's application, as an invariant reads them, and the faults
/// that hold now.
pub struct Apps<'a> {
    pub(crate) now: u64,
    pub(crate) view: View<'a>,
    pub(crate) live: &'a [bool],
    /// Until when each node is stalled or slow (ns).
    pub(crate) stalled_until: &'a [u64],
    pub(crate) net: &'a Network,
}

impl fmt::Debug for Apps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Apps")
            .field("now", &self.now())
            .field("nodes", &self.nodes())
            .finish_non_exhaustive()
    }
}

impl<'a> Apps<'a> {
    /// Simulated time of the check (the true time, not a node's clock).
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// The number of nodes in the simulation.
    pub fn nodes(&self) -> usize {
        self.live.len()
    }

    /// Whether node `i`'s process runs (and has not left): the truth the
    /// nodes' views are checked against.
    pub fn is_live(&self, i: usize) -> bool {
        self.live.get(i).copied().unwrap_or(false)
    }

    /// Whether node `i` is stalled or slowed by a fault now.
    pub fn is_stalled(&self, i: usize) -> bool {
        self.stalled_until.get(i).is_some_and(|&u| u > self.now)
    }

    /// Whether datagrams from `a` to `b` are cut by a partition now.
    pub fn is_cut(&self, a: usize, b: usize) -> bool {
        self.net.cut(a, b, self.now)
    }

    /// Whether any partition holds node `i` apart from some node now.
    pub fn is_partitioned(&self, i: usize) -> bool {
        self.net.partitioned(i, self.now)
    }

    /// The mean round trip of a datagram and its answer between `a` and
    /// `b`: twice their link's one-way latency plus the jitter's mean on
    /// both legs — what `a`'s probes of `b` measure, on average (a truth to
    /// check network coordinates against).
    pub fn rtt(&self, a: usize, b: usize) -> Duration {
        Duration::from_nanos(2 * self.net.links.latency(a, b)) + self.net.model.jitter
    }

    /// What node `i`'s wall clock reads now (the true time without
    /// [`Scenario::clocks`](crate::Scenario::clocks)).
    pub fn clock(&self, i: usize) -> Duration {
        let clock = self
            .view
            .node(i)
            .and_then(|n| n.machine.as_deref()?.clock.as_ref());
        Duration::from_nanos(clock.map_or(self.now, |c| c.wall(self.now)))
    }

    /// Node `i`'s application, if its process runs and it is an `A`.
    pub fn get<A: Application>(&self, i: usize) -> Option<&'a A> {
        // The application itself, not its box (which is `Any` too).
        let app: &dyn Application = &*self.view.node(i)?.app.as_deref()?.app;
        app.as_any().downcast_ref::<A>()
    }

    /// Node `i`'s state machine, if its process runs.
    pub fn swim(&self, i: usize) -> Option<&'a SimSwim> {
        self.view.node(i)?.swim.as_deref()
    }

    /// Node `i`'s disk (it outlives the process), if the run has an
    /// application.
    pub fn disk(&self, i: usize) -> Option<&'a Disk> {
        Some(&self.view.node(i)?.machine.as_deref()?.disk)
    }

    /// The applications of every live node, with their indices.
    pub fn live<A: Application>(&self) -> impl Iterator<Item = (usize, &'a A)> + '_ {
        (0..self.nodes())
            .filter(|&i| self.is_live(i))
            .filter_map(|i| self.get::<A>(i).map(|a| (i, a)))
    }
}
