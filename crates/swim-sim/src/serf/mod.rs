//! Serf nodes in the simulator (feature `serf`): every simulated node runs
//! a [`swim_serf::Serf`] as its [`Application`](crate::Application), wired
//! as [`SerfNode`](swim_serf::SerfNode) wires one to a running node, with
//! [`SerfDelegate`](swim_serf::SerfDelegate) as its state machine's
//! delegate (push/pull state, coordinates in acks). A [`Workload`] of user
//! events and queries runs on it, and Serf's invariants are checked:
//!
//! - `serf-safety` (after every step): no process delivers a user event
//!   twice, and no member, event or query Lamport clock goes back;
//! - `serf-events-everywhere` (at the end): every user event whose origin
//!   stayed up reached every node up from its sending on;
//! - `serf-queries-answered` (at the end): only nodes that pass a query's
//!   filters (names, tags) answer it, within its timeout; while its origin
//!   stays up, every node up from its sending on that it reaches answers,
//!   and the answer gets back. (A query is not repaired by push/pull: in Go
//!   Serf as here it may miss a node, so reaching all is not checked.)
//! - `serf-coordinates` (at the end, if asked for): the median and 90th
//!   percentile of the relative error of the nodes' RTT estimates against
//!   the simulated RTTs ([`Apps::rtt`](crate::Apps::rtt)) are within
//!   bounds.
//!
//! `serf-safety` is a [`Check::Always`] check: with
//! the default [`Granularity::Callback`](crate::Granularity::Callback) a
//! window's nodes run on one thread, so large runs are faster with
//! [`Granularity::Step`](crate::Granularity::Step) (a violation is still
//! stamped with its exact time and node).
//!
//! Simulated nodes have no keyring (key queries go unanswered, counted as
//! `serf.key_queries_unanswered`) and unique names (a lost name conflict
//! is counted as `serf.shutdowns`).
//!
//! ```
//! use std::time::Duration;
//! use swim_sim::serf::SerfSim;
//! use swim_sim::{Amount, Fault, Preset, Scenario, Simulation};
//!
//! let serf = SerfSim::new()
//!     .event(Duration::from_secs(3), 0)
//!     .event(Duration::from_secs(6), 4)
//!     .query(Duration::from_secs(8), 2, Default::default());
//! let scenario = Scenario::new(12, 7, Preset::Local)
//!     .formed()
//!     .duration(Duration::from_secs(20))
//!     .fault(Fault::Crash { amount: Amount::Count(1), at: Duration::from_secs(4) });
//! let report = Simulation::new(serf.install(scenario)?).run();
//! assert!(report.ok(), "{:?}", report.invariant_violations);
//! assert!(report.app_metrics["serf.user_events_delivered"] >= 2 * 11);
//! # Ok::<(), swim_serf::SerfError>(())
//! ```

mod app;
mod checks;
mod model;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_serf::{QueryParams, Serf, SerfConfig, SerfError};

use crate::app::{AppFailure, Check};
use crate::naming::node_name;
use crate::rng::{derive, SimRng};
use crate::scenario::Scenario;

pub use app::SerfApp;
pub use checks::{clock_regression, coordinate_errors, passes_filters, quantile};
pub use model::{dissemination_rounds, serf_io_rounds};

/// Makes node `i`'s Serf configuration.
pub(crate) type ConfigFn = dyn Fn(usize) -> SerfConfig + Send + Sync;

/// The roles [`default_config`] tags nodes with, in turn: `role=web`,
/// `role=db`, `role=cache`.
pub const ROLES: [&str; 3] = ["web", "db", "cache"];

/// Go Serf's defaults for node `i`, tagged `role` with [`ROLES`]`[i % 3]`.
pub fn default_config(i: usize) -> SerfConfig {
    let mut c = SerfConfig::new(node_name(i));
    c.tags.insert("role".into(), ROLES[i % ROLES.len()].into());
    c
}

