//! `swim-chaos`: runs chaos scenarios on real swim-agent and go-peer
//! processes on loopback; see `chaos/README.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use swim_chaos::analyze::{analyze, Report};
use swim_chaos::bed::{self, Options};
use swim_chaos::node::{parse_mix, Kind, Programs};
use swim_chaos::record::Record;
use swim_chaos::report::{run_table, summary};
use swim_chaos::scenario::Scenario;

/// A chaos bed of real swim-agent (tokio, async-std) and Go memberlist
/// processes on loopback. Needs root (nftables, a user per node).
#[derive(Debug, Parser)]
#[command(name = "swim-chaos", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a scenario file once per seed; print each run's table (and a
    /// summary of several); exit 1 if a run fails its checks.
    Run {
        /// The scenario (TOML; see chaos/scenarios/).
        scenario: PathBuf,
        /// rust (tokio and async-std in turn), go, mixed (tokio, async-std,
        /// go in turn), or a comma list of tokio, async-std, go.
        #[arg(long, default_value = "rust")]
        mix: String,
        /// Seeds, comma-separated; each is one run.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        seeds: Vec<u64>,
        /// Cluster size (default: the scenario's).
        #[arg(long)]
        nodes: Option<usize>,
        /// Lifeguard on or off on every node.
        #[arg(long, default_value = "on", value_parser = ["on", "off"])]
        lifeguard: String,
        /// swim-agent binary (default: beside this one).
        #[arg(long)]
        agent: Option<PathBuf>,
        /// go-peer binary (default: built from interop/go-peer with Go).
        #[arg(long)]
        go_peer: Option<PathBuf>,
        /// Where logs, record.json and report.json go (one directory a run
        /// inside).
        #[arg(long, default_value = "target/chaos")]
        out: PathBuf,
        /// Print actions and declarations as they happen.
        #[arg(long, short)]
        verbose: bool,
        /// Addresses 127.77.SLOT.10 upwards and their own uids: beds in
        /// different slots can run at once.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..16))]
        slot: u8,
    },
    /// Judge saved records (record.json) again, print their tables and
    /// rewrite the report.json beside each.
    Analyze {
        /// record.json files.
        records: Vec<PathBuf>,
    },
    /// A markdown summary of saved reports (report.json), grouped by
    /// scenario, size, mix and Lifeguard.
    Summary {
        /// report.json files.
        reports: Vec<PathBuf>,
    },
    /// (Used by `starve`.) Spin on one CPU for a while.
    #[command(hide = true)]
    Burn {
        #[arg(long)]
        cpu: usize,
        #[arg(long)]
        millis: u64,
    },
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Copies a program where every node user can run it, so a rebuild during a
/// run changes nothing and no directory's permissions matter.
fn stage(program: &Path, dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    if !program.is_file() {
        return Err(format!("{} does not exist", program.display()));
    }
    let name = program
        .file_name()
        .ok_or("a program path without a file name")?;
    let to = dir.join(name);
    std::fs::copy(program, &to).map_err(|e| format!("{}: {e}", program.display()))?;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(to)
}

fn build_go_peer(out: &Path) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/go-peer");
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let out = std::path::absolute(out).map_err(|e| e.to_string())?;
    let binary = out.join("go-peer");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", out.join("go-cache"))
        .status()
        .map_err(|e| {
            format!("cannot run go ({e}): apt-get install golang-go golang-github-hashicorp-memberlist-dev, or pass --go-peer")
        })?;
    if !status.success() {
        return Err("building interop/go-peer failed".into());
    }
    Ok(binary)
}

