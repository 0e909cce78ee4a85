//! The handle applications hold: cheap to clone, usable from many tasks.

use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_channel::oneshot;
use swim_core::wire::SecretKey;
use swim_core::{BroadcastId, CommandError, ExchangeError, Member, Swim};

use crate::config::JoinPauses;
use crate::driver::{BoxDelegate, Clock};
use crate::seed::{Seed, SeedError};

/// Why a node operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The core refused the command (a payload over a limit says which,
    /// and the limit).
    Command(CommandError),
    /// A seed given to [`Node::join`] is not a seed (nothing was sent).
    Seed(SeedError),
    /// The join failed: no seed answered, or those that did refused us
    /// (our name taken, an alive filter, versions); each failure is listed.
    Join(Vec<JoinFailure>),
    /// The socket refused a datagram ([`Node::send_best_effort`], Go's
    /// `SendBestEffort` write error).
    Datagram {
        /// Where it was going.
        to: SocketAddr,
        /// The operating system's error kind.
        kind: io::ErrorKind,
        /// The error as the operating system said it.
        message: String,
    },
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
            Error::Seed(e) => write!(f, "bad join input: {e}"),
            Error::Datagram { to, message, .. } => {
                write!(f, "sending a datagram to {to} failed: {message}")
            }
            Error::Join(failures) => {
                let refused = failures.iter().any(JoinFailure::is_refusal);
                f.write_str(if refused {
                    "the cluster refused the join"
                } else {
                    "no seed answered"
                })?;
                for (i, failure) in failures.iter().enumerate() {
                    write!(f, "{} {failure}", if i == 0 { ":" } else { ";" })?;
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

/// One seed of a join that did not answer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinFailure {
    /// The seed as given.
    pub seed: String,
    /// The address tried, when the seed got as far as one.
    pub addr: Option<SocketAddr>,
    /// What went wrong.
    pub reason: JoinFailureReason,
}

impl JoinFailure {
    /// Whether the seed answered and refused us
    /// ([`ExchangeError::is_refusal`]): trying again cannot help.
    pub fn is_refusal(&self) -> bool {
        matches!(&self.reason, JoinFailureReason::Exchange(e) if e.is_refusal())
    }
}

/// Why a seed of a join failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinFailureReason {
    /// The name did not resolve.
    Resolve(ResolveError),
    /// The push/pull with an address it resolved to failed, or the seed
    /// refused us ([`ExchangeError::NameTaken`],
    /// [`ExchangeError::NotAccepted`], [`ExchangeError::Refused`]).
    Exchange(ExchangeError),
}

/// Why a seed's name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    /// The error's kind (`NotFound`: the name resolves to no address).
    pub kind: io::ErrorKind,
    /// The resolver's message.
    pub message: String,
}

impl From<io::Error> for ResolveError {
    fn from(e: io::Error) -> ResolveError {
        ResolveError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for JoinFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.addr, &self.reason) {
            (_, JoinFailureReason::Resolve(e)) => write!(f, "{}: {e}", self.seed),
            (Some(addr), JoinFailureReason::Exchange(e)) if self.seed != addr.to_string() => {
                write!(f, "{} ({addr}): {e}", self.seed)
            }
            (_, JoinFailureReason::Exchange(e)) => write!(f, "{}: {e}", self.seed),
        }
    }
}

/// Anything a join takes as a seed: a [`SocketAddr`], a [`Seed`], or text
/// parsed as one (`"10.0.0.2"`, `"seed.local:7946"`, `"[::1]:7946"`…).
pub trait IntoSeed {
    /// The seed, and the text that names it in errors.
    fn into_seed(self) -> (String, Result<Seed, SeedError>);
}

impl IntoSeed for Seed {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        (self.to_string(), Ok(self))
    }
}

impl IntoSeed for &Seed {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        self.clone().into_seed()
    }
}

impl IntoSeed for SocketAddr {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        Seed::Addr(self).into_seed()
    }
}

impl IntoSeed for &SocketAddr {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        Seed::Addr(*self).into_seed()
    }
}

