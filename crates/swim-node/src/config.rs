//! How to start a node: the core's [`Config`] plus what only a running node
//! has (a bind address, resource caps), and a serde form for config files.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use swim_core::wire::{Keyring, SecretKey};
use swim_core::{Cidr, Config, Preset};

/// Everything needed to start a node.
///
/// ```
/// use swim_node::NodeConfig;
/// use swim_core::Config;
///
/// let bind = "127.0.0.1:0".parse().unwrap();
/// let config = NodeConfig::new(bind, Config::local("node-a", bind));
/// assert_eq!(config.max_incoming_streams, 64);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Where to bind the UDP socket and the TCP listener (the same port for
    /// both; port 0 picks a free one).
    #[doc(alias = "BindAddr")]
    #[doc(alias = "BindPort")]
    pub bind: SocketAddr,
    /// The protocol configuration. A zero port in `advertise` becomes the
    /// bound port; an unspecified IP in `advertise` becomes the bind IP.
    pub swim: Config,
    /// Most incoming streams handled at once; beyond it, accepting pauses
    /// and new connections wait in the kernel's backlog. With
    /// [`Limits::max_stream_message`](swim_core::wire::Limits::max_stream_message)
    /// this bounds the memory peers can hold.
    pub max_incoming_streams: usize,
    /// Events other than membership ones buffered for a slow reader before
    /// new ones are dropped (and counted); membership events are never
    /// dropped (see [`Events`](crate::Events)).
    pub event_capacity: usize,
    /// Payload bytes (user messages, remote states…) buffered for a slow
    /// reader before new events carrying some are dropped (and counted).
    pub event_bytes: usize,
    /// The port of a seed given without one; `None`: the port this node
    /// advertises (as Go uses its bind port).
    pub default_port: Option<u16>,
    /// DNS servers for SRV seeds; empty: those of `/etc/resolv.conf`.
    #[doc(alias = "DNSConfigPath")]
    pub dns_servers: Vec<SocketAddr>,
    /// How long each DNS server has to answer an SRV query.
    pub dns_timeout: Duration,
    /// Times [`Node::join`](crate::Node::join) tries again when no seed
    /// answered: a seed that many nodes join at once can time some of them
    /// out (500 nodes joining one seed in one process on this machine: a
    /// fifth to a half of the first attempts). A service that must find its
    /// cluster keeps trying ([`JoinRetries::Forever`]).
    pub join_retries: JoinRetries,
    /// The pause before the first retry; it doubles for each next one up to
    /// [`join_retry_max_delay`](Self::join_retry_max_delay), and each is
    /// drawn between half and one and a half of it, so that joiners timed
    /// out together do not come back together.
    pub join_retry_delay: Duration,
    /// The longest pause between two retries: where the doubling stops, so
    /// that a node retrying for long comes back at a steady pace.
    pub join_retry_max_delay: Duration,
    /// Seed of the core's random choices; `None` draws one per start.
    pub seed: Option<u64>,
    /// Labels added to every metric this node records (useful when several
    /// nodes share a process).
    pub metric_labels: Vec<(String, String)>,
}

impl NodeConfig {
    /// A node bound to `bind` with protocol configuration `swim`.
    pub fn new(bind: SocketAddr, swim: Config) -> NodeConfig {
        NodeConfig {
            bind,
            swim,
            max_incoming_streams: 64,
            event_capacity: 4096,
            event_bytes: 4 << 20,
            default_port: None,
            dns_servers: Vec::new(),
            dns_timeout: Duration::from_secs(2),
            join_retries: JoinRetries::Times(3),
            join_retry_delay: Duration::from_millis(200),
            join_retry_max_delay: Duration::from_secs(30),
            seed: None,
            metric_labels: Vec::new(),
        }
    }
}

impl NodeConfig {
    /// The pauses [`Node::join`](crate::Node::join) makes between attempts,
    /// before jitter: one per retry.
    pub(crate) fn join_pauses(&self) -> JoinPauses {
        JoinPauses {
            left: match self.join_retries {
                JoinRetries::Times(n) => Some(n),
                JoinRetries::Forever => None,
            },
            next: self.join_retry_delay,
            max: self.join_retry_max_delay,
        }
    }
}

