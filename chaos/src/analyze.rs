//! From a [`Record`] to figures and verdicts, with no cluster needed.
//!
//! * **False positive**: a node declares another dead (`failed`) while that
//!   one is a live member the faults did not take away — not crashed,
//!   leaving, stopped, starved, or cut off on both protocols, within the
//!   window of such a fault plus the grace (the longest suspicion timeout
//!   and 5 s). Loss, key rotation and a cut of one protocol take nobody
//!   away: memberlist falls back to TCP when UDP probes fail.
//! * **False suspicion**: the same, for a `members` answer listing the node
//!   as suspect; consecutive answers count once. Answers come once a poll,
//!   so suspicions shorter than that can be missed.
//! * **Detection** of a fault: from its start to the first suspicion seen
//!   (or the first declaration, if earlier), to the first `failed` (or
//!   `leave`) about a target by a node it should reach, and to the last
//!   such pair (every observer about every target; both ways for a
//!   partition): the figures of [`swim_core::detection`], shared with the
//!   simulator (see [`FaultReport`] for how the two observe).
//! * **Convergence** after a phase: from its last fault's end to the first
//!   `members` round in which every live node lists exactly the live nodes,
//!   none suspect.
//! * **Lost event**: at the end, a node whose last event about a member does
//!   not match the member's final state (alive, or dead or left).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use swim_core::detection::Detection;

use crate::plan::{node_name, Window};
use crate::record::{EventKind, Meta, Record};

/// One declaration the analysis counted against the nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declaration {
    /// When (s from the first phase).
    pub t: f64,
    /// Who declared.
    pub observer: String,
    /// Whom.
    pub subject: String,
    /// In which phase.
    pub phase: String,
}

/// A phase's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Name.
    pub name: String,
    /// No fault but loss or key rotation.
    pub benign: bool,
    /// Its fault kinds.
    pub faults: Vec<String>,
    /// Healthy nodes declared dead.
    pub false_positives: usize,
    /// Nodes declared dead after the cut that had taken them away healed,
    /// within the heal allowance: on evidence from before the heal.
    #[serde(default)]
    pub deaths_at_heal: usize,
    /// Nodes declared dead after the cut that had taken them away healed,
    /// past the heal allowance: false deaths.
    #[serde(default)]
    pub deaths_after_heal: usize,
    /// Healthy nodes seen suspect (episodes).
    pub false_suspicions: usize,
    /// Seconds from the end of its last fault to full convergence; `None`:
    /// not before the phase ended.
    pub converged_after: Option<f64>,
}

/// A fault's detection figures (seconds from its start).
///
/// The figures are [`swim_core::detection::Detection`]'s, as the simulator
/// reports them too. Here the observers are the nodes a fault's targets
/// should reach; a declaration is a `failed` event (or `leave`, for a
/// leave), seen when printed; a suspicion is seen only in a `members` poll,
/// so one shorter than the poll interval can be missed (then the
/// declaration after it stands in). The simulator sees every record change
/// of every live node at once, and its last declaration waits for the
/// nodes live at that moment, not for a fixed set of observers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    /// The phase's name.
    pub phase: String,
    /// Kind.
    pub kind: String,
    /// What it did.
    pub label: String,
    /// Start (s from the first phase).
    pub start: f64,
    /// First suspicion: a target first seen suspect by an observer, or
    /// declared, whichever came first.
    pub first_suspect: Option<f64>,
    /// First declaration (`failed`, or `leave` for a leave).
    pub first_dead: Option<f64>,
    /// Last declaration: the last observer-target pair's first declaration,
    /// if every pair whose observer ran throughout declared.
    pub all_dead: Option<f64>,
    /// Pairs that declared.
    pub declared: usize,
    /// Pairs expected to (observers live throughout).
    pub pairs: usize,
}

/// A run's figures and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Setup.
    pub meta: Meta,
    /// Per phase.
    pub phases: Vec<PhaseReport>,
    /// Per fault.
    pub faults: Vec<FaultReport>,
    /// Every false positive.
    pub false_positives: Vec<Declaration>,
    /// Every declaration about a node made after the cut that had taken it
    /// away healed and its heal allowance passed, within the cut's grace
    /// (which excuses it as a false positive): the node had been reachable
    /// for a whole probe round when declared, what a partition heal must
    /// not cause.
    #[serde(default)]
    pub deaths_after_heal: Vec<Declaration>,
    /// Declarations in the heal allowance (on evidence from the cut).
    #[serde(default)]
    pub deaths_at_heal: Vec<Declaration>,
    /// False suspicion episodes in all.
    pub false_suspicions: usize,
    /// Final views that differ from the truth.
    pub final_mismatches: Vec<String>,
    /// Members whose final state a node never reported.
    pub lost_events: Vec<String>,
    /// Commands that failed, and nodes that exited unasked.
    pub problems: Vec<String>,
    /// Why the run fails its checks; empty: it passes.
    pub failures: Vec<String>,
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

