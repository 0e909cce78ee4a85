//! Configuration: Go memberlist's knobs with its LAN, WAN and local presets
//! (docs/protocol.md §9.1), and validation that names the field that is wrong.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use crate::wire::{EncryptionVersion, Envelope, Keyring, Limits, WireError};

mod catch_up;
mod cidr;
mod derived;
mod preset;

pub use catch_up::CatchUp;
pub use cidr::Cidr;
pub(crate) use derived::retransmit_limit;
#[cfg(test)]
pub(crate) use derived::suspicion_timeouts;
pub use derived::SuspicionTimeouts;
pub use preset::Preset;

/// Lowest protocol version this implementation speaks.
pub const PROTOCOL_VERSION_MIN: u8 = 1;
/// Highest protocol version this implementation speaks (CRC, nacks, TCP pings).
pub const PROTOCOL_VERSION_MAX: u8 = 5;
/// Largest metadata a node may advertise (Go's `MetaMaxSize`).
pub const META_MAX_SIZE: usize = 512;

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field that is wrong.
    pub field: &'static str,
    /// Why.
    pub reason: &'static str,
}

impl ConfigError {
    fn new(field: &'static str, reason: &'static str) -> Self {
        ConfigError { field, reason }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config `{}`: {}", self.field, self.reason)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// Everything a [`Swim`](crate::Swim) node needs to know, named after Go
/// memberlist's `Config` fields.
///
/// Start from a preset — [`Config::lan`], [`Config::wan`], [`Config::local`],
/// or by name with [`Preset`] — and change what you need; [`Swim::new`](crate::Swim::new) validates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// This node's unique name in the cluster.
    #[doc(alias = "Name")]
    pub name: String,
    /// The address and port other nodes reach this node at (UDP and TCP).
    #[doc(alias = "AdvertiseAddr")]
    #[doc(alias = "AdvertisePort")]
    pub advertise: SocketAddr,
    /// Metadata announced from the start, at most [`META_MAX_SIZE`] bytes
    /// (change it later with [`Swim::update_meta`](crate::Swim::update_meta)).
    #[doc(alias = "NodeMeta")]
    pub meta: Vec<u8>,
    /// Protocol version spoken (1..=5; Go's default 2). Peers use every
    /// feature up to our maximum (5) towards us regardless.
    #[doc(alias = "ProtocolVersion")]
    pub protocol_version: u8,
    /// Application protocol versions advertised: `[min, max, current]`.
    #[doc(alias = "DelegateProtocolVersion")]
    #[doc(alias = "DelegateProtocolMin")]
    #[doc(alias = "DelegateProtocolMax")]
    pub delegate_protocol: [u8; 3],
    /// Deadline for stream exchanges (dial, write, read).
    #[doc(alias = "TCPTimeout")]
    pub tcp_timeout: Duration,
    /// Deadline for a join's push/pull with each seed (Go uses
    /// `tcp_timeout`). A seed answers a storm of joins one after another,
    /// each with its whole member table: a joiner that gives up before its
    /// turn retries and adds to the queue, while the seed still answers the
    /// one it abandoned (1,000 nodes joining one seed at once beside a busy
    /// core: 6–9 joins failed for good with Local's 1 s, none with 10 s).
    pub join_timeout: Duration,
    /// Members asked to probe a node that missed its direct ack.
    #[doc(alias = "IndirectChecks")]
    pub indirect_checks: usize,
    /// Retransmissions of a broadcast: `retransmit_mult × ceil(log10(n + 1))`.
    #[doc(alias = "RetransmitMult")]
    pub retransmit_mult: usize,
    /// Suspicion timeout multiplier (see docs/protocol.md §9.5).
    #[doc(alias = "SuspicionMult")]
    pub suspicion_mult: u32,
    /// Upper bound of the suspicion timeout as a multiple of its lower bound.
    #[doc(alias = "SuspicionMaxTimeoutMult")]
    pub suspicion_max_timeout_mult: u32,
    /// Interval of periodic push/pull anti-entropy (zero disables it).
    #[doc(alias = "PushPullInterval")]
    pub push_pull_interval: Duration,
    /// Interval between probes.
    #[doc(alias = "ProbeInterval")]
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking others.
    #[doc(alias = "ProbeTimeout")]
    pub probe_timeout: Duration,
    /// Never fall back to a TCP ping.
    #[doc(alias = "DisableTcpPings")]
    pub disable_tcp_pings: bool,
    /// Probe interval and timeout scale up to this factor with local health.
    #[doc(alias = "AwarenessMaxMultiplier")]
    pub awareness_max_multiplier: u32,
    /// Members gossiped to per gossip interval.
    #[doc(alias = "GossipNodes")]
    pub gossip_nodes: usize,
    /// Interval between gossip rounds (zero disables gossip).
    #[doc(alias = "GossipInterval")]
    pub gossip_interval: Duration,
    /// How long dead members are still gossiped to (and kept before reaping).
    #[doc(alias = "GossipToTheDeadTime")]
    pub gossip_to_the_dead_time: Duration,
    /// Refuse plaintext input when a keyring is set.
    #[doc(alias = "GossipVerifyIncoming")]
    pub gossip_verify_incoming: bool,
    /// Encrypt output when a keyring is set.
    #[doc(alias = "GossipVerifyOutgoing")]
    pub gossip_verify_outgoing: bool,
    /// Compress packets (when smaller) and streams.
    #[doc(alias = "EnableCompression")]
    pub enable_compression: bool,
    /// Piggyback budget of a packet in bytes.
    #[doc(alias = "UDPBufferSize")]
    pub udp_buffer_size: usize,
    /// After this long dead, a member's name may be taken by another
    /// address (zero: never).
    #[doc(alias = "DeadNodeReclaimTime")]
    pub dead_node_reclaim_time: Duration,
    /// Accept traffic and members only from these networks (empty: all).
    #[doc(alias = "CIDRsAllowed")]
    pub cidrs_allowed: Vec<Cidr>,
    /// Cluster label, authenticated with encryption (memberlist ≥ 0.3; empty: none).
    #[doc(alias = "Label")]
    pub label: Vec<u8>,
    /// Accept only unlabelled input, as if it carried our label.
    #[doc(alias = "SkipInboundLabelCheck")]
    pub skip_inbound_label_check: bool,
    /// Encryption keys; `None` for a plaintext cluster.
    #[doc(alias = "Keyring")]
    #[doc(alias = "SecretKey")]
    pub keyring: Option<Keyring>,
    /// Relay user broadcasts: a node that receives a user packet message it
    /// has not seen recently queues it for gossip itself, so broadcasts
    /// spread epidemically instead of reaching only the few members the
    /// originator's transmit limit allows. Each relay sends a random
    /// sample, so a member is missed with small odds that shrink with
    /// [`retransmit_mult`](Self::retransmit_mult) (about 1 broadcast in 9
    /// missed one member of four with the Local preset's 2; none in tests
    /// with 4). Off by default, as in Go, because on the wire a broadcast and
    /// a [`send_best_effort`](crate::Swim::send_best_effort) message look
    /// the same: with relaying on, every user packet message becomes a
    /// broadcast. Repeats of a payload within the last
    /// [`relay_memory`](Self::relay_memory) messages are not relayed again.
    pub relay_user_broadcasts: bool,
    /// How many recent user payloads a relaying node remembers.
    pub relay_memory: usize,
    /// Most members the table holds; alive messages about new members
    /// beyond it are dropped and counted.
    pub max_members: usize,
    /// Most broadcasts queued (membership and user, each); the most
    /// retransmitted are dropped first beyond it.
    pub max_broadcast_queue: usize,
    /// Most push/pull exchanges this node runs at once.
    pub max_concurrent_push_pulls: usize,
    /// Push/pulls out of turn, when churn settles or an unknown node makes
    /// contact (not in Go; [`CatchUp::off`] for Go's behaviour).
    pub catch_up: CatchUp,
    /// Bounds on what peers may declare on the wire.
    pub limits: Limits,
}

impl Config {
    /// Go's `DefaultLANConfig`: tuned for a local network.
    #[doc(alias = "DefaultLANConfig")]
    pub fn lan(name: impl Into<String>, advertise: SocketAddr) -> Config {
        Config {
            name: name.into(),
            advertise,
            meta: Vec::new(),
            protocol_version: 2,
            delegate_protocol: [0, 0, 0],
            tcp_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            indirect_checks: 3,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            push_pull_interval: Duration::from_secs(30),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            disable_tcp_pings: false,
            awareness_max_multiplier: 8,
            gossip_nodes: 3,
            gossip_interval: Duration::from_millis(200),
            gossip_to_the_dead_time: Duration::from_secs(30),
            gossip_verify_incoming: true,
            gossip_verify_outgoing: true,
            enable_compression: true,
            udp_buffer_size: 1400,
            dead_node_reclaim_time: Duration::ZERO,
            cidrs_allowed: Vec::new(),
            label: Vec::new(),
            skip_inbound_label_check: false,
            keyring: None,
            relay_user_broadcasts: false,
            relay_memory: 4096,
            max_members: 1 << 17,
            max_broadcast_queue: 1 << 16,
            max_concurrent_push_pulls: 128,
            catch_up: CatchUp::for_preset(Duration::from_millis(200), Duration::from_secs(30)),
            limits: Limits::default(),
        }
    }

