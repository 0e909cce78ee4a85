//! What the examples share: their command line, and a sweep of the
//! simulator's chaotic seeds with an application installed, whose failures
//! are shrunk and replayed.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use swim_sim::sweep::{self, Prepare, SweepOptions};
use swim_sim::{Amount, Application, Fault, Preset, Scenario, Simulation};

/// The examples' options: `--seeds N`, `--first-seed S`, `--max-nodes N`,
/// `--replay S`, `--bug` to plant the example's bug, and `--cost N` to
/// measure what the application costs on N formed nodes (with `--no-app`
/// or `--idle-app`: without one, or with one that does nothing).
pub struct Options {
    pub sweep: SweepOptions,
    pub replay: Option<u64>,
    pub bug: bool,
    pub cost: Option<usize>,
    pub installed: Installed,
}

/// What `--cost` installs on every node.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// No application: the simulator alone.
    Nothing,
    /// An application that receives every event and does nothing: what
    /// the application layer itself costs.
    Idle,
    /// The example's application and its invariant.
    Example,
}

pub fn options() -> Result<Options, String> {
    let mut o = Options {
        sweep: SweepOptions {
            seeds: 20,
            max_nodes: 32,
            ..SweepOptions::default()
        },
        replay: None,
        bug: false,
        cost: None,
        installed: Installed::Example,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{flag} takes a number"))
        };
        match flag.as_str() {
            "--seeds" => o.sweep.seeds = value()?,
            "--first-seed" => o.sweep.first_seed = value()?,
            "--max-nodes" => o.sweep.max_nodes = value()? as usize,
            "--replay" => o.replay = Some(value()?),
            "--bug" => o.bug = true,
            "--cost" => o.cost = Some(value()? as usize),
            "--no-app" => o.installed = Installed::Nothing,
            "--idle-app" => o.installed = Installed::Idle,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// Counts the times an invariant actually ran, so a sweep cannot pass by
/// never checking.
#[derive(Clone, Default)]
pub struct Checked(Arc<AtomicUsize>);

impl Checked {
    pub fn tick(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs the sweep (or replays one seed) with `prepare`; on a failure,
/// shrinks the first failing seed. Exit status 0 when every invariant held
/// and `checked` ran at least once.
pub fn run(o: &Options, prepare: &Prepare, checked: &Checked) -> ExitCode {
    if let Some(nodes) = o.cost {
        return cost(nodes, o.installed, prepare);
    }
    if let Some(seed) = o.replay {
        let scenario = sweep::prepared(seed, &o.sweep, prepare);
        println!("seed {seed}: {}", swim_sim::describe(&scenario));
        let report = swim_sim::Simulation::new(scenario).run();
        println!("trace {}", report.trace_hash);
        for v in &report.invariant_violations {
            println!("  {v}");
        }
        return if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let summary = sweep::run_with(&o.sweep, prepare, |_| {});
    println!("{}", summary.line());
    println!("the application's invariant ran {} times", checked.count());
    for failed in summary.failed.iter().take(5) {
        println!("seed {} failed: {}", failed.seed, failed.scenario);
        for v in failed.violations.iter().take(3) {
            println!("    {v}");
        }
    }
    if let Some(first) = summary.failed.first() {
        if let Some(shrunk) = sweep::shrink(first.seed, &o.sweep, prepare) {
            println!("shrunk: {}", shrunk.line());
            println!("replay: add `--replay {}` to this command", first.seed);
        }
        return ExitCode::FAILURE;
    }
    if checked.count() == 0 {
        println!("the invariant never ran: nothing was checked");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// One run of `nodes` formed LAN nodes, 1 % crashing at 60 s, for 300 s —
/// the simulator's own speed benchmark — with the application installed
/// (`prepare`), an idle one, or none: its speed and the process's peak
/// memory.
fn cost(nodes: usize, installed: Installed, prepare: &Prepare) -> ExitCode {
    struct Idle;
    impl Application for Idle {}
    let s = std::time::Duration::from_secs;
    let mut sc = Scenario::new(nodes, 1, Preset::Lan)
        .formed()
        .fault(Fault::Crash {
            amount: Amount::Fraction(0.01),
            at: s(60),
        })
        .duration(s(300));
    match installed {
        Installed::Nothing => {}
        Installed::Idle => sc = sc.app(|_| Idle),
        // The same 300 s whatever the application would need to settle.
        Installed::Example => sc = prepare(sc).duration(s(300)),
    }
    let report = Simulation::new(sc).run();
    println!(
        "{} nodes, application {}: {:.1}x real time ({:.1} s wall), peak RSS {:.0} MB, trace {}, {} violations",
        nodes,
        match installed {
            Installed::Nothing => "none",
            Installed::Idle => "idle",
            Installed::Example => "the example's",
        },
        report.speedup,
        report.wall_seconds,
        swim_sim::peak_rss().unwrap_or(0) as f64 / 1e6,
        report.trace_hash,
        report.invariant_violations.len(),
    );
    ExitCode::SUCCESS
}
