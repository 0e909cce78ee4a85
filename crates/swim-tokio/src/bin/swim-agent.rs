//! swim-agent: one cluster node on the command line.
//!
//! It prints one JSON object per line on stdout for every event and reads
//! commands from stdin, one per line; the protocol is in
//! `interop/AGENT-PROTOCOL.md`, shared with the Go peer the interop suite
//! runs beside it. Logs go to stderr (`RUST_LOG` sets the level).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use swim_tokio::{parse_key, Event, Member, MemberState, Node, NodeSettings, Profile, Seed};

/// Runs one memberlist-compatible cluster node, printing events as JSON
/// lines on stdout and reading commands from stdin.
///
/// Commands: members | broadcast TEXT | send NODE TEXT | send-reliable NODE
/// TEXT | meta TEXT | state TEXT | key-add HEX | key-use HEX | key-remove HEX
/// | leave | quit.
#[derive(Debug, Parser)]
#[command(name = "swim-agent", version)]
struct Args {
    /// Node name, unique in the cluster.
    #[arg(long)]
    name: String,
    /// Address to bind UDP and TCP to; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT")]
    bind: SocketAddr,
    /// Address announced to peers [default: the bound address].
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<SocketAddr>,
    /// Seeds to join after start, comma-separated: addresses, host names
    /// (every address tried; port optional) or DNS SRV names
    /// (_service._proto.domain).
    #[arg(long, value_name = "SEED,...", value_delimiter = ',')]
    join: Vec<String>,
    /// Timing preset.
    #[arg(long, default_value = "lan", value_parser = parse_profile)]
    config: Profile,
    /// Encryption key as hex (16, 24 or 32 bytes); repeat for more, the
    /// first is the primary.
    #[arg(long, value_name = "HEX")]
    key: Vec<String>,
    /// Cluster label (memberlist >= 0.3).
    #[arg(long)]
    label: Option<String>,
    /// Node metadata.
    #[arg(long, value_name = "TEXT")]
    meta: Option<String>,
    /// Local state sent with every push/pull.
    #[arg(long, value_name = "TEXT")]
    state: Option<String>,
    /// Compress packets and streams.
    #[arg(long, default_value = "on", value_parser = parse_on_off, value_name = "on|off", action = clap::ArgAction::Set)]
    compression: bool,
    /// Relay received user broadcasts so they reach every member.
    #[arg(long)]
    relay_broadcasts: bool,
    /// Retransmissions of a gossiped update: N × ceil(log10(members + 1)).
    #[arg(long, value_name = "N")]
    retransmit_mult: Option<usize>,
    /// Which adapter runs the node.
    #[arg(long, value_enum, default_value = "tokio")]
    runtime: Runtime,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Runtime {
    Tokio,
    AsyncStd,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse()
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let seeds = match parse_seeds(&args.join) {
        Ok(seeds) => seeds,
        Err(e) => return fail(&e),
    };
    let mut settings = NodeSettings::default();
    settings.name = args.name.clone();
    settings.bind = Some(args.bind);
    settings.advertise = args.advertise;
    settings.profile = args.config;
    settings.meta = args.meta.clone();
    settings.keys = args.key.clone();
    settings.label = args.label.clone();
    settings.compression = Some(args.compression);
    settings.relay_user_broadcasts = Some(args.relay_broadcasts);
    settings.retransmit_mult = args.retransmit_mult;
    let config = match settings.into_config() {
        Ok(config) => config,
        Err(e) => return fail(&format!("--{}: {}", e.field, e.reason)),
    };
    let commands = read_commands();
    let state = args.state.unwrap_or_default();
    let result = match args.runtime {
        Runtime::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(async {
                    let (node, events) =
                        swim_tokio::start(config).await.map_err(|e| e.to_string())?;
                    run(node, events, seeds, state, commands).await;
                    Ok(())
                })
            }),
        Runtime::AsyncStd => async_std::task::block_on(async {
            let (node, events) = swim_async_std::start(config)
                .await
                .map_err(|e| e.to_string())?;
            run(node, events, seeds, state, commands).await;
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("swim-agent: {message}");
    ExitCode::FAILURE
}

/// The `--join` seeds, checked now; names are resolved when the node joins
/// (every address they resolve to is tried).
fn parse_seeds(seeds: &[String]) -> Result<Vec<Seed>, String> {
    seeds
        .iter()
        .filter(|s| !s.is_empty())
        .map(|seed| seed.parse().map_err(|e| format!("--join: {e}")))
        .collect()
}

/// Lines from stdin, read on a thread of their own so either runtime can
/// await them; end of input reads as `quit`.
fn read_commands() -> async_channel::Receiver<String> {
    let (tx, rx) = async_channel::bounded(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send_blocking(line).is_err() {
                return;
            }
        }
        let _ = tx.send_blocking("quit".into());
    });
    rx
}

