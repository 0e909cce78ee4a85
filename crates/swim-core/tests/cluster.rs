//! Several `Swim` nodes wired through an in-memory network: joins,
//! convergence, failure detection, refutation, leave, metadata, broadcasts,
//! encryption, push/pull repair and determinism.

use std::net::SocketAddr;
use std::time::Duration;

use swim_core::wire::{Accusation, Keyring, Message, SecretKey, Transport};
use swim_core::{
    CommandError, Config, DefaultDelegate, Event, ExchangeError, Instant, MemberState, Output,
    Rejection, StreamId, Swim,
};

mod common;

use common::*;

#[test]
fn nodes_join_and_converge() {
    let mut c = Cluster::local(8);
    c.bootstrap();
    for i in 0..8 {
        let joined = c.nodes[i]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::JoinCompleted { joined: 1, .. }));
        assert!(i == 0 || joined, "node {i} joined");
        // The seed's state arrives with the join itself.
        assert!(
            c.nodes[i].swim.member_counts().alive >= i.min(2),
            "node {i} knows the seed"
        );
    }
    c.bootstrap();
    for n in &c.nodes {
        assert_eq!(n.swim.member_counts().alive, 8);
    }
}

#[test]
fn silenced_node_is_detected_by_all_within_the_suspicion_bound() {
    const N: usize = 6;
    const SILENCED: usize = N - 1;
    let mut c = Cluster::local(N);
    c.bootstrap();
    assert!(c.converged(&[0, 1, 2, 3, 4, 5]));
    let config = c.nodes[0].swim.config().clone();
    let t = config.suspicion_timeouts(N);
    // Local, n = 6: min = 3 × 1 s (log10 6 < 1), max = 6 × min, and one
    // confirmation (k = suspicion_mult − 2) brings a suspicion down to min.
    assert_eq!(t.confirmations, 1);
    let crash = c.now;
    c.nodes[SILENCED].down = true;
    // Without any confirmation, Lifeguard's upper bound: every observer has
    // started a probe of it within two rounds of its shuffled table, the
    // probe fails, the suspicion runs to max, the death is gossiped. Only a
    // cap on the run: it stops once every observer holds it failed.
    let rounds = config.probe_interval * (2 * (N as u32 - 1));
    let cap = crash + rounds + config.probe_interval + t.max + config.gossip_interval;
    let failed_at = |c: &Cluster, o: usize| {
        c.nodes[o].events.iter().find_map(|(at, e)| {
            matches!(e, Event::MemberFailed(m) if *m.name == *format!("node-{SILENCED}"))
                .then_some(*at)
        })
    };
    while (0..SILENCED).any(|o| failed_at(&c, o).is_none()) && c.now < cap {
        c.run_for(config.gossip_interval);
    }
    // The bound, from the first probes of the silenced node by two different
    // observers (their pings at p1, then p2):
    // * a probe fails at its deadline, probe_interval after its ping: the
    //   direct ack is awaited for probe_timeout, then indirect_checks relays
    //   (and the TCP fallback) until the deadline. The relays' nacks keep
    //   the health score at 0, so the deadline is not scaled;
    // * the first accuser suspects at p1 + probe_interval and holds the
    //   suspicion for min once the one confirmation has come: the second
    //   observer's own accusation, p2 + probe_interval, gossiped within a
    //   gossip interval (and a hop's latency) to the first;
    // * the death then reaches every observer within a gossip interval
    //   more (each may also declare it on its own timer, sooner).
    // Here p1 + 1 s + 3 s + 0.1 s: a probe period or a suspicion second
    // more, and the assertion below fails.
    let mut accusers: Vec<(Instant, usize)> = Vec::new();
    for &(at, from, to) in &c.probes_of_silenced {
        if to == SILENCED && at >= crash && accusers.iter().all(|&(_, o)| o != from) {
            accusers.push((at, from));
        }
    }
    let [(p1, _), (p2, _), ..] = accusers[..] else {
        panic!("fewer than two observers probed the silenced node: {accusers:?}");
    };
    let hop = config.gossip_interval + c.latency;
    let confirmed = (p1 + config.probe_interval + t.min).max(p2 + config.probe_interval + hop);
    let bound = confirmed + hop;
    for o in 0..SILENCED {
        assert_eq!(c.nodes[o].swim.health_score(), 0, "observer {o}");
        // Long before gossip_to_the_dead_time could reap it.
        assert_eq!(
            c.state_of(o, SILENCED),
            Some(MemberState::Dead),
            "observer {o}"
        );
        let at = failed_at(&c, o).expect("failure event");
        assert!(
            at <= bound,
            "observer {o} detected the failure {:?} after the crash, bound {:?}",
            at.saturating_duration_since(crash),
            bound.saturating_duration_since(crash)
        );
    }
    assert!(
        c.converged(&[0, 1, 2, 3, 4]),
        "no false positives among the live"
    );
}

