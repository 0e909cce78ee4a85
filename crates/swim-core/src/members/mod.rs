//! The member table: every member this node knows, itself included, in
//! probe order, found by name. The rules that change it are in [`rules`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::SocketAddr;
use core::time::Duration;

use hashbrown::HashTable;

use crate::broadcast::Derive;
use crate::member::{Member, MemberChange, MemberCounts, MemberState, WireIp};
use crate::names::SharedNames;
use crate::rng::Rng;
use crate::suspicion::Suspicion;
use crate::time::Instant;
use crate::wire::{Alive, Message, Transport};

mod rules;

pub(crate) use rules::{AliveClaim, Claim, Ctx, Effect};

/// Name lookups hash with a fixed seed: deterministic (no iteration order
/// is ever observed anyway).
fn name_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x5157_494d)
}

/// One member's record (kept compact: the simulator holds 10,000 nodes ×
/// 10,000 records).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) name: Arc<str>,
    pub(crate) meta: Arc<[u8]>,
    pub(crate) suspicion: Option<Box<Suspicion>>,
    pub(crate) state_change: Instant,
    pub(crate) addr: WireIp,
    pub(crate) incarnation: u32,
    pub(crate) port: u16,
    pub(crate) vsn: [u8; 6],
    pub(crate) state: MemberState,
}

impl Record {
    pub(crate) fn socket_addr(&self) -> Option<SocketAddr> {
        self.addr.socket_addr(self.port)
    }

    pub(crate) fn to_member(&self) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.addr.shown(self.port),
            meta: self.meta.clone(),
            incarnation: self.incarnation,
            state: self.state,
            vsn: self.vsn,
        }
    }

    pub(crate) fn pmax(&self) -> u8 {
        self.vsn[1]
    }

    pub(crate) fn dead_or_left(&self) -> bool {
        !self.state.is_member()
    }
}

/// Moves `r` to `state` as of `now`, keeping the counts by state.
fn set_state(counts: &mut MemberCounts, r: &mut Record, state: MemberState, now: Instant) {
    *counts.of(r.state) -= 1;
    *counts.of(state) += 1;
    r.state = state;
    r.state_change = now;
}

/// Alive broadcasts, written from the member table whenever they are sent (see
/// [`BroadcastQueue::push_derived`](crate::broadcast::BroadcastQueue::push_derived)).
pub(crate) struct AliveMessages<'a>(pub(crate) &'a Members);

impl Derive for AliveMessages<'_> {
    fn write(&mut self, node: &Arc<str>, hint: usize, out: &mut Vec<u8>) -> Option<usize> {
        let at = self.0.position_near(node, hint)?;
        self.0.encode_alive(at, out);
        Some(at)
    }

    fn warm(&mut self, node: &Arc<str>, hint: usize) {
        let at = self.0.position_near(node, hint);
        core::hint::black_box(at.map(|at| self.0.nodes[at].incarnation));
    }
}

/// The member table, in probe order, with the local node's entry in it.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    nodes: Vec<Record>,
    /// Positions in `nodes`, found by hashing the name (4 bytes a slot:
    /// the name itself lives in the record).
    index: HashTable<u32>,
    local: Arc<str>,
    /// The local incarnation counter (Go's `m.incarnation`).
    local_incarnation: u32,
    /// When our incarnation last rose (an announcement or a refutation).
    local_raised_at: Instant,
    max_members: usize,
    /// Members by state, kept with every state change.
    counts: MemberCounts,
    /// Every change, when the caller asked for them.
    record_changes: bool,
    changes: Vec<MemberChange>,
    /// Shared by every member without metadata, so none allocates for it.
    no_meta: Arc<[u8]>,
    /// Names shared with other instances in this process, if any.
    names: SharedNames,
}

impl Members {
    /// An empty table for the local node `local` (its record comes with its
    /// first announcement).
    pub(crate) fn new(
        local: &str,
        max_members: usize,
        record_changes: bool,
        names: SharedNames,
    ) -> Self {
        Members {
            no_meta: Arc::from(&[][..]),
            nodes: Vec::new(),
            index: HashTable::new(),
            local: names.share(local),
            local_incarnation: 0,
            local_raised_at: Instant::ZERO,
            max_members,
            counts: MemberCounts::default(),
            record_changes,
            changes: Vec::new(),
            names,
        }
    }

