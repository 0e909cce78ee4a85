//! Properties of the state rules (docs/protocol.md §10) on arbitrary interleavings
//! of input for one observer node: alive, suspect, dead and leave packets,
//! push/pull merges (join replies and incoming exchanges), time, commands
//! and restarts, over a small universe of names, incarnations, addresses,
//! metadata and version bytes, with small table and queue bounds and
//! reclaim times in some cases.
//!
//! After every input (each timer step included) the observer's table, its
//! queues and the events it emitted are checked: incarnations never go
//! back, dead and left members come back only with a newer incarnation or
//! by a legitimate reclaim, members vanish only by reaping after
//! `gossip_to_the_dead_time`, the local node never believes itself Suspect
//! or Dead and refutes every accusation, metadata is fixed per incarnation,
//! bounds hold, events match the table (and every change is told), and each
//! member a claim named is exactly what a model of §10.1–10.5 predicts. A
//! second property feeds the same input to two nodes and compares their
//! outputs; a third checks the generator reaches the situations that matter.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use swim_core::wire::{
    for_each_message, Accusation, Ack, Alive, Message, NodeState, PushNodeState, PushPull,
    StreamRole, Transport,
};
use swim_core::{
    CommandError, Config, Event, ExchangeError, ExchangeId, Instant, Member, MemberState, Output,
    StreamId, Swim, META_MAX_SIZE,
};

// ------------------------------------------------------------ the universe

/// Names messages talk about; the observer is "me".
const NAMES: [&str; 4] = ["a", "b", "c", "me"];
const ME: usize = 3;
/// Accusers: the names plus a stranger.
const ACCUSERS: [&str; 5] = ["a", "b", "c", "me", "zz"];
/// Addresses claims carry; the last is the observer's own.
const ADDRS: [([u8; 4], u16); 5] = [
    ([10, 0, 0, 1], 7946),
    ([10, 0, 0, 2], 7946),
    ([10, 0, 0, 3], 7946),
    ([10, 0, 0, 1], 7947),
    ([10, 0, 0, 100], 7946),
];
const MY_ADDR: usize = 4;
const METAS: [&[u8]; 4] = [b"", b"m1", b"m2", b"longer metadata"];
/// Version bytes: the usual, another current version, then odd ones
/// (empty, a zero minimum, seven bytes, two bytes).
const VSNS: [&[u8]; 6] = [
    &[1, 5, 2, 0, 0, 0],
    &[1, 5, 3, 0, 0, 0],
    &[],
    &[0, 5, 2, 0, 0, 0],
    &[1, 5, 2, 0, 0, 0, 9],
    &[1, 5],
];

/// Address choice `a` for `node`: one of [`ADDRS`], or (half the time)
/// the node's usual one.
fn pick_addr(node: usize, a: usize) -> usize {
    match a {
        a if a < ADDRS.len() => a,
        _ if node == ME => MY_ADDR,
        _ => node,
    }
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(ADDRS[i])
}

/// Whether the rules accept these version bytes at all (A1, A2).
fn vsn_valid(v: &[u8]) -> bool {
    !(v.len() >= 3 && (v[0] == 0 || v[1] == 0 || v[0] > v[1])) && (v.is_empty() || v.len() >= 6)
}

fn six(v: &[u8]) -> Option<[u8; 6]> {
    v.get(..6).and_then(|s| s.try_into().ok())
}

fn down(s: MemberState) -> bool {
    matches!(s, MemberState::Dead | MemberState::Left)
}

// ------------------------------------------------------------ input

#[derive(Debug, Clone)]
struct Params {
    seed: u64,
    max_members: usize,
    max_queue: usize,
    reclaim: Duration,
    dead_time: Duration,
    relay: bool,
}

impl Params {
    fn config(&self) -> Config {
        let mut c = Config::local("me", addr(MY_ADDR));
        c.max_members = self.max_members;
        c.max_broadcast_queue = self.max_queue;
        c.dead_node_reclaim_time = self.reclaim;
        c.gossip_to_the_dead_time = self.dead_time;
        c.relay_user_broadcasts = self.relay;
        // The model is §10's rules, Go's: a death notice is a death whoever
        // sent it. The doubt of accusers held dead (§15.8) is tested in
        // false_death.rs, and so is the refutation in advance to a member
        // returning (it raises our incarnation unasked).
        c.catch_up.doubt_dead_accusers = false;
        c.catch_up.refute_returning_per_second = 0;
        c
    }
}

/// One push/pull entry (its name is given by its position).
#[derive(Debug, Clone)]
struct Entry {
    /// Wire state code: 0 Alive, 1 Suspect, 2 Dead, 3 Left, 7 unknown.
    state: i64,
    inc: u32,
    addr: usize,
    meta: usize,
    vsn: usize,
}

#[derive(Debug, Clone)]
enum Op {
    Alive {
        node: usize,
        inc: u32,
        addr: usize,
        meta: usize,
        vsn: usize,
    },
    Suspect {
        node: usize,
        inc: u32,
        from: usize,
    },
    Dead {
        node: usize,
        inc: u32,
        from: usize,
    },
    /// A dead message with `from == node`.
    LeaveMsg {
        node: usize,
        inc: u32,
    },
    /// A peer back at incarnation 1, perhaps from a new address.
    Restart {
        node: usize,
        addr: usize,
        meta: usize,
    },
    /// A join through a seed whose reply is this state.
    Join {
        entries: Vec<Option<Entry>>,
        user_state: bool,
    },
    /// A peer's push/pull arriving on a stream.
    Incoming {
        entries: Vec<Option<Entry>>,
        join: bool,
    },
    Advance {
        ms: u64,
        stepwise: bool,
    },
    UpdateMeta {
        meta: usize,
        oversize: bool,
    },
    Leave {
        timeout_ms: u64,
    },
    Broadcast {
        len: usize,
    },
    UserPacket {
        byte: u8,
    },
    /// Answer one of the pings the node sent.
    Ack {
        which: usize,
    },
    /// Fail one of the exchanges the node opened.
    FailExchange {
        which: usize,
        timeout: bool,
    },
}

