//! Serf running: a [`Serf`] on a swim-node [`Node`], on any
//! [`Runtime`] (swim-tokio's, swim-async-std's) and any [`Transport`].
//!
//! [`SerfNode::start`] takes the Swim's [`NodeBuilder`], sets it up as Go
//! Serf sets up its memberlist ([`SerfConfig::swim_config`], a
//! [`SerfDelegate`]) and spawns one task, the pump: it feeds the node's
//! events to the `Serf`, carries out what the `Serf` asks (new metadata,
//! datagrams) and hands Serf's events to [`SerfEvents`]. Commands on the
//! handle run the `Serf` under its lock and carry out its outputs the same
//! way. What Serf gossips waits in its own queues, which the node's driver
//! empties through the delegate.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{select, Either};
use swim_core::wire::{Keyring, SecretKey};
use swim_node::{
    DefaultTransport, Events, IntoSeed, Node, NodeBuilder, Runtime, Sockets, StartError, Transport,
};

use crate::coordinate::Coordinate;
use crate::messages::KeyResponse;
use crate::serf::{
    IncomingQuery, IntentId, KeyOp, Member, QueryId, QueryParams, QueryProgress, QueueDepths, Serf,
    SerfConfig, SerfDelegate, SerfError, SerfEvent, SerfOutput,
};
use crate::snapshot::SnapshotFile;
use crate::tags::Tags;

/// Why a command on a [`SerfNode`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// Serf refused it.
    Serf(SerfError),
    /// The Swim node failed it (or has shut down).
    Node(swim_node::Error),
    /// Our leave intent was not gossiped within the broadcast timeout (Go:
    /// "timeout while waiting for graceful leave").
    LeaveTimeout,
    /// A force-leave was not gossiped within the broadcast timeout (Go:
    /// "timed out broadcasting node removal").
    RemovalTimeout,
}

impl From<SerfError> for NodeError {
    fn from(e: SerfError) -> Self {
        NodeError::Serf(e)
    }
}

