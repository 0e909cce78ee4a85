//! The transmit-limited broadcast queue (gossip dissemination).
//!
//! A port of the behaviour of memberlist's `TransmitLimitedQueue` (v0.2.2, WIRE.md §7.2, §9.2):
//! every queued message is piggybacked or gossiped until it has been sent `retransmit_limit`
//! times; messages sent fewer times go first, and within a transmit tier the largest message that
//! still fits the packet goes first (newest on ties). Messages are opaque encoded bytes here, or
//! derived by the caller when sent (see [`Body`]); the caller decides what they mean.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::HashTable;

/// Identifies a broadcast whose completion someone waits for (e.g. our own leave).
pub(crate) type Token = u64;

/// `mult × ceil(log10(n + 1))`: how many times each broadcast is sent in a cluster of `n` nodes.
///
/// `ceil(log10(n + 1))` is the number of decimal digits of `n` (0 for 0). Go computes it with
/// floats; that agrees with the digit count for every n up to 10^8 (checked exhaustively against
/// Go 1.19), and integer math cannot round differently on another platform.
pub(crate) fn retransmit_limit(mult: usize, n: usize) -> usize {
    let mut digits = 0usize;
    let mut rest = n;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    // Go's int multiplication would wrap; saturating is the sane reading of a huge multiplier.
    mult.saturating_mul(digits)
}

/// Position of a broadcast in the queue, ordered like Go's `limitedBroadcast.Less`: fewest
/// transmits first, then the longest message, then the newest (highest id).
///
/// Packed into two words so the order index stays small (a node that has just learned ten
/// thousand members holds ten thousand of these): `hi` is the transmit count above the
/// bitwise-inverted length, `lo` the inverted id, so plain ascending order is Go's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey {
    hi: u64,
    lo: u64,
}

impl OrderKey {
    /// Transmit counts and lengths saturate at `u32::MAX`: no broadcast is sent four billion
    /// times, and no message (packets are under 64 KiB) is four gigabytes long.
    fn new(transmits: u32, len: usize, id: u64) -> Self {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        OrderKey {
            hi: (u64::from(transmits) << 32) | u64::from(!len),
            lo: !id,
        }
    }

    /// The first key of tier `transmits` whose message is at most `len` bytes long.
    fn at_most(transmits: u32, len: usize) -> Self {
        OrderKey::new(transmits, len, u64::MAX)
    }

    fn transmits(self) -> u32 {
        (self.hi >> 32) as u32
    }

    fn len(self) -> usize {
        !(self.hi as u32) as usize
    }

    fn with_transmits(self, transmits: u32) -> Self {
        OrderKey {
            hi: (u64::from(transmits) << 32) | (self.hi & u64::from(u32::MAX)),
            lo: self.lo,
        }
    }
}

/// A queued broadcast.
#[derive(Debug, Clone)]
struct Slot {
    /// Where the broadcast sits in `order`.
    position: OrderKey,
    /// The invalidation key (a node name), if any.
    key: Option<Arc<str>>,
    /// Where its message comes from; its length is `position.len()`.
    body: Body,
}

/// Where a queued message comes from, in one word: bytes in the queue's arena (from this
/// offset), or *derived*: written again by the caller from what its key names whenever it is
/// sent (with a hint for finding it). A node that has just learned ten thousand members holds
/// an alive broadcast for each; deriving them from the member table instead of keeping a
/// copy halves what the queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Body(usize);

impl Body {
    const DERIVED: usize = 1 << (usize::BITS - 1);

    /// Arena offsets stay far below 2^63 (the arena holds at most `max_len` packets).
    fn stored(start: usize) -> Body {
        Body(start & !Self::DERIVED)
    }

    /// Hints beyond 2^63 are merely wrong hints.
    fn derived(hint: usize) -> Body {
        Body(hint | Self::DERIVED)
    }

    /// `Ok(arena offset)` or `Err(hint)`.
    fn get(self) -> Result<usize, usize> {
        if self.0 & Self::DERIVED == 0 {
            Ok(self.0)
        } else {
            Err(self.0 & !Self::DERIVED)
        }
    }
}

/// Writes derived messages (see [`Body`]) when they are sent.
pub(crate) trait Derive {
    /// Appends the message of the broadcast keyed `key` and returns a hint for next time, or
    /// `None` when there is nothing to send any more.
    fn write(&mut self, key: &Arc<str>, hint: usize, out: &mut Vec<u8>) -> Option<usize>;

    /// Called for every derived message of a packet before any is written: an implementation
    /// may look them all up at once, so that their cache misses overlap.
    fn warm(&mut self, _key: &Arc<str>, _hint: usize) {}
}

impl<F: FnMut(&Arc<str>, usize, &mut Vec<u8>) -> Option<usize>> Derive for F {
    fn write(&mut self, key: &Arc<str>, hint: usize, out: &mut Vec<u8>) -> Option<usize> {
        self(key, hint, out)
    }
}

/// What a broadcast sends: these bytes, or `len` bytes derived when it is sent (see [`Body`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    Bytes(&'a [u8]),
    Derived { len: usize, hint: usize },
}

impl Content<'_> {
    fn len(&self) -> usize {
        match self {
            Content::Bytes(b) => b.len(),
            Content::Derived { len, .. } => *len,
        }
    }
}

/// The messages taken for one packet, copied out of the queue (or derived) back to back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parts {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Parts {
    fn push(&mut self, message: &[u8]) {
        self.bytes.extend_from_slice(message);
        self.ends.push(self.bytes.len());
    }

    /// Appends the message `write` produces if it is exactly `len` bytes long; returns what
    /// `write` returned, or `None` (and appends nothing) for a message of another length.
    fn push_with<T>(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut Vec<u8>) -> Option<T>,
    ) -> Option<T> {
        let start = self.bytes.len();
        match write(&mut self.bytes) {
            Some(t) if self.bytes.len() - start == len => {
                self.ends.push(self.bytes.len());
                Some(t)
            }
            _ => {
                self.bytes.truncate(start);
                None
            }
        }
    }

    /// Number of messages.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no message was taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The messages, in the order they were taken.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = core::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }

    /// Appends the messages of `other`.
    pub(crate) fn append(&mut self, other: &Parts) {
        for message in other.iter() {
            self.push(message);
        }
    }
}

