//! Snapshots in Go's format: replayed as Go replays them, recorded as Go
//! records them, compacted when they grow.

use swim_serf::snapshot::{Snapshot, SnapshotFile};
use swim_serf::tags::Tags;
use swim_serf::{LamportTime, Member, MemberStatus, SerfEvent};

const GO_SNAPSHOT: &str = "\
# a comment
alive: node-a 10.0.0.1:7946
alive: node b 10.0.0.2:7946
alive: node-c [::1]:7946
clock: 4
not-alive: node-a
coordinate: {\"Vec\":[0]}
event-clock: 9
query-clock: 3
clock: 12
something new
alive: node-d 10.0.0.4:79";

#[test]
fn replays_as_go_does() {
    let s = Snapshot::replay(GO_SNAPSHOT, false);
    let alive: Vec<(&str, &str)> = s
        .alive_nodes
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    // A name may hold spaces (the address is after the last); the last
    // line has no newline and is ignored.
    assert_eq!(
        alive,
        [("node b", "10.0.0.2:7946"), ("node-c", "[::1]:7946")]
    );
    assert_eq!(
        (s.last_clock, s.last_event_clock, s.last_query_clock),
        (LamportTime(12), LamportTime(9), LamportTime(3))
    );
    // A leave forgets what came before, unless rejoining after a leave.
    let left = format!("{GO_SNAPSHOT}\nleave\nalive: node-e 10.0.0.5:7946\n");
    let s = Snapshot::replay(&left, false);
    assert_eq!(s.alive_nodes.keys().collect::<Vec<_>>(), ["node-e"]);
    assert_eq!(s.last_clock, LamportTime(0));
    // (The partial line before it is whole now: node-d counts.)
    let s = Snapshot::replay(&left, true);
    assert_eq!(s.alive_nodes.len(), 4);
}

fn member(name: &str, port: u16) -> Member {
    Member {
        name: name.into(),
        addr: format!("10.0.0.1:{port}").parse().unwrap(),
        tags: Tags::new(),
        status: MemberStatus::Alive,
        vsn: [1, 5, 2, 2, 5, 5],
    }
}

#[test]
fn records_members_and_clocks_as_go_does() {
    let mut s = Snapshot::default();
    let join = SerfEvent::MemberJoin(member("b", 7946));
    assert_eq!(
        s.record(&join, LamportTime(5)),
        "alive: b 10.0.0.1:7946\nclock: 4\n"
    );
    // The clock line only when the clock moved.
    assert_eq!(
        s.record(&SerfEvent::MemberFailed(member("b", 7946)), LamportTime(5)),
        "not-alive: b\n"
    );
    let event = swim_serf::messages::UserEvent {
        ltime: LamportTime(7),
        name: "deploy".into(),
        payload: None,
        coalesce: false,
    };
    assert_eq!(
        s.record(&SerfEvent::User(event.clone()), LamportTime(5)),
        "event-clock: 7\n"
    );
    assert_eq!(
        s.record(&SerfEvent::User(event), LamportTime(5)),
        "",
        "not newer"
    );
    assert_eq!(Snapshot::replay(&s.compacted(), false), s);
}

#[test]
fn a_file_grows_then_is_compacted_and_replays_the_same() {
    let dir = std::env::temp_dir().join(format!("swim-serf-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("serf.snapshot");
    let _ = std::fs::remove_file(&path);
    let (mut file, previous) = SnapshotFile::open(&path, false).unwrap();
    assert_eq!(previous, Snapshot::default());
    // Flapping members: far more lines than state, past 128 KiB.
    for i in 0..4000u64 {
        let m = member(&format!("node-{}", i % 10), 7000 + (i % 10) as u16);
        let event = if i % 3 == 0 {
            SerfEvent::MemberFailed(m)
        } else {
            SerfEvent::MemberJoin(m)
        };
        file.record(&event, LamportTime(i + 2)).unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 128 * 1024, "compacted: {size} bytes");
    let text = std::fs::read_to_string(&path).unwrap();
    let replayed = Snapshot::replay(&text, false);
    assert_eq!(replayed.last_clock, LamportTime(4000));
    // Node k's last event is at 3990 + k: a failure when k % 3 == 0.
    let alive: Vec<&str> = replayed.alive_nodes.keys().map(String::as_str).collect();
    assert_eq!(
        alive,
        ["node-1", "node-2", "node-4", "node-5", "node-7", "node-8"]
    );
    drop(file);
    // Reopened: the same state, and a leave is recorded.
    let (mut file, again) = SnapshotFile::open(&path, false).unwrap();
    assert_eq!(again, replayed);
    file.leave().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(Snapshot::replay(&text, false), Snapshot::default());
    let _ = std::fs::remove_dir_all(&dir);
}
