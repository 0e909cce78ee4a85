//! What every node believes about every other, kept compactly, and
//! everything derived from it incrementally: the invariants, convergence,
//! failure detection, false positives and dissemination.
//!
//! 10,000 nodes means 10^8 (observer, member) pairs, so no struct per pair:
//! one bit per pair says "in the observer's table", and only pairs whose
//! record differs from the common case (alive at incarnation 1) keep an
//! entry in a per-observer hash map. Everything is updated from
//! [`swim_core::Swim::drain_member_changes`], never by scanning tables.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use swim_core::{MemberChange, MemberState};

use crate::naming::{node_index, node_name};
use crate::report::{Detection, Violation};
use crate::rng::hash_bytes;
use crate::time::secs;

/// A record as an observer holds it: (incarnation, state).
pub(crate) type View = (u32, MemberState);

const DEFAULT_VIEW: View = (1, MemberState::Alive);

fn up(v: Option<View>) -> bool {
    matches!(v, Some((_, MemberState::Alive | MemberState::Suspect)))
}

/// Declared dead. A record at incarnation 0 is the placeholder a new name
/// enters the table as (rule A3), never a declaration.
fn dead(v: Option<View>) -> bool {
    matches!(v, Some((inc, MemberState::Dead)) if inc > 0)
}

fn suspect(v: Option<View>) -> bool {
    matches!(v, Some((_, MemberState::Suspect)))
}

/// A multiplicative hasher for `u32` keys (no DoS concern in a simulator;
/// iteration order is never observed).
#[derive(Default, Clone, Copy)]
pub(crate) struct U32Hasher(u64);

impl Hasher for U32Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.0 = (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type U32Map<V> = HashMap<u32, V, BuildHasherDefault<U32Hasher>>;

/// Every observer's view of every member.
#[derive(Debug)]
pub(crate) struct Views {
    words: usize,
    known: Vec<u64>,
    overrides: Vec<U32Map<View>>,
}

impl Views {
    fn new(n: usize) -> Views {
        let words = n.div_ceil(64);
        Views {
            words,
            known: vec![0; words * n],
            overrides: (0..n).map(|_| U32Map::default()).collect(),
        }
    }

    pub(crate) fn get(&self, o: usize, m: usize) -> Option<View> {
        if self.known[o * self.words + m / 64] >> (m % 64) & 1 == 0 {
            return None;
        }
        let map = &self.overrides[o];
        if map.is_empty() {
            return Some(DEFAULT_VIEW);
        }
        Some(*map.get(&(m as u32)).unwrap_or(&DEFAULT_VIEW))
    }

    fn set(&mut self, o: usize, m: usize, v: Option<View>) {
        let w = &mut self.known[o * self.words + m / 64];
        match v {
            None => {
                *w &= !(1 << (m % 64));
                self.overrides[o].remove(&(m as u32));
            }
            Some(v) => {
                *w |= 1 << (m % 64);
                if v == DEFAULT_VIEW {
                    if !self.overrides[o].is_empty() {
                        self.overrides[o].remove(&(m as u32));
                    }
                } else {
                    self.overrides[o].insert(m as u32, v);
                }
            }
        }
    }

    /// The members in `o`'s table.
    fn members_of(&self, o: usize) -> Vec<usize> {
        let row = &self.known[o * self.words..(o + 1) * self.words];
        let mut out = Vec::new();
        for (wi, &w) in row.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                let b = w.trailing_zeros() as usize;
                out.push(wi * 64 + b);
                w &= w - 1;
            }
        }
        out
    }

    /// Heap bytes held (approximate).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.known.len() * 8
            + self
                .overrides
                .iter()
                .map(|m| m.capacity() * 16 + 48)
                .sum::<usize>()
    }
}

/// Why a run's time matters to false positives: recent stalls and
/// partitions (to tell a false positive on a healthy node from one on a
/// stalled or cut-off node).
#[derive(Debug, Clone, Default)]
pub(crate) struct Disturbances {
    /// Per node: the end of its latest stall (0: never), or `u64::MAX`
    /// while stalled.
    pub(crate) stalled_until: Vec<u64>,
    /// Partitions seen: (start, end, side-A bitset).
    pub(crate) partitions: Vec<(u64, u64, Vec<u64>)>,
}

impl Disturbances {
    fn stalled_recently(&self, m: usize, now: u64, window: u64) -> bool {
        let u = self.stalled_until[m];
        u != 0 && u.saturating_add(window) >= now
    }

