//! How a node reaches its peers: datagrams and streams, behind a trait with
//! state, so that a network of one's own — in memory for tests, another
//! protocol, a simulated one — can carry a node unchanged. Here too the
//! default, [`UdpTcp`], on a runtime's [`Sockets`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::sockets::Sockets;

/// A node's network: best-effort datagrams and reliable streams, both
/// addressed by [`SocketAddr`] (the addresses members advertise).
///
/// The only way a node's bytes come and go. [`UdpTcp`] — UDP and TCP on one
/// port, what memberlist speaks — is the default; [`Tcp`](crate::Tcp)
/// carries datagrams on streams too (optionally over TLS);
/// [`MemoryNetwork`](crate::MemoryNetwork) carries many nodes in one
/// process. Futures must be cancel-safe: the driver drops those that lose a
/// race and asks again.
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

    /// Told, once before the node runs, the address the node advertises
    /// (its bound address unless configured otherwise). A transport that
    /// names the sender of a datagram itself, as [`Tcp`](crate::Tcp) does,
    /// names it by this; the others ignore it.
    fn advertise(&self, addr: SocketAddr) {
        let _ = addr;
    }
}

/// UDP and TCP on one port, on sockets `S`: memberlist's own transport.
pub struct UdpTcp<S: Sockets> {
    udp: S::Udp,
    listener: S::Listener,
    addr: SocketAddr,
}

impl<S: Sockets> std::fmt::Debug for UdpTcp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpTcp").field("addr", &self.addr).finish()
    }
}

impl<S: Sockets> UdpTcp<S> {
    /// Binds UDP and TCP to `addr`. With port 0 the kernel picks the TCP
    /// port; if that UDP port is taken, another is tried.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let attempts = if addr.port() == 0 { 16 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            let listener = S::bind_tcp(addr).await?;
            let bound = S::tcp_local_addr(&listener)?;
            match S::bind_udp(bound).await {
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

impl<S: Sockets> Transport for UdpTcp<S> {
    type Stream = S::Stream;

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        S::poll_recv_from(&self.udp, cx, buf)
    }

    fn send_to<'a>(
        &'a self,
        data: &'a [u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        S::send_to(&self.udp, data, to)
    }

    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_ {
        S::accept(&self.listener)
    }

    fn connect(
        &self,
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + '_ {
        S::connect(to)
    }
}
