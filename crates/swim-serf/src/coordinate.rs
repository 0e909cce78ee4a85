//! Network coordinates: Go Serf's `coordinate` package (Vivaldi with
//! height, an adjustment term and gravity, behind a latency filter) and
//! the ping payload that carries a coordinate in memberlist's acks.
//!
//! The arithmetic follows Go's operation by operation, so that the same
//! updates give the same bits (`tests/golden.rs` checks a run against Go's
//! client).

use std::collections::HashMap;
use std::time::Duration;

use crate::messages::DecodeError;
use swim_core::wire::msgpack::{self as mp, Reader};

/// The ping payload's version byte (Go's `PingVersion`).
pub const PING_VERSION: u8 = 1;

/// Below this, a distance or time is zero (Go's `zeroThreshold`).
const ZERO_THRESHOLD: f64 = 1.0e-6;

/// RTTs above this are refused (Go's `maxRTT`).
const MAX_RTT: Duration = Duration::from_secs(10);

/// The Vivaldi settings (Go's `coordinate.Config`).
#[derive(Debug, Clone, PartialEq)]
pub struct CoordinateConfig {
    /// Dimensions of the Euclidean part (Go: 8).
    pub dimensionality: usize,
    /// Most error a coordinate can have (Go: 1.5).
    pub vivaldi_error_max: f64,
    /// How fast the error estimate moves (Go: 0.25).
    pub vivaldi_ce: f64,
    /// How fast the coordinate moves (Go: 0.25).
    pub vivaldi_cc: f64,
    /// Samples averaged into the adjustment term; 0 turns it off (Go: 20).
    pub adjustment_window_size: usize,
    /// Smallest height, in seconds (Go: 10 µs).
    pub height_min: f64,
    /// RTT samples per node whose median is used (Go: 3).
    pub latency_filter_size: usize,
    /// Strength of the pull towards the origin (Go: 150).
    pub gravity_rho: f64,
}