    fn separated_recently(&self, a: usize, b: usize, now: u64, window: u64) -> bool {
        let side = |bits: &[u64], i: usize| bits[i / 64] >> (i % 64) & 1 == 1;
        self.partitions.iter().any(|(start, end, bits)| {
            *start <= now && end.saturating_add(window) >= now && side(bits, a) != side(bits, b)
        })
    }
}

/// Open tracking of one crashed node's detection.
#[derive(Debug, Clone)]
struct CrashTrack {
    /// Index into `detections`.
    record: usize,
    /// Live observers that no longer see it up.
    down: usize,
    /// The figures as swim-core defines them (what the chaos bed reports
    /// too), in ns since the start; `detections[record]` shows them.
    figures: swim_core::detection::Detection<u64>,
}

impl CrashTrack {
    /// Writes the figures into the report's record, in seconds after the
    /// crash.
    fn show(&self, d: &mut Detection) {
        let after = |t: Option<u64>| t.map(|t| secs(t) - d.crashed_at_s);
        d.first_suspect_s = after(self.figures.first_suspect());
        d.first_dead_s = after(self.figures.first_dead());
        d.all_dead_s = after(self.figures.all_dead());
    }
}

/// Dissemination of one update: member `node` reaching incarnation `inc`.
#[derive(Debug, Clone)]
pub(crate) struct Dissemination {
    pub(crate) node: usize,
    pub(crate) incarnation: u32,
    pub(crate) start: u64,
    /// Live nodes at the start (the denominator).
    pub(crate) population: usize,
    got: Vec<bool>,
    /// Arrival times (ns since start), in order.
    pub(crate) arrivals: Vec<u64>,
}

/// False-positive counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct FalsePositives {
    /// Live, reachable, never-stalled nodes declared dead by a first node.
    pub(crate) healthy: u64,
    /// Live nodes declared dead while or soon after stalling.
    pub(crate) stalled: u64,
    /// Live nodes declared dead by a node a partition separated them from.
    pub(crate) partitioned: u64,
    /// Every (observer, live member) dead record, however it was learnt.
    pub(crate) observer_records: u64,
    /// Live nodes suspected (once per episode: no node suspected them
    /// before), by kind like the declarations.
    pub(crate) suspicions: [u64; 3],
    /// The first few, for the report: (time, declarer, member, kind).
    pub(crate) examples: Vec<(u64, usize, usize, &'static str)>,
}

/// The tracker.
#[derive(Debug)]
pub(crate) struct Tracker {
    n: usize,
    seed: u64,
    pub(crate) views: Views,
    /// A process runs for this node (it may be stalled or leaving).
    pub(crate) running: Vec<bool>,
    /// Running and not leaving: the nodes everyone must see.
    pub(crate) live: Vec<bool>,
    pub(crate) leaving: Vec<bool>,
    pub(crate) live_count: usize,
    up_live: Vec<u32>,
    /// Per live observer: members that are not live (crashed, left) it
    /// still sees up.
    up_stale: Vec<u32>,
    converged_count: usize,
    converged: bool,
    /// When `converged` last changed, and to what.
    pub(crate) convergence_changes: Vec<(u64, bool)>,
    dead_viewers: Vec<u32>,
    suspect_viewers: Vec<u32>,
    /// Per member: (incarnation, metadata hash) it announced itself.
    truth: Vec<Vec<(u32, u64)>>,
    crash_tracks: BTreeMap<usize, CrashTrack>,
    pub(crate) detections: Vec<Detection>,
    pub(crate) fp: FalsePositives,
    pub(crate) disturbances: Disturbances,
    /// Window after a stall or partition in which a false positive is
    /// blamed on it.
    pub(crate) blame_window: u64,
    pub(crate) dissemination: Option<Dissemination>,
    pub(crate) violations: Vec<Violation>,
    pub(crate) violations_total: u64,
    /// When a member table last changed (ns).
    pub(crate) last_change: u64,
    pub(crate) max_listed: usize,
    pub(crate) check: bool,
}

