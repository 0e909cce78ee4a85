//! `Node::member_table`: every record of the member table — alive, suspect,
//! dead and left ones until reaped — with when each entered its state, kept
//! by the change log (so suspicions, which raise no event, show too).

use std::time::{Duration, Instant};

use swim_tests::{
    failure_detection_bound, local_config, on_every_runtime, MemberState, Node, Runtime, CONVERGE,
};

/// The state `node` records for `name` and since when, if it has a record.
fn status_of(node: &Node, name: &str) -> Option<(MemberState, Instant)> {
    node.member_table()
        .into_iter()
        .find(|s| &*s.member.name == name)
        .map(|s| (s.member.state, s.since))
}

/// Three nodes: metadata updates keep a member's time in its state; a
/// leave shows as `Left` from the moment it was learned; a crash shows as
/// `Suspect` and then `Dead`, each with its own time, while `members()`
/// drops the departed; a reaped record leaves the table.
async fn member_table_tracks_states_and_when_they_began(rt: Runtime) {
    let started = Instant::now();
    let nodes = rt
        .cluster(vec![
            local_config("a"),
            local_config("b"),
            local_config("c"),
        ])
        .await;
    let (a, b, c) = (&nodes[0].0, &nodes[1].0, &nodes[2].0);
    let table = a.member_table();
    let names: Vec<&str> = table.iter().map(|s| &*s.member.name).collect();
    assert_eq!(names, ["a", "b", "c"], "by name, itself included");
    for status in &table {
        assert_eq!(status.member.state, MemberState::Alive);
        assert!(status.since >= started && status.since <= Instant::now());
    }

    // A new incarnation in the same state leaves the time alone.
    let (_, b_alive_since) = status_of(a, "b").unwrap();
    b.update_meta(b"zone=2").await.expect("update_meta");
    rt.wait_until(CONVERGE, "a to see b's new metadata", || {
        a.member_table()
            .iter()
            .any(|s| &*s.member.name == "b" && &*s.member.meta == b"zone=2")
    })
    .await;
    assert_eq!(status_of(a, "b"), Some((MemberState::Alive, b_alive_since)));

    // A departure: `Left`, since it was learned; gone from `members()`.
    let before_leave = Instant::now();
    c.leave(Duration::from_secs(5)).await.expect("leave");
    rt.wait_until(CONVERGE, "a to record c as left", || {
        matches!(status_of(a, "c"), Some((MemberState::Left, _)))
    })
    .await;
    let (_, left_since) = status_of(a, "c").unwrap();
    assert!(left_since >= before_leave, "the time it left, not joined");
    assert!(a.members().iter().all(|m| &*m.name != "c"));
    c.shutdown().await;

    // A crash: `Suspect` first (no event says so), then `Dead`, later.
    b.shutdown().await;
    let bound = failure_detection_bound(&local_config("a").swim, 3, Duration::from_secs(10));
    let mut suspected = None;
    rt.wait_until(bound, "a to record b as suspect, then dead", || {
        match status_of(a, "b") {
            Some((MemberState::Suspect, since)) => suspected = Some(since),
            Some((MemberState::Dead, _)) => return true,
            _ => {}
        }
        false
    })
    .await;
    let suspected = suspected.expect("the suspicion was recorded before the death");
    let (_, dead_since) = status_of(a, "b").unwrap();
    assert!(suspected > b_alive_since && dead_since > suspected);
    assert_eq!(
        a.members().iter().map(|m| &*m.name).collect::<Vec<_>>(),
        ["a"]
    );
    // Reaped records leave the table too: c, gone longest, goes first.
    let config = local_config("a").swim;
    let reap = config.gossip_to_the_dead_time + Duration::from_secs(10);
    rt.wait_until(reap, "a to reap c's record", || status_of(a, "c").is_none())
        .await;
    assert_eq!(status_of(a, "a").map(|(s, _)| s), Some(MemberState::Alive));
}

on_every_runtime!(member_table_tracks_states_and_when_they_began);
