//! The member table and the state rules (WIRE.md §10): how alive, suspect
//! and dead messages, push/pull merges and refutations change what this
//! node believes. Every rule lives here and nowhere else; the caller acts on
//! the [`Effect`]s they produce.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use core::hash::BuildHasher;

use hashbrown::HashTable;

use crate::broadcast::Derive;
use crate::config::Config;
use crate::event::{Event, Member, MemberChange, MemberState, Policy, WireIp};
use crate::rng::Rng;
use crate::suspicion::{suspicion_params, Suspicion};
use crate::time::Instant;
use crate::wire::{Alive, Message, Transport};

/// Name lookups hash with a fixed seed: deterministic (no iteration order
/// is ever observed anyway).
fn name_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x5157_494d)
}

/// One member's record (kept compact: the simulator holds 10,000 nodes ×
/// 10,000 records).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) name: Arc<str>,
    pub(crate) meta: Arc<[u8]>,
    pub(crate) suspicion: Option<Box<Suspicion>>,
    pub(crate) state_change: Instant,
    pub(crate) addr: WireIp,
    pub(crate) incarnation: u32,
    pub(crate) port: u16,
    pub(crate) vsn: [u8; 6],
    pub(crate) state: MemberState,
}

impl Record {
    pub(crate) fn socket_addr(&self) -> Option<SocketAddr> {
        self.addr.to_ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    pub(crate) fn to_member(&self) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.socket_addr().unwrap_or(SocketAddr::new(
                core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
                self.port,
            )),
            meta: self.meta.clone(),
            incarnation: self.incarnation,
            state: self.state,
            vsn: self.vsn,
        }
    }

    pub(crate) fn pmax(&self) -> u8 {
        self.vsn[1]
    }

    pub(crate) fn dead_or_left(&self) -> bool {
        matches!(self.state, MemberState::Dead | MemberState::Left)
    }
}

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
    GossipAlive { node: Arc<str>, at: usize },
    /// Gossip a suspicion.
    GossipSuspect {
        node: Arc<str>,
        incarnation: u32,
        from: Arc<str>,
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
    Rejected(&'static str),
}

/// What the rules read besides the table.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) config: &'a Config,
    pub(crate) leaving: bool,
    pub(crate) rng: &'a mut Rng,
    pub(crate) policy: &'a mut dyn Policy,
    pub(crate) effects: &'a mut Vec<Effect>,
}

/// Alive broadcasts, written from the member table whenever they are sent (see
/// [`BroadcastQueue::push_derived`](crate::broadcast::BroadcastQueue::push_derived)).
pub(crate) struct AliveMessages<'a>(pub(crate) &'a Members);

impl Derive for AliveMessages<'_> {
    fn write(&mut self, node: &Arc<str>, hint: usize, out: &mut Vec<u8>) -> Option<usize> {
        let at = self.0.position_near(node, hint)?;
        self.0.encode_alive(at, out);
        Some(at)
    }

    fn warm(&mut self, node: &Arc<str>, hint: usize) {
        let at = self.0.position_near(node, hint);
        core::hint::black_box(at.map(|at| self.0.nodes[at].incarnation));
    }
}

/// The member table, in probe order, with the local node's entry in it.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    nodes: Vec<Record>,
    /// Positions in `nodes`, found by hashing the name (4 bytes a slot:
    /// the name itself lives in the record).
    index: HashTable<u32>,
    local: Arc<str>,
    /// The local incarnation counter (Go's `m.incarnation`).
    local_incarnation: u32,
    max_members: usize,
    /// Every change, when an observer asked for them.
    record_changes: bool,
    changes: Vec<MemberChange>,
    /// Shared by every member without metadata, so none allocates for it.
    no_meta: Arc<[u8]>,
}

impl Members {
    pub(crate) fn new(local: Arc<str>, max_members: usize, record_changes: bool) -> Self {
        Members {
            no_meta: Arc::from(&[][..]),
            nodes: Vec::new(),
            index: HashTable::new(),
            local,
            local_incarnation: 0,
            max_members,
            record_changes,
            changes: Vec::new(),
        }
    }

    /// Records the record at `idx` as changed (when recording).
    fn note(&mut self, idx: usize) {
        if self.record_changes {
            self.changes
                .push(MemberChange::Updated(self.nodes[idx].to_member()));
        }
    }

