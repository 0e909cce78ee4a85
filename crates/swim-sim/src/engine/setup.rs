//! Setting a run up: when each node starts, how it joins, and the warm
//! start's datagrams.

use std::net::SocketAddr;

use swim_core::wire::{pack_compounds, Alive, Message, Transport};
use swim_core::{Instant, Swim};

use super::{Ev, Simulation};
use crate::app::AppDelegate;
use crate::naming::{node_addr, node_name};
use crate::node::{Due, Hosted, Input, Status};
use crate::rng::{derive, SimRng};
use crate::scenario::Start;
use crate::time::nanos;

impl Simulation {
    // ============================================================ setup

    pub(super) fn schedule_start(&mut self) {
        let n = self.sc.nodes;
        match self.sc.start.clone() {
            Start::Warm | Start::Formed => {
                self.warm = self.warm_datagrams();
                for i in 0..n {
                    self.push(0, Ev::Start(i as u32));
                }
            }
            Start::Bootstrap { seeds, window } => {
                let k = seeds.clamp(1, n.max(1));
                self.seeds = (0..k.min(n)).collect();
                for i in 0..n {
                    let at = if i < k {
                        0
                    } else {
                        self.rng.below(nanos(window).max(1))
                    };
                    self.push(at, Ev::Start(i as u32));
                }
            }
        }
        if self.seeds.is_empty() {
            self.seeds = (0..n.min(3)).collect();
        }
        for (idx, f) in self.sc.faults.clone().iter().enumerate() {
            self.push(nanos(f.at()), Ev::Fault(idx));
        }
        if let Some(at) = self.sc.disseminate_at {
            self.push(nanos(at), Ev::Disseminate);
        }
        for (k, a) in self.sc.aimed.clone().iter().enumerate() {
            self.push(nanos(a.at), Ev::Aimed(k));
        }
        for deadline in self
            .checks
            .eventually
            .iter()
            .map(|e| e.2)
            .collect::<Vec<_>>()
        {
            if deadline <= self.end {
                self.push(deadline, Ev::Deadline(deadline));
            }
        }
        self.push(0, Ev::Sample);
        if let Some(d) = self.sc.convergence_deadline() {
            self.push(nanos(d), Ev::ConvergenceCheck);
        }
    }

    /// The warm start's datagrams: an alive message for every node at
    /// incarnation 1, with its configured metadata, packed into compounds that fit a LAN packet, encoded
    /// once and handed to every node.
    pub(super) fn warm_datagrams(&self) -> Vec<Vec<u8>> {
        let n = self.sc.nodes;
        let alives: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let name = node_name(i);
                let addr = node_addr(i);
                let ip = match addr {
                    SocketAddr::V4(v4) => v4.ip().octets().to_vec(),
                    SocketAddr::V6(v6) => v6.ip().octets().to_vec(),
                };
                let config = self.sc.node_config(i);
                let vsn = config.vsn();
                let mut m = Vec::with_capacity(64);
                Message::Alive(Alive {
                    incarnation: 1,
                    node: &name,
                    addr: ip.into(),
                    port: addr.port(),
                    // What the node announces itself (a Serf node's tags).
                    meta: config.meta[..].into(),
                    vsn: vsn[..].into(),
                })
                .encode(Transport::Packet, &mut m);
                m
            })
            .collect();
        let size = self.sc.node_config(0).udp_buffer_size;
        pack_compounds(alives.iter().map(Vec::as_slice), size)
    }

    pub(super) fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.status != Status::Down {
            return;
        }
        node.life += 1;
        node.slow = (0, 0);
        let life = node.life;
        let config = self.sc.node_config(i);
        let seed = derive(self.sc.seed, 1 + life as u64, i as u64);
        let now = Instant::from_nanos(self.now);
        // The application first: the state machine is built with its
        // delegate.
        let mut hosted = self.sc.app.as_ref().map(|make| {
            Box::new(Hosted {
                app: make(i),
                rng: SimRng::new(derive(self.sc.seed, 1_000 + u64::from(life), i as u64)),
                timers: Vec::new(),
            })
        });
        let delegate = AppDelegate(hosted.as_mut().and_then(|h| h.app.delegate()));
        let built = Swim::builder(config, seed)
            .delegate(delegate)
            .shared_names(self.names.clone())
            .record_member_changes()
            .build(now);
        let swim = match built {
            Ok(s) => s,
            Err(e) => {
                self.tracker
                    .violate(self.now, "bad-config", Some(i), None, e.to_string());
                self.stopped = true;
                return;
            }
        };
        self.nodes[i].start(i, swim);
        self.nodes[i]
            .history
            .note(self.now, crate::history::What::Started, None, 0);
        if let Some(hosted) = hosted {
            let node = &mut self.nodes[i];
            if node.machine.is_none() {
                let clock = self.sc.clocks.as_ref().map(|c| {
                    crate::clock::Clock::draw(c, self.sc.seed, i, nanos(self.sc.duration))
                });
                node.machine = Some(Box::new(crate::app::Machine {
                    clock,
                    ..Default::default()
                }));
            }
            node.app = Some(hosted);
        }
        self.tracker.start(self.now, i);
        self.with_node(i, |job, sh, now| job.start_app(sh, now));
        self.join(i);
    }

    /// Node `i` joins: the warm start's datagrams (first life of a warm
    /// start), or a push/pull with one live seed.
    pub(super) fn join(&mut self, i: usize) {
        let warm = matches!(self.sc.start, Start::Warm | Start::Formed) && self.nodes[i].life == 1;
        if warm {
            let life = self.nodes[i].life;
            let warm = Due::Deliver(Input::Warm { life });
            self.push(self.now + 1_000_000, Ev::Node(i as u32, warm));
            return;
        }
        let target = {
            let live_seeds: Vec<usize> = self
                .seeds
                .iter()
                .copied()
                .filter(|&s| s != i && self.tracker.live[s])
                .collect();
            let pool: Vec<usize> = if live_seeds.is_empty() {
                (0..self.sc.nodes)
                    .filter(|&s| s != i && self.tracker.live[s])
                    .collect()
            } else {
                live_seeds
            };
            if pool.is_empty() {
                None // the first seed: nothing to join
            } else {
                Some(node_addr(pool[self.rng.below(pool.len() as u64) as usize]))
            }
        };
        if let Some(t) = target {
            self.nodes[i].join_attempts += 1;
            self.command(i, |s, now| s.join(now, &[t]));
        }
    }
}
