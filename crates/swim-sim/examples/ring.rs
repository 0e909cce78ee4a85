//! A rendezvous-hash ring on every simulated node: each node assigns keys
//! to members from the membership events it sees — the way a sharded store
//! or a cache decides who owns what — and a sweep of chaotic seeds checks
//! that the nodes agree.
//!
//! The invariant: once the cluster has settled after the last fault (every
//! live node lists exactly the live nodes), every live node assigns every
//! key to the same owner, and that owner is live.
//!
//! ```text
//! cargo run --release -p swim-sim --example ring -- --seeds 20
//! cargo run --release -p swim-sim --example ring -- --seeds 20 --bug   # caught
//! ```
//!
//! The planted bug (`--bug`): the ring ignores `MemberLeft`, so a node that
//! left gracefully keeps owning keys.

mod common;

use std::collections::BTreeSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::process::ExitCode;

use swim_sim::swim_core::Event;
use swim_sim::{node_index, AppFailure, Application, Apps, Check, NodeContext, Scenario};

/// Keys the invariant asks about.
const KEYS: u64 = 64;

/// One node's ring: the members it believes in.
struct Ring {
    members: BTreeSet<String>,
    bug: bool,
}

impl Ring {
    /// The owner of `key`: the member with the highest hash of (key, member).
    fn owner(&self, key: u64) -> Option<&str> {
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        self.members
            .iter()
            .max_by_key(|m| hasher.hash_one((key, m.as_str())))
            .map(String::as_str)
    }
}

impl Application for Ring {
    fn started(&mut self, node: &mut NodeContext<'_>) {
        self.members = node
            .swim()
            .members()
            .iter()
            .map(|m| m.name.to_string())
            .collect();
    }

    fn event(&mut self, _node: &mut NodeContext<'_>, event: &Event) {
        match event {
            Event::MemberJoined(m) => {
                self.members.insert(m.name.to_string());
            }
            Event::MemberFailed(m) => {
                self.members.remove(&*m.name);
            }
            Event::MemberLeft(m) if !self.bug => {
                self.members.remove(&*m.name);
            }
            _ => {}
        }
    }
}

/// Every live node's ring agrees on every key's owner, and it is live.
fn rings_agree(apps: &Apps<'_>) -> Result<(), AppFailure> {
    let mut rings = apps.live::<Ring>();
    let Some((first, reference)) = rings.next() else {
        return Ok(());
    };
    for key in 0..KEYS {
        let owner = reference.owner(key);
        let live = owner.and_then(node_index).is_some_and(|o| apps.is_live(o));
        if !live {
            // Name the owner too: its history shows how it went.
            let named = owner.and_then(node_index).into_iter();
            return Err(AppFailure::new(
                std::iter::once(first).chain(named),
                format!("key {key} is owned by {owner:?}, which is not live"),
            ));
        }
    }
    for (i, ring) in rings {
        if let Some(key) = (0..KEYS).find(|&k| ring.owner(k) != reference.owner(k)) {
            return Err(AppFailure::new(
                [first, i],
                format!(
                    "key {key}: {:?} here, {:?} there",
                    reference.owner(key),
                    ring.owner(key)
                ),
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let o = match common::options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ring: {e}");
            return ExitCode::from(2);
        }
    };
    let bug = o.bug;
    let checked = common::Checked::default();
    let counter = checked.clone();
    let prepare = move |sc: Scenario| {
        let counter = counter.clone();
        sc.app(move |_| Ring {
            members: BTreeSet::new(),
            bug,
        })
        .invariant("ring-agrees", Check::Converged, move |apps| {
            counter.tick();
            rings_agree(apps)
        })
    };
    common::run(&o, &prepare, &checked)
}
