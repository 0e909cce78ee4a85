//! Scenario files: what a chaos run does, phase by phase.
//!
//! A scenario is a TOML file of sequential phases. Each phase has faults that
//! start at an offset into it and end before it does, then a quiet `heal`
//! time in which the cluster must converge again. Which nodes a fault hits is
//! not in the file: the run's seed picks them ([`crate::plan`]), so one file
//! runs on any cluster size and a seed repeats a run.
//!
//! ```toml
//! nodes = 8
//! preset = "lan"
//!
//! [[phase]]
//! name = "5% loss"
//! duration = "20s"
//! heal = "10s"
//! faults = [{ kind = "loss", percent = 5 }]
//! ```
//!
//! Every mistake gets an error naming the phase and the field; nothing here
//! panics on input.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
pub use swim_core::Preset;

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line saying what the scenario is for.
    #[serde(default)]
    pub description: String,
    /// Cluster size (the command line can override it).
    pub nodes: usize,
    /// Timing preset of every node: `lan`, `local` or `wan`.
    #[serde(default)]
    pub preset: Preset,
    /// How often every node is asked for its `members`.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll: Duration,
    /// Longest wait for the cluster to form before the first phase.
    #[serde(default = "default_startup", with = "humantime_serde")]
    pub startup: Duration,
    /// Quiet time after the cluster formed, before the first phase.
    #[serde(default = "default_settle", with = "humantime_serde")]
    pub settle: Duration,
    /// How long after a fault a declaration about a node it touched still
    /// counts as the fault's doing rather than a false positive; default:
    /// the longest suspicion timeout of the preset at this size, plus 5 s.
    #[serde(default, with = "humantime_serde")]
    pub grace: Option<Duration>,
    /// Start every node with an encryption key (needed by `rotate-keys`;
    /// implied by it).
    #[serde(default)]
    pub encrypt: bool,
    /// Fail the run on any healthy node declared dead, in any phase, and on
    /// any declaration made after a cut healed (the false-death battery);
    /// otherwise only false positives in benign phases fail it.
    #[serde(default)]
    pub no_false_deaths: bool,
    /// The phases, run one after the other.
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_startup() -> Duration {
    Duration::from_secs(90)
}
fn default_settle() -> Duration {
    Duration::from_secs(5)
}

/// One phase: faults, then quiet.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Shown in the report.
    pub name: String,
    /// How long the faults may last.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Quiet time after `duration`: every fault has ended and the cluster
    /// must converge within it.
    #[serde(default, with = "humantime_serde")]
    pub heal: Duration,
    /// What goes wrong.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// Which traffic a network fault drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// Datagrams only (probes, gossip).
    Udp,
    /// Streams only (push/pull, TCP probe fallback, reliable messages).
    Tcp,
    /// Both.
    Both,
}

/// Which way a loss applies, relative to the chosen nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// What they send and what they receive.
    #[default]
    Both,
    /// What they send.
    Out,
    /// What they receive.
    In,
}

/// How a node leaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveHow {
    /// The agent's `leave` command, then `quit`.
    #[default]
    Command,
    /// SIGTERM (the Rust agent leaves and exits; go-peer has no handler and
    /// dies, which the bed counts as a crash).
    Sigterm,
}

/// Which nodes a fault hits: a count or a fraction of the cluster (at least
/// one node); neither means every node, for network faults, or one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// How many nodes.
    pub nodes: Option<usize>,
    /// Which share of the cluster, rounded, at least one node.
    pub fraction: Option<f64>,
}