impl From<swim_node::Error> for NodeError {
    fn from(e: swim_node::Error) -> Self {
        NodeError::Node(e)
    }
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Serf(e) => e.fmt(f),
            NodeError::Node(e) => e.fmt(f),
            NodeError::LeaveTimeout => f.write_str("timeout while waiting for graceful leave"),
            NodeError::RemovalTimeout => f.write_str("timed out broadcasting node removal"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Why [`SerfNode::start`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SerfStartError {
    /// The Serf settings are invalid.
    Serf(SerfError),
    /// The snapshot could not be read or opened.
    Snapshot(std::io::Error),
    /// The Swim node could not start.
    Node(StartError),
}

impl std::fmt::Display for SerfStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SerfStartError::Serf(e) => e.fmt(f),
            SerfStartError::Snapshot(e) => write!(f, "failed to setup snapshot: {e}"),
            SerfStartError::Node(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SerfStartError {}

/// Intents finished but not (yet) waited for are remembered this long, in
/// number: a waiter registers only after the command returned the id, by
/// which time the intent may be gone already.
const FINISHED_REMEMBERED: usize = 256;

/// Who waits for which intent to leave Serf's queue.
#[derive(Default)]
struct Finished {
    waiting: HashMap<IntentId, futures_channel::oneshot::Sender<()>>,
    recent: VecDeque<IntentId>,
}

/// Messages ever queued in Serf's broadcast queues.
fn queued(depths: QueueDepths) -> u64 {
    depths.intent.queued + depths.event.queued + depths.query.queued
}

/// [`SerfDelegate`], waking the pump when handing out broadcasts left it
/// outputs to carry out (an intent someone waits for went out).
struct PumpedDelegate {
    serf: SerfDelegate,
    wake: async_channel::Sender<()>,
}

impl swim_core::Delegate for PumpedDelegate {
    fn has_broadcasts(&self) -> bool {
        self.serf.has_broadcasts()
    }

    fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let mut serf = self.serf.0.lock().unwrap_or_else(|e| e.into_inner());
        let out = serf.broadcasts(overhead, limit);
        if serf.has_output() {
            let _ = self.wake.try_send(());
        }
        out
    }

    fn local_state(&mut self, join: bool) -> Option<Vec<u8>> {
        self.serf.local_state(join)
    }

    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        self.serf.ack_payload()
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where one open query's acks and answers go.
struct QuerySinks {
    acks: Option<async_channel::Sender<String>>,
    responses: async_channel::Sender<NodeResponse>,
}

/// One node's answer to a query (Go's `NodeResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResponse {
    /// The node.
    pub from: String,
    /// Its answer.
    pub payload: Vec<u8>,
}

/// What the cluster answered a key-management request (Go's
/// `KeyManager`'s `KeyResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterKeyResponse {
    /// Members alive when it was sent, this node included.
    pub num_nodes: usize,
    /// Nodes that answered.
    pub num_resp: usize,
    /// Nodes that answered with a failure, or an unreadable answer.
    pub num_err: usize,
    /// Each node's message, for failures and notices.
    pub messages: std::collections::BTreeMap<String, String>,
    /// For a list: each key (base64) and how many nodes hold it.
    pub keys: std::collections::BTreeMap<String, usize>,
    /// For a list: each primary key (base64) and how many nodes use it.
    pub primary_keys: std::collections::BTreeMap<String, usize>,
}

impl ClusterKeyResponse {
    /// Every member answered, none with a failure (Go returns an error
    /// otherwise).
    pub fn is_complete(&self) -> bool {
        self.num_err == 0 && self.num_resp == self.num_nodes
    }
}

/// Acks and answers to one of our queries as they come (Go's
/// `QueryResponse`); both end when the query's timeout passes.
#[derive(Debug)]
pub struct QueryResponses {
    id: QueryId,
    acks: Option<async_channel::Receiver<String>>,
    responses: async_channel::Receiver<NodeResponse>,
}

impl QueryResponses {
    /// The query.
    pub fn id(&self) -> QueryId {
        self.id
    }

    /// The next node to ack; `None` once the query closed, or if it did not
    /// ask for acks.
    pub async fn recv_ack(&self) -> Option<String> {
        self.acks.as_ref()?.recv().await.ok()
    }

    /// The next answer; `None` once the query closed.
    pub async fn recv_response(&self) -> Option<NodeResponse> {
        self.responses.recv().await.ok()
    }

    /// Waits for the query to close; returns every ack and answer.
    pub async fn collect(self) -> (Vec<String>, Vec<NodeResponse>) {
        let mut responses = Vec::new();
        while let Ok(r) = self.responses.recv().await {
            responses.push(r);
        }
        let mut acks = Vec::new();
        if let Some(rx) = &self.acks {
            while let Ok(a) = rx.recv().await {
                acks.push(a);
            }
        }
        (acks, responses)
    }
}

struct Inner {
    node: Node,
    serf: Arc<Mutex<Serf>>,
    events: async_channel::Sender<SerfEvent>,
    /// Tells the pump that Serf's next deadline may have moved.
    wake: async_channel::Sender<()>,
    finished: Mutex<Finished>,
    /// Messages queued in Serf's broadcast queues when last drained: more
    /// means the driver must hear of them.
    queued: AtomicU64,
    queries: Mutex<HashMap<QueryId, QuerySinks>>,
    /// The Swim's keyring as key queries changed it (Go's serf reads
    /// memberlist's): changed here first, by the same rules, then in the
    /// Swim.
    keyring: Mutex<Option<Keyring>>,
    /// The snapshot file, if Serf keeps one.
    snapshot: Mutex<Option<SnapshotFile>>,
    /// Where key queries' changes to the keyring are written.
    keyring_file: Option<std::path::PathBuf>,
    /// The runtime's clock and timers.
    now: fn() -> std::time::Instant,
    timer_at: fn(std::time::Instant) -> BoxFuture,
    spawn: fn(BoxFuture),
    started: std::time::Instant,
}

impl Inner {
    fn serf(&self) -> MutexGuard<'_, Serf> {
        self.serf.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> swim_core::Instant {
        swim_core::Instant::from_duration((self.now)().saturating_duration_since(self.started))
    }

    /// Carries out what `serf` asks: its events go to the application at
    /// once (under the lock, so in order), and so does the news of intents
    /// sent; metadata and datagrams are returned to be handed to the Swim
    /// after the lock is released.
    fn drain(&self, serf: &mut Serf) -> Vec<SerfOutput> {
        let mut work = Vec::new();
        let mut snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(out) = serf.poll_output() {
            match out {
                // A reader that went away does not stop the node.
                SerfOutput::Event(e) => {
                    if let Some(file) = snapshot.as_mut() {
                        if let Err(err) = file.record(&e, serf.clock()) {
                            tracing::error!(error = %err, "failed to update the snapshot");
                        }
                    }
                    let _ = self.events.try_send(e);
                }
                SerfOutput::Query(progress) => self.route(progress),
                SerfOutput::IntentFinished { id, .. } => self.intent_finished(id),
                other => work.push(other),
            }
        }
        work
    }

    /// Hands `work` to the Swim, and news of messages queued for gossip
    /// since it last heard.
    async fn apply(&self, work: Vec<SerfOutput>) -> Result<(), swim_node::Error> {
        let mut work = VecDeque::from(work);
        while let Some(out) = work.pop_front() {
            match out {
                SerfOutput::KeyQuery { query, op } => {
                    let resp = self.key_op(op).await?;
                    let mut serf = self.serf();
                    // Refused only past the deadline or when answered.
                    let _ = serf.respond_key(self.now(), &query, resp);
                    work.extend(self.drain(&mut serf));
                }
                SerfOutput::UpdateMeta(m) => self.node.update_meta(&m).await?,
                // Best effort, as Go's: a member gone meanwhile is no error.
                SerfOutput::SendTo { node, payload } => {
                    let _ = self.node.send_best_effort(&node, &payload).await;
                }
                // In the background: a join can take the TCP timeout.
                SerfOutput::Reconnect { node, addr } => {
                    let handle = self.node.clone();
                    (self.spawn)(Box::pin(async move {
                        if let Err(e) = handle.join([addr]).await {
                            tracing::debug!(%node, %addr, error = %e, "reconnect failed");
                        }
                    }));
                }
                SerfOutput::Shutdown => {
                    tracing::warn!("minority in name conflict resolution: shutting down");
                    self.node.shutdown().await;
                }
                SerfOutput::Event(_) | SerfOutput::Query(_) | SerfOutput::IntentFinished { .. } => {
                }
            }
        }
        let queued = queued(self.serf().queue_depths());
        if self.queued.swap(queued, Ordering::Relaxed) != queued {
            self.node.broadcasts_queued().await?;
        }
        Ok(())
    }

    /// Runs `f` on the Serf, then carries out its outputs.
    async fn run<T>(
        &self,
        f: impl FnOnce(&mut Serf, swim_core::Instant) -> Result<T, SerfError>,
    ) -> Result<T, NodeError> {
        let (value, work) = {
            let mut serf = self.serf();
            let value = f(&mut serf, self.now())?;
            (value, self.drain(&mut serf))
        };
        let _ = self.wake.try_send(());
        self.apply(work).await?;
        Ok(value)
    }

    /// Does a key query's keyring work (Go's `serfQueries` handlers, with
    /// memberlist's keyring messages).
    async fn key_op(&self, op: KeyOp) -> Result<KeyResponse, swim_node::Error> {
        use base64::Engine;
        let b64 = |k: &SecretKey| base64::engine::general_purpose::STANDARD.encode(k.as_bytes());
        let mut resp = KeyResponse::default();
        let fail = |mut resp: KeyResponse, why: &str| {
            resp.message = why.to_owned();
            Ok(resp)
        };
        let mut ring = match self
            .keyring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some(ring) => ring,
            None if op == KeyOp::List => {
                return fail(resp, "Keyring is empty (encryption not enabled)")
            }
            None => return fail(resp, "No keyring to modify (encryption not enabled)"),
        };
        match op {
            KeyOp::List => {
                resp.keys = ring.keys().map(b64).collect();
                resp.primary_key = b64(ring.primary());
                resp.result = true;
                return Ok(resp);
            }
            KeyOp::Install(key) => {
                let Ok(key) = SecretKey::new(&key) else {
                    return fail(resp, "key size must be 16, 24 or 32 bytes");
                };
                ring.add(key.clone());
                self.node.add_key(key).await?;
            }
            KeyOp::Use(key) => {
                let key = SecretKey::new(&key).ok();
                let Some(key) = key.filter(|k| ring.use_key(k).is_ok()) else {
                    return fail(resp, "Requested key is not in the keyring");
                };
                self.node.use_key(key).await?;
            }
            KeyOp::Remove(key) => {
                // A key of a size no keyring holds is not installed: Go
                // removes nothing and succeeds.
                if let Ok(key) = SecretKey::new(&key) {
                    if ring.remove(&key).is_err() {
                        return fail(resp, "Removing the primary key is not allowed");
                    }
                    self.node.remove_key(key).await?;
                }
            }
        }
        let written = self
            .keyring_file
            .as_deref()
            .map(|path| write_keyring_file(path, &ring));
        *self.keyring.lock().unwrap_or_else(|e| e.into_inner()) = Some(ring);
        // Go answers a keyring it changed but could not write with the
        // error, and a failure.
        if let Some(Err(e)) = written {
            tracing::error!(error = %e, "failed to write keyring file");
            return fail(resp, &e);
        }
        resp.result = true;
        Ok(resp)
    }

    /// Hands news of a query to its receivers; a closed one drops them,
    /// which ends its streams.
    fn route(&self, progress: QueryProgress) {
        let mut queries = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        match progress {
            QueryProgress::Ack { query, from } => {
                if let Some(tx) = queries.get(&query).and_then(|s| s.acks.as_ref()) {
                    let _ = tx.try_send(from);
                }
            }
            QueryProgress::Response {
                query,
                from,
                payload,
            } => {
                if let Some(s) = queries.get(&query) {
                    let _ = s.responses.try_send(NodeResponse { from, payload });
                }
            }
            QueryProgress::Closed { query } => {
                queries.remove(&query);
            }
        }
    }

    fn intent_finished(&self, id: IntentId) {
        let mut f = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        match f.waiting.remove(&id) {
            Some(tx) => {
                let _ = tx.send(());
            }
            None => {
                if f.recent.len() == FINISHED_REMEMBERED {
                    f.recent.pop_front();
                }
                f.recent.push_back(id);
            }
        }
    }

    /// Waits until intent `id` left Serf's queue (Go's notify channel), or
    /// `timeout`; false on timeout.
    async fn wait_finished(&self, id: IntentId, timeout: Duration) -> bool {
        let rx = {
            let mut f = self.finished.lock().unwrap_or_else(|e| e.into_inner());
            if f.recent.contains(&id) {
                return true;
            }
            let (tx, rx) = futures_channel::oneshot::channel();
            f.waiting.insert(id, tx);
            rx
        };
        let timer = (self.timer_at)((self.now)() + timeout);
        matches!(select(rx, timer).await, Either::Left((Ok(()), _)))
    }
}

/// A running Serf node: cheap to clone, usable from any task. The node
/// stops (without leaving) when the last clone is dropped or on
/// [`shutdown`](SerfNode::shutdown).
#[derive(Clone)]
pub struct SerfNode {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SerfNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerfNode")
            .field("node", &self.inner.node)
            .finish_non_exhaustive()
    }
}

