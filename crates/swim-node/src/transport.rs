//! How a node reaches its peers: datagrams and streams, behind a trait with
//! state, so that a network of one's own — in memory for tests, another
//! protocol, a simulated one — can carry a node unchanged.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Runtime;

/// A node's network: best-effort datagrams and reliable streams, both
/// addressed by [`SocketAddr`] (the addresses members advertise).
///
/// [`UdpTcp`] — UDP and TCP on one port, what memberlist speaks — is the
/// default; [`MemoryNetwork`](crate::MemoryNetwork) carries many nodes in
/// one process. Futures must be cancel-safe: the driver drops those that
/// lose a race and asks again.
pub trait Transport: Send + Sync + 'static {
    /// A connected stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The address this transport receives at.
    fn local_addr(&self) -> SocketAddr;

    /// Receives one datagram into `buf`, with its sender, if one is ready.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>>;

    /// Sends one datagram (best effort: it may be lost).
    fn send_to<'a>(
        &'a self,
        data: &'a [u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Accepts the next incoming stream, with the peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_;

    /// Opens a stream to `to`.
    fn connect(&self, to: SocketAddr)
        -> impl Future<Output = io::Result<Self::Stream>> + Send + '_;
}

/// UDP and TCP on one port, on runtime `R`: memberlist's own transport.
pub struct UdpTcp<R: Runtime> {
    udp: R::Udp,
    listener: R::Listener,
    addr: SocketAddr,
}

impl<R: Runtime> std::fmt::Debug for UdpTcp<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpTcp").field("addr", &self.addr).finish()
    }
}

impl<R: Runtime> UdpTcp<R> {
    /// Binds UDP and TCP to `addr`. With port 0 the kernel picks the TCP
    /// port; if that UDP port is taken, another is tried.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let attempts = if addr.port() == 0 { 16 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            let listener = R::bind_tcp(addr).await?;
            let bound = R::tcp_local_addr(&listener)?;
            match R::bind_udp(bound).await {
                Ok(udp) => {
                    return Ok(UdpTcp {
                        udp,
                        listener,
                        addr: bound,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()))
    }
}

impl<R: Runtime> Transport for UdpTcp<R> {
    type Stream = R::Stream;

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        R::poll_recv_from(&self.udp, cx, buf)
    }

    fn send_to<'a>(
        &'a self,
        data: &'a [u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        R::send_to(&self.udp, data, to)
    }

    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_ {
        R::accept(&self.listener)
    }

    fn connect(
        &self,
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + '_ {
        R::connect(to)
    }
}
