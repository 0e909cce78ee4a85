//! Everything on TCP, optionally TLS: the transport users ask for most
//! after UDP+TCP (memberlist#226; dskit's for Mimir and Loki).
//!
//! Datagrams travel as length-prefixed frames on one persistent outbound
//! connection per peer (a bounded pool, closed when idle), preceded by the
//! sender's advertised address so a datagram comes `from` the peer's
//! listening address, not an ephemeral port. Streams (push/pull, reliable
//! messages) take a connection each, as with [`UdpTcp`](crate::UdpTcp). A
//! one-byte kind at the start of every connection tells the two apart (the
//! layout is in `wire.rs`).
//!
//! TLS is all or nothing: a plaintext node dialling a TLS one is told
//! [`ExchangeError::PeerSpeaksTls`](swim_core::ExchangeError::PeerSpeaksTls);
//! a TLS node dialling a plaintext one has its connection reset, and the
//! plaintext node counts a handshake error.

mod conn;
#[cfg(feature = "tls")]
mod tls;
mod wire;

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::stream::FuturesUnordered;
use futures_util::{AsyncReadExt, AsyncWriteExt, Stream, StreamExt};
use tracing::debug;

pub use conn::TcpStream;
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError};

use crate::runtime::Runtime;
use crate::sockets::Sockets;
use crate::stream::before;
use crate::transport::Transport;
use wire::Fault;

/// The limits and timeouts of a [`Tcp`] transport, and its TLS.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TcpConfig {
    /// The largest datagram carried, either way; a longer frame from a
    /// peer closes its connection. Default 65,536 bytes, the largest
    /// datagram a node receives.
    pub max_frame: usize,
    /// Outbound datagram connections kept at once; at the limit the
    /// connection to some peer is closed to make room. Default 256.
    pub max_peers: usize,
    /// Datagrams waiting for one peer's connection; more are dropped (and
    /// `send_to` fails, which the node counts as a send error). Default 64.
    pub max_pending_frames: usize,
    /// Datagrams received but not yet taken by the node; more are dropped.
    /// Default 1,024.
    pub max_received_frames: usize,
    /// Inbound connections in their handshake or carrying datagrams;
    /// more are closed at once. (Inbound streams are bounded by the node's
    /// `max_incoming_streams` once handed over.) Default 512.
    pub max_inbound: usize,
    /// An outbound datagram connection with nothing to send for this long
    /// is closed; an inbound one, after twice as long. Default 60 s.
    pub idle_timeout: Duration,
    /// The time allowed to connect, to finish a handshake (TLS and the
    /// connection's kind), and to write a batch of datagrams. Default 10 s.
    pub io_timeout: Duration,
    /// TLS for every connection, or plaintext if `None`.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            max_frame: 65_536,
            max_peers: 256,
            max_pending_frames: 64,
            max_received_frames: 1024,
            max_inbound: 512,
            idle_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

#[cfg(feature = "tls")]
impl TcpConfig {
    /// These settings with every connection under `tls` (the struct is
    /// non-exhaustive, so this is how a caller outside the crate sets it).
    ///
    /// ```no_run
    /// # fn run() -> Result<(), swim_node::TlsError> {
    /// use swim_node::{TcpConfig, TlsConfig};
    /// let tls = TlsConfig::from_pem_files("node.pem", "node.key", "ca.pem", true)?;
    /// let config = TcpConfig::default().with_tls(tls);
    /// # Ok(()) }
    /// ```
    pub fn with_tls(mut self, tls: TlsConfig) -> TcpConfig {
        self.tls = Some(tls);
        self
    }
}

/// What went wrong on a [`Tcp`] transport, counted since it was bound. A
/// cheap handle: take it with [`Tcp::stats`] before giving the transport
/// to a node, and read it while the node runs.
#[derive(Debug, Clone, Default)]
pub struct TcpStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    connect_errors: AtomicU64,
    write_errors: AtomicU64,
    refused: AtomicU64,
    handshake_errors: AtomicU64,
    frame_errors: AtomicU64,
    frames_dropped: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl TcpStats {
    /// Outbound datagram connections that could not be made (connect, TLS
    /// or preamble failed or timed out).
    pub fn connect_errors(&self) -> u64 {
        self.0.connect_errors.load(Ordering::Relaxed)
    }
    /// Outbound datagram connections that failed while writing.
    pub fn write_errors(&self) -> u64 {
        self.0.write_errors.load(Ordering::Relaxed)
    }
    /// Inbound connections closed at once: [`TcpConfig::max_inbound`]
    /// were open.
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }
    /// Inbound connections whose handshake failed: TLS refused or timed
    /// out, an unknown kind of connection, an invalid sender address.
    pub fn handshake_errors(&self) -> u64 {
        self.0.handshake_errors.load(Ordering::Relaxed)
    }
    /// Inbound datagram connections closed for an invalid or oversized
    /// frame or a failed read.
    pub fn frame_errors(&self) -> u64 {
        self.0.frame_errors.load(Ordering::Relaxed)
    }
    /// Datagrams dropped, either way: queues full, a connection failed.
    pub fn frames_dropped(&self) -> u64 {
        self.0.frames_dropped.load(Ordering::Relaxed)
    }
}

