//! The network model: per-link latency, loss, duplication, reordering,
//! partitions (full, one-way, partial), and the reliable (TCP) plane.

use std::time::Duration;

use crate::rng::{derive, mix64, unit_f64, SimRng};
use crate::time::nanos;

/// The distribution each link's base one-way latency is drawn from (once
/// per link, from the seed: a link keeps its latency for the whole run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Every link has the same latency.
    Fixed(Duration),
    /// Uniform between the two bounds.
    Uniform(Duration, Duration),
    /// Log-normal around `median` with shape `sigma` (a long tail of slow
    /// links, as in a real data centre).
    LogNormal {
        /// The median link latency.
        median: Duration,
        /// The standard deviation of the latency's logarithm.
        sigma: f64,
    },
}

impl Latency {
    /// The latency at quantile `u` in `[0, 1)`.
    pub fn quantile(&self, u: f64) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(a, b) => a + (b.saturating_sub(a)).mul_f64(u),
            Latency::LogNormal { median, sigma } => {
                let z = normal_quantile(u.clamp(1e-9, 1.0 - 1e-9));
                median.mul_f64(libm::exp(sigma * z).min(1e3))
            }
        }
    }
}

/// Acklam's rational approximation of the standard normal quantile
/// (relative error < 1.2e-9), from basic arithmetic and `libm` only, so
/// every platform draws the same latencies.
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail(libm::sqrt(-2.0 * libm::log(p)))
    } else if p > 1.0 - 0.02425 {
        -tail(libm::sqrt(-2.0 * libm::log(1.0 - p)))
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// How datagrams and streams travel.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkModel {
    /// Base one-way latency per link.
    pub latency: Latency,
    /// Extra per-datagram delay, uniform in `[0, jitter)`; datagrams on one
    /// link overtake each other when it exceeds their spacing.
    pub jitter: Duration,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back by up to `reorder_delay` more,
    /// so later ones overtake it.
    pub reorder: f64,
    /// The most a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Bytes per second of one stream (TCP) transfer, which adds
    /// `bytes / bandwidth` to an exchange (large push/pulls take longer).
    pub stream_bandwidth: u64,
    /// Probability a stream fails: its connection, or its reply, never
    /// arrives and the initiator times out (TCP under heavy segment loss,
    /// whose retransmissions come after the exchange's deadline).
    pub stream_loss: f64,
}

impl Default for NetworkModel {
    /// A data-centre LAN: 0.2–1 ms links, 100 µs jitter, no loss, 1 Gbit/s
    /// streams.
    fn default() -> Self {
        NetworkModel {
            latency: Latency::Uniform(Duration::from_micros(200), Duration::from_millis(1)),
            jitter: Duration::from_micros(100),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(20),
            stream_bandwidth: 125_000_000,
            stream_loss: 0.0,
        }
    }
}

/// An active partition.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    /// Side A membership, one bit per node.
    pub(crate) side_a: Vec<u64>,
    pub(crate) one_way: bool,
    /// Fraction of A–B links cut.
    pub(crate) links: f64,
    /// Salt for the per-link choice of a partial partition.
    pub(crate) salt: u64,
    /// Active from (inclusive) until (exclusive), in nanoseconds.
    pub(crate) from: u64,
    pub(crate) until: u64,
}

impl Partition {
    pub(crate) fn in_a(&self, i: usize) -> bool {
        self.side_a[i / 64] >> (i % 64) & 1 == 1
    }

    /// Whether `from → to` is cut.
    pub(crate) fn cuts(&self, from: usize, to: usize) -> bool {
        let (a_from, a_to) = (self.in_a(from), self.in_a(to));
        if a_from == a_to {
            return false;
        }
        if self.one_way && !a_from {
            return false; // B → A still flows
        }
        if self.links >= 1.0 {
            return true;
        }
        let (x, y) = (from.min(to) as u64, from.max(to) as u64);
        unit_f64(mix64(self.salt ^ mix64(x << 32 | y))) < self.links
    }
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Lost (or cut by a partition).
    Lost,
    /// Delivered after this many nanoseconds, and maybe a copy later.
    Delivered(u64, Option<u64>),
}

/// Every link's base latency: fixed for the run, a pure function of the
/// seed and the two ends, so any thread may read it.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    latency: Latency,
    seed: u64,
}

impl Links {
    /// The base one-way latency of the link between `a` and `b`
    /// (symmetric).
    pub(crate) fn latency(&self, a: usize, b: usize) -> u64 {
        let (x, y) = (a.min(b) as u64, a.max(b) as u64);
        let u = unit_f64(mix64(self.seed ^ mix64(x << 32 | y)));
        nanos(self.latency.quantile(u)).max(1)
    }

    /// The least latency any link can have: nothing one node sends reaches
    /// another sooner.
    pub(crate) fn min_latency(&self) -> u64 {
        nanos(self.latency.quantile(0.0)).max(1)
    }
}

/// The network's state during a run.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub(crate) model: NetworkModel,
    pub(crate) links: Links,
    rng: SimRng,
    pub(crate) partitions: Vec<Partition>,
    /// Extra loss bursts: (rate, until ns).
    pub(crate) bursts: Vec<(f64, u64)>,
}

impl Network {
    pub(crate) fn new(model: NetworkModel, seed: u64) -> Self {
        Network {
            links: Links {
                latency: model.latency,
                seed: derive(seed, 2, 0),
            },
            model,
            rng: SimRng::new(derive(seed, 3, 0)),
            partitions: Vec::new(),
            bursts: Vec::new(),
        }
    }