/// One fault of a phase.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Random datagram (or segment) loss: `numgen random mod 100 < percent`.
    Loss {
        /// Percent of packets dropped, 1 to 100.
        percent: u8,
        /// The nodes whose traffic is lost; none: all traffic between nodes.
        nodes: Option<usize>,
        /// Or a share of them.
        fraction: Option<f64>,
        /// Their sent traffic, received traffic, or both.
        #[serde(default)]
        direction: Direction,
        /// Which protocol (default udp).
        #[serde(default = "udp")]
        proto: Proto,
        /// Start, into the phase.
        #[serde(default, with = "humantime_serde")]
        at: Option<Duration>,
        /// How long (default: to the end of the phase's duration).
        #[serde(default, rename = "for", with = "humantime_serde")]
        length: Option<Duration>,
    },
    /// The chosen nodes cut from the rest.
    Partition {
        /// How many nodes on the small side.
        nodes: Option<usize>,
        /// Or a share of the cluster.
        fraction: Option<f64>,
        /// Which protocol is cut (default both).
        #[serde(default = "both")]
        proto: Proto,
        /// Only what the small side sends is dropped.
        #[serde(default)]
        one_way: bool,
        /// Start, into the phase.
        #[serde(default, with = "humantime_serde")]
        at: Option<Duration>,
        /// How long (default: to the end of the phase's duration).
        #[serde(default, rename = "for", with = "humantime_serde")]
        length: Option<Duration>,
    },
    /// SIGKILL, and optionally a fresh process with the same name later.
    Crash {
        /// How many nodes (default 1).
        nodes: Option<usize>,
        /// Or a share of the cluster.
        fraction: Option<f64>,
        /// When, into the phase.
        #[serde(default, with = "humantime_serde")]
        at: Option<Duration>,
        /// Restart this long after the crash.
        #[serde(default, with = "humantime_serde")]
        restart_after: Option<Duration>,
    },
    /// A graceful departure, and optionally a fresh process later.
    Leave {
        /// How many nodes (default 1).
        nodes: Option<usize>,
        /// Or a share of the cluster.
        fraction: Option<f64>,
        /// When, into the phase.
        #[serde(default, with = "humantime_serde")]
        at: Option<Duration>,
        /// `command` or `sigterm`.
        #[serde(default)]
        how: LeaveHow,
        /// Start again this long after leaving.
        #[serde(default, with = "humantime_serde")]
        rejoin_after: Option<Duration>,
    },
    /// SIGSTOP for `for`, then SIGCONT; repeated `every` until the phase's
    /// duration ends, each time on nodes the seed picks anew.
    Stall {
        /// How many nodes (default 1).
        nodes: Option<usize>,
        /// Or a share of the cluster.
        fraction: Option<f64>,
        /// First stall, into the phase.
        #[serde(default, with = "humantime_serde")]
        at: Option<Duration>,
        /// How long each stall lasts.
        #[serde(rename = "for", with = "humantime_serde")]
        length: Duration,
        /// Start a new stall this often.
        #[serde(default, with = "humantime_serde")]
        every: Option<Duration>,
    },
    /// CPU starvation: the node's threads pinned to one CPU beside busy
    /// processes pinned to the same CPU.
    Starve {
        /// How many nodes (default 1).
        nodes: Option<usize>,
        /// Or a share of the cluster.
        fraction: Option<f64>,
        /// Start, into the phase.
        #[serde(default, with = "humantime_serde")]
        at: Option<Duration>,
        /// How long.
        #[serde(rename = "for", with = "humantime_serde")]
        length: Duration,
        /// Busy processes beside it (default 2).
        #[serde(default = "two")]
        burners: usize,
        /// The burners run under SCHED_FIFO: the node gets the 5 % of each
        /// second the kernel keeps for other tasks, in one slice (about
        /// 0.95 s without CPU every second). Otherwise the node runs under
        /// SCHED_IDLE beside ordinary burners, which a mostly idle node
        /// barely notices (wakeups about 0.1 s late).
        #[serde(default)]
        realtime: bool,
    },
    /// A new key installed everywhere, made primary, the old one removed,
    /// `step` apart; repeated `every` until the phase's duration ends.
    RotateKeys {
        /// First rotation, into the phase.
        #[serde(default, with = "humantime_serde")]
        at: Option<Duration>,
        /// Between install, use and remove.
        #[serde(default = "default_step", with = "humantime_serde")]
        step: Duration,
        /// Start a new rotation this often.
        #[serde(default, with = "humantime_serde")]
        every: Option<Duration>,
    },
}

fn udp() -> Proto {
    Proto::Udp
}
fn both() -> Proto {
    Proto::Both
}
fn two() -> usize {
    2
}
fn default_step() -> Duration {
    Duration::from_secs(2)
}

/// What is wrong with a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// The most nodes a bed runs (addresses 127.77.0.10 upwards stay in one /24).
pub const MAX_NODES: usize = 240;

