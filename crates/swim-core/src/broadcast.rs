//! The transmit-limited broadcast queue (gossip dissemination).
//!
//! A port of the behaviour of memberlist's `TransmitLimitedQueue` (v0.2.2, WIRE.md §7.2, §9.2):
//! every queued message is piggybacked or gossiped until it has been sent `retransmit_limit`
//! times; messages sent fewer times go first, and within a transmit tier the largest message that
//! still fits the packet goes first (newest on ties). Messages are opaque encoded bytes here; the
//! caller decides what they mean.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey {
    /// Times the message has been handed out so far.
    transmits: usize,
    /// Message length, reversed so longer messages sort first within a tier.
    len: Reverse<usize>,
    /// Submission id, reversed so newer messages sort first among equal lengths.
    id: Reverse<u64>,
}

/// A queued broadcast.
#[derive(Debug, Clone)]
struct Entry {
    /// The invalidation key (a node name), if any.
    key: Option<Arc<str>>,
    /// The encoded message, shared with every packet it is copied into.
    message: Arc<[u8]>,
    /// Reported to the caller once the broadcast leaves the queue for any reason.
    token: Option<Token>,
}

/// A bounded queue of broadcasts, each sent a limited number of times (Go's
/// `TransmitLimitedQueue`).
#[derive(Debug, Clone)]
pub(crate) struct BroadcastQueue {
    /// All queued broadcasts in selection order.
    order: BTreeMap<OrderKey, Entry>,
    /// Where the broadcast for each invalidation key currently sits in `order`.
    by_key: hashbrown::HashMap<Arc<str>, OrderKey, foldhash::fast::FixedState>,
    /// Most broadcasts held at once; extra ones are pruned on push.
    max_len: usize,
    /// The last id handed out (Go's `idGen`); back to 0 whenever the queue is empty.
    last_id: u64,
    /// Sum of the lengths of all queued messages.
    bytes: usize,
}

impl BroadcastQueue {
    /// A queue holding at most `max_len` broadcasts.
    pub(crate) fn new(max_len: usize) -> Self {
        BroadcastQueue {
            order: BTreeMap::new(),
            by_key: hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::with_seed(7)),
            max_len,
            last_id: 0,
            bytes: 0,
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
        message: Arc<[u8]>,
        token: Option<Token>,
        finished: &mut Vec<Token>,
    ) {
        self.insert(key, message, token, 0, finished);
    }

    /// [`push`](Self::push) with a chosen starting transmit count (Go's `queueBroadcast`), so
    /// tests can build tiers directly.
    fn insert(
        &mut self,
        key: Option<&Arc<str>>,
        message: Arc<[u8]>,
        token: Option<Token>,
        transmits: usize,
        finished: &mut Vec<Token>,
    ) {
        if let Some(name) = key {
            if let Some(old) = self.by_key.remove(&**name) {
                if let Some(entry) = self.order.remove(&old) {
                    self.release(old, entry, finished);
                }
            }
        }
        // Ids only restart once the queue is empty at the end of an operation, so they are
        // unique among queued entries. (Go also resets mid-operation, e.g. when an invalidation
        // or a fill empties the tree momentarily; that can make two entries compare equal and
        // silently drop one, so it is deliberately not copied.) Wrapping needs 2^64 pushes
        // without the queue ever draining, so it cannot happen in practice, but must not panic.
        self.last_id = self.last_id.wrapping_add(1);
        let position = OrderKey {
            transmits,
            len: Reverse(message.len()),
            id: Reverse(self.last_id),
        };
        let key: Option<Arc<str>> = key.cloned();
        if let Some(name) = &key {
            self.by_key.insert(name.clone(), position);
        }
        self.bytes = self.bytes.saturating_add(message.len());
        let entry = Entry {
            key,
            message,
            token,
        };
        if let Some(displaced) = self.order.insert(position, entry) {
            // Unreachable while ids are unique; handled so a wrapped id loses nothing silently.
            self.release(position, displaced, finished);
        }
        self.prune(finished);
    }

