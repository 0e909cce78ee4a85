//! A bounded seed sweep: many small chaotic clusters, every invariant
//! checked on every step. Debug builds (`cargo test --workspace`) run a
//! short sweep; release builds (`cargo test --release -p swim-sim --test
//! sweep`) run 300 seeds. `SWIM_SIM_SWEEP_SEEDS` overrides the count.

use swim_sim::sweep::{self, SweepOptions};

#[test]
fn seed_sweep_holds_every_invariant() {
    let default = if cfg!(debug_assertions) { 40 } else { 300 };
    let seeds = std::env::var("SWIM_SIM_SWEEP_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let opts = SweepOptions {
        seeds,
        first_seed: 1,
        min_nodes: 5,
        max_nodes: if cfg!(debug_assertions) { 24 } else { 64 },
        ..SweepOptions::default()
    };
    let summary = sweep::run(&opts, |_| {});
    println!("{}", summary.line());
    for f in &summary.failed {
        println!("seed {} failed; replay: {}", f.seed, f.replay);
        for v in &f.violations {
            println!("    {v}");
        }
    }
    assert!(
        summary.failed.is_empty(),
        "{} seeds failed",
        summary.failed.len()
    );
    assert_eq!(summary.passed, seeds);
    assert!(summary.crashes > 0 && summary.crashes_detected == summary.crashes);
}
