//! Forgetting and retrying members (Go's `reap`, `reconnect`, `forceLeave`,
//! `handlePrune`, `eraseNode`): failed members are retried now and then and
//! forgotten after `reconnect_timeout`, departed ones after
//! `tombstone_timeout`; a force-leave turns a failed member into a departed
//! one, and its pruning form forgets it at once.

use swim_core::Instant;

use super::{IntentId, MemberStatus, Serf, SerfError, SerfEvent, SerfOutput};
use crate::messages::{Leave, Message};

impl Serf {
    /// Forces a failed member out (Go's `RemoveFailedNode`, `serf
    /// force-leave`): a leave intent for it at our clock, applied here and
    /// gossiped if anyone else is alive; with `prune`, every node forgets
    /// it (`RemoveFailedNodePrune`). Returns the intent if it was gossiped
    /// (the driver waits for [`SerfOutput::IntentFinished`], as Go waits
    /// for that broadcast).
    pub fn remove_failed_node(
        &mut self,
        now: Instant,
        node: &str,
        prune: bool,
    ) -> Result<Option<IntentId>, SerfError> {
        Ok(self.announce_leave(now, node.to_owned(), prune))
    }

    /// A leave intent for `node` at our clock: applied here, then gossiped
    /// if any other member is alive to hear it. Returns it if it was.
    pub(super) fn announce_leave(
        &mut self,
        now: Instant,
        node: String,
        prune: bool,
    ) -> Option<IntentId> {
        let msg = Leave {
            ltime: self.clock.time(),
            node,
            prune,
        };
        self.clock.increment();
        self.handle_leave_intent(now, &msg);
        let others_alive = self
            .members
            .values()
            .any(|e| e.member.name != self.config.name && e.member.status == MemberStatus::Alive);
        others_alive.then(|| self.gossip_tracked(&Message::Leave(msg).to_bytes()))
    }

    /// Go's `handlePrune`: a departed or failed member is forgotten now; a
    /// leaving one once its leave has had time to spread (Go sleeps for
    /// that long).
    pub(super) fn prune(&mut self, now: Instant, node: &str) {
        let delay = self.config.broadcast_timeout + self.config.leave_propagate_delay;
        let Some(entry) = self.members.get_mut(node) else {
            return;
        };
        if entry.member.status == MemberStatus::Leaving {
            entry.prune_at = Some(now + delay);
        } else {
            self.erase(node);
        }
    }

    /// When the next member is due to be forgotten.
    pub(super) fn next_reap(&self) -> Option<Instant> {
        self.members
            .values()
            .filter_map(|e| self.forget_at(e))
            .min()
    }

    fn forget_at(&self, e: &super::MemberEntry) -> Option<Instant> {
        let timeout = match e.member.status {
            MemberStatus::Failed => Some(self.config.reconnect_timeout),
            MemberStatus::Left => Some(self.config.tombstone_timeout),
            _ => None,
        };
        let reap = e.leave_time.zip(timeout).map(|(t, d)| t + d);
        reap.into_iter().chain(e.prune_at).min()
    }

    /// Forgets members past their timeout (Go reaps every `ReapInterval`;
    /// here each at its own deadline).
    pub(super) fn reap(&mut self, now: Instant) {
        let due: Vec<String> = self
            .members
            .values()
            .filter(|e| self.forget_at(e).is_some_and(|t| t <= now))
            .map(|e| e.member.name.clone())
            .collect();
        for name in due {
            self.erase(&name);
        }
    }

    /// Go's `eraseNode`: gone from the members, the left list and the
    /// coordinates, with a reap event.
    fn erase(&mut self, node: &str) {
        let Some(entry) = self.members.remove(node) else {
            return;
        };
        self.left_members.retain(|n| n != node);
        if let Some(client) = self.coord_client.as_mut() {
            client.forget_node(node);
        }
        self.coord_cache.remove(node);
        self.emit(SerfEvent::MemberReap(entry.member));
    }

    /// Go's `reconnect`: every `reconnect_interval`, with probability
    /// failed / alive, one random failed member is joined again.
    pub(super) fn reconnect(&mut self, now: Instant) {
        if self.next_reconnect.is_none_or(|at| at > now) {
            return;
        }
        let mut failed: Vec<(String, std::net::SocketAddr)> = self
            .members
            .values()
            .filter(|e| e.member.status == MemberStatus::Failed)
            .map(|e| (e.member.name.clone(), e.member.addr))
            .collect();
        if failed.is_empty() {
            self.next_reconnect = None;
            return;
        }
        self.next_reconnect = Some(now + self.config.reconnect_interval);
        failed.sort();
        let left = self
            .members
            .values()
            .filter(|e| e.member.status == MemberStatus::Left)
            .count();
        let alive = (self.members.len() - failed.len() - left).max(1);
        let prob = failed.len() as f64 / alive as f64;
        let draw = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        if draw > prob {
            return; // Go's random throttling
        }
        let pick = (self.next_random() % failed.len() as u64) as usize;
        let (node, addr) = failed.swap_remove(pick);
        self.outputs.push_back(SerfOutput::Reconnect { node, addr });
    }
}
