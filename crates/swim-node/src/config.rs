//! How to start a node: the core's [`Config`] plus what only a running node
//! has (a bind address, resource caps), and a serde form for config files.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use swim_core::wire::{Keyring, SecretKey};
use swim_core::{Cidr, Config};

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
    pub dns_servers: Vec<SocketAddr>,
    /// How long each DNS server has to answer an SRV query.
    pub dns_timeout: Duration,
    /// Times [`Node::join`](crate::Node::join) tries again when no seed
    /// answered: a seed that many nodes join at once can time some of them
    /// out (500 nodes joining one seed in one process on this machine: a
    /// fifth to a half of the first attempts).
    pub join_retries: u32,
    /// The pause before the first retry; it doubles for each next one, and
    /// each is drawn between half and one and a half of it, so that
    /// joiners timed out together do not come back together.
    pub join_retry_delay: Duration,
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
            join_retries: 3,
            join_retry_delay: Duration::from_millis(200),
            seed: None,
            metric_labels: Vec::new(),
        }
    }
}

/// Timing preset, as memberlist names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// [`Config::lan`].
    #[default]
    Lan,
    /// [`Config::wan`].
    Wan,
    /// [`Config::local`].
    Local,
}

impl Profile {
    /// The preset's configuration for a node called `name` at `advertise`.
    pub fn config(self, name: impl Into<String>, advertise: SocketAddr) -> Config {
        match self {
            Profile::Lan => Config::lan(name, advertise),
            Profile::Wan => Config::wan(name, advertise),
            Profile::Local => Config::local(name, advertise),
        }
    }

    /// The preset's name, as [`FromStr`](std::str::FromStr) reads it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Wan => "wan",
            Profile::Local => "local",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Profile, String> {
        match s {
            "lan" => Ok(Profile::Lan),
            "wan" => Ok(Profile::Wan),
            "local" => Ok(Profile::Local),
            _ => Err(format!(
                "unknown profile {s:?} (expected lan, wan or local)"
            )),
        }
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
///     "profile": "local",
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
    /// Timing preset.
    pub profile: Profile,
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
    /// [`NodeConfig::join_retries`].
    pub join_retries: Option<u32>,
    /// [`NodeConfig::join_retry_delay`].
    #[serde(with = "humantime_serde")]
    pub join_retry_delay: Option<Duration>,
    /// Most catch-up push/pulls per minute; 0 turns catch-up off, as in Go
    /// ([`CatchUp::per_minute`](swim_core::CatchUp::per_minute)).
    pub catch_up_per_minute: Option<u32>,
    /// Quiet time after news before the catch-up push/pull
    /// ([`CatchUp::settle`](swim_core::CatchUp::settle)).
    #[serde(with = "humantime_serde")]
    pub catch_up_settle: Option<Duration>,
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
    if hex.len() % 2 != 0 {
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
    /// out: what the profile sets, and the defaults, in place of what was
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
            profile,
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
            catch_up_per_minute: _,
            catch_up_settle: _,
            reconnect_interval: _,
            reconnect_timeout: _,
            corrections_per_second: _,
        } = self.clone();
        let settled = |a: SocketAddr| a.port() != 0 && !a.ip().is_unspecified();
        Ok(NodeSettings {
            name,
            bind,
            advertise: advertise.or(bind).filter(|a| settled(*a)),
            profile,
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
            catch_up_per_minute: Some(swim.catch_up.per_minute),
            catch_up_settle: Some(swim.catch_up.settle),
            reconnect_interval: Some(swim.catch_up.reconnect_interval),
            reconnect_timeout: Some(swim.catch_up.reconnect_timeout),
            corrections_per_second: Some(swim.catch_up.corrections_per_second),
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
        let mut swim = self.profile.config(self.name, advertise);
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
        let set = |field: &mut Duration, v: Option<Duration>| *field = v.unwrap_or(*field);
        set(&mut swim.probe_interval, self.probe_interval);
        set(&mut swim.probe_timeout, self.probe_timeout);
        set(&mut swim.gossip_interval, self.gossip_interval);
        set(&mut swim.push_pull_interval, self.push_pull_interval);
        set(&mut swim.tcp_timeout, self.tcp_timeout);
        set(&mut swim.join_timeout, self.join_timeout);
        let catch_up = &mut swim.catch_up;
        catch_up.per_minute = self.catch_up_per_minute.unwrap_or(catch_up.per_minute);
        set(&mut catch_up.settle, self.catch_up_settle);
        set(&mut catch_up.reconnect_interval, self.reconnect_interval);
        set(&mut catch_up.reconnect_timeout, self.reconnect_timeout);
        catch_up.corrections_per_second = self
            .corrections_per_second
            .unwrap_or(catch_up.corrections_per_second);
        swim.enable_compression = self.compression.unwrap_or(swim.enable_compression);
        swim.relay_user_broadcasts = self
            .relay_user_broadcasts
            .unwrap_or(swim.relay_user_broadcasts);
        swim.suspicion_mult = self.suspicion_mult.unwrap_or(swim.suspicion_mult);
        swim.suspicion_max_timeout_mult = self
            .suspicion_max_timeout_mult
            .unwrap_or(swim.suspicion_max_timeout_mult);
        swim.awareness_max_multiplier = self
            .awareness_max_multiplier
            .unwrap_or(swim.awareness_max_multiplier);
        swim.retransmit_mult = self.retransmit_mult.unwrap_or(swim.retransmit_mult);
        swim.gossip_nodes = self.gossip_nodes.unwrap_or(swim.gossip_nodes);
        swim.indirect_checks = self.indirect_checks.unwrap_or(swim.indirect_checks);
        let mut config = NodeConfig::new(bind, swim);
        config.max_incoming_streams = self
            .max_incoming_streams
            .unwrap_or(config.max_incoming_streams);
        config.event_capacity = self.event_capacity.unwrap_or(config.event_capacity);
        config.event_bytes = self.event_bytes.unwrap_or(config.event_bytes);
        config.default_port = self.default_port;
        config.dns_servers = self.dns_servers;
        config.join_retries = self.join_retries.unwrap_or(config.join_retries);
        config.join_retry_delay = self.join_retry_delay.unwrap_or(config.join_retry_delay);
        Ok(config)
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
    }

    #[test]
    fn effective_settings_spell_out_the_profile_and_read_back_the_same() {
        let given: NodeSettings = serde_json::from_str(
            r#"{"name":"a","bind":"127.0.0.1:7000","profile":"wan","gossip_interval":"1s",
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
    fn settings_apply_over_the_profile() {
        let config = serde_json::from_str::<NodeSettings>(
            r#"{"name":"a","bind":"127.0.0.1:1","advertise":"10.0.0.1:7946","profile":"wan",
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
