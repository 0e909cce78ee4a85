//! A replicated key/value map, kept in sync the way services on memberlist
//! do it: each write is a named broadcast (keyed by the map's key, so only
//! the latest value of a key is gossiped, however many writes queue up),
//! and every push/pull carries the whole map as the node's state (asked of
//! a delegate at that moment), which repairs what gossip missed and brings
//! a node that joins late up to date.
//!
//! ```text
//! cargo run -p swim-tokio --example kv_sync
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_tokio::{Config, Delegate, Event, Events, Node, NodeConfig};

/// A value and the version that wrote it: a counter, then the writer's name
/// to order concurrent writes the same way everywhere.
type Versioned = ((u64, String), String);

/// One node's copy of the map.
#[derive(Default)]
struct Store {
    map: BTreeMap<String, Versioned>,
}

impl Store {
    /// Takes `value` for `key` if its version is newer than what is held.
    fn apply(&mut self, key: &str, version: (u64, String), value: &str) {
        let newer = self.map.get(key).is_none_or(|(held, _)| version > *held);
        if newer {
            self.map
                .insert(key.to_string(), (version, value.to_string()));
        }
    }

    /// Lines `key\tcounter\twriter\tvalue`.
    fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for (key, ((counter, writer), value)) in &self.map {
            out += &format!("{key}\t{counter}\t{writer}\t{value}\n");
        }
        out.into_bytes()
    }

    fn merge(&mut self, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            let parts: Vec<&str> = line.splitn(4, '\t').collect();
            if let [key, counter, writer, value] = parts[..] {
                if let Ok(counter) = counter.parse() {
                    self.apply(key, (counter, writer.to_string()), value);
                }
            }
        }
    }

    fn values(&self) -> BTreeMap<String, String> {
        self.map
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }
}

/// Hands out the whole map whenever a push/pull happens.
struct MapState(Arc<Mutex<Store>>);

impl Delegate for MapState {
    fn local_state(&mut self, _join: bool) -> Option<Vec<u8>> {
        Some(self.0.lock().unwrap().encode())
    }
}

/// A node with its copy of the map.
struct Replica {
    name: String,
    node: Node,
    store: Arc<Mutex<Store>>,
    counter: u64,
}

impl Replica {
    async fn start(name: &str) -> Result<Replica, Box<dyn std::error::Error>> {
        let bind = "127.0.0.1:0".parse()?;
        let mut config = Config::local(name, bind);
        config.push_pull_interval = Duration::from_secs(2);
        let store = Arc::new(Mutex::new(Store::default()));
        let (node, events) = swim_tokio::builder(NodeConfig::new(bind, config))
            .delegate(MapState(store.clone()))
            .start()
            .await?;
        tokio::spawn(apply_events(events, store.clone()));
        Ok(Replica {
            name: name.to_string(),
            node,
            store,
            counter: 0,
        })
    }

    /// Writes `key = value` here, and gossips it under the key's name.
    async fn set(&mut self, key: &str, value: &str) -> Result<(), swim_tokio::Error> {
        self.counter += 1;
        let version = (self.counter, self.name.clone());
        self.store
            .lock()
            .unwrap()
            .apply(key, version.clone(), value);
        let line = format!("{key}\t{}\t{}\t{value}\n", version.0, version.1);
        self.node.broadcast_named(key, line.as_bytes()).await?;
        Ok(())
    }

    fn values(&self) -> BTreeMap<String, String> {
        self.store.lock().unwrap().values()
    }
}

/// Applies writes gossiped by others, and the whole maps push/pulls bring.
async fn apply_events(events: Events, store: Arc<Mutex<Store>>) {
    while let Some(event) = events.recv().await {
        match event {
            Event::UserMessage { payload, .. } => store.lock().unwrap().merge(&payload),
            Event::RemoteState { state, .. } => store.lock().unwrap().merge(&state),
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = Replica::start("a").await?;
    let mut b = Replica::start("b").await?;
    b.node.join(&[a.node.bound_addr()]).await?;

    a.set("color", "red").await?;
    a.set("color", "blue").await?; // replaces "red" in a's queue: only blue is gossiped
    b.set("size", "L").await?;

    // c joins late: the join's push/pull brings it the whole map at once.
    let c = Replica::start("c").await?;
    c.node.join(&[b.node.bound_addr()]).await?;

    let want: BTreeMap<String, String> = [("color", "blue"), ("size", "L")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    for _ in 0..100 {
        if [&a, &b, &c].iter().all(|r| r.values() == want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in [&a, &b, &c] {
        println!("{}: {:?}", r.name, r.values());
        assert_eq!(r.values(), want, "{} is out of sync", r.name);
    }
    for r in [a, b, c] {
        r.node.shutdown().await;
    }
    Ok(())
}
