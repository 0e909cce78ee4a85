//! The HTTP listener: the page at `/`, `/metrics` for Prometheus, and
//! `/v1/members`, `/v1/health`, `/v1/stats`, `/v1/events` as JSON.
//!
//! It is kept away from the protocol three ways:
//!
//! * it runs on a thread of its own with its own single-threaded tokio
//!   runtime, whichever runtime runs the node, so no HTTP work ever runs on
//!   the node's executor;
//! * it never calls into the node on a client's behalf: responses are cut
//!   from the last [`Snapshot`], which a task renders every
//!   [`REFRESH`];
//! * no client can starve the others: at most `http_max_connections`
//!   connections in all and `http_max_connections_per_client` from one
//!   address; a new connection past either limit closes the longest-idle
//!   connection (of that client, for its own limit) to make room — one
//!   serving a request finishes it first — and is refused only when none
//!   is idle. A client holding many idle connections thus loses them to
//!   a probe, never the other way round;
//! * each connection is bounded: request heads of at most
//!   [`MAX_HEAD`] bytes (larger ones get 431), [`HEAD_TIMEOUT`] to send a
//!   request head (slow ones are closed), and [`CONNECTION_LIFETIME`] in
//!   all. Request bodies are never read.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::view::{Body, ClusterView, Lifecycle, Observer, Snapshot, REFRESH};
use swim_node::Node;

/// The largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send a whole request head, from the moment the
/// listener waits for it (on a kept-alive connection too).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may last, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Most headers in a request.
const MAX_HEADERS: usize = 64;

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");

/// How many connections the listener serves, and what the page needs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `agent.http_max_connections`.
    pub total: usize,
    /// `agent.http_max_connections_per_client`.
    pub per_client: usize,
    /// `agent.min_members`, for `/v1/health`.
    pub min_members: usize,
}

impl Limits {
    /// The limits `options` set.
    pub fn of(options: &crate::settings::AgentOptions) -> Limits {
        Limits {
            total: options.http_max_connections,
            per_client: options.http_max_connections_per_client,
            min_members: options.min_members,
        }
    }
}

/// A bound listener, not serving yet.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    limits: Limits,
}

impl Server {
    /// Binds `addr` now, so a taken port is reported before the node starts.
    pub fn bind(addr: SocketAddr, limits: Limits) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Server { listener, limits })
    }

    /// Serves `node` on a thread of its own until the process exits;
    /// returns the observer the agent's event reader feeds.
    pub fn start(
        self,
        node: Node,
        lifecycle: Arc<Lifecycle>,
        prometheus: PrometheusHandle,
    ) -> std::io::Result<Observer> {
        let refused = Arc::new(AtomicU64::new(0));
        let (view, observer) = ClusterView::new(
            node,
            lifecycle,
            prometheus,
            refused.clone(),
            self.limits.min_members,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("swim-agent-http".into())
            .spawn(move || runtime.block_on(self.serve(view, refused)))?;
        Ok(observer)
    }

    async fn serve(self, mut view: ClusterView, refused: Arc<AtomicU64>) {
        let listener = match tokio::net::TcpListener::from_std(self.listener) {
            Ok(listener) => listener,
            Err(e) => {
                warn!(error = %e, "HTTP listener unusable; serving nothing");
                return;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "HTTP listener serving /, /metrics and /v1/*");
        }
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Arc::new(Snapshot::starting())),
        });
        let refresher = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let snapshot = Arc::new(view.refresh().await);
                *refresher.lock() = snapshot;
            }
        });
        let connections = Arc::new(Mutex::new(Connections::default()));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_buf_size(MAX_HEAD)
            .max_headers(MAX_HEADERS)
            .keep_alive(true);
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: let some close.
                    warn!(error = %e, "HTTP accept failed; pausing accepts briefly");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let admitted = lock(&connections).admit(peer.ip(), self.limits);
            let Some((id, evict)) = admitted else {
                let refused = refused.fetch_add(1, Ordering::Relaxed) + 1;
                debug!(%peer, refused, "HTTP connections at their limit, none idle; closing a new one");
                continue;
            };
            let connection = http.serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn({
                    let shared = shared.clone();
                    let connections = connections.clone();
                    move |request| {
                        lock(&connections).touch(id);
                        let snapshot = shared.lock().clone();
                        async move { Ok::<_, Infallible>(respond(&request, &snapshot)) }
                    }
                }),
            );
            let connections = connections.clone();
            tokio::spawn(async move {
                let mut connection = std::pin::pin!(connection);
                let served = async {
                    tokio::select! {
                        result = connection.as_mut() => result,
                        () = evict.notified() => {
                            // Idle: closes now; mid-request: after the response.
                            connection.as_mut().graceful_shutdown();
                            connection.as_mut().await
                        }
                    }
                };
                match tokio::time::timeout(CONNECTION_LIFETIME, served).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!(%peer, error = %e, "HTTP connection ended"),
                    Err(_) => debug!(%peer, "HTTP connection closed at its lifetime"),
                }
                lock(&connections).remove(id);
            });
        }
    }
}

