//! One RPC client: its requests in order, its streams, its pending
//! queries. Bad input — a malformed value, an unknown command, a value
//! over [`MAX_REQUEST`], a command before the handshake — gets Go's error
//! where Go gives one, is counted, changes nothing, and closes the
//! connection (Go closes it too: its decoder cannot find the next request
//! after a bad one). A wrong auth token is answered and counted; the
//! connection stays, as in Go.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use swim_serf::{IncomingQuery, QueryParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::proto::{self, errors};
use super::{MAX_REQUEST, OUT_QUEUE, REQUEST_TIMEOUT, WRITE_TIMEOUT};
use crate::serf::agent::Agent;
use crate::serf::handlers::{AgentEvent, EventFilter};
use crate::serf::logs::GoLevel;
use crate::serf::msgpack::{self, DecodeError, Encoder, Value};

/// Queries a client may answer at once; past it the oldest is forgotten.
const PENDING_MAX: usize = 4096;
/// A query not answered in this long is forgotten (Serf refuses late
/// answers anyway).
const PENDING_LIFETIME: Duration = Duration::from_secs(300);

/// Why reading a request stopped.
enum Stop {
    /// The client closed, or the connection failed.
    Closed,
    /// Bad input: the connection is closed after it.
    Bad(String),
    /// The client sent a value too slowly.
    Slow,
}

/// Queries streamed to this client, by the id it answers with.
#[derive(Default)]
struct Pending {
    next: AtomicU64,
    queries: Mutex<HashMap<u64, (IncomingQuery, Instant)>>,
}

impl Pending {
    fn register(&self, q: IncomingQuery) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < PENDING_LIFETIME);
        if map.len() >= PENDING_MAX {
            if let Some(oldest) = map.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(id, (q, Instant::now()));
        id
    }

    fn take(&self, id: u64) -> Option<IncomingQuery> {
        let mut map = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&id).map(|(q, _)| q)
    }
}

struct Conn {
    agent: Arc<Agent>,
    auth: Option<Arc<str>>,
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    out: async_channel::Sender<Vec<u8>>,
    version: i64,
    did_auth: bool,
    streams: HashMap<u64, JoinHandle<()>>,
    monitor: Option<(u64, JoinHandle<()>)>,
    pending: Arc<Pending>,
}

/// Serves one client until it closes or misbehaves.
pub(super) async fn serve(agent: Arc<Agent>, auth: Option<Arc<str>>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (rd, wr) = stream.into_split();
    let (out, out_rx) = async_channel::bounded(OUT_QUEUE);
    let mut writer = tokio::spawn(write_loop(wr, out_rx, agent.clone()));
    let mut c = Conn {
        agent: agent.clone(),
        auth,
        rd,
        buf: Vec::new(),
        out,
        version: 0,
        did_auth: false,
        streams: HashMap::new(),
        monitor: None,
        pending: Arc::default(),
    };
    let why = loop {
        tokio::select! {
            biased;
            _ = &mut writer => break Stop::Closed,
            r = c.request() => if let Err(why) = r { break why },
        }
    };
    match why {
        Stop::Closed => {}
        Stop::Bad(e) => {
            agent
                .counters
                .rpc_bad_requests
                .fetch_add(1, Ordering::Relaxed);
            warn!(target: "agent.ipc", "Failed to evaluate request from {peer}: {e}");
        }
        Stop::Slow => {
            agent
                .counters
                .rpc_slow_clients
                .fetch_add(1, Ordering::Relaxed);
            warn!(target: "agent.ipc", "Closing slow client {peer}");
        }
    }
    for (_, task) in c.streams.drain() {
        task.abort();
    }
    if let Some((_, task)) = c.monitor.take() {
        task.abort();
    }
    // Let queued answers (the last error) go out, then close.
    drop(c.out);
    let _ = writer.await;
}

