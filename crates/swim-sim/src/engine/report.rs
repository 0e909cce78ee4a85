//! What a run measures: samples of the cluster over time, the convergence
//! check, and the report.

use swim_core::wire::MessageType;

use crate::naming::node_name;
use crate::node::Tally;
use crate::report::{mean, quantile, DisseminationReport, Report};
use crate::rss::{current_rss, peak_rss};
use crate::scenario::{Scenario, Start};
use crate::time::{nanos, secs};

use super::Simulation;

impl Simulation {
    pub(super) fn sample(&mut self) {
        if let Some((every, next)) = self.progress {
            if self.now >= next {
                let wall = self.wall.elapsed().as_secs_f64();
                let (w0, e0) = self.last_progress;
                let sim_step = secs(every);
                eprintln!(
                    "[{:>8.1}s simulated] wall {:>8.1}s (+{:.2}s: {:.1}x real time), {} events (+{:.0}/s), live {}, converged {}, rss {} MB",
                    secs(self.now),
                    wall,
                    wall - w0,
                    sim_step / (wall - w0).max(1e-9),
                    self.events,
                    (self.events - e0) as f64 / (wall - w0).max(1e-9),
                    self.tracker.live_count,
                    self.tracker.converged(),
                    current_rss().unwrap_or(0) / (1 << 20)
                );
                self.last_progress = (wall, self.events);
                self.progress = Some((every, next + every));
            }
        }
        let (view, conv, exact) = self.tracker.convergence_sample();
        let mut total = 0usize;
        let mut max = 0usize;
        let mut running = 0usize;
        for node in &self.nodes {
            if let Some(s) = &node.swim {
                let q = s.broadcast_queue_len();
                total += q;
                max = max.max(q);
                running += 1;
            }
        }
        let qmean = if running > 0 {
            total as f64 / running as f64
        } else {
            0.0
        };
        let interval = secs(nanos(self.sc.sample_interval)).max(1e-9);
        let bytes = self.counters.udp_bytes - self.counters.udp_bytes_at_sample;
        self.counters.udp_bytes_at_sample = self.counters.udp_bytes;
        let s = &mut self.series;
        s.t_s.push(secs(self.now));
        s.live.push(self.tracker.live_count);
        s.view_fraction.push(view);
        s.converged_fraction.push(conv);
        s.exact_fraction.push(exact);
        s.queue_mean.push(qmean);
        s.queue_max.push(max);
        s.udp_bytes_per_node_per_s
            .push(bytes as f64 / interval / running.max(1) as f64);
        self.queue_samples.push(qmean);
        self.net.expire(self.now);
    }

    pub(super) fn check_convergence(&mut self) {
        if self.tracker.converged() || !self.tracker.check {
            return;
        }
        let pairs = self.tracker.unconverged_pairs(5);
        let detail = pairs
            .iter()
            .map(|(o, m, v)| format!("{} sees {} as {:?}", node_name(*o), node_name(*m), v))
            .collect::<Vec<_>>()
            .join("; ");
        let (o, m) = pairs
            .first()
            .map_or((None, None), |&(o, m, _)| (Some(o), Some(m)));
        self.tracker.violate(
            self.now,
            "no-convergence",
            o,
            m,
            format!(
                "not converged {:.1}s after the last disturbance (the bound): {detail}",
                secs(nanos(self.sc.convergence_bound()))
            ),
        );
    }

    // ============================================================ report