/// What the transport and its connection tasks share.
struct Shared {
    config: TcpConfig,
    stats: TcpStats,
    /// The address datagrams are sent from: the node's advertised one.
    sender: OnceLock<SocketAddr>,
    /// Inbound connections handshaking or carrying datagrams.
    inbound: AtomicUsize,
}

impl Shared {
    /// Dials `to`: TCP, TLS if configured, then the connection's kind.
    async fn dial<S: Sockets>(
        &self,
        to: SocketAddr,
        preamble: &[u8],
    ) -> io::Result<TcpStream<S::Stream>> {
        let raw = S::connect(to).await?;
        #[cfg(feature = "tls")]
        let mut conn = match &self.config.tls {
            Some(tls) => tls.connect(raw, to).await?,
            None => TcpStream::plain(raw),
        };
        #[cfg(not(feature = "tls"))]
        let mut conn = TcpStream::plain(raw);
        conn.write_all(preamble).await?;
        Ok(conn)
    }

    /// Admits an accepted connection: TLS if configured, then its kind.
    async fn admit<St>(&self, raw: St) -> Result<Admitted<St>, Fault>
    where
        St: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
    {
        #[cfg(feature = "tls")]
        let mut conn = match &self.config.tls {
            Some(tls) => tls.accept(raw).await.map_err(Fault::Handshake)?,
            None => TcpStream::plain(raw),
        };
        #[cfg(not(feature = "tls"))]
        let mut conn = TcpStream::plain(raw);
        let mut kind = [0u8; 1];
        conn.read_exact(&mut kind).await?;
        match kind[0] {
            wire::STREAM => Ok(Admitted::Stream(conn)),
            wire::DATAGRAMS => {
                let sender = wire::read_sender(&mut conn).await?;
                Ok(Admitted::Datagrams(conn, sender))
            }
            other => Err(Fault::Kind(other)),
        }
    }
}

/// An inbound connection past its handshake.
enum Admitted<S> {
    Stream(TcpStream<S>),
    Datagrams(TcpStream<S>, SocketAddr),
}

type Handshake<S> = Pin<Box<dyn Future<Output = (SocketAddr, Result<Admitted<S>, Fault>)> + Send>>;

type Received = (SocketAddr, Vec<u8>);

/// Everything on TCP, optionally TLS, on runtime `R` (tasks, timers) and
/// sockets `S`: datagrams as frames on a persistent connection per peer,
/// streams on connections of their own.
///
/// Each connection starts (inside TLS, when configured) with a byte saying
/// what it carries:
///
/// ```text
/// stream:     0x01, then the stream exactly as memberlist writes it over TCP
/// datagrams:  0x02, family (4 | 6), IP (4 | 16 bytes), port (u16 BE): the
///             sender's advertised address; then frames, each a length
///             (u32 BE, at most TcpConfig::max_frame) and one datagram
/// ```
///
/// A datagram comes `from` the address its connection declared, the
/// sender's listening address (as with UDP), not the connection's
/// ephemeral port. Sending never waits: datagrams queue for the peer's
/// connection task, which dials (within [`TcpConfig::io_timeout`]) and
/// writes them in batches; a full queue or a failed connection drops them,
/// as a lossy network would, and the node's probes and retransmissions
/// cope as they do with UDP.
///
/// TLS, with the `tls` feature, is rustls on its ring provider: a server
/// certificate and key and trusted roots from PEM files, client
/// certificates required on request (mutual TLS), or rustls configurations
/// prepared by the caller (`TlsConfig`).
///
/// **Not interoperable with Go memberlist's default transport** (UDP and
/// TCP, [`UdpTcp`](crate::UdpTcp)), nor with a Go node on another custom
/// transport: every node of a cluster must use this one, with the same TLS
/// settings. Membership, gossip and the wire messages inside are
/// memberlist's, unchanged.
///
/// The sender address a datagram connection declares is trusted as UDP's
/// source address is; with mutual TLS only holders of a certificate from
/// the trusted roots can declare one. Every inbound byte count is bounded
/// ([`TcpConfig`]); a peer breaking the format loses its connection and is
/// counted in [`TcpStats`], nothing else.
pub struct Tcp<R: Runtime, S: Sockets> {
    listener: S::Listener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Outbound datagram connections by peer: the queue of each one's task.
    peers: Mutex<HashMap<SocketAddr, async_channel::Sender<Vec<u8>>>>,
    /// Inbound connections in their handshake, advanced by `accept`.
    handshakes: Mutex<FuturesUnordered<Handshake<S::Stream>>>,
    received_tx: async_channel::Sender<Received>,
    received: Mutex<Pin<Box<async_channel::Receiver<Received>>>>,
    /// Never sent on: dropped with the transport, it ends the reading tasks.
    _alive: async_channel::Sender<()>,
    closed: async_channel::Receiver<()>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime, S: Sockets> std::fmt::Debug for Tcp<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tcp")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a single map or queue operation.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl<R: Runtime, S: Sockets> Tcp<R, S> {
    /// Listens at `addr` (port 0: one the kernel picks).
    pub async fn bind(addr: SocketAddr, config: TcpConfig) -> io::Result<Self> {
        let listener = S::bind_tcp(addr).await?;
        let addr = S::tcp_local_addr(&listener)?;
        let (received_tx, received) = async_channel::bounded(config.max_received_frames.max(1));
        let (alive, closed) = async_channel::bounded(1);
        Ok(Tcp {
            listener,
            addr,
            shared: Arc::new(Shared {
                config,
                stats: TcpStats::default(),
                sender: OnceLock::new(),
                inbound: AtomicUsize::new(0),
            }),
            peers: Mutex::new(HashMap::new()),
            handshakes: Mutex::new(FuturesUnordered::new()),
            received_tx,
            received: Mutex::new(Box::pin(received)),
            _alive: alive,
            closed,
            runtime: PhantomData,
        })
    }

