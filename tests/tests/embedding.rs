//! What a service embedding the library relies on, on tokio, async-std and
//! smol: joining by name, a delegate asked while the node runs, named
//! broadcasts, nodes on a network in memory, and a reader that falls behind
//! without losing any member's state.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_tests::swim_core::{BroadcastOutcome, DefaultDelegate, ExchangeError, Rejection};
use swim_tests::{
    failure_detection_bound, local_config, on_every_runtime, Config, Delegate, DnsServer, Error,
    Event, JoinFailureReason, Member, MemoryNetwork, Node, NodeConfig, Runtime, SrvRecord,
    CONVERGE,
};

/// Seeds by host name and DNS SRV name, and seeds that cannot work, each
/// named in the error.
async fn join_by_name(rt: Runtime) {
    let (a, _a_events) = rt.start(local_config("a")).await.expect("start a");
    let port = a.bound_addr().port();
    let dns = DnsServer::start(vec![(
        "_swim._udp.test".into(),
        vec![SrvRecord {
            target: "a.test".into(),
            ip: [127, 0, 0, 1].into(),
            port,
        }],
    )]);
    let mut config = local_config("b");
    config.dns_servers = vec![dns.addr()];
    config.default_port = Some(port);
    let (b, _b_events) = rt.start(config).await.expect("start b");

    // `localhost` may also resolve to ::1, where nobody listens: one
    // address answering is a join.
    let joined = b.join([format!("localhost:{port}")]).await;
    assert!(joined.as_ref().is_ok_and(|&n| n >= 1), "{joined:?}");
    let joined = b.join(["localhost"]).await;
    assert!(
        joined.as_ref().is_ok_and(|&n| n >= 1),
        "default port: {joined:?}"
    );
    assert_eq!(b.join(["_swim._udp.test"]).await, Ok(1), "SRV seed");

    // Text that is no seed is bad input, reported before anything is sent.
    for bad in ["seed:notaport", "[::1", "localhost:99999"] {
        match b.join([bad, "_nobody._udp.test"]).await {
            Err(Error::Seed(e)) => assert_eq!(e.seed, bad),
            other => panic!("bad seed {bad} joined: {other:?}"),
        }
    }
    match b.join(["_nobody._udp.test"]).await {
        Err(Error::Join(failures)) => {
            let seeds: Vec<&str> = failures.iter().map(|f| f.seed.as_str()).collect();
            assert_eq!(seeds, ["_nobody._udp.test"]);
            let JoinFailureReason::Resolve(why) = &failures[0].reason else {
                panic!("{failures:?}");
            };
            assert_eq!(why.kind, std::io::ErrorKind::NotFound, "{why}");
            let text = Error::Join(failures).to_string();
            assert!(text.contains("_nobody._udp.test"), "{text}");
        }
        other => panic!("an unknown name joined: {other:?}"),
    }
    rt.wait_until(CONVERGE, "a and b to list each other", || {
        a.num_members() == 2 && b.num_members() == 2
    })
    .await;
    for node in [a, b] {
        node.shutdown().await;
    }
}

/// A service's answers: members it refuses, its state for each push/pull,
/// a payload for its acks, and broadcasts it hands out itself.
#[derive(Default)]
struct Service {
    states: Arc<AtomicUsize>,
    outbox: Arc<Mutex<VecDeque<Vec<u8>>>>,
}

impl Delegate for Service {
    fn allow_alive(&mut self, member: &Member) -> bool {
        &*member.name != "intruder"
    }

    fn local_state(&mut self, join: bool) -> Option<Vec<u8>> {
        let n = self.states.fetch_add(1, Ordering::SeqCst) + 1;
        Some(format!("state {n} join={join}").into_bytes())
    }

    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        Some(b"ack from a".to_vec())
    }

    fn has_broadcasts(&self) -> bool {
        !self.outbox.lock().unwrap().is_empty()
    }

    fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let mut outbox = self.outbox.lock().unwrap();
        match outbox.front() {
            Some(next) if next.len() + overhead <= limit => {
                outbox.pop_front().into_iter().collect()
            }
            _ => Vec::new(),
        }
    }
}