#[test]
fn a_false_suspicion_is_refuted() {
    let mut c = Cluster::local(5);
    c.bootstrap();
    let before = c.nodes[0].swim.member("node-2").unwrap().incarnation;
    // Node 0 wrongly accuses node 2 to node 1; the rumour spreads, reaches
    // node 2 (the buddy system sends it along with probes too), and node 2
    // refutes it with a higher incarnation before anyone declares it dead.
    let mut packet = Vec::new();
    let accusation = Accusation {
        incarnation: before,
        node: "node-2",
        from: "node-0",
    };
    Message::Suspect(accusation).encode(Transport::Packet, &mut packet);
    let now = c.now;
    c.nodes[1].swim.handle_packet(now, addr(0), &packet);
    c.drain(1);
    assert_eq!(c.state_of(1, 2), Some(MemberState::Suspect));
    c.run_for(secs(20));
    assert!(c.converged(&[0, 1, 2, 3, 4]));
    let after = c.nodes[1].swim.member("node-2").unwrap().incarnation;
    assert!(
        after > before,
        "node 2 refuted with a higher incarnation ({before} -> {after})"
    );
    assert!(c.nodes[2].swim.stats().refutations >= 1);
    for o in 0..5 {
        assert!(!c.nodes[o]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberFailed(_))));
    }
}

#[test]
fn a_short_outage_is_survived() {
    let mut c = Cluster::local(5);
    c.bootstrap();
    // Silent for one probe round: perhaps suspected, never declared dead
    // (local config: the suspicion lasts at least 3 s).
    c.nodes[2].down = true;
    c.run_for(Duration::from_millis(1500));
    c.nodes[2].down = false;
    c.run_for(secs(20));
    assert!(c.converged(&[0, 1, 2, 3, 4]));
    assert!(!c.nodes.iter().any(|n| n
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::MemberFailed(_)))));
}

#[test]
fn leave_is_seen_as_a_departure_not_a_failure() {
    let mut c = Cluster::local(5);
    c.bootstrap();
    let now = c.now;
    c.nodes[4].swim.leave(now, secs(5));
    c.drain(4);
    c.run_for(secs(3));
    assert!(c.nodes[4]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::LeaveCompleted { timed_out: false })));
    c.nodes[4].down = true; // shut down after leaving
    c.run_for(secs(20));
    for o in 0..4 {
        let state = c.state_of(o, 4);
        assert!(
            matches!(state, Some(MemberState::Left) | None),
            "observer {o}: {state:?}"
        );
        assert!(c.nodes[o]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberLeft(m) if &*m.name == "node-4")));
        assert!(!c.nodes[o]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberFailed(_))));
    }
}

#[test]
fn metadata_updates_reach_everyone() {
    let mut c = Cluster::local(6);
    c.bootstrap();
    let now = c.now;
    c.nodes[3].swim.update_meta(now, b"role=db").unwrap();
    c.drain(3);
    // Gossip sends each update a few times (2 × digits of n), so with six nodes one may be
    // missed; the periodic push/pull (within stagger + 15 s, Local) repairs that.
    c.run_for(secs(31));
    for o in 0..6 {
        let m = c.nodes[o].swim.member("node-3").unwrap();
        assert_eq!(&*m.meta, b"role=db", "observer {o}");
        if o != 3 {
            assert!(c.nodes[o]
                .events
                .iter()
                .any(|(_, e)| matches!(e, Event::MemberUpdated(m) if &*m.name == "node-3")));
        }
    }
}

#[test]
fn an_idle_node_is_woken_for_probes_not_for_every_gossip_tick() {
    let mut c = Cluster::local(5);
    c.bootstrap();
    c.run_for(secs(20)); // every join announcement has been retransmitted
    assert!(c.nodes.iter().all(|n| n.swim.broadcast_queue_len() == 0));
    for n in &mut c.nodes {
        n.wakeups = 0;
    }
    c.run_for(secs(10));
    for (i, n) in c.nodes.iter().enumerate() {
        // 10 probe ticks (and a push/pull); gossip every 100 ms alone
        // would be 100 wakeups, finished probes' timers 20 more.
        assert!(n.wakeups <= 15, "node {i} woke {} times", n.wakeups);
    }
    // An update still leaves at the next gossip tick.
    let now = c.now;
    c.nodes[2].swim.update_meta(now, b"v2").unwrap();
    c.drain(2);
    c.run_for(Duration::from_millis(150));
    let heard = (0..5)
        .filter(|&o| o != 2)
        .filter(|&o| &*c.nodes[o].swim.member("node-2").unwrap().meta == b"v2")
        .count();
    assert!(
        heard >= 2,
        "only {heard} heard the update within one gossip interval"
    );
}

