//! Serf's three broadcast queues, as Go Serf keeps them: intents, queries
//! and events each sent `retransmit_mult × ceil(log10(n + 1))` times (n
//! the Serf members), a packet filled from the intents, then the queries,
//! then the events, a queue over its bound pruned.

use std::time::Duration;

use swim_core::BroadcastOutcome;
use swim_serf::messages::{Join, Message, Query};
use swim_serf::{LamportTime, QueueDepth, Serf, SerfConfig, SerfOutput};

mod common;

use common::{event, member_joins, T0};

/// Serf for `a` with `members` members (`a` among them).
fn serf_with(config: SerfConfig, members: usize) -> Serf {
    let mut s = Serf::new(config).unwrap();
    for i in 0..members {
        let name = if i == 0 {
            "a".to_owned()
        } else {
            format!("m{i}")
        };
        member_joins(&mut s, &name, &format!("127.0.0.1:{}", 7000 + i));
    }
    while s.poll_output().is_some() {}
    s
}

fn serf(members: usize) -> Serf {
    serf_with(SerfConfig::new("a"), members)
}

/// A join intent for a node not (yet) a member: new, so re-broadcast.
fn intent(node: &str, t: u64) -> Vec<u8> {
    Message::Join(Join {
        ltime: LamportTime(t),
        node: node.into(),
    })
    .to_bytes()
}

fn query(t: u64, id: u32) -> Vec<u8> {
    Message::Query(Query {
        ltime: LamportTime(t),
        id,
        addr: Some(vec![127, 0, 0, 2]),
        port: 7946,
        source_node: "m1".into(),
        filters: Vec::new(),
        flags: 0,
        relay_factor: 0,
        timeout: Duration::from_secs(5),
        name: "q".into(),
        payload: Some(b"p".to_vec()),
    })
    .to_bytes()
}

/// How many packets each message went out in until the queues emptied.
fn sends(s: &mut Serf) -> Vec<(Vec<u8>, usize)> {
    let mut counts: Vec<(Vec<u8>, usize)> = Vec::new();
    for _ in 0..1000 {
        if !s.has_broadcasts() {
            return counts;
        }
        for m in s.broadcasts(3, 1400) {
            match counts.iter_mut().find(|(seen, _)| *seen == m) {
                Some((_, n)) => *n += 1,
                None => counts.push((m, 1)),
            }
        }
    }
    panic!("the queues never emptied");
}

