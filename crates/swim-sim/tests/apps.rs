//! The application layer: an application lives and dies with its node's
//! process, sees the node's events and its own timers at their simulated
//! time, acts through the node, is covered by the trace, and fails a run
//! through its invariants; a failing sweep seed replays and shrinks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_sim::sweep::{self, SweepOptions};
use swim_sim::swim_core::Event;
use swim_sim::{
    Amount, AppFailure, Application, Apps, Check, Fault, NodeContext, Preset, Scenario, Simulation,
};

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

/// Records what happens to it; broadcasts and sends when told to.
#[derive(Default)]
struct Recorder {
    started_at: Duration,
    messages: Vec<Vec<u8>>,
    /// (when, token) of every timer that fired.
    fired: Vec<(Duration, u64)>,
    /// Node 0 broadcasts `hello` and sends `direct` to node-1 at 1 s.
    speak: bool,
    /// Bytes set as the local push/pull state at start.
    state: Vec<u8>,
}

impl Application for Recorder {
    fn started(&mut self, node: &mut NodeContext<'_>) {
        self.started_at = node.now();
        // The token says which life set it.
        node.set_timer(s(20), node.now().as_millis() as u64);
        if self.speak && node.index() == 0 {
            node.set_timer(s(1), u64::MAX);
        }
        if !self.state.is_empty() {
            node.set_local_state(self.state.clone());
        }
    }

    fn event(&mut self, _node: &mut NodeContext<'_>, event: &Event) {
        if let Event::UserMessage { payload, .. } = event {
            self.messages.push(payload.clone());
        }
    }

    fn timer(&mut self, node: &mut NodeContext<'_>, token: u64) {
        self.fired.push((node.now(), token));
        if token == u64::MAX {
            node.broadcast(b"hello").expect("broadcast");
            node.send_reliable("node-1", b"direct").expect("send");
        }
    }
}

fn small(seed: u64) -> Scenario {
    Scenario::new(6, seed, Preset::Local).duration(s(60))
}

#[test]
fn an_application_lives_and_dies_with_its_process() {
    let sc = small(1)
        .fault(Fault::Restart {
            amount: Amount::Count(1),
            at: s(10),
            down_for: s(5),
        })
        .app(|_| Recorder::default());
    let mut sim = Simulation::new(sc);
    sim.run_until(s(12));
    let down: Vec<usize> = (0..6).filter(|&i| sim.node(i).is_none()).collect();
    assert_eq!(down.len(), 1, "one node is down");
    let restarted = down[0];
    assert!(
        sim.app::<Recorder>(restarted).is_none(),
        "dropped with its process"
    );
    sim.run_until(s(60));
    for i in 0..6 {
        let app = sim.app::<Recorder>(i).expect("every node runs");
        if i == restarted {
            // A fresh application: its first life's timer (set at 0 s for
            // 20 s) did not fire into it; its own did, at 15 + 20 s.
            assert_eq!(app.started_at, s(15));
            assert_eq!(app.fired, vec![(s(35), 15_000)]);
        } else {
            assert_eq!(app.started_at, Duration::ZERO);
            assert_eq!(app.fired, vec![(s(20), 0)]);
        }
    }
}

#[test]
fn commands_reach_the_other_nodes_applications() {
    // Relayed and retransmitted 6 × ceil(log10 7) times by each node, so the
    // broadcast reaches everyone: with the Local preset's 2 ×, a node of six
    // missed it in 9 % of (seed, node) pairs; with 6 ×, in none of 1,500.
    let sc = small(2)
        .config_hook(|_, c| {
            c.relay_user_broadcasts = true;
            c.retransmit_mult = 6;
        })
        .app(|_| Recorder {
            speak: true,
            ..Recorder::default()
        });
    let mut sim = Simulation::new(sc);
    sim.run_until(s(10));
    for i in 1..6 {
        let got = &sim.app::<Recorder>(i).unwrap().messages;
        let want: Vec<&[u8]> = if i == 1 {
            vec![b"hello", b"direct"]
        } else {
            vec![b"hello"]
        };
        let mut got: Vec<&[u8]> = got.iter().map(Vec::as_slice).collect();
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want, "node-{i}");
    }
    assert!(sim.app::<Recorder>(0).unwrap().messages.is_empty());
}

#[test]
fn the_trace_covers_what_applications_do() {
    let run = |sc: Scenario| Simulation::new(sc).run().trace_hash;
    let bare = run(small(3));
    // An application that only watches changes nothing.
    assert_eq!(run(no_failures(small(3))), bare);
    let speaking = || {
        small(3).app(|_| Recorder {
            speak: true,
            ..Recorder::default()
        })
    };
    let once = run(speaking());
    assert_eq!(run(speaking()), once, "the same run twice");
    assert_ne!(once, bare, "what it sends is in the trace");
    // Commands count even before anything goes on the wire: a run that
    // ends before the first push/pull could carry the state.
    let with_state = |b: u8| {
        small(3)
            .duration(Duration::from_millis(1))
            .app(move |_| Recorder {
                state: vec![b],
                ..Recorder::default()
            })
    };
    assert_ne!(run(with_state(1)), run(with_state(2)));
}

