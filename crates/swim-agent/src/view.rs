//! The cluster as this node sees it, for the HTTP listener: the member
//! table with how long each member has been in its state and the RTT of its
//! last probe, the health score, the counters, recent events and the
//! Prometheus text.
//!
//! The node is read on a fixed schedule — one pass every
//! [`REFRESH`] — and every response body is rendered
//! then, once. HTTP clients only ever clone the last [`Snapshot`], so
//! however many there are and whatever they do, the node sees the same
//! small, steady load.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use swim_node::swim_core::wire::MessageType;
use swim_node::swim_core::{Event, Member, MemberState, Rejection};
use swim_node::{MemberStatus, Node, NodeStats};

/// How often the node is read and the bodies rendered.
pub const REFRESH: Duration = Duration::from_millis(500);

/// Past this age a member's last probe RTT is marked stale.
const STALE_AFTER: Duration = Duration::from_secs(30);

/// Recent events kept for the page.
const EVENTS_KEPT: usize = 100;

/// Where the agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Running.
    Running = 0,
    /// A stop was asked for and the leave is spreading.
    Leaving = 1,
    /// Shutting down.
    Stopping = 2,
}

/// Where the join through `agent.join` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinState {
    /// No seeds: the node waits to be joined.
    #[default]
    NoSeeds,
    /// Attempts are under way.
    Joining,
    /// Another node answered.
    Joined,
    /// Every attempt failed and no more are left.
    Failed,
}

impl JoinState {
    fn name(self) -> &'static str {
        match self {
            JoinState::NoSeeds => "no_seeds",
            JoinState::Joining => "joining",
            JoinState::Joined => "joined",
            JoinState::Failed => "failed",
        }
    }
}

/// The join's state, attempts so far and last failure.
#[derive(Debug, Clone, Default)]
struct JoinStatus {
    state: JoinState,
    attempts: u64,
    last_error: Option<String>,
}

/// The agent's [`Phase`] and its join's progress, shared between the tasks
/// that join and stop the node and the HTTP listener.
#[derive(Debug, Default)]
pub struct Lifecycle {
    phase: AtomicU8,
    join: std::sync::Mutex<JoinStatus>,
}

