//! Seed sweeps: many small chaotic clusters, each scenario drawn from its
//! seed, run and checked; a failing seed replays exactly.

use std::time::Duration;

use rayon::prelude::*;
use serde::Serialize;

use crate::network::{Latency, NetworkModel};
use crate::report::{Report, Violation};
use crate::rng::{derive, SimRng};
use crate::scenario::{Amount, Fault, Scenario, Start};
use crate::Preset;
use crate::Simulation;

/// What a sweep covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOptions {
    /// How many seeds.
    pub seeds: u64,
    /// The first seed; the sweep runs `first_seed .. first_seed + seeds`.
    pub first_seed: u64,
    /// Smallest cluster.
    pub min_nodes: usize,
    /// Largest cluster.
    pub max_nodes: usize,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            seeds: 200,
            first_seed: 1,
            min_nodes: 5,
            max_nodes: 64,
        }
    }
}

/// A seed that broke a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedSeed {
    /// The seed.
    pub seed: u64,
    /// Cluster size it drew.
    pub nodes: usize,
    /// The scenario, in one line.
    pub scenario: String,
    /// The command that replays it.
    pub replay: String,
    /// The violations (as listed in its report).
    pub violations: Vec<Violation>,
}

/// The outcome of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSummary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds where every rule held.
    pub passed: u64,
    /// Seeds that broke a rule.
    pub failed: Vec<FailedSeed>,
    /// Total simulated seconds.
    pub simulated_seconds: f64,
    /// Wall seconds the sweep took (its seeds run side by side).
    pub wall_seconds: f64,
    /// Crashes simulated, and how many every live node saw.
    pub crashes: usize,
    /// Crashes every live node saw dead.
    pub crashes_detected: usize,
}

impl SweepSummary {
    /// One line for a terminal.
    pub fn line(&self) -> String {
        format!(
            "sweep: {} seeds, {} passed, {} failed; {:.0} simulated seconds in {:.1}s wall; {}/{} crashes seen dead by all",
            self.seeds,
            self.passed,
            self.failed.len(),
            self.simulated_seconds,
            self.wall_seconds,
            self.crashes_detected,
            self.crashes
        )
    }
}

fn ms(rng: &mut SimRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.below(hi - lo + 1))
}

/// The scenario sweep seed `seed` draws: a small cluster on the local
/// preset with random network trouble and faults that all end in time for
/// the convergence bound to be checked before the run ends.
pub fn scenario(seed: u64, opts: &SweepOptions) -> Scenario {
    let mut r = SimRng::new(derive(seed, 0x0053_5745_4550, 0));
    let span = (opts.max_nodes - opts.min_nodes) as u64;
    let n = opts.min_nodes + r.below(span + 1) as usize;
    let mut sc = Scenario::new(n, seed, Preset::Local);
    sc.sample_interval = Duration::from_millis(500);
    sc.max_violations_listed = 20;
    if r.chance(0.5) {
        sc.start = Start::Bootstrap {
            seeds: 1 + r.below(3) as usize,
            window: ms(&mut r, 0, 5000),
        };
    } else if r.chance(0.3) {
        sc.start = Start::Formed;
    }
    sc.network = NetworkModel {
        latency: if r.chance(0.5) {
            Latency::Uniform(Duration::from_micros(100), ms(&mut r, 1, 10))
        } else {
            Latency::LogNormal {
                median: ms(&mut r, 1, 5),
                sigma: 0.3 + r.unit(),
            }
        },
        jitter: ms(&mut r, 0, 5),
        loss: if r.chance(0.3) { r.unit() * 0.1 } else { 0.0 },
        duplicate: if r.chance(0.3) { r.unit() * 0.05 } else { 0.0 },
        reorder: if r.chance(0.3) { r.unit() * 0.1 } else { 0.0 },
        reorder_delay: ms(&mut r, 1, 50),
        ..NetworkModel::default()
    };
    // Keep most of the cluster alive: crash-like faults take at most a
    // third of it in all.
    let mut budget = (n / 3).max(1);
    let faults = r.below(6);
    for _ in 0..faults {
        let at = ms(&mut r, 2_000, 40_000);
        let kind = r.below(8);
        let f = match kind {
            0 | 1 => {
                if budget == 0 {
                    continue;
                }
                let k = 1 + r.below(2.min(budget as u64)) as usize;
                budget -= k;
                if kind == 0 {
                    Fault::Crash {
                        amount: Amount::Count(k),
                        at,
                    }
                } else {
                    Fault::Restart {
                        amount: Amount::Count(k),
                        at,
                        down_for: ms(&mut r, 1_000, 20_000),
                    }
                }
            }
            2 => {
                if budget == 0 {
                    continue;
                }
                budget -= 1;
                Fault::Leave {
                    amount: Amount::Count(1),
                    at,
                    timeout: Duration::from_secs(5),
                }
            }
            3 | 4 => {
                let duration = ms(&mut r, 200, 8_000);
                Fault::Stall {
                    amount: Amount::Count(1 + r.below(3) as usize),
                    at,
                    duration,
                    every: None,
                }
            }
            5 => Fault::Partition {
                amount: Amount::Fraction(0.1 + r.unit() * 0.4),
                at,
                duration: ms(&mut r, 500, 10_000),
                one_way: r.chance(0.3),
                links: if r.chance(0.3) {
                    0.2 + r.unit() * 0.6
                } else {
                    1.0
                },
            },
            6 => Fault::Loss {
                rate: 0.1 + r.unit() * 0.4,
                at,
                duration: ms(&mut r, 500, 10_000),
            },
            _ => Fault::UpdateMeta {
                amount: Amount::Count(1 + r.below(3) as usize),
                at,
            },
        };
        sc.faults.push(f);
    }
    if r.chance(0.5) {
        sc.disseminate_at = Some(ms(&mut r, 1_000, 30_000));
    }
    // Run until the convergence check, and a little beyond.
    sc.duration = Duration::from_secs(3600);
    let quiet = sc.quiet_from().unwrap_or(sc.duration);
    sc.duration = quiet + sc.convergence_bound() + Duration::from_secs(1);
    sc
}

