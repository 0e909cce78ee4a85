//! One simulated node's process: what it does with the inputs due to it in a
//! window of simulated time.
//!
//! A node's processing touches only its own state, so the nodes of a window
//! run on any number of threads. What reaches beyond the node (member
//! changes, datagrams, streams, events, later inputs) is logged with its
//! time as a [`Did`], and the engine carries the logs of a window out in one
//! fixed order: the run is the same on any number of threads.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use swim_core::wire::{Frame, MessageType, StreamFramer, StreamRole};
use swim_core::{Event, ExchangeError, ExchangeId, Instant, MemberChange, Output, StreamId};

use crate::app::SimSwim;

use crate::app::{AppInvariant, Application, Apps, Check, Machine, NodeContext, View};
use crate::history::{History, What};
use crate::naming::{addr_index, node_addr, node_index};
use crate::network::{Links, Network};
use crate::rng::{hash_bytes, SimRng, StableHasher};
use crate::time::nanos;

/// No deadline.
pub(crate) const NONE: u64 = u64::MAX;

/// Where the warm start's datagrams come from (TEST-NET-1, never a node).
const ORACLE: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 0, 2, 1),
    7946,
));

/// Scratch capacity kept after a burst.
pub(crate) const SCRATCH_KEPT: usize = 256;

/// How long an exchange with an address that is no node takes to fail.
const REFUSED_AFTER: u64 = 1_000_000;

/// What a node can be handed; queued while it stalls.
#[derive(Debug)]
pub(crate) enum Input {
    Packet {
        from: u32,
        data: Vec<u8>,
        hash: u64,
    },
    Stream {
        from: u32,
        from_life: u32,
        exchange: ExchangeId,
        data: Vec<u8>,
        expect_reply: bool,
    },
    Result {
        life: u32,
        exchange: ExchangeId,
        result: Result<Vec<u8>, ExchangeError>,
    },
    /// The warm start: every node's alive message, as shared datagrams.
    Warm {
        life: u32,
    },
    /// A timer the node's application set.
    AppTimer {
        life: u32,
        token: u64,
    },
}

/// Something due to a node at a time.
#[derive(Debug)]
pub(crate) enum Due {
    /// Its deadline (stale unless it is still the node's deadline).
    Timer,
    /// An input arriving (late if the node is slow).
    Deliver(Input),
    /// An input a slow node gets to after its delay.
    Late(Input),
}

impl Due {
    /// A rough cost of handling it, in microseconds of a 2020s core: enough to
    /// tell whether a window is worth handing to other threads.
    pub(crate) fn work(&self) -> usize {
        let input = match self {
            Due::Timer => return 4,
            Due::Deliver(input) | Due::Late(input) => input,
        };
        let bytes = match input {
            Input::Packet { data, .. } | Input::Stream { data, .. } => data.len(),
            Input::Result { result, .. } => result.as_ref().map_or(0, Vec::len),
            Input::Warm { .. } => return 100_000,
            Input::AppTimer { .. } => return 4,
        };
        2 + bytes / 50
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Status {
    /// Not started yet (bootstrap) or crashed, or shut down after leaving.
    #[default]
    Down,
    Up,
    Stalled,
}

/// A stream a node accepted and has not answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingStream {
    pub(crate) initiator: u32,
    pub(crate) life: u32,
    pub(crate) exchange: ExchangeId,
    pub(crate) expect_reply: bool,
}

/// One node: its process (if running) and what the simulator keeps for it.
pub(crate) struct Node {
    pub(crate) swim: Option<Box<SimSwim>>,
    pub(crate) status: Status,
    /// Incremented at every start: inputs for an older process are dropped.
    pub(crate) life: u32,
    pub(crate) timer_at: u64,
    pub(crate) backlog: Vec<Input>,
    /// Slow until (ns), and by how much each input is late.
    pub(crate) slow: (u64, u64),
    pub(crate) join_attempts: u32,
    streams: BTreeMap<u64, PendingStream>,
    next_stream: u64,
    /// Everything it took in and gave out, hashed in order.
    pub(crate) trace: StableHasher,
    pub(crate) peak_entries: usize,
    /// The user's application on this process, if the run has one (boxed:
    /// a node is moved in and out of every job, and most runs have none).
    pub(crate) app: Option<Box<Hosted>>,
    /// Its last moments, for a failure's context.
    pub(crate) history: History,
    /// What outlives its processes (with an application): disk, clock,
    /// the application's counters.
    pub(crate) machine: Option<Box<Machine>>,
    /// Its process crashed (and has not restarted): a heal restarts it.
    pub(crate) crashed: bool,
}

/// An application on a node's process, with its own random stream.
pub(crate) struct Hosted {
    pub(crate) app: Box<dyn Application>,
    pub(crate) rng: SimRng,
    /// Timers set during a call, (when, token): scheduled after it.
    pub(crate) timers: Vec<(u64, u64)>,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            swim: None,
            status: Status::Down,
            life: 0,
            timer_at: NONE,
            backlog: Vec::new(),
            slow: (0, 0),
            join_attempts: 0,
            streams: BTreeMap::new(),
            next_stream: 0,
            trace: StableHasher::default(),
            peak_entries: 0,
            app: None,
            history: History::default(),
            machine: None,
            crashed: false,
        }
    }
}

