//! The handle applications hold: cheap to clone, usable from many tasks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::Stream;
use swim_core::wire::SecretKey;
use swim_core::{BroadcastId, CommandError, Event, ExchangeError, Member};

/// Why a node operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The core refused the command.
    Command(CommandError),
    /// No seed answered a join; each failure is listed.
    Join(Vec<(SocketAddr, ExchangeError)>),
    /// A reliable message could not be delivered.
    Send(ExchangeError),
    /// The member did not answer a ping in time.
    PingFailed,
    /// The leave was not gossiped enough times before the timeout.
    LeaveTimedOut,
    /// The node is shut down.
    Shutdown,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Command(e) => e.fmt(f),
            Error::Join(failures) => {
                f.write_str("no seed answered")?;
                for (i, (addr, why)) in failures.iter().enumerate() {
                    write!(f, "{} {addr}: {why}", if i == 0 { ":" } else { ";" })?;
                }
                Ok(())
            }
            Error::Send(e) => write!(f, "reliable send failed: {e}"),
            Error::PingFailed => f.write_str("no answer to the ping"),
            Error::LeaveTimedOut => f.write_str("timed out waiting for the leave to spread"),
            Error::Shutdown => f.write_str("the node is shut down"),
        }
    }
}

impl std::error::Error for Error {}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        Error::Command(e)
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What the handle asks of the driver.
pub(crate) enum Command {
    Join(Vec<SocketAddr>, Reply<usize>),
    Leave(Duration, Reply<()>),
    UpdateMeta(Vec<u8>, Reply<()>),
    SetLocalState(Vec<u8>, Reply<()>),
    SetAckPayload(Vec<u8>, Reply<()>),
    Broadcast(Option<String>, Vec<u8>, Reply<BroadcastId>),
    SendBestEffort(String, Vec<u8>, Reply<()>),
    SendReliable(String, Vec<u8>, Reply<()>),
    Ping(String, Reply<Duration>),
    AddKey(SecretKey, Reply<()>),
    UseKey(SecretKey, Reply<()>),
    RemoveKey(SecretKey, Reply<()>),
    Stats(Reply<crate::NodeStats>),
    Shutdown(Reply<()>),
}

/// What the driver keeps current for synchronous reads.
#[derive(Debug)]
pub(crate) struct View {
    /// Members not dead or left, the local node included (Go's `Members`).
    pub(crate) members: BTreeMap<Arc<str>, Member>,
    pub(crate) local: Member,
    pub(crate) health: u32,
}

pub(crate) struct Shared {
    pub(crate) commands: async_channel::Sender<Command>,
    pub(crate) view: Arc<Mutex<View>>,
    pub(crate) bound: SocketAddr,
}

impl Shared {
    pub(crate) fn view(&self) -> MutexGuard<'_, View> {
        lock(&self.view)
    }
}

pub(crate) fn lock(view: &Mutex<View>) -> MutexGuard<'_, View> {
    // Every update of the view is a single insert or assignment, so a panic
    // elsewhere cannot leave it half-written: poison is harmless.
    view.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running cluster member.
///
/// Cloning is cheap; every clone drives the same node. The node shuts down
/// when [`shutdown`](Node::shutdown) is called or the last handle is dropped
/// (without leaving: call [`leave`](Node::leave) first to depart gracefully).
#[derive(Clone)]
pub struct Node {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.local_node().name)
            .field("bound", &self.shared.bound)
            .finish()
    }
}

