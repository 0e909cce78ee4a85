//! Direct refutations: a suspect or dead message about this node names its
//! accuser (`From`), and came from a sender that holds the accusation too.
//! Both are answered with our alive message, one datagram each, besides the
//! refutation gossip the rules queue. Gossip reaches every node only with
//! high probability, and the nodes that hold the accusation are exactly the
//! ones that will turn it into a death: a refutation relayed hundreds of
//! times can still miss the one node that suspects us.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::delegate::Delegate;
use crate::swim::Swim;
use crate::time::Instant;

impl<D: Delegate> Swim<D> {
    /// An accusation against this node from `accuser` came in a datagram
    /// from `sender` (the rules have refuted it, or found it outdated):
    /// send both our alive message, within `refutations_per_second`.
    pub(in crate::swim) fn refute_directly(
        &mut self,
        now: Instant,
        sender: SocketAddr,
        accuser: &str,
    ) {
        let per_second = self.config.catch_up.refutations_per_second;
        if per_second == 0 || self.leave.is_leaving() {
            return;
        }
        let local = self.local_name();
        let Some(at) = self.members.index_of(&local) else {
            return;
        };
        let accuser_addr = if *accuser == *local {
            None
        } else {
            self.members
                .get(accuser)
                .and_then(|r| r.socket_addr())
                .filter(|&a| a != sender)
        };
        let mut alive = Vec::with_capacity(64);
        self.members.encode_alive(at, &mut alive);
        for to in core::iter::once(sender).chain(accuser_addr) {
            if !self
                .catch_up
                .refutations
                .take(now, per_second, Duration::from_secs(1))
            {
                return;
            }
            self.stats.direct_refutations += 1;
            self.send_packet(to, &alive, false);
        }
    }
}
