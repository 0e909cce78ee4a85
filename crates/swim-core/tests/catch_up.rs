//! Catch-up push/pulls: one when news of members settles (unless a full
//! state came after it), one with a node that makes contact unknown, and
//! reconnects with the dead; a budget bounds them, `CatchUp::off` is Go.

use std::net::SocketAddr;
use std::time::Duration;

use swim_core::wire::{for_each_message, Accusation, Ack, Limits, Message, NodeState, Ping};
use swim_core::{CatchUp, Config, Instant, MemberState, Output, Swim};

mod common;

use common::*;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// A node on the Local preset (settle 300 ms) with its periodic push/pull
/// pushed far away and no TCP pings (its probes of members nobody runs
/// fail), so every stream exchange it starts is a catch-up push/pull.
fn node(catch_up: CatchUp) -> Swim {
    node_with(catch_up, |_| {})
}

fn node_with(catch_up: CatchUp, tweak: impl FnOnce(&mut Config)) -> Swim {
    let mut c = Config::local("me", addr(0));
    c.push_pull_interval = Duration::from_secs(3600);
    c.disable_tcp_pings = true;
    c.catch_up = catch_up;
    tweak(&mut c);
    Swim::new(c, 7, Instant::ZERO).unwrap()
}

/// A node that does not probe (its members, run by nobody, stay alive).
fn unprobed(catch_up: CatchUp) -> Swim {
    node_with(catch_up, |c| c.probe_interval = Duration::from_secs(3600))
}

/// Local's catch-up with one settle push/pull at random whatever the
/// cluster's size (these small clusters would otherwise cover: see
/// tests/cover.rs).
fn local_catch_up() -> CatchUp {
    let mut c = Config::local("x", addr(0)).catch_up;
    c.cover = 0;
    c
}

/// Runs the node's timers up to `until`, in 10 ms steps, and returns the
/// push/pulls it started: (when, to).
fn run(me: &mut Swim, from: Instant, until: Instant) -> Vec<(Instant, SocketAddr)> {
    let mut started = Vec::new();
    let mut t = from;
    while t <= until {
        me.handle_timeout(t);
        while let Some(o) = me.poll_output() {
            if let Output::Connect {
                to,
                expect_reply: true,
                ..
            } = o
            {
                started.push((t, to));
            }
        }
        t = t + ms(10);
    }
    started
}

/// News: `name` becomes known.
fn learn(me: &mut Swim, now: Instant, name: &str, port: u16) {
    me.handle_packet(now, addr(9), &alive_packet(name, [127, 0, 0, 1], port, 1));
}

fn ping_from(name: &str, port: u16) -> Vec<u8> {
    packet(Message::Ping(Ping {
        seq_no: 1,
        node: "me",
        source_addr: vec![127, 0, 0, 1].into(),
        source_port: port,
        source_node: name,
    }))
}