fn finished(s: &mut Serf) -> Vec<BroadcastOutcome> {
    std::iter::from_fn(|| s.poll_output())
        .filter_map(|o| match o {
            SerfOutput::IntentFinished { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect()
}

#[test]
fn each_queue_sends_a_message_retransmit_mult_times_the_digits_of_the_member_count() {
    // Go's memberlist LAN multiplier, 4: n = 1..9 → 4, 10..99 → 8, 100.. → 12.
    for (members, expected) in [(1, 4), (9, 4), (10, 8), (99, 8), (100, 12)] {
        let mut s = serf(members);
        s.handle_message(T0, &intent("x", 50)).unwrap();
        s.handle_message(T0, &query(3, 9)).unwrap();
        s.handle_message(T0, &event(3, "deploy", b"v1")).unwrap();
        let counts = sends(&mut s);
        assert_eq!(counts.len(), 3, "{members} members");
        for (m, n) in counts {
            let kind = Message::decode(&m).unwrap().message_type();
            assert_eq!(n, expected, "{kind:?} with {members} members");
        }
    }
    // The Swim's local profile multiplier, 2, as SerfNode copies it.
    let mut config = SerfConfig::new("a");
    config.retransmit_mult = 2;
    let mut s = serf_with(config, 5);
    s.user_event("deploy", b"v2", false).unwrap();
    assert_eq!(sends(&mut s)[0].1, 2);
}

#[test]
fn a_packet_takes_intents_then_queries_then_events() {
    let mut s = serf(3);
    // Queued in the opposite order, each kind the shortest of the three.
    let e = event(3, "e", b"");
    let q = query(3, 9);
    let i = intent("x", 50);
    s.handle_message(T0, &e).unwrap();
    s.handle_message(T0, &q).unwrap();
    s.handle_message(T0, &i).unwrap();
    assert_eq!(s.broadcasts(3, 1400), [i.clone(), q.clone(), e.clone()]);
    // The room is shared as Go shares it: what the intents took (message
    // and overhead), the queries do not get, and so on.
    let room = i.len() + q.len() + 2 * 3;
    assert_eq!(s.broadcasts(3, room), [i.clone(), q.clone()]);
    assert_eq!(s.broadcasts(3, room - 1), [i.clone(), e.clone()]);
}

#[test]
fn a_message_bigger_than_the_room_is_left_for_the_next_packet() {
    let mut s = serf(3);
    let big = event(3, "big", &[7; 300]);
    let small = event(3, "small", b"");
    s.handle_message(T0, &big).unwrap();
    s.handle_message(T0, &small).unwrap();
    // Room for the small one only: it goes, the big one waits.
    assert_eq!(s.broadcasts(3, small.len() + 3 + 10), [small]);
    assert_eq!(s.queue_depths().event.depth, 2);
    // The big one was sent less: it goes first once it fits.
    assert_eq!(s.broadcasts(3, big.len() + 3), [big]);
    // An intent too big for the room does not keep a query out.
    let mut s = serf(3);
    let long_name = "n".repeat(200);
    let i = intent(&long_name, 50);
    let q = query(3, 9);
    s.handle_message(T0, &i).unwrap();
    s.handle_message(T0, &q).unwrap();
    assert_eq!(s.broadcasts(3, q.len() + 3), [q]);
    assert_eq!(s.broadcasts(3, i.len() + 3), [i]);
    // No room at all: nothing, and nothing counted as sent.
    assert!(s.broadcasts(3, 3).is_empty());
    assert_eq!(s.broadcasts(3, 1400).len(), 2);
}

#[test]
fn a_queue_over_its_bound_drops_its_most_sent_then_shortest_then_oldest() {
    let mut config = SerfConfig::new("a");
    config.max_queue_depth = 3;
    let mut s = serf_with(config, 3);
    let sent_once = event(2, "old", b"");
    s.handle_message(T0, &sent_once).unwrap();
    assert_eq!(s.broadcasts(3, 1400), [sent_once]);
    let events: Vec<Vec<u8>> = (3..7).map(|t| event(t, "same", b"len")).collect();
    for e in &events {
        s.handle_message(T0, e).unwrap();
    }
    // Five queued, three kept: the one sent already went first, then the
    // oldest unsent one.
    assert_eq!(
        s.queue_depths().event,
        QueueDepth {
            depth: 3,
            queued: 5,
            pruned: 2
        }
    );
    let mut left = s.broadcasts(3, 1400);
    left.sort();
    let mut newest = events[1..].to_vec();
    newest.sort();
    assert_eq!(left, newest);
    // The other queues are bounded on their own.
    assert_eq!(s.queue_depths().intent, QueueDepth::default());
    assert_eq!(s.queue_depths().query, QueueDepth::default());
}

#[test]
fn with_a_minimum_the_bound_is_twice_the_members() {
    let mut config = SerfConfig::new("a");
    config.max_queue_depth = 1; // ignored with a minimum (Go)
    config.min_queue_depth = 2;
    let mut s = serf_with(config.clone(), 3);
    for t in 0..10 {
        s.handle_message(T0, &intent(&format!("x{t}"), 50)).unwrap();
    }
    assert_eq!(s.queue_depths().intent.depth, 6);
    assert_eq!(s.queue_depths().intent.pruned, 4);
    let mut s = serf_with(config, 0);
    for t in 0..10 {
        s.handle_message(T0, &intent(&format!("x{t}"), 50)).unwrap();
    }
    assert_eq!(s.queue_depths().intent.depth, 2, "at least the minimum");
}

#[test]
fn our_leave_intent_is_reported_once_sent_its_number_of_times_or_dropped() {
    // Two members: 4 sends.
    let mut s = serf(2);
    let id = s.leave(T0).unwrap().expect("gossiped: m1 is alive");
    for _ in 0..3 {
        assert_eq!(s.broadcasts(3, 1400).len(), 1);
        assert!(finished(&mut s).is_empty());
    }
    assert_eq!(s.broadcasts(3, 1400).len(), 1);
    let outs: Vec<SerfOutput> = std::iter::from_fn(|| s.poll_output()).collect();
    assert_eq!(
        outs,
        [SerfOutput::IntentFinished {
            id,
            outcome: BroadcastOutcome::Sent
        }]
    );
    assert!(!s.has_broadcasts());

    // Pruned before that: dropped, and reported as Go closes the channel.
    let mut config = SerfConfig::new("a");
    config.max_queue_depth = 1;
    let mut s = serf_with(config, 2);
    s.leave(T0).unwrap().expect("gossiped");
    s.broadcasts(3, 1400); // sent once: now the first to go
    s.handle_message(T0, &intent("x", 50)).unwrap();
    assert_eq!(finished(&mut s), [BroadcastOutcome::Dropped]);
    assert_eq!(s.queue_depths().intent.pruned, 1);
}

#[test]
fn nothing_is_gossiped_without_a_member_to_hear_it_but_events_still_queue() {
    let mut s = serf(1);
    assert_eq!(s.leave(T0).unwrap(), None, "no one else is alive (Go)");
    let mut s = serf(0);
    s.user_event("e", b"", false).unwrap();
    // Go's retransmit limit for no members is 0: sent once.
    assert_eq!(sends(&mut s)[0].1, 1);
}