impl Node {
    /// Runs `swim` as this node's new process.
    pub(crate) fn start(&mut self, i: usize, swim: SimSwim) {
        self.swim = Some(Box::new(swim));
        self.status = Status::Up;
        self.timer_at = NONE;
        self.join_attempts = 0;
        self.crashed = false;
        self.streams.clear();
        self.trace.u64(0x0053_5441_5254 ^ i as u64);
    }

    /// Ends its process at `now`; returns the process's counts.
    pub(crate) fn stop(&mut self, i: usize, now: u64) -> Tally {
        self.history.note(now, What::Stopped, None, 0);
        if let Some(m) = self.machine.as_deref_mut() {
            m.disk.sync(); // a clean exit; a crash drops the unsynced first
        }
        let tally = self
            .swim
            .take()
            .map_or_else(Tally::default, |s| Tally::of(s.stats()));
        self.app = None;
        self.status = Status::Down;
        self.backlog.clear();
        self.timer_at = NONE;
        self.trace.u64(0x5354_4f50 ^ i as u64);
        tally
    }
}

/// What a process counted, for the report: messages received by type byte,
/// catch-up push/pulls started and, of those, reconnects.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) messages: [u64; MessageType::COUNT],
    pub(crate) catch_up: u64,
    pub(crate) reconnects: u64,
}

impl Tally {
    pub(crate) fn of(stats: &swim_core::Stats) -> Tally {
        Tally {
            messages: stats.messages,
            catch_up: stats.catch_up_push_pulls,
            reconnects: stats.reconnects,
        }
    }

    pub(crate) fn add(&mut self, other: &Tally) {
        for (acc, x) in self.messages.iter_mut().zip(other.messages) {
            *acc += x;
        }
        self.catch_up += other.catch_up;
        self.reconnects += other.reconnects;
    }
}

/// What a node did that reaches beyond it.
#[derive(Debug)]
pub(crate) enum Did {
    Change(MemberChange),
    Packet {
        /// `None`: not a node's address.
        to: Option<usize>,
        data: Vec<u8>,
        hash: u64,
    },
    Connect {
        /// `None`: not another node's address (it was told the exchange failed).
        to: Option<usize>,
        id: ExchangeId,
        data: Vec<u8>,
        expect_reply: bool,
        life: u32,
    },
    Reply {
        stream: PendingStream,
        data: Option<Vec<u8>>,
    },
    Event(Event),
    Violation {
        rule: &'static str,
        observer: Option<usize>,
        member: Option<usize>,
        detail: String,
    },
    /// An application invariant broke after one of its callbacks.
    AppViolation {
        rule: String,
        nodes: Vec<usize>,
        detail: String,
    },
    /// Something due to itself at `at`, after the window.
    Later {
        at: u64,
        due: Due,
    },
    /// An input for another node, arriving at `at`.
    Send {
        at: u64,
        to: u32,
        input: Input,
    },
    /// Its process ended (the shutdown after a leave).
    Stopped {
        /// Boxed: the other kinds are half its size.
        tally: Box<Tally>,
    },
}

