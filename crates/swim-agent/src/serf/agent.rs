//! The running agent as its RPC and signals see it (Go's `agent.Agent`):
//! the Serf node, the event streams registered by RPC clients, the tags
//! file, the counters of refused input, and the way to stop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use swim_serf::tags::Tags;
use swim_serf::{QueryParams, QueryResponses, SerfNode, INTERNAL_QUERY_PREFIX};
use tracing::{info, warn};

use crate::serf::handlers::{AgentEvent, EventFilter, Scripts};
use crate::serf::logs::Logs;

/// Events queued per RPC event stream before they are dropped (Go: 512).
pub const STREAM_QUEUE: usize = 512;

/// Counters of what the agent refused or lost, for `stats` and tests.
#[derive(Debug, Default)]
pub struct Counters {
    /// RPC connections accepted.
    pub rpc_accepted: AtomicU64,
    /// RPC connections refused (over the total or per-client limit).
    pub rpc_refused: AtomicU64,
    /// RPC requests refused: malformed, unknown, oversized, before the
    /// handshake, or a duplicate handshake.
    pub rpc_bad_requests: AtomicU64,
    /// Auth attempts with a wrong token, and commands sent before auth.
    pub rpc_auth_failures: AtomicU64,
    /// RPC connections closed because the client read too slowly or sent
    /// a request too slowly.
    pub rpc_slow_clients: AtomicU64,
    /// Events dropped for an RPC stream that fell behind.
    pub stream_dropped: AtomicU64,
    /// Events dropped because the scripts fell behind.
    pub script_dropped: AtomicU64,
}

struct Stream {
    filters: Vec<EventFilter>,
    tx: async_channel::Sender<AgentEvent>,
}

/// The agent.
pub struct Agent {
    /// The Serf node.
    pub serf: SerfNode,
    /// This node's name.
    pub name: String,
    /// The event handler scripts.
    pub scripts: Scripts,
    /// The log, for `monitor`.
    pub logs: Logs,
    /// Refusals and losses.
    pub counters: Counters,
    /// Whether gossip is encrypted.
    pub encrypted: bool,
    /// Where tags are persisted (Go's `tags_file`).
    tags_file: Option<PathBuf>,
    streams: Mutex<Vec<Stream>>,
    /// Set once the agent is to stop (after an RPC `leave`).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Agent {
    /// The agent around a started node.
    pub fn new(
        serf: SerfNode,
        name: String,
        scripts: Scripts,
        logs: Logs,
        tags_file: Option<PathBuf>,
        encrypted: bool,
    ) -> Agent {
        Agent {
            encrypted,
            serf,
            name,
            scripts,
            logs,
            counters: Counters::default(),
            tags_file,
            streams: Mutex::default(),
            stop: tokio::sync::watch::channel(false).0,
        }
    }

    /// Waits until the agent is to stop.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Asks the agent to stop (Go's `Agent.Shutdown`, which ends `serf
    /// agent` with status 0).
    pub fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    /// A new event stream with `filters`; dropping the receiver ends it.
    pub fn subscribe(&self, filters: Vec<EventFilter>) -> async_channel::Receiver<AgentEvent> {
        let (tx, rx) = async_channel::bounded(STREAM_QUEUE);
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.push(Stream { filters, tx });
        rx
    }

