//! The command line: the flags of `interop/AGENT-PROTOCOL.md`, the config
//! file, and `--set` for any other setting. Flags override the environment,
//! which overrides the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::settings::{CommandLine, Mode, Raw, RuntimeKind, CONFIG_FILE_ENV};

/// Runs one memberlist-compatible cluster node.
///
/// In `lines` mode (the default when stdin is a pipe, a file or a
/// terminal) it prints events as JSON lines on stdout
/// and reads commands from stdin (members | broadcast TEXT | send NODE TEXT
/// | send-reliable NODE TEXT | meta TEXT | state TEXT | key-add HEX |
/// key-use HEX | key-remove HEX | leave | quit); end of input quits. In
/// `service` mode (the default when stdin is /dev/null or closed) it runs
/// until a signal. Either way SIGTERM, SIGINT, SIGQUIT or SIGPWR leave the
/// cluster, shut down and exit 0 (a second one exits at once); SIGHUP
/// reloads the log level and the keys file; other signals are ignored.
///
/// Settings come from a TOML config file (`--config-file`), then from
/// environment variables (SWIM_NODE_ or SWIM_AGENT_ and the key in capitals,
/// like SWIM_NODE_PROBE_INTERVAL), then from flags, each overriding the one
/// before; `--print-config` shows the result.
#[derive(Debug, Parser)]
#[command(name = "swim-agent", version)]
pub struct Args {
    /// TOML config file: `[node]` and `[agent]` tables.
    #[arg(long, value_name = "PATH", env = CONFIG_FILE_ENV)]
    pub config_file: Option<PathBuf>,
    /// Print the effective configuration (keys masked) and exit; status 1
    /// if any setting is invalid.
    #[arg(long)]
    pub print_config: bool,
    /// Check the configuration as the node would (every setting, the keys
    /// file, that the addresses can be bound), print what is wrong, and
    /// exit: 0 when it would start, 1 otherwise. Nothing joins.
    #[arg(long)]
    pub check: bool,
    /// Set any setting: node.FIELD=VALUE or agent.FIELD=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Node name, unique in the cluster [node.name].
    #[arg(long)]
    pub name: Option<String>,
    /// Address to bind UDP and TCP to; port 0 picks a free port [node.bind].
    #[arg(long, value_name = "HOST:PORT")]
    pub bind: Option<SocketAddr>,
    /// Address announced to peers [node.advertise; default: the bound
    /// address].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<SocketAddr>,
    /// Seeds to join after start, comma-separated: addresses, host names
    /// (every address tried; port optional) or DNS SRV names
    /// (_service._proto.domain) [agent.join].
    #[arg(long, value_name = "SEED,...", value_delimiter = ',')]
    pub join: Option<Vec<String>>,
    /// Timing preset: lan, wan or local [node.preset; default lan].
    // `--config` was its name before 0.2: kept, hidden, for scripts and
    // deployments written against it (interop/AGENT-PROTOCOL.md had it).
    #[arg(long, alias = "config", value_name = "PRESET")]
    pub preset: Option<String>,
    /// Encryption key as hex (16, 24 or 32 bytes); repeat for more, the
    /// first is the primary [node.keys]. Visible to `ps`: prefer
    /// --keys-file.
    #[arg(long, value_name = "HEX")]
    pub key: Vec<String>,
    /// File of hex keys, one a line, the first the primary [agent.keys_file].
    #[arg(long, value_name = "PATH")]
    pub keys_file: Option<PathBuf>,
    /// Cluster label (memberlist >= 0.3) [node.label].
    #[arg(long)]
    pub label: Option<String>,
    /// Node metadata [node.meta].
    #[arg(long, value_name = "TEXT")]
    pub meta: Option<String>,
    /// Local state sent with every push/pull [agent.state].
    #[arg(long, value_name = "TEXT")]
    pub state: Option<String>,
    /// Compress packets and streams [node.compression; default on].
    #[arg(long, value_parser = parse_on_off, value_name = "on|off")]
    pub compression: Option<bool>,
    /// Relay received user broadcasts so they reach every member
    /// [node.relay_user_broadcasts].
    #[arg(long)]
    pub relay_broadcasts: bool,
    /// Retransmissions of a gossiped update: N × ceil(log10(members + 1))
    /// [node.retransmit_mult].
    #[arg(long, value_name = "N")]
    pub retransmit_mult: Option<usize>,
    /// Lifeguard's local health awareness and confirmation-shortened
    /// suspicion; off sets node.awareness_max_multiplier and
    /// node.suspicion_max_timeout_mult to 1, as Go's memberlist turns them
    /// off [default on].
    #[arg(long, value_parser = parse_on_off, value_name = "on|off")]
    pub lifeguard: Option<bool>,
    /// Which adapter runs the node [agent.runtime; default tokio].
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeKind>,
    /// JSON lines on stdin/stdout, or a service; auto: a service when
    /// stdin is /dev/null or closed, lines otherwise [agent.mode; default
    /// auto].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Serve the page, /metrics and /v1/* here, e.g. 127.0.0.1:8080
    /// [agent.http; default off].
    #[arg(long, value_name = "HOST:PORT")]
    pub http: Option<SocketAddr>,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

impl Args {
    /// The settings the flags give, by key; `--set` first, so a named flag
    /// wins over a `--set` of the same key.
    pub fn command_line(&self) -> Result<CommandLine, String> {
        let mut line = CommandLine::default();
        for assignment in &self.set {
            let (key, value) = assignment
                .split_once('=')
                .ok_or_else(|| format!("--set {assignment}: expected KEY=VALUE"))?;
            line.set(key.trim(), "--set", Raw::Text(value.to_string()));
        }
        let text = |v: &dyn ToString| Raw::Text(v.to_string());
        if let Some(v) = &self.name {
            line.set("node.name", "--name", text(v));
        }
        if let Some(v) = &self.bind {
            line.set("node.bind", "--bind", text(v));
        }
        if let Some(v) = &self.advertise {
            line.set("node.advertise", "--advertise", text(v));
        }
        if let Some(seeds) = &self.join {
            line.set("agent.join", "--join", Raw::List(seeds.clone()));
        }
        if let Some(v) = &self.preset {
            line.set("node.preset", "--preset", text(v));
        }
        if !self.key.is_empty() {
            line.set("node.keys", "--key", Raw::List(self.key.clone()));
        }
        if let Some(v) = &self.keys_file {
            line.set("agent.keys_file", "--keys-file", text(&v.display()));
        }
        if let Some(v) = &self.label {
            line.set("node.label", "--label", text(v));
        }
        if let Some(v) = &self.meta {
            line.set("node.meta", "--meta", text(v));
        }
        if let Some(v) = &self.state {
            line.set("agent.state", "--state", text(v));
        }
        if let Some(v) = self.compression {
            line.set("node.compression", "--compression", Raw::Bool(v));
        }
        if self.relay_broadcasts {
            line.set(
                "node.relay_user_broadcasts",
                "--relay-broadcasts",
                Raw::Bool(true),
            );
        }
        if let Some(v) = self.retransmit_mult {
            line.set("node.retransmit_mult", "--retransmit-mult", text(&v));
        }
        if self.lifeguard == Some(false) {
            for key in [
                "node.awareness_max_multiplier",
                "node.suspicion_max_timeout_mult",
            ] {
                line.set(key, "--lifeguard", Raw::Text("1".into()));
            }
        }
        if let Some(v) = self.runtime {
            let name = match v {
                RuntimeKind::Tokio => "tokio",
                RuntimeKind::AsyncStd => "async-std",
            };
            line.set("agent.runtime", "--runtime", Raw::Text(name.into()));
        }
        if let Some(v) = self.mode {
            let name = match v {
                Mode::Auto => "auto",
                Mode::Lines => "lines",
                Mode::Service => "service",
            };
            line.set("agent.mode", "--mode", Raw::Text(name.into()));
        }
        if let Some(v) = &self.http {
            line.set("agent.http", "--http", text(v));
        }
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Sources;

    fn load(flags: &[&str]) -> swim_node::NodeConfig {
        let mut argv = vec!["swim-agent", "--name", "a", "--bind", "127.0.0.1:0"];
        argv.extend_from_slice(flags);
        let args = Args::try_parse_from(argv).unwrap();
        Sources {
            flags: args.command_line().unwrap(),
            ..Sources::default()
        }
        .load()
        .unwrap()
        .node
    }

    #[test]
    fn lifeguard_off_sets_both_multipliers_to_one() {
        let on = load(&[]).swim;
        assert_eq!(
            (on.awareness_max_multiplier, on.suspicion_max_timeout_mult),
            (8, 6)
        );
        let off = load(&["--lifeguard", "off"]).swim;
        assert_eq!(
            (off.awareness_max_multiplier, off.suspicion_max_timeout_mult),
            (1, 1)
        );
        let explicit = load(&["--lifeguard", "on"]).swim;
        assert_eq!(explicit.awareness_max_multiplier, 8);
        let set = load(&["--set", "node.awareness_max_multiplier=3"]).swim;
        assert_eq!(set.awareness_max_multiplier, 3);
        assert!(Args::try_parse_from(["swim-agent", "--lifeguard", "maybe"]).is_err());
    }

    #[test]
    fn preset_is_read_under_its_name_and_its_old_one() {
        let wan = swim_node::swim_core::Config::wan("a", "127.0.0.1:0".parse().unwrap());
        for flag in ["--preset", "--config"] {
            let swim = load(&[flag, "wan"]).swim;
            assert_eq!(swim.probe_interval, wan.probe_interval, "{flag}");
        }
        let args = Args::try_parse_from(["swim-agent", "--preset", "fast"]).unwrap();
        let e = Sources {
            flags: args.command_line().unwrap(),
            ..Sources::default()
        }
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("--preset"), "{e}");
    }
}