impl Tracker {
    pub(crate) fn new(n: usize, seed: u64, check: bool, max_listed: usize) -> Tracker {
        Tracker {
            n,
            seed,
            views: Views::new(n),
            running: vec![false; n],
            live: vec![false; n],
            leaving: vec![false; n],
            live_count: 0,
            up_live: vec![0; n],
            up_stale: vec![0; n],
            converged_count: 0,
            converged: false,
            convergence_changes: Vec::new(),
            dead_viewers: vec![0; n],
            suspect_viewers: vec![0; n],
            truth: vec![Vec::new(); n],
            crash_tracks: BTreeMap::new(),
            detections: Vec::new(),
            fp: FalsePositives::default(),
            disturbances: Disturbances {
                stalled_until: vec![0; n],
                partitions: Vec::new(),
            },
            blame_window: 0,
            dissemination: None,
            violations: Vec::new(),
            violations_total: 0,
            last_change: 0,
            max_listed,
            check,
        }
    }

    pub(crate) fn converged(&self) -> bool {
        self.converged
    }

    /// Records a violation.
    pub(crate) fn violate(
        &mut self,
        now: u64,
        rule: &str,
        observer: Option<usize>,
        member: Option<usize>,
        detail: String,
    ) {
        self.violations_total += 1;
        if self.violations.len() < self.max_listed {
            self.violations.push(Violation {
                rule: rule.to_string(),
                seed: self.seed,
                time_s: secs(now),
                observer: observer.map(node_name),
                member: member.map(node_name),
                detail,
            });
        }
    }

    // ------------------------------------------------------------ changes

    /// One change recorded by `o`'s member table.
    pub(crate) fn on_change(&mut self, now: u64, o: usize, change: MemberChange) {
        self.last_change = now;
        match change {
            MemberChange::Updated(member) => {
                let Some(m) = node_index(&member.name).filter(|&m| m < self.n) else {
                    self.violate(
                        now,
                        "unknown-member",
                        Some(o),
                        None,
                        format!("a member no node is: {:?}", member.name),
                    );
                    return;
                };
                let new = (member.incarnation, member.state);
                let old = self.views.get(o, m);
                if self.check {
                    self.check_update(now, o, m, old, new, &member.meta);
                } else if o == m && new.1 == MemberState::Alive {
                    self.note_truth(m, new.0, &member.meta);
                }
                self.views.set(o, m, Some(new));
                self.transition(now, o, m, old, Some(new));
            }
            MemberChange::Removed(name) => {
                let Some(m) = node_index(&name).filter(|&m| m < self.n) else {
                    return;
                };
                let old = self.views.get(o, m);
                self.views.set(o, m, None);
                self.transition(now, o, m, old, None);
            }
        }
    }

    fn note_truth(&mut self, m: usize, inc: u32, meta: &[u8]) {
        let h = hash_bytes(meta);
        let t = &mut self.truth[m];
        if !t.contains(&(inc, h)) {
            t.push((inc, h));
        }
    }

    fn check_update(
        &mut self,
        now: u64,
        o: usize,
        m: usize,
        old: Option<View>,
        new: View,
        meta: &[u8],
    ) {
        let (inc, state) = new;
        if o == m {
            match state {
                MemberState::Suspect => {
                    self.violate(
                        now,
                        "self-suspect",
                        Some(o),
                        Some(m),
                        format!("believes itself suspect at incarnation {inc}"),
                    );
                }
                // A new name enters the table as Dead@0 for an instant
                // (rule A3), our own included: not a belief.
                MemberState::Dead if old.is_none() && inc == 0 => {}
                MemberState::Dead => {
                    self.violate(
                        now,
                        "self-dead",
                        Some(o),
                        Some(m),
                        format!("believes itself dead at incarnation {inc}"),
                    );
                }
                MemberState::Left if !self.leaving[o] => {
                    self.violate(
                        now,
                        "self-left",
                        Some(o),
                        Some(m),
                        "believes it left but never called leave".into(),
                    );
                }
                MemberState::Alive => self.note_truth(m, inc, meta),
                MemberState::Left => {}
            }
        }
        if let Some((old_inc, old_state)) = old {
            if inc < old_inc {
                self.violate(
                    now,
                    "incarnation-decreased",
                    Some(o),
                    Some(m),
                    format!("{old_state:?}@{old_inc} -> {state:?}@{inc}"),
                );
            }
            let was_gone = matches!(old_state, MemberState::Dead | MemberState::Left);
            let back = matches!(state, MemberState::Alive | MemberState::Suspect);
            if was_gone && back && inc <= old_inc {
                self.violate(
                    now,
                    "resurrection",
                    Some(o),
                    Some(m),
                    format!(
                        "{old_state:?}@{old_inc} -> {state:?}@{inc} without a higher incarnation"
                    ),
                );
            }
        }
        if state == MemberState::Alive && o != m {
            let h = hash_bytes(meta);
            let t = &self.truth[m];
            if !t.iter().any(|&(i, mh)| i == inc && mh == h) {
                let announced = t.iter().any(|&(i, _)| i == inc);
                let (rule, detail) = if announced {
                    (
                        "metadata-per-incarnation",
                        format!("alive@{inc} with metadata the member never announced at {inc}"),
                    )
                } else {
                    (
                        "unannounced-incarnation",
                        format!("alive@{inc}, an incarnation the member never announced"),
                    )
                };
                self.violate(now, rule, Some(o), Some(m), detail);
            }
        }
    }

