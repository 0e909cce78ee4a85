//! Faults: nodes chosen and crashed, restarted, stalled, slowed, made to
//! leave or update their metadata; partitions and loss.

use swim_core::Instant;

use super::{Ev, Simulation};
use crate::history::What;
use crate::naming::node_name;
use crate::network::Partition;
use crate::node::{Status, NONE};
use crate::scenario::{Action, Fault};
use crate::time::{nanos, secs};

impl Simulation {
    // ============================================================ faults

    /// Up to `k` random nodes among those `eligible`.
    pub(super) fn choose(
        &mut self,
        k: usize,
        eligible: impl Fn(&Simulation, usize) -> bool,
    ) -> Vec<usize> {
        let pool: Vec<usize> = (0..self.sc.nodes).filter(|&i| eligible(self, i)).collect();
        let mut picked = self.rng.pick(&pool, k);
        picked.sort_unstable();
        picked
    }

    pub(super) fn applied(&mut self, what: String, nodes: &[usize]) {
        self.trace.bytes(what.as_bytes());
        for &i in nodes {
            self.trace.u64(i as u64);
        }
        self.faults_applied.push((
            secs(self.now),
            what,
            nodes.iter().map(|&i| node_name(i)).collect(),
        ));
    }

    pub(super) fn apply_fault(&mut self, idx: usize) {
        let f = self.sc.faults[idx].clone();
        let n = self.sc.nodes;
        let live = |s: &Simulation, i: usize| s.tracker.live[i];
        match f {
            Fault::Crash { amount, .. } => {
                let v = self.choose(amount.of(n), live);
                self.applied("crash".into(), &v);
                for i in v {
                    self.stop_node(i, true);
                }
            }
            Fault::Restart {
                amount, down_for, ..
            } => {
                let v = self.choose(amount.of(n), live);
                self.applied(format!("restart after {down_for:?}"), &v);
                for i in v {
                    self.stop_node(i, true);
                    let life = self.nodes[i].life;
                    self.push(self.now + nanos(down_for), Ev::Restart(i as u32, life));
                }
            }
            Fault::Leave {
                amount, timeout, ..
            } => {
                let v = self.choose(amount.of(n), |s, i| {
                    s.tracker.live[i] && s.nodes[i].status == Status::Up
                });
                self.applied("leave".into(), &v);
                for i in v {
                    self.tracker.leave(self.now, i);
                    self.command(i, |s, now| s.leave(now, timeout));
                }
            }
            Fault::Stall {
                amount,
                duration,
                every,
                ..
            } => {
                let v = self.choose(amount.of(n), |s, i| {
                    s.tracker.live[i] && s.nodes[i].status == Status::Up
                });
                self.applied(format!("stall for {duration:?} every {every:?}"), &v);
                for i in v {
                    let life = self.nodes[i].life;
                    let ev = Ev::StallStart {
                        node: i as u32,
                        life,
                        duration: nanos(duration),
                        every: every.map(nanos),
                    };
                    match every {
                        // Repeating stalls start at a random phase per node.
                        Some(p) => {
                            let at = self.now + self.rng.below(nanos(p).max(1));
                            self.push(at, ev);
                        }
                        None => self.dispatch(ev),
                    }
                }
            }
            Fault::Slow {
                amount,
                duration,
                delay,
                ..
            } => {
                let v = self.choose(amount.of(n), live);
                self.applied(format!("slow by {delay:?} for {duration:?}"), &v);
                for &i in &v {
                    self.nodes[i].slow = (self.now + nanos(duration), nanos(delay));
                    self.tracker.disturbances.stalled_until[i] = self.now + nanos(duration);
                }
            }
            Fault::Partition {
                amount,
                duration,
                one_way,
                links,
                ..
            } => {
                let k = amount.of(n);
                let all: Vec<usize> = (0..n).collect();
                let mut side = self.rng.pick(&all, k);
                side.sort_unstable();
                let mut bits = vec![0u64; n.div_ceil(64)];
                for &i in &side {
                    bits[i / 64] |= 1 << (i % 64);
                }
                let until = self.now + nanos(duration);
                self.net.partitions.push(Partition {
                    side_a: bits.clone(),
                    one_way,
                    links,
                    salt: self.rng.next_u64(),
                    from: self.now,
                    until,
                });
                self.tracker
                    .disturbances
                    .partitions
                    .push((self.now, until, bits));
                self.applied(
                    format!(
                        "partition for {duration:?}{}{}",
                        if one_way { ", one way" } else { "" },
                        if links < 1.0 {
                            format!(", {:.0}% of links", links * 100.0)
                        } else {
                            String::new()
                        }
                    ),
                    &side,
                );
            }
            Fault::Loss { rate, duration, .. } => {
                self.net.bursts.push((rate, self.now + nanos(duration)));
                self.applied(format!("loss {:.1}% for {duration:?}", rate * 100.0), &[]);
            }
            Fault::UpdateMeta { amount, .. } => {
                let v = self.choose(amount.of(n), |s, i| {
                    s.tracker.live[i] && s.nodes[i].status == Status::Up
                });
                self.applied("update meta".into(), &v);
                let tag = self.now;
                for i in v {
                    let meta = format!("meta@{tag}");
                    self.command(i, |s, now| {
                        let _ = s.update_meta(now, meta.as_bytes());
                    });
                }
            }
        }
    }

