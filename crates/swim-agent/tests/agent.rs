//! The swim-agent command-line contract (interop/AGENT-PROTOCOL.md).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{rust_agent, Agent};

const T: Duration = Duration::from_secs(20);

#[test]
fn bad_flags_exit_with_usage() {
    let out = Command::new(rust_agent()).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
    let out = Command::new(rust_agent())
        .args(["--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--name is required");
    let out = Command::new(rust_agent())
        .args(["--name", "a", "--bind", "127.0.0.1:0", "--key", "abcd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flag --key: node.keys:") && stderr.contains("16, 24 or 32"),
        "{stderr}"
    );
    let out = Command::new(rust_agent())
        .args([
            "--name",
            "a",
            "--bind",
            "127.0.0.1:0",
            "--join",
            "seed:notaport",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--join") && stderr.contains("seed:notaport"),
        "{stderr}"
    );
    // Bound to every address, it advertises one of this host's (and, with
    // stdin closed, quits at once: nothing is sent).
    let out = Command::new(rust_agent())
        .args(["--name", "a", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(r#""event":"ready""#) && !stdout.contains("0.0.0.0"),
        "{stdout}"
    );
}

/// Both runtimes in one cluster, every command once.
#[test]
fn agents_on_both_runtimes_form_a_cluster_and_obey_commands() {
    let agent = rust_agent();
    let mut a = Agent::start(
        &agent,
        "a",
        &["--config", "local", "--meta", "ma", "--state", "sa"],
    );
    let seed = a.addr.clone();
    let mut b = Agent::start(
        &agent,
        "b",
        &[
            "--config",
            "local",
            "--runtime",
            "async-std",
            "--meta",
            "mb",
            "--compression",
            "off",
            "--join",
            &seed,
        ],
    );
    b.wait_for(T, "joined", |v| v["event"] == "joined" && v["count"] == 1);
    b.wait_for(T, "a's state", |v| {
        v["event"] == "remote_state" && v["join"] == true && v["state"] == "sa"
    });
    let both = vec![
        ("a".to_string(), "ma".to_string()),
        ("b".to_string(), "mb".to_string()),
    ];
    a.wait_members(&both, T);
    b.wait_members(&both, T);

    a.command("send b over-udp");
    a.command("send-reliable b over-tcp");
    for text in ["over-udp", "over-tcp"] {
        b.wait_for(T, text, |v| {
            v["event"] == "user_msg" && v["payload"] == text
        });
    }
    b.command("broadcast to-all");
    a.wait_for(T, "broadcast", |v| {
        v["event"] == "user_msg" && v["payload"] == "to-all"
    });
    b.command("meta mb2");
    a.wait_for(T, "meta update", |v| {
        v["event"] == "update" && v["meta"] == "mb2"
    });

    a.send("send nobody x");
    let err = a.wait_new(T, "error", |v| v["event"] == "error");
    assert_eq!(err["command"], "send");
    a.send("frobnicate");
    a.wait_new(T, "error", |v| {
        v["event"] == "error" && v["command"] == "frobnicate"
    });
    a.wait_stderr("unknown command", T);

    b.send("leave");
    b.wait_for(T, "left", |v| v["event"] == "left");
    a.wait_event("leave", "b", T);
    b.quit();
    a.quit();
}
