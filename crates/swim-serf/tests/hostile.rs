//! Hostile peers: malformed and oversized messages, a query flood, an event
//! storm, a Lamport clock pushed to `u64::MAX`, made-up nodes, relays
//! aimed back at us. Each gets a typed rejection, counted in
//! `Serf::stats`, and changes nothing; every buffer and table stays within
//! Go's bound or, where Go has none, ours (`swim_serf::bounds`,
//! docs/serf.md "Bounds beyond Go's").

use std::time::Duration;

use swim_core::Instant;
use swim_serf::bounds::{
    EVENTS_PER_LTIME_MAX, LAMPORT_TIME_LIMIT, QUERIES_PER_LTIME_MAX, RECENT_INTENTS_MAX,
};
use swim_serf::messages::{
    EventRecord, EventsAt, KeyRequest, Leave, Message, PushPull, Query, QueryResponse, Relay,
    UserEvent, MAX_MESSAGE_LEN,
};
use swim_serf::{
    LamportTime, Member, QueryParams, QueryProgress, Serf, SerfConfig, SerfEvent, SerfOutput,
    SerfRejection, USER_EVENT_SIZE_MAX,
};

mod common;

use common::{event, golden, join, member_joins, T0};

/// Node "me" with members "me", "b", "c", "d"; outputs drained.
fn serf() -> Serf {
    serf_with(SerfConfig::new("me"))
}

fn serf_with(mut config: SerfConfig) -> Serf {
    config.name = "me".into();
    config.seed = 7;
    let mut s = Serf::new(config).unwrap();
    for (i, name) in ["me", "b", "c", "d"].iter().enumerate() {
        member_joins(&mut s, name, &format!("127.0.0.{}:7946", i + 1));
    }
    outputs(&mut s);
    s
}

fn outputs(s: &mut Serf) -> Vec<SerfOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// Everything a peer's message could change that Serf shows: the state it
/// hands to push/pulls (clocks, status times, left members, the event
/// buffer), the member table, its next timer (buffered intents, open
/// queries) and the outputs it queued.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    state: Vec<u8>,
    members: Vec<Member>,
    clocks: [LamportTime; 3],
    timeout: Option<Instant>,
    outputs: usize,
}

fn fingerprint(s: &mut Serf) -> Fingerprint {
    let outs = outputs(s);
    Fingerprint {
        state: s.local_state(),
        members: s.members(),
        clocks: [s.clock(), s.event_clock(), s.query_clock()],
        timeout: s.poll_timeout(),
        outputs: outs.len(),
    }
}

/// Feeds `raw` as a user message; asserts it was refused for `why` (once)
/// and changed nothing.
fn refused(s: &mut Serf, raw: &[u8], why: SerfRejection) {
    let before = fingerprint(s);
    let (total, count) = (s.stats().rejected, s.stats().rejected_for(why));
    assert_eq!(s.handle_message(T0, raw), Ok(()));
    assert_eq!(
        s.stats().rejected_for(why),
        count + 1,
        "not refused as {why}"
    );
    assert_eq!(s.stats().rejected, total + 1);
    assert_eq!(s.stats().last_rejected, Some(why));
    assert_eq!(
        fingerprint(s),
        before,
        "a message refused as {why} changed state"
    );
}

fn query(t: u64, id: u32) -> Vec<u8> {
    Message::Query(Query {
        ltime: LamportTime(t),
        id,
        addr: Some(vec![127, 0, 0, 2]),
        port: 7946,
        source_node: "b".into(),
        timeout: Duration::from_secs(1),
        name: "q".into(),
        payload: Some(b"x".to_vec()),
        ..Query::default()
    })
    .to_bytes()
}

fn user_events(outs: &[SerfOutput]) -> usize {
    outs.iter()
        .filter(|o| matches!(o, SerfOutput::Event(SerfEvent::User(_))))
        .count()
}