impl Node {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.unwrap_or(Err(Error::Shutdown))
    }

    /// Joins the cluster through `seeds` (push/pull with each) and returns
    /// how many answered; an error lists every failure when none did.
    pub async fn join(&self, seeds: &[SocketAddr]) -> Result<usize, Error> {
        let seeds = seeds.to_vec();
        self.ask(|r| Command::Join(seeds, r)).await
    }

    /// Leaves gracefully: announces the departure and waits until it has
    /// been gossiped enough or `timeout` passes. The node keeps running
    /// (answering, not probing) until [`shutdown`](Node::shutdown).
    pub async fn leave(&self, timeout: Duration) -> Result<(), Error> {
        self.ask(|r| Command::Leave(timeout, r)).await
    }

    /// Stops the node: closes its sockets and ends its tasks. Peers see a
    /// failure unless [`leave`](Node::leave) came first. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }

    /// Sets this node's metadata and announces it.
    pub async fn update_meta(&self, meta: &[u8]) -> Result<(), Error> {
        let meta = meta.to_vec();
        self.ask(|r| Command::UpdateMeta(meta, r)).await
    }

    /// Sets the application state sent with every push/pull.
    pub async fn set_local_state(&self, state: &[u8]) -> Result<(), Error> {
        let state = state.to_vec();
        self.ask(|r| Command::SetLocalState(state, r)).await
    }

    /// Sets the payload of this node's acks to pings.
    pub async fn set_ack_payload(&self, payload: &[u8]) -> Result<(), Error> {
        let payload = payload.to_vec();
        self.ask(|r| Command::SetAckPayload(payload, r)).await
    }

    /// Queues a user broadcast, gossiped with membership updates and sent
    /// its retransmit limit of times; [`Event::BroadcastFinished`] with the
    /// id returned says when it left the queue, and why.
    pub async fn broadcast(&self, payload: &[u8]) -> Result<BroadcastId, Error> {
        let payload = payload.to_vec();
        self.ask(|r| Command::Broadcast(None, payload, r)).await
    }

    /// [`broadcast`](Node::broadcast) under a name (Go's `NamedBroadcast`):
    /// it replaces a queued broadcast of the same `key`, so only the latest
    /// value of a key is gossiped.
    pub async fn broadcast_named(&self, key: &str, payload: &[u8]) -> Result<BroadcastId, Error> {
        let (key, payload) = (key.to_string(), payload.to_vec());
        self.ask(|r| Command::Broadcast(Some(key), payload, r))
            .await
    }

    /// Sends a user message to `node` in one UDP packet, without retry.
    pub async fn send_best_effort(&self, node: &str, payload: &[u8]) -> Result<(), Error> {
        let (node, payload) = (node.to_string(), payload.to_vec());
        self.ask(|r| Command::SendBestEffort(node, payload, r))
            .await
    }

    /// Sends a user message to `node` over TCP; returns once it is written.
    pub async fn send_reliable(&self, node: &str, payload: &[u8]) -> Result<(), Error> {
        let (node, payload) = (node.to_string(), payload.to_vec());
        self.ask(|r| Command::SendReliable(node, payload, r)).await
    }

    /// Pings `node` and returns the round-trip time.
    pub async fn ping(&self, node: &str) -> Result<Duration, Error> {
        let node = node.to_string();
        self.ask(|r| Command::Ping(node, r)).await
    }

    /// Installs an encryption key.
    pub async fn add_key(&self, key: SecretKey) -> Result<(), Error> {
        self.ask(|r| Command::AddKey(key, r)).await
    }

    /// Makes an installed key the one used to encrypt.
    pub async fn use_key(&self, key: SecretKey) -> Result<(), Error> {
        self.ask(|r| Command::UseKey(key, r)).await
    }

    /// Removes an installed key (not the primary).
    pub async fn remove_key(&self, key: SecretKey) -> Result<(), Error> {
        self.ask(|r| Command::RemoveKey(key, r)).await
    }

    /// The core's counters.
    pub async fn stats(&self) -> Result<crate::NodeStats, Error> {
        self.ask(Command::Stats).await
    }

    /// Members that are not dead or left, this node included, by name;
    /// `state` tells alive from suspect.
    pub fn members(&self) -> Vec<Member> {
        self.shared.view().members.values().cloned().collect()
    }

    /// How many members [`members`](Node::members) lists.
    pub fn num_members(&self) -> usize {
        self.shared.view().members.len()
    }

    /// This node as the cluster sees it.
    pub fn local_node(&self) -> Member {
        self.shared.view().local.clone()
    }

    /// The address the sockets are bound to (with the real port when port
    /// 0 was asked for).
    pub fn bound_addr(&self) -> SocketAddr {
        self.shared.bound
    }

    /// Lifeguard's local health score: 0 is healthy, higher means this node
    /// is missing acks it should get and probes more patiently.
    pub fn health_score(&self) -> u32 {
        self.shared.view().health
    }

    /// Whether the node is still running.
    pub fn is_running(&self) -> bool {
        !self.shared.commands.is_closed()
    }
}

/// The events of one node, in order: a [`Stream`], or read without async
/// through [`try_recv`](Events::try_recv) and [`recv_blocking`](Events::recv_blocking).
///
/// Events are buffered up to [`NodeConfig::event_capacity`](crate::NodeConfig::event_capacity);
/// beyond it new ones are dropped and counted, so a reader that stalls cannot
/// grow memory without bound. Dropping `Events` stops their delivery.
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: Pin<Box<async_channel::Receiver<Event>>>,
}

impl Events {
    /// The next event; `None` once the node has shut down and every event
    /// was read.
    pub async fn recv(&self) -> Option<Event> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is ready.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Blocks the thread until the next event (for code outside async).
    /// Do not call it from inside an async task.
    pub fn recv_blocking(&self) -> Option<Event> {
        self.rx.recv_blocking().ok()
    }
}

impl Stream for Events {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.as_mut().poll_next(cx)
    }
}
