//! Handing a failure over: shrinking and replaying a stateful application
//! build a fresh scenario for every run; a cut run reports no end-of-run
//! failure; the replay command reruns the user's program; checks are exact;
//! a failure comes with its nodes' histories; faults aim at application
//! state; nodes have their own clocks and disks.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_sim::sweep::{self, Cli, FaultMix, SweepOptions};
use swim_sim::swim_core::{Event, MemberState};
use swim_sim::{
    Action, Amount, AppFailure, Application, Apps, Check, Clocks, Fault, Granularity, NodeContext,
    Preset, Scenario, Simulation,
};

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

#[test]
fn the_replay_command_reruns_the_users_own_program() {
    let args = [
        "target/release/examples/lease",
        "--bug",
        "--max-nodes",
        "8",
        "--seeds",
        "1",
    ];
    let cli = Cli::parse(args.map(String::from), opts()).expect("parses");
    assert!(cli.has("--bug"));
    let summary = sweep::run_with(&cli.sweep, &stateful, |_| {});
    let failed = &summary.failed[0];
    assert!(
        failed
            .replay
            .starts_with("target/release/examples/lease --bug --replay 13 "),
        "{}",
        failed.replay
    );
    assert_eq!(summary.traces[0], (13, failed.trace_hash.clone()));
    let shrunk = sweep::shrink(13, &cli.sweep, &stateful).expect("it fails");
    // The printed command, parsed as the user's program would.
    let replay = Cli::parse(
        shrunk.replay.split_whitespace().map(String::from),
        SweepOptions::default(),
    )
    .expect("parses");
    assert!(replay.has("--bug"), "{}", shrunk.replay);
    assert_eq!(replay.replay, Some(13));
    assert_eq!(replay.trial, shrunk.trial, "{}", shrunk.replay);
    let again = Simulation::new(sweep::trial(13, &replay.sweep, &stateful, &replay.trial)).run();
    assert_eq!(again.trace_hash, shrunk.report.trace_hash);
    assert!(replay.run(&stateful) == again.ok());
}

#[test]
fn a_run_that_depends_on_more_than_its_seed_is_caught() {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    struct Impure;
    impl Application for Impure {
        fn started(&mut self, node: &mut NodeContext<'_>) {
            // Depends on how often the process ran it: not a function of the seed.
            let n = CALLS.fetch_add(1, Ordering::Relaxed);
            node.set_timer(Duration::from_millis(1000 + n % 7), n);
        }
    }
    let impure = |sc: Scenario| {
        sc.app(|_| Impure).invariant("fails", Check::AtEnd, |_| {
            Err(AppFailure::new([0], "planted"))
        })
    };
    let o = SweepOptions {
        twice: true,
        ..opts()
    };
    let summary = sweep::run_with(&o, &impure, |_| {});
    let rules: Vec<_> = summary.failed[0]
        .violations
        .iter()
        .map(|v| &v.rule)
        .collect();
    assert!(rules.iter().any(|r| *r == "nondeterminism"), "{rules:?}");
}

/// Goes bad at 5.5 s on its timer 1, and good again on timer 2 at the
/// same instant: within one step.
#[derive(Default)]
struct Blip {
    bad: bool,
}

impl Application for Blip {
    fn started(&mut self, node: &mut NodeContext<'_>) {
        if node.index() == 2 {
            node.set_timer(Duration::from_millis(5_500), 1);
            node.set_timer(Duration::from_millis(5_500), 2);
        }
    }
    fn timer(&mut self, _: &mut NodeContext<'_>, token: u64) {
        self.bad = token == 1;
    }
}

fn blip(g: Granularity) -> Scenario {
    Scenario::new(5, 3, Preset::Local)
        .duration(s(10))
        .granularity(g)
        .app(|_| Blip::default())
        .invariant("never-bad", Check::Always, |apps| {
            match apps.live::<Blip>().find(|(_, b)| b.bad) {
                Some((i, _)) => Err(AppFailure::new([i], "bad")),
                None => Ok(()),
            }
        })
}