struct Judge<'a> {
    r: &'a Record,
    grace: i64,
}

impl Judge<'_> {
    fn ms(d: std::time::Duration) -> i64 {
        d.as_millis() as i64
    }

    /// Whether a declaration about `x` at `t` is excused by a fault.
    fn excused(&self, x: usize, t: i64) -> bool {
        self.r.plan.windows.iter().any(|w| {
            w.excused.contains(&x) && Self::ms(w.start) <= t && t <= Self::ms(w.end) + self.grace
        })
    }

    /// Whether `x` is a healthy live member at `t`.
    fn healthy(&self, x: usize, t: i64) -> bool {
        self.r.up(x, t) && !self.excused(x, t)
    }

    /// Whether a declaration about `x` at `t`, excused, is excused only by
    /// the grace after a cut healed, `allowance` ms after it: `x` was up
    /// and reachable again.
    fn after_heal(&self, x: usize, t: i64, allowance: i64) -> bool {
        let away = self.r.plan.windows.iter().any(|w| {
            let end = Self::ms(w.end)
                + if w.kind == "partition" {
                    allowance
                } else {
                    self.grace
                };
            w.excused.contains(&x) && Self::ms(w.start) <= t && t <= end
        });
        self.r.up(x, t) && self.excused(x, t) && !away
    }

    fn phase_of(&self, t: i64) -> String {
        if t < 0 {
            return "startup".into();
        }
        self.r
            .plan
            .phases
            .iter()
            .find(|p| t < Self::ms(p.end))
            .map_or_else(|| "end".into(), |p| p.name.clone())
    }

    /// Until when a declaration can be the fault's doing: a crash or leave,
    /// to its grace or its phase's end; a stall, starvation or partition is
    /// detected while it lasts (3 s allowed for a woken node's output).
    fn horizon(&self, w: &Window) -> i64 {
        match w.kind.as_str() {
            "crash" | "leave" => {
                (Self::ms(w.end) + self.grace).max(Self::ms(self.r.plan.phases[w.phase].end))
            }
            _ => Self::ms(w.end) + 3_000,
        }
    }

    fn fault(&self, w: &Window) -> FaultReport {
        let start = Self::ms(w.start);
        let horizon = self.horizon(w);
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for &o in &w.observers {
            for &x in &w.targets {
                pairs.push((o, x));
                if w.mutual {
                    pairs.push((x, o));
                }
            }
        }
        // Observers live throughout (one process from start to horizon).
        let steady = |o: usize| match (self.r.life_at(o, start), self.r.life_at(o, horizon - 1)) {
            (Some(a), Some(b)) => a.gen == b.gen,
            _ => false,
        };
        let in_pairs = |o: usize, x: usize| pairs.contains(&(o, x));
        let wanted = |k: EventKind| match w.kind.as_str() {
            "leave" => matches!(k, EventKind::Leave | EventKind::Failed),
            _ => k == EventKind::Failed,
        };
        let declarations: Vec<(i64, usize, usize)> = self
            .r
            .events
            .iter()
            .filter(|e| e.t >= start && e.t <= horizon && wanted(e.kind))
            .filter(|e| in_pairs(e.observer, e.subject))
            .filter(|e| {
                self.r
                    .life_at(e.observer, e.t)
                    .is_some_and(|l| l.gen == e.gen)
            })
            .map(|e| (e.t, e.observer, e.subject))
            .collect();
        let mut figures = Detection::default();
        for d in &declarations {
            figures.declared(d.0);
        }
        for p in self
            .r
            .polls
            .iter()
            .filter(|p| p.t >= start && p.t <= horizon)
        {
            if p.members.iter().any(|&(x, s)| s && in_pairs(p.observer, x)) {
                figures.suspected(p.t);
            }
        }
        let counted: Vec<(usize, usize)> =
            pairs.iter().copied().filter(|&(o, _)| steady(o)).collect();
        let mut last = None;
        let mut declared = 0;
        for &(o, x) in &counted {
            if let Some(t) = declarations
                .iter()
                .filter(|d| d.1 == o && d.2 == x)
                .map(|d| d.0)
                .min()
            {
                declared += 1;
                last = last.max(Some(t));
            }
        }
        if let Some(last) = last.filter(|_| declared == counted.len()) {
            figures.all_declared(last);
        }
        FaultReport {
            phase: self.r.plan.phases[w.phase].name.clone(),
            kind: w.kind.clone(),
            label: w.label.clone(),
            start: secs(start),
            first_suspect: figures.first_suspect().map(|t| secs(t - start)),
            first_dead: figures.first_dead().map(|t| secs(t - start)),
            all_dead: figures.all_dead().map(|t| secs(t - start)),
            declared,
            pairs: counted.len(),
        }
    }

    /// Whether round `r` shows every live node listing exactly the live
    /// nodes, none suspect.
    fn converged(&self, round: usize, by_round: &HashMap<(usize, usize), usize>) -> bool {
        let t = self.r.rounds[round];
        let live: Vec<usize> = (0..self.r.n()).filter(|&i| self.r.up(i, t)).collect();
        live.iter().all(|&o| {
            by_round.get(&(o, round)).is_some_and(|&pi| {
                let p = &self.r.polls[pi];
                p.members.len() == live.len()
                    && p.members.iter().all(|&(m, s)| !s && live.contains(&m))
            })
        })
    }
}

