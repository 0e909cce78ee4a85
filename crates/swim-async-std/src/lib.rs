//! Run a memberlist-compatible SWIM node on async-std or smol.
//!
//! Built on the primitives both run on — `async-io`'s reactor and
//! `async-net`'s sockets — so it works under either (async-std is
//! discontinued in favour of smol). The API is the one `swim-tokio` has:
//! a cloneable [`Node`] handle and a stream of [`Events`].
//!
//! ```
//! use std::time::Duration;
//! use swim_async_std::{Config, NodeConfig};
//!
//! # async_std::task::block_on(async {
//! let bind = "127.0.0.1:0".parse().unwrap();
//! let (a, _) = swim_async_std::start(NodeConfig::new(bind, Config::local("a", bind))).await?;
//! let (b, _) = swim_async_std::start(NodeConfig::new(bind, Config::local("b", bind))).await?;
//! assert_eq!(b.join(&[a.bound_addr()]).await?, 1);
//! assert_eq!(a.num_members(), 2);
//! b.leave(Duration::from_secs(1)).await?;
//! b.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! [`start`] runs the node on async-std's global executor (the one
//! `async_std::task::spawn` uses). Under smol, or to choose the executor,
//! call [`bind`] and spawn the returned driver yourself:
//!
//! ```
//! # smol::block_on(async {
//! let bind = "127.0.0.1:0".parse().unwrap();
//! let config = swim_async_std::NodeConfig::new(bind, swim_async_std::Config::local("a", bind));
//! let (node, events, driver) = swim_async_std::bind(config).await?;
//! smol::spawn(driver).detach();
//! assert_eq!(node.num_members(), 1);
//! # node.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The surface is `swim-tokio`'s, name for name: [`start`], [`bind`],
//! [`builder`]; the transports [`udp_tcp`] ([`UdpTcp`], the default) and
//! [`tcp`] ([`Tcp`]: everything on TCP, optionally TLS with the `tls`
//! feature; not interoperable with Go's default transport); the runtime
//! [`AsyncStdRuntime`] and its sockets [`AsyncStdSockets`].
//!
//! # For Go memberlist users
//!
//! (The same table is in `swim-node`'s docs: one source, `GO.md`.)
//!
#![doc = include_str!("../GO.md")]

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Async;
use async_net::{TcpListener, TcpStream as NetStream};

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

/// async-io's timers, for [`swim_node`]; tasks run on async-std's global
/// executor, blocking work on smol's thread pool.
#[derive(Debug, Clone, Copy)]
pub struct AsyncStdRuntime;

/// async-io's and async-net's UDP and TCP sockets (those of async-std and
/// smol), for the transports of [`swim_node`].
#[derive(Debug, Clone, Copy)]
pub struct AsyncStdSockets;

/// UDP and TCP on one port on async-io's sockets: memberlist's own
/// transport, the default.
pub type UdpTcp = swim_node::UdpTcp<AsyncStdSockets>;

/// Everything on TCP (optionally TLS) on async-std or smol (see
/// [`swim_node::Tcp`]).
pub type Tcp = swim_node::Tcp<AsyncStdRuntime, AsyncStdSockets>;

/// A connection of the [`Tcp`] transport (its [`Transport::Stream`]).
pub type TcpStream = swim_node::TcpStream<<AsyncStdSockets as Sockets>::Stream>;

/// A node on async-std or smol, to configure before it starts.
pub type NodeBuilder<T = DefaultTransport<AsyncStdSockets>> =
    swim_node::NodeBuilder<AsyncStdRuntime, T>;

/// An `async-io` timer that yields `()`.
#[derive(Debug)]
pub struct Timer(async_io::Timer);

impl Future for Timer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Runtime for AsyncStdRuntime {
    type Timer = Timer;

    fn timer_at(deadline: Instant) -> Timer {
        Timer(async_io::Timer::at(deadline))
    }

    fn reset_timer(timer: &mut Timer, deadline: Instant) {
        timer.0.set_at(deadline);
    }

    async fn unblock<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        blocking::unblock(work).await
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        async_global_executor::spawn(task).detach();
    }
}

impl Sockets for AsyncStdSockets {
    type Udp = Async<UdpSocket>;
    type Listener = TcpListener;
    type Stream = NetStream;

    async fn bind_udp(addr: SocketAddr) -> io::Result<Async<UdpSocket>> {
        Async::new(swim_node::bind_udp(addr)?)
    }

    async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    fn tcp_local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn poll_recv_from(
        udp: &Async<UdpSocket>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            match udp.get_ref().recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
            if let Err(e) = std::task::ready!(udp.poll_readable(cx)) {
                return Poll::Ready(Err(e));
            }
        }
    }

    async fn send_to(udp: &Async<UdpSocket>, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        udp.send_to(data, to).await
    }

    async fn accept(listener: &TcpListener) -> io::Result<(NetStream, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, from))
    }

    async fn connect(to: SocketAddr) -> io::Result<NetStream> {
        let stream = NetStream::connect(to).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Starts a node on async-std's global executor: binds UDP and TCP at
/// [`NodeConfig::bind`] and spawns the task that runs it.
#[doc(alias = "Create")]
pub async fn start(config: NodeConfig) -> Result<(Node, Events), StartError> {
    builder(config).start().await
}

/// Binds a node's sockets and returns it with the driver future, to spawn
/// on the executor of your choice (smol's, say).
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
/// memberlist's default transport. Its connection tasks run on async-std's
/// global executor, as [`start`]'s node does.
///
/// ```
/// use swim_async_std::{Config, NodeConfig, TcpConfig};
///
/// # smol::block_on(async {
/// let bind = "127.0.0.1:0".parse().unwrap();
/// let mut nodes = Vec::new();
/// for name in ["a", "b"] {
///     let transport = swim_async_std::tcp(bind, TcpConfig::default()).await?;
///     let config = NodeConfig::new(bind, Config::local(name, bind));
///     let (node, _, driver) = swim_async_std::builder(config).transport(transport).bind().await?;
///     smol::spawn(driver).detach();
///     nodes.push(node);
/// }
/// assert_eq!(nodes[1].join(&[nodes[0].bound_addr()]).await?, 1);
/// nodes[1].ping("a").await?; // a datagram and its ack, each on a TCP connection
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn tcp(addr: SocketAddr, config: TcpConfig) -> io::Result<Tcp> {
    Tcp::bind(addr, config).await
}

/// A node to give a [`Delegate`] or another [`Transport`] before it starts
/// (then `bind` it, or `start` it on async-std's executor).
pub fn builder(config: NodeConfig) -> NodeBuilder {
    NodeBuilder::new(config)
}