/// A bounded queue of broadcasts, each sent a limited number of times (Go's
/// `TransmitLimitedQueue`).
///
/// Laid out for a node that has just learned thousands of members and holds a broadcast for
/// each: stored messages sit back to back in one byte arena (derived ones hold none), each
/// broadcast is a 40-byte slot, the order index maps 16-byte keys to slot numbers, and the key
/// index holds slot numbers. A broadcast moving up a tier touches the order index only.
#[derive(Debug, Clone)]
pub(crate) struct BroadcastQueue {
    /// All queued broadcasts in selection order, as slot numbers.
    order: BTreeMap<OrderKey, u32>,
    /// Queued broadcasts; vacant ones are listed in `vacant`.
    slots: Vec<Slot>,
    vacant: Vec<u32>,
    /// Message bytes of the stored slots; `garbage` of them belong to broadcasts no longer
    /// queued.
    arena: Vec<u8>,
    garbage: usize,
    /// The slot holding the broadcast of each invalidation key, hashed by key.
    by_key: HashTable<u32>,
    /// Tokens of the (few) broadcasts that carry one, by slot.
    tokens: Vec<(u32, Token)>,
    /// Most broadcasts held at once; extra ones are pruned on push.
    max_len: usize,
    /// The last id handed out (Go's `idGen`); back to 0 whenever the queue is empty.
    last_id: u64,
    /// Sum of the lengths of all queued messages.
    bytes: usize,
    /// Broadcasts taken by a fill, in the order taken.
    chosen: Vec<(OrderKey, u32)>,
    /// Broadcasts taken by a fill that go back a tier higher once it ends.
    resend: Vec<(OrderKey, u32)>,
}

fn key_hash(key: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(7).hash_one(key)
}

impl BroadcastQueue {
    /// A queue holding at most `max_len` broadcasts.
    pub(crate) fn new(max_len: usize) -> Self {
        BroadcastQueue {
            order: BTreeMap::new(),
            slots: Vec::new(),
            vacant: Vec::new(),
            arena: Vec::new(),
            garbage: 0,
            by_key: HashTable::new(),
            tokens: Vec::new(),
            max_len,
            last_id: 0,
            bytes: 0,
            chosen: Vec::new(),
            resend: Vec::new(),
        }
    }

    /// Queues `message`. With a `key` (a node name), any queued broadcast with the same key is
    /// dropped first (invalidation; its token, if any, is pushed to `finished`). Without a key
    /// the broadcast is unique (never invalidated by others). If the queue then holds more than
    /// `max_len`, the broadcasts sent most often (then the shortest, then the oldest) are dropped
    /// until it fits, like Go's `Prune`, their tokens pushed to `finished`.
    pub(crate) fn push(
        &mut self,
        key: Option<&Arc<str>>,
        message: &[u8],
        token: Option<Token>,
        finished: &mut Vec<Token>,
    ) {
        self.insert(key, Content::Bytes(message), token, 0, finished);
    }

    /// [`push`](Self::push) of a message derived from what `key` names whenever it is sent
    /// (see [`fill_deriving`](Self::fill_deriving)); `len` is its length now, `hint` helps the
    /// caller find it again.
    pub(crate) fn push_derived(
        &mut self,
        key: &Arc<str>,
        len: usize,
        hint: usize,
        finished: &mut Vec<Token>,
    ) {
        self.insert(Some(key), Content::Derived { len, hint }, None, 0, finished);
    }

