//! `serf agent`'s run loop (Go's `command.go` `Run`): read the
//! configuration, start Serf and the RPC, join, run the event handlers,
//! then wait for a signal, an RPC `leave`, or a retry join that gave up.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use swim_serf::{SerfConfig, SerfNode};
use swim_tokio::{JoinRetries, Keyring, NodeConfig, SecretKey};
use tracing::{error, info, warn};

use crate::serf::agent::{read_tags_file, Agent};
use crate::serf::config::{self, Config, Effective, DEFAULT_BIND_PORT};
use crate::serf::flags::{self, Flags, USAGE};
use crate::serf::handlers::{self, AgentEvent, Scripts, SelfInfo};
use crate::serf::logs::{GoLevel, Logs, LEVELS};
use crate::serf::rpc;
use crate::serf::signals::{self, Signal};
use crate::view::{JoinState, Lifecycle, Observed, Observer, Phase};

/// Go's `gracefulTimeout`: how long a leave on a signal may take.
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(3);
/// Events queued for the scripts before they are dropped.
const SCRIPT_QUEUE: usize = 1024;

/// Go's `Ui.Output`: a line on stdout; a closed stdout is no reason to
/// stop.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn ui_error(message: &str) -> ExitCode {
    say!("==> {message}");
    ExitCode::from(1)
}

/// Reads the files `flags` name, under the flags (Go's `readConfig`).
fn load(flags: &Flags) -> Result<Effective, String> {
    let files = config::read_paths(&flags.config_paths)?;
    let merged = Config::default().merge(files).merge(flags.config.clone());
    let mut eff = merged.effective()?;
    // Go's backward compatibility for 'Role'.
    if let Some(role) = eff.merged.role.clone() {
        eff.warnings
            .push("Deprecation warning: 'Role' has been replaced with 'Tags'".into());
        eff.merged.tags.retain(|(k, _)| k != "role");
        eff.merged.tags.push(("role".into(), role));
    }
    Ok(eff)
}

/// `host[:port]`, the port 7946 when missing, resolved (Go's `AddrParts`).
fn addr_parts(address: &str) -> Result<SocketAddr, String> {
    let with_port = if address.parse::<SocketAddr>().is_ok() {
        address.to_owned()
    } else if let Ok(ip) = address.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        SocketAddr::new(ip, DEFAULT_BIND_PORT).to_string()
    } else if address
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
    {
        address.to_owned()
    } else {
        format!("{address}:{DEFAULT_BIND_PORT}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("no address for {address}"))
}

/// The keyring from `-encrypt` or `-keyring-file` (Go's `EncryptBytes`,
/// `loadKeyringFile`).
fn keyring(c: &Config) -> Result<Option<Keyring>, String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = |k: &str| -> Result<SecretKey, String> {
        let raw = b64.decode(k).map_err(|e| e.to_string())?;
        SecretKey::new(&raw).map_err(|e| e.to_string())
    };
    if let Some(path) = &c.keyring_file {
        if c.encrypt_key.is_some() {
            return Err("Encryption key not allowed while using a keyring".into());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("Failed to read keyring file: {e}"))?;
        let keys: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| format!("Failed to decode keyring file: {e}"))?;
        let mut keys = keys
            .iter()
            .map(|k| key(k).map_err(|e| format!("Failed to decode key from keyring: {e}")));
        let Some(primary) = keys.next() else {
            return Err("Keyring file contains no keys".into());
        };
        let mut ring = Keyring::new(primary?);
        for k in keys {
            ring.add(k?);
        }
        return Ok(Some(ring));
    }
    match c.encrypt_key.as_deref() {
        None | Some("") => Ok(None),
        Some(k) => key(k)
            .map(|k| Some(Keyring::new(k)))
            .map_err(|e| format!("Invalid encryption key: {e}")),
    }
}

/// swim-agent's HTTP listener at `addr`, bound, and the Prometheus
/// recorder installed (`-http`).
fn bind_http(
    addr: &str,
) -> Result<
    (
        crate::http::Server,
        metrics_exporter_prometheus::PrometheusHandle,
    ),
    String,
> {
    let at = addr_parts(addr).map_err(|e| format!("-http: {e}"))?;
    let limits = crate::http::Limits {
        total: 64,
        per_client: 16,
        min_members: 1,
    };
    let server = crate::http::Server::bind(at, limits)
        .map_err(|e| format!("-http: cannot listen on {at}: {e}"))?;
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_recommended_naming(true)
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics exporter: {e}"))?;
    crate::view::describe_metrics();
    Ok((server, prometheus))
}