    /// Keeps the derived counters in step with one pair's change.
    fn transition(&mut self, now: u64, o: usize, m: usize, old: Option<View>, new: Option<View>) {
        // Convergence: live observers counting live members they see up.
        if self.live[o] && self.live[m] && up(old) != up(new) {
            let before = self.up_live[o] as usize == self.live_count;
            if up(new) {
                self.up_live[o] += 1;
            } else {
                self.up_live[o] -= 1;
            }
            let after = self.up_live[o] as usize == self.live_count;
            if before != after {
                if after {
                    self.converged_count += 1;
                } else {
                    self.converged_count -= 1;
                }
            }
        }
        if self.live[o] && !self.live[m] && o != m && up(old) != up(new) {
            if up(new) {
                self.up_stale[o] += 1;
            } else {
                self.up_stale[o] -= 1;
            }
        }
        // False positives: dead records of live members.
        if o != m && dead(old) != dead(new) {
            if dead(new) {
                self.dead_viewers[m] += 1;
                if self.live[m] {
                    self.fp.observer_records += 1;
                    if self.dead_viewers[m] == 1 {
                        self.false_positive(now, o, m);
                    }
                }
            } else {
                self.dead_viewers[m] -= 1;
            }
        }
        if o != m && suspect(old) != suspect(new) {
            if suspect(new) {
                self.suspect_viewers[m] += 1;
                // A new episode: nobody suspected it or held it dead.
                if self.live[m] && self.suspect_viewers[m] == 1 && self.dead_viewers[m] == 0 {
                    let k = self.blame(now, o, m);
                    self.fp.suspicions[k] += 1;
                }
            } else {
                self.suspect_viewers[m] -= 1;
            }
        }
        // Detection of a crashed member.
        if o != m && self.live[o] {
            if let Some(t) = self.crash_tracks.get_mut(&m) {
                if suspect(new) {
                    t.figures.suspected(now);
                }
                if dead(new) {
                    t.figures.declared(now);
                }
                t.show(&mut self.detections[t.record]);
                if up(old) && !up(new) {
                    t.down += 1;
                } else if !up(old) && up(new) {
                    t.down -= 1;
                }
            }
            self.finish_detection(now, m);
        }
        // Dissemination of one update.
        if let Some(d) = &mut self.dissemination {
            if d.node == m && !d.got[o] && new.is_some_and(|(inc, _)| inc >= d.incarnation) {
                d.got[o] = true;
                d.arrivals.push(now - d.start);
            }
        }
        self.update_converged(now);
    }

    /// 0: healthy, 1: stalled, 2: partitioned.
    fn blame(&self, now: u64, o: usize, m: usize) -> usize {
        let w = self.blame_window;
        if self.disturbances.separated_recently(o, m, now, w) {
            2
        } else if self.disturbances.stalled_recently(m, now, w) {
            1
        } else {
            0
        }
    }

    fn false_positive(&mut self, now: u64, o: usize, m: usize) {
        let kind = match self.blame(now, o, m) {
            2 => {
                self.fp.partitioned += 1;
                "partitioned"
            }
            1 => {
                self.fp.stalled += 1;
                "stalled"
            }
            _ => {
                self.fp.healthy += 1;
                "healthy"
            }
        };
        // The first few, and the first few healthy ones however late (the
        // ones a run fails on).
        if self.fp.examples.len() < 20 || (kind == "healthy" && self.fp.healthy <= 20) {
            self.fp.examples.push((now, o, m, kind));
        }
    }