    /// [`push`](Self::push) with a chosen starting transmit count (Go's `queueBroadcast`), so
    /// tests can build tiers directly.
    fn insert(
        &mut self,
        key: Option<&Arc<str>>,
        message: Content<'_>,
        token: Option<Token>,
        transmits: u32,
        finished: &mut Vec<Token>,
    ) {
        if let Some(name) = key {
            let slots = &self.slots;
            let same = |&i: &u32| {
                slots[i as usize]
                    .key
                    .as_ref()
                    .is_some_and(|k| Arc::ptr_eq(k, name) || **k == **name)
            };
            if let Ok(entry) = self.by_key.find_entry(key_hash(name), same) {
                let (slot, _) = entry.remove();
                let position = self.slots[slot as usize].position;
                self.order.remove(&position);
                self.release(slot, finished);
            }
        }
        // Ids only restart once the queue is empty at the end of an operation, so they are
        // unique among queued entries. (Go also resets mid-operation, e.g. when an invalidation
        // or a fill empties the tree momentarily; that can make two entries compare equal and
        // silently drop one, so it is deliberately not copied.) Wrapping needs 2^64 pushes
        // without the queue ever draining, so it cannot happen in practice, but must not panic.
        self.last_id = self.last_id.wrapping_add(1);
        let position = OrderKey::new(transmits, message.len(), self.last_id);
        let body = match message {
            Content::Bytes(bytes) => {
                let start = self.arena.len();
                self.arena.extend_from_slice(bytes);
                Body::stored(start)
            }
            Content::Derived { hint, .. } => Body::derived(hint),
        };
        let new = Slot {
            position,
            key: key.cloned(),
            body,
        };
        let slot = match self.vacant.pop() {
            Some(i) => {
                self.slots[i as usize] = new;
                i
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // Grow by a quarter, not double: after a join of thousands the slots are
                    // most of the queue.
                    self.slots.reserve_exact((self.slots.len() / 4).max(16));
                }
                self.slots.push(new);
                // Slot numbers are u32; a queue of four billion broadcasts does not fit in
                // memory long before that.
                (self.slots.len() - 1) as u32
            }
        };
        if let Some(name) = key {
            let slots = &self.slots;
            self.by_key
                .insert_unique(key_hash(name), slot, |&i| Self::slot_hash(slots, i));
        }
        if let Some(token) = token {
            self.tokens.push((slot, token));
        }
        self.bytes = self.bytes.saturating_add(message.len());
        if let Some(displaced) = self.order.insert(position, slot) {
            // Unreachable while ids are unique; handled so a wrapped id loses nothing silently.
            self.forget(displaced, finished);
        }
        self.prune(finished);
    }

    fn slot_hash(slots: &[Slot], slot: u32) -> u64 {
        slots[slot as usize].key.as_deref().map_or(0, key_hash)
    }

    /// Drops the queue maximum (most transmits, then shortest, then oldest) until at most
    /// `max_len` broadcasts remain.
    fn prune(&mut self, finished: &mut Vec<Token>) {
        while self.order.len() > self.max_len {
            let Some((_, slot)) = self.order.pop_last() else {
                break;
            };
            self.forget(slot, finished);
        }
        self.tidy();
    }

    /// Go's `GetBroadcasts(overhead, limit)`: appends to `out` the broadcasts to send in a
    /// packet with `limit` bytes of room, each costing `overhead` plus its length, and returns
    /// the bytes used.
    ///
    /// Tiers are walked from the fewest transmits up; in each tier the largest message that
    /// fits is taken (newest on ties), repeatedly, until none fits, and the walk stops once
    /// `limit - used - overhead <= 0`. A taken broadcast that has now been sent
    /// `transmit_limit` times leaves the queue (token to `finished`); the others move up one
    /// tier after the walk, so none is taken twice in one fill. As in Go, `transmit_limit` 0
    /// finishes every broadcast after one send. At most `max_count` broadcasts are taken.
    pub(crate) fn fill(
        &mut self,
        overhead: usize,
        limit: usize,
        transmit_limit: usize,
        max_count: usize,
        out: &mut Parts,
        finished: &mut Vec<Token>,
    ) -> usize {
        let nothing_derived = |_: &Arc<str>, _: usize, _: &mut Vec<u8>| None;
        self.fill_deriving(
            overhead,
            limit,
            transmit_limit,
            max_count,
            out,
            finished,
            nothing_derived,
        )
    }

    /// [`fill`](Self::fill) for a queue with derived messages, which `derive` writes. A derived
    /// message that is gone, or no longer has the length it was queued with, is dropped (its
    /// room in the packet stays unused).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fill_deriving(
        &mut self,
        overhead: usize,
        limit: usize,
        transmit_limit: usize,
        max_count: usize,
        out: &mut Parts,
        finished: &mut Vec<Token>,
        mut derive: impl Derive,
    ) -> usize {
        let Some(mut tier) = self.order.keys().next().map(|k| k.transmits()) else {
            return 0;
        };
        // Transmit counts saturate at u32::MAX, which therefore reaches any larger limit.
        let transmit_limit = u32::try_from(transmit_limit).unwrap_or(u32::MAX);
        let mut used = 0usize;
        let mut taken = 0usize;
        // Taken out of the order first, then written in the order taken.
        let mut chosen = core::mem::take(&mut self.chosen);
        // Re-inserted after the walk: moving them up now would let a later tier pick them again.
        let mut resend = core::mem::take(&mut self.resend);
        // A compound holds a bounded number of parts (127 for v0.2.x peers).
        while taken < max_count {
            // Go: `free := limit - bytesUsed - overhead; if free <= 0 { break }`.
            let free = match limit
                .checked_sub(used)
                .and_then(|r| r.checked_sub(overhead))
            {
                Some(free) if free > 0 => free,
                _ => break,
            };
            // The first entry at or after (tier, len = free, newest) is the longest message of
            // this tier that fits; if it lies in a later tier instead, nothing here fits and
            // that entry's tier is the next non-empty one, so empty tiers are never visited.
            let Some((&found, &slot)) = self.order.range(OrderKey::at_most(tier, free)..).next()
            else {
                break;
            };
            if found.transmits() != tier {
                tier = found.transmits();
                continue;
            }
            self.order.remove(&found);
            // Cannot overflow: overhead + len <= overhead + free = limit - used.
            used += overhead + found.len();
            taken += 1;
            chosen.push((found, slot));
        }
        // Derived messages are written from records that lie far apart: looking them all up
        // first lets those cache misses overlap.
        for &(_, slot) in &chosen {
            let s = &self.slots[slot as usize];
            if let (Err(hint), Some(key)) = (s.body.get(), &s.key) {
                derive.warm(key, hint);
            }
        }
        for (found, slot) in chosen.drain(..) {
            let len = found.len();
            let taken_slot = &mut self.slots[slot as usize];
            match taken_slot.body.get() {
                Ok(start) => out.push(&self.arena[start..start + len]),
                Err(hint) => {
                    let key = taken_slot.key.as_ref();
                    let written =
                        key.and_then(|k| out.push_with(len, |b| derive.write(k, hint, b)));
                    let Some(hint) = written else {
                        // Cannot happen while every change to what a key names queues a new
                        // broadcast for it; dropping keeps a packet within its limit.
                        debug_assert!(false, "derived broadcast of {key:?} gone or resized");
                        self.forget(slot, finished);
                        continue;
                    };
                    taken_slot.body = Body::derived(hint);
                }
            }
            let sent = found.transmits().saturating_add(1);
            if sent >= transmit_limit {
                self.forget(slot, finished);
            } else {
                resend.push((found.with_transmits(sent), slot));
            }
        }
        self.chosen = chosen;
        for (position, slot) in resend.drain(..) {
            self.slots[slot as usize].position = position;
            self.order.insert(position, slot);
        }
        self.resend = resend;
        self.tidy();
        used
    }

    /// Number of queued broadcasts.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Total bytes of queued messages.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops everything, pushing all tokens to `finished` (in queue order, like Go's `Reset`).
    pub(crate) fn clear(&mut self, finished: &mut Vec<Token>) {
        if !self.tokens.is_empty() {
            for &slot in self.order.values() {
                if let Some(&(_, token)) = self.tokens.iter().find(|(s, _)| *s == slot) {
                    finished.push(token);
                }
            }
        }
        self.order.clear();
        self.tidy();
    }

    /// Forgets a broadcast already taken out of `order`: its key mapping, then its slot.
    fn forget(&mut self, slot: u32, finished: &mut Vec<Token>) {
        if let Some(key) = &self.slots[slot as usize].key {
            if let Ok(entry) = self.by_key.find_entry(key_hash(key), |&i| i == slot) {
                entry.remove();
            }
        }
        self.release(slot, finished);
    }

    /// Frees a slot that neither index refers to any more, reporting its token.
    fn release(&mut self, slot: u32, finished: &mut Vec<Token>) {
        let freed = &mut self.slots[slot as usize];
        freed.key = None;
        let len = freed.position.len();
        self.bytes = self.bytes.saturating_sub(len);
        if freed.body.get().is_ok() {
            self.garbage += len;
        }
        self.vacant.push(slot);
        if let Some(i) = self.tokens.iter().position(|(s, _)| *s == slot) {
            finished.push(self.tokens.swap_remove(i).1);
        }
    }

    /// Go restarts its id generator when the queue drains, so ids stay small at idle. Memory
    /// is given back as the queue shrinks: after a burst (a join of thousands) the slots,
    /// arena and key index would otherwise keep their peak size for good.
    fn tidy(&mut self) {
        if self.order.is_empty() {
            self.last_id = 0;
            self.slots = Vec::new();
            self.vacant = Vec::new();
            self.arena = Vec::new();
            self.garbage = 0;
            self.by_key = HashTable::new();
            self.tokens.clear();
            self.bytes = 0;
        } else if self.garbage > 4096 && self.garbage > self.arena.len() / 2
            || self.vacant.len() > 64 && self.vacant.len() > self.slots.len() / 2
        {
            self.compact();
        }
    }

    /// Rewrites slots, arena and indexes with only the queued broadcasts, in queue order.
    fn compact(&mut self) {
        let mut slots = Vec::with_capacity(self.order.len());
        let stored = (self.order.iter())
            .filter(|(_, &slot)| self.slots[slot as usize].body.get().is_ok())
            .map(|(position, _)| position.len())
            .sum();
        let mut arena = Vec::with_capacity(stored);
        let mut by_key = HashTable::with_capacity(self.by_key.len());
        let mut tokens = Vec::with_capacity(self.tokens.len());
        for (position, slot) in self.order.iter_mut() {
            let old = &mut self.slots[*slot as usize];
            let len = position.len();
            let new = slots.len() as u32;
            if let Some(i) = self.tokens.iter().position(|(s, _)| s == slot) {
                tokens.push((new, self.tokens[i].1));
            }
            let body = match old.body.get() {
                Ok(start) => {
                    let new_start = arena.len();
                    arena.extend_from_slice(&self.arena[start..start + len]);
                    Body::stored(new_start)
                }
                Err(_) => old.body,
            };
            let key = old.key.take();
            let hash = key.as_deref().map(key_hash);
            slots.push(Slot {
                position: *position,
                key,
                body,
            });
            if let Some(hash) = hash {
                by_key.insert_unique(hash, new, |&i| Self::slot_hash(&slots, i));
            }
            *slot = new;
        }
        self.slots = slots;
        self.vacant = Vec::new();
        self.arena = arena;
        self.garbage = 0;
        self.by_key = by_key;
        self.tokens = tokens;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Arc<str> {
        Arc::from(s)
    }
    use alloc::string::String;
    use alloc::vec;
    use core::cmp::Reverse;
    use proptest::prelude::*;

    fn msg(text: &str) -> &[u8] {
        text.as_bytes()
    }

    /// The message of a queued slot.
    fn message(q: &BroadcastQueue, slot: u32) -> &[u8] {
        let s = &q.slots[slot as usize];
        let start = s.body.get().expect("a stored message");
        &q.arena[start..start + s.position.len()]
    }

    /// The queue from its maximum down (Go's `orderedView(true)`), as (transmits, text).
    fn view_desc(q: &BroadcastQueue) -> Vec<(u32, String)> {
        q.order
            .iter()
            .rev()
            .map(|(k, &slot)| {
                let text = String::from_utf8_lossy(message(q, slot)).into_owned();
                (k.transmits(), text)
            })
            .collect()
    }

    /// The keys from the queue maximum down.
    fn keys_desc(q: &BroadcastQueue) -> Vec<Arc<str>> {
        q.order
            .values()
            .rev()
            .map(|&slot| q.slots[slot as usize].key.clone().unwrap())
            .collect()
    }

    fn texts(out: &Parts) -> Vec<String> {
        out.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    /// Checks that slots, key index, tokens and `bytes` agree with `order`.
    fn assert_consistent(q: &BroadcastQueue) {
        let mut seen = alloc::collections::BTreeSet::new();
        for (position, &slot) in &q.order {
            assert!(seen.insert(slot), "two positions share slot {slot}");
            assert!(
                !q.vacant.contains(&slot),
                "queued slot {slot} is listed vacant"
            );
            assert_eq!(q.slots[slot as usize].position, *position);
        }
        let keyed = q
            .order
            .values()
            .filter(|&&s| q.slots[s as usize].key.is_some())
            .count();
        assert_eq!(q.by_key.len(), keyed);
        for &slot in &q.by_key {
            assert!(
                seen.contains(&slot),
                "the key index names a slot not queued"
            );
            let key = q.slots[slot as usize].key.as_deref().unwrap();
            assert_eq!(BroadcastQueue::slot_hash(&q.slots, slot), key_hash(key));
        }
        for (slot, _) in &q.tokens {
            assert!(seen.contains(slot), "a token outlived its broadcast");
        }
        let total: usize = q.order.keys().map(|k| k.len()).sum();
        assert_eq!(q.bytes(), total);
        assert_eq!(q.len(), q.order.len());
        assert_eq!(q.is_empty(), q.order.is_empty());
    }

    #[test]
    fn compaction_keeps_stored_and_derived_messages() {
        let mut q = BroadcastQueue::new(usize::MAX);
        let mut fin = Vec::new();
        let names: Vec<Arc<str>> = (0..300).map(|i| k(&alloc::format!("n{i:03}"))).collect();
        let text = |i: usize| alloc::format!("{}-m", names[i]);
        for (i, name) in names.iter().enumerate() {
            if i % 2 == 0 {
                q.push_derived(name, text(i).len(), i, &mut fin);
            } else {
                q.push(Some(name), text(i).as_bytes(), None, &mut fin);
            }
        }
        let derive = |key: &Arc<str>, hint: usize, out: &mut Vec<u8>| {
            assert_eq!(*names[hint], **key);
            out.extend_from_slice(text(hint).as_bytes());
            Some(hint)
        };
        // Sent once each, the 200 newest leave: 200 of 300 slots are vacant, so the queue
        // compacts.
        let mut out = Parts::default();
        q.fill_deriving(0, 200 * 6, 1, usize::MAX, &mut out, &mut fin, derive);
        assert_eq!(out.len(), 200);
        assert!(q.vacant.is_empty() && q.garbage == 0, "compacted");
        assert_eq!(q.slots.len(), 100);
        assert_consistent(&q);
        let mut out = Parts::default();
        q.fill_deriving(0, usize::MAX, 1, usize::MAX, &mut out, &mut fin, derive);
        let mut sent = texts(&out);
        sent.sort();
        assert_eq!(sent, (0..100).map(text).collect::<Vec<_>>());
        assert!(q.is_empty());
    }

    #[test]
    fn retransmit_limit_matches_table() {
        let cases = [
            (0, 0),
            (1, 4),
            (9, 4),
            (10, 8),
            (99, 8),
            (100, 12),
            (999, 12),
            (1000, 16),
            (9999, 16),
            (10_000, 20),
            (9_999_999, 28),
            (10_000_000, 32),
        ];
        for (n, want) in cases {
            assert_eq!(retransmit_limit(4, n), want, "n = {n}");
        }
        assert_eq!(retransmit_limit(3, 10), 6);
        assert_eq!(retransmit_limit(1, 10), 2);
        assert_eq!(retransmit_limit(0, 1000), 0);
        assert_eq!(retransmit_limit(usize::MAX, usize::MAX), usize::MAX);
    }

    #[test]
    fn keyed_push_replaces_and_requeues_newest() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(Some(&k("test")), msg(""), Some(1), &mut fin);
        q.push(Some(&k("foo")), msg(""), Some(2), &mut fin);
        q.push(Some(&k("bar")), msg(""), Some(3), &mut fin);
        assert_eq!(q.len(), 3);
        // Equal tier and length: the maximum is the oldest.
        let keys = keys_desc(&q);
        assert_eq!(keys, [k("test"), k("foo"), k("bar")]);

        q.push(Some(&k("test")), msg(""), Some(4), &mut fin);
        assert_eq!(q.len(), 3);
        assert_eq!(fin, [1], "the invalidated broadcast reports its token");
        let keys = keys_desc(&q);
        assert_eq!(keys, [k("foo"), k("bar"), k("test")]);
        assert_consistent(&q);
    }

    #[test]
    fn unkeyed_broadcasts_are_never_invalidated() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(None, msg("a"), Some(1), &mut fin);
        q.push(None, msg("a"), Some(2), &mut fin);
        q.push(Some(&k("a")), msg("b"), Some(3), &mut fin);
        q.push(None, msg("c"), Some(4), &mut fin);
        assert_eq!(q.len(), 4);
        assert!(fin.is_empty());
        q.push(Some(&k("a")), msg("d"), None, &mut fin);
        assert_eq!(q.len(), 4);
        assert_eq!(fin, [3]);
        // A replacement without a token reports nothing when it goes.
        q.push(Some(&k("a")), msg("e"), Some(5), &mut fin);
        assert_eq!(fin, [3]);
        assert_consistent(&q);
    }

    #[test]
    fn fill_takes_all_that_fit() {
        // Go's TestTransmitLimited_GetBroadcasts: 18-byte messages, limit 80.
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        for (key, text) in [
            ("test", "1. this is a test."),
            ("foo", "2. this is a test."),
            ("bar", "3. this is a test."),
            ("baz", "4. this is a test."),
        ] {
            q.push(Some(&k(key)), msg(text), None, &mut fin);
        }
        let limit = retransmit_limit(3, 10);
        let mut out = Parts::default();
        assert_eq!(q.fill(2, 80, limit, usize::MAX, &mut out, &mut fin), 80);
        assert_eq!(out.len(), 4);
        out = Parts::default();
        assert_eq!(q.fill(3, 80, limit, usize::MAX, &mut out, &mut fin), 63);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn fill_respects_transmit_limit_and_resets_ids() {
        // Go's TestTransmitLimited_GetBroadcasts_Limit.
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        let limit = retransmit_limit(1, 10);
        assert_eq!(limit, 2);
        assert_eq!(q.last_id, 0);
        for (i, (key, text)) in [
            ("test", "1. this is a test."),
            ("foo", "2. this is a test."),
            ("bar", "3. this is a test."),
            ("baz", "4. this is a test."),
        ]
        .into_iter()
        .enumerate()
        {
            q.push(Some(&k(key)), msg(text), Some(i as Token + 1), &mut fin);
        }
        assert_eq!(q.last_id, 4);

        let mut out = Parts::default();
        q.fill(3, 80, limit, usize::MAX, &mut out, &mut fin);
        // Equal lengths: newest first.
        assert_eq!(
            texts(&out),
            [
                "4. this is a test.",
                "3. this is a test.",
                "2. this is a test."
            ]
        );
        assert_eq!(q.last_id, 4, "ids restart only once the queue is empty");
        assert!(fin.is_empty());

        out = Parts::default();
        q.fill(3, 80, limit, usize::MAX, &mut out, &mut fin);
        // Tier 0 first (the one left over), then the newest of tier 1.
        assert_eq!(
            texts(&out),
            [
                "1. this is a test.",
                "4. this is a test.",
                "3. this is a test."
            ]
        );
        assert_eq!(fin, [4, 3]);
        assert_eq!(q.last_id, 4);

        out = Parts::default();
        q.fill(3, 80, limit, usize::MAX, &mut out, &mut fin);
        assert_eq!(texts(&out), ["2. this is a test.", "1. this is a test."]);
        assert_eq!(fin, [4, 3, 2, 1]);
        assert_eq!(q.last_id, 0, "ids restart once the queue is empty");
        assert!(q.is_empty());

        out = Parts::default();
        assert_eq!(q.fill(3, 80, limit, usize::MAX, &mut out, &mut fin), 0);
        assert!(out.is_empty());
        assert_eq!(q.last_id, 0);
        assert_consistent(&q);
    }

    #[test]
    fn push_prunes_most_sent_then_shortest_then_oldest() {
        // Go's TestTransmitLimited_Prune: keep 2 of 4.
        let mut q = BroadcastQueue::new(2);
        let mut fin = Vec::new();
        q.push(
            Some(&k("test")),
            msg("1. this is a test."),
            Some(1),
            &mut fin,
        );
        q.push(
            Some(&k("foo")),
            msg("2. this is a test."),
            Some(2),
            &mut fin,
        );
        q.push(Some(&k("bar")), msg("3. this is a test."), None, &mut fin);
        q.push(Some(&k("baz")), msg("4. this is a test."), None, &mut fin);
        assert_eq!(q.len(), 2);
        assert_eq!(fin, [1, 2]);
        let view: Vec<_> = view_desc(&q).into_iter().map(|(_, t)| t).collect();
        assert_eq!(view, ["3. this is a test.", "4. this is a test."]);
        assert_consistent(&q);

        // Higher tiers go before shorter messages, shorter before older.
        let mut q = BroadcastQueue::new(3);
        let mut fin = Vec::new();
        q.insert(
            None,
            Content::Bytes(msg("long, sent twice")),
            Some(1),
            2,
            &mut fin,
        );
        q.insert(None, Content::Bytes(msg("short")), Some(2), 0, &mut fin);
        q.insert(None, Content::Bytes(msg("older")), Some(3), 1, &mut fin);
        q.insert(None, Content::Bytes(msg("newer")), Some(4), 1, &mut fin);
        assert_eq!(fin, [1]);
        q.insert(None, Content::Bytes(msg("x")), Some(5), 1, &mut fin);
        assert_eq!(fin, [1, 5]);
        q.insert(None, Content::Bytes(msg("fresh")), Some(6), 0, &mut fin);
        assert_eq!(fin, [1, 5, 3]);
        assert_consistent(&q);

        // A zero-capacity queue drops what it is given.
        let mut q = BroadcastQueue::new(0);
        let mut fin = Vec::new();
        q.push(Some(&k("a")), msg("a"), Some(9), &mut fin);
        assert!(q.is_empty());
        assert_eq!(fin, [9]);
        assert_eq!(q.last_id, 0);
        assert_consistent(&q);
    }

    #[test]
    fn ordering_by_transmits() {
        // Go's TestTransmitLimited_ordering.
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        for (name, transmits) in [
            ("node0", 0),
            ("node1", 10),
            ("node2", 3),
            ("node3", 4),
            ("node4", 7),
        ] {
            q.insert(
                Some(&k(name)),
                Content::Bytes(msg(name)),
                None,
                transmits,
                &mut fin,
            );
        }
        let tiers: Vec<_> = view_desc(&q).into_iter().map(|(t, _)| t).collect();
        assert_eq!(tiers, [10, 7, 4, 3, 0]);
        assert_consistent(&q);
    }

    #[test]
    fn fill_prefers_largest_fitting_then_newest() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(Some(&k("a")), msg("aaaaaaaaaa"), None, &mut fin); // 10
        q.push(Some(&k("b")), msg("bbbbb"), None, &mut fin); // 5
        q.push(Some(&k("c")), msg("ccccc"), None, &mut fin); // 5, newer than b
        q.push(Some(&k("d")), msg("ddd"), None, &mut fin); // 3
        let mut out = Parts::default();
        // Room for 12 bytes, overhead 1: a (11) does not leave room for anything else.
        assert_eq!(q.fill(1, 12, 10, usize::MAX, &mut out, &mut fin), 11);
        assert_eq!(texts(&out), ["aaaaaaaaaa"]);
        out = Parts::default();
        // a is now in tier 1; tier 0 has b, c, d: with 9 bytes of room take c (newest 5) then d.
        assert_eq!(q.fill(0, 9, 10, usize::MAX, &mut out, &mut fin), 8);
        assert_eq!(texts(&out), ["ccccc", "ddd"]);
        out = Parts::default();
        // Tier 0 holds only b; then tier 1 holds a, c, d: a fits, then nothing else does.
        assert_eq!(q.fill(0, 16, 10, usize::MAX, &mut out, &mut fin), 15);
        assert_eq!(texts(&out), ["bbbbb", "aaaaaaaaaa"]);
        assert_consistent(&q);
    }

    #[test]
    fn fill_stops_when_no_room_is_left() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(None, msg(""), None, &mut fin);
        q.push(None, msg("12345678"), None, &mut fin);
        let mut out = Parts::default();
        // free = 10 - 0 - 10 = 0: Go bails out even though an empty message would "fit".
        assert_eq!(q.fill(10, 10, 5, usize::MAX, &mut out, &mut fin), 0);
        assert_eq!(q.fill(11, 10, 5, usize::MAX, &mut out, &mut fin), 0);
        assert_eq!(q.fill(0, 0, 5, usize::MAX, &mut out, &mut fin), 0);
        assert!(out.is_empty());
        // The 8-byte message uses all the room, so the empty one waits for the next packet.
        assert_eq!(q.fill(2, 10, 5, usize::MAX, &mut out, &mut fin), 10);
        assert_eq!(texts(&out), ["12345678"]);
        out = Parts::default();
        assert_eq!(q.fill(2, 3, 5, usize::MAX, &mut out, &mut fin), 2);
        assert_eq!(out.len(), 1);
        assert!(out.iter().next().unwrap().is_empty());
    }

    #[test]
    fn fill_never_takes_a_message_twice() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(Some(&k("only")), msg("x"), Some(7), &mut fin);
        let mut out = Parts::default();
        assert_eq!(q.fill(0, 1000, 10, usize::MAX, &mut out, &mut fin), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(q.len(), 1);
        assert_eq!(q.order.keys().next().map(|k| k.transmits()), Some(1));
        assert!(fin.is_empty());
    }

    #[test]
    fn fill_jumps_over_empty_tiers() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.insert(None, Content::Bytes(msg("low")), None, 0, &mut fin);
        q.insert(
            None,
            Content::Bytes(msg("high")),
            None,
            1_000_000_000,
            &mut fin,
        );
        q.insert(None, Content::Bytes(msg("top")), None, u32::MAX, &mut fin);
        let mut out = Parts::default();
        assert_eq!(
            q.fill(0, 100, usize::MAX, usize::MAX, &mut out, &mut fin),
            10
        );
        assert_eq!(texts(&out), ["low", "high", "top"]);
        // The one at the top tier has reached the (saturated) limit.
        assert_eq!(q.len(), 2);
        assert_consistent(&q);
    }

    #[test]
    fn zero_transmit_limit_sends_once() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(Some(&k("a")), msg("a"), Some(1), &mut fin);
        q.push(None, msg("b"), Some(2), &mut fin);
        let mut out = Parts::default();
        assert_eq!(q.fill(0, 100, 0, usize::MAX, &mut out, &mut fin), 2);
        assert_eq!(out.len(), 2);
        assert!(q.is_empty());
        // Equal lengths: the newer goes first.
        assert_eq!(fin, [2, 1]);
        assert_consistent(&q);
    }

    #[test]
    fn tokens_reported_on_transmit_limit() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(Some(&k("leave")), msg("dead"), Some(42), &mut fin);
        let mut out = Parts::default();
        for _ in 0..3 {
            q.fill(0, 100, 4, usize::MAX, &mut out, &mut fin);
            assert!(fin.is_empty());
        }
        q.fill(0, 100, 4, usize::MAX, &mut out, &mut fin);
        assert_eq!(fin, [42]);
        assert_eq!(out.len(), 4);
        assert!(q.is_empty());
        q.fill(0, 100, 4, usize::MAX, &mut out, &mut fin);
        assert_eq!(out.len(), 4);
        assert_eq!(fin, [42]);
    }

    #[test]
    fn clear_reports_every_token() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(Some(&k("a")), msg("aa"), Some(1), &mut fin);
        q.push(None, msg("b"), None, &mut fin);
        q.push(None, msg("ccc"), Some(3), &mut fin);
        q.clear(&mut fin);
        // Queue order: longest first within tier 0.
        assert_eq!(fin, [3, 1]);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        assert_eq!(q.last_id, 0);
        assert_consistent(&q);
        q.push(Some(&k("a")), msg("a"), None, &mut fin);
        assert_eq!(q.len(), 1);
        assert_eq!(q.last_id, 1);
    }

    #[test]
    fn bytes_tracks_queued_messages() {
        let mut q = BroadcastQueue::new(3);
        let mut fin = Vec::new();
        assert_eq!(q.bytes(), 0);
        q.push(Some(&k("a")), msg("12345"), None, &mut fin);
        assert_eq!(q.bytes(), 5);
        q.push(Some(&k("a")), msg("12"), None, &mut fin);
        assert_eq!(q.bytes(), 2, "invalidation subtracts the old message");
        q.push(None, msg("123"), None, &mut fin);
        q.push(None, msg("1234"), None, &mut fin);
        assert_eq!(q.bytes(), 9);
        q.push(None, msg("1"), None, &mut fin);
        assert_eq!(q.bytes(), 9, "pruning drops the shortest: \"1\" itself");
        let mut out = Parts::default();
        q.fill(0, 4, 1, usize::MAX, &mut out, &mut fin);
        assert_eq!(texts(&out), ["1234"]);
        assert_eq!(q.bytes(), 5);
        q.fill(0, 100, 2, usize::MAX, &mut out, &mut fin);
        assert_eq!(q.bytes(), 5, "re-queued messages still count");
        assert_consistent(&q);
    }

    /// One step of a random scenario.
    #[derive(Debug, Clone)]
    enum Op {
        Push {
            key: Option<u8>,
            len: usize,
            token: bool,
            /// Queued as derived when keyed and without a token (like membership gossip).
            derived: bool,
        },
        Fill {
            overhead: usize,
            limit: usize,
        },
        Clear,
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (proptest::option::of(0u8..5), 0usize..40, any::<bool>(), any::<bool>())
                .prop_map(|(key, len, token, derived)| Op::Push { key, len, token, derived }),
            4 => (0usize..5, 0usize..120).prop_map(|(overhead, limit)| Op::Fill { overhead, limit }),
            1 => Just(Op::Clear),
        ]
    }

    /// One broadcast in [`Model`].
    #[derive(Debug, Clone)]
    struct ModelItem {
        transmits: usize,
        len: usize,
        id: u64,
        key: Option<u8>,
        token: Option<Token>,
        /// Index of the message in the test's list of pushed messages.
        index: usize,
    }

    impl ModelItem {
        /// Go's `Less` as a sort key: ascending = fewest transmits, longest, newest.
        fn rank(&self) -> (usize, Reverse<usize>, Reverse<u64>) {
            (self.transmits, Reverse(self.len), Reverse(self.id))
        }
    }

    /// A slow, obviously literal model of the queue: Go's algorithm over a flat list, with
    /// linear scans and a tier walk that steps through every transmit count.
    #[derive(Default)]
    struct Model {
        items: Vec<ModelItem>,
        last_id: u64,
    }

    impl Model {
        fn push(&mut self, item: ModelItem, max_len: usize, fin: &mut Vec<Token>) {
            if item.key.is_some() {
                if let Some(pos) = self.items.iter().position(|it| it.key == item.key) {
                    let old = self.items.remove(pos);
                    fin.extend(old.token);
                }
            }
            self.last_id += 1;
            self.items.push(ModelItem {
                id: self.last_id,
                ..item
            });
            while self.items.len() > max_len {
                let (pos, _) = self
                    .items
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, it)| it.rank())
                    .unwrap();
                let old = self.items.remove(pos);
                fin.extend(old.token);
            }
            if self.items.is_empty() {
                self.last_id = 0;
            }
        }

        fn fill(
            &mut self,
            overhead: usize,
            limit: usize,
            transmit_limit: usize,
            out: &mut Vec<usize>,
            fin: &mut Vec<Token>,
        ) -> usize {
            if self.items.is_empty() {
                return 0;
            }
            let min = self.items.iter().map(|it| it.transmits).min().unwrap();
            let max = self.items.iter().map(|it| it.transmits).max().unwrap();
            let mut used = 0i64;
            let mut reinsert = Vec::new();
            let mut tier = min;
            while tier <= max {
                let free = limit as i64 - used - overhead as i64;
                if free <= 0 {
                    break;
                }
                let pick = self
                    .items
                    .iter()
                    .enumerate()
                    .filter(|(_, it)| it.transmits == tier && it.len as i64 <= free)
                    .min_by_key(|(_, it)| it.rank())
                    .map(|(pos, _)| pos);
                let Some(pos) = pick else {
                    tier += 1;
                    continue;
                };
                let mut it = self.items.remove(pos);
                used += (overhead + it.len) as i64;
                out.push(it.index);
                if it.transmits + 1 >= transmit_limit {
                    fin.extend(it.token);
                } else {
                    it.transmits += 1;
                    reinsert.push(it);
                }
            }
            self.items.extend(reinsert);
            if self.items.is_empty() {
                self.last_id = 0;
            }
            used as usize
        }
    }

    proptest! {
        #[test]
        fn random_sequences_match_model_and_invariants(
            max_len in 0usize..8,
            transmit_limit in 0usize..5,
            ops in proptest::collection::vec(any_op(), 0..80),
        ) {
            let mut q = BroadcastQueue::new(max_len);
            let mut model = Model::default();
            let mut messages: Vec<Vec<u8>> = Vec::new();
            let mut sends: Vec<usize> = Vec::new();
            let mut fin = Vec::new();
            let mut model_fin = Vec::new();
            let mut tokens_given = 0usize;
            let mut current = alloc::collections::BTreeMap::<String, usize>::new();
            for op in ops {
                match op {
                    Op::Push { key, len, token, derived } => {
                        let index = messages.len();
                        // The message index leads, so messages of two bytes or more are told
                        // apart by content.
                        let mut message = vec![key.unwrap_or(0xff); len];
                        for (byte, id) in message.iter_mut().zip((index as u16).to_le_bytes()) {
                            *byte = id;
                        }
                        messages.push(message.clone());
                        sends.push(0);
                        let token = token.then_some(index as Token);
                        tokens_given += usize::from(token.is_some());
                        let name = key.map(|k| Arc::<str>::from(alloc::format!("node-{k}")));
                        if let Some(k) = key {
                            current.insert(alloc::format!("node-{k}"), index);
                        }
                        match &name {
                            Some(name) if derived && token.is_none() => {
                                q.push_derived(name, len, index, &mut fin)
                            }
                            _ => q.push(name.as_ref(), &message, token, &mut fin),
                        }
                        let item = ModelItem { transmits: 0, len, id: 0, key, token, index };
                        model.push(item, max_len, &mut model_fin);
                    }
                    Op::Fill { overhead, limit } => {
                        let mut out = Parts::default();
                        // A derived message is what its key names now: the latest pushed.
                        let derive = |key: &Arc<str>, hint: usize, out: &mut Vec<u8>| {
                            let latest = current[&**key];
                            assert_eq!(hint, latest, "the hint is where the message was");
                            out.extend_from_slice(&messages[latest]);
                            Some(latest)
                        };
                        let used = q.fill_deriving(overhead, limit, transmit_limit, usize::MAX, &mut out, &mut fin, derive);
                        let mut model_out = Vec::new();
                        let model_used = model.fill(overhead, limit, transmit_limit, &mut model_out, &mut model_fin);
                        prop_assert_eq!(used, model_used);
                        prop_assert!(used <= limit);
                        let cost: usize = out.iter().map(|m| overhead + m.len()).sum();
                        prop_assert_eq!(used, cost);
                        let taken: Vec<&[u8]> = out.iter().collect();
                        let expected: Vec<&[u8]> = model_out.iter().map(|&i| &messages[i][..]).collect();
                        prop_assert_eq!(taken, expected);
                        let indices = model_out;
                        let mut unique = indices.clone();
                        unique.sort_unstable();
                        unique.dedup();
                        prop_assert_eq!(unique.len(), indices.len(), "a message was taken twice");
                        for index in indices {
                            sends[index] += 1;
                            prop_assert!(sends[index] <= transmit_limit.max(1));
                        }
                    }
                    Op::Clear => {
                        q.clear(&mut fin);
                        let mut items = core::mem::take(&mut model.items);
                        items.sort_by_key(ModelItem::rank);
                        model_fin.extend(items.into_iter().filter_map(|it| it.token));
                        model.last_id = 0;
                    }
                }
                prop_assert!(q.len() <= max_len);
                prop_assert_eq!(q.len(), model.items.len());
                prop_assert_eq!(q.last_id, model.last_id);
                prop_assert_eq!(&fin, &model_fin);
                assert_consistent(&q);
            }
            q.clear(&mut fin);
            let mut seen = fin.clone();
            seen.sort_unstable();
            seen.dedup();
            prop_assert_eq!(seen.len(), fin.len(), "a token was reported twice");
            prop_assert_eq!(fin.len(), tokens_given, "a token was never reported");
        }
    }
}
