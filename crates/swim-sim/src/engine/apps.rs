//! The applications' invariants, checked when the scenario asks.

use crate::app::{Apps, Check};

use super::Simulation;

/// Which checks are still to come.
#[derive(Debug, Default)]
pub(super) struct AppChecks {
    /// Some invariant is checked after every step.
    pub(super) always: bool,
    /// The converged checks are still to run (once the run is quiet).
    pub(super) converged_pending: bool,
    /// When the last disturbance ends (ns).
    pub(super) quiet_from: u64,
}

impl Simulation {
    /// After each step: the `Always` checks, and the `Converged` ones the
    /// first time the cluster has converged after the last disturbance.
    pub(super) fn after_step(&mut self) {
        if self.checks.always {
            self.check_apps(Check::Always);
        }
        if self.checks.converged_pending
            && self.now >= self.checks.quiet_from
            && self.tracker.converged()
            && self.settled()
        {
            self.checks.converged_pending = false;
            self.check_apps(Check::Converged);
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

    /// Runs the invariants declared for `when`; each failure is a violation.
    pub(super) fn check_apps(&mut self, when: Check) {
        if self.sc.invariants.iter().all(|inv| inv.when != when) {
            return;
        }
        let apps = Apps {
            now: self.now,
            apps: self
                .nodes
                .iter()
                .map(|n| n.app.as_ref().map(|h| &*h.app))
                .collect(),
            swims: self.nodes.iter().map(|n| n.swim.as_deref()).collect(),
            live: &self.tracker.live,
        };
        let failures: Vec<_> = self
            .sc
            .invariants
            .iter()
            .filter(|inv| inv.when == when)
            .filter_map(|inv| (inv.check)(&apps).err().map(|f| (inv.name.clone(), f)))
            .collect();
        drop(apps);
        for (name, failure) in failures {
            let observer = failure.nodes.first().copied();
            let member = failure.nodes.get(1).copied();
            self.tracker
                .violate(self.now, &name, observer, member, failure.detail);
        }
    }
}
