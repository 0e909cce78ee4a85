//! The adapter suite: every scenario runs under tokio, async-std and smol,
//! over UDP and TCP; a subset runs over TCP only and over TCP with mutual
//! TLS too.
//!
//! Each scenario is an `async fn(Runtime)`; `on_every_runtime!` at the end
//! generates `on_tokio::NAME`, `on_async_std::NAME` and `on_smol::NAME`;
//! `on_every_runtime_over!` the same under `tcp::` and `tls::`.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swim_node::JoinRetries;
use swim_tests::swim_core::ExchangeError;
use swim_tests::{
    config_at, failure_detection_bound, is_departure_of, local_config, member_names,
    on_every_runtime, on_every_runtime_over, CommandError, Error, Event, JoinFailure,
    JoinFailureReason, Keyring, MemberState, NodeConfig, Runtime, SecretKey, StartError, CONVERGE,
};

/// An address nothing listens on: a port the kernel just handed out and
/// took back.
fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe listener");
    listener.local_addr().expect("its address")
}

/// Port 0 binds a real port that the node advertises; three nodes join
/// through one seed and all see each other's metadata; a join to a dead
/// address fails naming it.
async fn join_three_through_one_seed(rt: Runtime) {
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let (node, events) = rt.start(local_config(name)).await.expect("start");
        let bound = node.bound_addr();
        assert_ne!(bound.port(), 0, "port 0 must become a real port");
        assert_eq!(
            node.local_node().addr,
            bound,
            "advertised address is the bound one"
        );
        assert_eq!(node.num_members(), 1);
        node.update_meta(format!("meta-{name}").as_bytes())
            .await
            .expect("update_meta");
        assert_eq!(&*node.local_node().meta, format!("meta-{name}").as_bytes());
        nodes.push((node, events));
    }
    let seed = nodes[0].0.bound_addr();
    for (node, _) in &nodes[1..] {
        assert_eq!(node.join(&[seed]).await, Ok(1), "join through the seed");
    }
    rt.wait_until(
        CONVERGE,
        "every node to list a, b, c with their metadata",
        || {
            nodes.iter().all(|(node, _)| {
                let members = node.members();
                node.num_members() == 3
                    && members.len() == 3
                    && members
                        .iter()
                        .all(|m| *m.meta == *format!("meta-{}", m.name).as_bytes())
            })
        },
    )
    .await;
    for (node, _) in &nodes {
        assert_eq!(member_names(node), ["a", "b", "c"]);
        for m in node.members() {
            let owner = nodes
                .iter()
                .find(|(n, _)| n.local_node().name == m.name)
                .unwrap();
            assert_eq!(
                m.addr,
                owner.0.bound_addr(),
                "{} as {:?} lists it",
                m.name,
                node
            );
        }
    }

    let dead = dead_addr();
    match nodes[1].0.join(&[dead]).await {
        Err(Error::Join(failures)) => {
            assert!(
                failures.iter().any(|f| f.addr == Some(dead)),
                "the failure names {dead}: {failures:?}"
            );
            let text = Error::Join(failures).to_string();
            assert!(text.contains(&dead.to_string()), "{text:?} names {dead}");
        }
        other => panic!("join to dead {dead}: expected Error::Join, got {other:?}"),
    }
    assert_eq!(nodes[1].0.num_members(), 3, "a failed join changes nothing");
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// A join tries again while no seed answers: the seed starts listening
/// only after the first attempt failed, and the join still succeeds.
async fn join_retries_until_the_seed_answers(rt: Runtime) {
    let seed_addr = dead_addr();
    let mut config = local_config("joiner");
    config.join_retries = JoinRetries::Times(6);
    config.join_retry_delay = Duration::from_millis(100);
    let (joiner, _events) = rt.start(config).await.expect("start the joiner");
    let join = rt.spawn({
        let joiner = joiner.clone();
        async move { joiner.join(&[seed_addr]).await }
    });
    rt.sleep(Duration::from_millis(150)).await;
    let (seed, _seed_events) = rt
        .start(config_at("seed", seed_addr))
        .await
        .expect("start the seed on the address the joiner tries");
    assert_eq!(join.await.expect("joined on a retry"), 1);
    assert_eq!(seed.num_members(), 2);
    // With no retries, the same failure is the answer at once.
    let mut config = local_config("impatient");
    config.join_retries = JoinRetries::Times(0);
    let (impatient, _events) = rt.start(config).await.expect("start");
    assert!(matches!(
        impatient.join(&[dead_addr()]).await,
        Err(Error::Join(_))
    ));
    for node in [joiner, seed, impatient] {
        node.shutdown().await;
    }
}

