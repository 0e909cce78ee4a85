//! A lease service on every simulated node: one node at a time holds the
//! lease, under a fencing epoch, and writes to a shared resource with it —
//! the pattern of a leader lease, a lock service, a primary.
//!
//! The protocol: the lowest-named node that sees a majority alive claims
//! the lease once it is free, under the next epoch (kept on its disk,
//! synced before use); it renews every second; every node acknowledges a
//! renewal of the lease it knows, naming the holder (user messages are
//! relayed, so an acknowledgement reaches every node), and none
//! acknowledges another claim until that lease has expired on its own
//! timer (lease + margin after the last renewal it acknowledged), nor a
//! rival claim of an epoch no newer than its own claim's. What a node
//! acknowledged (epoch and holder; a claimant, its own claim) is its
//! promise, kept on its disk: a node that restarts must not acknowledge a
//! second claim of an epoch it already promised to one, or two claims of one
//! epoch can each gather a majority. The holder holds a lease for 4 s from
//! the last renewal a majority acknowledged, on its own clock. Every node
//! runs on its own clock (offsets up to 1.5 s, drift up to 1000 ppm).
//!
//! Invariants, after every callback:
//! * `one-holder`: never two nodes that each believe, by their own clock,
//!   that they hold the lease;
//! * `lease-fencing`: the shared resource never sees the same epoch from
//!   two different claims (fencing cannot tell them apart).
//!
//! Planted bugs:
//! * `--bug`: the epoch is written to disk but not synced; a holder that
//!   crashes and comes back claims its old epoch again;
//! * `--clock-bug`: a node decides that a lease has expired by comparing
//!   the holder's expiry time (the holder's clock) with its own clock —
//!   wrong by the clocks' offset.
//!
//! ```text
//! cargo run --release -p swim-sim --example lease -- --seeds 100
//! cargo run --release -p swim-sim --example lease -- --seeds 100 --bug        # caught
//! cargo run --release -p swim-sim --example lease -- --seeds 100 --clock-bug  # caught
//! ```

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_sim::sweep::FaultMix;
use swim_sim::swim_core::{Event, MemberState};
use swim_sim::{
    node_index, node_name, Action, AppFailure, Application, Apps, Check, Clocks, NodeContext,
    Scenario,
};

/// How long a holder holds a lease after the renewal a majority acknowledged.
const LEASE: Duration = Duration::from_secs(4);
/// How much longer the others wait: the clocks' drift over a lease, and more.
const MARGIN: Duration = Duration::from_millis(200);
/// How often the holder renews and every node looks at the lease.
const TICK: Duration = Duration::from_millis(500);

/// Timer tokens: the tick, and (kind << 32 | sequence) for expiries.
const TICK_TOKEN: u64 = 0;
const HOLD: u64 = 1 << 32;
const EXPIRE: u64 = 2 << 32;

/// The shared resource the holders write to, fenced by epoch: outside
/// every node (a storage service), made fresh for every run.
#[derive(Default)]
struct Resource {
    /// The claim that first wrote under each epoch.
    writers: BTreeMap<u64, (usize, u64)>,
    /// Epochs written by two different claims.
    conflicts: Vec<(u64, usize, usize)>,
}

/// The lease as a node knows it from renewals.
#[derive(Clone, Copy)]
struct Known {
    epoch: u64,
    holder: usize,
    /// Its expiry timer fired (the correct way to tell).
    expired: bool,
    /// The holder's own clock at expiry (what the clock bug compares).
    holder_expiry: Duration,
}

/// A claim of this node, and the renewals acknowledged.
struct Claim {
    epoch: u64,
    /// Sequence of the last renewal sent.
    seq: u64,
    /// When each unconfirmed renewal was sent (own clock), and who acked.
    acks: BTreeMap<u64, (Duration, BTreeSet<usize>)>,
    /// The last renewal a majority acknowledged, and when it was sent.
    confirmed: Option<(u64, Duration)>,
}