/// Something a node does at a simulated time.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// A user event (named `ev-K`, K its index in the workload).
    Event {
        /// When.
        at: Duration,
        /// Which node sends it.
        from: usize,
    },
    /// A query (named `q-K`); every node that gets it answers with its name.
    Query {
        /// When.
        at: Duration,
        /// Which node asks.
        from: usize,
        /// Filters, timeout, relays.
        params: QueryParams,
    },
}

impl Planned {
    /// When.
    pub fn at(&self) -> Duration {
        match self {
            Planned::Event { at, .. } | Planned::Query { at, .. } => *at,
        }
    }

    /// Which node.
    pub fn from(&self) -> usize {
        match self {
            Planned::Event { from, .. } | Planned::Query { from, .. } => *from,
        }
    }
}

/// The user events and queries of a run. An item whose node is down at
/// its time is not done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workload {
    /// What happens, in any order.
    pub items: Vec<Planned>,
}

impl Workload {
    /// `events` user events from random nodes at random times in
    /// `[1 s, events_until)`, then `queries` queries from random nodes, one
    /// every second from `queries_from`, each with random filters (none,
    /// three names, or a role) and relay factor 0–2.
    pub fn random(
        nodes: usize,
        seed: u64,
        events: usize,
        events_until: Duration,
        queries: usize,
        queries_from: Duration,
    ) -> Workload {
        let mut r = SimRng::new(derive(seed, 0x5345_5246, 0));
        let n = nodes.max(1) as u64;
        let span = events_until.as_millis().saturating_sub(1000).max(1) as u64;
        let mut items: Vec<Planned> = (0..events)
            .map(|_| Planned::Event {
                at: Duration::from_millis(1000 + r.below(span)),
                from: r.below(n) as usize,
            })
            .collect();
        for q in 0..queries {
            let mut params = QueryParams {
                relay_factor: r.below(3) as u8,
                ..QueryParams::default()
            };
            match r.below(3) {
                0 => {}
                1 => params.filter_nodes = (0..3).map(|_| node_name(r.below(n) as usize)).collect(),
                _ => {
                    let role = ROLES[r.below(ROLES.len() as u64) as usize];
                    params.filter_tags = vec![("role".into(), format!("^{role}$"))];
                }
            }
            items.push(Planned::Query {
                at: queries_from + Duration::from_secs(q as u64),
                from: r.below(n) as usize,
                params,
            });
        }
        Workload { items }
    }

    /// When the last item is over: its time, and for a query its timeout
    /// (`default_timeout` where it has none).
    pub fn ends(&self, default_timeout: Duration) -> Duration {
        self.items
            .iter()
            .map(|p| match p {
                Planned::Event { at, .. } => *at,
                Planned::Query { at, params, .. } => {
                    *at + params.timeout.unwrap_or(default_timeout)
                }
            })
            .max()
            .unwrap_or_default()
    }
}

/// A bug planted in the Serf application, to see the checks catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// Every user event is delivered twice.
    DeliverTwice,
    /// Node 1 never delivers user events.
    DropEvents,
    /// No node answers queries.
    IgnoreQueries,
}

/// Serf on every node of a scenario, its workload and its checks: see the
/// [module](self).
#[derive(Clone)]
pub struct SerfSim {
    config: Arc<ConfigFn>,
    workload: Workload,
    coordinates: Option<(f64, f64)>,
    bug: Option<PlantedBug>,
}

impl std::fmt::Debug for SerfSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerfSim")
            .field("workload", &self.workload)
            .field("coordinates", &self.coordinates)
            .field("bug", &self.bug)
            .finish_non_exhaustive()
    }
}

impl Default for SerfSim {
    fn default() -> Self {
        SerfSim::new()
    }
}