/// update_meta reaches the others as MemberUpdated and in members();
/// set_local_state reaches a joining node as RemoteState.
async fn meta_and_state_propagate(rt: Runtime) {
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let (a, _) = &nodes[0];
    let (b, b_events) = &nodes[1];

    a.update_meta(b"v2").await.expect("update_meta");
    let event = rt
        .next_event_matching(
            b_events,
            CONVERGE,
            "MemberUpdated(a) with meta v2 at b",
            |e| matches!(e, Event::MemberUpdated(m) if &*m.name == "a" && *m.meta == *b"v2"),
        )
        .await;
    let Event::MemberUpdated(updated) = event else {
        unreachable!()
    };
    assert!(updated.incarnation > 0);
    let seen = b
        .members()
        .into_iter()
        .find(|m| &*m.name == "a")
        .expect("b lists a");
    assert_eq!(*seen.meta, *b"v2");

    a.set_local_state(b"state-of-a")
        .await
        .expect("set_local_state");
    let (c, c_events) = rt.start(local_config("c")).await.expect("start c");
    assert_eq!(c.join(&[a.bound_addr()]).await, Ok(1));
    let event = rt
        .next_event_matching(
            &c_events,
            CONVERGE,
            "RemoteState from a's join answer at c",
            |e| matches!(e, Event::RemoteState { .. }),
        )
        .await;
    assert_eq!(
        event,
        Event::RemoteState {
            join: true,
            state: b"state-of-a".to_vec()
        }
    );
    for node in [a, b, &c] {
        node.shutdown().await;
    }
}

fn user_message_with(payload: &'static [u8]) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::UserMessage { payload: p, .. } if p == payload)
}