/// Serf's events (Go's `EventCh`), in order, as a [`Stream`] or through
/// [`recv`](SerfEvents::recv). Unbounded: Serf's events are few (one per
/// member change, user event or query).
///
/// [`Stream`]: futures_core::Stream
#[derive(Debug)]
pub struct SerfEvents {
    /// Boxed: the receiver is `!Unpin`, and a stream is polled pinned.
    rx: Pin<Box<async_channel::Receiver<SerfEvent>>>,
}

impl Clone for SerfEvents {
    fn clone(&self) -> Self {
        SerfEvents {
            rx: Box::pin((*self.rx).clone()),
        }
    }
}

impl SerfEvents {
    /// The next event; `None` once the node stopped and all were read.
    pub async fn recv(&self) -> Option<SerfEvent> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<SerfEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures_core::Stream for SerfEvents {
    type Item = SerfEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SerfEvent>> {
        self.rx.as_mut().poll_next(cx)
    }
}

impl SerfNode {
    /// Starts Serf with `config` on the node `builder` would start (UDP and
    /// TCP at its bind address, memberlist's transport): sets
    /// its protocol settings as Serf needs them (name, tags as metadata,
    /// versions, no relaying; [`SerfConfig::swim_config`]) and its delegate,
    /// binds it, and spawns its driver and Serf's pump on `R`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use swim_serf::{SerfConfig, SerfNode};
    /// use swim_tokio::{Config, NodeConfig};
    ///
    /// let bind = "127.0.0.1:7946".parse()?;
    /// let builder = swim_tokio::builder(NodeConfig::new(bind, Config::local("a", bind)));
    /// let (serf, events) = SerfNode::start(builder, SerfConfig::new("a")).await?;
    /// serf.join(["127.0.0.1:7947"], false).await?;
    /// serf.user_event("deploy", b"v2", false).await?;
    /// while let Some(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn start<R: Runtime, S: Sockets>(
        builder: NodeBuilder<R, DefaultTransport<S>>,
        config: SerfConfig,
    ) -> Result<(SerfNode, SerfEvents), SerfStartError> {
        let (builder, prepared) = prepare(builder, config)?;
        let bound = builder.bind().await.map_err(SerfStartError::Node)?;
        Ok(launch::<R>(prepared, bound))
    }

