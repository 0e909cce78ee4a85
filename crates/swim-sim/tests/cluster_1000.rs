//! A 1,000-node LAN cluster with crashes and a partition: every invariant
//! holds, every crash is seen by every live node, and the cluster converges
//! again after the partition heals.
//!
//! This one needs a release build (about two minutes there):
//! `cargo test --release -p swim-sim --test cluster_1000`. In a debug build
//! (`cargo test --workspace`) it runs a 100-node version of the same
//! scenario instead.

use std::time::Duration;

// As the `swim-sim` binary: threads share the allocator without contention.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use swim_sim::{Amount, Fault, Preset, Scenario, Simulation};

#[test]
fn thousand_nodes_crash_and_partition_converge_without_violations() {
    let n = if cfg!(debug_assertions) { 100 } else { 1000 };
    let s = Duration::from_secs;
    let heal = 90.0;
    let scenario = Scenario::new(n, 1, Preset::Lan)
        .duration(s(300))
        .fault(Fault::Crash {
            amount: Amount::Fraction(0.01),
            at: s(60),
        })
        .fault(Fault::Partition {
            amount: Amount::Fraction(0.5),
            at: s(70),
            duration: s(20),
            one_way: false,
            links: 1.0,
        });
    let bound = scenario.convergence_bound().as_secs_f64();
    // On every core: the run is the same on any number of threads.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let r = Simulation::new(scenario).with_threads(threads).run();
    println!("{}", r.summary());
    assert!(r.ok(), "violations: {:#?}", r.invariant_violations);
    assert_eq!(r.crashes, n / 100);
    assert_eq!(r.detection_incomplete, 0, "every live node saw every crash");
    let converged = r.converged_at_s.expect("converged at the end");
    assert!(
        converged <= heal + bound,
        "converged at {converged}s, bound {bound}s after {heal}s"
    );
    assert!(r.false_positive_records > 0, "the partition was felt");
    assert_eq!(
        r.false_positives, 0,
        "no healthy node outside the partition was declared dead"
    );
}
