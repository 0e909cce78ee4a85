//! The bed: starts the cluster, carries out the plan on time, asks every
//! node for its members every `poll`, and records what it did and saw.
//!
//! Whatever happens — an error, a panic, Ctrl-C (the caller's flag) — the
//! bed's drop kills every process it started (SIGCONT first, so a
//! stopped one dies too), its CPU burners, and deletes its nftables table.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::firewall::{Firewall, Layout};
use crate::node::{Kind, Launch, Line, Proc, Programs};
use crate::plan::{key_hex, node_name, Action, Plan};
use crate::record::{CommandError, Ended, Event, EventKind, Life, Meta, Poll, Record};
use crate::scenario::Scenario;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scenario.
    pub scenario: Scenario,
    /// Its name, for the record.
    pub scenario_name: String,
    /// Cluster size.
    pub nodes: usize,
    /// The mix as given.
    pub mix_label: String,
    /// Node `i` runs `mix[i % mix.len()]`.
    pub mix: Vec<Kind>,
    /// Seed of the plan.
    pub seed: u64,
    /// Lifeguard on every node.
    pub lifeguard: bool,
    /// The programs.
    pub programs: Programs,
    /// Where node logs go.
    pub out: PathBuf,
    /// Print what happens as it happens.
    pub verbose: bool,
    /// Which addresses and uids (see [`Layout::new`]).
    pub slot: u8,
}

/// The running bed; dropping it cleans up.
struct Bed<'a> {
    opts: &'a Options,
    layout: Layout,
    kinds: Vec<Kind>,
    firewall: Option<Firewall>,
    procs: Vec<Option<Proc>>,
    gens: Vec<u32>,
    burners: Vec<Child>,
    lines_tx: mpsc::Sender<Line>,
    lines: mpsc::Receiver<Line>,
    t0: Instant,
    keys: Vec<String>,
    /// Rounds sent to each node's current process, not answered yet.
    asked: Vec<VecDeque<usize>>,
    ready: Vec<bool>,
    /// `quit` due to a node that left by command: (when, node, gen).
    quits: Vec<(Instant, usize, u32)>,
    all_cpus: Option<CpuSet>,
    /// This program, for the burners of `starve`.
    exe: PathBuf,
    record: Record,
}

fn ms(t: Instant, t0: Instant) -> i64 {
    if t >= t0 {
        (t - t0).as_millis() as i64
    } else {
        -((t0 - t).as_millis() as i64)
    }
}

fn parse_node(name: &str, n: usize) -> Option<usize> {
    let i: usize = name.strip_prefix('n')?.parse().ok()?;
    (i < n).then_some(i)
}

impl Drop for Bed<'_> {
    fn drop(&mut self) {
        for p in self.procs.iter_mut() {
            if let Some(p) = p.take() {
                p.kill();
            }
        }
        for mut b in self.burners.drain(..) {
            let _ = b.kill();
            let _ = b.wait();
        }
        // The firewall's drop deletes the table.
        self.firewall = None;
    }
}

impl<'a> Bed<'a> {
    fn log(&self, text: &str) {
        if self.opts.verbose {
            let t = ms(Instant::now(), self.t0) as f64 / 1000.0;
            eprintln!("[{t:8.2}s] {text}");
        }
    }

    fn now(&self) -> i64 {
        ms(Instant::now(), self.t0)
    }

    fn start(&mut self, i: usize, join: Vec<usize>) -> Result<(), String> {
        let gen = self.gens[i];
        self.gens[i] += 1;
        let log = self.opts.out.join(format!("{}.log", node_name(i)));
        let launch = Launch {
            index: i,
            gen,
            kind: self.kinds[i],
            layout: &self.layout,
            preset: self.opts.scenario.preset.name(),
            lifeguard: self.opts.lifeguard,
            join,
            keys: self.keys.clone(),
            log: &log,
        };
        let proc = Proc::spawn(&launch, &self.opts.programs, self.lines_tx.clone())?;
        self.procs[i] = Some(proc);
        self.asked[i].clear();
        self.ready[i] = false;
        let now = self.now();
        self.record.lives.push(Life {
            node: i,
            gen,
            start: now,
            end: None,
            ended: None,
        });
        Ok(())
    }

