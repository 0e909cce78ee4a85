//! The state rules (docs/protocol.md §10): how alive, suspect and dead messages,
//! push/pull merges and refutations change what this node believes. Every
//! rule lives here and nowhere else; the caller acts on the [`Effect`]s they
//! produce.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::{set_state, Members, Record};
use crate::config::Config;
use crate::delegate::Delegate;
use crate::event::Event;
use crate::member::{Member, MemberState, WireIp};
use crate::rejection::Rejection;
use crate::rng::Rng;
use crate::suspicion::Suspicion;
use crate::time::Instant;
use crate::wire::{NodeState, PushNodeState};

/// An alive claim, from a packet, a push/pull or ourselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AliveClaim<'a> {
    pub(crate) node: &'a str,
    pub(crate) addr: &'a [u8],
    pub(crate) port: u16,
    pub(crate) meta: &'a [u8],
    pub(crate) incarnation: u32,
    pub(crate) vsn: &'a [u8],
}

/// An accusation: suspect or dead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim<'a> {
    pub(crate) node: &'a str,
    pub(crate) incarnation: u32,
    pub(crate) from: &'a str,
}

impl<'a> From<&crate::wire::Accusation<'a>> for Claim<'a> {
    fn from(a: &crate::wire::Accusation<'a>) -> Self {
        Claim {
            node: a.node,
            incarnation: a.incarnation,
            from: a.from,
        }
    }
}

/// What a rule asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Gossip the member's current alive message (keyed by its name). `at` is where its
    /// record was when the rule ran: later inserts of the same batch may have moved it.
    /// `first`: the member was unknown until now (no record).
    GossipAlive {
        node: Arc<str>,
        at: usize,
        first: bool,
    },
    /// Gossip a suspicion.
    GossipSuspect {
        node: Arc<str>,
        incarnation: u32,
        from: Arc<str>,
    },
    /// Tell the member, and no one else, of a suspicion taken from a
    /// push/pull's state (`catch_up/hearsay.rs`).
    TellSuspect {
        node: Arc<str>,
        incarnation: u32,
        from: Arc<str>,
        /// The suspicion raised the member's incarnation: a broadcast
        /// queued about it (an alive derived from its record) would now
        /// claim it alive at an incarnation it never announced.
        raised: bool,
    },
    /// Gossip a death or, when `node == from`, a departure.
    GossipDead {
        node: Arc<str>,
        incarnation: u32,
        from: Arc<str>,
    },
    /// We refuted an accusation (the awareness score rises).
    Refuted,
    /// A suspicion timer was set or moved.
    SuspicionDeadline { node: Arc<str>, deadline: Instant },
    /// Tell the application.
    Event(Event),
    /// A message was ignored for a reason worth counting.
    Rejected(Rejection),
    /// Another member joined or came back: news that may not have reached
    /// everyone.
    News { node: Arc<str> },
    /// A member was declared dead; it was at `addr`.
    Failed { node: Arc<str>, addr: SocketAddr },
    /// A member left on purpose.
    Left { node: Arc<str> },
    /// A member we held dead (`dead`), or suspect on our own failed probes,
    /// is alive again at a higher incarnation; it went down here at
    /// `down_since`.
    Returned {
        node: Arc<str>,
        down_since: Instant,
        dead: bool,
    },
    /// An accusation from a datagram's `sender` was older than the alive
    /// record we hold: the sender missed the member's refutation.
    Outdated { node: Arc<str>, sender: SocketAddr },
}

/// An accusation older than `r`: outdated if `r` is alive (the accused
/// refuted it since) and came in a datagram, otherwise nothing to say.
fn older_than(r: &Record, ctx: &mut Ctx<'_>) {
    if let (MemberState::Alive, Some(sender)) = (r.state, ctx.sender) {
        ctx.effects.push(Effect::Outdated {
            node: r.name.clone(),
            sender,
        });
    }
}

/// What the rules read besides the table.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) config: &'a Config,
    pub(crate) leaving: bool,
    /// The sender of the datagram the claim came in, if it came in one.
    pub(crate) sender: Option<SocketAddr>,
    pub(crate) rng: &'a mut Rng,
    pub(crate) delegate: &'a mut dyn Delegate,
    pub(crate) effects: &'a mut Vec<Effect>,
}

impl Members {
    // ------------------------------------------------------------ alive

