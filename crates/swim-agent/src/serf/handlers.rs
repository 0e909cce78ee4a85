//! Event handler scripts as Go's agent runs them (`event_handler.go`,
//! `invoke.go`): `SCRIPT`, `TYPE=SCRIPT` or `user:NAME=SCRIPT`, with filters
//! separated by commas (`member-join,user:deploy=handler.sh`). Each runs
//! under `/bin/sh -c` with `SERF_EVENT`, `SERF_SELF_NAME`, `SERF_SELF_ROLE`,
//! `SERF_TAG_*`, and for user events `SERF_USER_EVENT`/`SERF_USER_LTIME`,
//! for queries `SERF_QUERY_NAME`/`SERF_QUERY_LTIME`; members (one line
//! each: name, address, role, tags) or the payload on stdin. What a query
//! handler writes (stdout and stderr, the last 8 KiB) is the answer.
//! Scripts run one at a time, in event order, on a thread of their own,
//! as Go runs them in its event loop.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swim_serf::messages::UserEvent;
use swim_serf::{IncomingQuery, Member, SerfEvent};

/// Go's `maxBufSize`: the output kept from a script.
const MAX_OUTPUT: usize = 8 * 1024;
/// Go's `warnSlow`.
const WARN_SLOW: Duration = Duration::from_secs(1);

/// Which events a script or stream takes (Go's `EventFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// `member-join` … `user`, `query` or `*`.
    pub event: String,
    /// For `user` and `query`: only this name (empty: any).
    pub name: String,
}

impl EventFilter {
    /// Filters from `member-join,user:deploy` (empty: `*`).
    pub fn parse_list(v: &str) -> Vec<EventFilter> {
        let v = if v.is_empty() { "*" } else { v };
        v.split(',')
            .map(|e| {
                let (event, name) = if let Some(n) = e.strip_prefix("user:") {
                    ("user", n)
                } else if let Some(n) = e.strip_prefix("query:") {
                    ("query", n)
                } else {
                    (e, "")
                };
                EventFilter {
                    event: event.to_owned(),
                    name: name.to_owned(),
                }
            })
            .collect()
    }

    /// Whether Go knows the event type.
    pub fn valid(&self) -> bool {
        matches!(
            self.event.as_str(),
            "member-join"
                | "member-leave"
                | "member-failed"
                | "member-update"
                | "member-reap"
                | "user"
                | "query"
                | "*"
        )
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &AgentEvent) -> bool {
        if self.event == "*" {
            return true;
        }
        if event_type(e) != self.event {
            return false;
        }
        match e {
            AgentEvent::User(u) if !self.name.is_empty() => u.name == self.name,
            AgentEvent::Query(q) if !self.name.is_empty() => q.name == self.name,
            _ => true,
        }
    }
}

/// An event as the agent hands it to scripts and streams (Go's
/// `serf.Event`): member events of one kind that Serf delivers together
/// (its coalescer flushes them at once) are one event with every member,
/// as Go's coalescer makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// Members that joined, left, failed, were updated or reaped.
    Members {
        /// `member-join` … `member-reap`.
        kind: &'static str,
        /// The members, in the order Serf delivered them.
        members: Vec<Member>,
    },
    /// A user event.
    User(UserEvent),
    /// A query to answer.
    Query(IncomingQuery),
}

/// Go's `EventType.String()` (and `MemberEvent.String()`).
pub fn event_type(e: &AgentEvent) -> &'static str {
    match e {
        AgentEvent::Members { kind, .. } => kind,
        AgentEvent::User(_) => "user",
        AgentEvent::Query(_) => "query",
    }
}

/// A member event's kind and member.
fn member_event(e: &SerfEvent) -> Option<(&'static str, &Member)> {
    Some(match e {
        SerfEvent::MemberJoin(m) => ("member-join", m),
        SerfEvent::MemberLeave(m) => ("member-leave", m),
        SerfEvent::MemberFailed(m) => ("member-failed", m),
        SerfEvent::MemberUpdate(m) => ("member-update", m),
        SerfEvent::MemberReap(m) => ("member-reap", m),
        SerfEvent::User(_) | SerfEvent::Query(_) => return None,
    })
}

/// Serf's events as the agent hands them on: consecutive member events of
/// one kind merged into one.
pub fn batch(events: impl IntoIterator<Item = SerfEvent>) -> Vec<AgentEvent> {
    let mut out: Vec<AgentEvent> = Vec::new();
    for e in events {
        if let Some((kind, m)) = member_event(&e) {
            if let Some(AgentEvent::Members { kind: k, members }) = out.last_mut() {
                if *k == kind {
                    members.push(m.clone());
                    continue;
                }
            }
            out.push(AgentEvent::Members {
                kind,
                members: vec![m.clone()],
            });
            continue;
        }
        out.push(match e {
            SerfEvent::User(u) => AgentEvent::User(u),
            SerfEvent::Query(q) => AgentEvent::Query(q),
            _ => continue,
        });
    }
    out
}

