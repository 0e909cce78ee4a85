//! Serf's own broadcast queues: Go Serf's `broadcasts` (join and leave
//! intents), `queryBroadcasts` and `eventBroadcasts`, three memberlist
//! `TransmitLimitedQueue`s, here three swim-core
//! [`BroadcastQueue`]s with the same rules.
//!
//! What Serf gossips — its own intents, events and queries, and those it
//! accepted as new from others — waits here until the Swim asks its
//! delegate for broadcasts to piggyback ([`Serf::broadcasts`], Go's
//! `delegate.GetBroadcasts`). Each message is sent `retransmit_mult ×
//! ceil(log10(n + 1))` times, `n` the number of Serf members in any status
//! (Go's `NumNodes`); a queue over its bound drops its most-sent messages
//! (Go's `Prune`), and the drops are counted.

use swim_core::broadcast::{retransmit_limit, BroadcastQueue, Finished, Parts};

use super::{Serf, SerfConfig, SerfOutput};
use crate::messages::MessageType;

/// Identifies an intent a caller waits to see gossiped (Go's notify
/// channel of a leave): [`SerfOutput::IntentFinished`] names it when it
/// leaves the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntentId(u64);

/// One of Serf's broadcast queues, counted (Go's `intent_queue`,
/// `event_queue` and `query_queue` stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages queued now.
    pub depth: usize,
    /// Messages queued since the start.
    pub queued: u64,
    /// Messages dropped because the queue was over its bound
    /// ([`SerfConfig::max_queue_depth`]) before they were sent their
    /// number of times.
    pub pruned: u64,
}

/// Serf's three broadcast queues ([`Serf::queue_depths`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Join and leave intents (Go's `broadcasts`).
    pub intent: QueueDepth,
    /// User events (Go's `eventBroadcasts`).
    pub event: QueueDepth,
    /// Queries (Go's `queryBroadcasts`).
    pub query: QueueDepth,
}

/// Which queue a message waits in; the order is the order a packet is
/// filled from them (Go's `GetBroadcasts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queue {
    Intent = 0,
    Query = 1,
    Event = 2,
}

impl Queue {
    /// The queue Go's `NotifyMsg` re-broadcasts a message of type `t` in.
    fn of(t: Option<MessageType>) -> Queue {
        match t {
            Some(MessageType::UserEvent) => Queue::Event,
            Some(MessageType::Query) => Queue::Query,
            _ => Queue::Intent,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Queue::Intent => "Intent",
            Queue::Query => "Query",
            Queue::Event => "Event",
        }
    }
}

#[derive(Debug)]
struct Counted {
    queue: BroadcastQueue,
    queued: u64,
    pruned: u64,
    /// The last push pruned: warned already.
    pruning: bool,
}

impl Counted {
    fn depth(&self) -> QueueDepth {
        QueueDepth {
            depth: self.queue.len(),
            queued: self.queued,
            pruned: self.pruned,
        }
    }
}

/// The three queues and their settings.
#[derive(Debug)]
pub(super) struct Broadcasts {
    /// Indexed by [`Queue`].
    queues: [Counted; 3],
    retransmit_mult: usize,
    max_depth: usize,
    min_depth: usize,
    warning: usize,
    /// The last token handed out for an intent someone waits for.
    last_token: u64,
    /// Tokens of tracked intents that left their queue.
    finished: Finished,
}

impl Broadcasts {
    pub(super) fn new(config: &SerfConfig) -> Self {
        let counted = || Counted {
            queue: BroadcastQueue::new(config.max_queue_depth),
            queued: 0,
            pruned: 0,
            pruning: false,
        };
        Broadcasts {
            queues: [counted(), counted(), counted()],
            retransmit_mult: config.retransmit_mult,
            max_depth: config.max_queue_depth,
            min_depth: config.min_queue_depth,
            warning: config.queue_depth_warning,
            last_token: 0,
            finished: Finished::new(),
        }
    }

    /// Most messages a queue holds with `members` Serf members (Go's
    /// `getQueueMax`).
    fn bound(&self, members: usize) -> usize {
        if self.min_depth > 0 {
            members.saturating_mul(2).max(self.min_depth)
        } else {
            self.max_depth
        }
    }