    /// Records the record at `idx` as changed (when recording).
    fn note(&mut self, idx: usize) {
        if self.record_changes {
            self.changes
                .push(MemberChange::Updated(self.nodes[idx].to_member()));
        }
    }

    /// The changes recorded since the last call (the buffer goes with them,
    /// so a burst does not pin its peak size); `None` when not recording.
    pub(crate) fn take_changes(&mut self) -> Option<Vec<MemberChange>> {
        self.record_changes
            .then(|| core::mem::take(&mut self.changes))
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Record> {
        self.index_of(name).map(|i| &self.nodes[i])
    }

    /// Where the record of `name` is, looked for at `at` first (where it was when an effect
    /// was made, or a broadcast last sent).
    pub(crate) fn position_near(&self, name: &Arc<str>, at: usize) -> Option<usize> {
        match self.nodes.get(at) {
            Some(r) if Arc::ptr_eq(&r.name, name) => Some(at),
            _ => self.index_of(name),
        }
    }

    /// Appends the alive message of the record at `at` as a packet part; returns its length.
    pub(crate) fn encode_alive(&self, at: usize, out: &mut Vec<u8>) -> usize {
        let r = &self.nodes[at];
        let start = out.len();
        Message::Alive(Alive {
            incarnation: r.incarnation,
            node: &r.name,
            addr: r.addr.as_bytes().into(),
            port: r.port,
            meta: (&*r.meta).into(),
            vsn: r.vsn[..].into(),
        })
        .encode(Transport::Packet, out);
        out.len() - start
    }

    pub(crate) fn records(&self) -> &[Record] {
        &self.nodes
    }

    pub(crate) fn local_name(&self) -> &Arc<str> {
        &self.local
    }

    pub(crate) fn local(&self) -> Option<&Record> {
        self.get(&self.local)
    }

    pub(crate) fn counts(&self) -> MemberCounts {
        self.counts
    }

    /// Whether any member but us is alive (someone to hear a broadcast).
    pub(crate) fn any_other_alive(&self) -> bool {
        let local_alive = self.local().is_some_and(|r| r.state == MemberState::Alive);
        self.counts.alive > usize::from(local_alive)
    }

    /// `meta` as a record's metadata: the shared empty one, or a new allocation.
    fn share_meta(&self, meta: &[u8]) -> Arc<[u8]> {
        if meta.is_empty() {
            self.no_meta.clone()
        } else {
            Arc::from(meta)
        }
    }

    /// Looks up the records of `names` and discards what it finds, so that handling them next
    /// finds them in cache: these lookups are independent, so their cache misses overlap.
    pub(crate) fn warm<'n>(&self, names: impl Iterator<Item = &'n str>) {
        for name in names {
            core::hint::black_box(self.index_of(name).map(|i| self.nodes[i].incarnation));
        }
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        let hash = name_hasher().hash_one(name);
        self.index
            .find(hash, |&i| *self.nodes[i as usize].name == *name)
            .map(|&i| i as usize)
    }

    /// When our incarnation last rose.
    pub(crate) fn local_raised_at(&self) -> Instant {
        self.local_raised_at
    }

    /// The next local incarnation (Go's `nextIncarnation`).
    pub(crate) fn next_incarnation(&mut self) -> u32 {
        // Saturates: wrapping to 0 would make every later announcement of
        // ours look stale (Go wraps; an accusation at u32::MAX is a hostile
        // or broken peer either way).
        self.local_incarnation = self.local_incarnation.saturating_add(1);
        self.local_incarnation
    }