    /// [`start`](Self::start) for a builder given its own [`Transport`]
    /// (swim-node's in-memory network, everything on TCP, your own).
    pub async fn start_on<R: Runtime, T: Transport>(
        builder: NodeBuilder<R, T>,
        config: SerfConfig,
    ) -> Result<(SerfNode, SerfEvents), SerfStartError> {
        let (builder, prepared) = prepare(builder, config)?;
        let bound = builder.bind().await.map_err(SerfStartError::Node)?;
        Ok(launch::<R>(prepared, bound))
    }

    /// Joins the cluster through `seeds` ([`Node::join`]), then gossips our
    /// join intent (Go's `Serf.Join`); returns how many seeds answered.
    /// With `ignore_old`, user events sent before the join are not
    /// delivered here (the Go agent's default; `-replay` turns it off).
    pub async fn join<I>(&self, seeds: I, ignore_old: bool) -> Result<usize, NodeError>
    where
        I: IntoIterator,
        I::Item: IntoSeed,
    {
        if ignore_old {
            self.inner.serf().ignore_old_events_on_join();
        }
        let joined = match self.inner.node.join(seeds).await {
            Ok(joined) => joined,
            Err(e) => {
                self.inner.serf().join_completed(self.inner.now(), 0);
                return Err(e.into());
            }
        };
        self.inner
            .run(|serf, now| {
                serf.join_completed(now, joined);
                Ok(())
            })
            .await?;
        Ok(joined)
    }