/// How many times [`Node::join`](crate::Node::join) tries again when no
/// seed answered ([`NodeConfig::join_retries`]).
///
/// A config file writes a count or `"forever"`:
///
/// ```
/// use swim_node::{JoinRetries, NodeSettings};
///
/// let s: NodeSettings = serde_json::from_str(r#"{"join_retries": "forever"}"#).unwrap();
/// assert_eq!(s.join_retries, Some(JoinRetries::Forever));
/// assert_eq!("5".parse(), Ok(JoinRetries::Times(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRetries {
    /// At most this many times (0: one attempt only).
    Times(u32),
    /// Until a seed answers or the node shuts down.
    Forever,
}

impl std::fmt::Display for JoinRetries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinRetries::Times(n) => write!(f, "{n}"),
            JoinRetries::Forever => f.write_str("forever"),
        }
    }
}

impl std::str::FromStr for JoinRetries {
    type Err = String;
    fn from_str(s: &str) -> Result<JoinRetries, String> {
        match s.trim() {
            "forever" => Ok(JoinRetries::Forever),
            n => n
                .parse()
                .map(JoinRetries::Times)
                .map_err(|_| format!("expected a count of retries or \"forever\", not {s:?}")),
        }
    }
}

impl Serialize for JoinRetries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JoinRetries::Times(n) => s.serialize_u32(*n),
            JoinRetries::Forever => s.serialize_str("forever"),
        }
    }
}

impl<'de> Deserialize<'de> for JoinRetries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JoinRetries, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = JoinRetries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a count of retries or \"forever\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<JoinRetries, E> {
                u32::try_from(n)
                    .map(JoinRetries::Times)
                    .map_err(|_| E::custom("too many retries: write \"forever\""))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<JoinRetries, E> {
                let n = u64::try_from(n).map_err(|_| {
                    E::custom("a negative count of retries: write \"forever\" to never stop")
                })?;
                self.visit_u64(n)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<JoinRetries, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The pauses between join attempts, before jitter: the first retry's
/// delay, doubling up to the cap, as many as there are retries.
#[derive(Debug, Clone)]
pub(crate) struct JoinPauses {
    /// Retries left; `None`: forever.
    left: Option<u32>,
    next: Duration,
    max: Duration,
}

impl Iterator for JoinPauses {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        if let Some(left) = &mut self.left {
            *left = left.checked_sub(1)?;
        }
        let pause = self.next.min(self.max);
        self.next = self.next.saturating_mul(2);
        Some(pause)
    }
}

