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
//! Each runtime carries the [`Net`] its nodes start on: UDP and TCP (the
//! default), TCP only, or TCP with mutual TLS; [`on_every_runtime_over!`]
//! runs scenarios over one of the latter.
//!
//! The helpers poll or wait with a deadline and fail with a message saying
//! what was waited for, so a hung scenario fails instead of hanging.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub use swim_node::swim_core::wire::{Keyring, SecretKey};
pub use swim_node::swim_core::{self, CommandError, Config, Delegate, Event, Member, MemberState};
pub use swim_node::{
    Error, Events, JoinFailure, JoinFailureReason, Node, NodeConfig, NodeStats, StartError,
};
pub use swim_node::{MemoryNetwork, MemoryTransport, TcpConfig, TcpStats, TlsConfig};

pub mod pki;

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

/// The async runtime a scenario runs under, and the network its nodes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// tokio, with `swim_tokio::start`.
    Tokio(Net),
    /// async-std, with `swim_async_std::start`.
    AsyncStd(Net),
    /// smol, with `swim_async_std::bind` and `smol::spawn(driver)`.
    Smol(Net),
}

/// The transport the nodes of a scenario start on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// UDP and TCP on one port (the adapters' default).
    UdpTcp,
    /// Everything on plaintext TCP (`Tcp` with no TLS).
    Tcp,
    /// Everything on TCP with mutual TLS, certificates from [`pki`].
    Tls,
}

impl Net {
    /// The `Tcp` transport's configuration for this network (`None` for
    /// UDP and TCP).
    pub fn tcp_config(self) -> Option<TcpConfig> {
        match self {
            Net::UdpTcp => None,
            Net::Tcp => Some(TcpConfig::default()),
            Net::Tls => Some(TcpConfig::default().with_tls(pki::node_tls(true))),
        }
    }
}

impl Runtime {
    /// The network this runtime's nodes start on.
    pub fn net(self) -> Net {
        match self {
            Runtime::Tokio(net) | Runtime::AsyncStd(net) | Runtime::Smol(net) => net,
        }
    }