#[test]
fn metadata_from_the_config_is_announced_with_the_first_alive() {
    let mut c = Cluster::new(3, |i| {
        let mut cfg = Config::local(format!("node-{i}"), addr(i));
        cfg.meta = format!("zone={i}").into_bytes();
        cfg
    });
    c.bootstrap();
    for o in 0..3 {
        for i in 0..3 {
            let m = c.nodes[o].swim.member(&format!("node-{i}")).unwrap();
            assert_eq!(&*m.meta, format!("zone={i}").as_bytes(), "observer {o}");
            assert_eq!(m.incarnation, 1, "the first announcement, as Go's setAlive");
        }
    }
}

#[test]
fn relayed_user_broadcast_reaches_every_member_once() {
    let mut c = Cluster::new(10, |i| {
        let mut cfg = Config::local(format!("node-{i}"), addr(i));
        cfg.relay_user_broadcasts = true;
        // Every relay sends 8 copies (LAN's multiplier): a node is missed
        // with odds of about e^-8 per node.
        cfg.retransmit_mult = 4;
        cfg
    });
    c.bootstrap();
    let now = c.now;
    c.nodes[7].swim.broadcast(now, b"hello, cluster").unwrap();
    c.run_for(secs(3));
    for o in 0..10 {
        let got = c.nodes[o]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::UserMessage { payload, .. } if payload == b"hello, cluster"))
            .count();
        assert_eq!(
            got,
            usize::from(o != 7),
            "node {o} delivered it exactly once"
        );
    }
    // Relaying ends: the queues drain.
    c.run_for(secs(3));
    assert!(c
        .nodes
        .iter()
        .all(|n| n.swim.user_broadcast_queue_len() == 0));
}

#[test]
fn unrelayed_user_broadcast_is_sent_a_limited_number_of_times_like_go() {
    let mut c = Cluster::local(10);
    c.bootstrap();
    let now = c.now;
    c.nodes[7].swim.broadcast(now, b"hello").unwrap();
    c.run_for(secs(3));
    let receivers = (0..10)
        .filter(|&o| {
            c.nodes[o]
                .events
                .iter()
                .any(|(_, e)| matches!(e, Event::UserMessage { .. }))
        })
        .count();
    // Local config: retransmit limit 2 × ceil(log10(11)) = 4 sends, by the
    // originator only.
    assert!((1..=4).contains(&receivers), "{receivers} receivers");
    assert_eq!(c.nodes[7].swim.user_broadcast_queue_len(), 0);
}

#[test]
fn user_messages_best_effort_and_reliable() {
    let mut c = Cluster::local(3);
    c.bootstrap();
    let now = c.now;
    c.nodes[0]
        .swim
        .send_best_effort(now, "node-2", b"datagram")
        .unwrap();
    c.nodes[0]
        .swim
        .send_reliable(now, "node-1", b"stream")
        .unwrap();
    c.drain(0);
    c.run_for(secs(1));
    let got = |i: usize, p: &[u8]| {
        c.nodes[i]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::UserMessage { payload, .. } if payload == p))
    };
    assert!(got(2, b"datagram"));
    assert!(got(1, b"stream"));
    assert_eq!(
        c.nodes[0].swim.send_best_effort(now, "nobody", b"x"),
        Err(swim_core::CommandError::UnknownMember)
    );
}

#[test]
fn encrypted_cluster_converges_and_keeps_strangers_out() {
    let key = SecretKey::new(&[9; 32]).unwrap();
    let mut c = Cluster::new(5, |i| {
        let mut cfg = Config::local(format!("node-{i}"), addr(i));
        if i < 4 {
            cfg.keyring = Some(Keyring::new(key.clone()));
        } else {
            cfg.keyring = Some(Keyring::new(SecretKey::new(&[1; 16]).unwrap()));
        }
        cfg
    });
    c.join_all();
    c.run_for(CONVERGENCE_BOUND);
    assert!(c.converged(&[0, 1, 2, 3]));
    let stranger = c.nodes[4].events.iter().find_map(|(_, e)| match e {
        Event::JoinCompleted { joined, failed, .. } => Some((*joined, failed.len())),
        _ => None,
    });
    assert_eq!(
        stranger,
        Some((0, 1)),
        "the node with the wrong key could not join"
    );
    for o in 0..4 {
        assert_eq!(
            c.state_of(o, 4),
            None,
            "observer {o} never admitted the stranger"
        );
    }
    assert!(c.nodes[0].swim.stats().wire_errors > 0);
}

#[test]
fn push_pull_repairs_what_gossip_missed() {
    let mut c = Cluster::new(5, |i| {
        let mut cfg = Config::local(format!("node-{i}"), addr(i));
        cfg.push_pull_interval = secs(2);
        cfg
    });
    c.bootstrap();
    assert!(c.converged(&[0, 1, 2, 3, 4]));
    // UDP is lost entirely: no gossip, no piggybacking, no UDP probes. TCP
    // fallback pings keep everyone alive, and push/pull carries the update.
    c.drop_udp = true;
    let now = c.now;
    c.nodes[1].swim.update_meta(now, b"v2").unwrap();
    c.drain(1);
    c.run_for(secs(8));
    for o in 0..5 {
        assert_eq!(
            &*c.nodes[o].swim.member("node-1").unwrap().meta,
            b"v2",
            "observer {o}"
        );
    }
    assert!(
        c.converged(&[0, 1, 2, 3, 4]),
        "TCP fallback kept everyone alive"
    );
}

