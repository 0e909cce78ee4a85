//! The `Tcp` transport beyond the adapter suite (which runs a subset over
//! it, plaintext and with mutual TLS): TLS keeps out whoever lacks a
//! trusted certificate, and plaintext and TLS nodes cannot talk; a peer
//! breaking the framing loses its connection and nothing else. On every
//! runtime.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use swim_tests::swim_core::ExchangeError;
use swim_tests::{
    local_config, on_every_runtime, pki, Error, NodeConfig, Runtime, TcpConfig, TlsConfig,
};
use swim_tests::{JoinFailureReason, TcpStats, CONVERGE};

fn over(tls: Option<TlsConfig>) -> TcpConfig {
    let mut config = TcpConfig::default();
    config.tls = tls;
    config
}

/// A node that tries a join once, at once.
fn impatient(name: &str) -> NodeConfig {
    let mut config = local_config(name);
    config.join_retries = swim_node::JoinRetries::Times(0);
    config
}

/// Waits until `stats` counted more handshake errors than `before`.
async fn handshake_refused(rt: Runtime, stats: &TcpStats, before: u64, what: &str) {
    rt.wait_until(CONVERGE, what, || stats.handshake_errors() > before)
        .await;
}

/// Three nodes with TLS but no client certificates form a cluster and
/// reach each other by datagram (ping) and by stream (reliable message).
async fn cluster_forms_over_server_only_tls(rt: Runtime) {
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let tcp = over(Some(pki::node_tls(false)));
        let (node, events, _) = rt.start_tcp(local_config(name), tcp).await.expect("start");
        nodes.push((node, events));
    }
    let seed = nodes[0].0.bound_addr();
    for (node, _) in &nodes[1..] {
        assert_eq!(node.join(&[seed]).await, Ok(1));
    }
    rt.wait_until(CONVERGE, "all three listing three", || {
        nodes.iter().all(|(n, _)| n.num_members() == 3)
    })
    .await;
    nodes[1].0.ping("c").await.expect("a ping over TLS");
    nodes[2]
        .0
        .send_reliable("a", b"sealed")
        .await
        .expect("a reliable message over TLS");
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// With mutual TLS a node refuses a peer that presents no certificate and
/// one whose certificate another authority signed: their joins fail, and
/// neither side lists the other.
async fn mutual_tls_refuses_untrusted_clients(rt: Runtime) {
    let (a, _, stats) = rt
        .start_tcp(local_config("a"), over(Some(pki::node_tls(true))))
        .await
        .expect("start a");
    let strangers = [
        ("anonymous", pki::node_tls(false)),
        ("stranger", pki::rogue_tls(true)),
    ];
    for (name, tls) in strangers {
        let (x, _, _) = rt
            .start_tcp(impatient(name), over(Some(tls)))
            .await
            .expect("start the stranger");
        let before = stats.handshake_errors();
        let joined = x.join(&[a.bound_addr()]).await;
        assert!(
            matches!(joined, Err(Error::Join(_))),
            "[{rt:?}] {name}'s join must fail: {joined:?}"
        );
        handshake_refused(
            rt,
            &stats,
            before,
            &format!("a refusing {name}'s handshake"),
        )
        .await;
        assert_eq!(a.num_members(), 1, "a lists no {name}");
        assert_eq!(x.num_members(), 1, "{name} lists no a");
        x.shutdown().await;
    }
    a.shutdown().await;
}

/// A plaintext node and a TLS node cannot talk, whichever dials.
async fn plaintext_and_tls_nodes_cannot_talk(rt: Runtime) {
    let (sealed, _, sealed_stats) = rt
        .start_tcp(impatient("sealed"), over(Some(pki::node_tls(true))))
        .await
        .expect("start the TLS node");
    let (plain, _, plain_stats) = rt
        .start_tcp(impatient("plain"), over(None))
        .await
        .expect("start the plaintext node");
    let before = sealed_stats.handshake_errors();
    let Err(Error::Join(failures)) = plain.join(&[sealed.bound_addr()]).await else {
        panic!("a plaintext node joined a TLS one");
    };
    assert_eq!(
        failures[0].reason,
        JoinFailureReason::Exchange(ExchangeError::PeerSpeaksTls),
        "the plaintext side is told the peer speaks TLS"
    );
    handshake_refused(rt, &sealed_stats, before, "the TLS node refusing plaintext").await;
    let before = plain_stats.handshake_errors();
    assert!(matches!(
        sealed.join(&[plain.bound_addr()]).await,
        Err(Error::Join(_))
    ));
    handshake_refused(rt, &plain_stats, before, "the plaintext node refusing TLS").await;
    assert_eq!((sealed.num_members(), plain.num_members()), (1, 1));
    sealed.shutdown().await;
    plain.shutdown().await;
}

/// Writes `bytes` to `to` on a connection of its own and reports whether
/// the node then closed it (within a few seconds).
fn closed_after(to: SocketAddr, bytes: Vec<u8>) -> bool {
    std::thread::spawn(move || {
        let mut conn = std::net::TcpStream::connect(to).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a timeout");
        conn.write_all(&bytes).expect("write");
        // Closed with our bytes unread, the connection may be reset.
        match conn.read(&mut [0u8; 16]) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    })
    .join()
    .expect("the raw client")
}

/// An unknown connection kind, an unknown address family and a frame
/// longer than the limit each cost the peer its connection, are counted,
/// and leave the node serving others.
async fn a_peer_breaking_the_framing_loses_its_connection(rt: Runtime) {
    let (a, _, stats) = rt
        .start_tcp(local_config("a"), over(None))
        .await
        .expect("start a");
    let to = a.bound_addr();
    assert!(closed_after(to, vec![0x7f]), "an unknown kind is refused");
    assert!(
        closed_after(to, vec![0x02, 9, 1, 2]),
        "an unknown family is refused"
    );
    let mut oversized = vec![0x02, 4, 127, 0, 0, 1, 0x1e, 0x9a];
    oversized.extend_from_slice(&(1u32 << 20).to_be_bytes());
    assert!(closed_after(to, oversized), "an oversized frame is refused");
    rt.wait_until(CONVERGE, "the faults counted", || {
        stats.handshake_errors() == 2 && stats.frame_errors() == 1
    })
    .await;
    let (b, _, _) = rt
        .start_tcp(local_config("b"), over(None))
        .await
        .expect("start b");
    assert_eq!(b.join(&[to]).await, Ok(1), "a still serves others");
    a.shutdown().await;
    b.shutdown().await;
}

on_every_runtime!(
    cluster_forms_over_server_only_tls,
    mutual_tls_refuses_untrusted_clients,
    plaintext_and_tls_nodes_cannot_talk,
    a_peer_breaking_the_framing_loses_its_connection,
);
