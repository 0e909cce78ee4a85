//! Applications on simulated nodes: a user's system built on membership —
//! a sharded store, a scheduler, a cache ring — runs on every node, reacts
//! to the node's events at their simulated time, issues commands, sets
//! timers, and is checked by invariants over all nodes' states.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use swim_core::{BroadcastId, CommandError, Event, ExchangeId, Instant, Swim};

use crate::naming::node_name;
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
}

/// Makes the application of node `index`, each time its process starts.
pub type AppFactory = Arc<dyn Fn(usize) -> Box<dyn Application> + Send + Sync>;

/// What an application sees of its node and can do with it.
pub struct NodeContext<'a> {
    pub(crate) index: usize,
    pub(crate) now: u64,
    pub(crate) swim: &'a mut Swim,
    pub(crate) rng: &'a mut SimRng,
    /// Timers set during the call: (when, token).
    pub(crate) timers: &'a mut Vec<(u64, u64)>,
    /// The node's trace: every command is hashed into it.
    pub(crate) trace: &'a mut StableHasher,
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

    /// Simulated time since the run started.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// The node's state machine, to read (`members()`, `member_counts()`…).
    pub fn swim(&self) -> &Swim {
        self.swim
    }

    /// Runs `command` on the node's state machine now: for what the methods
    /// below do not cover.
    pub fn command<R>(&mut self, command: impl FnOnce(&mut Swim, Instant) -> R) -> R {
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
        command: impl FnOnce(&mut Swim, Instant) -> R,
    ) -> R {
        self.trace.u64(0x60 ^ self.index as u64);
        self.trace.u64(kind as u64);
        self.trace.bytes(bytes);
        command(self.swim, Instant::from_nanos(self.now))
    }

    /// Calls [`Application::timer`] with `token` after `delay`, unless the
    /// process has stopped by then.
    pub fn set_timer(&mut self, delay: Duration, token: u64) {
        let at = self
            .now
            .saturating_add(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX));
        self.timers.push((at, token));
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
    /// After every step of the run (every window of simulated time).
    Always,
    /// Once, the first time after the last disturbance (the end of the last
    /// fault) that every live node lists exactly the live nodes as members.
    /// If that never happens before the run ends, it is not checked (the
    /// protocol's `no-convergence` check speaks for that).
    Converged,
    /// Once, when [`Simulation::run`](crate::Simulation::run) ends (also
    /// after a stop at the first violation).
    AtEnd,
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

/// Every node's application, as an invariant reads them.
pub struct Apps<'a> {
    pub(crate) now: u64,
    pub(crate) apps: Vec<Option<&'a dyn Application>>,
    pub(crate) swims: Vec<Option<&'a Swim>>,
    pub(crate) live: &'a [bool],
}

impl fmt::Debug for Apps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Apps")
            .field("now", &self.now())
            .field("nodes", &self.apps.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Apps<'a> {
    /// Simulated time of the check.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// The number of nodes in the simulation.
    pub fn nodes(&self) -> usize {
        self.apps.len()
    }

    /// Whether node `i`'s process runs (and has not left): the truth the
    /// nodes' views are checked against.
    pub fn is_live(&self, i: usize) -> bool {
        self.live.get(i).copied().unwrap_or(false)
    }

    /// Node `i`'s application, if its process runs and it is an `A`.
    pub fn get<A: Application>(&self, i: usize) -> Option<&'a A> {
        let app = self.apps.get(i).copied().flatten()?;
        app.as_any().downcast_ref::<A>()
    }

    /// Node `i`'s state machine, if its process runs.
    pub fn swim(&self, i: usize) -> Option<&'a Swim> {
        self.swims.get(i).copied().flatten()
    }

    /// The applications of every live node, with their indices.
    pub fn live<A: Application>(&self) -> impl Iterator<Item = (usize, &'a A)> + '_ {
        (0..self.apps.len())
            .filter(|&i| self.is_live(i))
            .filter_map(|i| self.get::<A>(i).map(|a| (i, a)))
    }
}