impl IntoSeed for &str {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        (self.to_string(), self.parse())
    }
}

impl IntoSeed for &&str {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        (*self).into_seed()
    }
}

impl IntoSeed for String {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        let seed = self.parse();
        (self, seed)
    }
}

impl IntoSeed for &String {
    fn into_seed(self) -> (String, Result<Seed, SeedError>) {
        self.as_str().into_seed()
    }
}

/// `delay` drawn between half and one and a half of itself.
fn jittered(delay: Duration) -> Duration {
    // RandomState's keys differ from call to call: random enough to spread
    // retries, without a dependency.
    let r = std::collections::hash_map::RandomState::new().hash_one(0u8);
    delay.mul_f64(0.5 + (r >> 11) as f64 / (1u64 << 53) as f64)
}

/// Sleeps on the node's runtime.
pub(crate) type Sleep =
    Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Resolves a seed to the addresses to try, off the driver.
pub(crate) type Resolve = Arc<
    dyn Fn(Seed) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync,
>;

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        Error::Command(e)
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What the handle asks of the driver.
pub(crate) enum Command {
    Join(Vec<(String, SocketAddr)>, Reply<(usize, Vec<JoinFailure>)>),
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
    BroadcastsQueued(Reply<()>),
    Shutdown(Reply<()>),
}

/// A record of the member table, whatever its state, and since when the
/// member has been in that state as this node saw it
/// ([`Node::member_table`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberStatus {
    /// The record as it reads now.
    pub member: Member,
    /// When this node recorded the member entering `member.state`, on the
    /// runtime's clock. A new incarnation or new metadata in the same state
    /// does not move it; a member reaped and learned again starts afresh.
    pub since: std::time::Instant,
}

/// The core, shared by the driver and the handles (Go's `nodeLock`).
///
/// The handles' synchronous reads ([`Node::members`], [`Node::member_table`],
/// [`Node::local_node`]) read the core's own member table under this lock
/// ([`Node::num_members`] and [`Node::health_score`] read [`Counts`]), so no copy of the table
/// is kept: a copy cost about 125 B per member per node (245 → 117–119 B of
/// live heap per member, `tests/tests/memory.rs`; BENCHMARKS.md, "The cost
/// curve", memory). The driver takes the lock for each input it hands the
/// core and for each output it takes, never across an await; a read holds
/// it while it copies records out, and sorts after. The core calls the
/// delegate with the lock held, so a read from a delegate method panics
/// ([`Shared::core`]) rather than wait on itself.
pub(crate) type Core = Mutex<Swim<BoxDelegate>>;

pub(crate) struct Shared {
    pub(crate) commands: async_channel::Sender<Command>,
    pub(crate) core: Arc<Core>,
    /// The member count and health score, written by the driver after each
    /// input: read without the lock, as pollers read them often.
    pub(crate) counts: Arc<Counts>,
    /// The driver's clock, to read the core's times on the runtime's.
    pub(crate) clock: Clock,
    pub(crate) bound: SocketAddr,
    pub(crate) resolve: Resolve,
    pub(crate) sleep: Sleep,
    /// The pauses between join attempts
    /// ([`NodeConfig::join_retries`](crate::NodeConfig::join_retries) and
    /// the delays after it).
    pub(crate) join_pauses: JoinPauses,
}

/// What the driver publishes for lock-free reads ([`Shared::counts`]).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    members: std::sync::atomic::AtomicUsize,
    health: std::sync::atomic::AtomicU32,
}

impl Counts {
    /// Copies the core's figures.
    pub(crate) fn update(&self, swim: &Swim<BoxDelegate>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.members.store(swim.num_members(), Relaxed);
        self.health.store(swim.health_score(), Relaxed);
    }

