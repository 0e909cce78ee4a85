//! The result of a run: a JSON-serializable [`Report`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// One broken rule. It names the seed to replay, the simulated time, the
/// nodes and the rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The rule: `incarnation-decreased`, `resurrection`, `self-suspect`,
    /// `self-dead`, `self-left`, `metadata-per-incarnation`,
    /// `unannounced-incarnation`, `unknown-member`, `table-bound`,
    /// `queue-bound`, `no-convergence`.
    pub rule: String,
    /// The run's seed.
    pub seed: u64,
    /// Simulated seconds since the start.
    pub time_s: f64,
    /// The node whose belief broke the rule.
    pub observer: Option<String>,
    /// The member the belief is about.
    pub member: Option<String>,
    /// What exactly.
    pub detail: String,
}

/// What the nodes a failure names did just before it: their histories
/// around its time, merged in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureContext {
    /// The rule that broke.
    pub rule: String,
    /// When (simulated seconds).
    pub time_s: f64,
    /// The nodes it names.
    pub nodes: Vec<String>,
    /// What they received, sent, fired and did, up to that time.
    pub moments: Vec<crate::Moment>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} at {:.6}s: {}",
            self.seed, self.time_s, self.rule
        )?;
        if let Some(o) = &self.observer {
            write!(f, " by {o}")?;
        }
        if let Some(m) = &self.member {
            write!(f, " about {m}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How one crash was detected. Times are seconds after the crash.
///
/// The figures are [`swim_core::detection::Detection`]'s, as the chaos bed
/// reports them too; the observers here are the nodes live at the time,
/// and every change of their records is seen when it happens (the bed sees
/// suspicions only in the members lists it polls, and counts only the
/// observers that ran throughout).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// The crashed node.
    pub node: String,
    /// When it crashed (seconds since the start).
    pub crashed_at_s: f64,
    /// First suspicion: the first live node to hold it suspect, or to
    /// declare it dead if that came first.
    pub first_suspect_s: Option<f64>,
    /// First declaration: the first live node to hold it dead.
    pub first_dead_s: Option<f64>,
    /// Last declaration: every live node holds it dead, or no longer lists
    /// it.
    pub all_dead_s: Option<f64>,
    /// It restarted before every node had declared it dead.
    pub restarted: bool,
}

/// The spread of one update over the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisseminationReport {
    /// The node whose metadata changed.
    pub node: String,
    /// Its new incarnation.
    pub incarnation: u32,
    /// When (seconds since the start).
    pub started_at_s: f64,
    /// Live nodes at that time.
    pub population: usize,
    /// Fraction that had it when the run ended.
    pub reached_fraction: f64,
    /// Seconds until half had it.
    pub t50_s: Option<f64>,
    /// Seconds until 99 % had it.
    pub t99_s: Option<f64>,
    /// Seconds until 99.99 % had it.
    pub t9999_s: Option<f64>,
    /// Seconds until all had it.
    pub t100_s: Option<f64>,
    /// `[seconds since the update, fraction]` at every arrival.
    pub curve: Vec<[f64; 2]>,
}