    fn finish_detection(&mut self, now: u64, m: usize) {
        let Some(t) = self.crash_tracks.get_mut(&m) else {
            return;
        };
        if t.down >= self.live_count {
            // Every live node holds it dead or no longer lists it.
            t.figures.all_declared(now);
            t.show(&mut self.detections[t.record]);
            self.crash_tracks.remove(&m);
        }
    }

    fn update_converged(&mut self, now: u64) {
        let c = self.live_count > 0 && self.converged_count == self.live_count;
        if c != self.converged {
            self.converged = c;
            self.convergence_changes.push((now, c));
        }
    }

    fn recount_converged(&mut self, now: u64) {
        self.converged_count = (0..self.n)
            .filter(|&o| self.live[o] && self.up_live[o] as usize == self.live_count)
            .count();
        self.update_converged(now);
    }

    // ------------------------------------------------------------ lifecycle

    /// A process starts for `m` (first start or restart): it is running
    /// and live, with an empty table.
    pub(crate) fn start(&mut self, now: u64, m: usize) {
        debug_assert!(!self.running[m]);
        self.running[m] = true;
        self.leaving[m] = false;
        if let Some(t) = self.crash_tracks.remove(&m) {
            self.detections[t.record].restarted = true;
        }
        self.live[m] = true;
        self.live_count += 1;
        for o in 0..self.n {
            if o != m && self.live[o] && up(self.views.get(o, m)) {
                self.up_live[o] += 1;
                self.up_stale[o] -= 1;
            }
        }
        self.up_live[m] = 0;
        self.up_stale[m] = 0;
        let tracked: Vec<usize> = self.crash_tracks.keys().copied().collect();
        for x in tracked {
            if !up(self.views.get(m, x)) {
                if let Some(t) = self.crash_tracks.get_mut(&x) {
                    t.down += 1;
                }
            }
        }
        self.recount_converged(now);
    }

    /// `m` starts to leave: it no longer counts as live.
    pub(crate) fn leave(&mut self, now: u64, m: usize) {
        self.leaving[m] = true;
        self.unlive(now, m);
    }

    fn unlive(&mut self, now: u64, m: usize) {
        if !self.live[m] {
            return;
        }
        for o in 0..self.n {
            if o != m && self.live[o] && up(self.views.get(o, m)) {
                self.up_live[o] -= 1;
                self.up_stale[o] += 1;
            }
        }
        let tracked: Vec<usize> = self.crash_tracks.keys().copied().collect();
        for &x in &tracked {
            if !up(self.views.get(m, x)) {
                if let Some(t) = self.crash_tracks.get_mut(&x) {
                    t.down -= 1;
                }
            }
        }
        self.live[m] = false;
        self.live_count -= 1;
        for x in tracked {
            self.finish_detection(now, x);
        }
        self.recount_converged(now);
    }

    /// `m`'s process is gone (crash, or shut down after leaving). With
    /// `crash`, its detection is tracked.
    pub(crate) fn stop(&mut self, now: u64, m: usize, crash: bool) {
        if !self.running[m] {
            return;
        }
        self.unlive(now, m);
        for x in self.views.members_of(m) {
            let old = self.views.get(m, x);
            self.views.set(m, x, None);
            self.transition(now, m, x, old, None);
        }
        self.running[m] = false;
        if crash {
            let down = (0..self.n)
                .filter(|&o| o != m && self.live[o] && !up(self.views.get(o, m)))
                .count();
            self.detections.push(Detection {
                node: node_name(m),
                crashed_at_s: secs(now),
                first_suspect_s: None,
                first_dead_s: None,
                all_dead_s: None,
                restarted: false,
            });
            let record = self.detections.len() - 1;
            let figures = Default::default();
            self.crash_tracks.insert(
                m,
                CrashTrack {
                    record,
                    down,
                    figures,
                },
            );
            self.finish_detection(now, m);
        }
    }

    /// Starts following member `m`'s update to incarnation `inc`.
    pub(crate) fn follow(&mut self, now: u64, m: usize, inc: u32) {
        let mut got = vec![false; self.n];
        got[m] = true;
        let mut arrivals = vec![0];
        for (o, g) in got.iter_mut().enumerate() {
            if o != m && self.views.get(o, m).is_some_and(|(i, _)| i >= inc) {
                *g = true;
                arrivals.push(0);
            }
        }
        self.dissemination = Some(Dissemination {
            node: m,
            incarnation: inc,
            start: now,
            population: self.live_count,
            got,
            arrivals,
        });
    }