impl Fault {
    /// The fault's kind as the file names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Loss { .. } => "loss",
            Fault::Partition { .. } => "partition",
            Fault::Crash { .. } => "crash",
            Fault::Leave { .. } => "leave",
            Fault::Stall { .. } => "stall",
            Fault::Starve { .. } => "starve",
            Fault::RotateKeys { .. } => "rotate-keys",
        }
    }

    /// Whether a live node may not be declared dead while it happens: loss
    /// and key rotation take no node away.
    pub fn is_benign(&self) -> bool {
        matches!(self, Fault::Loss { .. } | Fault::RotateKeys { .. })
    }

    /// The targets it names.
    pub fn targets(&self) -> Targets {
        match *self {
            Fault::Loss {
                nodes, fraction, ..
            }
            | Fault::Partition {
                nodes, fraction, ..
            }
            | Fault::Crash {
                nodes, fraction, ..
            }
            | Fault::Leave {
                nodes, fraction, ..
            }
            | Fault::Stall {
                nodes, fraction, ..
            }
            | Fault::Starve {
                nodes, fraction, ..
            } => Targets { nodes, fraction },
            Fault::RotateKeys { .. } => Targets::default(),
        }
    }

    /// Its start into the phase.
    pub fn at(&self) -> Duration {
        match *self {
            Fault::Loss { at, .. }
            | Fault::Partition { at, .. }
            | Fault::Crash { at, .. }
            | Fault::Leave { at, .. }
            | Fault::Stall { at, .. }
            | Fault::Starve { at, .. }
            | Fault::RotateKeys { at, .. } => at.unwrap_or_default(),
        }
    }

    /// When, into the phase, it is over (restarts and rejoins included);
    /// `duration` is the phase's.
    pub fn end(&self, duration: Duration) -> Duration {
        let at = self.at();
        match *self {
            Fault::Loss { length, .. } | Fault::Partition { length, .. } => {
                length.map_or(duration, |l| at + l)
            }
            Fault::Crash { restart_after, .. } => at + restart_after.unwrap_or_default(),
            Fault::Leave { rejoin_after, .. } => at + rejoin_after.unwrap_or_default(),
            Fault::Stall { length, every, .. } => match every {
                None => at + length,
                Some(_) => duration,
            },
            Fault::Starve { length, .. } => at + length,
            Fault::RotateKeys { step, every, .. } => match every {
                None => at + step * 2,
                Some(_) => duration,
            },
        }
    }
}

impl Targets {
    /// How many of `n` nodes: `None` when neither is given.
    pub fn count(&self, n: usize) -> Option<usize> {
        match (self.nodes, self.fraction) {
            (Some(k), _) => Some(k),
            (None, Some(f)) => Some(((n as f64 * f).round() as usize).max(1)),
            (None, None) => None,
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError(format!("{}: {e}", path.display())))?;
        Scenario::parse(&text).map_err(|e| ScenarioError(format!("{}: {e}", path.display())))
    }

