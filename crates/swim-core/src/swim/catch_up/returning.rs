//! Refutations in advance for a returning member: a member this node held
//! dead, or suspect on its own failed probes, that comes back alive was cut
//! off from us, and while cut off it may have suspected us. Its suspicion
//! gossip never reached us, so nothing here refutes it, and Go clears a
//! suspicion only with an alive message at a higher incarnation (an ack
//! does not): unrefuted, it becomes our death when its timer runs out, and
//! the death notice spreads. So the returning member gets our alive message
//! straight away, one datagram, above an incarnation raised for it (the
//! refutation's raise, gossiped like one) unless ours has risen since it
//! went down here. One raise covers every member that went down before it:
//! a healing partition returns hundreds at once.

use alloc::vec::Vec;
use core::time::Duration;

use crate::delegate::Delegate;
use crate::swim::Swim;
use crate::time::Instant;

impl<D: Delegate> Swim<D> {
    /// `node`, down here since `down_since`, is alive again: raise our
    /// incarnation if it has not risen since, and send it our alive
    /// message within `refute_returning_per_second`.
    pub(in crate::swim) fn refute_in_advance(
        &mut self,
        now: Instant,
        node: &str,
        down_since: Instant,
    ) {
        let per_second = self.config.catch_up.refute_returning_per_second;
        if per_second == 0 || self.leave.is_leaving() {
            return;
        }
        if self.members.local_raised_at() <= down_since {
            self.stats.raised_for_returning += 1;
            self.with_rules(now, |m, ctx| m.refute_in_advance(ctx));
        }
        let Some(to) = self.members.get(node).and_then(|r| r.socket_addr()) else {
            return;
        };
        let local = self.local_name();
        let Some(at) = self.members.index_of(&local) else {
            return;
        };
        if !self
            .catch_up
            .returning
            .take(now, per_second, Duration::from_secs(1))
        {
            return;
        }
        let mut alive = Vec::with_capacity(64);
        self.members.encode_alive(at, &mut alive);
        self.stats.alive_to_returning += 1;
        self.send_packet(to, &alive, false);
    }
}
