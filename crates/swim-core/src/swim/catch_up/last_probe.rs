//! The last probe: before a suspicion becomes a death, the suspect gets one
//! more chance to answer. One probe interval before the suspicion's
//! deadline the node sends the suspect a ping carrying the accusation (so
//! it refutes, and answers us directly, see `refute.rs`) and asks
//! `indirect_checks` members to ping it too. An answer, direct or relayed,
//! shows the suspect alive: it is not declared dead, a contact push/pull
//! fetches its refutation if few members are suspect, and another last
//! probe follows after a minimum suspicion timeout. No answer by the
//! deadline: the death goes ahead on time, so a real crash is declared no
//! later than without the last probe (unless a confirmation moved the
//! deadline closer than a probe interval: then by at most one).
//!
//! A suspicion whose deadline finds no budget left becomes a death at
//! once, as in Go.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::delegate::Delegate;
use crate::member::MemberState;
use crate::swim::timers::Timer;
use crate::swim::Swim;
use crate::time::Instant;

/// Most last probes outstanding at once; a suspicion due while this many
/// wait becomes a death at once, as in Go.
const MAX_LAST_PROBES: usize = 256;

/// One last probe of a suspect.
#[derive(Debug, Clone)]
struct LastProbe {
    node: Arc<str>,
    /// The suspect's incarnation when it was sent: a later suspicion (after a
    /// refutation) is another episode.
    incarnation: u32,
    seq: u32,
    sent: Instant,
    answered: bool,
}

/// The last probes outstanding, and those answered whose next one is not
/// due yet.
#[derive(Debug, Default)]
pub(in crate::swim) struct LastProbes(Vec<LastProbe>);

impl LastProbes {
    fn find(&self, node: &str, incarnation: u32) -> Option<usize> {
        self.0
            .iter()
            .position(|p| &*p.node == node && p.incarnation == incarnation)
    }
}

impl<D: Delegate> Swim<D> {
    /// How long a last probe waits for an answer: one probe interval, the
    /// time a regular probe gives its target.
    fn last_probe_wait(&self) -> Duration {
        self.config.probe_interval
    }

    /// A suspicion's deadline was set or moved to `deadline`: with last
    /// probes on, wake up one probe interval before it to send one.
    pub(in crate::swim) fn schedule_last_probe(
        &mut self,
        now: Instant,
        node: &Arc<str>,
        deadline: Instant,
    ) {
        if self.config.catch_up.last_probes_per_second == 0 {
            return;
        }
        let at = deadline - self.last_probe_wait();
        self.timers
            .schedule(at.max(now), Timer::Suspicion(node.clone()));
    }

    /// A suspicion timer of `node` fired (its deadline, or a probe interval
    /// before it). Declares the death the rules decide, unless a last probe
    /// is due, waiting, or was answered.
    pub(in crate::swim) fn suspicion_due(&mut self, now: Instant, node: &Arc<str>) {
        let per_second = self.config.catch_up.last_probes_per_second;
        let suspect = self
            .members
            .get(node)
            .filter(|r| r.state == MemberState::Suspect)
            .and_then(|r| Some((r.incarnation, r.suspicion.as_ref()?.deadline())));
        let Some((incarnation, deadline)) = suspect.filter(|_| per_second > 0) else {
            self.with_rules(now, |m, ctx| m.suspicion_expired(node, ctx));
            return;
        };
        let wait = self.last_probe_wait();
        // Forget probes of episodes that are over.
        let members = &self.members;
        self.catch_up.last_probes.0.retain(|p| {
            members
                .get(&p.node)
                .is_some_and(|r| r.state == MemberState::Suspect && r.incarnation == p.incarnation)
        });
        if now + wait < deadline {
            return; // an early wake-up for a deadline since moved later
        }
        match self.catch_up.last_probes.find(node, incarnation) {
            None => {
                let room = self.catch_up.last_probes.0.len() < MAX_LAST_PROBES;
                if room
                    && self
                        .catch_up
                        .last_probe_budget
                        .take(now, per_second, Duration::from_secs(1))
                {
                    if let Some(seq) = self.send_last_probe(now, node, incarnation, wait) {
                        self.catch_up.last_probes.0.push(LastProbe {
                            node: node.clone(),
                            incarnation,
                            seq,
                            sent: now,
                            answered: false,
                        });
                        self.stats.last_probes += 1;
                        let decide = deadline.max(now + wait);
                        self.timers.schedule(decide, Timer::Suspicion(node.clone()));
                        return;
                    }
                }
                if now >= deadline {
                    self.with_rules(now, |m, ctx| m.suspicion_expired(node, ctx));
                }
            }
            Some(i) => {
                let p = &self.catch_up.last_probes.0[i];
                if now < deadline {
                    return; // sent already; the deadline's timer decides
                }
                if p.answered {
                    // Alive: the next last probe after a minimum suspicion
                    // timeout, time for its refutation to arrive.
                    self.catch_up.last_probes.0.swap_remove(i);
                    let n = self.members.len();
                    let again = now + self.config.suspicion_timeouts(n).min;
                    self.timers
                        .schedule(again.max(now + wait), Timer::Suspicion(node.clone()));
                } else if now >= p.sent + wait {
                    self.catch_up.last_probes.0.swap_remove(i);
                    self.with_rules(now, |m, ctx| m.suspicion_expired(node, ctx));
                } else {
                    let decide = p.sent + wait;
                    self.timers.schedule(decide, Timer::Suspicion(node.clone()));
                }
            }
        }
    }

    /// The last probe with sequence number `seq` was answered (directly or
    /// through a member that pinged for us).
    pub(in crate::swim) fn last_probe_answered(&mut self, now: Instant, seq: u32) {
        let Some(p) = self
            .catch_up
            .last_probes
            .0
            .iter_mut()
            .find(|p| p.seq == seq)
        else {
            return;
        };
        p.answered = true;
        let node = p.node.clone();
        self.stats.last_probes_answered += 1;
        self.note_probe_acked(now, &node);
    }
}
