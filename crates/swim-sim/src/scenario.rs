//! What a run simulates: cluster size, configuration, network, faults.
//!
//! A [`Scenario`] plus its seed is the whole input of a run: the same
//! scenario run twice gives the same [`Report::trace_hash`](crate::Report).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use swim_core::{Config, Preset};

use crate::app::{AppFactory, AppFailure, AppInvariant, Application, Apps, Check, Granularity};
use crate::clock::Clocks;
use crate::naming::{node_addr, node_name};
use crate::network::NetworkModel;

/// How the cluster comes together at the start.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// Every node starts at time zero and, 1 ms later, receives an alive
    /// message for every node at incarnation 1, packed in LAN-sized
    /// datagrams (encoded once, shared, read one at a time as from a socket):
    /// the full member list without join traffic. (Like any join, it fills
    /// every node's broadcast queue with what it learnt.)
    Warm,
    /// Like [`Warm`](Start::Warm), then every node forgets the broadcasts that taught it the
    /// member list ([`Swim::forget_membership_gossip`](swim_core::Swim::forget_membership_gossip)):
    /// a cluster that formed long ago, without the join storm.
    Formed,
    /// The real thing: `seeds` seed nodes start first; every other node
    /// starts at a uniformly random time in `[0, window)` and joins
    /// through one random seed with a push/pull. Failed joins are retried
    /// every second, as an agent's retry-join would.
    Bootstrap {
        /// How many seed nodes.
        seeds: usize,
        /// Over how long the joins are spread.
        window: Duration,
    },
}

/// How many nodes a fault takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// A fraction of the cluster size (rounded, at least one if positive).
    Fraction(f64),
    /// An exact count.
    Count(usize),
}

impl Amount {
    /// The count out of `n` nodes.
    pub fn of(self, n: usize) -> usize {
        match self {
            Amount::Count(c) => c.min(n),
            Amount::Fraction(f) => {
                if f <= 0.0 {
                    0
                } else {
                    ((f * n as f64).round() as usize).clamp(1, n)
                }
            }
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Fraction(x) => write!(f, "{}%", x * 100.0),
            Amount::Count(c) => write!(f, "{c}"),
        }
    }
}

/// Something that happens to nodes or the network at a set time. Nodes are
/// chosen at that time, at random (from the run's seed), among the nodes the
/// fault can apply to.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Running nodes stop dead: no more input, output or timers.
    Crash {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
    },
    /// Running nodes crash at `at` and come back `down_for` later with the
    /// same name and address but fresh state (a process restart), then
    /// join through the seeds.
    Restart {
        /// How many.
        amount: Amount,
        /// When they crash.
        at: Duration,
        /// How long they stay down.
        down_for: Duration,
    },
    /// Running nodes leave gracefully ([`swim_core::Swim::leave`]) and shut
    /// down when the leave completes.
    Leave {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
        /// The leave's timeout.
        timeout: Duration,
    },
    /// Running nodes stop processing for `duration`: their input queues up
    /// and their timers wait; then they process all of it at once, late
    /// (timers first, then the queued input in arrival order). With `every`,
    /// each node's first stall starts at a random time in `[at, at + every)`
    /// and repeats every `every` until the run ends.
    Stall {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
        /// How long each stall lasts.
        duration: Duration,
        /// Repeat period, if any.
        every: Option<Duration>,
    },
    /// Running nodes become slow for `duration`: every input waits `delay`
    /// before it is processed (in order), while timers fire on time — a
    /// CPU-starved process, the case the Lifeguard paper measures: its
    /// probes time out before it reads the acks.
    Slow {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
        /// For how long.
        duration: Duration,
        /// How late each input is processed.
        delay: Duration,
    },
    /// The network splits: `amount` nodes (side A) and the rest (side B).
    Partition {
        /// How many nodes on side A.
        amount: Amount,
        /// When it starts.
        at: Duration,
        /// How long it lasts.
        duration: Duration,
        /// Only traffic from A to B is lost (B still reaches A).
        one_way: bool,
        /// The fraction of A–B links cut (1.0: all; less: a partial
        /// partition, where some pairs still talk and can relay).
        links: f64,
    },
    /// Extra packet loss for a while (on top of the network's).
    Loss {
        /// Loss probability per datagram.
        rate: f64,
        /// When it starts.
        at: Duration,
        /// How long it lasts.
        duration: Duration,
    },
    /// Running nodes change their metadata (a new incarnation), exercising
    /// the metadata invariant and dissemination.
    UpdateMeta {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
    },
}

