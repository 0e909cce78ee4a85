//! An in-memory network of `Swim` nodes for the integration tests: packets
//! and streams delivered after a fixed latency, in time order, on a clock
//! the test advances.

#![allow(dead_code)] // each test file uses its own part of it

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use swim_core::wire::{
    for_each_message, Frame, Message, NodeState, PushNodeState, PushPull, StreamFramer, StreamRole,
    Transport,
};
use swim_core::{
    Config, DefaultDelegate, Delegate, Event, ExchangeError, ExchangeId, Instant, MemberState,
    Output, StreamId, Swim,
};

enum Delivery {
    Packet {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Stream {
        to: usize,
        from: usize,
        exchange: ExchangeId,
        data: Vec<u8>,
        expect_reply: bool,
    },
    Result {
        to: usize,
        exchange: ExchangeId,
        result: Result<Vec<u8>, ExchangeError>,
    },
}

/// The delegate of a test node.
pub type BoxedDelegate = Box<dyn Delegate>;

pub struct Node {
    pub swim: Swim<BoxedDelegate>,
    pub addr: SocketAddr,
    /// Silenced: nothing in or out (a crashed or cut-off process).
    pub down: bool,
    pub events: Vec<(Instant, Event)>,
    /// Times the node's deadline woke it.
    pub wakeups: u64,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub now: Instant,
    pub queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: BTreeMap<u64, Delivery>,
    pub seq: u64,
    pub latency: Duration,
    /// Drop every datagram (streams still work).
    pub drop_udp: bool,
    /// A one-way cut: these nodes hear everyone, nobody hears them (their
    /// datagrams and the connections they open are lost; replies on
    /// connections others open still arrive).
    pub muted: Vec<usize>,
    /// Incoming stream id → (initiator, its exchange, reply wanted).
    pub streams: BTreeMap<u64, (usize, ExchangeId, bool)>,
    pub trace: std::collections::hash_map::DefaultHasher,
    /// Probes of a silenced node (pings a node sent when its timer woke it,
    /// not those it relayed): when, by which node, of which.
    pub probes_of_silenced: Vec<(Instant, usize, usize)>,
    /// Whether the outputs being carried out follow a timer.
    woken: bool,
}

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
}

impl Cluster {
    pub fn new(n: usize, config: impl Fn(usize) -> Config) -> Cluster {
        Cluster::with_delegates(n, config, |_| Box::new(DefaultDelegate))
    }

    /// Nodes built with `config(i)` and `delegate(i)`, seeded `1000 + i`.
    pub fn with_delegates(
        n: usize,
        config: impl Fn(usize) -> Config,
        delegate: impl Fn(usize) -> BoxedDelegate,
    ) -> Cluster {
        let now = Instant::ZERO;
        let nodes = (0..n)
            .map(|i| Node {
                swim: Swim::builder(config(i), 1000 + i as u64)
                    .delegate(delegate(i))
                    .build(now)
                    .unwrap(),
                addr: addr(i),
                down: false,
                events: Vec::new(),
                wakeups: 0,
            })
            .collect();
        let mut c = Cluster {
            nodes,
            now,
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            latency: Duration::from_millis(2),
            drop_udp: false,
            muted: Vec::new(),
            streams: BTreeMap::new(),
            trace: Default::default(),
            probes_of_silenced: Vec::new(),
            woken: false,
        };
        for i in 0..n {
            c.drain(i);
        }
        c
    }

    pub fn local(n: usize) -> Cluster {
        Cluster::new(n, |i| Config::local(format!("node-{i}"), addr(i)))
    }

