//! Corrections: a suspect or dead message about a member we hold alive at
//! a higher incarnation comes from a node that missed the member's
//! refutation; we send it the alive message, one datagram, under its own
//! budget.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::delegate::Delegate;
use crate::swim::Swim;
use crate::time::Instant;

/// Most members held dead for corrections to go on.
const FEW_DEAD: usize = 3;

impl<D: Delegate> Swim<D> {
    /// An accusation against `node` from the datagram's sender `to` was
    /// older than the alive record we hold. Not while we suspect or hold
    /// dead more than a few members: that is a partition healing, each
    /// side holding the other's verdicts, and the revivals corrections
    /// bring about there set off push/pulls that carry those verdicts
    /// across as fresh suspicions.
    pub(super) fn correct(&mut self, now: Instant, to: SocketAddr, node: &str) {
        let Some(at) = self.members.index_of(node) else {
            return;
        };
        if node == &**self.members.local_name() && self.config.catch_up.refutations_per_second > 0 {
            return; // answered by `refute_directly`, under its own budget
        }
        if !self.few_suspects() || self.members.counts().dead > FEW_DEAD {
            return;
        }
        let per_second = self.config.catch_up.corrections_per_second;
        if !self
            .catch_up
            .corrections
            .take(now, per_second, Duration::from_secs(1))
        {
            return;
        }
        let mut alive = Vec::with_capacity(64);
        self.members.encode_alive(at, &mut alive);
        self.stats.corrections += 1;
        self.send_packet(to, &alive, false);
    }
}