    /// The transport's counters (a handle that stays valid after the
    /// transport is given to a node).
    pub fn stats(&self) -> TcpStats {
        self.shared.stats.clone()
    }

    /// The address datagrams declare as their sender.
    fn sender(&self) -> SocketAddr {
        *self.shared.sender.get().unwrap_or(&self.addr)
    }

    /// Starts the handshake of an accepted connection, or closes it when
    /// too many are open.
    fn start_handshake(&self, raw: S::Stream, from: SocketAddr) {
        let shared = &self.shared;
        if shared.inbound.load(Ordering::Relaxed) >= shared.config.max_inbound {
            count(&shared.stats.0.refused);
            debug!(%from, "inbound connections at capacity; closing one");
            return;
        }
        shared.inbound.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        lock(&self.handshakes).push(Box::pin(async move {
            let deadline = R::now() + shared.config.io_timeout;
            let admitted = before::<R, _>(deadline, shared.admit(raw)).await;
            let admitted =
                admitted.unwrap_or_else(|| Err(Fault::Io(io::ErrorKind::TimedOut.into())));
            (from, admitted)
        }));
    }

    /// Queues `datagram` on the connection to `to`, starting one if none
    /// is open.
    fn enqueue(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        let config = &self.shared.config;
        if datagram.len() > config.max_frame {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "datagram longer than the transport's max_frame",
            ));
        }
        let mut peers = lock(&self.peers);
        if let Some(queue) = peers.get(&to) {
            match queue.try_send(datagram.to_vec()) {
                Ok(()) => return Ok(datagram.len()),
                Err(async_channel::TrySendError::Full(_)) => {
                    count(&self.shared.stats.0.frames_dropped);
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "too many datagrams waiting for this peer",
                    ));
                }
                // Its task ended (idle, or failed): start another.
                Err(async_channel::TrySendError::Closed(_)) => {}
            }
        }
        if !peers.contains_key(&to) && peers.len() >= config.max_peers {
            peers.retain(|_, queue| !queue.is_closed());
            if peers.len() >= config.max_peers {
                // Dropping a queue lets its task send what it holds, then end.
                if let Some(peer) = peers.keys().next().copied() {
                    peers.remove(&peer);
                }
            }
        }
        let (queue, frames) = async_channel::bounded(config.max_pending_frames.max(1));
        let _ = queue.try_send(datagram.to_vec());
        peers.insert(to, queue);
        let preamble = wire::preamble(self.sender());
        R::spawn(send_frames::<R, S>(
            self.shared.clone(),
            to,
            preamble,
            frames,
        ));
        Ok(datagram.len())
    }
}