/// Writes one JSON line to stdout and flushes it: tests read live.
fn print(value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn member_json(event: &str, m: &Member) -> Value {
    json!({"event": event, "node": &*m.name, "addr": m.addr.to_string(), "meta": text(&m.meta)})
}

async fn run(
    node: Node,
    events: swim_tokio::Events,
    seeds: Vec<Seed>,
    state: String,
    commands: async_channel::Receiver<String>,
) {
    let local = node.local_node();
    print(json!({"event": "ready", "node": &*local.name, "addr": local.addr.to_string()}));
    if !state.is_empty() {
        let _ = node.set_local_state(state.as_bytes()).await;
    }
    let printer = async {
        while let Some(event) = events.recv().await {
            if let Some(line) = event_json(&event) {
                print(line);
            }
        }
    };
    let control = async {
        if !seeds.is_empty() {
            match node.join(&seeds).await {
                Ok(count) => print(json!({"event": "joined", "count": count})),
                Err(e) => report("join", &e.to_string()),
            }
        }
        while let Ok(line) = commands.recv().await {
            if !execute(&node, line.trim()).await {
                break;
            }
        }
        node.shutdown().await;
    };
    futures_join(printer, control).await;
}

/// Runs both futures to completion (the printer ends when the node shuts
/// down and its events are drained).
async fn futures_join(
    a: impl std::future::Future<Output = ()>,
    b: impl std::future::Future<Output = ()>,
) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut a_done, mut b_done) = (false, false);
    std::future::poll_fn(|cx| {
        if !a_done {
            a_done = a.as_mut().poll(cx).is_ready();
        }
        if !b_done {
            b_done = b.as_mut().poll(cx).is_ready();
        }
        if a_done && b_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

fn event_json(event: &Event) -> Option<Value> {
    Some(match event {
        Event::MemberJoined(m) => member_json("join", m),
        Event::MemberUpdated(m) => member_json("update", m),
        Event::MemberLeft(m) => member_json("leave", m),
        Event::MemberFailed(m) => member_json("failed", m),
        Event::UserMessage { payload, .. } => {
            json!({"event": "user_msg", "payload": text(payload)})
        }
        Event::RemoteState { join, state } => {
            json!({"event": "remote_state", "join": join, "state": text(state)})
        }
        _ => return None,
    })
}

fn report(command: &str, error: &str) {
    eprintln!("swim-agent: {command}: {error}");
    print(json!({"event": "error", "command": command, "error": error}));
}

/// Carries out one command line; false on `quit`.
async fn execute(node: &Node, line: &str) -> bool {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let result = match command {
        "" => return true,
        "quit" => return false,
        "members" => {
            let members: Vec<Value> = node
                .members()
                .iter()
                .map(|m| {
                    let state = if m.state == MemberState::Suspect { "suspect" } else { "alive" };
                    json!({"node": &*m.name, "addr": m.addr.to_string(), "meta": text(&m.meta), "state": state})
                })
                .collect();
            print(json!({"event": "members", "members": members}));
            return true;
        }
        "broadcast" => node
            .broadcast(rest.as_bytes())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        "send" | "send-reliable" => match rest.split_once(' ') {
            Some((to, text)) if command == "send" => node
                .send_best_effort(to, text.as_bytes())
                .await
                .map_err(|e| e.to_string()),
            Some((to, text)) => node
                .send_reliable(to, text.as_bytes())
                .await
                .map_err(|e| e.to_string()),
            None => Err(format!("usage: {command} NODE TEXT")),
        },
        "meta" => node
            .update_meta(rest.as_bytes())
            .await
            .map_err(|e| e.to_string()),
        "state" => node
            .set_local_state(rest.as_bytes())
            .await
            .map_err(|e| e.to_string()),
        "key-add" | "key-use" | "key-remove" => match parse_key(rest) {
            Ok(key) => match command {
                "key-add" => node.add_key(key).await,
                "key-use" => node.use_key(key).await,
                _ => node.remove_key(key).await,
            }
            .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        "leave" => match node.leave(Duration::from_secs(5)).await {
            Ok(()) => {
                print(json!({"event": "left"}));
                return true;
            }
            Err(e) => Err(e.to_string()),
        },
        _ => Err(format!("unknown command {command:?}")),
    };
    match result {
        Ok(()) => print(json!({"event": "ok", "command": command})),
        Err(e) => report(command, &e),
    }
    true
}