impl Default for CoordinateConfig {
    fn default() -> Self {
        CoordinateConfig {
            dimensionality: 8,
            vivaldi_error_max: 1.5,
            vivaldi_ce: 0.25,
            vivaldi_cc: 0.25,
            adjustment_window_size: 20,
            height_min: 10.0e-6,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

/// A network coordinate (Go's `coordinate.Coordinate`); distances in
/// seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Coordinate {
    /// The Euclidean part.
    pub vec: Vec<f64>,
    /// How uncertain it is.
    pub error: f64,
    /// A per-node offset added to distances.
    pub adjustment: f64,
    /// The distance from the node to the core of the network.
    pub height: f64,
}

impl Coordinate {
    /// The origin with the most error (Go's `NewCoordinate`).
    pub fn new(config: &CoordinateConfig) -> Coordinate {
        Coordinate {
            vec: vec![0.0; config.dimensionality],
            error: config.vivaldi_error_max,
            adjustment: 0.0,
            height: config.height_min,
        }
    }

    /// Every component finite.
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|f| f.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }

    /// Same dimensionality.
    pub fn is_compatible_with(&self, other: &Coordinate) -> bool {
        self.vec.len() == other.vec.len()
    }

    /// The estimated round-trip time to `other` (Go's `DistanceTo`); `None`
    /// if their dimensions differ.
    pub fn distance_to(&self, other: &Coordinate) -> Option<Duration> {
        if !self.is_compatible_with(other) {
            return None;
        }
        let mut dist = self.raw_distance_to(other);
        let adjusted = dist + self.adjustment + other.adjustment;
        if adjusted > 0.0 {
            dist = adjusted;
        }
        // Go's time.Duration(dist * 1e9): truncated to whole nanoseconds.
        Some(Duration::from_nanos((dist * 1.0e9) as u64))
    }

    fn raw_distance_to(&self, other: &Coordinate) -> f64 {
        magnitude(&diff(&self.vec, &other.vec)) + self.height + other.height
    }

    /// Go's `ApplyForce`: moved by `force` along the line from `other`.
    fn apply_force(
        &self,
        config: &CoordinateConfig,
        force: f64,
        other: &Coordinate,
        rng: &mut impl FnMut() -> f64,
    ) -> Coordinate {
        let mut ret = self.clone();
        let (unit, mag) = unit_vector_at(&self.vec, &other.vec, rng);
        ret.vec = add(&ret.vec, &mul(&unit, force));
        if mag > ZERO_THRESHOLD {
            ret.height = (ret.height + other.height) * force / mag + ret.height;
            ret.height = ret.height.max(config.height_min);
        }
        ret
    }

    /// The msgpack map Go writes (fields sorted: `Adjustment, Error,
    /// Height, Vec`; every float a float64).
    pub fn encode(&self, out: &mut Vec<u8>) {
        mp::put_map_len(out, 4);
        mp::put_key(out, "Adjustment");
        mp::put_f64(out, self.adjustment);
        mp::put_key(out, "Error");
        mp::put_f64(out, self.error);
        mp::put_key(out, "Height");
        mp::put_f64(out, self.height);
        mp::put_key(out, "Vec");
        mp::put_array_len(out, self.vec.len());
        for &v in &self.vec {
            mp::put_f64(out, v);
        }
    }

    /// Reads what [`encode`](Self::encode) writes (fields in any order,
    /// unknown ones skipped, as Go reads).
    pub fn decode(buf: &[u8]) -> Result<Coordinate, DecodeError> {
        let mut r = Reader::new(buf);
        let mut c = Coordinate {
            vec: Vec::new(),
            error: 0.0,
            adjustment: 0.0,
            height: 0.0,
        };
        r.struct_fields::<DecodeError>("Coordinate", |r, k| {
            match k {
                b"Adjustment" => c.adjustment = r.f64("Adjustment")?,
                b"Error" => c.error = r.f64("Error")?,
                b"Height" => c.height = r.f64("Height")?,
                b"Vec" => {
                    let n = r.array_len("Vec")?;
                    c.vec = (0..n).map(|_| r.f64("Vec")).collect::<Result<_, _>>()?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(c)
    }

    /// The payload of a Serf node's acks (Go's `pingDelegate.AckPayload`):
    /// [`PING_VERSION`], then the coordinate.
    pub fn to_ping_payload(&self) -> Vec<u8> {
        let mut out = vec![PING_VERSION];
        self.encode(&mut out);
        out
    }

    /// Reads an ack's payload (Go's `NotifyPingComplete`): `Ok(None)` for
    /// an empty one (a node without coordinates).
    pub fn from_ping_payload(payload: &[u8]) -> Result<Option<Coordinate>, DecodeError> {
        let Some((&version, body)) = payload.split_first() else {
            return Ok(None);
        };
        if version != PING_VERSION {
            return Err(DecodeError::UnknownType(version));
        }
        Coordinate::decode(body).map(Some)
    }
}

/// Why [`CoordinateClient::update`] refused an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinateError {
    /// The other coordinate's dimensions differ from ours.
    Incompatible,
    /// The other coordinate has a NaN or infinite component.
    Invalid,
    /// The RTT is over 10 s.
    RttOutOfRange(Duration),
}

impl std::fmt::Display for CoordinateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoordinateError::Incompatible => f.write_str("dimensions aren't compatible"),
            CoordinateError::Invalid => f.write_str("coordinate is invalid"),
            CoordinateError::RttOutOfRange(rtt) => {
                write!(f, "round trip time {rtt:?} not in valid range")
            }
        }
    }
}

impl std::error::Error for CoordinateError {}

/// This node's coordinate, updated from RTTs to other nodes (Go's
/// `coordinate.Client`).
#[derive(Debug, Clone)]
pub struct CoordinateClient {
    coord: Coordinate,
    origin: Coordinate,
    config: CoordinateConfig,
    adjustment_index: usize,
    adjustment_samples: Vec<f64>,
    latency_samples: HashMap<String, Vec<f64>>,
    resets: u64,
    /// For a direction when two coordinates coincide (Go: `rand.Float64`).
    rng: u64,
}

impl CoordinateClient {
    /// A client at the origin; `seed` drives the random direction taken
    /// when two coordinates coincide.
    pub fn new(config: CoordinateConfig, seed: u64) -> CoordinateClient {
        CoordinateClient {
            coord: Coordinate::new(&config),
            origin: Coordinate::new(&config),
            adjustment_index: 0,
            adjustment_samples: vec![0.0; config.adjustment_window_size],
            latency_samples: HashMap::new(),
            resets: 0,
            rng: seed,
            config,
        }
    }

    /// The current coordinate.
    pub fn coordinate(&self) -> &Coordinate {
        &self.coord
    }

    /// Times the coordinate became invalid and was reset.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Forgets a node's RTT samples (Go's `ForgetNode`).
    pub fn forget_node(&mut self, node: &str) {
        self.latency_samples.remove(node);
    }

    /// The estimated RTT to `other`.
    pub fn distance_to(&self, other: &Coordinate) -> Option<Duration> {
        self.coord.distance_to(other)
    }

