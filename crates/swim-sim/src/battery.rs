//! The false-death battery (issue 32): every fault kind that has declared,
//! or might declare, a healthy node dead, over many seeds, with our
//! guards on, each off, and Go memberlist's behaviour beside them, and the
//! detection times of real crashes in the same runs.
//!
//! A healthy false death is a live node declared dead by a first node while
//! no stall of its own and no partition between the two explains it (the
//! tracker's blame: `Report::false_positives`). Nodes declared dead across
//! a partition, or while they stalled, are counted apart: the detector is
//! right about them.
//!
//! `swim-sim battery --short` is CI's form (a few minutes on two cores);
//! `--long` adds seeds and the 1,000-node heals. Exit status 1 when our
//! default configuration declared any healthy node dead.

use std::fmt::Write as _;
use std::time::Duration;

use rayon::prelude::*;

use crate::{Amount, Fault, NetworkModel, Preset, Report, Scenario, Simulation};

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

/// Which behaviour a run models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Our defaults: catch-up, last probes and direct refutations on.
    Ours,
    /// Ours without the last probe before a death.
    NoLastProbe,
    /// Ours without direct refutations.
    NoDirectRefutation,
    /// Ours taking death notices from accusers held dead as deaths.
    NoDoubt,
    /// Ours taking a push/pull state's suspicions as our own, gossiped.
    NoHearsay,
    /// Ours with no guard (catch-up as before issue 32).
    NoGuards,
    /// Go memberlist's behaviour: catch-up off (`swim_core::CatchUp::off`).
    Go,
}

impl Mode {
    /// Every mode, ours first.
    pub const ALL: [Mode; 7] = [
        Mode::Ours,
        Mode::NoLastProbe,
        Mode::NoDirectRefutation,
        Mode::NoDoubt,
        Mode::NoHearsay,
        Mode::NoGuards,
        Mode::Go,
    ];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ours => "ours",
            Mode::NoLastProbe => "no last probe",
            Mode::NoDirectRefutation => "no direct refutation",
            Mode::NoDoubt => "no doubt",
            Mode::NoHearsay => "no hearsay",
            Mode::NoGuards => "no guard",
            Mode::Go => "Go model",
        }
    }

    /// The `swim-sim run` flags that select it.
    pub fn flags(self) -> &'static str {
        match self {
            Mode::Ours => "",
            Mode::NoLastProbe => " --no-last-probe",
            Mode::NoDirectRefutation => " --no-direct-refutation",
            Mode::NoDoubt => " --no-doubt",
            Mode::NoHearsay => " --no-hearsay",
            Mode::NoGuards => " --no-last-probe --no-direct-refutation --no-doubt --no-hearsay",
            Mode::Go => " --no-catch-up",
        }
    }

    fn apply(self, sc: Scenario) -> Scenario {
        match self {
            Mode::Ours => sc,
            Mode::NoLastProbe => sc.last_probes(false),
            Mode::NoDirectRefutation => sc.direct_refutations(false),
            Mode::NoDoubt => sc.doubt_dead_accusers(false),
            Mode::NoHearsay => sc.hearsay(false),
            Mode::NoGuards => sc
                .last_probes(false)
                .direct_refutations(false)
                .doubt_dead_accusers(false)
                .hearsay(false),
            Mode::Go => sc.catch_up(false),
        }
    }
}

/// One fault kind of the battery.
#[derive(Clone)]
pub struct Kind {
    /// Short name.
    pub name: &'static str,
    /// The `swim-sim run` options that build it, without `--seed`.
    pub command: &'static str,
    /// Seeds in the short form.
    pub short_seeds: u64,
    /// Seeds in the long form.
    pub long_seeds: u64,
    /// In the long form only.
    pub long_only: bool,
    build: fn() -> Scenario,
}

impl Kind {
    /// Its scenario for `seed`.
    pub fn scenario(&self, seed: u64) -> Scenario {
        let mut sc = (self.build)();
        sc.seed = seed;
        sc
    }
}

fn lossy(loss: f64) -> NetworkModel {
    NetworkModel {
        loss,
        stream_loss: loss,
        ..NetworkModel::default()
    }
}