#[test]
fn a_state_that_comes_and_goes_within_a_step_is_seen_at_its_time() {
    let r = Simulation::new(blip(Granularity::Callback)).run();
    let v = &r.invariant_violations;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].time_s, 5.5, "the callback's time");
    assert!(v[0].detail.contains("node-2's timer 1"), "{}", v[0].detail);
    // Checked only between steps, it is never seen.
    assert!(Simulation::new(blip(Granularity::Step)).run().ok());
    // Checking after callbacks changes nothing in the run.
    let plain = Scenario::new(5, 3, Preset::Local)
        .duration(s(10))
        .app(|_| Blip::default());
    assert_eq!(Simulation::new(plain).run().trace_hash, r.trace_hash);
}

#[test]
fn a_failure_comes_with_what_its_nodes_did() {
    let shrunk = sweep::shrink(13, &opts(), &stateful).expect("it fails");
    let c = &shrunk.report.failure_context[0];
    assert_eq!(c.rule, "no-recovery");
    assert_eq!(c.nodes.len(), 1);
    assert!(c.moments.iter().all(|m| m.time_s <= c.time_s + 1e-9));
    let whats: Vec<&str> = c.moments.iter().map(|m| m.what.as_str()).collect();
    assert!(whats.contains(&"process started"), "{whats:?}");
    assert!(whats.contains(&"process stopped"), "{whats:?}");
    assert!(c.moments.iter().any(|m| m.peer.is_some()), "messages");
    let mut text = Vec::new();
    shrunk.report.print_failure(&mut text);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("process started"), "{text}");
    let svg = shrunk.report.timeline_svg().expect("a timeline");
    assert!(svg.starts_with("<svg") && svg.contains("no-recovery fails at"));
}

/// Thinks the lowest-named member it sees alive is the leader.
#[derive(Default)]
struct Follower {
    leader: bool,
}

impl Application for Follower {
    fn event(&mut self, node: &mut NodeContext<'_>, _: &Event) {
        let me = node.name();
        let alive = node.swim().members().into_iter();
        let alive = alive.filter(|m| m.state == MemberState::Alive);
        self.leader = alive.map(|m| m.name.to_string()).min() == Some(me);
    }
}

#[test]
fn faults_aim_at_nodes_chosen_by_application_state() {
    let leader = |apps: &Apps<'_>| {
        apps.live::<Follower>()
            .filter(|(_, f)| f.leader)
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    let sc = Scenario::new(6, 5, Preset::Local)
        .duration(s(40))
        .app(|_| Follower::default())
        .aim(s(5), Action::Crash, leader)
        .aim(s(25), Action::Crash, leader);
    let r = Simulation::new(sc).run();
    let crashed: Vec<_> = r.faults_applied.iter().map(|f| f.2.clone()).collect();
    assert_eq!(
        crashed,
        vec![vec!["node-0".to_string()], vec!["node-1".to_string()]]
    );

    // At run time, from the API.
    let mut sim = Simulation::new(
        Scenario::new(6, 5, Preset::Local)
            .duration(s(30))
            .app(|_| Follower::default()),
    );
    sim.run_until(s(5));
    let leaders = sim.nodes_where::<Follower>(|_, f| f.leader);
    assert_eq!(leaders, vec![0]);
    sim.partition(&leaders, s(5));
    sim.run_until(s(7));
    sim.heal();
    sim.crash(&[3]);
    let r = sim.finish();
    let what: Vec<_> = r.faults_applied.iter().map(|f| f.1.as_str()).collect();
    assert_eq!(
        what,
        ["partition for 5s (aimed)", "heal all", "crash (aimed)"]
    );
}

