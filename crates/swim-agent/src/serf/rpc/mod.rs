//! Go Serf's RPC on `-rpc-addr` (`agent/ipc.go`): msgpack over TCP; a
//! handshake, an optional auth token, then requests `{Command, Seq}` and a
//! body, answered by `{Seq, Error}` and a body; `stream`, `monitor` and
//! `query` keep answering under their `Seq`.
//!
//! Bounded as the HTTP listener is: at most [`Limits::total`] connections
//! and [`Limits::per_client`] from one address (past either, the new one
//! is closed at once, counted); each msgpack value of a request at most
//! [`MAX_REQUEST`] bytes and [`REQUEST_TIMEOUT`] from its first byte to
//! its last; each write to a client at most [`WRITE_TIMEOUT`], and at most
//! [`OUT_QUEUE`] answers and records queued for it. A client past any of
//! these is closed and counted; the agent never waits on it.

mod conn;
pub mod proto;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::serf::agent::Agent;

/// Largest msgpack value (request header or body) read.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How long a value may take to arrive once its first byte did.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to a client may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers and stream records queued per client.
pub const OUT_QUEUE: usize = 1024;

/// How many connections the listener serves.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// In all.
    pub total: usize,
    /// From one IP address.
    pub per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total: 256,
            per_client: 32,
        }
    }
}

/// Open connections by client address.
#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Gives a connection's slot back when it ends.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Serves the RPC on `listener` until the process ends.
pub async fn serve(listener: TcpListener, agent: Arc<Agent>, auth: Option<String>, limits: Limits) {
    let open = Arc::new(Mutex::new(Open::default()));
    let auth: Option<Arc<str>> = auth.map(Into::into);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(target: "agent.ipc", "Failed to accept client: {e}");
                // Out of descriptors, most likely: let some close.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = {
            let mut o = open.lock().unwrap_or_else(|e| e.into_inner());
            let mine = o.by_ip.get(&peer.ip()).copied().unwrap_or(0);
            if o.total >= limits.total || mine >= limits.per_client {
                agent.counters.rpc_refused.fetch_add(1, Ordering::Relaxed);
                warn!(target: "agent.ipc", "Refused client {peer}: connection limit");
                continue;
            }
            o.total += 1;
            *o.by_ip.entry(peer.ip()).or_default() += 1;
            Slot {
                open: open.clone(),
                ip: peer.ip(),
            }
        };
        agent.counters.rpc_accepted.fetch_add(1, Ordering::Relaxed);
        info!(target: "agent.ipc", "Accepted client: {peer}");
        let _ = stream.set_nodelay(true);
        let agent = agent.clone();
        let auth = auth.clone();
        tokio::spawn(async move {
            conn::serve(agent, auth, stream).await;
            drop(slot);
        });
    }
}