    /// Mean fraction of live members each live node sees up, the fraction
    /// of live nodes that see all, and the fraction whose view is exact
    /// (every live node up, no crashed or departed node up).
    pub(crate) fn convergence_sample(&self) -> (f64, f64, f64) {
        if self.live_count == 0 {
            return (0.0, 0.0, 0.0);
        }
        let (mut total, mut exact) = (0u64, 0usize);
        for o in (0..self.n).filter(|&o| self.live[o]) {
            total += self.up_live[o] as u64;
            if self.up_live[o] as usize == self.live_count && self.up_stale[o] == 0 {
                exact += 1;
            }
        }
        let l = self.live_count as f64;
        (
            total as f64 / (l * l),
            self.converged_count as f64 / l,
            exact as f64 / l,
        )
    }

    /// Up to `k` (observer, member) pairs of live nodes where the observer
    /// does not see the member up.
    pub(crate) fn unconverged_pairs(&self, k: usize) -> Vec<(usize, usize, Option<View>)> {
        let mut out = Vec::new();
        for o in (0..self.n).filter(|&o| self.live[o]) {
            if self.up_live[o] as usize == self.live_count {
                continue;
            }
            for m in (0..self.n).filter(|&m| self.live[m]) {
                let v = self.views.get(o, m);
                if !up(v) {
                    out.push((o, m, v));
                    if out.len() >= k {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// The state `o` holds for `m`.
    #[cfg(test)]
    pub(crate) fn view(&self, o: usize, m: usize) -> Option<View> {
        self.views.get(o, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use swim_core::Member;

    fn member(i: usize, inc: u32, state: MemberState) -> MemberChange {
        MemberChange::Updated(Member {
            name: Arc::from(node_name(i)),
            addr: crate::naming::node_addr(i),
            meta: Arc::from(&[][..]),
            incarnation: inc,
            state,
            vsn: [1, 5, 2, 0, 0, 0],
        })
    }

    fn bring_up(t: &mut Tracker, n: usize) {
        for i in 0..n {
            t.start(0, i);
            t.on_change(0, i, member(i, 0, MemberState::Dead));
            t.on_change(0, i, member(i, 1, MemberState::Alive));
        }
        for o in 0..n {
            for m in (0..n).filter(|&m| m != o) {
                t.on_change(0, o, member(m, 0, MemberState::Dead));
                t.on_change(0, o, member(m, 1, MemberState::Alive));
            }
        }
    }

    #[test]
    fn convergence_detection_and_rules() {
        let mut t = Tracker::new(4, 9, true, 100);
        bring_up(&mut t, 4);
        assert!(t.converged());
        assert!(t.violations.is_empty(), "{:?}", t.violations);
        t.stop(10, 3, true);
        assert!(t.converged(), "the crashed node is not live");
        t.on_change(20, 0, member(3, 1, MemberState::Suspect));
        t.on_change(30, 0, member(3, 1, MemberState::Dead));
        t.on_change(31, 1, member(3, 1, MemberState::Dead));
        assert_eq!(t.detections[0].all_dead_s, None);
        t.on_change(40, 2, member(3, 1, MemberState::Dead));
        assert!(t.detections[0].all_dead_s.is_some());
        assert_eq!(t.fp.healthy, 0);
        // A false positive, then a refutation.
        t.on_change(50, 1, member(2, 1, MemberState::Dead));
        assert_eq!(t.fp.healthy, 1);
        assert!(!t.converged());
        t.on_change(60, 1, member(2, 2, MemberState::Alive));
        assert!(t.converged());
        // Rule breaks.
        t.on_change(70, 1, member(2, 1, MemberState::Alive));
        t.on_change(71, 0, member(1, 1, MemberState::Dead));
        t.on_change(72, 0, member(1, 1, MemberState::Alive));
        t.on_change(73, 0, member(0, 1, MemberState::Suspect));
        let rules: Vec<&str> = t.violations.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "unannounced-incarnation",
                "incarnation-decreased",
                "resurrection",
                "self-suspect"
            ]
        );
        // Reaped: any incarnation is fine again.
        t.on_change(80, 2, MemberChange::Removed(Arc::from("node-3")));
        assert_eq!(t.view(2, 3), None);
    }
}