/// Best-effort and reliable sends deliver UserMessage; unknown names are
/// refused with UnknownMember.
async fn user_messages_arrive(rt: Runtime) {
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let (a, _) = &nodes[0];
    let (b, b_events) = &nodes[1];

    a.send_best_effort("b", b"over udp")
        .await
        .expect("send_best_effort");
    let event = rt
        .next_event_matching(b_events, CONVERGE, "the UDP user message at b", |e| {
            matches!(e, Event::UserMessage { .. })
        })
        .await;
    let Event::UserMessage {
        from,
        node,
        payload,
    } = event
    else {
        unreachable!()
    };
    assert_eq!(payload, b"over udp");
    assert_eq!(from, a.bound_addr(), "a packet comes from a's port");
    assert_eq!(
        node.as_deref(),
        Some("a"),
        "a packet's source names its member"
    );

    a.send_reliable("b", b"over tcp")
        .await
        .expect("send_reliable");
    rt.next_event_matching(
        b_events,
        CONVERGE,
        "the TCP user message at b",
        user_message_with(b"over tcp"),
    )
    .await;

    let unknown = Err(Error::Command(CommandError::UnknownMember));
    assert_eq!(a.send_best_effort("nobody", b"x").await, unknown);
    assert_eq!(a.send_reliable("nobody", b"x").await, unknown);
    assert_eq!(b.ping("nobody").await.map(|_| ()), unknown);
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// Four nodes whose originator `a` transmits a user broadcast only once
/// (`retransmit_mult` 1: one gossip target), the others up to four times
/// (so one gossip round reaches all three of their peers).
fn broadcast_cluster(relay: bool, tag: &str) -> Vec<NodeConfig> {
    ["a", "b", "c", "d"]
        .iter()
        .map(|name| {
            let mut config = local_config(&format!("{name}{tag}"));
            config.swim.relay_user_broadcasts = relay;
            config.swim.retransmit_mult = if *name == "a" { 1 } else { 4 };
            config
        })
        .collect()
}

/// With relaying on in every node, a broadcast reaches every other node of
/// a four-node cluster even though its originator sends it to only one;
/// with relaying off, only that one gets it.
///
/// The transmit limits are set so the outcome is certain: with the Local
/// preset's `retransmit_mult` of 2 everywhere, each node sends a broadcast
/// to two of its three peers, and the fourth node misses it whenever both
/// relayers pick it last (about 1 in 9 broadcasts).
async fn broadcast_reaches_everyone(rt: Runtime) {
    let nodes = rt.cluster(broadcast_cluster(false, "-plain")).await;
    nodes[0].0.broadcast(b"unrelayed").await.expect("broadcast");
    rt.sleep(Duration::from_millis(1500)).await;
    let reached = nodes[1..]
        .iter()
        .filter(|(_, events)| {
            std::iter::from_fn(|| events.try_recv())
                .any(|e| matches!(e, Event::UserMessage { payload, .. } if payload == b"unrelayed"))
        })
        .count();
    assert_eq!(
        reached, 1,
        "without relaying, a's single transmission reaches one node"
    );
    for (node, _) in &nodes {
        node.shutdown().await;
    }

    let nodes = rt.cluster(broadcast_cluster(true, "")).await;
    nodes[0]
        .0
        .broadcast(b"to everyone")
        .await
        .expect("broadcast");
    for (node, events) in &nodes[1..] {
        let what = format!("the broadcast at {}", node.local_node().name);
        rt.next_event_matching(events, CONVERGE, &what, user_message_with(b"to everyone"))
            .await;
    }
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// ping answers with a round-trip time; a healthy cluster has health 0.
async fn ping_and_health(rt: Runtime) {
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let (a, _) = &nodes[0];
    let (b, _) = &nodes[1];
    for _ in 0..3 {
        let rtt = a.ping("b").await.expect("ping b");
        assert!(rtt < Duration::from_secs(1), "loopback rtt {rtt:?}");
        b.ping("a").await.expect("ping a");
    }
    // Let a few probe rounds pass: every probe is answered.
    rt.sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.health_score(), 0);
    assert_eq!(b.health_score(), 0);
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// Joins and pings run side by side, each answered under its own id: a
/// join through a seed that accepts and never answers does not hold up a
/// join through a live seed, and two pings at once both get their answer.
async fn joins_and_pings_side_by_side(rt: Runtime) {
    let (a, _a_events) = rt.start(local_config("a")).await.expect("start a");
    let (b, _b_events) = rt.start(local_config("b")).await.expect("start b");
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind a silent listener");
    silent.set_nonblocking(true).expect("nonblocking");
    let silent_addr = silent.local_addr().expect("its address");
    let stuck_done = Arc::new(AtomicBool::new(false));
    let stuck = rt.spawn({
        let (b, done) = (b.clone(), stuck_done.clone());
        async move {
            let result = b.join(&[silent_addr]).await;
            done.store(true, Ordering::SeqCst);
            result
        }
    });
    let mut accepted = None;
    rt.wait_until(CONVERGE, "b to dial the silent seed", || {
        accepted = accepted.take().or_else(|| silent.accept().ok());
        accepted.is_some()
    })
    .await;
    // The first join is now waiting for an answer that never comes.
    assert_eq!(b.join(&[a.bound_addr()]).await, Ok(1), "join through a");
    assert!(
        !stuck_done.load(Ordering::SeqCst),
        "the join through a waited for the silent seed"
    );
    let (first, second) = smol::future::zip(b.ping("a"), b.ping("a")).await;
    first.expect("first ping");
    second.expect("second ping");
    match stuck.await {
        Err(Error::Join(failures)) => assert_eq!(
            failures,
            [JoinFailure {
                seed: silent_addr.to_string(),
                addr: Some(silent_addr),
                reason: JoinFailureReason::Exchange(ExchangeError::Timeout),
            }]
        ),
        other => panic!("join through the silent seed: {other:?}"),
    }
    drop(accepted);
    for node in [a, b] {
        node.shutdown().await;
    }
}

/// leave then shutdown: the others see MemberLeft (never MemberFailed) and
/// drop the node from members().
async fn graceful_leave(rt: Runtime) {
    let nodes = rt
        .cluster(vec![
            local_config("a"),
            local_config("b"),
            local_config("c"),
        ])
        .await;
    let (c, _) = &nodes[2];
    c.leave(Duration::from_secs(5)).await.expect("leave");
    c.shutdown().await;
    for (node, events) in &nodes[..2] {
        let what = format!("c's departure at {}", node.local_node().name);
        let event = rt
            .next_event_matching(events, CONVERGE, &what, |e| is_departure_of(e, "c"))
            .await;
        assert!(
            matches!(event, Event::MemberLeft(_)),
            "expected MemberLeft, got {event:?}"
        );
        rt.wait_until(CONVERGE, "c gone from members()", || {
            member_names(node) == ["a", "b"]
        })
        .await;
    }
    for (node, _) in &nodes[..2] {
        node.shutdown().await;
    }
}

/// shutdown without leave: the others declare the node failed within the
/// bound the Local preset implies.
async fn crash_is_detected(rt: Runtime) {
    let configs = vec![local_config("a"), local_config("b"), local_config("c")];
    let bound = failure_detection_bound(&configs[0].swim, 3, Duration::from_secs(5));
    let nodes = rt.cluster(configs).await;
    let (c, _) = &nodes[2];
    c.shutdown().await;
    let crashed = Instant::now();
    // Before it is declared dead, c is listed as suspect: members() follows
    // every change, not only those that raise events.
    let a = &nodes[0].0;
    rt.wait_until(bound, "c listed as suspect at a", || {
        a.members()
            .iter()
            .any(|m| &*m.name == "c" && m.state == MemberState::Suspect)
    })
    .await;
    for (node, events) in &nodes[..2] {
        let what = format!("c's failure at {}", node.local_node().name);
        let event = rt
            .next_event_matching(
                events,
                bound.saturating_sub(crashed.elapsed()),
                &what,
                |e| is_departure_of(e, "c"),
            )
            .await;
        assert!(
            matches!(event, Event::MemberFailed(_)),
            "expected MemberFailed, got {event:?}"
        );
        assert!(!member_names(node).contains(&"c".to_string()));
    }
    eprintln!(
        "[{rt:?}] crash detected by both survivors after {:?} (bound {bound:?})",
        crashed.elapsed()
    );
    for (node, _) in &nodes[..2] {
        node.shutdown().await;
    }
}

/// Two nodes on [::1] join and see each other.
async fn ipv6_loopback(rt: Runtime) {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("[{rt:?}] skipped: cannot bind [::1]");
        return;
    }
    let bind: SocketAddr = "[::1]:0".parse().unwrap();
    let nodes = rt
        .cluster(vec![config_at("a6", bind), config_at("b6", bind)])
        .await;
    for (node, _) in &nodes {
        assert!(node.bound_addr().is_ipv6());
        assert_ne!(node.bound_addr().port(), 0);
        assert_eq!(node.local_node().addr, node.bound_addr());
        assert_eq!(member_names(node), ["a6", "b6"]);
        assert!(node.members().iter().all(|m| m.addr.is_ipv6()));
    }
    nodes[0].0.ping("b6").await.expect("ping over IPv6");
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

/// Binding 0.0.0.0 with a loopback advertise address advertises that IP
/// with the bound port; without an advertise IP, one of the host's.
async fn advertise_apart_from_bind(rt: Runtime) {
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let advertise: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = NodeConfig::new(any, swim_tests::Config::local("wide", advertise));
    let (wide, _) = rt.start(config).await.expect("start on 0.0.0.0");
    let bound = wide.bound_addr();
    assert!(bound.ip().is_unspecified());
    assert_ne!(bound.port(), 0);
    let expected: SocketAddr = SocketAddr::new(advertise.ip(), bound.port());
    assert_eq!(wide.local_node().addr, expected);

    // It is reachable at what it advertises.
    let (other, _) = rt.start(local_config("other")).await.expect("start");
    assert_eq!(other.join(&[expected]).await, Ok(1));
    rt.wait_until(CONVERGE, "both nodes listing both", || {
        wide.num_members() == 2 && other.num_members() == 2
    })
    .await;

    // Without an advertise IP it advertises an address of this host others
    // can reach (a private one first, as Go), or fails saying so. (It is
    // alone: nothing is sent to that address.)
    let config = NodeConfig::new(any, swim_tests::Config::local("auto", any));
    match rt.start(config).await {
        Ok((auto, _)) => {
            let chosen = auto.local_node().addr;
            assert!(!chosen.ip().is_loopback() && !chosen.ip().is_unspecified());
            assert_eq!(chosen.port(), auto.bound_addr().port());
            std::net::UdpSocket::bind((chosen.ip(), 0))
                .unwrap_or_else(|e| panic!("{chosen} is not an address of this host: {e}"));
            auto.shutdown().await;
        }
        Err(StartError::Advertise(why)) => assert!(why.contains("advertise"), "{why}"),
        Err(e) => panic!("expected a start or StartError::Advertise, got {e:?}"),
    }
    wide.shutdown().await;
    other.shutdown().await;
}

fn key(byte: u8) -> SecretKey {
    SecretKey::new(&[byte; 16]).expect("a 16-byte key")
}

fn keyed(name: &str, k: SecretKey) -> NodeConfig {
    let mut config = local_config(name);
    config.swim.keyring = Some(Keyring::new(k));
    config
}

/// Same key: join; other key: Error::Join and never listed; rotating the
/// key add/use/remove keeps the cluster together.
async fn encryption_and_key_rotation(rt: Runtime) {
    let nodes = rt
        .cluster(vec![keyed("a", key(1)), keyed("b", key(1))])
        .await;
    let (a, _) = &nodes[0];
    let (b, b_events) = &nodes[1];

    let (stranger, _) = rt.start(keyed("stranger", key(2))).await.expect("start");
    match stranger.join(&[a.bound_addr()]).await {
        Err(Error::Join(failures)) => {
            assert!(
                failures.iter().any(|f| f.addr == Some(a.bound_addr())),
                "{failures:?}"
            )
        }
        other => panic!("join with the wrong key: expected Error::Join, got {other:?}"),
    }
    // Give gossip and probes time to leak it, if they would.
    rt.sleep(Duration::from_millis(1500)).await;
    assert_eq!(member_names(a), ["a", "b"]);
    assert_eq!(member_names(b), ["a", "b"]);
    assert_eq!(member_names(&stranger), ["stranger"]);
    stranger.shutdown().await;

    // Rotate to key 3: install everywhere, switch everywhere, drop key 1.
    for (node, _) in &nodes {
        node.add_key(key(3)).await.expect("add_key");
    }
    for (node, _) in &nodes {
        node.use_key(key(3)).await.expect("use_key");
    }
    for (node, _) in &nodes {
        node.remove_key(key(1)).await.expect("remove_key");
    }
    // Removing the primary is refused.
    assert!(matches!(
        a.remove_key(key(3)).await,
        Err(Error::Command(CommandError::Key(_)))
    ));

    a.update_meta(b"rotated").await.expect("update_meta");
    rt.next_event_matching(
        b_events,
        CONVERGE,
        "a's new meta at b under key 3",
        |e| matches!(e, Event::MemberUpdated(m) if *m.meta == *b"rotated"),
    )
    .await;
    a.ping("b").await.expect("ping under key 3");
    // A node holding only key 3 joins; one holding only key 1 no longer can.
    let (late, _) = rt.start(keyed("late", key(3))).await.expect("start");
    assert_eq!(late.join(&[a.bound_addr()]).await, Ok(1));
    let (old, _) = rt.start(keyed("old", key(1))).await.expect("start");
    assert!(matches!(
        old.join(&[a.bound_addr()]).await,
        Err(Error::Join(_))
    ));
    rt.wait_until(CONVERGE, "a, b, late converged", || {
        [a, b, &late]
            .iter()
            .all(|n| member_names(n) == ["a", "b", "late"])
    })
    .await;
    for node in [a, b, &late, &old] {
        node.shutdown().await;
    }
}

/// The handle cloned into eight concurrent tasks: members, broadcast and
/// update_meta all succeed; Events read with recv_blocking on a thread.
async fn handle_shared_by_many_tasks(rt: Runtime) {
    let mut nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let (b, b_events) = nodes.pop().unwrap();
    let (a, _) = &nodes[0];

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let a = a.clone();
            rt.spawn(async move {
                for j in 0..10 {
                    assert_eq!(a.members().len(), 2, "task {i}");
                    a.broadcast(format!("task {i} round {j}").as_bytes())
                        .await
                        .unwrap_or_else(|e| panic!("broadcast in task {i}: {e}"));
                    a.update_meta(format!("meta {i} {j}").as_bytes())
                        .await
                        .unwrap_or_else(|e| panic!("update_meta in task {i}: {e}"));
                    assert!(a.is_running());
                }
                i
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await, i);
    }
    let last = a.local_node().meta;
    rt.wait_until(CONVERGE, "b to see a's last metadata", || {
        b.members()
            .iter()
            .any(|m| &*m.name == "a" && m.meta == last)
    })
    .await;

    // Events without async: a plain thread blocks on them.
    let reader = std::thread::spawn(move || {
        while let Some(event) = b_events.recv_blocking() {
            if let Event::UserMessage { payload, .. } = event {
                if payload == b"to a thread" {
                    return true;
                }
            }
        }
        false
    });
    a.send_reliable("b", b"to a thread")
        .await
        .expect("send_reliable");
    rt.wait_until(CONVERGE, "the reader thread to get the message", || {
        reader.is_finished()
    })
    .await;
    assert!(
        reader.join().expect("reader thread"),
        "recv_blocking saw the message"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Dropping every handle of a node shuts it down: its events end and the
/// others declare it failed.
async fn dropping_every_handle_stops_the_node(rt: Runtime) {
    let configs = vec![local_config("a"), local_config("b")];
    let bound = failure_detection_bound(&configs[0].swim, 2, Duration::from_secs(5));
    let mut nodes = rt.cluster(configs).await;
    let (b, b_events) = nodes.pop().unwrap();
    let (a, a_events) = &nodes[0];
    let clone = b.clone();
    drop(b);
    // One clone still drives it.
    rt.sleep(Duration::from_millis(300)).await;
    assert!(clone.is_running());
    assert_eq!(a.ping("b").await.map(|_| ()), Ok(()));
    drop(clone);
    let ended = rt
        .timeout(CONVERGE, async { while b_events.recv().await.is_some() {} })
        .await;
    assert!(
        ended.is_some(),
        "[{rt:?}] b's events still open {CONVERGE:?} after its last handle dropped"
    );
    let event = rt
        .next_event_matching(a_events, bound, "b's failure at a", |e| {
            is_departure_of(e, "b")
        })
        .await;
    assert!(
        matches!(event, Event::MemberFailed(_)),
        "expected MemberFailed, got {event:?}"
    );
    a.shutdown().await;
}

/// When `shutdown().await` returns the node is stopped: the handle says so,
/// its port can be bound again at once, and its events end. Repeated, as
/// the failure this guards against is a race.
async fn shutdown_is_complete_when_it_returns(rt: Runtime) {
    for i in 0..20 {
        let (node, events) = rt.start(local_config("solo")).await.expect("start");
        let bound = node.bound_addr();
        assert!(node.is_running());
        node.shutdown().await;
        assert!(
            !node.is_running(),
            "[{rt:?}] round {i}: is_running() after shutdown returned"
        );
        let tcp = std::net::TcpListener::bind(bound);
        assert!(
            tcp.is_ok(),
            "[{rt:?}] round {i}: TCP {bound} still bound after shutdown: {tcp:?}"
        );
        let udp = std::net::UdpSocket::bind(bound);
        assert!(
            udp.is_ok(),
            "[{rt:?}] round {i}: UDP {bound} still bound after shutdown: {udp:?}"
        );
        drop((tcp, udp));
        let ended = rt
            .timeout(CONVERGE, async { while events.recv().await.is_some() {} })
            .await;
        assert!(ended.is_some(), "events end after shutdown");
        assert_eq!(node.join(&[bound]).await, Err(Error::Shutdown));
        node.shutdown().await; // idempotent
    }
}

on_every_runtime!(
    join_three_through_one_seed,
    join_retries_until_the_seed_answers,
    meta_and_state_propagate,
    user_messages_arrive,
    broadcast_reaches_everyone,
    ping_and_health,
    joins_and_pings_side_by_side,
    graceful_leave,
    crash_is_detected,
    ipv6_loopback,
    advertise_apart_from_bind,
    encryption_and_key_rotation,
    handle_shared_by_many_tasks,
    dropping_every_handle_stops_the_node,
    shutdown_is_complete_when_it_returns,
);

// Over TCP only and over TCP with mutual TLS, a subset chosen to keep the
// suite's time reasonable on two cores: every path the transport changes
// (joins and push/pull on streams, datagrams on pooled connections,
// failure detection when connections are refused, encryption inside TLS,
// IPv6, advertise apart from bind, shutdown releasing the listener). The
// others exercise the node and its handle, which the transport does not
// touch. No scenario is UDP-specific.
/// The stream transports' subset, once for both.
macro_rules! over_streams {
    ($module:ident, $net:ident) => {
        on_every_runtime_over!(
            $module,
            $net,
            join_three_through_one_seed,
            user_messages_arrive,
            broadcast_reaches_everyone,
            ping_and_health,
            crash_is_detected,
            ipv6_loopback,
            advertise_apart_from_bind,
            encryption_and_key_rotation,
            shutdown_is_complete_when_it_returns,
        );
    };
}
over_streams!(tcp, Tcp);
over_streams!(tls, Tls);
