//! Harness for the cross-crate scenarios in `tests/`.
//!
//! Every scenario is an `async fn(Runtime)` written once; [`on_every_runtime!`]
//! turns a list of them into one `#[test]` per scenario and runtime:
//!
//! * [`Runtime::Tokio`]: a multi-threaded tokio runtime per test, nodes from
//!   `swim_tokio::start`;
//! * [`Runtime::AsyncStd`]: `async_std::task::block_on`, nodes from
//!   `swim_async_std::start` (async-std's global executor);
//! * [`Runtime::Smol`]: `smol::block_on`, nodes from `swim_async_std::bind`
//!   with the driver spawned on smol's global executor.
//!
//! The helpers poll or wait with a deadline and fail with a message saying
//! what was waited for, so a hung scenario fails instead of hanging.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub use swim_node::swim_core::wire::{Keyring, SecretKey};
pub use swim_node::swim_core::{self, CommandError, Config, Event, Member, MemberState};
pub use swim_node::{
    Error, Events, JoinFailure, JoinFailureReason, Node, NodeConfig, NodeStats, StartError,
};

/// How long any one scenario may run before it is failed as hung.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

/// Deadline for the cluster to converge or an event to arrive. Gossip
/// usually takes well under a second (Local gossips every 100 ms), but with
/// Local's `retransmit_mult` of 2 a join announcement in a three-node cluster
/// is sent only twice and can miss a node (a probe may carry one of the two).
/// As in memberlist, the periodic push/pull repairs that; its first one is
/// due within its stagger plus one interval, at most 30 s with Local.
pub const CONVERGE: Duration = Duration::from_secs(35);

/// How often [`Runtime::wait_until`] polls.
pub const POLL: Duration = Duration::from_millis(20);

/// A boxed, sendable future (what [`Runtime::spawn`] hands back).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The async runtime a scenario runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// tokio, with `swim_tokio::start`.
    Tokio,
    /// async-std, with `swim_async_std::start`.
    AsyncStd,
    /// smol, with `swim_async_std::bind` and `smol::spawn(driver)`.
    Smol,
}

impl Runtime {
    /// Runs `fut` to completion on this runtime, from a plain thread.
    ///
    /// Tokio gets a fresh two-worker runtime, dropped (with every task
    /// still on it) when `fut` finishes.
    pub fn block_on<F: Future>(self, fut: F) -> F::Output {
        match self {
            Runtime::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build a tokio runtime")
                .block_on(fut),
            Runtime::AsyncStd => async_std::task::block_on(fut),
            Runtime::Smol => smol::block_on(fut),
        }
    }

    /// Runs a scenario on this runtime, failing it if it takes longer than
    /// [`SCENARIO_TIMEOUT`].
    pub fn run<F, Fut>(self, scenario: F)
    where
        F: FnOnce(Runtime) -> Fut,
        Fut: Future<Output = ()>,
    {
        self.block_on(async move {
            if self
                .timeout(SCENARIO_TIMEOUT, scenario(self))
                .await
                .is_none()
            {
                panic!("scenario on {self:?} still running after {SCENARIO_TIMEOUT:?}");
            }
        })
    }

    /// Starts a node through this runtime's adapter. Must be awaited inside
    /// [`block_on`](Self::block_on) (tokio needs its context).
    pub async fn start(self, config: NodeConfig) -> Result<(Node, Events), StartError> {
        match self {
            Runtime::Tokio => swim_tokio::start(config).await,
            Runtime::AsyncStd => swim_async_std::start(config).await,
            Runtime::Smol => {
                let (node, events, driver) = swim_async_std::bind(config).await?;
                smol::spawn(driver).detach();
                Ok((node, events))
            }
        }
    }

    /// Sleeps on this runtime's timer.
    pub async fn sleep(self, duration: Duration) {
        match self {
            Runtime::Tokio => tokio::time::sleep(duration).await,
            Runtime::AsyncStd => async_std::task::sleep(duration).await,
            Runtime::Smol => {
                smol::Timer::after(duration).await;
            }
        }
    }

    /// Runs `fut` for at most `duration`; `None` if the time ran out first.
    pub async fn timeout<F: Future>(self, duration: Duration, fut: F) -> Option<F::Output> {
        smol::future::or(async { Some(fut.await) }, async {
            self.sleep(duration).await;
            None
        })
        .await
    }