    /// §10.1: an alive claim. `bootstrap` is for our own announcements.
    pub(crate) fn alive(&mut self, a: AliveClaim<'_>, bootstrap: bool, ctx: &mut Ctx<'_>) {
        let is_local = *a.node == *self.local;
        // A0: while leaving, claims about ourselves are ignored.
        if ctx.leaving && is_local {
            return;
        }
        // A1: nonsense protocol ranges.
        if a.vsn.len() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || a.vsn[0] > a.vsn[1]) {
            ctx.effects
                .push(Effect::Rejected(Rejection::AliveBadVersion));
            return;
        }
        let ip = WireIp::from_bytes(a.addr);
        let vsn = six(a.vsn);
        // A2: 1–5 version bytes crash v0.2.2 peers, so no Go node sends
        // them; refuse rather than guess. (No bytes at all is tolerated,
        // as Go does, though push/pull verification will then fail.)
        if !a.vsn.is_empty() && a.vsn.len() < 6 {
            ctx.effects
                .push(Effect::Rejected(Rejection::AliveShortVersion));
            return;
        }
        // The common case in steady gossip: a claim we already have. A5
        // would ignore it below; deciding now spares the allocations (and
        // the delegate, which could only have ignored it too).
        let existing = self.index_of(a.node);
        if let Some(i) = existing {
            let r = &self.nodes[i];
            if !is_local && r.addr == ip && r.port == a.port && a.incarnation <= r.incarnation {
                return;
            }
        }
        // Name and metadata are shared with the record when they are the same.
        let (name, meta) = match existing {
            Some(i) => {
                let r = &self.nodes[i];
                let meta = if *r.meta == *a.meta {
                    r.meta.clone()
                } else {
                    self.share_meta(a.meta)
                };
                (r.name.clone(), meta)
            }
            None => (self.names.share(a.node), self.share_meta(a.meta)),
        };
        let candidate = Member {
            name,
            addr: ip.shown(a.port),
            meta,
            incarnation: a.incarnation,
            state: MemberState::Alive,
            vsn: vsn.unwrap_or_default(),
        };
        if !ctx.delegate.allow_alive(&candidate) {
            ctx.effects.push(Effect::Rejected(Rejection::AliveFiltered));
            return;
        }

        let mut updates_node = false;
        let idx = match existing {
            None => {
                // A3: a new name enters as Dead at incarnation 0, so only an
                // incarnation ≥ 1 makes it alive below.
                if !ip.to_ip().is_some_and(|ip| ctx.config.ip_allowed(ip)) {
                    ctx.effects.push(Effect::Rejected(Rejection::AliveCidr));
                    return;
                }
                if self.nodes.len() >= self.max_members {
                    ctx.effects
                        .push(Effect::Rejected(Rejection::MemberTableFull));
                    return;
                }
                let idx = self.insert(
                    Record {
                        name: candidate.name.clone(),
                        meta: candidate.meta.clone(),
                        suspicion: None,
                        state_change: Instant::ZERO,
                        addr: ip,
                        incarnation: 0,
                        port: a.port,
                        vsn: vsn.unwrap_or([0; 6]),
                        state: MemberState::Dead,
                    },
                    ctx.rng,
                );
                self.note(idx);
                idx
            }
            Some(i) => {
                let r = &self.nodes[i];
                if r.addr != ip || r.port != a.port {
                    // A4: an address change is allowed only for members that
                    // left, or died long enough ago.
                    if !ip.to_ip().is_some_and(|ip| ctx.config.ip_allowed(ip)) {
                        ctx.effects.push(Effect::Rejected(Rejection::AliveCidr));
                        return;
                    }
                    let reclaim = ctx.config.dead_node_reclaim_time;
                    let can_reclaim = !reclaim.is_zero()
                        && ctx.now.saturating_duration_since(r.state_change) > reclaim;
                    if r.state == MemberState::Left || (r.state == MemberState::Dead && can_reclaim)
                    {
                        updates_node = true;
                    } else {
                        ctx.effects.push(Effect::Event(Event::NameConflict {
                            existing: Box::new(r.to_member()),
                            other: Box::new(candidate),
                        }));
                        return;
                    }
                }
                i
            }
        };

