//! Why a node ignored well-formed input: the closed list behind
//! [`Stats::rejected`](crate::Stats::rejected).
//!
//! Input that does not decode is a [`WireError`](crate::wire::WireError);
//! a rejection is input that decoded but that a rule refused.

use core::fmt;

/// Why a message, exchange or member was ignored. Each reason has a stable
/// [`metric_name`](Self::metric_name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rejection {
    /// A datagram from an address outside `cidrs_allowed`.
    PacketCidr,
    /// A stream from an address outside `cidrs_allowed`.
    StreamCidr,
    /// A ping addressed to another node's name.
    PingWrongNode,
    /// An indirect ping whose target address is neither IPv4 nor IPv6.
    IndirectPingBadTarget,
    /// An indirect ping while the most pending acks are already awaited.
    IndirectPingBusy,
    /// An ack whose sequence number nothing waits for (late or forged).
    AckUnknownSeq,
    /// A periodic push/pull skipped: the most are already running.
    PushPullBusy,
    /// A push/pull state whose protocol versions some member cannot speak.
    IncompatibleProtocol,
    /// A join's state vetoed by [`Delegate::allow_merge`](crate::Delegate::allow_merge).
    MergeVetoed,
    /// An alive message with a nonsense protocol version range.
    AliveBadVersion,
    /// An alive message with 1 to 5 version bytes.
    AliveShortVersion,
    /// An alive message refused by [`Delegate::allow_alive`](crate::Delegate::allow_alive).
    AliveFiltered,
    /// An alive message for an address outside `cidrs_allowed`.
    AliveCidr,
    /// An alive message about a new member while the table is full.
    MemberTableFull,
}

impl Rejection {
    /// Every reason, in declaration order (the index of [`Stats::rejected_for`](crate::Stats::rejected_for)).
    pub const ALL: [Rejection; 14] = [
        Rejection::PacketCidr,
        Rejection::StreamCidr,
        Rejection::PingWrongNode,
        Rejection::IndirectPingBadTarget,
        Rejection::IndirectPingBusy,
        Rejection::AckUnknownSeq,
        Rejection::PushPullBusy,
        Rejection::IncompatibleProtocol,
        Rejection::MergeVetoed,
        Rejection::AliveBadVersion,
        Rejection::AliveShortVersion,
        Rejection::AliveFiltered,
        Rejection::AliveCidr,
        Rejection::MemberTableFull,
    ];

    /// A stable snake_case name, for metric labels and logs.
    pub fn metric_name(self) -> &'static str {
        match self {
            Rejection::PacketCidr => "packet_cidr",
            Rejection::StreamCidr => "stream_cidr",
            Rejection::PingWrongNode => "ping_wrong_node",
            Rejection::IndirectPingBadTarget => "indirect_ping_bad_target",
            Rejection::IndirectPingBusy => "indirect_ping_busy",
            Rejection::AckUnknownSeq => "ack_unknown_seq",
            Rejection::PushPullBusy => "push_pull_busy",
            Rejection::IncompatibleProtocol => "incompatible_protocol",
            Rejection::MergeVetoed => "merge_vetoed",
            Rejection::AliveBadVersion => "alive_bad_version",
            Rejection::AliveShortVersion => "alive_short_vsn",
            Rejection::AliveFiltered => "alive_filtered",
            Rejection::AliveCidr => "alive_cidr",
            Rejection::MemberTableFull => "member_table_full",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::PacketCidr => "datagram from a network not allowed",
            Rejection::StreamCidr => "stream from a network not allowed",
            Rejection::PingWrongNode => "ping addressed to another node",
            Rejection::IndirectPingBadTarget => "indirect ping with a bad target address",
            Rejection::IndirectPingBusy => "too many acks awaited",
            Rejection::AckUnknownSeq => "ack for no ping in flight",
            Rejection::PushPullBusy => "too many push/pulls running",
            Rejection::IncompatibleProtocol => "incompatible protocol version",
            Rejection::MergeVetoed => "merge vetoed by the delegate",
            Rejection::AliveBadVersion => "alive with a bad version range",
            Rejection::AliveShortVersion => "alive with a short version",
            Rejection::AliveFiltered => "alive refused by the delegate",
            Rejection::AliveCidr => "alive for a network not allowed",
            Rejection::MemberTableFull => "member table full",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    #[test]
    fn all_lists_every_reason_once_in_index_order() {
        for (i, r) in Rejection::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let names: BTreeSet<_> = Rejection::ALL.iter().map(|r| r.metric_name()).collect();
        assert_eq!(names.len(), Rejection::ALL.len());
    }
}