/// What every node's processing may read: shared by the threads of a window.
pub(crate) struct Shared<'a> {
    pub(crate) links: &'a Links,
    pub(crate) warm: &'a [Vec<u8>],
    /// The warm start forgets its gossip (a cluster formed long ago).
    pub(crate) formed: bool,
    pub(crate) check_frames: bool,
    pub(crate) check_bounds: bool,
    /// Whether every event is wanted (by a hook); else only failed joins.
    pub(crate) all_events: bool,
    pub(crate) nodes: usize,
}

/// What a node's processing reads: the [`Shared`] part, and — when checks
/// run after every callback, on one thread — the invariants and where the
/// other nodes are (not `Sync`: applications need not be).
#[derive(Clone, Copy)]
pub(crate) struct Env<'s, 'a> {
    pub(crate) shared: &'s Shared<'a>,
    pub(crate) exact: Option<&'s Exact<'s>>,
}

impl<'s, 'a> Env<'s, 'a> {
    /// No checks after callbacks.
    pub(crate) fn of(shared: &'s Shared<'a>) -> Self {
        Env {
            shared,
            exact: None,
        }
    }
}

impl<'a> std::ops::Deref for Env<'_, 'a> {
    type Target = Shared<'a>;
    fn deref(&self) -> &Shared<'a> {
        self.shared
    }
}

/// What checking after every callback reads.
#[derive(Clone, Copy)]
pub(crate) struct Exact<'a> {
    pub(crate) invariants: &'a [AppInvariant],
    pub(crate) view: View<'a>,
    pub(crate) live: &'a [bool],
    pub(crate) stalled_until: &'a [u64],
    pub(crate) net: &'a Network,
}

/// Which application callback ran.
#[derive(Clone, Copy)]
pub(crate) enum Callback<'e> {
    Started,
    Event(&'e Event),
    Timer(u64),
}

impl Callback<'_> {
    fn describe(&self, i: usize) -> String {
        let node = crate::naming::node_name(i);
        match self {
            Callback::Started => format!("{node}'s start"),
            Callback::Timer(t) => format!("{node}'s timer {t}"),
            Callback::Event(e) => {
                let e = match e {
                    Event::MemberJoined(m) => format!("MemberJoined({})", m.name),
                    Event::MemberUpdated(m) => format!("MemberUpdated({})", m.name),
                    Event::MemberLeft(m) => format!("MemberLeft({})", m.name),
                    Event::MemberFailed(m) => format!("MemberFailed({})", m.name),
                    Event::UserMessage { .. } => "UserMessage".into(),
                    other => {
                        let d = format!("{other:?}");
                        d.split([' ', '(', '{']).next().unwrap_or("").to_string()
                    }
                };
                format!("{node}'s event {e}")
            }
        }
    }
}

/// A node's work in one window: the node itself (moved in for the window),
/// what is due to it, and what it did.
#[derive(Default)]
pub(crate) struct Job {
    pub(crate) i: usize,
    pub(crate) node: Node,
    /// Due before `end`, in order; what the node schedules for itself before
    /// `end` joins it.
    pub(crate) due: VecDeque<(u64, Due)>,
    /// What it did, in order, each with its time.
    pub(crate) log: Vec<(u64, Did)>,
    /// Inputs handled (stale timers included).
    pub(crate) events: u64,
    /// The estimated cost of what is due ([`Due::work`]).
    pub(crate) work: usize,
    /// The window's end: what the node schedules for itself before it is
    /// handled in the window.
    pub(crate) end: u64,
    outputs: Vec<Output>,
}

impl Job {
    /// Takes on node `i` for a window that ends (exclusive) at `end`.
    pub(crate) fn begin(&mut self, i: usize, node: Node, end: u64) {
        self.i = i;
        self.node = node;
        self.end = end;
        self.events = 0;
        self.work = 0;
    }

    /// The time of its first input, and its node: it logs nothing before.
    pub(crate) fn first(&self) -> (u64, usize) {
        (self.due.front().map_or(NONE, |d| d.0), self.i)
    }

    /// Drops scratch capacity a burst left (a warm start logs a million
    /// changes) before the job is kept for reuse.
    pub(crate) fn give_back_scratch(&mut self) {
        if self.log.capacity() > SCRATCH_KEPT {
            self.log = Vec::new();
        }
        if self.due.capacity() > SCRATCH_KEPT {
            self.due = VecDeque::new();
        }
        if self.outputs.capacity() > SCRATCH_KEPT {
            self.outputs = Vec::new();
        }
    }

