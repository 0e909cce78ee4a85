//! The UDP and TCP sockets of one async runtime, for the transports written
//! once in this crate ([`UdpTcp`](crate::UdpTcp), [`Tcp`](crate::Tcp)).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// A runtime's sockets: what [`UdpTcp`](crate::UdpTcp) and
/// [`Tcp`](crate::Tcp) are made of.
///
/// Kept apart from [`Runtime`](crate::Runtime) so that a runtime is only a
/// runtime: a node's bytes go through its [`Transport`](crate::Transport),
/// and a transport built on other sockets (a simulated network's, say)
/// needs no runtime of its own. Each future must be cancel-safe: the driver
/// drops the ones that lose a race and asks again.
pub trait Sockets: Send + Sync + 'static {
    /// A bound UDP socket.
    type Udp: Send + Sync + 'static;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;
    /// A connected TCP stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Binds a UDP socket.
    fn bind_udp(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Udp>> + Send;
    /// Binds a TCP listener.
    fn bind_tcp(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// The address a listener is bound to.
    fn tcp_local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// Receives one datagram into `buf` if one is ready. Poll-based, so the
    /// driver can lend a buffer only for the call: every node on a thread
    /// shares one 64 KiB buffer instead of holding its own.
    fn poll_recv_from(
        udp: &Self::Udp,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>>;
    /// Sends one datagram.
    fn send_to<'a>(
        udp: &'a Self::Udp,
        data: &'a [u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    /// Accepts one connection.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_;
    /// Connects to `to`.
    fn connect(to: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}