impl Lifecycle {
    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The phase now.
    pub fn get(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Running,
            1 => Phase::Leaving,
            _ => Phase::Stopping,
        }
    }

    /// Records the join's progress.
    pub fn set_join(&self, state: JoinState, attempts: u64, last_error: Option<String>) {
        *self.join.lock().unwrap_or_else(|p| p.into_inner()) = JoinStatus {
            state,
            attempts,
            last_error,
        };
    }

    fn join(&self) -> JoinStatus {
        self.join.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the agent's event reader passes on to the view.
#[derive(Debug, Clone)]
pub enum Observed {
    /// A membership event: `join`, `update`, `left` or `dead` (the state
    /// words of the member table: a failed member is `dead` everywhere).
    Member(&'static str, Member),
    /// A probe of the member was acked after `rtt`.
    ProbeAcked(Arc<str>, Duration),
    /// Another node claims a known member's name.
    NameConflict(Arc<str>),
    /// Something the agent did: joined, leaving, left…
    Agent(String),
}

impl Observed {
    /// What the view wants of a node event, if anything.
    pub fn of(event: &Event) -> Option<Observed> {
        Some(match event {
            Event::MemberJoined(m) => Observed::Member("join", m.clone()),
            Event::MemberUpdated(m) => Observed::Member("update", m.clone()),
            Event::MemberLeft(m) => Observed::Member("left", m.clone()),
            Event::MemberFailed(m) => Observed::Member("dead", m.clone()),
            Event::ProbeAcked { node, rtt, .. } => Observed::ProbeAcked(node.clone(), *rtt),
            Event::NameConflict { existing, .. } => Observed::NameConflict(existing.name.clone()),
            _ => return None,
        })
    }
}

/// Passes observations to the view without ever waiting: when the view is
/// behind, they are dropped and counted.
#[derive(Debug, Clone)]
pub struct Observer {
    tx: async_channel::Sender<(SystemTime, Observed)>,
    dropped: Arc<AtomicU64>,
}

impl Observer {
    /// Hands `observed` to the view, stamped with the time now, or counts
    /// it dropped.
    pub fn send(&self, observed: Observed) {
        if self.tx.try_send((SystemTime::now(), observed)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One HTTP response body, rendered.
#[derive(Debug, Clone)]
pub struct Body {
    /// 200, or 503 for an unhealthy `/v1/health`.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The bytes.
    pub bytes: Bytes,
}

impl Body {
    fn json(status: u16, value: &Value) -> Body {
        Body {
            status,
            content_type: "application/json",
            bytes: Bytes::from(value.to_string()),
        }
    }
}

/// Every body the listener serves from the node, as of one refresh.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `/v1/members`.
    pub members: Body,
    /// `/v1/health` and `/v1/health/ready`: 200 once ready.
    pub health: Body,
    /// `/v1/health/live`: 200 while the node runs.
    pub live: Body,
    /// `/v1/stats`.
    pub stats: Body,
    /// `/v1/events`.
    pub events: Body,
    /// `/metrics`.
    pub metrics: Body,
}

impl Snapshot {
    /// What is served before the first refresh.
    pub fn starting() -> Snapshot {
        let starting = Body::json(503, &json!({"status": "starting"}));
        Snapshot {
            members: starting.clone(),
            health: starting.clone(),
            live: starting.clone(),
            stats: starting.clone(),
            events: starting.clone(),
            metrics: starting,
        }
    }
}

/// One entry of the recent events.
#[derive(Debug, Clone)]
struct Entry {
    at: SystemTime,
    kind: &'static str,
    node: Option<Arc<str>>,
    detail: String,
}

/// The state behind the snapshots: what only the event stream tells (RTTs,
/// recent events), and the handles to read the rest from.
pub struct ClusterView {
    node: Node,
    lifecycle: Arc<Lifecycle>,
    observed: async_channel::Receiver<(SystemTime, Observed)>,
    /// Each member's state at the last refresh, to tell suspicions (which
    /// no event reports) and refutations.
    states: HashMap<Arc<str>, MemberState>,
    /// `agent.min_members`.
    min_members: usize,
    dropped: Arc<AtomicU64>,
    prometheus: PrometheusHandle,
    /// HTTP connections closed on accept because all slots were taken.
    http_refused: Arc<AtomicU64>,
    /// The RTT of the last acked probe of each member, and when.
    rtt: HashMap<Arc<str>, (Duration, SystemTime)>,
    events: VecDeque<Entry>,
    stats: Option<NodeStats>,
}

impl std::fmt::Debug for ClusterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterView")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ClusterView {
    /// A view of `node`, fed by the [`Observer`] returned with it;
    /// `http_refused` counts connections the listener turned away.
    pub fn new(
        node: Node,
        lifecycle: Arc<Lifecycle>,
        prometheus: PrometheusHandle,
        http_refused: Arc<AtomicU64>,
        min_members: usize,
    ) -> (ClusterView, Observer) {
        let (tx, rx) = async_channel::bounded(4096);
        let dropped = Arc::new(AtomicU64::new(0));
        let observer = Observer {
            tx,
            dropped: dropped.clone(),
        };
        let view = ClusterView {
            node,
            lifecycle,
            observed: rx,
            states: HashMap::new(),
            min_members,
            dropped,
            prometheus,
            http_refused,
            rtt: HashMap::new(),
            events: VecDeque::new(),
            stats: None,
        };
        (view, observer)
    }

    /// Takes in what was observed since the last call, reads the node and
    /// renders every body.
    pub async fn refresh(&mut self) -> Snapshot {
        while let Ok((at, observed)) = self.observed.try_recv() {
            self.observe(observed, at);
        }
        if self.node.is_running() {
            // A stopped node answers at once; a busy one gets a moment.
            if let Ok(Ok(stats)) = tokio::time::timeout(REFRESH, self.node.stats()).await {
                self.stats = Some(stats);
            }
        }
        self.prometheus.run_upkeep();
        let table = self.node.member_table();
        let (wall, now) = (SystemTime::now(), Instant::now());
        self.note_suspicions(&table, wall, now);
        let (health, live) = self.health(&table);
        Snapshot {
            members: Body::json(200, &self.members_json(&table, wall, now)),
            health,
            live,
            stats: Body::json(200, &self.stats_json()),
            events: Body::json(200, &self.events_json()),
            metrics: Body {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                bytes: Bytes::from(with_help(&self.prometheus.render())),
            },
        }
    }

    fn observe(&mut self, observed: Observed, at: SystemTime) {
        let entry = match observed {
            Observed::ProbeAcked(node, rtt) => {
                self.rtt.insert(node, (rtt, at));
                return;
            }
            Observed::Member(kind, m) => Entry {
                at,
                kind,
                node: Some(m.name.clone()),
                detail: format!("{} incarnation {}", m.addr, m.incarnation),
            },
            Observed::NameConflict(name) => Entry {
                at,
                kind: "name_conflict",
                detail: "another node claims this name".into(),
                node: Some(name),
            },
            Observed::Agent(detail) => Entry {
                at,
                kind: "agent",
                node: None,
                detail,
            },
        };
        self.push(entry);
    }

    fn members_json(&self, table: &[MemberStatus], wall: SystemTime, now: Instant) -> Value {
        let local = self.node.local_node().name;
        let members: Vec<Value> = table
            .iter()
            .map(|status| {
                let m = &status.member;
                let in_state = now.saturating_duration_since(status.since);
                let since = wall.checked_sub(in_state).unwrap_or(wall);
                let rtt = self.rtt.get(&m.name);
                // A figure from before the member stopped answering, or
                // from long ago, is shown as stale rather than current.
                let stale = rtt.map(|(_, at)| {
                    !matches!(m.state, MemberState::Alive | MemberState::Suspect)
                        || wall.duration_since(*at).unwrap_or_default() > STALE_AFTER
                });
                json!({
                    "name": &*m.name,
                    "address": m.addr.to_string(),
                    "state": state_name(m.state),
                    "incarnation": m.incarnation,
                    "meta": String::from_utf8_lossy(&m.meta),
                    "meta_hex": hex(&m.meta),
                    "protocol": {"min": m.vsn[0], "max": m.vsn[1], "current": m.vsn[2]},
                    "delegate": {"min": m.vsn[3], "max": m.vsn[4], "current": m.vsn[5]},
                    "local": *m.name == *local,
                    "in_state_ms": millis(in_state),
                    "state_since_unix_ms": unix_ms(since),
                    "last_probe_rtt_ms": rtt.map(|(rtt, _)| rtt.as_secs_f64() * 1000.0),
                    "last_probe_unix_ms": rtt.map(|(_, at)| unix_ms(*at)),
                    "last_probe_stale": stale,
                })
            })
            .collect();
        Value::Array(members)
    }

    /// The readiness body (`/v1/health`) and the liveness one. Ready: the
    /// node runs and has not begun to leave, it joined another node when
    /// it had seeds, and at least `min_members` members (itself included)
    /// are alive. Live: the node runs.
    fn health(&self, table: &[MemberStatus]) -> (Body, Body) {
        let local = self.node.local_node();
        let status = if !self.node.is_running() {
            "stopped"
        } else if local.state == MemberState::Left {
            "left"
        } else {
            match self.lifecycle.get() {
                Phase::Running => "running",
                Phase::Leaving => "leaving",
                Phase::Stopping => "stopping",
            }
        };
        let count = |state| table.iter().filter(|s| s.member.state == state).count();
        let alive = count(MemberState::Alive);
        let join = self.lifecycle.join();
        let joined = match join.state {
            JoinState::Joined => true,
            // Without seeds, being joined is having seen another node.
            JoinState::NoSeeds => table.iter().any(|s| *s.member.name != *local.name),
            JoinState::Joining | JoinState::Failed => false,
        };
        let mut not_ready = Vec::new();
        if status != "running" {
            not_ready.push(format!("the node is {status}"));
        }
        if matches!(join.state, JoinState::Joining | JoinState::Failed) {
            not_ready.push(format!(
                "not joined: {} after {} attempt(s)",
                join.state.name(),
                join.attempts
            ));
        }
        if alive < self.min_members {
            not_ready.push(format!(
                "{alive} member(s) alive, agent.min_members is {}",
                self.min_members
            ));
        }
        let ready = not_ready.is_empty();
        let body = json!({
            "node": &*local.name,
            "address": local.addr.to_string(),
            "status": status,
            "ready": ready,
            "not_ready": not_ready,
            "joined": joined,
            "join": {
                "state": join.state.name(),
                "attempts": join.attempts,
                "last_error": join.last_error,
            },
            "min_members": self.min_members,
            "health_score": self.node.health_score(),
            "members": {
                "alive": alive,
                "suspect": count(MemberState::Suspect),
                "dead": count(MemberState::Dead),
                "left": count(MemberState::Left),
            },
            "generated_unix_ms": unix_ms(SystemTime::now()),
        });
        let live = self.node.is_running();
        let live_body = json!({"node": &*local.name, "status": status, "live": live});
        (
            Body::json(if ready { 200 } else { 503 }, &body),
            Body::json(if live { 200 } else { 503 }, &live_body),
        )
    }

    /// Adds to the recent events each member that became suspect, or was
    /// refuted back to alive, since the last refresh: the node reports no
    /// event for either, so the table is compared.
    fn note_suspicions(&mut self, table: &[MemberStatus], wall: SystemTime, now: Instant) {
        let mut states = HashMap::with_capacity(table.len());
        for status in table {
            let m = &status.member;
            let before = self.states.get(&m.name).copied();
            let kind = match (before, m.state) {
                (Some(s), MemberState::Suspect) if s != MemberState::Suspect => Some("suspect"),
                (None, MemberState::Suspect) => Some("suspect"),
                (Some(MemberState::Suspect), MemberState::Alive) => Some("alive"),
                _ => None,
            };
            if let Some(kind) = kind {
                let in_state = now.saturating_duration_since(status.since);
                self.push(Entry {
                    at: wall.checked_sub(in_state).unwrap_or(wall),
                    kind,
                    node: Some(m.name.clone()),
                    detail: format!("{} incarnation {}", m.addr, m.incarnation),
                });
            }
            states.insert(m.name.clone(), m.state);
        }
        self.states = states;
    }

    fn push(&mut self, entry: Entry) {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        // In time order: a suspicion found at a refresh may predate events
        // already taken in.
        let at = self.events.iter().rposition(|e| e.at <= entry.at);
        self.events.insert(at.map_or(0, |i| i + 1), entry);
    }

    fn stats_json(&self) -> Value {
        let view = json!({
            "observations_dropped": self.dropped.load(Ordering::Relaxed),
            "http_connections_refused": self.http_refused.load(Ordering::Relaxed),
        });
        let Some(stats) = &self.stats else {
            return json!({"node": null, "view": view});
        };
        let core = &stats.core;
        // Named as the metrics are, without their prefix.
        let messages: serde_json::Map<String, Value> = MessageType::ALL
            .into_iter()
            .zip(core.messages)
            .filter_map(|(t, n)| {
                let name = t.metric_name()?.trim_start_matches("memberlist.msg.");
                Some((name.to_string(), json!(n)))
            })
            .collect();
        let rejected: serde_json::Map<String, Value> = Rejection::ALL
            .iter()
            .map(|why| {
                (
                    why.metric_name().to_string(),
                    json!(core.rejected_for(*why)),
                )
            })
            .collect();
        json!({
            "node": {
                "packets_received": core.packets_received,
                "bytes_received": core.bytes_received,
                "packets_sent": core.packets_sent,
                "bytes_sent": core.bytes_sent,
                "messages_received": messages,
                "probes": core.probes,
                "probes_failed": core.probes_failed,
                "refutations": core.refutations,
                "members_failed": core.members_failed,
                "name_conflicts": core.name_conflicts,
                "push_pulls": core.push_pulls,
                "streams_opened": core.streams_opened,
                "streams_failed": core.streams_failed,
                "streams_accepted": core.streams_accepted,
                "pulled_broadcasts_dropped": core.pulled_broadcasts_dropped,
                "wire_errors": core.wire_errors,
                "last_wire_error": core.last_wire_error,
                "rejected": core.rejected,
                "rejected_by_reason": rejected,
                "last_rejected": core.last_rejected.map(|why| why.metric_name()),
                "streams_at_capacity": stats.streams_at_capacity,
                "stream_errors": stats.stream_errors,
                "incoming_streams": stats.incoming_streams,
                "send_errors": stats.send_errors,
                "events_dropped": stats.events_dropped,
            },
            "view": view,
        })
    }

    fn events_json(&self) -> Value {
        let events: Vec<Value> = self
            .events
            .iter()
            .rev()
            .map(|e| {
                json!({
                    "at_unix_ms": unix_ms(e.at),
                    "at": iso8601(e.at),
                    "kind": e.kind,
                    "node": e.node.as_deref(),
                    "detail": e.detail,
                })
            })
            .collect();
        Value::Array(events)
    }
}

fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Alive => "alive",
        MemberState::Suspect => "suspect",
        MemberState::Dead => "dead",
        MemberState::Left => "left",
    }
}

/// `t` as ISO 8601 in UTC, to the millisecond: `2026-12-07T03:04:05.678Z`.
fn iso8601(t: SystemTime) -> String {
    let ms = unix_ms(t);
    let (secs, ms) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The names memberlist's metrics are known by, what each counts, and
/// whether it is a gauge; a name not listed still gets a HELP line (see
/// [`with_help`]).
const HELP: [(&str, &str, bool); 35] = [
    ("memberlist.udp.sent", "Bytes sent in UDP packets.", false),
    (
        "memberlist.udp.received",
        "Bytes received in UDP packets.",
        false,
    ),
    ("memberlist.udp.packets_sent", "UDP packets sent.", false),
    (
        "memberlist.udp.packets_received",
        "UDP packets received.",
        false,
    ),
    (
        "memberlist.udp.send_errors",
        "UDP packets that could not be sent.",
        false,
    ),
    (
        "memberlist.tcp.connect",
        "TCP streams opened to peers.",
        false,
    ),
    (
        "memberlist.tcp.accept",
        "TCP streams accepted from peers.",
        false,
    ),
    ("memberlist.tcp.failed", "TCP streams that failed.", false),
    (
        "memberlist.tcp.at_capacity",
        "Incoming TCP streams refused at node.max_incoming_streams.",
        false,
    ),
    ("memberlist.tcp.errors", "TCP stream errors.", false),
    ("memberlist.probes", "Probes of members sent.", false),
    (
        "memberlist.probes.failed",
        "Probes that got no ack in time.",
        false,
    ),
    (
        "memberlist.refutations",
        "Suspicions of this node it refuted.",
        false,
    ),
    ("memberlist.members.failed", "Members declared dead.", false),
    ("memberlist.push_pulls", "Push/pull state exchanges.", false),
    (
        "memberlist.catch_up.push_pulls",
        "Catch-up push/pulls after news.",
        false,
    ),
    (
        "memberlist.catch_up.limited",
        "Catch-up push/pulls skipped by the rate limit.",
        false,
    ),
    (
        "memberlist.catch_up.reconnects",
        "Attempts to reach dead members again.",
        false,
    ),
    (
        "memberlist.catch_up.corrections",
        "Outdated accusations corrected.",
        false,
    ),
    (
        "memberlist.catch_up.direct_refutations",
        "Refutations sent straight to an accuser or its messenger.",
        false,
    ),
    (
        "memberlist.catch_up.last_probes",
        "Last probes of a suspect before its death.",
        false,
    ),
    (
        "memberlist.catch_up.last_probes_answered",
        "Last probes the suspect answered: deaths not declared.",
        false,
    ),
    (
        "memberlist.catch_up.doubted_deaths",
        "Death notices from an accuser held dead, taken as suspicions.",
        false,
    ),
    (
        "memberlist.catch_up.raised_for_returning",
        "Incarnation raises for members returning from the dead.",
        false,
    ),
    (
        "memberlist.catch_up.alive_to_returning",
        "Alive messages sent straight to members returning from the dead.",
        false,
    ),
    (
        "memberlist.catch_up.back_over_udp",
        "Members acked over UDP again after a probe only TCP answered.",
        false,
    ),
    (
        "memberlist.catch_up.state_gossip_lowered",
        "Members learned from a full state, gossiped behind fresh news.",
        false,
    ),
    (
        "memberlist.catch_up.settle_unreached",
        "Settle push/pulls of nodes not picked to settle that no full state reached.",
        false,
    ),
    (
        "memberlist.catch_up.hearsay_suspicions",
        "Suspicions taken from a push/pull's state as the peer's, not gossiped.",
        false,
    ),
    (
        "memberlist.catch_up.hearsay_told",
        "Suspicions from a push/pull's state told to the suspect member.",
        false,
    ),
    (
        "memberlist.invalid_input",
        "Packets or streams that could not be decoded.",
        false,
    ),
    (
        "memberlist.events.dropped",
        "Events dropped because the application read them too slowly.",
        false,
    ),
    ("memberlist.rejected", "Packets rejected, by reason.", false),
    (
        "memberlist.health.score",
        "Lifeguard local health score: 0 is healthy, higher is worse.",
        true,
    ),
    (
        "memberlist.queue.broadcasts",
        "Broadcasts waiting to be gossiped.",
        true,
    ),
];

/// Gives the exporter a HELP text for every metric the node publishes.
pub fn describe_metrics() {
    for (name, help, gauge) in HELP {
        if gauge {
            metrics::describe_gauge!(name, help);
        } else {
            metrics::describe_counter!(name, help);
        }
    }
    for (name, help) in [
        (
            "memberlist.members.alive",
            "Members alive, this node included.",
        ),
        (
            "memberlist.members.suspect",
            "Members suspected of having failed.",
        ),
        (
            "memberlist.members.known",
            "Members in the table, in any state.",
        ),
    ] {
        metrics::describe_gauge!(name, help);
    }
    for t in MessageType::ALL {
        if let Some(name) = t.metric_name() {
            let kind = name.trim_start_matches("memberlist.msg.");
            metrics::describe_counter!(name, format!("Messages of type {kind} received."));
        }
    }
}

/// The Prometheus text with a HELP line before every TYPE line that has
/// none, so that a metric added to the node later is never left bare.
fn with_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    let mut helped = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            if !helped {
                out.push_str(&format!("# HELP {name} memberlist metric {name}.\n"));
            }
        }
        helped = line.starts_with("# HELP ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_gets_a_help_line() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n\n# TYPE b gauge\nb 2\n";
        assert_eq!(
            with_help(text),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n\n\
             # HELP b memberlist metric b.\n# TYPE b gauge\nb 2\n"
        );
    }

    #[test]
    fn lifecycle_moves_through_its_phases() {
        let lifecycle = Lifecycle::default();
        assert_eq!(lifecycle.get(), Phase::Running);
        lifecycle.set(Phase::Leaving);
        assert_eq!(lifecycle.get(), Phase::Leaving);
        lifecycle.set(Phase::Stopping);
        assert_eq!(lifecycle.get(), Phase::Stopping);
    }

    #[test]
    fn helpers_format_as_documented() {
        assert_eq!(hex(b"\x00\xffa"), "00ff61");
        assert_eq!(millis(Duration::from_micros(2500)), 2);
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_secs(3)), 3000);
        assert_eq!(state_name(MemberState::Left), "left");
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_millis(1_796_612_645_678)),
            "2026-12-07T03:04:05.678Z"
        );
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