/// Writes what the client is sent, each write bounded by
/// [`WRITE_TIMEOUT`].
async fn write_loop(
    mut wr: OwnedWriteHalf,
    rx: async_channel::Receiver<Vec<u8>>,
    agent: Arc<Agent>,
) {
    while let Ok(frame) = rx.recv().await {
        match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                agent
                    .counters
                    .rpc_slow_clients
                    .fetch_add(1, Ordering::Relaxed);
                warn!(target: "agent.ipc", "Closing a client that does not read");
                return;
            }
        }
    }
}

/// Whether a command carries a request body (Go decodes one).
fn has_body(command: &str) -> Option<bool> {
    Some(match command {
        "members" | "leave" | "list-keys" | "stats" => false,
        "handshake" | "auth" | "event" | "force-leave" | "join" | "members-filtered" | "stream"
        | "monitor" | "stop" | "install-key" | "use-key" | "remove-key" | "tags" | "query"
        | "respond" | "get-coordinate" => true,
        _ => return None,
    })
}

/// A header, and a body when given.
fn frame(seq: u64, error: &str, body: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::default();
    proto::header(&mut e, seq, error);
    body(&mut e);
    e.out
}

impl Conn {
    /// The next msgpack value, within the size and time bounds.
    async fn value(&mut self) -> Result<Value, Stop> {
        let mut deadline =
            (!self.buf.is_empty()).then(|| tokio::time::Instant::now() + REQUEST_TIMEOUT);
        let mut chunk = [0u8; 8192];
        loop {
            if !self.buf.is_empty() {
                match msgpack::decode(&self.buf) {
                    Ok((v, n)) => {
                        self.buf.drain(..n);
                        return Ok(v);
                    }
                    Err(DecodeError::Incomplete) if self.buf.len() < MAX_REQUEST => {}
                    Err(DecodeError::Incomplete) => {
                        return Err(Stop::Bad(format!("request over {MAX_REQUEST} bytes")))
                    }
                    Err(e) => return Err(Stop::Bad(format!("malformed request: {e}"))),
                }
            }
            // Never more than the limit, plus one byte to notice it.
            let room = (MAX_REQUEST + 1 - self.buf.len()).min(chunk.len());
            let read = self.rd.read(&mut chunk[..room]);
            let n = match deadline {
                None => read.await,
                Some(at) => tokio::time::timeout_at(at, read)
                    .await
                    .map_err(|_| Stop::Slow)?,
            }
            .map_err(|_| Stop::Closed)?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Err(Stop::Closed);
                }
                return Err(Stop::Bad("connection closed inside a request".into()));
            }
            if self.buf.is_empty() {
                deadline = Some(tokio::time::Instant::now() + REQUEST_TIMEOUT);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&self, frame: Vec<u8>) -> Result<(), Stop> {
        self.out.send(frame).await.map_err(|_| Stop::Closed)
    }

    /// Answers a body that could not be read with Go's "decode failed",
    /// and the empty body the client waits for; then the connection
    /// closes.
    async fn bad_body(&self, seq: u64, command: &str, e: impl std::fmt::Display) -> Stop {
        let why = format!("decode failed: {e}");
        let f = frame(seq, &why, |b| empty_body(command, b));
        let _ = self.send(f).await;
        Stop::Bad(format!("{command}: {why}"))
    }

    /// Reads and answers one request.
    async fn request(&mut self) -> Result<(), Stop> {
        let header = self.value().await?;
        let (command, seq) = match (header.str("Command"), header.uint("Seq")) {
            (Ok(c), Ok(s)) => (c, s),
            (Err(e), _) | (_, Err(e)) => {
                return Err(Stop::Bad(format!("failed to decode request header: {e}")))
            }
        };
        if command != "handshake" && self.version == 0 {
            self.send(frame(seq, errors::HANDSHAKE_REQUIRED, |_| {}))
                .await?;
            return Err(Stop::Bad(errors::HANDSHAKE_REQUIRED.into()));
        }
        let Some(body) = has_body(&command) else {
            self.send(frame(seq, errors::UNSUPPORTED_COMMAND, |_| {}))
                .await?;
            return Err(Stop::Bad(format!("command '{command}' not recognized")));
        };
        let body = if body {
            Some(self.value().await?)
        } else {
            None
        };
        if self.auth.is_some() && !self.did_auth && command != "auth" && command != "handshake" {
            warn!(target: "agent.ipc", "Client sending commands before auth");
            self.agent
                .counters
                .rpc_auth_failures
                .fetch_add(1, Ordering::Relaxed);
            return self.send(frame(seq, errors::AUTH_REQUIRED, |_| {})).await;
        }
        let body = body.unwrap_or(Value::Nil);
        self.command(&command, seq, &body).await
    }

