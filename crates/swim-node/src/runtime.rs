//! What an adapter provides: the sockets, timers, clock and executor of one
//! async runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// The I/O of one async runtime, as a node needs it.
///
/// An adapter crate implements this for its runtime's UDP socket, TCP
/// listener, TCP stream and timer; everything else — the loop that owns the
/// [`Swim`](swim_core::Swim) value, stream framing, deadlines, the handle,
/// the default [`UdpTcp`](crate::UdpTcp) transport — is written once, in
/// this crate. Each future must be cancel-safe: the driver drops the ones
/// that lose a race and asks again.
pub trait Runtime: Send + Sync + 'static {
    /// A bound UDP socket.
    type Udp: Send + Sync + 'static;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;
    /// A connected TCP stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A timer that fires once at its deadline.
    type Timer: Future<Output = ()> + Unpin + Send + 'static;

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

    /// A timer firing at `deadline`.
    fn timer_at(deadline: Instant) -> Self::Timer;

    /// Moves `timer` to fire at `deadline` instead. The node moves its one
    /// timer a few times a probe; a runtime that can move a timer in place
    /// saves making a new one each time.
    fn reset_timer(timer: &mut Self::Timer, deadline: Instant) {
        *timer = Self::timer_at(deadline);
    }

    /// The runtime's present time (its clock drives the node's, so a
    /// runtime with a simulated clock runs nodes on it).
    fn now() -> Instant {
        Instant::now()
    }

    /// Runs blocking `work` (name resolution) off the executor's threads.
    fn unblock<T: Send + 'static>(
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send;

    /// Runs `task` to completion in the background (a node's driver).
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
}
