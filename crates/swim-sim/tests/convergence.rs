//! Convergence of the slowest node after a join storm: 300 nodes joining
//! through 3 seeds within a second, on the Local preset, every node lists
//! every node within 5 s of the last join, for many seeds. The periodic
//! push/pull alone (catch-up off, Go's behaviour) takes a scaled push/pull
//! interval (75 s at 300 nodes on Local) to mend what the storm's gossip
//! missed.
//!
//! 40 seeds in a release build (`cargo test --release -p swim-sim --test
//! convergence`, as CI runs it; under a minute), 3 in a debug build.

use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use swim_sim::{Preset, Scenario, Simulation};

const NODES: usize = 300;
const WINDOW: Duration = Duration::from_secs(1);
/// Every node converged this long after the last join, at the latest.
const AFTER_LAST_JOIN: f64 = 5.0;

fn storm(seed: u64, preset: Preset) -> Scenario {
    Scenario::new(NODES, seed, preset)
        .bootstrap(3, WINDOW)
        .duration(Duration::from_secs(20))
}

fn seeds() -> std::ops::Range<u64> {
    if cfg!(debug_assertions) {
        1..4
    } else {
        1..41
    }
}

fn check(preset: Preset) {
    let mut slowest = 0.0f64;
    let mut exchanges = 0.0f64;
    for seed in seeds() {
        let r = Simulation::new(storm(seed, preset)).run();
        assert!(r.ok(), "seed {seed}: {:#?}", r.invariant_violations);
        let first = r.first_converged_at_s;
        let at = r.converged_at_s;
        let deadline = WINDOW.as_secs_f64() + AFTER_LAST_JOIN;
        assert!(
            first.is_some_and(|t| t <= deadline) && at == first,
            "seed {seed}: converged first at {first:?}, for good at {at:?}; \
             every node must list every node by {deadline} s and stay so"
        );
        slowest = slowest.max(first.unwrap_or(f64::MAX));
        exchanges = exchanges.max(r.catch_up_push_pulls_per_node);
    }
    // A storm costs each node a few exchanges (about three: the settle
    // one, its confirmation, and one more for what they taught), within
    // the budget of six a minute.
    assert!(exchanges <= 4.0, "{exchanges} catch-up push/pulls per node");
    println!("{preset:?}: slowest convergence {slowest:.2} s, at most {exchanges:.2} catch-up push/pulls per node");
}

#[test]
fn a_local_join_storm_converges_within_seconds() {
    check(Preset::Local);
}

#[test]
fn a_lan_join_storm_converges_within_seconds() {
    check(Preset::Lan);
}

#[test]
fn without_catch_up_the_storm_waits_for_the_periodic_push_pull() {
    // The control: the same storm with Go's behaviour has not converged by
    // the end of the run, so the bound above is what catch-up buys.
    let r = Simulation::new(storm(1, Preset::Local).catch_up(false)).run();
    assert!(r.ok(), "{:#?}", r.invariant_violations);
    assert_eq!(r.converged_at_s, None, "{}", r.summary());
}
