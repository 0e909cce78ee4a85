//! The node's counters and gauges through the `metrics` facade, named after
//! go-metrics' `memberlist.*` where Go has a name.

use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder};
use swim_core::wire::MessageType;
use swim_core::{Delegate, Instant, Rejection, Swim};

use crate::NodeStats;

/// Publishes the node's counters about once a second: the core counts
/// every packet anyway, so recording each one again through the facade
/// would only add work to the hot path.
pub(crate) struct Metrics {
    labels: Vec<Label>,
    /// Every metric's key, labels included, in the order `publish` reports
    /// them: built on the first publication, so later ones clone no label.
    keys: Vec<Key>,
    last: Option<Instant>,
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// One publication: hands each value to the recorder under its key.
struct Publish<'a> {
    recorder: &'a dyn Recorder,
    labels: &'a [Label],
    keys: &'a mut Vec<Key>,
    next: usize,
}

impl Publish<'_> {
    /// The key of the next metric, `name` with the node's labels and
    /// `reason` if given.
    fn key(&mut self, name: &'static str, reason: Option<&'static str>) -> &Key {
        let i = self.next;
        self.next += 1;
        if i == self.keys.len() {
            let mut labels = self.labels.to_vec();
            labels.extend(reason.map(|why| Label::new("reason", why)));
            self.keys.push(Key::from_parts(name, labels));
        }
        debug_assert_eq!(
            self.keys[i].name(),
            name,
            "publish reports in a fixed order"
        );
        &self.keys[i]
    }

    fn count(&mut self, name: &'static str, value: u64) {
        self.count_for(name, None, value);
    }

    fn count_for(&mut self, name: &'static str, reason: Option<&'static str>, value: u64) {
        let recorder = self.recorder;
        recorder
            .register_counter(self.key(name, reason), &METADATA)
            .absolute(value);
    }

    fn level(&mut self, name: &'static str, value: f64) {
        let recorder = self.recorder;
        recorder
            .register_gauge(self.key(name, None), &METADATA)
            .set(value);
    }
}

impl Metrics {
    pub(crate) fn new(labels: &[(String, String)]) -> Metrics {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(k.clone(), v.clone()))
            .collect();
        Metrics {
            labels,
            keys: Vec::new(),
            last: None,
        }
    }

    /// Whether a second has passed since the last publication (and so
    /// another is due now).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= Duration::from_secs(1));
        if due {
            self.last = Some(now);
        }
        due
    }

    pub(crate) fn publish<D: Delegate>(&mut self, swim: &Swim<D>, node: &NodeStats) {
        // The recorder in place now: one installed after the node started
        // is used from its next publication on.
        metrics::with_recorder(|recorder| {
            let mut p = Publish {
                recorder,
                labels: &self.labels,
                keys: &mut self.keys,
                next: 0,
            };
            let stats = swim.stats();
            p.count("memberlist.udp.sent", stats.bytes_sent);
            p.count("memberlist.udp.received", stats.bytes_received);
            p.count("memberlist.udp.packets_sent", stats.packets_sent);
            p.count("memberlist.udp.packets_received", stats.packets_received);
            p.count("memberlist.tcp.connect", stats.streams_opened);
            p.count("memberlist.tcp.accept", stats.streams_accepted);
            p.count("memberlist.tcp.failed", stats.streams_failed);
            for (t, value) in MessageType::ALL.into_iter().zip(stats.messages) {
                if let Some(name) = t.metric_name() {
                    p.count(name, value);
                }
            }
            p.count("memberlist.probes", stats.probes);
            p.count("memberlist.probes.failed", stats.probes_failed);
            p.count("memberlist.refutations", stats.refutations);
            p.count("memberlist.members.failed", stats.members_failed);
            p.count("memberlist.push_pulls", stats.push_pulls);
            p.count("memberlist.catch_up.push_pulls", stats.catch_up_push_pulls);
            p.count("memberlist.catch_up.limited", stats.catch_up_limited);
            p.count("memberlist.catch_up.covers", stats.cover_push_pulls);
            p.count("memberlist.catch_up.reconnects", stats.reconnects);
            p.count("memberlist.catch_up.corrections", stats.corrections);
            p.count(
                "memberlist.catch_up.direct_refutations",
                stats.direct_refutations,
            );
            p.count("memberlist.catch_up.last_probes", stats.last_probes);
            p.count(
                "memberlist.catch_up.last_probes_answered",
                stats.last_probes_answered,
            );
            p.count("memberlist.catch_up.doubted_deaths", stats.doubted_deaths);
            p.count(
                "memberlist.catch_up.raised_for_returning",
                stats.raised_for_returning,
            );
            p.count(
                "memberlist.catch_up.alive_to_returning",
                stats.alive_to_returning,
            );
            p.count("memberlist.catch_up.back_over_udp", stats.back_over_udp);
            p.count(
                "memberlist.catch_up.state_gossip_lowered",
                stats.state_gossip_lowered,
            );
            p.count(
                "memberlist.catch_up.settle_unreached",
                stats.settle_unreached,
            );
            p.count(
                "memberlist.catch_up.hearsay_suspicions",
                stats.hearsay_suspicions,
            );
            p.count("memberlist.catch_up.hearsay_told", stats.hearsay_told);
            p.count("memberlist.invalid_input", stats.wire_errors);
            p.count("memberlist.tcp.at_capacity", node.streams_at_capacity);
            p.count("memberlist.tcp.errors", node.stream_errors);
            p.count("memberlist.udp.send_errors", node.send_errors);
            p.count("memberlist.events.dropped", node.events_dropped);
            p.level("memberlist.health.score", f64::from(swim.health_score()));
            p.level(
                "memberlist.queue.broadcasts",
                swim.broadcast_queue_len() as f64,
            );
            for why in Rejection::ALL {
                p.count_for(
                    "memberlist.rejected",
                    Some(why.metric_name()),
                    stats.rejected_for(why),
                );
            }
            let members = swim.member_counts();
            p.level("memberlist.members.alive", members.alive as f64);
            p.level("memberlist.members.suspect", members.suspect as f64);
            p.level("memberlist.members.known", members.total() as f64);
        });
    }
}
