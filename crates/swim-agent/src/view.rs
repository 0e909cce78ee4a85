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

/// The agent's [`Phase`], shared between the task that stops the node and
/// the HTTP listener.
#[derive(Debug, Default)]
pub struct Lifecycle(AtomicU8);

impl Lifecycle {
    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    /// The phase now.
    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            0 => Phase::Running,
            1 => Phase::Leaving,
            _ => Phase::Stopping,
        }
    }
}

/// What the agent's event reader passes on to the view.
#[derive(Debug, Clone)]
pub enum Observed {
    /// A membership event: `join`, `update`, `leave` or `failed`.
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
            Event::MemberLeft(m) => Observed::Member("leave", m.clone()),
            Event::MemberFailed(m) => Observed::Member("failed", m.clone()),
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
    tx: async_channel::Sender<Observed>,
    dropped: Arc<AtomicU64>,
}

impl Observer {
    /// Hands `observed` to the view, or counts it dropped.
    pub fn send(&self, observed: Observed) {
        if self.tx.try_send(observed).is_err() {
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
    /// `/v1/health`.
    pub health: Body,
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
    observed: async_channel::Receiver<Observed>,
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
        while let Ok(observed) = self.observed.try_recv() {
            self.observe(observed, SystemTime::now());
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
        Snapshot {
            members: Body::json(200, &self.members_json(&table, wall, now)),
            health: self.health(&table),
            stats: Body::json(200, &self.stats_json()),
            events: Body::json(200, &self.events_json()),
            metrics: Body {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                bytes: Bytes::from(self.prometheus.render()),
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
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(entry);
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
                })
            })
            .collect();
        Value::Array(members)
    }

    fn health(&self, table: &[MemberStatus]) -> Body {
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
        let body = json!({
            "node": &*local.name,
            "address": local.addr.to_string(),
            "status": status,
            "health_score": self.node.health_score(),
            "members": {
                "alive": count(MemberState::Alive),
                "suspect": count(MemberState::Suspect),
                "dead": count(MemberState::Dead),
                "left": count(MemberState::Left),
            },
            "generated_unix_ms": unix_ms(SystemTime::now()),
        });
        Body::json(if status == "running" { 200 } else { 503 }, &body)
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
    }
}