    /// Sends a user event to every member, this one included (Go's
    /// `Serf.UserEvent`; `coalesce` is carried on the wire).
    pub async fn user_event(
        &self,
        name: &str,
        payload: &[u8],
        coalesce: bool,
    ) -> Result<(), NodeError> {
        self.inner
            .run(|serf, _| serf.user_event(name, payload, coalesce))
            .await?;
        Ok(())
    }

    /// Asks the cluster (Go's `Serf.Query`); acks and answers come on the
    /// [`QueryResponses`] returned, deduplicated per node, until the
    /// timeout (`params.timeout`, or Go's default for the cluster's size).
    pub async fn query(
        &self,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
    ) -> Result<QueryResponses, NodeError> {
        let inner = &self.inner;
        let (responses, work) = {
            let mut serf = inner.serf();
            let id = serf.query(inner.now(), name, payload, params)?;
            // Registered before the outputs are drained: our own answer
            // may be among them.
            let (acks_tx, acks) = match params.request_ack {
                true => {
                    let (tx, rx) = async_channel::unbounded();
                    (Some(tx), Some(rx))
                }
                false => (None, None),
            };
            let (responses_tx, responses) = async_channel::unbounded();
            let sinks = QuerySinks {
                acks: acks_tx,
                responses: responses_tx,
            };
            let mut queries = inner.queries.lock().unwrap_or_else(|e| e.into_inner());
            queries.insert(id, sinks);
            drop(queries);
            let work = inner.drain(&mut serf);
            (
                QueryResponses {
                    id,
                    acks,
                    responses,
                },
                work,
            )
        };
        let _ = inner.wake.try_send(());
        inner.apply(work).await?;
        Ok(responses)
    }

    /// Answers a query delivered as [`SerfEvent::Query`] (Go's
    /// `Query.Respond`): once, before its deadline.
    pub async fn respond(&self, query: &IncomingQuery, payload: &[u8]) -> Result<(), NodeError> {
        self.inner
            .run(|serf, now| serf.respond(now, query, payload))
            .await?;
        Ok(())
    }

    /// Installs `key` on every member's keyring (Go's
    /// `KeyManager.InstallKey`: a `_serf_install-key` query).
    pub async fn install_key(&self, key: &[u8]) -> Result<ClusterKeyResponse, NodeError> {
        self.key_request("install-key", Some(key)).await
    }

    /// Makes the installed `key` every member's primary (Go's `UseKey`).
    pub async fn use_key(&self, key: &[u8]) -> Result<ClusterKeyResponse, NodeError> {
        self.key_request("use-key", Some(key)).await
    }

    /// Removes `key` from every member's keyring (Go's `RemoveKey`).
    pub async fn remove_key(&self, key: &[u8]) -> Result<ClusterKeyResponse, NodeError> {
        self.key_request("remove-key", Some(key)).await
    }

    /// Every member's keys (Go's `ListKeys`).
    pub async fn list_keys(&self) -> Result<ClusterKeyResponse, NodeError> {
        self.key_request("list-keys", None).await
    }