async fn a_delegate_is_asked_while_the_node_runs(rt: Runtime) {
    let service = Service::default();
    let (states, outbox) = (service.states.clone(), service.outbox.clone());
    let (a, _a_events) = rt
        .start_with(local_config("a"), None, Box::new(service))
        .await
        .expect("start a");
    let (b, b_events) = rt.start(local_config("b")).await.expect("start b");
    assert_eq!(b.join(&[a.bound_addr()]).await, Ok(1));
    // The join's push/pull asked a for its state, saying it was a join.
    let state = rt
        .next_event_matching(&b_events, CONVERGE, "a's state", |e| {
            matches!(e, Event::RemoteState { .. })
        })
        .await;
    assert_eq!(
        state,
        Event::RemoteState {
            join: true,
            state: b"state 1 join=true".to_vec()
        }
    );
    assert!(states.load(Ordering::SeqCst) >= 1);
    // What a hands out reaches b (its only other member).
    outbox.lock().unwrap().push_back(b"pulled".to_vec());
    rt.next_event_matching(
        &b_events,
        CONVERGE,
        "the pulled broadcast",
        |e| matches!(e, Event::UserMessage { payload, .. } if payload == b"pulled"),
    )
    .await;
    // b's probes of a come back with a's payload.
    rt.next_event_matching(&b_events, CONVERGE, "a probe ack with a's payload", |e| {
        matches!(e, Event::ProbeAcked { node, payload, .. } if &**node == "a" && payload == b"ack from a")
    })
    .await;
    // a refuses the intruder, whatever the intruder believes.
    let (intruder, _i_events) = rt
        .start(local_config("intruder"))
        .await
        .expect("start intruder");
    // ... and the intruder is told: the join is refused, not counted.
    match intruder.join(&[a.bound_addr()]).await {
        Err(Error::Join(failures)) => {
            assert_eq!(
                failures[0].reason,
                JoinFailureReason::Exchange(ExchangeError::NotAccepted),
                "{failures:?}"
            );
            let text = Error::Join(failures).to_string();
            assert!(text.contains("refused"), "{text}");
        }
        other => panic!("a refused node joined: {other:?}"),
    }
    rt.sleep(Duration::from_millis(500)).await;
    assert!(a.members().iter().all(|m| &*m.name != "intruder"));
    let stats = a.stats().await.expect("stats");
    assert!(stats.core.rejected_for(Rejection::AliveFiltered) > 0);
    for node in [a, b, intruder] {
        node.shutdown().await;
    }
}

async fn named_broadcasts_keep_only_the_latest_value(rt: Runtime) {
    let nodes = rt.cluster(vec![local_config("a"), local_config("b")]).await;
    let ((a, a_events), (_, b_events)) = (&nodes[0], &nodes[1]);
    let v1 = a.broadcast_named("leader", b"v1").await.expect("v1");
    let v2 = a.broadcast_named("leader", b"v2").await.expect("v2");
    let finished = rt
        .next_event_matching(a_events, CONVERGE, "v1 replaced", |e| {
            matches!(e, Event::BroadcastFinished { .. })
        })
        .await;
    assert_eq!(
        finished,
        Event::BroadcastFinished {
            id: v1,
            outcome: BroadcastOutcome::Replaced
        }
    );
    let mut heard = Vec::new();
    rt.next_event_matching(b_events, CONVERGE, "v2 at b", |e| {
        if let Event::UserMessage { payload, .. } = e {
            heard.push(payload.clone());
        }
        heard.last().is_some_and(|p| p == b"v2")
    })
    .await;
    assert!(!heard.contains(&b"v1".to_vec()), "{heard:?}");
    let sent = rt
        .next_event_matching(a_events, CONVERGE, "v2 sent", |e| {
            matches!(e, Event::BroadcastFinished { .. })
        })
        .await;
    assert_eq!(
        sent,
        Event::BroadcastFinished {
            id: v2,
            outcome: BroadcastOutcome::Sent
        }
    );
    for (node, _) in &nodes {
        node.shutdown().await;
    }
}

fn memory_addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

/// Local timings, with push/pull every 2 s so a healed partition repairs fast.
fn memory_config(name: &str, addr: SocketAddr) -> NodeConfig {
    let mut config = Config::local(name, addr);
    config.push_pull_interval = Duration::from_secs(2);
    NodeConfig::new(addr, config)
}

async fn start_in_memory(rt: Runtime, net: &MemoryNetwork, name: &str, i: u8) -> Node {
    let addr = memory_addr(i);
    let transport = net.transport(addr).expect("a free address");
    let (node, _events) = rt
        .start_with(
            memory_config(name, addr),
            Some(transport),
            Box::new(DefaultDelegate),
        )
        .await
        .expect("start");
    node
}

