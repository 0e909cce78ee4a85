//! A reader that pauses loses no user message to probe notices, and learns
//! from its `Events` how many it did lose (finding 8: 189 events dropped
//! while a reader paused for 20 s, mostly `ProbeAcked`).

use std::time::Duration;

use swim_tokio::{Config, Event, MemoryNetwork, NodeConfig};

#[tokio::test(start_paused = true)]
async fn a_paused_reader_keeps_its_user_messages() {
    let net = MemoryNetwork::new(5);
    let mut nodes = Vec::new();
    for i in 1..=5u8 {
        let addr = format!("10.0.0.{i}:7946").parse().unwrap();
        let mut config = NodeConfig::new(addr, Config::local(format!("n{i}"), addr));
        config.seed = Some(i.into());
        config.event_capacity = 16;
        let (node, events) = swim_tokio::builder(config)
            .transport(net.transport(addr).unwrap())
            .start()
            .await
            .unwrap();
        nodes.push((addr, node, events));
    }
    for (_, node, _) in &nodes[1..] {
        assert_eq!(node.join([nodes[0].0]).await, Ok(1));
    }
    let (_, observer, events) = &nodes[0];
    // The reader pauses for 20 s: some 80 probes of 4 members are acked.
    tokio::time::sleep(Duration::from_secs(10)).await;
    for i in 0..8u8 {
        nodes[1].1.send_reliable("n1", &[i]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut messages = Vec::new();
    let mut acks = 0;
    while let Some(event) = events.try_recv() {
        match event {
            Event::UserMessage { payload, .. } => messages.extend(payload),
            Event::ProbeAcked { .. } => acks += 1,
            _ => {}
        }
    }
    assert_eq!(messages, (0..8).collect::<Vec<u8>>());
    assert!(acks <= 4, "one probe notice per member, the latest: {acks}");
    assert_eq!(events.dropped(), 0);
    assert_eq!(observer.stats().await.unwrap().events_dropped, 0);
}