    /// Go's `handleKeyRequest` and `streamKeyResp`: the query with default
    /// parameters, answers tallied until every member answered or it
    /// closed.
    async fn key_request(
        &self,
        op: &str,
        key: Option<&[u8]>,
    ) -> Result<ClusterKeyResponse, NodeError> {
        use crate::messages::{KeyRequest, Message};
        let payload = key.map_or_else(Vec::new, |k| {
            Message::KeyRequest(KeyRequest {
                key: Some(k.to_vec()),
            })
            .to_bytes()
        });
        let name = format!("{}{op}", crate::INTERNAL_QUERY_PREFIX);
        let mut report = ClusterKeyResponse {
            num_nodes: self
                .members()
                .iter()
                .filter(|m| {
                    matches!(
                        m.status,
                        crate::MemberStatus::Alive | crate::MemberStatus::Leaving
                    )
                })
                .count(),
            ..ClusterKeyResponse::default()
        };
        let answers = self.query(&name, &payload, &QueryParams::default()).await?;
        while report.num_resp < report.num_nodes {
            let Some(r) = answers.recv_response().await else {
                break;
            };
            report.num_resp += 1;
            let resp = match Message::decode(&r.payload) {
                Ok(Message::KeyResponse(resp)) => resp,
                _ => {
                    let why = format!("Invalid key query response type: {:?}", r.payload);
                    report.messages.insert(r.from, why);
                    report.num_err += 1;
                    continue;
                }
            };
            if !resp.result {
                report.num_err += 1;
            }
            if !resp.result || !resp.message.is_empty() {
                report.messages.insert(r.from, resp.message);
            }
            for k in resp.keys {
                *report.keys.entry(k).or_default() += 1;
            }
            *report.primary_keys.entry(resp.primary_key).or_default() += 1;
        }
        Ok(report)
    }

    /// Replaces this node's tags and announces them (Go's `SetTags`).
    pub async fn set_tags(&self, tags: Tags) -> Result<(), NodeError> {
        self.inner.run(|serf, _| serf.set_tags(tags)).await?;
        Ok(())
    }

    /// Every member known, any status, sorted by name (Go's `Members`).
    pub fn members(&self) -> Vec<Member> {
        self.inner.serf().members()
    }

    /// One member.
    pub fn member(&self, name: &str) -> Option<Member> {
        self.inner.serf().member(name).cloned()
    }

    /// This node's network coordinate (Go's `GetCoordinate`); `None` when
    /// coordinates are disabled.
    pub fn coordinate(&self) -> Option<Coordinate> {
        self.inner.serf().coordinate().cloned()
    }

    /// The coordinate `node` last sent in an ack (Go's
    /// `GetCachedCoordinate`).
    pub fn cached_coordinate(&self, node: &str) -> Option<Coordinate> {
        self.inner.serf().cached_coordinate(node).cloned()
    }

    /// The estimated round-trip time to `node`, from the coordinates.
    pub fn estimated_rtt(&self, node: &str) -> Option<Duration> {
        self.inner.serf().estimated_rtt(node)
    }

    /// The member clock's time (Go's `Serf.Clock`).
    pub fn clock(&self) -> crate::LamportTime {
        self.inner.serf().clock()
    }

    /// The user-event clock's time (Go's `Serf.EventClock`).
    pub fn event_clock(&self) -> crate::LamportTime {
        self.inner.serf().event_clock()
    }

    /// The query clock's time (Go's `Serf.QueryClock`).
    pub fn query_clock(&self) -> crate::LamportTime {
        self.inner.serf().query_clock()
    }

    /// How full Serf's broadcast queues are ([`Serf::queue_depths`]).
    pub fn queue_depths(&self) -> QueueDepths {
        self.inner.serf().queue_depths()
    }

    /// Times our coordinate was reset ([`Serf::coordinate_resets`]).
    pub fn coordinate_resets(&self) -> Option<u64> {
        self.inner.serf().coordinate_resets()
    }

    /// Whether the node runs, is leaving or has left.
    pub fn state(&self) -> crate::SerfState {
        self.inner.serf().state()
    }

    /// The Swim node underneath.
    pub fn node(&self) -> &Node {
        &self.inner.node
    }