fn partition(nodes: usize, fraction: f64, one_way: bool, links: f64, heal: u64) -> Scenario {
    Scenario::new(nodes, 1, Preset::Lan)
        .duration(s(70 + heal + 60))
        .fault(Fault::Crash {
            amount: Amount::Fraction(0.01),
            at: s(60),
        })
        .fault(Fault::Partition {
            amount: Amount::Fraction(fraction),
            at: s(70),
            duration: s(heal),
            one_way,
            links,
        })
}

/// The battery's fault kinds.
pub fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "crashes only, 100 nodes",
            command: "--nodes 100 --formed --crash 5%@60s --duration 120s",
            short_seeds: 20,
            long_seeds: 200,
            long_only: false,
            build: || {
                Scenario::new(100, 1, Preset::Lan)
                    .formed()
                    .duration(s(120))
                    .fault(Fault::Crash {
                        amount: Amount::Fraction(0.05),
                        at: s(60),
                    })
            },
        },
        Kind {
            name: "crashes only, 1,000 nodes",
            command: "--nodes 1000 --formed --crash 1%@60s --duration 120s",
            short_seeds: 2,
            long_seeds: 20,
            long_only: false,
            build: || {
                Scenario::new(1000, 1, Preset::Lan)
                    .formed()
                    .duration(s(120))
                    .fault(Fault::Crash {
                        amount: Amount::Fraction(0.01),
                        at: s(60),
                    })
            },
        },
        Kind {
            name: "loss 20 %, 30 nodes",
            command: "--nodes 30 --formed --loss 20% --stream-loss 20% --crash 1@100s --duration 200s",
            short_seeds: 200,
            long_seeds: 1000,
            long_only: false,
            build: || {
                Scenario::new(30, 1, Preset::Lan)
                    .formed()
                    .network(lossy(0.2))
                    .duration(s(200))
                    .fault(Fault::Crash {
                        amount: Amount::Count(1),
                        at: s(100),
                    })
            },
        },
        Kind {
            name: "loss 30 %, 30 nodes",
            command: "--nodes 30 --formed --loss 30% --stream-loss 30% --crash 1@100s --duration 200s",
            short_seeds: 100,
            long_seeds: 500,
            long_only: false,
            build: || {
                Scenario::new(30, 1, Preset::Lan)
                    .formed()
                    .network(lossy(0.3))
                    .duration(s(200))
                    .fault(Fault::Crash {
                        amount: Amount::Count(1),
                        at: s(100),
                    })
            },
        },
        Kind {
            name: "loss 20 %, 300 nodes",
            command: "--nodes 300 --formed --loss 20% --stream-loss 20% --crash 1%@60s --duration 120s",
            short_seeds: 4,
            long_seeds: 40,
            long_only: false,
            build: || {
                Scenario::new(300, 1, Preset::Lan)
                    .formed()
                    .network(lossy(0.2))
                    .duration(s(120))
                    .fault(Fault::Crash {
                        amount: Amount::Fraction(0.01),
                        at: s(60),
                    })
            },
        },
        Kind {
            name: "partition 50 %, 200 nodes, 20 s",
            command: "--nodes 200 --crash 1%@60s --partition 50%@70s+20s --duration 150s",
            short_seeds: 6,
            long_seeds: 60,
            long_only: false,
            build: || partition(200, 0.5, false, 1.0, 20),
        },
        Kind {
            name: "partition 10 %, 200 nodes, 30 s",
            command: "--nodes 200 --crash 1%@60s --partition 10%@70s+30s --duration 160s",
            short_seeds: 6,
            long_seeds: 60,
            long_only: false,
            build: || partition(200, 0.1, false, 1.0, 30),
        },
        Kind {
            name: "one-way partition 50 %, 200 nodes",
            command: "--nodes 200 --crash 1%@60s --partition 50%@70s+20s,oneway --duration 150s",
            short_seeds: 6,
            long_seeds: 60,
            long_only: false,
            build: || partition(200, 0.5, true, 1.0, 20),
        },
        Kind {
            name: "partial partition 50 %, half the links, 200 nodes",
            command: "--nodes 200 --crash 1%@60s --partition 50%@70s+20s,links=0.5 --duration 150s",
            short_seeds: 6,
            long_seeds: 60,
            long_only: false,
            build: || partition(200, 0.5, false, 0.5, 20),
        },
        Kind {
            name: "asymmetric: 2 % heard by none, hearing all",
            command: "--nodes 100 --formed --crash 1@60s --partition 2%@70s+30s,oneway --duration 160s",
            short_seeds: 20,
            long_seeds: 100,
            long_only: false,
            build: || {
                Scenario::new(100, 1, Preset::Lan)
                    .formed()
                    .duration(s(160))
                    .fault(Fault::Crash {
                        amount: Amount::Count(1),
                        at: s(60),
                    })
                    .fault(Fault::Partition {
                        amount: Amount::Fraction(0.02),
                        at: s(70),
                        duration: s(30),
                        one_way: true,
                        links: 1.0,
                    })
            },
        },
        Kind {
            name: "stalls: 10 % of nodes, 3 s every 12 s",
            command: "--nodes 100 --formed --crash 1@50s --stall 10%@10s+3s,every=12s --duration 120s",
            short_seeds: 20,
            long_seeds: 100,
            long_only: false,
            build: || {
                Scenario::new(100, 1, Preset::Lan)
                    .formed()
                    .duration(s(120))
                    .fault(Fault::Crash {
                        amount: Amount::Count(1),
                        at: s(50),
                    })
                    .fault(Fault::Stall {
                        amount: Amount::Fraction(0.1),
                        at: s(10),
                        duration: s(3),
                        every: Some(s(12)),
                    })
            },
        },
        Kind {
            name: "slow: 10 % of nodes 1.5 s late",
            command: "--nodes 100 --formed --crash 1@50s --slow 10%@10s+100s,delay=1500ms --duration 140s",
            short_seeds: 20,
            long_seeds: 100,
            long_only: false,
            build: || {
                Scenario::new(100, 1, Preset::Lan)
                    .formed()
                    .duration(s(140))
                    .fault(Fault::Crash {
                        amount: Amount::Count(1),
                        at: s(50),
                    })
                    .fault(Fault::Slow {
                        amount: Amount::Fraction(0.1),
                        at: s(10),
                        duration: s(100),
                        delay: Duration::from_millis(1500),
                    })
            },
        },
        Kind {
            name: "join storm with a loss burst",
            command: "--nodes 100 --bootstrap --loss-burst 25%@2s+15s --crash 1@40s --duration 120s",
            short_seeds: 20,
            long_seeds: 100,
            long_only: false,
            build: || {
                Scenario::new(100, 1, Preset::Lan)
                    .bootstrap(3, s(10))
                    .duration(s(120))
                    .fault(Fault::Loss {
                        rate: 0.25,
                        at: s(2),
                        duration: s(15),
                    })
                    .fault(Fault::Crash {
                        amount: Amount::Count(1),
                        at: s(40),
                    })
            },
        },
        Kind {
            name: "partition 50 %, 1,000 nodes, 20 s",
            command: "--nodes 1000 --crash 1%@60s --partition 50%@70s+20s --duration 300s",
            short_seeds: 0,
            long_seeds: 10,
            long_only: true,
            build: || partition(1000, 0.5, false, 1.0, 20).duration(s(300)),
        },
    ]
}

