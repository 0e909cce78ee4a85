//! The discrete-event loop: a virtual clock, one event queue ordered by
//! (time, sequence), and the nodes, network and faults it drives. Inputs to
//! nodes are taken a window at a time (see [`Simulation`]); the nodes'
//! processing is in [`crate::node`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use swim_core::{Event, ExchangeError, Instant, SharedNames};

use crate::app::SimSwim;

use crate::naming::node_name;
use crate::network::{Fate, Network};
use crate::node::{Did, Due, Env, Input, Job, Node, Status, Tally};
use crate::report::{Report, Series};
use crate::rng::{derive, SimRng, StableHasher};
use crate::scenario::Scenario;
use crate::time::nanos;
use crate::tracker::Tracker;

mod apps;
mod faults;
mod report;
mod setup;
mod window;

pub use report::describe;

/// Chunks of less work than this ([`Due::work`], about microseconds) run on
/// one thread: waking another would cost more than it saves.
const PARALLEL_MIN_WORK: usize = 32;

/// Jobs handled before what they did is carried out.
const JOBS_PER_CHUNK: usize = 64;

/// Jobs kept for reuse.
const SPARE_JOBS: usize = 256;

#[derive(Debug)]
enum Ev {
    /// Due to one node: handled in a window.
    Node(u32, Due),
    Start(u32),
    Fault(usize),
    Restart(u32, u32),
    StallStart {
        node: u32,
        life: u32,
        duration: u64,
        every: Option<u64>,
    },
    StallEnd(u32, u32),
    JoinRetry(u32, u32),
    Disseminate,
    Sample,
    ConvergenceCheck,
    /// An aimed fault (its index in the scenario).
    Aimed(usize),
    /// The settled checks, if nothing changed since this was scheduled.
    Settle(u64),
    /// Liveness checks whose deadline this is.
    Deadline(u64),
}

struct Entry {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Message and traffic counters.
#[derive(Debug, Clone, Default)]
struct Counters {
    packets: u64,
    udp_bytes: u64,
    tcp_bytes: u64,
    exchanges: u64,
    dropped: u64,
    /// What the processes that stopped counted (running ones are added
    /// for the report).
    stopped: Tally,
    udp_bytes_at_sample: u64,
    peak_stream: usize,
}

/// A callback that sees every event a node emits: `(time, node, event)`.
pub type EventHook = Box<dyn FnMut(Duration, usize, &Event) + Send>;

/// A running simulation. [`run`](Self::run) does everything; the finer
/// methods let a test drive nodes itself between steps.
///
/// Time advances in windows as long as the shortest link's latency: nothing
/// a node sends in a window reaches another node before the window ends, so
/// the nodes of a window are independent. Each handles what is due to it,
/// on as many threads as [`with_threads`](Self::with_threads) allows; then
/// what they did (member changes, datagrams, streams, events) is carried
/// out in order of time, then node, then sequence. So a run is the same on
/// any number of threads.
pub struct Simulation {
    sc: Scenario,
    now: u64,
    end: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Entry>>,
    nodes: Vec<Node>,
    /// Every node's name, shared by all member tables.
    names: SharedNames,
    net: Network,
    rng: SimRng,
    tracker: Tracker,
    trace: StableHasher,
    /// How far a window reaches: the least link latency (at most 1 s).
    lookahead: u64,
    /// The current window's jobs, and spare ones to reuse.
    jobs: Vec<Job>,
    spare: Vec<Job>,
    /// `job_of[i]`: node `i`'s job in the current window, or `u32::MAX`.
    job_of: Vec<u32>,
    /// The window's logs, merged: (time, node, what).
    merged: Vec<(u64, u32, Did)>,
    /// No input may be scheduled before this (the current window's end).
    horizon: u64,
    threads: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
    counters: Counters,
    series: Series,
    queue_samples: Vec<f64>,
    faults_applied: Vec<(f64, String, Vec<String>)>,
    seeds: Vec<usize>,
    /// The warm start's datagrams (every node alive at incarnation 1).
    warm: Vec<Vec<u8>>,
    events: u64,
    wall: std::time::Instant,
    stopped: bool,
    checks: apps::AppChecks,
    /// The histories of the nodes the first failures name.
    contexts: Vec<crate::report::FailureContext>,
    hook: Option<EventHook>,
    check_frames: bool,
    progress: Option<(u64, u64)>,
    last_progress: (f64, u64),
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Sets up a run (no simulated time passes yet).
    pub fn new(scenario: Scenario) -> Simulation {
        let n = scenario.nodes;
        let seed = scenario.seed;
        let mut tracker = Tracker::new(
            n,
            seed,
            scenario.check_invariants,
            scenario.max_violations_listed,
        );
        let c0 = scenario.node_config(0);
        let susp_max = c0.suspicion_timeouts(n).max;
        tracker.blame_window =
            nanos(susp_max + 2 * c0.probe_interval * c0.awareness_max_multiplier);
        let mut sim = Simulation {
            end: nanos(scenario.duration),
            net: Network::new(scenario.network.clone(), seed),
            rng: SimRng::new(derive(seed, 4, 0)),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: (0..n)
                .map(|_| {
                    let mut node = Node::default();
                    node.history = crate::history::History::with_capacity(scenario.history);
                    node
                })
                .collect(),
            names: SharedNames::new((0..n).map(node_name)),
            tracker,
            trace: StableHasher::default(),
            lookahead: 0,
            jobs: Vec::new(),
            spare: Vec::new(),
            job_of: vec![u32::MAX; n],
            merged: Vec::new(),
            horizon: 0,
            threads: 1,
            pool: None,
            counters: Counters::default(),
            series: Series::default(),
            queue_samples: Vec::new(),
            faults_applied: Vec::new(),
            seeds: Vec::new(),
            warm: Vec::new(),
            events: 0,
            wall: std::time::Instant::now(),
            stopped: false,
            checks: apps::AppChecks::new(&scenario),
            contexts: Vec::new(),
            hook: None,
            check_frames: true,
            progress: None,
            last_progress: (0.0, 0),
            sc: scenario,
        };
        sim.lookahead = sim.net.links.min_latency().min(1_000_000_000);
        sim.schedule_start();
        sim
    }