#[test]
fn same_seed_same_trace() {
    let run = || {
        let mut c = Cluster::local(7);
        c.join_all();
        c.run_for(secs(4));
        c.nodes[6].down = true;
        c.run_for(secs(30));
        let now = c.now;
        c.nodes[2].swim.broadcast(now, b"x").unwrap();
        c.nodes[3].swim.update_meta(now, b"m").unwrap();
        c.drain(3);
        c.run_for(secs(5));
        c.trace_hash()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
}

#[test]
fn floods_of_garbage_and_indirect_pings_change_nothing_and_stay_bounded() {
    let mut c = Cluster::local(3);
    c.bootstrap();
    let before: Vec<_> = c.nodes[0].swim.all_members();
    let now = c.now;
    // Garbage from a deterministic generator.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..20_000 {
        let len = (i % 200) + 1;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        c.nodes[0].swim.handle_packet(now, addr(9), &data);
    }
    // Indirect-ping requests for a silent target, far more than the node
    // will hold handlers for.
    let mut packet = Vec::new();
    Message::IndirectPing(swim_core::wire::IndirectPing {
        seq_no: 7,
        target: vec![127, 0, 0, 99].into(),
        port: 9999,
        node: "ghost",
        nack: true,
        source_addr: vec![127, 0, 0, 98].into(),
        source_port: 9998,
        source_node: "flooder",
    })
    .encode(Transport::Packet, &mut packet);
    for _ in 0..10_000 {
        c.nodes[0].swim.handle_packet(now, addr(9), &packet);
    }
    let stats = c.nodes[0].swim.stats().clone();
    assert!(stats.wire_errors > 10_000, "garbage was counted: {stats:?}");
    assert!(
        stats.rejected >= 10_000 - 4096,
        "excess requests were refused: {stats:?}"
    );
    let mut pings = 0;
    while let Some(out) = c.nodes[0].swim.poll_output() {
        if matches!(out, Output::Packet { to, .. } if to.port() == 9999) {
            pings += 1;
        }
    }
    assert!(pings <= 4096, "{pings} relayed pings");
    assert_eq!(
        c.nodes[0].swim.all_members(),
        before,
        "membership unchanged"
    );
    // The node still works.
    c.run_for(secs(5));
    assert!(c.converged(&[0, 1, 2]));
}

#[test]
fn member_changes_are_recorded_for_observers() {
    let mut c = Cluster::local(4);
    // Node 1 records its changes; the others do not.
    let config = Config::local("node-1", addr(1));
    c.nodes[1].swim = Swim::builder(config, 1001)
        .delegate(Box::new(DefaultDelegate) as BoxedDelegate)
        .record_member_changes()
        .build(c.now)
        .unwrap();
    c.drain(1);
    c.bootstrap();
    let mut packet = Vec::new();
    let incarnation = c.nodes[1].swim.member("node-2").unwrap().incarnation;
    let accusation = Accusation {
        incarnation,
        node: "node-2",
        from: "node-0",
    };
    Message::Suspect(accusation).encode(Transport::Packet, &mut packet);
    let now = c.now;
    c.nodes[1].swim.handle_packet(now, addr(0), &packet);
    c.drain(1);
    c.run_for(secs(10));
    let changes: Vec<_> = c.nodes[1]
        .swim
        .drain_member_changes()
        .expect("recording")
        .filter_map(|ch| match ch {
            swim_core::MemberChange::Updated(m) if &*m.name == "node-2" => {
                Some((m.state, m.incarnation))
            }
            _ => None,
        })
        .collect();
    // Alive at join, suspected by the injected rumour, alive again after the refutation.
    let suspected = changes
        .iter()
        .position(|&(s, _)| s == MemberState::Suspect)
        .expect("suspicion recorded");
    let (state, inc) = *changes[suspected..]
        .iter()
        .find(|(s, _)| *s == MemberState::Alive)
        .expect("refutation recorded");
    assert_eq!(state, MemberState::Alive);
    assert!(inc > incarnation);
    assert!(
        c.nodes[0].swim.drain_member_changes().is_none(),
        "off by default"
    );
}

