//! Serf's rules, one by one, fed events as a Swim would emit them.

use std::sync::Arc;
use std::time::Duration;

use swim_core::{Event, Instant, MemberState};
use swim_serf::messages::{Join, Leave, Message, UserEvent};
use swim_serf::tags::{encode_tags, Tags};
use swim_serf::{
    LamportTime, MemberStatus, Serf, SerfConfig, SerfError, SerfEvent, SerfOutput, SerfState,
};

const T0: Instant = Instant::ZERO;

fn serf(name: &str) -> Serf {
    Serf::new(SerfConfig::new(name)).unwrap()
}

fn member(name: &str, tags: &Tags) -> swim_core::Member {
    swim_core::Member {
        name: Arc::from(name),
        addr: "127.0.0.1:7946".parse().unwrap(),
        meta: Arc::from(encode_tags(tags).unwrap()),
        incarnation: 1,
        state: MemberState::Alive,
        vsn: [1, 5, 2, 2, 5, 5],
    }
}

fn joined(s: &mut Serf, name: &str) {
    s.handle_event(T0, &Event::MemberJoined(member(name, &Tags::new())));
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

/// Serf neither gossips nor asks for anything.
fn nothing(s: &mut Serf) -> bool {
    gossiped(s).is_empty() && outputs(s).is_empty()
}

/// What Serf gossips since the last call; its outputs are dropped.
fn broadcasts(s: &mut Serf) -> Vec<Message> {
    let sent = gossiped(s)
        .iter()
        .map(|b| Message::decode(b).unwrap())
        .collect();
    outputs(s);
    sent
}

fn user_events(outs: &[SerfOutput]) -> Vec<(String, Option<Vec<u8>>)> {
    outs.iter()
        .filter_map(|o| match o {
            SerfOutput::Event(SerfEvent::User(e)) => Some((e.name.clone(), e.payload.clone())),
            _ => None,
        })
        .collect()
}

fn msg(m: Message) -> Vec<u8> {
    m.to_bytes()
}

fn join_msg(node: &str, t: u64) -> Vec<u8> {
    msg(Message::Join(Join {
        ltime: LamportTime(t),
        node: node.into(),
    }))
}

fn leave_msg(node: &str, t: u64) -> Vec<u8> {
    msg(Message::Leave(Leave {
        ltime: LamportTime(t),
        node: node.into(),
        prune: false,
    }))
}

fn event_msg(t: u64, name: &str, payload: &[u8]) -> Vec<u8> {
    msg(Message::UserEvent(UserEvent {
        ltime: LamportTime(t),
        name: name.into(),
        payload: Some(payload.to_vec()),
        coalesce: true,
    }))
}

#[test]
fn intents_witness_the_member_clock() {
    let mut s = serf("a");
    s.handle_message(T0, &join_msg("b", 41)).unwrap();
    assert_eq!(s.clock(), LamportTime(42));
    s.handle_message(T0, &leave_msg("c", 7)).unwrap();
    assert_eq!(s.clock(), LamportTime(42), "an older time leaves the clock");
}

#[test]
fn an_intent_for_an_unknown_node_is_buffered_and_rebroadcast_only_when_new() {
    let mut s = serf("a");
    s.handle_message(T0, &join_msg("b", 5)).unwrap();
    assert_eq!(broadcasts(&mut s).len(), 1, "new: re-broadcast");
    s.handle_message(T0, &join_msg("b", 5)).unwrap();
    s.handle_message(T0, &join_msg("b", 4)).unwrap();
    assert!(broadcasts(&mut s).is_empty(), "seen or older: not again");
    s.handle_message(T0, &leave_msg("b", 6)).unwrap();
    assert_eq!(broadcasts(&mut s).len(), 1, "newer: re-broadcast");
    // When b shows up it takes the buffered (leave) intent.
    joined(&mut s, "b");
    assert_eq!(s.member("b").unwrap().status, MemberStatus::Leaving);
    // An older join does not bring it back; a newer one does.
    s.handle_message(T0, &join_msg("b", 6)).unwrap();
    assert_eq!(s.member("b").unwrap().status, MemberStatus::Leaving);
    s.handle_message(T0, &join_msg("b", 9)).unwrap();
    assert_eq!(s.member("b").unwrap().status, MemberStatus::Alive);
}

#[test]
fn buffered_intents_expire() {
    let mut s = serf("a");
    s.handle_message(T0, &leave_msg("b", 5)).unwrap();
    let expiry = s.poll_timeout().unwrap();
    assert_eq!(expiry, T0 + Duration::from_secs(300));
    s.handle_timeout(expiry);
    assert_eq!(s.poll_timeout(), None);
    joined(&mut s, "b");
    assert_eq!(s.member("b").unwrap().status, MemberStatus::Alive);
}

#[test]
fn a_member_gone_after_a_leave_intent_left_and_one_gone_without_failed() {
    let mut s = serf("a");
    joined(&mut s, "b");
    joined(&mut s, "c");
    s.handle_message(T0, &leave_msg("b", 3)).unwrap();
    outputs(&mut s);
    s.handle_event(T0, &Event::MemberLeft(member("b", &Tags::new())));
    s.handle_event(T0, &Event::MemberFailed(member("c", &Tags::new())));
    let outs = outputs(&mut s);
    assert!(matches!(&outs[0], SerfOutput::Event(SerfEvent::MemberLeave(m)) if m.name == "b"));
    assert!(matches!(&outs[1], SerfOutput::Event(SerfEvent::MemberFailed(m)) if m.name == "c"));
    // A late leave intent turns the failed member into a left one.
    s.handle_message(T0, &leave_msg("c", 4)).unwrap();
    assert_eq!(s.member("c").unwrap().status, MemberStatus::Left);
    assert!(outputs(&mut s)
        .iter()
        .any(|o| matches!(o, SerfOutput::Event(SerfEvent::MemberLeave(m)) if m.name == "c")));
}

#[test]
fn a_leave_intent_about_ourselves_while_alive_is_refuted_with_a_newer_join() {
    let mut s = serf("a");
    joined(&mut s, "a");
    s.handle_message(T0, &leave_msg("a", 10)).unwrap();
    let sent = broadcasts(&mut s);
    assert_eq!(sent.len(), 1);
    let Message::Join(j) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(j.node, "a");
    assert!(j.ltime.0 > 10);
    assert_eq!(s.member("a").unwrap().status, MemberStatus::Alive);
}

#[test]
fn our_leave_is_broadcast_at_the_current_time_and_marks_us_leaving() {
    let mut s = serf("a");
    joined(&mut s, "a");
    joined(&mut s, "b");
    s.handle_message(T0, &join_msg("b", 4)).unwrap();
    outputs(&mut s);
    s.leave(T0).unwrap();
    let sent = broadcasts(&mut s);
    assert!(matches!(&sent[..], [Message::Leave(l)] if l.node == "a" && l.ltime == LamportTime(5)));
    assert_eq!(s.clock(), LamportTime(6));
    assert_eq!(s.state(), SerfState::Leaving);
    assert_eq!(s.member("a").unwrap().status, MemberStatus::Leaving);
    assert_eq!(s.leave(T0), Err(SerfError::Left));
    assert_eq!(s.user_event("x", b"", false), Err(SerfError::Left));
}

#[test]
fn a_user_event_is_delivered_once_however_often_it_arrives() {
    let mut s = serf("a");
    s.handle_message(T0, &event_msg(3, "deploy", b"v1"))
        .unwrap();
    s.handle_message(T0, &event_msg(3, "deploy", b"v1"))
        .unwrap();
    // Same time, other payload: another event.
    s.handle_message(T0, &event_msg(3, "deploy", b"v2"))
        .unwrap();
    let rebroadcast = gossiped(&mut s).len();
    let outs = outputs(&mut s);
    let delivered = user_events(&outs);
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(rebroadcast, 2, "only what was new is passed on");
    assert_eq!(s.event_clock(), LamportTime(4));
}

#[test]
fn an_event_older_than_the_buffer_is_dropped() {
    let mut cfg = SerfConfig::new("a");
    cfg.event_buffer = 4;
    let mut s = Serf::new(cfg).unwrap();
    s.handle_message(T0, &event_msg(20, "new", b"")).unwrap();
    s.handle_message(T0, &event_msg(16, "old", b"")).unwrap();
    s.handle_message(T0, &event_msg(17, "recent", b"")).unwrap();
    let names: Vec<_> = user_events(&outputs(&mut s))
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(names, ["new", "recent"]);
}

#[test]
fn our_own_event_is_stamped_before_the_clock_moves_and_delivered_here_once() {
    let mut s = serf("a");
    // Go starts every clock at 1.
    assert_eq!(
        (s.clock(), s.event_clock(), s.query_clock()),
        (LamportTime(1), LamportTime(1), LamportTime(1))
    );
    s.user_event("deploy", b"v1", true).unwrap();
    assert_eq!(s.event_clock(), LamportTime(2));
    let sent = gossiped(&mut s);
    let outs = outputs(&mut s);
    assert_eq!(
        user_events(&outs),
        [("deploy".to_owned(), Some(b"v1".to_vec()))]
    );
    assert_eq!(sent, [event_msg(1, "deploy", b"v1")]);
    // Our own event coming back is not delivered again.
    s.handle_message(T0, &sent[0]).unwrap();
    assert!(nothing(&mut s));
    let too_big = "x".repeat(600);
    assert!(matches!(
        s.user_event(&too_big, b"", false),
        Err(SerfError::EventTooLarge {
            len: 600,
            limit: 512
        })
    ));
}

#[test]
fn a_late_joiner_gets_recent_events_once_and_the_clocks_from_push_pull() {
    let mut a = serf("a");
    joined(&mut a, "a");
    a.handle_message(T0, &join_msg("a", 6)).unwrap();
    a.user_event("deploy", b"v1", false).unwrap();
    a.user_event("restart", b"", false).unwrap();
    let state = a.local_state();

    let mut b = serf("b");
    let remote = Event::RemoteState {
        join: true,
        state: state.clone(),
    };
    b.handle_event(T0, &remote);
    b.handle_event(T0, &remote); // a second push/pull with the same state
    let sent = gossiped(&mut b);
    let outs = outputs(&mut b);
    let names: Vec<_> = user_events(&outs).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["deploy", "restart"]);
    assert!(sent.is_empty(), "push/pull state is not re-broadcast");
    // Clocks are witnessed one below the sender's.
    assert_eq!(b.event_clock(), a.event_clock());
    assert_eq!(b.clock(), a.clock());
    // a's status time arrived as a buffered join intent.
    joined(&mut b, "a");
    b.handle_message(T0, &join_msg("a", 6)).unwrap();
    assert!(
        broadcasts(&mut b).is_empty(),
        "a at 6 was known from the push/pull"
    );
}

