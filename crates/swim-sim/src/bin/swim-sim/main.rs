//! The `swim-sim` command line: `run` one scenario, `sweep` many seeds.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod parse;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use swim_sim::{battery, plot, sweep, Preset, Report, Scenario, Simulation};

const USAGE: &str = "\
swim-sim: a deterministic simulator of swim-core (memberlist) clusters

USAGE:
    swim-sim run   [OPTIONS]     simulate one scenario and report
    swim-sim sweep [OPTIONS]     many seeds of small chaotic clusters
    swim-sim battery [OPTIONS]   the false-death battery: healthy nodes
                                 declared dead per fault kind and seed,
                                 ours and Go's behaviour side by side
    swim-sim help                this text

A run is a pure function of (scenario, seed): the same command prints the
same trace hash. Exit status: 0 when every invariant held, 1 when one broke,
2 for a usage error.

RUN OPTIONS:
  Cluster
    --nodes N              cluster size (default 100)
    --seed S               the one seed every random choice comes from (default 1)
    --duration D           simulated time, e.g. 300s, 5m (default 300s)
    --preset lan|wan|local memberlist preset (default lan)
    --no-lifeguard         Lifeguard off: awareness_max_multiplier = 1 and
                           suspicion_max_timeout_mult = 1 (no local health,
                           suspicion timeouts that confirmations cannot shorten)
    --no-catch-up          catch-up off (Go's behaviour): no push/pull when news
                           of members settles, when an unknown node makes
                           contact, or with members declared dead, and no
                           corrections of outdated accusations, no direct
                           refutations, no last probe before a death
    --no-last-probe        no last probe of a suspect before its death
    --no-direct-refutation refute accusations by gossip alone, not also
                           straight to the accuser and sender
    --no-doubt             take a death notice from an accuser held dead as a
                           death, not a suspicion
    --no-hearsay           take a push/pull state's suspicions as this node's
                           own, gossiped, not the peer's told to the member
    --refute-returning     an alive message (above one raise) to a member
                           returning from the dead (off by default for now)
    --no-compression       LZW compression off (Go's default is on)
  Start
    --bootstrap            form the cluster by joining: seeds start at 0 s, every
                           other node starts at a random time in the join window
                           and joins (push/pull) through one random seed,
                           retrying every second if that fails. Without it every
                           node starts at 0 s already holding the full member
                           list (alive messages for every node, as datagrams)
    --formed               start as a cluster formed long ago: like the default
                           start, then every node forgets the broadcasts that
                           taught it the member list, so there is no join storm
    --seeds K              seed nodes for --bootstrap (default 3)
    --join-window D        joins spread over D (default 10s)
  Faults (repeatable; AMOUNT is a percentage of the cluster, 1%, or a count, 3;
  nodes are chosen at random among the live ones at that time)
    --crash AMOUNT@T             crash nodes at T, e.g. 1%@60s
    --restart AMOUNT@T+D         crash nodes at T, restart them D later with the
                                 same name and fresh state; they rejoin via a seed
    --leave AMOUNT@T[,timeout=D] graceful leave (timeout default 5s), then shut down
    --stall AMOUNT@T+D[,every=P] nodes process nothing for D, then everything at
                                 once, late (timers first, then queued input);
                                 with every=P each node stalls every P from a
                                 random first time in [T, T+P)
    --slow AMOUNT@T+D[,delay=L]  nodes process every input L late (default 600ms)
                                 while their timers fire on time: a CPU-starved
                                 process, whose probes time out before it reads
                                 the acks (the Lifeguard paper's case)
    --partition AMOUNT@T+D[,oneway][,links=F]
                                 AMOUNT nodes (side A) are cut off from the rest
                                 for D; oneway: only A->B traffic is lost;
                                 links=F: only a fraction F of A-B links is cut
                                 (a partial partition)
    --loss-burst P@T+D           extra datagram loss P from T for D
    --update-meta AMOUNT@T       nodes change their metadata (new incarnation)
  Network
    --loss P               datagram loss probability, e.g. 5% (default 0)
    --dup P                datagram duplication probability (default 0)
    --stream-loss P        probability a stream (TCP) connection or reply is
                           lost and its initiator times out (default 0)
    --reorder P            probability a datagram is held back (default 0)
    --reorder-delay D      the most it is held back (default 20ms)
    --latency SPEC         per-link one-way latency: 2ms (fixed), 1ms..5ms
                           (uniform), lognormal:2ms,0.5 (median, sigma)
                           (default 200us..1ms)
    --jitter D             extra uniform per-datagram delay (default 100us)
    --bandwidth BYTES      stream throughput in bytes/s (default 125000000)
  Measurements and output
    --disseminate T        at T a random node updates its metadata; the report
                           follows that update to every node
    --sample D             time-series sampling interval (default 1s)
    --report FILE          write the JSON report to FILE (- for stdout)
    --plots DIR            write SVG plots to DIR
    --no-invariants        skip the invariant checks (to measure their cost)
    --stop-on-violation    stop at the first broken rule
    --progress D           print wall time and speed every D of simulated time
    --threads N            threads that handle the nodes (default: this machine's
                           cores); the run is the same for any number
    --quiet                no summary on stderr

SWEEP OPTIONS:
    --seeds N              how many seeds (default 200)
    --first-seed S         the first seed (default 1)
    --min-nodes N          smallest cluster (default 5)
    --max-nodes N          largest cluster (default 64)
    --max-faults N         most faults a seed draws (default 5)
    --fault-weights W      the fault mix: weights of crash,restart,leave,stall,
                           partition,loss,update-meta (default 1,1,1,2,1,1,1)
    --twice                run every failing seed twice; differing traces fail
    --replay S             run only seed S and print its scenario and summary
    --report FILE          write a JSON summary of the sweep (or, with
                           --replay, the run's report)
    --plots DIR            with --replay: write its plots
    --quiet                only the final line and the failures

BATTERY OPTIONS:
    --short                CI's form (the default): a few minutes on 2 cores
    --long                 more seeds per kind, and 1,000-node heals
    --modes M              comma-separated: ours, no-last-probe,
                           no-direct-refutation, no-doubt, no-hearsay,
                           no-guards, go
                           (default: all;
                           CI: ours,go)
    --only NAME            only kinds whose name contains NAME (repeatable)
    --seeds N              seeds per kind instead of the form's
    --first-seed S         the first seed (default 1)
  Prints one Markdown table row per kind and mode, then the command that
  reruns every seed where our default behaviour declared a healthy node
  dead. Exit status 1 if it did.

Every sweep seed draws its own scenario: 5-64 nodes on the local preset,
random crashes, restarts, leaves, stalls, partitions (full, one-way, partial),
loss, duplication, reordering and metadata updates, all healing in time for
the convergence bound. A failing seed is printed with the command that
replays it.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
        Some("sweep") => cmd_sweep(&args[1..]),
        Some("battery") => cmd_battery(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}` (try `swim-sim help`)")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("swim-sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// Walks `--flag value` pairs.
struct Args<'a> {
    rest: std::slice::Iter<'a, String>,
}

impl<'a> Args<'a> {
    fn value(&mut self, flag: &str) -> Result<&'a str, String> {
        self.rest
            .next()
            .map(String::as_str)
            .ok_or_else(|| format!("{flag} needs a value"))
    }
}

fn parse<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: cannot read `{v}`"))
}

struct Output {
    report: Option<String>,
    plots: Option<PathBuf>,
    quiet: bool,
}

fn cmd_run(argv: &[String]) -> Result<bool, String> {
    let mut sc = Scenario::new(100, 1, Preset::Lan).duration(Duration::from_secs(300));
    let mut bootstrap = false;
    let mut formed = false;
    let mut seeds = 3usize;
    let mut window = Duration::from_secs(10);
    let mut progress = None;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = Output {
        report: None,
        plots: None,
        quiet: false,
    };
    let mut a = Args { rest: argv.iter() };
    while let Some(flag) = a.rest.next() {
        let flag = flag.as_str();
        match flag {
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(true);
            }
            "--nodes" => sc.nodes = parse(flag, a.value(flag)?)?,
            "--seed" => sc.seed = parse(flag, a.value(flag)?)?,
            "--duration" => sc.duration = parse::duration(a.value(flag)?)?,
            "--preset" => sc.preset = a.value(flag)?.parse()?,
            "--no-lifeguard" => sc.lifeguard = false,
            "--no-catch-up" => sc.catch_up = false,
            "--no-last-probe" => sc.last_probes = false,
            "--no-direct-refutation" => sc.direct_refutations = false,
            "--no-doubt" => sc.doubt_dead_accusers = false,
            "--no-hearsay" => sc.hearsay = false,
            "--refute-returning" => sc.refute_returning = true,
            "--no-compression" => sc.compression = false,
            "--bootstrap" => bootstrap = true,
            "--formed" => formed = true,
            "--seeds" => seeds = parse(flag, a.value(flag)?)?,
            "--join-window" => window = parse::duration(a.value(flag)?)?,
            "--crash" => sc.faults.push(parse::crash(a.value(flag)?)?),
            "--restart" => sc.faults.push(parse::restart(a.value(flag)?)?),
            "--leave" => sc.faults.push(parse::leave(a.value(flag)?)?),
            "--stall" => sc.faults.push(parse::stall(a.value(flag)?)?),
            "--partition" => sc.faults.push(parse::partition(a.value(flag)?)?),
            "--slow" => sc.faults.push(parse::slow(a.value(flag)?)?),
            "--loss-burst" => sc.faults.push(parse::loss_burst(a.value(flag)?)?),
            "--update-meta" => sc.faults.push(parse::update_meta(a.value(flag)?)?),
            "--loss" => sc.network.loss = parse::fraction(a.value(flag)?)?,
            "--dup" => sc.network.duplicate = parse::fraction(a.value(flag)?)?,
            "--stream-loss" => sc.network.stream_loss = parse::fraction(a.value(flag)?)?,
            "--reorder" => sc.network.reorder = parse::fraction(a.value(flag)?)?,
            "--reorder-delay" => sc.network.reorder_delay = parse::duration(a.value(flag)?)?,
            "--latency" => sc.network.latency = parse::latency(a.value(flag)?)?,
            "--jitter" => sc.network.jitter = parse::duration(a.value(flag)?)?,
            "--bandwidth" => sc.network.stream_bandwidth = parse(flag, a.value(flag)?)?,
            "--disseminate" => sc.disseminate_at = Some(parse::duration(a.value(flag)?)?),
            "--sample" => sc.sample_interval = parse::duration(a.value(flag)?)?,
            "--no-invariants" => sc.check_invariants = false,
            "--stop-on-violation" => sc.stop_on_violation = true,
            "--report" => out.report = Some(a.value(flag)?.to_string()),
            "--plots" => out.plots = Some(PathBuf::from(a.value(flag)?)),
            "--quiet" => out.quiet = true,
            "--progress" => progress = Some(parse::duration(a.value(flag)?)?),
            "--threads" => {
                threads = a
                    .value(flag)?
                    .parse()
                    .map_err(|_| "--threads takes a number".to_string())?
            }
            other => return Err(format!("unknown option `{other}` (try `swim-sim help`)")),
        }
    }
    if sc.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    if sc.sample_interval.is_zero() {
        return Err("--sample must be positive".into());
    }
    match (bootstrap, formed) {
        (true, true) => return Err("--bootstrap and --formed are two different starts".into()),
        (true, false) => sc = sc.bootstrap(seeds.max(1), window),
        (false, true) => sc = sc.formed(),
        (false, false) => {}
    }
    let mut sim = Simulation::new(sc).with_threads(threads);
    if let Some(p) = progress {
        sim = sim.with_progress(p);
    }
    let report = sim.run();
    emit(&report, &out)?;
    Ok(report.ok())
}

fn emit(report: &Report, out: &Output) -> Result<(), String> {
    if !out.quiet {
        eprint!("{}", report.summary());
    }
    match out.report.as_deref() {
        Some("-") => println!("{}", report.to_json()),
        Some(path) => std::fs::write(path, report.to_json())
            .map_err(|e| format!("cannot write {path}: {e}"))?,
        None => {}
    }
    if let Some(dir) = &out.plots {
        let written = plot::write_all(report, dir)
            .map_err(|e| format!("cannot write plots to {}: {e}", dir.display()))?;
        if !out.quiet {
            for p in written {
                eprintln!("plot: {}", p.display());
            }
        }
    }
    Ok(())
}

fn cmd_sweep(argv: &[String]) -> Result<bool, String> {
    let mut opts = sweep::SweepOptions::default();
    let mut replay = None;
    let mut out = Output {
        report: None,
        plots: None,
        quiet: false,
    };
    let mut a = Args { rest: argv.iter() };
    while let Some(flag) = a.rest.next() {
        let flag = flag.as_str();
        match flag {
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(true);
            }
            f if sweep::SweepOptions::FLAGS.contains(&f) => {
                opts.set(f, a.value(f)?)?;
            }
            "--twice" => opts.twice = true,
            "--replay" => replay = Some(parse::<u64>(flag, a.value(flag)?)?),
            "--report" => out.report = Some(a.value(flag)?.to_string()),
            "--plots" => out.plots = Some(PathBuf::from(a.value(flag)?)),
            "--quiet" => out.quiet = true,
            other => return Err(format!("unknown option `{other}` (try `swim-sim help`)")),
        }
    }
    if opts.min_nodes < 1 || opts.max_nodes < opts.min_nodes {
        return Err("need 1 <= --min-nodes <= --max-nodes".into());
    }
    if let Some(seed) = replay {
        let sc = sweep::scenario(seed, &opts);
        eprintln!("scenario: {}", swim_sim::describe(&sc));
        let report = Simulation::new(sc).run();
        emit(&report, &out)?;
        return Ok(report.ok());
    }
    let quiet = out.quiet;
    let summary = sweep::run(&opts, |r| {
        if !r.ok() {
            eprintln!(
                "seed {} FAILED ({} violations): replay with `{}`",
                r.seed,
                r.invariant_violations_total,
                sweep::replay_command(r.seed, &opts, &sweep::Trial::default())
            );
            for v in r.invariant_violations.iter().take(5) {
                eprintln!("    {v}");
            }
        } else if !quiet {
            eprintln!(
                "seed {:>6}: {:>2} nodes, {:>5.0}s simulated in {:.2}s, ok",
                r.seed, r.nodes, r.simulated_seconds, r.wall_seconds
            );
        }
    });
    eprintln!("{}", summary.line());
    if let Some(path) = &out.report {
        let json = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        if path == "-" {
            println!("{json}");
        } else {
            std::fs::write(path, json).map_err(|e| format!("cannot write {path}: {e}"))?;
        }
    }
    Ok(summary.failed.is_empty())
}

fn cmd_battery(argv: &[String]) -> Result<bool, String> {
    let mut opts = battery::Options {
        long: false,
        modes: battery::Mode::ALL.to_vec(),
        only: Vec::new(),
        first_seed: 1,
        seeds: None,
    };
    let mut a = Args { rest: argv.iter() };
    while let Some(flag) = a.rest.next() {
        let flag = flag.as_str();
        match flag {
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(true);
            }
            "--short" => opts.long = false,
            "--long" => opts.long = true,
            "--modes" => {
                opts.modes = a
                    .value(flag)?
                    .split(',')
                    .map(|m| match m {
                        "ours" => Ok(battery::Mode::Ours),
                        "no-last-probe" => Ok(battery::Mode::NoLastProbe),
                        "no-direct-refutation" => Ok(battery::Mode::NoDirectRefutation),
                        "no-guards" => Ok(battery::Mode::NoGuards),
                        "no-doubt" => Ok(battery::Mode::NoDoubt),
                        "no-hearsay" => Ok(battery::Mode::NoHearsay),
                        "go" => Ok(battery::Mode::Go),
                        _ => Err(format!("--modes: unknown mode `{m}`")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--only" => opts.only.push(a.value(flag)?.to_string()),
            "--seeds" => opts.seeds = Some(parse(flag, a.value(flag)?)?),
            "--first-seed" => opts.first_seed = parse(flag, a.value(flag)?)?,
            other => return Err(format!("battery: unknown option `{other}`")),
        }
    }
    println!("{}", battery::HEADER);
    let rows = battery::run(&opts, |row| println!("{}", row.line()));
    let ours = rows
        .iter()
        .filter(|r| r.mode == battery::Mode::Ours.name())
        .map(|r| r.false_deaths)
        .sum::<u64>();
    let replays = battery::replays(&rows);
    if !replays.is_empty() {
        print!("\n{replays}");
    }
    let ran_ours = opts.modes.contains(&battery::Mode::Ours);
    println!(
        "\nbattery: {} healthy nodes declared dead with our defaults{}",
        ours,
        if ran_ours { "" } else { " (not run)" }
    );
    Ok(ours == 0)
}