struct Lease {
    n: usize,
    disk_bug: bool,
    clock_bug: bool,
    resource: Arc<Mutex<Resource>>,
    /// This process's claims are told apart by this.
    life: u64,
    epoch_seen: u64,
    known: Option<Known>,
    /// Guards expiry timers: only the latest counts.
    known_seq: u64,
    claim: Option<Claim>,
}

impl Lease {
    fn majority(&self) -> usize {
        self.n / 2 + 1
    }

    /// Whether this node believes it holds the lease at its clock `now`.
    fn holds(&self, now: Duration) -> Option<u64> {
        let c = self.claim.as_ref()?;
        let (_, sent) = c.confirmed?;
        (now < sent + LEASE).then_some(c.epoch)
    }

    fn lease_free(&self, now: Duration) -> bool {
        match &self.known {
            None => true,
            Some(k) if self.clock_bug => now > k.holder_expiry,
            Some(k) => k.expired,
        }
    }

    fn alive(node: &NodeContext<'_>) -> Vec<usize> {
        let members = node.swim().members();
        let alive = members.iter().filter(|m| m.state == MemberState::Alive);
        alive.filter_map(|m| node_index(&m.name)).collect()
    }

    fn tick(&mut self, node: &mut NodeContext<'_>) {
        let now = node.now();
        let alive = Lease::alive(node);
        let majority = alive.len() >= self.majority();
        if let Some(epoch) = self.holds(now) {
            self.write(node.index(), epoch);
        }
        if self.claim.is_some() {
            if majority {
                self.renew(node);
            }
        } else if majority && alive.iter().min() == Some(&node.index()) && self.lease_free(now) {
            let epoch = self.epoch_seen + 1;
            node.disk_write(b"epoch", &epoch.to_be_bytes());
            node.disk_write(b"promised", &promise_bytes(epoch, node.index()));
            if !self.disk_bug {
                node.disk_sync();
            }
            self.epoch_seen = epoch;
            self.claim = Some(Claim {
                epoch,
                seq: 0,
                acks: BTreeMap::new(),
                confirmed: None,
            });
            node.count("claims", 1);
            self.renew(node);
        }
        node.set_timer(TICK, TICK_TOKEN);
    }

    /// Sends a renewal of its claim; its own acknowledgement counts.
    fn renew(&mut self, node: &mut NodeContext<'_>) {
        let now = node.now();
        let me = node.index();
        let Some(c) = self.claim.as_mut() else { return };
        c.seq += 1;
        let (epoch, seq) = (c.epoch, c.seq);
        c.acks.insert(seq, (now, BTreeSet::from([me])));
        c.acks.retain(|&s, _| s + 16 > seq);
        let expiry = (now + LEASE).as_nanos();
        let _ = node.broadcast(format!("renew {epoch} {seq} {me} {expiry}").as_bytes());
        node.set_timer(LEASE, HOLD | seq);
        self.acked(node, epoch, seq, me);
    }

    fn acked(&mut self, node: &mut NodeContext<'_>, epoch: u64, seq: u64, from: usize) {
        let majority = self.majority();
        let Some(c) = self.claim.as_mut().filter(|c| c.epoch == epoch) else {
            return;
        };
        let Some((sent, acks)) = c.acks.get_mut(&seq) else {
            return;
        };
        acks.insert(from);
        if acks.len() >= majority && c.confirmed.is_none_or(|(s, _)| s < seq) {
            c.confirmed = Some((seq, *sent));
            node.count("renewals", 1);
        }
    }

