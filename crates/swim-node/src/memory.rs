//! A network in one process: [`Transport`]s that reach each other by
//! address, with datagram loss and partitions the test sets — many nodes in
//! one test, no sockets, no ports.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::Stream;

use crate::transport::Transport;

/// Datagrams waiting at one transport before more are dropped.
const INBOX: usize = 1024;

/// Bytes one direction of a stream buffers before its writer waits.
const PIPE: usize = 64 * 1024;

/// A network of [`MemoryTransport`]s in one process.
///
/// Cheap to clone: every clone is the same network. Datagrams are delivered
/// at once, in order, unless lost ([`set_loss`](Self::set_loss)) or cut
/// ([`partition`](Self::partition), [`cut`](Self::cut)); a stream to a node
/// on the other side of a cut never connects (the exchange times out, as on
/// a real network), one to an address nobody holds is refused.
///
/// ```
/// # use std::net::SocketAddr;
/// use swim_node::MemoryNetwork;
///
/// let net = MemoryNetwork::new(7);
/// let a: SocketAddr = "10.0.0.1:7946".parse().unwrap();
/// let b: SocketAddr = "10.0.0.2:7946".parse().unwrap();
/// let ta = net.transport(a).unwrap();
/// let tb = net.transport(b).unwrap();
/// assert!(net.transport(a).is_err(), "one transport per address");
/// net.partition(&[a], &[b]); // no traffic between them, either way
/// net.heal();
/// # drop((ta, tb));
/// ```
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Fabric>>,
}

impl std::fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fabric = self.lock();
        f.debug_struct("MemoryNetwork")
            .field("hosts", &fabric.hosts.len())
            .field("loss", &fabric.loss)
            .field("cuts", &fabric.cuts.len())
            .finish()
    }
}

#[derive(Default)]
struct Fabric {
    hosts: HashMap<SocketAddr, Host>,
    /// Probability that a datagram is lost.
    loss: f64,
    /// `(from, to)`: nothing from `from` reaches `to`.
    cuts: HashSet<(SocketAddr, SocketAddr)>,
    /// xorshift state for the loss draws.
    random: u64,
    next_port: u16,
}

/// Datagrams waiting, with their senders.
type Inbox = async_channel::Receiver<(Vec<u8>, SocketAddr)>;

struct Host {
    datagrams: async_channel::Sender<(Vec<u8>, SocketAddr)>,
    accepts: async_channel::Sender<(MemoryStream, SocketAddr)>,
}

impl Fabric {
    fn draw(&mut self) -> f64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn cut(&self, from: SocketAddr, to: SocketAddr) -> bool {
        self.cuts.contains(&(from, to))
    }
}