/// Time series sampled every `sample_interval_s`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    /// Seconds since the start.
    pub t_s: Vec<f64>,
    /// Live nodes.
    pub live: Vec<usize>,
    /// Mean over live nodes of the fraction of live nodes they see alive.
    pub view_fraction: Vec<f64>,
    /// Fraction of live nodes that see every live node alive.
    pub converged_fraction: Vec<f64>,
    /// Fraction of live nodes whose view is exact: every live node alive
    /// and no crashed or departed node alive.
    pub exact_fraction: Vec<f64>,
    /// Mean membership broadcast queue length over running nodes.
    pub queue_mean: Vec<f64>,
    /// Longest membership broadcast queue.
    pub queue_max: Vec<usize>,
    /// Datagram bytes per running node per second over the interval.
    pub udp_bytes_per_node_per_s: Vec<f64>,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Cluster size.
    pub nodes: usize,
    /// The seed.
    pub seed: u64,
    /// `lan`, `wan` or `local`.
    pub preset: String,
    /// Lifeguard on.
    pub lifeguard: bool,
    /// The scenario, as a one-line description.
    pub scenario: String,
    /// Simulated seconds.
    pub simulated_seconds: f64,
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// Events processed (deliveries, timers, faults, samples).
    pub events: u64,
    /// Events per wall second.
    pub events_per_wall_second: f64,
    /// The histories of the nodes the first failures name, around their
    /// time ([`Scenario::history`](crate::Scenario::history) moments a node).
    pub failure_context: Vec<FailureContext>,
    /// The application's counters ([`NodeContext::count`](crate::NodeContext::count)),
    /// summed over every node.
    pub app_metrics: std::collections::BTreeMap<String, u64>,
    /// Hash of every delivered input and every output, in order (hex):
    /// equal for equal (scenario, seed).
    pub trace_hash: String,
    /// Since when (seconds) every live node has seen every live node alive
    /// (or suspect, not yet declared dead), if it held at the end.
    pub converged_at_s: Option<f64>,
    /// The first time it held once every node of the initial start had
    /// started (after the join window of a bootstrap).
    pub first_converged_at_s: Option<f64>,
    /// The bound derived from the configuration.
    pub convergence_bound_s: f64,
    /// The last disturbance plus the bound, if within the run: the cluster
    /// must be converged then (rule `no-convergence`).
    pub convergence_deadline_s: Option<f64>,
    /// Crashes tracked.
    pub crashes: usize,
    /// Mean seconds from a crash to its first suspicion
    /// ([`Detection::first_suspect_s`]).
    pub suspect_first_s: Option<f64>,
    /// Mean seconds from a crash to the first live node declaring it dead.
    pub detection_first_s: Option<f64>,
    /// Median of the same.
    pub detection_first_p50_s: Option<f64>,
    /// Slowest of the same.
    pub detection_first_max_s: Option<f64>,
    /// Median seconds from a crash until every live node holds it dead.
    pub detection_all_p50_s: Option<f64>,
    /// Mean of the same.
    pub detection_all_mean_s: Option<f64>,
    /// Slowest of the same.
    pub detection_all_max_s: Option<f64>,
    /// Crashes not yet seen dead by every live node at the end.
    pub detection_incomplete: usize,
    /// False positives: a live, reachable node that never stalled, declared
    /// dead (counted once per episode, at its first declarer).
    pub false_positives: u64,
    /// The same for nodes that stalled within the blame window.
    pub false_positives_stalled: u64,
    /// Live nodes declared dead by a node a partition separated them from.
    pub false_positives_partitioned: u64,
    /// Every (observer, live member) dead record, however learnt.
    pub false_positive_records: u64,
    /// False suspicions: a live, reachable node that never stalled,
    /// suspected (once per episode: when nobody suspected it or held it
    /// dead before).
    pub false_suspicions: u64,
    /// The same for nodes that stalled within the blame window.
    pub false_suspicions_stalled: u64,
    /// Live nodes suspected by a node a partition separated them from.
    pub false_suspicions_partitioned: u64,
    /// Seconds after a stall or partition in which a declaration is blamed
    /// on it (the suspicion maximum plus two probe intervals).
    pub blame_window_s: f64,
    /// The first few false positives, and the first few healthy ones:
    /// `[time s, declarer, member, kind]`.
    pub false_positive_examples: Vec<(f64, String, String, String)>,
    /// Bytes sent (datagrams + streams, both directions) per node-second.
    pub bytes_per_node_per_s: f64,
    /// Datagrams sent per node-second.
    pub packets_per_node_per_s: f64,
    /// Datagram bytes per node-second.
    pub udp_bytes_per_node_per_s: f64,
    /// Stream bytes (requests and replies) per node-second.
    pub tcp_bytes_per_node_per_s: f64,
    /// Stream exchanges opened per node-second.
    pub exchanges_per_node_per_s: f64,
    /// Catch-up push/pulls started per node over the run (settle, contact
    /// and reconnect: see `swim_core::CatchUp`).
    pub catch_up_push_pulls_per_node: f64,
    /// Of those, reconnects with members declared dead, per node.
    pub reconnects_per_node: f64,
    /// Messages received per node-second, by kind (as the nodes decoded them).
    pub messages_per_node_per_s: BTreeMap<String, f64>,
    /// Datagrams lost by the network model (loss and partitions).
    pub packets_dropped: u64,
    /// Longest membership broadcast queue seen at a sample.
    pub broadcast_queue_peak: usize,
    /// Mean membership broadcast queue length over all samples.
    pub broadcast_queue_mean: f64,
    /// Most entries in one member table.
    pub peak_member_table_entries: usize,
    /// Largest member table on the wire: the biggest push/pull state a
    /// node sent (bytes, as sealed).
    pub peak_member_table_bytes: usize,
    /// Peak resident memory of the process (bytes; Linux only).
    pub peak_rss_bytes: Option<u64>,
    /// Heap the simulator's own bookkeeping of all views uses (bytes).
    pub tracker_bytes: usize,
    /// Every crash.
    pub detections: Vec<Detection>,
    /// The followed update, if any.
    pub dissemination: Option<DisseminationReport>,
    /// Sampled time series.
    pub series: Series,
    /// Seconds between samples.
    pub sample_interval_s: f64,
    /// Broken rules (at most the scenario's listing limit); empty when all held.
    pub invariant_violations: Vec<Violation>,
    /// All broken rules, counted.
    pub invariant_violations_total: u64,
    /// Faults as they were applied: `[time s, what, nodes]`.
    pub faults_applied: Vec<(f64, String, Vec<String>)>,
}