/// A node's settings as a config file holds them (any serde format), and as
/// [`effective`](NodeSettings::effective) writes them back.
///
/// Durations are written like `"200ms"` or `"30s"`; keys as hex.
///
/// ```
/// use swim_node::NodeSettings;
///
/// let settings: NodeSettings = serde_json::from_str(r#"{
///     "name": "node-a",
///     "bind": "127.0.0.1:7946",
///     "preset": "local",
///     "probe_interval": "500ms",
///     "keys": ["000102030405060708090a0b0c0d0e0f"]
/// }"#).unwrap();
/// let config = settings.into_config().unwrap();
/// assert_eq!(config.swim.probe_interval.as_millis(), 500);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeSettings {
    /// Node name.
    pub name: String,
    /// Bind address.
    pub bind: Option<SocketAddr>,
    /// Advertised address (default: the bind address).
    pub advertise: Option<SocketAddr>,
    /// Timing preset: `lan`, `wan` or `local`.
    pub preset: Preset,
    /// Metadata announced from the start.
    pub meta: Option<String>,
    /// Encryption keys in hex; the first is the primary.
    pub keys: Vec<String>,
    /// Cluster label.
    pub label: Option<String>,
    /// Compression of packets and streams.
    pub compression: Option<bool>,
    /// Relay user broadcasts ([`Config::relay_user_broadcasts`]).
    pub relay_user_broadcasts: Option<bool>,
    /// Networks members must come from, like `10.0.0.0/8`.
    pub cidrs_allowed: Vec<String>,
    /// Probe interval.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Option<Duration>,
    /// Probe timeout.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Option<Duration>,
    /// Gossip interval.
    #[serde(with = "humantime_serde")]
    pub gossip_interval: Option<Duration>,
    /// Push/pull interval.
    #[serde(with = "humantime_serde")]
    pub push_pull_interval: Option<Duration>,
    /// Stream exchange timeout.
    #[serde(with = "humantime_serde")]
    pub tcp_timeout: Option<Duration>,
    /// A join's push/pull timeout ([`Config::join_timeout`]).
    #[serde(with = "humantime_serde")]
    pub join_timeout: Option<Duration>,
    /// Suspicion multiplier.
    pub suspicion_mult: Option<u32>,
    /// Lifeguard: the longest suspicion timeout as a multiple of the
    /// shortest ([`Config::suspicion_max_timeout_mult`]); 1 turns off
    /// suspicion that confirmations shorten.
    pub suspicion_max_timeout_mult: Option<u32>,
    /// Lifeguard: the largest health-score multiplier of probe timeouts and
    /// intervals ([`Config::awareness_max_multiplier`]); 1 turns off local
    /// health awareness.
    pub awareness_max_multiplier: Option<u32>,
    /// Retransmit multiplier.
    pub retransmit_mult: Option<usize>,
    /// Members gossiped to per round.
    pub gossip_nodes: Option<usize>,
    /// Indirect probes per failed direct probe.
    pub indirect_checks: Option<usize>,
    /// [`NodeConfig::max_incoming_streams`].
    pub max_incoming_streams: Option<usize>,
    /// [`NodeConfig::event_capacity`].
    pub event_capacity: Option<usize>,
    /// [`NodeConfig::event_bytes`].
    pub event_bytes: Option<usize>,
    /// [`NodeConfig::default_port`].
    pub default_port: Option<u16>,
    /// [`NodeConfig::dns_servers`].
    pub dns_servers: Vec<SocketAddr>,
    /// [`NodeConfig::join_retries`]: a count, or `"forever"`.
    pub join_retries: Option<JoinRetries>,
    /// [`NodeConfig::join_retry_delay`].
    #[serde(with = "humantime_serde")]
    pub join_retry_delay: Option<Duration>,
    /// [`NodeConfig::join_retry_max_delay`].
    #[serde(with = "humantime_serde")]
    pub join_retry_max_delay: Option<Duration>,
    /// Most catch-up push/pulls per minute; 0 turns catch-up off, as in Go
    /// ([`CatchUp::per_minute`](swim_core::CatchUp::per_minute)).
    pub catch_up_per_minute: Option<u32>,
    /// Quiet time after news before the catch-up push/pull
    /// ([`CatchUp::settle`](swim_core::CatchUp::settle)).
    #[serde(with = "humantime_serde")]
    pub catch_up_settle: Option<Duration>,
    /// Largest cluster whose settle push/pull goes to every member not
    /// pushed/pulled with since the news; 0 one at random, as before
    /// ([`CatchUp::cover`](swim_core::CatchUp::cover)).
    pub catch_up_cover: Option<usize>,
    /// How often a failed member is tried again; 0 never
    /// ([`CatchUp::reconnect_interval`](swim_core::CatchUp::reconnect_interval)).
    #[serde(with = "humantime_serde")]
    pub reconnect_interval: Option<Duration>,
    /// How long after its death a failed member is tried again
    /// ([`CatchUp::reconnect_timeout`](swim_core::CatchUp::reconnect_timeout)).
    #[serde(with = "humantime_serde")]
    pub reconnect_timeout: Option<Duration>,
    /// Most corrections per second; 0 turns them off, as in Go
    /// ([`CatchUp::corrections_per_second`](swim_core::CatchUp::corrections_per_second)).
    pub corrections_per_second: Option<u32>,
    /// Most direct refutations per second; 0 refutes by gossip alone, as
    /// in Go
    /// ([`CatchUp::refutations_per_second`](swim_core::CatchUp::refutations_per_second)).
    pub refutations_per_second: Option<u32>,
    /// Most last probes before a death per second; 0 turns them off, as in
    /// Go
    /// ([`CatchUp::last_probes_per_second`](swim_core::CatchUp::last_probes_per_second)).
    pub last_probes_per_second: Option<u32>,
    /// Whether a death notice from an accuser held dead is only a
    /// suspicion; false is Go's behaviour
    /// ([`CatchUp::doubt_dead_accusers`](swim_core::CatchUp::doubt_dead_accusers)).
    pub doubt_dead_accusers: Option<bool>,
    /// Most alive messages per second sent to members returning from the
    /// dead, after one raise of our incarnation; 0 turns them off, as in Go
    /// ([`CatchUp::refute_returning_per_second`](swim_core::CatchUp::refute_returning_per_second)).
    pub refute_returning_per_second: Option<u32>,
    /// How many times a member learned from a push/pull's full state is
    /// gossiped, behind fresh news; 0 is the whole retransmit limit, as in
    /// Go ([`CatchUp::state_gossip`](swim_core::CatchUp::state_gossip)).
    pub state_gossip: Option<u32>,
    /// Whether a node not picked to settle after news settles if no full
    /// state reached it; false: only the picked nodes
    /// ([`CatchUp::settle_unreached`](swim_core::CatchUp::settle_unreached)).
    pub settle_unreached: Option<bool>,
    /// Most suspicions from a push/pull's state told to their member per
    /// second; 0 takes them as this node's own, gossiped, as in Go
    /// ([`CatchUp::hearsay_per_second`](swim_core::CatchUp::hearsay_per_second)).
    pub hearsay_per_second: Option<u32>,
    /// How long a dead member's name stays its own: a node claiming it from
    /// another address sooner is a name conflict
    /// ([`Config::dead_node_reclaim_time`](swim_core::Config::dead_node_reclaim_time)).
    #[serde(with = "humantime_serde")]
    pub dead_node_reclaim_time: Option<Duration>,
}

