//! Serf's messages as Go Serf 0.9.4 writes them: `golden.json` is the
//! output of interop/serf-golden/gen.sh, which compiles a test into Go
//! Serf's own package so its real types and encoders write every vector.
//! Each vector is built here from the same fixed values and must encode to
//! exactly Go's bytes, and Go's bytes must decode to those values.

use std::collections::BTreeMap;
use std::time::Duration;

use swim_serf::coordinate::{Coordinate, CoordinateClient, CoordinateConfig};
use swim_serf::messages::*;
use swim_serf::tags::{decode_tags, encode_tags, Tags};
use swim_serf::LamportTime;

fn golden() -> BTreeMap<String, Vec<u8>> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("golden.json")).expect("golden.json parses");
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let name = v["name"].as_str().unwrap().to_owned();
            (name, hex::decode(v["hex"].as_str().unwrap()).unwrap())
        })
        .collect()
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn b(v: &[u8]) -> Option<Vec<u8>> {
    Some(v.to_vec())
}

const MAPPED_LOCALHOST: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];

/// The messages golden_test.go encodes, with the same values.
fn messages() -> Vec<(&'static str, Message)> {
    let t = LamportTime;
    let filters = vec![
        Filter::Nodes(vec![s("node-a"), s("node-b")]).to_bytes(),
        Filter::Tag {
            tag: s("role"),
            expr: s("^web$"),
        }
        .to_bytes(),
    ];
    vec![
        (
            "leave",
            Message::Leave(Leave {
                ltime: t(7),
                node: s("node-a"),
                prune: true,
            }),
        ),
        (
            "join",
            Message::Join(Join {
                ltime: t(300),
                node: s("node-b"),
            }),
        ),
        (
            "push_pull",
            Message::PushPull(PushPull {
                ltime: t(70000),
                status_ltimes: BTreeMap::from([(s("node-a"), t(5))]),
                left_members: vec![s("node-c")],
                event_ltime: t(9),
                events: vec![
                    None,
                    Some(EventsAt {
                        ltime: t(8),
                        events: vec![
                            EventRecord {
                                name: s("deploy"),
                                payload: b(b"v1"),
                            },
                            EventRecord {
                                name: s("restart"),
                                payload: None,
                            },
                        ],
                    }),
                ],
                query_ltime: t(3),
            }),
        ),
        (
            "push_pull_empty",
            Message::PushPull(PushPull {
                ltime: t(1),
                events: vec![None, None, None],
                ..PushPull::default()
            }),
        ),
        (
            "user_event",
            Message::UserEvent(UserEvent {
                ltime: t(1 << 33),
                name: s("deploy"),
                payload: b(&[b'x'; 40]),
                coalesce: true,
            }),
        ),
        (
            "user_event_no_payload",
            Message::UserEvent(UserEvent {
                ltime: t(0),
                name: s("ping"),
                payload: None,
                coalesce: false,
            }),
        ),
        (
            "query",
            Message::Query(Query {
                ltime: t(4),
                id: 0xdeadbeef,
                addr: b(&[127, 0, 0, 1]),
                port: 7946,
                source_node: s("node-a"),
                filters,
                flags: QUERY_FLAG_ACK | QUERY_FLAG_NO_BROADCAST,
                relay_factor: 2,
                timeout: Duration::from_secs(5),
                name: s("uptime"),
                payload: b(b"p"),
            }),
        ),
        (
            "query_no_filters",
            Message::Query(Query {
                ltime: t(200),
                id: 1,
                addr: b(&std::net::Ipv6Addr::LOCALHOST.octets()),
                port: 80,
                source_node: s("n"),
                timeout: Duration::from_millis(500),
                name: s("_serf_ping"),
                ..Query::default()
            }),
        ),
        (
            "query_response",
            Message::QueryResponse(QueryResponse {
                ltime: t(4),
                id: 0xdeadbeef,
                from: s("node-b"),
                flags: QUERY_FLAG_ACK,
                payload: None,
            }),
        ),
        (
            "query_response_payload",
            Message::QueryResponse(QueryResponse {
                ltime: t(4),
                id: 7,
                from: s("node-b"),
                flags: 0,
                payload: b(b"12:00 up 3 days"),
            }),
        ),
        (
            "conflict_response",
            Message::ConflictResponse(Some(MemberInfo {
                name: s("node-a"),
                addr: b(&MAPPED_LOCALHOST),
                port: 7946,
                tags: Tags::from([(s("role"), s("web"))]),
                status: 1,
                protocol: [1, 5, 2],
                delegate: [2, 5, 4],
            })),
        ),
        ("conflict_response_unknown", Message::ConflictResponse(None)),
        (
            "key_request",
            Message::KeyRequest(KeyRequest {
                key: b(&[0xab; 16]),
            }),
        ),
        (
            "key_response",
            Message::KeyResponse(KeyResponse {
                result: true,
                message: s(""),
                keys: vec![s("q4vLzA=="), s("3q2+7w==")],
                primary_key: s("q4vLzA=="),
            }),
        ),
        (
            "key_response_error",
            Message::KeyResponse(KeyResponse {
                message: s("no keyring"),
                ..KeyResponse::default()
            }),
        ),
        (
            "relay",
            Message::Relay(Relay {
                dest_ip: MAPPED_LOCALHOST.to_vec(),
                dest_port: 7946,
                dest_zone: s(""),
                dest_name: s("node-c"),
                message: Message::QueryResponse(QueryResponse {
                    ltime: t(4),
                    id: 9,
                    from: s("node-b"),
                    flags: 0,
                    payload: b(b"ok"),
                })
                .to_bytes(),
            }),
        ),
    ]
}

