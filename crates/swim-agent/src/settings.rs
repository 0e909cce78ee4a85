//! The agent's configuration: the node's settings (`[node]`, swim-node's
//! [`NodeSettings`]) and the agent's own options (`[agent]`), read from a
//! TOML file, then environment variables, then flags, each overriding the
//! one before. Every error names the source (file, variable or flag), the
//! key and what is wrong with it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};
use swim_node::{NodeConfig, NodeSettings, Seed};

/// Prefix of the environment variables that set `[node]` keys.
pub const NODE_ENV_PREFIX: &str = "SWIM_NODE_";
/// Prefix of the environment variables that set `[agent]` keys.
pub const AGENT_ENV_PREFIX: &str = "SWIM_AGENT_";
/// The variable naming the config file (read by the command line, so not a
/// key of `[agent]`).
pub const CONFIG_FILE_ENV: &str = "SWIM_AGENT_CONFIG_FILE";

/// Everything a config file can hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The node: name, addresses, keys, timings… (swim-node's settings).
    pub node: NodeSettings,
    /// How the agent runs it.
    pub agent: AgentOptions,
}

/// What the agent talks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Chosen by what stdin is: a service when it is `/dev/null` (as under
    /// systemd, in a container, from cron) or closed; lines otherwise (a
    /// pipe, a file or a terminal someone types into). See [`Mode::resolve`].
    #[default]
    Auto,
    /// JSON lines: events on stdout, commands on stdin, end of input quits
    /// (`interop/AGENT-PROTOCOL.md`; for tests and scripts).
    Lines,
    /// A long-running service: stdin and stdout unused; it runs until
    /// SIGTERM or SIGINT.
    Service,
}

impl Mode {
    /// The mode to run in: `Auto` becomes `Service` when stdin is
    /// `/dev/null` or closed — nobody can send a command, and the end of
    /// input would stop a service at once — and `Lines` otherwise.
    pub fn resolve(self) -> Mode {
        match self {
            Mode::Auto if stdin_is_null() => Mode::Service,
            Mode::Auto => Mode::Lines,
            chosen => chosen,
        }
    }
}

/// Whether stdin is closed or the null device (a character device that is
/// not a terminal).
fn stdin_is_null() -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;
    if std::io::stdin().is_terminal() {
        return false;
    }
    match std::fs::metadata("/dev/stdin") {
        Ok(meta) => meta.file_type().is_char_device(),
        Err(_) => true,
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Text for people: coloured at a terminal, plain otherwise.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// Which adapter runs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// `swim-tokio`.
    #[default]
    Tokio,
    /// `swim-async-std`.
    AsyncStd,
}

/// The agent's own options, `[agent]` in a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentOptions {
    /// JSON lines on stdin/stdout, or a service.
    pub mode: Mode,
    /// The adapter that runs the node.
    pub runtime: RuntimeKind,
    /// Seeds to join after start: addresses, host names (every address
    /// tried) or DNS SRV names. How often and how patiently the join is
    /// tried again are the node's `join_retries` (a count or `"forever"`),
    /// `join_retry_delay` and `join_retry_max_delay`.
    pub join: Vec<String>,
    /// Local state sent with every push/pull.
    pub state: String,
    /// A file of encryption keys, one hex key a line (the first is the
    /// primary; `#` starts a comment), instead of `node.keys`.
    pub keys_file: Option<PathBuf>,
    /// Whether SIGTERM and SIGINT leave the cluster before shutting down;
    /// false stops like a crash (peers see a failure).
    pub leave_on_stop: bool,
    /// How long a leave may take to spread before the node shuts down anyway.
    #[serde(with = "humantime_serde")]
    pub leave_timeout: Duration,
    /// How long the node keeps answering probes after its leave has been
    /// sent, so peers that the departure has not reached yet hear it from
    /// the others rather than suspect a silent node (Serf's
    /// `LeavePropagateDelay`). Zero shuts down at once.
    #[serde(with = "humantime_serde")]
    pub leave_propagate_delay: Duration,
    /// Where to serve `/`, `/metrics` and `/v1/*`; absent: no HTTP.
    pub http: Option<SocketAddr>,
    /// Most HTTP connections served at once. A new one past the limit
    /// closes the longest-idle connection to make room (one in the middle
    /// of a request finishes it first); it is refused only when none is
    /// idle.
    pub http_max_connections: usize,
    /// Most HTTP connections from one client address; past it, that
    /// client's own longest-idle connection makes room.
    pub http_max_connections_per_client: usize,
    /// Members (this node included) that must be alive for `/v1/health`
    /// to answer 200; with seeds in `join`, a join that reached another
    /// node is required as well.
    pub min_members: usize,
    /// Log level (`trace`, `debug`, `info`, `warn`, `error`, `off`; the
    /// aliases `warning`, `err`, `fatal` and `critical` too) or tracing's
    /// `target=level,...` directives; `RUST_LOG` wins when set. SIGHUP
    /// reloads it.
    pub log: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
}