    async fn command(&mut self, command: &str, seq: u64, body: &Value) -> Result<(), Stop> {
        macro_rules! field {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => return Err(self.bad_body(seq, command, e).await),
                }
            };
        }
        let agent = self.agent.clone();
        match command {
            "handshake" => {
                let version = field!(body.int("Version"));
                let error = if version != proto::IPC_VERSION {
                    errors::UNSUPPORTED_IPC_VERSION
                } else if self.version != 0 {
                    errors::DUPLICATE_HANDSHAKE
                } else {
                    self.version = version;
                    ""
                };
                if !error.is_empty() {
                    agent
                        .counters
                        .rpc_bad_requests
                        .fetch_add(1, Ordering::Relaxed);
                }
                self.send(frame(seq, error, |_| {})).await
            }
            "auth" => {
                let key = field!(body.str("AuthKey"));
                let expected = self.auth.as_deref().unwrap_or("");
                let error = if constant_time_eq(key.as_bytes(), expected.as_bytes()) {
                    self.did_auth = true;
                    ""
                } else {
                    agent
                        .counters
                        .rpc_auth_failures
                        .fetch_add(1, Ordering::Relaxed);
                    errors::INVALID_AUTH_TOKEN
                };
                self.send(frame(seq, error, |_| {})).await
            }
            "event" => {
                let name = field!(body.str("Name"));
                let payload = field!(body.bin("Payload"));
                let coalesce = field!(body.bool("Coalesce"));
                debug!(target: "agent",
                    "Requesting user event send: {name}. Coalesced: {coalesce}. Payload: {payload:?}"
                );
                let r = agent.serf.user_event(&name, &payload, coalesce).await;
                if let Err(e) = &r {
                    warn!(target: "agent", "failed to send user event: {e}");
                }
                self.send(frame(seq, &err_string(r), |_| {})).await
            }
            "force-leave" => {
                let node = field!(body.str("Node"));
                let prune = field!(body.bool("Prune"));
                match prune {
                    true => info!(target: "agent", "Force leaving node (prune): {node}"),
                    false => info!(target: "agent", "Force leaving node: {node}"),
                }
                let r = agent.serf.force_leave(&node, prune).await;
                if let Err(e) = &r {
                    warn!(target: "agent", "failed to remove node: {e}");
                }
                self.send(frame(seq, &err_string(r), |_| {})).await
            }
            "join" => {
                let existing = field!(body.strings("Existing"));
                let replay = field!(body.bool("Replay"));
                info!(target: "agent", "joining: {existing:?} replay: {replay}");
                let (num, error) = match agent
                    .serf
                    .join(existing.iter().map(String::as_str), !replay)
                    .await
                {
                    Ok(n) => {
                        info!(target: "agent", "joined: {n} nodes");
                        (n, String::new())
                    }
                    Err(e) => {
                        warn!(target: "agent", "error joining: {e}");
                        (0, e.to_string())
                    }
                };
                self.send(frame(seq, &error, |b| proto::join(b, num))).await
            }
            "members" => {
                let members = agent.serf.members();
                self.send(frame(seq, "", |b| proto::members(b, &members)))
                    .await
            }
            "members-filtered" => {
                let tags = field!(body.string_map("Tags"));
                let status = field!(body.str("Status"));
                let name = field!(body.str("Name"));
                let (members, error) =
                    match filter_members(agent.serf.members(), &tags, &status, &name) {
                        Ok(m) => (m, String::new()),
                        Err(e) => (Vec::new(), e),
                    };
                self.send(frame(seq, &error, |b| proto::members(b, &members)))
                    .await
            }
            "stream" => {
                let kind = field!(body.str("Type"));
                let filters = EventFilter::parse_list(&kind);
                if !filters.iter().all(EventFilter::valid) {
                    agent
                        .counters
                        .rpc_bad_requests
                        .fetch_add(1, Ordering::Relaxed);
                    return self.send(frame(seq, errors::INVALID_FILTER, |_| {})).await;
                }
                if self.streams.contains_key(&seq) {
                    return self.send(frame(seq, errors::STREAM_EXISTS, |_| {})).await;
                }
                self.send(frame(seq, "", |_| {})).await?;
                let rx = agent.subscribe(filters);
                let task = tokio::spawn(stream_events(
                    rx,
                    self.out.clone(),
                    seq,
                    self.pending.clone(),
                ));
                self.streams.insert(seq, task);
                Ok(())
            }
            "monitor" => {
                let level = field!(body.str("LogLevel")).to_uppercase();
                let Some(level) = GoLevel::parse(&level) else {
                    let why = format!("Unknown log level: {level}");
                    return self.send(frame(seq, &why, |_| {})).await;
                };
                if self.monitor.is_some() {
                    return self.send(frame(seq, errors::MONITOR_EXISTS, |_| {})).await;
                }
                self.send(frame(seq, "", |_| {})).await?;
                let rx = agent.logs.monitor(level);
                let out = self.out.clone();
                let task = tokio::spawn(async move {
                    while let Ok(line) = rx.recv().await {
                        let f = frame(seq, "", |b| proto::log_record(b, &line));
                        if out.send(f).await.is_err() {
                            return;
                        }
                    }
                });
                self.monitor = Some((seq, task));
                Ok(())
            }
            "stop" => {
                let stop = field!(body.uint("Stop"));
                if self.monitor.as_ref().is_some_and(|(s, _)| *s == stop) {
                    if let Some((_, task)) = self.monitor.take() {
                        task.abort();
                    }
                }
                if let Some(task) = self.streams.remove(&stop) {
                    task.abort();
                }
                self.send(frame(seq, "", |_| {})).await
            }
            "leave" => {
                info!(target: "agent.ipc", "Graceful leave triggered");
                let r = agent.leave().await;
                if let Err(e) = &r {
                    warn!(target: "agent.ipc", "leave failed: {e}");
                }
                let sent = self.send(frame(seq, &err_string(r), |_| {})).await;
                // Go shuts the agent down after answering, whatever the
                // leave did.
                tokio::time::sleep(Duration::from_millis(50)).await;
                agent.request_stop();
                sent
            }
            "install-key" | "use-key" | "remove-key" => {
                let key = field!(body.str("Key"));
                let (resp, error) = match base64::engine::general_purpose::STANDARD.decode(&key) {
                    Err(e) => (Default::default(), e.to_string()),
                    Ok(raw) => {
                        let r = match command {
                            "install-key" => {
                                info!(target: "agent", "Initiating key installation");
                                agent.serf.install_key(&raw).await
                            }
                            "use-key" => {
                                info!(target: "agent", "Initiating primary key change");
                                agent.serf.use_key(&raw).await
                            }
                            _ => {
                                info!(target: "agent", "Initiating key removal");
                                agent.serf.remove_key(&raw).await
                            }
                        };
                        key_outcome(r)
                    }
                };
                self.send(frame(seq, &error, |b| proto::keys(b, &resp, false)))
                    .await
            }
            "list-keys" => {
                info!(target: "agent", "Initiating key listing");
                let (resp, error) = key_outcome(agent.serf.list_keys().await);
                self.send(frame(seq, &error, |b| proto::keys(b, &resp, true)))
                    .await
            }
            "tags" => {
                let set = field!(body.string_map("Tags"));
                let delete = field!(body.strings("DeleteTags"));
                let mut tags = agent.tags();
                tags.retain(|k, _| !delete.contains(k));
                tags.extend(set);
                let r = agent.set_tags(tags).await;
                self.send(frame(seq, &r.err().unwrap_or_default(), |_| {}))
                    .await
            }
            "query" => {
                let params = QueryParams {
                    filter_nodes: field!(body.strings("FilterNodes")),
                    filter_tags: field!(body.string_map("FilterTags")),
                    request_ack: field!(body.bool("RequestAck")),
                    relay_factor: field!(body.uint("RelayFactor")).min(255) as u8,
                    timeout: match field!(body.int("Timeout")) {
                        n if n > 0 => Some(Duration::from_nanos(n as u64)),
                        _ => None,
                    },
                };
                let name = field!(body.str("Name"));
                let payload = field!(body.bin("Payload"));
                match agent.query(&name, &payload, &params).await {
                    Err(e) => self.send(frame(seq, &e, |_| {})).await,
                    Ok(responses) => {
                        self.send(frame(seq, "", |_| {})).await?;
                        let out = self.out.clone();
                        tokio::spawn(stream_query(responses, out, seq));
                        Ok(())
                    }
                }
            }
            "respond" => {
                let id = field!(body.uint("ID"));
                let payload = field!(body.bin("Payload"));
                let error = match self.pending.take(id) {
                    None => errors::INVALID_QUERY_ID.to_owned(),
                    Some(q) => err_string(agent.serf.respond(&q, &payload).await),
                };
                self.send(frame(seq, &error, |_| {})).await
            }
            "stats" => {
                let stats = agent.stats();
                self.send(frame(seq, "", |b| proto::stats(b, &stats))).await
            }
            "get-coordinate" => {
                let node = field!(body.str("Node"));
                let coord = match node == agent.name {
                    true => agent.serf.coordinate(),
                    false => agent.serf.cached_coordinate(&node),
                };
                self.send(frame(seq, "", |b| proto::coordinate(b, coord.as_ref())))
                    .await
            }
            other => Err(Stop::Bad(format!("command '{other}' not recognized"))),
        }
    }
}

