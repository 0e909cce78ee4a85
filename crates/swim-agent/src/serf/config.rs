//! The agent's configuration as Go's `serf agent` reads it: defaults, JSON
//! config files and directories (`-config-file`, `-config-dir`: Go's
//! `DecodeConfig`, keys as its `mapstructure` tags), merged in Go's order
//! (`MergeConfig`: defaults < files in order < flags). Keys Go knows that
//! this agent does not implement are refused by name, unknown keys too
//! (Go's `ErrorUnused`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// Go's default gossip port, used when an address has none.
pub const DEFAULT_BIND_PORT: u16 = 7946;

/// Go's `minRetryInterval`.
const MIN_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Go's `minBroadcastTimeout`.
const MIN_BROADCAST_TIMEOUT: Duration = Duration::from_secs(1);

/// Go config keys (and the flags that set them) not implemented here.
pub const UNIMPLEMENTED_KEYS: [(&str, &str); 6] = [
    ("discover", "mDNS discovery"),
    ("interface", "binding to an interface by name"),
    ("enable_syslog", "syslog"),
    ("syslog_facility", "syslog"),
    ("statsite_addr", "statsite metrics"),
    ("statsd_addr", "statsd metrics"),
];

/// One layer of configuration: what a file or the flags set. `None` (or
/// empty) is "not set", as Go's zero values are in `MergeConfig`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Go's `node_name`.
    pub node_name: Option<String>,
    /// Go's `role`.
    pub role: Option<String>,
    /// Go's `disable_coordinates`.
    pub disable_coordinates: bool,
    /// Go's `tags`.
    pub tags: Vec<(String, String)>,
    /// Go's `tags_file`.
    pub tags_file: Option<String>,
    /// Go's `bind`.
    pub bind: Option<String>,
    /// Go's `advertise`.
    pub advertise: Option<String>,
    /// Go's `encrypt_key`.
    pub encrypt_key: Option<String>,
    /// Go's `keyring_file`.
    pub keyring_file: Option<String>,
    /// Go's `log_level`.
    pub log_level: Option<String>,
    /// Go's `rpc_addr`.
    pub rpc_addr: Option<String>,
    /// Go's `rpc_auth`.
    pub rpc_auth: Option<String>,
    /// Go's `protocol`.
    pub protocol: Option<u8>,
    /// Go's `replay_on_join`.
    pub replay_on_join: bool,
    /// Go's `query_response_size_limit`.
    pub query_response_size_limit: Option<usize>,
    /// Go's `query_size_limit`.
    pub query_size_limit: Option<usize>,
    /// Go's `user_event_size_limit`.
    pub user_event_size_limit: Option<usize>,
    /// Go's `start_join`.
    pub start_join: Vec<String>,
    /// Go's `event_handlers`.
    pub event_handlers: Vec<String>,
    /// Go's `profile`.
    pub profile: Option<String>,
    /// Go's `snapshot_path`.
    pub snapshot_path: Option<String>,
    /// Go's `leave_on_terminate`.
    pub leave_on_terminate: bool,
    /// Go's `skip_leave_on_interrupt`.
    pub skip_leave_on_interrupt: bool,
    /// Go's `reconnect_interval`.
    pub reconnect_interval: Option<Duration>,
    /// Go's `reconnect_timeout`.
    pub reconnect_timeout: Option<Duration>,
    /// Go's `tombstone_timeout`.
    pub tombstone_timeout: Option<Duration>,
    /// Go's `disable_name_resolution`.
    pub disable_name_resolution: bool,
    /// Go's `retry_join`.
    pub retry_join: Vec<String>,
    /// Go's `retry_max_attempts`.
    pub retry_max_attempts: Option<u32>,
    /// Go's `retry_interval`.
    pub retry_interval: Option<Duration>,
    /// Go's `rejoin_after_leave`.
    pub rejoin_after_leave: bool,
    /// Go: `enable_compression` in files; `-disable-compression` as a flag.
    pub enable_compression: Option<bool>,
    /// Go's `broadcast_timeout`.
    pub broadcast_timeout: Option<Duration>,
    /// swim-agent's HTTP view, `/metrics` and health (`-http`; not Go's).
    pub http: Option<String>,
}