    /// Spawns a task on this runtime's executor; the returned future
    /// yields its output (and re-raises its panic).
    pub fn spawn<T, F>(self, fut: F) -> BoxFuture<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        match self {
            Runtime::Tokio => {
                let handle = tokio::spawn(fut);
                Box::pin(async move {
                    match handle.await {
                        Ok(out) => out,
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    }
                })
            }
            Runtime::AsyncStd => Box::pin(async_std::task::spawn(fut)),
            Runtime::Smol => Box::pin(smol::spawn(fut)),
        }
    }

    /// Polls `cond` every [`POLL`] until it holds; panics after `timeout`
    /// naming `what` was waited for. Returns how long it took.
    pub async fn wait_until(
        self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if cond() {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!("[{self:?}] timed out after {timeout:?} waiting for {what}");
            }
            self.sleep(POLL).await;
        }
    }

    /// Reads `events` until one satisfies `pred` (skipping the others) and
    /// returns it; panics after `timeout`, or if the events end, naming
    /// `what` was waited for.
    pub async fn next_event_matching(
        self,
        events: &Events,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Event {
        let wait = async {
            loop {
                match events.recv().await {
                    Some(event) if pred(&event) => return Some(event),
                    Some(_) => {}
                    None => return None,
                }
            }
        };
        match self.timeout(timeout, wait).await {
            Some(Some(event)) => event,
            Some(None) => panic!("[{self:?}] events ended while waiting for {what}"),
            None => panic!("[{self:?}] timed out after {timeout:?} waiting for {what}"),
        }
    }

    /// Starts a node per config, joins each to the first, and waits until
    /// every node lists all of them.
    pub async fn cluster(self, configs: Vec<NodeConfig>) -> Vec<(Node, Events)> {
        let mut nodes = Vec::new();
        for config in configs {
            let name = config.swim.name.clone();
            let started = self.start(config).await;
            nodes.push(started.unwrap_or_else(|e| panic!("[{self:?}] start {name}: {e}")));
        }
        let seed = nodes[0].0.local_node().addr;
        for (node, _) in &nodes[1..] {
            let joined = node.join(&[seed]).await;
            assert_eq!(joined, Ok(1), "[{self:?}] join {node:?} through {seed}");
        }
        let n = nodes.len();
        self.wait_until(
            CONVERGE,
            &format!("all {n} nodes to list {n} members"),
            || nodes.iter().all(|(node, _)| node.num_members() == n),
        )
        .await;
        nodes
    }
}

/// Defines one `#[test]` per scenario and runtime: modules `on_tokio`,
/// `on_async_std` and `on_smol`, each with a test named after every
/// scenario (an `async fn(Runtime)` in scope at the call site).
#[macro_export]
macro_rules! on_every_runtime {
    ($($scenario:ident),* $(,)?) => {
        $crate::on_runtime!(on_tokio, Tokio, $($scenario),*);
        $crate::on_runtime!(on_async_std, AsyncStd, $($scenario),*);
        $crate::on_runtime!(on_smol, Smol, $($scenario),*);
    };
}

/// Defines module `$module` with one `#[test]` per scenario, each run on
/// `Runtime::$runtime` (see [`on_every_runtime!`]).
#[macro_export]
macro_rules! on_runtime {
    ($module:ident, $runtime:ident, $($scenario:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $scenario() {
                    $crate::Runtime::$runtime.run(super::$scenario);
                }
            )*
        }
    };
}

/// `127.0.0.1:0`.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

/// A node named `name` on `127.0.0.1:0` with the Local preset
/// (`Config::local`: probe every 1 s, 200 ms probe timeout, gossip every
/// 100 ms, 1 s stream timeout, suspicion multiplier 3).
pub fn local_config(name: &str) -> NodeConfig {
    config_at(name, loopback())
}

/// A node named `name` bound to and advertising `bind`, Local preset.
pub fn config_at(name: &str, bind: SocketAddr) -> NodeConfig {
    NodeConfig::new(bind, Config::local(name, bind))
}

/// The longest a live node should take to declare a crashed peer failed,
/// derived from `config` for a cluster of `n` members:
///
/// * up to `2(n−1)` probe intervals before the crashed node's turn in the
///   shuffled round-robin comes (it may be first in one round and last in
///   the next);
/// * one more probe interval for the direct probe, its timeout and the
///   indirect probes;
/// * the suspicion timeout at its maximum (no confirmations):
///   `suspicion_max_timeout_mult × suspicion_mult × max(1, log10 n) ×
///   probe_interval`;
/// * plus `slack` for a loaded machine.
///
/// For the Local preset and `n = 3` this is 5 s + 18 s + slack; with the
/// other survivor confirming, the suspicion ends after its minimum (3 s),
/// so the usual case is a few seconds.
pub fn failure_detection_bound(config: &Config, n: usize, slack: Duration) -> Duration {
    let probe = config.probe_interval;
    let rounds = 2 * n.saturating_sub(1) as u32 + 1;
    let scale = (n.max(1) as f64).log10().max(1.0);
    let min = probe.mul_f64(f64::from(config.suspicion_mult) * scale);
    probe * rounds + min * config.suspicion_max_timeout_mult + slack
}

/// The process's resident memory in bytes (`VmRSS` of `/proc/self/status`),
/// or `None` where that file does not exist.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The names of the members `node` lists, sorted.
pub fn member_names(node: &Node) -> Vec<String> {
    let mut names: Vec<String> = node.members().iter().map(|m| m.name.to_string()).collect();
    names.sort();
    names
}

/// Whether `event` is `MemberLeft` or `MemberFailed` about `name`.
pub fn is_departure_of(event: &Event, name: &str) -> bool {
    matches!(event, Event::MemberLeft(m) | Event::MemberFailed(m) if &*m.name == name)
}

/// A small deterministic pseudo-random generator (xorshift64*), so the
/// garbage a test sends is reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// Random bytes, fewer than `below` of them (`below > 0`).
    pub fn some_bytes(&mut self, below: usize) -> Vec<u8> {
        let len = self.below(below);
        self.bytes(len)
    }
}