fn params() -> impl Strategy<Value = Params> {
    (
        any::<u64>(),
        prop_oneof![Just(1usize << 17), 2usize..=4],
        prop_oneof![Just(1usize << 16), 1usize..=4],
        prop_oneof![Just(0u64), 1_000u64..20_000],
        prop_oneof![Just(15_000u64), Just(3_000u64)],
        any::<bool>(),
    )
        .prop_map(
            |(seed, max_members, max_queue, reclaim, dead, relay)| Params {
                seed,
                max_members,
                max_queue,
                reclaim: Duration::from_millis(reclaim),
                dead_time: Duration::from_millis(dead),
                relay,
            },
        )
}

fn vsn() -> impl Strategy<Value = usize> {
    prop_oneof![12 => Just(0usize), 2 => Just(1usize), 1 => 2usize..6]
}

fn inc() -> impl Strategy<Value = u32> {
    0u32..6
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        prop_oneof![5 => Just(0i64), 1 => Just(1i64), 1 => Just(2i64), 1 => Just(3i64), 1 => Just(7i64)],
        inc(),
        0usize..10,
        0usize..4,
        prop_oneof![20 => Just(0usize), 2 => Just(1usize), 1 => 2usize..6],
    )
        .prop_map(|(state, inc, addr, meta, vsn)| Entry {
            state,
            inc,
            addr,
            meta,
            vsn,
        })
}

fn entries() -> impl Strategy<Value = Vec<Option<Entry>>> {
    proptest::collection::vec(proptest::option::weighted(0.6, entry()), NAMES.len()).prop_map(
        |mut v| {
            for (node, e) in v.iter_mut().enumerate() {
                if let Some(e) = e {
                    e.addr = pick_addr(node, e.addr);
                }
            }
            v
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..4, inc(), 0usize..10, 0usize..4, vsn()).prop_map(
            |(node, inc, addr, meta, vsn)| Op::Alive { node, inc, addr: pick_addr(node, addr), meta, vsn }
        ),
        4 => (0usize..4, inc(), 0usize..5).prop_map(|(node, inc, from)| Op::Suspect { node, inc, from }),
        3 => (0usize..4, inc(), 0usize..5).prop_map(|(node, inc, from)| Op::Dead { node, inc, from }),
        2 => (0usize..4, inc()).prop_map(|(node, inc)| Op::LeaveMsg { node, inc }),
        2 => (0usize..3, 0usize..4, 0usize..4).prop_map(|(node, addr, meta)| Op::Restart { node, addr, meta }),
        3 => (entries(), any::<bool>()).prop_map(|(entries, user_state)| Op::Join { entries, user_state }),
        2 => (entries(), any::<bool>()).prop_map(|(entries, join)| Op::Incoming { entries, join }),
        8 => (
            prop_oneof![6 => 0u64..1_500, 2 => 1_500u64..6_000, 1 => 6_000u64..40_000],
            any::<bool>()
        ).prop_map(|(ms, stepwise)| Op::Advance { ms, stepwise }),
        1 => (0usize..4, prop::bool::weighted(0.2)).prop_map(|(meta, oversize)| Op::UpdateMeta { meta, oversize }),
        1 => (0u64..3_000).prop_map(|timeout_ms| Op::Leave { timeout_ms }),
        1 => prop_oneof![Just(0usize), 1usize..64, Just(2_000usize)].prop_map(|len| Op::Broadcast { len }),
        1 => any::<u8>().prop_map(|byte| Op::UserPacket { byte }),
        2 => any::<usize>().prop_map(|which| Op::Ack { which }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(which, timeout)| Op::FailExchange { which, timeout }),
    ]
}

// ------------------------------------------------------------ the harness

/// A membership claim as the rules see it (a push/pull entry converted as
/// §10.4 says).
#[derive(Debug, Clone, Copy)]
enum Claim {
    Alive {
        node: usize,
        inc: u32,
        addr: usize,
        meta: usize,
        vsn: usize,
    },
    Suspect {
        node: usize,
        inc: u32,
    },
    /// A death, or a departure when `leave`.
    Dead {
        node: usize,
        inc: u32,
        leave: bool,
    },
}

impl Claim {
    fn node(&self) -> usize {
        match *self {
            Claim::Alive { node, .. } | Claim::Suspect { node, .. } | Claim::Dead { node, .. } => {
                node
            }
        }
    }

    /// §10.4: a push/pull entry as a claim (unknown states are ignored).
    fn of_entry(node: usize, e: &Entry) -> Option<Claim> {
        let inc = e.inc;
        match e.state {
            0 => Some(Claim::Alive {
                node,
                inc,
                addr: e.addr,
                meta: e.meta,
                vsn: e.vsn,
            }),
            1 | 2 => Some(Claim::Suspect { node, inc }),
            3 => Some(Claim::Dead {
                node,
                inc,
                leave: true,
            }),
            _ => None,
        }
    }
}

/// What the rules say a member is (`None`: not in the table).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    state: MemberState,
    inc: u32,
    addr: SocketAddr,
    meta: Vec<u8>,
}

impl Model {
    fn of(m: &Member) -> Model {
        Model {
            state: m.state,
            inc: m.incarnation,
            addr: m.addr,
            meta: m.meta.to_vec(),
        }
    }
}

