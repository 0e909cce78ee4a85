//! Every command says what really happened: sends the socket or a limit
//! refused, joins the cluster refused, seeds that are no seeds, the OS's
//! reason a connection failed, and who sent a user message.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use swim_node::JoinRetries;
use swim_tests::swim_core::{CommandError, Config, ExchangeError, IoKind};
use swim_tests::{
    local_config, on_runtime, Error, Event, JoinFailureReason, MemoryNetwork, NodeConfig, Rng,
    Runtime,
};

const CONVERGE: Duration = Duration::from_secs(5);

fn too_large(result: Result<impl std::fmt::Debug, Error>) -> (usize, String) {
    match result {
        Err(e @ Error::Command(CommandError::PayloadTooLarge { limit, .. })) => {
            (limit, e.to_string())
        }
        other => panic!("not refused as too large: {other:?}"),
    }
}

/// Finding 1: a datagram the socket refuses is an error, not `Ok(())`.
async fn best_effort_sends_report_the_socket_error(rt: Runtime) {
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let (a, _) = &nodes[0];
    // Over UDP's 65,507 bytes, and incompressible.
    let payload = Rng::new(1).bytes(100_000);
    match a.send_best_effort("b", &payload).await {
        Err(Error::Datagram { to, kind, message }) => {
            assert_eq!(to, nodes[1].0.bound_addr());
            assert_ne!(kind, ErrorKind::WouldBlock, "{message}");
        }
        other => panic!("a datagram of 100,000 bytes was sent: {other:?}"),
    }
    assert_eq!(a.send_best_effort("b", b"small").await, Ok(()));
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// Finding 2: payloads are checked against the limits that will apply,
/// and the error names the limit.
async fn payloads_over_a_limit_are_refused_with_the_limit(rt: Runtime) {
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let (a, _) = &nodes[0];
    // Over the receiver's max_user_message (20 MiB) and its event queue.
    let (limit, text) = too_large(a.send_reliable("b", &vec![7; 25 << 20]).await);
    assert!(limit <= 20 << 20, "{text}");
    // Under max_user_message, over the receiver's event queue (4 MiB).
    let (limit, text) = too_large(a.send_reliable("b", &vec![7; 8 << 20]).await);
    assert_eq!(limit, 4 << 20, "{text}");
    assert!(text.contains("event_bytes"), "{text}");
    // A broadcast must fit a packet; the error says how much does.
    let (limit, text) = too_large(a.broadcast(&[1; 2000]).await);
    assert!(limit < 1400 && text.contains(&limit.to_string()), "{text}");
    assert!(a.send_reliable("b", &vec![7; 1 << 20]).await.is_ok());
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// Finding 3: joining under a name a live member holds is refused, and
/// the owner's peers hear of the conflict once.
async fn a_join_under_a_taken_name_is_refused(rt: Runtime) {
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let ((a, a_events), (b, _)) = (&nodes[0], &nodes[1]);
    while a_events.try_recv().is_some() {}
    let (impostor, _) = rt.start(local_config("b")).await.expect("start");
    match impostor.join(&[a.bound_addr()]).await {
        Err(Error::Join(failures)) => {
            let JoinFailureReason::Exchange(ExchangeError::NameTaken { addr }) = failures[0].reason
            else {
                panic!("{failures:?}");
            };
            assert_eq!(addr, b.bound_addr());
            let text = Error::Join(failures).to_string();
            assert!(text.contains("refused") && text.contains("taken"), "{text}");
        }
        other => panic!("joined under a taken name: {other:?}"),
    }
    rt.sleep(Duration::from_secs(3)).await;
    let mut conflicts = 0;
    while let Some(event) = a_events.try_recv() {
        conflicts += matches!(event, Event::NameConflict { .. }) as usize;
    }
    assert!(conflicts <= 1, "{conflicts} conflict events in 3 s");
    assert_eq!(a.num_members(), 2);
    for node in [a, b, &impostor] {
        node.shutdown().await;
    }
}

/// Finding 4: the OS's reason survives; bad input fails before any work.
async fn join_failures_keep_their_cause(rt: Runtime) {
    let mut config = local_config("a");
    config.join_retries = JoinRetries::Times(0);
    let (a, _) = rt.start(config).await.expect("start");
    // A port nothing listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    match a.join(&[closed]).await {
        Err(Error::Join(failures)) => assert_eq!(
            failures[0].reason,
            JoinFailureReason::Exchange(ExchangeError::Io(IoKind::ConnectionRefused)),
            "{failures:?}"
        ),
        other => panic!("{other:?}"),
    }
    let started = std::time::Instant::now();
    match a.join(["localhost:99999"]).await {
        Err(Error::Seed(e)) => assert_eq!(e.seed, "localhost:99999"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(100));
    a.shutdown().await;
}

/// Finding 7: a user message names its sender where the protocol lets us
/// know it: a datagram by its source, a stream by its peer's IP when one
/// member advertises it.
async fn user_messages_name_their_sender(rt: Runtime) {
    let net = MemoryNetwork::new(3);
    let mut nodes = Vec::new();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let addr: SocketAddr = format!("10.0.0.{}:7946", i + 1).parse().unwrap();
        let config = NodeConfig::new(addr, Config::local(name, addr));
        let node = rt
            .start_with(
                config,
                Some(net.transport(addr).unwrap()),
                Box::new(swim_tests::swim_core::DefaultDelegate),
            )
            .await
            .expect("start");
        nodes.push(node);
    }
    let ((a, _), (b, b_events)) = (&nodes[0], &nodes[1]);
    assert_eq!(b.join(&[a.bound_addr()]).await, Ok(1));
    for reliable in [false, true] {
        if reliable {
            a.send_reliable("b", b"hi").await.expect("send");
        } else {
            a.send_best_effort("b", b"hi").await.expect("send");
        }
        let event = rt
            .next_event_matching(b_events, CONVERGE, "the message", |e| {
                matches!(e, Event::UserMessage { .. })
            })
            .await;
        let Event::UserMessage { node, from, .. } = event else {
            unreachable!()
        };
        assert_eq!(
            node.as_deref(),
            Some("a"),
            "reliable: {reliable}, from {from}"
        );
    }
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

on_runtime!(
    on_tokio,
    Tokio,
    UdpTcp,
    best_effort_sends_report_the_socket_error,
    payloads_over_a_limit_are_refused_with_the_limit,
    a_join_under_a_taken_name_is_refused,
    join_failures_keep_their_cause,
    user_messages_name_their_sender,
);