#[test]
fn every_message_encodes_to_go_serfs_bytes_and_decodes_back() {
    let golden = golden();
    for (name, msg) in messages() {
        let go = &golden[name];
        assert_eq!(
            hex::encode(msg.to_bytes()),
            hex::encode(go),
            "{name}: encoding"
        );
        assert_eq!(Message::decode(go).as_ref(), Ok(&msg), "{name}: decoding");
    }
}

#[test]
fn every_vector_is_checked() {
    let golden = golden();
    let covered = messages().len() + 2 /* filters */ + 3 /* tags */ + 3 /* coordinates */;
    assert_eq!(
        golden.len(),
        covered,
        "a vector in golden.json has no check here"
    );
}

#[test]
fn filters_encode_to_go_serfs_bytes() {
    let golden = golden();
    let nodes = Filter::Nodes(vec![s("node-a"), s("node-b")]);
    let tag = Filter::Tag {
        tag: s("role"),
        expr: s("^web$"),
    };
    for (name, f) in [("filter_nodes", nodes), ("filter_tag", tag)] {
        assert_eq!(f.to_bytes(), golden[name], "{name}");
        assert_eq!(Filter::decode(&golden[name]), Ok(f), "{name}");
    }
}

#[test]
fn tags_encode_to_go_serfs_metadata() {
    let golden = golden();
    let web = Tags::from([(s("role"), s("web"))]);
    assert_eq!(encode_tags(&web).unwrap(), golden["tags"]);
    assert_eq!(decode_tags(&golden["tags"]).unwrap(), web);
    assert_eq!(encode_tags(&Tags::new()).unwrap(), golden["tags_empty"]);
    assert_eq!(decode_tags(&golden["tags_empty"]).unwrap(), Tags::new());
    // Protocol 2 wrote the bare role; it still reads as one.
    let db = Tags::from([(s("role"), s("db"))]);
    assert_eq!(decode_tags(&golden["tags_v2_role_only"]).unwrap(), db);
}

#[test]
fn a_relay_names_its_destination_and_carries_the_message_whole() {
    let golden = golden();
    let Ok(Message::Relay(relay)) = Message::decode(&golden["relay"]) else {
        panic!("not a relay");
    };
    assert_eq!(relay.dest_addr(), Some("127.0.0.1:7946".parse().unwrap()));
    assert!(matches!(
        Message::decode(&relay.message),
        Ok(Message::QueryResponse(r)) if r.id == 9
    ));
}

#[test]
fn ping_payloads_are_go_serfs() {
    let golden = golden();
    let fresh = Coordinate::new(&CoordinateConfig::default());
    assert_eq!(fresh.to_ping_payload(), golden["ping_payload_fresh"]);
    let set = Coordinate {
        vec: vec![0.001, -0.002, 0.5, 0.0, 0.0, 0.0, 0.0, 1e-9],
        error: 0.5,
        adjustment: -0.001,
        height: 0.0002,
    };
    assert_eq!(set.to_ping_payload(), golden["ping_payload_set"]);
    for (name, coord) in [("ping_payload_fresh", fresh), ("ping_payload_set", set)] {
        assert_eq!(
            Coordinate::from_ping_payload(&golden[name]),
            Ok(Some(coord))
        );
    }
    assert_eq!(Coordinate::from_ping_payload(&[]), Ok(None));
    assert!(Coordinate::from_ping_payload(&[2, 0x80]).is_err());
}

/// The same 30 observations as golden_test.go: Go's client and ours end at
/// the same coordinate, bit for bit.
#[test]
fn vivaldi_updates_match_go_bit_for_bit() {
    let mut client = CoordinateClient::new(CoordinateConfig::default(), 1);
    for i in 0..30u32 {
        let f = f64::from(i);
        let other = Coordinate {
            vec: vec![
                0.001 * f64::from(i % 5 + 1),
                -0.002,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0005 * f,
            ],
            error: 0.3 + 0.01 * f,
            adjustment: 0.0001 * f,
            height: 0.00002,
        };
        let rtt = Duration::from_nanos(1_000_000 + 137_000 * u64::from(i));
        client
            .update(&format!("node-{}", i % 3), &other, rtt)
            .unwrap();
    }
    let mut ours = Vec::new();
    client.coordinate().encode(&mut ours);
    let go = &golden()["vivaldi_after_30_updates"];
    assert_eq!(
        ours,
        *go,
        "ours {:?}, Go's {:?}",
        client.coordinate(),
        Coordinate::decode(go)
    );
}

/// `golden-upstream.json` is the same test run against Go Serf's upstream
/// (v0.10, github.com/hashicorp/serf at a24f620) with its go-msgpack v2
/// (`gen.sh --upstream`). v2 writes a positive signed integer in a signed
/// form (`Timeout` and a relay's `Port`: `d3`/`d2`/`d1` where 0.9 writes
/// `cf`/`ce`/`cd`); every other byte is the same. Both Go versions read
/// either form, and so do we: each upstream vector decodes to the same
/// message as 0.9's, and we keep writing 0.9's bytes, which both read.
#[test]
fn upstream_serfs_bytes_decode_to_the_same_messages() {
    let json: serde_json::Value = serde_json::from_str(include_str!("golden-upstream.json"))
        .expect("golden-upstream.json parses");
    let old = golden();
    let mut differing = Vec::new();
    for v in json.as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let new = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        if new == old[name] {
            continue;
        }
        differing.push(name);
        assert_eq!(
            Message::decode(&new),
            Message::decode(&old[name]),
            "{name}: upstream's bytes read differently"
        );
        assert!(Message::decode(&new).is_ok(), "{name}");
    }
    assert_eq!(differing, ["query", "query_no_filters", "relay"]);
}