/// One peer's outbound datagram connection: dials, then writes what is
/// queued, in batches, until idle, failed, or the transport is gone.
async fn send_frames<R: Runtime, S: Sockets>(
    shared: Arc<Shared>,
    to: SocketAddr,
    preamble: Vec<u8>,
    frames: async_channel::Receiver<Vec<u8>>,
) {
    let stats = &shared.stats.0;
    let config = &shared.config;
    let dialled = before::<R, _>(
        R::now() + config.io_timeout,
        shared.dial::<S>(to, &preamble),
    )
    .await;
    let mut conn = match dialled {
        Some(Ok(conn)) => conn,
        failed => {
            count(&stats.connect_errors);
            let queued = frames.len() as u64;
            stats.frames_dropped.fetch_add(queued, Ordering::Relaxed);
            match failed {
                Some(Err(e)) => debug!(%to, error = %e, "datagram connection failed"),
                _ => debug!(%to, "datagram connection timed out"),
            }
            return;
        }
    };
    let mut batch = Vec::new();
    loop {
        let next = before::<R, _>(R::now() + config.idle_timeout, frames.recv()).await;
        let Some(Ok(first)) = next else {
            break; // idle, or the transport is gone
        };
        batch.clear();
        wire::put_frame(&mut batch, &first);
        while let Ok(more) = frames.try_recv() {
            wire::put_frame(&mut batch, &more);
        }
        let write = async {
            conn.write_all(&batch).await?;
            conn.flush().await
        };
        match before::<R, _>(R::now() + config.io_timeout, write).await {
            Some(Ok(())) => {}
            failed => {
                count(&stats.write_errors);
                stats
                    .frames_dropped
                    .fetch_add(1 + frames.len() as u64, Ordering::Relaxed);
                debug!(%to, error = ?failed, "datagram connection failed while writing");
                return;
            }
        }
    }
    let _ = before::<R, _>(R::now() + config.io_timeout, conn.close()).await;
}

/// One peer's inbound datagram connection: hands each frame to the node
/// as a datagram from `sender`, until the peer closes, goes idle, breaks
/// the format, or the transport is gone.
async fn receive_frames<R: Runtime, St: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut conn: TcpStream<St>,
    sender: SocketAddr,
    received: async_channel::Sender<Received>,
    closed: async_channel::Receiver<()>,
) {
    let stats = &shared.stats.0;
    let config = &shared.config;
    loop {
        let idle = R::now() + config.idle_timeout * 2;
        let read = pin!(before::<R, _>(
            idle,
            wire::read_frame(&mut conn, config.max_frame)
        ));
        let frame = match select(read, pin!(closed.recv())).await {
            Either::Left((Some(Ok(Some(frame))), _)) => frame,
            Either::Left((Some(Err(fault)), _)) => {
                count(&stats.frame_errors);
                debug!(%sender, %fault, "datagram connection refused");
                break;
            }
            // Closed by the peer, idle, or the transport is gone.
            _ => break,
        };
        match received.try_send((sender, frame)) {
            Ok(()) => {}
            Err(async_channel::TrySendError::Full(_)) => count(&stats.frames_dropped),
            Err(async_channel::TrySendError::Closed(_)) => break,
        }
    }
    shared.inbound.fetch_sub(1, Ordering::Relaxed);
}

impl<R: Runtime, S: Sockets> Transport for Tcp<R, S> {
    type Stream = TcpStream<S::Stream>;

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        match lock(&self.received).as_mut().poll_next(cx) {
            Poll::Ready(Some((from, frame))) => {
                // Frames are at most max_frame; a smaller buffer truncates,
                // as a UDP socket would.
                let len = frame.len().min(buf.len());
                buf[..len].copy_from_slice(&frame[..len]);
                Poll::Ready(Ok((len, from)))
            }
            // The transport holds a sender: the queue never ends.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn send_to<'a>(
        &'a self,
        data: &'a [u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        // Never waits: a slow or dead peer must not hold up the node.
        std::future::ready(self.enqueue(data, to))
    }

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        loop {
            let handshaken = poll_fn(|cx| match lock(&self.handshakes).poll_next_unpin(cx) {
                Poll::Ready(Some(done)) => Poll::Ready(done),
                _ => Poll::Pending,
            });
            match select(pin!(S::accept(&self.listener)), pin!(handshaken)).await {
                Either::Left((Ok((raw, from)), _)) => self.start_handshake(raw, from),
                Either::Left((Err(e), _)) => return Err(e),
                Either::Right(((from, Ok(Admitted::Stream(conn))), _)) => {
                    self.shared.inbound.fetch_sub(1, Ordering::Relaxed);
                    return Ok((conn, from));
                }
                Either::Right(((_, Ok(Admitted::Datagrams(conn, sender))), _)) => {
                    R::spawn(receive_frames::<R, _>(
                        self.shared.clone(),
                        conn,
                        sender,
                        self.received_tx.clone(),
                        self.closed.clone(),
                    ));
                }
                Either::Right(((from, Err(fault)), _)) => {
                    self.shared.inbound.fetch_sub(1, Ordering::Relaxed);
                    count(&self.shared.stats.0.handshake_errors);
                    debug!(%from, %fault, "inbound connection refused");
                }
            }
        }
    }

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        self.shared.dial::<S>(to, &[wire::STREAM]).await
    }

    fn advertise(&self, addr: SocketAddr) {
        let _ = self.shared.sender.set(addr);
    }
}