/// One script and the events it takes (Go's `EventScript`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventScript {
    /// Which events.
    pub filter: EventFilter,
    /// The shell command.
    pub script: String,
}

impl EventScript {
    /// The scripts one `-event-handler` value names (Go's
    /// `ParseEventScript`): one per filter.
    pub fn parse(v: &str) -> Vec<EventScript> {
        let (filter, script) = v.split_once('=').unwrap_or(("", v));
        EventFilter::parse_list(filter)
            .into_iter()
            .map(|filter| EventScript {
                filter,
                script: script.to_owned(),
            })
            .collect()
    }
}

impl std::fmt::Display for EventScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.filter.name.as_str() {
            "" => write!(
                f,
                "Event '{}' invoking '{}'",
                self.filter.event, self.script
            ),
            n => write!(
                f,
                "Event '{}:{n}' invoking '{}'",
                self.filter.event, self.script
            ),
        }
    }
}

/// This node as a script sees it.
#[derive(Debug, Clone)]
pub struct SelfInfo {
    /// Its name.
    pub name: String,
    /// Its tags now.
    pub tags: swim_serf::tags::Tags,
}

/// What a script run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Stdout and stderr together, the last [`MAX_OUTPUT`] bytes.
    pub output: Vec<u8>,
    /// Whether it exited 0.
    pub success: bool,
}

/// The scripts, replaceable on a reload (Go's `UpdateScripts`).
#[derive(Debug, Clone, Default)]
pub struct Scripts(Arc<Mutex<Vec<EventScript>>>);

impl Scripts {
    /// Scripts from `-event-handler` values.
    pub fn new(handlers: &[String]) -> Scripts {
        let s = Scripts::default();
        s.replace(handlers);
        s
    }

    /// Uses `handlers` from the next event on.
    pub fn replace(&self, handlers: &[String]) {
        let scripts = handlers
            .iter()
            .flat_map(|h| EventScript::parse(h))
            .collect();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = scripts;
    }

    /// The scripts `e` invokes, in order.
    pub fn for_event(&self, e: &AgentEvent) -> Vec<EventScript> {
        let scripts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        scripts
            .iter()
            .filter(|s| s.filter.matches(e))
            .cloned()
            .collect()
    }

    /// Every script, for `stats` (Go's `event_handlers`: `event:name`).
    pub fn all(&self) -> Vec<EventScript> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Go's `eventClean`.
fn clean(v: &str) -> String {
    v.replace('\t', "\\t").replace('\n', "\\n")
}

/// What goes on a script's stdin (Go's `memberEventStdin`,
/// `streamPayload`).
pub fn stdin_for(e: &AgentEvent) -> Vec<u8> {
    let mut payload = match e {
        AgentEvent::Members { members, .. } => {
            let mut out = String::new();
            for m in members {
                let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let role = m.tags.get("role").map(String::as_str).unwrap_or("");
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    clean(&m.name),
                    m.addr.ip(),
                    clean(role),
                    clean(&tags.join(","))
                ));
            }
            return out.into_bytes();
        }
        AgentEvent::User(u) => u.payload.clone().unwrap_or_default(),
        AgentEvent::Query(q) => q.payload.clone(),
    };
    if payload.last().is_some_and(|b| *b != b'\n') {
        payload.push(b'\n');
    }
    payload
}

/// The environment Go gives a script for `e`.
pub fn environment(me: &SelfInfo, e: &AgentEvent) -> Vec<(String, String)> {
    let mut env = vec![
        ("SERF_EVENT".to_owned(), event_type(e).to_owned()),
        ("SERF_SELF_NAME".to_owned(), me.name.clone()),
        (
            "SERF_SELF_ROLE".to_owned(),
            me.tags.get("role").cloned().unwrap_or_default(),
        ),
    ];
    for (k, v) in &me.tags {
        let name: String = k
            .to_uppercase()
            .chars()
            .map(|c| match c {
                'A'..='Z' | '0'..='9' | '_' => c,
                _ => '_',
            })
            .collect();
        env.push((format!("SERF_TAG_{name}"), v.clone()));
    }
    match e {
        AgentEvent::User(u) => {
            env.push(("SERF_USER_EVENT".into(), u.name.clone()));
            env.push(("SERF_USER_LTIME".into(), u.ltime.0.to_string()));
        }
        AgentEvent::Query(q) => {
            env.push(("SERF_QUERY_NAME".into(), q.name.clone()));
            env.push(("SERF_QUERY_LTIME".into(), q.query.ltime.0.to_string()));
        }
        AgentEvent::Members { .. } => {}
    }
    env
}