    /// Leaves gracefully (Go's `Serf.Leave`): gossips our leave intent and
    /// waits for it to go out (at most the broadcast timeout), leaves the
    /// Swim, then stays up for the propagate delay so that probes are still
    /// answered while the news spreads. Members then see us `left`, not
    /// `failed`. The node keeps running until [`shutdown`](Self::shutdown).
    pub async fn leave(&self) -> Result<(), NodeError> {
        let (timeout, delay) = {
            let serf = self.inner.serf();
            let c = serf.config();
            (c.broadcast_timeout, c.leave_propagate_delay)
        };
        if self.state() == crate::SerfState::Alive {
            // First, as Go's: a restart after this does not rejoin.
            let mut snapshot = self
                .inner
                .snapshot
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(Err(e)) = snapshot.as_mut().map(SnapshotFile::leave) {
                tracing::error!(error = %e, "failed to record the leave in the snapshot");
            }
        }
        let intent = self.inner.run(|serf, now| serf.leave(now)).await?;
        if let Some(id) = intent {
            if !self.inner.wait_finished(id, timeout).await {
                return Err(NodeError::LeaveTimeout);
            }
        }
        self.inner.node.leave(timeout).await?;
        (self.inner.timer_at)((self.inner.now)() + delay).await;
        self.inner.serf().leave_completed();
        Ok(())
    }

    /// Forces a failed member out (Go's `RemoveFailedNode`, `serf
    /// force-leave`): everyone sees it `left`; with `prune`, everyone
    /// forgets it. Waits for the intent to be gossiped.
    pub async fn force_leave(&self, node: &str, prune: bool) -> Result<(), NodeError> {
        let timeout = self.inner.serf().config().broadcast_timeout;
        let intent = self
            .inner
            .run(|serf, now| serf.remove_failed_node(now, node, prune))
            .await?;
        if let Some(id) = intent {
            if !self.inner.wait_finished(id, timeout).await {
                return Err(NodeError::RemovalTimeout);
            }
        }
        Ok(())
    }

    /// Stops the node without leaving: members will see it fail.
    pub async fn shutdown(&self) {
        self.inner.node.shutdown().await;
    }
}

/// Writes `ring` where Go Serf keeps its keyring file: a JSON list of
/// base64 keys, the primary first, two-space indented, readable by the
/// owner only (Go's `writeKeyringFile`).
fn write_keyring_file(path: &std::path::Path, ring: &Keyring) -> Result<(), String> {
    use base64::Engine;
    use std::io::Write;
    // Base64 needs no JSON escaping.
    let keys: Vec<String> = ring
        .keys()
        .map(|k| {
            let key = base64::engine::general_purpose::STANDARD.encode(k.as_bytes());
            format!("  \"{key}\"")
        })
        .collect();
    let json = format!("[\n{}\n]", keys.join(",\n"));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)?.write_all(json.as_bytes())
    };
    write().map_err(|e| format!("Failed to write keyring file: {e}"))
}

/// `builder` set up for Serf, and the Serf its delegate shares.
/// What [`launch`] needs besides the bound node.
struct Prepared {
    serf: Arc<Mutex<Serf>>,
    /// The pump's wake-up, which the delegate shares.
    wake: (async_channel::Sender<()>, async_channel::Receiver<()>),
    keyring: Option<Keyring>,
    keyring_file: Option<std::path::PathBuf>,
    /// The snapshot file, and the nodes it said were alive.
    snapshot: Option<(SnapshotFile, Vec<(String, String)>)>,
}

/// `builder` set up for Serf, and the Serf its delegate shares, restored
/// from its snapshot if it keeps one.
fn prepare<R: Runtime, T>(
    mut builder: NodeBuilder<R, T>,
    mut config: SerfConfig,
) -> Result<(NodeBuilder<R, T>, Prepared), SerfStartError> {
    let swim = &mut builder.config_mut().swim;
    config.gossip_interval = swim.gossip_interval;
    config.retransmit_mult = swim.retransmit_mult;
    let keyring = swim.keyring.clone();
    *swim = config
        .swim_config(swim.clone())
        .map_err(SerfStartError::Serf)?;
    let snapshot = match &config.snapshot_path {
        Some(path) => Some(
            SnapshotFile::open(path, config.rejoin_after_leave)
                .map_err(SerfStartError::Snapshot)?,
        ),
        None => None,
    };
    let name = config.name.clone();
    let keyring_file = config.keyring_file.clone();
    let mut serf = Serf::new(config).map_err(SerfStartError::Serf)?;
    let snapshot = snapshot.map(|(file, previous)| {
        serf.restore(&previous);
        let alive = previous.alive_nodes.into_iter();
        (file, alive.filter(|(n, _)| *n != name).collect())
    });
    let serf = Arc::new(Mutex::new(serf));
    let wake = async_channel::bounded(1);
    let delegate = PumpedDelegate {
        serf: SerfDelegate(serf.clone()),
        wake: wake.0.clone(),
    };
    let prepared = Prepared {
        serf,
        wake,
        keyring,
        keyring_file,
        snapshot,
    };
    Ok((builder.delegate(delegate), prepared))
}

