//! The command line of a user's own sweep program: the user's example
//! calls [`main`] (or [`Cli::parse`] and [`Cli::run`]) with its
//! [`Prepare`], and a failing seed prints the command that reruns *that
//! program* on the seed and its shrunk faults:
//!
//! ```text
//! target/release/examples/lease --bug --replay 13 --min-nodes 5 --max-nodes 32 --faults 0,2 --cut 8001000000ns
//! ```

use std::process::ExitCode;
use std::time::Duration;

use super::{replay_command, shrink, trial, Prepare, SweepOptions, Trial};
use crate::Simulation;

/// A sweep program's command line: the sweep's flags, a replay's, and the
/// program's own (left in [`rest`](Self::rest), in order, for it to read;
/// they are repeated in every replay command).
#[derive(Debug, Clone)]
pub struct Cli {
    /// The program, as it was called.
    pub program: String,
    /// The sweep (its `command` is the program and its own flags).
    pub sweep: SweepOptions,
    /// `--replay S`: run only seed `S`.
    pub replay: Option<u64>,
    /// `--faults 0,2` (or `none`), `--aimed 0` and `--cut T`: which run of
    /// the seed.
    pub trial: Trial,
    /// `--shrink`: also shrink a replayed seed that fails.
    pub shrink: bool,
    /// `--timeline FILE`: write the first failure's timeline (SVG) there.
    pub timeline: Option<String>,
    /// The flags this parser does not know: the program's own.
    pub rest: Vec<String>,
}

impl Cli {
    /// The flags it reads, for a usage line.
    pub const USAGE: &'static str = "[--seeds N] [--first-seed S] [--min-nodes N] [--max-nodes N] [--max-faults N] [--fault-weights c,r,l,s,p,o,m] [--twice] [--replay S [--faults I,J|none] [--aimed I,J|none] [--cut T] [--shrink]] [--timeline FILE]";

    /// The process's own command line, over `defaults`.
    pub fn from_env(defaults: SweepOptions) -> Result<Cli, String> {
        Cli::parse(std::env::args(), defaults)
    }

    /// Parses `args` (the program first) over `defaults`.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        defaults: SweepOptions,
    ) -> Result<Cli, String> {
        let mut args = args.into_iter();
        let program = args.next().unwrap_or_default();
        let mut cli = Cli {
            program,
            sweep: defaults,
            replay: None,
            trial: Trial::default(),
            shrink: false,
            timeline: None,
            rest: Vec::new(),
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} takes a value"));
            match flag.as_str() {
                "--twice" => cli.sweep.twice = true,
                "--shrink" => cli.shrink = true,
                "--replay" => {
                    let v = value()?;
                    cli.replay = Some(v.parse().map_err(|_| format!("--replay {v}?"))?);
                }
                "--faults" => cli.trial.faults = Some(indices(&flag, &value()?)?),
                "--aimed" => cli.trial.aimed = Some(indices(&flag, &value()?)?),
                "--cut" => {
                    let v = value()?;
                    cli.trial.cut = Some(parse_duration(&v).ok_or(format!("--cut {v}?"))?);
                }
                "--timeline" => cli.timeline = Some(value()?),
                f if SweepOptions::FLAGS.contains(&f) => {
                    let v = value()?;
                    cli.sweep.set(f, &v)?;
                }
                _ => cli.rest.push(flag),
            }
        }
        if cli.sweep.min_nodes < 1 || cli.sweep.max_nodes < cli.sweep.min_nodes {
            return Err("need 1 <= --min-nodes <= --max-nodes".into());
        }
        let mut command = cli.program.clone();
        for a in &cli.rest {
            command.push(' ');
            command += a;
        }
        cli.sweep.command = Some(command);
        Ok(cli)
    }

    /// Whether the program's own `flag` was given.
    pub fn has(&self, flag: &str) -> bool {
        self.rest.iter().any(|a| a == flag)
    }

    /// Sweeps (or replays one seed) with `prepare`, prints what failed, the
    /// shrunk first failure, its context and the command that reruns it.
    /// `true` when every rule held.
    pub fn run(&self, prepare: &Prepare) -> bool {
        let opts = &self.sweep;
        if let Some(seed) = self.replay {
            let sc = trial(seed, opts, prepare, &self.trial);
            println!("seed {seed}: {}", crate::describe(&sc));
            let report = Simulation::new(sc).run();
            println!("trace {}", report.trace_hash);
            report.print_failure(&mut std::io::stdout());
            self.write_timeline(&report);
            if !report.ok() && self.shrink {
                if let Some(shrunk) = shrink(seed, opts, prepare) {
                    println!("shrunk: {}", shrunk.line());
                    println!("replay: {}", shrunk.replay);
                }
            }
            return report.ok();
        }
        let summary = super::run_with(opts, prepare, |_| {});
        println!("{}", summary.line());
        for failed in summary.failed.iter().take(5) {
            println!("seed {} failed: {}", failed.seed, failed.scenario);
            for v in failed.violations.iter().take(3) {
                println!("    {v}");
            }
            println!("    replay: {}", failed.replay);
        }
        let Some(first) = summary.failed.first() else {
            return true;
        };
        if let Some(shrunk) = shrink(first.seed, opts, prepare) {
            println!("shrunk: {}", shrunk.line());
            shrunk.report.print_failure(&mut std::io::stdout());
            self.write_timeline(&shrunk.report);
            println!("replay: {}", shrunk.replay);
        } else {
            println!(
                "replay: {}",
                replay_command(first.seed, opts, &Trial::default())
            );
        }
        false
    }

    fn write_timeline(&self, report: &crate::Report) {
        let Some(path) = &self.timeline else { return };
        let Some(svg) = report.timeline_svg() else {
            return;
        };
        match std::fs::write(path, svg) {
            Ok(()) => println!("timeline: {path}"),
            Err(e) => eprintln!("cannot write {path}: {e}"),
        }
    }
}

/// `0,2`, or `none`.
fn indices(flag: &str, v: &str) -> Result<Vec<usize>, String> {
    if v == "none" {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|k| k.parse().map_err(|_| format!("{flag} {v}?")))
        .collect()
}

/// `8001000000ns`, `8.001s`, `250ms` or plain seconds.
fn parse_duration(v: &str) -> Option<Duration> {
    if let Some(n) = v.strip_suffix("ns") {
        return n.parse().ok().map(Duration::from_nanos);
    }
    if let Some(m) = v.strip_suffix("ms") {
        return m
            .parse::<f64>()
            .ok()
            .map(|m| Duration::from_secs_f64(m / 1e3));
    }
    let s = v.strip_suffix('s').unwrap_or(v);
    s.parse::<f64>().ok().map(Duration::from_secs_f64)
}

/// A sweep program's whole `main`: parses the process's command line over
/// `defaults`, runs [`Cli::run`], exits 0 when every rule held (2 on a bad
/// command line). The program's own flags are in [`Cli::rest`]: use
/// [`Cli::from_env`] and [`Cli::run`] to read them first.
pub fn main(defaults: SweepOptions, prepare: &Prepare) -> ExitCode {
    match Cli::from_env(defaults) {
        Ok(cli) => {
            if cli.run(prepare) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e}\nusage: {}", Cli::USAGE);
            ExitCode::from(2)
        }
    }
}
