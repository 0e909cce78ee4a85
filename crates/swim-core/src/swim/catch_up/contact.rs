//! The contact push/pull: a node that talks to us while we do not know it,
//! or suspect it, is alive, so our view of it is stale; a push/pull with it
//! mends both views.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::delegate::Delegate;
use crate::member::{MemberState, WireIp};
use crate::swim::Swim;
use crate::time::Instant;

/// How long a sender that made contact is not pushed/pulled again.
const CONTACT_MEMORY: Duration = Duration::from_secs(60);
/// Most senders remembered at once; contact from more is ignored until
/// older ones are forgotten (a flood of forged senders cannot grow it).
const CONTACT_MAX: usize = 64;

/// Senders pushed/pulled because they made contact, and when.
#[derive(Debug, Default)]
pub(super) struct Contacts(Vec<(Arc<str>, Instant)>);

impl<D: Delegate> Swim<D> {
    /// A ping or indirect ping from `name` (at `addr:port`, as it announced
    /// itself): if we do not know it, or suspect it, a push/pull with it
    /// mends both views.
    pub(super) fn note_contact(&mut self, now: Instant, name: &str, addr: &[u8], port: u16) {
        if !self.config.catch_up.enabled() || name.is_empty() || port == 0 {
            return;
        }
        let Some(ip) = WireIp::from_bytes(addr).to_ip() else {
            return;
        };
        let to = SocketAddr::new(ip, self.fix_port(port));
        self.contact(now, name, to);
    }

    /// Our probe of `name` was acked directly. If we suspect it, its
    /// refutation missed us (a refutation is gossiped a few times, and a
    /// small cluster can miss all of them; our piggybacked accusation no
    /// longer makes it refute, being older than its incarnation): a
    /// push/pull fetches it before the suspicion turns into a false death.
    pub(super) fn note_probe_acked(&mut self, now: Instant, name: &str) {
        if !self.config.catch_up.enabled() {
            return;
        }
        let Some(to) = self
            .members
            .get(name)
            .filter(|r| r.state == MemberState::Suspect)
            .and_then(|r| r.socket_addr())
        else {
            return;
        };
        self.contact(now, name, to);
    }

    /// `name`, at `to`, is alive and talking to us: if we do not know it, or
    /// suspect it and few others, push/pull with it (once a minute at
    /// most). Not if we hold it dead, or suspect many: that is a partition
    /// healing, each side holding the other dead or suspect, and a
    /// push/pull across it teaches each node the other side's verdicts as
    /// fresh suspicions of its own side, faster than their refutations
    /// spread. Gossip to the dead tells a node of its death instead, and
    /// once the record is gone the node is unknown.
    pub(super) fn contact(&mut self, now: Instant, name: &str, to: SocketAddr) {
        if name == &**self.members.local_name() {
            return;
        }
        let settled = self
            .members
            .get(name)
            .is_some_and(|r| r.state != MemberState::Suspect || !self.few_suspects());
        if settled || !self.config.ip_allowed(to.ip()) {
            return;
        }
        let contacted = &mut self.catch_up.contacts.0;
        contacted.retain(|(_, at)| now.saturating_duration_since(*at) < CONTACT_MEMORY);
        if contacted.len() >= CONTACT_MAX || contacted.iter().any(|(n, _)| &**n == name) {
            return;
        }
        if self.start_catch_up(now, to) {
            self.catch_up.contacts.0.push((Arc::from(name), now));
        }
    }
}