    /// Drops the queue maximum (most transmits, then shortest, then oldest) until at most
    /// `max_len` broadcasts remain.
    fn prune(&mut self, finished: &mut Vec<Token>) {
        while self.order.len() > self.max_len {
            let Some((position, entry)) = self.order.pop_last() else {
                break;
            };
            self.release(position, entry, finished);
        }
        self.reset_ids_if_empty();
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
        out: &mut Vec<Arc<[u8]>>,
        finished: &mut Vec<Token>,
    ) -> usize {
        let Some(mut tier) = self.order.keys().next().map(|k| k.transmits) else {
            return 0;
        };
        let mut used = 0usize;
        let mut taken = 0usize;
        // Re-inserted after the walk: moving them up now would let a later tier pick them again.
        let mut resend: Vec<(OrderKey, Entry)> = Vec::new();
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
            let from = OrderKey {
                transmits: tier,
                len: Reverse(free),
                id: Reverse(u64::MAX),
            };
            let Some(&found) = self.order.range(from..).next().map(|(k, _)| k) else {
                break;
            };
            if found.transmits != tier {
                tier = found.transmits;
                continue;
            }
            let Some(entry) = self.order.remove(&found) else {
                break;
            };
            // Cannot overflow: overhead + len <= overhead + free = limit - used.
            used += overhead + found.len.0;
            taken += 1;
            out.push(Arc::clone(&entry.message));
            let sent = found.transmits.saturating_add(1);
            if sent >= transmit_limit {
                self.release(found, entry, finished);
            } else {
                resend.push((
                    OrderKey {
                        transmits: sent,
                        ..found
                    },
                    entry,
                ));
            }
        }
        for (position, entry) in resend {
            if let Some(name) = &entry.key {
                if let Some(slot) = self.by_key.get_mut(name) {
                    *slot = position;
                }
            }
            self.order.insert(position, entry);
        }
        self.reset_ids_if_empty();
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
        let order = core::mem::take(&mut self.order);
        finished.extend(order.into_values().filter_map(|entry| entry.token));
        self.by_key.clear();
        self.bytes = 0;
        self.last_id = 0;
    }

    /// Forgets an entry already taken out of `order`: its bytes, its key mapping (if the key
    /// still points at it) and its token.
    fn release(&mut self, position: OrderKey, entry: Entry, finished: &mut Vec<Token>) {
        self.bytes = self.bytes.saturating_sub(entry.message.len());
        if let Some(name) = &entry.key {
            if self.by_key.get(name) == Some(&position) {
                self.by_key.remove(name);
            }
        }
        if let Some(token) = entry.token {
            finished.push(token);
        }
    }

    /// Go restarts its id generator when the queue drains, so ids stay small at idle. The key
    /// index gives back memory once mostly empty: after a burst (a join of thousands) it would
    /// otherwise keep its peak size for good.
    fn reset_ids_if_empty(&mut self) {
        if self.order.is_empty() {
            self.last_id = 0;
        }
        if self.by_key.capacity() > 64 && self.by_key.len() < self.by_key.capacity() / 4 {
            self.by_key.shrink_to(self.by_key.len() * 2);
        }
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
    use proptest::prelude::*;

    fn msg(text: &str) -> Arc<[u8]> {
        Arc::from(text.as_bytes())
    }

    /// The queue from its maximum down (Go's `orderedView(true)`), as (transmits, text).
    fn view_desc(q: &BroadcastQueue) -> Vec<(usize, String)> {
        q.order
            .iter()
            .rev()
            .map(|(k, e)| {
                (
                    k.transmits,
                    String::from_utf8_lossy(&e.message).into_owned(),
                )
            })
            .collect()
    }

    fn texts(out: &[Arc<[u8]>]) -> Vec<String> {
        out.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    /// Checks that `by_key` and `bytes` agree with `order`.
    fn assert_consistent(q: &BroadcastQueue) {
        let keyed = q.order.values().filter(|e| e.key.is_some()).count();
        assert_eq!(q.by_key.len(), keyed);
        for (name, position) in &q.by_key {
            assert_eq!(q.order[position].key.as_deref(), Some(&**name));
        }
        let total: usize = q.order.values().map(|e| e.message.len()).sum();
        assert_eq!(q.bytes(), total);
        assert_eq!(q.len(), q.order.len());
        assert_eq!(q.is_empty(), q.order.is_empty());
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
        let keys: Vec<_> = q
            .order
            .values()
            .rev()
            .map(|e| e.key.clone().unwrap())
            .collect();
        assert_eq!(keys, [k("test"), k("foo"), k("bar")]);

        q.push(Some(&k("test")), msg(""), Some(4), &mut fin);
        assert_eq!(q.len(), 3);
        assert_eq!(fin, [1], "the invalidated broadcast reports its token");
        let keys: Vec<_> = q
            .order
            .values()
            .rev()
            .map(|e| e.key.clone().unwrap())
            .collect();
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
        let mut out = Vec::new();
        assert_eq!(q.fill(2, 80, limit, usize::MAX, &mut out, &mut fin), 80);
        assert_eq!(out.len(), 4);
        out.clear();
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

        let mut out = Vec::new();
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

        out.clear();
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

        out.clear();
        q.fill(3, 80, limit, usize::MAX, &mut out, &mut fin);
        assert_eq!(texts(&out), ["2. this is a test.", "1. this is a test."]);
        assert_eq!(fin, [4, 3, 2, 1]);
        assert_eq!(q.last_id, 0, "ids restart once the queue is empty");
        assert!(q.is_empty());

        out.clear();
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
        q.insert(None, msg("long, sent twice"), Some(1), 2, &mut fin);
        q.insert(None, msg("short"), Some(2), 0, &mut fin);
        q.insert(None, msg("older"), Some(3), 1, &mut fin);
        q.insert(None, msg("newer"), Some(4), 1, &mut fin);
        assert_eq!(fin, [1]);
        q.insert(None, msg("x"), Some(5), 1, &mut fin);
        assert_eq!(fin, [1, 5]);
        q.insert(None, msg("fresh"), Some(6), 0, &mut fin);
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
            q.insert(Some(&k(name)), msg(name), None, transmits, &mut fin);
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
        let mut out = Vec::new();
        // Room for 12 bytes, overhead 1: a (11) does not leave room for anything else.
        assert_eq!(q.fill(1, 12, 10, usize::MAX, &mut out, &mut fin), 11);
        assert_eq!(texts(&out), ["aaaaaaaaaa"]);
        out.clear();
        // a is now in tier 1; tier 0 has b, c, d: with 9 bytes of room take c (newest 5) then d.
        assert_eq!(q.fill(0, 9, 10, usize::MAX, &mut out, &mut fin), 8);
        assert_eq!(texts(&out), ["ccccc", "ddd"]);
        out.clear();
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
        let mut out = Vec::new();
        // free = 10 - 0 - 10 = 0: Go bails out even though an empty message would "fit".
        assert_eq!(q.fill(10, 10, 5, usize::MAX, &mut out, &mut fin), 0);
        assert_eq!(q.fill(11, 10, 5, usize::MAX, &mut out, &mut fin), 0);
        assert_eq!(q.fill(0, 0, 5, usize::MAX, &mut out, &mut fin), 0);
        assert!(out.is_empty());
        // The 8-byte message uses all the room, so the empty one waits for the next packet.
        assert_eq!(q.fill(2, 10, 5, usize::MAX, &mut out, &mut fin), 10);
        assert_eq!(texts(&out), ["12345678"]);
        out.clear();
        assert_eq!(q.fill(2, 3, 5, usize::MAX, &mut out, &mut fin), 2);
        assert_eq!(out.len(), 1);
        assert!(out[0].is_empty());
    }

    #[test]
    fn fill_never_takes_a_message_twice() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.push(Some(&k("only")), msg("x"), Some(7), &mut fin);
        let mut out = Vec::new();
        assert_eq!(q.fill(0, 1000, 10, usize::MAX, &mut out, &mut fin), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(q.len(), 1);
        assert_eq!(q.order.keys().next().map(|k| k.transmits), Some(1));
        assert!(fin.is_empty());
    }

    #[test]
    fn fill_jumps_over_empty_tiers() {
        let mut q = BroadcastQueue::new(100);
        let mut fin = Vec::new();
        q.insert(None, msg("low"), None, 0, &mut fin);
        q.insert(None, msg("high"), None, 1_000_000_000, &mut fin);
        q.insert(None, msg("top"), None, usize::MAX, &mut fin);
        let mut out = Vec::new();
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
        let mut out = Vec::new();
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
        let mut out = Vec::new();
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
        let mut out = Vec::new();
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
        },
        Fill {
            overhead: usize,
            limit: usize,
        },
        Clear,
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (proptest::option::of(0u8..5), 0usize..40, any::<bool>())
                .prop_map(|(key, len, token)| Op::Push { key, len, token }),
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
            let mut messages: Vec<Arc<[u8]>> = Vec::new();
            let mut sends: Vec<usize> = Vec::new();
            let mut fin = Vec::new();
            let mut model_fin = Vec::new();
            let mut tokens_given = 0usize;
            for op in ops {
                match op {
                    Op::Push { key, len, token } => {
                        let index = messages.len();
                        let message: Arc<[u8]> = Arc::from(vec![key.unwrap_or(0xff); len]);
                        messages.push(Arc::clone(&message));
                        sends.push(0);
                        let token = token.then_some(index as Token);
                        tokens_given += usize::from(token.is_some());
                        let name = key.map(|k| Arc::<str>::from(alloc::format!("node-{k}")));
                        q.push(name.as_ref(), message, token, &mut fin);
                        let item = ModelItem { transmits: 0, len, id: 0, key, token, index };
                        model.push(item, max_len, &mut model_fin);
                    }
                    Op::Fill { overhead, limit } => {
                        let mut out = Vec::new();
                        let used = q.fill(overhead, limit, transmit_limit, usize::MAX, &mut out, &mut fin);
                        let mut model_out = Vec::new();
                        let model_used = model.fill(overhead, limit, transmit_limit, &mut model_out, &mut model_fin);
                        prop_assert_eq!(used, model_used);
                        prop_assert!(used <= limit);
                        let cost: usize = out.iter().map(|m| overhead + m.len()).sum();
                        prop_assert_eq!(used, cost);
                        let mut indices = Vec::new();
                        for m in &out {
                            let index = messages.iter().position(|x| Arc::ptr_eq(x, m));
                            prop_assert!(index.is_some(), "an unknown message was returned");
                            indices.push(index.unwrap());
                        }
                        prop_assert_eq!(&indices, &model_out);
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
