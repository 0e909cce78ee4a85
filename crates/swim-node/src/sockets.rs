//! The UDP and TCP sockets of one async runtime, for the transports written
//! once in this crate ([`UdpTcp`](crate::UdpTcp), [`Tcp`](crate::Tcp)).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// The receive buffer asked for a node's UDP socket, as Go memberlist asks
/// (`udpRecvBufSize`): a process that falls behind (a join storm, a stalled
/// host) keeps its datagrams queued, where the kernel's default (about
/// 208 KiB on Linux) drops acks and refutations and turns the stall into
/// false suspicions. Linux caps it at `net.core.rmem_max`.
pub const UDP_RECV_BUFFER: usize = 2 * 1024 * 1024;

/// Binds a non-blocking UDP socket to `addr` with a receive buffer of
/// [`UDP_RECV_BUFFER`] bytes, or half, a quarter… of it where the system
/// refuses more (Go's `setUDPRecvBuf`); for an adapter's
/// [`Sockets::bind_udp`], which wraps it for its runtime.
///
/// # Errors
///
/// Creating or binding the socket failed; a buffer the system refuses at
/// every size is not an error (the socket keeps the default).
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let mut size = UDP_RECV_BUFFER;
    while size > 0 && socket.set_recv_buffer_size(size).is_err() {
        size /= 2;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

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

    /// Binds a UDP socket ([`bind_udp`] makes one as memberlist does).
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_udp_socket_gets_go_memberlists_receive_buffer_or_the_systems_most() {
        let udp = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(udp.local_addr().unwrap().port() > 0);
        let most: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Linux reports twice what was set (its bookkeeping overhead).
        let got = socket2::SockRef::from(&udp).recv_buffer_size().unwrap();
        assert!(
            got >= UDP_RECV_BUFFER.min(most),
            "{got} < {}",
            UDP_RECV_BUFFER.min(most)
        );
        let mut buf = [0; 8];
        assert_eq!(
            udp.recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "non-blocking, for the runtime's reactor"
        );
    }
}
