//! Stopping an agent as an operator does: SIGTERM or SIGINT leave the
//! cluster (peers see a departure, not a failure), shut down and exit 0; a
//! second signal exits at once; `leave_on_stop = false` stops like a crash.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{rust_agent, Agent};
use nix::sys::signal::Signal;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn is_about(kind: &'static str, node: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["event"] == kind && v["node"] == node
}

/// Three agents on `runtime` (Local timings, logs at info); c is stopped.
fn three(runtime: &str, c_extra: &[&str]) -> (Agent, Agent, Agent) {
    let agent = rust_agent();
    let info = [("RUST_LOG", "info")];
    let base = ["--preset", "local", "--runtime", runtime];
    let a = Agent::start_with(&agent, "a", &base, &info);
    let seed = a.addr.clone();
    let mut join = base.to_vec();
    join.extend(["--join", &seed]);
    let mut b = Agent::start_with(&agent, "b", &join, &info);
    let mut c_args = join.clone();
    c_args.extend_from_slice(c_extra);
    let mut c = Agent::start_with(&agent, "c", &c_args, &info);
    b.wait_for(T, "joined", |v| v["event"] == "joined");
    c.wait_for(T, "joined", |v| v["event"] == "joined");
    let mut a = a;
    let all: Vec<(String, String)> = ["a", "b", "c"]
        .iter()
        .map(|n| (n.to_string(), String::new()))
        .collect();
    for agent in [&mut a, &mut b, &mut c] {
        agent.wait_members(&all, T);
    }
    (a, b, c)
}

/// The others see c leave — and, a while later, still no failure.
fn stop_is_a_leave(runtime: &str, signal: Signal) {
    let (mut a, mut b, mut c) = three(runtime, &[]);
    let sent = Instant::now();
    c.signal(signal);
    let status = c.wait_exit(T);
    assert_eq!(status.code(), Some(0), "exit status after {signal}");
    let log = c.stderr();
    for line in [
        "stop requested",
        "leaving the cluster",
        "left the cluster",
        "node shut down",
    ] {
        assert!(log.contains(line), "c logged no {line:?}:\n{log}");
    }
    assert!(log.contains(signal.as_str()), "{log}");
    for peer in [&mut a, &mut b] {
        peer.wait_event("leave", "c", T);
    }
    // Long enough for a failure to be declared had c merely vanished:
    // Local suspects within a probe round and declares death after the
    // suspicion timeout (3 s at least with confirmations).
    let quiet = Duration::from_secs(6).saturating_sub(sent.elapsed());
    for peer in [&mut a, &mut b] {
        peer.drain(quiet);
        assert!(
            !peer.saw(is_about("failed", "c")),
            "{} saw c fail: {:?}",
            peer.name,
            peer.seen
        );
        let two = vec![
            ("a".to_string(), String::new()),
            ("b".to_string(), String::new()),
        ];
        peer.wait_members(&two, T);
    }
    a.quit();
    b.quit();
}

#[test]
fn sigterm_is_seen_as_a_leave_on_tokio() {
    stop_is_a_leave("tokio", Signal::SIGTERM);
}

#[test]
fn sigterm_is_seen_as_a_leave_on_async_std() {
    stop_is_a_leave("async-std", Signal::SIGTERM);
}

#[test]
fn sigint_is_seen_as_a_leave() {
    stop_is_a_leave("tokio", Signal::SIGINT);
}

/// With `agent.leave_on_stop = false` a stop looks like a crash on
/// purpose: the others declare c failed; c still exits 0.
#[test]
fn stop_without_leave_is_seen_as_a_failure() {
    let (mut a, mut b, mut c) = three("async-std", &["--set", "agent.leave_on_stop=false"]);
    c.signal(Signal::SIGTERM);
    assert_eq!(c.wait_exit(T).code(), Some(0));
    assert!(
        c.stderr().contains("stopping without leaving"),
        "{}",
        c.stderr()
    );
    for peer in [&mut a, &mut b] {
        peer.wait_event("failed", "c", T);
        assert!(!peer.saw(is_about("leave", "c")));
    }
    a.quit();
    b.quit();
}

/// A second signal while the leave is still spreading exits at once with
/// 128 + its number. The leave cannot finish quickly here: both nodes
/// gossip and probe only every 30 s, so the departure is sent at most
/// once before the second signal, and the leave waits for four sends.
#[test]
fn a_second_signal_exits_at_once() {
    let agent = rust_agent();
    let slow = [
        "--set",
        "node.gossip_interval=30s",
        "--set",
        "node.probe_interval=30s",
        "--set",
        "agent.leave_timeout=60s",
    ];
    let info = [("RUST_LOG", "info")];
    let a = Agent::start_with(&agent, "a", &slow, &info);
    let mut args = slow.to_vec();
    args.extend(["--join", a.addr.as_str()]);
    let mut b = Agent::start_with(&agent, "b", &args, &info);
    b.wait_for(T, "joined", |v| v["event"] == "joined");
    let both = vec![
        ("a".to_string(), String::new()),
        ("b".to_string(), String::new()),
    ];
    b.wait_members(&both, T);
    b.signal(Signal::SIGTERM);
    b.wait_stderr("leaving the cluster", T);
    let second = Instant::now();
    b.signal(Signal::SIGINT);
    let status = b.wait_exit(T);
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "took {:?}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(128 + 2), "128 + SIGINT");
    let log = b.stderr();
    assert!(log.contains("second signal: exiting at once"), "{log}");
    assert!(
        !log.contains("left the cluster"),
        "the leave had finished: {log}"
    );
    a.quit();
}

/// In service mode stdin is not read (its end does not stop the agent);
/// SIGTERM does, with exit status 0, and stdout stays empty.
#[test]
fn service_mode_runs_until_a_signal() {
    let mut child = Command::new(rust_agent())
        .args([
            "--name",
            "svc",
            "--bind",
            "127.0.0.1:0",
            "--mode",
            "service",
            "--preset",
            "local",
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Still running well after stdin (/dev/null) ended.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited on end of input"
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(out.stdout.is_empty(), "service mode printed on stdout");
    assert!(
        stderr.contains("agent ready") && stderr.contains("mode=Service"),
        "{stderr}"
    );
    // Alone, the leave completes at once.
    assert!(stderr.contains("left the cluster"), "{stderr}");
}