    /// A renewal from `holder`: acknowledged if it renews the lease this
    /// node knows, or that lease is free.
    fn renewal(
        &mut self,
        node: &mut NodeContext<'_>,
        epoch: u64,
        seq: u64,
        holder: usize,
        expiry: u64,
    ) {
        self.epoch_seen = self.epoch_seen.max(epoch);
        if holder == node.index() {
            return;
        }
        // A rival claim under an epoch no newer than our own claim's: two
        // nodes that claimed at once from the same epoch must not each
        // count the other's acknowledgement, or both reach a majority.
        if self.claim.as_ref().is_some_and(|c| c.epoch >= epoch) {
            return;
        }
        let same = self
            .known
            .is_some_and(|k| k.epoch == epoch && k.holder == holder);
        let newer = self.known.is_none_or(|k| epoch > k.epoch) && self.lease_free(node.now());
        if !(same || newer) {
            return;
        }
        if self.claim.as_ref().is_some_and(|c| c.epoch < epoch) {
            self.claim = None; // a newer holder: step down
        }
        self.known = Some(Known {
            epoch,
            holder,
            expired: false,
            holder_expiry: Duration::from_nanos(expiry),
        });
        self.known_seq += 1;
        node.set_timer(LEASE + MARGIN, EXPIRE | self.known_seq);
        if !same {
            node.disk_write(b"promised", &promise_bytes(epoch, holder));
            node.disk_sync();
        }
        // Naming the holder: with user messages relayed, an ack reaches
        // every node, and a rival claim of the same epoch must not count it.
        let ack = format!("ack {epoch} {seq} {} {holder}", node.index());
        let _ = node.send_best_effort(&node_name(holder), ack.as_bytes());
    }

    /// Writes to the shared resource under `epoch`.
    fn write(&self, me: usize, epoch: u64) {
        let mut r = self.resource.lock().unwrap_or_else(|e| e.into_inner());
        let claim = (me, self.life);
        match r.writers.get(&epoch).copied() {
            None => {
                r.writers.insert(epoch, claim);
            }
            Some(first) if first != claim => r.conflicts.push((epoch, first.0, me)),
            Some(_) => {}
        }
    }
}

impl Application for Lease {
    fn started(&mut self, node: &mut NodeContext<'_>) {
        self.life = node.random();
        self.epoch_seen = node.disk().read(b"epoch").and_then(read_u64).unwrap_or(0);
        // A fresh process cannot know the lease: it waits one out first,
        // bound by what it promised before.
        let (epoch, holder) = node
            .disk()
            .read(b"promised")
            .and_then(|b| Some((read_u64(b.get(..8)?)?, read_u64(b.get(8..)?)? as usize)))
            .unwrap_or((0, usize::MAX));
        self.epoch_seen = self.epoch_seen.max(epoch);
        self.known = Some(Known {
            epoch,
            holder,
            expired: false,
            holder_expiry: node.now() + LEASE + MARGIN,
        });
        self.known_seq += 1;
        node.set_timer(LEASE + MARGIN, EXPIRE | self.known_seq);
        node.set_timer(TICK, TICK_TOKEN);
    }

    fn event(&mut self, node: &mut NodeContext<'_>, event: &Event) {
        let Event::UserMessage { payload, .. } = event else {
            return;
        };
        let text = String::from_utf8_lossy(payload);
        let words: Vec<&str> = text.split(' ').collect();
        let num = |k: usize| words.get(k).and_then(|w| w.parse::<u64>().ok());
        match (words.first().copied(), num(1), num(2), num(3)) {
            (Some("renew"), Some(epoch), Some(seq), Some(holder)) => {
                let expiry = num(4).unwrap_or(0);
                self.renewal(node, epoch, seq, holder as usize, expiry);
            }
            (Some("ack"), Some(epoch), Some(seq), Some(from))
                if num(4) == Some(node.index() as u64) =>
            {
                self.acked(node, epoch, seq, from as usize)
            }
            _ => {}
        }
    }

    fn timer(&mut self, node: &mut NodeContext<'_>, token: u64) {
        match token >> 32 {
            0 => self.tick(node),
            1 => {
                // A renewal's lease ran out: the claim lapses unless a later
                // one was confirmed.
                let seq = token & 0xffff_ffff;
                if let Some(c) = self.claim.as_mut() {
                    if c.confirmed.is_some_and(|(s, _)| s <= seq) {
                        c.confirmed = None;
                    }
                }
            }
            _ => {
                if token & 0xffff_ffff == self.known_seq {
                    if let Some(k) = self.known.as_mut() {
                        k.expired = true;
                    }
                }
            }
        }
    }
}