    /// The changes recorded since the last call (the buffer goes with them,
    /// so a burst does not pin its peak size).
    pub(crate) fn take_changes(&mut self) -> Vec<MemberChange> {
        core::mem::take(&mut self.changes)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Record> {
        self.index_of(name).map(|i| &self.nodes[i])
    }

    /// Where the record of `name` is, looked for at `at` first (where it was when an effect
    /// was made, or a broadcast last sent).
    pub(crate) fn position_near(&self, name: &Arc<str>, at: usize) -> Option<usize> {
        match self.nodes.get(at) {
            Some(r) if Arc::ptr_eq(&r.name, name) => Some(at),
            _ => self.index_of(name),
        }
    }

    /// Appends the alive message of the record at `at` as a packet part; returns its length.
    pub(crate) fn encode_alive(&self, at: usize, out: &mut Vec<u8>) -> usize {
        let r = &self.nodes[at];
        let start = out.len();
        Message::Alive(Alive {
            incarnation: r.incarnation,
            node: &r.name,
            addr: r.addr.as_bytes().into(),
            port: r.port,
            meta: (&*r.meta).into(),
            vsn: r.vsn[..].into(),
        })
        .encode(Transport::Packet, out);
        out.len() - start
    }

    pub(crate) fn records(&self) -> &[Record] {
        &self.nodes
    }

    pub(crate) fn local_name(&self) -> &Arc<str> {
        &self.local
    }

    pub(crate) fn local(&self) -> Option<&Record> {
        self.get(&self.local)
    }

    pub(crate) fn num_alive(&self) -> usize {
        self.nodes
            .iter()
            .filter(|r| r.state == MemberState::Alive)
            .count()
    }

    /// Whether any member but us is alive (someone to hear a broadcast).
    pub(crate) fn any_other_alive(&self) -> bool {
        self.nodes
            .iter()
            .any(|r| r.state == MemberState::Alive && r.name != self.local)
    }

    /// `meta` as a record's metadata: the shared empty one, or a new allocation.
    fn share_meta(&self, meta: &[u8]) -> Arc<[u8]> {
        if meta.is_empty() {
            self.no_meta.clone()
        } else {
            Arc::from(meta)
        }
    }

    /// Looks up the records of `names` and discards what it finds, so that handling them next
    /// finds them in cache: these lookups are independent, so their cache misses overlap.
    pub(crate) fn warm<'n>(&self, names: impl Iterator<Item = &'n str>) {
        for name in names {
            core::hint::black_box(self.index_of(name).map(|i| self.nodes[i].incarnation));
        }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        let hash = name_hasher().hash_one(name);
        self.index
            .find(hash, |&i| *self.nodes[i as usize].name == *name)
            .map(|&i| i as usize)
    }

