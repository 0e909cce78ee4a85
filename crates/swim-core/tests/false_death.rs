//! The guards against declaring a healthy member dead (issue 32,
//! docs/protocol.md §15.8): an accusation against us answered straight to
//! its accuser and sender, a last probe of a suspect before its death, and a
//! death notice from an accuser held dead taken as a suspicion, and our
//! alive message sent ahead to a member returning from the dead, and a
//! push/pull state's verdicts taken as hearsay.
//! Each is switched off by its setting, and `CatchUp::off` is Go's
//! behaviour.

use std::net::SocketAddr;
use std::time::Duration;

use swim_core::wire::{for_each_message, Accusation, Ack, Limits, Message, NodeState};
use swim_core::{CatchUp, Config, Event, Instant, MemberState, Output, Swim};

mod common;

use common::*;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn local_catch_up() -> CatchUp {
    let mut c = Config::local("x", addr(0)).catch_up;
    // Off by default for now (docs/protocol.md §15.8); tested on.
    c.refute_returning_per_second = 10;
    c
}

/// A node on the Local preset with its periodic push/pull far away and no
/// TCP pings.
fn node(catch_up: CatchUp, probe_interval: Duration) -> Swim {
    let mut c = Config::local("me", addr(0));
    c.push_pull_interval = Duration::from_secs(3600);
    c.disable_tcp_pings = true;
    c.probe_interval = probe_interval;
    c.catch_up = catch_up;
    Swim::new(c, 7, Instant::ZERO).unwrap()
}

fn accusation(dead: bool, node: &str, incarnation: u32, from: &str) -> Vec<u8> {
    let a = Accusation {
        incarnation,
        node,
        from,
    };
    packet(if dead {
        Message::Dead(a)
    } else {
        Message::Suspect(a)
    })
}

