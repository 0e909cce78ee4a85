//! A scenario and a seed made concrete: every action at its time, on the
//! nodes the seed picked, and the windows the analysis judges by.
//!
//! Planning is pure (no processes, no clock), so the same scenario, size and
//! seed always give the same plan, and tests check it without a cluster.

use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::firewall::Rule;
use crate::scenario::{Direction, Fault, LeaveHow, Proto, Scenario, ScenarioError};

/// Something the bed does at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Install the rules of network fault `id`.
    Net {
        /// Which fault (removed by [`Action::Unnet`] with the same id).
        id: usize,
        /// Its rules.
        rules: Vec<Rule>,
    },
    /// Remove the rules of network fault `id`.
    Unnet {
        /// Which fault.
        id: usize,
    },
    /// SIGKILL.
    Kill(Vec<usize>),
    /// A fresh process with the same name, joining through live nodes.
    Start(Vec<usize>),
    /// A graceful departure.
    Leave {
        /// Who.
        nodes: Vec<usize>,
        /// SIGTERM rather than the `leave` command.
        sigterm: bool,
    },
    /// SIGSTOP.
    Stop(Vec<usize>),
    /// SIGCONT.
    Cont(Vec<usize>),
    /// Starve of CPU.
    Starve {
        /// Who.
        nodes: Vec<usize>,
        /// Busy processes beside them.
        burners: usize,
        /// How long the burners run.
        length: Duration,
        /// Burners under SCHED_FIFO (else the node under SCHED_IDLE).
        #[serde(default)]
        realtime: bool,
    },
    /// End a starvation.
    Feed(Vec<usize>),
    /// `key-add` of key number k on every running node.
    KeyAdd(u32),
    /// `key-use`.
    KeyUse(u32),
    /// `key-remove`.
    KeyRemove(u32),
}

/// An action at its time after the first phase began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// When.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What.
    pub action: Action,
}

/// When a fault acted and on whom, for the analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The phase (index).
    pub phase: usize,
    /// The fault's kind (`crash`, `stall`…).
    pub kind: String,
    /// Shown in reports, like `crash n03 (restart 20s)`.
    pub label: String,
    /// The nodes it hit: whose detection is measured.
    pub targets: Vec<usize>,
    /// Who is expected to detect them (for a partition, the other side;
    /// targets detect it too, see `mutual`).
    pub observers: Vec<usize>,
    /// Detection is measured both ways (a partition).
    pub mutual: bool,
    /// Nodes a declaration about is excused during the window and its grace:
    /// they were really away (crashed, stopped, starved, leaving, or cut off
    /// from others on both protocols).
    pub excused: Vec<usize>,
    /// Start, after the first phase began.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// End (a restart or rejoin included).
    #[serde(with = "humantime_serde")]
    pub end: Duration,
}

/// A phase's span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    /// Its name.
    pub name: String,
    /// Start.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// When its last fault is over: convergence is timed from here.
    #[serde(with = "humantime_serde")]
    pub quiet: Duration,
    /// End of its heal time: the next phase's start.
    #[serde(with = "humantime_serde")]
    pub end: Duration,
    /// No fault, or only loss and key rotation: no live node may be
    /// declared dead.
    pub benign: bool,
    /// Its faults, as the file gave them.
    pub faults: Vec<String>,
}

/// Everything a run will do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Actions in time order.
    pub steps: Vec<Step>,
    /// Fault windows.
    pub windows: Vec<Window>,
    /// Phases.
    pub phases: Vec<PhaseSpan>,
    /// The end of the last phase.
    #[serde(with = "humantime_serde")]
    pub end: Duration,
}

/// A node's name: `n00`, `n01`…
pub fn node_name(i: usize) -> String {
    format!("n{i:02}")
}

/// The `i`-th key of a run, 32 bytes in hex, from the seed.
pub fn key_hex(seed: u64, i: u32) -> String {
    use rand::RngCore;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b65_7973 ^ (u64::from(i) << 32));
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    key.iter().map(|b| format!("{b:02x}")).collect()
}

struct Planner {
    n: usize,
    rng: ChaCha8Rng,
    /// Until when each node is taken by a process fault.
    busy: Vec<Duration>,
    /// Until when each node is down (crashed or left).
    down: Vec<Duration>,
    steps: Vec<Step>,
    windows: Vec<Window>,
    net_id: usize,
    key: u32,
}