    /// The member count last copied.
    pub(crate) fn members(&self) -> usize {
        self.members.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The health score last copied.
    pub(crate) fn health(&self) -> u32 {
        self.health.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Shared {
    /// The core locked for a read of the handle's.
    ///
    /// # Panics
    ///
    /// On the driver's own thread while it holds the core (a [`Delegate`]
    /// method calling a synchronous read): waiting would never end.
    ///
    /// [`Delegate`]: swim_core::Delegate
    pub(crate) fn core(&self) -> MutexGuard<'_, Swim<BoxDelegate>> {
        read(&self.core)
    }
}

/// Locks `core` for a read ([`Shared::core`]).
fn read(core: &Core) -> MutexGuard<'_, Swim<BoxDelegate>> {
    assert!(
        HELD.get() != core as *const Core as usize,
        "a Node read (members, member_table, local_node) \
         called from inside the node's Delegate, which runs with the node's core locked"
    );
    lock(core)
}

thread_local! {
    /// The core the driver on this thread holds locked (its address), 0 if
    /// none: a read of that core from this thread would wait on itself.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The core locked by the driver ([`hold`]).
pub(crate) struct Held<'a>(MutexGuard<'a, Swim<BoxDelegate>>);

impl std::ops::Deref for Held<'_> {
    type Target = Swim<BoxDelegate>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        HELD.set(0);
    }
}

/// Locks the core for the driver, marking this thread as holding it.
pub(crate) fn hold(core: &Core) -> Held<'_> {
    let guard = lock(core);
    HELD.set(core as *const Core as usize);
    Held(guard)
}