/// Every message of the datagrams `me` sent since outputs were last taken,
/// with where each went, handed to `f`.
fn sent(me: &mut Swim, mut f: impl FnMut(SocketAddr, &Message<'_>)) -> Vec<Event> {
    let outs: Vec<Output> = std::iter::from_fn(|| me.poll_output()).collect();
    let mut events = Vec::new();
    for o in outs {
        match o {
            Output::Packet { to, data } => {
                let body = me.envelope().open_packet(&data).unwrap().into_owned();
                for_each_message(&body, &Limits::default(), &mut |m| {
                    if let Ok(m) = m {
                        f(to, &m);
                    }
                });
            }
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
    events
}

/// Our own alive messages sent straight to each address.
fn own_alives(me: &mut Swim) -> Vec<(SocketAddr, u32)> {
    let mut alives = Vec::new();
    sent(me, |to, m| {
        if let Message::Alive(a) = m {
            if a.node == "me" {
                alives.push((to, a.incarnation));
            }
        }
    });
    alives
}

#[test]
fn an_accusation_is_refuted_straight_to_its_accuser_and_sender() {
    for (catch_up, direct) in [(local_catch_up(), true), (CatchUp::off(), false)] {
        let mut me = node(catch_up, Duration::from_secs(3600));
        let t = Instant::ZERO + ms(100);
        me.handle_packet(t, addr(9), &alive_packet("acc", [127, 0, 0, 1], 7003, 1));
        let _ = own_alives(&mut me);
        // A suspicion from "acc", relayed by the node at addr(5): both hear
        // our refutation at once, besides its gossip.
        me.handle_packet(t, addr(5), &accusation(false, "me", 1, "acc"));
        let alives = own_alives(&mut me);
        if direct {
            assert_eq!(alives, [(addr(5), 2), (addr(3), 2)]);
        } else {
            assert!(alives.is_empty(), "{alives:?}");
        }
        // A death notice from a node we do not know: its sender hears.
        me.handle_packet(t, addr(6), &accusation(true, "me", 2, "stranger"));
        let alives = own_alives(&mut me);
        if direct {
            assert_eq!(alives, [(addr(6), 3)]);
        } else {
            assert!(alives.is_empty(), "{alives:?}");
        }
        assert_eq!(me.stats().direct_refutations, if direct { 3 } else { 0 });
        assert_eq!(me.member("me").unwrap().incarnation, 3);
    }
}

#[test]
fn direct_refutations_are_budgeted() {
    let mut catch_up = local_catch_up();
    catch_up.refutations_per_second = 4;
    let mut me = node(catch_up, Duration::from_secs(3600));
    let t = Instant::ZERO + ms(100);
    for i in 0..10 {
        me.handle_packet(t, addr(5), &accusation(false, "me", i, "x"));
    }
    assert_eq!(own_alives(&mut me).len(), 4);
    // A second later, a second's worth again.
    for i in 10..20 {
        me.handle_packet(t + secs(1), addr(5), &accusation(false, "me", i, "x"));
    }
    assert_eq!(own_alives(&mut me).len(), 4);
}

/// Runs `me` with members b (addr 1, the suspect), c and d (addrs 2 and 3,
/// which answer every ping), b suspected at 1 s by another node; when
/// `b_answers`, every ping to b, and every indirect ping about it, is acked
/// too. Returns when b was declared dead (if by 60 s), the last probes
/// started and those answered.
fn suspect_b(catch_up: CatchUp, b_answers: bool) -> (Option<Instant>, u64, u64) {
    let mut me = node(catch_up, Duration::from_secs(1));
    let t0 = Instant::ZERO + ms(10);
    for (i, name) in [(1u16, "b"), (2, "c"), (3, "d")] {
        me.handle_packet(
            t0,
            addr(9),
            &alive_packet(name, [127, 0, 0, 1], 7000 + i, 1),
        );
    }
    let accused_at = Instant::ZERO + secs(1);
    let mut dead_at = None;
    let mut t = t0;
    while t < Instant::ZERO + secs(60) {
        if t == accused_at {
            me.handle_packet(t, addr(9), &accusation(false, "b", 1, "x"));
        }
        me.handle_timeout(t);
        let mut acks = Vec::new();
        let events = sent(&mut me, |to, m| match m {
            Message::Ping(p) if to != addr(1) || b_answers => acks.push((to, p.seq_no)),
            Message::IndirectPing(ind) if ind.node != "b" || b_answers => {
                acks.push((to, ind.seq_no))
            }
            _ => {}
        });
        for e in events {
            if let Event::MemberFailed(m) = e {
                assert_eq!(&*m.name, "b");
                dead_at.get_or_insert(t);
            }
        }
        for (from, seq_no) in acks {
            let ack = packet(Message::Ack(Ack {
                seq_no,
                payload: (&[][..]).into(),
            }));
            me.handle_packet(t + ms(1), from, &ack);
        }
        t = t + ms(10);
    }
    let s = me.stats();
    (dead_at, s.last_probes, s.last_probes_answered)
}

#[test]
fn a_suspect_that_answers_its_last_probe_is_not_declared_dead() {
    // Go: an ack does not end a suspicion; only a refutation does.
    let (go_dead, _, _) = suspect_b(CatchUp::off(), true);
    assert!(go_dead.is_some());
    let (dead, probes, answered) = suspect_b(local_catch_up(), true);
    assert_eq!(dead, None, "declared dead though it answered");
    assert!(probes >= 2 && answered == probes, "{probes} {answered}");
}

#[test]
fn a_silent_suspect_is_declared_dead_no_later_than_without_the_last_probe() {
    let (go_dead, _, _) = suspect_b(CatchUp::off(), false);
    let mut no_last_probe = local_catch_up();
    no_last_probe.last_probes_per_second = 0;
    let (plain, probes, _) = suspect_b(no_last_probe, false);
    assert_eq!(probes, 0);
    let (dead, probes, answered) = suspect_b(local_catch_up(), false);
    assert_eq!((probes, answered), (1, 0));
    let (go_dead, plain, dead) = (go_dead.unwrap(), plain.unwrap(), dead.unwrap());
    assert_eq!(dead, plain);
    assert_eq!(dead, go_dead);
}

#[test]
fn the_last_probe_carries_the_accusation_and_asks_other_members() {
    let mut me = node(local_catch_up(), Duration::from_secs(1));
    let t0 = Instant::ZERO + ms(10);
    for (i, name) in [(1u16, "b"), (2, "c")] {
        me.handle_packet(
            t0,
            addr(9),
            &alive_packet(name, [127, 0, 0, 1], 7000 + i, 1),
        );
    }
    me.handle_packet(t0, addr(9), &accusation(false, "b", 1, "x"));
    assert_eq!(me.member("b").unwrap().state, MemberState::Suspect);
    let _ = sent(&mut me, |_, _| {});
    // A probe interval before the deadline: the ping with the accusation
    // beside it, and an indirect ping through c (Local asks one member).
    let mut seen = Vec::new();
    let mut t = t0;
    while me.stats().last_probes == 0 {
        t = t + ms(10);
        seen.clear();
        me.handle_timeout(t);
        sent(&mut me, |to, m| match m {
            Message::Ping(p) => seen.push((to, "ping", p.node.to_string())),
            Message::Suspect(s) => seen.push((to, "suspect", s.node.to_string())),
            Message::IndirectPing(ind) => seen.push((to, "indirect", ind.node.to_string())),
            _ => {}
        });
    }
    for want in [
        (addr(1), "ping"),
        (addr(1), "suspect"),
        (addr(2), "indirect"),
    ] {
        assert!(
            seen.iter().any(|(to, k, n)| (*to, *k) == want && n == "b"),
            "{want:?} not in {seen:?}"
        );
    }
    assert_eq!(me.stats().last_probes, 1);
    // Unanswered, it ends in the death at the deadline, a probe interval
    // later.
    let probed = t;
    while me.member("b").unwrap().state == MemberState::Suspect {
        t = t + ms(10);
        me.handle_timeout(t);
    }
    assert_eq!(me.member("b").unwrap().state, MemberState::Dead);
    assert_eq!(t, probed + secs(1));
}

#[test]
fn a_death_notice_from_an_accuser_held_dead_is_only_a_suspicion() {
    for (catch_up, doubted) in [(local_catch_up(), true), (CatchUp::off(), false)] {
        let mut me = node(catch_up, Duration::from_secs(3600));
        let t = Instant::ZERO + ms(100);
        for (i, name) in [(1u16, "b"), (2, "m"), (3, "c")] {
            me.handle_packet(t, addr(9), &alive_packet(name, [127, 0, 0, 1], 7000 + i, 1));
        }
        // m was declared dead here (it was across a partition).
        me.handle_packet(t, addr(9), &accusation(true, "m", 1, "c"));
        assert_eq!(me.member("m").unwrap().state, MemberState::Dead);
        // m's verdict about b, once the partition heals: a suspicion here,
        // where Go takes it as b's death.
        me.handle_packet(t, addr(2), &accusation(true, "b", 1, "m"));
        let want = if doubted {
            MemberState::Suspect
        } else {
            MemberState::Dead
        };
        assert_eq!(me.member("b").unwrap().state, want);
        assert_eq!(me.stats().doubted_deaths, u64::from(doubted));
        // An accuser held alive is believed, as in Go.
        me.handle_packet(t, addr(3), &accusation(true, "b", 1, "c"));
        assert_eq!(me.member("b").unwrap().state, MemberState::Dead);
    }
}

/// `me` with members b, c and d at addrs 1, 2 and 3, incarnation 1.
fn me_with_bcd(catch_up: CatchUp, probe_interval: Duration) -> Swim {
    let mut me = node(catch_up, probe_interval);
    let t = Instant::ZERO + ms(10);
    for (i, name) in [(1u16, "b"), (2, "c"), (3, "d")] {
        me.handle_packet(t, addr(9), &alive_packet(name, [127, 0, 0, 1], 7000 + i, 1));
    }
    me
}

#[test]
fn a_member_back_from_the_dead_gets_our_alive_above_one_raise() {
    for (catch_up, on) in [(local_catch_up(), true), (CatchUp::off(), false)] {
        let mut me = me_with_bcd(catch_up, Duration::from_secs(3600));
        // Joins are no return.
        assert!(own_alives(&mut me).is_empty());
        // b and c die here (cut off from us), then come back together, as
        // a partition heals: one raise covers both.
        let t = Instant::ZERO + ms(100);
        me.handle_packet(t, addr(3), &accusation(true, "b", 1, "d"));
        me.handle_packet(t, addr(3), &accusation(true, "c", 1, "d"));
        let _ = own_alives(&mut me);
        let t = t + secs(5);
        me.handle_packet(t, addr(1), &alive_packet("b", [127, 0, 0, 1], 7001, 2));
        me.handle_packet(t, addr(2), &alive_packet("c", [127, 0, 0, 1], 7002, 2));
        let alives = own_alives(&mut me);
        if on {
            assert_eq!(alives, [(addr(1), 2), (addr(2), 2)]);
        } else {
            assert!(alives.is_empty(), "{alives:?}");
        }
        // Every death is a suspicion run out: a member declared dead less
        // than the shortest suspicion timeout after our raise was cut off
        // before it (a partition's stale verdict running out after the
        // heal), so its return is covered by that raise. It still gets our
        // alive message.
        let shortest = me.config().suspicion_timeouts(4).min;
        me.handle_packet(t, addr(9), &accusation(true, "d", 1, "x"));
        me.handle_packet(
            t + ms(500),
            addr(3),
            &alive_packet("d", [127, 0, 0, 1], 7003, 2),
        );
        let alives = own_alives(&mut me);
        if on {
            assert_eq!(alives, [(addr(3), 2)]);
        } else {
            assert!(alives.is_empty(), "{alives:?}");
        }
        // d goes down a shortest suspicion timeout after that raise: it may
        // have learnt of the raise before it was cut off, so its return
        // needs another.
        let t = t + shortest + secs(1);
        me.handle_packet(t, addr(9), &accusation(true, "d", 2, "x"));
        me.handle_packet(
            t + secs(1),
            addr(3),
            &alive_packet("d", [127, 0, 0, 1], 7003, 3),
        );
        let alives = own_alives(&mut me);
        if on {
            assert_eq!(alives, [(addr(3), 3)]);
        } else {
            assert!(alives.is_empty(), "{alives:?}");
        }
        // A member back from someone else's suspicion is no return.
        me.handle_packet(t + secs(2), addr(1), &accusation(false, "c", 2, "b"));
        me.handle_packet(
            t + secs(2),
            addr(2),
            &alive_packet("c", [127, 0, 0, 1], 7002, 3),
        );
        assert!(own_alives(&mut me).is_empty());
        let s = me.stats();
        let want = if on { (2, 4, 3) } else { (0, 0, 1) };
        assert_eq!(
            (
                s.raised_for_returning,
                s.alive_to_returning,
                me.member("me").unwrap().incarnation
            ),
            want
        );
        // Not a refutation: the awareness score stays.
        assert_eq!((s.refutations, me.health_score()), (0, 0));
    }
}

#[test]
fn a_member_back_from_our_own_suspicion_gets_our_alive() {
    let mut me = me_with_bcd(local_catch_up(), Duration::from_secs(1));
    // Nobody answers: our probes make suspects.
    let mut t = Instant::ZERO + ms(10);
    let suspect = loop {
        t = t + ms(10);
        me.handle_timeout(t);
        let _ = own_alives(&mut me);
        let found = ["b", "c", "d"]
            .into_iter()
            .find(|n| me.member(n).unwrap().state == MemberState::Suspect);
        if let Some(n) = found {
            break n;
        }
    };
    let i = match suspect {
        "b" => 1,
        "c" => 2,
        _ => 3,
    };
    me.handle_packet(
        t,
        addr(i),
        &alive_packet(suspect, [127, 0, 0, 1], 7000 + i as u16, 2),
    );
    assert_eq!(own_alives(&mut me), [(addr(i), 2)]);
    assert_eq!(me.stats().raised_for_returning, 1);
}

#[test]
fn alives_to_returning_members_are_budgeted() {
    let mut catch_up = local_catch_up();
    catch_up.refute_returning_per_second = 2;
    let mut me = me_with_bcd(catch_up, Duration::from_secs(3600));
    let t = Instant::ZERO + ms(100);
    for n in ["b", "c", "d"] {
        me.handle_packet(t, addr(9), &accusation(true, n, 1, "x"));
    }
    let t = t + secs(1);
    for (i, n) in [(1u16, "b"), (2, "c"), (3, "d")] {
        me.handle_packet(t, addr(9), &alive_packet(n, [127, 0, 0, 1], 7000 + i, 2));
    }
    assert_eq!(own_alives(&mut me).len(), 2);
    let s = me.stats();
    assert_eq!((s.raised_for_returning, s.alive_to_returning), (1, 2));
}

/// Twenty Local nodes, node 19 with `go` (a Go node), the others with
/// `ours`; node 19 cut one way (it hears everyone, nobody hears it) from
/// 10 s to 16 s: long enough to suspect a few members, and after the heal
/// it probes them in turn, one a probe interval, slower than its
/// suspicions run out. Returns the deaths declared after 17 s (every node
/// is healthy) and how often ours found node 19 back over UDP.
fn one_way_cut(go: CatchUp, ours: CatchUp, offset: Duration) -> (Vec<(usize, String)>, u64) {
    const N: usize = 20;
    let mut c = Cluster::new(N, |i| {
        let mut cfg = Config::local(format!("node-{i}"), addr(i));
        cfg.catch_up = if i == N - 1 { go.clone() } else { ours.clone() };
        cfg
    });
    c.bootstrap();
    let start = c.now + offset;
    c.run_until(start + secs(10));
    c.muted = vec![N - 1];
    c.run_until(start + secs(16));
    c.muted.clear();
    c.run_until(start + secs(80));
    let mut deaths = Vec::new();
    for (i, n) in c.nodes.iter().enumerate() {
        for (t, e) in &n.events {
            if let Event::MemberFailed(m) = e {
                if *t > start + secs(17) {
                    deaths.push((i, m.name.to_string()));
                }
            }
        }
    }
    let back = (0..N - 1)
        .map(|i| c.nodes[i].swim.stats().back_over_udp)
        .sum();
    (deaths, back)
}

#[test]
fn a_member_back_from_a_one_way_cut_is_found_back_over_udp() {
    // Ours reach the cut node by TCP meanwhile, so none holds it dead or
    // suspect; the first UDP ack after the heal is its return. (Whether
    // its suspicions still become deaths depends on more than this: see
    // docs/protocol.md §15.8.)
    let mut no_returning = local_catch_up();
    no_returning.refute_returning_per_second = 0;
    let (_, back) = one_way_cut(CatchUp::off(), no_returning, Duration::ZERO);
    assert_eq!(back, 0);
    let (_, back) = one_way_cut(CatchUp::off(), local_catch_up(), Duration::ZERO);
    assert!(back >= 1, "nobody found the cut node back over UDP");
}

#[test]
fn verdicts_in_a_cut_nodes_state_are_hearsay_not_confirmations() {
    // After the heal, push/pulls with the cut node (and then between ours)
    // fetch suspicions nobody else heard. Taken as our own and gossiped,
    // they reach the cut node as new accusers and its deadlines come
    // forward: healthy deaths. As hearsay they reach only the accused,
    // which refutes. Twelve cut start times, a second apart.
    let deaths = |ours: CatchUp| -> usize {
        (0..12)
            .map(|k| one_way_cut(CatchUp::off(), ours.clone(), secs(k)).0.len())
            .sum()
    };
    let ours = Config::local("x", addr(0)).catch_up;
    assert_eq!(deaths(ours.clone()), 0);
    let mut no_hearsay = ours;
    no_hearsay.hearsay_per_second = 0;
    assert!(
        deaths(no_hearsay) > 0,
        "the harness no longer shows the cause"
    );
}

/// "b" (addr 1) opens a push/pull with `me` whose state lists "c"
/// (addr 2) suspect at incarnation 1.
fn state_from_b_suspecting_c(me: &mut Swim, now: Instant) {
    let nodes = vec![
        listed("b", 7001, 1, NodeState::Alive),
        listed("c", 7002, 1, NodeState::Suspect),
    ];
    push_pull_into(me, now, addr(1), false, nodes);
}

/// The suspect messages about "c" `me` gossips over the next second.
fn gossiped_suspicions_of_c(me: &mut Swim, from: Instant) -> usize {
    let mut n = 0;
    for i in 1..=10 {
        me.handle_timeout(from + ms(100 * i));
        sent(me, |_, m| {
            n += usize::from(matches!(m, Message::Suspect(a) if a.node == "c"))
        });
    }
    n
}

#[test]
fn a_suspicion_from_a_state_at_a_higher_incarnation_drops_the_alive_queued_for_its_member() {
    // c's join is queued (an alive derived from its record, incarnation 1);
    // a state then holds c suspect at 200. Untold to the cluster, the
    // suspicion must not turn the queued alive into "c alive at 200" (nor,
    // with the longer encoding, into a broadcast that no longer fits: the
    // fuzzer's swim_inputs found that).
    let mut me = me_with_bcd(local_catch_up(), Duration::from_secs(3600));
    let t = Instant::ZERO + ms(20);
    let nodes = vec![
        listed("b", 7001, 1, NodeState::Alive),
        listed("c", 7002, 200, NodeState::Suspect),
    ];
    push_pull_into(&mut me, t, addr(1), false, nodes);
    assert_eq!(me.member("c").unwrap().state, MemberState::Suspect);
    let mut alive_c = Vec::new();
    for i in 1..=20 {
        me.handle_timeout(t + ms(100 * i));
        sent(&mut me, |_, m| {
            if let Message::Alive(a) = m {
                if a.node == "c" {
                    alive_c.push(a.incarnation);
                }
            }
        });
    }
    assert!(alive_c.is_empty(), "{alive_c:?}");
    assert_eq!(me.stats().hearsay_suspicions, 1);
}

#[test]
fn a_suspicion_in_a_push_pull_state_is_told_to_the_member_as_the_peers() {
    for on in [true, false] {
        let mut catch_up = local_catch_up();
        if !on {
            catch_up.hearsay_per_second = 0;
        }
        let mut me = me_with_bcd(catch_up, Duration::from_secs(3600));
        let t = Instant::ZERO + ms(20);
        sent(&mut me, |_, _| {});
        state_from_b_suspecting_c(&mut me, t);
        assert_eq!(me.member("c").unwrap().state, MemberState::Suspect);
        let mut told = Vec::new();
        sent(&mut me, |to, m| {
            if let Message::Suspect(a) = m {
                told.push((to, a.node.to_string(), a.from.to_string()));
            }
        });
        let s = me.stats().clone();
        if on {
            // To c alone, in b's name; nothing gossiped.
            assert_eq!(told, [(addr(2), "c".to_string(), "b".to_string())]);
            assert_eq!((s.hearsay_suspicions, s.hearsay_told), (1, 1));
            assert_eq!(gossiped_suspicions_of_c(&mut me, t), 0);
            // The same verdict again adds nothing: it names no accuser.
            state_from_b_suspecting_c(&mut me, t + ms(1050));
            let mut again = 0;
            sent(&mut me, |_, m| {
                again += usize::from(matches!(m, Message::Suspect(_)))
            });
            assert_eq!(again, 0);
            assert_eq!(me.stats().hearsay_suspicions, 1);
        } else {
            // Go: our own suspicion, gossiped.
            assert!(told.is_empty());
            assert_eq!((s.hearsay_suspicions, s.hearsay_told), (0, 0));
            assert!(gossiped_suspicions_of_c(&mut me, t) > 0);
        }
    }
}