    /// Stops node `i`'s process (a crash, or the shutdown after a leave).
    pub(super) fn stop_node(&mut self, i: usize, crash: bool) {
        if self.nodes[i].status == Status::Down {
            return;
        }
        if crash {
            self.nodes[i].crashed = true;
            if let Some(m) = self.nodes[i].machine.as_deref_mut() {
                m.disk.crash();
            }
        }
        let tally = self.nodes[i].stop(i, self.now);
        self.counters.stopped.add(&tally);
        self.tracker.stop(self.now, i, crash);
    }

    pub(super) fn begin_stall(&mut self, i: usize, duration: u64) {
        let life = self.nodes[i].life;
        let node = &mut self.nodes[i];
        node.status = Status::Stalled;
        node.timer_at = NONE;
        node.history.note(self.now, What::Stalled, None, 0);
        node.trace.u64(0x5354_414c ^ i as u64);
        self.tracker.disturbances.stalled_until[i] = u64::MAX;
        self.push(self.now + duration, Ev::StallEnd(i as u32, life));
    }

    pub(super) fn end_stall(&mut self, i: usize, life: u32) {
        let node = &mut self.nodes[i];
        if node.life != life || node.status != Status::Stalled {
            return;
        }
        node.status = Status::Up;
        self.tracker.disturbances.stalled_until[i] = self.now;
        self.with_node(i, |job, sh, now| job.resume(sh, now));
    }

    pub(super) fn disseminate(&mut self) {
        let v = self.choose(1, |s, i| {
            s.tracker.live[i] && s.nodes[i].status == Status::Up
        });
        let Some(&m) = v.first() else { return };
        self.applied("disseminate".into(), &v);
        let Some(s) = self.nodes[m].swim.as_mut() else {
            return;
        };
        let _ = s.update_meta(Instant::from_nanos(self.now), b"disseminated");
        let inc = s.local_node().incarnation;
        self.tracker.follow(self.now, m, inc);
        self.process(m);
    }
}

/// Faults at run time, aimed at chosen nodes: from a test driving the run
/// with [`run_until`](Simulation::run_until), or from the scenario's
/// [`aimed`](crate::Scenario::aimed) faults. Each is hashed into the trace
/// and listed in the report's faults, as a scheduled fault is; none draws
/// randomness.
impl Simulation {
    /// The nodes whose application is an `A` for which `pick` holds, now.
    pub fn nodes_where<A: crate::Application>(
        &self,
        pick: impl Fn(usize, &A) -> bool,
    ) -> Vec<usize> {
        (0..self.sc.nodes)
            .filter(|&i| self.app::<A>(i).is_some_and(|a| pick(i, a)))
            .collect()
    }