#[test]
fn left_members_in_push_pull_are_leave_intents_one_past_their_status_time() {
    let mut a = serf("a");
    joined(&mut a, "c");
    a.handle_message(T0, &join_msg("c", 3)).unwrap();
    a.handle_message(T0, &leave_msg("c", 4)).unwrap();
    a.handle_event(T0, &Event::MemberLeft(member("c", &Tags::new())));
    let mut b = serf("b");
    joined(&mut b, "c");
    b.handle_event(
        T0,
        &Event::RemoteState {
            join: false,
            state: a.local_state(),
        },
    );
    assert_eq!(b.member("c").unwrap().status, MemberStatus::Leaving);
}

#[test]
fn tags_come_from_metadata_and_a_change_is_an_update() {
    let mut s = serf("a");
    let web = Tags::from([("role".to_owned(), "web".to_owned())]);
    s.handle_event(T0, &Event::MemberJoined(member("b", &web)));
    assert_eq!(s.member("b").unwrap().tags, web);
    let db = Tags::from([("role".to_owned(), "db".to_owned())]);
    s.handle_event(T0, &Event::MemberUpdated(member("b", &db)));
    assert!(outputs(&mut s)
        .iter()
        .any(|o| matches!(o, SerfOutput::Event(SerfEvent::MemberUpdate(m)) if m.tags == db)));
    // Our own tags: announced as metadata, refused over 512 bytes.
    s.set_tags(db.clone()).unwrap();
    assert_eq!(
        outputs(&mut s),
        [SerfOutput::UpdateMeta(encode_tags(&db).unwrap())]
    );
    let huge = Tags::from([("k".to_owned(), "v".repeat(600))]);
    assert!(matches!(s.set_tags(huge), Err(SerfError::TagsTooLarge(_))));
}