#[test]
fn the_sweep_draws_the_mix_of_faults_it_is_given() {
    let only_partitions = SweepOptions {
        mix: FaultMix {
            max_faults: 3,
            crash: 0,
            restart: 0,
            leave: 0,
            stall: 0,
            partition: 1,
            loss: 0,
            update_meta: 0,
        },
        ..SweepOptions::default()
    };
    let faults: Vec<Fault> = (1..40)
        .flat_map(|seed| sweep::scenario(seed, &only_partitions).faults)
        .collect();
    assert!(faults.len() > 20);
    assert!(faults.iter().all(|f| matches!(f, Fault::Partition { .. })));
    assert!((1..40).all(|seed| sweep::scenario(seed, &only_partitions).faults.len() <= 3));
    // The default mix is the sweep it always was.
    let mut o = SweepOptions::default();
    assert!(o.set("--fault-weights", "1,1,1,2,1,1,1").unwrap());
    assert_eq!(o, SweepOptions::default());
}

/// Reads its clock at start and on its timer; keeps a counter on disk.
#[derive(Default)]
struct Clocked {
    started: Duration,
    fired: Option<Duration>,
    true_fired: Option<Duration>,
    boots: u64,
}

impl Application for Clocked {
    fn started(&mut self, node: &mut NodeContext<'_>) {
        self.started = node.now();
        node.set_timer(s(10), 0);
        let boots = node.disk().read(b"boots").map_or(0, |b| b[0] as u64);
        self.boots = boots + 1;
        node.disk_write(b"boots", &[self.boots as u8]);
        if node.index() != 1 {
            node.disk_sync(); // node 1 never syncs
        }
        node.count("boots", 1);
    }
    fn timer(&mut self, node: &mut NodeContext<'_>, _: u64) {
        self.fired = Some(node.now());
        self.true_fired = Some(node.true_time());
    }
}

#[test]
fn nodes_have_their_own_clocks_and_disks() {
    let sc = |clocks: Option<Clocks>| {
        let mut sc = Scenario::new(4, 9, Preset::Local)
            .duration(s(40))
            .app(|_| Clocked::default())
            .fault(Fault::Restart {
                amount: Amount::Count(4),
                at: s(20),
                down_for: s(1),
            });
        sc.clocks = clocks;
        sc
    };
    let skewed = Clocks {
        max_offset: Duration::from_millis(500),
        max_drift_ppm: 50_000,
        jumps: 0,
        max_jump: Duration::ZERO,
    };
    let mut sim = Simulation::new(sc(Some(skewed)));
    sim.run_until(s(15));
    let starts: BTreeSet<Duration> = (0..4)
        .map(|i| sim.app::<Clocked>(i).unwrap().started)
        .collect();
    assert_eq!(starts.len(), 4, "each node's own offset: {starts:?}");
    let fired: BTreeSet<Duration> = (0..4)
        .map(|i| sim.app::<Clocked>(i).unwrap().true_fired.unwrap())
        .collect();
    assert!(fired.len() > 1, "timers drift: {fired:?}");
    for i in 0..4 {
        let a = sim.app::<Clocked>(i).unwrap();
        let local = a.fired.unwrap() - a.started;
        assert!(
            local.abs_diff(s(10)) < Duration::from_millis(1),
            "10 s on its own clock: {local:?}"
        );
    }
    sim.run_until(s(40));
    // After the restart: what was synced survived, node 1's write did not.
    let boots: Vec<u64> = (0..4)
        .map(|i| sim.app::<Clocked>(i).unwrap().boots)
        .collect();
    assert_eq!(boots, [2, 1, 2, 2]);
    let r = sim.finish();
    assert_eq!(r.app_metrics.get("boots"), Some(&8));
    // Without clocks every node reads the true time.
    let mut sim = Simulation::new(sc(None));
    sim.run_until(s(15));
    assert!((0..4).all(|i| sim.app::<Clocked>(i).unwrap().fired == Some(s(10))));
}

