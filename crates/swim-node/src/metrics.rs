//! The node's counters and gauges through the `metrics` facade, named after
//! go-metrics' `memberlist.*` where Go has a name.

use std::time::Duration;

use metrics::{counter, gauge, Label};
use swim_core::{Delegate, Instant, Rejection, Swim};

use crate::NodeStats;

/// The metric of each message type, by type byte: `memberlist.msg.*`, as
/// go-metrics names them (indexes [`Stats::messages`](swim_core::Stats::messages)).
pub const MESSAGE_METRICS: [&str; 14] = [
    "memberlist.msg.ping",
    "memberlist.msg.indirect_ping",
    "memberlist.msg.ack",
    "memberlist.msg.suspect",
    "memberlist.msg.alive",
    "memberlist.msg.dead",
    "memberlist.msg.push_pull",
    "memberlist.msg.compound",
    "memberlist.msg.user",
    "memberlist.msg.compress",
    "memberlist.msg.encrypt",
    "memberlist.msg.nack",
    "memberlist.msg.has_crc",
    "memberlist.msg.err",
];

/// Publishes the node's counters about once a second: the core counts
/// every packet anyway, so recording each one again through the facade
/// would only add work to the hot path.
pub(crate) struct Metrics {
    labels: Vec<Label>,
    /// `labels` with each rejection's `reason`, in [`Rejection::ALL`] order.
    rejected: Vec<Vec<Label>>,
    last: Option<Instant>,
}

impl Metrics {
    pub(crate) fn new(labels: &[(String, String)]) -> Metrics {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(k.clone(), v.clone()))
            .collect();
        let rejected = Rejection::ALL
            .iter()
            .map(|why| {
                let mut l = labels.clone();
                l.push(Label::new("reason", why.metric_name()));
                l
            })
            .collect();
        Metrics {
            labels,
            rejected,
            last: None,
        }
    }

    /// Whether a second has passed since the last publication (and so
    /// another is due now).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let due = self.last.map_or(true, |last| {
            now.saturating_duration_since(last) >= Duration::from_secs(1)
        });
        if due {
            self.last = Some(now);
        }
        due
    }

    pub(crate) fn publish<D: Delegate>(&self, swim: &Swim<D>, node: &NodeStats) {
        let stats = swim.stats();
        let labels = &self.labels;
        let count = |name: &'static str, value: u64| counter!(name, labels.iter()).absolute(value);
        let level = |name: &'static str, value: f64| gauge!(name, labels.iter()).set(value);
        count("memberlist.udp.sent", stats.bytes_sent);
        count("memberlist.udp.received", stats.bytes_received);
        count("memberlist.udp.packets_sent", stats.packets_sent);
        count("memberlist.udp.packets_received", stats.packets_received);
        count("memberlist.tcp.connect", stats.streams_opened);
        count("memberlist.tcp.accept", stats.streams_accepted);
        count("memberlist.tcp.failed", stats.streams_failed);
        for (name, value) in MESSAGE_METRICS.iter().zip(stats.messages) {
            count(name, value);
        }
        count("memberlist.probes", stats.probes);
        count("memberlist.probes.failed", stats.probes_failed);
        count("memberlist.refutations", stats.refutations);
        count("memberlist.members.failed", stats.members_failed);
        count("memberlist.push_pulls", stats.push_pulls);
        count("memberlist.catch_up.push_pulls", stats.catch_up_push_pulls);
        count("memberlist.catch_up.limited", stats.catch_up_limited);
        count("memberlist.catch_up.reconnects", stats.reconnects);
        count("memberlist.invalid_input", stats.wire_errors);
        count("memberlist.tcp.at_capacity", node.streams_at_capacity);
        count("memberlist.tcp.errors", node.stream_errors);
        count("memberlist.udp.send_errors", node.send_errors);
        count("memberlist.events.dropped", node.events_dropped);
        level("memberlist.health.score", f64::from(swim.health_score()));
        level(
            "memberlist.queue.broadcasts",
            swim.broadcast_queue_len() as f64,
        );
        for (why, labels) in Rejection::ALL.iter().zip(&self.rejected) {
            counter!("memberlist.rejected", labels.iter()).absolute(stats.rejected_for(*why));
        }
        let members = swim.member_counts();
        level("memberlist.members.alive", members.alive as f64);
        level("memberlist.members.suspect", members.suspect as f64);
        level("memberlist.members.known", members.total() as f64);
    }
}