/// A setting that cannot be used, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The setting.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for SettingsError {}

fn invalid(field: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError {
        field,
        reason: reason.into(),
    }
}

/// Parses a hex key of 16, 24 or 32 bytes.
pub fn parse_key(hex: &str) -> Result<SecretKey, String> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) {
        return Err("a key is an even number of hex digits".into());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| "a key is hex digits".to_string())?;
    SecretKey::new(&bytes).map_err(|e| e.to_string())
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (ip, prefix) = s.split_once('/').ok_or("expected ADDRESS/PREFIX")?;
    let ip = ip.parse().map_err(|_| format!("bad address {ip:?}"))?;
    let prefix = prefix
        .parse()
        .map_err(|_| format!("bad prefix {prefix:?}"))?;
    Cidr::new(ip, prefix).map_err(|e| e.to_string())
}

impl NodeSettings {
    /// These settings with every value the node would run with written
    /// out: what the preset sets, and the defaults, in place of what was
    /// left unset. Reading the result gives the same node configuration.
    /// Left unset: `advertise` when the bind address has a zero port or an
    /// unspecified IP (the node settles it when it binds), and
    /// `default_port` (then the advertised port). Keys are copied as given:
    /// mask them before showing the result.
    pub fn effective(&self) -> Result<NodeSettings, SettingsError> {
        let config = self.clone().into_config()?;
        let swim = &config.swim;
        // Destructured so that a new setting cannot be forgotten here.
        let NodeSettings {
            name,
            bind,
            advertise,
            preset,
            meta: _,
            keys,
            label: _,
            compression: _,
            relay_user_broadcasts: _,
            cidrs_allowed,
            probe_interval: _,
            probe_timeout: _,
            gossip_interval: _,
            push_pull_interval: _,
            tcp_timeout: _,
            join_timeout: _,
            suspicion_mult: _,
            suspicion_max_timeout_mult: _,
            awareness_max_multiplier: _,
            retransmit_mult: _,
            gossip_nodes: _,
            indirect_checks: _,
            max_incoming_streams: _,
            event_capacity: _,
            event_bytes: _,
            default_port,
            dns_servers,
            join_retries: _,
            join_retry_delay: _,
            join_retry_max_delay: _,
            catch_up_per_minute: _,
            catch_up_settle: _,
            catch_up_cover: _,
            reconnect_interval: _,
            reconnect_timeout: _,
            corrections_per_second: _,
            refutations_per_second: _,
            last_probes_per_second: _,
            doubt_dead_accusers: _,
            refute_returning_per_second: _,
            state_gossip: _,
            settle_unreached: _,
            hearsay_per_second: _,
            dead_node_reclaim_time: _,
        } = self.clone();
        let settled = |a: SocketAddr| a.port() != 0 && !a.ip().is_unspecified();
        Ok(NodeSettings {
            name,
            bind,
            advertise: advertise.or(bind).filter(|a| settled(*a)),
            preset,
            meta: Some(String::from_utf8_lossy(&swim.meta).into_owned()),
            keys,
            label: Some(String::from_utf8_lossy(&swim.label).into_owned()),
            compression: Some(swim.enable_compression),
            relay_user_broadcasts: Some(swim.relay_user_broadcasts),
            cidrs_allowed,
            probe_interval: Some(swim.probe_interval),
            probe_timeout: Some(swim.probe_timeout),
            gossip_interval: Some(swim.gossip_interval),
            push_pull_interval: Some(swim.push_pull_interval),
            tcp_timeout: Some(swim.tcp_timeout),
            join_timeout: Some(swim.join_timeout),
            suspicion_mult: Some(swim.suspicion_mult),
            suspicion_max_timeout_mult: Some(swim.suspicion_max_timeout_mult),
            awareness_max_multiplier: Some(swim.awareness_max_multiplier),
            retransmit_mult: Some(swim.retransmit_mult),
            gossip_nodes: Some(swim.gossip_nodes),
            indirect_checks: Some(swim.indirect_checks),
            max_incoming_streams: Some(config.max_incoming_streams),
            event_capacity: Some(config.event_capacity),
            event_bytes: Some(config.event_bytes),
            default_port,
            dns_servers,
            join_retries: Some(config.join_retries),
            join_retry_delay: Some(config.join_retry_delay),
            join_retry_max_delay: Some(config.join_retry_max_delay),
            catch_up_per_minute: Some(swim.catch_up.per_minute),
            catch_up_settle: Some(swim.catch_up.settle),
            catch_up_cover: Some(swim.catch_up.cover),
            reconnect_interval: Some(swim.catch_up.reconnect_interval),
            reconnect_timeout: Some(swim.catch_up.reconnect_timeout),
            corrections_per_second: Some(swim.catch_up.corrections_per_second),
            refutations_per_second: Some(swim.catch_up.refutations_per_second),
            last_probes_per_second: Some(swim.catch_up.last_probes_per_second),
            doubt_dead_accusers: Some(swim.catch_up.doubt_dead_accusers),
            refute_returning_per_second: Some(swim.catch_up.refute_returning_per_second),
            state_gossip: Some(swim.catch_up.state_gossip),
            settle_unreached: Some(swim.catch_up.settle_unreached),
            hearsay_per_second: Some(swim.catch_up.hearsay_per_second),
            dead_node_reclaim_time: Some(swim.dead_node_reclaim_time),
        })
    }

