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

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Async;
use async_net::{TcpListener, TcpStream};

pub use swim_node::swim_core::{self, Config, Delegate, Event, Member, MemberState};
pub use swim_node::{
    parse_key, Error, Events, JoinRetries, MemoryNetwork, Node, NodeConfig, NodeSettings,
    NodeStats, Preset, Runtime, Seed, SettingsError, StartError, Transport,
};

/// async-io's sockets and timers, for [`swim_node`]; tasks run on
/// async-std's global executor, blocking work on smol's thread pool.
#[derive(Debug, Clone, Copy)]
pub struct AsyncIo;

/// A node on async-std or smol, to configure before it starts.
pub type NodeBuilder<T = swim_node::DefaultTransport> = swim_node::NodeBuilder<AsyncIo, T>;

/// An `async-io` timer that yields `()`.
#[derive(Debug)]
pub struct Timer(async_io::Timer);

impl Future for Timer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Runtime for AsyncIo {
    type Udp = Async<UdpSocket>;
    type Listener = TcpListener;
    type Stream = TcpStream;
    type Timer = Timer;

    async fn bind_udp(addr: SocketAddr) -> io::Result<Async<UdpSocket>> {
        Async::<UdpSocket>::bind(addr)
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

    async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, from))
    }

    async fn connect(to: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(to).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

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

/// Binds a node's sockets and returns it with the driver future to spawn on
/// the executor of your choice.
pub async fn bind(
    config: NodeConfig,
) -> Result<(Node, Events, impl Future<Output = ()> + Send + 'static), StartError> {
    builder(config).bind().await
}

/// Starts a node on async-std's global executor.
pub async fn start(config: NodeConfig) -> Result<(Node, Events), StartError> {
    builder(config).start().await
}

/// A node to give a [`Delegate`] or another [`Transport`] before it starts
/// (then `bind` it, or `start` it on async-std's executor).
pub fn builder(config: NodeConfig) -> NodeBuilder {
    NodeBuilder::new(config)
}