    /// The report of the run so far.
    pub fn report(&self) -> Report {
        let wall = self.wall.elapsed().as_secs_f64();
        let sim_s = secs(self.now);
        let n = self.sc.nodes.max(1) as f64;
        let node_s = (n * sim_s).max(1e-9);
        let mut tally = self.counters.stopped.clone();
        for node in &self.nodes {
            if let Some(s) = &node.swim {
                tally.add(&Tally::of(s.stats()));
            }
        }
        let messages = tally.messages;
        // Named as the node's metrics are, without their prefix.
        let messages_per_node_per_s = MessageType::ALL
            .into_iter()
            .zip(messages)
            .filter(|&(_, c)| c > 0)
            .filter_map(|(t, c)| {
                let kind = t.metric_name()?.trim_start_matches("memberlist.msg.");
                Some((kind.to_string(), c as f64 / node_s))
            })
            .collect();
        let d = &self.tracker.detections;
        let firsts: Vec<f64> = d.iter().filter_map(|x| x.first_dead_s).collect();
        let suspects: Vec<f64> = d.iter().filter_map(|x| x.first_suspect_s).collect();
        let alls: Vec<f64> = d.iter().filter_map(|x| x.all_dead_s).collect();
        let changes = &self.tracker.convergence_changes;
        let converged_at_s = if self.tracker.converged() {
            changes.last().map(|&(t, _)| secs(t))
        } else {
            None
        };
        // Not before every node of the initial start has started.
        let started = match &self.sc.start {
            Start::Warm | Start::Formed => 1,
            Start::Bootstrap { window, .. } => nanos(*window),
        };
        let first_converged_at_s = changes
            .iter()
            .find(|c| c.1 && c.0 >= started)
            .map(|&(t, _)| secs(t));
        let c = &self.counters;
        Report {
            nodes: self.sc.nodes,
            seed: self.sc.seed,
            preset: self.sc.preset.name().to_string(),
            lifeguard: self.sc.lifeguard,
            scenario: describe(&self.sc),
            simulated_seconds: sim_s,
            wall_seconds: wall,
            speedup: sim_s / wall.max(1e-9),
            events: self.events,
            events_per_wall_second: self.events as f64 / wall.max(1e-9),
            trace_hash: format!("{:016x}", self.trace_hash()),
            converged_at_s,
            first_converged_at_s,
            convergence_bound_s: self.sc.convergence_bound().as_secs_f64(),
            convergence_deadline_s: self.sc.convergence_deadline().map(|d| d.as_secs_f64()),
            crashes: d.len(),
            suspect_first_s: mean(&suspects),
            detection_first_s: mean(&firsts),
            detection_first_p50_s: quantile(&firsts, 0.5),
            detection_first_max_s: quantile(&firsts, 1.0),
            detection_all_p50_s: quantile(&alls, 0.5),
            detection_all_mean_s: mean(&alls),
            detection_all_max_s: quantile(&alls, 1.0),
            detection_incomplete: d
                .iter()
                .filter(|x| x.all_dead_s.is_none() && !x.restarted)
                .count(),
            false_positives: self.tracker.fp.healthy,
            false_positives_stalled: self.tracker.fp.stalled,
            false_positives_partitioned: self.tracker.fp.partitioned,
            false_positive_records: self.tracker.fp.observer_records,
            false_suspicions: self.tracker.fp.suspicions[0],
            false_suspicions_stalled: self.tracker.fp.suspicions[1],
            false_suspicions_partitioned: self.tracker.fp.suspicions[2],
            blame_window_s: secs(self.tracker.blame_window),
            false_positive_examples: self
                .tracker
                .fp
                .examples
                .iter()
                .map(|&(t, o, m, k)| (secs(t), node_name(o), node_name(m), k.to_string()))
                .collect(),
            bytes_per_node_per_s: (c.udp_bytes + c.tcp_bytes) as f64 / node_s,
            packets_per_node_per_s: c.packets as f64 / node_s,
            udp_bytes_per_node_per_s: c.udp_bytes as f64 / node_s,
            tcp_bytes_per_node_per_s: c.tcp_bytes as f64 / node_s,
            exchanges_per_node_per_s: c.exchanges as f64 / node_s,
            catch_up_push_pulls_per_node: tally.catch_up as f64 / n,
            reconnects_per_node: tally.reconnects as f64 / n,
            messages_per_node_per_s,
            packets_dropped: c.dropped,
            broadcast_queue_peak: self.series.queue_max.iter().copied().max().unwrap_or(0),
            broadcast_queue_mean: mean(&self.queue_samples).unwrap_or(0.0),
            peak_member_table_entries: self.nodes.iter().map(|n| n.peak_entries).max().unwrap_or(0),
            peak_member_table_bytes: c.peak_stream,
            peak_rss_bytes: peak_rss(),
            tracker_bytes: self.tracker.views.heap_bytes(),
            detections: d.clone(),
            dissemination: self.dissemination_report(),
            series: self.series.clone(),
            sample_interval_s: self.sc.sample_interval.as_secs_f64(),
            invariant_violations: self.tracker.violations.clone(),
            failure_context: self.contexts.clone(),
            app_metrics: {
                let mut sum = std::collections::BTreeMap::new();
                for m in self.nodes.iter().filter_map(|n| n.machine.as_deref()) {
                    for (k, v) in &m.metrics {
                        *sum.entry(k.clone()).or_insert(0) += v;
                    }
                }
                sum
            },
            invariant_violations_total: self.tracker.violations_total,
            faults_applied: self.faults_applied.clone(),
        }
    }

    /// The run's own trace, then every node's.
    pub(super) fn trace_hash(&self) -> u64 {
        let mut h = self.trace.clone();
        for node in &self.nodes {
            h.u64(node.trace.finish());
        }
        h.finish()
    }

    pub(super) fn dissemination_report(&self) -> Option<DisseminationReport> {
        let d = self.tracker.dissemination.as_ref()?;
        let pop = d.population.max(1) as f64;
        let at = |q: f64| {
            let need = (q * pop).ceil() as usize;
            (need >= 1 && need <= d.arrivals.len()).then(|| secs(d.arrivals[need - 1]))
        };
        Some(DisseminationReport {
            node: node_name(d.node),
            incarnation: d.incarnation,
            started_at_s: secs(d.start),
            population: d.population,
            reached_fraction: d.arrivals.len() as f64 / pop,
            t50_s: at(0.5),
            t99_s: at(0.99),
            t9999_s: at(0.9999),
            t100_s: at(1.0),
            curve: d
                .arrivals
                .iter()
                .enumerate()
                .map(|(k, &t)| [secs(t), (k + 1) as f64 / pop])
                .collect(),
        })
    }
}

/// The scenario in one line.
pub fn describe(sc: &Scenario) -> String {
    let mut s = format!(
        "{} nodes, {}, seed {}, {:?}",
        sc.nodes,
        sc.preset.name(),
        sc.seed,
        sc.duration
    );
    match &sc.start {
        Start::Warm => s += ", warm start",
        Start::Formed => s += ", formed cluster",
        Start::Bootstrap { seeds, window } => {
            s += &format!(", bootstrap through {seeds} seeds over {window:?}")
        }
    }
    if !sc.lifeguard {
        s += ", lifeguard off";
    }
    if !sc.catch_up {
        s += ", catch-up off";
    }
    if !sc.compression {
        s += ", no compression";
    }
    let net = &sc.network;
    s += &format!(", latency {:?}", net.latency);
    if net.loss > 0.0 {
        s += &format!(", loss {}%", net.loss * 100.0);
    }
    if net.duplicate > 0.0 {
        s += &format!(", dup {}%", net.duplicate * 100.0);
    }
    if net.reorder > 0.0 {
        s += &format!(", reorder {}%", net.reorder * 100.0);
    }
    for f in &sc.faults {
        s += &format!(", {f:?}");
    }
    s
}