    /// Handles everything due, in order.
    pub(crate) fn run(&mut self, sh: &Env<'_, '_>) {
        while self.run_next(sh) {}
    }

    /// Handles the first thing due; `false` if nothing is.
    pub(crate) fn run_next(&mut self, sh: &Env<'_, '_>) -> bool {
        if let Some((now, due)) = self.due.pop_front() {
            self.events += 1;
            match due {
                Due::Timer => self.fire(sh, now),
                Due::Deliver(input) => {
                    let (until, delay) = self.node.slow;
                    if now < until && self.node.status != Status::Down {
                        self.schedule(now, now + delay, Due::Late(input));
                    } else {
                        self.deliver(sh, now, input);
                    }
                }
                Due::Late(input) => self.deliver(sh, now, input),
            }
            return true;
        }
        false
    }

    /// Schedules `due` for itself at `at`: in this window if it falls in it.
    fn schedule(&mut self, now: u64, at: u64, due: Due) {
        if at < self.end {
            let k = self.due.partition_point(|&(a, _)| a <= at);
            self.due.insert(k, (at, due));
        } else {
            self.log.push((now, Did::Later { at, due }));
        }
    }

    fn fire(&mut self, sh: &Env<'_, '_>, now: u64) {
        let node = &mut self.node;
        if node.status != Status::Up || node.timer_at != now {
            return;
        }
        node.timer_at = NONE;
        node.history.note(now, What::Timer, None, 0);
        if let Some(s) = node.swim.as_mut() {
            s.handle_timeout(Instant::from_nanos(now));
        }
        node.trace.u64(now);
        node.trace.u64(self.i as u64);
        self.drain(sh, now);
    }

    fn deliver(&mut self, sh: &Env<'_, '_>, now: u64, input: Input) {
        match self.node.status {
            Status::Down => {
                // A stream to a dead process is refused; the rest is lost.
                if let Input::Stream {
                    from,
                    from_life,
                    exchange,
                    ..
                } = input
                {
                    let at = now + sh.links.latency(self.i, from as usize);
                    let input = Input::Result {
                        life: from_life,
                        exchange,
                        result: Err(ExchangeError::Io(swim_core::IoKind::Other)),
                    };
                    self.log.push((
                        now,
                        Did::Send {
                            at,
                            to: from,
                            input,
                        },
                    ));
                }
            }
            Status::Stalled => self.node.backlog.push(input),
            Status::Up => self.handle_input(sh, now, input),
        }
    }

    /// A stall ends: timers first (they all fire late), then the input
    /// that waited.
    pub(crate) fn resume(&mut self, sh: &Env<'_, '_>, now: u64) {
        let i = self.i as u64;
        self.node.history.note(now, What::Resumed, None, 0);
        if let Some(s) = self.node.swim.as_mut() {
            s.handle_timeout(Instant::from_nanos(now));
        }
        self.node.trace.u64(now);
        self.node.trace.u64(0x0045_4e44 ^ i);
        self.drain(sh, now);
        for input in std::mem::take(&mut self.node.backlog) {
            if self.node.status != Status::Up {
                break;
            }
            self.handle_input(sh, now, input);
        }
    }

