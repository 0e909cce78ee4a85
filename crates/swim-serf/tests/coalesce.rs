//! Event coalescing, sans IO, as Go's coalescers do it: off by default;
//! member events merged per member until the period or the quiet time
//! passes, a repeat of what was last let out suppressed; coalescable user
//! events reduced to the newest time per name.

use std::sync::Arc;
use std::time::Duration;

use swim_core::{Event, Instant, MemberState};
use swim_serf::messages::{Message, UserEvent};
use swim_serf::{LamportTime, Serf, SerfConfig, SerfEvent, SerfOutput};

const T0: Instant = Instant::ZERO;
const MS: Duration = Duration::from_millis(1);

fn member(name: &str) -> swim_core::Member {
    swim_core::Member {
        name: Arc::from(name),
        addr: "127.0.0.2:7946".parse().unwrap(),
        meta: Arc::from(&[0xff, 0x80][..]),
        incarnation: 1,
        state: MemberState::Alive,
        vsn: [1, 5, 2, 2, 5, 5],
    }
}

fn events(s: &mut Serf) -> Vec<String> {
    std::iter::from_fn(|| s.poll_output())
        .filter_map(|o| match o {
            SerfOutput::Event(SerfEvent::MemberJoin(m)) => Some(format!("join {}", m.name)),
            SerfOutput::Event(SerfEvent::MemberFailed(m)) => Some(format!("failed {}", m.name)),
            SerfOutput::Event(SerfEvent::User(u)) => Some(format!("user {} {}", u.name, u.ltime.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn off_by_default() {
    let mut s = Serf::new(SerfConfig::new("a")).unwrap();
    s.handle_event(T0, &Event::MemberJoined(member("b")));
    assert_eq!(events(&mut s), ["join b"]);
}

#[test]
fn member_events_are_merged_per_member() {
    let mut c = SerfConfig::new("a");
    c.coalesce_period = 2000 * MS;
    c.quiescent_period = 500 * MS;
    let mut s = Serf::new(c).unwrap();
    s.handle_event(T0, &Event::MemberJoined(member("b")));
    s.handle_event(T0 + 300 * MS, &Event::MemberFailed(member("b")));
    s.handle_event(T0 + 400 * MS, &Event::MemberJoined(member("c")));
    assert!(events(&mut s).is_empty());
    // Quiet for 500 ms after the last: let out, the latest per member.
    assert_eq!(s.poll_timeout(), Some(T0 + 900 * MS));
    s.handle_timeout(T0 + 900 * MS);
    assert_eq!(events(&mut s), ["join c", "failed b"]);
    // b flaps back and fails again within a window: what was last let
    // out for it (failed) is not let out again.
    s.handle_event(T0 + 1000 * MS, &Event::MemberJoined(member("b")));
    s.handle_event(T0 + 1100 * MS, &Event::MemberFailed(member("b")));
    s.handle_timeout(T0 + 1600 * MS);
    assert!(events(&mut s).is_empty());
    // A steady stream is cut at the period.
    for i in 0..10u32 {
        let name = format!("n{i}");
        s.handle_event(
            T0 + (2000 + 300 * i) * MS,
            &Event::MemberJoined(member(&name)),
        );
    }
    assert_eq!(s.poll_timeout(), Some(T0 + 3000 * MS + 1000 * MS));
}

#[test]
fn coalescable_user_events_keep_the_newest_per_name() {
    let mut c = SerfConfig::new("a");
    c.user_coalesce_period = 1000 * MS;
    c.user_quiescent_period = 200 * MS;
    let mut s = Serf::new(c).unwrap();
    let event = |t: u64, name: &str, coalesce: bool| {
        Message::UserEvent(UserEvent {
            ltime: LamportTime(t),
            name: name.into(),
            payload: Some(t.to_string().into_bytes()),
            coalesce,
        })
        .to_bytes()
    };
    for (t, name, cc) in [
        (5, "deploy", true),
        (7, "deploy", true),
        (6, "deploy", true),   // older than the newest: dropped
        (3, "restart", false), // not coalescable: out at once
        (9, "scale", true),
    ] {
        s.handle_message(T0, &event(t, name, cc)).unwrap();
    }
    assert_eq!(events(&mut s), ["user restart 3"]);
    s.handle_timeout(T0 + 200 * MS);
    assert_eq!(events(&mut s), ["user deploy 7", "user scale 9"]);
}
