//! Queries, sans IO: Go's filters, acks and answers once per node, the
//! query buffer, relays, the default timeout, closing at the deadline;
//! internal queries (ping, conflict, keys).

use std::sync::Arc;
use std::time::Duration;

use swim_core::{Event, MemberState};
use swim_serf::messages::{
    Filter, KeyRequest, KeyResponse, Message, Query, QueryResponse, Relay, QUERY_FLAG_ACK,
    QUERY_FLAG_NO_BROADCAST,
};
use swim_serf::{
    IncomingQuery, KeyOp, LamportTime, QueryParams, QueryProgress, Serf, SerfConfig, SerfError,
    SerfEvent, SerfOutput,
};

mod common;

use common::{member_joins, T0};

fn serf(name: &str, tags: &[(&str, &str)]) -> Serf {
    let mut c = SerfConfig::new(name);
    c.tags = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c.seed = 7;
    let mut s = Serf::new(c).unwrap();
    for (i, n) in [name, "b", "c", "d"].iter().enumerate() {
        if i > 0 && *n == name {
            continue;
        }
        member_joins(&mut s, n, &format!("127.0.0.{}:7946", i + 1));
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

/// Serf neither gossips nor asks for anything.
fn nothing(s: &mut Serf) -> bool {
    gossiped(s).is_empty() && outputs(s).is_empty()
}

fn incoming(outs: &[SerfOutput]) -> Vec<IncomingQuery> {
    outs.iter()
        .filter_map(|o| match o {
            SerfOutput::Event(SerfEvent::Query(q)) => Some(q.clone()),
            _ => None,
        })
        .collect()
}

fn query(t: u64, id: u32, filters: Vec<Filter>, flags: u32) -> Vec<u8> {
    Message::Query(Query {
        ltime: LamportTime(t),
        id,
        addr: Some(vec![127, 0, 0, 2]),
        port: 7946,
        source_node: "b".into(),
        filters: filters.iter().map(Filter::to_bytes).collect(),
        flags,
        relay_factor: 0,
        timeout: Duration::from_secs(5),
        name: "q".into(),
        payload: Some(b"p".to_vec()),
    })
    .to_bytes()
}

fn delivered(s: &mut Serf, filters: Vec<Filter>) -> bool {
    s.handle_message(T0, &query(1, 1, filters, 0)).unwrap();
    !incoming(&outputs(s)).is_empty()
}

#[test]
fn filters_follow_go() {
    let tags = [("role", "web-server"), ("dc", "east")];
    let tag = |t: &str, e: &str| Filter::Tag {
        tag: t.into(),
        expr: e.into(),
    };
    // Node filter: our name listed.
    assert!(delivered(
        &mut serf("a", &tags),
        vec![Filter::Nodes(vec!["x".into(), "a".into()])]
    ));
    assert!(!delivered(
        &mut serf("a", &tags),
        vec![Filter::Nodes(vec!["x".into()])]
    ));
    // Tag filters: Go's regexp.MatchString is unanchored.
    assert!(delivered(&mut serf("a", &tags), vec![tag("role", "web")]));
    assert!(delivered(
        &mut serf("a", &tags),
        vec![tag("role", "^web-.*$")]
    ));
    assert!(!delivered(
        &mut serf("a", &tags),
        vec![tag("role", "^server")]
    ));
    // A missing tag is the empty string; a bad expression filters out.
    assert!(delivered(&mut serf("a", &tags), vec![tag("zone", "^$")]));
    assert!(!delivered(&mut serf("a", &tags), vec![tag("zone", "x")]));
    assert!(!delivered(&mut serf("a", &tags), vec![tag("role", "(")]));
    // Every filter must pass.
    assert!(!delivered(
        &mut serf("a", &tags),
        vec![tag("role", "web"), tag("dc", "west")]
    ));
}

#[test]
fn a_query_is_delivered_acked_and_rebroadcast_once() {
    let mut s = serf("a", &[]);
    let raw = query(3, 9, vec![], QUERY_FLAG_ACK);
    s.handle_message(T0, &raw).unwrap();
    let sent = gossiped(&mut s);
    let outs = outputs(&mut s);
    let q = &incoming(&outs)[0];
    assert_eq!((q.name.as_str(), q.payload.as_slice()), ("q", &b"p"[..]));
    assert_eq!(q.source_addr, Some("127.0.0.2:7946".parse().unwrap()));
    assert!(sent.contains(&raw));
    let ack = outs.iter().find_map(|o| match o {
        SerfOutput::SendTo { node, payload } => Some((node.clone(), payload.clone())),
        _ => None,
    });
    let (to, ack) = ack.expect("an ack");
    assert_eq!(to, "b");
    assert_eq!(
        Message::decode(&ack).unwrap(),
        Message::QueryResponse(QueryResponse {
            ltime: LamportTime(3),
            id: 9,
            from: "a".into(),
            flags: QUERY_FLAG_ACK,
            payload: None,
        })
    );
    // The query clock witnessed it.
    assert_eq!(s.query_clock(), LamportTime(4));
    // Seen: nothing again.
    s.handle_message(T0, &raw).unwrap();
    assert!(nothing(&mut s));
    // Same time, other id: new.
    s.handle_message(T0, &query(3, 10, vec![], 0)).unwrap();
    assert_eq!(incoming(&outputs(&mut s)).len(), 1);
    // Not re-broadcast when the sender says so.
    s.handle_message(T0, &query(4, 1, vec![], QUERY_FLAG_NO_BROADCAST))
        .unwrap();
    let sent = gossiped(&mut s);
    let outs = outputs(&mut s);
    assert_eq!(incoming(&outs).len(), 1);
    assert!(sent.is_empty());
}

#[test]
fn filtered_out_queries_are_still_rebroadcast_but_not_acked() {
    let mut s = serf("a", &[]);
    let raw = query(1, 1, vec![Filter::Nodes(vec!["z".into()])], QUERY_FLAG_ACK);
    s.handle_message(T0, &raw).unwrap();
    assert_eq!(gossiped(&mut s), [raw]);
    assert!(outputs(&mut s).is_empty());
}

#[test]
fn answers_once_before_the_deadline() {
    let mut s = serf("a", &[]);
    s.handle_message(T0, &query(1, 1, vec![], 0)).unwrap();
    let q = incoming(&outputs(&mut s)).remove(0);
    assert_eq!(q.deadline, T0 + Duration::from_secs(5));
    s.respond(T0, &q, b"yes").unwrap();
    let outs = outputs(&mut s);
    let SerfOutput::SendTo { node, payload } = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(node, "b");
    let Message::QueryResponse(r) = Message::decode(payload).unwrap() else {
        panic!()
    };
    assert_eq!((r.from.as_str(), r.payload), ("a", Some(b"yes".to_vec())));
    assert_eq!(s.respond(T0, &q, b"again"), Err(SerfError::QueryAnswered));
    let late = T0 + Duration::from_secs(6);
    s.handle_message(T0, &query(2, 1, vec![], 0)).unwrap();
    let q2 = incoming(&outputs(&mut s)).remove(0);
    assert_eq!(s.respond(late, &q2, b"x"), Err(SerfError::QueryExpired));
    let big = vec![0u8; 1100];
    let q3 = IncomingQuery {
        deadline: late,
        ..q2
    };
    assert!(matches!(
        s.respond(T0, &q3, &big),
        Err(SerfError::QueryTooLarge { .. })
    ));
}

#[test]
fn answers_are_relayed_through_other_members() {
    let mut s = serf("a", &[]);
    let mut raw = Message::decode(&query(1, 1, vec![], 0)).unwrap();
    let Message::Query(q) = &mut raw else {
        panic!()
    };
    q.relay_factor = 2;
    s.handle_message(T0, &raw.to_bytes()).unwrap();
    let q = incoming(&outputs(&mut s)).remove(0);
    s.respond(T0, &q, b"r").unwrap();
    let sends: Vec<(String, Message)> = outputs(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            SerfOutput::SendTo { node, payload } => {
                Some((node, Message::decode(&payload).unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 3, "{sends:?}");
    let relays: Vec<&(String, Message)> = sends
        .iter()
        .filter(|(_, m)| matches!(m, Message::Relay(_)))
        .collect();
    assert_eq!(relays.len(), 2);
    // Two distinct members other than us (Go does not skip the querier).
    assert_ne!(relays[0].0, relays[1].0);
    for (via, m) in relays {
        assert_ne!(via, "a");
        let Message::Relay(r) = m else { panic!() };
        assert_eq!((r.dest_name.as_str(), r.dest_port), ("b", 7946));
        assert_eq!(r.dest_ip, [127, 0, 0, 2]);
        assert!(matches!(
            Message::decode(&r.message),
            Ok(Message::QueryResponse(_))
        ));
    }
}

#[test]
fn a_relay_is_forwarded_to_its_destination() {
    let mut s = serf("a", &[]);
    let inner = vec![5, 0x80];
    let relay = Message::Relay(Relay {
        dest_ip: vec![127, 0, 0, 3],
        dest_port: 7946,
        dest_zone: String::new(),
        dest_name: "c".into(),
        message: inner.clone(),
    });
    s.handle_message(T0, &relay.to_bytes()).unwrap();
    assert_eq!(
        outputs(&mut s),
        [SerfOutput::SendTo {
            node: "c".into(),
            payload: inner
        }]
    );
}

#[test]
fn our_query_collects_acks_and_answers_once_per_node_until_closed() {
    let mut s = serf("a", &[]);
    // Go: 200 ms × 16 × ⌈log10(4 + 1)⌉.
    assert_eq!(s.default_query_timeout(), Duration::from_millis(3200));
    let params = QueryParams {
        request_ack: true,
        ..QueryParams::default()
    };
    let id = s.query(T0, "ping", b"x", &params).unwrap();
    let sent = gossiped(&mut s);
    let outs = outputs(&mut s);
    // Handled here too: delivered to us, our own ack reported.
    assert_eq!(incoming(&outs).len(), 1);
    assert!(outs.contains(&SerfOutput::Query(QueryProgress::Ack {
        query: id,
        from: "a".into()
    })));
    let [raw] = &sent[..] else { panic!("{sent:?}") };
    let Message::Query(q) = Message::decode(raw).unwrap() else {
        panic!()
    };
    assert_eq!(
        (q.ltime, q.id, q.source_node.as_str()),
        (id.ltime, id.id, "a")
    );
    assert_eq!(q.timeout, Duration::from_millis(3200));
    assert!(q.id < 1 << 31, "Go's ids are rand.Int31");

    let answer = |from: &str, flags: u32, id: u32| {
        Message::QueryResponse(QueryResponse {
            ltime: q.ltime,
            id,
            from: from.into(),
            flags,
            payload: Some(b"r".to_vec()),
        })
        .to_bytes()
    };
    for raw in [
        answer("b", QUERY_FLAG_ACK, q.id),
        answer("b", QUERY_FLAG_ACK, q.id), // a repeat (a relay)
        answer("b", 0, q.id),
        answer("b", 0, q.id),
        answer("c", 0, q.id + 1), // another query's id
    ] {
        s.handle_message(T0, &raw).unwrap();
    }
    assert_eq!(
        outputs(&mut s),
        [
            SerfOutput::Query(QueryProgress::Ack {
                query: id,
                from: "b".into()
            }),
            SerfOutput::Query(QueryProgress::Response {
                query: id,
                from: "b".into(),
                payload: b"r".to_vec()
            }),
        ]
    );
    // At the deadline it closes; later answers are ignored.
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_millis(3200)));
    let end = T0 + Duration::from_millis(3200);
    s.handle_timeout(end);
    assert_eq!(
        outputs(&mut s),
        [SerfOutput::Query(QueryProgress::Closed { query: id })]
    );
    s.handle_message(end, &answer("c", 0, q.id)).unwrap();
    assert!(nothing(&mut s));
}

fn named_query(name: &str, payload: &[u8]) -> Vec<u8> {
    let Message::Query(mut q) = Message::decode(&query(1, 1, vec![], 0)).unwrap() else {
        panic!()
    };
    q.name = name.into();
    q.payload = Some(payload.to_vec());
    Message::Query(q).to_bytes()
}

/// The answer `s` sent to the querier "b".
fn answer_to_b(outs: &[SerfOutput]) -> Option<Message> {
    outs.iter().find_map(|o| match o {
        SerfOutput::SendTo { node, payload } if node == "b" => {
            match Message::decode(payload).unwrap() {
                Message::QueryResponse(r) => Some(Message::decode(&r.payload.unwrap()).unwrap()),
                _ => None,
            }
        }
        _ => None,
    })
}

#[test]
fn internal_queries_never_reach_the_application() {
    // _serf_ping: nothing to do.
    let mut s = serf("a", &[]);
    s.handle_message(T0, &named_query("_serf_ping", b""))
        .unwrap();
    let outs = outputs(&mut s);
    assert!(incoming(&outs).is_empty());
    assert!(answer_to_b(&outs).is_none());

    // _serf_conflict: what we know of the node named, nil if nothing,
    // silence about ourselves.
    let mut s = serf("a", &[]);
    s.handle_message(T0, &named_query("_serf_conflict", b"c"))
        .unwrap();
    let outs = outputs(&mut s);
    assert!(incoming(&outs).is_empty());
    let Some(Message::ConflictResponse(Some(m))) = answer_to_b(&outs) else {
        panic!("{outs:?}")
    };
    assert_eq!(
        (m.name.as_str(), m.addr, m.port, m.status),
        ("c", Some(vec![127, 0, 0, 3]), 7946, 1)
    );
    assert_eq!((m.protocol, m.delegate), ([1, 5, 2], [2, 5, 5]));
    let mut s = serf("a", &[]);
    s.handle_message(T0, &named_query("_serf_conflict", b"zz"))
        .unwrap();
    assert_eq!(
        answer_to_b(&outputs(&mut s)),
        Some(Message::ConflictResponse(None))
    );
    let mut s = serf("a", &[]);
    s.handle_message(T0, &named_query("_serf_conflict", b"a"))
        .unwrap();
    assert_eq!(answer_to_b(&outputs(&mut s)), None);
}

#[test]
fn key_queries_ask_the_driver_then_answer() {
    let mut s = serf("a", &[]);
    let req = Message::KeyRequest(KeyRequest {
        key: Some(vec![7; 16]),
    })
    .to_bytes();
    s.handle_message(T0, &named_query("_serf_install-key", &req))
        .unwrap();
    let outs = outputs(&mut s);
    let Some((q, op)) = outs.iter().find_map(|o| match o {
        SerfOutput::KeyQuery { query, op } => Some((query.clone(), op.clone())),
        _ => None,
    }) else {
        panic!("{outs:?}")
    };
    assert_eq!(op, KeyOp::Install(vec![7; 16]));
    assert!(incoming(&outs).is_empty());
    s.respond_key(
        T0,
        &q,
        KeyResponse {
            result: true,
            ..KeyResponse::default()
        },
    )
    .unwrap();
    assert_eq!(
        answer_to_b(&outputs(&mut s)),
        Some(Message::KeyResponse(KeyResponse {
            result: true,
            ..KeyResponse::default()
        }))
    );

    // An unreadable request: a failed answer with no message, as Go's.
    let mut s = serf("a", &[]);
    s.handle_message(T0, &named_query("_serf_use-key", b"\x07\xc1"))
        .unwrap();
    assert_eq!(
        answer_to_b(&outputs(&mut s)),
        Some(Message::KeyResponse(KeyResponse::default()))
    );
}

#[test]
fn a_long_key_list_is_truncated_as_go_truncates_it() {
    let mut s = serf("a", &[]);
    s.handle_message(T0, &named_query("_serf_list-keys", b""))
        .unwrap();
    let outs = outputs(&mut s);
    let Some(SerfOutput::KeyQuery { query: q, op }) = outs
        .into_iter()
        .find(|o| matches!(o, SerfOutput::KeyQuery { .. }))
    else {
        panic!()
    };
    assert_eq!(op, KeyOp::List);
    let key = "A".repeat(44); // a 32-byte key in base64
    let resp = KeyResponse {
        result: true,
        message: String::new(),
        keys: vec![key.clone(); 40],
        primary_key: key,
    };
    s.respond_key(T0, &q, resp).unwrap();
    let Some(Message::KeyResponse(r)) = answer_to_b(&outputs(&mut s)) else {
        panic!()
    };
    // The most keys that fit in 1024 bytes with the notice (Go's loop):
    // the encoded answer fits, one more key would not.
    let n = r.keys.len();
    assert_eq!(
        r.message,
        format!("truncated key list response, showing first {n} of 40 keys")
    );
    let encoded = |keys: usize| {
        let mut r = r.clone();
        r.keys = vec![r.primary_key.clone(); keys];
        r.message = format!("truncated key list response, showing first {keys} of 40 keys");
        Message::QueryResponse(QueryResponse {
            ltime: LamportTime(1),
            id: 1,
            from: "a".into(),
            flags: 0,
            payload: Some(Message::KeyResponse(r).to_bytes()),
        })
        .to_bytes()
        .len()
    };
    assert!(encoded(n) <= 1024 && encoded(n + 1) > 1024, "{n} keys");
}

/// Another node claims "a"'s name; `b`, `c`, `d` answer the vote with the
/// addresses in `answers`. Whether "a" stops.
fn conflict_vote(answers: [&str; 3]) -> bool {
    let mut s = serf("a", &[]);
    let ours = s.member("a").unwrap().addr;
    let claim = |addr: std::net::SocketAddr| swim_core::Member {
        name: Arc::from("a"),
        addr,
        meta: Arc::from(&[0xff, 0x80][..]),
        incarnation: 1,
        state: MemberState::Alive,
        vsn: [1, 5, 2, 2, 5, 5],
    };
    let conflict = Event::NameConflict {
        existing: Box::new(claim(ours)),
        other: Box::new(claim("10.9.9.9:7946".parse().unwrap())),
    };
    s.handle_event(T0, &conflict);
    let sent = gossiped(&mut s);
    let Some(Message::Query(q)) = sent.iter().find_map(|b| Message::decode(b).ok()) else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (q.name.as_str(), q.payload.as_deref()),
        ("_serf_conflict", Some(&b"a"[..]))
    );
    // A second claim while voting starts no second vote.
    s.handle_event(T0, &conflict);
    assert!(nothing(&mut s));
    for (from, addr) in ["b", "c", "d"].iter().zip(answers) {
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        let member = swim_serf::messages::MemberInfo {
            name: "a".into(),
            addr: Some(match addr.ip() {
                std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            }),
            port: addr.port(),
            status: 1,
            ..Default::default()
        };
        let resp = QueryResponse {
            ltime: q.ltime,
            id: q.id,
            from: from.to_string(),
            flags: 0,
            payload: Some(Message::ConflictResponse(Some(member)).to_bytes()),
        };
        s.handle_message(T0, &Message::QueryResponse(resp).to_bytes())
            .unwrap();
    }
    // The vote's answers are Serf's own: none reach the driver.
    assert!(nothing(&mut s));
    s.handle_timeout(T0 + Duration::from_secs(60));
    let outs = outputs(&mut s);
    assert!(!outs.iter().any(|o| matches!(o, SerfOutput::Query(_))));
    outs.contains(&SerfOutput::Shutdown)
}

#[test]
fn a_name_conflict_is_put_to_a_vote_and_the_minority_stops() {
    let ours = "127.0.0.1:7946";
    let theirs = "10.9.9.9:7946";
    assert!(!conflict_vote([ours, ours, theirs]), "2 of 3 say us");
    assert!(conflict_vote([ours, theirs, theirs]), "1 of 3 says us");
}
