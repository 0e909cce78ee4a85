//! The Serf application: a [`Serf`] on a simulated node, wired to the
//! node's state machine as [`SerfNode`](swim_serf::SerfNode) wires it to a
//! running node — the Swim's events in, Serf's outputs carried out, its
//! timer kept, [`SerfDelegate`] as the Swim's delegate — plus what the
//! checks need: which user events it delivered, which queries it answered,
//! whether its Lamport clocks ever went back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use swim_core::{Delegate, Event, Instant};
use swim_serf::{
    IncomingQuery, LamportTime, QueryId, QueryProgress, Serf, SerfDelegate, SerfEvent, SerfOutput,
};

use super::checks::Ledger;
use super::{Planned, Workload};
use crate::app::{Application, NodeContext};

/// Timer tokens with this bit are Serf's deadlines (numbered); the
/// workload's are its indices.
const SERF_TIMER: u64 = 1 << 63;

/// One node's Serf in the simulator (see the [module](super)).
pub struct SerfApp {
    serf: Arc<Mutex<Serf>>,
    workload: Arc<Workload>,
    ledger: Arc<Mutex<Ledger>>,
    /// When this process started (true time).
    started: Duration,
    /// Serf's latest timer: its number, and when it is set for (the node's
    /// clock), until it fires.
    timer: Option<(u64, Duration)>,
    timers_set: u64,
    /// The user events delivered, by name: how often, first when (true
    /// time).
    delivered: BTreeMap<String, (u32, Duration)>,
    /// Our open queries: Serf's id and the workload's index (a few).
    asked: Vec<(QueryId, usize)>,
    /// The member, event and query clocks after the last callback.
    clocks: [LamportTime; 3],
    /// Plants a bug for the checks' own tests.
    bug: Option<super::PlantedBug>,
}

impl std::fmt::Debug for SerfApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerfApp")
            .field("started", &self.started)
            .field("delivered", &self.delivered.len())
            .finish_non_exhaustive()
    }
}

impl SerfApp {
    pub(super) fn new(
        serf: Serf,
        workload: Arc<Workload>,
        ledger: Arc<Mutex<Ledger>>,
        bug: Option<super::PlantedBug>,
    ) -> SerfApp {
        SerfApp {
            serf: Arc::new(Mutex::new(serf)),
            workload,
            ledger,
            started: Duration::ZERO,
            timer: None,
            timers_set: 0,
            delivered: BTreeMap::new(),
            asked: Vec::new(),
            clocks: [LamportTime::default(); 3],
            bug,
        }
    }

    /// The node's Serf, to read (members, coordinates, clocks…).
    pub fn serf(&self) -> MutexGuard<'_, Serf> {
        self.serf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When this process started (simulated time).
    pub fn started(&self) -> Duration {
        self.started
    }

    /// The user events this process delivered, by name: how many times,
    /// and first when (simulated time).
    pub fn delivered(&self) -> &BTreeMap<String, (u32, Duration)> {
        &self.delivered
    }

    /// Serf's clock for a node's: its wall clock.
    fn now(node: &NodeContext<'_>) -> Instant {
        Instant::from_duration(node.now())
    }

    /// Carries out what Serf asks until it asks nothing more, then sets its
    /// timer and checks its clocks. Outputs are taken out under the lock
    /// and carried out after it: the Swim calls the delegate, which takes
    /// the lock too.
    fn carry_out(&mut self, node: &mut NodeContext<'_>) {
        loop {
            let outputs: Vec<SerfOutput> = {
                let mut serf = self.serf();
                std::iter::from_fn(|| serf.poll_output()).collect()
            };
            if outputs.is_empty() {
                break;
            }
            for out in outputs {
                self.output(node, out);
            }
        }
        self.arm_timer(node);
        self.check_clocks(node);
    }

    fn output(&mut self, node: &mut NodeContext<'_>, out: SerfOutput) {
        match out {
            // Serf's gossip waits in its own queues, which the Swim drains
            // through the delegate; a finished intent needs nothing here.
            SerfOutput::IntentFinished { .. } => {}
            SerfOutput::UpdateMeta(meta) => {
                let _ = node.update_meta(&meta);
            }
            // Best effort, as Go's: a member gone meanwhile is no error.
            SerfOutput::SendTo { node: to, payload } => {
                let _ = node.send_best_effort(&to, &payload);
            }
            SerfOutput::Reconnect { addr, .. } => {
                node.command(|s, now| s.join(now, &[addr]));
            }
            // Simulated nodes have no keyring: the query goes unanswered,
            // counted.
            SerfOutput::KeyQuery { .. } => node.count("serf.key_queries_unanswered", 1),
            // A lost name conflict; simulated names are unique.
            SerfOutput::Shutdown => node.count("serf.shutdowns", 1),
            SerfOutput::Event(event) => self.event(node, event),
            SerfOutput::Query(progress) => self.progress(node, progress),
        }
    }