        let r = &mut self.nodes[idx];
        // A5/A6: stale claims.
        if !is_local && !updates_node && a.incarnation <= r.incarnation {
            return;
        }
        if is_local && a.incarnation < r.incarnation {
            return;
        }
        // Whether it comes back from the dead or from our own suspicion
        // (not from a departure, nor a name reclaimed at a new address: a
        // new process that holds no suspicions of us).
        let returning = !is_local
            && existing.is_some()
            && !updates_node
            && match r.state {
                MemberState::Dead => true,
                MemberState::Suspect => r
                    .suspicion
                    .as_ref()
                    .is_some_and(|s| s.raised_or_confirmed_by(&self.local)),
                _ => false,
            };
        let (down_since, was_dead) = (r.state_change, r.state == MemberState::Dead);
        // A7: any suspicion is over.
        r.suspicion = None;
        let old_state = r.state;
        let old_meta = r.meta.clone();

        if !bootstrap && is_local {
            // A8: someone speaks for us. The same announcement is harmless;
            // anything else is refuted with a newer incarnation.
            if a.incarnation == r.incarnation && a.meta == &*r.meta && vsn == Some(r.vsn) {
                return;
            }
            self.refute(idx, a.incarnation, ctx);
        } else {
            // A9: accept.
            if let Some(v) = vsn {
                r.vsn = v;
            }
            r.incarnation = a.incarnation;
            if *r.meta != *a.meta {
                r.meta = candidate.meta;
            }
            r.addr = ip;
            r.port = a.port;
            if r.state != MemberState::Alive {
                set_state(&mut self.counts, r, MemberState::Alive, ctx.now);
            }
            ctx.effects.push(Effect::GossipAlive {
                node: r.name.clone(),
                at: idx,
                first: existing.is_none(),
            });
            self.note(idx);
        }