    /// Handles the nodes of a window on up to `threads` threads (default 1).
    /// The run is the same for any number; on a machine with more cores, a
    /// large cluster runs faster.
    pub fn with_threads(mut self, threads: usize) -> Simulation {
        self.threads = threads.max(1);
        self.pool = None;
        self
    }

    /// Calls `hook` with every event any node emits.
    pub fn with_event_hook(
        mut self,
        hook: impl FnMut(Duration, usize, &Event) + Send + 'static,
    ) -> Simulation {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Prints a line on stderr every `every` of simulated time: wall time,
    /// events, and the speed since the previous line.
    pub fn with_progress(mut self, every: Duration) -> Simulation {
        self.progress = Some((nanos(every).max(1), nanos(every).max(1)));
        self
    }

    /// Skips measuring every stream with a
    /// [`StreamFramer`](swim_core::wire::StreamFramer) (on by default: a real
    /// adapter frames what it reads, and the check proves every stream is
    /// exactly one message).
    pub fn without_frame_checks(mut self) -> Simulation {
        self.check_frames = false;
        self
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.sc
    }

    /// Current simulated time.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// Node `i`'s state machine, if its process runs.
    pub fn node(&self, i: usize) -> Option<&SimSwim> {
        self.nodes.get(i)?.swim.as_deref()
    }

    /// Node `i`'s application, if its process runs and it is an `A`.
    pub fn app<A: crate::Application>(&self, i: usize) -> Option<&A> {
        let hosted = self.nodes.get(i)?.app.as_deref()?;
        hosted.app.as_any().downcast_ref::<A>()
    }

    /// Runs `f` on node `i`'s state machine now (a command: broadcast,
    /// update_meta, ping…), then carries out its outputs. `None` if the
    /// node is down.
    pub fn command<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut SimSwim, Instant) -> R,
    ) -> Option<R> {
        let now = Instant::from_nanos(self.now);
        let r = f(self.nodes.get_mut(i)?.swim.as_deref_mut()?, now);
        self.process(i);
        Some(r)
    }

    /// Whether every live node sees every live node alive now.
    pub fn converged(&self) -> bool {
        self.tracker.converged()
    }

    /// Invariant violations so far.
    pub fn violations(&self) -> &[crate::Violation] {
        &self.tracker.violations
    }

    fn push(&mut self, at: u64, ev: Ev) {
        debug_assert!(
            !matches!(ev, Ev::Node(..)) || at >= self.horizon,
            "an input at {at} falls in the window ending {}",
            self.horizon
        );
        self.seq += 1;
        self.queue.push(Reverse(Entry {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        }));
    }