/// What the input about to be checked may do.
#[derive(Debug, Default)]
struct Expect {
    /// It carries membership claims (members may appear, be re-addressed).
    claims: bool,
    /// Claims the node surely handled (from a packet).
    applied: Vec<Claim>,
    /// Claims of a push/pull, handled if it was merged.
    merge: Vec<Claim>,
    /// Whether a push/pull was merged.
    merged: bool,
}

impl Expect {
    fn handled(&self) -> impl Iterator<Item = &Claim> {
        let merge = if self.merged { &self.merge[..] } else { &[] };
        self.applied.iter().chain(merge)
    }
}

struct Harness {
    swim: Swim,
    p: Params,
    check: bool,
    now: Instant,
    /// The table after the previous input.
    prev: BTreeMap<String, Member>,
    /// For Dead/Left members: a time no later than their last state change.
    down_since: BTreeMap<String, Instant>,
    /// Metadata seen per (name, incarnation) since the name last appeared
    /// or was re-addressed.
    meta_at: BTreeMap<(String, u32), Vec<u8>>,
    /// Exchanges the node opened and nobody answered yet.
    connects: Vec<ExchangeId>,
    /// Pings the node sent: (to, seq).
    pings: Vec<(SocketAddr, u32)>,
    /// Every output, formatted.
    trace: Vec<String>,
    next_stream: u64,
    /// How often each interesting situation came up (see `generator_reaches`).
    seen: BTreeMap<&'static str, u64>,
}

impl Harness {
    fn new(p: Params, check: bool) -> Result<Harness, TestCaseError> {
        let swim = Swim::new(p.config(), p.seed, Instant::ZERO).expect("valid config");
        let mut h = Harness {
            swim,
            p,
            check,
            now: Instant::ZERO,
            prev: BTreeMap::new(),
            down_since: BTreeMap::new(),
            meta_at: BTreeMap::new(),
            connects: Vec::new(),
            pings: Vec::new(),
            trace: Vec::new(),
            next_stream: 0,
            seen: BTreeMap::new(),
        };
        let outputs = h.drain();
        let expect = Expect {
            claims: true,
            ..Expect::default()
        };
        h.verify(&expect, &outputs)?;
        Ok(h)
    }

    /// Takes every output, remembering pings and exchanges.
    fn drain(&mut self) -> Vec<Output> {
        let outputs: Vec<Output> = std::iter::from_fn(|| self.swim.poll_output()).collect();
        for o in &outputs {
            self.trace.push(format!("{o:?}"));
            match o {
                Output::Packet { to, data } => {
                    let Ok(body) = self.swim.envelope().open_packet(data) else {
                        continue;
                    };
                    let limits = self.swim.envelope().limits().clone();
                    let pings = &mut self.pings;
                    for_each_message(&body, &limits, &mut |m| {
                        if let Ok(Message::Ping(p)) = m {
                            pings.push((*to, p.seq_no));
                        }
                    });
                    if pings.len() > 8 {
                        pings.drain(..pings.len() - 8);
                    }
                }
                Output::Connect { id, .. } => self.connects.push(*id),
                _ => {}
            }
        }
        outputs
    }

    fn packet(&self, m: Message<'_>) -> Vec<u8> {
        let mut encoded = Vec::new();
        m.encode(Transport::Packet, &mut encoded);
        let mut out = Vec::new();
        self.swim
            .envelope()
            .seal_packet(&encoded, false, || [0; 12], &mut out);
        out
    }

    fn stream(&self, m: Message<'_>) -> Vec<u8> {
        let mut encoded = Vec::new();
        m.encode(Transport::Stream, &mut encoded);
        let mut out = Vec::new();
        self.swim
            .envelope()
            .seal_stream(&encoded, || [0; 12], &mut out);
        out
    }

    fn push_pull(&self, entries: &[Option<Entry>], join: bool, user_state: &[u8]) -> Vec<u8> {
        let nodes = entries
            .iter()
            .zip(NAMES)
            .filter_map(|(e, name)| {
                let e = e.as_ref()?;
                Some(PushNodeState {
                    name,
                    addr: ADDRS[e.addr].0[..].into(),
                    port: ADDRS[e.addr].1,
                    meta: METAS[e.meta].into(),
                    incarnation: e.inc,
                    state: NodeState::from_code(e.state),
                    vsn: VSNS[e.vsn].into(),
                })
            })
            .collect();
        self.stream(Message::PushPull(PushPull {
            join,
            nodes,
            user_state,
        }))
    }

    /// The answer to an incoming push/pull lists the table as it was
    /// before the merge.
    fn check_reply(
        &self,
        outputs: &[Output],
        stream: StreamId,
        join: bool,
    ) -> Result<(), TestCaseError> {
        let reply = outputs.iter().find_map(|o| match o {
            Output::StreamReply { stream: s, data } if *s == stream => Some(data.clone()),
            _ => None,
        });
        let Some(Some(reply)) = reply else {
            return Err(TestCaseError::fail(format!(
                "no push/pull reply: {outputs:?}"
            )));
        };
        // The reply lists the table as it was before the merge.
        let opened = self.swim.envelope().open_stream(&reply, StreamRole::Reply);
        prop_assert!(opened.is_ok(), "reply does not open: {opened:?}");
        let opened = opened.unwrap();
        let limits = self.swim.envelope().limits().clone();
        match Message::decode(&opened, Transport::Stream, &limits) {
            Ok(Message::PushPull(pp)) => {
                prop_assert_eq!(pp.join, join);
                let listed: BTreeMap<String, (u32, i64, Vec<u8>)> = pp
                    .nodes
                    .iter()
                    .map(|n| {
                        (
                            n.name.to_string(),
                            (n.incarnation, n.state.code(), n.meta.to_vec()),
                        )
                    })
                    .collect();
                let known: BTreeMap<String, (u32, i64, Vec<u8>)> = self
                    .prev
                    .iter()
                    .map(|(k, m)| (k.clone(), (m.incarnation, m.state as i64, m.meta.to_vec())))
                    .collect();
                prop_assert_eq!(pp.nodes.len(), listed.len());
                prop_assert_eq!(listed, known);
            }
            other => {
                return Err(TestCaseError::fail(format!(
                    "reply is not a push/pull: {other:?}"
                )))
            }
        }
        Ok(())
    }

