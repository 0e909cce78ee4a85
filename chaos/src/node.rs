//! One node process: swim-agent on tokio or async-std, or go-peer, started
//! as its own user on its own loopback address, driven through the line
//! protocol of `interop/AGENT-PROTOCOL.md`.
//!
//! Each process gets a thread that reads its stdout (every line, stamped
//! with the time it arrived, goes to the bed's channel) and one that writes
//! its stdin (so a stopped node never blocks the bed). Processes run in a
//! process group of their own: Ctrl-C reaches the bed, which cleans up, and
//! not the nodes. If the bed dies anyway, their stdin closes and both agents
//! read end of input as `quit`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::firewall::Layout;

/// Which implementation a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// swim-agent --runtime tokio.
    Tokio,
    /// swim-agent --runtime async-std.
    AsyncStd,
    /// go-peer: memberlist v0.2.2.
    Go,
}

impl Kind {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tokio => "tokio",
            Kind::AsyncStd => "async-std",
            Kind::Go => "go",
        }
    }
}

/// Parses a mix: `rust` (tokio and async-std alternating), `go`, `mixed`
/// (tokio, async-std, go in turn), one kind, or a comma list of kinds taken
/// in turn (`tokio,go,go`). Node `i` runs `mix[i % len]`.
pub fn parse_mix(s: &str) -> Result<Vec<Kind>, String> {
    let one = |k: &str| match k {
        "tokio" => Ok(Kind::Tokio),
        "async-std" => Ok(Kind::AsyncStd),
        "go" => Ok(Kind::Go),
        other => Err(format!(
            "mix: unknown kind {other:?}: rust, go, mixed, or a comma list of tokio, async-std, go"
        )),
    };
    match s {
        "rust" => Ok(vec![Kind::Tokio, Kind::AsyncStd]),
        "mixed" => Ok(vec![Kind::Tokio, Kind::AsyncStd, Kind::Go]),
        _ => s.split(',').map(|k| one(k.trim())).collect(),
    }
}

/// The programs to run.
#[derive(Debug, Clone)]
pub struct Programs {
    /// swim-agent.
    pub agent: PathBuf,
    /// go-peer, if any node runs Go.
    pub go_peer: Option<PathBuf>,
}

/// What goes from the node threads to the bed.
#[derive(Debug)]
pub enum Line {
    /// A JSON line from node `node`'s process `gen`.
    Json {
        /// Node index.
        node: usize,
        /// Which start of it.
        gen: u32,
        /// When it arrived.
        at: Instant,
        /// The line.
        value: serde_json::Value,
    },
    /// Its stdout closed: the process is gone.
    Closed {
        /// Node index.
        node: usize,
        /// Which start of it.
        gen: u32,
        /// When.
        at: Instant,
    },
}

/// How to start node `i`.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// Index.
    pub index: usize,
    /// Which start this is (0 first).
    pub gen: u32,
    /// Implementation.
    pub kind: Kind,
    /// Addresses and uids.
    pub layout: &'a Layout,
    /// Timing preset name.
    pub preset: &'a str,
    /// Lifeguard on.
    pub lifeguard: bool,
    /// Seeds (node indexes).
    pub join: Vec<usize>,
    /// Keys in hex, the primary first.
    pub keys: Vec<String>,
    /// Where stderr goes.
    pub log: &'a Path,
}

/// A running node process.
#[derive(Debug)]
pub struct Proc {
    /// Which start.
    pub gen: u32,
    child: Child,
    input: mpsc::Sender<String>,
}

impl Proc {
    /// Starts it; lines go to `lines`.
    pub fn spawn(
        l: &Launch<'_>,
        programs: &Programs,
        lines: mpsc::Sender<Line>,
    ) -> Result<Proc, String> {
        let name = crate::plan::node_name(l.index);
        let bind = format!("{}:{}", l.layout.ip(l.index), l.layout.port);
        let program = match l.kind {
            Kind::Go => programs
                .go_peer
                .as_ref()
                .ok_or("a Go node, but no go-peer was built")?,
            _ => &programs.agent,
        };
        let uid = l.layout.uid(l.index).to_string();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", &uid, "--regid", &uid, "--clear-groups", "--"]);
        cmd.arg(program);
        cmd.args(["--name", &name, "--bind", &bind, "--preset", l.preset]);
        if !l.join.is_empty() {
            let seeds: Vec<String> = l
                .join
                .iter()
                .map(|&j| format!("{}:{}", l.layout.ip(j), l.layout.port))
                .collect();
            cmd.args(["--join", &seeds.join(",")]);
        }
        for k in &l.keys {
            cmd.args(["--key", k]);
        }
        if !l.lifeguard {
            cmd.args(["--lifeguard", "off"]);
        }
        match l.kind {
            Kind::Tokio => {
                cmd.args(["--runtime", "tokio"]);
            }
            Kind::AsyncStd => {
                cmd.args(["--runtime", "async-std"]);
            }
            Kind::Go => {}
        }
        if l.kind != Kind::Go {
            // Lines mode logs at info; the bed keeps stderr for reading.
            cmd.env("RUST_LOG", "info");
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(l.log)
            .map_err(|e| format!("{}: {e}", l.log.display()))?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        let (node, gen) = (l.index, l.gen);
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        std::thread::Builder::new()
            .name(format!("{name}-out"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let at = Instant::now();
                    if let Ok(value) = serde_json::from_str(&line) {
                        if lines
                            .send(Line::Json {
                                node,
                                gen,
                                at,
                                value,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                let _ = lines.send(Line::Closed {
                    node,
                    gen,
                    at: Instant::now(),
                });
            })
            .map_err(|e| e.to_string())?;
        let (input, commands) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name(format!("{name}-in"))
            .spawn(move || {
                for c in commands {
                    if writeln!(stdin, "{c}").and_then(|()| stdin.flush()).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Proc { gen, child, input })
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Queues a command line (never blocks).
    pub fn send(&self, command: &str) {
        let _ = self.input.send(command.to_string());
    }

    /// Sends a signal; a process already gone is not an error.
    pub fn signal(&self, signal: Signal) {
        let _ = kill(self.pid(), signal);
    }

    /// SIGCONT then SIGKILL, and reaps it.
    pub fn kill(mut self) {
        self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse() {
        assert_eq!(
            parse_mix("rust").unwrap(),
            vec![Kind::Tokio, Kind::AsyncStd]
        );
        assert_eq!(parse_mix("mixed").unwrap().len(), 3);
        assert_eq!(parse_mix("go").unwrap(), vec![Kind::Go]);
        assert_eq!(
            parse_mix("tokio, go,go").unwrap(),
            vec![Kind::Tokio, Kind::Go, Kind::Go]
        );
        assert!(parse_mix("java").unwrap_err().contains("java"));
        assert!(parse_mix("").is_err());
    }
}
