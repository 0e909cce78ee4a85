//! The decisions Go memberlist leaves to the application.

use crate::member::Member;

/// The decisions Go memberlist leaves to the application (its
/// `AliveDelegate` and `MergeDelegate`), asked synchronously; both default
/// to accepting.
pub trait Policy {
    /// Whether to accept an alive message that would add or change `member`.
    fn allow_alive(&mut self, member: &Member) -> bool {
        let _ = member;
        true
    }

    /// Whether to merge the state a join brought (`members` as the remote
    /// side listed them; entries in a state this version does not know are
    /// left out, as the merge ignores them). Refusing fails the join with
    /// that seed.
    fn allow_merge(&mut self, members: &[Member]) -> bool {
        let _ = members;
        true
    }
}

/// The default [`Policy`]: accept everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Policy for AllowAll {}