/// The table lists every record with when it entered its state: a
/// suspicion moves the time, a refutation back to alive moves it again, a
/// new incarnation in the same state does not.
#[test]
fn member_table_times_move_with_the_state_only() {
    let mut c = Cluster::local(4);
    c.bootstrap();
    let since = |c: &Cluster, name: &str| {
        let table = c.nodes[1].swim.member_table();
        assert_eq!(table.len(), 4);
        table
            .into_iter()
            .find(|(m, _)| &*m.name == name)
            .map(|(m, t)| (m.state, m.incarnation, t))
            .unwrap()
    };
    let (state, incarnation, joined) = since(&c, "node-2");
    assert_eq!(state, MemberState::Alive);
    c.run_for(secs(1));
    let mut packet = Vec::new();
    Message::Suspect(Accusation {
        incarnation,
        node: "node-2",
        from: "node-0",
    })
    .encode(Transport::Packet, &mut packet);
    let suspected_at = c.now;
    c.nodes[1]
        .swim
        .handle_packet(suspected_at, addr(0), &packet);
    let (state, _, t) = since(&c, "node-2");
    assert_eq!((state, t), (MemberState::Suspect, suspected_at));
    assert!(t > joined);
    // Node 2 hears of it and refutes with a higher incarnation.
    c.drain(1);
    c.run_for(secs(10));
    let (state, refuted, t) = since(&c, "node-2");
    assert_eq!(state, MemberState::Alive);
    assert!(refuted > incarnation && t > suspected_at, "{t:?}");
    // A new incarnation while alive (a metadata update) keeps the time.
    let now = c.now;
    c.nodes[2].swim.update_meta(now, b"new").unwrap();
    c.run_for(secs(5));
    let (state, updated, t2) = since(&c, "node-2");
    assert_eq!(state, MemberState::Alive);
    assert!(updated > refuted);
    assert_eq!(t2, t);
}

/// A message in its packet form.
/// `b` joins through `a` by hand: one push/pull. Returns `b`'s join result.
fn join_directly<P: swim_core::Delegate, Q: swim_core::Delegate>(
    a: &mut Swim<P>,
    b: &mut Swim<Q>,
    now: Instant,
) -> (usize, Vec<(SocketAddr, ExchangeError)>) {
    let (a_addr, b_addr) = (a.config().advertise, b.config().advertise);
    b.join(now, &[a_addr]);
    let (id, data) = std::iter::from_fn(|| b.poll_output())
        .find_map(|o| match o {
            Output::Connect { id, data, .. } => Some((id, data)),
            _ => None,
        })
        .unwrap();
    a.handle_stream(now, StreamId(1), b_addr, &data);
    let reply = std::iter::from_fn(|| a.poll_output())
        .find_map(|o| match o {
            Output::StreamReply { data, .. } => data,
            _ => None,
        })
        .unwrap();
    b.handle_exchange(now, id, Ok(&reply));
    std::iter::from_fn(|| b.poll_output())
        .find_map(|o| match o {
            Output::Event(Event::JoinCompleted { joined, failed, .. }) => Some((joined, failed)),
            _ => None,
        })
        .unwrap()
}

/// Decodes the messages of a datagram as node `i`'s envelope would.
fn messages_in<D: swim_core::Delegate>(swim: &Swim<D>, data: &[u8]) -> Vec<String> {
    let body = swim.envelope().open_packet(data).unwrap();
    let mut out = Vec::new();
    swim_core::wire::for_each_message(&body, swim.envelope().limits(), &mut |m| {
        out.push(format!("{:?}", m.unwrap()))
    });
    out
}

#[test]
fn policy_filters_alive_members_and_vetoes_merges() {
    struct NoTwo;
    impl swim_core::Delegate for NoTwo {
        fn allow_alive(&mut self, m: &swim_core::Member) -> bool {
            &*m.name != "node-2"
        }
    }
    struct Refuse;
    impl swim_core::Delegate for Refuse {
        fn allow_merge(&mut self, _: &[swim_core::Member]) -> bool {
            false
        }
    }
    let now = Instant::ZERO;
    let mut a = Swim::builder(Config::local("node-0", addr(0)), 1)
        .delegate(NoTwo)
        .build(now)
        .unwrap();
    a.handle_packet(
        now,
        addr(2),
        &alive_packet("node-2", [127, 0, 0, 1], 7002, 1),
    );
    assert!(a.member("node-2").is_none(), "filtered out");

    let mut b = Swim::builder(Config::local("node-1", addr(1)), 2)
        .delegate(Refuse)
        .build(now)
        .unwrap();
    let (joined, failed) = join_directly(&mut a, &mut b, now);
    assert_eq!(joined, 0);
    assert_eq!(failed[0].1, ExchangeError::Refused(Rejection::MergeVetoed));
    assert!(b.member("node-0").is_none());
}