/// The body a command's answer carries even with an error (the client
/// reads one).
fn empty_body(command: &str, b: &mut Encoder) {
    match command {
        "join" => proto::join(b, 0),
        "members" | "members-filtered" => proto::members(b, &[]),
        "install-key" | "use-key" | "remove-key" => proto::keys(b, &Default::default(), false),
        "list-keys" => proto::keys(b, &Default::default(), true),
        "get-coordinate" => proto::coordinate(b, None),
        _ => {}
    }
}

fn err_string<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

/// A key request's answer and Go's error for it (`handleKeyRequest`).
fn key_outcome(
    r: Result<swim_serf::ClusterKeyResponse, swim_serf::NodeError>,
) -> (swim_serf::ClusterKeyResponse, String) {
    match r {
        Err(e) => (Default::default(), e.to_string()),
        Ok(resp) if resp.num_err != 0 => {
            let e = format!("{}/{} nodes reported failure", resp.num_err, resp.num_nodes);
            (resp, e)
        }
        Ok(resp) if resp.num_resp != resp.num_nodes => {
            let e = format!(
                "{}/{} nodes reported success",
                resp.num_resp, resp.num_nodes
            );
            (resp, e)
        }
        Ok(resp) => (resp, String::new()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Go's `filterMembers`: each filter a regular expression anchored at both
/// ends; tags missing read as empty.
fn filter_members(
    members: Vec<swim_serf::Member>,
    tags: &[(String, String)],
    status: &str,
    name: &str,
) -> Result<Vec<swim_serf::Member>, String> {
    let anchored = |expr: &str| {
        regex::Regex::new(&format!("^(?:{expr})$"))
            .map_err(|e| format!("Failed to compile regex: {e}"))
    };
    let tag_res = tags
        .iter()
        .map(|(k, v)| Ok((k.clone(), anchored(v)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let status_re = anchored(status)?;
    let name_re = anchored(name)?;
    Ok(members
        .into_iter()
        .filter(|m| {
            tag_res
                .iter()
                .all(|(k, re)| re.is_match(m.tags.get(k).map(String::as_str).unwrap_or("")))
                && (status.is_empty() || status_re.is_match(proto::status_name(m.status)))
                && (name.is_empty() || name_re.is_match(&m.name))
        })
        .collect())
}

/// Forwards the agent's events to a `stream` client.
async fn stream_events(
    rx: async_channel::Receiver<AgentEvent>,
    out: async_channel::Sender<Vec<u8>>,
    seq: u64,
    pending: Arc<Pending>,
) {
    while let Ok(event) = rx.recv().await {
        let id = match &event {
            AgentEvent::Query(q) => pending.register(q.clone()),
            _ => 0,
        };
        let f = frame(seq, "", |b| proto::event_record(b, &event, id));
        if out.send(f).await.is_err() {
            return;
        }
    }
}

/// Streams a query's acks and answers, then `done` when it closes (Go's
/// `queryResponseStream`).
async fn stream_query(
    responses: swim_serf::QueryResponses,
    out: async_channel::Sender<Vec<u8>>,
    seq: u64,
) {
    let (mut acks_open, mut answers_open) = (true, true);
    while acks_open || answers_open {
        let f = tokio::select! {
            a = responses.recv_ack(), if acks_open => match a {
                Some(from) => frame(seq, "", |b| proto::query_record(b, "ack", &from, None)),
                None => { acks_open = false; continue }
            },
            r = responses.recv_response(), if answers_open => match r {
                Some(r) => frame(seq, "", |b| {
                    proto::query_record(b, "response", &r.from, Some(&r.payload))
                }),
                None => { answers_open = false; continue }
            },
        };
        if out.send(f).await.is_err() {
            return;
        }
    }
    let f = frame(seq, "", |b| proto::query_record(b, "done", "", None));
    let _ = out.send(f).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_serf::{Member, MemberStatus};

    fn member(name: &str, role: &str, status: MemberStatus) -> Member {
        Member {
            name: name.into(),
            addr: "127.0.0.1:7946".parse().unwrap(),
            tags: [("role".to_string(), role.to_string())].into(),
            status,
            vsn: [1, 5, 2, 2, 5, 4],
        }
    }

    #[test]
    fn member_filters_are_anchored_regular_expressions() {
        let all = vec![
            member("web-1", "web", MemberStatus::Alive),
            member("web-2", "webby", MemberStatus::Failed),
            member("db-1", "db", MemberStatus::Alive),
        ];
        let names = |v: Vec<Member>| v.into_iter().map(|m| m.name).collect::<Vec<_>>();
        let tags = [("role".to_string(), "web".to_string())];
        assert_eq!(
            names(filter_members(all.clone(), &tags, "", "").unwrap()),
            ["web-1"]
        );
        assert_eq!(
            names(filter_members(all.clone(), &[], "alive", "").unwrap()),
            ["web-1", "db-1"]
        );
        assert_eq!(
            names(filter_members(all.clone(), &[], "", "web.*").unwrap()),
            ["web-1", "web-2"]
        );
        let missing = [("dc".to_string(), "".to_string())];
        assert_eq!(
            filter_members(all.clone(), &missing, "", "").unwrap().len(),
            3
        );
        assert!(filter_members(all, &[], "(", "").is_err());
    }

    #[test]
    fn key_outcomes_carry_go_errors() {
        let resp = swim_serf::ClusterKeyResponse {
            num_nodes: 3,
            num_resp: 2,
            ..Default::default()
        };
        assert_eq!(
            key_outcome(Ok(resp.clone())).1,
            "2/3 nodes reported success"
        );
        let failed = swim_serf::ClusterKeyResponse { num_err: 1, ..resp };
        assert_eq!(key_outcome(Ok(failed)).1, "1/3 nodes reported failure");
    }
}