#[test]
fn news_settles_into_a_push_pull_with_a_member_and_a_confirming_one() {
    let mut me = node(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    learn(&mut me, t0 + ms(200), "c", 7002);
    // Settles 300 ms after the last news, not before.
    let t1 = t0 + Duration::from_secs(1);
    let started = run(&mut me, t0, t1);
    assert_eq!(started.len(), 1, "{started:?}");
    let (at, to) = started[0];
    assert!(at >= t0 + ms(500) && at <= t0 + ms(510), "at {at:?}");
    assert!([7001, 7002].contains(&to.port()), "with a member: {to}");
    // A full state comes; the confirming push/pull follows four settles
    // (1.2 s) after the first, and nothing more.
    push_pull_from_b(&mut me, t1);
    let started = run(&mut me, t1, t0 + Duration::from_secs(10));
    assert_eq!(started.len(), 1, "{started:?}");
    let (confirmed, to) = started[0];
    assert!(
        confirmed >= at + ms(1200) && confirmed <= at + ms(1210),
        "at {confirmed:?}"
    );
    assert!([7001, 7002].contains(&to.port()), "with a member: {to}");
    assert_eq!(me.stats().catch_up_push_pulls, 2);
}

#[test]
fn a_settle_push_pull_that_brings_nothing_is_tried_again_four_times() {
    let mut me = unprobed(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    // No push/pull is ever answered: the first, then four more, 1.2 s
    // apart, then nothing.
    let started = run(&mut me, t0, t0 + Duration::from_secs(30));
    let at: Vec<u64> = started
        .iter()
        .map(|(t, _)| t.saturating_duration_since(t0).as_millis() as u64)
        .collect();
    assert_eq!(at.len(), 5, "{at:?}");
    assert!((300..=310).contains(&at[0]), "{at:?}");
    for pair in at.windows(2) {
        assert!((1200..=1210).contains(&(pair[1] - pair[0])), "{at:?}");
    }
}

#[test]
fn a_spent_budget_delays_the_next_try_until_it_refills() {
    let mut budget = local_catch_up();
    budget.per_minute = 2;
    let mut me = unprobed(budget);
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    // Two at once, then one every 30 s as the budget refills.
    let started = run(&mut me, t0, t0 + Duration::from_secs(100));
    let at: Vec<u64> = started
        .iter()
        .map(|(t, _)| t.saturating_duration_since(t0).as_secs())
        .collect();
    assert_eq!(at, [0, 1, 30, 60, 90], "{started:?}");
}

/// "b" (127.0.0.1:7001) pushes/pulls with `me` at `now`: not a join, so
/// its state is the cluster's.
fn push_pull_from_b(me: &mut Swim, now: Instant) {
    let b = listed("b", 7001, 1, NodeState::Alive);
    push_pull_into(me, now, addr(1), false, vec![b]);
}

#[test]
fn a_full_state_during_the_storm_does_not_count() {
    let mut me = node(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    // Our rumour of "b" is still being sent: the storm goes on.
    assert!(me.broadcast_queue_len() > 0);
    push_pull_from_b(&mut me, t0 + ms(50));
    let started = run(&mut me, t0 + ms(50), t0 + Duration::from_secs(5));
    assert_eq!(started.len(), 1, "{started:?}");
}

#[test]
fn a_full_state_after_the_news_makes_it_unneeded() {
    let mut c = local_catch_up();
    c.settle = Duration::from_secs(2);
    let mut me = node(c);
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    // Once the rumour of "b" is sent (a full state during a storm does not
    // count: others are still learning)…
    assert!(run(&mut me, t0, t0 + ms(990)).is_empty());
    assert_eq!(me.broadcast_queue_len(), 0);
    let t0 = t0 + Duration::from_secs(1);
    // "b" pushes/pulls with us (not a join): its state is the cluster's.
    push_pull_from_b(&mut me, t0 + ms(100));
    let started = run(&mut me, t0 + ms(100), t0 + Duration::from_secs(5));
    assert!(started.is_empty(), "{started:?}");
    assert_eq!(me.stats().catch_up_push_pulls, 0);
}

#[test]
fn the_budget_bounds_catch_up_per_minute() {
    let mut c = local_catch_up();
    c.per_minute = 2;
    let mut me = node(c);
    let mut started = Vec::new();
    // News every second for 40 s, each settling: 40 chances.
    for k in 0..40u16 {
        let t = Instant::ZERO + Duration::from_secs(u64::from(k));
        learn(&mut me, t, &format!("n{k}"), 7100 + k);
        started.extend(run(&mut me, t, t + ms(990)));
    }
    // Two at once, then one per 30 s.
    let times: Vec<u64> = started
        .iter()
        .map(|(t, _)| t.as_nanos() / 1_000_000_000)
        .collect();
    assert_eq!(times, vec![0, 1, 30], "{started:?}");
    assert!(me.stats().catch_up_limited >= 36);
}

#[test]
fn in_a_large_cluster_only_some_members_settle() {
    // 100 members known, `nodes = 10`: each burst of news is followed by a
    // push/pull with probability 10/101.
    let mut c = local_catch_up();
    c.per_minute = 100_000;
    c.nodes = 10;
    c.settle_unreached = false;
    let mut me = node(c);
    for k in 0..100u16 {
        learn(&mut me, Instant::ZERO, &format!("m{k}"), 7100 + k);
    }
    let mut started = 0;
    for k in 0..400u64 {
        let t = Instant::ZERO + Duration::from_secs(10 + 2 * k);
        // News about a member already known: a new incarnation of m0 would
        // not be news; a member returning from the dead is.
        let name = format!("m{}", k % 100);
        let dead = packet(Message::Dead(Accusation {
            incarnation: 1 + k as u32,
            node: &name,
            from: "me",
        }));
        me.handle_packet(t, addr(9), &dead);
        let back = alive_packet(&name, [127, 0, 0, 1], 7100 + (k % 100) as u16, 2 + k as u32);
        me.handle_packet(t + ms(10), addr(9), &back);
        started += run(&mut me, t, t + Duration::from_secs(1)).len();
    }
    // Expected about 40 of 400.
    println!("{started} of 400 bursts were followed by a push/pull");
    assert!((15..=70).contains(&started), "{started} of 400");
}

#[test]
fn contact_from_an_unknown_node_starts_a_push_pull_with_it() {
    let mut me = node(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    me.handle_packet(t0, addr(5), &ping_from("stranger", 7005));
    let outs: Vec<Output> = std::iter::from_fn(|| me.poll_output()).collect();
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Packet { to, .. } if to.port() == 7005)),
        "the ping is acked"
    );
    let pulls: Vec<SocketAddr> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Connect { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(pulls, vec![addr(5)], "a push/pull with the stranger");
    // Not again within a minute.
    me.handle_packet(
        t0 + Duration::from_secs(30),
        addr(5),
        &ping_from("stranger", 7005),
    );
    assert!(!std::iter::from_fn(|| me.poll_output()).any(|o| matches!(o, Output::Connect { .. })));
    // A member we know alive: nothing.
    learn(&mut me, t0, "friend", 7006);
    let _ = std::iter::from_fn(|| me.poll_output()).count();
    me.handle_packet(t0 + ms(1), addr(6), &ping_from("friend", 7006));
    assert!(!std::iter::from_fn(|| me.poll_output()).any(|o| matches!(o, Output::Connect { .. })));
    // No name, or no port: nothing to push/pull with.
    me.handle_packet(t0 + ms(2), addr(7), &ping_from("", 7007));
    me.handle_packet(t0 + ms(3), addr(7), &ping_from("nameless-port", 0));
    assert!(!std::iter::from_fn(|| me.poll_output()).any(|o| matches!(o, Output::Connect { .. })));
}

#[test]
fn contact_from_a_member_held_dead_is_left_to_gossip_to_the_dead() {
    let mut me = node(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    let dead = packet(Message::Dead(Accusation {
        incarnation: 1,
        node: "b",
        from: "c",
    }));
    me.handle_packet(t0, addr(2), &dead);
    assert_eq!(me.member("b").unwrap().state, MemberState::Dead);
    let _ = std::iter::from_fn(|| me.poll_output()).count();
    me.handle_packet(t0 + Duration::from_secs(2), addr(1), &ping_from("b", 7001));
    // A push/pull would teach its side our deaths as suspicions.
    assert!(!std::iter::from_fn(|| me.poll_output()).any(|o| matches!(o, Output::Connect { .. })));
}

/// `me` knows "b" (127.0.0.1:7001) and has run its settle push/pulls;
/// then "c" accuses "b" (`accusation` builds the message), at the instant
/// returned.
fn b_accused(me: &mut Swim, accusation: fn(Accusation<'static>) -> Message<'static>) -> Instant {
    let t0 = Instant::ZERO + ms(100);
    learn(me, t0, "b", 7001);
    let _ = run(me, t0, t0 + Duration::from_secs(1)); // the settle push/pull
    let accused = packet(accusation(Accusation {
        incarnation: 1,
        node: "b",
        from: "c",
    }));
    let t1 = t0 + Duration::from_secs(2);
    me.handle_packet(t1, addr(2), &accused);
    t1
}

#[test]
fn a_suspect_that_acks_our_probe_is_pulled_before_it_is_declared_dead() {
    let mut me = node(local_catch_up());
    let t1 = b_accused(&mut me, Message::Suspect);
    assert_eq!(me.member("b").unwrap().state, MemberState::Suspect);
    let before = me.stats().catch_up_push_pulls;
    // Our next probe goes to "b", the only other member; it acks.
    let mut t = t1;
    let seq = loop {
        t = t + ms(10);
        me.handle_timeout(t);
        let outs: Vec<Output> = std::iter::from_fn(|| me.poll_output()).collect();
        let envelope = me.envelope();
        let ping = outs.into_iter().find_map(|o| match o {
            Output::Packet { to, data } if to.port() == 7001 => {
                let body = envelope.open_packet(&data).unwrap().into_owned();
                let mut seq = None;
                for_each_message(&body, &Limits::default(), &mut |m| {
                    if let Ok(Message::Ping(p)) = m {
                        seq = Some(p.seq_no);
                    }
                });
                seq
            }
            _ => None,
        });
        if let Some(seq) = ping {
            break seq;
        }
        assert!(t < t1 + Duration::from_secs(3), "no probe of b");
    };
    let ack = packet(Message::Ack(Ack {
        seq_no: seq,
        payload: vec![].into(),
    }));
    me.handle_packet(t + ms(1), addr(1), &ack);
    let pulls: Vec<SocketAddr> = std::iter::from_fn(|| me.poll_output())
        .filter_map(|o| match o {
            Output::Connect { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(pulls, vec![addr(1)], "a push/pull with the suspect");
    assert_eq!(me.stats().catch_up_push_pulls, before + 1);
}

#[test]
fn forged_contact_cannot_grow_memory_or_exceed_the_budget() {
    let mut me = node(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    for k in 0..1000u16 {
        me.handle_packet(t0, addr(5), &ping_from(&format!("forged-{k}"), 8000 + k));
    }
    let pulls = std::iter::from_fn(|| me.poll_output())
        .filter(|o| matches!(o, Output::Connect { .. }))
        .count();
    assert_eq!(pulls, 6, "a minute's budget at most");
    assert!(me.stats().catch_up_limited >= 994);
}

#[test]
fn off_is_go_memberlist() {
    let mut me = node(CatchUp::off());
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    me.handle_packet(t0, addr(5), &ping_from("stranger", 7005));
    let dead = packet(Message::Dead(Accusation {
        incarnation: 1,
        node: "b",
        from: "c",
    }));
    me.handle_packet(t0, addr(2), &dead);
    let started = run(&mut me, t0, t0 + Duration::from_secs(120));
    assert!(started.is_empty(), "{started:?}");
    assert_eq!(me.stats().catch_up_push_pulls, 0);
}

#[test]
fn the_dead_are_tried_again_until_they_answer_or_time_runs_out() {
    let mut c = local_catch_up();
    c.reconnect_timeout = Duration::from_secs(60);
    let mut me = node(c);
    let t1 = b_accused(&mut me, Message::Dead);
    // Local: every 7.5 s, while the 60 s last; "b" is the only other member,
    // so every try goes to it.
    let started = run(&mut me, t1, t1 + Duration::from_secs(120));
    let at: Vec<u64> = started
        .iter()
        .map(|(t, to)| {
            assert_eq!(*to, SocketAddr::from(([127, 0, 0, 1], 7001)));
            (t.as_nanos() - t1.as_nanos()) / 100_000_000
        })
        .collect();
    assert_eq!(at, vec![75, 150, 225, 300, 375, 450, 525], "{started:?}");
    assert_eq!(me.stats().reconnects, 7);
    // A member that comes back is not tried again (and is not probed here,
    // so it stays alive).
    let mut me = node_with(local_catch_up(), |c| {
        c.probe_interval = Duration::from_secs(3600);
        c.probe_timeout = Duration::from_secs(1);
    });
    let t1 = b_accused(&mut me, Message::Dead);
    me.handle_packet(
        t1 + ms(1),
        addr(1),
        &alive_packet("b", [127, 0, 0, 1], 7001, 2),
    );
    let started = run(&mut me, t1, t1 + Duration::from_secs(60));
    assert!(
        started
            .iter()
            .all(|(t, _)| *t < t1 + Duration::from_secs(7)),
        "{started:?}"
    );
    assert_eq!(me.stats().reconnects, 0);
}

/// The storm case the catch-up is for: a member misses a join while it is
/// briefly cut off, and learns of it within seconds, not at the next
/// periodic push/pull.
#[test]
fn a_node_that_missed_a_join_catches_up_in_seconds() {
    let converge_after_missed_join = |catch_up: CatchUp| {
        let mut c = Cluster::new(5, |i| {
            let mut cfg = Config::local(format!("node-{i}"), addr(i));
            cfg.catch_up = catch_up.clone();
            cfg
        });
        // Nodes 0–3 form the cluster.
        let now = c.now;
        for i in 1..4 {
            c.nodes[i].swim.join(now, &[addr(0)]);
            c.drain(i);
        }
        c.run_for(secs(40));
        assert!(c.converged(&[0, 1, 2, 3]));
        // Node 2 is cut off while node 4 joins and its rumour spreads.
        c.nodes[2].down = true;
        let now = c.now;
        c.nodes[4].swim.join(now, &[addr(0)]);
        c.drain(4);
        c.run_for(ms(600));
        c.nodes[2].down = false;
        let back = c.now;
        let all = [0, 1, 2, 3, 4];
        while !c.converged(&all) && c.now < back + secs(60) {
            c.run_for(ms(50));
        }
        (
            c.now.saturating_duration_since(back),
            c.nodes[2].swim.stats().clone(),
        )
    };
    let (with, stats) = converge_after_missed_join(Config::local("x", addr(0)).catch_up);
    let (without, _) = converge_after_missed_join(CatchUp::off());
    println!("converged {with:?} after the cut with catch-up, {without:?} without");
    assert!(with <= secs(3), "with catch-up: {with:?}");
    assert!(
        without > secs(3),
        "without, the periodic push/pull: {without:?}"
    );
    assert!(stats.push_pulls > 0);
}

/// News every 200 ms from `t0`, `count` times: it never stops for the
/// 300 ms settle. The push/pulls started meanwhile, and the last news.
fn news_every_200_ms(
    me: &mut Swim,
    t0: Instant,
    count: u16,
) -> (Vec<(Instant, SocketAddr)>, Instant) {
    let mut started = Vec::new();
    let mut last = t0;
    for i in 0..count {
        let at = t0 + ms(200) * u32::from(i);
        started.extend(run(me, last, at));
        learn(me, at, &format!("m{i}"), 7001 + i);
        last = at;
    }
    (started, last)
}

#[test]
fn news_that_goes_on_is_pulled_after_four_settles() {
    let mut me = node(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    // For 2 s.
    let (mut started, _) = news_every_200_ms(&mut me, t0, 10);
    started.extend(run(&mut me, t0 + ms(1800), t0 + ms(1900)));
    // The first news at t0, so a push/pull at t0 + 4 × 300 ms while the
    // news still comes, and only one until it stops.
    let (at, _) = started[0];
    assert!(at >= t0 + ms(1200) && at <= t0 + ms(1210), "{started:?}");
    assert_eq!(started.len(), 1, "{started:?}");
    // Then the settle push/pull, 300 ms after the last news (at 1.8 s).
    let settled = run(&mut me, t0 + ms(1910), t0 + ms(2200));
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert!(settled[0].0 >= t0 + ms(2100), "{settled:?}");
}

#[test]
fn news_that_goes_on_is_pulled_every_four_settles_while_the_budget_keeps_two() {
    let mut me = node(local_catch_up());
    let t0 = Instant::ZERO + ms(100);
    // For 8 s: a node learning a storm's members one by one, late.
    let (started, last) = news_every_200_ms(&mut me, t0, 41);
    // A push/pull every 4 × 300 ms while the news comes, as long as one
    // leaves two of the six a minute: at 1.2, 2.4, 3.6 and 4.8 s, not at
    // 6.0 or 7.2 s.
    let times: Vec<_> = (started.iter())
        .map(|(at, _)| at.saturating_duration_since(t0))
        .collect();
    assert_eq!(times.len(), 4, "{started:?}");
    for (k, at) in times.iter().enumerate() {
        let want = ms(1200) * (k as u32 + 1);
        assert!(*at >= want && *at <= want + ms(10), "{started:?}");
    }
    // The first of the two kept: the settle push/pull, 300 ms after the
    // last news.
    let settled = run(&mut me, last, last + ms(400));
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert!(settled[0].0 >= last + ms(300), "{settled:?}");
}

fn accusation(dead: bool, node: &str, incarnation: u32) -> Vec<u8> {
    let a = Accusation {
        incarnation,
        node,
        from: "x",
    };
    packet(if dead {
        Message::Dead(a)
    } else {
        Message::Suspect(a)
    })
}

/// The alive messages `me` sent to `to` since outputs were last taken:
/// (node, incarnation).
fn alives_sent(me: &mut Swim, to: SocketAddr) -> Vec<(String, u32)> {
    let outs: Vec<Output> = std::iter::from_fn(|| me.poll_output()).collect();
    let mut alives = Vec::new();
    for o in outs {
        if let Output::Packet { to: t, data } = o {
            if t != to {
                continue;
            }
            let body = me.envelope().open_packet(&data).unwrap().into_owned();
            for_each_message(&body, &Limits::default(), &mut |m| {
                if let Ok(Message::Alive(a)) = m {
                    alives.push((a.node.to_string(), a.incarnation));
                }
            });
        }
    }
    alives
}

#[test]
fn an_outdated_accusation_is_answered_with_the_newer_alive() {
    let mut me = unprobed(local_catch_up());
    let t = Instant::ZERO + ms(100);
    me.handle_packet(t, addr(9), &alive_packet("b", [127, 0, 0, 1], 7001, 2));
    let _ = std::iter::from_fn(|| me.poll_output()).count();
    // Older than what we hold: answered, to the datagram's sender, and
    // changes nothing here.
    me.handle_packet(t, addr(5), &accusation(true, "b", 1));
    assert_eq!(alives_sent(&mut me, addr(5)), [("b".to_string(), 2)]);
    me.handle_packet(t, addr(6), &accusation(false, "b", 1));
    assert_eq!(alives_sent(&mut me, addr(6)), [("b".to_string(), 2)]);
    assert_eq!(me.member("b").unwrap().state, MemberState::Alive);
    assert_eq!(me.stats().corrections, 2);
    // About the incarnation we hold: taken, not answered.
    me.handle_packet(t, addr(7), &accusation(false, "b", 2));
    assert!(alives_sent(&mut me, addr(7)).is_empty());
    assert_eq!(me.member("b").unwrap().state, MemberState::Suspect);
    // Older than a suspicion: nothing to say.
    me.handle_packet(t, addr(8), &accusation(true, "b", 1));
    assert!(alives_sent(&mut me, addr(8)).is_empty());
    assert_eq!(me.stats().corrections, 2);
}

#[test]
fn corrections_are_budgeted_and_off_is_go() {
    for (catch_up, expected) in [(local_catch_up(), 10), (CatchUp::off(), 0)] {
        let mut me = unprobed(catch_up);
        let t = Instant::ZERO + ms(100);
        me.handle_packet(t, addr(9), &alive_packet("b", [127, 0, 0, 1], 7001, 2));
        for _ in 0..30 {
            me.handle_packet(t, addr(5), &accusation(true, "b", 1));
        }
        assert_eq!(alives_sent(&mut me, addr(5)).len(), expected);
        assert_eq!(me.stats().corrections, expected as u64);
    }
}

#[test]
fn no_corrections_while_many_members_are_held_dead() {
    let mut me = unprobed(local_catch_up());
    let t = Instant::ZERO + ms(100);
    me.handle_packet(t, addr(9), &alive_packet("b", [127, 0, 0, 1], 7001, 2));
    // Four members held dead: a partition healing, say.
    for i in 0..4 {
        let name = format!("c{i}");
        me.handle_packet(
            t,
            addr(9),
            &alive_packet(&name, [127, 0, 0, 1], 7010 + i, 1),
        );
        me.handle_packet(t, addr(9), &accusation(true, &name, 1));
    }
    assert_eq!(me.member_counts().dead, 4);
    me.handle_packet(t, addr(5), &accusation(true, "b", 1));
    assert!(alives_sent(&mut me, addr(5)).is_empty());
}

#[test]
fn a_node_not_picked_to_settle_settles_if_no_full_state_reaches_it() {
    // `nodes = 0`: never picked. News settles 300 ms after it came; four
    // settles (1.2 s) later, no full state having come, it settles after
    // all.
    let mut c = local_catch_up();
    c.nodes = 0;
    let mut me = unprobed(c.clone());
    let t0 = Instant::ZERO + ms(100);
    learn(&mut me, t0, "b", 7001);
    let started = run(&mut me, t0, t0 + Duration::from_secs(10));
    let at: Vec<u64> = started
        .iter()
        .map(|(t, _)| t.saturating_duration_since(t0).as_millis() as u64)
        .collect();
    // Unanswered, it is tried again as any settle push/pull is.
    assert_eq!(at, [1500, 2700, 3900, 5100, 6300], "{started:?}");
    assert_eq!(me.stats().settle_unreached, 1);
    // A full state after the news settled reached it: nothing to do.
    let mut me = unprobed(c.clone());
    learn(&mut me, t0, "b", 7001);
    assert!(run(&mut me, t0, t0 + ms(990)).is_empty());
    push_pull_from_b(&mut me, t0 + Duration::from_secs(1));
    let started = run(
        &mut me,
        t0 + Duration::from_secs(1),
        t0 + Duration::from_secs(10),
    );
    assert!(started.is_empty(), "{started:?}");
    assert_eq!(me.stats().settle_unreached, 0);
    // Off: only the picked nodes settle.
    c.settle_unreached = false;
    let mut me = unprobed(c);
    learn(&mut me, t0, "b", 7001);
    assert!(run(&mut me, t0, t0 + Duration::from_secs(10)).is_empty());
}

/// How many times `me` gossips the alive message of "c" once "b"'s
/// push/pull (a join or not) taught it "c" at incarnation 2 (`known`: "c"
/// was known at incarnation 1, its gossip over), retransmit limit 6.
fn gossip_of_c_from_a_state(catch_up: CatchUp, join: bool, known: bool) -> usize {
    let mut me = node_with(catch_up, |c| {
        c.retransmit_mult = 6;
        c.probe_interval = Duration::from_secs(3600);
        c.gossip_nodes = 1;
    });
    let t0 = Instant::ZERO + ms(100);
    if known {
        learn(&mut me, t0, "c", 7002);
        learn(&mut me, t0, "b", 7001);
        run(&mut me, t0, t0 + Duration::from_secs(5));
        assert_eq!(me.broadcast_queue_len(), 0);
    }
    let t0 = t0 + Duration::from_secs(5);
    let nodes = vec![
        listed("b", 7001, 2, NodeState::Alive),
        listed("c", 7002, 2, NodeState::Alive),
    ];
    push_pull_into(&mut me, t0, addr(1), join, nodes);
    let mut sent = 0;
    let mut t = t0;
    while t <= t0 + Duration::from_secs(10) {
        me.handle_timeout(t);
        while let Some(o) = me.poll_output() {
            if let Output::Packet { data, .. } = o {
                let body = me.envelope().open_packet(&data).unwrap().into_owned();
                for_each_message(&body, &Limits::default(), &mut |m| {
                    if matches!(m, Ok(Message::Alive(a)) if a.node == "c") {
                        sent += 1;
                    }
                });
            }
        }
        t = t + ms(10);
    }
    sent
}

#[test]
fn members_learned_from_a_full_state_are_gossiped_fewer_times() {
    // A cluster's state: `state_gossip` (2) sends, behind fresh news.
    let ours = local_catch_up();
    assert_eq!(ours.state_gossip, 2);
    assert_eq!(gossip_of_c_from_a_state(ours.clone(), false, false), 2);
    // A joiner's own state is news: the whole limit.
    assert_eq!(gossip_of_c_from_a_state(ours.clone(), true, false), 6);
    // So is a newer record of a member already known.
    assert_eq!(gossip_of_c_from_a_state(ours.clone(), false, true), 6);
    // Off (Go): the whole limit.
    let mut off = ours;
    off.state_gossip = 0;
    assert_eq!(gossip_of_c_from_a_state(off, false, false), 6);
    assert_eq!(gossip_of_c_from_a_state(CatchUp::off(), false, false), 6);
}
