//! `serf agent`'s command line as Go's `flag` package reads it: `-name`,
//! `--name`, `-name=value` or `-name value`; booleans as `-name` or
//! `-name=true|false`; parsing stops at `--` or the first argument that is
//! not a flag. Every flag Go's agent defines is known: those implemented
//! set a [`Config`] layer, the others are refused by name.

use crate::serf::config::{parse_duration, Config};

/// What the command line asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// The layer the flags set.
    pub config: Config,
    /// `-config-file` and `-config-dir`, in order.
    pub config_paths: Vec<String>,
}

/// Go agent flags this agent does not implement, and why.
pub const UNIMPLEMENTED_FLAGS: [(&str, &str); 3] = [
    ("discover", "mDNS discovery"),
    ("iface", "binding to an interface by name"),
    ("syslog", "syslog"),
];

/// Every flag implemented here.
const KNOWN_FLAGS: [&str; 26] = [
    "http",
    "bind",
    "advertise",
    "config-file",
    "config-dir",
    "encrypt",
    "keyring-file",
    "event-handler",
    "join",
    "replay",
    "log-level",
    "node",
    "protocol",
    "role",
    "rpc-addr",
    "rpc-auth",
    "profile",
    "snapshot",
    "tag",
    "tags-file",
    "retry-join",
    "retry-max",
    "retry-interval",
    "rejoin",
    "disable-compression",
    "broadcast-timeout",
];

/// Go's boolean flags: they take no separate value.
const BOOL_FLAGS: [&str; 3] = ["replay", "rejoin", "disable-compression"];

/// Parses `args` (after `agent`). `Err` is the message to print; `-h` or
/// `-help` asks for the usage (`Err` of [`USAGE`]).
pub fn parse(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let c = &mut f.config;
    let mut tags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!("unexpected argument '{arg}'"));
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(format!("bad flag syntax: {arg}"));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Err(USAGE.to_owned());
        }
        if let Some((_, what)) = UNIMPLEMENTED_FLAGS.iter().find(|(n, _)| *n == name) {
            return Err(format!(
                "flag -{name} ({what}) is not implemented by swim-agent's serf agent"
            ));
        }
        if !KNOWN_FLAGS.contains(&name) {
            return Err(format!("flag provided but not defined: -{name}"));
        }
        let value = if BOOL_FLAGS.contains(&name) {
            match inline.as_deref() {
                None => "true".to_owned(),
                Some(v) => v.to_owned(),
            }
        } else {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("flag needs an argument: -{name}"))?;
                    i += 1;
                    v.clone()
                }
            }
        };
        let boolean = |v: &str| match v {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("invalid boolean value \"{v}\" for -{name}")),
        };
        let int = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| format!("invalid value \"{v}\" for flag -{name}: parse error"))
        };
        match name {
            "bind" => c.bind = Some(value),
            "advertise" => c.advertise = Some(value),
            "config-file" | "config-dir" => f.config_paths.push(value),
            "encrypt" => c.encrypt_key = Some(value),
            "keyring-file" => c.keyring_file = Some(value),
            "event-handler" => c.event_handlers.push(value),
            "join" => c.start_join.push(value),
            "replay" => c.replay_on_join = boolean(&value)?,
            "log-level" => c.log_level = Some(value),
            "node" => c.node_name = Some(value),
            // Go's default is -1, "not set"; 0 and below merge as unset.
            "protocol" => {
                let n = int(&value)?;
                if n > 0 {
                    c.protocol = Some(
                        u8::try_from(n).map_err(|_| format!("Protocol version '{n}' too high"))?,
                    );
                }
            }
            "role" => c.role = Some(value),
            "rpc-addr" => c.rpc_addr = Some(value),
            "rpc-auth" => c.rpc_auth = Some(value),
            "profile" => c.profile = Some(value),
            "snapshot" => c.snapshot_path = Some(value),
            "tag" => tags.push(value),
            "tags-file" => c.tags_file = Some(value),
            "retry-join" => c.retry_join.push(value),
            "retry-max" => {
                let n = int(&value)?;
                c.retry_max_attempts = (n != 0).then(|| n.clamp(0, i64::from(u32::MAX)) as u32);
            }
            "retry-interval" => c.retry_interval = Some(go_duration(&value)?),
            "rejoin" => c.rejoin_after_leave = boolean(&value)?,
            "disable-compression" => c.enable_compression = Some(!boolean(&value)?),
            "broadcast-timeout" => c.broadcast_timeout = Some(go_duration(&value)?),
            "http" => c.http = Some(value),
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
    }
    if let Some(rest) = args.get(i) {
        return Err(format!("unexpected argument '{rest}'"));
    }
    // Go's `UnmarshalTags`.
    for tag in tags {
        let (k, v) = tag
            .split_once('=')
            .ok_or_else(|| format!("Error: Invalid tag: '{tag}'"))?;
        c.tags.push((k.to_owned(), v.to_owned()));
    }
    Ok(f)
}

