//! The transmit-limited broadcast queue (gossip dissemination).
//!
//! A port of the behaviour of memberlist's `TransmitLimitedQueue` (v0.2.2, docs/protocol.md §7.2, §9.2):
//! every queued message is piggybacked or gossiped until it has been sent `retransmit_limit`
//! times; messages sent fewer times go first, and within a transmit tier the largest message that
//! still fits the packet goes first (newest on ties). Messages are opaque encoded bytes here, or
//! derived by the caller when sent; the caller decides what they mean.
//!
//! The Swim keeps two of these (membership updates, user broadcasts); an application that hands
//! out its own broadcasts through [`Delegate::broadcasts`](crate::Delegate::broadcasts), as Serf
//! does, can keep its own with the same rules:
//!
//! ```
//! use swim_core::broadcast::{retransmit_limit, BroadcastQueue, Parts};
//!
//! let mut queue = BroadcastQueue::new(4096);
//! let mut finished = Vec::new();
//! queue.push(None, b"event", None, &mut finished);
//! // A cluster of 3 with Go's LAN multiplier: each message goes out 4 times.
//! let limit = retransmit_limit(4, 3);
//! let mut sent = 0;
//! while !queue.is_empty() {
//!     let mut packet = Parts::default();
//!     queue.fill(3, 1400, limit, usize::MAX, &mut packet, &mut finished);
//!     sent += packet.len();
//! }
//! assert_eq!(sent, 4);
//! ```

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::HashTable;

use crate::event::BroadcastOutcome;

/// Identifies a broadcast whose completion someone waits for (our own leave, a user's
/// broadcast).
pub type Token = u64;

/// Where the queue reports the tokens of broadcasts that left it, and why.
pub type Finished = Vec<(Token, BroadcastOutcome)>;

