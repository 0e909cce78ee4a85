//! What a run simulates: cluster size, configuration, network, faults.
//!
//! A [`Scenario`] plus its seed is the whole input of a run: the same
//! scenario run twice gives the same [`Report::trace_hash`](crate::Report).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use swim_core::Config;

use crate::network::NetworkModel;

/// Which of memberlist's configuration presets every node starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// [`Config::lan`]: probe every 1 s, gossip to 3 nodes every 200 ms.
    Lan,
    /// [`Config::wan`]: probe every 5 s, gossip to 4 nodes every 500 ms.
    Wan,
    /// [`Config::local`]: the LAN timings with faster gossip and suspicion.
    Local,
}

impl Preset {
    /// The preset's configuration for one node.
    pub fn config(self, name: &str, addr: SocketAddr) -> Config {
        match self {
            Preset::Lan => Config::lan(name, addr),
            Preset::Wan => Config::wan(name, addr),
            Preset::Local => Config::local(name, addr),
        }
    }

    /// `lan`, `wan` or `local`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Lan => "lan",
            Preset::Wan => "wan",
            Preset::Local => "local",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lan" => Ok(Preset::Lan),
            "wan" => Ok(Preset::Wan),
            "local" => Ok(Preset::Local),
            _ => Err(format!("unknown config `{s}` (expected lan, wan or local)")),
        }
    }
}

/// How the cluster comes together at the start.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// Every node starts at time zero and, 1 ms later, receives an alive
    /// message for every node at incarnation 1, packed in LAN-sized
    /// datagrams (encoded once, shared, read one at a time as from a socket):
    /// the full member list without join traffic. (Like any join, it fills
    /// every node's broadcast queue with what it learnt.)
    Warm,
    /// Like [`Warm`](Start::Warm), then every node forgets the broadcasts that taught it the
    /// member list ([`Swim::forget_membership_gossip`](swim_core::Swim::forget_membership_gossip)):
    /// a cluster that formed long ago, without the join storm.
    Formed,
    /// The real thing: `seeds` seed nodes start first; every other node
    /// starts at a uniformly random time in `[0, window)` and joins
    /// through one random seed with a push/pull. Failed joins are retried
    /// every second, as an agent's retry-join would.
    Bootstrap {
        /// How many seed nodes.
        seeds: usize,
        /// Over how long the joins are spread.
        window: Duration,
    },
}

/// How many nodes a fault takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// A fraction of the cluster size (rounded, at least one if positive).
    Fraction(f64),
    /// An exact count.
    Count(usize),
}

impl Amount {
    /// The count out of `n` nodes.
    pub fn of(self, n: usize) -> usize {
        match self {
            Amount::Count(c) => c.min(n),
            Amount::Fraction(f) => {
                if f <= 0.0 {
                    0
                } else {
                    ((f * n as f64).round() as usize).clamp(1, n)
                }
            }
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Fraction(x) => write!(f, "{}%", x * 100.0),
            Amount::Count(c) => write!(f, "{c}"),
        }
    }
}

/// Something that happens to nodes or the network at a set time. Nodes are
/// chosen at that time, at random (from the run's seed), among the nodes the
/// fault can apply to.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Running nodes stop dead: no more input, output or timers.
    Crash {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
    },
    /// Running nodes crash at `at` and come back `down_for` later with the
    /// same name and address but fresh state (a process restart), then
    /// join through the seeds.
    Restart {
        /// How many.
        amount: Amount,
        /// When they crash.
        at: Duration,
        /// How long they stay down.
        down_for: Duration,
    },
    /// Running nodes leave gracefully ([`swim_core::Swim::leave`]) and shut
    /// down when the leave completes.
    Leave {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
        /// The leave's timeout.
        timeout: Duration,
    },
    /// Running nodes stop processing for `duration`: their input queues up
    /// and their timers wait; then they process all of it at once, late
    /// (timers first, then the queued input in arrival order). With `every`,
    /// each node's first stall starts at a random time in `[at, at + every)`
    /// and repeats every `every` until the run ends.
    Stall {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
        /// How long each stall lasts.
        duration: Duration,
        /// Repeat period, if any.
        every: Option<Duration>,
    },
    /// Running nodes become slow for `duration`: every input waits `delay`
    /// before it is processed (in order), while timers fire on time — a
    /// CPU-starved process, the case the Lifeguard paper measures: its
    /// probes time out before it reads the acks.
    Slow {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
        /// For how long.
        duration: Duration,
        /// How late each input is processed.
        delay: Duration,
    },
    /// The network splits: `amount` nodes (side A) and the rest (side B).
    Partition {
        /// How many nodes on side A.
        amount: Amount,
        /// When it starts.
        at: Duration,
        /// How long it lasts.
        duration: Duration,
        /// Only traffic from A to B is lost (B still reaches A).
        one_way: bool,
        /// The fraction of A–B links cut (1.0: all; less: a partial
        /// partition, where some pairs still talk and can relay).
        links: f64,
    },
    /// Extra packet loss for a while (on top of the network's).
    Loss {
        /// Loss probability per datagram.
        rate: f64,
        /// When it starts.
        at: Duration,
        /// How long it lasts.
        duration: Duration,
    },
    /// Running nodes change their metadata (a new incarnation), exercising
    /// the metadata invariant and dissemination.
    UpdateMeta {
        /// How many.
        amount: Amount,
        /// When.
        at: Duration,
    },
}