impl MemoryNetwork {
    /// An empty network whose losses are drawn from `seed`.
    pub fn new(seed: u64) -> MemoryNetwork {
        let fabric = Fabric {
            random: seed | 1,
            next_port: 40_000,
            ..Fabric::default()
        };
        MemoryNetwork {
            inner: Arc::new(Mutex::new(fabric)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Fabric> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A transport at `addr` (port 0: a free one). Fails if another
    /// transport holds the address; dropping the transport frees it.
    pub fn transport(&self, mut addr: SocketAddr) -> io::Result<MemoryTransport> {
        let mut fabric = self.lock();
        if addr.port() == 0 {
            loop {
                fabric.next_port = fabric.next_port.checked_add(1).unwrap_or(40_001);
                addr.set_port(fabric.next_port);
                if !fabric.hosts.contains_key(&addr) {
                    break;
                }
            }
        }
        if fabric.hosts.contains_key(&addr) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let (datagrams, inbox) = async_channel::bounded(INBOX);
        let (accepts, incoming) = async_channel::unbounded();
        fabric.hosts.insert(addr, Host { datagrams, accepts });
        Ok(MemoryTransport {
            network: self.clone(),
            addr,
            inbox: Mutex::new(Box::pin(inbox)),
            incoming,
        })
    }

    /// Loses each datagram with probability `rate` from now on.
    pub fn set_loss(&self, rate: f64) {
        self.lock().loss = rate.clamp(0.0, 1.0);
    }

    /// Cuts every address of `a` off from every address of `b`, both ways.
    pub fn partition(&self, a: &[SocketAddr], b: &[SocketAddr]) {
        for &x in a {
            for &y in b {
                self.cut(x, y);
                self.cut(y, x);
            }
        }
    }

    /// Nothing from `from` reaches `to` (the other way still works).
    pub fn cut(&self, from: SocketAddr, to: SocketAddr) {
        self.lock().cuts.insert((from, to));
    }

    /// Ends every cut and partition.
    pub fn heal(&self) {
        self.lock().cuts.clear();
    }
}

/// One node's end of a [`MemoryNetwork`].
pub struct MemoryTransport {
    network: MemoryNetwork,
    addr: SocketAddr,
    inbox: Mutex<Pin<Box<Inbox>>>,
    incoming: async_channel::Receiver<(MemoryStream, SocketAddr)>,
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.network.lock().hosts.remove(&self.addr);
    }
}

impl Transport for MemoryTransport {
    type Stream = MemoryStream;

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        match inbox.as_mut().poll_next(cx) {
            Poll::Ready(Some((data, from))) => {
                // A datagram longer than the buffer is truncated, as UDP's.
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Poll::Ready(Ok((n, from)))
            }
            Poll::Ready(None) => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        let mut fabric = self.network.lock();
        let lost = fabric.loss > 0.0 && fabric.draw() < fabric.loss;
        if lost || fabric.cut(self.addr, to) {
            return Ok(data.len());
        }
        if let Some(host) = fabric.hosts.get(&to) {
            // A full inbox drops the datagram, as a full socket buffer does.
            let _ = host.datagrams.try_send((data.to_vec(), self.addr));
        }
        Ok(data.len())
    }

    async fn accept(&self) -> io::Result<(MemoryStream, SocketAddr)> {
        self.incoming
            .recv()
            .await
            .map_err(|_| io::ErrorKind::NotConnected.into())
    }

    async fn connect(&self, to: SocketAddr) -> io::Result<MemoryStream> {
        let accepts = {
            let fabric = self.network.lock();
            if fabric.cut(self.addr, to) || fabric.cut(to, self.addr) {
                None
            } else {
                let host = fabric
                    .hosts
                    .get(&to)
                    .ok_or(io::ErrorKind::ConnectionRefused)?;
                Some(host.accepts.clone())
            }
        };
        let Some(accepts) = accepts else {
            // Across a cut the handshake never completes.
            return std::future::pending().await;
        };
        let (near, far) = MemoryStream::pair();
        accepts
            .send((far, self.addr))
            .await
            .map_err(|_| io::ErrorKind::ConnectionRefused)?;
        Ok(near)
    }
}

/// One direction of a stream.
#[derive(Default)]
struct Pipe {
    buf: VecDeque<u8>,
    /// The writer closed (or dropped) its end.
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// A stream between two [`MemoryTransport`]s: a pair of bounded pipes.
pub struct MemoryStream {
    read: Arc<Mutex<Pipe>>,
    write: Arc<Mutex<Pipe>>,
}

impl std::fmt::Debug for MemoryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStream")
    }
}

fn lock(pipe: &Mutex<Pipe>) -> MutexGuard<'_, Pipe> {
    pipe.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStream {
    /// Two ends of one stream.
    fn pair() -> (MemoryStream, MemoryStream) {
        let there = Arc::new(Mutex::new(Pipe::default()));
        let back = Arc::new(Mutex::new(Pipe::default()));
        (
            MemoryStream {
                read: back.clone(),
                write: there.clone(),
            },
            MemoryStream {
                read: there,
                write: back,
            },
        )
    }

    fn close_write(&self) {
        let mut pipe = lock(&self.write);
        pipe.closed = true;
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.read);
        if pipe.buf.is_empty() {
            if pipe.closed {
                return Poll::Ready(Ok(0));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(pipe.buf.len());
        for (dst, src) in buf.iter_mut().zip(pipe.buf.drain(..n)) {
            *dst = src;
        }
        if let Some(w) = pipe.writer.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.write);
        if pipe.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = PIPE.saturating_sub(pipe.buf.len());
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        pipe.buf.extend(&data[..n]);
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close_write();
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemoryStream {
    fn drop(&mut self) {
        self.close_write();
        // The other end's writes fail from now on.
        let mut pipe = lock(&self.read);
        pipe.closed = true;
        if let Some(w) = pipe.writer.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{AsyncReadExt, AsyncWriteExt};

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 7946))
    }

    fn recv(t: &MemoryTransport) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0; 64];
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        match t.poll_recv_from(&mut cx, &mut buf) {
            Poll::Ready(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
            _ => None,
        }
    }

    #[test]
    fn datagrams_arrive_unless_cut_or_lost() {
        futures_executor_block_on(async {
            let net = MemoryNetwork::new(3);
            let (a, b) = (
                net.transport(addr(1)).unwrap(),
                net.transport(addr(2)).unwrap(),
            );
            a.send_to(b"hi", addr(2)).await.unwrap();
            assert_eq!(recv(&b), Some((b"hi".to_vec(), addr(1))));
            net.cut(addr(1), addr(2));
            a.send_to(b"lost", addr(2)).await.unwrap();
            b.send_to(b"back", addr(1)).await.unwrap();
            assert_eq!(recv(&b), None, "one way cut");
            assert_eq!(recv(&a), Some((b"back".to_vec(), addr(2))));
            net.heal();
            net.set_loss(0.5);
            for _ in 0..1000 {
                a.send_to(b"x", addr(2)).await.unwrap();
            }
            let mut got = 0;
            while recv(&b).is_some() {
                got += 1;
            }
            assert!((400..600).contains(&got), "{got} of 1000 at 50 % loss");
            let port0 = net.transport("10.0.0.9:0".parse().unwrap()).unwrap();
            assert_ne!(port0.local_addr().port(), 0);
            drop(a);
            assert!(net.transport(addr(1)).is_ok(), "dropping frees the address");
        });
    }

    #[test]
    fn streams_carry_bytes_both_ways_and_end() {
        futures_executor_block_on(async {
            let net = MemoryNetwork::new(3);
            let (a, b) = (
                net.transport(addr(1)).unwrap(),
                net.transport(addr(2)).unwrap(),
            );
            let mut out = a.connect(addr(2)).await.unwrap();
            let (mut inc, from) = b.accept().await.unwrap();
            assert_eq!(from, addr(1));
            out.write_all(b"ping").await.unwrap();
            out.close().await.unwrap();
            let mut got = Vec::new();
            inc.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"ping");
            inc.write_all(b"ack").await.unwrap();
            drop(inc);
            let mut reply = Vec::new();
            out.read_to_end(&mut reply).await.unwrap();
            assert_eq!(reply, b"ack");
            assert!(a.connect(addr(9)).await.is_err(), "nobody there");
        });
    }

    /// Runs a future to completion on this thread.
    fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}