fn push_pull(s: &Serf) -> PushPull {
    match Message::decode(&s.local_state()) {
        Ok(Message::PushPull(pp)) => pp,
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_messages_are_counted_by_kind_and_change_nothing() {
    let mut s = serf();
    let before = fingerprint(&mut s);
    let mut errors = 0;
    // Relays aside: one that decodes with a truncated message for us
    // counts that message's error (relays_go_only_to_members_and_never_nest).
    for msg in golden().into_iter().filter(|m| m.first() != Some(&9)) {
        for end in 0..msg.len() {
            errors += u64::from(s.handle_message(T0, &msg[..end]).is_err());
        }
    }
    assert!(errors > 1000, "only {errors} truncations failed to decode");
    assert_eq!(s.stats().decode_errors, errors);
    assert_eq!(fingerprint(&mut s), before);
    assert!(s.handle_message(T0, &[1]).is_err());
    assert_eq!(s.stats().last_decode_error, Some("truncated"));
    errors += 1;
    // A push/pull state that is no push/pull is a decode error too.
    assert!(s.merge_remote_state(T0, &join(5, "x"), false).is_err());
    assert_eq!(s.stats().decode_errors, errors + 1);
    assert_eq!(s.stats().last_decode_error, Some("unknown_type"));
    assert_eq!(s.stats().rejected, 0);
}

#[test]
fn messages_that_never_come_as_user_messages_are_refused() {
    let mut s = serf();
    let key = Message::KeyRequest(KeyRequest {
        key: Some(vec![1; 16]),
    });
    for raw in [
        s.local_state(),
        key.to_bytes(),
        Message::ConflictResponse(None).to_bytes(),
    ] {
        refused(&mut s, &raw, SerfRejection::UnexpectedType);
    }
}

#[test]
fn oversized_messages_and_events_are_refused() {
    let mut s = serf();
    let huge = vec![1u8; MAX_MESSAGE_LEN + 1];
    assert!(s.handle_message(T0, &huge).is_err());
    assert_eq!(s.stats().last_decode_error, Some("message_too_large"));
    // No Go node sends an event over 9 KiB (UserEventSizeLimit); a 20 MiB
    // one fits in a stream's user message.
    for len in [USER_EVENT_SIZE_MAX, 1 << 20] {
        refused(
            &mut s,
            &event(3, "big", &vec![0; len]),
            SerfRejection::EventTooLarge,
        );
    }
    // The largest Go sends is taken.
    let fits = event(3, "ok", &vec![0; USER_EVENT_SIZE_MAX - 40]);
    assert!(fits.len() <= USER_EVENT_SIZE_MAX);
    s.handle_message(T0, &fits).unwrap();
    assert_eq!(user_events(&outputs(&mut s)), 1);
    // In a push/pull, the big event alone is refused.
    let mut pp = push_pull(&s);
    pp.events = vec![Some(EventsAt {
        ltime: LamportTime(4),
        events: vec![
            EventRecord {
                name: "big".into(),
                payload: Some(vec![0; USER_EVENT_SIZE_MAX]),
            },
            EventRecord {
                name: "small".into(),
                payload: None,
            },
        ],
    })];
    let large = s.stats().rejected_for(SerfRejection::EventTooLarge);
    s.merge_remote_state(T0, &Message::PushPull(pp).to_bytes(), false)
        .unwrap();
    assert_eq!(
        s.stats().rejected_for(SerfRejection::EventTooLarge),
        large + 1
    );
    assert_eq!(user_events(&outputs(&mut s)), 1);
}

#[test]
fn a_clock_pushed_to_the_maximum_is_refused_before_any_clock_moves() {
    // Go witnesses any time: at u64::MAX its clock wraps to 0 (lamport.go:
    // `other+1`), and every node that hears the message follows.
    let mut s = serf();
    for t in [u64::MAX, u64::MAX - 1, LAMPORT_TIME_LIMIT] {
        for raw in [
            join(t, "b"),
            join(t, "made-up"),
            Message::Leave(Leave {
                ltime: LamportTime(t),
                node: "c".into(),
                prune: true,
            })
            .to_bytes(),
            event(t, "e", b""),
            query(t, 1),
        ] {
            refused(&mut s, &raw, SerfRejection::ClockOutOfRange);
        }
        // A push/pull with any one time past the limit is refused whole.
        let good = push_pull(&s);
        let mut bad = [good.clone(), good.clone(), good.clone(), good.clone()];
        bad[0].ltime = LamportTime(t);
        bad[1].query_ltime = LamportTime(t);
        bad[2].status_ltimes.insert("b".into(), LamportTime(t));
        bad[3].events[0] = Some(EventsAt {
            ltime: LamportTime(t),
            events: vec![EventRecord::default()],
        });
        for pp in bad {
            let before = fingerprint(&mut s);
            let count = s.stats().rejected_for(SerfRejection::ClockOutOfRange);
            s.merge_remote_state(T0, &Message::PushPull(pp).to_bytes(), false)
                .unwrap();
            assert_eq!(
                s.stats().rejected_for(SerfRejection::ClockOutOfRange),
                count + 1
            );
            assert_eq!(fingerprint(&mut s), before);
        }
    }
    // A left member's time is taken one past its status time.
    let mut left = push_pull(&s);
    left.status_ltimes
        .insert("gone".into(), LamportTime(LAMPORT_TIME_LIMIT - 1));
    left.left_members.push("gone".into());
    let count = s.stats().rejected_for(SerfRejection::ClockOutOfRange);
    s.merge_remote_state(T0, &Message::PushPull(left).to_bytes(), false)
        .unwrap();
    assert_eq!(
        s.stats().rejected_for(SerfRejection::ClockOutOfRange),
        count + 1
    );

    // Just below the limit is a Lamport time like any other: the clocks
    // jump to the limit and keep working from there.
    let top = LAMPORT_TIME_LIMIT - 1;
    s.handle_message(T0, &join(top, "b")).unwrap();
    s.handle_message(T0, &event(top, "e", b"")).unwrap();
    s.handle_message(T0, &query(top, 1)).unwrap();
    let limit = LamportTime(LAMPORT_TIME_LIMIT);
    assert_eq!([s.clock(), s.event_clock(), s.query_clock()], [limit; 3]);
    s.user_event("after", b"", false).unwrap();
    assert_eq!(s.event_clock(), LamportTime(LAMPORT_TIME_LIMIT + 1));
    let outs = outputs(&mut s);
    assert_eq!(user_events(&outs), 2, "the event at the top and ours");
    refused(&mut s, &join(u64::MAX, "b"), SerfRejection::ClockOutOfRange);
}

#[test]
fn an_event_storm_is_bounded_per_time_and_by_the_buffer() {
    let mut s = serf();
    // Many distinct events at one Lamport time.
    for i in 0..EVENTS_PER_LTIME_MAX {
        s.handle_message(T0, &event(5, &format!("e{i}"), b""))
            .unwrap();
    }
    assert_eq!(user_events(&outputs(&mut s)), EVENTS_PER_LTIME_MAX);
    for i in 0..1000 {
        let raw = event(5, &format!("more{i}"), b"");
        refused(&mut s, &raw, SerfRejection::EventTimeFull);
    }
    // A repeat of a kept one is no refusal: gossip repeats everything.
    s.handle_message(T0, &event(5, "e0", b"")).unwrap();
    assert_eq!(s.stats().rejected, 1000);

    // Many times: the buffer keeps the newest `event_buffer` times, and
    // what is older than it covers is refused, as Go refuses it.
    let slots = s.config().event_buffer as u64;
    for t in 6..6 + 4 * slots {
        s.handle_message(T0, &event(t, "storm", &t.to_be_bytes()))
            .unwrap();
    }
    assert_eq!(user_events(&outputs(&mut s)), 4 * slots as usize);
    let pp = push_pull(&s);
    assert_eq!(pp.events.len() as u64, slots);
    let kept: usize = pp.events.iter().flatten().map(|at| at.events.len()).sum();
    assert_eq!(kept as u64, slots);
    for t in [5, 6, 6 + 2 * slots] {
        refused(&mut s, &event(t, "late", b""), SerfRejection::EventTooOld);
    }
}

#[test]
fn a_query_flood_from_one_peer_is_bounded_per_time_and_by_the_buffer() {
    let mut s = serf();
    for id in 0..QUERIES_PER_LTIME_MAX as u32 {
        s.handle_message(T0, &query(5, id)).unwrap();
    }
    let delivered = |outs: &[SerfOutput]| {
        outs.iter()
            .filter(|o| matches!(o, SerfOutput::Event(SerfEvent::Query(_))))
            .count()
    };
    assert_eq!(delivered(&outputs(&mut s)), QUERIES_PER_LTIME_MAX);
    for id in 1000..11_000 {
        refused(&mut s, &query(5, id), SerfRejection::QueryTimeFull);
    }
    let slots = s.config().query_buffer as u64;
    for t in 6..6 + 2 * slots {
        s.handle_message(T0, &query(t, 1)).unwrap();
    }
    assert_eq!(delivered(&outputs(&mut s)), 2 * slots as usize);
    refused(&mut s, &query(6, 2), SerfRejection::QueryTooOld);
}

#[test]
fn responses_beyond_our_query_are_refused() {
    let mut s = serf();
    let params = QueryParams {
        request_ack: true,
        timeout: Some(Duration::from_secs(5)),
        ..QueryParams::default()
    };
    let id = s.query(T0, "q", b"", &params).unwrap();
    outputs(&mut s);
    let response = |from: &str, ltime: LamportTime, id: u32, flags: u32| {
        Message::QueryResponse(QueryResponse {
            ltime,
            id,
            from: from.into(),
            flags,
            payload: Some(b"r".to_vec()),
        })
        .to_bytes()
    };
    // Unknown time, unknown id.
    let unknown = SerfRejection::ResponseUnknownQuery;
    refused(&mut s, &response("b", LamportTime(99), id.id, 0), unknown);
    refused(&mut s, &response("b", id.ltime, id.id ^ 1, 0), unknown);
    // Four members were alive: our own ack came already; three more acks
    // and four responses are taken, from any names (Go's channels hold
    // as many), then no more.
    for i in 0..3 {
        s.handle_message(T0, &response(&format!("n{i}"), id.ltime, id.id, 1))
            .unwrap();
    }
    for i in 0..4 {
        s.handle_message(T0, &response(&format!("n{i}"), id.ltime, id.id, 0))
            .unwrap();
    }
    assert_eq!(outputs(&mut s).len(), 7);
    let overflow = SerfRejection::ResponseOverflow;
    for i in 4..1000 {
        let from = format!("forged{i}");
        refused(&mut s, &response(&from, id.ltime, id.id, 1), overflow);
        refused(&mut s, &response(&from, id.ltime, id.id, 0), overflow);
    }
    let dup = SerfRejection::ResponseDuplicate;
    refused(&mut s, &response("n0", id.ltime, id.id, 0), dup);
    // Past its deadline, the query is unknown.
    let end = T0 + Duration::from_secs(5);
    s.handle_timeout(end);
    assert_eq!(
        outputs(&mut s),
        [SerfOutput::Query(QueryProgress::Closed { query: id })]
    );
    refused(&mut s, &response("b", id.ltime, id.id, 0), unknown);
}

#[test]
fn intents_about_made_up_nodes_fill_a_bounded_table_that_expires() {
    let mut s = serf();
    for i in 0..RECENT_INTENTS_MAX {
        s.handle_message(T0, &join(2, &format!("made-up-{i}")))
            .unwrap();
    }
    outputs(&mut s);
    for i in 0..100 {
        let raw = join(3, &format!("more-{i}"));
        refused(&mut s, &raw, SerfRejection::IntentTableFull);
    }
    // Members, and nodes with an intent already, are still heard.
    s.handle_message(T0, &join(10, "b")).unwrap();
    s.handle_message(T0, &join(11, "made-up-0")).unwrap();
    assert_eq!(s.stats().rejected, 100);
    // Go's bound: each intent expires after RecentIntentTimeout.
    let timeout = s.config().recent_intent_timeout;
    assert_eq!(s.poll_timeout(), Some(T0 + timeout));
    s.handle_timeout(T0 + timeout);
    assert_eq!(s.poll_timeout(), None);
    s.handle_message(T0 + timeout, &join(12, "more-0")).unwrap();
    assert_eq!(s.stats().rejected, 100);
}

#[test]
fn relays_go_only_to_members_and_never_nest() {
    let mut s = serf();
    // A relay to us holding a relay to us, 100,000 deep (4.5 MB): Go
    // would send each layer over the network to itself; we refuse the
    // first. A relay is its header, then the message it carries.
    let header = Message::Relay(Relay {
        dest_ip: vec![127, 0, 0, 1],
        dest_port: 7946,
        dest_zone: String::new(),
        dest_name: "me".into(),
        message: Vec::new(),
    })
    .to_bytes();
    let mut raw = header.repeat(100_000);
    raw.extend(Message::QueryResponse(QueryResponse::default()).to_bytes());
    refused(&mut s, &raw, SerfRejection::RelayNotResponse);
    let to_stranger = Message::Relay(Relay {
        dest_ip: vec![10, 9, 9, 9],
        dest_port: 1,
        dest_zone: String::new(),
        dest_name: "stranger".into(),
        message: Message::QueryResponse(QueryResponse::default()).to_bytes(),
    });
    refused(
        &mut s,
        &to_stranger.to_bytes(),
        SerfRejection::RelayUnknownDestination,
    );
}

#[test]
fn a_bad_coordinate_is_refused_and_ours_stays() {
    let mut s = serf();
    let ours = s.coordinate().cloned();
    for payload in [&[9u8, 0x80][..], &[1, 0xc1], &[1]] {
        s.ping_completed("b", Duration::from_millis(5), payload);
    }
    assert_eq!(s.stats().rejected_for(SerfRejection::CoordinateRefused), 3);
    assert_eq!(s.coordinate().cloned(), ours);
    assert_eq!(s.cached_coordinate("b"), None);
    // An empty payload is a node without coordinates: no refusal.
    s.ping_completed("b", Duration::from_millis(5), &[]);
    assert_eq!(s.stats().rejected, 3);
}

#[test]
fn user_coalescing_holds_a_storm_no_longer_than_its_period() {
    // Go's user coalescer: events are held until the quiescent period
    // passes without one, or the coalesce period since the first ends —
    // a storm cannot keep them back longer.
    let mut config = SerfConfig::new("me");
    config.user_coalesce_period = Duration::from_secs(1);
    config.user_quiescent_period = Duration::from_millis(100);
    let mut s = serf_with(config);
    let coalesced = |t: u64| {
        Message::UserEvent(UserEvent {
            ltime: LamportTime(t),
            name: format!("e{}", t % 3),
            payload: None,
            coalesce: true,
        })
        .to_bytes()
    };
    // One every 50 ms, never quiet for 100 ms.
    let period_end = T0 + Duration::from_millis(1050);
    for t in 1..=20 {
        let now = T0 + Duration::from_millis(50 * t);
        s.handle_message(now, &coalesced(t)).unwrap();
        assert_eq!(
            s.poll_timeout(),
            Some(period_end.min(now + Duration::from_millis(100)))
        );
        assert_eq!(user_events(&outputs(&mut s)), 0);
    }
    s.handle_timeout(period_end);
    // One per name: the newest of each.
    assert_eq!(user_events(&outputs(&mut s)), 3);
}

#[test]
fn answered_queries_are_forgotten_once_older_than_the_query_buffer() {
    let mut config = SerfConfig::new("me");
    config.query_buffer = 4;
    let mut s = serf_with(config);
    // A peer's query with Go's longest timeout (292 years).
    let Message::Query(mut forever) = Message::decode(&query(1, 1)).unwrap() else {
        unreachable!()
    };
    forever.timeout = Duration::from_nanos(i64::MAX as u64);
    s.handle_message(T0, &Message::Query(forever).to_bytes())
        .unwrap();
    let incoming = |outs: Vec<SerfOutput>| {
        outs.into_iter()
            .find_map(|o| match o {
                SerfOutput::Event(SerfEvent::Query(q)) => Some(q),
                _ => None,
            })
            .unwrap()
    };
    let old = incoming(outputs(&mut s));
    s.respond(T0, &old, b"a").unwrap();
    assert_eq!(
        s.respond(T0, &old, b"a"),
        Err(swim_serf::SerfError::QueryAnswered)
    );
    assert_eq!(s.poll_timeout(), Some(old.deadline));
    // Five query times later, answering another forgets it.
    for t in 2..=6 {
        s.handle_message(T0, &query(t, 1)).unwrap();
    }
    let new = incoming(outputs(&mut s));
    s.respond(T0, &new, b"b").unwrap();
    // Forgotten: a second answer is no longer refused (the asker takes one
    // answer per node).
    assert_eq!(s.respond(T0, &old, b"a"), Ok(()));
}

#[test]
fn a_key_query_whose_payload_does_not_decode_is_counted_and_answered_failed() {
    let mut s = serf();
    let Message::Query(mut q) = Message::decode(&query(1, 1)).unwrap() else {
        unreachable!()
    };
    q.name = "_serf_install-key".into();
    for (payload, kind) in [
        (vec![7, 0xc1], "unexpected_value"),
        (join(1, "x"), "unknown_type"),
    ] {
        q.id += 1;
        q.payload = Some(payload);
        let errors = s.stats().decode_errors;
        s.handle_message(T0, &Message::Query(q.clone()).to_bytes())
            .unwrap();
        assert_eq!(s.stats().decode_errors, errors + 1);
        assert_eq!(s.stats().last_decode_error, Some(kind));
        // Go's answer: a failed key response, no keyring work.
        let outs = outputs(&mut s);
        assert!(!outs
            .iter()
            .any(|o| matches!(o, SerfOutput::KeyQuery { .. })));
        assert!(outs
            .iter()
            .any(|o| matches!(o, SerfOutput::SendTo { node, .. } if node == "b")));
    }
}