    pub fn index(&self, a: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == a)
    }

    fn send(&mut self, delay: Duration, d: Delivery) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.pending.insert(self.seq, d);
    }

    /// Carries out everything node `i` asked for.
    pub fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].swim.poll_output() {
            format!("{i}{out:?}").hash(&mut self.trace);
            if self.nodes[i].down {
                continue;
            }
            match out {
                Output::Packet { to, data } => {
                    if let Some(t) = self.index(to).filter(|&t| self.woken && self.nodes[t].down) {
                        self.note_probe(i, t, &data);
                    }
                    let cut = self.drop_udp || self.muted.contains(&i);
                    if let (Some(to), false) = (self.index(to), cut) {
                        let from = self.nodes[i].addr;
                        self.send(self.latency, Delivery::Packet { to, from, data });
                    }
                }
                Output::Connect {
                    id,
                    to,
                    data,
                    expect_reply,
                    ..
                } => match self.index(to) {
                    Some(t) if !self.nodes[t].down && !self.muted.contains(&i) => self.send(
                        self.latency,
                        Delivery::Stream {
                            to: t,
                            from: i,
                            exchange: id,
                            data,
                            expect_reply,
                        },
                    ),
                    _ => self.send(
                        self.latency,
                        Delivery::Result {
                            to: i,
                            exchange: id,
                            result: Err(ExchangeError::Io(swim_core::IoKind::Other)),
                        },
                    ),
                },
                Output::StreamReply { stream, data } => {
                    if let Some((initiator, exchange, expect)) = self.streams.remove(&stream.0) {
                        let result = match (expect, data) {
                            (false, _) => Ok(Vec::new()),
                            (true, Some(reply)) => Ok(reply),
                            (true, None) => Err(ExchangeError::Io(swim_core::IoKind::Other)),
                        };
                        self.send(
                            self.latency,
                            Delivery::Result {
                                to: initiator,
                                exchange,
                                result,
                            },
                        );
                    }
                }
                Output::Event(e) => self.nodes[i].events.push((self.now, e)),
            }
        }
    }

    /// Records a probe if `from`, woken by its timer, pinged the silenced node `to`.
    fn note_probe(&mut self, from: usize, to: usize, datagram: &[u8]) {
        let envelope = self.nodes[from].swim.envelope();
        let Ok(body) = envelope.open_packet(datagram) else {
            return;
        };
        let mut ping = false;
        for_each_message(&body, envelope.limits(), &mut |m| {
            ping |= matches!(m, Ok(Message::Ping(_)));
        });
        if ping {
            self.probes_of_silenced.push((self.now, from, to));
        }
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Packet { to, from, data } => {
                if !self.nodes[to].down {
                    self.nodes[to].swim.handle_packet(self.now, from, &data);
                    self.drain(to);
                }
            }
            Delivery::Stream {
                to,
                from,
                exchange,
                data,
                expect_reply,
            } => {
                if self.nodes[to].down {
                    let result = Err(ExchangeError::Io(swim_core::IoKind::Other));
                    return self.send(
                        self.latency,
                        Delivery::Result {
                            to: from,
                            exchange,
                            result,
                        },
                    );
                }
                // The bytes written must be exactly one framed message.
                let limits = self.nodes[to].swim.envelope().limits().clone();
                let mut framer = StreamFramer::new(StreamRole::Accept, limits);
                assert_eq!(framer.frame(&data), Ok(Frame::Complete { len: data.len() }));
                self.seq += 1;
                self.streams
                    .insert(self.seq, (from, exchange, expect_reply));
                let peer = self.nodes[from].addr;
                self.nodes[to]
                    .swim
                    .handle_stream(self.now, StreamId(self.seq), peer, &data);
                self.drain(to);
            }
            Delivery::Result {
                to,
                exchange,
                result,
            } => {
                if !self.nodes[to].down {
                    let r = result.as_deref().map_err(Clone::clone);
                    self.nodes[to].swim.handle_exchange(self.now, exchange, r);
                    self.drain(to);
                }
            }
        }
    }

    /// Runs the cluster until `until` (absolute).
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_delivery = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = (0..self.nodes.len())
                .filter(|&i| !self.nodes[i].down)
                .filter_map(|i| self.nodes[i].swim.poll_timeout().map(|t| (t, i)))
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let Reverse((_, seq)) = self.queue.pop().unwrap();
                let d = self.pending.remove(&seq).unwrap();
                self.deliver(d);
            } else if let Some((_, i)) = next_timer {
                self.nodes[i].wakeups += 1;
                self.nodes[i].swim.handle_timeout(self.now);
                self.woken = true;
                self.drain(i);
                self.woken = false;
            }
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub fn join_all(&mut self) {
        let seed = self.nodes[0].addr;
        let now = self.now;
        for i in 1..self.nodes.len() {
            self.nodes[i].swim.join(now, &[seed]);
            self.drain(i);
        }
    }

    /// Joins everyone through node 0 and runs until all see all, which
    /// gossip achieves quickly and push/pull guarantees within its interval.
    pub fn bootstrap(&mut self) {
        self.join_all();
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        let deadline = self.now + CONVERGENCE_BOUND;
        while !self.converged(&all) {
            assert!(
                self.now < deadline,
                "no convergence within {CONVERGENCE_BOUND:?}"
            );
            self.run_for(Duration::from_millis(100));
        }
    }

    pub fn state_of(&self, observer: usize, node: usize) -> Option<MemberState> {
        self.nodes[observer]
            .swim
            .member(&format!("node-{node}"))
            .map(|m| m.state)
    }

    pub fn converged(&self, live: &[usize]) -> bool {
        live.iter().all(|&o| {
            live.iter()
                .all(|&n| self.state_of(o, n) == Some(MemberState::Alive))
        })
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace.finish()
    }
}

/// Local config: push/pull every 15 s (plus its random first stagger).
pub const CONVERGENCE_BOUND: Duration = Duration::from_secs(31);

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `m` as a datagram body.
pub fn packet(m: Message<'_>) -> Vec<u8> {
    let mut p = Vec::new();
    m.encode(Transport::Packet, &mut p);
    p
}

/// A push/pull state's entry for `name` at 127.0.0.1:`port`.
pub fn listed(name: &str, port: u16, incarnation: u32, state: NodeState) -> PushNodeState<'_> {
    PushNodeState {
        name,
        addr: vec![127, 0, 0, 1].into(),
        port,
        meta: vec![].into(),
        incarnation,
        state,
        vsn: vec![1, 5, 2, 0, 0, 0].into(),
    }
}

/// The node at `from` opens a push/pull with `me` at `now` carrying
/// `nodes` (a join's if `join`).
pub fn push_pull_into<D: Delegate>(
    me: &mut Swim<D>,
    now: Instant,
    from: SocketAddr,
    join: bool,
    nodes: Vec<PushNodeState<'_>>,
) {
    let mut msg = Vec::new();
    Message::PushPull(PushPull {
        join,
        nodes,
        user_state: &[][..],
    })
    .encode(Transport::Stream, &mut msg);
    let mut sealed = Vec::new();
    me.envelope().seal_stream(&msg, || [0; 12], &mut sealed);
    me.handle_stream(now, StreamId(1), from, &sealed);
}

/// An alive announcement for `node` at `ip:port`.
pub fn alive_packet(node: &str, ip: [u8; 4], port: u16, incarnation: u32) -> Vec<u8> {
    packet(Message::Alive(swim_core::wire::Alive {
        incarnation,
        node,
        addr: ip.to_vec().into(),
        port,
        meta: vec![].into(),
        vsn: vec![1, 5, 2, 0, 0, 0].into(),
    }))
}