    /// Hands `e` to every stream whose filters take it; a stream that fell
    /// [`STREAM_QUEUE`] events behind loses it (Go: "Dropping event").
    pub fn dispatch(&self, e: &AgentEvent) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.retain(|s| {
            if !s.filters.iter().any(|f| f.matches(e)) {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(e.clone()) {
                Ok(()) => true,
                Err(async_channel::TrySendError::Full(_)) => {
                    self.counters.stream_dropped.fetch_add(1, Ordering::Relaxed);
                    warn!(target: "agent.ipc", "Dropping event to a stream that fell behind");
                    true
                }
                Err(async_channel::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// This node's tags now.
    pub fn tags(&self) -> Tags {
        self.serf
            .member(&self.name)
            .map(|m| m.tags)
            .unwrap_or_default()
    }

    /// Persists `tags` if a tags file is set, then announces them (Go's
    /// `Agent.SetTags`).
    pub async fn set_tags(&self, tags: Tags) -> Result<(), String> {
        if let Some(path) = &self.tags_file {
            write_tags_file(path, &tags)?;
        }
        self.serf.set_tags(tags).await.map_err(|e| e.to_string())
    }

    /// Sends a query (Go's `Agent.Query`): internal names are refused,
    /// except Go's `_serf_ping` without a payload.
    pub async fn query(
        &self,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
    ) -> Result<QueryResponses, String> {
        if name.starts_with(INTERNAL_QUERY_PREFIX)
            && (name != format!("{INTERNAL_QUERY_PREFIX}ping") || !payload.is_empty())
        {
            return Err(format!(
                "Queries cannot contain the '{INTERNAL_QUERY_PREFIX}' prefix"
            ));
        }
        tracing::debug!(target: "agent", "Requesting query send: {name}. Payload: {payload:?}");
        self.serf.query(name, payload, params).await.map_err(|e| {
            warn!(target: "agent", "failed to start user query: {e}");
            e.to_string()
        })
    }

    /// Leaves the cluster (Go's `Agent.Leave`).
    pub async fn leave(&self) -> Result<(), String> {
        info!(target: "agent", "requesting graceful leave from Serf");
        self.serf.leave().await.map_err(|e| e.to_string())
    }

    /// Go's `Agent.Stats`, with the values this agent has.
    pub fn stats(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        use swim_serf::MemberStatus;
        let members = self.serf.members();
        let count = |s: MemberStatus| members.iter().filter(|m| m.status == s).count();
        let mut serf = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            serf.insert(k.to_owned(), v);
        };
        put("members", members.len().to_string());
        put("failed", count(MemberStatus::Failed).to_string());
        put("left", count(MemberStatus::Left).to_string());
        put("health_score", self.serf.node().health_score().to_string());
        put("member_time", self.serf.clock().0.to_string());
        put("event_time", self.serf.event_clock().0.to_string());
        put("query_time", self.serf.query_clock().0.to_string());
        let queues = self.serf.queue_depths();
        put("intent_queue", queues.intent.depth.to_string());
        put("event_queue", queues.event.depth.to_string());
        put("query_queue", queues.query.depth.to_string());
        put("encrypted", self.encrypted.to_string());
        if let Some(resets) = self.serf.coordinate_resets() {
            put("coordinate_resets", resets.to_string());
        }
        let mut agent = BTreeMap::new();
        agent.insert("name".to_owned(), self.name.clone());
        let mut handlers = BTreeMap::new();
        for s in self.scripts.all() {
            handlers.insert(format!("{}:{}", s.filter.event, s.filter.name), s.script);
        }
        let mut runtime = BTreeMap::new();
        runtime.insert("os".to_owned(), std::env::consts::OS.to_owned());
        runtime.insert("arch".to_owned(), std::env::consts::ARCH.to_owned());
        runtime.insert(
            "version".to_owned(),
            format!("swim-agent {}", env!("CARGO_PKG_VERSION")),
        );
        // Go's goroutines and GOMAXPROCS are the runtime's tasks and
        // workers here.
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        runtime.insert("cpu_count".to_owned(), cpus.to_string());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let metrics = handle.metrics();
            runtime.insert("max_procs".to_owned(), metrics.num_workers().to_string());
            runtime.insert(
                "goroutines".to_owned(),
                metrics.num_alive_tasks().to_string(),
            );
        }
        let c = &self.counters;
        let mut rpc = BTreeMap::new();
        for (k, v) in [
            ("accepted", &c.rpc_accepted),
            ("refused", &c.rpc_refused),
            ("bad_requests", &c.rpc_bad_requests),
            ("auth_failures", &c.rpc_auth_failures),
            ("slow_clients", &c.rpc_slow_clients),
            ("stream_dropped", &c.stream_dropped),
            ("script_dropped", &c.script_dropped),
            ("monitor_dropped", &self.logs.dropped),
        ] {
            rpc.insert(k.to_owned(), v.load(Ordering::Relaxed).to_string());
        }
        BTreeMap::from([
            ("agent".to_owned(), agent),
            ("runtime".to_owned(), runtime),
            ("serf".to_owned(), serf),
            ("tags".to_owned(), self.tags().into_iter().collect()),
            ("event_handlers".to_owned(), handlers),
            ("rpc".to_owned(), rpc),
        ])
    }
}

/// Reads a tags file (Go's `loadTagsFile`): a JSON object of strings; a
/// missing file is no tags.
pub fn read_tags_file(path: &std::path::Path) -> Result<Option<Tags>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("Failed to read tags file: {e}")),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("Failed to decode tags file: {e}"))
}

/// Writes a tags file as Go does (indented JSON).
pub fn write_tags_file(path: &std::path::Path, tags: &Tags) -> Result<(), String> {
    let text =
        serde_json::to_string_pretty(tags).map_err(|e| format!("Failed to encode tags: {e}"))?;
    std::fs::write(path, text).map_err(|e| format!("Failed to write tags file: {e}"))
}
