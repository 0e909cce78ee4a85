//! The applications' invariants, checked when the scenario asks, and the
//! context kept for the failures they (and the protocol's rules) report.

use crate::app::{Apps, Check, Granularity, View};
use crate::naming::node_index;
use crate::report::FailureContext;
use crate::scenario::Scenario;
use crate::time::nanos;

use super::{Ev, Simulation};

/// Failures whose nodes' histories are kept.
const CONTEXTS: usize = 3;

/// How far back a failure's context reaches (ns).
const CONTEXT_SPAN: u64 = 10_000_000_000;

/// Which checks are still to come.
#[derive(Debug, Default)]
pub(super) struct AppChecks {
    /// Some invariant is checked after every step.
    pub(super) always: bool,
    /// ... and after every application callback.
    pub(super) exact: bool,
    /// The converged checks are still to run (once the run is quiet).
    pub(super) converged_pending: bool,
    /// The settled checks still to run: how long nothing must change.
    pub(super) settled_pending: Vec<u64>,
    /// When the settle check is scheduled (ns), if it is.
    pub(super) settle_at: Option<u64>,
    /// When the last disturbance ends (ns).
    pub(super) quiet_from: u64,
    /// The end-of-run checks ran.
    pub(super) ended: bool,
    /// Violations whose context has been taken.
    pub(super) contexts_taken: usize,
    /// Liveness checks not yet held: (invariant, from, deadline), in ns.
    pub(super) eventually: Vec<(usize, u64, u64)>,
}

impl AppChecks {
    pub(super) fn new(sc: &Scenario) -> AppChecks {
        let always = sc.invariants.iter().any(|inv| inv.when == Check::Always);
        let mut settled: Vec<u64> = sc
            .invariants
            .iter()
            .filter_map(|inv| match inv.when {
                Check::Settled(d) => Some(nanos(d)),
                _ => None,
            })
            .collect();
        settled.sort_unstable();
        settled.dedup();
        AppChecks {
            always,
            exact: always && sc.granularity == Granularity::Callback,
            converged_pending: sc.invariants.iter().any(|inv| inv.when == Check::Converged),
            settled_pending: settled,
            settle_at: None,
            quiet_from: sc.quiet_from().map_or(u64::MAX, nanos),
            ended: false,
            contexts_taken: 0,
            eventually: sc
                .invariants
                .iter()
                .enumerate()
                .filter_map(|(k, inv)| match inv.when {
                    Check::Eventually { from, within } => {
                        Some((k, nanos(from), nanos(from + within)))
                    }
                    _ => None,
                })
                .collect(),
        }
    }
}

impl Simulation {
    /// After each step: the `Always` checks, the `Converged` ones the first
    /// time the cluster has converged after the last disturbance, the
    /// settle check scheduled, the new failures' context taken.
    pub(super) fn after_step(&mut self) {
        if self.checks.always {
            self.check_apps(Check::Always);
        }
        let quiet = self.now >= self.checks.quiet_from;
        if self.checks.converged_pending && quiet && self.tracker.converged() && self.settled() {
            self.checks.converged_pending = false;
            self.check_apps(Check::Converged);
        }
        if let Some(&d) = self.checks.settled_pending.first() {
            let at = self.quiet_since().saturating_add(d);
            if at <= self.now {
                self.check_settled();
            } else if self.checks.settle_at != Some(at) && at <= self.end {
                self.checks.settle_at = Some(at);
                self.push(at, Ev::Settle(at));
            }
        }
        if self.checks.eventually.iter().any(|e| self.now >= e.1) {
            self.check_eventually(None);
        }
        self.take_contexts();
    }

    /// Runs the liveness checks that are due; those that hold are done.
    /// At `deadline`, the ones of that deadline that still do not hold fail.
    pub(super) fn check_eventually(&mut self, deadline: Option<u64>) {
        let now = self.now;
        let mut pending = std::mem::take(&mut self.checks.eventually);
        let apps = self.apps();
        let mut failed = Vec::new();
        let invariants = &self.sc.invariants;
        pending.retain(|&(k, from, until)| {
            if now < from {
                return true;
            }
            match (invariants[k].check)(&apps) {
                Ok(()) => false,
                Err(f) if deadline == Some(until) => {
                    failed.push((k, until - from, f));
                    false
                }
                Err(_) => true,
            }
        });
        self.checks.eventually = pending;
        for (k, within, f) in failed {
            let rule = self.sc.invariants[k].name.clone();
            let detail = format!(
                "did not hold within {:?} after healing: {}",
                std::time::Duration::from_nanos(within),
                f.detail
            );
            self.app_violation(now, &rule, &f.nodes, detail);
        }
    }