    /// Queues `message`, sent as many times as `members` Serf members call
    /// for; `token` is reported in `finished` when it leaves the queue.
    ///
    /// Go bounds its queues every `QueueCheckInterval` (30 s), so they can
    /// outgrow the bound in between; here the bound holds after every push.
    /// Either way the messages kept are the least sent (then the longest,
    /// then the newest).
    fn push(&mut self, queue: Queue, message: &[u8], members: usize, token: Option<u64>) {
        let bound = self.bound(members);
        let c = &mut self.queues[queue as usize];
        let before = c.queue.len();
        c.queue.set_max_len(bound, &mut self.finished);
        c.queue.push(None, message, token, &mut self.finished);
        let after = c.queue.len();
        c.queued += 1;
        // Serf's broadcasts are never replaced (Go's `UniqueBroadcast`):
        // whatever is missing was pruned.
        let pruned = before + 1 - after;
        c.pruned += pruned as u64;
        // Go warns at every check while it is so; here once each time it
        // becomes so.
        if before < self.warning && after >= self.warning {
            tracing::warn!(queue = queue.name(), depth = after, "serf: queue depth");
        }
        if pruned > 0 && !c.pruning {
            tracing::warn!(
                queue = queue.name(),
                limit = bound,
                "serf: queue depth exceeds limit, dropping messages"
            );
        }
        c.pruning = pruned > 0;
    }

    /// Go's `delegate.GetBroadcasts`: the intents, then the queries, then
    /// the events that fit `limit` bytes, each costing `overhead` besides
    /// its length.
    fn fill(&mut self, overhead: usize, limit: usize, members: usize) -> Parts {
        let transmits = retransmit_limit(self.retransmit_mult, members);
        let mut parts = Parts::default();
        let mut used = 0;
        for c in &mut self.queues {
            used += c.queue.fill(
                overhead,
                limit.saturating_sub(used),
                transmits,
                usize::MAX,
                &mut parts,
                &mut self.finished,
            );
        }
        parts
    }

    fn is_empty(&self) -> bool {
        self.queues.iter().all(|c| c.queue.is_empty())
    }
}

impl Serf {
    /// Queues `message` (an encoded Serf message) for gossip in the queue
    /// Go's `NotifyMsg` re-broadcasts its type in.
    pub(super) fn gossip(&mut self, message: &[u8]) {
        let queue = Queue::of(message.first().copied().and_then(MessageType::from_byte));
        let members = self.members.len();
        self.broadcasts.push(queue, message, members, None);
        self.report_finished();
    }

    /// [`gossip`](Self::gossip) for an intent whose sending the caller
    /// waits for.
    pub(super) fn gossip_tracked(&mut self, message: &[u8]) -> IntentId {
        let members = self.members.len();
        let b = &mut self.broadcasts;
        b.last_token += 1;
        let token = b.last_token;
        b.push(Queue::Intent, message, members, Some(token));
        self.report_finished();
        IntentId(token)
    }

    fn report_finished(&mut self) {
        for (token, outcome) in self.broadcasts.finished.drain(..) {
            let id = IntentId(token);
            self.outputs
                .push_back(SerfOutput::IntentFinished { id, outcome });
        }
    }

    /// Whether any of Serf's queues holds a message
    /// ([`Delegate::has_broadcasts`](swim_core::Delegate::has_broadcasts)).
    pub fn has_broadcasts(&self) -> bool {
        !self.broadcasts.is_empty()
    }

    /// The messages to piggyback on a packet with `limit` bytes of room,
    /// each costing `overhead` bytes besides its own (Go's
    /// `delegate.GetBroadcasts`;
    /// [`Delegate::broadcasts`](swim_core::Delegate::broadcasts)): intents
    /// first, then queries, then events, each queue as memberlist's
    /// `TransmitLimitedQueue` picks (least sent first, then the longest
    /// that fits). A message that does not fit waits for the next packet.
    pub fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let members = self.members.len();
        let parts = self.broadcasts.fill(overhead, limit, members);
        self.report_finished();
        parts.iter().map(<[u8]>::to_vec).collect()
    }

    /// How full Serf's broadcast queues are, and how many messages they
    /// dropped.
    pub fn queue_depths(&self) -> QueueDepths {
        let [intent, query, event] = &self.broadcasts.queues;
        QueueDepths {
            intent: intent.depth(),
            event: event.depth(),
            query: query.depth(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_follow_go_notify_msg() {
        assert_eq!(Queue::of(Some(MessageType::Leave)), Queue::Intent);
        assert_eq!(Queue::of(Some(MessageType::Join)), Queue::Intent);
        assert_eq!(Queue::of(Some(MessageType::UserEvent)), Queue::Event);
        assert_eq!(Queue::of(Some(MessageType::Query)), Queue::Query);
    }

    #[test]
    fn bound_is_go_get_queue_max() {
        let mut config = SerfConfig::new("a");
        config.max_queue_depth = 10;
        assert_eq!(Broadcasts::new(&config).bound(100), 10);
        config.min_queue_depth = 50;
        let b = Broadcasts::new(&config);
        assert_eq!(b.bound(10), 50, "at least the minimum");
        assert_eq!(b.bound(40), 80, "twice the members");
    }
}