/// The merged configuration, with Go's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// Every layer merged.
    pub merged: Config,
    /// `node_name`, defaulted as Go's `DefaultConfig`.
    pub node_name: String,
    /// `bind`, defaulted as Go's `DefaultConfig`.
    pub bind: String,
    /// `log_level`, defaulted as Go's `DefaultConfig`.
    pub log_level: String,
    /// `rpc_addr`, defaulted as Go's `DefaultConfig`.
    pub rpc_addr: String,
    /// `protocol`, defaulted as Go's `DefaultConfig`.
    pub protocol: u8,
    /// `profile`, defaulted as Go's `DefaultConfig`.
    pub profile: String,
    /// `retry_interval`, defaulted as Go's `DefaultConfig`.
    pub retry_interval: Duration,
    /// `broadcast_timeout`, defaulted as Go's `DefaultConfig`.
    pub broadcast_timeout: Duration,
    /// `query_response_size_limit`, defaulted as Go's `DefaultConfig`.
    pub query_response_size_limit: usize,
    /// `query_size_limit`, defaulted as Go's `DefaultConfig`.
    pub query_size_limit: usize,
    /// `user_event_size_limit`, defaulted as Go's `DefaultConfig`.
    pub user_event_size_limit: usize,
    /// `enable_compression`, defaulted as Go's `DefaultConfig`.
    pub enable_compression: bool,
    /// Warnings Go prints when it raises a setting.
    pub warnings: Vec<String>,
}

impl Config {
    /// `other` over `self`, as Go's `MergeConfig(self, other)`: set values
    /// win, tags merge key by key, lists append.
    pub fn merge(mut self, other: Config) -> Config {
        macro_rules! set {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        macro_rules! flag {
            ($($f:ident),*) => { $( self.$f |= other.$f; )* };
        }
        set!(
            node_name,
            role,
            tags_file,
            bind,
            advertise,
            encrypt_key,
            keyring_file,
            log_level,
            rpc_addr,
            rpc_auth,
            protocol,
            query_response_size_limit,
            query_size_limit,
            user_event_size_limit,
            profile,
            snapshot_path,
            reconnect_interval,
            reconnect_timeout,
            tombstone_timeout,
            retry_max_attempts,
            retry_interval,
            enable_compression,
            broadcast_timeout,
            http
        );
        flag!(
            disable_coordinates,
            replay_on_join,
            leave_on_terminate,
            skip_leave_on_interrupt,
            disable_name_resolution,
            rejoin_after_leave
        );
        for (k, v) in other.tags {
            match self.tags.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => self.tags.push((k, v)),
            }
        }
        self.start_join.extend(other.start_join);
        self.event_handlers.extend(other.event_handlers);
        self.retry_join.extend(other.retry_join);
        self
    }

    /// Go's defaults applied to the merged layers; the node name falls
    /// back to the host name.
    pub fn effective(self) -> Result<Effective, String> {
        let mut warnings = Vec::new();
        let node_name = match &self.node_name {
            Some(n) => n.clone(),
            None => hostname().ok_or("Error determining hostname")?,
        };
        let mut retry_interval = self.retry_interval.unwrap_or(Duration::from_secs(30));
        if retry_interval < MIN_RETRY_INTERVAL {
            retry_interval = MIN_RETRY_INTERVAL;
            warnings.push(format!(
                "Warning: 'RetryInterval' is too low. Setting to {retry_interval:?}"
            ));
        }
        let mut broadcast_timeout = self.broadcast_timeout.unwrap_or(Duration::from_secs(5));
        if broadcast_timeout < MIN_BROADCAST_TIMEOUT {
            broadcast_timeout = MIN_BROADCAST_TIMEOUT;
            warnings.push(format!(
                "Warning: 'BroadcastTimeout' is too low. Setting to {broadcast_timeout:?}"
            ));
        }
        if self.rejoin_after_leave && self.snapshot_path.is_none() {
            warnings.push("Warning: 'RejoinAfterLeave' enabled without snapshot file".into());
        }
        for handler in &self.event_handlers {
            for script in crate::serf::handlers::EventScript::parse(handler) {
                if !script.filter.valid() {
                    return Err(format!("Invalid event script: {script}"));
                }
            }
        }
        Ok(Effective {
            node_name,
            bind: self.bind.clone().unwrap_or_else(|| "0.0.0.0".into()),
            log_level: self.log_level.clone().unwrap_or_else(|| "INFO".into()),
            rpc_addr: self
                .rpc_addr
                .clone()
                .unwrap_or_else(|| "127.0.0.1:7373".into()),
            protocol: self.protocol.unwrap_or(swim_serf::PROTOCOL_VERSION_MAX),
            profile: self.profile.clone().unwrap_or_else(|| "lan".into()),
            retry_interval,
            broadcast_timeout,
            query_response_size_limit: self.query_response_size_limit.unwrap_or(1024),
            query_size_limit: self.query_size_limit.unwrap_or(1024),
            user_event_size_limit: self.user_event_size_limit.unwrap_or(512),
            enable_compression: self.enable_compression.unwrap_or(true),
            merged: self,
            warnings,
        })
    }
}

fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Reads config files and directories in order (Go's `ReadConfigPaths`):
/// a directory's `*.json` files one level deep, in name order.
pub fn read_paths(paths: &[String]) -> Result<Config, String> {
    let mut result = Config::default();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| format!("Error reading '{path}': {e}"))?;
        if !meta.is_dir() {
            result = result.merge(read_file(Path::new(path))?);
            continue;
        }
        let mut names: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("Error reading '{path}': {e}"))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".json"))
            .collect();
        names.sort();
        for file in names {
            result = result.merge(read_file(&file)?);
        }
    }
    Ok(result)
}

fn read_file(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Error reading '{}': {e}", path.display()))?;
    decode(&text).map_err(|e| format!("Error decoding '{}': {e}", path.display()))
}

/// One JSON config document (Go's `DecodeConfig`).
pub fn decode(text: &str) -> Result<Config, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Object(map) = value else {
        return Err("the configuration must be a JSON object".into());
    };
    let mut c = Config::default();
    for (key, v) in &map {
        if let Some((_, what)) = UNIMPLEMENTED_KEYS.iter().find(|(k, _)| k == key) {
            return Err(format!(
                "config key '{key}' ({what}) is not implemented by swim-agent's serf agent"
            ));
        }
        let k = key.as_str();
        match k {
            "node_name" => c.node_name = Some(string(k, v)?),
            "role" => c.role = Some(string(k, v)?),
            "disable_coordinates" => c.disable_coordinates = boolean(k, v)?,
            "tags" => c.tags = string_map(k, v)?,
            "tags_file" => c.tags_file = Some(string(k, v)?),
            "bind" => c.bind = Some(string(k, v)?),
            "advertise" => c.advertise = Some(string(k, v)?),
            "encrypt_key" => c.encrypt_key = Some(string(k, v)?),
            "keyring_file" => c.keyring_file = Some(string(k, v)?),
            "log_level" => c.log_level = Some(string(k, v)?),
            "rpc_addr" => c.rpc_addr = Some(string(k, v)?),
            "rpc_auth" => c.rpc_auth = Some(string(k, v)?),
            "protocol" => c.protocol = Some(number(k, v)?),
            "replay_on_join" => c.replay_on_join = boolean(k, v)?,
            "query_response_size_limit" => c.query_response_size_limit = Some(number(k, v)?),
            "query_size_limit" => c.query_size_limit = Some(number(k, v)?),
            "user_event_size_limit" => c.user_event_size_limit = Some(number(k, v)?),
            "start_join" => c.start_join = strings(k, v)?,
            "event_handlers" => c.event_handlers = strings(k, v)?,
            "profile" => c.profile = Some(string(k, v)?),
            "snapshot_path" => c.snapshot_path = Some(string(k, v)?),
            "leave_on_terminate" => c.leave_on_terminate = boolean(k, v)?,
            "skip_leave_on_interrupt" => c.skip_leave_on_interrupt = boolean(k, v)?,
            "reconnect_interval" => c.reconnect_interval = Some(duration(k, v)?),
            "reconnect_timeout" => c.reconnect_timeout = Some(duration(k, v)?),
            "tombstone_timeout" => c.tombstone_timeout = Some(duration(k, v)?),
            "disable_name_resolution" => c.disable_name_resolution = boolean(k, v)?,
            "retry_join" => c.retry_join = strings(k, v)?,
            "retry_max_attempts" => c.retry_max_attempts = Some(number(k, v)?),
            "retry_interval" => c.retry_interval = Some(duration(k, v)?),
            "rejoin_after_leave" => c.rejoin_after_leave = boolean(k, v)?,
            "enable_compression" => c.enable_compression = Some(boolean(k, v)?),
            "broadcast_timeout" => c.broadcast_timeout = Some(duration(k, v)?),
            _ => return Err(format!("invalid config key '{key}'")),
        }
    }
    // Go's zero values mean "not set" when merged.
    let zero = |n: &mut Option<usize>| {
        if *n == Some(0) {
            *n = None
        }
    };
    zero(&mut c.query_response_size_limit);
    zero(&mut c.query_size_limit);
    zero(&mut c.user_event_size_limit);
    if c.protocol == Some(0) {
        c.protocol = None;
    }
    Ok(c)
}