/// Judges a record.
pub fn analyze(r: &Record) -> Report {
    let j = Judge {
        r,
        grace: r.meta.grace,
    };
    let n = r.n();
    // Answers by (observer, round), from the observer's process at that round.
    let mut by_round = HashMap::new();
    for (pi, p) in r.polls.iter().enumerate() {
        let sent = r.rounds.get(p.round).copied().unwrap_or(p.t);
        if r.life_at(p.observer, sent).is_some_and(|l| l.gen == p.gen) {
            by_round.insert((p.observer, p.round), pi);
        }
    }

    // False positives, and declarations after a heal.
    let mut false_positives = Vec::new();
    let mut deaths_after_heal = Vec::new();
    let mut deaths_at_heal = Vec::new();
    for e in &r.events {
        if e.kind != EventKind::Failed {
            continue;
        }
        let observer_live = r.life_at(e.observer, e.t).is_some_and(|l| l.gen == e.gen);
        let list = if !observer_live {
            continue;
        } else if j.healthy(e.subject, e.t) {
            &mut false_positives
        } else if j.after_heal(e.subject, e.t, r.meta.heal_allowance) {
            &mut deaths_after_heal
        } else if j.after_heal(e.subject, e.t, 0) {
            &mut deaths_at_heal
        } else {
            continue;
        };
        list.push(Declaration {
            t: secs(e.t),
            observer: node_name(e.observer),
            subject: node_name(e.subject),
            phase: j.phase_of(e.t),
        });
    }
    // False suspicions, by episode.
    let mut episodes: HashMap<String, usize> = HashMap::new();
    let mut last: HashMap<(usize, usize), usize> = HashMap::new();
    for p in &r.polls {
        if r.life_at(p.observer, p.t).is_none_or(|l| l.gen != p.gen) {
            continue;
        }
        for &(x, suspect) in &p.members {
            if !suspect || !j.healthy(x, p.t) {
                continue;
            }
            let key = (p.observer, x);
            let continuing = last.get(&key).is_some_and(|&r0| r0 + 1 == p.round);
            last.insert(key, p.round);
            if !continuing {
                *episodes.entry(j.phase_of(p.t)).or_default() += 1;
            }
        }
    }

    let faults: Vec<FaultReport> = r
        .plan
        .windows
        .iter()
        .filter(|w| {
            matches!(
                w.kind.as_str(),
                "crash" | "leave" | "stall" | "starve" | "partition"
            )
        })
        .map(|w| j.fault(w))
        .collect();

    let mut failures = Vec::new();
    let last_phase = r.plan.phases.len().saturating_sub(1);
    let phases: Vec<PhaseReport> = r
        .plan
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let quiet = Judge::ms(p.quiet);
            let mut end = Judge::ms(p.end);
            if i == last_phase {
                end += 10_000; // the final round comes just after
            }
            let converged_after = (0..r.rounds.len())
                .filter(|&k| r.rounds[k] >= quiet && r.rounds[k] <= end)
                .find(|&k| j.converged(k, &by_round))
                .map(|k| secs(r.rounds[k] - quiet));
            let fp = false_positives.iter().filter(|d| d.phase == p.name).count();
            let healed = deaths_after_heal.iter().filter(|d| d.phase == p.name).count();
            let at_heal = deaths_at_heal.iter().filter(|d| d.phase == p.name).count();
            if r.meta.no_false_deaths && fp + healed > 0 {
                failures.push(format!(
                    "phase {:?}: {fp} healthy node(s) declared dead, {healed} declared after a cut healed",
                    p.name
                ));
            } else if p.benign && fp > 0 {
                failures.push(format!(
                    "{fp} false positive(s) in phase {:?}, which has no fault but loss or key rotation",
                    p.name
                ));
            }
            if converged_after.is_none() {
                failures.push(format!("phase {:?}: the cluster never converged after the faults ended", p.name));
            }
            PhaseReport {
                name: p.name.clone(),
                benign: p.benign,
                faults: p.faults.clone(),
                false_positives: fp,
                deaths_at_heal: at_heal,
                deaths_after_heal: healed,
                false_suspicions: episodes.get(&p.name).copied().unwrap_or(0),
                converged_after,
            }
        })
        .collect();
    let startup_fp = false_positives
        .iter()
        .filter(|d| d.phase == "startup")
        .count();
    if startup_fp > 0 {
        failures.push(format!(
            "{startup_fp} false positive(s) while the cluster formed"
        ));
    }

    // The final round against the truth.
    let mut final_mismatches = Vec::new();
    let mut lost_events = Vec::new();
    if let Some(round) = r.rounds.len().checked_sub(1) {
        let t = r.rounds[round];
        let live: Vec<usize> = (0..n).filter(|&i| r.up(i, t)).collect();
        for &o in &live {
            match by_round.get(&(o, round)) {
                None => final_mismatches
                    .push(format!("{} did not answer the final round", node_name(o))),
                Some(&pi) => {
                    let p = &r.polls[pi];
                    let listed: Vec<usize> = p.members.iter().map(|m| m.0).collect();
                    let missing: Vec<String> = live
                        .iter()
                        .filter(|x| !listed.contains(x))
                        .map(|&x| node_name(x))
                        .collect();
                    let extra: Vec<String> = listed
                        .iter()
                        .filter(|x| !live.contains(x))
                        .map(|&x| node_name(x))
                        .collect();
                    let suspect: Vec<String> = p
                        .members
                        .iter()
                        .filter(|m| m.1)
                        .map(|m| node_name(m.0))
                        .collect();
                    if !(missing.is_empty() && extra.is_empty() && suspect.is_empty()) {
                        final_mismatches.push(format!(
                            "{}: missing [{}], dead or left but listed [{}], suspect [{}]",
                            node_name(o),
                            missing.join(","),
                            extra.join(","),
                            suspect.join(",")
                        ));
                    }
                }
            }
            let Some(gen) = r.life_at(o, t).map(|l| l.gen) else {
                continue;
            };
            for x in (0..n).filter(|&x| x != o) {
                let last_event = r
                    .events
                    .iter()
                    .filter(|e| e.observer == o && e.gen == gen && e.subject == x)
                    .map(|e| e.kind)
                    .next_back();
                let alive = live.contains(&x);
                let reported_alive =
                    matches!(last_event, Some(EventKind::Join | EventKind::Update));
                if alive && !reported_alive {
                    lost_events.push(format!(
                        "{} never reported {} alive (last event: {:?})",
                        node_name(o),
                        node_name(x),
                        last_event
                    ));
                } else if !alive && reported_alive {
                    lost_events.push(format!(
                        "{} never reported that {} died or left",
                        node_name(o),
                        node_name(x)
                    ));
                }
            }
        }
    }
    if !final_mismatches.is_empty() {
        failures.push(format!(
            "{} final view(s) differ from the truth",
            final_mismatches.len()
        ));
    }
    if !lost_events.is_empty() {
        failures.push(format!("{} lost event(s)", lost_events.len()));
    }
    let mut problems: Vec<String> = r
        .errors
        .iter()
        .map(|e| {
            format!(
                "{} at {:.1}s: {}: {}",
                node_name(e.node),
                secs(e.t),
                e.command,
                e.error
            )
        })
        .collect();
    problems.extend(r.notes.iter().cloned());
    if !problems.is_empty() {
        failures.push(format!(
            "{} failed command(s) or unasked exit(s)",
            problems.len()
        ));
    }
    Report {
        meta: r.meta.clone(),
        phases,
        faults,
        false_suspicions: episodes.values().sum(),
        false_positives,
        deaths_after_heal,
        deaths_at_heal,
        final_mismatches,
        lost_events,
        problems,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::node::Kind;
    use crate::plan::{PhaseSpan, Plan};
    use crate::record::{Ended, Event, Life, Poll};

    fn phase(name: &str, start: u64, quiet: u64, end: u64, benign: bool) -> PhaseSpan {
        PhaseSpan {
            name: name.into(),
            start: Duration::from_secs(start),
            quiet: Duration::from_secs(quiet),
            end: Duration::from_secs(end),
            benign,
            faults: Vec::new(),
        }
    }

    /// Three nodes; n2 crashes at 10 s (phase "crash", 10–30 s) after a
    /// benign phase (0–10 s). Rounds every second; views follow `view`.
    fn record(view: impl Fn(usize, i64) -> Vec<(usize, bool)>, events: Vec<Event>) -> Record {
        let window = Window {
            phase: 1,
            kind: "crash".into(),
            label: "crash n02".into(),
            targets: vec![2],
            observers: vec![0, 1],
            mutual: false,
            excused: vec![2],
            start: Duration::from_secs(10),
            end: Duration::from_secs(10),
        };
        let rounds: Vec<i64> = (0..=31).map(|s| s * 1000).collect();
        let mut polls = Vec::new();
        for (round, &t) in rounds.iter().enumerate() {
            for o in 0..3usize {
                if o == 2 && t >= 10_000 {
                    continue;
                }
                polls.push(Poll {
                    round,
                    t: t + 5,
                    observer: o,
                    gen: 0,
                    members: view(o, t),
                });
            }
        }
        Record {
            meta: Meta {
                scenario: "t".into(),
                mix: "rust".into(),
                kinds: vec![Kind::Tokio; 3],
                seed: 1,
                lifeguard: true,
                preset: "lan".into(),
                grace: 5_000,
                no_false_deaths: false,
                heal_allowance: 1_500,
                formed_in: 1_000,
            },
            plan: Plan {
                steps: Vec::new(),
                windows: vec![window],
                phases: vec![
                    phase("calm", 0, 0, 10, true),
                    phase("crash", 10, 10, 30, false),
                ],
                end: Duration::from_secs(30),
            },
            lives: vec![
                Life {
                    node: 0,
                    gen: 0,
                    start: -5000,
                    end: None,
                    ended: None,
                },
                Life {
                    node: 1,
                    gen: 0,
                    start: -5000,
                    end: None,
                    ended: None,
                },
                Life {
                    node: 2,
                    gen: 0,
                    start: -5000,
                    end: Some(10_000),
                    ended: Some(Ended::Crash),
                },
            ],
            rounds,
            events,
            polls,
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn ev(t: i64, observer: usize, kind: EventKind, subject: usize) -> Event {
        Event {
            t,
            observer,
            gen: 0,
            kind,
            subject,
        }
    }

    fn joins() -> Vec<Event> {
        let mut v = Vec::new();
        for o in 0..3 {
            for x in 0..3 {
                if o != x {
                    v.push(ev(-4000, o, EventKind::Join, x));
                }
            }
        }
        v
    }

    /// n2 suspect from 12 s, gone from views at 16 s (n0) and 18 s (n1).
    fn good_view(o: usize, t: i64) -> Vec<(usize, bool)> {
        let gone = if o == 0 { 16_000 } else { 18_000 };
        let mut v = vec![(0, false), (1, false)];
        if t < gone {
            v.push((2, (12_000..gone).contains(&t)));
        }
        v
    }

    #[test]
    fn a_clean_crash_is_measured_and_passes() {
        let mut events = joins();
        events.push(ev(16_000, 0, EventKind::Failed, 2));
        events.push(ev(18_000, 1, EventKind::Failed, 2));
        let report = analyze(&record(good_view, events));
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let f = &report.faults[0];
        assert_eq!(f.first_suspect, Some(2.005));
        assert_eq!(f.first_dead, Some(6.0));
        assert_eq!(f.all_dead, Some(8.0));
        assert_eq!((f.declared, f.pairs), (2, 2));
        assert_eq!(report.phases[0].converged_after, Some(0.0));
        assert_eq!(report.phases[1].converged_after, Some(8.0));
        assert_eq!(report.false_suspicions, 0);
    }

    #[test]
    fn a_healthy_node_declared_dead_in_a_benign_phase_fails() {
        let mut events = joins();
        events.push(ev(5_000, 0, EventKind::Failed, 1));
        events.push(ev(5_500, 0, EventKind::Join, 1));
        events.push(ev(16_000, 0, EventKind::Failed, 2));
        events.push(ev(18_000, 1, EventKind::Failed, 2));
        // n0 sees n1 suspect at 3 and 4 s (one episode), and at 7 s (another).
        let view = |o: usize, t: i64| {
            let mut v = good_view(o, t);
            if o == 0 && [3_000, 4_000, 7_000].contains(&t) {
                v[1].1 = true;
            }
            v
        };
        let report = analyze(&record(view, events));
        assert_eq!(report.false_positives.len(), 1);
        assert_eq!(report.false_positives[0].phase, "calm");
        assert_eq!(report.phases[0].false_suspicions, 2);
        assert!(
            report.failures.iter().any(|f| f.contains("calm")),
            "{:?}",
            report.failures
        );
    }

    #[test]
    fn a_declaration_after_a_cut_healed_is_a_death_after_heal() {
        let mut events = joins();
        events.push(ev(16_000, 0, EventKind::Failed, 2));
        events.push(ev(18_000, 1, EventKind::Failed, 2));
        // n1 cut from n0 from 20 to 24 s: n0 declares n1 dead at 23 s (while
        // cut: excused), at 25 s (in the 1.5 s allowance: at the heal) and
        // at 26 s (healed: not excused).
        events.push(ev(23_000, 0, EventKind::Failed, 1));
        events.push(ev(23_500, 0, EventKind::Join, 1));
        events.push(ev(25_000, 0, EventKind::Failed, 1));
        events.push(ev(25_200, 0, EventKind::Join, 1));
        events.push(ev(26_000, 0, EventKind::Failed, 1));
        events.push(ev(26_500, 0, EventKind::Join, 1));
        let mut r = record(good_view, events);
        r.plan.windows.push(Window {
            phase: 1,
            kind: "partition".into(),
            label: "partition n01".into(),
            targets: vec![1],
            observers: vec![0],
            mutual: true,
            excused: vec![0, 1, 2],
            start: Duration::from_secs(20),
            end: Duration::from_secs(24),
        });
        let report = analyze(&r);
        assert!(report.false_positives.is_empty());
        assert_eq!(report.deaths_after_heal.len(), 1);
        assert_eq!(report.deaths_after_heal[0].t, 26.0);
        assert_eq!(report.deaths_at_heal.len(), 1);
        assert_eq!(report.deaths_at_heal[0].t, 25.0);
        assert_eq!(report.phases[1].deaths_after_heal, 1);
        assert!(
            !report
                .failures
                .iter()
                .any(|f| f.contains("after a cut healed")),
            "counted, not failed, unless the scenario asks"
        );
        r.meta.no_false_deaths = true;
        let report = analyze(&r);
        assert!(
            report
                .failures
                .iter()
                .any(|f| f.contains("1 declared after a cut healed")),
            "{:?}",
            report.failures
        );
    }

    #[test]
    fn a_missed_death_is_a_lost_event_and_a_stale_view_never_converges() {
        let mut events = joins();
        events.push(ev(16_000, 0, EventKind::Failed, 2));
        // n1 never reports n2's death and keeps listing it.
        let view = |o: usize, t: i64| {
            let mut v = good_view(o, t);
            if o == 1 && v.len() == 2 {
                v.push((2, false));
            }
            v
        };
        let report = analyze(&record(view, events));
        assert_eq!(report.lost_events.len(), 1, "{:?}", report.lost_events);
        assert_eq!(report.final_mismatches.len(), 1);
        assert_eq!(report.phases[1].converged_after, None);
        assert_eq!(report.faults[0].all_dead, None);
        assert_eq!(report.faults[0].declared, 1);
        assert!(report.failures.len() >= 3, "{:?}", report.failures);
    }

    #[test]
    fn the_crashed_node_declared_dead_is_no_false_positive() {
        let mut events = joins();
        events.push(ev(16_000, 0, EventKind::Failed, 2));
        events.push(ev(18_000, 1, EventKind::Failed, 2));
        let report = analyze(&record(good_view, events));
        assert!(report.false_positives.is_empty());
    }
}
