//! Doubt of dead accusers: a death notice whose accuser (`From`) this node
//! holds dead or gone comes from across a partition that is healing. The
//! two sides declared each other dead while cut off, and that verdict about
//! a member of this node's own side says nothing about whether the member is
//! reachable from here. Taken as a suspicion instead, it is confirmed,
//! refuted or probed (`last_probe.rs`) like any other, where Go would hold
//! the member dead at once.
//!
//! The same holds for an accuser our probes reached only by TCP within the
//! longest suspicion (`returning.rs`): a one-way cut, where its probes of
//! everyone failed while we kept it alive, so its verdicts rest on the cut.
//! (Those marks are kept only while `refute_returning_per_second > 0`.)

use crate::delegate::Delegate;
use crate::member::MemberState;
use crate::swim::Swim;
use crate::wire::Accusation;

impl<D: Delegate> Swim<D> {
    /// Whether death notice `d` is only a suspicion here (or a confirmation
    /// of ours): its accuser is held dead or gone, or was reached only by
    /// TCP lately, and the member is alive or suspect (and it is neither a
    /// departure nor about us).
    pub(in crate::swim) fn doubts(&self, d: &Accusation<'_>) -> bool {
        self.config.catch_up.doubt_dead_accusers
            && d.from != d.node
            && d.node != &**self.members.local_name()
            && self
                .members
                .get(d.node)
                .is_some_and(|r| matches!(r.state, MemberState::Alive | MemberState::Suspect))
            && (self.members.get(d.from).is_some_and(|r| r.dead_or_left())
                || self.cut_off_lately(d.from))
    }
}
