//! What the examples share: their command line (the sweep's own, from
//! [`swim_sim::sweep::Cli`], plus theirs), and a sweep of the simulator's
//! chaotic seeds with an application installed, whose failures are shrunk
//! and handed over with a command that reruns the example on them.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use swim_sim::sweep::{Cli, FaultMix, Prepare, SweepOptions};
use swim_sim::{Amount, Application, Fault, Preset, Scenario, Simulation};

/// The examples' options: the sweep's and a replay's ([`Cli`]), and
/// their own: `--bug` to plant the example's bug, and `--cost N` to measure
/// what the application costs on N formed nodes (with `--no-app` or
/// `--idle-app`: without one, or with one that does nothing).
pub struct Options {
    pub cli: Cli,
    pub bug: bool,
    /// The example's own switches that were given (see [`options_with`]).
    pub switches: Vec<String>,
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

#[allow(dead_code)] // not every example has switches of its own
pub fn options() -> Result<Options, String> {
    options_with(&[], SweepOptions::default().mix)
}

/// [`options`], with the example's own `switches` (flags without a value)
/// and its default fault mix.
pub fn options_with(switches: &[&str], mix: FaultMix) -> Result<Options, String> {
    let cli = Cli::from_env(SweepOptions {
        seeds: 20,
        max_nodes: 32,
        mix,
        ..SweepOptions::default()
    })?;
    let mut o = Options {
        bug: false,
        switches: Vec::new(),
        cost: None,
        installed: Installed::Example,
        cli,
    };
    let mut rest = o.cli.rest.clone().into_iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--bug" => o.bug = true,
            "--cost" => {
                let n = rest.next().and_then(|v| v.parse().ok());
                o.cost = Some(n.ok_or("--cost takes a number")?);
            }
            "--no-app" => o.installed = Installed::Nothing,
            "--idle-app" => o.installed = Installed::Idle,
            s if switches.contains(&s) => o.switches.push(s.to_string()),
            other => return Err(format!("unknown option {other} (usage: {})", Cli::USAGE)),
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

/// Runs the sweep (or replays one seed) with `prepare` ([`Cli::run`]: a
/// failure is shrunk and printed with its context and the command that
/// reruns this program on it). Exit status 0 when every invariant held
/// and, in a sweep, `checked` ran at least once.
pub fn run(o: &Options, prepare: &Prepare, checked: &Checked) -> ExitCode {
    if let Some(nodes) = o.cost {
        return cost(nodes, o.installed, prepare);
    }
    if !o.cli.run(prepare) {
        return ExitCode::FAILURE;
    }
    if o.cli.replay.is_none() {
        println!("the application's invariant ran {} times", checked.count());
        if checked.count() == 0 {
            println!("the invariant never ran: nothing was checked");
            return ExitCode::FAILURE;
        }
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
