//! The agent as production runs it: signals other than SIGTERM, a reload on
//! SIGHUP, health that means joined, an HTTP listener one client cannot
//! starve, the mode chosen by what stdin is, and settings checked before
//! anything starts. Real processes on loopback only.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{get, rust_agent, temp_file, Agent};
use nix::sys::signal::Signal;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// An agent started with stdin on /dev/null and no `--mode`: a service.
struct Service {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Service {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Service {
        let mut child = Command::new(rust_agent())
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let service = Service { child, log };
        service.wait_log("agent ready", 1);
        service
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `text` was logged `times` times.
    fn wait_log(&self, text: &str, times: usize) {
        let deadline = Instant::now() + T;
        while self.log().matches(text).count() < times {
            assert!(
                Instant::now() < deadline,
                "no {times} × {text:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + T;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status
                    .code()
                    .unwrap_or_else(|| panic!("killed: {status}\n{}", self.log()));
            }
            assert!(Instant::now() < deadline, "still running:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr_after(&self, marker: &str) -> SocketAddr {
        self.wait_log(marker, 1);
        let log = self.log();
        let line = log.lines().find(|l| l.contains(marker)).unwrap();
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SIGHUP, SIGUSR1 and SIGUSR2 used to kill the agent (status 129, 138…)
/// without a leave, and peers saw a failure. Now SIGHUP reloads, the
/// others are logged and ignored, the peer sees nothing; SIGTERM still
/// leaves. The agent runs with no `--mode` and stdin on /dev/null: a
/// service (it used to read the end of input and quit).
#[test]
fn hangup_and_user_signals_are_not_a_crash() {
    let mut svc = Service::start(
        &[
            "--name",
            "svc",
            "--bind",
            "127.0.0.1:0",
            "--preset",
            "local",
        ],
        &[],
    );
    assert!(svc.log().contains("mode=Service"), "{}", svc.log());
    let svc_addr = svc.addr_after("agent ready");
    let mut peer = Agent::start(
        &rust_agent(),
        "peer",
        &["--preset", "local", "--join", &svc_addr.to_string()],
    );
    peer.wait_event("join", "svc", T);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        svc.running(),
        "stdin at its end stopped a service:\n{}",
        svc.log()
    );

    svc.signal(Signal::SIGHUP);
    svc.wait_log("configuration reloaded", 1);
    for signal in [Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGHUP] {
        svc.signal(signal);
    }
    svc.wait_log("signal ignored", 2);
    svc.wait_log("configuration reloaded", 2);
    // Longer than the Local preset takes to declare a silent member dead.
    peer.drain(Duration::from_secs(4));
    assert!(svc.running(), "a signal killed the agent:\n{}", svc.log());
    assert!(
        !peer.saw(|v| v["node"] == "svc" && (v["event"] == "failed" || v["event"] == "leave")),
        "the peer saw svc go: {:?}",
        peer.seen
    );
    svc.signal(Signal::SIGTERM);
    assert_eq!(svc.wait_exit(), 0, "{}", svc.log());
    assert!(svc.log().contains("left the cluster"), "{}", svc.log());
    peer.wait_event("leave", "svc", T);
    assert!(!peer.saw(|v| v["event"] == "failed"), "{:?}", peer.seen);
    peer.quit();
}

/// SIGHUP applies a changed log level and a changed keys file to the live
/// node: a new key is installed and made primary (a node that only has it
/// can join), an old one removed (a node that only has that can no longer).
#[test]
fn hangup_reloads_the_log_level_and_rotates_the_keys() {
    let k1 = "000102030405060708090a0b0c0d0e0f";
    let k2 = "101112131415161718191a1b1c1d1e1f";
    let keys = temp_file("rotate-keys", &format!("{k1}\n"));
    let config_text = |level: &str| {
        format!(
            "[agent]\nlog = \"{level}\"\nkeys_file = \"{}\"\n",
            keys.display()
        )
    };
    let config = temp_file("rotate.toml", &config_text("warn"));
    let config_arg = config.display().to_string();
    let a = Agent::start_with(
        &rust_agent(),
        "a",
        &["--preset", "local", "--config-file", &config_arg],
        &[("RUST_LOG", "")],
    );
    let join_with = |name: &str, key: &str| {
        Agent::start_with(
            &rust_agent(),
            name,
            &[
                "--preset",
                "local",
                "--key",
                key,
                "--join",
                &a.addr,
                "--set",
                "node.join_retries=0",
            ],
            &[("RUST_LOG", "warn")],
        )
    };
    let joined = |agent: &mut Agent| {
        let outcome = agent.wait_for(T, "join outcome", |v| {
            v["event"] == "joined" || (v["event"] == "error" && v["command"] == "join")
        });
        outcome["event"] == "joined"
    };
    let mut stranger = join_with("before", k2);
    assert!(!joined(&mut stranger), "k2 joined before the reload");
    stranger.quit();

    std::fs::write(&keys, format!("{k2}\n{k1}\n")).unwrap();
    std::fs::write(&config, config_text("info")).unwrap();
    a.signal(Signal::SIGHUP);
    // Logged at info: only once the new level is in place.
    a.wait_stderr("configuration reloaded", T);
    let mut c = join_with("c", k2);
    assert!(joined(&mut c), "k2 could not join after the reload");
    c.quit();

    std::fs::write(&keys, format!("{k2}\n")).unwrap();
    a.signal(Signal::SIGHUP);
    a.wait_stderr("2 encryption key(s)", T);
    let deadline = Instant::now() + T;
    while a.stderr().matches("configuration reloaded").count() < 2 {
        assert!(Instant::now() < deadline, "{}", a.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut old = join_with("old", k1);
    assert!(!joined(&mut old), "k1 still joins after its removal");
    old.quit();
    a.quit();
}

/// A failed join, or one that only this node's own address answered,
/// leaves the node not ready (503) though alive; the attempts show in
/// `/v1/health`. Once another node is there, it becomes ready.
#[test]
fn health_means_joined_and_self_is_no_join() {
    // A seed that answers nothing, tried once.
    let dead = free_port().to_string();
    let dead_seed = format!("127.0.0.1:{dead}");
    let lonely = Agent::start_with(
        &rust_agent(),
        "lonely",
        &[
            "--preset",
            "local",
            "--http",
            "127.0.0.1:0",
            "--join",
            &dead_seed,
            "--set",
            "node.join_retries=0",
        ],
        &[("RUST_LOG", "info")],
    );
    let http = lonely.http_addr();
    let mut lonely = lonely;
    lonely.wait_for(T, "join error", |v| v["event"] == "error");
    let health = wait_health(http, |h| h["join"]["state"] == "failed");
    assert_eq!(health.0, 503, "{}", health.1);
    assert_eq!(health.1["joined"], false);
    assert_eq!(get(http, "/v1/health/live").status, 200);
    lonely.quit();

    // Its own address as the only seed: never a join, tried again and
    // again (a service retries forever by default).
    let port = free_port();
    let own = format!("127.0.0.1:{port}");
    let svc = Service::start(
        &[
            "--name",
            "self",
            "--bind",
            &own,
            "--join",
            &own,
            "--http",
            "127.0.0.1:0",
            "--preset",
            "local",
            "--set",
            "node.join_retry_delay=100ms",
            "--set",
            "node.join_retry_max_delay=300ms",
        ],
        &[],
    );
    let http = svc.addr_after("HTTP listener serving");
    let (status, health) = wait_health(http, |h| h["join"]["attempts"].as_u64() >= Some(3));
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["join"]["state"], "joining", "{health}");
    assert!(
        health["join"]["last_error"]
            .as_str()
            .unwrap()
            .contains("itself"),
        "{health}"
    );
    assert_eq!(get(http, "/v1/health/live").status, 200);
    // Another node joins it: the next attempt finds a cluster.
    let other = Agent::start(
        &rust_agent(),
        "other",
        &["--preset", "local", "--join", &own],
    );
    let (status, health) = wait_health(http, |h| h["ready"] == true);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["join"]["state"], "joined");
    other.quit();
}

fn wait_health(addr: SocketAddr, cond: impl Fn(&Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + T;
    loop {
        let r = get(addr, "/v1/health");
        let body = r.json();
        if cond(&body) {
            return (r.status, body);
        }
        assert!(Instant::now() < deadline, "health stayed {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One GET of `/v1/health` on a connection of its own, within 2 s.
fn probe(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    common::parse_response(&raw).map(|r| r.status)
}

/// A client holding more idle connections than the listener's cap, and
/// opening new ones as fast as they are closed, used to make every
/// readiness probe fail. Now its idle connections make room for them.
#[test]
fn a_client_holding_every_connection_does_not_starve_readiness() {
    const HELD: usize = 70;
    let svc = Service::start(
        &[
            "--name",
            "held",
            "--bind",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--preset",
            "local",
        ],
        &[],
    );
    let addr = svc.addr_after("HTTP listener serving");
    wait_health(addr, |h| h["ready"] == true);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hog = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut held: Vec<Option<TcpStream>> = (0..HELD).map(|_| None).collect();
            let mut opened = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for slot in held.iter_mut() {
                    let closed = match slot {
                        None => true,
                        Some(s) => {
                            s.set_nonblocking(true).unwrap();
                            let mut buf = [0u8; 64];
                            match s.peek(&mut buf) {
                                Ok(_) => true,
                                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                            }
                        }
                    };
                    if closed {
                        *slot = TcpStream::connect(addr).ok();
                        opened += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            opened
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let answers: Vec<Option<u16>> = (0..12)
        .map(|_| {
            let answer = probe(addr);
            std::thread::sleep(Duration::from_millis(500));
            answer
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = hog.join().unwrap();
    eprintln!("the hog opened {opened} connections; probes: {answers:?}");
    assert!(opened > HELD, "the hog never had to reopen: {opened}");
    assert!(
        answers.iter().all(|a| *a == Some(200)),
        "probes failed while one client held {HELD} connections: {answers:?}"
    );
}

/// Settings the node would refuse are refused before it starts, by
/// `--print-config` and `--check` too, naming where each came from and the
/// key; a taken port names the address and the key.
#[test]
fn invalid_settings_fail_every_check_naming_source_and_key() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(rust_agent())
            .args(["--name", "v", "--bind", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for mode in ["--print-config", "--check"] {
        let (code, err) = run(&[mode, "--set", "node.probe_interval=0s"], &[]);
        assert_eq!(code, Some(1), "{mode}: {err}");
        assert!(
            err.contains("flag --set: node.probe_interval: must be positive"),
            "{err}"
        );
        let (code, err) = run(&[mode], &[("SWIM_NODE_MAX_INCOMING_STREAMS", "0")]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(
                "environment variable SWIM_NODE_MAX_INCOMING_STREAMS: node.max_incoming_streams"
            ),
            "{err}"
        );
        let (code, err) = run(&[mode, "--set", "node.gossip_interval=0s"], &[]);
        assert_eq!(code, Some(1), "{err}");
        let (code, err) = run(&[mode, "--set", "agent.log=verbose"], &[]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("agent.log: unknown log level"), "{err}");
    }
    let (code, err) = run(&["--check", "--set", "agent.log=warning"], &[]);
    assert_eq!(code, Some(0), "the alias warning: {err}");
    // A taken port: the address and the key, from --check and at start.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(rust_agent())
        .args([
            "--name",
            "v",
            "--set",
            &format!("node.bind={addr}"),
            "--check",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("flag --set: node.bind: cannot bind {addr}")),
        "{err}"
    );
    let out = Command::new(rust_agent())
        .args(["--name", "v", "--bind", &addr, "--mode", "service"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "flag --bind: node.bind: cannot start the node on {addr}"
        )),
        "{err}"
    );
    let (code, err) = run(&["--http", &addr, "--mode", "service"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("flag --http: agent.http: cannot listen on {addr}")),
        "{err}"
    );
    drop(taken);
    let (code, shown) = {
        let out = Command::new(rust_agent())
            .args(["--name", "v", "--bind", "127.0.0.1:0", "--print-config"])
            .args(["--set", "node.dead_node_reclaim_time=2s"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0));
    assert!(shown.contains("dead_node_reclaim_time = \"2s\""), "{shown}");
}

/// `agent.log_format = "json"`: every log line is a JSON object.
#[test]
fn json_logs_are_one_object_a_line() {
    let mut svc = Service::start(
        &[
            "--name",
            "json",
            "--bind",
            "127.0.0.1:0",
            "--set",
            "agent.log_format=json",
        ],
        &[],
    );
    svc.signal(Signal::SIGTERM);
    assert_eq!(svc.wait_exit(), 0);
    let log = svc.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["message"] == "agent ready" && v["level"] == "INFO"),
        "{log}"
    );
}

/// What the page shows, from its JSON: a crashed member is suspected
/// (an event no one reported before), then `dead` — one word, in the
/// events as in the table — its last RTT marked stale, times ISO 8601.
#[test]
fn a_crash_shows_as_suspect_then_dead_with_a_stale_rtt() {
    let a = Agent::start_with(
        &rust_agent(),
        "a",
        &["--preset", "local", "--http", "127.0.0.1:0"],
        &[("RUST_LOG", "info")],
    );
    let http = a.http_addr();
    let mut a = a;
    let b = Agent::start(
        &rust_agent(),
        "b",
        &["--preset", "local", "--join", &a.addr],
    );
    let mut c = Agent::start(
        &rust_agent(),
        "c",
        &["--preset", "local", "--join", &a.addr],
    );
    a.wait_event("join", "c", T);
    // c has been probed (and acked) before it crashes.
    let deadline = Instant::now() + T;
    while !get(http, "/v1/members")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "c" && m["last_probe_rtt_ms"].is_number())
    {
        assert!(Instant::now() < deadline, "c never probed");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.kill();
    a.wait_event("failed", "c", T);
    let deadline = Instant::now() + T;
    let events = loop {
        let events = get(http, "/v1/events").json();
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"] == "c")
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        if kinds.contains(&"dead") {
            assert!(kinds.contains(&"suspect"), "no suspicion of c: {events}");
            assert!(
                !kinds.contains(&"failed"),
                "two words for one state: {events}"
            );
            break events;
        }
        assert!(Instant::now() < deadline, "no dead c: {events}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let at = events[0]["at"].as_str().unwrap();
    assert!(
        at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );
    let members = get(http, "/v1/members").json();
    let c_row = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "c")
        .unwrap();
    assert_eq!(c_row["state"], "dead", "{c_row}");
    assert_eq!(c_row["last_probe_stale"], true, "{c_row}");
    let b_row = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "b")
        .unwrap();
    assert_ne!(b_row["last_probe_stale"], true, "{b_row}");
    b.quit();
    a.quit();
}
