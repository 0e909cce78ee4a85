//! Seed sweeps: many small chaotic clusters, each scenario drawn from its
//! seed, run and checked; a failing seed replays exactly, shrinks to the
//! faults it needs, and hands over a command that reruns the user's own
//! program on it ([`Cli`]).
//!
//! Every run of a seed — the sweep's, a replay, each trial of a shrink —
//! is built fresh by the user's [`Prepare`]: an application whose factory
//! or invariants keep state (a simulated disk, a checker's memory) starts
//! every run clean.

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
    /// Which faults the seeds draw, and how many.
    pub mix: FaultMix,
    /// The program a failing seed's replay command runs (`None`: the
    /// `swim-sim sweep` command line, the protocol's own sweep). [`Cli`]
    /// sets it to the user's program and its own flags.
    pub command: Option<String>,
    /// Runs every failing seed a second time, freshly prepared, and adds a
    /// `nondeterminism` violation when the traces differ: a run that
    /// depends on something besides its seed cannot be replayed.
    pub twice: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            seeds: 200,
            first_seed: 1,
            min_nodes: 5,
            max_nodes: 64,
            mix: FaultMix::default(),
            command: None,
            twice: false,
        }
    }
}

impl SweepOptions {
    /// The flags [`set`](Self::set) reads.
    pub const FLAGS: &'static [&'static str] = &[
        "--seeds",
        "--first-seed",
        "--min-nodes",
        "--max-nodes",
        "--max-faults",
        "--fault-weights",
    ];

    /// Applies one command-line flag and its value (`--seeds`,
    /// `--first-seed`, `--min-nodes`, `--max-nodes`, `--max-faults`,
    /// `--fault-weights c,r,l,s,p,o,m`); `Ok(false)` for a flag of no sweep.
    pub fn set(&mut self, flag: &str, value: &str) -> Result<bool, String> {
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not `{v}`"))
        };
        match flag {
            "--seeds" => self.seeds = num(value)?,
            "--first-seed" => self.first_seed = num(value)?,
            "--min-nodes" => self.min_nodes = num(value)? as usize,
            "--max-nodes" => self.max_nodes = num(value)? as usize,
            "--max-faults" => self.mix.max_faults = num(value)?,
            "--fault-weights" => {
                let w: Vec<u64> = value.split(',').map(num).collect::<Result<_, _>>()?;
                let w: [u64; 7] = w
                    .try_into()
                    .map_err(|_| format!("{flag} takes 7 weights: {}", FaultMix::ORDER))?;
                let [crash, restart, leave, stall, partition, loss, update_meta] = w;
                self.mix = FaultMix {
                    crash,
                    restart,
                    leave,
                    stall,
                    partition,
                    loss,
                    update_meta,
                    ..self.mix
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The flags that draw the same scenarios again (what [`set`](Self::set)
    /// reads), the defaults left out but the cluster sizes.
    pub fn flags(&self) -> String {
        let mut f = format!(
            "--min-nodes {} --max-nodes {}",
            self.min_nodes, self.max_nodes
        );
        let d = FaultMix::default();
        if self.mix.max_faults != d.max_faults {
            f += &format!(" --max-faults {}", self.mix.max_faults);
        }
        if self.mix.weights() != d.weights() {
            let w: Vec<String> = self.mix.weights().iter().map(u64::to_string).collect();
            f += &format!(" --fault-weights {}", w.join(","));
        }
        f
    }
}

/// The mix of faults a sweep's seeds draw: each seed draws up to
/// `max_faults` faults, each of a kind with probability proportional to its
/// weight. The default is the protocol's own sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultMix {
    /// Most faults per seed (each seed draws 0 to this many).
    pub max_faults: u64,
    /// Weight of crashes.
    pub crash: u64,
    /// Weight of restarts.
    pub restart: u64,
    /// Weight of graceful leaves.
    pub leave: u64,
    /// Weight of stalls.
    pub stall: u64,
    /// Weight of partitions (full, one-way, partial).
    pub partition: u64,
    /// Weight of bursts of loss.
    pub loss: u64,
    /// Weight of metadata updates.
    pub update_meta: u64,
}

impl Default for FaultMix {
    fn default() -> Self {
        FaultMix {
            max_faults: 5,
            crash: 1,
            restart: 1,
            leave: 1,
            stall: 2,
            partition: 1,
            loss: 1,
            update_meta: 1,
        }
    }
}

impl FaultMix {
    /// The order of the weights on the command line.
    pub const ORDER: &'static str = "crash,restart,leave,stall,partition,loss,update-meta";

    /// The weights, in [`ORDER`](Self::ORDER).
    pub fn weights(&self) -> [u64; 7] {
        [
            self.crash,
            self.restart,
            self.leave,
            self.stall,
            self.partition,
            self.loss,
            self.update_meta,
        ]
    }

    /// Draws a kind: its index in [`ORDER`](Self::ORDER). With the default
    /// weights this is one draw below 8, as the sweep always drew.
    fn draw(&self, r: &mut SimRng) -> Option<usize> {
        let w = self.weights();
        let total: u64 = w.iter().sum();
        let mut x = r.below(total);
        for (kind, &wk) in w.iter().enumerate() {
            if x < wk {
                return Some(kind);
            }
            x -= wk;
        }
        None
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
    /// Its trace hash: a replay that gives another one is another run.
    pub trace_hash: String,
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
    /// Every seed's trace hash, in order.
    pub traces: Vec<(u64, String)>,
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
    // Small clusters: a longer history of each node for a failure's context.
    sc.history = 512;
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
    let faults = r.below(opts.mix.max_faults + 1);
    for _ in 0..faults {
        let at = ms(&mut r, 2_000, 40_000);
        let Some(kind) = opts.mix.draw(&mut r) else {
            break;
        };
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
            3 => {
                let duration = ms(&mut r, 200, 8_000);
                Fault::Stall {
                    amount: Amount::Count(1 + r.below(3) as usize),
                    at,
                    duration,
                    every: None,
                }
            }
            4 => Fault::Partition {
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
            5 => Fault::Loss {
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
///
/// It is called once for every run — the sweep's, a replay's, each trial of
/// a shrink — so state it creates (a disk the factory captures, a checker's
/// memory) belongs to one run.
pub type Prepare = dyn Fn(Scenario) -> Scenario + Sync;

/// The scenario sweep seed `seed` runs with `prepare` applied: what
/// [`run_with`] runs and [`replay`] replays.
pub fn prepared(seed: u64, opts: &SweepOptions, prepare: &Prepare) -> Scenario {
    prepare(scenario(seed, opts))
}

/// Which run of a seed: all its faults or some, to the end or cut short.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trial {
    /// The indices of the faults kept, in the prepared scenario (`None`:
    /// all of them).
    pub faults: Option<Vec<usize>>,
    /// The indices of the aimed faults kept ([`Scenario::aimed`]; `None`:
    /// all of them).
    pub aimed: Option<Vec<usize>>,
    /// Where the run is cut ([`Scenario::stop_at`]).
    pub cut: Option<Duration>,
}

impl Trial {
    /// The flags that select this trial on a replay (`--faults`,
    /// `--aimed`, `--cut`).
    pub fn flags(&self) -> String {
        let list = |k: &[usize]| {
            let k: Vec<String> = k.iter().map(usize::to_string).collect();
            if k.is_empty() {
                "none".to_string()
            } else {
                k.join(",")
            }
        };
        let mut f = String::new();
        if let Some(k) = &self.faults {
            f += &format!(" --faults {}", list(k));
        }
        if let Some(k) = &self.aimed {
            f += &format!(" --aimed {}", list(k));
        }
        if let Some(c) = self.cut {
            f += &format!(" --cut {}ns", c.as_nanos());
        }
        f
    }
}

/// Seed `seed`'s scenario, freshly prepared, made into `trial`.
pub fn trial(seed: u64, opts: &SweepOptions, prepare: &Prepare, trial: &Trial) -> Scenario {
    let mut sc = prepared(seed, opts, prepare);
    if let Some(kept) = &trial.faults {
        sc.faults = kept
            .iter()
            .filter_map(|&k| sc.faults.get(k).cloned())
            .collect();
    }
    if let Some(kept) = &trial.aimed {
        sc.aimed = kept
            .iter()
            .filter_map(|&k| sc.aimed.get(k).cloned())
            .collect();
    }
    sc.stop_at = trial.cut;
    sc
}

/// Runs seed `seed` of a sweep again: the same scenario, the same trace.
pub fn replay(seed: u64, opts: &SweepOptions, prepare: &Prepare) -> Report {
    Simulation::new(prepared(seed, opts, prepare)).run()
}

/// The command that reruns `trial` of seed `seed`.
pub fn replay_command(seed: u64, opts: &SweepOptions, trial: &Trial) -> String {
    format!(
        "{} --replay {seed} {}{}",
        opts.command.as_deref().unwrap_or("swim-sim sweep"),
        opts.flags(),
        trial.flags()
    )
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
        traces: Vec::new(),
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
                let mut report = Simulation::new(sc).run();
                if opts.twice && !report.ok() {
                    let again = replay(seed, opts, prepare);
                    if again.trace_hash != report.trace_hash {
                        report.invariant_violations.push(Violation {
                            rule: "nondeterminism".into(),
                            seed,
                            time_s: 0.0,
                            observer: None,
                            member: None,
                            detail: format!(
                                "the same seed ran twice gave traces {} and {}: the run depends on something besides its seed",
                                report.trace_hash, again.trace_hash
                            ),
                        });
                        report.invariant_violations_total += 1;
                    }
                }
                (seed, description, report)
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
        self.traces.push((seed, report.trace_hash.clone()));
        if report.ok() {
            self.passed += 1;
        } else {
            self.failed.push(FailedSeed {
                seed,
                nodes: report.nodes,
                scenario: description,
                replay: replay_command(seed, opts, &Trial::default()),
                trace_hash: report.trace_hash.clone(),
                violations: report.invariant_violations.clone(),
            });
        }
        each(&report);
    }
}

/// A failing seed made smaller: the faults it still fails without removed,
/// and the run cut just after the failure.
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
    /// The indices of the aimed faults kept ([`Scenario::aimed`]).
    pub aimed_kept: Vec<usize>,
    /// The prepared scenario's aimed fault count.
    pub aimed_total: usize,
    /// The run that still fails: rebuild it with [`trial`] (a fresh
    /// application), rerun it with [`replay`](Self::replay).
    pub trial: Trial,
    /// The scenario of that run, as it ran. Its application factory and
    /// invariants are the ones that run used: rerun [`trial`] instead when
    /// they keep state.
    pub scenario: Scenario,
    /// Simulated seconds to the first violation of `rule` in it.
    pub fails_at_s: f64,
    /// Its report.
    pub report: Report,
    /// The command that reruns it.
    pub replay: String,
}

impl Shrunk {
    /// One line for a terminal.
    pub fn line(&self) -> String {
        let aimed = if self.aimed_total > 0 {
            format!(
                " and {} of its {} aimed faults (kept: {:?})",
                self.aimed_kept.len(),
                self.aimed_total,
                self.aimed_kept
            )
        } else {
            String::new()
        };
        format!(
            "seed {} fails `{}` at {:.3}s with {} of its {} faults (kept: {:?}){aimed}; the run can end at {:.3}s",
            self.seed,
            self.rule,
            self.fails_at_s,
            self.faults_kept.len(),
            self.faults_total,
            self.faults_kept,
            self.trial
                .cut
                .unwrap_or(self.scenario.duration)
                .as_secs_f64(),
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
/// rule still fails), then cuts the run just after the first violation if
/// it still fails then (a cut run checks nothing at its end). Every trial
/// is prepared afresh. `None` if the seed does not fail.
///
/// Removing a fault changes the random draws after it, so the shrunk run is
/// a different run that fails the same way: a shorter, simpler trace to
/// debug, not a prefix of the original.
pub fn shrink(seed: u64, opts: &SweepOptions, prepare: &Prepare) -> Option<Shrunk> {
    let run = |t: &Trial| {
        let sc = trial(seed, opts, prepare, t);
        (sc.clone(), Simulation::new(sc).run())
    };
    let (full, report) = run(&Trial::default());
    let first = report
        .invariant_violations
        .iter()
        .min_by(|a, b| a.time_s.total_cmp(&b.time_s))?;
    let rule = first.rule.clone();
    let mut kept: Vec<usize> = (0..full.faults.len()).collect();
    let mut aimed: Vec<usize> = (0..full.aimed.len()).collect();
    let mut best = (Trial::default(), full.clone(), report.clone());
    for k in (0..full.faults.len()).rev() {
        let t = Trial {
            faults: Some(kept.iter().copied().filter(|&f| f != k).collect()),
            ..best.0.clone()
        };
        let (sc, r) = run(&t);
        if fails(&r, &rule).is_some() {
            kept = t.faults.clone().unwrap_or_default();
            best = (t, sc, r);
        }
    }
    for k in (0..full.aimed.len()).rev() {
        let t = Trial {
            aimed: Some(aimed.iter().copied().filter(|&f| f != k).collect()),
            ..best.0.clone()
        };
        let (sc, r) = run(&t);
        if fails(&r, &rule).is_some() {
            aimed = t.aimed.clone().unwrap_or_default();
            best = (t, sc, r);
        }
    }
    let at = fails(&best.2, &rule).unwrap_or(first.time_s);
    // Cut just after the failure, if it still fails that early.
    let cut = Duration::from_secs_f64(at) + Duration::from_millis(1);
    if cut < best.1.duration {
        let t = Trial {
            cut: Some(cut),
            ..best.0.clone()
        };
        let (sc, r) = run(&t);
        if fails(&r, &rule).is_some() {
            best = (t, sc, r);
        }
    }
    Some(Shrunk {
        seed,
        replay: replay_command(seed, opts, &best.0),
        fails_at_s: fails(&best.2, &first.rule).unwrap_or(at),
        rule,
        faults_kept: kept,
        faults_total: full.faults.len(),
        aimed_kept: aimed,
        aimed_total: full.aimed.len(),
        trial: best.0,
        scenario: best.1,
        report: best.2,
    })
}

mod cli;
pub use cli::{main, Cli};