    /// Adds a record at a random position of the probe order (Go swaps it
    /// with a random earlier entry).
    fn insert(&mut self, record: Record, rng: &mut Rng) -> usize {
        let n = self.nodes.len();
        let offset = if n == 0 { 0 } else { rng.below(n) };
        if n == self.nodes.capacity() {
            // Grow by a quarter, not double: the table is most of a node's
            // memory, and amortized pushes stay O(1).
            self.nodes.reserve_exact((n / 4).max(16));
        }
        if offset != n {
            // The member now at `offset` moves to the end.
            let moved = name_hasher().hash_one(&*self.nodes[offset].name);
            if let Some(i) = self.index.find_mut(moved, |&i| i as usize == offset) {
                *i = n as u32;
            }
        }
        let hash = name_hasher().hash_one(&*record.name);
        *self.counts.of(record.state) += 1;
        self.nodes.push(record);
        self.nodes.swap(offset, n);
        let nodes = &self.nodes;
        self.index.insert_unique(hash, offset as u32, |&i| {
            name_hasher().hash_one(&*nodes[i as usize].name)
        });
        offset
    }

    // ------------------------------------------------------------ probe order

    /// The next member to probe after `cursor`, wrapping around (and then
    /// reaping and reshuffling) like Go's `probe`. Skips us and dead or
    /// left members.
    pub(crate) fn next_probe_target(
        &mut self,
        cursor: &mut usize,
        now: Instant,
        gossip_to_the_dead: Duration,
        rng: &mut Rng,
    ) -> Option<Arc<str>> {
        let mut checked = 0;
        loop {
            if checked >= self.nodes.len() {
                return None;
            }
            if *cursor >= self.nodes.len() {
                self.reap_and_shuffle(now, gossip_to_the_dead, rng);
                *cursor = 0;
                checked += 1;
                continue;
            }
            let r = &self.nodes[*cursor];
            *cursor += 1;
            if *r.name == *self.local || r.dead_or_left() {
                checked += 1;
                continue;
            }
            return Some(r.name.clone());
        }
    }

    /// Drops members dead or left for longer than `gossip_to_the_dead`
    /// (upstream ≥ 0.3.1 reaps Left too), then shuffles the probe order.
    pub(crate) fn reap_and_shuffle(
        &mut self,
        now: Instant,
        gossip_to_the_dead: Duration,
        rng: &mut Rng,
    ) {
        let local = self.local.clone();
        let (record, changes, counts) = (self.record_changes, &mut self.changes, &mut self.counts);
        self.nodes.retain(|r| {
            let keep = *r.name == *local
                || !r.dead_or_left()
                || now.saturating_duration_since(r.state_change) <= gossip_to_the_dead;
            if !keep {
                *counts.of(r.state) -= 1;
                if record {
                    changes.push(MemberChange::Removed(r.name.clone()));
                }
            }
            keep
        });
        rng.shuffle(&mut self.nodes);
        self.index.clear();
        let nodes = &self.nodes;
        for (i, r) in nodes.iter().enumerate() {
            let hash = name_hasher().hash_one(&*r.name);
            self.index.insert_unique(hash, i as u32, |&j| {
                name_hasher().hash_one(&*nodes[j as usize].name)
            });
        }
    }

    /// Up to `k` distinct random members passing `keep`, in random order.
    pub(crate) fn random_members(
        &self,
        k: usize,
        rng: &mut Rng,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> Vec<usize> {
        let n = self.nodes.len();
        let mut chosen = Vec::with_capacity(k);
        if n > 3 * k {
            // Go's way: random draws, at most 3n of them, O(k) when most
            // members are eligible (the common case in a big cluster).
            for _ in 0..3 * n {
                if chosen.len() == k {
                    return chosen;
                }
                let i = rng.below(n);
                if keep(&self.nodes[i]) && !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
            return chosen;
        }
        // Small tables: an exact partial shuffle (upstream ≥ 0.6 does the
        // same when n < 3k).
        let mut eligible: Vec<usize> = (0..n).filter(|&i| keep(&self.nodes[i])).collect();
        let k = k.min(eligible.len());
        for i in 0..k {
            let j = i + rng.below(eligible.len() - i);
            eligible.swap(i, j);
        }
        eligible.truncate(k);
        eligible
    }

    pub(crate) fn record(&self, i: usize) -> &Record {
        &self.nodes[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_compact() {
        // The simulator holds 10,000 × 10,000 of these.
        assert!(
            core::mem::size_of::<Record>() <= 80,
            "{}",
            core::mem::size_of::<Record>()
        );
    }
}