    /// The claims of a push/pull, in order.
    fn merge_claims(entries: &[Option<Entry>]) -> Vec<Claim> {
        entries
            .iter()
            .enumerate()
            .filter_map(|(node, e)| Claim::of_entry(node, e.as_ref()?))
            .collect()
    }

    /// Whether a Dead member may be re-addressed now (A4).
    fn reclaimable(&self, name: &str) -> bool {
        !self.p.reclaim.is_zero()
            && self.now.saturating_duration_since(self.down_since[name]) > self.p.reclaim
    }

    /// §10.1–10.3 and 10.5 as a model: what the members named in `claims`
    /// are after the node handled them, one after the other.
    fn predict<'c>(
        &self,
        claims: impl Iterator<Item = &'c Claim>,
    ) -> BTreeMap<usize, Option<Model>> {
        let leaving = self.swim.is_leaving();
        let my_vsn = self.swim.config().vsn();
        let mut out: BTreeMap<usize, Option<Model>> = BTreeMap::new();
        let mut count = self.prev.len();
        for c in claims {
            let node = c.node();
            let name = NAMES[node];
            let slot = out
                .entry(node)
                .or_insert_with(|| self.prev.get(name).map(Model::of));
            if node == ME {
                let Some(m) = slot else { continue };
                if leaving {
                    continue; // A0, S4, D4: we are Left.
                }
                // §10.5: the new incarnation is max(previous + 1, accused + 1).
                let refute = |m: &mut Model, j: u32| m.inc = m.inc.max(j) + 1;
                match *c {
                    Claim::Alive {
                        inc,
                        addr: a,
                        meta,
                        vsn,
                        ..
                    } => {
                        if !vsn_valid(VSNS[vsn]) || addr(a) != m.addr || inc < m.inc {
                            continue; // A1/A2, A4 (a conflict), A6
                        }
                        if inc == m.inc
                            && METAS[meta] == &m.meta[..]
                            && six(VSNS[vsn]) == Some(my_vsn)
                        {
                            continue; // A8: our own announcement
                        }
                        refute(m, inc);
                    }
                    Claim::Suspect { inc, .. } | Claim::Dead { inc, .. } => {
                        if inc >= m.inc {
                            refute(m, inc); // S5, D5
                        }
                    }
                }
                continue;
            }
            match *c {
                Claim::Alive {
                    inc,
                    addr: a,
                    meta,
                    vsn,
                    ..
                } => {
                    if !vsn_valid(VSNS[vsn]) {
                        continue; // A1, A2
                    }
                    let (a, meta) = (addr(a), METAS[meta].to_vec());
                    match slot {
                        None => {
                            if count >= self.p.max_members {
                                continue;
                            }
                            count += 1;
                            // A3 creates it Dead at 0; A5 then needs inc ≥ 1.
                            let state = if inc >= 1 {
                                MemberState::Alive
                            } else {
                                MemberState::Dead
                            };
                            *slot = Some(Model {
                                state,
                                inc,
                                addr: a,
                                meta,
                            });
                        }
                        Some(m) if m.addr != a => {
                            // A4: only Left or long-dead members move.
                            let reclaim = m.state == MemberState::Left
                                || (m.state == MemberState::Dead && self.reclaimable(name));
                            if reclaim {
                                *m = Model {
                                    state: MemberState::Alive,
                                    inc,
                                    addr: a,
                                    meta,
                                };
                            }
                        }
                        Some(m) => {
                            if inc > m.inc {
                                // A5, A9
                                m.state = MemberState::Alive;
                                m.inc = inc;
                                m.meta = meta;
                            }
                        }
                    }
                }
                Claim::Suspect { inc, .. } => {
                    // S1, S2, S3 (already suspect), S4, S6.
                    if let Some(m) = slot {
                        if inc >= m.inc && m.state == MemberState::Alive {
                            m.state = MemberState::Suspect;
                            m.inc = inc;
                        }
                    }
                }
                Claim::Dead { inc, leave, .. } => {
                    // D1, D2, D4, D7.
                    if let Some(m) = slot {
                        if inc >= m.inc && !down(m.state) {
                            m.state = if leave {
                                MemberState::Left
                            } else {
                                MemberState::Dead
                            };
                            m.inc = inc;
                        }
                    }
                }
            }
        }
        out
    }

    fn deliver(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        expect: &Expect,
    ) -> Result<(), TestCaseError> {
        self.swim.handle_packet(self.now, from, data);
        let outputs = self.drain();
        self.verify(expect, &outputs)
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let claims = Expect {
            claims: true,
            ..Expect::default()
        };
        match *op {
            Op::Alive {
                node,
                inc,
                addr: a,
                meta,
                vsn,
            } => {
                let mut expect = claims;
                expect.applied.push(Claim::Alive {
                    node,
                    inc,
                    addr: a,
                    meta,
                    vsn,
                });
                let data = self.packet(Message::Alive(Alive {
                    incarnation: inc,
                    node: NAMES[node],
                    addr: ADDRS[a].0[..].into(),
                    port: ADDRS[a].1,
                    meta: METAS[meta].into(),
                    vsn: VSNS[vsn].into(),
                }));
                self.deliver(addr(node), &data, &expect)
            }
            Op::Restart {
                node,
                addr: a,
                meta,
            } => {
                let mut expect = claims;
                expect.applied.push(Claim::Alive {
                    node,
                    inc: 1,
                    addr: a,
                    meta,
                    vsn: 0,
                });
                let data = self.packet(Message::Alive(Alive {
                    incarnation: 1,
                    node: NAMES[node],
                    addr: ADDRS[a].0[..].into(),
                    port: ADDRS[a].1,
                    meta: METAS[meta].into(),
                    vsn: VSNS[0].into(),
                }));
                self.deliver(addr(a), &data, &expect)
            }
            Op::Suspect { node, inc, from } | Op::Dead { node, inc, from } => {
                let mut expect = claims;
                expect.applied.push(match op {
                    Op::Suspect { .. } => Claim::Suspect { node, inc },
                    _ => Claim::Dead {
                        node,
                        inc,
                        leave: ACCUSERS[from] == NAMES[node],
                    },
                });
                let m = Accusation {
                    incarnation: inc,
                    node: NAMES[node],
                    from: ACCUSERS[from],
                };
                let m = match op {
                    Op::Suspect { .. } => Message::Suspect(m),
                    _ => Message::Dead(m),
                };
                let data = self.packet(m);
                self.deliver(addr(from % 4), &data, &expect)
            }
            Op::LeaveMsg { node, inc } => {
                let mut expect = claims;
                expect.applied.push(Claim::Dead {
                    node,
                    inc,
                    leave: true,
                });
                let data = self.packet(Message::Dead(Accusation {
                    incarnation: inc,
                    node: NAMES[node],
                    from: NAMES[node],
                }));
                self.deliver(addr(node), &data, &expect)
            }
            Op::Join {
                ref entries,
                user_state,
            } => {
                let mut expect = claims;
                expect.merge = Self::merge_claims(entries);
                let seed = addr(0);
                self.swim.join(self.now, &[seed]);
                let mut outputs = self.drain();
                let id = outputs.iter().rev().find_map(|o| match o {
                    Output::Connect { id, to, .. } if *to == seed => Some(*id),
                    _ => None,
                });
                prop_assert!(id.is_some(), "join opened no exchange: {outputs:?}");
                let id = id.unwrap();
                self.connects.retain(|c| *c != id);
                let state: &[u8] = if user_state { b"app state" } else { b"" };
                let reply = self.push_pull(entries, true, state);
                let before = self.swim.stats().push_pulls;
                self.swim.handle_exchange(self.now, id, Ok(&reply));
                let merged = self.swim.stats().push_pulls > before;
                expect.merged = merged;
                outputs.extend(self.drain());
                let completed: Vec<_> = outputs
                    .iter()
                    .filter_map(|o| match o {
                        Output::Event(Event::JoinCompleted { joined, failed, .. }) => {
                            Some((*joined, failed.len()))
                        }
                        _ => None,
                    })
                    .collect();
                let want = if merged { (1, 0) } else { (0, 1) };
                if self.check {
                    prop_assert_eq!(completed, vec![want]);
                }
                self.verify(&expect, &outputs)
            }
            Op::Incoming { ref entries, join } => {
                let mut expect = claims;
                expect.merge = Self::merge_claims(entries);
                let frame = self.push_pull(entries, join, b"");
                self.next_stream += 1;
                let stream = StreamId(self.next_stream);
                let before = self.swim.stats().push_pulls;
                self.swim.handle_stream(self.now, stream, addr(1), &frame);
                expect.merged = self.swim.stats().push_pulls > before;
                let outputs = self.drain();
                if self.check {
                    self.check_reply(&outputs, stream, join)?;
                }
                self.verify(&expect, &outputs)
            }
            Op::Advance { ms, stepwise } => {
                let target = self.now + Duration::from_millis(ms);
                let timers = Expect::default();
                if stepwise {
                    for _ in 0..64 {
                        match self.swim.poll_timeout() {
                            Some(t) if t <= target => {
                                self.now = self.now.max(t);
                                self.swim.handle_timeout(self.now);
                                let outputs = self.drain();
                                self.verify(&timers, &outputs)?;
                            }
                            _ => break,
                        }
                    }
                }
                self.now = target;
                self.swim.handle_timeout(self.now);
                let outputs = self.drain();
                self.verify(&timers, &outputs)
            }
            Op::UpdateMeta { meta, oversize } => {
                let big = vec![7u8; META_MAX_SIZE + 1];
                let value = if oversize { &big[..] } else { METAS[meta] };
                let before = self.swim.local_node();
                let leaving = self.swim.is_leaving();
                let r = self.swim.update_meta(self.now, value);
                let outputs = self.drain();
                let after = self.swim.local_node();
                if !self.check {
                } else if oversize {
                    prop_assert_eq!(r, Err(CommandError::MetaTooLarge(META_MAX_SIZE + 1)));
                    prop_assert_eq!(&after, &before);
                } else if leaving {
                    prop_assert_eq!(r, Err(CommandError::Left));
                    prop_assert_eq!(&after, &before);
                } else {
                    prop_assert_eq!(r, Ok(()));
                    prop_assert_eq!(&*after.meta, value);
                    prop_assert!(after.incarnation > before.incarnation);
                }
                self.verify(&Expect::default(), &outputs)
            }
            Op::Leave { timeout_ms } => {
                self.swim.leave(self.now, Duration::from_millis(timeout_ms));
                let outputs = self.drain();
                prop_assert!(!self.check || self.swim.is_leaving());
                self.verify(&Expect::default(), &outputs)
            }
            Op::Broadcast { len } => {
                let r = self.swim.broadcast(self.now, &vec![0xb5; len]);
                let outputs = self.drain();
                if !self.check {
                } else if len == 0 || len > 1_400 {
                    prop_assert!(
                        matches!(
                            r,
                            Err(CommandError::BadPayload(_) | CommandError::PayloadTooLarge { .. })
                        ),
                        "{r:?}"
                    );
                } else {
                    match r {
                        Ok(_) => prop_assert!(self.swim.user_broadcast_queue_len() >= 1),
                        // Only once the leave completed, which a leave must start.
                        Err(CommandError::Left) => prop_assert!(self.swim.is_leaving()),
                        Err(CommandError::QueueFull(n)) => prop_assert!(n >= self.p.max_queue),
                        Err(e) => prop_assert!(false, "{e:?}"),
                    }
                }
                self.verify(&Expect::default(), &outputs)
            }
            Op::UserPacket { byte } => {
                let payload = [byte; 3];
                let data = self.packet(Message::User(&payload));
                self.deliver(addr(2), &data, &Expect::default())
            }
            Op::Ack { which } => {
                if self.pings.is_empty() {
                    return Ok(());
                }
                let (to, seq_no) = self.pings.remove(which % self.pings.len());
                let data = self.packet(Message::Ack(Ack {
                    seq_no,
                    payload: (&b"ack"[..]).into(),
                }));
                self.deliver(to, &data, &Expect::default())
            }
            Op::FailExchange { which, timeout } => {
                if self.connects.is_empty() {
                    return Ok(());
                }
                let id = self.connects.remove(which % self.connects.len());
                let e = if timeout {
                    ExchangeError::Timeout
                } else {
                    ExchangeError::Io(swim_core::IoKind::Other)
                };
                self.swim.handle_exchange(self.now, id, Err(e));
                let outputs = self.drain();
                self.verify(&Expect::default(), &outputs)
            }
        }
    }

    /// Checks the node after one input, then remembers its table.
    fn verify(&mut self, expect: &Expect, outputs: &[Output]) -> Result<(), TestCaseError> {
        let all = self.swim.all_members();
        let cur: BTreeMap<String, Member> = all
            .iter()
            .map(|m| (m.name.to_string(), m.clone()))
            .collect();
        if self.check {
            self.verify_table(expect, &all, &cur)?;
            self.verify_events(outputs, &cur)?;
        }
        self.tally(expect, outputs, &cur);
        self.remember(cur);
        Ok(())
    }

    fn verify_table(
        &self,
        expect: &Expect,
        all: &[Member],
        cur: &BTreeMap<String, Member>,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        // Bounds.
        prop_assert_eq!(cur.len(), all.len(), "a name is listed twice");
        let counts = self.swim.member_counts();
        prop_assert_eq!(counts.total(), all.len());
        for (state, n) in [
            (MemberState::Alive, counts.alive),
            (MemberState::Suspect, counts.suspect),
            (MemberState::Dead, counts.dead),
            (MemberState::Left, counts.left),
        ] {
            let listed = all.iter().filter(|m| m.state == state).count();
            prop_assert_eq!(listed, n, "{:?} members counted", state);
        }
        prop_assert_eq!(self.swim.num_members(), counts.members());
        prop_assert_eq!(self.swim.members().len(), counts.members());
        prop_assert!(all.len() <= self.p.max_members, "{} members", all.len());
        prop_assert!(self.swim.broadcast_queue_len() <= self.p.max_queue);
        prop_assert!(self.swim.user_broadcast_queue_len() <= self.p.max_queue);
        for (name, m) in cur {
            let found = self.swim.member(name);
            prop_assert_eq!(found.as_ref(), Some(m));
        }

        // The local node.
        let local = self.swim.local_node();
        prop_assert_eq!(&*local.name, "me");
        prop_assert_eq!(cur.get("me"), Some(&local));
        let want = if self.swim.is_leaving() {
            MemberState::Left
        } else {
            MemberState::Alive
        };
        prop_assert_eq!(
            local.state,
            want,
            "the local node believes itself {:?}",
            local.state
        );
        if local.state == MemberState::Alive {
            // Accused while staying: refuted above the accusation.
            for c in expect.handled().filter(|c| c.node() == ME) {
                if let Claim::Suspect { inc: j, .. } | Claim::Dead { inc: j, .. } = *c {
                    prop_assert!(
                        local.incarnation > j,
                        "accused at {}, still at {}",
                        j,
                        local.incarnation
                    );
                }
            }
        }

        // §10.6: every member a claim named is what the rules say.
        for (node, want) in self.predict(expect.handled()) {
            let got = cur.get(NAMES[node]).map(Model::of);
            prop_assert_eq!(
                &got,
                &want,
                "{} after {:?} (was {:?})",
                NAMES[node],
                expect.handled().collect::<Vec<_>>(),
                self.prev.get(NAMES[node])
            );
        }

        // Members that went away were reaped, legitimately (at a probe
        // wrap-around, which a timer, an ack or an exchange result can start).
        for (name, old) in &self.prev {
            if cur.contains_key(name) {
                continue;
            }
            prop_assert!(down(old.state), "{name} reaped while {:?}", old.state);
            let since = self.down_since[name];
            prop_assert!(
                now.saturating_duration_since(since) > self.p.dead_time,
                "{name} reaped {:?} after going {:?}",
                now.saturating_duration_since(since),
                old.state
            );
        }

        for (name, m) in cur {
            match self.prev.get(name) {
                None => {
                    prop_assert!(expect.claims, "{name} appeared without a claim");
                    // §10.6: an unknown name is created Alive(j ≥ 1), or
                    // stays Dead at 0 after an alive at 0.
                    prop_assert!(
                        (m.state == MemberState::Alive && m.incarnation >= 1)
                            || (m.state == MemberState::Dead && m.incarnation == 0),
                        "new member {m:?}"
                    );
                }
                Some(old) if old.addr != m.addr => {
                    // A4: re-addressed, so it must have been reclaimable.
                    prop_assert!(expect.claims, "{name} re-addressed without a claim");
                    let reclaimable = old.state == MemberState::Left
                        || (old.state == MemberState::Dead
                            && !self.p.reclaim.is_zero()
                            && now.saturating_duration_since(self.down_since[name])
                                > self.p.reclaim);
                    prop_assert!(reclaimable, "{old:?} taken over by {m:?}");
                    prop_assert_eq!(m.state, MemberState::Alive);
                }
                Some(old) => {
                    prop_assert!(
                        m.incarnation >= old.incarnation,
                        "incarnation went back: {old:?} -> {m:?}"
                    );
                    if down(old.state) && down(m.state) {
                        // D4: dead and left members ignore accusations.
                        prop_assert_eq!(
                            (old.state, old.incarnation),
                            (m.state, m.incarnation),
                            "{} was {:?}",
                            name,
                            old
                        );
                    }
                    if down(old.state) && !down(m.state) {
                        prop_assert!(
                            m.incarnation > old.incarnation,
                            "back from the dead without a newer incarnation: {old:?} -> {m:?}"
                        );
                    }
                }
            }
            let reclaimed = self.prev.get(name).is_some_and(|o| o.addr != m.addr);
            if !reclaimed {
                if let Some(meta) = self.meta_at.get(&(name.clone(), m.incarnation)) {
                    prop_assert_eq!(
                        &meta[..],
                        &*m.meta,
                        "metadata of {} changed at incarnation {}",
                        name,
                        m.incarnation
                    );
                }
            }
        }
        Ok(())
    }

    fn verify_events(
        &self,
        outputs: &[Output],
        cur: &BTreeMap<String, Member>,
    ) -> Result<(), TestCaseError> {
        let events: Vec<&Event> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        for e in &events {
            let (m, want) = match e {
                Event::MemberJoined(m) | Event::MemberUpdated(m) => (m, MemberState::Alive),
                Event::MemberFailed(m) => (m, MemberState::Dead),
                Event::MemberLeft(m) => (m, MemberState::Left),
                Event::NameConflict { existing, other } => {
                    prop_assert_eq!(&existing.name, &other.name);
                    prop_assert_ne!(existing.addr, other.addr);
                    continue;
                }
                _ => continue,
            };
            let now = cur.get(&*m.name);
            prop_assert!(now.is_some(), "{e:?} about a member not in the table");
            let now = now.unwrap();
            prop_assert_eq!(now.state, want, "{:?} but the member is {:?}", e, now);
            prop_assert_eq!(
                now.incarnation,
                m.incarnation,
                "{:?} but the member is {:?}",
                e,
                now
            );
            prop_assert_eq!(&now.meta, &m.meta, "{:?} but the member is {:?}", e, now);
            if let Event::MemberUpdated(m) = e {
                let old = self.prev.get(&*m.name);
                prop_assert!(
                    old.is_some_and(|o| o.meta != m.meta),
                    "{e:?} without a change from {old:?}"
                );
            }
        }
        // And every transition was told.
        let told = |f: &dyn Fn(&Event) -> bool| events.iter().any(|e| f(e));
        for (name, m) in cur {
            let old = self.prev.get(name);
            let is = |n: &Member| *n.name == **name && n.incarnation == m.incarnation;
            if m.state == MemberState::Alive && old.is_none_or(|o| down(o.state)) {
                prop_assert!(
                    told(&|e| matches!(e, Event::MemberJoined(n) if is(n))),
                    "{name} became {m:?} without MemberJoined: {events:?}"
                );
            }
            if m.state == MemberState::Dead && old.is_some_and(|o| o.state != MemberState::Dead) {
                prop_assert!(
                    told(&|e| matches!(e, Event::MemberFailed(n) if is(n))),
                    "{name} became {m:?} without MemberFailed: {events:?}"
                );
            }
            if m.state == MemberState::Left && old.is_some_and(|o| o.state != MemberState::Left) {
                prop_assert!(
                    told(&|e| matches!(e, Event::MemberLeft(n) if is(n))),
                    "{name} became {m:?} without MemberLeft: {events:?}"
                );
            }
            if m.state == MemberState::Alive
                && old.is_some_and(|o| !down(o.state) && o.meta != m.meta)
            {
                prop_assert!(
                    told(&|e| matches!(e, Event::MemberUpdated(n) if is(n))),
                    "{name}'s metadata changed without MemberUpdated: {events:?}"
                );
            }
        }
        Ok(())
    }

    fn tally(&mut self, expect: &Expect, outputs: &[Output], cur: &BTreeMap<String, Member>) {
        let mut seen = Vec::new();
        if expect.merged {
            seen.push("push/pull merged");
        }
        for (name, m) in cur {
            match self.prev.get(name) {
                None if m.state == MemberState::Dead => seen.push("created dead at 0"),
                None => {}
                Some(o) if o.addr != m.addr => seen.push("reclaimed"),
                Some(o) if down(o.state) && m.state == MemberState::Alive => {
                    seen.push("back from the dead")
                }
                Some(o) if o.state == MemberState::Alive && m.state == MemberState::Suspect => {
                    seen.push("suspected")
                }
                Some(o) if o.state == MemberState::Suspect && m.state == MemberState::Dead => {
                    seen.push("suspect declared dead")
                }
                Some(o) if name == "me" && m.incarnation > o.incarnation => {
                    seen.push("local incarnation raised")
                }
                Some(_) => {}
            }
        }
        if self.prev.keys().any(|n| !cur.contains_key(n)) {
            seen.push("reaped");
        }
        if cur.len() == self.p.max_members && self.p.max_members < 100 {
            seen.push("table full");
        }
        if self.swim.broadcast_queue_len() == self.p.max_queue && self.p.max_queue < 100 {
            seen.push("queue full");
        }
        if expect
            .handled()
            .any(|c| c.node() == ME && matches!(c, Claim::Suspect { .. } | Claim::Dead { .. }))
        {
            seen.push("accused");
        }
        for o in outputs {
            seen.push(match o {
                Output::Event(Event::MemberJoined(_)) => "joined event",
                Output::Event(Event::MemberUpdated(_)) => "updated event",
                Output::Event(Event::MemberFailed(_)) => "failed event",
                Output::Event(Event::MemberLeft(_)) => "left event",
                Output::Event(Event::NameConflict { .. }) => "conflict event",
                Output::Event(Event::LeaveCompleted { .. }) => "leave completed",
                Output::Event(Event::ProbeAcked { .. }) => "probe acked",
                Output::Event(Event::JoinCompleted { joined: 0, .. }) => "join refused",
                _ => continue,
            });
        }
        for s in seen {
            *self.seen.entry(s).or_default() += 1;
        }
    }

    /// Moves to the new table, keeping the bookkeeping the checks need.
    fn remember(&mut self, cur: BTreeMap<String, Member>) {
        for name in self.prev.keys() {
            if !cur.contains_key(name) {
                self.down_since.remove(name);
                self.meta_at.retain(|(n, _), _| n != name);
            }
        }
        for (name, m) in &cur {
            let old = self.prev.get(name);
            if old.is_some_and(|o| o.addr != m.addr) {
                self.meta_at.retain(|(n, _), _| n != name);
            }
            self.meta_at
                .entry((name.clone(), m.incarnation))
                .or_insert_with(|| m.meta.to_vec());
            if down(m.state) {
                match old {
                    // A3 creates entries Dead with the zero time.
                    None => {
                        self.down_since.insert(name.clone(), Instant::ZERO);
                    }
                    Some(o)
                        if (o.state, o.incarnation, o.addr) != (m.state, m.incarnation, m.addr) =>
                    {
                        self.down_since.insert(name.clone(), self.now);
                    }
                    Some(_) => {}
                }
            } else {
                self.down_since.remove(name);
            }
        }
        self.prev = cur;
    }
}