    /// Go's `DefaultWANConfig`: slower, more tolerant timings.
    #[doc(alias = "DefaultWANConfig")]
    pub fn wan(name: impl Into<String>, advertise: SocketAddr) -> Config {
        Config {
            tcp_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(30),
            suspicion_mult: 6,
            push_pull_interval: Duration::from_secs(60),
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            gossip_nodes: 4,
            gossip_interval: Duration::from_millis(500),
            gossip_to_the_dead_time: Duration::from_secs(60),
            catch_up: CatchUp::for_preset(Duration::from_millis(500), Duration::from_secs(60)),
            ..Config::lan(name, advertise)
        }
    }

    /// Go's `DefaultLocalConfig`: fast timings for one host or a test.
    #[doc(alias = "DefaultLocalConfig")]
    pub fn local(name: impl Into<String>, advertise: SocketAddr) -> Config {
        Config {
            tcp_timeout: Duration::from_secs(1),
            indirect_checks: 1,
            retransmit_mult: 2,
            suspicion_mult: 3,
            push_pull_interval: Duration::from_secs(15),
            probe_timeout: Duration::from_millis(200),
            gossip_interval: Duration::from_millis(100),
            gossip_to_the_dead_time: Duration::from_secs(15),
            catch_up: CatchUp::for_preset(Duration::from_millis(100), Duration::from_secs(15)),
            ..Config::lan(name, advertise)
        }
    }