impl Fault {
    /// When the fault starts.
    pub fn at(&self) -> Duration {
        match *self {
            Fault::Crash { at, .. }
            | Fault::Restart { at, .. }
            | Fault::Leave { at, .. }
            | Fault::Stall { at, .. }
            | Fault::Slow { at, .. }
            | Fault::Partition { at, .. }
            | Fault::Loss { at, .. }
            | Fault::UpdateMeta { at, .. } => at,
        }
    }

    /// When its disturbance is over: the cluster should converge within the
    /// bound after the last fault's end (`None` for a stall that repeats
    /// until the run ends).
    pub fn ends(&self, run_end: Duration) -> Option<Duration> {
        match *self {
            Fault::Crash { at, .. } | Fault::UpdateMeta { at, .. } => Some(at),
            Fault::Leave { at, timeout, .. } => Some(at + timeout),
            Fault::Restart { at, down_for, .. } => Some(at + down_for),
            Fault::Stall {
                at,
                duration,
                every: None,
                ..
            }
            | Fault::Partition { at, duration, .. }
            | Fault::Slow { at, duration, .. }
            | Fault::Loss { at, duration, .. } => Some(at + duration),
            Fault::Stall { every: Some(_), .. } => (run_end > Duration::ZERO).then_some(run_end),
        }
    }
}

/// A hook that adjusts each node's [`Config`] after the preset (and the
/// scenario's own switches) are applied: `(node index, config)`.
pub type ConfigHook = Arc<dyn Fn(usize, &mut Config) + Send + Sync>;

/// Everything a run depends on, besides nothing: a run is a pure function of
/// its scenario.
#[derive(Clone)]
pub struct Scenario {
    /// Cluster size.
    pub nodes: usize,
    /// The one seed every random choice comes from.
    pub seed: u64,
    /// Simulated time to run.
    pub duration: Duration,
    /// Cut the run short here: the same run as far as it goes (every time
    /// derived from [`duration`](Self::duration) stays), and no end-of-run
    /// check fires — a shrunk failure's prefix, not a shorter scenario.
    pub stop_at: Option<Duration>,
    /// Configuration preset.
    pub preset: Preset,
    /// Lifeguard on (the preset's values) or off: awareness disabled
    /// (`awareness_max_multiplier = 1`) and suspicion timeouts that do not
    /// shrink with confirmations (`suspicion_max_timeout_mult = 1`).
    pub lifeguard: bool,
    /// Catch-up push/pulls and corrections on (the preset's values) or off
    /// (Go's behaviour: `swim_core::CatchUp::off`).
    pub catch_up: bool,
    /// With catch-up on: a suspect gets a last probe before its death
    /// (`swim_core::CatchUp::last_probes_per_second`; off: zero).
    pub last_probes: bool,
    /// With catch-up on: accusations against a node are answered straight
    /// to the accuser and sender (`swim_core::CatchUp::refutations_per_second`;
    /// off: zero).
    pub direct_refutations: bool,
    /// With catch-up on: a death notice from an accuser held dead is a
    /// suspicion (`swim_core::CatchUp::doubt_dead_accusers`).
    pub doubt_dead_accusers: bool,
    /// With catch-up on: a push/pull state's suspect and dead entries are
    /// hearsay, the peer's suspicion told to the member alone
    /// (`swim_core::CatchUp::hearsay_per_second`; off: zero).
    pub hearsay: bool,
    /// Refutations in advance for members returning from the dead
    /// (`swim_core::CatchUp::refute_returning_per_second`, 10 when on; off
    /// by default, as in the presets for now).
    pub refute_returning: bool,
    /// LZW compression of packets and streams (Go's default: on).
    pub compression: bool,
    /// How the cluster forms.
    pub start: Start,
    /// The network.
    pub network: NetworkModel,
    /// Faults, in any order.
    pub faults: Vec<Fault>,
    /// At this time a random running node updates its metadata, and the
    /// report follows that one update to every node (the dissemination
    /// curve).
    pub disseminate_at: Option<Duration>,
    /// How often the time series of the report are sampled.
    pub sample_interval: Duration,
    /// Check the invariants (on by default; off only to measure their cost).
    pub check_invariants: bool,
    /// Stop at the first invariant violation.
    pub stop_on_violation: bool,
    /// Most violations listed in the report (all are counted).
    pub max_violations_listed: usize,
    /// Per-node configuration hook, applied last.
    pub config_hook: Option<ConfigHook>,
    /// The application every node runs, if any ([`app`](Self::app)).
    pub app: Option<AppFactory>,
    /// Checks over every node's application ([`invariant`](Self::invariant)).
    pub invariants: Vec<AppInvariant>,
    /// How often [`Check::Always`] invariants run.
    pub granularity: Granularity,
    /// Faults whose nodes are chosen by the application's state
    /// ([`aim`](Self::aim)), and heals.
    pub aimed: Vec<Aimed>,
    /// Each node's clock, if they stray ([`clocks`](Self::clocks)); `None`:
    /// every node reads the true time.
    pub clocks: Option<Clocks>,
    /// How many moments of each node's history are kept for a failure's
    /// context (0: none). Recording never changes a run.
    pub history: usize,
}