    /// Crashes `nodes` now.
    pub fn crash(&mut self, nodes: &[usize]) {
        let v = self.running(nodes);
        self.applied("crash (aimed)".into(), &v);
        for i in v {
            self.stop_node(i, true);
        }
    }

    /// Crashes `nodes` now; they restart `down_for` later.
    pub fn restart(&mut self, nodes: &[usize], down_for: std::time::Duration) {
        let v = self.running(nodes);
        self.applied(format!("restart after {down_for:?} (aimed)"), &v);
        for i in v {
            self.stop_node(i, true);
            let life = self.nodes[i].life;
            self.push(self.now + nanos(down_for), Ev::Restart(i as u32, life));
        }
    }

    /// Stalls `nodes` for `duration` from now.
    pub fn stall(&mut self, nodes: &[usize], duration: std::time::Duration) {
        let v: Vec<usize> = self
            .running(nodes)
            .into_iter()
            .filter(|&i| self.nodes[i].status == Status::Up)
            .collect();
        self.applied(format!("stall for {duration:?} (aimed)"), &v);
        for i in v {
            self.begin_stall(i, nanos(duration));
        }
    }

    /// Cuts `side` off from every other node, both ways, for `duration`.
    pub fn partition(&mut self, side: &[usize], duration: std::time::Duration) {
        let n = self.sc.nodes;
        let mut side: Vec<usize> = side.iter().copied().filter(|&i| i < n).collect();
        side.sort_unstable();
        side.dedup();
        let mut bits = vec![0u64; n.div_ceil(64)];
        for &i in &side {
            bits[i / 64] |= 1 << (i % 64);
        }
        let until = self.now + nanos(duration);
        self.net.partitions.push(Partition {
            side_a: bits.clone(),
            one_way: false,
            links: 1.0,
            salt: 0, // every link is cut: no per-link draw
            from: self.now,
            until,
        });
        self.tracker
            .disturbances
            .partitions
            .push((self.now, until, bits));
        self.applied(format!("partition for {duration:?} (aimed)"), &side);
    }

    /// Ends every fault now: partitions and loss heal, stalls and slowness
    /// end, crashed nodes restart.
    pub fn heal(&mut self) {
        self.applied("heal all".into(), &[]);
        self.net.heal(self.now);
        for p in &mut self.tracker.disturbances.partitions {
            p.1 = p.1.min(self.now);
        }
        for i in 0..self.sc.nodes {
            if self.nodes[i].slow.0 > self.now {
                self.nodes[i].slow = (0, 0);
                self.tracker.disturbances.stalled_until[i] = self.now;
            }
            if self.nodes[i].status == Status::Stalled {
                let life = self.nodes[i].life;
                self.end_stall(i, life);
            }
            if self.nodes[i].status == Status::Down && self.nodes[i].crashed {
                self.start_node(i);
            }
        }
    }

    /// Those of `nodes` whose process runs.
    fn running(&self, nodes: &[usize]) -> Vec<usize> {
        let mut v: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|&i| i < self.sc.nodes && self.nodes[i].status != Status::Down)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Aimed fault `k` of the scenario: its target picks the nodes from
    /// the applications' state now.
    pub(super) fn apply_aimed(&mut self, k: usize) {
        let aimed = self.sc.aimed[k].clone();
        let nodes = match aimed.action {
            Action::HealAll => Vec::new(),
            _ => (aimed.target)(&self.apps()),
        };
        match aimed.action {
            Action::Crash => self.crash(&nodes),
            Action::Restart { down_for } => self.restart(&nodes, down_for),
            Action::Stall { duration } => self.stall(&nodes, duration),
            Action::Partition { duration } => self.partition(&nodes, duration),
            Action::HealAll => self.heal(),
        }
    }
}
