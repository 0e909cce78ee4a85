//! Run a memberlist-compatible SWIM node on [tokio].
//!
//! One task owns the protocol state machine ([`swim_core::Swim`]); it reads
//! UDP and TCP on one port and carries out what the core decides. You hold a
//! [`Node`] — cheap to clone, usable from any task — and read [`Events`].
//! The same API runs on async-std and smol through `swim-async-std`.
//!
//! ```
//! use std::time::Duration;
//! use swim_tokio::{Config, NodeConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bind = "127.0.0.1:0".parse()?;
//! let (a, _) = swim_tokio::start(NodeConfig::new(bind, Config::local("a", bind))).await?;
//! let (b, events) = swim_tokio::start(NodeConfig::new(bind, Config::local("b", bind))).await?;
//!
//! // Join through a seed; both now see both.
//! assert_eq!(b.join(&[a.bound_addr()]).await?, 1);
//! assert_eq!(b.num_members(), 2);
//! a.send_reliable("b", b"hello").await?;
//! while let Some(event) = events.recv().await {
//!     if let swim_tokio::Event::UserMessage { payload, .. } = event {
//!         assert_eq!(payload, b"hello");
//!         break;
//!     }
//! }
//! a.leave(Duration::from_secs(1)).await?;
//! a.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Streams of events are also readable without async
//! ([`Events::recv_blocking`]); [`Node::members`] and friends are plain
//! synchronous reads.
//!
//! # Testing your service: a network in memory, on a paused clock
//!
//! [`MemoryNetwork`] carries many nodes in one process with no sockets, and
//! cuts and heals links on demand; under tokio's paused clock
//! (`start_paused`, tokio's `test-util` feature) the nodes' timers run on
//! virtual time, which jumps ahead whenever every task waits. Thirty
//! seconds of failure detection, a partition and its heal take a few
//! milliseconds, and a fixed [`NodeConfig::seed`] and network seed make
//! every run the same:
//!
//! ```
//! use std::time::Duration;
//! use swim_tokio::{Config, MemoryNetwork, NodeConfig};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In a test: #[tokio::test(start_paused = true)]
//! # let wall = std::time::Instant::now();
//! let net = MemoryNetwork::new(7);
//! let mut nodes = Vec::new();
//! for i in 1..=3u8 {
//!     let addr = format!("10.0.0.{i}:7946").parse()?;
//!     let mut config = NodeConfig::new(addr, Config::local(&format!("n{i}"), addr));
//!     config.seed = Some(i.into());
//!     let (node, _events) = swim_tokio::builder(config)
//!         .transport(net.transport(addr)?)
//!         .start()
//!         .await?;
//!     nodes.push((addr, node));
//! }
//! let (n1, n3) = (&nodes[0].1, &nodes[2].1);
//! for (_, node) in &nodes[1..] {
//!     node.join([nodes[0].0]).await?;
//! }
//! assert_eq!(n1.num_members(), 3);
//!
//! // n3 is cut off: each side declares the other failed.
//! net.partition(&[nodes[2].0], &[nodes[0].0, nodes[1].0]);
//! tokio::time::sleep(Duration::from_secs(30)).await; // virtual time
//! assert_eq!((n1.num_members(), n3.num_members()), (2, 1));
//!
//! // Healed, the two sides find each other again (catch-up push/pulls
//! // with failed members; Go memberlist would need a new join).
//! net.heal();
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
//! while n1.num_members() < 3 || n3.num_members() < 3 {
//!     assert!(tokio::time::Instant::now() < deadline, "no heal in a minute");
//!     tokio::time::sleep(Duration::from_millis(100)).await;
//! }
//! # assert!(wall.elapsed() < Duration::from_millis(500), "{:?}", wall.elapsed());
//! # Ok(())
//! # }
//! ```
//!
//! The surface is `swim-async-std`'s, name for name: [`start`], [`bind`],
//! [`builder`]; the transports [`udp_tcp`] ([`UdpTcp`], the default) and
//! [`tcp`] ([`Tcp`]: everything on TCP, optionally TLS with the `tls`
//! feature; not interoperable with Go's default transport); the runtime
//! [`TokioRuntime`] and its sockets [`TokioSockets`].
//!
//! # For Go memberlist users
//!
//! (The same table is in `swim-node`'s docs: one source, `GO.md`.)
//!
#![doc = include_str!("../GO.md")]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::ReadBuf;
use tokio::net::{TcpListener, TcpStream as NetStream, UdpSocket};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

// Everything the API takes or returns, named from this crate: you need no
// other dependency (`swim_core` stays reachable for the protocol itself).
pub use swim_node::{
    parse_key, swim_core, wire, BroadcastId, BroadcastOutcome, CatchUp, Cidr, CommandError, Config,
    ConfigError, DefaultDelegate, DefaultTransport, Delegate, Error, Event, Events, ExchangeError,
    IntoSeed, IoKind, JoinFailure, JoinFailureReason, JoinRetries, Keyring, Limits, Member,
    MemberCounts, MemberState, MemberStatus, MemoryNetwork, MemoryStream, MemoryTransport, Node,
    NodeConfig, NodeSettings, NodeStats, Preset, Rejection, ResolveError, Runtime, SecretKey, Seed,
    SeedError, SettingsError, Sockets, StartError, Stats, SuspicionTimeouts, TcpConfig, TcpStats,
    Transport, WireError, META_MAX_SIZE, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};

#[cfg(feature = "tls")]
pub use swim_node::{TlsConfig, TlsError};

