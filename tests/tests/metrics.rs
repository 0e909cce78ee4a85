//! The node's counters and gauges reach the `metrics` facade under
//! memberlist's names, labelled per node.

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use swim_tests::{local_config, Net, Runtime};

#[test]
fn counters_and_gauges_are_published_per_node() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this test binary");
    Runtime::Tokio(Net::UdpTcp).run(|rt| async move {
        let configs = ["a", "b"]
            .into_iter()
            .map(|name| {
                let mut config = local_config(name);
                config.metric_labels = vec![("node".into(), name.into())];
                config
            })
            .collect();
        let nodes = rt.cluster(configs).await;
        // Published about once a second, and once more at shutdown.
        rt.sleep(Duration::from_millis(1500)).await;
        for (node, _) in &nodes {
            node.shutdown().await;
        }
    });
    let snapshot = snapshotter.snapshot().into_hashmap();
    let value = |kind, name: &str, node: &str| {
        snapshot
            .iter()
            .find(|(key, _)| {
                key.kind() == kind
                    && key.key().name() == name
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == "node" && l.value() == node)
            })
            .map(|(_, (_, _, value))| value)
            .unwrap_or_else(|| panic!("no {name} for node {node}"))
    };
    for node in ["a", "b"] {
        for name in [
            "memberlist.udp.sent",
            "memberlist.udp.received",
            "memberlist.msg.ping",
        ] {
            match value(MetricKind::Counter, name, node) {
                DebugValue::Counter(n) => assert!(*n > 0, "{name} of {node} is {n}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        match value(MetricKind::Gauge, "memberlist.health.score", node) {
            DebugValue::Gauge(score) => assert_eq!(score.into_inner(), 0.0),
            other => panic!("{other:?}"),
        }
        match value(MetricKind::Gauge, "memberlist.members.alive", node) {
            DebugValue::Gauge(alive) => assert_eq!(alive.into_inner(), 2.0),
            other => panic!("{other:?}"),
        }
        // Rejections are counted by reason, every reason from the start.
        let reasons = snapshot
            .keys()
            .filter(|key| {
                key.key().name() == "memberlist.rejected"
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == "node" && l.value() == node)
            })
            .filter_map(|key| key.key().labels().find(|l| l.key() == "reason"))
            .count();
        assert_eq!(reasons, swim_tests::swim_core::Rejection::ALL.len());
    }
}
