//! A run is a pure function of (scenario, seed): the same seed twice gives
//! the same trace hash and report; another seed gives another trace.

use std::time::Duration;

use swim_sim::{Amount, Fault, Latency, NetworkModel, Preset, Report, Scenario, Simulation};

fn chaotic(seed: u64) -> Scenario {
    let s = |x: u64| Duration::from_secs(x);
    Scenario::new(24, seed, Preset::Local)
        .duration(s(60))
        .bootstrap(2, s(3))
        .network(NetworkModel {
            latency: Latency::LogNormal {
                median: Duration::from_millis(2),
                sigma: 0.6,
            },
            loss: 0.03,
            duplicate: 0.02,
            reorder: 0.05,
            ..NetworkModel::default()
        })
        .fault(Fault::Crash {
            amount: Amount::Count(2),
            at: s(10),
        })
        .fault(Fault::Restart {
            amount: Amount::Count(1),
            at: s(12),
            down_for: s(5),
        })
        .fault(Fault::Stall {
            amount: Amount::Count(2),
            at: s(15),
            duration: s(3),
            every: None,
        })
        .fault(Fault::Partition {
            amount: Amount::Fraction(0.3),
            at: s(20),
            duration: s(4),
            one_way: true,
            links: 0.7,
        })
        .fault(Fault::Leave {
            amount: Amount::Count(1),
            at: s(25),
            timeout: s(3),
        })
        .fault(Fault::UpdateMeta {
            amount: Amount::Count(2),
            at: s(28),
        })
        .disseminate_at(s(30))
}

/// The report without what depends on the machine (wall time).
fn stable(r: &Report) -> String {
    let mut r = r.clone();
    r.wall_seconds = 0.0;
    r.speedup = 0.0;
    r.events_per_wall_second = 0.0;
    r.peak_rss_bytes = None;
    r.to_json()
}

#[test]
fn same_seed_same_trace_and_report() {
    let a = Simulation::new(chaotic(42)).run();
    let b = Simulation::new(chaotic(42)).run();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(stable(&a), stable(&b));
    assert!(
        a.events > 10_000,
        "the scenario did something: {} events",
        a.events
    );
    assert_eq!(a.crashes, 3, "two crashes and one restart");
    assert!(a.ok(), "{:#?}", a.invariant_violations);
    let c = Simulation::new(chaotic(43)).run();
    assert_ne!(a.trace_hash, c.trace_hash, "another seed, another run");
}

#[test]
fn stepping_gives_the_same_run() {
    let whole = Simulation::new(chaotic(7)).run();
    let mut sim = Simulation::new(chaotic(7));
    for t in (5..=60).step_by(5) {
        sim.run_until(Duration::from_secs(t));
    }
    assert_eq!(sim.report().trace_hash, whole.trace_hash);
}

#[test]
fn any_number_of_threads_gives_the_same_run() {
    let one = Simulation::new(chaotic(11)).run();
    for threads in [2, 3, 8] {
        let many = Simulation::new(chaotic(11)).with_threads(threads).run();
        assert_eq!(many.trace_hash, one.trace_hash, "{threads} threads");
        assert_eq!(stable(&many), stable(&one), "{threads} threads");
    }
    // A formed start reads the member list in the largest window of all.
    let formed = || {
        Scenario::new(300, 5, Preset::Lan)
            .duration(Duration::from_secs(20))
            .formed()
            .fault(Fault::Crash {
                amount: Amount::Count(3),
                at: Duration::from_secs(5),
            })
    };
    let one = Simulation::new(formed()).run();
    let many = Simulation::new(formed()).with_threads(4).run();
    assert_eq!(many.trace_hash, one.trace_hash);
    assert_eq!(stable(&many), stable(&one));
}