    /// Checks that the configuration can work; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, reason| Err(ConfigError::new(field, reason));
        if self.name.is_empty() {
            return fail("name", "must not be empty");
        }
        if self.meta.len() > META_MAX_SIZE {
            return fail("meta", "must be at most 512 bytes");
        }
        if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&self.protocol_version) {
            return fail("protocol_version", "must be between 1 and 5");
        }
        let [dmin, dmax, dcur] = self.delegate_protocol;
        if dmin > dmax || dcur < dmin || dcur > dmax {
            return fail("delegate_protocol", "must satisfy min <= current <= max");
        }
        if self.probe_interval.is_zero() {
            return fail("probe_interval", "must be positive");
        }
        if self.probe_timeout.is_zero() || self.probe_timeout > self.probe_interval {
            return fail(
                "probe_timeout",
                "must be positive and at most probe_interval",
            );
        }
        if self.tcp_timeout.is_zero() {
            return fail("tcp_timeout", "must be positive");
        }
        if self.join_timeout.is_zero() {
            return fail("join_timeout", "must be positive");
        }
        if self.suspicion_mult == 0 {
            return fail("suspicion_mult", "must be at least 1");
        }
        if self.suspicion_max_timeout_mult == 0 {
            return fail("suspicion_max_timeout_mult", "must be at least 1");
        }
        if self.awareness_max_multiplier == 0 {
            return fail("awareness_max_multiplier", "must be at least 1");
        }
        if self.retransmit_mult == 0 {
            return fail("retransmit_mult", "must be at least 1");
        }
        if self.udp_buffer_size < 64 || self.udp_buffer_size > 65_507 {
            return fail("udp_buffer_size", "must be between 64 and 65,507 bytes");
        }
        if self.label.len() > 255 {
            return fail("label", "must be at most 255 bytes");
        }
        if self.max_members < 1 {
            return fail("max_members", "must be at least 1");
        }
        if self.max_broadcast_queue < 1 {
            return fail("max_broadcast_queue", "must be at least 1");
        }
        if self.max_concurrent_push_pulls < 1 {
            return fail("max_concurrent_push_pulls", "must be at least 1");
        }
        if self.catch_up.enabled() && self.catch_up.settle.is_zero() {
            return fail("catch_up.settle", "must be positive when catch-up is on");
        }
        Ok(())
    }

    /// The six version bytes sent in alive messages and push/pulls.
    pub fn vsn(&self) -> [u8; 6] {
        let [dmin, dmax, dcur] = self.delegate_protocol;
        [
            PROTOCOL_VERSION_MIN,
            PROTOCOL_VERSION_MAX,
            self.protocol_version,
            dmin,
            dmax,
            dcur,
        ]
    }

    /// Whether `ip` may talk to us.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.cidrs_allowed.is_empty() || self.cidrs_allowed.iter().any(|c| c.contains(ip))
    }

    /// The wire layers this configuration asks for.
    pub(crate) fn envelope(&self) -> Result<Envelope, WireError> {
        let mut e = Envelope::new()
            .with_label(&self.label)?
            .with_skip_inbound_label_check(self.skip_inbound_label_check)
            .with_compression(self.enable_compression)
            .with_verify_incoming(self.gossip_verify_incoming)
            .with_verify_outgoing(self.gossip_verify_outgoing)
            .with_limits(self.limits.clone())
            .with_encryption_version(if self.protocol_version == 1 {
                EncryptionVersion::V0
            } else {
                EncryptionVersion::V1
            });
        if let Some(k) = &self.keyring {
            e = e.with_keyring(k.clone());
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn addr() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 7946)
    }

    #[test]
    fn presets_hold_gos_defaults() {
        let lan = Config::lan("a", addr());
        assert_eq!(lan.probe_timeout, Duration::from_millis(500));
        assert_eq!(lan.vsn(), [1, 5, 2, 0, 0, 0]);
        let wan = Config::wan("a", addr());
        assert_eq!(
            (wan.probe_interval, wan.suspicion_mult, wan.gossip_nodes),
            (Duration::from_secs(5), 6, 4)
        );
        let local = Config::local("a", addr());
        assert_eq!(
            (
                local.indirect_checks,
                local.retransmit_mult,
                local.suspicion_mult
            ),
            (1, 2, 3)
        );
        assert_eq!(local.gossip_interval, Duration::from_millis(100));
        for c in [lan, wan, local] {
            c.validate().unwrap();
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = Config::lan("a", addr());
        c.protocol_version = 6;
        assert_eq!(c.validate().unwrap_err().field, "protocol_version");
        let mut c = Config::lan("", addr());
        assert_eq!(c.validate().unwrap_err().field, "name");
        c.name = "a".into();
        c.probe_timeout = Duration::from_secs(2);
        assert_eq!(c.validate().unwrap_err().field, "probe_timeout");
        let mut c = Config::lan("a", addr());
        c.delegate_protocol = [2, 1, 1];
        assert_eq!(c.validate().unwrap_err().field, "delegate_protocol");
        let mut c = Config::lan("a", addr());
        c.meta = alloc::vec![0; META_MAX_SIZE + 1];
        assert_eq!(c.validate().unwrap_err().field, "meta");
        let mut c = Config::local("a", addr());
        c.join_timeout = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().field, "join_timeout");
    }
}