/// A promise on disk: the epoch and the holder acknowledged.
fn promise_bytes(epoch: u64, holder: usize) -> [u8; 16] {
    let mut b = [0; 16];
    b[..8].copy_from_slice(&epoch.to_be_bytes());
    b[8..].copy_from_slice(&(holder as u64).to_be_bytes());
    b
}

fn read_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Never two nodes that believe, by their own clocks, that they hold it.
fn one_holder(apps: &Apps<'_>) -> Result<(), AppFailure> {
    let mut holders = apps
        .live::<Lease>()
        .filter_map(|(i, l)| l.holds(apps.clock(i)).map(|e| (i, e)));
    let first = holders.next();
    match (first, holders.next()) {
        (Some((a, ea)), Some((b, eb))) => Err(AppFailure::new(
            [a, b],
            format!("both hold the lease: epochs {ea} and {eb}"),
        )),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    // Restarts and stalls are what leases must survive: more of them.
    let mix = FaultMix {
        restart: 3,
        stall: 3,
        update_meta: 0,
        ..FaultMix::default()
    };
    let o = match common::options_with(&["--clock-bug"], mix) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("lease: {e}");
            return ExitCode::from(2);
        }
    };
    let disk_bug = o.bug;
    let clock_bug = o.switches.iter().any(|s| s == "--clock-bug");
    let checked = common::Checked::default();
    let counter = checked.clone();
    let prepare = move |sc: Scenario| {
        let n = sc.nodes;
        // Every seed also restarts whoever holds the lease then, briefly:
        // a fault aimed by the application's state.
        let at = Duration::from_millis(10_000 + sc.seed % 20_000);
        let down_for = Duration::from_millis(500 + sc.seed % 3_000);
        // And cuts off whoever holds it later, for longer than a lease: the
        // rest claim it anew while the holder still counts down its own.
        let cut_at = Duration::from_millis(40_000 + sc.seed % 20_000);
        let cut_for = Duration::from_millis(6_000 + sc.seed % 4_000);
        let holder = |apps: &Apps<'_>| {
            let holds = |(i, l): &(usize, &Lease)| l.holds(apps.clock(*i)).is_some();
            apps.live::<Lease>().filter(holds).map(|(i, _)| i).collect()
        };
        // Made here, so every run — sweep, replay, shrink trial — has its own.
        let resource = Arc::new(Mutex::new(Resource::default()));
        let fenced = resource.clone();
        let counter = counter.clone();
        sc.config_hook(|_, c| c.relay_user_broadcasts = true)
            .aim(at, Action::Restart { down_for }, holder)
            .aim(cut_at, Action::Partition { duration: cut_for }, holder)
            .clocks(Clocks {
                max_offset: Duration::from_millis(1500),
                max_drift_ppm: 1000,
                jumps: 0,
                max_jump: Duration::ZERO,
            })
            .app(move |_| Lease {
                n,
                disk_bug,
                clock_bug,
                resource: resource.clone(),
                life: 0,
                epoch_seen: 0,
                known: None,
                known_seq: 0,
                claim: None,
            })
            .invariant("one-holder", Check::Always, move |apps| {
                counter.tick();
                one_holder(apps)
            })
            .invariant("lease-fencing", Check::Always, move |_| {
                let r = fenced.lock().unwrap_or_else(|e| e.into_inner());
                match r.conflicts.first() {
                    Some(&(epoch, a, b)) => Err(AppFailure::new(
                        [a, b],
                        format!("epoch {epoch} written by two claims"),
                    )),
                    None => Ok(()),
                }
            })
    };
    common::run(&o, &prepare, &checked)
}