    fn end_life(&mut self, i: usize, how: Ended) {
        let now = self.now();
        if let Some(l) = self
            .record
            .lives
            .iter_mut()
            .rev()
            .find(|l| l.node == i && l.end.is_none())
        {
            l.end = Some(now);
            l.ended = Some(how);
        }
    }

    fn live(&self, i: usize) -> bool {
        self.record
            .lives
            .iter()
            .any(|l| l.node == i && l.end.is_none())
    }

    /// Reads what arrived until `until`.
    fn pump(&mut self, until: Instant) {
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            match self.lines.recv_timeout(until - now) {
                Ok(line) => self.take(line),
                Err(_) => return,
            }
        }
    }

    fn take(&mut self, line: Line) {
        let n = self.opts.nodes;
        match line {
            Line::Closed { node, gen, at } => {
                let current = self.procs[node].as_ref().is_some_and(|p| p.gen == gen);
                if current && self.live(node) {
                    let t = ms(at, self.t0);
                    self.record.notes.push(format!(
                        "{} (start {gen}) exited unasked at {:.1}s: see its log",
                        node_name(node),
                        t as f64 / 1000.0
                    ));
                    self.end_life(node, Ended::Exited);
                }
            }
            Line::Json {
                node,
                gen,
                at,
                value,
            } => {
                let t = ms(at, self.t0);
                let current = self.procs[node].as_ref().is_some_and(|p| p.gen == gen);
                let event = value["event"].as_str().unwrap_or("");
                let kind = match event {
                    "join" => Some(EventKind::Join),
                    "update" => Some(EventKind::Update),
                    "leave" => Some(EventKind::Leave),
                    "failed" => Some(EventKind::Failed),
                    _ => None,
                };
                if let Some(kind) = kind {
                    if let Some(subject) = value["node"].as_str().and_then(|s| parse_node(s, n)) {
                        if kind == EventKind::Failed {
                            self.log(&format!(
                                "{} declares {} dead",
                                node_name(node),
                                node_name(subject)
                            ));
                        }
                        self.record.events.push(Event {
                            t,
                            observer: node,
                            gen,
                            kind,
                            subject,
                        });
                    }
                    return;
                }
                match event {
                    "ready" if current => self.ready[node] = true,
                    "members" if current => {
                        let Some(round) = self.asked[node].pop_front() else {
                            return;
                        };
                        let members = value["members"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|m| {
                                        let i = parse_node(m["node"].as_str()?, n)?;
                                        Some((i, m["state"] == "suspect"))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        self.record.polls.push(Poll {
                            round,
                            t,
                            observer: node,
                            gen,
                            members,
                        });
                    }
                    "error" => {
                        let command = value["command"].as_str().unwrap_or("").to_string();
                        let error = value["error"].as_str().unwrap_or("").to_string();
                        self.log(&format!("{}: {command}: {error}", node_name(node)));
                        self.record.errors.push(CommandError {
                            t,
                            node,
                            command,
                            error,
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends `members` to every live process.
    fn poll(&mut self) {
        let round = self.record.rounds.len();
        self.record.rounds.push(self.now());
        for i in 0..self.opts.nodes {
            if !self.live(i) {
                continue;
            }
            if let Some(p) = &self.procs[i] {
                p.send("members");
                self.asked[i].push_back(round);
            }
        }
    }

    /// Whether the last round answered by everyone shows every live node
    /// alive everywhere.
    fn formed(&self) -> bool {
        let Some(round) = self.record.rounds.len().checked_sub(1) else {
            return false;
        };
        let live: Vec<usize> = (0..self.opts.nodes).filter(|&i| self.live(i)).collect();
        live.iter().all(|&o| {
            self.record
                .polls
                .iter()
                .rev()
                .find(|p| p.observer == o && p.round == round)
                .is_some_and(|p| {
                    p.members.len() == live.len()
                        && p.members
                            .iter()
                            .all(|&(m, suspect)| !suspect && live.contains(&m))
                })
        })
    }

    fn live_seeds(&self, except: usize) -> Vec<usize> {
        let mut seeds: Vec<usize> = (0..self.opts.nodes)
            .filter(|&j| j != except && self.live(j))
            .collect();
        // A few, spread over the cluster, the same for the same history.
        let len = seeds.len();
        if len > 3 {
            let first = except % len;
            seeds = (0..3).map(|k| seeds[(first + k * len / 3) % len]).collect();
        }
        seeds
    }

    fn broadcast(&self, command: &str) {
        for i in 0..self.opts.nodes {
            if self.live(i) {
                if let Some(p) = &self.procs[i] {
                    p.send(command);
                }
            }
        }
    }

    fn threads(pid: Pid) -> Vec<i32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Pins every thread of node `i` to `cpus`, under SCHED_IDLE (it runs
    /// only when nothing else on the CPU wants to) or back under
    /// SCHED_OTHER.
    fn pin(&self, i: usize, cpus: &CpuSet, idle: bool) {
        let Some(p) = &self.procs[i] else { return };
        for tid in Self::threads(p.pid()) {
            let _ = sched_setaffinity(Pid::from_raw(tid), cpus);
            let _ = Command::new("chrt")
                .args([
                    if idle { "--idle" } else { "--other" },
                    "-p",
                    "0",
                    &tid.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    fn act(&mut self, action: &Action) -> Result<(), String> {
        self.log(&format!("{action:?}"));
        match action {
            Action::Net { id, rules } => {
                if let Some(fw) = &mut self.firewall {
                    fw.set(*id, rules.clone())?;
                }
            }
            Action::Unnet { id } => {
                if let Some(fw) = &mut self.firewall {
                    fw.clear(*id)?;
                }
            }
            Action::Kill(nodes) => {
                for &i in nodes {
                    if let Some(p) = self.procs[i].take() {
                        p.kill();
                    }
                    self.end_life(i, Ended::Crash);
                }
            }
            Action::Start(nodes) => {
                for &i in nodes {
                    if let Some(p) = self.procs[i].take() {
                        p.kill();
                    }
                    let seeds = self.live_seeds(i);
                    self.start(i, seeds)?;
                }
            }
            Action::Leave { nodes, sigterm } => {
                for &i in nodes {
                    let Some(p) = &self.procs[i] else { continue };
                    if *sigterm {
                        p.signal(Signal::SIGTERM);
                        let how = if self.kinds[i] == Kind::Go {
                            Ended::Crash
                        } else {
                            Ended::Leave
                        };
                        self.end_life(i, how);
                    } else {
                        p.send("leave");
                        let gen = p.gen;
                        self.quits
                            .push((Instant::now() + Duration::from_secs(7), i, gen));
                        self.end_life(i, Ended::Leave);
                    }
                }
            }
            Action::Stop(nodes) => {
                for &i in nodes {
                    if let Some(p) = &self.procs[i] {
                        p.signal(Signal::SIGSTOP);
                    }
                }
            }
            Action::Cont(nodes) => {
                for &i in nodes {
                    if let Some(p) = &self.procs[i] {
                        p.signal(Signal::SIGCONT);
                    }
                }
            }
            Action::Starve {
                nodes,
                burners,
                length,
                realtime,
            } => {
                let all = self
                    .all_cpus
                    .ok_or("starve: cannot read this process's CPUs")?;
                let cpu = (0..CpuSet::count())
                    .rev()
                    .find(|&c| all.is_set(c).unwrap_or(false))
                    .ok_or("starve: no CPU")?;
                let mut one = CpuSet::new();
                one.set(cpu).map_err(|e| e.to_string())?;
                for &i in nodes {
                    self.pin(i, &one, !realtime);
                }
                for _ in 0..*burners {
                    let mut burner = if *realtime {
                        let mut c = Command::new("chrt");
                        c.args(["--fifo", "1"]).arg(&self.exe);
                        c
                    } else {
                        Command::new(&self.exe)
                    };
                    let child = burner
                        .args([
                            "burn",
                            "--cpu",
                            &cpu.to_string(),
                            "--millis",
                            &length.as_millis().to_string(),
                        ])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .process_group(0)
                        .spawn()
                        .map_err(|e| format!("starve: cannot start a burner: {e}"))?;
                    self.burners.push(child);
                }
            }
            Action::Feed(nodes) => {
                let all = self
                    .all_cpus
                    .ok_or("feed: cannot read this process's CPUs")?;
                for &i in nodes {
                    self.pin(i, &all, false);
                }
                for mut b in self.burners.drain(..) {
                    let _ = b.kill();
                    let _ = b.wait();
                }
            }
            Action::KeyAdd(k) => {
                let key = key_hex(self.opts.seed, *k);
                self.keys.push(key.clone());
                self.broadcast(&format!("key-add {key}"));
            }
            Action::KeyUse(k) => {
                let key = key_hex(self.opts.seed, *k);
                self.keys.retain(|x| *x != key);
                self.keys.insert(0, key.clone());
                self.broadcast(&format!("key-use {key}"));
            }
            Action::KeyRemove(k) => {
                let key = key_hex(self.opts.seed, *k);
                self.keys.retain(|x| *x != key);
                self.broadcast(&format!("key-remove {key}"));
            }
        }
        Ok(())
    }
}

use std::os::unix::process::CommandExt;

/// Runs the scenario; `stop` (set by a signal handler) aborts it.
pub fn run(opts: &Options, stop: &AtomicBool) -> Result<Record, String> {
    let n = opts.nodes;
    let kinds: Vec<Kind> = (0..n).map(|i| opts.mix[i % opts.mix.len()]).collect();
    let go: Vec<bool> = kinds.iter().map(|&k| k == Kind::Go).collect();
    let plan = Plan::new(&opts.scenario, n, opts.seed, &go).map_err(|e| e.to_string())?;
    let layout = Layout::new(n, opts.slot);
    layout.check()?;
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    for i in 0..n {
        let _ = std::fs::remove_file(opts.out.join(format!("{}.log", node_name(i))));
    }
    let stale = crate::firewall::remove_stale_tables();
    if !stale.is_empty() {
        eprintln!(
            "swim-chaos: removed tables of runs that died: {}",
            stale.join(", ")
        );
    }
    let (lines_tx, lines) = mpsc::channel();
    let keys = if opts.scenario.needs_keys() {
        vec![key_hex(opts.seed, 0)]
    } else {
        Vec::new()
    };
    let grace = opts.scenario.grace_for(n).as_millis() as i64;
    let mut bed = Bed {
        opts,
        layout,
        kinds: kinds.clone(),
        firewall: None,
        procs: (0..n).map(|_| None).collect(),
        gens: vec![0; n],
        burners: Vec::new(),
        lines_tx,
        lines,
        t0: Instant::now(),
        keys,
        asked: vec![VecDeque::new(); n],
        ready: vec![false; n],
        quits: Vec::new(),
        all_cpus: sched_getaffinity(Pid::from_raw(0)).ok(),
        exe: std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?,
        record: Record {
            meta: Meta {
                scenario: opts.scenario_name.clone(),
                mix: opts.mix_label.clone(),
                kinds,
                seed: opts.seed,
                lifeguard: opts.lifeguard,
                preset: opts.scenario.preset.name().into(),
                grace,
                no_false_deaths: opts.scenario.no_false_deaths,
                heal_allowance: opts.scenario.heal_allowance().as_millis() as i64,
                formed_in: 0,
            },
            plan: plan.clone(),
            lives: Vec::new(),
            rounds: Vec::new(),
            events: Vec::new(),
            polls: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
        },
    };
    bed.firewall = Some(Firewall::create(layout)?);
    let interrupted = || -> Result<(), String> {
        if stop.load(Ordering::Relaxed) {
            Err("interrupted".into())
        } else {
            Ok(())
        }
    };

    // Start: node 0 alone, then the others through the first three.
    let begin = Instant::now();
    bed.start(0, Vec::new())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bed.ready[0] {
        interrupted()?;
        if Instant::now() > deadline {
            return Err(format!(
                "n00 did not start within 20 s: see {}",
                opts.out.join("n00.log").display()
            ));
        }
        bed.pump(Instant::now() + Duration::from_millis(50));
    }
    for i in 1..n {
        interrupted()?;
        bed.start(i, (0..i.min(3)).collect())?;
        bed.pump(Instant::now() + Duration::from_millis(30));
    }
    let formed_by = Instant::now() + opts.scenario.startup;
    loop {
        interrupted()?;
        let round_at = Instant::now();
        bed.poll();
        bed.pump(round_at + opts.scenario.poll);
        if bed.formed() {
            break;
        }
        if Instant::now() > formed_by {
            let answered = bed
                .record
                .polls
                .iter()
                .filter(|p| Some(p.round) == bed.record.rounds.len().checked_sub(1))
                .count();
            return Err(format!(
                "the cluster did not form within {} ({answered} of {n} nodes answered the last \
                 round): see the logs in {}",
                humantime::format_duration(opts.scenario.startup),
                opts.out.display()
            ));
        }
    }
    bed.record.meta.formed_in = begin.elapsed().as_millis() as i64;
    bed.log(&format!("formed in {:.1}s", begin.elapsed().as_secs_f64()));
    let settle_until = Instant::now() + opts.scenario.settle;
    while Instant::now() < settle_until {
        interrupted()?;
        bed.pump(settle_until.min(Instant::now() + Duration::from_millis(100)));
    }

    // The phases. Times before now become negative.
    let t0 = Instant::now();
    let shift = ms(t0, bed.t0);
    bed.t0 = t0;
    for l in &mut bed.record.lives {
        l.start -= shift;
    }
    for r in &mut bed.record.rounds {
        *r -= shift;
    }
    for p in &mut bed.record.polls {
        p.t -= shift;
    }
    for e in &mut bed.record.events {
        e.t -= shift;
    }
    for e in &mut bed.record.errors {
        e.t -= shift;
    }
    let end = t0 + plan.end;
    let mut next_step = 0;
    let mut next_poll = t0;
    loop {
        interrupted()?;
        let now = Instant::now();
        while next_step < plan.steps.len() && t0 + plan.steps[next_step].at <= now {
            let action = plan.steps[next_step].action.clone();
            bed.act(&action)?;
            next_step += 1;
        }
        let due: Vec<(usize, u32)> = bed
            .quits
            .iter()
            .filter(|q| q.0 <= now)
            .map(|q| (q.1, q.2))
            .collect();
        bed.quits.retain(|q| q.0 > now);
        for (i, gen) in due {
            if bed.procs[i].as_ref().is_some_and(|p| p.gen == gen) {
                if let Some(p) = bed.procs[i].take() {
                    p.send("quit");
                    std::thread::sleep(Duration::from_millis(200));
                    p.kill();
                }
            }
        }
        if now >= next_poll {
            if now >= end {
                break;
            }
            bed.poll();
            next_poll += opts.scenario.poll;
        }
        let mut wake = next_poll.min(end);
        if let Some(s) = plan.steps.get(next_step) {
            wake = wake.min(t0 + s.at);
        }
        bed.pump(wake.min(Instant::now() + Duration::from_millis(100)));
        for i in 0..n {
            let live = bed.live(i);
            if let Some(p) = &mut bed.procs[i] {
                if p.exited() && live {
                    let gen = p.gen;
                    bed.record.notes.push(format!(
                        "{} (start {gen}) exited unasked: see its log",
                        node_name(i)
                    ));
                    bed.end_life(i, Ended::Exited);
                }
            }
        }
    }
    // The final round: wait for every live node's answer (a few seconds at most).
    bed.poll();
    let last = bed.record.rounds.len() - 1;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        interrupted()?;
        bed.pump(Instant::now() + Duration::from_millis(100));
        let live: Vec<usize> = (0..n).filter(|&i| bed.live(i)).collect();
        let answered = live.iter().all(|&i| {
            bed.record
                .polls
                .iter()
                .any(|p| p.observer == i && p.round == last)
        });
        if answered {
            break;
        }
    }
    let mut record = bed.record.clone();
    record.events.sort_by_key(|e| e.t);
    record.polls.sort_by_key(|p| p.t);
    drop(bed);
    Ok(record)
}

/// The busy process of `starve`: spins on `cpu` for `millis`.
pub fn burn(cpu: usize, millis: u64) -> Result<(), String> {
    let mut one = CpuSet::new();
    one.set(cpu).map_err(|e| format!("--cpu {cpu}: {e}"))?;
    sched_setaffinity(Pid::from_raw(0), &one).map_err(|e| format!("--cpu {cpu}: {e}"))?;
    let until = Instant::now() + Duration::from_millis(millis);
    let mut x = 0u64;
    while Instant::now() < until {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_back_to_nodes() {
        assert_eq!(parse_node("n07", 10), Some(7));
        assert_eq!(parse_node("n10", 10), None);
        assert_eq!(parse_node("x01", 10), None);
        assert_eq!(parse_node("n", 10), None);
    }

    #[test]
    fn times_are_signed_from_the_start() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(ms(later, t0), 1500);
        assert_eq!(ms(t0, later), -1500);
    }
}