    fn event(&mut self, node: &mut NodeContext<'_>, event: SerfEvent) {
        match event {
            SerfEvent::User(e) => {
                if self.bug == Some(super::PlantedBug::DropEvents) && node.index() == 1 {
                    return;
                }
                node.count("serf.user_events_delivered", 1);
                let at = node.true_time();
                let seen = self.delivered.entry(e.name.clone()).or_insert((0, at));
                seen.0 += 1;
                if self.bug == Some(super::PlantedBug::DeliverTwice) && seen.0 == 1 {
                    seen.0 += 1;
                }
                let count = seen.0;
                self.ledger().delivered(node.index(), &e.name, count, at);
            }
            SerfEvent::Query(q) => self.answer(node, &q),
            _ => node.count("serf.member_events", 1),
        }
    }

    /// Answers the workload's queries with our name (unless a planted bug
    /// makes us ignore them).
    fn answer(&mut self, node: &mut NodeContext<'_>, q: &IncomingQuery) {
        let Some(k) = super::query_index(&q.name) else {
            return;
        };
        self.ledger().reached(k, node.index());
        if self.bug == Some(super::PlantedBug::IgnoreQueries) {
            return;
        }
        let now = Self::now(node);
        let answered = self.serf().respond(now, q, node.name().as_bytes());
        if answered.is_ok() {
            node.count("serf.queries_answered", 1);
        }
    }

    fn progress(&mut self, node: &mut NodeContext<'_>, progress: QueryProgress) {
        match progress {
            QueryProgress::Response { query, from, .. } => {
                if let Some(&(_, k)) = self.asked.iter().find(|(id, _)| *id == query) {
                    let at = node.true_time();
                    self.ledger().answered(k, &from, at);
                }
            }
            QueryProgress::Closed { query } => {
                self.asked.retain(|(id, _)| *id != query);
            }
            QueryProgress::Ack { .. } => {}
        }
    }

    /// Sets a timer for Serf's next deadline, unless one is set for then
    /// or sooner.
    fn arm_timer(&mut self, node: &mut NodeContext<'_>) {
        let Some(at) = self.serf().poll_timeout() else {
            return;
        };
        let at = at.as_duration();
        if self.timer.is_some_and(|(_, t)| t <= at) {
            return;
        }
        self.timers_set += 1;
        self.timer = Some((self.timers_set, at));
        node.set_timer(at.saturating_sub(node.now()), SERF_TIMER | self.timers_set);
    }

    /// Notes the first time a clock of this process went back.
    fn check_clocks(&mut self, node: &mut NodeContext<'_>) {
        let now = {
            let serf = self.serf();
            [serf.clock(), serf.event_clock(), serf.query_clock()]
        };
        if let Some(detail) = super::checks::clock_regression(self.clocks, now) {
            let at = node.true_time();
            self.ledger().violation(at, node.index(), detail);
        }
        self.clocks = now;
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Does the workload's item `k`, ours to do.
    fn planned(&mut self, node: &mut NodeContext<'_>, k: usize) {
        let now = Self::now(node);
        let at = node.true_time();
        match &self.workload.items[k] {
            Planned::Event { .. } => {
                let name = super::event_name(k);
                let sent = self.serf().user_event(&name, &[], false);
                if sent.is_ok() {
                    self.ledger().sent_event(k, node.index(), at);
                }
            }
            Planned::Query { params, .. } => {
                let asked = self.serf().query(now, &super::query_name(k), &[], params);
                if let Ok(id) = asked {
                    self.asked.push((id, k));
                    let timeout = params
                        .timeout
                        .unwrap_or_else(|| self.serf().default_query_timeout());
                    self.ledger().sent_query(k, node.index(), at, timeout);
                }
            }
        }
    }
}

impl Application for SerfApp {
    fn delegate(&mut self) -> Option<Box<dyn Delegate + Send>> {
        Some(Box::new(SerfDelegate(self.serf.clone())))
    }

    fn started(&mut self, node: &mut NodeContext<'_>) {
        self.started = node.true_time();
        let me = node.index();
        let workload = self.workload.clone();
        for (k, item) in workload.items.iter().enumerate() {
            if item.from() == me && item.at() > self.started {
                node.set_timer(item.at() - self.started, k as u64);
            }
        }
        self.carry_out(node);
    }

    fn event(&mut self, node: &mut NodeContext<'_>, event: &Event) {
        let now = Self::now(node);
        self.serf().handle_event(now, event);
        self.carry_out(node);
    }

    fn timer(&mut self, node: &mut NodeContext<'_>, token: u64) {
        if token & SERF_TIMER != 0 {
            if self.timer.is_some_and(|(n, _)| n == token & !SERF_TIMER) {
                self.timer = None;
            }
            let now = Self::now(node);
            self.serf().handle_timeout(now);
        } else {
            self.planned(node, token as usize);
        }
        self.carry_out(node);
    }
}
