//! Hearsay: a push/pull's state lists members suspect or dead, but not who
//! accused them. Go takes each such entry about a member it holds alive as
//! its own suspicion and gossips it under its own name; the member's real
//! accuser then counts it as a second, independent accusation, and
//! Lifeguard brings that accuser's deadline forward. A node cut off one
//! way suspects members that never hear of it (its gossip is lost); after
//! the heal every push/pull with it, and then with whoever learned from
//! it, confirmed those suspicions until they became deaths. Measured in
//! the core's one-way-cut harness (20 Local nodes, a Go-mode node cut for
//! 6 s, 48 start times): healthy deaths after the heal in 20 of 48 runs
//! (128 deaths) without this, 0 of 48 with it.
//!
//! With hearsay on, such an entry becomes a suspicion here whose accuser is
//! the push/pull's peer (when this node can name it), not gossiped: the
//! member alone is told, one suspect message, and refutes at once if it is
//! alive; if it is not, the suspicion runs out here as any other (its last
//! probe first). An entry about a member this node already suspects adds
//! nothing: it names no accuser.

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::time::Duration;

use crate::delegate::Delegate;
use crate::swim::packet::encode_packet;
use crate::swim::Swim;
use crate::time::Instant;
use crate::wire::{Accusation, Message};

impl<D: Delegate> Swim<D> {
    /// Who accuses in the suspicions a push/pull's state teaches: its peer,
    /// if it can be named; `None` for this node. A peer that opened the
    /// exchange is seen at its connection's address (its IP, an ephemeral
    /// port): named only if it is the one member at that IP.
    pub(in crate::swim) fn hearsay_accuser(&self, peer: SocketAddr) -> Option<Arc<str>> {
        if self.config.catch_up.hearsay_per_second == 0 {
            return None;
        }
        let local = self.members.local_name();
        let records = || {
            self.members
                .records()
                .iter()
                .filter(|r| r.name != *local)
                .filter_map(|r| Some((r.socket_addr()?, &r.name)))
        };
        if let Some((_, name)) = records().find(|&(a, _)| a == peer) {
            return Some(name.clone());
        }
        let mut at_ip = records().filter(|&(a, _)| a.ip() == peer.ip());
        let (_, name) = at_ip.next()?;
        at_ip.next().is_none().then(|| name.clone())
    }

    /// A suspicion taken from a push/pull's state: tell the member (one
    /// datagram), within `hearsay_per_second`.
    pub(in crate::swim) fn tell_suspect(
        &mut self,
        now: Instant,
        node: &str,
        incarnation: u32,
        from: &str,
    ) {
        self.stats.hearsay_suspicions += 1;
        let Some(to) = self.members.get(node).and_then(|r| r.socket_addr()) else {
            return;
        };
        let per_second = self.config.catch_up.hearsay_per_second;
        if !self
            .catch_up
            .hearsay
            .take(now, per_second, Duration::from_secs(1))
        {
            return;
        }
        self.stats.hearsay_told += 1;
        let m = Message::Suspect(Accusation {
            incarnation,
            node,
            from,
        });
        self.send_packet(to, &encode_packet(&m), false);
    }
}