    /// The node configuration these settings describe; the error names the
    /// setting at fault. Protocol-level checks run when the node starts.
    pub fn into_config(self) -> Result<NodeConfig, SettingsError> {
        if self.name.is_empty() {
            return Err(invalid("name", "a node needs a name"));
        }
        let bind = self.bind.ok_or_else(|| invalid("bind", "required"))?;
        let advertise = self.advertise.unwrap_or(bind);
        let mut swim = self.preset.config(self.name, advertise);
        if let Some(meta) = self.meta {
            swim.meta = meta.into_bytes();
        }
        let mut keys = self.keys.iter().map(|k| parse_key(k));
        if let Some(primary) = keys.next() {
            let mut ring = Keyring::new(primary.map_err(|e| invalid("keys", e))?);
            for key in keys {
                ring.add(key.map_err(|e| invalid("keys", e))?);
            }
            swim.keyring = Some(ring);
        }
        if let Some(label) = self.label {
            swim.label = label.into_bytes();
        }
        swim.cidrs_allowed = self
            .cidrs_allowed
            .iter()
            .map(|c| parse_cidr(c))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid("cidrs_allowed", e))?;
        set(&mut swim.probe_interval, self.probe_interval);
        set(&mut swim.probe_timeout, self.probe_timeout);
        set(&mut swim.gossip_interval, self.gossip_interval);
        set(&mut swim.push_pull_interval, self.push_pull_interval);
        set(&mut swim.tcp_timeout, self.tcp_timeout);
        set(&mut swim.join_timeout, self.join_timeout);
        set(
            &mut swim.dead_node_reclaim_time,
            self.dead_node_reclaim_time,
        );
        let catch_up = &mut swim.catch_up;
        set(&mut catch_up.per_minute, self.catch_up_per_minute);
        set(&mut catch_up.settle, self.catch_up_settle);
        set(&mut catch_up.cover, self.catch_up_cover);
        set(&mut catch_up.reconnect_interval, self.reconnect_interval);
        set(&mut catch_up.reconnect_timeout, self.reconnect_timeout);
        set(
            &mut catch_up.corrections_per_second,
            self.corrections_per_second,
        );
        set(
            &mut catch_up.refutations_per_second,
            self.refutations_per_second,
        );
        set(
            &mut catch_up.last_probes_per_second,
            self.last_probes_per_second,
        );
        set(&mut catch_up.doubt_dead_accusers, self.doubt_dead_accusers);
        set(
            &mut catch_up.refute_returning_per_second,
            self.refute_returning_per_second,
        );
        set(&mut catch_up.state_gossip, self.state_gossip);
        set(&mut catch_up.settle_unreached, self.settle_unreached);
        set(&mut catch_up.hearsay_per_second, self.hearsay_per_second);
        set(&mut swim.enable_compression, self.compression);
        set(&mut swim.relay_user_broadcasts, self.relay_user_broadcasts);
        set(&mut swim.suspicion_mult, self.suspicion_mult);
        set(
            &mut swim.suspicion_max_timeout_mult,
            self.suspicion_max_timeout_mult,
        );
        set(
            &mut swim.awareness_max_multiplier,
            self.awareness_max_multiplier,
        );
        set(&mut swim.retransmit_mult, self.retransmit_mult);
        set(&mut swim.gossip_nodes, self.gossip_nodes);
        set(&mut swim.indirect_checks, self.indirect_checks);
        let mut config = NodeConfig::new(bind, swim);
        set(&mut config.max_incoming_streams, self.max_incoming_streams);
        set(&mut config.event_capacity, self.event_capacity);
        set(&mut config.event_bytes, self.event_bytes);
        config.default_port = self.default_port;
        config.dns_servers = self.dns_servers;
        set(&mut config.join_retries, self.join_retries);
        set(&mut config.join_retry_delay, self.join_retry_delay);
        set(&mut config.join_retry_max_delay, self.join_retry_max_delay);
        if config.join_retries == JoinRetries::Forever
            && config
                .join_retry_delay
                .min(config.join_retry_max_delay)
                .is_zero()
        {
            return Err(invalid(
                "join_retry_delay",
                "retrying forever needs a pause: join_retry_delay and join_retry_max_delay must be positive",
            ));
        }
        Ok(config)
    }
}