    /// Since when nothing has changed: the last member change, or
    /// application command, disk write or user message, on any node, and
    /// not before the last disturbance (ns).
    fn quiet_since(&self) -> u64 {
        let apps = self
            .nodes
            .iter()
            .filter_map(|n| n.machine.as_ref().map(|m| m.last_active))
            .max()
            .unwrap_or(0);
        apps.max(self.tracker.last_change)
            .max(self.checks.quiet_from)
    }

    /// A settle check scheduled for `at` is due (unless something changed
    /// since, and it was scheduled again).
    pub(super) fn settle(&mut self, at: u64) {
        if self.checks.settle_at == Some(at) {
            self.checks.settle_at = None;
            self.check_settled();
        }
    }

    /// Runs the settled checks of every delay the run has been quiet for,
    /// if the cluster has converged (else a later step tries again).
    fn check_settled(&mut self) {
        if !(self.tracker.converged() && self.settled()) {
            return;
        }
        let quiet_for = self.now - self.quiet_since().min(self.now);
        let due: Vec<u64> = self
            .checks
            .settled_pending
            .iter()
            .copied()
            .filter(|&d| d <= quiet_for)
            .collect();
        self.checks.settled_pending.retain(|&d| d > quiet_for);
        for d in due {
            self.check_apps(Check::Settled(std::time::Duration::from_nanos(d)));
        }
    }

    /// Whether every live node lists exactly the live nodes as members:
    /// each sees every live node alive (the tracker's convergence) and
    /// lists no more than that many.
    fn settled(&self) -> bool {
        let live = self.tracker.live_count;
        self.nodes
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.tracker.live[i])
            .all(|(_, n)| n.swim.as_ref().is_some_and(|s| s.num_members() == live))
    }

    /// Every node's application as invariants read it, now.
    pub(super) fn apps(&self) -> Apps<'_> {
        Apps {
            now: self.now,
            view: View::of(&self.nodes),
            live: &self.tracker.live,
            stalled_until: &self.tracker.disturbances.stalled_until,
            net: &self.net,
        }
    }

    /// Runs the invariants declared for `when`; each failure is a violation.
    pub(super) fn check_apps(&mut self, when: Check) {
        if self.sc.invariants.iter().all(|inv| inv.when != when) {
            return;
        }
        let apps = self.apps();
        let failures: Vec<_> = self
            .sc
            .invariants
            .iter()
            .filter(|inv| inv.when == when)
            .filter_map(|inv| (inv.check)(&apps).err().map(|f| (inv.name.clone(), f)))
            .collect();
        for (name, failure) in failures {
            self.app_violation(self.now, &name, &failure.nodes, failure.detail);
        }
    }

    /// Records a broken application invariant about `nodes` at `at`.
    pub(super) fn app_violation(&mut self, at: u64, rule: &str, nodes: &[usize], detail: String) {
        let observer = nodes.first().copied();
        let member = nodes.get(1).copied();
        self.tracker.violate(at, rule, observer, member, detail);
    }

    /// Keeps the histories of the nodes the first few violations name,
    /// around their time.
    pub(super) fn take_contexts(&mut self) {
        while self.checks.contexts_taken < self.tracker.violations.len().min(CONTEXTS) {
            let v = &self.tracker.violations[self.checks.contexts_taken];
            self.checks.contexts_taken += 1;
            let at = nanos(std::time::Duration::from_secs_f64(v.time_s));
            // The float round trip may lose a nanosecond.
            let to = at.saturating_add(1);
            let from = to.saturating_sub(CONTEXT_SPAN);
            let mut nodes: Vec<usize> = [&v.observer, &v.member]
                .into_iter()
                .flatten()
                .filter_map(|n| node_index(n))
                .filter(|&i| i < self.nodes.len())
                .collect();
            nodes.dedup();
            let names: Vec<String> = nodes.iter().map(|&i| crate::naming::node_name(i)).collect();
            if self
                .contexts
                .iter()
                .any(|c| c.rule == v.rule && c.nodes == names)
            {
                continue; // the same failure again
            }
            let context = FailureContext {
                rule: v.rule.clone(),
                time_s: v.time_s,
                nodes: names,
                moments: {
                    let mut m: Vec<_> = nodes
                        .iter()
                        .flat_map(|&i| self.nodes[i].history.between(i, from, to))
                        .collect();
                    m.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
                    m
                },
            };
            self.contexts.push(context);
        }
    }
}
