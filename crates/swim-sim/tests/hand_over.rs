//! Handing a failure over: shrinking and replaying a stateful application
//! build a fresh scenario for every run; a cut run reports no end-of-run
//! failure.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_sim::sweep::{self, SweepOptions};
use swim_sim::{Amount, AppFailure, Application, Check, Fault, NodeContext, Scenario};

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

/// Knows whether its node ran before (its user's "disk", kept outside the
/// node), and marks itself done at 50 s.
struct Recovering {
    recovered: bool,
    done: bool,
}

impl Application for Recovering {
    fn started(&mut self, node: &mut NodeContext<'_>) {
        node.set_timer(s(50), 1);
    }
    fn timer(&mut self, _: &mut NodeContext<'_>, _: u64) {
        self.done = true;
    }
}

/// A planted bug whose known minimal cause is fault 1 (the restart): a
/// node that comes back "recovers" from its user's disk. Four faults; the
/// disk is captured by the application factory, so it holds state outside
/// the nodes.
fn stateful(mut sc: Scenario) -> Scenario {
    let disk: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    sc.faults = vec![
        Fault::Stall {
            amount: Amount::Count(1),
            at: s(3),
            duration: s(1),
            every: None,
        },
        Fault::Restart {
            amount: Amount::Count(1),
            at: s(6),
            down_for: s(2),
        },
        Fault::Loss {
            rate: 0.2,
            at: s(4),
            duration: s(2),
        },
        Fault::UpdateMeta {
            amount: Amount::Count(1),
            at: s(5),
        },
    ];
    sc.duration = s(60);
    sc.app(move |i| Recovering {
        recovered: !disk.lock().unwrap().insert(i),
        done: false,
    })
    .invariant("no-recovery", Check::Always, |apps| {
        match apps.live::<Recovering>().find(|(_, r)| r.recovered) {
            Some((i, _)) => Err(AppFailure::new([i], "recovered from its disk")),
            None => Ok(()),
        }
    })
    .invariant("all-done", Check::AtEnd, |apps| {
        match apps.live::<Recovering>().find(|(_, r)| !r.done) {
            Some((i, _)) => Err(AppFailure::new([i], "not done")),
            None => Ok(()),
        }
    })
}

fn opts() -> SweepOptions {
    SweepOptions {
        seeds: 1,
        first_seed: 13,
        min_nodes: 5,
        max_nodes: 8,
        ..SweepOptions::default()
    }
}

#[test]
fn a_stateful_bug_shrinks_to_its_known_cause() {
    let shrunk = sweep::shrink(13, &opts(), &stateful).expect("it fails");
    println!("{}", shrunk.line());
    assert_eq!(shrunk.rule, "no-recovery");
    assert_eq!(shrunk.faults_kept, vec![1], "{}", shrunk.line());
    assert!(
        shrunk.fails_at_s >= 8.0 && shrunk.fails_at_s < 9.0,
        "{}",
        shrunk.line()
    );
}

#[test]
fn a_cut_run_reports_no_end_of_run_failure() {
    let shrunk = sweep::shrink(13, &opts(), &stateful).expect("it fails");
    let rules: Vec<_> = shrunk
        .report
        .invariant_violations
        .iter()
        .map(|v| v.rule.as_str())
        .collect();
    assert!(rules.iter().all(|r| *r == "no-recovery"), "{rules:?}");
}
