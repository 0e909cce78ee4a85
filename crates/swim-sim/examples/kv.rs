//! A replicated key/value map on every simulated node, kept in sync the way
//! services on memberlist do it: each write is a named user broadcast
//! (relayed, so it spreads to everyone), and every push/pull carries the
//! whole map as the node's state, which repairs what gossip missed —
//! a node that restarts empty, one cut off by a partition, a lossy link.
//!
//! The invariant: at the end of the run every live node holds the same map.
//! The run lasts long enough after the last write and the last fault for
//! anti-entropy to repair what gossip missed (see [`repair_time`]).
//!
//! ```text
//! cargo run --release -p swim-sim --example kv -- --seeds 20
//! cargo run --release -p swim-sim --example kv -- --seeds 20 --bug   # caught
//! ```
//!
//! The planted bug (`--bug`): nodes ignore the state push/pulls bring, so a
//! node that restarts after the last write never learns the map.

mod common;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use swim_sim::swim_core::Event;
use swim_sim::{AppFailure, Application, Apps, Check, NodeContext, Scenario};

/// Writes happen at random times until this.
const WRITES_UNTIL: Duration = Duration::from_secs(30);
/// Writes per node.
const WRITES: u64 = 3;
/// Keys written.
const KEYS: u64 = 8;

/// A version: a Lamport counter, then the writer's index to order
/// concurrent writes the same way everywhere.
type Version = (u64, u64);

/// One node's map.
#[derive(Default)]
struct Kv {
    map: BTreeMap<u64, (Version, u64)>,
    clock: u64,
    bug: bool,
}

impl Kv {
    /// Takes `value` for `key` if its version is newer than what is held.
    fn apply(&mut self, key: u64, version: Version, value: u64) -> bool {
        self.clock = self.clock.max(version.0);
        let newer = self.map.get(&key).is_none_or(|(held, _)| version > *held);
        if newer {
            self.map.insert(key, (version, value));
        }
        newer
    }

    fn encode_entry(key: u64, (counter, writer): Version, value: u64) -> Vec<u8> {
        [key, counter, writer, value]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect()
    }

    /// Entries of 32 bytes each.
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut changed = false;
        for entry in bytes.chunks_exact(32) {
            let word =
                |i: usize| u64::from_be_bytes(entry[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            changed |= self.apply(word(0), (word(1), word(2)), word(3));
        }
        changed
    }

    fn state(&self) -> Vec<u8> {
        self.map
            .iter()
            .flat_map(|(&k, &(v, value))| Kv::encode_entry(k, v, value))
            .collect()
    }
}

impl Application for Kv {
    fn started(&mut self, node: &mut NodeContext<'_>) {
        // A few writes at random times before WRITES_UNTIL (if the node is
        // up then: one that restarts later writes nothing).
        let until = WRITES_UNTIL.as_millis() as u64;
        for token in 0..WRITES {
            let at = node.random_below(until);
            let delay = Duration::from_millis(at).saturating_sub(node.now());
            if !delay.is_zero() {
                node.set_timer(delay, token);
            }
        }
    }

    fn timer(&mut self, node: &mut NodeContext<'_>, _token: u64) {
        let key = node.random_below(KEYS);
        let value = node.random();
        self.clock += 1;
        let version = (self.clock, node.index() as u64);
        self.apply(key, version, value);
        let _ = node.broadcast_named(&key.to_string(), &Kv::encode_entry(key, version, value));
        node.set_local_state(self.state());
    }

    fn event(&mut self, node: &mut NodeContext<'_>, event: &Event) {
        let changed = match event {
            Event::UserMessage { payload, .. } => self.merge(payload),
            Event::RemoteState { state, .. } if !self.bug => self.merge(state),
            _ => false,
        };
        if changed {
            node.set_local_state(self.state());
        }
    }
}

/// Every live node holds the same map.
fn maps_agree(apps: &Apps<'_>) -> Result<(), AppFailure> {
    let mut maps = apps.live::<Kv>();
    let Some((first, reference)) = maps.next() else {
        return Ok(());
    };
    for (i, kv) in maps {
        let differs = (0..KEYS).find(|k| reference.map.get(k) != kv.map.get(k));
        if let Some(key) = differs {
            return Err(AppFailure::new(
                [first, i],
                format!(
                    "key {key}: (version, value) {:?} vs {:?}",
                    reference.map.get(&key),
                    kv.map.get(&key)
                ),
            ));
        }
    }
    Ok(())
}

/// How long anti-entropy may take to carry a write that gossip missed to
/// every node. A write made on the far side of a partition reaches no one
/// by gossip; from then on only push/pulls spread it, each node starting
/// one per scaled interval: like an epidemic, about log2(n) rounds reach
/// most nodes, and a few more let the last one pick, or be picked by, a
/// node that has it. (Measured on 1,000 seeds of up to 64 nodes: with the
/// membership's bound alone, two intervals, seed 123's write, made inside a
/// partition, had not reached one node by the end; with `log2(n)` rounds
/// every map agreed wherever the membership itself converged.)
fn repair_time(sc: &Scenario) -> Duration {
    let n = sc.nodes.max(2);
    let rounds = (n as f64).log2().ceil() as u32 + 4;
    sc.node_config(0).push_pull_interval_at(n) * rounds
}

/// The scenario, run until the membership has converged and anti-entropy
/// has repaired the maps, after both the last fault and the last write.
fn long_enough(mut sc: Scenario) -> Scenario {
    let quiet = sc.quiet_from().unwrap_or(sc.duration).max(WRITES_UNTIL);
    let settle = sc.convergence_bound().max(repair_time(&sc));
    sc.duration = quiet + settle + Duration::from_secs(1);
    sc
}

fn main() -> ExitCode {
    let o = match common::options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kv: {e}");
            return ExitCode::from(2);
        }
    };
    let bug = o.bug;
    let checked = common::Checked::default();
    let counter = checked.clone();
    let prepare = move |sc: Scenario| {
        let counter = counter.clone();
        long_enough(sc.config_hook(|_, c| c.relay_user_broadcasts = true))
            .app(move |_| Kv {
                bug,
                ..Kv::default()
            })
            .invariant("kv-agrees", Check::AtEnd, move |apps| {
                counter.tick();
                maps_agree(apps)
            })
    };
    common::run(&o, &prepare, &checked)
}
