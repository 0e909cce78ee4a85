//! Drives agents — `swim-agent` or the Go peer — as child processes through
//! the line protocol of `interop/AGENT-PROTOCOL.md`.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Rust agent binary.
pub fn rust_agent() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_swim-agent"))
}

/// The Go peer, built once per test run from `interop/go-peer` against
/// Debian's memberlist v0.2.2 (docs/protocol.md §13).
pub fn go_peer() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build_go(
                "go-peer",
                "golang-go golang-github-hashicorp-memberlist-dev",
            )
        })
        .clone()
}

/// Builds the Go program in `interop/NAME` offline against Debian's Go
/// packages (`debian_packages` named when `go` is missing) and returns the
/// binary's path.
pub fn build_go(name: &str, debian_packages: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop")
        .join(name);
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join(name);
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", tmp.join("go-cache"))
        .status()
        .unwrap_or_else(|e| panic!("`go` not found ({e}): apt-get install {debian_packages}"));
    assert!(status.success(), "building interop/{name} failed");
    out
}

/// One running agent.
pub struct Agent {
    pub name: String,
    /// The address it advertises.
    pub addr: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, Value)>,
    /// Every line read so far, in order.
    pub seen: Vec<Value>,
    /// When each line of `seen` was read from the agent's stdout.
    pub arrived: Vec<Instant>,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    /// Starts `program` with `args` (after `--name NAME --bind 127.0.0.1:0`)
    /// and waits for its `ready` line.
    pub fn start(program: &Path, name: &str, args: &[&str]) -> Agent {
        Agent::start_with(program, name, args, &[("RUST_LOG", "warn")])
    }

    /// [`start`](Self::start) with environment variables.
    pub fn start_with(program: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut child = Command::new(program)
            .args(["--name", name, "--bind", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let (tx, lines) = channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let who = name.to_string();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{who}: not a JSON line ({e}): {line}"));
                if tx.send((Instant::now(), value)).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_reader = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err_reader.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut agent = Agent {
            name: name.to_string(),
            addr: String::new(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            arrived: Vec::new(),
            stderr,
        };
        let ready = agent.wait_for(Duration::from_secs(20), "ready", |v| v["event"] == "ready");
        agent.addr = ready["addr"].as_str().unwrap().to_string();
        agent
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("agent stdin closed");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The first line (already seen or arriving within `timeout`) that
    /// matches; panics naming `what` and the agent's output otherwise.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(v) = self.seen.iter().find(|v| matches(v)) {
            return v.clone();
        }
        self.wait_new(timeout, what, matches)
    }

    /// Like [`wait_for`](Self::wait_for), ignoring lines already seen.
    pub fn wait_new(
        &mut self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, v)) => {
                    self.seen.push(v.clone());
                    self.arrived.push(at);
                    if matches(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{}: no {what} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                        self.name,
                        self.seen
                            .iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join("\n"),
                        self.stderr()
                    )
                }
            }
        }
    }

    /// Waits for an event of `kind` about `node`.
    pub fn wait_event(&mut self, kind: &str, node: &str, timeout: Duration) -> Value {
        let what = format!("{kind} event for {node}");
        self.wait_for(timeout, &what, |v| v["event"] == kind && v["node"] == node)
    }

    /// Runs a command and waits for its `ok` (or panics on its `error`).
    pub fn command(&mut self, line: &str) {
        let name = line.split(' ').next().unwrap().to_string();
        self.send(line);
        let reply = self.wait_new(
            Duration::from_secs(20),
            &format!("answer to {line:?}"),
            |v| (v["event"] == "ok" || v["event"] == "error") && v["command"] == name.as_str(),
        );
        assert_eq!(
            reply["event"], "ok",
            "{}: {line:?} failed: {reply}",
            self.name
        );
    }

    /// The members it lists now: (name, meta) sorted by name.
    pub fn members(&mut self) -> Vec<(String, String)> {
        self.send("members");
        let line = self.wait_new(Duration::from_secs(10), "members line", |v| {
            v["event"] == "members"
        });
        line["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["node"].as_str().unwrap().to_string(),
                    m["meta"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Polls `members` until it equals `expected` or `timeout` passes.
    pub fn wait_members(&mut self, expected: &[(String, String)], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.members();
            if now == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: members {now:?}, expected {expected:?}\nstderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until its log contains `text`: stderr is read on its own
    /// thread, so a line may land after the stdout event it goes with.
    pub fn wait_stderr(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{}: no {text:?} logged within {timeout:?}; stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends it `signal` (SIGTERM, SIGINT…).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the agent");
    }

    /// Waits up to `timeout` for it to exit, and returns how.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running after {timeout:?}; stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// When this agent had reported every one of `others` joining (the
    /// arrival of the last of their first `join` events), waiting up to
    /// `timeout` for them.
    pub fn joined_all_at(&mut self, others: &[&str], timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            let firsts: Option<Vec<usize>> = others
                .iter()
                .map(|o| {
                    self.seen
                        .iter()
                        .position(|v| v["event"] == "join" && v["node"] == *o)
                })
                .collect();
            if let Some(last) = firsts.and_then(|f| f.into_iter().max()) {
                return self.arrived[last];
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("join events for all of {others:?}");
            self.wait_new(left, &what, |v| v["event"] == "join");
        }
    }

    /// When this agent first reported `other` joining (call after
    /// [`joined_all_at`](Self::joined_all_at) found it).
    pub fn joined_at(&self, other: &str) -> Instant {
        let i = self
            .seen
            .iter()
            .position(|v| v["event"] == "join" && v["node"] == other)
            .expect("a join event for it");
        self.arrived[i]
    }

    /// Whether a line matching `matches` was read so far.
    pub fn saw(&self, matches: impl Fn(&Value) -> bool) -> bool {
        self.seen.iter().any(matches)
    }

    /// Reads every line that arrives within `period`.
    pub fn drain(&mut self, period: Duration) {
        let deadline = Instant::now() + period;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, v)) => {
                    self.seen.push(v);
                    self.arrived.push(at);
                }
                Err(_) => return,
            }
        }
    }

    /// The address of its HTTP listener, from its log (start it with
    /// `--http 127.0.0.1:0` and `RUST_LOG=info`).
    pub fn http_addr(&self) -> SocketAddr {
        let marker = "HTTP listener serving";
        self.wait_stderr(marker, Duration::from_secs(20));
        let log = self.stderr();
        let line = log.lines().find(|l| l.contains(marker)).unwrap();
        let addr = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("addr="))
            .unwrap_or_else(|| panic!("no addr= in {line:?}"));
        addr.parse().unwrap()
    }

    /// Kills it without warning, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `quit` and waits for a clean exit.
    pub fn quit(mut self) {
        self.send("quit");
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{}: exit status {status}", self.name);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: did not exit after quit",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends `method path` with `body` (JSON when given) to `addr` over one
/// connection and reads the whole response; `Connection: close` makes the
/// end of the body the end of the stream.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Response {
    assert!(addr.ip().is_loopback(), "tests talk to loopback only");
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let raw = read_response(&mut stream).unwrap_or_else(|e| panic!("read {method} {path}: {e}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Reads one response: the head, then a body of its `Content-Length`, or
/// up to the end of the stream (some servers keep the connection open
/// despite `Connection: close`, so the length is what ends the read).
fn read_response(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(length) = length {
                while raw.len() < end + 4 + length {
                    let n = stream.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                return Ok(raw);
            }
            stream.read_to_end(&mut raw)?;
            return Ok(raw);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    http(addr, "GET", path, None)
}

/// Splits a raw HTTP/1.1 response; chunked bodies are decoded.
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut body = String::new();
        let mut rest = rest;
        loop {
            let (size, after) = rest.split_once("\r\n")?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            body.push_str(after.get(..size)?);
            rest = after.get(size + 2..)?;
        }
        body
    } else {
        rest.to_string()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

/// A file under the test's temporary directory holding `text`.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("agent-files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