impl Report {
    /// Whether the run held every invariant.
    pub fn ok(&self) -> bool {
        self.invariant_violations_total == 0
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}s"));
        let mut s = format!(
            "nodes {} seed {} preset {}{}: {:.0}s simulated in {:.2}s wall ({:.1}x real time, {:.0} events/s)\n",
            self.nodes,
            self.seed,
            self.preset,
            if self.lifeguard { "" } else { " (lifeguard off)" },
            self.simulated_seconds,
            self.wall_seconds,
            self.speedup,
            self.events_per_wall_second
        );
        s += &format!(
            "converged at {} (first {}; bound {:.0}s)\n",
            f(self.converged_at_s),
            f(self.first_converged_at_s),
            self.convergence_bound_s
        );
        if self.crashes > 0 {
            s += &format!(
                "crashes {}: first suspect {} first dead {} (p50 {}, max {}); all dead p50 {} max {}; incomplete {}\n",
                self.crashes,
                f(self.suspect_first_s),
                f(self.detection_first_s),
                f(self.detection_first_p50_s),
                f(self.detection_first_max_s),
                f(self.detection_all_p50_s),
                f(self.detection_all_max_s),
                self.detection_incomplete
            );
        }
        s += &format!(
            "false positives: {} healthy, {} stalled, {} partitioned ({} observer records); false suspicions: {} healthy, {} stalled, {} partitioned\n",
            self.false_positives,
            self.false_positives_stalled,
            self.false_positives_partitioned,
            self.false_positive_records,
            self.false_suspicions,
            self.false_suspicions_stalled,
            self.false_suspicions_partitioned
        );
        s += &format!(
            "traffic per node: {:.0} B/s, {:.1} packets/s, {:.3} exchanges/s ({:.2} catch-up push/pulls per node, {:.2} of them reconnects); queue peak {}\n",
            self.bytes_per_node_per_s,
            self.packets_per_node_per_s,
            self.exchanges_per_node_per_s,
            self.catch_up_push_pulls_per_node,
            self.reconnects_per_node,
            self.broadcast_queue_peak
        );
        if let Some(d) = &self.dissemination {
            s += &format!(
                "dissemination from {}: 50% {} 99% {} 99.99% {} 100% {}\n",
                d.node,
                f(d.t50_s),
                f(d.t99_s),
                f(d.t9999_s),
                f(d.t100_s)
            );
        }
        s += &format!(
            "trace {} | invariant violations: {}\n",
            self.trace_hash, self.invariant_violations_total
        );
        for v in self.invariant_violations.iter().take(10) {
            s += &format!("  {v}\n");
        }
        s
    }
}

/// The `q` quantile (nearest rank) of `xs`.
pub(crate) fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

pub(crate) fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}