/// Adjusts each scenario of a sweep before it runs: installs an application
/// and its invariants, say. The identity for the protocol's own sweep.
pub type Prepare = dyn Fn(Scenario) -> Scenario + Sync;

/// The scenario sweep seed `seed` runs with `prepare` applied: what
/// [`run_with`] runs and [`replay`] replays.
pub fn prepared(seed: u64, opts: &SweepOptions, prepare: &Prepare) -> Scenario {
    prepare(scenario(seed, opts))
}

/// Runs seed `seed` of a sweep again: the same scenario, the same trace.
pub fn replay(seed: u64, opts: &SweepOptions, prepare: &Prepare) -> Report {
    Simulation::new(prepared(seed, opts, prepare)).run()
}

/// Runs the sweep, calling `each` with every report as it finishes.
pub fn run(opts: &SweepOptions, each: impl FnMut(&Report)) -> SweepSummary {
    run_with(opts, &|sc| sc, each)
}

/// [`run`], each scenario adjusted by `prepare` first (an application and
/// its invariants).
pub fn run_with(
    opts: &SweepOptions,
    prepare: &Prepare,
    mut each: impl FnMut(&Report),
) -> SweepSummary {
    let mut s = SweepSummary {
        seeds: opts.seeds,
        passed: 0,
        failed: Vec::new(),
        simulated_seconds: 0.0,
        wall_seconds: 0.0,
        crashes: 0,
        crashes_detected: 0,
    };
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = (opts.first_seed..opts.first_seed.saturating_add(opts.seeds)).collect();
    // Seeds run side by side on every core, a few at a time, and are
    // reported in order.
    let per_round = 4 * rayon::current_num_threads();
    for round in seeds.chunks(per_round) {
        let runs: Vec<(u64, String, Report)> = round
            .par_iter()
            .map(|&seed| {
                let sc = prepared(seed, opts, prepare);
                let description = crate::describe(&sc);
                (seed, description, Simulation::new(sc).run())
            })
            .collect();
        for (seed, description, report) in runs {
            s.record(seed, description, report, opts, &mut each);
        }
    }
    s.wall_seconds = started.elapsed().as_secs_f64();
    s
}

