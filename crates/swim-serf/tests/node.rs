//! `SerfNode`: three Rust Serf nodes in one process (swim-node's in-memory
//! network), the same scenario on tokio and on async-std: members and tags,
//! coordinates from acks, user events delivered exactly once everywhere
//! (and to late joiners unless they ignore old events), a leave seen as
//! `left`, a dropped node seen as `failed`.

use std::net::SocketAddr;
use std::time::Duration;

use swim_node::{DefaultTransport, MemoryNetwork, NodeBuilder, NodeConfig, Runtime, Sockets};
use swim_serf::tags::Tags;
use swim_serf::{MemberStatus, SerfConfig, SerfEvent, SerfEvents, SerfNode, SerfState};

const T: Duration = Duration::from_secs(20);

async fn sleep<R: Runtime>(d: Duration) {
    R::timer_at(R::now() + d).await
}

/// Waits until `ok` holds, polling; panics with `what` after [`T`].
async fn eventually<R: Runtime>(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = R::now() + T;
    while !ok() {
        assert!(R::now() < deadline, "timed out: {what}");
        sleep::<R>(Duration::from_millis(50)).await;
    }
}

/// Every event received so far.
fn drain(events: &SerfEvents, into: &mut Vec<SerfEvent>) {
    while let Some(e) = events.try_recv() {
        into.push(e);
    }
}

async fn scenario<R: Runtime, S: Sockets>(seed: u64) {
    let net = MemoryNetwork::new(seed);
    let mut nodes = Vec::new();
    for i in 0..3u8 {
        let addr: SocketAddr = format!("10.0.0.{}:7946", i + 1).parse().unwrap();
        let name = format!("n{i}");
        let mut swim = swim_node::swim_core::Config::local(name.clone(), addr);
        // A lone survivor has nobody to confirm a suspicion: without this
        // it waits the full Lifeguard maximum (6 × the minimum).
        swim.suspicion_max_timeout_mult = 1;
        let builder = NodeBuilder::<R, DefaultTransport<S>>::new(NodeConfig::new(addr, swim))
            .transport(net.transport(addr).unwrap());
        let mut config = SerfConfig::new(name);
        config.tags = Tags::from([("i".to_owned(), i.to_string())]);
        config.leave_propagate_delay = Duration::from_millis(300);
        nodes.push(SerfNode::start_on(builder, config).await.unwrap());
    }
    let seed_addr = nodes[0].0.node().bound_addr();
    for (n, _) in &nodes[1..] {
        assert_eq!(n.join([seed_addr], false).await.unwrap(), 1);
    }

    // Everyone lists everyone alive, with their tags.
    for (n, _) in &nodes {
        eventually::<R>("three alive members with tags", || {
            let m = n.members();
            m.len() == 3
                && m.iter().enumerate().all(|(i, m)| {
                    m.status == MemberStatus::Alive
                        && m.tags.get("i").map(String::as_str) == Some(&*i.to_string())
                })
        })
        .await;
    }

    // Acks carry coordinates: each node estimates RTTs to the others.
    for (i, (n, _)) in nodes.iter().enumerate() {
        let other = format!("n{}", (i + 1) % 3);
        eventually::<R>("a coordinate from an ack", || {
            n.estimated_rtt(&other).is_some()
        })
        .await;
        assert!(n.coordinate().unwrap().is_valid());
    }

    // New tags reach the others.
    let tags = Tags::from([("i".to_owned(), "two".to_owned())]);
    nodes[2].0.set_tags(tags.clone()).await.unwrap();
    for (n, _) in &nodes {
        eventually::<R>("n2's new tags", || {
            n.member("n2").is_some_and(|m| m.tags == tags)
        })
        .await;
    }

    // One user event from each node: each delivered once on every node.
    for (i, (n, _)) in nodes.iter().enumerate() {
        n.user_event(&format!("e{i}"), b"x", false).await.unwrap();
    }
    let mut seen: Vec<Vec<SerfEvent>> = vec![Vec::new(); 3];
    let users = |events: &[SerfEvent]| -> Vec<String> {
        let mut names: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                SerfEvent::User(u) => Some(u.name.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names
    };
    for (i, (_, events)) in nodes.iter().enumerate() {
        eventually::<R>("three user events", || {
            drain(events, &mut seen[i]);
            users(&seen[i]).len() >= 3
        })
        .await;
    }
    // Gossip had time to repeat them: still once each.
    sleep::<R>(Duration::from_secs(1)).await;
    for (i, (_, events)) in nodes.iter().enumerate() {
        drain(events, &mut seen[i]);
        assert_eq!(users(&seen[i]), ["e0", "e1", "e2"], "node n{i}");
    }

    // A late joiner that ignores old events gets none of them; one that
    // does not gets all three, once.
    for (i, ignore_old) in [(3u8, true), (4, false)] {
        let addr: SocketAddr = format!("10.0.0.{}:7946", i + 1).parse().unwrap();
        let name = format!("n{i}");
        let swim = swim_node::swim_core::Config::local(name.clone(), addr);
        let builder = NodeBuilder::<R, DefaultTransport<S>>::new(NodeConfig::new(addr, swim))
            .transport(net.transport(addr).unwrap());
        let (late, events) = SerfNode::start_on(builder, SerfConfig::new(name))
            .await
            .unwrap();
        late.join([seed_addr], ignore_old).await.unwrap();
        let mut got = Vec::new();
        eventually::<R>("the late joiner lists everyone", || {
            late.members().len() >= 4
        })
        .await;
        sleep::<R>(Duration::from_millis(500)).await;
        drain(&events, &mut got);
        let expected: &[&str] = if ignore_old { &[] } else { &["e0", "e1", "e2"] };
        assert_eq!(users(&got), expected, "ignore_old: {ignore_old}");
        late.leave().await.unwrap();
        late.shutdown().await;
    }

    // n2 leaves: the others see it `left`, with a leave event.
    let (n2, _) = nodes.pop().unwrap();
    n2.leave().await.unwrap();
    assert_eq!(n2.state(), SerfState::Left);
    for (i, (n, events)) in nodes.iter().enumerate() {
        eventually::<R>("n2 left", || {
            n.member("n2")
                .is_some_and(|m| m.status == MemberStatus::Left)
        })
        .await;
        drain(events, &mut seen[i]);
        assert!(seen[i]
            .iter()
            .any(|e| matches!(e, SerfEvent::MemberLeave(m) if m.name == "n2")));
    }
    n2.shutdown().await;

    // n1 is dropped without leaving: n0 sees it `failed`.
    let (n1, _) = nodes.pop().unwrap();
    drop(n1);
    let (n0, events) = &nodes[0];
    eventually::<R>("n1 failed", || {
        n0.member("n1")
            .is_some_and(|m| m.status == MemberStatus::Failed)
    })
    .await;
    drain(events, &mut seen[0]);
    assert!(seen[0]
        .iter()
        .any(|e| matches!(e, SerfEvent::MemberFailed(m) if m.name == "n1")));
    n0.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_tokio() {
    scenario::<swim_tokio::TokioRuntime, swim_tokio::TokioSockets>(1).await;
}

#[async_std::test]
async fn three_nodes_on_async_std() {
    scenario::<swim_async_std::AsyncStdRuntime, swim_async_std::AsyncStdSockets>(2).await;
}
