//! Nodes in turmoil's simulated network: the same node code, on a
//! [`Transport`](swim_node::Transport) whose sockets are turmoil's —
//! [`UdpTcp`] over [`TurmoilSockets`] — and on tokio's runtime, whose
//! clock turmoil simulates, so a partition of tens of seconds runs in a
//! moment and repeats exactly.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use swim_node::{Node, NodeConfig, Sockets, UdpTcp};
use swim_tests::Config;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
use turmoil::net::{TcpListener, TcpStream, UdpSocket};

/// turmoil's sockets.
struct TurmoilSockets;

type Readiness = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A turmoil UDP socket with the readiness wait a poll-based receive needs.
struct Udp {
    socket: Arc<UdpSocket>,
    readable: Mutex<Option<Readiness>>,
}

impl Sockets for TurmoilSockets {
    type Udp = Udp;
    type Listener = TcpListener;
    type Stream = Compat<TcpStream>;

    async fn bind_udp(addr: SocketAddr) -> io::Result<Udp> {
        Ok(Udp {
            socket: Arc::new(UdpSocket::bind(addr).await?),
            readable: Mutex::new(None),
        })
    }

    async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    fn tcp_local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn poll_recv_from(
        udp: &Udp,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut readable = udp.readable.lock().unwrap();
        loop {
            match udp.socket.try_recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
            let socket = udp.socket.clone();
            let wait =
                readable.get_or_insert_with(|| Box::pin(async move { socket.readable().await }));
            std::task::ready!(wait.as_mut().poll(cx))?;
            *readable = None;
        }
    }

    async fn send_to(udp: &Udp, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        udp.socket.send_to(data, to).await
    }

    async fn accept(listener: &TcpListener) -> io::Result<(Compat<TcpStream>, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        Ok((stream.compat(), from))
    }

    async fn connect(to: SocketAddr) -> io::Result<Compat<TcpStream>> {
        Ok(TcpStream::connect(to).await?.compat())
    }
}

const PORT: u16 = 7946;

/// Starts a node on this turmoil host and hands its handle out.
async fn run_node(name: &str, handles: Arc<Mutex<Vec<Node>>>) -> turmoil::Result {
    let ip = turmoil::lookup(name);
    let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT);
    let config = NodeConfig::new(bind, Config::local(name, SocketAddr::new(ip, PORT)));
    let transport = UdpTcp::<TurmoilSockets>::bind(config.bind).await?;
    let (node, _events) = swim_tokio::builder(config)
        .transport(transport)
        .start()
        .await?;
    if name != "a" {
        // The hosts start together: a may not listen yet. Retry, as an
        // agent's retry-join does.
        let seed = SocketAddr::new(turmoil::lookup("a"), PORT);
        let mut tries = 0;
        while let Err(e) = node.join(&[seed]).await {
            tries += 1;
            if tries == 10 {
                return Err(e.into());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    handles.lock().unwrap().push(node);
    // The host lives as long as the simulation.
    std::future::pending::<()>().await;
    Ok(())
}

fn members(handles: &Mutex<Vec<Node>>) -> Vec<(String, usize)> {
    let nodes = handles.lock().unwrap();
    let mut counts: Vec<(String, usize)> = nodes
        .iter()
        .map(|n| (n.local_node().name.to_string(), n.num_members()))
        .collect();
    counts.sort();
    counts
}

async fn wait_for(handles: &Mutex<Vec<Node>>, want: &[(&str, usize)], within: Duration) {
    let want: Vec<(String, usize)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    let start = tokio::time::Instant::now();
    while members(handles) != want {
        assert!(
            start.elapsed() < within,
            "after {within:?}: {:?}, want {want:?}",
            members(handles)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_partition_in_turmoil_is_detected_and_rejoined() {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(300))
        .tick_duration(Duration::from_millis(1))
        .build();
    let handles = Arc::new(Mutex::new(Vec::new()));
    for name in ["a", "b", "c"] {
        let handles = handles.clone();
        sim.host(name, move || run_node(name, handles.clone()));
    }
    let observed = handles.clone();
    sim.client("test", async move {
        let h = &*observed;
        wait_for(h, &[("a", 3), ("b", 3), ("c", 3)], Duration::from_secs(30)).await;
        // c is cut off: each side declares the other failed.
        turmoil::partition("c", "a");
        turmoil::partition("c", "b");
        wait_for(h, &[("a", 2), ("b", 2), ("c", 1)], Duration::from_secs(60)).await;
        turmoil::repair("c", "a");
        turmoil::repair("c", "b");
        let c = h
            .lock()
            .unwrap()
            .iter()
            .find(|n| &*n.local_node().name == "c")
            .cloned()
            .expect("c's handle");
        c.join(&[SocketAddr::new(turmoil::lookup("a"), PORT)])
            .await?;
        wait_for(h, &[("a", 3), ("b", 3), ("c", 3)], Duration::from_secs(30)).await;
        Ok(())
    });
    sim.run().expect("the simulation");
}
