//! A delegate: what Go memberlist asks its `AliveDelegate`, `MergeDelegate`
//! and `PingDelegate`, answered by one Rust value on the node's task — here
//! a node that admits members of its own zone only, and puts its load in
//! every ack so that peers learn it with each probe round trip.
//!
//! ```text
//! cargo run -p swim-tokio --example custom_delegate
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use swim_tokio::{Config, Delegate, Event, Member, NodeConfig};

/// Admits members whose metadata names `zone`; reports `load` in acks.
struct ZoneGuard {
    zone: &'static [u8],
    load: Arc<AtomicU32>,
}

impl Delegate for ZoneGuard {
    fn allow_alive(&mut self, member: &Member) -> bool {
        &*member.meta == self.zone
    }

    fn allow_merge(&mut self, members: &[Member]) -> bool {
        // A cluster of another zone is refused as a whole.
        members.iter().all(|m| &*m.meta == self.zone)
    }

    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        Some(self.load.load(Ordering::Relaxed).to_be_bytes().to_vec())
    }
}

fn config(name: &str, zone: &[u8]) -> Result<NodeConfig, Box<dyn std::error::Error>> {
    let bind = "127.0.0.1:0".parse()?;
    let mut config = Config::local(name, bind);
    config.meta = zone.to_vec();
    Ok(NodeConfig::new(bind, config))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let load = Arc::new(AtomicU32::new(42));
    let guard = ZoneGuard {
        zone: b"eu-1",
        load: load.clone(),
    };
    let (guarded, _) = swim_tokio::builder(config("guarded", b"eu-1")?)
        .delegate(guard)
        .start()
        .await?;
    let (neighbour, events) = swim_tokio::start(config("neighbour", b"eu-1")?).await?;
    let (stranger, _) = swim_tokio::start(config("stranger", b"us-2")?).await?;

    neighbour.join(&[guarded.bound_addr()]).await?;
    // The stranger can reach `guarded` (as in Go, the merge veto only keeps
    // the other zone's state out of `guarded`'s table), but `guarded` never
    // admits it, and the stranger's join says so.
    match stranger.join(&[guarded.bound_addr()]).await {
        Err(swim_tokio::Error::Join(failures)) => {
            println!("the stranger's join was refused: {:?}", failures[0].reason);
        }
        other => return Err(format!("the stranger should be refused: {other:?}").into()),
    }

    // The neighbour's probes of `guarded` carry its load.
    let ack = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            if let Event::ProbeAcked { node, rtt, payload } = event {
                if &*node == "guarded" {
                    return Some((rtt, payload));
                }
            }
        }
        None
    })
    .await?;
    let (rtt, payload) = ack.expect("a probe of guarded");
    let reported = u32::from_be_bytes(payload.try_into().map_err(|_| "a 4-byte load")?);
    println!("guarded answered a probe in {rtt:?}, reporting load {reported}");
    assert_eq!(reported, 42);

    let names: Vec<_> = guarded.members().iter().map(|m| m.name.clone()).collect();
    println!("guarded lists {names:?}");
    assert!(!names.iter().any(|n| &**n == "stranger"));
    for node in [guarded, neighbour, stranger] {
        node.shutdown().await;
    }
    Ok(())
}
