//! Settings of catch-up (`swim/catch_up/`): anti-entropy that reacts to
//! churn (not in Go memberlist; on the wire, ordinary memberlist traffic).

use core::time::Duration;

/// Catch-up: anti-entropy that reacts to what a node sees, instead of
/// waiting for the periodic push/pull (a whole scaled
/// [`push_pull_interval`](super::Config::push_pull_interval) in the worst
/// case). Not in Go memberlist, but its wire traffic is ordinary
/// memberlist traffic: push/pulls and alive messages any memberlist node
/// understands.
///
/// A node runs a push/pull out of turn
///
/// * with a random member once news of members (joins, returns) has
///   stopped for [`settle`](Self::settle), then a confirming one with
///   another member (or another try if no full state came), so that a
///   member whose rumour missed some nodes reaches them; in a cluster of at
///   most [`cover`](Self::cover) members, with every member not
///   pushed/pulled with since the news instead of one at random;
/// * with a node that pings us while we do not know it, or suspect it, or
///   a suspect that acks our probe: it is alive, and a push/pull fetches a
///   refutation that missed us;
/// * with a member declared dead, every
///   [`reconnect_interval`](Self::reconnect_interval), so the sides of a
///   long partition find each other again.
///
/// These share a budget of [`per_minute`](Self::per_minute). And it answers
/// a suspect or dead message older than the alive record it holds with that
/// alive message, one datagram to the sender, at most
/// [`corrections_per_second`](Self::corrections_per_second). The push/pulls
/// and corrections wait while many members are suspect, as when a
/// partition heals.
///
/// Two more guard against declaring a healthy member dead (docs/protocol.md
/// §15.8): an accusation against this node is answered with its alive
/// message sent straight to the accuser and to the datagram's sender, not
/// only gossiped ([`refutations_per_second`](Self::refutations_per_second));
/// and a suspicion about to become a death first sends the suspect one last
/// probe, a ping carrying the accusation plus indirect pings, and a suspect
/// that answers is not declared dead
/// ([`last_probes_per_second`](Self::last_probes_per_second)); a death
/// notice from an accuser this node holds dead, a partition healing, is
/// only a suspicion here ([`doubt_dead_accusers`](Self::doubt_dead_accusers));
/// and a member that comes back alive after this node held it dead, or
/// suspect on its own failed probes, was cut off from us and may hold
/// suspicions of us we never heard: it gets our alive message straight
/// away, above an incarnation raised for it if ours has not risen since it
/// was cut off ([`refute_returning_per_second`](Self::refute_returning_per_second);
/// off by default for now).
///
/// A reconnect reaches whatever now listens at a dead member's address:
/// clusters that share a network and reuse addresses should be told apart
/// by a label or keys, or set `reconnect_interval` to zero.
///
/// To turn it off: [`CatchUp::off`] (Go memberlist's behaviour);
/// `per_minute = 0` turns off the push/pulls, `corrections_per_second = 0`
/// the corrections, `refutations_per_second = 0` the direct refutations and
/// `last_probes_per_second = 0` the last probes, `doubt_dead_accusers =
/// false` the doubt, `refute_returning_per_second = 0` the refutations in
/// advance, `state_gossip = 0` the lower rank of members learned from full
/// states, `settle_unreached = false` the settling of nodes not picked,
/// `hearsay_per_second = 0` the handling of a state's verdicts as hearsay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatchUp {
    /// Most catch-up push/pulls a node starts per minute (a burst may use a
    /// whole minute's worth at once). Zero disables catch-up.
    pub per_minute: u32,
    /// How long news must have stopped before the settle push/pull (four
    /// times as long before the confirming one). News that goes on gets a
    /// push/pull every four times as long, while one leaves two in the
    /// budget for those two.
    pub settle: Duration,
    /// About how many nodes of the cluster run a settle push/pull after one
    /// burst of news: each does with probability `min(1, nodes / members)`
    /// (and the others too, if no full state reaches them: see
    /// [`settle_unreached`](Self::settle_unreached)).
    pub nodes: usize,
    /// In a cluster of at most this many members, the settle push/pull goes
    /// to every alive member this node has not pushed/pulled with since the
    /// news, not to one at random: there a rumour is sent only
    /// `retransmit_mult` times in all (`ceil(log10(n + 1))` is 1 up to 9
    /// members), a Go node may miss a join, and it does not relay what a
    /// push/pull taught it, so only a push/pull with it mends it before its
    /// own periodic one. Zero: one at random, whatever the size.
    pub cover: usize,
    /// How often a failed member is tried again (zero: never).
    pub reconnect_interval: Duration,
    /// How long after its death a failed member is tried again.
    pub reconnect_timeout: Duration,
    /// Most corrections a node sends per second (a second's worth at once).
    pub corrections_per_second: u32,
    /// Most direct refutations a node sends per second (a second's worth at
    /// once): its alive message, one datagram, to the accuser and the
    /// sender of each suspect or dead message about itself. Zero: refute by
    /// gossip alone, as Go does.
    pub refutations_per_second: u32,
    /// Most last probes a node starts per second (a second's worth at
    /// once): before a suspicion becomes a death, one probe interval of a
    /// ping carrying the accusation and indirect pings; a suspect that
    /// answers is not declared dead. A suspicion that finds no budget left
    /// becomes a death at once. Zero: no last probe, as in Go.
    pub last_probes_per_second: u32,
    /// A death notice whose accuser this node holds dead or gone, about a
    /// member it holds alive, is taken as a suspicion: it comes from across
    /// a partition that is healing, where each side declared the other
    /// dead. Off: taken as a death at once, as in Go.
    pub doubt_dead_accusers: bool,
    /// Most alive messages a node sends per second (a second's worth at
    /// once), one datagram each, to members returning from the dead (or
    /// from a suspicion of its own): refutations in advance of suspicions
    /// they may hold of us. Our incarnation is raised first, once for
    /// every member cut off since it last rose (a dead member at least the
    /// shortest suspicion timeout before it went down here), and gossiped
    /// like a refutation. A member our probes reached only by TCP (a
    /// one-way cut) returns with its next UDP ack, and meanwhile its death
    /// notices are doubted if
    /// [`doubt_dead_accusers`](Self::doubt_dead_accusers) is on.
    /// Zero (the default for now): none of this, as in Go; 10 is what was
    /// measured (docs/protocol.md §15.8).
    pub refute_returning_per_second: u32,
    /// How many times a member first learned from a push/pull's full state
    /// (unknown to this node until then) is gossiped, queued behind fresh
    /// news (as if already sent the retransmit limit less this many
    /// times); a newer record of a member already known, a refutation say,
    /// is news and keeps the whole limit. A full state
    /// lists members the cluster already knows: a joiner learns every
    /// member at once, and gossiping each of them the whole retransmit
    /// limit, at the same rank as fresh news, buries the news of later
    /// joins under thousands of stale rumours (every node's queue held
    /// about N of them in a 2,000-node bootstrap). A joiner's own state,
    /// answered by its seed, is news and keeps the whole limit. Zero: the
    /// whole limit at the same rank, as Go does.
    pub state_gossip: u32,
    /// A node not picked to settle (see [`nodes`](Self::nodes)) runs the
    /// settle push/pull after all if no full state reached it by the time
    /// a confirming push/pull would follow (four `settle`s). Off: only the
    /// picked nodes settle.
    pub settle_unreached: bool,
    /// Most suspect messages a node sends per second (a second's worth at
    /// once) straight to members a push/pull's state holds suspect or dead
    /// while this node holds them alive: hearsay, a verdict of the peer's
    /// (or of whoever told it), not of this node. With it on, such an entry
    /// becomes a suspicion here whose accuser is the peer (when this node
    /// can name it), not gossiped, and the member hears it and can refute
    /// at once; an entry about a member this node already suspects adds
    /// nothing. Gossiped as this node's own accusation, as Go does, it
    /// reaches the member's accuser as a second, independent accusation,
    /// and Lifeguard brings the accuser's deadline forward: a node cut off
    /// one way holds suspicions nobody heard, and every push/pull with it
    /// confirmed them. Zero: this node's own suspicion, gossiped, as in Go.
    pub hearsay_per_second: u32,
}

