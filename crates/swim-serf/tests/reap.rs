//! Forgetting and retrying members, sans IO: reaping after Go's timeouts,
//! force-leave and its pruning form, reconnect attempts.

use std::sync::Arc;
use std::time::Duration;

use swim_core::{Event, Instant, MemberState};
use swim_serf::messages::{Leave, Message};
use swim_serf::{LamportTime, MemberStatus, Serf, SerfConfig, SerfEvent, SerfOutput};

const T0: Instant = Instant::ZERO;
const S: Duration = Duration::from_secs(1);

fn member(name: &str, i: u8) -> swim_core::Member {
    swim_core::Member {
        name: Arc::from(name),
        addr: format!("127.0.0.{i}:7946").parse().unwrap(),
        meta: Arc::from(&[0xff, 0x80][..]),
        incarnation: 1,
        state: MemberState::Alive,
        vsn: [1, 5, 2, 2, 5, 5],
    }
}

/// `a` with members `b`, `c` alive.
fn cluster() -> Serf {
    let mut c = SerfConfig::new("a");
    c.reconnect_timeout = 100 * S;
    c.tombstone_timeout = 50 * S;
    c.reconnect_interval = 10 * S;
    let mut s = Serf::new(c).unwrap();
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        s.handle_event(T0, &Event::MemberJoined(member(n, i as u8 + 1)));
    }
    outputs(&mut s);
    s
}

/// Every message waiting in Serf's broadcast queues, each once, in the
/// order a packet with room for all takes them; the queues are emptied.
fn gossiped(s: &mut Serf) -> Vec<Vec<u8>> {
    let first = s.broadcasts(0, usize::MAX);
    while s.has_broadcasts() {
        s.broadcasts(0, usize::MAX);
    }
    first
}

/// What Serf asked for since the last call; what it gossips is dropped.
fn outputs(s: &mut Serf) -> Vec<SerfOutput> {
    gossiped(s);
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn reaped(outs: &[SerfOutput]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            SerfOutput::Event(SerfEvent::MemberReap(m)) => Some(m.name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn failed_and_departed_members_are_reaped_after_their_timeouts() {
    let mut s = cluster();
    s.handle_event(T0, &Event::MemberFailed(member("b", 2)));
    // c leaves: its intent, then the Swim's news.
    let leave = Message::Leave(Leave {
        ltime: LamportTime(5),
        node: "c".into(),
        prune: false,
    });
    s.handle_message(T0, &leave.to_bytes()).unwrap();
    s.handle_event(T0 + S, &Event::MemberLeft(member("c", 3)));
    outputs(&mut s);
    assert_eq!(s.member("c").unwrap().status, MemberStatus::Left);
    // The reconnect attempt comes first, then c's tombstone, then b.
    assert_eq!(s.poll_timeout(), Some(T0 + 10 * S));
    s.handle_timeout(T0 + 50 * S);
    assert!(reaped(&outputs(&mut s)).is_empty());
    s.handle_timeout(T0 + 51 * S);
    assert_eq!(reaped(&outputs(&mut s)), ["c"]);
    assert!(s.member("c").is_none());
    s.handle_timeout(T0 + 100 * S);
    assert_eq!(reaped(&outputs(&mut s)), ["b"]);
    assert_eq!(s.members().len(), 1);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn force_leave_turns_a_failed_member_into_a_departed_one() {
    let mut s = cluster();
    s.handle_event(T0, &Event::MemberFailed(member("b", 2)));
    outputs(&mut s);
    assert!(s.remove_failed_node(T0, "b", false).unwrap().is_some());
    let sent = gossiped(&mut s);
    let outs = outputs(&mut s);
    assert_eq!(s.member("b").unwrap().status, MemberStatus::Left);
    assert!(outs
        .iter()
        .any(|o| matches!(o, SerfOutput::Event(SerfEvent::MemberLeave(m)) if m.name == "b")));
    let sent: Vec<Message> = sent.iter().map(|b| Message::decode(b).unwrap()).collect();
    assert!(matches!(&sent[..], [Message::Leave(l)] if l.node == "b" && !l.prune));
}

#[test]
fn a_pruning_force_leave_forgets_the_member_everywhere() {
    // Ours.
    let mut s = cluster();
    s.handle_event(T0, &Event::MemberFailed(member("b", 2)));
    outputs(&mut s);
    s.remove_failed_node(T0, "b", true).unwrap();
    assert_eq!(reaped(&outputs(&mut s)), ["b"]);
    assert!(s.member("b").is_none());

    // Someone else's, about a member still leaving: forgotten once the
    // leave had time to spread (broadcast timeout + propagate delay).
    let mut s = cluster();
    let prune = Message::Leave(Leave {
        ltime: LamportTime(9),
        node: "c".into(),
        prune: true,
    });
    s.handle_message(T0, &prune.to_bytes()).unwrap();
    assert_eq!(s.member("c").unwrap().status, MemberStatus::Leaving);
    assert_eq!(s.poll_timeout(), Some(T0 + 6 * S));
    outputs(&mut s);
    s.handle_timeout(T0 + 6 * S);
    assert_eq!(reaped(&outputs(&mut s)), ["c"]);
}

#[test]
fn failed_members_are_retried_every_reconnect_interval() {
    let mut s = cluster();
    // Two failed, one alive (us): Go's odds failed/alive are certain.
    s.handle_event(T0, &Event::MemberFailed(member("b", 2)));
    s.handle_event(T0, &Event::MemberFailed(member("c", 3)));
    outputs(&mut s);
    assert_eq!(s.poll_timeout(), Some(T0 + 10 * S));
    s.handle_timeout(T0 + 10 * S);
    let outs = outputs(&mut s);
    let tried: Vec<&str> = outs
        .iter()
        .filter_map(|o| match o {
            SerfOutput::Reconnect { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(tried.len(), 1);
    assert!(["b", "c"].contains(&tried[0]));
    assert_eq!(s.poll_timeout(), Some(T0 + 20 * S));
    // Both back: no more attempts.
    s.handle_event(T0, &Event::MemberJoined(member("b", 2)));
    s.handle_event(T0, &Event::MemberJoined(member("c", 3)));
    s.handle_timeout(T0 + 20 * S);
    assert!(!outputs(&mut s)
        .iter()
        .any(|o| matches!(o, SerfOutput::Reconnect { .. })));
    assert_eq!(s.poll_timeout(), None);
}