/// Locks the core. A panic with it held (the delegate's, or the core's)
/// ends the driver; the handles may still read what the table holds.
fn lock(core: &Core) -> MutexGuard<'_, Swim<BoxDelegate>> {
    core.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Joins the cluster through `seeds` — addresses, host names, DNS SRV
    /// names, as [`Seed`] reads them — and returns how many addresses
    /// answered and took us in. Every address a name resolves to is tried (Go's `Join`);
    /// names are resolved off the node's task. When none answered, it tries
    /// again after a pause, names resolved anew
    /// ([`NodeConfig::join_retries`](crate::NodeConfig::join_retries)
    /// times, or until one answers); an error lists every seed that failed
    /// in the last attempt, and why.
    ///
    /// What fails, and how:
    ///
    /// * text that is no seed: [`Error::Seed`], before anything is sent;
    /// * a name that does not resolve: [`JoinFailureReason::Resolve`], with
    ///   the error's kind;
    /// * a seed that does not answer: [`ExchangeError::Io`] with the
    ///   operating system's reason (refused, unreachable, timed out), or
    ///   [`ExchangeError::Timeout`];
    /// * a seed that answers and refuses us, which ends the join without
    ///   retrying: a live member holds our name
    ///   ([`ExchangeError::NameTaken`]), or the seed did not take us in —
    ///   its alive filter or merge veto, or our protocol versions
    ///   ([`ExchangeError::NotAccepted`], [`ExchangeError::Refused`]). A
    ///   seed answers before merging what we sent, so each seed that does
    ///   not list us yet gets a second, ordinary push/pull whose reply shows
    ///   whether it took us in (Go's seeds answer it as any other).
    ///
    /// ```no_run
    /// # async fn run(node: swim_node::Node) -> Result<(), swim_node::Error> {
    /// let seed: std::net::SocketAddr = "10.0.0.2:7946".parse().unwrap();
    /// node.join(&[seed]).await?;
    /// node.join(["seeds.cluster.local", "[fd00::2]:7946"]).await?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "Join")]
    pub async fn join<I>(&self, seeds: I) -> Result<usize, Error>
    where
        I: IntoIterator,
        I::Item: IntoSeed,
    {
        // Text that is no seed fails the join before anything is sent;
        // names are resolved again on every attempt, as a seed that is not
        // up yet may not be in the DNS.
        let mut parsed = Vec::new();
        for (text, seed) in seeds.into_iter().map(IntoSeed::into_seed) {
            parsed.push((text, seed.map_err(Error::Seed)?));
        }
        if parsed.is_empty() {
            return Err(Error::Join(Vec::new()));
        }
        let seeds = parsed;
        let mut pauses = self.shared.join_pauses.clone();
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            // In the seeds' order: those that are no seed, or do not
            // resolve, then the addresses that did not answer.
            let mut failed = Vec::new();
            let mut addrs = Vec::new();
            for (text, seed) in &seeds {
                match (self.shared.resolve)(seed.clone()).await {
                    Ok(found) => addrs.extend(found.into_iter().map(|a| (text.clone(), a))),
                    Err(e) => failed.push(JoinFailure {
                        seed: text.clone(),
                        addr: None,
                        reason: JoinFailureReason::Resolve(e.into()),
                    }),
                }
            }
            if !addrs.is_empty() {
                let (joined, unanswered) = self.ask(|r| Command::Join(addrs, r)).await?;
                if joined > 0 {
                    return Ok(joined);
                }
                failed.extend(unanswered);
            }
            // A seed that refused us refuses again; one that never answered
            // may yet.
            if failed.iter().any(JoinFailure::is_refusal) {
                return Err(Error::Join(failed));
            }
            let Some(pause) = pauses.next() else {
                return Err(Error::Join(failed));
            };
            tracing::info!(attempt, ?pause, "no seed answered the join; trying again");
            (self.shared.sleep)(jittered(pause)).await;
        }
    }

    /// Leaves gracefully: announces the departure and waits until it has
    /// been gossiped enough or `timeout` passes. The node keeps running
    /// (answering, not probing) until [`shutdown`](Node::shutdown).
    #[doc(alias = "Leave")]
    pub async fn leave(&self, timeout: Duration) -> Result<(), Error> {
        self.ask(|r| Command::Leave(timeout, r)).await
    }

    /// Stops the node: closes its sockets and ends its tasks. Peers see a
    /// failure unless [`leave`](Node::leave) came first. Idempotent.
    #[doc(alias = "Shutdown")]
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }

    /// Sets this node's metadata and announces it (Go's `UpdateNode`).
    ///
    /// Unlike Go's `UpdateNode(timeout)`, which waits up to `timeout` for
    /// the announcement to be sent, this returns once the metadata is set
    /// ([`local_node`](Node::local_node) shows it) and its announcement is
    /// queued for gossip; peers learn it within a few gossip rounds, or at
    /// the next push/pull. To know a peer has it, wait for its
    /// [`Event::MemberUpdated`](swim_core::Event::MemberUpdated).
    #[doc(alias = "UpdateNode")]
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
    /// its retransmit limit of times (Go's `QueueBroadcast`). It must fit
    /// one packet beside its framing
    /// ([`CommandError::PayloadTooLarge`](swim_core::CommandError::PayloadTooLarge)
    /// says how much does).
    ///
    /// [`Event::BroadcastFinished`](swim_core::Event::BroadcastFinished)
    /// with the id returned says when it left the queue, and why;
    /// [`Sent`](swim_core::BroadcastOutcome::Sent) means this node sent it
    /// its `retransmit_mult × ceil(log10(n + 1))` times to random members —
    /// not that anyone received it. How far it gets: as in Go, receivers do
    /// not pass it on unless
    /// [`Config::relay_user_broadcasts`](swim_core::Config::relay_user_broadcasts)
    /// is set, so it reaches only some members. In the simulator (20 runs
    /// each, a formed cluster, no loss, 10 s to spread), without relaying
    /// one broadcast reached on average 82% of the other 4 members of a
    /// LAN cluster of 5, 36% of 19 in a cluster of 20 and 12% of 99 in a
    /// cluster of 100 (Local preset: 50%, 21%, 6%); with relaying, 99%,
    /// 100% and 100% (Local: 88%, 99%, 99.8%), a median run reaching
    /// everyone within 0.6 s.
    /// Relaying is off by default because Go peers deliver every relayed
    /// copy again and every user datagram becomes a broadcast; turn it on
    /// in a cluster of these nodes, or send what must arrive everywhere
    /// with [`send_reliable`](Node::send_reliable) to each member or in the
    /// push/pull state ([`set_local_state`](Node::set_local_state)).
    pub async fn broadcast(&self, payload: &[u8]) -> Result<BroadcastId, Error> {
        let payload = payload.to_vec();
        self.ask(|r| Command::Broadcast(None, payload, r)).await
    }

    /// [`broadcast`](Node::broadcast) under a name (Go's `NamedBroadcast`):
    /// it replaces a queued broadcast of the same `key`, so only the latest
    /// value of a key is gossiped. It spreads as far as a broadcast does:
    /// without relaying, to some members only (see
    /// [`broadcast`](Node::broadcast)).
    pub async fn broadcast_named(&self, key: &str, payload: &[u8]) -> Result<BroadcastId, Error> {
        let (key, payload) = (key.to_string(), payload.to_vec());
        self.ask(|r| Command::Broadcast(Some(key), payload, r))
            .await
    }

    /// Tells the node that its [`Delegate`](swim_core::Delegate) has broadcasts queued from
    /// outside the node's task: gossip rounds then run from the next gossip tick. Without
    /// this, the driver asks [`has_broadcasts`](swim_core::Delegate::has_broadcasts) only
    /// after the next input it handles (a packet, a timer, a command), which can be a probe
    /// interval away.
    pub async fn broadcasts_queued(&self) -> Result<(), Error> {
        self.ask(Command::BroadcastsQueued).await
    }

    /// Sends a user message to `node` in one UDP packet, without retry.
    /// Returns the socket's error if it refused the datagram (as Go's
    /// `SendBestEffort` does; a datagram larger than the socket allows, for
    /// one), and refuses a payload over a receiver's
    /// [`NodeConfig::event_bytes`](crate::NodeConfig::event_bytes) (assumed
    /// configured like this node's). `Ok` says it left, not that it arrived.
    #[doc(alias = "SendBestEffort")]
    #[doc(alias = "SendTo")]
    #[doc(alias = "SendToUDP")]
    pub async fn send_best_effort(&self, node: &str, payload: &[u8]) -> Result<(), Error> {
        let (node, payload) = (node.to_string(), payload.to_vec());
        self.ask(|r| Command::SendBestEffort(node, payload, r))
            .await
    }

    /// Sends a user message to `node` over TCP; returns once it is written.
    ///
    /// A payload the receiver could not take is refused before anything is
    /// sent, with the limit in the error
    /// ([`CommandError::PayloadTooLarge`](swim_core::CommandError::PayloadTooLarge)):
    /// over [`Limits::max_user_message`](swim_core::wire::Limits::max_user_message)
    /// (20 MiB by default), which a receiver refuses, or over its
    /// [`NodeConfig::event_bytes`](crate::NodeConfig::event_bytes) (4 MiB by
    /// default), which its event queue could never hold. Receivers are
    /// assumed configured like this node. The receiver names the sender in
    /// [`Event::UserMessage`](swim_core::Event::UserMessage) only if one
    /// member advertises this node's IP (the stream's port is ephemeral).
    #[doc(alias = "SendReliable")]
    #[doc(alias = "SendToTCP")]
    pub async fn send_reliable(&self, node: &str, payload: &[u8]) -> Result<(), Error> {
        let (node, payload) = (node.to_string(), payload.to_vec());
        self.ask(|r| Command::SendReliable(node, payload, r)).await
    }

    /// Pings `node` and returns the round-trip time.
    #[doc(alias = "Ping")]
    pub async fn ping(&self, node: &str) -> Result<Duration, Error> {
        let node = node.to_string();
        self.ask(|r| Command::Ping(node, r)).await
    }

    /// Installs an encryption key.
    #[doc(alias = "AddKey")]
    pub async fn add_key(&self, key: SecretKey) -> Result<(), Error> {
        self.ask(|r| Command::AddKey(key, r)).await
    }

    /// Makes an installed key the one used to encrypt.
    #[doc(alias = "UseKey")]
    pub async fn use_key(&self, key: SecretKey) -> Result<(), Error> {
        self.ask(|r| Command::UseKey(key, r)).await
    }

    /// Removes an installed key (not the primary).
    #[doc(alias = "RemoveKey")]
    pub async fn remove_key(&self, key: SecretKey) -> Result<(), Error> {
        self.ask(|r| Command::RemoveKey(key, r)).await
    }

    /// The core's counters.
    pub async fn stats(&self) -> Result<crate::NodeStats, Error> {
        self.ask(Command::Stats).await
    }

    /// Members that are not dead or left, this node included, by name;
    /// `state` tells alive from suspect.
    ///
    /// It locks the node's core briefly; it panics when called from the
    /// node's delegate ([`NodeBuilder::delegate`](crate::NodeBuilder::delegate)).
    #[doc(alias = "Members")]
    pub fn members(&self) -> Vec<Member> {
        // Sorted once the core is unlocked: the driver waits on the lock.
        let mut members = self.shared.core().members();
        members.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        members
    }

    /// Every record of this node's member table by name — alive, suspect,
    /// and dead or left members until they are reaped — each with when it
    /// entered its state, for views of the cluster such as an operator's
    /// page. [`members`](Node::members) is the list that counts for
    /// membership (Go's `Members`); this one also shows who is gone.
    ///
    /// It reads the core's table, so a suspicion, which raises no
    /// [`Event`](swim_core::Event), shows here too.
    ///
    /// It locks the node's core briefly; it panics when called from the
    /// node's delegate ([`NodeBuilder::delegate`](crate::NodeBuilder::delegate)).
    pub fn member_table(&self) -> Vec<MemberStatus> {
        let table = self.shared.core().member_table();
        let clock = self.shared.clock;
        let mut table: Vec<MemberStatus> = table
            .into_iter()
            .map(|(member, since)| MemberStatus {
                member,
                since: clock.to_std(since),
            })
            .collect();
        table.sort_unstable_by(|a, b| a.member.name.cmp(&b.member.name));
        table
    }

    /// How many members [`members`](Node::members) lists.
    ///
    /// It reads a figure the driver updates after each input, without a
    /// lock, so it may be called often and from anywhere.
    #[doc(alias = "NumMembers")]
    pub fn num_members(&self) -> usize {
        self.shared.counts.members()
    }

    /// This node as the cluster sees it.
    ///
    /// It locks the node's core briefly; it panics when called from the
    /// node's delegate ([`NodeBuilder::delegate`](crate::NodeBuilder::delegate)).
    #[doc(alias = "LocalNode")]
    pub fn local_node(&self) -> Member {
        self.shared.core().local_node()
    }

    /// The address the sockets are bound to (with the real port when port
    /// 0 was asked for).
    pub fn bound_addr(&self) -> SocketAddr {
        self.shared.bound
    }

    /// Lifeguard's local health score: 0 is healthy, higher means this node
    /// is missing acks it should get and probes more patiently.
    ///
    /// It reads a figure the driver updates after each input, without a
    /// lock, so it may be called often and from anywhere.
    #[doc(alias = "GetHealthScore")]
    pub fn health_score(&self) -> u32 {
        self.shared.counts.health()
    }

    /// Whether the node is still running.
    pub fn is_running(&self) -> bool {
        !self.shared.commands.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_core::{Config, DefaultDelegate, Instant};

    fn new_core() -> Arc<Core> {
        let config = Config::local("a", "127.0.0.1:7946".parse().unwrap());
        let swim = Swim::builder(config, 1)
            .delegate(Box::new(DefaultDelegate) as BoxDelegate)
            .build(Instant::ZERO)
            .unwrap();
        Arc::new(Mutex::new(swim))
    }

    /// A read on the thread holding the core fails at once instead of
    /// waiting forever; after the hold, and on other threads, it reads.
    #[test]
    fn a_read_from_inside_the_held_core_panics_instead_of_waiting() {
        let core = new_core();
        let other = new_core();
        let read = |c: &Arc<Core>| {
            let c = c.clone();
            std::panic::catch_unwind(move || read(&c).num_members())
        };
        let held = hold(&core);
        assert!(read(&core).is_err());
        // Another node's core on the same thread is not this one.
        assert_eq!(read(&other).ok(), Some(1));
        drop(held);
        assert_eq!(read(&core).ok(), Some(1));
    }
}