fn go_duration(v: &str) -> Result<std::time::Duration, String> {
    parse_duration(v).map_err(|e| format!("Error: {e}"))
}

/// `swim-agent serf agent -h`.
pub const USAGE: &str = "\
Usage: swim-agent serf agent [options]

  Starts a Serf agent (swim-agent's, compatible with Go's `serf agent`) and
  runs until an interrupt is received. Go's `serf` CLI and RPC clients
  drive it on -rpc-addr.

Options (as Go's serf agent):
  -bind=0.0.0.0:7946       Address to bind network listeners to.
  -advertise=addr          Address to advertise to the other cluster members.
  -config-file=foo         JSON file to read configuration from (repeatable).
  -config-dir=foo          Directory of .json files, read in name order.
  -encrypt=foo             Base64 key encrypting gossip.
  -keyring-file=path       JSON list of base64 keys, the first the primary.
  -event-handler=foo       Script to run on events: SCRIPT, TYPE=SCRIPT or
                           user:NAME=SCRIPT (repeatable).
  -join=addr               An agent to join at start (repeatable).
  -replay                  Replay past user events on the start join.
  -log-level=info          trace, debug, info, warn or err.
  -node=hostname           This node's name, unique in the cluster.
  -profile=lan             Timing profile: lan, wan or local.
  -protocol=n              Serf protocol version (2..5).
  -rejoin                  Rejoin after a previous leave (with -snapshot).
  -retry-join=addr         An agent to join, retried until it works.
  -retry-interval=30s      Pause between retry joins.
  -retry-max=0             Most retry joins; 0 for no limit.
  -disable-compression     Do not compress gossip.
  -role=foo                Deprecated: the tag role=foo.
  -rpc-addr=127.0.0.1:7373 Address of the RPC listener.
  -rpc-auth=token          Token RPC clients must send (config: rpc_auth).
  -snapshot=path           Snapshot file, to rejoin after a restart.
  -tag key=value           A tag (repeatable).
  -tags-file=path          File persisting the tags.
  -broadcast-timeout=5s    Timeout for leave and force-leave broadcasts.
  -http=127.0.0.1:8080     swim-agent's HTTP view, /metrics and /v1/health
                           (not a Go flag).

Not implemented (refused): -discover, -iface, -syslog.";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn go_forms_of_flags_are_read() {
        let f = parse(&args(&[
            "-node=a",
            "--bind",
            "127.0.0.1:7946",
            "-tag",
            "role=web",
            "-tag=dc=x=y",
            "-replay",
            "-join",
            "h1",
            "-join=h2",
            "-retry-interval=2s",
            "-protocol=-1",
        ]))
        .unwrap();
        let c = &f.config;
        assert_eq!(c.node_name.as_deref(), Some("a"));
        assert_eq!(c.bind.as_deref(), Some("127.0.0.1:7946"));
        assert_eq!(
            c.tags,
            vec![("role".into(), "web".into()), ("dc".into(), "x=y".into())]
        );
        assert!(c.replay_on_join);
        assert_eq!(c.start_join, vec!["h1", "h2"]);
        assert_eq!(c.retry_interval, Some(std::time::Duration::from_secs(2)));
        assert_eq!(c.protocol, None);
    }

    #[test]
    fn unimplemented_and_unknown_flags_are_refused_by_name() {
        let e = parse(&args(&["-discover=c"])).unwrap_err();
        assert!(
            e.contains("-discover") && e.contains("not implemented"),
            "{e}"
        );
        let e = parse(&args(&["-syslog"])).unwrap_err();
        assert!(e.contains("-syslog"), "{e}");
        let e = parse(&args(&["-nope"])).unwrap_err();
        assert_eq!(e, "flag provided but not defined: -nope");
        assert!(parse(&args(&["-tag", "novalue"])).is_err());
        assert!(parse(&args(&["-node"])).is_err());
        assert!(parse(&args(&["-replay=maybe"])).is_err());
    }
}