impl Fault {
    /// When the fault starts.
    pub fn at(&self) -> Duration {
        match *self {
            Fault::Crash { at, .. }
            | Fault::Restart { at, .. }
            | Fault::Leave { at, .. }
            | Fault::Stall { at, .. }
            | Fault::Slow { at, .. }
            | Fault::Partition { at, .. }
            | Fault::Loss { at, .. }
            | Fault::UpdateMeta { at, .. } => at,
        }
    }

    /// When its disturbance is over: the cluster should converge within the
    /// bound after the last fault's end (`None` for a stall that repeats
    /// until the run ends).
    pub fn ends(&self, run_end: Duration) -> Option<Duration> {
        match *self {
            Fault::Crash { at, .. } | Fault::UpdateMeta { at, .. } => Some(at),
            Fault::Leave { at, timeout, .. } => Some(at + timeout),
            Fault::Restart { at, down_for, .. } => Some(at + down_for),
            Fault::Stall {
                at,
                duration,
                every: None,
                ..
            }
            | Fault::Partition { at, duration, .. }
            | Fault::Slow { at, duration, .. }
            | Fault::Loss { at, duration, .. } => Some(at + duration),
            Fault::Stall { every: Some(_), .. } => (run_end > Duration::ZERO).then_some(run_end),
        }
    }
}

/// A hook that adjusts each node's [`Config`] after the preset (and the
/// scenario's own switches) are applied: `(node index, config)`.
pub type ConfigHook = Arc<dyn Fn(usize, &mut Config) + Send + Sync>;

/// Everything a run depends on, besides nothing: a run is a pure function of
/// its scenario.
#[derive(Clone)]
pub struct Scenario {
    /// Cluster size.
    pub nodes: usize,
    /// The one seed every random choice comes from.
    pub seed: u64,
    /// Simulated time to run.
    pub duration: Duration,
    /// Configuration preset.
    pub preset: Preset,
    /// Lifeguard on (the preset's values) or off: awareness disabled
    /// (`awareness_max_multiplier = 1`) and suspicion timeouts that do not
    /// shrink with confirmations (`suspicion_max_timeout_mult = 1`).
    pub lifeguard: bool,
    /// LZW compression of packets and streams (Go's default: on).
    pub compression: bool,
    /// How the cluster forms.
    pub start: Start,
    /// The network.
    pub network: NetworkModel,
    /// Faults, in any order.
    pub faults: Vec<Fault>,
    /// At this time a random running node updates its metadata, and the
    /// report follows that one update to every node (the dissemination
    /// curve).
    pub disseminate_at: Option<Duration>,
    /// How often the time series of the report are sampled.
    pub sample_interval: Duration,
    /// Check the invariants (on by default; off only to measure their cost).
    pub check_invariants: bool,
    /// Stop at the first invariant violation.
    pub stop_on_violation: bool,
    /// Most violations listed in the report (all are counted).
    pub max_violations_listed: usize,
    /// Per-node configuration hook, applied last.
    pub config_hook: Option<ConfigHook>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("nodes", &self.nodes)
            .field("seed", &self.seed)
            .field("duration", &self.duration)
            .field("preset", &self.preset)
            .field("lifeguard", &self.lifeguard)
            .field("compression", &self.compression)
            .field("start", &self.start)
            .field("network", &self.network)
            .field("faults", &self.faults)
            .field("disseminate_at", &self.disseminate_at)
            .field("config_hook", &self.config_hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// `nodes` nodes on `preset`, warm start, a clean LAN-like network, no
    /// faults, 60 simulated seconds.
    pub fn new(nodes: usize, seed: u64, preset: Preset) -> Scenario {
        Scenario {
            nodes,
            seed,
            duration: Duration::from_secs(60),
            preset,
            lifeguard: true,
            compression: true,
            start: Start::Warm,
            network: NetworkModel::default(),
            faults: Vec::new(),
            disseminate_at: None,
            sample_interval: Duration::from_secs(1),
            check_invariants: true,
            stop_on_violation: false,
            max_violations_listed: 100,
            config_hook: None,
        }
    }

    /// Sets the simulated duration.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Starts as a cluster formed long ago ([`Start::Formed`]).
    pub fn formed(mut self) -> Self {
        self.start = Start::Formed;
        self
    }

    /// Bootstraps through `seeds` seeds, joins spread over `window`.
    pub fn bootstrap(mut self, seeds: usize, window: Duration) -> Self {
        self.start = Start::Bootstrap { seeds, window };
        self
    }

    /// Adds a fault.
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }

