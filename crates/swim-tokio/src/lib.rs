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

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::ReadBuf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

pub use swim_node::swim_core::{self, Config, Event, Member, MemberState};
pub use swim_node::{
    parse_key, Error, Events, Net, Node, NodeConfig, NodeSettings, NodeStats, Profile,
    SettingsError, StartError,
};

/// Tokio's sockets and timers, for [`swim_node`].
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

impl Net for Tokio {
    type Udp = UdpSocket;
    type Listener = TcpListener;
    type Stream = Compat<TcpStream>;
    type Timer = Pin<Box<tokio::time::Sleep>>;

    async fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::bind(addr).await
    }

    async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    fn udp_local_addr(udp: &UdpSocket) -> io::Result<SocketAddr> {
        udp.local_addr()
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

    async fn accept(listener: &TcpListener) -> io::Result<(Compat<TcpStream>, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream.compat(), from))
    }

    async fn connect(to: SocketAddr) -> io::Result<Compat<TcpStream>> {
        let stream = TcpStream::connect(to).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream.compat())
    }

    fn timer_at(deadline: Instant) -> Self::Timer {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// Starts a node on the current tokio runtime: binds its sockets and spawns
/// the task that runs it.
pub async fn start(config: NodeConfig) -> Result<(Node, Events), StartError> {
    let (node, events, driver) = swim_node::bind::<Tokio>(config).await?;
    tokio::spawn(driver);
    Ok((node, events))
}