/// How many times each broadcast is sent in a cluster of `members` nodes, any state:
/// `retransmit_mult × ceil(log10(members + 1))` (Go's `retransmitLimit`, which
/// [`Config::retransmit_limit`](crate::Config::retransmit_limit) applies to the Swim's queues).
pub fn retransmit_limit(retransmit_mult: usize, members: usize) -> usize {
    crate::config::retransmit_limit(retransmit_mult, members)
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
pub struct Parts {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Parts {
    pub(crate) fn push(&mut self, message: &[u8]) {
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
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no message was taken.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The messages, in the order they were taken.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
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
pub struct BroadcastQueue {
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
    pub fn new(max_len: usize) -> Self {
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
    pub fn push(
        &mut self,
        key: Option<&Arc<str>>,
        message: &[u8],
        token: Option<Token>,
        finished: &mut Finished,
    ) {
        self.insert(key, Content::Bytes(message), token, 0, finished);
    }

    /// [`push`](Self::push) of a message derived from what `key` names whenever it is sent
    /// (see [`fill_deriving`](Self::fill_deriving)); `len` is its length now, `hint` helps the
    /// caller find it again. `sent`: the transmits it starts with (0 for news; more ranks it
    /// behind news and leaves it fewer sends).
    pub(crate) fn push_derived(
        &mut self,
        key: &Arc<str>,
        len: usize,
        hint: usize,
        sent: u32,
        finished: &mut Finished,
    ) {
        self.insert(
            Some(key),
            Content::Derived { len, hint },
            None,
            sent,
            finished,
        );
    }

    /// [`push`](Self::push) with a chosen starting transmit count (Go's `queueBroadcast`), so
    /// tests can build tiers directly.
    fn insert(
        &mut self,
        key: Option<&Arc<str>>,
        message: Content<'_>,
        token: Option<Token>,
        transmits: u32,
        finished: &mut Finished,
    ) {
        if let Some(name) = key {
            self.replace_key(name, finished);
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
            self.forget(displaced, BroadcastOutcome::Dropped, finished);
        }
        self.prune(finished);
    }

    fn slot_hash(slots: &[Slot], slot: u32) -> u64 {
        slots[slot as usize].key.as_deref().map_or(0, key_hash)
    }

    /// Drops the queue maximum (most transmits, then shortest, then oldest) until at most
    /// `max_len` broadcasts remain.
    fn prune(&mut self, finished: &mut Finished) {
        while self.order.len() > self.max_len {
            let Some((_, slot)) = self.order.pop_last() else {
                break;
            };
            self.forget(slot, BroadcastOutcome::Dropped, finished);
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
    pub fn fill(
        &mut self,
        overhead: usize,
        limit: usize,
        transmit_limit: usize,
        max_count: usize,
        out: &mut Parts,
        finished: &mut Finished,
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
        finished: &mut Finished,
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
                        self.forget(slot, BroadcastOutcome::Dropped, finished);
                        continue;
                    };
                    taken_slot.body = Body::derived(hint);
                }
            }
            let sent = found.transmits().saturating_add(1);
            if sent >= transmit_limit {
                self.forget(slot, BroadcastOutcome::Sent, finished);
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
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Holds at most `max_len` broadcasts from now on: if more are queued, the broadcasts sent
    /// most often (then the shortest, then the oldest) are dropped until it fits, their tokens
    /// pushed to `finished` (Go's `Prune(max_len)`).
    pub fn set_max_len(&mut self, max_len: usize, finished: &mut Finished) {
        self.max_len = max_len;
        self.prune(finished);
    }

    /// Drops the broadcast queued under `key`, if any (its token pushed to `finished` as
    /// replaced): for a change to what `key` names that is not gossiped, after which a
    /// message derived from it would say what this node never heard.
    pub(crate) fn remove_key(&mut self, key: &str, finished: &mut Finished) {
        self.replace_key(key, finished);
        self.tidy();
    }

    /// Unqueues the broadcast with invalidation key `key`, if any, as replaced.
    fn replace_key(&mut self, key: &str, finished: &mut Finished) {
        let slots = &self.slots;
        let same = |&i: &u32| {
            slots[i as usize]
                .key
                .as_deref()
                .is_some_and(|k| core::ptr::eq(k, key) || k == key)
        };
        if let Ok(entry) = self.by_key.find_entry(key_hash(key), same) {
            let (slot, _) = entry.remove();
            let position = self.slots[slot as usize].position;
            self.order.remove(&position);
            self.release(slot, BroadcastOutcome::Replaced, finished);
        }
    }

    /// Whether a broadcast with invalidation key `key` is queued.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        let slots = &self.slots;
        self.by_key
            .find(key_hash(key), |&i| {
                slots[i as usize].key.as_deref() == Some(key)
            })
            .is_some()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Total bytes of queued messages.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops everything, pushing all tokens to `finished` (in queue order, like Go's `Reset`).
    pub(crate) fn clear(&mut self, finished: &mut Finished) {
        if !self.tokens.is_empty() {
            for &slot in self.order.values() {
                if let Some(&(_, token)) = self.tokens.iter().find(|(s, _)| *s == slot) {
                    finished.push((token, BroadcastOutcome::Dropped));
                }
            }
        }
        self.order.clear();
        self.tidy();
    }

    /// Forgets a broadcast already taken out of `order`: its key mapping, then its slot.
    fn forget(&mut self, slot: u32, why: BroadcastOutcome, finished: &mut Finished) {
        if let Some(key) = &self.slots[slot as usize].key {
            if let Ok(entry) = self.by_key.find_entry(key_hash(key), |&i| i == slot) {
                entry.remove();
            }
        }
        self.release(slot, why, finished);
    }

    /// Frees a slot that neither index refers to any more, reporting its token.
    fn release(&mut self, slot: u32, why: BroadcastOutcome, finished: &mut Finished) {
        let freed = &mut self.slots[slot as usize];
        freed.key = None;
        let len = freed.position.len();
        self.bytes = self.bytes.saturating_sub(len);
        if freed.body.get().is_ok() {
            self.garbage += len;
        }
        self.vacant.push(slot);
        if let Some(i) = self.tokens.iter().position(|(s, _)| *s == slot) {
            finished.push((self.tokens.swap_remove(i).1, why));
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
mod tests;
