//! What several of swim-serf's test files build alike: members, Go's
//! golden bytes, join intents and user events.
#![allow(dead_code)] // each test file uses its own share

use std::sync::Arc;

use swim_core::{Event, Instant, MemberState};
use swim_serf::messages::{Join, Message, UserEvent};
use swim_serf::tags::{encode_tags, Tags};
use swim_serf::{LamportTime, Serf};

/// Where every test's clock starts.
pub const T0: Instant = Instant::ZERO;

/// Every message `golden.json` holds, as Go Serf wrote it.
pub fn golden() -> Vec<Vec<u8>> {
    let json: serde_json::Value = serde_json::from_str(include_str!("../golden.json")).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| hex::decode(v["hex"].as_str().unwrap()).unwrap())
        .collect()
}

/// Tells `s` that `name` joined, alive at `addr` with no tags.
pub fn member_joins(s: &mut Serf, name: &str, addr: &str) {
    let m = swim_core::Member {
        name: Arc::from(name),
        addr: addr.parse().unwrap(),
        meta: Arc::from(encode_tags(&Tags::new()).unwrap()),
        incarnation: 1,
        state: MemberState::Alive,
        vsn: [1, 5, 2, 2, 5, 5],
    };
    s.handle_event(T0, &Event::MemberJoined(m));
}

/// A join intent for `node` at Lamport time `t`.
pub fn join(t: u64, node: &str) -> Vec<u8> {
    Message::Join(Join {
        ltime: LamportTime(t),
        node: node.into(),
    })
    .to_bytes()
}

/// A user event that does not coalesce.
pub fn event(t: u64, name: &str, payload: &[u8]) -> Vec<u8> {
    Message::UserEvent(UserEvent {
        ltime: LamportTime(t),
        name: name.into(),
        payload: Some(payload.to_vec()),
        coalesce: false,
    })
    .to_bytes()
}