#[test]
fn name_conflicts_are_reported_and_ignored_and_dead_names_can_be_reclaimed() {
    let mut cfg = Config::local("me", addr(0));
    cfg.dead_node_reclaim_time = secs(10);
    let now = Instant::ZERO;
    let mut me = Swim::new(cfg, 1, now).unwrap();
    let alive = |port, inc| alive_packet("x", [127, 0, 0, 1], port, inc);
    me.handle_packet(now, addr(5), &alive(8001, 1));
    // Another process claims "x" from another port: a conflict, ignored.
    me.handle_packet(now, addr(6), &alive(8002, 5));
    assert_eq!(me.member("x").unwrap().addr.port(), 8001);
    assert!(std::iter::from_fn(|| me.poll_output())
        .any(|o| matches!(o, Output::Event(Event::NameConflict { .. }))));
    // Once "x" has been dead longer than the reclaim time, the new address
    // may take the name, even at a lower incarnation.
    let dead = packet(Message::Dead(Accusation {
        incarnation: 1,
        node: "x",
        from: "me",
    }));
    me.handle_packet(now, addr(5), &dead);
    assert_eq!(me.member("x").unwrap().state, MemberState::Dead);
    let later = now + secs(5);
    me.handle_packet(later, addr(6), &alive(8002, 1));
    assert_eq!(
        me.member("x").unwrap().addr.port(),
        8001,
        "too early to reclaim"
    );
    let later = now + secs(11);
    me.handle_packet(later, addr(6), &alive(8002, 1));
    let x = me.member("x").unwrap();
    assert_eq!((x.addr.port(), x.state), (8002, MemberState::Alive));
}

#[test]
fn cidr_allow_list_keeps_other_networks_out() {
    let mut cfg = Config::local("me", addr(0));
    cfg.cidrs_allowed = vec![swim_core::Cidr::new([127, 0, 0, 0].into(), 8).unwrap()];
    let now = Instant::ZERO;
    let mut me = Swim::new(cfg, 1, now).unwrap();
    let alive = |ip, name| alive_packet(name, ip, 7946, 1);
    let outsider: SocketAddr = "10.1.2.3:7946".parse().unwrap();
    me.handle_packet(now, outsider, &alive([127, 0, 0, 2], "from-outside"));
    me.handle_packet(now, addr(1), &alive([10, 1, 2, 3], "points-outside"));
    me.handle_packet(now, addr(1), &alive([127, 0, 0, 2], "inside"));
    assert!(me.member("from-outside").is_none());
    assert!(me.member("points-outside").is_none());
    assert!(me.member("inside").is_some());
}

#[test]
fn labels_keep_clusters_apart() {
    let mut c = Cluster::new(4, |i| {
        let mut cfg = Config::local(format!("node-{i}"), addr(i));
        cfg.label = if i < 3 {
            b"prod".to_vec()
        } else {
            b"dev".to_vec()
        };
        cfg
    });
    c.join_all();
    c.run_for(CONVERGENCE_BOUND);
    assert!(c.converged(&[0, 1, 2]));
    assert!(c.nodes[0].swim.member("node-3").is_none());
    assert!(c.nodes[3]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::JoinCompleted { joined: 0, .. })));
}

#[test]
fn encryption_can_be_rolled_out_with_verification_off() {
    let key = SecretKey::new(&[3; 16]).unwrap();
    // Mid-migration: every node has the key and accepts plaintext; half of
    // them already encrypt. They all still understand each other.
    let mut c = Cluster::new(6, |i| {
        let mut cfg = Config::local(format!("node-{i}"), addr(i));
        cfg.keyring = Some(Keyring::new(key.clone()));
        cfg.gossip_verify_incoming = false;
        cfg.gossip_verify_outgoing = i % 2 == 0;
        cfg
    });
    c.bootstrap();
    // A strict node (verifies incoming) refuses a plaintext sender.
    let mut strict = Config::local("strict", addr(8));
    strict.keyring = Some(Keyring::new(key.clone()));
    let mut s = Swim::new(strict, 9, c.now).unwrap();
    let mut lax = Config::local("lax", addr(9));
    lax.keyring = Some(Keyring::new(key));
    lax.gossip_verify_outgoing = false;
    let mut l = Swim::new(lax, 10, c.now).unwrap();
    l.ping(c.now, "lax").unwrap();
    let packet = std::iter::from_fn(|| l.poll_output())
        .find_map(|o| match o {
            Output::Packet { data, .. } => Some(data),
            _ => None,
        })
        .unwrap();
    s.handle_packet(c.now, addr(9), &packet);
    // Plaintext is not a valid encrypted payload (its first byte is no
    // encryption version, or the tag does not verify).
    let kind = s.stats().last_wire_error;
    assert!(
        matches!(
            kind,
            Some("decryption_failed" | "unknown_encryption_version")
        ),
        "{kind:?}"
    );
    assert_eq!(s.stats().wire_errors, 1);
}