impl Default for AgentOptions {
    fn default() -> AgentOptions {
        AgentOptions {
            mode: Mode::Auto,
            runtime: RuntimeKind::Tokio,
            join: Vec::new(),
            state: String::new(),
            keys_file: None,
            leave_on_stop: true,
            leave_timeout: Duration::from_secs(5),
            leave_propagate_delay: Duration::from_secs(1),
            http: None,
            http_max_connections: 64,
            http_max_connections_per_client: 16,
            min_members: 1,
            log: "info".into(),
            log_format: LogFormat::Text,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A required setting is set nowhere.
    Missing {
        /// The key, like `node.name`.
        key: String,
        /// Where it could have been given.
        hint: String,
    },
    /// A setting is malformed or unusable.
    Invalid {
        /// Where the value came from: a file, a variable, a flag.
        source: String,
        /// The key, like `node.probe_interval`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// Whether the fix is to give a missing setting (a usage error).
    pub fn is_missing(&self) -> bool {
        matches!(self, ConfigError::Missing { .. })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { key, hint } => write!(f, "{key} is required: {hint}"),
            ConfigError::Invalid {
                source,
                key,
                reason,
            } if key.is_empty() => write!(f, "{source}: {reason}"),
            ConfigError::Invalid {
                source,
                key,
                reason,
            } => write!(f, "{source}: {key}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line, by key (`node.name`, `agent.join`…),
/// with the flag that gave each, for error messages.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    values: BTreeMap<String, (String, Raw)>,
}

/// A value as a flag gave it.
#[derive(Debug, Clone)]
pub enum Raw {
    /// Text, read as the key's type (see [`typed`]).
    Text(String),
    /// A list of texts.
    List(Vec<String>),
    /// A switch.
    Bool(bool),
}

impl CommandLine {
    /// Records that `flag` set `key` to `value` (a later call for the same
    /// key wins).
    pub fn set(&mut self, key: &str, flag: impl Into<String>, value: Raw) {
        self.values.insert(key.to_string(), (flag.into(), value));
    }
}

/// Where the configuration is read from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The TOML file, if any.
    pub file: Option<PathBuf>,
    /// The environment, as `(name, value)` pairs (only `SWIM_NODE_*` and
    /// `SWIM_AGENT_*` are read).
    pub env: Vec<(String, String)>,
    /// The flags.
    pub flags: CommandLine,
}

/// A configuration ready to run.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// As read, after every override (keys as given).
    pub config: AgentConfig,
    /// The node's configuration.
    pub node: NodeConfig,
    /// The seeds of `agent.join`, parsed.
    pub seeds: Vec<Seed>,
    /// Where the encryption keys came from, if any were given.
    pub keys_from: Option<String>,
    /// The layers read, lowest first, for `--print-config`.
    pub layers: Vec<String>,
    /// The layers merged, to tell where a value came from.
    figment: Figment,
}

impl Sources {
    /// Reads every layer, checks everything, and builds the node's
    /// configuration.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let template = template();
        let mut figment = Figment::new();
        let mut layers = vec!["defaults".to_string()];
        if let Some(path) = &self.file {
            read_bounded(path, MAX_CONFIG_FILE).map_err(|reason| ConfigError::Invalid {
                source: format!("file {}", path.display()),
                key: String::new(),
                reason: format!("cannot read the config file: {reason}"),
            })?;
            figment = figment.merge(Toml::file_exact(path));
            layers.push(format!("file {}", path.display()));
        }
        let env = Environment::new(&self.env, &template);
        if !env.dict.is_empty() {
            layers.push("environment".into());
        }
        figment = figment.merge(env);
        let flags = Flags::new(&self.flags, &template)?;
        if !flags.dict.is_empty() {
            layers.push("command line".into());
        }
        figment = figment.merge(flags);
        let config: AgentConfig = figment.extract().map_err(|e| describe(&figment, e))?;
        let origin = |key: &str| origin_of(&figment, key);

        let mut settings = config.node.clone();
        let mut keys_from = (!settings.keys.is_empty()).then(|| origin("node.keys"));
        if let Some(path) = &config.agent.keys_file {
            if !settings.keys.is_empty() {
                return Err(ConfigError::Invalid {
                    source: origin("agent.keys_file"),
                    key: "agent.keys_file".into(),
                    reason: format!(
                        "keys are also given by node.keys ({}): use one or the other",
                        origin("node.keys")
                    ),
                });
            }
            settings.keys = read_keys_file(path)?;
            keys_from = Some(format!("file {}", path.display()));
        }
        let seeds = config
            .agent
            .join
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Seed>().map_err(|e| ConfigError::Invalid {
                    source: origin("agent.join"),
                    key: "agent.join".into(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            source: origin(key),
            key: key.into(),
            reason: reason.into(),
        };
        let agent = &config.agent;
        for (key, zero) in [
            (
                "agent.http_max_connections",
                agent.http_max_connections == 0,
            ),
            (
                "agent.http_max_connections_per_client",
                agent.http_max_connections_per_client == 0,
            ),
            ("agent.min_members", agent.min_members == 0),
        ] {
            if zero {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if agent.leave_on_stop && agent.leave_timeout.is_zero() {
            return Err(invalid(
                "agent.leave_timeout",
                "must be positive while agent.leave_on_stop is true (or the leave never spreads)",
            ));
        }
        log_filter(&agent.log).map_err(|reason| invalid("agent.log", &reason))?;
        for (key, missing) in [
            ("node.name", settings.name.is_empty()),
            ("node.bind", settings.bind.is_none()),
        ] {
            if missing {
                let field = key.trim_start_matches("node.");
                return Err(ConfigError::Missing {
                    key: key.into(),
                    hint: format!(
                        "give --{field}, {NODE_ENV_PREFIX}{} or `{field}` under [node] in a \
                         config file",
                        field.to_uppercase()
                    ),
                });
            }
        }
        let node = settings.into_config().map_err(|e| {
            let key = format!("node.{}", e.field);
            let source = if e.field == "keys" {
                keys_from.clone().unwrap_or_else(|| origin(&key))
            } else {
                origin(&key)
            };
            ConfigError::Invalid {
                source,
                key,
                reason: e.reason,
            }
        })?;
        // What the protocol itself refuses, named as a setting here
        // rather than when the node starts.
        node.swim.validate().map_err(|e| {
            let key = format!("node.{}", e.field.replace('.', "_"));
            ConfigError::Invalid {
                source: origin(&key),
                key,
                reason: e.reason.to_string(),
            }
        })?;
        // Values the protocol accepts but that leave a node useless.
        for (key, useless, reason) in [
            (
                "node.max_incoming_streams",
                node.max_incoming_streams == 0,
                "must be at least 1: with 0 no node can join this one",
            ),
            (
                "node.gossip_interval",
                node.swim.gossip_interval.is_zero(),
                "must be positive: with 0 the node never gossips",
            ),
            (
                "node.gossip_nodes",
                node.swim.gossip_nodes == 0,
                "must be at least 1: with 0 the node never gossips",
            ),
            (
                "node.event_capacity",
                node.event_capacity == 0,
                "must be at least 1: with 0 every event is dropped",
            ),
            (
                "node.event_bytes",
                node.event_bytes == 0,
                "must be at least 1: with 0 every event is dropped",
            ),
            (
                "node.join_retry_delay",
                node.join_retries != swim_node::JoinRetries::Times(0)
                    && node.join_retry_delay.is_zero(),
                "must be positive while join_retries is not 0",
            ),
        ] {
            if useless {
                return Err(invalid(key, reason));
            }
        }
        Ok(Loaded {
            config,
            node,
            seeds,
            keys_from,
            layers,
            figment,
        })
    }
}

impl Loaded {
    /// Where the value of `key` (like `node.bind`) came from: "file PATH",
    /// "environment variable NAME", "flag --x" or "default".
    pub fn origin(&self, key: &str) -> String {
        origin_of(&self.figment, key)
    }

    /// Fixes `agent.mode` (see [`Mode::resolve`]) and, for a service whose
    /// `node.join_retries` is set nowhere, makes joining patient: a
    /// service outlives seeds that start after it.
    pub fn resolve_mode(&mut self) {
        self.config.agent.mode = self.config.agent.mode.resolve();
        if self.config.agent.mode == Mode::Service && self.config.node.join_retries.is_none() {
            self.config.node.join_retries = Some(swim_node::JoinRetries::Forever);
            self.node.join_retries = swim_node::JoinRetries::Forever;
        }
    }

    /// The configuration the node runs with, as a config file: every value
    /// written out (the preset's timings too), encryption keys masked.
    pub fn effective_toml(&self) -> String {
        let mut shown = self.config.clone();
        let keys = match &self.config.agent.keys_file {
            Some(path) => read_keys_file(path).unwrap_or_default(),
            None => self.config.node.keys.clone(),
        };
        if let Ok(node) = self.config.node.effective() {
            shown.node = node;
        }
        let masked: Vec<String> = keys.iter().map(|k| mask_key(k)).collect();
        let mut header = format!(
            "# swim-agent's effective configuration ({}; each overrides the one before).\n",
            self.layers.join(" < ")
        );
        if masked.is_empty() {
            header.push_str("# No encryption keys: traffic is not encrypted.\n");
        } else {
            let from = self.keys_from.as_deref().unwrap_or("node.keys");
            header.push_str(&format!(
                "# Encryption keys ({} from {from}; the first is the primary): {}\n",
                masked.len(),
                masked.join(", ")
            ));
        }
        if self.config.agent.keys_file.is_none() {
            shown.node.keys = masked;
        }
        // The serializer fails only on values TOML cannot hold (none here);
        // say so rather than print half a file.
        let body = toml::to_string(&shown)
            .unwrap_or_else(|e| format!("# cannot write the configuration as TOML: {e}\n"));
        let newline = if body.ends_with('\n') { "" } else { "\n" };
        format!("{header}\n{body}{newline}")
    }
}

/// Aliases of log levels people write, and tracing's names for them.
const LEVEL_ALIASES: [(&str, &str); 5] = [
    ("warning", "warn"),
    ("err", "error"),
    ("fatal", "error"),
    ("critical", "error"),
    ("none", "off"),
];

/// `agent.log` as a filter tracing reads: levels and their aliases, or
/// `target=level` directives. A bare word that is no level is refused:
/// tracing would read it as a target and silently log nothing else.
pub fn log_filter(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let level = |word: &str| -> Result<String, String> {
        let lower = word.trim().to_ascii_lowercase();
        if LEVELS.contains(&lower.as_str()) {
            return Ok(lower);
        }
        LEVEL_ALIASES
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map(|(_, level)| level.to_string())
            .ok_or_else(|| {
                format!(
                    "unknown log level {word:?}: expected one of {} (or warning, err), or \
                     target=level directives",
                    LEVELS.join(", ")
                )
            })
    };
    let mut directives = Vec::new();
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        directives.push(match directive.rsplit_once('=') {
            Some((target, lvl)) => format!("{target}={}", level(lvl)?),
            None => level(directive)?,
        });
    }
    if directives.is_empty() {
        return Err("empty: give a log level such as info".into());
    }
    let filter = directives.join(",");
    tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| e.to_string())?;
    Ok(filter)
}

/// The largest config file read: far beyond any real one, and a bound on
/// what a path such as `/dev/zero` could make the agent read.
const MAX_CONFIG_FILE: u64 = 1 << 20;
/// The largest keys file read.
const MAX_KEYS_FILE: u64 = 64 << 10;

/// Reads a regular file of at most `limit` bytes as UTF-8 text.
fn read_bounded(path: &Path, limit: u64) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(text)
}

/// A key shown without its bytes: its length, and whether it is valid.
fn mask_key(hex: &str) -> String {
    match swim_node::parse_key(hex) {
        Ok(_) => format!("<secret: {}-byte key>", hex.trim().len() / 2),
        Err(_) => "<secret: not a valid key>".into(),
    }
}

/// Reads a keys file: one hex key a line, blank lines and `#` comments
/// skipped. Errors name the file and the line.
pub fn read_keys_file(path: &Path) -> Result<Vec<String>, ConfigError> {
    let source = format!("file {}", path.display());
    let text = read_bounded(path, MAX_KEYS_FILE).map_err(|reason| ConfigError::Invalid {
        source: source.clone(),
        key: String::new(),
        reason: format!("cannot read the keys file (agent.keys_file): {reason}"),
    })?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let key = line.split('#').next().unwrap_or("").trim();
        if key.is_empty() {
            continue;
        }
        swim_node::parse_key(key).map_err(|reason| ConfigError::Invalid {
            source: format!("{source}, line {}", n + 1),
            key: "agent.keys_file".into(),
            reason,
        })?;
        keys.push(key.to_string());
    }
    if keys.is_empty() {
        return Err(ConfigError::Invalid {
            source,
            key: "agent.keys_file".into(),
            reason: "the keys file holds no key".into(),
        });
    }
    Ok(keys)
}

/// A configuration with every value present, so the type of each key can
/// be looked up: text from the environment or a flag is read as text for
/// text keys (a node named `"123"` stays a name), as a list for list keys
/// (comma-separated, or a TOML array), and as a TOML value otherwise.
fn template() -> Dict {
    let mut full = AgentConfig::default();
    full.node.name = "n".into();
    full.node.bind = Some(SocketAddr::from(([127, 0, 0, 1], 1)));
    if let Ok(node) = full.node.effective() {
        full.node = node;
    }
    full.agent.http = full.node.bind;
    full.agent.keys_file = Some(PathBuf::from("k"));
    match Value::serialize(&full) {
        Ok(Value::Dict(_, dict)) => dict,
        _ => Dict::new(),
    }
}

/// The value `raw` means for `key`, typed by the template.
fn typed(template: &Dict, key: &str, raw: &str) -> Value {
    let mut parts = key.split('.');
    let kind = parts
        .next()
        .and_then(|section| template.get(section))
        .and_then(|v| v.as_dict())
        .and_then(|d| parts.next().and_then(|k| d.get(k)));
    match kind {
        Some(Value::String(..)) => Value::from(raw.to_string()),
        Some(Value::Array(..)) if !raw.trim_start().starts_with('[') => Value::from(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::from(s.to_string()))
                .collect::<Vec<Value>>(),
        ),
        _ => raw
            .parse::<Value>()
            .unwrap_or_else(|_| Value::from(raw.to_string())),
    }
}

/// Puts `value` at dotted `key` in `dict`.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// `SWIM_NODE_*` and `SWIM_AGENT_*` variables as a layer.
struct Environment {
    dict: Dict,
}

impl Environment {
    fn new(vars: &[(String, String)], template: &Dict) -> Environment {
        let mut dict = Dict::new();
        for (name, raw) in vars {
            if name == CONFIG_FILE_ENV {
                continue;
            }
            let key = if let Some(field) = name.strip_prefix(NODE_ENV_PREFIX) {
                format!("node.{}", field.to_ascii_lowercase())
            } else if let Some(field) = name.strip_prefix(AGENT_ENV_PREFIX) {
                format!("agent.{}", field.to_ascii_lowercase())
            } else {
                continue;
            };
            insert(&mut dict, &key, typed(template, &key, raw));
        }
        Environment { dict }
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_: &Profile, keys: &[&str]| {
            format!("SWIM_{}", keys.join("_").to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The flags as a layer; errors name the flag that gave the value.
struct Flags {
    dict: Dict,
    flags: BTreeMap<String, String>,
}

impl Flags {
    fn new(line: &CommandLine, template: &Dict) -> Result<Flags, ConfigError> {
        let mut dict = Dict::new();
        let mut flags = BTreeMap::new();
        for (key, (flag, raw)) in &line.values {
            let known = key
                .split_once('.')
                .and_then(|(section, field)| {
                    template
                        .get(section)
                        .and_then(|v| v.as_dict())
                        .map(|d| d.contains_key(field) || field == "default_port")
                })
                .unwrap_or(false);
            if !known {
                return Err(ConfigError::Invalid {
                    source: format!("flag {flag}"),
                    key: key.clone(),
                    reason: "no such setting (keys are node.FIELD or agent.FIELD; see \
                             --print-config)"
                        .into(),
                });
            }
            let value = match raw {
                Raw::Text(text) => typed(template, key, text),
                Raw::List(items) => Value::from(
                    items
                        .iter()
                        .map(|s| Value::from(s.clone()))
                        .collect::<Vec<Value>>(),
                ),
                Raw::Bool(b) => Value::from(*b),
            };
            insert(&mut dict, key, value);
            flags.insert(key.clone(), flag.clone());
        }
        Ok(Flags { dict, flags })
    }
}

impl Provider for Flags {
    fn metadata(&self) -> Metadata {
        let flags = self.flags.clone();
        Metadata::named("command line").interpolater(move |_: &Profile, keys: &[&str]| {
            let key = keys.join(".");
            flags
                .get(&key)
                .cloned()
                .unwrap_or_else(|| format!("--set {key}"))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Where the value of `key` came from: "file PATH", "environment variable
/// NAME", "flag --x", or "default".
fn origin_of(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(metadata) => source_of(metadata, &Profile::Default, key),
        None => "default".into(),
    }
}

fn source_of(metadata: &Metadata, profile: &Profile, key: &str) -> String {
    let keys: Vec<&str> = key.split('.').collect();
    match &metadata.source {
        Some(Source::File(path)) => format!("file {}", path.display()),
        _ if metadata.name == "environment variable" => {
            format!(
                "environment variable {}",
                metadata.interpolate(profile, &keys)
            )
        }
        _ if metadata.name == "command line" => {
            format!("flag {}", metadata.interpolate(profile, &keys))
        }
        _ => metadata.name.to_string(),
    }
}

/// The first of figment's errors, as the source, the key and the reason.
fn describe(figment: &Figment, error: figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let source = match &error.metadata {
        Some(metadata) => {
            let profile = error.profile.clone().unwrap_or(Profile::Default);
            source_of(metadata, &profile, &key)
        }
        None if key.is_empty() => "configuration".into(),
        None => origin_of(figment, &key),
    };
    ConfigError::Invalid {
        source,
        key,
        reason: error.kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_node::JoinRetries;

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("swim-agent-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn invalid(e: ConfigError) -> (String, String, String) {
        match e {
            ConfigError::Invalid {
                source,
                key,
                reason,
            } => (source, key, reason),
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let file = temp_file(
            "layers.toml",
            r#"
            [node]
            name = "from-file"
            bind = "127.0.0.1:7001"
            preset = "local"
            probe_interval = "3s"
            gossip_interval = "300ms"
            suspicion_mult = 6
            [agent]
            join = ["127.0.0.1:7100"]
            leave_timeout = "9s"
            leave_propagate_delay = "250ms"
            "#,
        );
        let mut flags = CommandLine::default();
        flags.set("node.gossip_interval", "--set", Raw::Text("150ms".into()));
        flags.set("node.name", "--name", Raw::Text("from-flag".into()));
        let loaded = Sources {
            file: Some(file),
            env: env(&[
                ("SWIM_NODE_NAME", "from-env"),
                ("SWIM_NODE_PROBE_INTERVAL", "2s"),
                ("SWIM_NODE_GOSSIP_INTERVAL", "250ms"),
                ("SWIM_AGENT_JOIN", "127.0.0.1:7200, 127.0.0.1:7201"),
                ("SWIM_OTHER", "ignored"),
            ]),
            flags,
        }
        .load()
        .unwrap();
        assert_eq!(
            loaded.node.swim.name, "from-flag",
            "flag over env over file"
        );
        assert_eq!(loaded.node.swim.probe_interval, Duration::from_secs(2));
        assert_eq!(loaded.node.swim.gossip_interval, Duration::from_millis(150));
        assert_eq!(loaded.node.swim.suspicion_mult, 6, "file over default");
        assert_eq!(loaded.config.agent.leave_timeout, Duration::from_secs(9));
        assert_eq!(
            loaded.config.agent.leave_propagate_delay,
            Duration::from_millis(250)
        );
        assert_eq!(loaded.seeds.len(), 2, "env list, comma-separated");
        assert_eq!(
            loaded.node.join_retries,
            JoinRetries::Times(3),
            "default: the node's retries only"
        );
        assert_eq!(
            loaded.layers,
            [
                "defaults",
                &format!("file {}", loaded_file("layers.toml")),
                "environment",
                "command line"
            ]
        );
    }

    fn loaded_file(name: &str) -> String {
        std::env::temp_dir()
            .join(format!("swim-agent-settings-{}", std::process::id()))
            .join(name)
            .display()
            .to_string()
    }

    #[test]
    fn text_keys_stay_text_and_numbers_are_numbers() {
        let loaded = Sources {
            env: env(&[
                ("SWIM_NODE_NAME", "123"),
                ("SWIM_NODE_META", "true"),
                ("SWIM_NODE_BIND", "127.0.0.1:0"),
                ("SWIM_NODE_SUSPICION_MULT", "7"),
                ("SWIM_NODE_COMPRESSION", "false"),
                ("SWIM_NODE_CIDRS_ALLOWED", r#"["127.0.0.0/8"]"#),
            ]),
            ..Sources::default()
        }
        .load()
        .unwrap();
        assert_eq!(loaded.node.swim.name, "123");
        assert_eq!(loaded.node.swim.meta, b"true");
        assert_eq!(loaded.node.swim.suspicion_mult, 7);
        assert!(!loaded.node.swim.enable_compression);
        assert_eq!(loaded.node.swim.cidrs_allowed.len(), 1);
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_reason() {
        let file = temp_file(
            "bad-duration.toml",
            "[node]\nname = \"a\"\nbind = \"127.0.0.1:0\"\nprobe_interval = \"5 parsecs\"\n",
        );
        let (source, key, reason) = invalid(
            Sources {
                file: Some(file.clone()),
                ..Sources::default()
            }
            .load()
            .unwrap_err(),
        );
        assert_eq!(source, format!("file {}", file.display()));
        assert_eq!(key, "node.probe_interval");
        assert!(
            reason.contains("parsecs") || reason.contains("unit"),
            "{reason}"
        );

        let file = temp_file("typo.toml", "[node]\nnmae = \"a\"\n");
        let (source, key, reason) = invalid(
            Sources {
                file: Some(file.clone()),
                ..Sources::default()
            }
            .load()
            .unwrap_err(),
        );
        assert_eq!(source, format!("file {}", file.display()));
        assert_eq!(key, "node.nmae");
        assert!(reason.contains("nmae"), "{reason}");

        let file = temp_file("syntax.toml", "[node\nname = 1\n");
        let e = Sources {
            file: Some(file.clone()),
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");

        for (path, reason) in [
            (Path::new("/dev/zero"), "not a regular file"),
            (std::env::temp_dir().as_path(), "not a regular file"),
        ] {
            let e = Sources {
                file: Some(path.to_path_buf()),
                ..Sources::default()
            }
            .load()
            .unwrap_err();
            assert!(e.to_string().contains(reason), "{e}");
        }
        let huge = temp_file("huge.toml", &"#".repeat((MAX_CONFIG_FILE + 1) as usize));
        let e = Sources {
            file: Some(huge),
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");

        let missing = std::env::temp_dir().join("swim-agent-no-such-file.toml");
        let e = Sources {
            file: Some(missing.clone()),
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        assert!(
            e.to_string().contains("swim-agent-no-such-file.toml"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_variable_or_the_flag() {
        let (source, key, _) = invalid(
            Sources {
                env: env(&[
                    ("SWIM_NODE_NAME", "a"),
                    ("SWIM_NODE_BIND", "127.0.0.1:0"),
                    ("SWIM_NODE_SUSPICION_MULT", "many"),
                ]),
                ..Sources::default()
            }
            .load()
            .unwrap_err(),
        );
        assert_eq!(
            (source.as_str(), key.as_str()),
            (
                "environment variable SWIM_NODE_SUSPICION_MULT",
                "node.suspicion_mult"
            )
        );
        let (source, _, reason) = invalid(
            Sources {
                env: env(&[("SWIM_AGENT_LEAVE_TIMEOUTT", "1s")]),
                ..Sources::default()
            }
            .load()
            .unwrap_err(),
        );
        assert!(source.contains("SWIM_AGENT"), "{source}");
        assert!(reason.contains("leave_timeoutt"), "{reason}");

        let mut flags = CommandLine::default();
        flags.set("node.name", "--name", Raw::Text("a".into()));
        flags.set("node.bind", "--bind", Raw::Text("127.0.0.1:0".into()));
        flags.set("node.keys", "--key", Raw::List(vec!["abcd".into()]));
        let (source, key, reason) = invalid(
            Sources {
                flags,
                ..Sources::default()
            }
            .load()
            .unwrap_err(),
        );
        assert_eq!((source.as_str(), key.as_str()), ("flag --key", "node.keys"));
        assert!(reason.contains("16, 24 or 32"), "{reason}");

        let mut flags = CommandLine::default();
        flags.set("node.probe_intervall", "--set", Raw::Text("1s".into()));
        let (source, key, _) = invalid(
            Sources {
                flags,
                ..Sources::default()
            }
            .load()
            .unwrap_err(),
        );
        assert_eq!(
            (source.as_str(), key.as_str()),
            ("flag --set", "node.probe_intervall")
        );
    }

    #[test]
    fn missing_name_or_bind_is_a_usage_error() {
        let e = Sources::default().load().unwrap_err();
        assert!(e.is_missing());
        assert!(e.to_string().contains("node.name") && e.to_string().contains("--name"));
        let e = Sources {
            env: env(&[("SWIM_NODE_NAME", "a")]),
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("node.bind"), "{e}");
    }

    #[test]
    fn keys_come_from_a_file_and_are_masked_when_shown() {
        let k16 = "000102030405060708090a0b0c0d0e0f";
        let k32 = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
        let keys = temp_file("keys", &format!("# primary\n{k32}\n\n{k16}  # old\n"));
        let base = env(&[("SWIM_NODE_NAME", "a"), ("SWIM_NODE_BIND", "127.0.0.1:0")]);
        let mut with_file = base.clone();
        with_file.push(("SWIM_AGENT_KEYS_FILE".into(), keys.display().to_string()));
        let loaded = Sources {
            env: with_file.clone(),
            ..Sources::default()
        }
        .load()
        .unwrap();
        assert_eq!(loaded.node.swim.keyring.as_ref().unwrap().len(), 2);
        let shown = loaded.effective_toml();
        assert!(!shown.contains(k16) && !shown.contains(k32), "{shown}");
        assert!(shown.contains("<secret: 32-byte key>, <secret: 16-byte key>"));

        // node.keys in the file: masked in place.
        let mut flags = CommandLine::default();
        flags.set("node.keys", "--key", Raw::List(vec![k16.into()]));
        let loaded = Sources {
            env: base.clone(),
            flags,
            ..Sources::default()
        }
        .load()
        .unwrap();
        let shown = loaded.effective_toml();
        assert!(!shown.contains(k16), "{shown}");
        let reread: AgentConfig = toml::from_str(&shown).unwrap();
        assert_eq!(reread.node.keys, ["<secret: 16-byte key>"]);

        // Both: refused, naming both.
        let mut flags = CommandLine::default();
        flags.set("node.keys", "--key", Raw::List(vec![k16.into()]));
        let e = Sources {
            env: with_file,
            flags,
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("--key") && e.to_string().contains("keys_file"));

        // A bad line is named.
        let bad = temp_file("bad-keys", &format!("{k16}\nnot-hex\n"));
        let mut env_bad = base;
        env_bad.push(("SWIM_AGENT_KEYS_FILE".into(), bad.display().to_string()));
        let e = Sources {
            env: env_bad,
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn join_retries_are_a_count_or_forever_in_every_layer() {
        let base = [("SWIM_NODE_NAME", "a"), ("SWIM_NODE_BIND", "127.0.0.1:0")];
        let load = |extra: &[(&str, &str)], flags: CommandLine| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            Sources {
                env: env(&vars),
                flags,
                ..Sources::default()
            }
            .load()
        };
        let node = load(
            &[("SWIM_NODE_JOIN_RETRIES", "forever")],
            CommandLine::default(),
        )
        .unwrap()
        .node;
        assert_eq!(node.join_retries, JoinRetries::Forever);
        let node = load(&[("SWIM_NODE_JOIN_RETRIES", "10")], CommandLine::default())
            .unwrap()
            .node;
        assert_eq!(node.join_retries, JoinRetries::Times(10));
        // A service that retries forever at a steady pause.
        let mut flags = CommandLine::default();
        flags.set("node.join_retries", "--set", Raw::Text("forever".into()));
        flags.set("node.join_retry_delay", "--set", Raw::Text("5s".into()));
        flags.set("node.join_retry_max_delay", "--set", Raw::Text("5s".into()));
        let node = load(&[], flags).unwrap().node;
        assert_eq!(node.join_retries, JoinRetries::Forever);
        assert_eq!(
            (node.join_retry_delay, node.join_retry_max_delay),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        let (source, key, _) = invalid(
            load(
                &[("SWIM_NODE_JOIN_RETRIES", "always")],
                CommandLine::default(),
            )
            .unwrap_err(),
        );
        assert_eq!(key, "node.join_retries");
        assert_eq!(source, "environment variable SWIM_NODE_JOIN_RETRIES");
        // The agent's own join loop is gone: its keys are unknown.
        let file = temp_file(
            "old-join.toml",
            "[node]\nname = \"a\"\nbind = \"127.0.0.1:0\"\n[agent]\njoin_attempts = 0\n",
        );
        assert!(Sources {
            file: Some(file),
            ..Sources::default()
        }
        .load()
        .is_err());
    }

    #[test]
    fn the_effective_configuration_reads_back_as_the_same_node() {
        let mut flags = CommandLine::default();
        flags.set("node.name", "--name", Raw::Text("a".into()));
        flags.set("node.bind", "--bind", Raw::Text("127.0.0.1:7946".into()));
        flags.set("node.preset", "--preset", Raw::Text("wan".into()));
        flags.set("node.join_retries", "--set", Raw::Text("forever".into()));
        flags.set("agent.http", "--http", Raw::Text("127.0.0.1:8080".into()));
        let loaded = Sources {
            flags,
            ..Sources::default()
        }
        .load()
        .unwrap();
        let shown = loaded.effective_toml();
        let file = temp_file("effective.toml", &shown);
        let again = Sources {
            file: Some(file),
            ..Sources::default()
        }
        .load()
        .unwrap();
        assert_eq!(again.config.node, loaded.config.node.effective().unwrap());
        assert_eq!(again.config.agent, loaded.config.agent);
        assert_eq!(
            format!("{:?}", again.node.swim),
            format!("{:?}", loaded.node.swim)
        );
        // Every setting is written out, the preset's timings included.
        assert!(shown.contains("probe_interval = \"5s\""), "{shown}");
        assert!(shown.contains("[agent]") && shown.contains("leave_on_stop = true"));
    }

    #[test]
    fn protocol_and_usefulness_checks_name_the_source_and_the_key() {
        let base = [("SWIM_NODE_NAME", "a"), ("SWIM_NODE_BIND", "127.0.0.1:0")];
        let load = |extra: &[(&str, &str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            Sources {
                env: env(&vars),
                ..Sources::default()
            }
            .load()
        };
        for (var, key, reason) in [
            (
                "SWIM_NODE_PROBE_INTERVAL",
                "node.probe_interval",
                "must be positive",
            ),
            (
                "SWIM_NODE_SUSPICION_MULT",
                "node.suspicion_mult",
                "at least 1",
            ),
            (
                "SWIM_NODE_GOSSIP_INTERVAL",
                "node.gossip_interval",
                "never gossips",
            ),
            (
                "SWIM_NODE_GOSSIP_NODES",
                "node.gossip_nodes",
                "never gossips",
            ),
            (
                "SWIM_NODE_MAX_INCOMING_STREAMS",
                "node.max_incoming_streams",
                "no node can join",
            ),
            ("SWIM_NODE_EVENT_CAPACITY", "node.event_capacity", "dropped"),
            (
                "SWIM_NODE_JOIN_RETRY_DELAY",
                "node.join_retry_delay",
                "join_retries",
            ),
            ("SWIM_AGENT_MIN_MEMBERS", "agent.min_members", "at least 1"),
            (
                "SWIM_AGENT_LEAVE_TIMEOUT",
                "agent.leave_timeout",
                "leave_on_stop",
            ),
            (
                "SWIM_AGENT_HTTP_MAX_CONNECTIONS_PER_CLIENT",
                "agent.http_max_connections_per_client",
                "at least 1",
            ),
        ] {
            let zero = if var.ends_with("INTERVAL")
                || var.ends_with("DELAY")
                || var.ends_with("TIMEOUT")
            {
                "0s"
            } else {
                "0"
            };
            let (source, k, r) = invalid(load(&[(var, zero)]).unwrap_err());
            assert_eq!(source, format!("environment variable {var}"));
            assert_eq!(k, key);
            assert!(r.contains(reason), "{key}: {r}");
        }
        // Every NodeSettings field is reachable, dead_node_reclaim_time too.
        let node = load(&[("SWIM_NODE_DEAD_NODE_RECLAIM_TIME", "3s")])
            .unwrap()
            .node;
        assert_eq!(node.swim.dead_node_reclaim_time, Duration::from_secs(3));
    }

    #[test]
    fn log_levels_take_their_aliases_and_refuse_other_words() {
        assert_eq!(log_filter("warning").unwrap(), "warn");
        assert_eq!(log_filter("ERR").unwrap(), "error");
        assert_eq!(log_filter("critical").unwrap(), "error");
        assert_eq!(
            log_filter("info, swim_node=warning").unwrap(),
            "info,swim_node=warn"
        );
        for bad in ["verbose", "swim_node=loud", "", " , "] {
            assert!(log_filter(bad).is_err(), "{bad:?} accepted");
        }
        let e = Sources {
            env: env(&[
                ("SWIM_NODE_NAME", "a"),
                ("SWIM_NODE_BIND", "127.0.0.1:0"),
                ("SWIM_AGENT_LOG", "warnings"),
            ]),
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        let (source, key, _) = invalid(e);
        assert_eq!(
            (source.as_str(), key.as_str()),
            ("environment variable SWIM_AGENT_LOG", "agent.log")
        );
    }

    #[test]
    fn a_service_joins_patiently_unless_told_otherwise() {
        let load = |vars: &[(&str, &str)]| {
            let mut all = vec![("SWIM_NODE_NAME", "a"), ("SWIM_NODE_BIND", "127.0.0.1:0")];
            all.extend_from_slice(vars);
            let mut loaded = Sources {
                env: env(&all),
                ..Sources::default()
            }
            .load()
            .unwrap();
            loaded.resolve_mode();
            loaded
        };
        let service = load(&[("SWIM_AGENT_MODE", "service")]);
        assert_eq!(service.node.join_retries, JoinRetries::Forever);
        assert_eq!(service.config.node.join_retries, Some(JoinRetries::Forever));
        let counted = load(&[
            ("SWIM_AGENT_MODE", "service"),
            ("SWIM_NODE_JOIN_RETRIES", "2"),
        ]);
        assert_eq!(counted.node.join_retries, JoinRetries::Times(2));
        let lines = load(&[("SWIM_AGENT_MODE", "lines")]);
        assert_eq!(lines.node.join_retries, JoinRetries::Times(3));
        assert_eq!(lines.config.agent.mode, Mode::Lines);
    }
}