    fn handle_input(&mut self, sh: &Env<'_, '_>, now: u64, input: Input) {
        let i = self.i;
        let at = Instant::from_nanos(now);
        let node = &mut self.node;
        let trace = &mut node.trace;
        trace.u64(now);
        trace.u64(i as u64);
        match input {
            Input::Packet { from, data, hash } => {
                trace.u64(1);
                trace.u64(hash);
                let kind = data.first().copied().unwrap_or(u8::MAX);
                node.history
                    .note(now, What::Received(kind), Some(from as usize), data.len());
                let Some(s) = node.swim.as_mut() else { return };
                s.handle_packet(at, node_addr(from as usize), &data);
            }
            Input::Stream {
                from,
                from_life,
                exchange,
                data,
                expect_reply,
            } => {
                trace.u64(2);
                trace.u64(hash_bytes(&data));
                node.history
                    .note(now, What::StreamIn, Some(from as usize), data.len());
                let Some(s) = node.swim.as_mut() else { return };
                if sh.check_frames {
                    let mut framer =
                        StreamFramer::new(StreamRole::Accept, s.envelope().limits().clone());
                    if framer.frame(&data) != Ok(Frame::Complete { len: data.len() }) {
                        let detail = format!(
                            "a stream of {} bytes is not exactly one message",
                            data.len()
                        );
                        self.log.push((
                            now,
                            Did::Violation {
                                rule: "stream-framing",
                                observer: Some(from as usize),
                                member: Some(i),
                                detail,
                            },
                        ));
                    }
                }
                node.next_stream += 1;
                let sid = node.next_stream;
                node.streams.insert(
                    sid,
                    PendingStream {
                        initiator: from,
                        life: from_life,
                        exchange,
                        expect_reply,
                    },
                );
                s.handle_stream(at, StreamId(sid), node_addr(from as usize), &data);
            }
            Input::Result {
                life,
                exchange,
                result,
            } => {
                if life != node.life {
                    return; // the connection died with the old process
                }
                trace.u64(3);
                trace.u64(exchange.0);
                let len = result.as_ref().map_or(0, Vec::len);
                node.history
                    .note(now, What::Exchange(result.is_ok()), None, len);
                match &result {
                    Ok(b) => trace.u64(hash_bytes(b)),
                    Err(e) => trace.bytes(e.to_string().as_bytes()),
                }
                let Some(s) = node.swim.as_mut() else { return };
                if let (true, Ok(b)) = (sh.check_frames, &result) {
                    let mut framer =
                        StreamFramer::new(StreamRole::Reply, s.envelope().limits().clone());
                    if !b.is_empty() && framer.frame(b) != Ok(Frame::Complete { len: b.len() }) {
                        let detail =
                            format!("a reply of {} bytes is not exactly one message", b.len());
                        self.log.push((
                            now,
                            Did::Violation {
                                rule: "stream-framing",
                                observer: None,
                                member: Some(i),
                                detail,
                            },
                        ));
                    }
                }
                match result {
                    Ok(b) => s.handle_exchange(at, exchange, Ok(&b)),
                    Err(e) => s.handle_exchange(at, exchange, Err(e)),
                }
            }
            Input::AppTimer { life, token } => {
                if life != node.life {
                    return; // set by an earlier process
                }
                trace.u64(5);
                trace.u64(token);
                node.history.note(now, What::AppTimer(token), None, 0);
                self.with_app(sh, now, Callback::Timer(token), |app, node| {
                    app.timer(node, token)
                });
            }
            Input::Warm { life } => {
                if life != node.life {
                    return;
                }
                trace.u64(4);
                // One datagram at a time, drained after each, as an adapter
                // reads its socket.
                for datagram in sh.warm {
                    let Some(s) = self.node.swim.as_mut() else {
                        return;
                    };
                    s.handle_packet(at, ORACLE, datagram);
                    self.drain(sh, now);
                }
                if sh.formed {
                    if let Some(s) = self.node.swim.as_mut() {
                        s.forget_membership_gossip(at);
                    }
                    self.drain(sh, now);
                }
                return;
            }
        }
        self.drain(sh, now);
    }

    /// Takes what the node's process left after a call: member changes,
    /// outputs (events go to the application, whose commands leave more),
    /// its next deadline.
    pub(crate) fn drain(&mut self, sh: &Env<'_, '_>, now: u64) {
        let i = self.i;
        let mut left = false;
        loop {
            let Some(s) = self.node.swim.as_mut() else {
                return;
            };
            for ch in s.drain_member_changes().into_iter().flatten() {
                self.log.push((now, Did::Change(ch)));
            }
            while let Some(o) = s.poll_output() {
                self.outputs.push(o);
            }
            let entries = s.member_counts().total();
            self.node.peak_entries = self.node.peak_entries.max(entries);
            if sh.check_bounds {
                let c = s.config();
                let (max_m, max_q) = (c.max_members, c.max_broadcast_queue);
                let (q, uq) = (s.broadcast_queue_len(), s.user_broadcast_queue_len());
                let mut violation = |rule, detail| {
                    let observer = Some(i);
                    let v = Did::Violation {
                        rule,
                        observer,
                        member: None,
                        detail,
                    };
                    self.log.push((now, v));
                };
                if entries > max_m.min(sh.nodes) {
                    let bound = format!("{entries} members (bound {max_m}, nodes {})", sh.nodes);
                    violation("table-bound", bound);
                }
                if q > max_q || uq > max_q {
                    violation(
                        "queue-bound",
                        format!("queues {q} and {uq} (bound {max_q})"),
                    );
                }
            }
            if self.outputs.is_empty() {
                break;
            }
            let mut outputs = std::mem::take(&mut self.outputs);
            let mut events = false;
            for o in outputs.drain(..) {
                left |= matches!(o, Output::Event(Event::LeaveCompleted { .. }));
                events |= matches!(o, Output::Event(_));
                self.output(now, o, sh);
            }
            self.outputs = outputs;
            if !events || self.node.app.is_none() {
                // Only an application, handed events, acts on the node in
                // between.
                break;
            }
        }
        let next = self.node.swim.as_ref().and_then(|s| s.poll_timeout());
        // Timers wait while stalled; a stall's end re-arms them.
        if self.node.status == Status::Up {
            match next {
                Some(t) => {
                    let t = t.as_nanos().max(now);
                    if self.node.timer_at != t {
                        self.node.timer_at = t;
                        self.schedule(now, t, Due::Timer);
                    }
                }
                None => self.node.timer_at = NONE,
            }
        }
        if left {
            // The application shuts down once its leave is done.
            let tally = Box::new(self.node.stop(i, now));
            self.log.push((now, Did::Stopped { tally }));
        }
    }