#[test]
fn helpers_nack_silent_targets_and_suspects_hear_the_accusation() {
    let now = Instant::ZERO;
    let mut helper = Swim::new(Config::local("helper", addr(1)), 1, now).unwrap();
    let mut req = Vec::new();
    Message::IndirectPing(swim_core::wire::IndirectPing {
        seq_no: 42,
        target: vec![127, 0, 0, 1].into(),
        port: 7009,
        node: "silent",
        nack: true,
        source_addr: vec![127, 0, 0, 1].into(),
        source_port: 7000,
        source_node: "origin",
    })
    .encode(Transport::Packet, &mut req);
    helper.handle_packet(now, addr(0), &req);
    while helper.poll_output().is_some() {}
    let later = now + Config::local("x", addr(0)).probe_timeout;
    helper.handle_timeout(later);
    let outputs: Vec<Output> = std::iter::from_fn(|| helper.poll_output()).collect();
    let nack = outputs.iter().find_map(|o| match o {
        Output::Packet { to, data } if *to == addr(0) => Some(messages_in(&helper, data)),
        _ => None,
    });
    assert_eq!(nack.unwrap()[0], "Nack(Nack { seq_no: 42 })");

    // A node probing a suspect sends the accusation along with the ping.
    let mut c = Cluster::local(3);
    c.bootstrap();
    let inc = c.nodes[0].swim.member("node-2").unwrap().incarnation;
    let mut suspect = Vec::new();
    Message::Suspect(Accusation {
        incarnation: inc,
        node: "node-2",
        from: "node-1",
    })
    .encode(Transport::Packet, &mut suspect);
    let now = c.now;
    c.nodes[0].swim.handle_packet(now, addr(1), &suspect);
    while c.nodes[0].swim.poll_output().is_some() {}
    // Run node 0 alone until it probes node 2.
    let mut found = false;
    for _ in 0..100 {
        let t = c.nodes[0].swim.poll_timeout().unwrap();
        c.nodes[0].swim.handle_timeout(t);
        while let Some(o) = c.nodes[0].swim.poll_output() {
            if let Output::Packet { to, data } = o {
                let msgs = messages_in(&c.nodes[0].swim, &data);
                if to == addr(2) && msgs.len() == 2 && msgs[0].starts_with("Ping") {
                    assert!(msgs[1].starts_with("Suspect"), "{msgs:?}");
                    found = true;
                }
            }
        }
    }
    assert!(found, "the suspect was probed with ping + suspect");
}

#[test]
fn incompatible_protocol_versions_refuse_the_merge() {
    let now = Instant::ZERO;
    let mut a_cfg = Config::local("a", addr(0));
    a_cfg.delegate_protocol = [2, 3, 2];
    let mut a = Swim::new(a_cfg, 1, now).unwrap();
    let mut b = Swim::new(Config::local("b", addr(1)), 2, now).unwrap();
    let (joined, failed) = join_directly(&mut a, &mut b, now);
    assert_eq!(joined, 0);
    assert!(b.member("a").is_none());
    assert!(a.member("b").is_none(), "a refused b's state too");
    assert_eq!(
        failed[0].1,
        ExchangeError::Refused(Rejection::IncompatibleProtocol)
    );
}

#[cfg(feature = "simulation")]
#[test]
fn forgetting_membership_gossip_keeps_user_broadcasts_and_ends_a_leave() {
    let mut c = Cluster::local(4);
    c.bootstrap();
    let now = c.now;
    c.nodes[0].swim.update_meta(now, b"new").unwrap();
    assert!(c.nodes[0].swim.broadcast_queue_len() > 0);
    c.nodes[0]
        .swim
        .broadcast(now, b"for the application")
        .unwrap();
    c.nodes[0].swim.forget_membership_gossip(now);
    assert_eq!(c.nodes[0].swim.broadcast_queue_len(), 0);
    assert_eq!(c.nodes[0].swim.user_broadcast_queue_len(), 1);

    // A departure being gossiped is cut short: the leave completes at once.
    c.nodes[1].swim.forget_membership_gossip(now);
    c.nodes[1].swim.leave(now, secs(5));
    assert_eq!(c.nodes[1].swim.broadcast_queue_len(), 1, "our departure");
    c.nodes[1].swim.forget_membership_gossip(now);
    c.drain(1);
    assert!(c.nodes[1]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::LeaveCompleted { timed_out: false })));
}