/// Runs `script` for `e` and waits for it (Go's `invokeEventScript`).
pub fn invoke(script: &str, me: &SelfInfo, e: &AgentEvent) -> std::io::Result<Outcome> {
    let (mut reader, writer) = std::io::pipe()?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .envs(environment(me, e))
        .stdin(Stdio::piped())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut child = cmd.spawn()?;
    // The write ends are the child's now: reading ends when it exits.
    drop(cmd);
    let stdin = child.stdin.take();
    let input = stdin_for(e);
    let feeder = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A script that does not read its stdin is no error.
            let _ = stdin.write_all(&input);
        }
    });
    let started = Instant::now();
    let mut output = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut total = 0usize;
    let mut warned = false;
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        total += n;
        output.extend_from_slice(&chunk[..n]);
        if output.len() > MAX_OUTPUT {
            output.drain(..output.len() - MAX_OUTPUT);
        }
        if !warned && started.elapsed() > WARN_SLOW {
            warned = true;
            tracing::warn!(target: "agent", "Script '{script}' slow, execution exceeding {WARN_SLOW:?}");
        }
    }
    let status = child.wait()?;
    let _ = feeder.join();
    if total > MAX_OUTPUT {
        tracing::warn!(target: "agent",
            "Script '{script}' generated {total} bytes of output, truncated to {MAX_OUTPUT}"
        );
    }
    tracing::debug!(target: "agent",
        "Event '{}' script output: {}",
        event_type(e),
        String::from_utf8_lossy(&output)
    );
    Ok(Outcome {
        output,
        success: status.success(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_serf::{LamportTime, MemberStatus};

    fn user(name: &str, payload: &[u8]) -> AgentEvent {
        AgentEvent::User(UserEvent {
            ltime: LamportTime(7),
            name: name.into(),
            payload: Some(payload.to_vec()),
            coalesce: false,
        })
    }

    #[test]
    fn filters_parse_as_go_parses_them() {
        let s = EventScript::parse("member-join,user:deploy=handler.sh");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].filter.event, "user");
        assert_eq!(s[1].filter.name, "deploy");
        assert_eq!(s[1].script, "handler.sh");
        let any = EventScript::parse("all.sh");
        assert_eq!(any[0].filter.event, "*");
        assert!(!EventScript::parse("member-jion=x")[0].filter.valid());
        assert!(s[1].filter.matches(&user("deploy", b"")));
        assert!(!s[1].filter.matches(&user("other", b"")));
        assert!(!s[0].filter.matches(&user("deploy", b"")));
    }

    fn member(name: &str) -> Member {
        Member {
            name: name.into(),
            addr: "127.0.0.1:7946".parse().unwrap(),
            tags: [("role".to_string(), "web".to_string())].into(),
            status: MemberStatus::Alive,
            vsn: [1, 5, 2, 2, 5, 4],
        }
    }

    #[test]
    fn member_events_delivered_together_are_one_event() {
        let events = batch([
            SerfEvent::MemberJoin(member("a")),
            SerfEvent::MemberJoin(member("b")),
            SerfEvent::MemberFailed(member("c")),
            SerfEvent::MemberJoin(member("d")),
        ]);
        assert_eq!(events.len(), 3);
        let AgentEvent::Members { kind, members } = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!((*kind, members.len()), ("member-join", 2));
        assert_eq!(
            String::from_utf8(stdin_for(&events[0])).unwrap(),
            "a\t127.0.0.1\tweb\trole=web\nb\t127.0.0.1\tweb\trole=web\n"
        );
        assert_eq!(event_type(&events[1]), "member-failed");
    }

    #[test]
    fn a_script_gets_go_environment_and_payload() {
        let me = SelfInfo {
            name: "n1".into(),
            tags: [("role".into(), "web".into()), ("d-c".into(), "x".into())].into(),
        };
        let out = invoke(
            "echo $SERF_EVENT $SERF_SELF_NAME $SERF_SELF_ROLE $SERF_TAG_D_C \
             $SERF_USER_EVENT $SERF_USER_LTIME; cat; echo err >&2; exit 3",
            &me,
            &user("deploy", b"v2"),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.output),
            "user n1 web x deploy 7\nv2\nerr\n"
        );
        assert!(!out.success);
    }

    #[test]
    fn output_past_the_limit_keeps_its_end() {
        let me = SelfInfo {
            name: "n".into(),
            tags: Default::default(),
        };
        let out = invoke("head -c 20000 /dev/zero; printf end", &me, &user("x", b"")).unwrap();
        assert_eq!(out.output.len(), MAX_OUTPUT);
        assert!(out.output.ends_with(b"end"));
    }
}