async fn nodes_on_a_network_in_memory(rt: Runtime) {
    let net = MemoryNetwork::new(5);
    let mut nodes = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        nodes.push(start_in_memory(rt, &net, name, i as u8 + 1).await);
    }
    for node in &nodes[1..] {
        assert_eq!(node.join(&[memory_addr(1)]).await, Ok(1));
    }
    let all_see = |n: usize| nodes.iter().all(|node| node.num_members() == n);
    rt.wait_until(CONVERGE, "three nodes listing three", || all_see(3))
        .await;

    // c is cut off: each side declares the other failed.
    net.partition(&[memory_addr(3)], &[memory_addr(1), memory_addr(2)]);
    let bound = failure_detection_bound(&Config::local("x", memory_addr(9)), 3, CONVERGE);
    rt.wait_until(bound, "each side to drop the other", || {
        nodes[0].num_members() == 2 && nodes[1].num_members() == 2 && nodes[2].num_members() == 1
    })
    .await;
    // As in memberlist, nothing probes or pushes to members believed dead:
    // after the partition heals, c rejoins (as Serf's reconnect would).
    net.heal();
    assert_eq!(nodes[2].join(&[memory_addr(1)]).await, Ok(1));
    rt.wait_until(CONVERGE, "the healed cluster to list three", || all_see(3))
        .await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// While a node's reader reads nothing, members join, crash and leave; then
/// the reader reads every member's final state, and the queue held at most
/// one membership event per member.
async fn a_slow_reader_still_sees_every_final_state(rt: Runtime) {
    let net = MemoryNetwork::new(9);
    let addr = memory_addr(1);
    let mut config = memory_config("observer", addr);
    // Few events other than membership ones are kept: the messages sent
    // below overflow it.
    config.event_capacity = 4;
    let (observer, events) = rt
        .start_with(
            config,
            Some(net.transport(addr).unwrap()),
            Box::new(DefaultDelegate),
        )
        .await
        .expect("start the observer");
    let mut others = Vec::new();
    for i in 2..18u8 {
        let node = start_in_memory(rt, &net, &format!("n{i}"), i).await;
        assert_eq!(node.join(&[addr]).await, Ok(1));
        others.push(node);
    }
    rt.wait_until(CONVERGE, "the observer to list 17 members", || {
        observer.num_members() == 17
    })
    .await;
    // More messages than the queue keeps; sent reliably, so all arrive.
    for i in 0..8u8 {
        let sender = &others[6];
        sender.send_reliable("observer", &[i]).await.expect("send");
    }
    // Four crash, two leave; the rest stay.
    let leaving = &others[..6];
    for node in &leaving[..4] {
        node.shutdown().await;
    }
    for node in &leaving[4..] {
        node.leave(Duration::from_secs(2)).await.expect("leave");
        node.shutdown().await;
    }
    let bound = failure_detection_bound(&Config::local("x", addr), 17, CONVERGE);
    rt.wait_until(bound, "the observer to drop the six", || {
        observer.num_members() == 11
    })
    .await;
    // A membership slot and a probe-notice slot per member, and the four
    // other events kept.
    assert!(
        events.len() <= 2 * 17 + 4,
        "{} events queued for 17 members",
        events.len()
    );

    let mut last: BTreeMap<String, Event> = BTreeMap::new();
    while let Some(event) = events.try_recv() {
        if let Event::MemberJoined(m)
        | Event::MemberUpdated(m)
        | Event::MemberLeft(m)
        | Event::MemberFailed(m) = &event
        {
            last.insert(m.name.to_string(), event.clone());
        }
    }
    for (i, node) in others.iter().enumerate() {
        let name = format!("n{}", i + 2);
        // A member that left may be found failed first if its departure
        // reached the observer late (as in memberlist): both are departures.
        let want = if i < 6 { "departed" } else { "in" };
        let got = match last.get(&name) {
            Some(Event::MemberFailed(_) | Event::MemberLeft(_)) => "departed",
            Some(Event::MemberJoined(_) | Event::MemberUpdated(_)) => "in",
            _ => "nothing",
        };
        assert_eq!(got, want, "{name}'s last event");
        if i >= 6 {
            node.shutdown().await;
        }
    }
    let stats = observer.stats().await.expect("stats");
    assert!(
        stats.events_dropped >= 4,
        "8 messages overflowed a queue of 4: {} dropped",
        stats.events_dropped
    );
    observer.shutdown().await;
}

on_every_runtime!(
    join_by_name,
    a_delegate_is_asked_while_the_node_runs,
    named_broadcasts_keep_only_the_latest_value,
    nodes_on_a_network_in_memory,
    a_slow_reader_still_sees_every_final_state,
);
