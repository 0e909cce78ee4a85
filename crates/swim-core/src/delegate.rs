//! What the core asks the application while it runs (Go's delegates).

use alloc::vec::Vec;

use crate::member::Member;

/// What Go memberlist asks its delegates at the moment it needs the
/// answer: whether to accept a member or a merge (`AliveDelegate`,
/// `MergeDelegate`), the application state for a push/pull and the payload
/// of an ack (`Delegate.LocalState`, `PingDelegate.AckPayload`), and user
/// broadcasts to piggyback (`Delegate.GetBroadcasts`). Every method has a
/// default: accept, send what [`set_local_state`](crate::Swim::set_local_state)
/// and [`set_ack_payload`](crate::Swim::set_ack_payload) stored, pull nothing.
///
/// Methods are called synchronously, in the middle of handling an input, so
/// they must be quick, and — for the simulator's replays — a function of
/// what the delegate has seen. What Go *tells* its delegates (user
/// messages, remote state, conflicts, ping round trips, membership changes)
/// comes out as [`Event`](crate::Event)s instead: ordered with everything
/// else, never blocking the protocol.
///
/// ```
/// use swim_core::{Config, Delegate, Instant, Member, Swim};
///
/// /// Accepts only members of zone a, and sends a fresh state with every push/pull.
/// struct ZoneA {
///     version: u64,
/// }
///
/// impl Delegate for ZoneA {
///     fn allow_alive(&mut self, member: &Member) -> bool {
///         &*member.meta == b"zone=a"
///     }
///
///     fn local_state(&mut self, join: bool) -> Option<Vec<u8>> {
///         self.version += 1;
///         Some(format!("v{} join={join}", self.version).into_bytes())
///     }
/// }
///
/// let mut config = Config::lan("a", "10.0.0.1:7946".parse().unwrap());
/// config.meta = b"zone=a".to_vec();
/// let swim = Swim::builder(config, 7)
///     .delegate(ZoneA { version: 0 })
///     .build(Instant::ZERO)?;
/// # Ok::<(), swim_core::ConfigError>(())
/// ```
pub trait Delegate {
    /// Whether to accept an alive message that would add or change `member`
    /// (Go's `AliveDelegate.NotifyAlive`).
    #[doc(alias = "NotifyAlive")]
    #[doc(alias = "AliveDelegate")]
    fn allow_alive(&mut self, member: &Member) -> bool {
        let _ = member;
        true
    }

    /// Whether to merge the state a join brought (`members` as the remote
    /// side listed them; entries in a state this version does not know are
    /// left out, as the merge ignores them) (Go's
    /// `MergeDelegate.NotifyMerge`). Refusing fails our join with that seed;
    /// when a node joins through us, its state stays out of our table (it
    /// still gets ours, as in Go).
    #[doc(alias = "NotifyMerge")]
    #[doc(alias = "MergeDelegate")]
    fn allow_merge(&mut self, members: &[Member]) -> bool {
        let _ = members;
        true
    }

    /// The application state a push/pull carries, asked for each exchange;
    /// `join` says whether the exchange is a join (Go's
    /// `Delegate.LocalState`). `None`: what
    /// [`set_local_state`](crate::Swim::set_local_state) stored.
    #[doc(alias = "LocalState")]
    fn local_state(&mut self, join: bool) -> Option<Vec<u8>> {
        let _ = join;
        None
    }

    /// The payload of an ack to a direct ping (Go's `PingDelegate.AckPayload`).
    /// `None`: what [`set_ack_payload`](crate::Swim::set_ack_payload) stored.
    #[doc(alias = "AckPayload")]
    #[doc(alias = "PingDelegate")]
    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Whether [`broadcasts`](Self::broadcasts) may have something to send:
    /// it is asked only then, and gossip rounds run while it says so.
    fn has_broadcasts(&self) -> bool {
        false
    }

    /// User messages to piggyback on a packet (Go's `Delegate.GetBroadcasts`):
    /// each costs `overhead` bytes besides its own, and all of them together
    /// at most `limit`. What is returned is sent once, in this packet; what
    /// does not fit is dropped and counted. The delegate decides how often
    /// it hands out each message.
    #[doc(alias = "GetBroadcasts")]
    fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let _ = (overhead, limit);
        Vec::new()
    }
}

/// The default [`Delegate`]: accepts everything, sends what the node
/// stored, pulls no broadcasts.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultDelegate;

impl Delegate for DefaultDelegate {}

impl<D: Delegate + ?Sized> Delegate for alloc::boxed::Box<D> {
    fn allow_alive(&mut self, member: &Member) -> bool {
        (**self).allow_alive(member)
    }

    fn allow_merge(&mut self, members: &[Member]) -> bool {
        (**self).allow_merge(members)
    }

    fn local_state(&mut self, join: bool) -> Option<Vec<u8>> {
        (**self).local_state(join)
    }

    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        (**self).ack_payload()
    }

    fn has_broadcasts(&self) -> bool {
        (**self).has_broadcasts()
    }

    fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        (**self).broadcasts(overhead, limit)
    }
}