/// What an [`Aimed`] fault does to the nodes its target picks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// They crash.
    Crash,
    /// They crash and restart `down_for` later.
    Restart {
        /// How long they stay down.
        down_for: Duration,
    },
    /// They stall for `duration`.
    Stall {
        /// How long.
        duration: Duration,
    },
    /// They are cut off from the rest for `duration`.
    Partition {
        /// How long.
        duration: Duration,
    },
    /// Every fault ends: partitions and loss heal, stalls and slowness
    /// end, crashed nodes restart (the target is not asked).
    HealAll,
}

/// Picks an aimed fault's nodes from the applications' state.
pub type Target = Arc<dyn Fn(&Apps<'_>) -> Vec<usize> + Send + Sync>;

/// A fault aimed at the nodes a [`Target`] picks when it happens ("the
/// leader", "the node holding the lease").
#[derive(Clone)]
pub struct Aimed {
    /// When.
    pub at: Duration,
    /// What.
    pub action: Action,
    /// Which nodes.
    pub target: Target,
}

impl fmt::Debug for Aimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aimed")
            .field("at", &self.at)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("nodes", &self.nodes)
            .field("seed", &self.seed)
            .field("duration", &self.duration)
            .field("stop_at", &self.stop_at)
            .field("preset", &self.preset)
            .field("lifeguard", &self.lifeguard)
            .field("catch_up", &self.catch_up)
            .field("last_probes", &self.last_probes)
            .field("direct_refutations", &self.direct_refutations)
            .field("doubt_dead_accusers", &self.doubt_dead_accusers)
            .field("hearsay", &self.hearsay)
            .field("refute_returning", &self.refute_returning)
            .field("compression", &self.compression)
            .field("start", &self.start)
            .field("network", &self.network)
            .field("faults", &self.faults)
            .field("disseminate_at", &self.disseminate_at)
            .field("config_hook", &self.config_hook.is_some())
            .field("app", &self.app.is_some())
            .field("invariants", &self.invariants)
            .field("granularity", &self.granularity)
            .field("aimed", &self.aimed)
            .field("clocks", &self.clocks)
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// `nodes` nodes on `preset`, warm start, a clean LAN-like network, no
    /// faults, 60 simulated seconds.
    pub fn new(nodes: usize, seed: u64, preset: Preset) -> Scenario {
        Scenario {
            nodes,
            seed,
            duration: Duration::from_secs(60),
            stop_at: None,
            preset,
            lifeguard: true,
            catch_up: true,
            last_probes: true,
            direct_refutations: true,
            doubt_dead_accusers: true,
            hearsay: true,
            refute_returning: false,
            compression: true,
            start: Start::Warm,
            network: NetworkModel::default(),
            faults: Vec::new(),
            disseminate_at: None,
            sample_interval: Duration::from_secs(1),
            check_invariants: true,
            stop_on_violation: false,
            max_violations_listed: 100,
            config_hook: None,
            app: None,
            invariants: Vec::new(),
            granularity: Granularity::default(),
            aimed: Vec::new(),
            clocks: None,
            history: 64,
        }
    }

    /// Sets the simulated duration.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Starts as a cluster formed long ago ([`Start::Formed`]).
    pub fn formed(mut self) -> Self {
        self.start = Start::Formed;
        self
    }

    /// Bootstraps through `seeds` seeds, joins spread over `window`.
    pub fn bootstrap(mut self, seeds: usize, window: Duration) -> Self {
        self.start = Start::Bootstrap { seeds, window };
        self
    }

    /// Adds a fault.
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }

    /// Sets the network model.
    pub fn network(mut self, n: NetworkModel) -> Self {
        self.network = n;
        self
    }

    /// Turns Lifeguard on or off.
    pub fn lifeguard(mut self, on: bool) -> Self {
        self.lifeguard = on;
        self
    }

    /// Turns catch-up push/pulls and corrections on or off.
    pub fn catch_up(mut self, on: bool) -> Self {
        self.catch_up = on;
        self
    }

    /// Turns the last probe of a suspect before its death on or off.
    pub fn last_probes(mut self, on: bool) -> Self {
        self.last_probes = on;
        self
    }

    /// Turns refutations sent straight to the accuser on or off.
    pub fn direct_refutations(mut self, on: bool) -> Self {
        self.direct_refutations = on;
        self
    }

    /// Turns the doubt of death notices from accusers held dead on or off.
    pub fn doubt_dead_accusers(mut self, on: bool) -> Self {
        self.doubt_dead_accusers = on;
        self
    }

    /// Turns the handling of a push/pull state's verdicts as hearsay on or
    /// off.
    pub fn hearsay(mut self, on: bool) -> Self {
        self.hearsay = on;
        self
    }

    /// Turns the refutation in advance for returning members on or off.
    pub fn refute_returning(mut self, on: bool) -> Self {
        self.refute_returning = on;
        self
    }

    /// Follows one metadata update made at `at`.
    pub fn disseminate_at(mut self, at: Duration) -> Self {
        self.disseminate_at = Some(at);
        self
    }

    /// Adjusts every node's configuration.
    pub fn config_hook(
        mut self,
        hook: impl Fn(usize, &mut Config) + Send + Sync + 'static,
    ) -> Self {
        self.config_hook = Some(Arc::new(hook));
        self
    }

    /// Runs an application on every node: `make(i)` makes node `i`'s when
    /// its process starts (and a fresh one when it restarts).
    pub fn app<A: Application>(
        mut self,
        make: impl Fn(usize) -> A + Send + Sync + 'static,
    ) -> Self {
        self.app = Some(Arc::new(move |i| Box::new(make(i))));
        self
    }

    /// Checks `check` over every node's application `when` said; a failure
    /// is reported as a violation of rule `name` and fails the run.
    pub fn invariant(
        mut self,
        name: impl Into<String>,
        when: Check,
        check: impl Fn(&Apps<'_>) -> Result<(), AppFailure> + Send + Sync + 'static,
    ) -> Self {
        self.invariants.push(AppInvariant {
            name: name.into(),
            when,
            check: Arc::new(check),
        });
        self
    }

    /// At `at`, `action` on the nodes `target` picks from the applications'
    /// state then (a crash of "the leader").
    pub fn aim(
        mut self,
        at: Duration,
        action: Action,
        target: impl Fn(&Apps<'_>) -> Vec<usize> + Send + Sync + 'static,
    ) -> Self {
        self.aimed.push(Aimed {
            at,
            action,
            target: Arc::new(target),
        });
        self
    }

    /// Liveness after healing: at `heal_at` every fault ends
    /// ([`Action::HealAll`]), and `check` must hold at some point within
    /// `within` after (checked after every step); if it never does, rule
    /// `name` fails at the deadline.
    pub fn liveness(
        self,
        name: impl Into<String>,
        heal_at: Duration,
        within: Duration,
        check: impl Fn(&Apps<'_>) -> Result<(), AppFailure> + Send + Sync + 'static,
    ) -> Self {
        self.aim(heal_at, Action::HealAll, |_| Vec::new())
            .invariant(
                name,
                Check::Eventually {
                    from: heal_at,
                    within,
                },
                check,
            )
    }

    /// Gives every node its own clock, drawn from the seed.
    pub fn clocks(mut self, clocks: Clocks) -> Self {
        self.clocks = Some(clocks);
        self
    }

    /// Sets how often [`Check::Always`] invariants run.
    pub fn granularity(mut self, g: Granularity) -> Self {
        self.granularity = g;
        self
    }

    /// The end of the last disturbance: the last fault's end, the end of
    /// the join window (`None` for a stall that repeats to the end).
    pub fn quiet_from(&self) -> Option<Duration> {
        let mut quiet = match &self.start {
            Start::Warm | Start::Formed => Duration::ZERO,
            Start::Bootstrap { window, .. } => *window,
        };
        for f in &self.faults {
            quiet = quiet.max(f.ends(self.duration)?);
        }
        for a in &self.aimed {
            quiet = quiet.max(match a.action {
                Action::Crash | Action::HealAll => a.at,
                Action::Restart { down_for: d }
                | Action::Stall { duration: d }
                | Action::Partition { duration: d } => a.at + d,
            });
        }
        if let Some(d) = self.disseminate_at {
            quiet = quiet.max(d);
        }
        Some(quiet)
    }

    /// The configuration of node `i`.
    pub fn node_config(&self, i: usize) -> Config {
        let mut c = self.preset.config(node_name(i), node_addr(i));
        c.enable_compression = self.compression;
        if !self.lifeguard {
            c.awareness_max_multiplier = 1;
            c.suspicion_max_timeout_mult = 1;
        }
        if !self.catch_up {
            c.catch_up = swim_core::CatchUp::off();
        }
        if !self.last_probes {
            c.catch_up.last_probes_per_second = 0;
        }
        if !self.direct_refutations {
            c.catch_up.refutations_per_second = 0;
        }
        if !self.doubt_dead_accusers {
            c.catch_up.doubt_dead_accusers = false;
        }
        if !self.hearsay {
            c.catch_up.hearsay_per_second = 0;
        }
        if !self.refute_returning {
            c.catch_up.refute_returning_per_second = 0;
        } else if self.catch_up {
            c.catch_up.refute_returning_per_second = 10;
        }
        if let Some(h) = &self.config_hook {
            h(i, &mut c);
        }
        c
    }

    /// The time after which the cluster must have converged: the end of the
    /// last fault (or the last join), plus [`convergence_bound`](Self::convergence_bound).
    /// `None` when that lies beyond the run.
    pub fn convergence_deadline(&self) -> Option<Duration> {
        let deadline = self.quiet_from()? + self.convergence_bound();
        (deadline <= self.duration).then_some(deadline)
    }

    /// How long after the last disturbance every live node must see every
    /// live node alive, derived from node 0's configuration: two scaled
    /// push/pull intervals (the anti-entropy guarantee: one to be picked,
    /// one for the stagger), the longest suspicion (a false suspicion must
    /// be refuted or expire), twice the TCP timeout (a push/pull that
    /// hangs), the gossip rounds that carry an update to N nodes
    /// (retransmit limit + log_fanout N), and five probe intervals.
    pub fn convergence_bound(&self) -> Duration {
        let c = self.node_config(0);
        let n = self.nodes.max(1);
        let pp = c.push_pull_interval_at(n);
        let susp_max = c.suspicion_timeouts(n).max;
        let retransmit = u32::try_from(c.retransmit_limit(n)).unwrap_or(u32::MAX);
        let fanout = (c.gossip_nodes.max(2)) as f64;
        let rounds = retransmit + (libm::log(n as f64) / libm::log(fanout)).ceil() as u32;
        2 * pp + susp_max + 2 * c.tcp_timeout + c.gossip_interval * rounds + 5 * c.probe_interval
    }
}