/// Tokio's timers, clock and executors, for [`swim_node`].
#[derive(Debug, Clone, Copy)]
pub struct TokioRuntime;

/// Tokio's UDP and TCP sockets, for the transports of [`swim_node`].
#[derive(Debug, Clone, Copy)]
pub struct TokioSockets;

/// UDP and TCP on one port on tokio's sockets: memberlist's own transport,
/// the default.
pub type UdpTcp = swim_node::UdpTcp<TokioSockets>;

/// Everything on TCP (optionally TLS) on tokio (see [`swim_node::Tcp`]).
pub type Tcp = swim_node::Tcp<TokioRuntime, TokioSockets>;

/// A connection of the [`Tcp`] transport (its [`Transport::Stream`]).
pub type TcpStream = swim_node::TcpStream<<TokioSockets as Sockets>::Stream>;

/// A node on tokio, to configure before it starts.
pub type NodeBuilder<T = DefaultTransport<TokioSockets>> = swim_node::NodeBuilder<TokioRuntime, T>;

impl Runtime for TokioRuntime {
    type Timer = Pin<Box<tokio::time::Sleep>>;

    fn timer_at(deadline: Instant) -> Self::Timer {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn reset_timer(timer: &mut Self::Timer, deadline: Instant) {
        timer.as_mut().reset(deadline.into());
    }

    fn now() -> Instant {
        // Tokio's clock, so a paused or simulated one runs the node too.
        tokio::time::Instant::now().into_std()
    }

    async fn unblock<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        match tokio::task::spawn_blocking(work).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down and drops this task
            // next; there is no result to give.
            Err(_) => std::future::pending().await,
        }
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

impl Sockets for TokioSockets {
    type Udp = UdpSocket;
    type Listener = TcpListener;
    type Stream = Compat<NetStream>;

    async fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::from_std(swim_node::bind_udp(addr)?)
    }

    async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    fn tcp_local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn poll_recv_from(
        udp: &UdpSocket,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut read = ReadBuf::new(buf);
        udp.poll_recv_from(cx, &mut read)
            .map_ok(|from| (read.filled().len(), from))
    }

    async fn send_to(udp: &UdpSocket, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        udp.send_to(data, to).await
    }

    async fn accept(listener: &TcpListener) -> io::Result<(Compat<NetStream>, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream.compat(), from))
    }

    async fn connect(to: SocketAddr) -> io::Result<Compat<NetStream>> {
        let stream = NetStream::connect(to).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream.compat())
    }
}

/// Starts a node on the current tokio runtime: binds UDP and TCP at
/// [`NodeConfig::bind`] and spawns the task that runs it.
#[doc(alias = "Create")]
pub async fn start(config: NodeConfig) -> Result<(Node, Events), StartError> {
    builder(config).start().await
}

/// Binds a node's sockets and returns it with the driver future, to spawn
/// where you choose.
pub async fn bind(
    config: NodeConfig,
) -> Result<(Node, Events, impl Future<Output = ()> + Send + 'static), StartError> {
    builder(config).bind().await
}

/// UDP and TCP bound to `addr` (port 0: one the kernel picks), for
/// [`NodeBuilder::transport`](swim_node::NodeBuilder::transport).
pub async fn udp_tcp(addr: SocketAddr) -> io::Result<UdpTcp> {
    UdpTcp::bind(addr).await
}

/// Everything on TCP, listening at `addr`, with `config`'s limits (and TLS,
/// with the `tls` feature), for
/// [`NodeBuilder::transport`](swim_node::NodeBuilder::transport). Every
/// node of the cluster must use it: it does not interoperate with Go
/// memberlist's default transport.
///
/// ```
/// use swim_tokio::{Config, NodeConfig, TcpConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bind = "127.0.0.1:0".parse()?;
/// let mut nodes = Vec::new();
/// for name in ["a", "b"] {
///     let transport = swim_tokio::tcp(bind, TcpConfig::default()).await?;
///     let config = NodeConfig::new(bind, Config::local(name, bind));
///     let (node, _) = swim_tokio::builder(config).transport(transport).start().await?;
///     nodes.push(node);
/// }
/// assert_eq!(nodes[1].join(&[nodes[0].bound_addr()]).await?, 1);
/// nodes[1].ping("a").await?; // a datagram and its ack, each on a TCP connection
/// # Ok(())
/// # }
/// ```
pub async fn tcp(addr: SocketAddr, config: TcpConfig) -> io::Result<Tcp> {
    Tcp::bind(addr, config).await
}

/// A node to give a [`Delegate`] or another [`Transport`] before it starts.
///
/// ```
/// use swim_tokio::{Config, MemoryNetwork, NodeConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Two nodes on a network in memory: no sockets.
/// let net = MemoryNetwork::new(1);
/// let (a, b) = ("10.0.0.1:7946".parse()?, "10.0.0.2:7946".parse()?);
/// let (na, _) = swim_tokio::builder(NodeConfig::new(a, Config::local("a", a)))
///     .transport(net.transport(a)?)
///     .start()
///     .await?;
/// let (nb, _) = swim_tokio::builder(NodeConfig::new(b, Config::local("b", b)))
///     .transport(net.transport(b)?)
///     .start()
///     .await?;
/// assert_eq!(nb.join(["10.0.0.1:7946"]).await?, 1);
/// assert_eq!(na.num_members(), 2);
/// # Ok(())
/// # }
/// ```
pub fn builder(config: NodeConfig) -> NodeBuilder {
    NodeBuilder::new(config)
}