fn string(key: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("'{key}' expected a string, got {v}"))
}

fn boolean(key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("'{key}' expected a bool, got {v}"))
}

fn number<T: TryFrom<u64>>(key: &str, v: &Value) -> Result<T, String> {
    v.as_u64()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("'{key}' expected a non-negative integer in range, got {v}"))
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items.iter().map(|i| string(key, i)).collect(),
        // mapstructure's weak decoding is off: a single string is an error
        // in Go too.
        _ => Err(format!("'{key}' expected a list of strings, got {v}")),
    }
}

fn string_map(key: &str, v: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(map) = v else {
        return Err(format!("'{key}' expected an object of strings, got {v}"));
    };
    map.iter()
        .map(|(k, v)| Ok((k.clone(), string(key, v)?)))
        .collect()
}

fn duration(key: &str, v: &Value) -> Result<Duration, String> {
    parse_duration(&string(key, v)?).map_err(|e| format!("'{key}': {e}"))
}

/// A Go duration (`time.ParseDuration`): `300ms`, `1m30s`, `1.5h`; no sign.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration \"{s}\""))?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += value * nanos;
        rest = &rest[u..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("5 s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn files_merge_as_go_merges_them() {
        let a = decode(r#"{"node_name":"a","tags":{"role":"web","dc":"x"},"start_join":["h1"]}"#)
            .unwrap();
        let b = decode(r#"{"tags":{"dc":"y"},"start_join":["h2"],"retry_interval":"5s"}"#).unwrap();
        let m = a.merge(b);
        assert_eq!(m.node_name.as_deref(), Some("a"));
        let mut tags = m.tags.clone();
        tags.sort();
        assert_eq!(
            tags,
            vec![("dc".into(), "y".into()), ("role".into(), "web".into())]
        );
        assert_eq!(m.start_join, vec!["h1", "h2"]);
        assert_eq!(m.retry_interval, Some(Duration::from_secs(5)));
    }

    #[test]
    fn unknown_and_unimplemented_keys_are_refused_by_name() {
        let e = decode(r#"{"discover":"c"}"#).unwrap_err();
        assert!(
            e.contains("'discover'") && e.contains("not implemented"),
            "{e}"
        );
        let e = decode(r#"{"nodename":"c"}"#).unwrap_err();
        assert!(e.contains("invalid config key 'nodename'"), "{e}");
        assert!(decode(r#"{"protocol":"4"}"#).is_err());
    }

    #[test]
    fn low_settings_are_raised_with_go_warnings() {
        let c = Config {
            node_name: Some("n".into()),
            retry_interval: Some(Duration::from_millis(10)),
            ..Config::default()
        };
        let e = c.effective().unwrap();
        assert_eq!(e.retry_interval, MIN_RETRY_INTERVAL);
        assert_eq!(e.warnings.len(), 1);
        assert_eq!(e.rpc_addr, "127.0.0.1:7373");
    }
}