/// Spawns a bound node's driver and Serf's pump; rejoins the nodes a
/// snapshot listed (Go's `handleRejoin`: the first that answers is enough).
fn launch<R: Runtime>(
    Prepared {
        serf,
        wake: (wake_tx, wake_rx),
        keyring,
        keyring_file,
        snapshot,
    }: Prepared,
    (node, swim_events, driver): (Node, Events, impl Future<Output = ()> + Send + 'static),
) -> (SerfNode, SerfEvents) {
    R::spawn(driver);
    let (snapshot, previous) = match snapshot {
        Some((file, previous)) => (Some(file), previous),
        None => (None, Vec::new()),
    };
    if !previous.is_empty() {
        let node = node.clone();
        R::spawn(async move {
            for (name, addr) in previous {
                match node.join([addr.as_str()]).await {
                    Ok(_) => return,
                    Err(e) => tracing::debug!(%name, %addr, error = %e, "rejoin failed"),
                }
            }
            tracing::warn!("failed to rejoin any node of the snapshot");
        });
    }
    let (events_tx, events_rx) = async_channel::unbounded();
    let inner = Arc::new(Inner {
        node,
        serf,
        events: events_tx,
        wake: wake_tx,
        finished: Mutex::default(),
        queued: AtomicU64::new(0),
        queries: Mutex::default(),
        keyring: Mutex::new(keyring),
        snapshot: Mutex::new(snapshot),
        keyring_file,
        now: R::now,
        timer_at: |at| Box::pin(R::timer_at(at)),
        spawn: |task| R::spawn(task),
        started: R::now(),
    });
    R::spawn(pump(Arc::downgrade(&inner), swim_events, wake_rx));
    let events = SerfEvents {
        rx: Box::pin(events_rx),
    };
    (SerfNode { inner }, events)
}

/// The Swim's events into the Serf, the Serf's outputs out, and its timer;
/// ends when the node stops or the last [`SerfNode`] is dropped.
async fn pump(inner: Weak<Inner>, events: Events, wake: async_channel::Receiver<()>) {
    loop {
        let timer = {
            let Some(inner) = inner.upgrade() else { return };
            let deadline = inner.serf().poll_timeout();
            deadline.map(|at| (inner.timer_at)(inner.started + at.as_duration()))
        };
        let timer: BoxFuture = timer.unwrap_or_else(|| Box::pin(std::future::pending()));
        let event = match select(
            Box::pin(events.recv()),
            select(Box::pin(wake.recv()), timer),
        )
        .await
        {
            Either::Left((None, _)) => return,
            Either::Left((Some(event), _)) => Some(event),
            Either::Right(_) => None,
        };
        let Some(inner) = inner.upgrade() else { return };
        let work = {
            let mut serf = inner.serf();
            let now = inner.now();
            match &event {
                Some(event) => serf.handle_event(now, event),
                None => serf.handle_timeout(now),
            }
            // Go records the member clock every 500 ms; here on every
            // input, when it moved.
            let mut snapshot = inner.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Err(e)) = snapshot.as_mut().map(|f| f.update_clock(serf.clock())) {
                tracing::error!(error = %e, "failed to update the snapshot");
            }
            drop(snapshot);
            inner.drain(&mut serf)
        };
        // Failing only when the node stopped, which ends the loop above.
        let _ = inner.apply(work).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_file_is_gos_json_primary_first() {
        let dir = std::env::temp_dir().join(format!("swim-serf-keyring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keyring");
        let mut ring = Keyring::new(SecretKey::new(&[1; 16]).unwrap());
        ring.add(SecretKey::new(&[2; 32]).unwrap());
        ring.use_key(&SecretKey::new(&[2; 32]).unwrap()).unwrap();
        write_keyring_file(&path, &ring).unwrap();
        // What Go's `json.MarshalIndent(keys, "", "  ")` writes.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[\n  \"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\",\n  \"AQEBAQEBAQEBAQEBAQEBAQ==\"\n]"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "key data readable by the owner only");
        }
        // A file that cannot be written is an error, not a panic.
        let err = write_keyring_file(&dir.join("missing").join("keyring"), &ring).unwrap_err();
        assert!(err.starts_with("Failed to write keyring file: "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