#[test]
fn invariants_see_faults_and_run_until_ends_with_the_end_checks() {
    let seen = Arc::new(Mutex::new((false, false)));
    let seen2 = seen.clone();
    let sc = Scenario::new(6, 4, Preset::Local)
        .duration(s(20))
        .app(|_| Blip::default())
        .fault(Fault::Stall {
            amount: Amount::Count(1),
            at: s(5),
            duration: s(2),
            every: None,
        })
        .fault(Fault::Partition {
            amount: Amount::Count(2),
            at: s(10),
            duration: s(2),
            one_way: false,
            links: 1.0,
        })
        .invariant("sees", Check::Always, move |apps| {
            let mut s = seen2.lock().unwrap();
            s.0 |= (0..apps.nodes()).any(|i| apps.is_stalled(i));
            s.1 |= (0..apps.nodes()).any(|i| apps.is_partitioned(i));
            Ok(())
        })
        .invariant("end", Check::AtEnd, |_| {
            Err(AppFailure::new([0], "at the end"))
        });
    let mut sim = Simulation::new(sc);
    sim.run_until(s(20));
    let r = sim.finish();
    assert_eq!(*seen.lock().unwrap(), (true, true));
    assert!(r.invariant_violations.iter().any(|v| v.rule == "end"));
}

/// Counts failed members 3 s after hearing of each, and tells the others.
#[derive(Default)]
struct SlowCount {
    dead: usize,
}

impl Application for SlowCount {
    fn event(&mut self, node: &mut NodeContext<'_>, event: &Event) {
        if let Event::MemberFailed(_) = event {
            node.set_timer(s(3), 0);
        }
    }
    fn timer(&mut self, node: &mut NodeContext<'_>, _: u64) {
        self.dead += 1;
        let _ = node.broadcast(b"counted");
    }
}

fn slow_count(when: Check) -> Scenario {
    Scenario::new(8, 6, Preset::Local)
        .duration(s(60))
        .fault(Fault::Crash {
            amount: Amount::Count(1),
            at: s(5),
        })
        .app(|_| SlowCount::default())
        .invariant("counted", when, |apps| {
            match apps.live::<SlowCount>().find(|(_, c)| c.dead != 1) {
                Some((i, c)) => Err(AppFailure::new([i], format!("counted {}", c.dead))),
                None => Ok(()),
            }
        })
}

#[test]
fn a_settled_check_waits_for_the_application() {
    // Membership converges before the application has caught up.
    assert!(!Simulation::new(slow_count(Check::Converged)).run().ok());
    // Application timers are not changes: wait longer than its own delays.
    let r = Simulation::new(slow_count(Check::Settled(s(5)))).run();
    assert!(r.ok(), "{:?}", r.invariant_violations);
    let ran = Arc::new(AtomicU64::new(0));
    let ran2 = ran.clone();
    let sc = slow_count(Check::Settled(s(5))).invariant("ran", Check::Settled(s(5)), move |_| {
        ran2.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    Simulation::new(sc).run();
    assert_eq!(ran.load(Ordering::Relaxed), 1, "once");
}

#[test]
fn liveness_after_healing_everything() {
    // A single leader within 30 s of healing: the partition that would
    // never end (two leaders by 30 s) ends with the heal.
    let has_leader = |apps: &Apps<'_>| {
        if apps.live::<Follower>().filter(|(_, f)| f.leader).count() == 1 {
            Ok(())
        } else {
            Err(AppFailure::new([], "no single leader"))
        }
    };
    let sc = |within| {
        Scenario::new(6, 2, Preset::Local)
            .duration(s(90))
            .app(|_| Follower::default())
            .aim(s(5), Action::Partition { duration: s(3600) }, |_| {
                vec![0, 1, 2]
            })
            .liveness("one-leader", s(30), within, has_leader)
    };
    let r = Simulation::new(sc(s(30))).run();
    assert!(r.ok(), "{:?}", r.invariant_violations);
    assert!(r.faults_applied.iter().any(|f| f.1 == "heal all"));
    let r = Simulation::new(sc(Duration::from_millis(1))).run();
    assert_eq!(
        r.invariant_violations[0].rule, "one-leader",
        "{:?}",
        r.invariant_violations
    );
}