#[test]
fn a_join_that_reached_a_seed_broadcasts_our_join_intent() {
    let mut s = serf("a");
    joined(&mut s, "a");
    s.handle_message(T0, &join_msg("x", 9)).unwrap();
    outputs(&mut s);
    let done = |joined| Event::JoinCompleted {
        id: swim_core::JoinId(1),
        joined,
        failed: vec![],
    };
    s.handle_event(T0, &done(0));
    assert!(nothing(&mut s));
    s.handle_event(T0, &done(1));
    let sent = broadcasts(&mut s);
    assert!(matches!(&sent[..], [Message::Join(j)] if j.node == "a" && j.ltime == LamportTime(10)));
}

#[test]
fn malformed_messages_are_an_error_not_a_panic() {
    let mut s = serf("a");
    assert!(s.handle_message(T0, &[3, 0xc1]).is_err());
    assert!(s.merge_remote_state(T0, &join_msg("b", 1), false).is_err());
    s.handle_event(
        T0,
        &Event::UserMessage {
            from: "127.0.0.1:1".parse().unwrap(),
            node: None,
            payload: vec![0xee],
        },
    );
    assert!(nothing(&mut s));
}

#[test]
fn a_join_that_ignores_old_events_delivers_none_of_the_seeds() {
    let mut a = serf("a");
    a.user_event("deploy", b"v1", false).unwrap();
    let state = a.local_state();
    let remote = |join| Event::RemoteState {
        join,
        state: state.clone(),
    };

    let mut b = serf("b");
    b.ignore_old_events_on_join();
    b.handle_event(T0, &remote(true));
    b.join_completed(T0, 1);
    assert!(user_events(&outputs(&mut b)).is_empty());
    // Over: a later event is delivered, and so would a later joiner's
    // push/pull be (the minimum event time stays where the join set it).
    a.user_event("restart", b"", false).unwrap();
    b.handle_event(
        T0,
        &Event::RemoteState {
            join: true,
            state: a.local_state(),
        },
    );
    let names: Vec<_> = user_events(&outputs(&mut b))
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(names, ["restart"]);

    // The join finishing before its push/pull was merged (a driver's
    // events run behind): the push/pull still counts as the join's.
    let mut c = serf("c");
    c.ignore_old_events_on_join();
    c.join_completed(T0, 1);
    c.handle_event(T0, &remote(true));
    assert!(user_events(&outputs(&mut c)).is_empty());
    c.handle_event(T0, &remote(false));
    assert!(user_events(&outputs(&mut c)).is_empty(), "seen already");
}