    /// Sets the network model.
    pub fn network(mut self, n: NetworkModel) -> Self {
        self.network = n;
        self
    }

    /// Turns Lifeguard on or off.
    pub fn lifeguard(mut self, on: bool) -> Self {
        self.lifeguard = on;
        self
    }

    /// Follows one metadata update made at `at`.
    pub fn disseminate_at(mut self, at: Duration) -> Self {
        self.disseminate_at = Some(at);
        self
    }

    /// Adjusts every node's configuration.
    pub fn config_hook(
        mut self,
        hook: impl Fn(usize, &mut Config) + Send + Sync + 'static,
    ) -> Self {
        self.config_hook = Some(Arc::new(hook));
        self
    }

    /// The configuration of node `i`.
    pub fn node_config(&self, i: usize) -> Config {
        let mut c = self.preset.config(&node_name(i), node_addr(i));
        c.enable_compression = self.compression;
        if !self.lifeguard {
            c.awareness_max_multiplier = 1;
            c.suspicion_max_timeout_mult = 1;
        }
        if let Some(h) = &self.config_hook {
            h(i, &mut c);
        }
        c
    }

    /// The time after which the cluster must have converged: the end of the
    /// last fault (or the last join), plus [`convergence_bound`](Self::convergence_bound).
    /// `None` when that lies beyond the run.
    pub fn convergence_deadline(&self) -> Option<Duration> {
        let mut quiet = match &self.start {
            Start::Warm | Start::Formed => Duration::ZERO,
            Start::Bootstrap { window, .. } => *window,
        };
        for f in &self.faults {
            quiet = quiet.max(f.ends(self.duration)?);
        }
        if let Some(d) = self.disseminate_at {
            quiet = quiet.max(d);
        }
        let deadline = quiet + self.convergence_bound();
        (deadline <= self.duration).then_some(deadline)
    }

    /// How long after the last disturbance every live node must see every
    /// live node alive, derived from node 0's configuration: two scaled
    /// push/pull intervals (the anti-entropy guarantee: one to be picked,
    /// one for the stagger), the longest suspicion (a false suspicion must
    /// be refuted or expire), twice the TCP timeout (a push/pull that
    /// hangs), the gossip rounds that carry an update to N nodes
    /// (retransmit limit + log_fanout N), and five probe intervals.
    pub fn convergence_bound(&self) -> Duration {
        let c = self.node_config(0);
        let n = self.nodes.max(1);
        let pp = c.push_pull_interval_at(n);
        let susp_max = c.suspicion_timeouts(n).max;
        let retransmit = u32::try_from(c.retransmit_limit(n)).unwrap_or(u32::MAX);
        let fanout = (c.gossip_nodes.max(2)) as f64;
        let rounds = retransmit + (libm::log(n as f64) / libm::log(fanout)).ceil() as u32;
        2 * pp + susp_max + 2 * c.tcp_timeout + c.gossip_interval * rounds + 5 * c.probe_interval
    }
}