    /// Drops partitions and loss bursts that ended at or before `now`.
    pub(crate) fn expire(&mut self, now: u64) {
        self.partitions.retain(|p| p.until > now);
        self.bursts.retain(|&(_, until)| until > now);
    }

    /// Whether a partition in force at `now` cuts node `i` off from some
    /// node, either way.
    pub(crate) fn partitioned(&self, i: usize, now: u64) -> bool {
        self.partitions.iter().any(|p| {
            p.from <= now && now < p.until && {
                let n = p.side_a.len() * 64;
                (0..n).any(|j| p.cuts(i, j) || p.cuts(j, i))
            }
        })
    }

    /// Ends every partition and loss burst at `now`.
    pub(crate) fn heal(&mut self, now: u64) {
        for p in &mut self.partitions {
            p.until = p.until.min(now);
        }
        self.bursts.clear();
    }

    /// Whether a partition cuts `from → to` at `now`.
    pub(crate) fn cut(&self, from: usize, to: usize, now: u64) -> bool {
        self.partitions
            .iter()
            .any(|p| p.from <= now && now < p.until && p.cuts(from, to))
    }

    /// The fate of a datagram from `from` to `to` sent at `now`.
    pub(crate) fn datagram(&mut self, from: usize, to: usize, now: u64) -> Fate {
        if self.cut(from, to, now) {
            return Fate::Lost;
        }
        let mut loss = self.model.loss;
        for &(rate, until) in &self.bursts {
            if now < until {
                loss = 1.0 - (1.0 - loss) * (1.0 - rate);
            }
        }
        if self.rng.chance(loss) {
            return Fate::Lost;
        }
        let base = self.links.latency(from, to);
        let delay = base + self.jitter() + self.reorder();
        let copy = self
            .rng
            .chance(self.model.duplicate)
            .then(|| base + self.jitter() + self.reorder());
        Fate::Delivered(delay, copy)
    }

    fn jitter(&mut self) -> u64 {
        self.rng.below(nanos(self.model.jitter))
    }

    fn reorder(&mut self) -> u64 {
        if self.rng.chance(self.model.reorder) {
            self.rng.below(nanos(self.model.reorder_delay))
        } else {
            0
        }
    }

    /// Whether a stream connection or reply is lost. Draws from the
    /// network's randomness only when streams can be lost (as `chance`
    /// does), so runs without stream loss keep their traces.
    pub(crate) fn stream_lost(&mut self) -> bool {
        self.rng.chance(self.model.stream_loss)
    }

    /// One-way delay of a stream segment carrying `bytes`: the link, plus
    /// jitter, plus the transfer time.
    pub(crate) fn stream_leg(&mut self, from: usize, to: usize, bytes: usize) -> u64 {
        let transfer = (bytes as u128 * 1_000_000_000 / self.model.stream_bandwidth.max(1) as u128)
            .min(u64::MAX as u128) as u64;
        self.links.latency(from, to) + self.jitter() + transfer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_distributions() {
        let l = Latency::Uniform(Duration::from_millis(1), Duration::from_millis(3));
        assert_eq!(l.quantile(0.5), Duration::from_millis(2));
        let ln = Latency::LogNormal {
            median: Duration::from_millis(2),
            sigma: 0.5,
        };
        let med = ln.quantile(0.5);
        assert!(med > Duration::from_micros(1990) && med < Duration::from_micros(2010));
        assert!(ln.quantile(0.99) > Duration::from_millis(5));
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.01) + 2.326_348).abs() < 1e-5);
    }

    #[test]
    fn streams_are_lost_at_their_rate_and_only_then_draw() {
        let lossy = NetworkModel {
            stream_loss: 0.25,
            ..NetworkModel::default()
        };
        let mut net = Network::new(lossy, 7);
        let lost = (0..10_000).filter(|_| net.stream_lost()).count();
        assert!((2_300..2_700).contains(&lost), "{lost} of 10,000 lost");

        // Without stream loss, asking draws nothing: datagrams meet the
        // same fates as in a network never asked.
        let model = NetworkModel {
            loss: 0.5,
            ..NetworkModel::default()
        };
        let (mut asked, mut fresh) = (Network::new(model.clone(), 7), Network::new(model, 7));
        for _ in 0..100 {
            assert!(!asked.stream_lost());
            assert_eq!(asked.datagram(0, 1, 0), fresh.datagram(0, 1, 0));
        }
    }

    #[test]
    fn partitions_cut_what_they_say() {
        let mut side_a = vec![0u64; 1];
        side_a[0] = 0b11; // nodes 0, 1 on side A
        let mut p = Partition {
            side_a,
            one_way: false,
            links: 1.0,
            salt: 1,
            from: 0,
            until: u64::MAX,
        };
        assert!(p.cuts(0, 2) && p.cuts(2, 0) && !p.cuts(0, 1) && !p.cuts(2, 3));
        p.one_way = true;
        assert!(p.cuts(0, 2) && !p.cuts(2, 0));
        p.one_way = false;
        p.links = 0.5;
        let cut = (2..64).filter(|&b| p.cuts(0, b)).count();
        assert!((10..52).contains(&cut), "{cut}");
        assert_eq!(p.cuts(0, 5), p.cuts(5, 0));
    }
}
