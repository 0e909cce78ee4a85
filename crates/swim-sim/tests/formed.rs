//! `Start::Formed`: a cluster that formed long ago starts converged, with nothing left to
//! gossip, and then behaves like any other (here: detects crashes).

use std::time::Duration;

use swim_sim::{Amount, Fault, Preset, Scenario, Simulation};

fn scenario(formed: bool) -> Scenario {
    let s = |x: u64| Duration::from_secs(x);
    let sc = Scenario::new(60, 5, Preset::Lan)
        .duration(s(45))
        .fault(Fault::Crash {
            amount: Amount::Count(2),
            at: s(10),
        });
    if formed {
        sc.formed()
    } else {
        sc
    }
}

#[test]
fn a_formed_cluster_starts_converged_without_a_join_storm() {
    let formed = Simulation::new(scenario(true)).run();
    assert!(formed.ok(), "{:?}", formed.invariant_violations);
    // Converged as soon as the member list is read, 1 ms in.
    assert!(
        formed.first_converged_at_s.is_some_and(|t| t <= 0.001),
        "{:?}",
        formed.first_converged_at_s
    );
    assert_eq!(formed.crashes, 2);
    assert_eq!(formed.detection_incomplete, 0);
    // Only the two crashes' suspect and dead messages were ever queued.
    assert!(
        formed.broadcast_queue_peak <= 4,
        "queue peak {}",
        formed.broadcast_queue_peak
    );

    // The default warm start learns the same table but gossips all of it.
    let warm = Simulation::new(scenario(false)).run();
    assert!(warm.ok(), "{:?}", warm.invariant_violations);
    assert!(
        warm.broadcast_queue_peak >= 59,
        "queue peak {}",
        warm.broadcast_queue_peak
    );
    // Nearly twice the bytes (517 against 261 B per node per second when
    // written; both runs also carry the last probes of the two crashed
    // nodes, about 28 B per node per second, which took the ratio from over
    // 2 to 1.98).
    assert!(
        warm.bytes_per_node_per_s > 1.8 * formed.bytes_per_node_per_s,
        "{} against {} B per node per second",
        warm.bytes_per_node_per_s,
        formed.bytes_per_node_per_s
    );
}