    /// Runs `fut` to completion on this runtime, from a plain thread.
    ///
    /// Tokio gets a fresh two-worker runtime, dropped (with every task
    /// still on it) when `fut` finishes.
    pub fn block_on<F: Future>(self, fut: F) -> F::Output {
        match self {
            Runtime::Tokio(_) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build a tokio runtime")
                .block_on(fut),
            Runtime::AsyncStd(_) => async_std::task::block_on(fut),
            Runtime::Smol(_) => smol::block_on(fut),
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

    /// Starts a node through this runtime's adapter, on this runtime's
    /// [`Net`] bound at [`NodeConfig::bind`]. Must be awaited inside
    /// [`block_on`](Self::block_on) (tokio needs its context).
    pub async fn start(self, config: NodeConfig) -> Result<(Node, Events), StartError> {
        if let Some(tcp) = self.net().tcp_config() {
            let (node, events, _) = self.start_tcp(config, tcp).await?;
            return Ok((node, events));
        }
        match self {
            Runtime::Tokio(_) => swim_tokio::start(config).await,
            Runtime::AsyncStd(_) => swim_async_std::start(config).await,
            Runtime::Smol(_) => {
                let (node, events, driver) = swim_async_std::bind(config).await?;
                smol::spawn(driver).detach();
                Ok((node, events))
            }
        }
    }

    /// Starts a node on the `Tcp` transport with `tcp`, bound at
    /// [`NodeConfig::bind`], whatever this runtime's [`Net`]; returns the
    /// transport's counters too.
    pub async fn start_tcp(
        self,
        config: NodeConfig,
        tcp: TcpConfig,
    ) -> Result<(Node, Events, TcpStats), StartError> {
        match self {
            Runtime::Tokio(_) => {
                let transport = swim_tokio::tcp(config.bind, tcp).await?;
                let stats = transport.stats();
                let builder = swim_tokio::builder(config).transport(transport);
                let (node, events) = builder.start().await?;
                Ok((node, events, stats))
            }
            Runtime::AsyncStd(_) | Runtime::Smol(_) => {
                let transport = swim_async_std::tcp(config.bind, tcp).await?;
                let stats = transport.stats();
                let builder = swim_async_std::builder(config).transport(transport);
                let (node, events, driver) = builder.bind().await?;
                match self {
                    Runtime::Smol(_) => smol::spawn(driver).detach(),
                    _ => drop(async_std::task::spawn(driver)),
                }
                Ok((node, events, stats))
            }
        }
    }

    /// Starts a node with a delegate, on a transport in memory if given one
    /// (else UDP and TCP at the config's bind address).
    pub async fn start_with(
        self,
        config: NodeConfig,
        transport: Option<MemoryTransport>,
        delegate: Box<dyn Delegate + Send>,
    ) -> Result<(Node, Events), StartError> {
        let (node, events, driver) = match self {
            Runtime::Tokio(_) => bind(swim_tokio::builder(config), transport, delegate).await?,
            Runtime::AsyncStd(_) | Runtime::Smol(_) => {
                bind(swim_async_std::builder(config), transport, delegate).await?
            }
        };
        match self {
            Runtime::Tokio(_) => drop(tokio::spawn(driver)),
            Runtime::AsyncStd(_) => drop(async_std::task::spawn(driver)),
            Runtime::Smol(_) => smol::spawn(driver).detach(),
        }
        Ok((node, events))
    }

    /// Sleeps on this runtime's timer.
    pub async fn sleep(self, duration: Duration) {
        match self {
            Runtime::Tokio(_) => tokio::time::sleep(duration).await,
            Runtime::AsyncStd(_) => async_std::task::sleep(duration).await,
            Runtime::Smol(_) => {
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
            Runtime::Tokio(_) => {
                let handle = tokio::spawn(fut);
                Box::pin(async move {
                    match handle.await {
                        Ok(out) => out,
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    }
                })
            }
            Runtime::AsyncStd(_) => Box::pin(async_std::task::spawn(fut)),
            Runtime::Smol(_) => Box::pin(smol::spawn(fut)),
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

/// Defines one `#[test]` per scenario and runtime, over UDP and TCP:
/// modules `on_tokio`, `on_async_std` and `on_smol`, each with a test named
/// after every scenario (an `async fn(Runtime)` in scope at the call site).
#[macro_export]
macro_rules! on_every_runtime {
    ($($scenario:ident),* $(,)?) => {
        $crate::on_runtime!(on_tokio, Tokio, UdpTcp, $($scenario),*);
        $crate::on_runtime!(on_async_std, AsyncStd, UdpTcp, $($scenario),*);
        $crate::on_runtime!(on_smol, Smol, UdpTcp, $($scenario),*);
    };
}

/// As [`on_every_runtime!`], over [`Net::$net`](Net), in module `$module`:
/// `$module::on_tokio::NAME` and so on.
#[macro_export]
macro_rules! on_every_runtime_over {
    ($module:ident, $net:ident, $($scenario:ident),* $(,)?) => {
        mod $module {
            use super::*;
            $crate::on_runtime!(on_tokio, Tokio, $net, $($scenario),*);
            $crate::on_runtime!(on_async_std, AsyncStd, $net, $($scenario),*);
            $crate::on_runtime!(on_smol, Smol, $net, $($scenario),*);
        }
    };
}

/// Defines module `$module` with one `#[test]` per scenario, each run on
/// `Runtime::$runtime(Net::$net)` (see [`on_every_runtime!`]).
#[macro_export]
macro_rules! on_runtime {
    ($module:ident, $runtime:ident, $net:ident, $($scenario:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $scenario() {
                    $crate::Runtime::$runtime($crate::Net::$net).run(super::$scenario);
                }
            )*
        }
    };
}

/// A node's driver, whatever its runtime and transport.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

async fn bind<R: swim_node::Runtime, S: swim_node::Sockets>(
    builder: swim_node::NodeBuilder<R, swim_node::DefaultTransport<S>>,
    transport: Option<MemoryTransport>,
    delegate: Box<dyn Delegate + Send>,
) -> Result<(Node, Events, Driver), StartError> {
    let builder = builder.delegate(delegate);
    Ok(match transport {
        Some(t) => {
            let (node, events, driver) = builder.transport(t).bind().await?;
            (node, events, Box::pin(driver))
        }
        None => {
            let (node, events, driver) = builder.bind().await?;
            (node, events, Box::pin(driver))
        }
    })
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
    let rounds = 2 * n.saturating_sub(1) as u32 + 1;
    config.probe_interval * rounds + config.suspicion_timeouts(n).max + slack
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

/// A DNS server on loopback for the tests' own names: it answers SRV
/// queries for the names it was given, with their targets' addresses
/// alongside, and NXDOMAIN for everything else. No test asks a DNS server
/// outside the machine.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// An SRV record the test DNS server serves: target name, its IP, port.
#[derive(Debug, Clone)]
pub struct SrvRecord {
    /// The target host name.
    pub target: String,
    /// Its address (sent alongside as an A or AAAA record).
    pub ip: std::net::IpAddr,
    /// The port.
    pub port: u16,
}

impl DnsServer {
    /// Serves `records` (SRV name → records) on a free loopback port.
    pub fn start(records: Vec<(String, Vec<SrvRecord>)>) -> DnsServer {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the test DNS server");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("its address");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = dns_reply(&buf[..n], &records) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        DnsServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// The reply to one query (a question of uncompressed labels).
fn dns_reply(query: &[u8], records: &[(String, Vec<SrvRecord>)]) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).into_owned());
        at += len;
    }
    let question_end = at + 4;
    let name = labels.join(".");
    let found = records
        .iter()
        .find(|(n, _)| n.trim_end_matches('.').eq_ignore_ascii_case(&name));
    let mut reply = query.get(..question_end)?.to_vec();
    reply[2] = 0x81;
    reply[3] = if found.is_some() { 0x80 } else { 0x83 };
    let targets = found.map_or(&[][..], |(_, r)| &r[..]);
    reply[6..8].copy_from_slice(&(targets.len() as u16).to_be_bytes());
    reply[8..10].copy_from_slice(&[0, 0]);
    reply[10..12].copy_from_slice(&(targets.len() as u16).to_be_bytes());
    for r in targets {
        reply.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
        let mut rdata = vec![0, 1, 0, 1];
        rdata.extend_from_slice(&r.port.to_be_bytes());
        dns_name(&mut rdata, &r.target);
        reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        reply.extend_from_slice(&rdata);
    }
    for r in targets {
        dns_name(&mut reply, &r.target);
        let (rtype, bytes) = match r.ip {
            std::net::IpAddr::V4(v4) => (1u16, v4.octets().to_vec()),
            std::net::IpAddr::V6(v6) => (28u16, v6.octets().to_vec()),
        };
        reply.extend_from_slice(&rtype.to_be_bytes());
        reply.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        reply.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        reply.extend_from_slice(&bytes);
    }
    Some(reply)
}
