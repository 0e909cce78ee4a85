//! Faults: nodes chosen and crashed, restarted, stalled, slowed, made to
//! leave or update their metadata; partitions and loss.

use swim_core::Instant;

use super::{Ev, Simulation};
use crate::naming::node_name;
use crate::network::Partition;
use crate::node::{Status, NONE};
use crate::scenario::Fault;
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
        let tally = self.nodes[i].stop(i);
        self.counters.stopped.add(&tally);
        self.tracker.stop(self.now, i, crash);
    }

    pub(super) fn begin_stall(&mut self, i: usize, duration: u64) {
        let life = self.nodes[i].life;
        let node = &mut self.nodes[i];
        node.status = Status::Stalled;
        node.timer_at = NONE;
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