#[test]
fn invariants_run_when_asked_and_fail_the_run() {
    let always = Arc::new(AtomicUsize::new(0));
    let converged = Arc::new(Mutex::new(Vec::new()));
    let at_end = Arc::new(Mutex::new(Vec::new()));
    let (a, c, e) = (always.clone(), converged.clone(), at_end.clone());
    let sc = small(4)
        .fault(Fault::Crash {
            amount: Amount::Count(1),
            at: s(5),
        })
        .app(|_| Recorder::default())
        .invariant("counts", Check::Always, move |_| {
            a.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .invariant("settles", Check::Converged, move |apps| {
            c.lock().unwrap().push(apps.now());
            Ok(())
        })
        .invariant("at-end", Check::AtEnd, move |apps: &Apps<'_>| {
            e.lock().unwrap().push(apps.now());
            Err(AppFailure::new([0, 1], "planted"))
        });
    let report = Simulation::new(sc).run();
    assert!(always.load(Ordering::Relaxed) > 100, "after every step");
    let converged = converged.lock().unwrap().clone();
    assert_eq!(converged.len(), 1, "once");
    assert!(
        converged[0] > s(5),
        "after the crash was seen: {converged:?}"
    );
    assert_eq!(*at_end.lock().unwrap(), vec![s(60)]);
    assert!(!report.ok());
    let v = &report.invariant_violations;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "at-end");
    assert_eq!(v[0].seed, 4);
    assert_eq!(v[0].time_s, 60.0);
    assert_eq!(v[0].observer.as_deref(), Some("node-0"));
    assert_eq!(v[0].member.as_deref(), Some("node-1"));
    assert_eq!(v[0].detail, "planted");
}

/// Fails once any live application has seen a member fail.
fn no_failures(sc: Scenario) -> Scenario {
    #[derive(Default)]
    struct Watch(bool);
    impl Application for Watch {
        fn event(&mut self, _: &mut NodeContext<'_>, event: &Event) {
            self.0 |= matches!(event, Event::MemberFailed(_));
        }
    }
    sc.app(|_| Watch::default())
        .invariant("nobody-fails", Check::Always, |apps| {
            match apps.live::<Watch>().find(|(_, w)| w.0) {
                Some((i, _)) => Err(AppFailure::new([i], "saw a member fail")),
                None => Ok(()),
            }
        })
}

#[test]
fn a_failing_seed_replays_and_shrinks() {
    let opts = SweepOptions {
        seeds: 40,
        first_seed: 1,
        min_nodes: 5,
        max_nodes: 12,
        ..SweepOptions::default()
    };
    let mut traces = Vec::new();
    let summary = sweep::run_with(&opts, &no_failures, |r| {
        traces.push((r.seed, r.trace_hash.clone()))
    });
    // A seed that fails among faults it does not need.
    let failed = summary
        .failed
        .iter()
        .find(|f| sweep::scenario(f.seed, &opts).faults.len() >= 3)
        .expect("a crash among other faults in 40 seeds");
    assert_eq!(failed.violations[0].rule, "nobody-fails");
    let replayed = sweep::replay(failed.seed, &opts, &no_failures);
    let swept = traces
        .iter()
        .find(|(seed, _)| *seed == failed.seed)
        .unwrap();
    assert_eq!(replayed.trace_hash, swept.1, "the same run");

    let shrunk = sweep::shrink(failed.seed, &opts, &no_failures).expect("it fails");
    println!("{}", shrunk.line());
    assert_eq!(shrunk.rule, "nobody-fails");
    assert!(
        shrunk.faults_kept.len() < shrunk.faults_total,
        "{}",
        shrunk.line()
    );
    let cut = shrunk.trial.cut.expect("cut short");
    assert!(cut < sweep::prepared(failed.seed, &opts, &no_failures).duration);
    let again = Simulation::new(shrunk.scenario.clone()).run();
    assert_eq!(again.trace_hash, shrunk.report.trace_hash);
    assert!(again
        .invariant_violations
        .iter()
        .any(|v| v.rule == "nobody-fails"));
}

#[test]
fn a_sweep_fails_when_an_application_check_does() {
    let opts = SweepOptions {
        seeds: 4,
        first_seed: 1,
        min_nodes: 5,
        max_nodes: 8,
        ..SweepOptions::default()
    };
    let planted = |sc: Scenario| {
        sc.app(|_| Recorder::default())
            .invariant("planted", Check::AtEnd, |_| {
                Err(AppFailure::new([0], "always"))
            })
    };
    let summary = sweep::run_with(&opts, &planted, |_| {});
    assert_eq!(summary.failed.len(), 4);
    assert_eq!(summary.passed, 0);
}
