//! The discrete-event loop: a virtual clock, one event queue ordered by
//! (time, sequence), and the nodes, network and faults it drives. Inputs to
//! nodes are taken a window at a time (see [`Simulation`]); the nodes'
//! processing is in [`crate::node`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use swim_core::wire::{pack_compounds, Alive, Message, Transport};
use swim_core::{Event, ExchangeError, Instant, SharedNames, Swim};

use crate::network::{Fate, Network, Partition};
use crate::node::{Did, Due, Input, Job, Node, Shared, Status, NONE, SCRATCH_KEPT};
use crate::report::{mean, quantile, DisseminationReport, Report, Series};
use crate::rng::{derive, SimRng, StableHasher};
use crate::scenario::{nanos, node_addr, node_name, Fault, Scenario, Start};
use crate::tracker::Tracker;

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
    /// Messages received by type byte, from the nodes' own stats (nodes
    /// that stopped are added when they stop).
    messages: [u64; 14],
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
    hook: Option<EventHook>,
    check_frames: bool,
    progress: Option<(u64, u64)>,
    last_progress: (f64, u64),
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
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
            nodes: (0..n).map(|_| Node::default()).collect(),
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
    pub fn node(&self, i: usize) -> Option<&Swim> {
        self.nodes.get(i)?.swim.as_deref()
    }

    /// Runs `f` on node `i`'s state machine now (a command: broadcast,
    /// update_meta, ping…), then carries out its outputs. `None` if the
    /// node is down.
    pub fn command<R>(&mut self, i: usize, f: impl FnOnce(&mut Swim, Instant) -> R) -> Option<R> {
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

    // ============================================================ setup

    fn schedule_start(&mut self) {
        let n = self.sc.nodes;
        match self.sc.start.clone() {
            Start::Warm | Start::Formed => {
                self.warm = self.warm_datagrams();
                for i in 0..n {
                    self.push(0, Ev::Start(i as u32));
                }
            }
            Start::Bootstrap { seeds, window } => {
                let k = seeds.clamp(1, n.max(1));
                self.seeds = (0..k.min(n)).collect();
                for i in 0..n {
                    let at = if i < k {
                        0
                    } else {
                        self.rng.below(nanos(window).max(1))
                    };
                    self.push(at, Ev::Start(i as u32));
                }
            }
        }
        if self.seeds.is_empty() {
            self.seeds = (0..n.min(3)).collect();
        }
        for (idx, f) in self.sc.faults.clone().iter().enumerate() {
            self.push(nanos(f.at()), Ev::Fault(idx));
        }
        if let Some(at) = self.sc.disseminate_at {
            self.push(nanos(at), Ev::Disseminate);
        }
        self.push(0, Ev::Sample);
        if let Some(d) = self.sc.convergence_deadline() {
            self.push(nanos(d), Ev::ConvergenceCheck);
        }
    }

    /// The warm start's datagrams: an alive message for every node at
    /// incarnation 1, packed into compounds that fit a LAN packet, encoded
    /// once and handed to every node.
    fn warm_datagrams(&self) -> Vec<Vec<u8>> {
        let n = self.sc.nodes;
        let alives: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let name = node_name(i);
                let addr = node_addr(i);
                let ip = match addr {
                    SocketAddr::V4(v4) => v4.ip().octets().to_vec(),
                    SocketAddr::V6(v6) => v6.ip().octets().to_vec(),
                };
                let vsn = self.sc.node_config(i).vsn();
                let mut m = Vec::with_capacity(64);
                Message::Alive(Alive {
                    incarnation: 1,
                    node: &name,
                    addr: ip.into(),
                    port: addr.port(),
                    meta: (&[][..]).into(),
                    vsn: vsn[..].into(),
                })
                .encode(Transport::Packet, &mut m);
                m
            })
            .collect();
        let size = self.sc.node_config(0).udp_buffer_size;
        pack_compounds(alives.iter().map(Vec::as_slice), size)
    }

    fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.status != Status::Down {
            return;
        }
        node.life += 1;
        node.slow = (0, 0);
        let life = node.life;
        let config = self.sc.node_config(i);
        let seed = derive(self.sc.seed, 1 + life as u64, i as u64);
        let now = Instant::from_nanos(self.now);
        let built = Swim::builder(config, seed)
            .shared_names(self.names.clone())
            .record_member_changes()
            .build(now);
        let swim = match built {
            Ok(s) => s,
            Err(e) => {
                self.tracker
                    .violate(self.now, "bad-config", Some(i), None, e.to_string());
                self.stopped = true;
                return;
            }
        };
        self.nodes[i].start(i, swim);
        self.tracker.start(self.now, i);
        self.process(i);
        self.join(i);
    }

    /// Node `i` joins: the warm start's datagrams (first life of a warm
    /// start), or a push/pull with one live seed.
    fn join(&mut self, i: usize) {
        let warm = matches!(self.sc.start, Start::Warm | Start::Formed) && self.nodes[i].life == 1;
        if warm {
            let life = self.nodes[i].life;
            let warm = Due::Deliver(Input::Warm { life });
            self.push(self.now + 1_000_000, Ev::Node(i as u32, warm));
            return;
        }
        let target = {
            let live_seeds: Vec<usize> = self
                .seeds
                .iter()
                .copied()
                .filter(|&s| s != i && self.tracker.live[s])
                .collect();
            let pool: Vec<usize> = if live_seeds.is_empty() {
                (0..self.sc.nodes)
                    .filter(|&s| s != i && self.tracker.live[s])
                    .collect()
            } else {
                live_seeds
            };
            if pool.is_empty() {
                None // the first seed: nothing to join
            } else {
                Some(node_addr(pool[self.rng.below(pool.len() as u64) as usize]))
            }
        };
        if let Some(t) = target {
            self.nodes[i].join_attempts += 1;
            self.command(i, |s, now| s.join(now, &[t]));
        }
    }

    // ============================================================ running

    /// Runs to the scenario's end and reports.
    pub fn run(mut self) -> Report {
        self.wall = std::time::Instant::now();
        let end = self.end;
        self.run_until(Duration::from_nanos(end));
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
            if self.sc.stop_on_violation && self.tracker.violations_total > 0 {
                self.stopped = true;
            }
        }
    }

    /// One window from `start`: what is due to nodes before its end (at most
    /// one lookahead later, never past `until` or a global event), handled
    /// node by node, maybe in parallel, then carried out in order.
    fn window(&mut self, start: u64, until: u64) {
        let mut end = start
            .saturating_add(self.lookahead)
            .min(until.saturating_add(1));
        let mut last = start;
        while let Some(Reverse(e)) = self.queue.peek() {
            if e.at >= end {
                break;
            }
            if !matches!(e.ev, Ev::Node(..)) {
                // Faults, samples and the like see everything before them done.
                end = if last == e.at { e.at + 1 } else { e.at };
                break;
            }
            let Some(Reverse(Entry {
                at,
                ev: Ev::Node(i, due),
                ..
            })) = self.queue.pop()
            else {
                unreachable!("peeked a node's input");
            };
            last = at;
            let i = i as usize;
            let k = match self.job_of[i] {
                u32::MAX => {
                    let mut job = self.spare.pop().unwrap_or_default();
                    job.begin(i, std::mem::take(&mut self.nodes[i]), 0);
                    self.job_of[i] = self.jobs.len() as u32;
                    self.jobs.push(job);
                    self.jobs.len() - 1
                }
                k => k as usize,
            };
            let job = &mut self.jobs[k];
            job.work += due.work();
            job.due.push_back((at, due));
        }
        self.horizon = end;
        let mut jobs = std::mem::take(&mut self.jobs);
        for job in &mut jobs {
            job.end = end;
        }
        // A job logs nothing before its first input: in this order, what the
        // jobs left can be carried out a chunk at a time, up to the next
        // job's first input, and memory stays bounded in the largest window
        // (a warm start: every node reads every member at once).
        jobs.sort_unstable_by_key(Job::first);
        let mut merged = std::mem::take(&mut self.merged);
        let mut from = 0;
        while from < jobs.len() {
            let to = jobs.len().min(from + JOBS_PER_CHUNK);
            let last = to == jobs.len();
            let chunk = &mut jobs[from..to];
            let work: usize = chunk.iter().map(|j| j.work).sum();
            {
                let sh = self.shared();
                if self.pool.is_some() && chunk.len() > 1 && work >= PARALLEL_MIN_WORK {
                    chunk.par_iter_mut().for_each(|job| job.run(&sh));
                } else {
                    for job in chunk.iter_mut() {
                        job.run(&sh);
                    }
                }
            }
            for job in chunk.iter_mut() {
                let i = job.i;
                self.job_of[i] = u32::MAX;
                self.events += job.events;
                self.nodes[i] = std::mem::take(&mut job.node);
            }
            if let ([job], true, true) = (&mut *chunk, merged.is_empty(), last) {
                // The window's only node (most windows of a quiet cluster):
                // its log is already in order.
                for (at, did) in job.log.drain(..) {
                    self.carry_out(at, job.i, did);
                }
                job.give_back_scratch();
                break;
            }
            for job in chunk.iter_mut() {
                let i = job.i as u32;
                merged.extend(job.log.drain(..).map(|(at, did)| (at, i, did)));
                job.give_back_scratch();
            }
            let mark = jobs.get(to).map_or((NONE, u32::MAX), |j| {
                let (at, i) = j.first();
                (at, i as u32)
            });
            // Each node's log is in order of time: a stable sort by time, then
            // node, keeps each node's order within an instant.
            merged.sort_by_key(|&(at, i, _)| (at, i));
            let ready = merged.partition_point(|&(at, i, _)| (at, i) < mark);
            for (at, i, did) in merged.drain(..ready) {
                self.carry_out(at, i as usize, did);
            }
            from = to;
        }
        debug_assert!(merged.is_empty());
        if merged.capacity() > SCRATCH_KEPT {
            merged = Vec::new();
        }
        self.merged = merged;
        for job in jobs.drain(..) {
            if self.spare.len() < SPARE_JOBS {
                self.spare.push(job);
            }
        }
        self.jobs = jobs;
    }

    fn shared(&self) -> Shared<'_> {
        Shared {
            links: &self.net.links,
            warm: &self.warm,
            formed: self.sc.start == Start::Formed,
            check_frames: self.check_frames,
            check_bounds: self.tracker.check,
            all_events: self.hook.is_some(),
            nodes: self.sc.nodes,
        }
    }

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
        }
    }

    /// Runs `f` on node `i` now, outside a window, and carries out what it
    /// did at once.
    fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Job, &Shared<'_>, u64) -> R) -> R {
        let now = self.now;
        self.horizon = now;
        let mut job = self.spare.pop().unwrap_or_default();
        // A window that ends now: whatever the node schedules goes to the queue.
        job.begin(i, std::mem::take(&mut self.nodes[i]), now);
        let r = f(&mut job, &self.shared(), now);
        self.nodes[i] = std::mem::take(&mut job.node);
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
                if self.net.cut(i, t, at) || self.net.cut(t, i, at) {
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
                    (true, None) => Err(ExchangeError::Io),
                };
                let to = p.initiator as usize;
                if self.net.cut(i, to, at) {
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
            Did::Stopped { messages } => {
                self.count_messages(&messages);
                self.tracker.stop(at, i, false);
            }
        }
    }

    fn count_messages(&mut self, messages: &[u64; 14]) {
        for (acc, x) in self.counters.messages.iter_mut().zip(messages) {
            *acc += x;
        }
    }

    // ============================================================ faults

    /// Up to `k` random nodes among those `eligible`.
    fn choose(&mut self, k: usize, eligible: impl Fn(&Simulation, usize) -> bool) -> Vec<usize> {
        let pool: Vec<usize> = (0..self.sc.nodes).filter(|&i| eligible(self, i)).collect();
        let mut picked = self.rng.pick(&pool, k);
        picked.sort_unstable();
        picked
    }

    fn applied(&mut self, what: String, nodes: &[usize]) {
        self.trace.bytes(what.as_bytes());
        for &i in nodes {
            self.trace.u64(i as u64);
        }
        self.faults_applied.push((
            secs(self.now),
            what,
            nodes.iter().map(|&i| node_name(i)).collect(),
        ));
    }

    fn apply_fault(&mut self, idx: usize) {
        let f = self.sc.faults[idx].clone();
        let n = self.sc.nodes;
        let live = |s: &Simulation, i: usize| s.tracker.live[i];
        match f {
            Fault::Crash { amount, .. } => {
                let v = self.choose(amount.of(n), live);
                self.applied("crash".into(), &v);
                for i in v {
                    self.stop_node(i, true);
                }
            }
            Fault::Restart {
                amount, down_for, ..
            } => {
                let v = self.choose(amount.of(n), live);
                self.applied(format!("restart after {down_for:?}"), &v);
                for i in v {
                    self.stop_node(i, true);
                    let life = self.nodes[i].life;
                    self.push(self.now + nanos(down_for), Ev::Restart(i as u32, life));
                }
            }
            Fault::Leave {
                amount, timeout, ..
            } => {
                let v = self.choose(amount.of(n), |s, i| {
                    s.tracker.live[i] && s.nodes[i].status == Status::Up
                });
                self.applied("leave".into(), &v);
                for i in v {
                    self.tracker.leave(self.now, i);
                    self.command(i, |s, now| s.leave(now, timeout));
                }
            }
            Fault::Stall {
                amount,
                duration,
                every,
                ..
            } => {
                let v = self.choose(amount.of(n), |s, i| {
                    s.tracker.live[i] && s.nodes[i].status == Status::Up
                });
                self.applied(format!("stall for {duration:?} every {every:?}"), &v);
                for i in v {
                    let life = self.nodes[i].life;
                    let ev = Ev::StallStart {
                        node: i as u32,
                        life,
                        duration: nanos(duration),
                        every: every.map(nanos),
                    };
                    match every {
                        // Repeating stalls start at a random phase per node.
                        Some(p) => {
                            let at = self.now + self.rng.below(nanos(p).max(1));
                            self.push(at, ev);
                        }
                        None => self.dispatch(ev),
                    }
                }
            }
            Fault::Slow {
                amount,
                duration,
                delay,
                ..
            } => {
                let v = self.choose(amount.of(n), live);
                self.applied(format!("slow by {delay:?} for {duration:?}"), &v);
                for &i in &v {
                    self.nodes[i].slow = (self.now + nanos(duration), nanos(delay));
                    self.tracker.disturbances.stalled_until[i] = self.now + nanos(duration);
                }
            }
            Fault::Partition {
                amount,
                duration,
                one_way,
                links,
                ..
            } => {
                let k = amount.of(n);
                let all: Vec<usize> = (0..n).collect();
                let mut side = self.rng.pick(&all, k);
                side.sort_unstable();
                let mut bits = vec![0u64; n.div_ceil(64)];
                for &i in &side {
                    bits[i / 64] |= 1 << (i % 64);
                }
                let until = self.now + nanos(duration);
                self.net.partitions.push(Partition {
                    side_a: bits.clone(),
                    one_way,
                    links,
                    salt: self.rng.next_u64(),
                    from: self.now,
                    until,
                });
                self.tracker
                    .disturbances
                    .partitions
                    .push((self.now, until, bits));
                self.applied(
                    format!(
                        "partition for {duration:?}{}{}",
                        if one_way { ", one way" } else { "" },
                        if links < 1.0 {
                            format!(", {:.0}% of links", links * 100.0)
                        } else {
                            String::new()
                        }
                    ),
                    &side,
                );
            }
            Fault::Loss { rate, duration, .. } => {
                self.net.bursts.push((rate, self.now + nanos(duration)));
                self.applied(format!("loss {:.1}% for {duration:?}", rate * 100.0), &[]);
            }
            Fault::UpdateMeta { amount, .. } => {
                let v = self.choose(amount.of(n), |s, i| {
                    s.tracker.live[i] && s.nodes[i].status == Status::Up
                });
                self.applied("update meta".into(), &v);
                let tag = self.now;
                for i in v {
                    let meta = format!("meta@{tag}");
                    self.command(i, |s, now| {
                        let _ = s.update_meta(now, meta.as_bytes());
                    });
                }
            }
        }
    }

    /// Stops node `i`'s process (a crash, or the shutdown after a leave).
    fn stop_node(&mut self, i: usize, crash: bool) {
        if self.nodes[i].status == Status::Down {
            return;
        }
        let messages = self.nodes[i].stop(i);
        self.count_messages(&messages);
        self.tracker.stop(self.now, i, crash);
    }

    fn begin_stall(&mut self, i: usize, duration: u64) {
        let life = self.nodes[i].life;
        let node = &mut self.nodes[i];
        node.status = Status::Stalled;
        node.timer_at = NONE;
        node.trace.u64(0x5354_414c ^ i as u64);
        self.tracker.disturbances.stalled_until[i] = u64::MAX;
        self.push(self.now + duration, Ev::StallEnd(i as u32, life));
    }

    fn end_stall(&mut self, i: usize, life: u32) {
        let node = &mut self.nodes[i];
        if node.life != life || node.status != Status::Stalled {
            return;
        }
        node.status = Status::Up;
        self.tracker.disturbances.stalled_until[i] = self.now;
        self.with_node(i, |job, sh, now| job.resume(sh, now));
    }

    fn disseminate(&mut self) {
        let v = self.choose(1, |s, i| {
            s.tracker.live[i] && s.nodes[i].status == Status::Up
        });
        let Some(&m) = v.first() else { return };
        self.applied("disseminate".into(), &v);
        let Some(s) = self.nodes[m].swim.as_mut() else {
            return;
        };
        let _ = s.update_meta(Instant::from_nanos(self.now), b"disseminated");
        let inc = s.local_node().incarnation;
        self.tracker.follow(self.now, m, inc);
        self.process(m);
    }

    fn sample(&mut self) {
        if let Some((every, next)) = self.progress {
            if self.now >= next {
                let wall = self.wall.elapsed().as_secs_f64();
                let (w0, e0) = self.last_progress;
                let sim_step = secs(every);
                eprintln!(
                    "[{:>8.1}s simulated] wall {:>8.1}s (+{:.2}s: {:.1}x real time), {} events (+{:.0}/s), live {}, converged {}, rss {} MB",
                    secs(self.now),
                    wall,
                    wall - w0,
                    sim_step / (wall - w0).max(1e-9),
                    self.events,
                    (self.events - e0) as f64 / (wall - w0).max(1e-9),
                    self.tracker.live_count,
                    self.tracker.converged(),
                    current_rss().unwrap_or(0) / (1 << 20)
                );
                self.last_progress = (wall, self.events);
                self.progress = Some((every, next + every));
            }
        }
        let (view, conv, exact) = self.tracker.convergence_sample();
        let mut total = 0usize;
        let mut max = 0usize;
        let mut running = 0usize;
        for node in &self.nodes {
            if let Some(s) = &node.swim {
                let q = s.broadcast_queue_len();
                total += q;
                max = max.max(q);
                running += 1;
            }
        }
        let qmean = if running > 0 {
            total as f64 / running as f64
        } else {
            0.0
        };
        let interval = secs(nanos(self.sc.sample_interval)).max(1e-9);
        let bytes = self.counters.udp_bytes - self.counters.udp_bytes_at_sample;
        self.counters.udp_bytes_at_sample = self.counters.udp_bytes;
        let s = &mut self.series;
        s.t_s.push(secs(self.now));
        s.live.push(self.tracker.live_count);
        s.view_fraction.push(view);
        s.converged_fraction.push(conv);
        s.exact_fraction.push(exact);
        s.queue_mean.push(qmean);
        s.queue_max.push(max);
        s.udp_bytes_per_node_per_s
            .push(bytes as f64 / interval / running.max(1) as f64);
        self.queue_samples.push(qmean);
        self.net.expire(self.now);
    }

    fn check_convergence(&mut self) {
        if self.tracker.converged() || !self.tracker.check {
            return;
        }
        let pairs = self.tracker.unconverged_pairs(5);
        let detail = pairs
            .iter()
            .map(|(o, m, v)| format!("{} sees {} as {:?}", node_name(*o), node_name(*m), v))
            .collect::<Vec<_>>()
            .join("; ");
        let (o, m) = pairs
            .first()
            .map_or((None, None), |&(o, m, _)| (Some(o), Some(m)));
        self.tracker.violate(
            self.now,
            "no-convergence",
            o,
            m,
            format!(
                "not converged {:.1}s after the last disturbance (the bound): {detail}",
                secs(nanos(self.sc.convergence_bound()))
            ),
        );
    }

    // ============================================================ report

    /// The report of the run so far.
    pub fn report(&self) -> Report {
        let wall = self.wall.elapsed().as_secs_f64();
        let sim_s = secs(self.now);
        let n = self.sc.nodes.max(1) as f64;
        let node_s = (n * sim_s).max(1e-9);
        let mut messages = self.counters.messages;
        for node in &self.nodes {
            if let Some(s) = &node.swim {
                for (acc, x) in messages.iter_mut().zip(s.stats().messages.iter()) {
                    *acc += x;
                }
            }
        }
        const KINDS: [&str; 14] = [
            "ping",
            "indirect_ping",
            "ack",
            "suspect",
            "alive",
            "dead",
            "push_pull",
            "compound",
            "user",
            "compress",
            "encrypt",
            "nack",
            "crc",
            "error",
        ];
        let messages_per_node_per_s = KINDS
            .iter()
            .zip(messages.iter())
            .filter(|(_, &c)| c > 0)
            .map(|(k, &c)| (k.to_string(), c as f64 / node_s))
            .collect();
        let d = &self.tracker.detections;
        let firsts: Vec<f64> = d.iter().filter_map(|x| x.first_dead_s).collect();
        let suspects: Vec<f64> = d.iter().filter_map(|x| x.first_suspect_s).collect();
        let alls: Vec<f64> = d.iter().filter_map(|x| x.all_dead_s).collect();
        let changes = &self.tracker.convergence_changes;
        let converged_at_s = if self.tracker.converged() {
            changes.last().map(|&(t, _)| secs(t))
        } else {
            None
        };
        // Not before every node of the initial start has started.
        let started = match &self.sc.start {
            Start::Warm | Start::Formed => 1,
            Start::Bootstrap { window, .. } => nanos(*window),
        };
        let first_converged_at_s = changes
            .iter()
            .find(|c| c.1 && c.0 >= started)
            .map(|&(t, _)| secs(t));
        let c = &self.counters;
        Report {
            nodes: self.sc.nodes,
            seed: self.sc.seed,
            config: self.sc.preset.name().to_string(),
            lifeguard: self.sc.lifeguard,
            scenario: describe(&self.sc),
            simulated_seconds: sim_s,
            wall_seconds: wall,
            speedup: sim_s / wall.max(1e-9),
            events: self.events,
            events_per_wall_second: self.events as f64 / wall.max(1e-9),
            trace_hash: format!("{:016x}", self.trace_hash()),
            converged_at_s,
            first_converged_at_s,
            convergence_bound_s: self.sc.convergence_bound().as_secs_f64(),
            convergence_deadline_s: self.sc.convergence_deadline().map(|d| d.as_secs_f64()),
            crashes: d.len(),
            suspect_first_s: mean(&suspects),
            detection_first_s: mean(&firsts),
            detection_first_p50_s: quantile(&firsts, 0.5),
            detection_first_max_s: quantile(&firsts, 1.0),
            detection_all_p50_s: quantile(&alls, 0.5),
            detection_all_mean_s: mean(&alls),
            detection_all_max_s: quantile(&alls, 1.0),
            detection_incomplete: d
                .iter()
                .filter(|x| x.all_dead_s.is_none() && !x.restarted)
                .count(),
            false_positives: self.tracker.fp.healthy,
            false_positives_stalled: self.tracker.fp.stalled,
            false_positives_partitioned: self.tracker.fp.partitioned,
            false_positive_records: self.tracker.fp.observer_records,
            false_suspicions: self.tracker.fp.suspicions[0],
            false_suspicions_stalled: self.tracker.fp.suspicions[1],
            false_suspicions_partitioned: self.tracker.fp.suspicions[2],
            blame_window_s: secs(self.tracker.blame_window),
            false_positive_examples: self
                .tracker
                .fp
                .examples
                .iter()
                .map(|&(t, o, m, k)| (secs(t), node_name(o), node_name(m), k.to_string()))
                .collect(),
            bytes_per_node_per_s: (c.udp_bytes + c.tcp_bytes) as f64 / node_s,
            packets_per_node_per_s: c.packets as f64 / node_s,
            udp_bytes_per_node_per_s: c.udp_bytes as f64 / node_s,
            tcp_bytes_per_node_per_s: c.tcp_bytes as f64 / node_s,
            exchanges_per_node_per_s: c.exchanges as f64 / node_s,
            messages_per_node_per_s,
            packets_dropped: c.dropped,
            broadcast_queue_peak: self.series.queue_max.iter().copied().max().unwrap_or(0),
            broadcast_queue_mean: mean(&self.queue_samples).unwrap_or(0.0),
            peak_member_table_entries: self.nodes.iter().map(|n| n.peak_entries).max().unwrap_or(0),
            peak_member_table_bytes: c.peak_stream,
            peak_rss_bytes: peak_rss(),
            tracker_bytes: self.tracker.views.heap_bytes(),
            detections: d.clone(),
            dissemination: self.dissemination_report(),
            series: self.series.clone(),
            sample_interval_s: self.sc.sample_interval.as_secs_f64(),
            invariant_violations: self.tracker.violations.clone(),
            invariant_violations_total: self.tracker.violations_total,
            faults_applied: self.faults_applied.clone(),
        }
    }

    /// The run's own trace, then every node's.
    fn trace_hash(&self) -> u64 {
        let mut h = self.trace.clone();
        for node in &self.nodes {
            h.u64(node.trace.finish());
        }
        h.finish()
    }

    fn dissemination_report(&self) -> Option<DisseminationReport> {
        let d = self.tracker.dissemination.as_ref()?;
        let pop = d.population.max(1) as f64;
        let at = |q: f64| {
            let need = (q * pop).ceil() as usize;
            (need >= 1 && need <= d.arrivals.len()).then(|| secs(d.arrivals[need - 1]))
        };
        Some(DisseminationReport {
            node: node_name(d.node),
            incarnation: d.incarnation,
            started_at_s: secs(d.start),
            population: d.population,
            reached_fraction: d.arrivals.len() as f64 / pop,
            t50_s: at(0.5),
            t99_s: at(0.99),
            t9999_s: at(0.9999),
            t100_s: at(1.0),
            curve: d
                .arrivals
                .iter()
                .enumerate()
                .map(|(k, &t)| [secs(t), (k + 1) as f64 / pop])
                .collect(),
        })
    }
}

/// The scenario in one line.
pub fn describe(sc: &Scenario) -> String {
    let mut s = format!(
        "{} nodes, {}, seed {}, {:?}",
        sc.nodes,
        sc.preset.name(),
        sc.seed,
        sc.duration
    );
    match &sc.start {
        Start::Warm => s += ", warm start",
        Start::Formed => s += ", formed cluster",
        Start::Bootstrap { seeds, window } => {
            s += &format!(", bootstrap through {seeds} seeds over {window:?}")
        }
    }
    if !sc.lifeguard {
        s += ", lifeguard off";
    }
    if !sc.compression {
        s += ", no compression";
    }
    let net = &sc.network;
    s += &format!(", latency {:?}", net.latency);
    if net.loss > 0.0 {
        s += &format!(", loss {}%", net.loss * 100.0);
    }
    if net.duplicate > 0.0 {
        s += &format!(", dup {}%", net.duplicate * 100.0);
    }
    if net.reorder > 0.0 {
        s += &format!(", reorder {}%", net.reorder * 100.0);
    }
    for f in &sc.faults {
        s += &format!(", {f:?}");
    }
    s
}

/// Resident set size of this process now, from `/proc/self/status`.
pub fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Peak resident set size of this process, from `/proc/self/status`.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