impl SweepSummary {
    fn record(
        &mut self,
        seed: u64,
        description: String,
        report: Report,
        opts: &SweepOptions,
        each: &mut impl FnMut(&Report),
    ) {
        self.simulated_seconds += report.simulated_seconds;
        self.crashes += report.detections.iter().filter(|d| !d.restarted).count();
        self.crashes_detected += report
            .detections
            .iter()
            .filter(|d| !d.restarted && d.all_dead_s.is_some())
            .count();
        if report.ok() {
            self.passed += 1;
        } else {
            self.failed.push(FailedSeed {
                seed,
                nodes: report.nodes,
                scenario: description,
                replay: format!(
                    "swim-sim sweep --replay {seed} --min-nodes {} --max-nodes {}",
                    opts.min_nodes, opts.max_nodes
                ),
                violations: report.invariant_violations.clone(),
            });
        }
        each(&report);
    }
}

/// A failing seed made smaller: the faults it still fails without removed,
/// and the earliest time it fails.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The seed.
    pub seed: u64,
    /// The rule that failed first in the full run, and still fails.
    pub rule: String,
    /// The indices, in the seed's scenario, of the faults kept: the run
    /// fails with these alone.
    pub faults_kept: Vec<usize>,
    /// The seed's fault count.
    pub faults_total: usize,
    /// The scenario that still fails, ending just after the failure when
    /// that still fails: replay it with `Simulation::new(scenario).run()`.
    pub scenario: Scenario,
    /// Simulated seconds to the first violation of `rule` in it.
    pub fails_at_s: f64,
    /// Its report.
    pub report: Report,
}

impl Shrunk {
    /// One line for a terminal.
    pub fn line(&self) -> String {
        format!(
            "seed {} fails `{}` at {:.3}s with {} of its {} faults (kept: {:?}); the run can end at {:.3}s",
            self.seed,
            self.rule,
            self.fails_at_s,
            self.faults_kept.len(),
            self.faults_total,
            self.faults_kept,
            self.scenario.duration.as_secs_f64(),
        )
    }
}

/// The first violation of `rule` in `report`, if any (its time).
fn fails(report: &Report, rule: &str) -> Option<f64> {
    report
        .invariant_violations
        .iter()
        .filter(|v| v.rule == rule)
        .map(|v| v.time_s)
        .reduce(f64::min)
}

/// Shrinks failing seed `seed`: drops every fault the failure does not
/// need (trying each once, last first, keeping a removal while the same
/// rule still fails), then ends the run just after the first violation if
/// it still fails then. `None` if the seed does not fail.
///
/// Removing a fault changes the random draws after it, so the shrunk run is
/// a different run that fails the same way: a shorter, simpler trace to
/// debug, not a prefix of the original.
pub fn shrink(seed: u64, opts: &SweepOptions, prepare: &Prepare) -> Option<Shrunk> {
    let full = prepared(seed, opts, prepare);
    let report = Simulation::new(full.clone()).run();
    let first = report
        .invariant_violations
        .iter()
        .min_by(|a, b| a.time_s.total_cmp(&b.time_s))?;
    let rule = first.rule.clone();
    let mut kept: Vec<usize> = (0..full.faults.len()).collect();
    let with = |kept: &[usize]| {
        let mut sc = full.clone();
        sc.faults = kept.iter().map(|&k| full.faults[k].clone()).collect();
        sc
    };
    let mut best = (full.clone(), report.clone());
    for k in (0..full.faults.len()).rev() {
        let trial: Vec<usize> = kept.iter().copied().filter(|&f| f != k).collect();
        let sc = with(&trial);
        let r = Simulation::new(sc.clone()).run();
        if fails(&r, &rule).is_some() {
            kept = trial;
            best = (sc, r);
        }
    }
    let at = fails(&best.1, &rule).unwrap_or(first.time_s);
    // End just after the failure, if it still fails that early.
    let mut short = best.0.clone();
    short.duration = Duration::from_secs_f64(at) + Duration::from_millis(1);
    if short.duration < best.0.duration {
        let r = Simulation::new(short.clone()).run();
        if fails(&r, &rule).is_some() {
            best = (short, r);
        }
    }
    Some(Shrunk {
        seed,
        rule,
        faults_kept: kept,
        faults_total: full.faults.len(),
        fails_at_s: fails(&best.1, &first.rule).unwrap_or(at),
        scenario: best.0,
        report: best.1,
    })
}
