use super::*;
use crate::config::retransmit_limit;

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
            q.push_derived(name, text(i).len(), i, 0, &mut fin);
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
    assert_eq!(
        fin,
        [(1, BroadcastOutcome::Replaced)],
        "the invalidated broadcast reports its token"
    );
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
    assert_eq!(fin, [(3, BroadcastOutcome::Replaced)]);
    // A replacement without a token reports nothing when it goes.
    q.push(Some(&k("a")), msg("e"), Some(5), &mut fin);
    assert_eq!(fin, [(3, BroadcastOutcome::Replaced)]);
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
    assert_eq!(
        fin,
        [(4, BroadcastOutcome::Sent), (3, BroadcastOutcome::Sent)]
    );
    assert_eq!(q.last_id, 4);

    out = Parts::default();
    q.fill(3, 80, limit, usize::MAX, &mut out, &mut fin);
    assert_eq!(texts(&out), ["2. this is a test.", "1. this is a test."]);
    assert_eq!(
        fin,
        [4, 3, 2, 1].map(|t| (t, BroadcastOutcome::Sent)),
        "sent their full count"
    );
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
    assert_eq!(
        fin,
        [
            (1, BroadcastOutcome::Dropped),
            (2, BroadcastOutcome::Dropped)
        ]
    );
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
    assert_eq!(fin, [(1, BroadcastOutcome::Dropped)]);
    q.insert(None, Content::Bytes(msg("x")), Some(5), 1, &mut fin);
    assert_eq!(fin, [1, 5].map(|t| (t, BroadcastOutcome::Dropped)));
    q.insert(None, Content::Bytes(msg("fresh")), Some(6), 0, &mut fin);
    assert_eq!(fin, [1, 5, 3].map(|t| (t, BroadcastOutcome::Dropped)));
    assert_consistent(&q);

    // A zero-capacity queue drops what it is given.
    let mut q = BroadcastQueue::new(0);
    let mut fin = Vec::new();
    q.push(Some(&k("a")), msg("a"), Some(9), &mut fin);
    assert!(q.is_empty());
    assert_eq!(fin, [(9, BroadcastOutcome::Dropped)]);
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
    assert_eq!(
        fin,
        [(2, BroadcastOutcome::Sent), (1, BroadcastOutcome::Sent)]
    );
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
    assert_eq!(fin, [(42, BroadcastOutcome::Sent)]);
    assert_eq!(out.len(), 4);
    assert!(q.is_empty());
    q.fill(0, 100, 4, usize::MAX, &mut out, &mut fin);
    assert_eq!(out.len(), 4);
    assert_eq!(fin, [(42, BroadcastOutcome::Sent)]);
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
    assert_eq!(
        fin,
        [
            (3, BroadcastOutcome::Dropped),
            (1, BroadcastOutcome::Dropped)
        ]
    );
    assert!(q.is_empty());
    assert_eq!(q.bytes(), 0);
    assert_eq!(q.last_id, 0);
    assert_consistent(&q);
    q.push(Some(&k("a")), msg("a"), None, &mut fin);
    assert_eq!(q.len(), 1);
    assert_eq!(q.last_id, 1);
}

#[test]
fn lowering_max_len_prunes_like_go_prune() {
    let mut q = BroadcastQueue::new(10);
    let mut fin = Vec::new();
    q.push(None, msg("sent"), Some(1), &mut fin);
    let mut out = Parts::default();
    q.fill(0, 100, 4, usize::MAX, &mut out, &mut fin);
    q.push(None, msg("aa"), None, &mut fin);
    q.push(None, msg("b"), Some(2), &mut fin);
    q.push(None, msg("cc"), None, &mut fin);
    // Most sent first, then the shortest, then the oldest.
    q.set_max_len(2, &mut fin);
    assert_eq!(
        fin,
        [
            (1, BroadcastOutcome::Dropped),
            (2, BroadcastOutcome::Dropped)
        ]
    );
    let mut out = Parts::default();
    q.fill(0, 100, 4, usize::MAX, &mut out, &mut fin);
    assert_eq!(texts(&out), ["cc", "aa"]);
    // The new bound holds for pushes too.
    q.push(None, msg("ddd"), None, &mut fin);
    assert_eq!(q.len(), 2);
    assert_consistent(&q);
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
    fn push(&mut self, item: ModelItem, max_len: usize, fin: &mut Finished) {
        if item.key.is_some() {
            if let Some(pos) = self.items.iter().position(|it| it.key == item.key) {
                let old = self.items.remove(pos);
                fin.extend(old.token.map(|t| (t, BroadcastOutcome::Replaced)));
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
            fin.extend(old.token.map(|t| (t, BroadcastOutcome::Dropped)));
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
        fin: &mut Finished,
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
                fin.extend(it.token.map(|t| (t, BroadcastOutcome::Sent)));
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
                            q.push_derived(name, len, index, 0, &mut fin)
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
                    model_fin.extend(
                        items
                            .into_iter()
                            .filter_map(|it| it.token.map(|t| (t, BroadcastOutcome::Dropped))),
                    );
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
        let mut seen: Vec<Token> = fin.iter().map(|&(token, _)| token).collect();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), fin.len(), "a token was reported twice");
        prop_assert_eq!(fin.len(), tokens_given, "a token was never reported");
    }
}