impl SerfSim {
    /// Serf with [`default_config`] on every node, no workload.
    pub fn new() -> SerfSim {
        SerfSim {
            config: Arc::new(default_config),
            workload: Workload::default(),
            coordinates: None,
            bug: None,
        }
    }

    /// Node `i` runs Serf with `config(i)` (its name and random seed are
    /// the simulator's, whatever it says; its gossip interval the Swim's).
    pub fn config(mut self, config: impl Fn(usize) -> SerfConfig + Send + Sync + 'static) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Node `from` sends a user event at `at`.
    pub fn event(mut self, at: Duration, from: usize) -> Self {
        self.workload.items.push(Planned::Event { at, from });
        self
    }

    /// Node `from` asks a query at `at`.
    pub fn query(mut self, at: Duration, from: usize, params: QueryParams) -> Self {
        self.workload
            .items
            .push(Planned::Query { at, from, params });
        self
    }

    /// Adds `workload`'s items.
    pub fn workload(mut self, workload: Workload) -> Self {
        self.workload.items.extend(workload.items);
        self
    }

    /// Checks at the end that the coordinates converged: median and 90th
    /// percentile relative RTT errors at most `median` and `p90`.
    pub fn coordinates(mut self, median: f64, p90: f64) -> Self {
        self.coordinates = Some((median, p90));
        self
    }

    /// Plants `bug`, for the checks' own tests.
    pub fn plant(mut self, bug: PlantedBug) -> Self {
        self.bug = Some(bug);
        self
    }

    /// Node `i`'s Serf configuration in `sc`.
    fn node_config(&self, sc: &Scenario, i: usize) -> SerfConfig {
        let mut c = (self.config)(i);
        c.name = node_name(i);
        c.seed = derive(sc.seed, 0x5345_5246, i as u64);
        c.gossip_interval = sc.node_config(i).gossip_interval;
        c
    }

    /// How long after its last item and the last fault a run lasts for
    /// the end-of-run checks to be fair: the membership's convergence
    /// bound, or — if longer — enough push/pull rounds for anti-entropy
    /// to carry an event that gossip missed (one sent inside a partition)
    /// to everyone: `log2(n) + 4` scaled intervals, as an epidemic.
    pub fn settle_time(sc: &Scenario) -> Duration {
        let n = sc.nodes.max(2);
        let rounds = (n as f64).log2().ceil() as u32 + 4;
        let repair = sc.node_config(0).push_pull_interval_at(n) * rounds;
        sc.convergence_bound().max(repair)
    }

    /// `sc`, lasting at least [`settle_time`](Self::settle_time) past the
    /// last fault and the workload's last item.
    pub fn long_enough(&self, mut sc: Scenario) -> Scenario {
        let timeout = self.default_query_timeout(&sc);
        let quiet = sc
            .quiet_from()
            .unwrap_or(sc.duration)
            .max(self.workload.ends(timeout));
        sc.duration = sc
            .duration
            .max(quiet + Self::settle_time(&sc) + Duration::from_secs(1));
        sc
    }

    /// Go's default query timeout for the whole cluster.
    fn default_query_timeout(&self, sc: &Scenario) -> Duration {
        let c = self.node_config(sc, 0);
        let scale = ((sc.nodes + 1) as f64).log10().ceil() as u32;
        c.gossip_interval * c.query_timeout_mult * scale
    }

    /// `sc` with Serf on every node (its Swim set up by
    /// [`SerfConfig::swim_config`] after any hook `sc` has), the workload
    /// and the checks. Fails if a node's configuration is invalid.
    pub fn install(self, sc: Scenario) -> Result<Scenario, SerfError> {
        for i in 0..sc.nodes {
            Serf::new(self.node_config(&sc, i))?;
        }
        let sim = Arc::new(self);
        let configs: Vec<SerfConfig> = (0..sc.nodes).map(|i| sim.node_config(&sc, i)).collect();
        let configs = Arc::new(configs);
        let previous = sc.config_hook.clone();
        let hook_configs = configs.clone();
        let sc = sc.config_hook(move |i, c| {
            if let Some(hook) = &previous {
                hook(i, c);
            }
            // Validated above.
            if let Some(serf) = hook_configs.get(i) {
                if let Ok(swim) = serf.swim_config(c.clone()) {
                    *c = swim;
                }
            }
        });
        let ledger = Arc::new(Mutex::new(checks::Ledger::default()));
        let workload = Arc::new(sim.workload.clone());
        let (app_ledger, app_configs, bug) = (ledger.clone(), configs.clone(), sim.bug);
        let app_workload = workload.clone();
        let sc = sc.app(move |i| {
            let config = app_configs
                .get(i)
                .cloned()
                .unwrap_or_else(|| default_config(i));
            let serf = Serf::new(config).expect("every node's configuration was validated above");
            SerfApp::new(serf, app_workload.clone(), app_ledger.clone(), bug)
        });
        let read = |l: &Arc<Mutex<checks::Ledger>>| {
            let l = l.clone();
            move |check: &mut dyn FnMut(&checks::Ledger) -> Result<(), AppFailure>| {
                check(&l.lock().unwrap_or_else(|e| e.into_inner()))
            }
        };
        let (safety, events, queries) = (read(&ledger), read(&ledger), read(&ledger));
        let filter_configs = configs.clone();
        let config_of = move |i: usize| {
            filter_configs
                .get(i)
                .cloned()
                .unwrap_or_else(|| default_config(i))
        };
        let mut sc = sc
            .invariant("serf-safety", Check::Always, move |_| {
                safety(&mut checks::safety)
            })
            .invariant("serf-events-everywhere", Check::AtEnd, move |apps| {
                events(&mut |l| checks::events_everywhere(apps, l))
            })
            .invariant("serf-queries-answered", Check::AtEnd, move |apps| {
                queries(&mut |l| checks::queries_answered(apps, l, &workload, &config_of))
            });
        if let Some((median, p90)) = sim.coordinates {
            sc = sc.invariant("serf-coordinates", Check::AtEnd, move |apps| {
                checks::coordinates(apps, median, p90)
            });
        }
        Ok(sc)
    }
}

/// A seed's scenario of the protocol's [`sweep`](crate::sweep) made a Serf
/// run: Serf on every node, four user events from random nodes in the
/// first 40 s (while the faults happen), three queries once the faults
/// are over and the membership has had its convergence bound to settle,
/// and the run lasting [`long_enough`](SerfSim::long_enough) for every
/// check. The network's steady datagram loss is turned off (its loss
/// bursts, partitions and crashes stay): a query's answer is a single
/// datagram, so a lost one would fail `serf-queries-answered` though Serf
/// did everything right. For [`sweep::run_with`](crate::sweep::run_with)
/// and [`sweep::Cli::run`](crate::sweep::Cli::run).
pub fn sweep_scenario(mut sc: Scenario, bug: Option<PlantedBug>) -> Scenario {
    sc.network.loss = 0.0;
    let settled = sc.quiet_from().unwrap_or_default() + sc.convergence_bound();
    let workload = Workload::random(sc.nodes, sc.seed, 4, Duration::from_secs(40), 3, settled);
    let mut serf = SerfSim::new().workload(workload);
    if let Some(bug) = bug {
        serf = serf.plant(bug);
    }
    let sc = serf.long_enough(sc);
    serf.install(sc)
        .expect("the default configurations are valid")
}

/// The name of the workload's user event `k`.
pub(crate) fn event_name(k: usize) -> String {
    format!("ev-{k}")
}

/// The name of the workload's query `k`.
pub(crate) fn query_name(k: usize) -> String {
    format!("q-{k}")
}

/// The workload's index of a query named by [`query_name`].
pub(crate) fn query_index(name: &str) -> Option<usize> {
    name.strip_prefix("q-")?.parse().ok()
}