fn lock(connections: &Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    // Plain bookkeeping, never left half-done by a panic.
    connections.lock().unwrap_or_else(|p| p.into_inner())
}

/// The open connections: each one's client, when it last sent a request
/// (or connected), and how to ask it to close.
#[derive(Default)]
struct Connections {
    next: u64,
    open: HashMap<u64, Open>,
}

struct Open {
    client: IpAddr,
    active: Instant,
    evict: Arc<Notify>,
    /// Asked to close already: not counted against the limits.
    evicting: bool,
}

impl Connections {
    /// Makes room for a new connection from `client` — closing the
    /// longest-idle connection of that client when it is at its own
    /// limit, or the longest-idle of all at the total limit — and
    /// registers it; `None` when no connection could make room.
    fn admit(&mut self, client: IpAddr, limits: Limits) -> Option<(u64, Arc<Notify>)> {
        let now = Instant::now();
        let live = |o: &&Open| !o.evicting;
        let of_client = self
            .open
            .values()
            .filter(live)
            .filter(|o| o.client == client)
            .count();
        if of_client >= limits.per_client && !self.evict_idlest(now, Some(client)) {
            return None;
        }
        let all = self.open.values().filter(live).count();
        if all >= limits.total && !self.evict_idlest(now, None) {
            return None;
        }
        let id = self.next;
        self.next += 1;
        let evict = Arc::new(Notify::new());
        self.open.insert(
            id,
            Open {
                client,
                active: now,
                evict: evict.clone(),
                evicting: false,
            },
        );
        Some((id, evict))
    }

    /// Asks the connection idle longest (of `client`, if given) to close;
    /// false if every one is busy. One active within the last moment is
    /// serving a request, most likely: it is left alone.
    fn evict_idlest(&mut self, now: Instant, client: Option<IpAddr>) -> bool {
        const BUSY: Duration = Duration::from_millis(100);
        let victim = self
            .open
            .values_mut()
            .filter(|o| !o.evicting && client.is_none_or(|c| o.client == c))
            .filter(|o| now.saturating_duration_since(o.active) >= BUSY)
            .min_by_key(|o| o.active);
        match victim {
            Some(open) => {
                open.evicting = true;
                // Stored if the task is not waiting yet: it sees it at once.
                open.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn touch(&mut self, id: u64) {
        if let Some(open) = self.open.get_mut(&id) {
            open.active = Instant::now();
        }
    }

    fn remove(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

/// What the connections share.
struct Shared {
    snapshot: Mutex<Arc<Snapshot>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Snapshot>> {
        // Only an `Arc` is swapped under this lock: a panic cannot leave it
        // half-written, so poison is harmless.
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The response to `request` from `snapshot`.
fn respond(request: &Request<Incoming>, snapshot: &Snapshot) -> Response<Full<Bytes>> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = match request.uri().path() {
        "/" => page(PAGE, "text/html; charset=utf-8"),
        "/app.js" => page(SCRIPT, "text/javascript; charset=utf-8"),
        "/metrics" => from(&snapshot.metrics),
        "/v1/members" => from(&snapshot.members),
        "/v1/health" | "/v1/health/ready" => from(&snapshot.health),
        "/v1/health/live" => from(&snapshot.live),
        "/v1/stats" => from(&snapshot.stats),
        "/v1/events" => from(&snapshot.events),
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    if head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

fn from(body: &Body) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    build(status, body.content_type, body.bytes.clone())
}

fn page(text: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = build(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
    );
    // The page runs only its own script and talks only to this listener.
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
             connect-src 'self'",
        ),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    build(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

fn build(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