/// The name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// Node index from a name made by [`node_name`].
pub fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.parse().ok()
}

/// The address of node `i`: `10.x.y.z:7946` with `x.y.z` the index.
pub fn node_addr(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946))
}

/// Node index from an address made by [`node_addr`].
pub fn addr_index(a: SocketAddr) -> Option<usize> {
    match a {
        SocketAddr::V4(v4) if v4.port() == 7946 => {
            let [p, x, y, z] = v4.ip().octets();
            (p == 10).then_some(((x as usize) << 16) | ((y as usize) << 8) | z as usize)
        }
        _ => None,
    }
}

/// `d` in nanoseconds, saturating (about 584 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// ------------------------------------------------------------------ parsing

/// Parses a duration: `300s`, `1.5s`, `200ms`, `2m`, `1h`, `500us`, or a
/// bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let x: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}` (try 300s, 1.5s, 200ms, 2m)"))?;
    if !x.is_finite() || x < 0.0 {
        return Err(format!("bad duration `{s}`"));
    }
    let secs = match unit {
        "s" => x,
        "ms" => x / 1e3,
        "us" | "µs" => x / 1e6,
        "ns" => x / 1e9,
        "m" | "min" => x * 60.0,
        "h" => x * 3600.0,
        _ => return Err(format!("bad duration unit in `{s}` (s, ms, us, ns, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a probability: `5%` or `0.05`.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let x = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|x| x / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("bad fraction `{s}` (try 5% or 0.05)"))?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("fraction `{s}` out of 0..100%"));
    }
    Ok(x)
}

/// Parses an amount: `1%` (a fraction of the cluster) or `3` (nodes).
pub fn parse_amount(s: &str) -> Result<Amount, String> {
    if s.ends_with('%') {
        parse_fraction(s).map(Amount::Fraction)
    } else {
        s.trim()
            .parse::<usize>()
            .map(Amount::Count)
            .map_err(|_| format!("bad amount `{s}` (try 1% or 3)"))
    }
}

/// The parts of a fault spec `AMOUNT@START[+DURATION][,key=value|flag...]`.
#[derive(Debug)]
struct Spec<'a> {
    amount: Amount,
    at: Duration,
    duration: Option<Duration>,
    options: Vec<(&'a str, Option<&'a str>)>,
}

fn parse_spec(s: &str) -> Result<Spec<'_>, String> {
    let mut parts = s.split(',');
    let head = parts.next().unwrap_or("");
    let (amount, when) = head
        .split_once('@')
        .ok_or_else(|| format!("bad fault `{s}`: expected AMOUNT@START[+DURATION], e.g. 1%@60s"))?;
    let (at, duration) = match when.split_once('+') {
        Some((a, d)) => (parse_duration(a)?, Some(parse_duration(d)?)),
        None => (parse_duration(when)?, None),
    };
    let options = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p.trim(), None),
        })
        .collect();
    Ok(Spec {
        amount: parse_amount(amount)?,
        at,
        duration,
        options,
    })
}

fn no_options(s: &Spec<'_>, what: &str) -> Result<(), String> {
    match s.options.first() {
        Some((k, _)) => Err(format!("{what}: unknown option `{k}`")),
        None => Ok(()),
    }
}

impl Fault {
    /// Parses `--crash` (`1%@60s`).
    pub fn parse_crash(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        no_options(&p, "--crash")?;
        if p.duration.is_some() {
            return Err("--crash takes no +DURATION (use --restart to bring nodes back)".into());
        }
        Ok(Fault::Crash {
            amount: p.amount,
            at: p.at,
        })
    }

    /// Parses `--restart` (`1%@60s+30s`: crash at 60 s, back 30 s later).
    pub fn parse_restart(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        no_options(&p, "--restart")?;
        Ok(Fault::Restart {
            amount: p.amount,
            at: p.at,
            down_for: p
                .duration
                .ok_or("--restart needs +DURATION (how long the nodes stay down)")?,
        })
    }

