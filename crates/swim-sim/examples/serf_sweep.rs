//! The Serf sweep: the simulator's chaotic seeds (crashes, restarts,
//! leaves, stalls, partitions, loss bursts, metadata updates) with Serf on
//! every node, user events during the faults and queries after them, and
//! Serf's invariants checked ([`sweep_scenario`]). A failing seed is
//! shrunk and printed with the command that replays it.
//!
//! ```text
//! cargo run --release -p swim-sim --features serf --example serf_sweep -- --seeds 100
//! cargo run --release -p swim-sim --features serf --example serf_sweep -- --seeds 20 --bug drop-events   # caught
//! ```
//!
//! `--bug deliver-twice|drop-events|ignore-queries` plants a bug
//! ([`PlantedBug`]) the sweep must catch.

use std::process::ExitCode;

use swim_sim::serf::{sweep_scenario, PlantedBug};
use swim_sim::sweep::{Cli, SweepOptions};

fn main() -> ExitCode {
    let defaults = SweepOptions {
        seeds: 50,
        max_nodes: 32,
        ..SweepOptions::default()
    };
    let cli = match Cli::from_env(defaults) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("serf_sweep: {e}\nusage: {} [--bug KIND]", Cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let bug = match cli.rest.as_slice() {
        [] => None,
        [flag, kind] if flag == "--bug" => match kind.as_str() {
            "deliver-twice" => Some(PlantedBug::DeliverTwice),
            "drop-events" => Some(PlantedBug::DropEvents),
            "ignore-queries" => Some(PlantedBug::IgnoreQueries),
            other => {
                eprintln!("serf_sweep: unknown bug {other}");
                return ExitCode::from(2);
            }
        },
        other => {
            eprintln!("serf_sweep: unknown options {other:?}");
            return ExitCode::from(2);
        }
    };
    if cli.run(&move |sc| sweep_scenario(sc, bug)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