        // A10.
        let r = &self.nodes[idx];
        if returning && r.state == MemberState::Alive {
            ctx.effects.push(Effect::Returned {
                node: r.name.clone(),
                down_since,
                dead: was_dead,
            });
        }
        if matches!(old_state, MemberState::Dead | MemberState::Left) {
            if r.state == MemberState::Alive {
                if *r.name != *self.local {
                    ctx.effects.push(Effect::News {
                        node: r.name.clone(),
                    });
                }
                ctx.effects
                    .push(Effect::Event(Event::MemberJoined(r.to_member())));
            }
        } else if *old_meta != *r.meta {
            ctx.effects
                .push(Effect::Event(Event::MemberUpdated(r.to_member())));
        }
    }

    // ------------------------------------------------------------ suspect

    /// §10.2: a suspicion.
    pub(crate) fn suspect(&mut self, s: Claim<'_>, ctx: &mut Ctx<'_>) {
        let Some(idx) = self.index_of(s.node) else {
            return;
        }; // S1
        let local = self.local.clone();
        let r = &mut self.nodes[idx];
        if s.incarnation < r.incarnation {
            return older_than(r, ctx); // S2
        }
        if let Some(susp) = &mut r.suspicion {
            // S3: another accuser confirms; only new ones count and spread.
            if susp.confirm(s.from) {
                ctx.effects.push(Effect::SuspicionDeadline {
                    node: r.name.clone(),
                    deadline: susp.deadline(),
                });
                ctx.effects.push(Effect::GossipSuspect {
                    node: r.name.clone(),
                    incarnation: s.incarnation,
                    from: Arc::from(s.from),
                });
            }
            return;
        }
        if r.state != MemberState::Alive {
            return; // S4
        }
        if *r.name == *local {
            // S5: we are alive, say so louder.
            self.refute(idx, s.incarnation, ctx);
            return;
        }
        self.start_suspicion(idx, s, true, ctx);
    }

    /// S6: `s` makes the alive member at `idx` suspect; with `gossip`, the
    /// suspicion is gossiped, otherwise told to the member alone.
    fn start_suspicion(&mut self, idx: usize, s: Claim<'_>, gossip: bool, ctx: &mut Ctx<'_>) {
        let n = self.nodes.len();
        let r = &mut self.nodes[idx];
        let (node, incarnation, from) = (r.name.clone(), s.incarnation, Arc::from(s.from));
        ctx.effects.push(match gossip {
            true => Effect::GossipSuspect {
                node,
                incarnation,
                from,
            },
            false => Effect::TellSuspect {
                raised: incarnation != r.incarnation,
                node,
                incarnation,
                from,
            },
        });
        r.incarnation = s.incarnation;
        set_state(&mut self.counts, r, MemberState::Suspect, ctx.now);
        let t = ctx.config.suspicion_timeouts(n);
        let susp = Suspicion::new(s.from, t.confirmations, t.min, t.max, ctx.now);
        ctx.effects.push(Effect::SuspicionDeadline {
            node: r.name.clone(),
            deadline: susp.deadline(),
        });
        r.suspicion = Some(Box::new(susp));
        self.note(idx);
    }

    /// A suspect or dead entry of a push/pull's state, with hearsay on
    /// (`catch_up/hearsay.rs`): `s.from` is the peer, or this node. About
    /// a member we already suspect it adds nothing (it names no accuser);
    /// about one we hold alive it starts a suspicion told to the member
    /// only; anything else (outdated, about us) goes by the rules of a
    /// suspicion.
    pub(crate) fn hearsay(&mut self, s: Claim<'_>, ctx: &mut Ctx<'_>) {
        let Some(idx) = self.index_of(s.node) else {
            return;
        };
        let r = &self.nodes[idx];
        if r.suspicion.is_some() {
            return;
        }
        let quiet = s.incarnation >= r.incarnation
            && r.state == MemberState::Alive
            && *r.name != *self.local;
        match quiet {
            true => self.start_suspicion(idx, s, false, ctx),
            false => self.suspect(s, ctx),
        }
    }

    /// A suspicion timer fired: if the member is still suspect and its
    /// deadline has passed, declare it dead.
    pub(crate) fn suspicion_expired(&mut self, node: &str, ctx: &mut Ctx<'_>) {
        let Some(r) = self.get(node) else { return };
        let expired = r.state == MemberState::Suspect
            && r.suspicion
                .as_ref()
                .is_some_and(|s| s.deadline() <= ctx.now);
        if expired {
            let (incarnation, local) = (r.incarnation, self.local.clone());
            self.dead(
                Claim {
                    node,
                    incarnation,
                    from: &local,
                },
                ctx,
            );
        }
    }

    // ------------------------------------------------------------ dead

    /// §10.3: a death notice, or a departure when `from == node`.
    pub(crate) fn dead(&mut self, d: Claim<'_>, ctx: &mut Ctx<'_>) {
        let Some(idx) = self.index_of(d.node) else {
            return;
        }; // D1
        let is_local = *self.nodes[idx].name == *self.local;
        let r = &mut self.nodes[idx];
        if d.incarnation < r.incarnation {
            return older_than(r, ctx); // D2
        }
        r.suspicion = None; // D3
        if r.dead_or_left() {
            return; // D4
        }
        if is_local && !ctx.leaving {
            self.refute(idx, d.incarnation, ctx); // D5
            return;
        }
        // D5'/D6: spread it (our own departure included).
        ctx.effects.push(Effect::GossipDead {
            node: r.name.clone(),
            incarnation: d.incarnation,
            from: Arc::from(d.from),
        });
        // D7.
        r.incarnation = d.incarnation;
        let state = if d.node == d.from {
            MemberState::Left
        } else {
            MemberState::Dead
        };
        set_state(&mut self.counts, r, state, ctx.now);
        let m = r.to_member();
        let node = m.name.clone();
        let (fact, event) = if r.state == MemberState::Left {
            (Effect::Left { node }, Event::MemberLeft(m))
        } else {
            (
                Effect::Failed { node, addr: m.addr },
                Event::MemberFailed(m),
            )
        };
        ctx.effects.push(fact);
        ctx.effects.push(Effect::Event(event));
        self.note(idx);
    }

    // ------------------------------------------------------------ refute

    /// §10.5: answer an accusation against us with an incarnation above it.
    fn refute(&mut self, idx: usize, accused: u32, ctx: &mut Ctx<'_>) {
        ctx.effects.push(Effect::Refuted);
        self.raise_local(idx, accused, ctx);
    }

    /// A refutation in advance (`catch_up/returning.rs`): the refutation's
    /// raise and gossip, without an accusation (so without the awareness
    /// penalty of one).
    pub(crate) fn refute_in_advance(&mut self, ctx: &mut Ctx<'_>) {
        let local = self.local.clone();
        if let Some(idx) = self.index_of(&local) {
            let accused = self.nodes[idx].incarnation;
            self.raise_local(idx, accused, ctx);
        }
    }

    /// Raises our incarnation above `accused` and gossips it.
    fn raise_local(&mut self, idx: usize, accused: u32, ctx: &mut Ctx<'_>) {
        let mut inc = self.next_incarnation();
        if accused >= inc {
            inc = accused.saturating_add(1);
            self.local_incarnation = inc;
        }
        self.local_raised_at = ctx.now;
        let r = &mut self.nodes[idx];
        r.incarnation = inc;
        ctx.effects.push(Effect::GossipAlive {
            node: r.name.clone(),
            at: idx,
            first: false,
        });
        self.note(idx);
    }

    /// A new metadata or version announcement for ourselves (Go's
    /// `UpdateNode`): a fresh incarnation.
    pub(crate) fn announce_local(
        &mut self,
        addr: SocketAddr,
        meta: &[u8],
        vsn: [u8; 6],
        ctx: &mut Ctx<'_>,
    ) {
        let incarnation = self.next_incarnation();
        self.local_raised_at = ctx.now;
        let ip = WireIp::from_ip(addr.ip());
        let local = self.local.clone();
        self.alive(
            AliveClaim {
                node: &local,
                addr: ip.as_bytes(),
                port: addr.port(),
                meta,
                incarnation,
                vsn: &vsn,
            },
            true,
            ctx,
        );
    }

    // ------------------------------------------------------------ merge

    /// §10.4: merge a remote push/pull state (after verification).
    pub(crate) fn merge(
        &mut self,
        remote: &[PushNodeState<'_>],
        accuser: Option<&str>,
        ctx: &mut Ctx<'_>,
    ) {
        let local = self.local.clone();
        let accuser = accuser.unwrap_or(&local);
        // A few at a time, looked up first (see `warm`): a state lists every member.
        for chunk in remote.chunks(16) {
            self.warm(chunk.iter().map(|r| r.name));
            for r in chunk {
                self.merge_one(r, accuser, ctx);
            }
        }
    }

    fn merge_one(&mut self, r: &PushNodeState<'_>, accuser: &str, ctx: &mut Ctx<'_>) {
        match MemberState::from_wire(r.state) {
            Some(MemberState::Alive) => self.alive(
                AliveClaim {
                    node: r.name,
                    addr: &r.addr,
                    port: r.port,
                    meta: &r.meta,
                    incarnation: r.incarnation,
                    vsn: &r.vsn,
                },
                false,
                ctx,
            ),
            // An outdated accusation in a state needs no correction: the
            // other side of a push/pull gets our state.
            Some(MemberState::Left) => {
                self.dead(
                    Claim {
                        node: r.name,
                        incarnation: r.incarnation,
                        from: r.name,
                    },
                    ctx,
                );
            }
            // A remote's dead is only our suspicion: we check for ourselves.
            Some(MemberState::Dead | MemberState::Suspect) => {
                let claim = Claim {
                    node: r.name,
                    incarnation: r.incarnation,
                    from: accuser,
                };
                match ctx.config.catch_up.hearsay_per_second > 0 {
                    true => self.hearsay(claim, ctx),
                    false => self.suspect(claim, ctx),
                }
            }
            // An unknown state: ignored, as Go ignores it.
            None => {}
        }
    }

    /// Go's `verifyProtocol`: every node, ours and theirs, must speak a
    /// protocol and delegate version all alive nodes understand.
    pub(crate) fn verify_protocol(&self, remote: &[PushNodeState<'_>]) -> bool {
        let (mut pmin, mut pmax, mut dmin, mut dmax) = (0u8, u8::MAX, 0u8, u8::MAX);
        let mut widen = |v: &[u8]| {
            pmin = pmin.max(v[0]);
            pmax = pmax.min(v[1]);
            dmin = dmin.max(v[3]);
            dmax = dmax.min(v[4]);
        };
        for r in remote
            .iter()
            .filter(|r| r.state == NodeState::Alive && r.vsn.len() >= 6)
        {
            widen(&r.vsn);
        }
        for r in self.nodes.iter().filter(|r| r.state == MemberState::Alive) {
            widen(&r.vsn);
        }
        let ok =
            |pcur: u8, dcur: u8| (pmin..=pmax).contains(&pcur) && (dmin..=dmax).contains(&dcur);
        remote.iter().all(|r| {
            let (p, d) = if r.vsn.len() >= 6 {
                (r.vsn[2], r.vsn[5])
            } else {
                (0, 0)
            };
            ok(p, d)
        }) && self.nodes.iter().all(|r| ok(r.vsn[2], r.vsn[5]))
    }
}

fn six(v: &[u8]) -> Option<[u8; 6]> {
    v.get(..6).map(|s| [s[0], s[1], s[2], s[3], s[4], s[5]])
}