/// Removes the staging directory on every way out.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    scenario_path: &Path,
    mix_label: &str,
    seeds: &[u64],
    nodes: Option<usize>,
    lifeguard: bool,
    agent: Option<PathBuf>,
    go_peer: Option<PathBuf>,
    out: &Path,
    verbose: bool,
    slot: u8,
) -> Result<bool, String> {
    let scenario = Scenario::load(scenario_path).map_err(|e| e.to_string())?;
    let n = nodes.unwrap_or(scenario.nodes);
    scenario.check(n).map_err(|e| e.to_string())?;
    let mix = parse_mix(mix_label)?;
    if seeds.is_empty() {
        return Err("--seeds: give at least one".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("swim-chaos needs root: it writes nftables rules and runs each node as a user of its own".into());
    }
    for tool in ["nft", "setpriv", "chrt"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "{tool} is missing: apt-get install nftables util-linux"
            ));
        }
    }
    let name = scenario_path
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    let staging = Staging(std::env::temp_dir().join(format!("swim-chaos-{}", std::process::id())));
    std::fs::create_dir_all(&staging.0).map_err(|e| format!("{}: {e}", staging.0.display()))?;
    let agent = match agent {
        Some(a) => a,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("swim-agent"),
    };
    let agent = stage(&agent, &staging.0).map_err(|e| {
        format!("swim-agent: {e}: build it first (cargo build --release -p swim-agent -p swim-chaos) or pass --agent")
    })?;
    let go_peer = if mix.contains(&Kind::Go) {
        let built = match go_peer {
            Some(g) => g,
            None => build_go_peer(&out.join("go"))?,
        };
        Some(stage(&built, &staging.0).map_err(|e| format!("go-peer: {e}"))?)
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| e.to_string())?;
    }
    let mut reports: Vec<Report> = Vec::new();
    for &seed in seeds {
        let dir = out.join(format!(
            "{name}-{}-n{n}-lifeguard-{}-seed{seed}",
            mix_label.replace(',', "+"),
            if lifeguard { "on" } else { "off" }
        ));
        let opts = Options {
            scenario: scenario.clone(),
            scenario_name: name.clone(),
            nodes: n,
            mix_label: mix_label.into(),
            mix: mix.clone(),
            seed,
            lifeguard,
            programs: Programs {
                agent: agent.clone(),
                go_peer: go_peer.clone(),
            },
            out: dir.clone(),
            verbose,
            slot,
        };
        eprintln!(
            "swim-chaos: {name}, {n} nodes, mix {mix_label}, seed {seed}: logs in {}",
            dir.display()
        );
        let record: Record = bed::run(&opts, &stop)?;
        write_json(&dir.join("record.json"), &record)?;
        let report = analyze(&record);
        write_json(&dir.join("report.json"), &report)?;
        println!("{}", run_table(&report));
        reports.push(report);
    }
    if reports.len() > 1 {
        println!("{}", summary(&reports));
    }
    Ok(reports.iter().all(|r| r.failures.is_empty()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run {
            scenario,
            mix,
            seeds,
            nodes,
            lifeguard,
            agent,
            go_peer,
            out,
            verbose,
            slot,
        } => run(
            &scenario,
            &mix,
            &seeds,
            nodes,
            lifeguard == "on",
            agent,
            go_peer,
            &out,
            verbose,
            slot,
        ),
        Cmd::Analyze { records } => records
            .iter()
            .map(|p| {
                let report = analyze(&read_json::<Record>(p)?);
                println!("{}", run_table(&report));
                let dir = p.parent().unwrap_or(Path::new("."));
                write_json(&dir.join("report.json"), &report)?;
                Ok(report.failures.is_empty())
            })
            .collect::<Result<Vec<bool>, String>>()
            .map(|v| v.into_iter().all(|ok| ok)),
        Cmd::Summary { reports } => reports
            .iter()
            .map(|p| read_json::<Report>(p))
            .collect::<Result<Vec<Report>, String>>()
            .map(|r| {
                print!("{}", summary(&r));
                true
            }),
        Cmd::Burn { cpu, millis } => bed::burn(cpu, millis).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("swim-chaos: {e}");
            ExitCode::from(2)
        }
    }
}
