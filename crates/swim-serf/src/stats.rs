//! What Serf refused from its peers, counted (as swim-core's
//! [`Stats`](swim_core::Stats) counts what the Swim refused): input that
//! does not decode, by [`DecodeError::kind`], and input that decoded but
//! that a rule refused, by [`SerfRejection`]. A refused input changes
//! nothing but these counters.

use core::fmt;

use crate::messages::DecodeError;

/// Why Serf ignored a message that decoded. Each reason has a stable
/// [`metric_name`](Self::metric_name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SerfRejection {
    /// A Lamport time at or past [`LAMPORT_TIME_LIMIT`](crate::bounds::LAMPORT_TIME_LIMIT):
    /// witnessing it would take a clock to where it overflows.
    ClockOutOfRange,
    /// A message type that never comes as a user message (push/pull
    /// state, conflict response, key request or response; Go ignores
    /// them too).
    UnexpectedType,
    /// An intent about a node not (yet) a member while the recent intents
    /// table is full ([`RECENT_INTENTS_MAX`](crate::bounds::RECENT_INTENTS_MAX)).
    IntentTableFull,
    /// A user event before the minimum event time or older than the event
    /// buffer covers (Go drops it too).
    EventTooOld,
    /// A user event whose encoding exceeds [`USER_EVENT_SIZE_MAX`](crate::USER_EVENT_SIZE_MAX),
    /// which no Go node sends.
    EventTooLarge,
    /// A new user event at a Lamport time that already holds
    /// [`EVENTS_PER_LTIME_MAX`](crate::bounds::EVENTS_PER_LTIME_MAX).
    EventTimeFull,
    /// A query before the minimum query time or older than the query
    /// buffer covers (Go drops it too).
    QueryTooOld,
    /// A new query at a query time that already holds
    /// [`QUERIES_PER_LTIME_MAX`](crate::bounds::QUERIES_PER_LTIME_MAX).
    QueryTimeFull,
    /// A response or ack to none of our open queries: unknown time or id,
    /// or past its deadline (Go logs it).
    ResponseUnknownQuery,
    /// A second ack or response from one node to one query (Go logs it).
    ResponseDuplicate,
    /// A response or ack beyond what the query collects: as many of each
    /// as there were members when it was sent (Go's channel capacity).
    ResponseOverflow,
    /// A relay carrying anything but a query response (Go only ever
    /// relays responses).
    RelayNotResponse,
    /// A relay whose destination is not a member (Go would send to the
    /// address it names; we only send to members).
    RelayUnknownDestination,
    /// An ack's coordinate that does not decode, has another
    /// dimensionality, is not finite, or comes with an implausible
    /// round-trip time (Go logs it).
    CoordinateRefused,
}

impl SerfRejection {
    /// Every reason, in declaration order (the index of
    /// [`SerfStats::rejected_for`]).
    pub const ALL: [SerfRejection; 14] = [
        SerfRejection::ClockOutOfRange,
        SerfRejection::UnexpectedType,
        SerfRejection::IntentTableFull,
        SerfRejection::EventTooOld,
        SerfRejection::EventTooLarge,
        SerfRejection::EventTimeFull,
        SerfRejection::QueryTooOld,
        SerfRejection::QueryTimeFull,
        SerfRejection::ResponseUnknownQuery,
        SerfRejection::ResponseDuplicate,
        SerfRejection::ResponseOverflow,
        SerfRejection::RelayNotResponse,
        SerfRejection::RelayUnknownDestination,
        SerfRejection::CoordinateRefused,
    ];

    /// A stable snake_case name, for metric labels and logs.
    pub fn metric_name(self) -> &'static str {
        match self {
            SerfRejection::ClockOutOfRange => "clock_out_of_range",
            SerfRejection::UnexpectedType => "unexpected_type",
            SerfRejection::IntentTableFull => "intent_table_full",
            SerfRejection::EventTooOld => "event_too_old",
            SerfRejection::EventTooLarge => "event_too_large",
            SerfRejection::EventTimeFull => "event_time_full",
            SerfRejection::QueryTooOld => "query_too_old",
            SerfRejection::QueryTimeFull => "query_time_full",
            SerfRejection::ResponseUnknownQuery => "response_unknown_query",
            SerfRejection::ResponseDuplicate => "response_duplicate",
            SerfRejection::ResponseOverflow => "response_overflow",
            SerfRejection::RelayNotResponse => "relay_not_response",
            SerfRejection::RelayUnknownDestination => "relay_unknown_destination",
            SerfRejection::CoordinateRefused => "coordinate_refused",
        }
    }

    fn index(self) -> usize {
        SerfRejection::ALL
            .iter()
            .position(|&r| r == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for SerfRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric_name())
    }
}

/// What Serf refused since it started ([`Serf::stats`](crate::Serf::stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SerfStats {
    /// Messages, push/pull states and query payloads that failed to
    /// decode.
    pub decode_errors: u64,
    /// The [`DecodeError::kind`] of the last one.
    pub last_decode_error: Option<&'static str>,
    /// Messages ignored by a rule, in all.
    pub rejected: u64,
    /// Why the last one was ignored.
    pub last_rejected: Option<SerfRejection>,
    /// Messages ignored, by reason ([`rejected_for`](Self::rejected_for)).
    rejections: [u64; SerfRejection::ALL.len()],
}

impl SerfStats {
    pub(crate) fn count_decode_error(&mut self, e: &DecodeError) {
        self.decode_errors += 1;
        self.last_decode_error = Some(e.kind());
    }

    pub(crate) fn count_rejected(&mut self, why: SerfRejection) {
        self.rejected += 1;
        self.rejections[why.index()] += 1;
        self.last_rejected = Some(why);
    }

    /// Messages ignored for `why`.
    pub fn rejected_for(&self, why: SerfRejection) -> u64 {
        self.rejections[why.index()]
    }
}