/// `field` takes `value` if one was given, else keeps its preset's.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_bad_field() {
        let parse = |json: &str| {
            serde_json::from_str::<NodeSettings>(json)
                .unwrap()
                .into_config()
        };
        let err = parse(r#"{"name":"a","bind":"127.0.0.1:1","keys":["abc"]}"#).unwrap_err();
        assert_eq!(err.field, "keys");
        let err = parse(r#"{"name":"a","bind":"127.0.0.1:1","keys":["00ff"]}"#).unwrap_err();
        assert_eq!(err.field, "keys");
        let err = parse(r#"{"name":"a"}"#).unwrap_err();
        assert_eq!(err.field, "bind");
        let err =
            parse(r#"{"name":"a","bind":"127.0.0.1:1","cidrs_allowed":["10.0.0.0"]}"#).unwrap_err();
        assert_eq!(err.field, "cidrs_allowed");
        assert!(serde_json::from_str::<NodeSettings>(r#"{"nmae":"a"}"#).is_err());
        let off = parse(r#"{"name":"a","bind":"127.0.0.1:1","catch_up_per_minute":0}"#).unwrap();
        assert!(!off.swim.catch_up.enabled(), "Go's behaviour on request");
        let random = parse(r#"{"name":"a","bind":"127.0.0.1:1","catch_up_cover":0}"#).unwrap();
        assert_eq!(
            random.swim.catch_up.cover, 0,
            "one settle push/pull at random"
        );
        let guards = parse(
            r#"{"name":"a","bind":"127.0.0.1:1","refutations_per_second":0,
                "last_probes_per_second":0,"doubt_dead_accusers":false,
                "refute_returning_per_second":0}"#,
        )
        .unwrap();
        let c = &guards.swim.catch_up;
        assert_eq!(
            (
                c.refutations_per_second,
                c.last_probes_per_second,
                c.doubt_dead_accusers,
                c.refute_returning_per_second
            ),
            (0, 0, false, 0),
            "each false-death guard off on request"
        );
        assert!(c.enabled(), "catch-up itself stays on");
    }

    #[test]
    fn effective_settings_spell_out_the_preset_and_read_back_the_same() {
        let given: NodeSettings = serde_json::from_str(
            r#"{"name":"a","bind":"127.0.0.1:7000","preset":"wan","gossip_interval":"1s",
                "keys":["000102030405060708090a0b0c0d0e0f"],"cidrs_allowed":["10.0.0.0/8"]}"#,
        )
        .unwrap();
        let effective = given.effective().unwrap();
        assert_eq!(effective.gossip_interval, Some(Duration::from_secs(1)));
        let wan = Config::wan("a", "127.0.0.1:7000".parse().unwrap());
        assert_eq!(effective.probe_interval, Some(wan.probe_interval));
        assert_eq!(effective.suspicion_mult, Some(wan.suspicion_mult));
        assert_eq!(effective.advertise, Some("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(effective.keys, given.keys);
        assert_eq!(effective.max_incoming_streams, Some(64));
        assert_eq!(effective.catch_up_settle, Some(wan.catch_up.settle));
        assert_eq!(effective.catch_up_per_minute, Some(wan.catch_up.per_minute));
        assert_eq!(effective.catch_up_cover, Some(wan.catch_up.cover));
        // Written out and read back, it is a fixed point and the same node.
        let json = serde_json::to_string(&effective).unwrap();
        let reread: NodeSettings = serde_json::from_str(&json).unwrap();
        assert_eq!(reread, effective);
        assert_eq!(reread.effective().unwrap(), effective);
        let (a, b) = (given.into_config().unwrap(), reread.into_config().unwrap());
        assert_eq!(format!("{:?}", a.swim), format!("{:?}", b.swim));
        // An address the node settles when it binds is left to it.
        let unsettled: NodeSettings =
            serde_json::from_str(r#"{"name":"a","bind":"0.0.0.0:0"}"#).unwrap();
        assert_eq!(unsettled.effective().unwrap().advertise, None);
        // And what cannot become a node names its setting.
        let bad: NodeSettings = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert_eq!(bad.effective().unwrap_err().field, "bind");
    }

    #[test]
    fn settings_apply_over_the_preset() {
        let config = serde_json::from_str::<NodeSettings>(
            r#"{"name":"a","bind":"127.0.0.1:1","advertise":"10.0.0.1:7946","preset":"wan",
                "keys":["000102030405060708090a0b0c0d0e0f","000102030405060708090a0b0c0d0e0f1011121314151617"],
                "label":"prod","meta":"zone=a","compression":false,"cidrs_allowed":["10.0.0.0/8"],
                "gossip_interval":"1s","suspicion_mult":7,"max_incoming_streams":3}"#,
        )
        .unwrap()
        .into_config()
        .unwrap();
        assert_eq!(config.swim.advertise, "10.0.0.1:7946".parse().unwrap());
        assert_eq!(config.swim.probe_interval, Duration::from_secs(5));
        assert_eq!(config.swim.gossip_interval, Duration::from_secs(1));
        assert_eq!(config.swim.suspicion_mult, 7);
        assert_eq!(config.swim.keyring.as_ref().unwrap().len(), 2);
        assert_eq!(config.swim.label, b"prod");
        assert_eq!(config.swim.meta, b"zone=a");
        assert!(!config.swim.enable_compression);
        assert_eq!(config.swim.cidrs_allowed.len(), 1);
        assert_eq!(config.max_incoming_streams, 3);
    }

    fn pauses(retries: JoinRetries, delay_ms: u64, max_ms: u64) -> Vec<u128> {
        let mut config = NodeConfig::new(
            "127.0.0.1:1".parse().unwrap(),
            Config::local("a", "127.0.0.1:1".parse().unwrap()),
        );
        config.join_retries = retries;
        config.join_retry_delay = Duration::from_millis(delay_ms);
        config.join_retry_max_delay = Duration::from_millis(max_ms);
        config
            .join_pauses()
            .take(8)
            .map(|d| d.as_millis())
            .collect()
    }

    #[test]
    fn join_pauses_double_up_to_the_cap() {
        let bind = "127.0.0.1:1".parse().unwrap();
        let default = NodeConfig::new(bind, Config::local("a", bind));
        let ms: Vec<u128> = default.join_pauses().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [200, 400, 800], "three retries from 200 ms by default");
        assert_eq!(pauses(JoinRetries::Times(0), 200, 1000), Vec::<u128>::new());
        assert_eq!(
            pauses(JoinRetries::Times(6), 200, 1000),
            [200, 400, 800, 1000, 1000, 1000]
        );
        assert_eq!(
            pauses(JoinRetries::Forever, 200, 5000),
            [200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
        // A steady pause: the first delay at the cap.
        assert_eq!(pauses(JoinRetries::Forever, 5000, 5000), [5000; 8]);
    }

    #[test]
    fn join_retries_read_a_count_or_forever() {
        let read = |json: &str| serde_json::from_str::<NodeSettings>(json).map(|s| s.join_retries);
        assert_eq!(
            read(r#"{"join_retries":5}"#).unwrap(),
            Some(JoinRetries::Times(5))
        );
        assert_eq!(
            read(r#"{"join_retries":"forever"}"#).unwrap(),
            Some(JoinRetries::Forever)
        );
        assert_eq!(
            read(r#"{"join_retries":"7"}"#).unwrap(),
            Some(JoinRetries::Times(7))
        );
        assert!(read(r#"{"join_retries":-1}"#).is_err());
        assert!(read(r#"{"join_retries":"always"}"#).is_err());
        for r in [JoinRetries::Times(2), JoinRetries::Forever] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<JoinRetries>(&json).unwrap(), r);
            assert_eq!(r.to_string().parse(), Ok(r));
        }
        let settings = |json: &str| {
            serde_json::from_str::<NodeSettings>(json)
                .unwrap()
                .into_config()
        };
        let spin = settings(
            r#"{"name":"a","bind":"127.0.0.1:1","join_retries":"forever","join_retry_delay":"0s"}"#,
        );
        assert_eq!(spin.unwrap_err().field, "join_retry_delay");
        let steady = settings(
            r#"{"name":"a","bind":"127.0.0.1:1","join_retries":"forever",
                "join_retry_delay":"5s","join_retry_max_delay":"5s"}"#,
        )
        .unwrap();
        assert_eq!(steady.join_pauses().nth(100), Some(Duration::from_secs(5)));
    }

    #[test]
    fn lifeguard_can_be_turned_off() {
        let parse = |json: &str| {
            serde_json::from_str::<NodeSettings>(json)
                .unwrap()
                .into_config()
                .unwrap()
                .swim
        };
        let on = parse(r#"{"name":"a","bind":"127.0.0.1:1"}"#);
        assert_eq!(
            (on.suspicion_max_timeout_mult, on.awareness_max_multiplier),
            (6, 8)
        );
        let off = parse(
            r#"{"name":"a","bind":"127.0.0.1:1","suspicion_max_timeout_mult":1,
                "awareness_max_multiplier":1}"#,
        );
        assert_eq!(
            (off.suspicion_max_timeout_mult, off.awareness_max_multiplier),
            (1, 1)
        );
    }
}