/// What one kind gave in one mode over its seeds.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The kind's name.
    pub kind: String,
    /// The mode's name.
    pub mode: String,
    /// Seeds run.
    pub seeds: u64,
    /// Healthy nodes declared dead, over all seeds.
    pub false_deaths: u64,
    /// Seeds with at least one.
    pub seeds_with: Vec<(u64, u64)>,
    /// Nodes declared dead while stalled or across a partition.
    pub explained_deaths: u64,
    /// First declaration of each real crash, seconds after it.
    pub first_dead: Vec<f64>,
    /// Last declaration (every live node), seconds after the crash.
    pub all_dead: Vec<f64>,
    /// Real crashes never declared dead by every live node.
    pub undetected: u64,
    /// Invariant violations (other than false deaths, which are counted).
    pub violations: u64,
    /// Wall time of the kind's runs.
    pub wall_seconds: f64,
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

impl Row {
    fn add(&mut self, seed: u64, r: &Report) {
        self.seeds += 1;
        self.false_deaths += r.false_positives;
        if r.false_positives > 0 {
            self.seeds_with.push((seed, r.false_positives));
        }
        self.explained_deaths += r.false_positives_stalled + r.false_positives_partitioned;
        for d in r.detections.iter().filter(|d| !d.restarted) {
            if let Some(t) = d.first_dead_s {
                self.first_dead.push(t);
            }
            match d.all_dead_s {
                Some(t) => self.all_dead.push(t),
                None => self.undetected += 1,
            }
        }
        self.violations += r.invariant_violations_total;
    }