impl Planner {
    fn pick(
        &mut self,
        k: usize,
        at: Duration,
        network: bool,
        what: &str,
    ) -> Result<Vec<usize>, ScenarioError> {
        let free: Vec<usize> = (0..self.n)
            .filter(|&i| {
                if network {
                    self.down[i] <= at
                } else {
                    self.busy[i] <= at
                }
            })
            .collect();
        if free.len() < k {
            return Err(ScenarioError(format!(
                "{what}: needs {k} nodes at {}, only {} are free (others are crashed, \
                 stalled or gone)",
                humantime::format_duration(at),
                free.len()
            )));
        }
        let mut chosen: Vec<usize> = free
            .choose_multiple(&mut self.rng, k)
            .copied()
            .collect::<Vec<_>>();
        chosen.sort_unstable();
        Ok(chosen)
    }

    fn step(&mut self, at: Duration, action: Action) {
        self.steps.push(Step { at, action });
    }

    #[allow(clippy::too_many_arguments)]
    fn window(
        &mut self,
        phase: usize,
        kind: &str,
        label: String,
        targets: Vec<usize>,
        mutual: bool,
        excused: Vec<usize>,
        start: Duration,
        end: Duration,
    ) {
        let observers = (0..self.n).filter(|i| !targets.contains(i)).collect();
        self.windows.push(Window {
            phase,
            kind: kind.into(),
            label,
            targets,
            observers,
            mutual,
            excused,
            start,
            end,
        });
    }
}

