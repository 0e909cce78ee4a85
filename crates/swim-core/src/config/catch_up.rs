//! Settings of catch-up push/pulls: anti-entropy that reacts to churn (not
//! in Go memberlist; every exchange is an ordinary push/pull on the wire).

use core::time::Duration;

/// When a node runs a push/pull out of turn, to catch up with what gossip
/// missed instead of waiting for the periodic one (a whole scaled
/// [`push_pull_interval`](super::Config::push_pull_interval) in the worst
/// case: 45–90 s for 100 nodes on the Local preset).
///
/// Three triggers share one budget of [`per_minute`](Self::per_minute)
/// exchanges per node:
///
/// * **Settle**: news of members (a join, a return) came and then stopped
///   for [`settle`](Self::settle) (and once meanwhile if it goes on for
///   four `settle`s: a large storm trickles in by gossip for seconds). A
///   join storm leaves a few
///   nodes without a few members (each rumour is retransmitted a bounded
///   number of times); a push/pull with a random member when the news
///   settles mends that (and what it teaches is news again, so the repair
///   spreads like an epidemic while there is something to repair). Four
///   `settle`s later a second, confirming push/pull with another random
///   member follows, unless news or another full state came meanwhile: the
///   first partner may have lacked the same member (in the simulator, one
///   300-node storm in 40 left a node without a member for minutes
///   without it). If no full state came by then (the push/pull failed,
///   or the budget was spent), the settle push/pull is tried again
///   instead, four times at most, each when the budget allows (in a storm
///   that starves the host, many time out: 1,000 nodes joining at once
///   beside a busy core left a node without a member for 90 s without
///   these tries, 9–12 s with them). Both are skipped when another
///   push/pull already brought a full state once the news had settled, and
///   run with probability
///   `min(1, nodes / members)`, so about [`nodes`](Self::nodes) exchanges
///   follow one burst of news however large the cluster.
/// * **Contact**: a ping or indirect ping arrives from a node this one does
///   not know, or suspects; or a member we suspect acks our probe. It is
///   alive and talking to us, so our view of it is stale: a push/pull with
///   it mends both views (it fetches a refutation that missed us, before a
///   suspicion turns into a false death). At most once per member per
///   minute, and for a suspect only while we suspect at most three
///   members: many suspicions at once are a partition healing, where a
///   push/pull across it spreads each side's verdicts as suspicions of the
///   other's own members faster than they are refuted.
/// * **Reconnect**: every [`reconnect_interval`](Self::reconnect_interval),
///   a push/pull with a member declared dead (not one that left), for
///   [`reconnect_timeout`](Self::reconnect_timeout) after its death, with
///   probability `min(1, failed / alive)` (so the cluster tries each failed
///   member about once per interval, as Serf does). Go memberlist never
///   talks to the dead again once their gossip-to-the-dead time is over, so
///   the two sides of a partition that outlasted the suspicion timeout
///   stay apart; this brings them back together. A reconnect reaches
///   whatever now listens at a dead member's address: clusters that share
///   a network and reuse addresses (pods, say) should be told apart by a
///   label or keys, as with Serf, or set `reconnect_interval` to zero.
///
/// And one that is not a push/pull but a single datagram, with its own
/// budget of [`corrections_per_second`](Self::corrections_per_second):
///
/// * **Correction**: a suspect or dead message arrives about a member we
///   hold alive at a higher incarnation. The member refuted it since, and
///   whoever sent it missed the refutation (a rumour reaches each node only
///   with high probability); left alone, that node declares a live member
///   dead and keeps it so until a push/pull. We send it the member's alive
///   message, which any memberlist node takes over the older accusation
///   (in the simulator, 30 LAN nodes under 20 % datagram and stream loss
///   for 200 s: 13 healthy nodes declared dead in 40 seeds without, 1
///   with). Not while this node suspects more than three members or holds
///   more than three dead: a partition healing, where corrections made
///   things worse.
///
/// `per_minute = 0` turns the push/pulls off and `corrections_per_second =
/// 0` the corrections; [`CatchUp::off`] both: Go memberlist's behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatchUp {
    /// Most catch-up push/pulls a node starts per minute (a burst may use a
    /// whole minute's worth at once). Zero disables catch-up.
    pub per_minute: u32,
    /// How long news must have stopped before the settle push/pull (four
    /// times as long before the confirming one).
    pub settle: Duration,
    /// About how many nodes of the cluster run a settle push/pull after one
    /// burst of news: each does with probability `min(1, nodes / members)`.
    pub nodes: usize,
    /// How often a failed member is tried again (zero: never).
    pub reconnect_interval: Duration,
    /// How long after its death a failed member is tried again.
    pub reconnect_timeout: Duration,
    /// Most corrections a node sends per second (a second's worth at once).
    pub corrections_per_second: u32,
}

impl CatchUp {
    /// The defaults for a preset gossiping every `gossip` and pushing/pulling
    /// every `push_pull`: news has settled after three gossip rounds
    /// without any (in the simulator, 500 nodes joining one seed within a
    /// second converged in 2.7–2.9 s on Local, for 3.4–3.6 catch-up
    /// push/pulls per node; 3.9–4.2 s before the confirming push/pull);
    /// failed members are tried again twice per push/pull interval, for an
    /// hour.
    pub(super) fn for_preset(gossip: Duration, push_pull: Duration) -> CatchUp {
        CatchUp {
            per_minute: 6,
            settle: gossip * 3,
            nodes: 1024,
            reconnect_interval: push_pull / 2,
            reconnect_timeout: Duration::from_secs(3600),
            corrections_per_second: 10,
        }
    }

    /// Off: Go memberlist's behaviour.
    pub fn off() -> CatchUp {
        CatchUp {
            per_minute: 0,
            corrections_per_second: 0,
            ..CatchUp::for_preset(Duration::from_millis(200), Duration::from_secs(30))
        }
    }

    /// Whether catch-up push/pulls run at all.
    pub fn enabled(&self) -> bool {
        self.per_minute > 0
    }
}