    /// The next local incarnation (Go's `nextIncarnation`).
    pub(crate) fn next_incarnation(&mut self) -> u32 {
        // Saturates: wrapping to 0 would make every later announcement of
        // ours look stale (Go wraps; an accusation at u32::MAX is a hostile
        // or broken peer either way).
        self.local_incarnation = self.local_incarnation.saturating_add(1);
        self.local_incarnation
    }

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
            ctx.effects.push(Effect::Rejected("alive_bad_version"));
            return;
        }
        let ip = WireIp::from_bytes(a.addr);
        let vsn = six(a.vsn);
        // A2: 1–5 version bytes crash v0.2.2 peers, so no Go node sends
        // them; refuse rather than guess. (No bytes at all is tolerated,
        // as Go does, though push/pull verification will then fail.)
        if !a.vsn.is_empty() && a.vsn.len() < 6 {
            ctx.effects.push(Effect::Rejected("alive_short_vsn"));
            return;
        }
        // The common case in steady gossip: a claim we already have. A5
        // would ignore it below; deciding now spares the allocations (and
        // the policy, which could only have ignored it too).
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
            None => (
                ctx.config.shared_names.share(a.node),
                self.share_meta(a.meta),
            ),
        };
        let candidate = Member {
            name,
            addr: socket(ip, a.port),
            meta,
            incarnation: a.incarnation,
            state: MemberState::Alive,
            vsn: vsn.unwrap_or_default(),
        };
        if !ctx.policy.allow_alive(&candidate) {
            ctx.effects.push(Effect::Rejected("alive_filtered"));
            return;
        }

        let mut updates_node = false;
        let idx = match existing {
            None => {
                // A3: a new name enters as Dead at incarnation 0, so only an
                // incarnation ≥ 1 makes it alive below.
                if !ip.to_ip().is_some_and(|ip| ctx.config.ip_allowed(ip)) {
                    ctx.effects.push(Effect::Rejected("alive_cidr"));
                    return;
                }
                if self.nodes.len() >= self.max_members {
                    ctx.effects.push(Effect::Rejected("member_table_full"));
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
                        ctx.effects.push(Effect::Rejected("alive_cidr"));
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
                r.state = MemberState::Alive;
                r.state_change = ctx.now;
            }
            ctx.effects.push(Effect::GossipAlive {
                node: r.name.clone(),
                at: idx,
            });
            self.note(idx);
        }

        // A10.
        let r = &self.nodes[idx];
        if matches!(old_state, MemberState::Dead | MemberState::Left) {
            if r.state == MemberState::Alive {
                ctx.effects
                    .push(Effect::Event(Event::MemberJoined(r.to_member())));
            }
        } else if *old_meta != *r.meta {
            ctx.effects
                .push(Effect::Event(Event::MemberUpdated(r.to_member())));
        }
    }

    /// Adds a record at a random position of the probe order (Go swaps it
    /// with a random earlier entry).
    fn insert(&mut self, record: Record, rng: &mut Rng) -> usize {
        let n = self.nodes.len();
        let offset = if n == 0 { 0 } else { rng.below(n) };
        if n == self.nodes.capacity() {
            // Grow by a quarter, not double: the table is most of a node's
            // memory, and amortized pushes stay O(1).
            self.nodes.reserve_exact((n / 4).max(16));
        }
        if offset != n {
            // The member now at `offset` moves to the end.
            let moved = name_hasher().hash_one(&*self.nodes[offset].name);
            if let Some(i) = self.index.find_mut(moved, |&i| i as usize == offset) {
                *i = n as u32;
            }
        }
        let hash = name_hasher().hash_one(&*record.name);
        self.nodes.push(record);
        self.nodes.swap(offset, n);
        let nodes = &self.nodes;
        self.index.insert_unique(hash, offset as u32, |&i| {
            name_hasher().hash_one(&*nodes[i as usize].name)
        });
        offset
    }

    // ------------------------------------------------------------ suspect

    /// §10.2: a suspicion.
    pub(crate) fn suspect(&mut self, s: Claim<'_>, ctx: &mut Ctx<'_>) {
        let n = self.nodes.len();
        let Some(idx) = self.index_of(s.node) else {
            return;
        }; // S1
        let local = self.local.clone();
        let r = &mut self.nodes[idx];
        if s.incarnation < r.incarnation {
            return; // S2
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
        // S6.
        ctx.effects.push(Effect::GossipSuspect {
            node: r.name.clone(),
            incarnation: s.incarnation,
            from: Arc::from(s.from),
        });
        r.incarnation = s.incarnation;
        r.state = MemberState::Suspect;
        r.state_change = ctx.now;
        let c = ctx.config;
        let (k, min, max) = suspicion_params(
            c.suspicion_mult,
            c.suspicion_max_timeout_mult,
            n,
            c.probe_interval,
        );
        let susp = Suspicion::new(s.from, k, min, max, ctx.now);
        ctx.effects.push(Effect::SuspicionDeadline {
            node: r.name.clone(),
            deadline: susp.deadline(),
        });
        r.suspicion = Some(Box::new(susp));
        self.note(idx);
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
            return; // D2
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
        r.state = if d.node == d.from {
            MemberState::Left
        } else {
            MemberState::Dead
        };
        r.state_change = ctx.now;
        let m = r.to_member();
        ctx.effects
            .push(Effect::Event(if r.state == MemberState::Left {
                Event::MemberLeft(m)
            } else {
                Event::MemberFailed(m)
            }));
        self.note(idx);
    }

    // ------------------------------------------------------------ refute

    /// §10.5: answer an accusation against us with an incarnation above it.
    fn refute(&mut self, idx: usize, accused: u32, ctx: &mut Ctx<'_>) {
        let mut inc = self.next_incarnation();
        if accused >= inc {
            inc = accused.saturating_add(1);
            self.local_incarnation = inc;
        }
        let r = &mut self.nodes[idx];
        r.incarnation = inc;
        ctx.effects.push(Effect::Refuted);
        ctx.effects.push(Effect::GossipAlive {
            node: r.name.clone(),
            at: idx,
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
    pub(crate) fn merge(&mut self, remote: &[crate::wire::PushNodeState<'_>], ctx: &mut Ctx<'_>) {
        let local = self.local.clone();
        // A few at a time, looked up first (see `warm`): a state lists every member.
        for chunk in remote.chunks(16) {
            self.warm(chunk.iter().map(|r| r.name));
            for r in chunk {
                self.merge_one(r, &local, ctx);
            }
        }
    }

    fn merge_one(&mut self, r: &crate::wire::PushNodeState<'_>, local: &str, ctx: &mut Ctx<'_>) {
        use crate::wire::NodeState;
        match r.state {
            NodeState::Alive => self.alive(
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
            NodeState::Left => self.dead(
                Claim {
                    node: r.name,
                    incarnation: r.incarnation,
                    from: r.name,
                },
                ctx,
            ),
            // A remote's dead is only our suspicion: we check for ourselves.
            NodeState::Dead | NodeState::Suspect => self.suspect(
                Claim {
                    node: r.name,
                    incarnation: r.incarnation,
                    from: local,
                },
                ctx,
            ),
            NodeState::Other(_) => {}
        }
    }

    /// Go's `verifyProtocol`: every node, ours and theirs, must speak a
    /// protocol and delegate version all alive nodes understand.
    pub(crate) fn verify_protocol(&self, remote: &[crate::wire::PushNodeState<'_>]) -> bool {
        use crate::wire::NodeState;
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

    // ------------------------------------------------------------ probe order

    /// The next member to probe after `cursor`, wrapping around (and then
    /// reaping and reshuffling) like Go's `probe`. Skips us and dead or
    /// left members.
    pub(crate) fn next_probe_target(
        &mut self,
        cursor: &mut usize,
        now: Instant,
        gossip_to_the_dead: Duration,
        rng: &mut Rng,
    ) -> Option<Arc<str>> {
        let mut checked = 0;
        loop {
            if checked >= self.nodes.len() {
                return None;
            }
            if *cursor >= self.nodes.len() {
                self.reap_and_shuffle(now, gossip_to_the_dead, rng);
                *cursor = 0;
                checked += 1;
                continue;
            }
            let r = &self.nodes[*cursor];
            *cursor += 1;
            if *r.name == *self.local || r.dead_or_left() {
                checked += 1;
                continue;
            }
            return Some(r.name.clone());
        }
    }

    /// Drops members dead or left for longer than `gossip_to_the_dead`
    /// (upstream ≥ 0.3.1 reaps Left too), then shuffles the probe order.
    pub(crate) fn reap_and_shuffle(
        &mut self,
        now: Instant,
        gossip_to_the_dead: Duration,
        rng: &mut Rng,
    ) {
        let local = self.local.clone();
        let (record, changes) = (self.record_changes, &mut self.changes);
        self.nodes.retain(|r| {
            let keep = *r.name == *local
                || !r.dead_or_left()
                || now.saturating_duration_since(r.state_change) <= gossip_to_the_dead;
            if !keep && record {
                changes.push(MemberChange::Removed(r.name.clone()));
            }
            keep
        });
        rng.shuffle(&mut self.nodes);
        self.index.clear();
        let nodes = &self.nodes;
        for (i, r) in nodes.iter().enumerate() {
            let hash = name_hasher().hash_one(&*r.name);
            self.index.insert_unique(hash, i as u32, |&j| {
                name_hasher().hash_one(&*nodes[j as usize].name)
            });
        }
    }

    /// Up to `k` distinct random members passing `keep`, in random order.
    pub(crate) fn random_members(
        &self,
        k: usize,
        rng: &mut Rng,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> Vec<usize> {
        let n = self.nodes.len();
        let mut chosen = Vec::with_capacity(k);
        if n > 3 * k {
            // Go's way: random draws, at most 3n of them, O(k) when most
            // members are eligible (the common case in a big cluster).
            for _ in 0..3 * n {
                if chosen.len() == k {
                    return chosen;
                }
                let i = rng.below(n);
                if keep(&self.nodes[i]) && !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
            return chosen;
        }
        // Small tables: an exact partial shuffle (upstream ≥ 0.6 does the
        // same when n < 3k).
        let mut eligible: Vec<usize> = (0..n).filter(|&i| keep(&self.nodes[i])).collect();
        let k = k.min(eligible.len());
        for i in 0..k {
            let j = i + rng.below(eligible.len() - i);
            eligible.swap(i, j);
        }
        eligible.truncate(k);
        eligible
    }

    pub(crate) fn record(&self, i: usize) -> &Record {
        &self.nodes[i]
    }
}

fn six(v: &[u8]) -> Option<[u8; 6]> {
    v.get(..6).map(|s| [s[0], s[1], s[2], s[3], s[4], s[5]])
}

fn socket(ip: WireIp, port: u16) -> SocketAddr {
    SocketAddr::new(
        ip.to_ip()
            .unwrap_or(core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)),
        port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_compact() {
        // The simulator holds 10,000 × 10,000 of these.
        assert!(
            core::mem::size_of::<Record>() <= 80,
            "{}",
            core::mem::size_of::<Record>()
        );
    }
}