#[test]
fn pings_and_joins_complete_under_their_own_ids() {
    let mut c = Cluster::local(4);
    c.bootstrap();
    let now = c.now;
    // Two pings to one member and one to a member that is down: each
    // completes, or fails, under the id its command returned.
    c.nodes[3].down = true;
    let first = c.nodes[0].swim.ping(now, "node-1").unwrap();
    let second = c.nodes[0].swim.ping(now, "node-1").unwrap();
    let silent = c.nodes[0].swim.ping(now, "node-3").unwrap();
    assert!(first != second && second != silent);
    assert_eq!(
        c.nodes[0].swim.ping(now, "nobody"),
        Err(CommandError::UnknownMember)
    );
    c.drain(0);
    c.nodes[0].events.clear();
    c.run_for(secs(1));
    let mut completed = Vec::new();
    let mut failed = Vec::new();
    for (_, e) in &c.nodes[0].events {
        match e {
            Event::PingCompleted { id, node, .. } => completed.push((*id, node.clone())),
            Event::PingFailed { id, node } => failed.push((*id, node.clone())),
            _ => {}
        }
    }
    completed.sort();
    assert_eq!(
        completed,
        [(first, "node-1".into()), (second, "node-1".into())]
    );
    assert_eq!(failed, [(silent, "node-3".into())]);

    // Two joins at once, one through a seed that is down: each reports its own seeds.
    c.nodes[3].down = false;
    let now = c.now;
    let through_down = c.nodes[2].swim.join(now, &[addr(9)]);
    let through_live = c.nodes[2].swim.join(now, &[addr(0), addr(1)]);
    c.drain(2);
    c.run_for(secs(2));
    let joins: Vec<_> = c.nodes[2]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::JoinCompleted { id, joined, failed } => Some((*id, *joined, failed.len())),
            _ => None,
        })
        .filter(|(id, ..)| *id == through_down || *id == through_live)
        .collect();
    assert_eq!(joins.len(), 2, "{joins:?}");
    assert!(joins.contains(&(through_down, 0, 1)), "{joins:?}");
    assert!(joins.contains(&(through_live, 2, 0)), "{joins:?}");
}

/// `b`'s next stream exchange (its id and bytes), from `outputs` or from
/// what `b` puts out once its next timer is due.
fn next_connect<D: swim_core::Delegate>(
    b: &mut Swim<D>,
    now: &mut Instant,
    outputs: &mut Vec<Output>,
) -> (swim_core::ExchangeId, Vec<u8>) {
    loop {
        if let Some(i) = outputs
            .iter()
            .position(|o| matches!(o, Output::Connect { .. }))
        {
            let Output::Connect { id, data, .. } = outputs.remove(i) else {
                unreachable!()
            };
            return (id, data);
        }
        let next = b.poll_timeout().expect("a timer for the next confirmation");
        assert!(
            next.saturating_duration_since(*now) < Duration::from_secs(1),
            "no confirmation due"
        );
        *now = next;
        b.handle_timeout(*now);
        outputs.extend(std::iter::from_fn(|| b.poll_output()));
    }
}

/// A checked join through `a`; its first `stale` confirmations are answered with
/// the state `a` had before it merged `b` (Go's seed answers a second
/// push/pull that way while it is still merging the first). Returns the
/// join's outcome and when it came.
fn checked_join_with_stale_answers(stale: usize) -> ((usize, Vec<ExchangeError>), Duration) {
    let start = Instant::ZERO;
    let mut now = start;
    let mut a = Swim::new(Config::local("a", addr(0)), 1, now).unwrap();
    let mut b = Swim::new(Config::local("b", addr(1)), 2, now).unwrap();
    b.join_checked(now, &[addr(0)]);
    let mut outputs: Vec<Output> = std::iter::from_fn(|| b.poll_output()).collect();
    let mut before_merge = None;
    for exchange in 0..10 {
        let (id, data) = next_connect(&mut b, &mut now, &mut outputs);
        a.handle_stream(now, StreamId(exchange), addr(1), &data);
        let reply = std::iter::from_fn(|| a.poll_output())
            .find_map(|o| match o {
                Output::StreamReply { data, .. } => data,
                _ => None,
            })
            .unwrap();
        // The join's own reply predates the merge, as every seed's does.
        let before_merge = before_merge.get_or_insert_with(|| reply.clone());
        let reply = if exchange as usize <= stale {
            &*before_merge
        } else {
            &reply
        };
        b.handle_exchange(now, id, Ok(reply));
        outputs.extend(std::iter::from_fn(|| b.poll_output()));
        if let Some(done) = outputs.iter().find_map(|o| match o {
            Output::Event(Event::JoinCompleted { joined, failed, .. }) => Some((
                *joined,
                failed.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
            )),
            _ => None,
        }) {
            return (done, now.saturating_duration_since(start));
        }
    }
    panic!("the join never completed")
}

#[test]
fn a_checked_join_asks_again_a_seed_still_merging_it() {
    let (done, took) = checked_join_with_stale_answers(0);
    assert_eq!(done, (1, vec![]), "the first confirmation finds us");
    assert_eq!(took, Duration::ZERO);
    let (done, took) = checked_join_with_stale_answers(1);
    assert_eq!(done, (1, vec![]), "one stale answer, then found");
    assert_eq!(
        took,
        Duration::from_millis(50),
        "one pause before the second"
    );
    let (done, took) = checked_join_with_stale_answers(3);
    assert_eq!(done, (1, vec![]), "found by the last confirmation");
    assert_eq!(took, Duration::from_millis(300));
}

#[test]
fn a_seed_that_never_lists_us_did_not_take_us_in() {
    let (done, took) = checked_join_with_stale_answers(usize::MAX);
    assert_eq!(done, (0, vec![ExchangeError::NotAccepted]));
    assert_eq!(
        took,
        Duration::from_millis(300),
        "four confirmations, 300 ms"
    );
}
