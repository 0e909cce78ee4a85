//! How long a Serf user event takes to reach every node of a formed LAN
//! cluster, measured on simulated Serf nodes and set against the
//! push-gossip model ([`dissemination_rounds`]).
//!
//! ```text
//! cargo run --release -p swim-sim --features serf --example serf_dissemination -- --nodes 1000 --seeds 3
//! ```
//!
//! Each seed: `--nodes` formed nodes on the LAN preset, node 0 sends one
//! user event at 10 s, the run ends 10 s later; every node's first
//! delivery time is read at the end. Exit status 1 if a seed's last node
//! got it after the model's bound, or some node never did.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_sim::serf::{dissemination_rounds, quantile, serf_io_rounds, SerfApp, SerfSim};
use swim_sim::{Check, Granularity, Preset, Scenario, Simulation};

const SENT_AT: Duration = Duration::from_secs(10);

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} takes a number")),
    }
}

/// One seed: the delays (s) after which each live node had the event,
/// sorted, and how many live nodes never got it.
fn run(nodes: usize, seed: u64) -> (Vec<f64>, usize, f64) {
    let delays = Arc::new(Mutex::new((Vec::new(), 0)));
    let out = delays.clone();
    let sc = Scenario::new(nodes, seed, Preset::Lan)
        .formed()
        .duration(SENT_AT + Duration::from_secs(10))
        .granularity(Granularity::Step);
    let sc = SerfSim::new()
        .event(SENT_AT, 0)
        .install(sc)
        .expect("Go's defaults are valid")
        .invariant("measure", Check::AtEnd, move |apps| {
            let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
            for (_, app) in apps.live::<SerfApp>() {
                match app.delivered().get("ev-0") {
                    Some(&(_, at)) => out.0.push((at - SENT_AT).as_secs_f64()),
                    None => out.1 += 1,
                }
            }
            Ok(())
        });
    let report = Simulation::new(sc).run();
    if !report.ok() {
        eprintln!("seed {seed}: {:?}", report.invariant_violations);
    }
    let (mut d, missing) = delays.lock().unwrap_or_else(|e| e.into_inner()).clone();
    d.sort_by(f64::total_cmp);
    let rss = swim_sim::peak_rss().unwrap_or(0) as f64 / 1e6;
    (d, missing + usize::from(!report.ok()), rss)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (nodes, seeds) = match (flag(&args, "--nodes", 1000), flag(&args, "--seeds", 3)) {
        (Ok(n), Ok(s)) => (n as usize, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("serf_dissemination: {e}");
            return ExitCode::from(2);
        }
    };
    let config = Scenario::new(nodes, 1, Preset::Lan).node_config(0);
    let (fanout, interval) = (config.gossip_nodes, config.gossip_interval);
    let transmits = config.retransmit_limit(nodes);
    let Some(rounds) = dissemination_rounds(nodes, fanout, transmits) else {
        eprintln!("the model says the event dies out before reaching everyone");
        return ExitCode::FAILURE;
    };
    // Each round is a gossip interval; each hop adds at most one link's
    // latency (the LAN links' 1 ms) and its jitter (0.1 ms).
    let bound = (interval + Duration::from_micros(1100)) * rounds;
    println!(
        "{nodes} nodes, fanout {fanout}, interval {interval:?}, {transmits} transmits each: the round model's {rounds} rounds, bound {:.3} s; Go's documented model (serf.io) {:.3} s",
        bound.as_secs_f64(),
        serf_io_rounds(nodes, fanout) * interval.as_secs_f64()
    );
    let mut all = Vec::new();
    let mut ok = true;
    for seed in 1..=seeds {
        let (d, missing, rss) = run(nodes, seed);
        let (Some(p50), Some(p99), Some(last)) =
            (quantile(&d, 0.5), quantile(&d, 0.99), d.last().copied())
        else {
            eprintln!("seed {seed}: no node got the event");
            return ExitCode::FAILURE;
        };
        println!(
            "seed {seed}: {} nodes had it; half after {p50:.3} s, 99 % after {p99:.3} s, all after {last:.3} s; {missing} never (peak RSS {rss:.0} MB)",
            d.len()
        );
        ok &= missing == 0 && last <= bound.as_secs_f64();
        all.push(last);
    }
    all.sort_by(f64::total_cmp);
    if let (Some(min), Some(median), Some(max)) = (all.first(), quantile(&all, 0.5), all.last()) {
        println!("time until all had it: min {min:.3} s, median {median:.3} s, max {max:.3} s (bound {:.3} s)", bound.as_secs_f64());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