    /// One line of the table (Markdown).
    pub fn line(&self) -> String {
        let t = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{x:.1}"));
        let mut worst = self.seeds_with.clone();
        worst.sort_by_key(|w| std::cmp::Reverse(w.1));
        let worst: Vec<String> = worst
            .iter()
            .take(4)
            .map(|(s, n)| format!("{s}:{n}"))
            .collect();
        format!(
            "| {} | {} | {} | **{}** | {} | {} | {} | {} / {} | {} / {} | {} | {:.0} |",
            self.kind,
            self.mode,
            self.seeds,
            self.false_deaths,
            self.seeds_with.len(),
            if worst.is_empty() {
                "–".to_string()
            } else {
                worst.join(" ")
            },
            self.explained_deaths,
            t(median(&self.first_dead)),
            t(max(&self.first_dead)),
            t(median(&self.all_dead)),
            t(max(&self.all_dead)),
            self.undetected,
            self.wall_seconds,
        )
    }
}

/// The table's header (Markdown).
pub const HEADER: &str = "| fault kind | mode | seeds | healthy declared dead | seeds with any | worst seeds (seed:count) | dead while stalled or cut off | first declaration, s (median / max) | all declared, s (median / max) | crashes not declared by all | wall s |\n|---|---|---|---|---|---|---|---|---|---|---|";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The long form: more seeds, and the 1,000-node kinds.
    pub long: bool,
    /// Modes to run (ours first).
    pub modes: Vec<Mode>,
    /// Only kinds whose name contains one of these (all if empty).
    pub only: Vec<String>,
    /// The first seed.
    pub first_seed: u64,
    /// Overrides each kind's seed count.
    pub seeds: Option<u64>,
}

/// Runs the battery, calling `each` with every row as it completes.
pub fn run(opts: &Options, mut each: impl FnMut(&Row)) -> Vec<Row> {
    let mut rows = Vec::new();
    for kind in kinds() {
        if kind.long_only && !opts.long {
            continue;
        }
        if !opts.only.is_empty() && !opts.only.iter().any(|o| kind.name.contains(o.as_str())) {
            continue;
        }
        let n = opts.seeds.unwrap_or(if opts.long {
            kind.long_seeds
        } else {
            kind.short_seeds
        });
        let seeds: Vec<u64> = (opts.first_seed..opts.first_seed + n).collect();
        for &mode in &opts.modes {
            let started = std::time::Instant::now();
            let mut row = Row {
                kind: kind.name.to_string(),
                mode: mode.name().to_string(),
                ..Row::default()
            };
            let per_round = 4 * rayon::current_num_threads();
            for round in seeds.chunks(per_round) {
                let reports: Vec<(u64, Report)> = round
                    .par_iter()
                    .map(|&seed| {
                        let sc = mode.apply(kind.scenario(seed));
                        (seed, Simulation::new(sc).run())
                    })
                    .collect();
                for (seed, r) in &reports {
                    row.add(*seed, r);
                }
            }
            row.wall_seconds = started.elapsed().as_secs_f64();
            each(&row);
            rows.push(row);
        }
    }
    rows
}

/// The commands that rerun each seed with a false death of ours.
pub fn replays(rows: &[Row]) -> String {
    let mut out = String::new();
    let kinds = kinds();
    for row in rows.iter().filter(|r| r.mode == Mode::Ours.name()) {
        let Some(kind) = kinds.iter().find(|k| k.name == row.kind) else {
            continue;
        };
        for (seed, n) in &row.seeds_with {
            let _ = writeln!(
                out,
                "{n} healthy declared dead: swim-sim run {} --seed {seed}",
                kind.command
            );
        }
    }
    out
}