    /// The node's process started: its application, if any, starts too.
    pub(crate) fn start_app(&mut self, sh: &Env<'_, '_>, now: u64) {
        self.with_app(sh, now, Callback::Started, |app, node| app.started(node));
        self.drain(sh, now);
    }

    /// Runs `call` on the node's application, if it has one, then schedules
    /// the timers it set (hashed into the trace, as what it does).
    pub(crate) fn with_app(
        &mut self,
        sh: &Env<'_, '_>,
        now: u64,
        callback: Callback<'_>,
        call: impl FnOnce(&mut dyn Application, &mut NodeContext<'_>),
    ) {
        let Node {
            app,
            swim,
            trace,
            history,
            machine,
            ..
        } = &mut self.node;
        let (Some(hosted), Some(swim), Some(machine)) =
            (app.as_deref_mut(), swim.as_mut(), machine.as_deref_mut())
        else {
            return;
        };
        let Hosted { app, rng, timers } = hosted;
        let mut ctx = NodeContext {
            index: self.i,
            now,
            swim,
            rng,
            timers,
            trace,
            history,
            machine,
        };
        call(app.as_mut(), &mut ctx);
        if let Callback::Event(Event::UserMessage { .. }) = callback {
            machine.last_active = now;
        }
        if let Some(exact) = sh.exact {
            self.check_exact(exact, now, callback);
        }
        let Some(Hosted { timers, .. }) = self.node.app.as_deref_mut() else {
            return;
        };
        if timers.is_empty() {
            return;
        }
        let mut timers = std::mem::take(timers);
        let life = self.node.life;
        for (at, token) in timers.drain(..) {
            let trace = &mut self.node.trace;
            trace.u64(0x50 ^ self.i as u64);
            trace.u64(at);
            trace.u64(token);
            let input = Input::AppTimer { life, token };
            self.schedule(now, at.max(now), Due::Deliver(input));
        }
        if let Some(hosted) = self.node.app.as_deref_mut() {
            hosted.timers = timers; // its allocation, for the next call
        }
    }

    /// Runs the `Always` invariants now, the node as its callback left it;
    /// a failure is logged with the callback that caused it.
    fn check_exact(&mut self, exact: &Exact<'_>, now: u64, callback: Callback<'_>) {
        let apps = Apps {
            now,
            view: View {
                this: Some((self.i, &self.node)),
                ..exact.view
            },
            live: exact.live,
            stalled_until: exact.stalled_until,
            net: exact.net,
        };
        let failures: Vec<(String, crate::AppFailure)> = exact
            .invariants
            .iter()
            .filter(|inv| inv.when == Check::Always)
            .filter_map(|inv| (inv.check)(&apps).err().map(|f| (inv.name.clone(), f)))
            .collect();
        for (rule, f) in failures {
            let detail = format!("{} (after {})", f.detail, callback.describe(self.i));
            let did = Did::AppViolation {
                rule,
                nodes: f.nodes,
                detail,
            };
            self.log.push((now, did));
        }
    }

    fn output(&mut self, now: u64, o: Output, sh: &Env<'_, '_>) {
        let (i, nodes) = (self.i, sh.nodes);
        let trace = &mut self.node.trace;
        let did = match o {
            Output::Packet { to, data } => {
                let hash = hash_bytes(&data);
                trace.u64(0x10 ^ i as u64);
                trace.u64(hash);
                let to = addr_index(to).filter(|&t| t < nodes);
                let kind = data.first().copied().unwrap_or(u8::MAX);
                self.node
                    .history
                    .note(now, What::Sent(kind), to, data.len());
                Did::Packet { to, data, hash }
            }
            Output::Connect {
                id,
                to,
                data,
                expect_reply,
                ..
            } => {
                trace.u64(0x20 ^ i as u64);
                trace.u64(hash_bytes(&data));
                let life = self.node.life;
                let to = addr_index(to).filter(|&t| t < nodes && t != i);
                self.node.history.note(now, What::StreamOut, to, data.len());
                if to.is_none() {
                    let input = Input::Result {
                        life,
                        exchange: id,
                        result: Err(ExchangeError::Io(swim_core::IoKind::Other)),
                    };
                    self.schedule(now, now + REFUSED_AFTER, Due::Deliver(input));
                }
                Did::Connect {
                    to,
                    id,
                    data,
                    expect_reply,
                    life,
                }
            }
            Output::StreamReply { stream, data } => {
                trace.u64(0x30 ^ i as u64);
                trace.u64(data.as_ref().map_or(0, |d| hash_bytes(d)));
                let Some(stream) = self.node.streams.remove(&stream.0) else {
                    return;
                };
                let len = data.as_ref().map_or(0, Vec::len);
                let to = Some(stream.initiator as usize);
                self.node.history.note(now, What::Reply, to, len);
                Did::Reply { stream, data }
            }
            Output::Event(e) => {
                let code = trace_event(trace, i, &e);
                if self.node.history.on() {
                    let peer = match &e {
                        Event::MemberJoined(m)
                        | Event::MemberUpdated(m)
                        | Event::MemberLeft(m)
                        | Event::MemberFailed(m) => node_index(&m.name),
                        _ => None,
                    };
                    self.node.history.note(now, What::Event(code), peer, 0);
                }
                if self.node.app.is_some() {
                    self.with_app(sh, now, Callback::Event(&e), |app, node| {
                        app.event(node, &e)
                    });
                }
                if !sh.all_events && !matches!(e, Event::JoinCompleted { joined: 0, .. }) {
                    return;
                }
                Did::Event(e)
            }
        };
        self.log.push((now, did));
    }
}

/// Hashes event `e` of node `i` into `t`; returns the code of its kind.
fn trace_event(t: &mut StableHasher, i: usize, e: &Event) -> u8 {
    t.u64(0x40 ^ i as u64);
    let code = match e {
        Event::MemberJoined(_) => 1,
        Event::MemberUpdated(_) => 2,
        Event::MemberLeft(_) => 3,
        Event::MemberFailed(_) => 4,
        Event::UserMessage { .. } => 5,
        Event::ProbeAcked { .. } | Event::PingCompleted { .. } => 6,
        Event::JoinCompleted { .. } => 7,
        Event::LeaveCompleted { .. } => 8,
        _ => 9,
    };
    match e {
        Event::MemberJoined(m)
        | Event::MemberUpdated(m)
        | Event::MemberLeft(m)
        | Event::MemberFailed(m) => {
            t.u64(u64::from(code));
            t.bytes(m.name.as_bytes());
            t.u64(m.incarnation as u64);
        }
        Event::UserMessage { payload, .. } => {
            t.u64(5);
            t.bytes(payload);
        }
        Event::ProbeAcked { node, rtt, .. } | Event::PingCompleted { node, rtt, .. } => {
            t.u64(6);
            t.bytes(node.as_bytes());
            t.u64(nanos(*rtt));
        }
        Event::JoinCompleted { joined, failed, .. } => {
            t.u64(7);
            t.u64(*joined as u64);
            t.u64(failed.len() as u64);
        }
        Event::LeaveCompleted { timed_out } => {
            t.u64(8);
            t.u64(*timed_out as u64);
        }
        other => {
            t.u64(9);
            t.bytes(format!("{other:?}").as_bytes());
        }
    }
    code
}