    /// Parses `--leave` (`2@100s`, optionally `,timeout=5s`).
    pub fn parse_leave(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        let mut timeout = Duration::from_secs(5);
        for (k, v) in &p.options {
            match (*k, v) {
                ("timeout", Some(v)) => timeout = parse_duration(v)?,
                _ => return Err(format!("--leave: unknown option `{k}`")),
            }
        }
        Ok(Fault::Leave {
            amount: p.amount,
            at: p.at,
            timeout,
        })
    }

    /// Parses `--stall` (`10%@60s+20s`, optionally `,every=30s`).
    pub fn parse_stall(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        let mut every = None;
        for (k, v) in &p.options {
            match (*k, v) {
                ("every", Some(v)) => every = Some(parse_duration(v)?),
                _ => return Err(format!("--stall: unknown option `{k}`")),
            }
        }
        let duration = p.duration.ok_or("--stall needs +DURATION")?;
        if every.is_some_and(|e| e <= duration) {
            return Err("--stall: every= must be longer than the stall".into());
        }
        Ok(Fault::Stall {
            amount: p.amount,
            at: p.at,
            duration,
            every,
        })
    }

    /// Parses `--slow` (`10%@60s+120s`, optionally `,delay=1s`; default
    /// delay 600 ms).
    pub fn parse_slow(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        let mut delay = Duration::from_millis(600);
        for (k, v) in &p.options {
            match (*k, v) {
                ("delay", Some(v)) => delay = parse_duration(v)?,
                _ => return Err(format!("--slow: unknown option `{k}`")),
            }
        }
        Ok(Fault::Slow {
            amount: p.amount,
            at: p.at,
            duration: p.duration.ok_or("--slow needs +DURATION")?,
            delay,
        })
    }

    /// Parses `--partition` (`50%@60s+30s`, optionally `,oneway`,
    /// `,links=30%`).
    pub fn parse_partition(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        let (mut one_way, mut links) = (false, 1.0);
        for (k, v) in &p.options {
            match (*k, v) {
                ("oneway", None) => one_way = true,
                ("links", Some(v)) => links = parse_fraction(v)?,
                _ => return Err(format!("--partition: unknown option `{k}`")),
            }
        }
        Ok(Fault::Partition {
            amount: p.amount,
            at: p.at,
            duration: p.duration.ok_or("--partition needs +DURATION")?,
            one_way,
            links,
        })
    }

    /// Parses a timed loss burst `5%@60s+30s`.
    pub fn parse_loss_burst(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        no_options(&p, "--loss-burst")?;
        let rate = match p.amount {
            Amount::Fraction(f) => f,
            Amount::Count(_) => return Err("--loss-burst takes a percentage".into()),
        };
        Ok(Fault::Loss {
            rate,
            at: p.at,
            duration: p.duration.ok_or("--loss-burst needs +DURATION")?,
        })
    }

    /// Parses `--update-meta` (`5%@90s`).
    pub fn parse_update_meta(s: &str) -> Result<Fault, String> {
        let p = parse_spec(s)?;
        no_options(&p, "--update-meta")?;
        Ok(Fault::UpdateMeta {
            amount: p.amount,
            at: p.at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("x").is_err());
        assert_eq!(
            Fault::parse_crash("1%@60s").unwrap(),
            Fault::Crash {
                amount: Amount::Fraction(0.01),
                at: Duration::from_secs(60)
            }
        );
        assert_eq!(
            Fault::parse_partition("50%@60s+30s,oneway,links=20%").unwrap(),
            Fault::Partition {
                amount: Amount::Fraction(0.5),
                at: Duration::from_secs(60),
                duration: Duration::from_secs(30),
                one_way: true,
                links: 0.2
            }
        );
        assert!(Fault::parse_stall("10%@60s").is_err());
        assert!(Fault::parse_crash("1%@60s+3s").is_err());
        assert_eq!(Amount::Fraction(0.01).of(1000), 10);
        assert_eq!(Amount::Fraction(0.001).of(10), 1);
        assert_eq!(Amount::Count(7).of(5), 5);
    }

    #[test]
    fn addresses_and_names_round_trip() {
        for i in [0, 1, 255, 256, 9999, 70_000] {
            assert_eq!(addr_index(node_addr(i)), Some(i));
            assert_eq!(node_index(&node_name(i)), Some(i));
        }
    }
}
