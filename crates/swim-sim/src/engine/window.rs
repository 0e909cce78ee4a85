//! The window scheduler: the inputs of one window of simulated time, node
//! by node on as many threads as allowed, then carried out in one order.

use std::cmp::Reverse;

use rayon::prelude::*;

use super::{Entry, Ev, Simulation, JOBS_PER_CHUNK, PARALLEL_MIN_WORK, SPARE_JOBS};
use crate::app::View;
use crate::node::{Env, Exact, Job, Shared, NONE, SCRATCH_KEPT};
use crate::scenario::Start;

impl Simulation {
    pub(super) fn window(&mut self, start: u64, until: u64) {
        let mut end = start
            .saturating_add(self.lookahead)
            .min(until.saturating_add(1));
        let mut last = start;
        while let Some(Reverse(e)) = self.queue.peek() {
            if e.at >= end {
                break;
            }
            if !matches!(e.ev, Ev::Node(..)) {
                // Faults, samples and the like see everything before them done.
                end = if last == e.at { e.at + 1 } else { e.at };
                break;
            }
            let Some(Reverse(Entry {
                at,
                ev: Ev::Node(i, due),
                ..
            })) = self.queue.pop()
            else {
                unreachable!("peeked a node's input");
            };
            last = at;
            let i = i as usize;
            let k = match self.job_of[i] {
                u32::MAX => {
                    let mut job = self.spare.pop().unwrap_or_default();
                    job.begin(i, std::mem::take(&mut self.nodes[i]), 0);
                    self.job_of[i] = self.jobs.len() as u32;
                    self.jobs.push(job);
                    self.jobs.len() - 1
                }
                k => k as usize,
            };
            let job = &mut self.jobs[k];
            job.work += due.work();
            job.due.push_back((at, due));
        }
        self.horizon = end;
        let mut jobs = std::mem::take(&mut self.jobs);
        for job in &mut jobs {
            job.end = end;
        }
        // A job logs nothing before its first input: in this order, what the
        // jobs left can be carried out a chunk at a time, up to the next
        // job's first input, and memory stays bounded in the largest window
        // (a warm start: every node reads every member at once).
        jobs.sort_unstable_by_key(Job::first);
        let exact = self.checks.exact;
        if exact {
            self.run_interleaved(&mut jobs);
        }
        let mut merged = std::mem::take(&mut self.merged);
        let mut from = 0;
        while from < jobs.len() {
            let to = jobs.len().min(from + JOBS_PER_CHUNK);
            let last = to == jobs.len();
            let chunk = &mut jobs[from..to];
            let work: usize = chunk.iter().map(|j| j.work).sum();
            if !exact {
                let sh = self.shared();
                if self.pool.is_some() && chunk.len() > 1 && work >= PARALLEL_MIN_WORK {
                    chunk.par_iter_mut().for_each(|job| job.run(&Env::of(&sh)));
                } else {
                    for job in chunk.iter_mut() {
                        job.run(&Env::of(&sh));
                    }
                }
            }
            for job in chunk.iter_mut() {
                let i = job.i;
                self.job_of[i] = u32::MAX;
                self.events += job.events;
                std::mem::swap(&mut self.nodes[i], &mut job.node);
            }
            if let ([job], true, true) = (&mut *chunk, merged.is_empty(), last) {
                // The window's only node (most windows of a quiet cluster):
                // its log is already in order.
                for (at, did) in job.log.drain(..) {
                    self.carry_out(at, job.i, did);
                }
                job.give_back_scratch();
                break;
            }
            for job in chunk.iter_mut() {
                let i = job.i as u32;
                merged.extend(job.log.drain(..).map(|(at, did)| (at, i, did)));
                job.give_back_scratch();
            }
            let mark = jobs.get(to).map_or((NONE, u32::MAX), |j| {
                let (at, i) = j.first();
                (at, i as u32)
            });
            // Each node's log is in order of time: a stable sort by time, then
            // node, keeps each node's order within an instant.
            merged.sort_by_key(|&(at, i, _)| (at, i));
            let ready = merged.partition_point(|&(at, i, _)| (at, i) < mark);
            for (at, i, did) in merged.drain(..ready) {
                self.carry_out(at, i as usize, did);
            }
            from = to;
        }
        debug_assert!(merged.is_empty());
        if merged.capacity() > SCRATCH_KEPT {
            merged = Vec::new();
        }
        self.merged = merged;
        for job in jobs.drain(..) {
            if self.spare.len() < SPARE_JOBS {
                self.spare.push(job);
            }
        }
        self.jobs = jobs;
    }

    /// Runs the window's jobs one input at a time, in order of time then
    /// node, checking the `Always` invariants after every application
    /// callback against every node as it is at that moment. Each node
    /// handles the same inputs in the same order as [`Job::run`] would (the
    /// nodes of a window are independent), so the run is the same.
    fn run_interleaved(&mut self, jobs: &mut [Job]) {
        for (k, job) in jobs.iter().enumerate() {
            self.job_of[job.i] = k as u32;
        }
        loop {
            let next = jobs
                .iter()
                .enumerate()
                .filter_map(|(k, j)| j.due.front().map(|d| (d.0, j.i, k)))
                .min();
            let Some((_, _, k)) = next else { break };
            let (before, rest) = jobs.split_at_mut(k);
            let (job, after) = rest.split_first_mut().expect("job k");
            let view = View {
                nodes: &self.nodes,
                jobs: (before, after),
                job_of: &self.job_of,
                running: k,
                this: None,
            };
            let shared = self.shared();
            let exact = self.exact(view);
            job.run_next(&Env {
                shared: &shared,
                exact: Some(&exact),
            });
        }
    }

    /// What checking after every callback reads, the nodes found in `view`.
    pub(super) fn exact<'a>(&'a self, view: View<'a>) -> Exact<'a> {
        Exact {
            invariants: &self.sc.invariants,
            view,
            live: &self.tracker.live,
            stalled_until: &self.tracker.disturbances.stalled_until,
            net: &self.net,
        }
    }

    pub(super) fn shared(&self) -> Shared<'_> {
        Shared {
            links: &self.net.links,
            warm: &self.warm,
            formed: self.sc.start == Start::Formed,
            check_frames: self.check_frames,
            check_bounds: self.tracker.check,
            all_events: self.hook.is_some(),
            nodes: self.sc.nodes,
        }
    }
}