/// Runs `swim-agent serf agent ARGS`.
pub fn run(args: &[String]) -> ExitCode {
    let flags = match flags::parse(args) {
        Ok(f) => f,
        Err(e) if e == USAGE => {
            say!("{USAGE}");
            return ExitCode::from(1);
        }
        Err(e) => return ui_error(&e),
    };
    let eff = match load(&flags) {
        Ok(eff) => eff,
        Err(e) => return ui_error(&e),
    };
    for w in &eff.warnings {
        say!("==> {w}");
    }
    let Some(level) = GoLevel::parse(&eff.log_level) else {
        return ui_error(&format!(
            "Invalid log level: {}. Valid log levels are: {LEVELS}",
            eff.log_level.to_uppercase()
        ));
    };
    let logs = Logs::new(level);
    if let Err(e) = logs.install() {
        return ui_error(&e);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return ui_error(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(agent(flags, eff, logs))
}

async fn agent(flags: Flags, mut eff: Effective, logs: Logs) -> ExitCode {
    let c = eff.merged.clone();
    let bind = match addr_parts(&eff.bind) {
        Ok(a) => a,
        Err(e) => return ui_error(&format!("Invalid bind address: {e}")),
    };
    let advertise = match c.advertise.as_deref().map(addr_parts).transpose() {
        Ok(a) => a,
        Err(e) => return ui_error(&format!("Invalid advertise address: {e}")),
    };
    let keyring = match keyring(&c) {
        Ok(k) => k,
        Err(e) => return ui_error(&format!("Failed to setup the Serf agent: {e}")),
    };
    let name = eff.node_name.clone();
    let announce = advertise.unwrap_or(bind);
    let mut swim = match eff.profile.as_str() {
        "lan" => swim_tokio::Config::lan(name.clone(), announce),
        "wan" => swim_tokio::Config::wan(name.clone(), announce),
        "local" => swim_tokio::Config::local(name.clone(), announce),
        other => return ui_error(&format!("Unknown profile: {other}")),
    };
    let encrypted = keyring.is_some();
    swim.keyring = keyring;
    swim.enable_compression = eff.enable_compression;
    let mut node = NodeConfig::new(bind, swim);
    // Go's join tries each address once.
    node.join_retries = JoinRetries::Times(0);

    let mut tags: swim_serf::tags::Tags = c.tags.iter().cloned().collect();
    let tags_file = c.tags_file.as_ref().map(std::path::PathBuf::from);
    if let Some(path) = &tags_file {
        if !tags.is_empty() {
            return ui_error(
                "Failed to setup the Serf agent: Tags config not allowed while using tag files",
            );
        }
        match read_tags_file(path) {
            Ok(Some(t)) => {
                info!(target: "agent", "Restored {} tag(s) from {}", t.len(), path.display());
                tags = t;
            }
            Ok(None) => {}
            Err(e) => return ui_error(&format!("Failed to setup the Serf agent: {e}")),
        }
    }
    // The HTTP listener is bound before the node starts, so a taken port
    // is reported first, and the recorder catches the node's first metrics.
    let http = match c.http.as_deref().map(bind_http).transpose() {
        Ok(h) => h,
        Err(e) => return ui_error(&e),
    };
    let mut sc = SerfConfig::new(name.clone());
    sc.tags = tags;
    sc.protocol_version = eff.protocol;
    // The agent's coalescing (Go's `setupAgent`).
    sc.coalesce_period = Duration::from_secs(3);
    sc.quiescent_period = Duration::from_secs(1);
    sc.user_coalesce_period = Duration::from_secs(3);
    sc.user_quiescent_period = Duration::from_secs(1);
    sc.query_response_size_limit = eff.query_response_size_limit;
    sc.query_size_limit = eff.query_size_limit;
    sc.user_event_size_limit = eff.user_event_size_limit;
    if let Some(d) = c.reconnect_interval.filter(|d| !d.is_zero()) {
        sc.reconnect_interval = d;
    }
    if let Some(d) = c.reconnect_timeout.filter(|d| !d.is_zero()) {
        sc.reconnect_timeout = d;
    }
    if let Some(d) = c.tombstone_timeout.filter(|d| !d.is_zero()) {
        sc.tombstone_timeout = d;
    }
    sc.enable_name_conflict_resolution = !c.disable_name_resolution;
    sc.disable_coordinates = c.disable_coordinates;
    sc.snapshot_path = c.snapshot_path.as_ref().map(Into::into);
    sc.keyring_file = c.keyring_file.as_ref().map(Into::into);
    sc.rejoin_after_leave = c.rejoin_after_leave;
    sc.broadcast_timeout = eff.broadcast_timeout;

    say!("==> Starting Serf agent...");
    let (serf, events) = match SerfNode::start(swim_tokio::builder(node), sc).await {
        Ok(started) => started,
        Err(e) => return ui_error(&format!("Failed to start the Serf agent: {e}")),
    };
    let rpc_addr = match addr_parts(&eff.rpc_addr) {
        Ok(a) => a,
        Err(e) => return ui_error(&format!("Error starting RPC listener: {e}")),
    };
    let listener = match tokio::net::TcpListener::bind(rpc_addr).await {
        Ok(l) => l,
        Err(e) => return ui_error(&format!("Error starting RPC listener: {e}")),
    };
    let lifecycle = Arc::new(Lifecycle::default());
    let observer = match http {
        Some((server, prometheus)) => {
            match server.start(serf.node().clone(), lifecycle.clone(), prometheus) {
                Ok(o) => Some(o),
                Err(e) => return ui_error(&format!("-http: cannot start the listener: {e}")),
            }
        }
        None => None,
    };
    let note = |text: &str| {
        if let Some(o) = &observer {
            o.send(Observed::Agent(text.to_owned()));
        }
    };
    let scripts = Scripts::new(&c.event_handlers);
    let agent = Arc::new(Agent::new(
        serf,
        name.clone(),
        scripts,
        logs.clone(),
        tags_file.clone(),
        encrypted,
    ));
    tokio::spawn(event_loop(agent.clone(), events));
    say!("==> Starting Serf agent RPC...");
    let auth = c.rpc_auth.clone().filter(|a| !a.is_empty());
    tokio::spawn(rpc::serve(
        listener,
        agent.clone(),
        auth,
        rpc::Limits::default(),
    ));
    say!("==> Serf agent running!");
    say!("                  Node name: '{name}'");
    say!(
        "                  Bind addr: '{}'",
        agent.serf.node().bound_addr()
    );
    if let Some(a) = advertise {
        say!("             Advertise addr: '{a}'");
    }
    say!("                   RPC addr: '{}'", eff.rpc_addr);
    say!("                  Encrypted: {encrypted}");
    say!("                   Snapshot: {}", c.snapshot_path.is_some());
    say!("                    Profile: {}", eff.profile);
    say!("Message Compression Enabled: {}", eff.enable_compression);

    if !c.start_join.is_empty() {
        say!("==> Joining cluster...(replay: {})", c.replay_on_join);
        match agent
            .serf
            .join(c.start_join.iter().map(String::as_str), !c.replay_on_join)
            .await
        {
            Ok(n) => {
                say!("    Join completed. Synced with {n} initial agents");
                lifecycle.set_join(JoinState::Joined, 1, None);
                note(&format!("joined through {n} seed(s)"));
            }
            Err(e) => {
                agent.serf.shutdown().await;
                return ui_error(&e.to_string());
            }
        }
    }
    say!("");
    say!("==> Log data will now stream in as it occurs:\n");

    let (gave_up_tx, gave_up) = async_channel::bounded::<()>(1);
    if !c.retry_join.is_empty() {
        tokio::spawn(retry_join(
            agent.clone(),
            eff.clone(),
            gave_up_tx,
            lifecycle.clone(),
            observer.clone(),
        ));
    }
    let signals = match signals::watch() {
        Ok(s) => s,
        Err(e) => return ui_error(&format!("cannot watch for signals: {e}")),
    };
    let code = loop {
        let signal = tokio::select! {
            s = signals.recv() => match s { Ok(s) => s, Err(_) => break 1 },
            _ = agent.stopped() => break 0,
            _ = gave_up.recv() => break 1,
        };
        if signal == Signal::Dump {
            // Go's dump comes from its metrics library, outside the
            // signal loop: no "Caught signal" line.
            dump(&agent.stats());
            continue;
        }
        say!("==> Caught signal: {signal}");
        if signal == Signal::Hangup {
            reload(&flags, &mut eff, &agent).await;
            continue;
        }
        let graceful = match signal {
            Signal::Interrupt => !eff.merged.skip_leave_on_interrupt,
            _ => eff.merged.leave_on_terminate,
        };
        if !graceful {
            break 1;
        }
        say!("==> Gracefully shutting down agent...");
        lifecycle.set(Phase::Leaving);
        note("leaving");
        let leave = async {
            match agent.leave().await {
                Ok(()) => 0,
                Err(e) => {
                    say!("==> Error: {e}");
                    // Go waits out the graceful timeout after a failure.
                    std::future::pending::<u8>().await
                }
            }
        };
        break tokio::select! {
            code = leave => code,
            _ = signals.recv() => 1,
            _ = tokio::time::sleep(GRACEFUL_TIMEOUT) => 1,
        };
    };
    lifecycle.set(Phase::Stopping);
    agent.serf.shutdown().await;
    info!(target: "agent", "shutdown complete");
    ExitCode::from(code)
}

/// SIGUSR1: the figures `serf info` shows, one per line on stderr, in the
/// shape of Go's telemetry dump (`[time][G] 'serf.members': 4.000`); what
/// is not a number is quoted.
fn dump(stats: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>) {
    use std::io::Write;
    let now = crate::serf::logs::timestamp();
    let mut out = String::new();
    for (section, figures) in stats {
        for (name, value) in figures {
            let value = match value.parse::<f64>() {
                Ok(v) => format!("{v:.3}"),
                Err(_) => format!("{value:?}"),
            };
            out.push_str(&format!("[{now}][G] '{section}.{name}': {value}\n"));
        }
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
}

/// Go's `Event.String()` as its event loop logs it.
fn describe(e: &AgentEvent) -> String {
    match e {
        AgentEvent::User(u) => format!("user-event: {}", u.name),
        AgentEvent::Query(q) => format!("query: {}", q.name),
        other => handlers::event_type(other).to_owned(),
    }
}

/// Hands each event to the RPC streams and the scripts (Go's
/// `eventLoop`); scripts run on a thread of their own, one at a time.
async fn event_loop(agent: Arc<Agent>, events: swim_serf::SerfEvents) {
    let (to_scripts, script_events) = async_channel::bounded::<AgentEvent>(SCRIPT_QUEUE);
    let (answers_tx, answers) = async_channel::unbounded::<(swim_serf::IncomingQuery, Vec<u8>)>();
    let runner = agent.clone();
    let spawned = std::thread::Builder::new()
        .name("serf-agent-scripts".into())
        .spawn(move || {
            while let Ok(e) = script_events.recv_blocking() {
                run_scripts(&runner, &e, &answers_tx);
            }
        });
    if let Err(e) = spawned {
        error!(target: "agent", "cannot start the script runner: {e}");
    }
    let responder = agent.clone();
    tokio::spawn(async move {
        while let Ok((q, output)) = answers.recv().await {
            if let Err(e) = responder.serf.respond(&q, &output).await {
                warn!(target: "agent", "Failed to respond to query '{}': {e}", q.name);
            }
        }
    });
    while let Some(first) = events.recv().await {
        // What Serf delivered together (a coalescer's flush) goes on as
        // Go's coalesced events.
        let ready = std::iter::once(first).chain(std::iter::from_fn(|| events.try_recv()));
        for e in handlers::batch(ready) {
            hand_on(&agent, e, &to_scripts);
        }
    }
    warn!(target: "agent", "Serf shutdown detected, quitting");
    // Go's agent ends with status 0 when Serf stopped on its own (a lost
    // name conflict).
    agent.request_stop();
}

/// Logs `e` and hands it to the streams and the scripts.
fn hand_on(agent: &Agent, e: AgentEvent, to_scripts: &async_channel::Sender<AgentEvent>) {
    info!(target: "agent", "Received event: {}", describe(&e));
    agent.dispatch(&e);
    if agent.scripts.for_event(&e).is_empty() {
        return;
    }
    if to_scripts.try_send(e).is_err() {
        agent
            .counters
            .script_dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        warn!(target: "agent", "Event handlers fell behind: event dropped");
    }
}

fn run_scripts(
    agent: &Agent,
    e: &AgentEvent,
    answers: &async_channel::Sender<(swim_serf::IncomingQuery, Vec<u8>)>,
) {
    let me = SelfInfo {
        name: agent.name.clone(),
        tags: agent.tags(),
    };
    for script in agent.scripts.for_event(e) {
        match handlers::invoke(&script.script, &me, e) {
            Err(err) => {
                error!(target: "agent", "Error invoking script '{}': {err}", script.script)
            }
            Ok(out) if !out.success => {
                error!(target: "agent", "Error invoking script '{}': exit status failure", script.script)
            }
            Ok(out) => {
                if let AgentEvent::Query(q) = e {
                    if !out.output.is_empty() {
                        let _ = answers.try_send((q.clone(), out.output));
                    }
                }
            }
        }
    }
}

/// Go's `retryJoin`: until one join works, or `retry_max` failed.
async fn retry_join(
    agent: Arc<Agent>,
    eff: Effective,
    gave_up: async_channel::Sender<()>,
    lifecycle: Arc<Lifecycle>,
    observer: Option<Observer>,
) {
    let c = &eff.merged;
    let mut attempt = 0u32;
    loop {
        lifecycle.set_join(JoinState::Joining, u64::from(attempt) + 1, None);
        info!(target: "agent", "Joining cluster...(replay: {})", c.replay_on_join);
        match agent
            .serf
            .join(c.retry_join.iter().map(String::as_str), !c.replay_on_join)
            .await
        {
            Ok(n) => {
                info!(target: "agent", "Join completed. Synced with {n} initial agents");
                lifecycle.set_join(JoinState::Joined, u64::from(attempt) + 1, None);
                if let Some(o) = &observer {
                    o.send(Observed::Agent(format!("joined through {n} seed(s)")));
                }
                return;
            }
            Err(e) => {
                attempt += 1;
                let state = match c.retry_max_attempts.is_some_and(|max| attempt > max) {
                    true => JoinState::Failed,
                    false => JoinState::Joining,
                };
                lifecycle.set_join(state, u64::from(attempt), Some(e.to_string()));
                if c.retry_max_attempts.is_some_and(|max| attempt > max) {
                    error!(target: "agent", "maximum retry join attempts made, exiting");
                    let _ = gave_up.try_send(());
                    return;
                }
                warn!(target: "agent",
                    "Join failed: {e}, retrying in {:?}", eff.retry_interval
                );
                tokio::time::sleep(eff.retry_interval).await;
            }
        }
    }
}

/// SIGHUP (Go's `handleReload`): the log level, the scripts and the tags
/// from the files and flags again.
async fn reload(flags: &Flags, eff: &mut Effective, agent: &Agent) {
    say!("==> Reloading configuration...");
    let mut new = match load(flags) {
        Ok(n) => n,
        Err(e) => {
            say!("==> Failed to reload configs: {e}");
            return;
        }
    };
    match GoLevel::parse(&new.log_level) {
        Some(level) => agent.logs.set_level(level),
        None => {
            say!(
                "==> Invalid log level: {}. Valid log levels are: {LEVELS}",
                new.log_level.to_uppercase()
            );
            new.log_level = eff.log_level.clone();
        }
    }
    agent.scripts.replace(&new.merged.event_handlers);
    // With a tags file the file holds the tags (Go would overwrite it
    // with the configuration's, which must be empty then).
    if new.merged.tags_file.is_none() {
        let tags = new.merged.tags.iter().cloned().collect();
        if let Err(e) = agent.set_tags(tags).await {
            say!("==> Failed to update tags: {e}");
        }
    }
    *eff = new;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_go_default_port() {
        assert_eq!(addr_parts("127.0.0.1").unwrap().port(), 7946);
        assert_eq!(addr_parts("127.0.0.1:5000").unwrap().port(), 5000);
        assert_eq!(addr_parts("[::1]").unwrap(), "[::1]:7946".parse().unwrap());
        assert_eq!(addr_parts("localhost:5000").unwrap().port(), 5000);
    }

    #[test]
    fn encrypt_and_keyring_file_exclude_each_other() {
        let c = Config {
            encrypt_key: Some("x".into()),
            keyring_file: Some("/nonexistent".into()),
            ..Config::default()
        };
        assert!(keyring(&c).unwrap_err().contains("not allowed"));
        let c = Config {
            encrypt_key: Some("not base64!".into()),
            ..Config::default()
        };
        assert!(keyring(&c).is_err());
        let c = Config {
            encrypt_key: Some("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVoxMjM0NTY=".into()),
            ..Config::default()
        };
        assert!(keyring(&c).unwrap().is_some());
    }
}