fn names(nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|&i| node_name(i))
        .collect::<Vec<_>>()
        .join(",")
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl Plan {
    /// Plans `scenario` on `n` nodes with `seed`; `go` says which nodes run
    /// go-peer (a Go node's SIGTERM is a crash).
    pub fn new(
        scenario: &Scenario,
        n: usize,
        seed: u64,
        go: &[bool],
    ) -> Result<Plan, ScenarioError> {
        scenario.check(n)?;
        let mut p = Planner {
            n,
            rng: ChaCha8Rng::seed_from_u64(seed),
            busy: vec![Duration::ZERO; n],
            down: vec![Duration::ZERO; n],
            steps: Vec::new(),
            windows: Vec::new(),
            net_id: 0,
            key: 0,
        };
        let all: Vec<usize> = (0..n).collect();
        let mut phases = Vec::new();
        let mut t = Duration::ZERO;
        for (pi, phase) in scenario.phases.iter().enumerate() {
            let start = t;
            let mut quiet = start;
            for (fi, fault) in phase.faults.iter().enumerate() {
                let what = format!("phase {} ({:?}) fault {}", pi + 1, phase.name, fi + 1);
                let at = start + fault.at();
                let end = start + fault.end(phase.duration);
                quiet = quiet.max(end);
                let count = |default: usize| fault.targets().count(n).unwrap_or(default);
                match *fault {
                    Fault::Loss {
                        percent,
                        direction,
                        proto,
                        ..
                    } => {
                        let (targets, rules) = match fault.targets().count(n) {
                            None => (
                                Vec::new(),
                                vec![Rule::new(all.clone(), all.clone(), proto, percent)],
                            ),
                            Some(k) => {
                                let t = p.pick(k, at, true, &what)?;
                                let out = Rule::new(t.clone(), all.clone(), proto, percent);
                                let inn = Rule::new(all.clone(), t.clone(), proto, percent);
                                let rules = match direction {
                                    Direction::Out => vec![out],
                                    Direction::In => vec![inn],
                                    Direction::Both => vec![out, inn],
                                };
                                (t, rules)
                            }
                        };
                        let id = p.net_id;
                        p.net_id += 1;
                        p.step(at, Action::Net { id, rules });
                        p.step(end, Action::Unnet { id });
                        let whom = if targets.is_empty() {
                            "all".to_string()
                        } else {
                            format!("{} {direction:?}", names(&targets)).to_lowercase()
                        };
                        let label = format!("loss {percent}% {proto:?} {whom}").to_lowercase();
                        p.window(pi, "loss", label, targets, false, Vec::new(), at, end);
                    }
                    Fault::Partition { proto, one_way, .. } => {
                        let side = p.pick(count(1), at, true, &what)?;
                        let rest: Vec<usize> =
                            all.iter().copied().filter(|i| !side.contains(i)).collect();
                        let mut rules = vec![Rule::new(side.clone(), rest.clone(), proto, 100)];
                        if !one_way {
                            rules.push(Rule::new(rest.clone(), side.clone(), proto, 100));
                        }
                        let id = p.net_id;
                        p.net_id += 1;
                        p.step(at, Action::Net { id, rules });
                        p.step(end, Action::Unnet { id });
                        // Only a cut of both protocols takes nodes away:
                        // memberlist falls back to TCP when UDP probes fail,
                        // so one protocol cut must not kill anyone.
                        let excused = if proto == Proto::Both {
                            all.clone()
                        } else {
                            Vec::new()
                        };
                        let label = format!(
                            "partition {}{} {:?} for {}",
                            names(&side),
                            if one_way { " one-way" } else { "" },
                            proto,
                            fmt(end - at)
                        )
                        .to_lowercase();
                        p.window(pi, "partition", label, side, true, excused, at, end);
                    }
                    Fault::Crash { restart_after, .. } => {
                        let targets = p.pick(count(1), at, false, &what)?;
                        p.step(at, Action::Kill(targets.clone()));
                        let back = restart_after.map(|r| at + r);
                        if let Some(b) = back {
                            p.step(b, Action::Start(targets.clone()));
                        }
                        for &i in &targets {
                            p.busy[i] = back.unwrap_or(Duration::MAX);
                            p.down[i] = back.unwrap_or(Duration::MAX);
                        }
                        let label = match restart_after {
                            Some(r) => format!("crash {} (restart {})", names(&targets), fmt(r)),
                            None => format!("crash {}", names(&targets)),
                        };
                        let end = back.unwrap_or(at);
                        p.window(pi, "crash", label, targets.clone(), false, targets, at, end);
                    }
                    Fault::Leave {
                        how, rejoin_after, ..
                    } => {
                        let targets = p.pick(count(1), at, false, &what)?;
                        let sigterm = how == LeaveHow::Sigterm;
                        p.step(
                            at,
                            Action::Leave {
                                nodes: targets.clone(),
                                sigterm,
                            },
                        );
                        let back = rejoin_after.map(|r| at + r);
                        if let Some(b) = back {
                            p.step(b, Action::Start(targets.clone()));
                        }
                        for &i in &targets {
                            p.busy[i] = back.unwrap_or(Duration::MAX);
                            p.down[i] = back.unwrap_or(Duration::MAX);
                        }
                        let go_note = if sigterm && targets.iter().any(|&i| go[i]) {
                            " (Go: no handler, a crash)"
                        } else {
                            ""
                        };
                        let label = format!(
                            "leave {} by {}{go_note}",
                            names(&targets),
                            if sigterm { "SIGTERM" } else { "command" }
                        );
                        let end = back.unwrap_or(at);
                        p.window(pi, "leave", label, targets.clone(), false, targets, at, end);
                    }
                    Fault::Stall { length, every, .. } => {
                        let mut s = at;
                        loop {
                            let targets = p.pick(count(1), s, false, &what)?;
                            p.step(s, Action::Stop(targets.clone()));
                            p.step(s + length, Action::Cont(targets.clone()));
                            for &i in &targets {
                                p.busy[i] = s + length;
                            }
                            let label = format!("stall {} for {}", names(&targets), fmt(length));
                            p.window(
                                pi,
                                "stall",
                                label,
                                targets.clone(),
                                false,
                                targets,
                                s,
                                s + length,
                            );
                            match every {
                                Some(e) if s + e + length <= start + phase.duration => s += e,
                                _ => break,
                            }
                        }
                    }
                    Fault::Starve {
                        length,
                        burners,
                        realtime,
                        ..
                    } => {
                        let targets = p.pick(count(1), at, false, &what)?;
                        p.step(
                            at,
                            Action::Starve {
                                nodes: targets.clone(),
                                burners,
                                length,
                                realtime,
                            },
                        );
                        p.step(at + length, Action::Feed(targets.clone()));
                        for &i in &targets {
                            p.busy[i] = at + length;
                        }
                        let label = format!(
                            "starve {} for {} ({burners} {}burners)",
                            names(&targets),
                            fmt(length),
                            if realtime { "realtime " } else { "" }
                        );
                        p.window(
                            pi,
                            "starve",
                            label,
                            targets.clone(),
                            false,
                            targets,
                            at,
                            at + length,
                        );
                    }
                    Fault::RotateKeys { step, every, .. } => {
                        let mut s = at;
                        loop {
                            let (old, new) = (p.key, p.key + 1);
                            p.key = new;
                            p.step(s, Action::KeyAdd(new));
                            p.step(s + step, Action::KeyUse(new));
                            p.step(s + step * 2, Action::KeyRemove(old));
                            let label = format!("rotate key {old} -> {new}");
                            p.window(
                                pi,
                                "rotate-keys",
                                label,
                                Vec::new(),
                                false,
                                Vec::new(),
                                s,
                                s + step * 2,
                            );
                            match every {
                                Some(e) if s + e + step * 2 <= start + phase.duration => s += e,
                                _ => break,
                            }
                        }
                    }
                }
            }
            t = start + phase.duration + phase.heal;
            phases.push(PhaseSpan {
                name: phase.name.clone(),
                start,
                quiet,
                end: t,
                benign: phase.faults.iter().all(Fault::is_benign),
                faults: phase.faults.iter().map(|f| f.kind().to_string()).collect(),
            });
        }
        // Stable: actions at one time keep the order the file gave them.
        p.steps.sort_by_key(|s| s.at);
        Ok(Plan {
            steps: p.steps,
            windows: p.windows,
            phases,
            end: t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::parse(
            r#"
            nodes = 10
            [[phase]]
            name = "calm"
            duration = "5s"
            [[phase]]
            name = "mess"
            duration = "40s"
            heal = "20s"
            faults = [
                { kind = "crash", nodes = 2, at = "1s", restart_after = "10s" },
                { kind = "stall", fraction = 0.1, for = "3s", every = "10s" },
                { kind = "partition", nodes = 3, proto = "udp", at = "5s", for = "10s" },
                { kind = "loss", percent = 20, nodes = 1, direction = "out" },
                { kind = "rotate-keys", at = "2s" },
            ]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_seed_repeats_its_plan_and_another_seed_differs() {
        let s = scenario();
        let go = [false; 10];
        let a = Plan::new(&s, 10, 7, &go).unwrap();
        assert_eq!(a, Plan::new(&s, 10, 7, &go).unwrap());
        let others: Vec<Plan> = (8..12)
            .map(|seed| Plan::new(&s, 10, seed, &go).unwrap())
            .collect();
        assert!(others.iter().any(|o| o.windows != a.windows));
    }

    #[test]
    fn the_plan_keeps_its_times_and_targets_apart() {
        let s = scenario();
        let plan = Plan::new(&s, 10, 1, &[false; 10]).unwrap();
        assert_eq!(plan.end, Duration::from_secs(65));
        assert_eq!(plan.phases[1].start, Duration::from_secs(5));
        assert!(plan.phases[0].benign && !plan.phases[1].benign);
        assert!(plan.steps.windows(2).all(|w| w[0].at <= w[1].at));
        // Stalls start at 5, 15, 25 and 35 s into the phase, never on a
        // crashed node, and each window says whom it excuses.
        let crash = plan.windows.iter().find(|w| w.kind == "crash").unwrap();
        let stalls: Vec<&Window> = plan.windows.iter().filter(|w| w.kind == "stall").collect();
        assert_eq!(stalls.len(), 4);
        for w in &stalls {
            assert_eq!(w.targets.len(), 1);
            if w.start < crash.end {
                assert!(!crash.targets.contains(&w.targets[0]));
            }
            assert_eq!(w.excused, w.targets);
        }
        // A UDP-only partition excuses nobody; every window observes the rest.
        let cut = plan.windows.iter().find(|w| w.kind == "partition").unwrap();
        assert!(cut.excused.is_empty() && cut.mutual);
        assert_eq!(cut.observers.len(), 7);
        // Key rotation: add, use, remove, two seconds apart.
        let keys: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.action,
                    Action::KeyAdd(_) | Action::KeyUse(_) | Action::KeyRemove(_)
                )
            })
            .collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[2].at - keys[0].at, Duration::from_secs(4));
    }

    #[test]
    fn too_many_targets_is_an_error_not_a_panic() {
        let s = Scenario::parse(
            r#"
            nodes = 4
            [[phase]]
            name = "x"
            duration = "10s"
            faults = [{ kind = "crash", nodes = 3 }, { kind = "stall", nodes = 2, for = "1s" }]
            "#,
        )
        .unwrap();
        let e = Plan::new(&s, 4, 1, &[false; 4]).unwrap_err();
        assert!(e.0.contains("only 1 are free"), "{e}");
    }

    #[test]
    fn keys_are_32_bytes_of_hex_and_differ() {
        assert_eq!(key_hex(1, 0).len(), 64);
        assert_ne!(key_hex(1, 0), key_hex(1, 1));
        assert_eq!(key_hex(1, 0), key_hex(1, 0));
    }
}