impl CatchUp {
    /// The defaults for a preset gossiping every `gossip` and pushing/pulling
    /// every `push_pull`: news has settled after three gossip rounds
    /// without any; failed members are tried again twice per push/pull
    /// interval, for an hour.
    pub(super) fn for_preset(gossip: Duration, push_pull: Duration) -> CatchUp {
        CatchUp {
            per_minute: 6,
            settle: gossip * 3,
            nodes: 1024,
            cover: 9,
            reconnect_interval: push_pull / 2,
            reconnect_timeout: Duration::from_secs(3600),
            corrections_per_second: 10,
            refutations_per_second: 10,
            last_probes_per_second: 20,
            doubt_dead_accusers: true,
            // Off until the healthy death it caused in a 1,000-node
            // partition heal (swim-sim, seed 1) is understood.
            refute_returning_per_second: 0,
            state_gossip: 2,
            settle_unreached: true,
            hearsay_per_second: 10,
        }
    }

    /// Off: Go memberlist's behaviour.
    pub fn off() -> CatchUp {
        CatchUp {
            per_minute: 0,
            cover: 0,
            corrections_per_second: 0,
            refutations_per_second: 0,
            last_probes_per_second: 0,
            doubt_dead_accusers: false,
            refute_returning_per_second: 0,
            state_gossip: 0,
            settle_unreached: false,
            hearsay_per_second: 0,
            ..CatchUp::for_preset(Duration::from_millis(200), Duration::from_secs(30))
        }
    }

    /// Whether catch-up push/pulls run at all.
    pub fn enabled(&self) -> bool {
        self.per_minute > 0
    }
}