    /// Parses and checks scenario text.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        scenario.check(scenario.nodes)?;
        Ok(scenario)
    }

    /// Whether nodes start with a key: asked for, or needed by a rotation.
    pub fn needs_keys(&self) -> bool {
        self.encrypt
            || self
                .phases
                .iter()
                .flat_map(|p| &p.faults)
                .any(|f| matches!(f, Fault::RotateKeys { .. }))
    }

    /// The grace after a fault (see [`Scenario::grace`]) for `n` nodes.
    pub fn grace_for(&self, n: usize) -> Duration {
        self.grace
            .unwrap_or_else(|| self.max_suspicion(n) + Duration::from_secs(5))
    }

    /// How long after a cut heals a declaration may still rest on what was
    /// seen during the cut: one probe interval and one probe timeout of the
    /// preset, the time a detector needs to probe the node afresh.
    pub fn heal_allowance(&self) -> Duration {
        let anywhere = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = self.preset.config("bed", anywhere);
        config.probe_interval + config.probe_timeout
    }

    /// The longest suspicion timeout in a cluster of `n` on the preset's
    /// timings, Lifeguard on: Go's formula, as swim-core computes it.
    pub fn max_suspicion(&self, n: usize) -> Duration {
        let anywhere = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = self.preset.config("bed", anywhere);
        config.suspicion_timeouts(n).max
    }

    /// Checks the scenario for a cluster of `n` nodes.
    pub fn check(&self, n: usize) -> Result<(), ScenarioError> {
        let err = |m: String| Err(ScenarioError(m));
        if !(2..=MAX_NODES).contains(&n) {
            return err(format!("nodes: {n}: a bed runs 2 to {MAX_NODES} nodes"));
        }
        if self.poll < Duration::from_millis(100) || self.poll > Duration::from_secs(10) {
            return err("poll: must be between 100ms and 10s".into());
        }
        if self.phases.is_empty() {
            return err("no [[phase]]: a scenario needs at least one".into());
        }
        for (i, p) in self.phases.iter().enumerate() {
            let here = format!("phase {} ({:?})", i + 1, p.name);
            if p.duration.is_zero() {
                return err(format!("{here}: duration must be more than 0"));
            }
            for f in &p.faults {
                let kind = f.kind();
                let t = f.targets();
                if t.nodes.is_some() && t.fraction.is_some() {
                    return err(format!("{here}: {kind}: give nodes or fraction, not both"));
                }
                if let Some(fr) = t.fraction {
                    if !(fr > 0.0 && fr < 1.0) {
                        return err(format!("{here}: {kind}: fraction must be between 0 and 1"));
                    }
                }
                if let Some(k) = t.count(n) {
                    if k == 0 || k >= n {
                        return err(format!(
                            "{here}: {kind}: {k} nodes of {n}: pick at least one and leave one"
                        ));
                    }
                }
                if f.at() >= p.duration {
                    return err(format!("{here}: {kind}: at must be within the duration"));
                }
                if f.end(p.duration) > p.duration {
                    return err(format!(
                        "{here}: {kind}: it must be over (restart and rejoin included) \
                         within the phase's duration"
                    ));
                }
                match *f {
                    Fault::Loss { percent, .. } if !(1..=100).contains(&percent) => {
                        return err(format!("{here}: loss: percent must be 1 to 100"));
                    }
                    Fault::Stall { length, every, .. }
                        if length.is_zero() || every.is_some_and(|e| e <= length) =>
                    {
                        return err(format!(
                            "{here}: {kind}: for must be more than 0 and less than every"
                        ));
                    }
                    Fault::Starve { length, .. } if length.is_zero() => {
                        return err(format!("{here}: starve: for must be more than 0"));
                    }
                    Fault::Starve { burners, .. } if !(1..=8).contains(&burners) => {
                        return err(format!("{here}: starve: burners must be 1 to 8"));
                    }
                    Fault::RotateKeys { step, every, .. }
                        if step.is_zero() || every.is_some_and(|e| e <= step * 2) =>
                    {
                        return err(format!(
                            "{here}: rotate-keys: step must be more than 0 and every more \
                             than two steps"
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        nodes = 8
        preset = "local"
        [[phase]]
        name = "quiet"
        duration = "5s"
        [[phase]]
        name = "loss"
        duration = "20s"
        heal = "10s"
        faults = [{ kind = "loss", percent = 5 }, { kind = "rotate-keys", at = "2s" }]
        [[phase]]
        name = "crash"
        duration = "30s"
        faults = [{ kind = "crash", nodes = 2, restart_after = "20s" },
                  { kind = "stall", fraction = 0.1, for = "2s", every = "5s" }]
    "#;

    #[test]
    fn a_good_file_reads() {
        let s = Scenario::parse(GOOD).unwrap();
        assert_eq!(s.nodes, 8);
        assert_eq!(s.preset, Preset::Local);
        assert_eq!(s.phases.len(), 3);
        assert!(s.needs_keys());
        assert!(s.phases[1].faults.iter().all(Fault::is_benign));
        assert_eq!(
            s.phases[2].faults[0].end(s.phases[2].duration).as_secs(),
            20
        );
        assert_eq!(s.phases[2].faults[1].targets().count(8), Some(1));
    }

    #[test]
    fn mistakes_name_phase_and_field() {
        let bad = |from: &str, to: &str| Scenario::parse(&GOOD.replace(from, to)).unwrap_err().0;
        assert!(bad("percent = 5", "percent = 0").contains("percent"));
        assert!(bad("percent = 5", "percnt = 5").contains("percnt"));
        assert!(bad("nodes = 2,", "nodes = 8,").contains("phase 3"));
        assert!(bad("restart_after = \"20s\"", "restart_after = \"40s\"").contains("within"));
        assert!(bad("every = \"5s\"", "every = \"1s\"").contains("less than every"));
        assert!(bad("\"crash\", nodes", "\"explode\", nodes").contains("explode"));
        assert!(bad("nodes = 8\n", "nodes = 1\n").contains("2 to"));
        assert!(bad("fraction = 0.1", "fraction = 1.5").contains("fraction"));
        assert!(bad("duration = \"5s\"", "duration = \"5 parsecs\"").contains("duration"));
    }

    #[test]
    fn heal_allowance_is_a_probe_round() {
        let s = Scenario::parse(&GOOD.replace("\"local\"", "\"lan\"")).unwrap();
        assert_eq!(s.heal_allowance(), Duration::from_millis(1500));
    }

    #[test]
    fn grace_follows_the_preset() {
        // LAN, 10 nodes: 6 × 4 × 1 × 1 s = 24 s, plus 5 s.
        let s = Scenario::parse(&GOOD.replace("\"local\"", "\"lan\"")).unwrap();
        assert_eq!(s.grace_for(10), Duration::from_secs(29));
        // WAN, 100 nodes: 6 × 6 × 2 × 5 s = 360 s.
        let s = Scenario::parse(&GOOD.replace("\"local\"", "\"wan\"")).unwrap();
        assert_eq!(s.max_suspicion(100), Duration::from_secs(360));
    }
}