    // ============================================================ running

    /// Runs to the scenario's end (or its [`stop_at`](Scenario::stop_at))
    /// and reports.
    pub fn run(mut self) -> Report {
        self.wall = std::time::Instant::now();
        let end = self.sc.stop_at.map_or(self.end, |c| nanos(c).min(self.end));
        self.run_until(Duration::from_nanos(end));
        self.finish()
    }

    /// Ends a run driven with [`run_until`](Self::run_until): the
    /// end-of-run checks fire if it reached the scenario's end (never on a
    /// run cut short), then the report.
    pub fn finish(mut self) -> Report {
        if self.now >= self.end && !self.checks.ended {
            self.checks.ended = true;
            self.check_apps(crate::app::Check::AtEnd);
        }
        self.take_contexts();
        self.report()
    }

    /// Processes every event up to `t` (simulated, since the start).
    pub fn run_until(&mut self, t: Duration) {
        let until = nanos(t).min(self.end);
        if self.threads > 1 && self.pool.is_none() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(self.threads)
                .thread_name(|k| format!("swim-sim-{k}"))
                .build();
            // Without threads (none may be spawned here), one is as good.
            self.pool = pool.ok().map(Arc::new);
        }
        match self.pool.clone() {
            Some(pool) => pool.install(|| self.run_events(until)),
            None => self.run_events(until),
        }
        self.now = self.now.max(until);
    }

    fn run_events(&mut self, until: u64) {
        while !self.stopped {
            let Some(Reverse(e)) = self.queue.peek() else {
                break;
            };
            if e.at > until {
                break;
            }
            if let Ev::Node(..) = e.ev {
                self.window(e.at, until);
            } else if let Some(Reverse(e)) = self.queue.pop() {
                self.now = e.at;
                self.horizon = e.at;
                self.events += 1;
                self.dispatch(e.ev);
            }
            self.after_step();
            if self.sc.stop_on_violation && self.tracker.violations_total > 0 {
                self.stopped = true;
            }
        }
    }

    /// One window from `start`: what is due to nodes before its end (at most
    /// one lookahead later, never past `until` or a global event), handled
    /// node by node, maybe in parallel, then carried out in order.
    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Node(..) => unreachable!("inputs to nodes are handled in windows"),
            Ev::Start(i) => self.start_node(i as usize),
            Ev::Fault(idx) => self.apply_fault(idx),
            Ev::Restart(i, life) => {
                if self.nodes[i as usize].life == life {
                    self.start_node(i as usize);
                }
            }
            Ev::StallStart {
                node,
                life,
                duration,
                every,
            } => {
                let i = node as usize;
                if self.nodes[i].life == life && self.nodes[i].status == Status::Up {
                    self.begin_stall(i, duration);
                }
                if let Some(e) = every {
                    if self.nodes[i].life == life && self.now + e < self.end {
                        self.push(
                            self.now + e,
                            Ev::StallStart {
                                node,
                                life,
                                duration,
                                every,
                            },
                        );
                    }
                }
            }
            Ev::StallEnd(i, life) => self.end_stall(i as usize, life),
            Ev::JoinRetry(i, life) => {
                let i = i as usize;
                if self.nodes[i].life == life
                    && self.nodes[i].status != Status::Down
                    && self.tracker.live[i]
                {
                    self.join(i);
                }
            }
            Ev::Disseminate => self.disseminate(),
            Ev::Sample => {
                self.sample();
                let next = self.now + nanos(self.sc.sample_interval).max(1);
                if next <= self.end {
                    self.push(next, Ev::Sample);
                }
            }
            Ev::ConvergenceCheck => self.check_convergence(),
            Ev::Aimed(k) => self.apply_aimed(k),
            Ev::Settle(at) => self.settle(at),
            Ev::Deadline(at) => self.check_eventually(Some(at)),
        }
    }

    /// Runs `f` on node `i` now, outside a window, and carries out what it
    /// did at once.
    fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Job, &Env<'_, '_>, u64) -> R) -> R {
        let now = self.now;
        self.horizon = now;
        let mut job = self.spare.pop().unwrap_or_default();
        // A window that ends now: whatever the node schedules goes to the queue.
        job.begin(i, std::mem::take(&mut self.nodes[i]), now);
        let shared = self.shared();
        let exact = self.exact(crate::app::View::of(&self.nodes));
        let env = Env {
            shared: &shared,
            exact: self.checks.exact.then_some(&exact),
        };
        let r = f(&mut job, &env, now);
        std::mem::swap(&mut self.nodes[i], &mut job.node);
        let mut log = std::mem::take(&mut job.log);
        for (at, did) in log.drain(..) {
            self.carry_out(at, i, did);
        }
        job.log = log;
        job.give_back_scratch();
        self.spare.push(job);
        r
    }

    /// Drains node `i` now: member changes into the tracker, outputs into
    /// the network, its next deadline into the queue.
    fn process(&mut self, i: usize) {
        self.with_node(i, |job, sh, now| job.drain(sh, now));
    }

    /// Carries out what node `i` did at `at`.
    fn carry_out(&mut self, at: u64, i: usize, did: Did) {
        self.now = at;
        match did {
            Did::Change(ch) => self.tracker.on_change(at, i, ch),
            Did::Violation {
                rule,
                observer,
                member,
                detail,
            } => self.tracker.violate(at, rule, observer, member, detail),
            Did::AppViolation {
                rule,
                nodes,
                detail,
            } => self.app_violation(at, &rule, &nodes, detail),
            Did::Packet { to, data, hash } => {
                self.counters.packets += 1;
                self.counters.udp_bytes += data.len() as u64;
                let Some(t) = to else {
                    self.counters.dropped += 1;
                    return;
                };
                match self.net.datagram(i, t, at) {
                    Fate::Lost => self.counters.dropped += 1,
                    Fate::Delivered(d, copy) => {
                        let from = i as u32;
                        if let Some(c) = copy {
                            let data = data.clone();
                            let input = Input::Packet { from, data, hash };
                            self.push(at + c, Ev::Node(t as u32, Due::Deliver(input)));
                        }
                        let input = Input::Packet { from, data, hash };
                        self.push(at + d, Ev::Node(t as u32, Due::Deliver(input)));
                    }
                }
            }
            Did::Connect {
                to,
                id,
                data,
                expect_reply,
                life,
            } => {
                self.counters.exchanges += 1;
                self.counters.tcp_bytes += data.len() as u64;
                self.counters.peak_stream = self.counters.peak_stream.max(data.len());
                let Some(t) = to else {
                    return; // the node was told it failed
                };
                if self.net.cut(i, t, at) || self.net.cut(t, i, at) || self.net.stream_lost() {
                    return; // no handshake: the initiator times out
                }
                // SYN, SYN-ACK, then the data.
                let arrives =
                    at + 2 * self.net.links.latency(i, t) + self.net.stream_leg(i, t, data.len());
                let input = Input::Stream {
                    from: i as u32,
                    from_life: life,
                    exchange: id,
                    data,
                    expect_reply,
                };
                self.push(arrives, Ev::Node(t as u32, Due::Deliver(input)));
            }
            Did::Reply { stream: p, data } => {
                let len = data.as_ref().map_or(0, Vec::len);
                self.counters.tcp_bytes += len as u64;
                self.counters.peak_stream = self.counters.peak_stream.max(len);
                let result = match (p.expect_reply, data) {
                    (false, _) => Ok(Vec::new()),
                    (true, Some(d)) => Ok(d),
                    (true, None) => Err(ExchangeError::Io(swim_core::IoKind::Other)),
                };
                let to = p.initiator as usize;
                if self.net.cut(i, to, at) || self.net.stream_lost() {
                    return;
                }
                let arrives = at + self.net.stream_leg(i, to, len);
                let input = Input::Result {
                    life: p.life,
                    exchange: p.exchange,
                    result,
                };
                self.push(arrives, Ev::Node(p.initiator, Due::Deliver(input)));
            }
            Did::Event(e) => {
                if let Event::JoinCompleted { joined: 0, .. } = e {
                    let life = self.nodes[i].life;
                    if self.nodes[i].join_attempts < 30 {
                        self.push(at + 1_000_000_000, Ev::JoinRetry(i as u32, life));
                    }
                }
                if let Some(h) = &mut self.hook {
                    h(Duration::from_nanos(at), i, &e);
                }
            }
            Did::Later { at: when, due } => self.push(when, Ev::Node(i as u32, due)),
            Did::Send {
                at: when,
                to,
                input,
            } => {
                self.push(when, Ev::Node(to, Due::Deliver(input)));
            }
            Did::Stopped { tally } => {
                self.counters.stopped.add(&tally);
                self.tracker.stop(at, i, false);
            }
        }
    }
}