// ------------------------------------------------------------ properties

fn run(p: &Params, ops: &[Op], check: bool) -> Result<Harness, TestCaseError> {
    let mut h = Harness::new(p.clone(), check)?;
    for op in ops {
        h.step(op)?;
    }
    Ok(h)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The state rules hold after every input of an arbitrary interleaving.
    #[test]
    fn state_rules_hold(p in params(), ops in proptest::collection::vec(op(), 1..60)) {
        run(&p, &ops, true)?;
    }

    /// The same input gives the same output, byte for byte.
    #[test]
    fn same_input_same_output(p in params(), ops in proptest::collection::vec(op(), 1..60)) {
        let a = run(&p, &ops, false)?;
        let b = run(&p, &ops, false)?;
        prop_assert_eq!(a.trace.len(), b.trace.len());
        for (x, y) in a.trace.iter().zip(&b.trace) {
            prop_assert_eq!(x, y);
        }
        prop_assert_eq!(a.swim.all_members(), b.swim.all_members());
        prop_assert_eq!(a.swim.poll_timeout(), b.swim.poll_timeout());
    }
}

/// The generator reaches every situation the properties are about (so they
/// are not vacuously true).
#[test]
fn generator_reaches() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (params(), proptest::collection::vec(op(), 1..60));
    let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    for _ in 0..128 {
        let (p, ops) = strategy.new_tree(&mut runner).unwrap().current();
        let h = run(&p, &ops, false).unwrap();
        for (k, v) in h.seen {
            *seen.entry(k).or_default() += v;
        }
    }
    eprintln!("{seen:#?}");
    for want in [
        "push/pull merged",
        "created dead at 0",
        "reclaimed",
        "back from the dead",
        "suspected",
        "suspect declared dead",
        "local incarnation raised",
        "reaped",
        "table full",
        "queue full",
        "accused",
        "joined event",
        "updated event",
        "failed event",
        "left event",
        "conflict event",
        "leave completed",
        "probe acked",
        "join refused",
    ] {
        assert!(
            seen.get(want).is_some_and(|&n| n > 0),
            "never {want}: {seen:#?}"
        );
    }
}

/// Once an accusation at `u32::MAX` has pushed the local incarnation to its
/// last value, no newer announcement can exist: `update_meta` says so
/// instead of silently announcing nothing (the counter once wrapped to 0,
/// which rule A6 then dropped as stale).
#[test]
fn update_meta_after_the_last_incarnation() {
    let now = Instant::ZERO;
    let mut swim = Swim::new(Config::local("me", addr(MY_ADDR)), 1, now).unwrap();
    let mut encoded = Vec::new();
    Message::Suspect(Accusation {
        incarnation: u32::MAX,
        node: "me",
        from: "a",
    })
    .encode(Transport::Packet, &mut encoded);
    let mut data = Vec::new();
    swim.envelope()
        .seal_packet(&encoded, false, || [0; 12], &mut data);
    swim.handle_packet(now, addr(0), &data);
    assert_eq!(swim.local_node().incarnation, u32::MAX);

    let r = swim.update_meta(now, b"new");
    assert_eq!(r, Err(swim_core::CommandError::IncarnationExhausted));
    assert_eq!(swim.local_node().incarnation, u32::MAX, "never wraps to 0");
}
