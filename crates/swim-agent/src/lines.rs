//! The JSON-lines protocol of `interop/AGENT-PROTOCOL.md`: one JSON object
//! per line on stdout for every event, one command per line on stdin. The
//! interop suite drives the Go peer and this agent through it, so it does
//! not change.

use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::{json, Value};
use swim_tokio::{parse_key, Event, Member, MemberState, Node};

/// How long the `leave` command waits for the departure to spread.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines from stdin, read on a thread of their own so either runtime can
/// await them; end of input reads as `quit`.
pub fn read_commands() -> async_channel::Receiver<String> {
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
pub fn print(value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Reports a failed command on stdout and stderr.
pub fn report(command: &str, error: &str) {
    eprintln!("swim-agent: {command}: {error}");
    print(json!({"event": "error", "command": command, "error": error}));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn member_json(event: &str, m: &Member) -> Value {
    json!({"event": event, "node": &*m.name, "addr": m.addr.to_string(), "meta": text(&m.meta)})
}

/// The `ready` line.
pub fn ready(local: &Member) -> Value {
    json!({"event": "ready", "node": &*local.name, "addr": local.addr.to_string()})
}

/// The `joined` line.
pub fn joined(count: usize) -> Value {
    json!({"event": "joined", "count": count})
}

/// The line an event prints as, if the protocol has one for it.
pub fn event_json(event: &Event) -> Option<Value> {
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

/// What a command line asks of the agent beyond the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next command.
    Continue,
    /// `quit`: shut down without leaving.
    Quit,
}

/// Carries out one command line.
pub async fn execute(node: &Node, line: &str) -> Next {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let result = match command {
        "" => return Next::Continue,
        "quit" => return Next::Quit,
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
            return Next::Continue;
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
        "leave" => match node.leave(LEAVE_TIMEOUT).await {
            Ok(()) => {
                print(json!({"event": "left"}));
                return Next::Continue;
            }
            Err(e) => Err(e.to_string()),
        },
        _ => Err(format!("unknown command {command:?}")),
    };
    match result {
        Ok(()) => print(json!({"event": "ok", "command": command})),
        Err(e) => report(command, &e),
    }
    Next::Continue
}