    /// Takes in an RTT to `node`, whose coordinate is `other` (Go's
    /// `Update`); returns the new coordinate.
    pub fn update(
        &mut self,
        node: &str,
        other: &Coordinate,
        rtt: Duration,
    ) -> Result<&Coordinate, CoordinateError> {
        if !self.coord.is_compatible_with(other) {
            return Err(CoordinateError::Incompatible);
        }
        if !other.is_valid() {
            return Err(CoordinateError::Invalid);
        }
        if rtt > MAX_RTT {
            return Err(CoordinateError::RttOutOfRange(rtt));
        }
        let rtt = self.latency_filter(node, duration_seconds(rtt));
        self.update_vivaldi(other, rtt);
        self.update_adjustment(other, rtt);
        self.update_gravity();
        if !self.coord.is_valid() {
            self.resets += 1;
            self.coord = Coordinate::new(&self.config);
        }
        Ok(&self.coord)
    }

    /// The median of the node's last few samples.
    fn latency_filter(&mut self, node: &str, rtt: f64) -> f64 {
        let samples = self.latency_samples.entry(node.to_owned()).or_default();
        samples.push(rtt);
        if samples.len() > self.config.latency_filter_size {
            samples.remove(0);
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    fn update_vivaldi(&mut self, other: &Coordinate, rtt: f64) {
        let c = &self.config;
        let dist = duration_seconds(self.coord.distance_to(other).unwrap_or_default());
        let rtt = rtt.max(ZERO_THRESHOLD);
        let wrongness = (dist - rtt).abs() / rtt;
        let total_error = (self.coord.error + other.error).max(ZERO_THRESHOLD);
        let weight = self.coord.error / total_error;
        self.coord.error =
            c.vivaldi_ce * weight * wrongness + self.coord.error * (1.0 - c.vivaldi_ce * weight);
        if self.coord.error > c.vivaldi_error_max {
            self.coord.error = c.vivaldi_error_max;
        }
        let delta = c.vivaldi_cc * weight;
        let force = delta * (rtt - dist);
        let mut rng = rng_f64(&mut self.rng);
        self.coord = self.coord.apply_force(c, force, other, &mut rng);
    }

    fn update_adjustment(&mut self, other: &Coordinate, rtt: f64) {
        let window = self.config.adjustment_window_size;
        if window == 0 {
            return;
        }
        let dist = self.coord.raw_distance_to(other);
        self.adjustment_samples[self.adjustment_index] = rtt - dist;
        self.adjustment_index = (self.adjustment_index + 1) % window;
        let sum: f64 = self.adjustment_samples.iter().fold(0.0, |a, s| a + s);
        self.coord.adjustment = sum / (2.0 * window as f64);
    }

    fn update_gravity(&mut self) {
        let dist = duration_seconds(self.origin.distance_to(&self.coord).unwrap_or_default());
        // Go's math.Pow(x, 2) squares the mantissa: the same as x * x.
        let scaled = dist / self.config.gravity_rho;
        let force = -(scaled * scaled);
        let mut rng = rng_f64(&mut self.rng);
        self.coord = self
            .coord
            .apply_force(&self.config, force, &self.origin, &mut rng);
    }
}

/// Go's `Duration.Seconds()`: whole seconds plus the nanoseconds' fraction.
fn duration_seconds(d: Duration) -> f64 {
    let nanos = d.as_nanos() as i64;
    let sec = nanos / 1_000_000_000;
    let nsec = nanos % 1_000_000_000;
    sec as f64 + nsec as f64 / 1e9
}

/// Uniform floats in [0, 1) from a splitmix64 state.
fn rng_f64(state: &mut u64) -> impl FnMut() -> f64 + '_ {
    move || {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn mul(v: &[f64], factor: f64) -> Vec<f64> {
    v.iter().map(|x| x * factor).collect()
}

fn magnitude(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |sum, x| sum + x * x).sqrt()
}

/// Go's `unitVectorAt`: the unit vector from `b` to `a` and the distance;
/// a random direction (distance 0) when they coincide.
fn unit_vector_at(a: &[f64], b: &[f64], rng: &mut impl FnMut() -> f64) -> (Vec<f64>, f64) {
    let mut ret = diff(a, b);
    let mag = magnitude(&ret);
    if mag > ZERO_THRESHOLD {
        return (mul(&ret, 1.0 / mag), mag);
    }
    for x in ret.iter_mut() {
        *x = rng() - 0.5;
    }
    let mag = magnitude(&ret);
    if mag > ZERO_THRESHOLD {
        return (mul(&ret, 1.0 / mag), 0.0);
    }
    let mut ret = vec![0.0; ret.len()];
    if let Some(first) = ret.first_mut() {
        *first = 1.0;
    }
    (ret, 0.0)
}
