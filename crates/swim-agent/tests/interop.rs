//! Rust and Go memberlist nodes in one cluster on loopback.
//!
//! The Go side is `interop/go-peer`, built from Debian's memberlist v0.2.2
//! (docs/protocol.md §13); both sides speak interop/AGENT-PROTOCOL.md. Every case runs
//! once per Rust adapter. These tests need Go, so they are ignored by a
//! plain `cargo test`; `.ci/run` installs Go and runs them with
//! `cargo test -p swim-agent --test interop -- --ignored`.

mod common;

use std::time::{Duration, Instant};

use common::{go_peer, rust_agent, Agent};

/// Deadline for convergence: gossip normally, or else the first periodic push/pull, due
/// within its stagger plus one interval (30 s with Local).
const T: Duration = Duration::from_secs(40);
const K16: &str = "000102030405060708090a0b0c0d0e0f";
const K32: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const K_OTHER: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/// A Go node with the Local timings.
fn go(name: &str, extra: &[&str]) -> Agent {
    let mut args = vec!["--preset", "local"];
    args.extend_from_slice(extra);
    Agent::start(&go_peer(), name, &args)
}

/// A Rust node on `runtime` with the Local timings. Go sends a broadcast
/// to a handful of peers and never relays; Rust nodes relay, and send each
/// update as often as Go's LAN preset, so broadcasts reach every member.
fn rust(runtime: &str, name: &str, extra: &[&str]) -> Agent {
    let mut args = vec![
        "--preset",
        "local",
        "--runtime",
        runtime,
        "--relay-broadcasts",
        "--retransmit-mult",
        "4",
    ];
    args.extend_from_slice(extra);
    Agent::start(&rust_agent(), name, &args)
}

fn expect(members: &[(&str, &str)]) -> Vec<(String, String)> {
    members
        .iter()
        .map(|(n, m)| (n.to_string(), m.to_string()))
        .collect()
}

fn joined(agent: &mut Agent) {
    agent.wait_for(T, "joined", |v| v["event"] == "joined");
}

macro_rules! on_both_runtimes {
    ($($case:ident),* $(,)?) => {
        mod on_tokio {
            $(#[test] #[ignore = "needs Go: see .ci/run"] fn $case() { super::$case("tokio") })*
        }
        mod on_async_std {
            $(#[test] #[ignore = "needs Go: see .ci/run"] fn $case() { super::$case("async-std") })*
        }
    };
}

on_both_runtimes!(
    a_rust_node_joins_go_by_host_name,
    mixed_cluster_converges_and_carries_everything,
    failures_are_detected_across_implementations,
    encryption_keys_rotate_and_strangers_stay_out,
    a_mixed_join_storm_converges_in_seconds,
);

/// Repetitions of the join storms: `SWIM_STORM_REPS` (3 by default, as CI
/// runs them; BENCHMARKS.md's figures come from 20).
fn storm_reps() -> usize {
    std::env::var("SWIM_STORM_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// One storm: a Go seed, then the other nodes started one after another
/// (tens of milliseconds apart), each joining the seed as soon as it runs.
/// Returns, per node, how long after the first joiner started it had
/// reported every other node joining, Go nodes first.
fn join_storm(go_nodes: usize, rust_nodes: usize, runtime: &str) -> (Vec<Duration>, Vec<Duration>) {
    let seed = go("g0", &[]);
    let seed_addr = seed.addr.clone();
    let names: Vec<String> = (0..go_nodes)
        .map(|i| format!("g{i}"))
        .chain((0..rust_nodes).map(|i| format!("r{i}")))
        .collect();
    let t0 = Instant::now();
    let mut agents: Vec<Agent> = names[1..]
        .iter()
        .map(|name| {
            if name.starts_with('g') {
                go(name, &["--join", &seed_addr])
            } else {
                // Default Rust settings: no relaying, Local's retransmissions.
                let args = [
                    "--preset",
                    "local",
                    "--runtime",
                    runtime,
                    "--join",
                    &seed_addr,
                ];
                Agent::start(&rust_agent(), name, &args)
            }
        })
        .collect();
    agents.insert(0, seed);
    let mut times = (Vec::new(), Vec::new());
    for agent in &mut agents {
        let others: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != agent.name)
            .collect();
        let at = agent.joined_all_at(&others, Duration::from_secs(90));
        let took = at.saturating_duration_since(t0);
        if took > Duration::from_secs(5) {
            // Which member it lacked, and when it learnt each one.
            let learnt: Vec<String> = others
                .iter()
                .map(|o| {
                    format!(
                        "{o}@{:.2?}",
                        agent.joined_at(o).saturating_duration_since(t0)
                    )
                })
                .collect();
            eprintln!("  {} lagged {took:.2?}: {}", agent.name, learnt.join(" "));
        }
        if agent.name.starts_with('g') {
            times.0.push(took);
        } else {
            times.1.push(took);
        }
    }
    for agent in agents {
        agent.quit();
    }
    times
}

/// `(min, median, max)` of `xs`, in seconds.
fn spread(mut xs: Vec<Duration>) -> (f64, f64, f64) {
    xs.sort();
    let s = |d: Duration| d.as_secs_f64();
    (s(xs[0]), s(xs[xs.len() / 2]), s(xs[xs.len() - 1]))
}

/// 3 Go and 3 Rust nodes join a Go seed at once, on Local: every Rust node
/// lists every node within seconds, every time (a Go node it lacks pings it
/// within a probe round, and that contact starts a push/pull), and every Go
/// node too: a Go node that missed a member's rumour learns it from a Rust
/// node's settle push/pull, which in a cluster this small covers every
/// member (`CatchUp::cover`); without it, it waited for its periodic
/// push/pull, 17–27 s, in 5 of 40 storms (BENCHMARKS.md has the figures
/// before and after; a lagging node's line says which member it lacked).
fn a_mixed_join_storm_converges_in_seconds(runtime: &str) {
    let reps = storm_reps();
    let (mut cluster, mut slowest_go, mut slowest_rust) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        let (go_times, rust_times) = join_storm(3, 3, runtime);
        let g = go_times.iter().copied().max().unwrap();
        let r = rust_times.iter().copied().max().unwrap();
        eprintln!("[{runtime}] storm {rep}: slowest Go node {g:?}, slowest Rust node {r:?}");
        slowest_go.push(g);
        slowest_rust.push(r);
        cluster.push(g.max(r));
    }
    let slowest_rust_max = slowest_rust.iter().copied().max().unwrap();
    let slowest_go_max = slowest_go.iter().copied().max().unwrap();
    let (c, g, r) = (
        spread(cluster.clone()),
        spread(slowest_go),
        spread(slowest_rust),
    );
    eprintln!(
        "[{runtime}] {reps} mixed storms (3 Go + 3 Rust), seconds min/median/max: \
         every node {c:.2?}, slowest Go node {g:.2?}, slowest Rust node {r:.2?}"
    );
    let bound = Duration::from_secs(5);
    assert!(
        slowest_rust_max < bound,
        "a Rust node took {slowest_rust_max:?} to list every node"
    );
    assert!(
        slowest_go_max < bound,
        "a Go node took {slowest_go_max:?} to list every node"
    );
}

/// The same storms with six Go nodes, for comparison: only when
/// `SWIM_STORM_REPS` is set (a Go tail can take a minute).
#[test]
#[ignore = "needs Go: see .ci/run"]
fn an_all_go_join_storm_for_comparison() {
    if std::env::var("SWIM_STORM_REPS").is_err() {
        eprintln!("set SWIM_STORM_REPS to run the all-Go storms");
        return;
    }
    let reps = storm_reps();
    let mut cluster = Vec::new();
    for rep in 0..reps {
        let (go_times, _) = join_storm(6, 0, "tokio");
        let slowest = go_times.into_iter().max().unwrap();
        eprintln!("all Go storm {rep}: slowest node {slowest:?}");
        cluster.push(slowest);
    }
    eprintln!(
        "{reps} all-Go storms (6 Go), seconds min/median/max: every node {:.2?}",
        spread(cluster)
    );
}

/// Go joins Rust and Rust joins Go, with compression on and off; then
/// metadata, state, user messages, broadcasts and leaves cross over.
fn mixed_cluster_converges_and_carries_everything(runtime: &str) {
    let mut g1 = go("g1", &["--meta", "g1", "--state", "state-g1"]);
    let mut r1 = rust(
        runtime,
        "r1",
        &[
            "--meta",
            "r1",
            "--state",
            "state-r1",
            "--join",
            &g1.addr.clone(),
        ],
    );
    joined(&mut r1);
    let mut g2 = go(
        "g2",
        &[
            "--meta",
            "g2",
            "--compression",
            "off",
            "--join",
            &r1.addr.clone(),
        ],
    );
    joined(&mut g2);
    let mut r2 = rust(
        runtime,
        "r2",
        &[
            "--meta",
            "r2",
            "--compression",
            "off",
            "--join",
            &g2.addr.clone(),
        ],
    );
    joined(&mut r2);
    let all = expect(&[("g1", "g1"), ("g2", "g2"), ("r1", "r1"), ("r2", "r2")]);
    for agent in [&mut g1, &mut g2, &mut r1, &mut r2] {
        agent.wait_members(&all, T);
    }

    // Push/pull state, both ways, on the joins.
    r1.wait_for(T, "g1's state", |v| {
        v["event"] == "remote_state" && v["join"] == true && v["state"] == "state-g1"
    });
    g2.wait_for(T, "r1's state", |v| {
        v["event"] == "remote_state" && v["join"] == true && v["state"] == "state-r1"
    });

    // Metadata updates, both ways.
    g1.command("meta g1-v2");
    r2.command("meta r2-v2");
    for agent in [&mut r1, &mut r2] {
        agent.wait_for(T, "g1's update", |v| {
            v["event"] == "update" && v["meta"] == "g1-v2"
        });
    }
    for agent in [&mut g1, &mut g2] {
        agent.wait_for(T, "r2's update", |v| {
            v["event"] == "update" && v["meta"] == "r2-v2"
        });
    }

    // User messages, best effort and reliable, both ways.
    g1.command("send r1 go-to-rust-udp");
    g1.command("send-reliable r1 go-to-rust-tcp");
    r2.command("send g2 rust-to-go-udp");
    r2.command("send-reliable g2 rust-to-go-tcp");
    for text in ["go-to-rust-udp", "go-to-rust-tcp"] {
        r1.wait_for(T, text, |v| {
            v["event"] == "user_msg" && v["payload"] == text
        });
    }
    for text in ["rust-to-go-udp", "rust-to-go-tcp"] {
        g2.wait_for(T, text, |v| {
            v["event"] == "user_msg" && v["payload"] == text
        });
    }

    // Broadcasts from either side reach every other node.
    g2.command("broadcast from-go");
    r1.command("broadcast from-rust");
    for agent in [&mut g1, &mut r1, &mut r2] {
        agent.wait_for(T, "Go's broadcast", |v| {
            v["event"] == "user_msg" && v["payload"] == "from-go"
        });
    }
    for agent in [&mut g1, &mut g2, &mut r2] {
        agent.wait_for(T, "Rust's broadcast", |v| {
            v["event"] == "user_msg" && v["payload"] == "from-rust"
        });
    }

    // A graceful leave is a departure on both sides, not a failure.
    r2.send("leave");
    r2.wait_for(T, "left", |v| v["event"] == "left");
    for agent in [&mut g1, &mut g2, &mut r1] {
        agent.wait_event("leave", "r2", T);
    }
    g2.send("leave");
    g2.wait_for(T, "left", |v| v["event"] == "left");
    for agent in [&mut g1, &mut r1] {
        agent.wait_event("leave", "g2", T);
    }
    for agent in [&g1, &r1] {
        assert!(
            !agent.seen.iter().any(|v| v["event"] == "failed"),
            "{}: a leave was taken for a failure: {:?}",
            agent.name,
            agent.seen
        );
    }
    r2.quit();
    g2.quit();
    r1.quit();
    g1.quit();
}

/// A Rust node joins a Go cluster through a host name (`localhost`, every
/// address it resolves to tried), as Go's `Join` takes names.
fn a_rust_node_joins_go_by_host_name(runtime: &str) {
    let mut g1 = go("g1", &[]);
    let port = g1.addr.rsplit_once(':').expect("host:port").1.to_string();
    let seed = format!("localhost:{port}");
    let mut r1 = rust(runtime, "r1", &["--join", &seed]);
    joined(&mut r1);
    let all = expect(&[("g1", ""), ("r1", "")]);
    for agent in [&mut g1, &mut r1] {
        agent.wait_members(&all, T);
    }
    r1.quit();
    g1.quit();
}

/// Waits until every observer reports `node` failed; returns the slowest.
fn time_to_failed(observers: &mut [&mut Agent], node: &str, since: Instant) -> Duration {
    let mut slowest = Duration::ZERO;
    for agent in observers.iter_mut() {
        agent.wait_event("failed", node, Duration::from_secs(60));
        slowest = slowest.max(since.elapsed());
    }
    slowest
}

/// A killed Rust node is declared dead by Go nodes and a killed Go node by
/// Rust nodes, within the bound the Local timings give.
fn failures_are_detected_across_implementations(runtime: &str) {
    let mut g1 = go("g1", &[]);
    let seed = g1.addr.clone();
    let mut g2 = go("g2", &["--join", &seed]);
    let mut r1 = rust(runtime, "r1", &["--join", &seed]);
    let mut r2 = rust(runtime, "r2", &["--join", &seed]);
    let mut r3 = rust(runtime, "r3", &["--join", &seed]);
    let all = expect(&[("g1", ""), ("g2", ""), ("r1", ""), ("r2", ""), ("r3", "")]);
    for agent in [&mut g1, &mut g2, &mut r1, &mut r2, &mut r3] {
        agent.wait_members(&all, T);
    }
    // Local timings with 5 members: the first probe of the dead node comes
    // within about a second of probing everyone, the suspicion lasts 3 s
    // with one confirmation and at most 18 s without; dissemination is fast.
    let bound = Duration::from_secs(5 + 18 + 5);

    let crash = Instant::now();
    r1.kill();
    let rust_dead = time_to_failed(&mut [&mut g1, &mut g2], "r1", crash);
    eprintln!("[{runtime}] Go nodes declared the killed Rust node dead after {rust_dead:?}");
    assert!(rust_dead < bound, "{rust_dead:?}");

    let crash = Instant::now();
    g2.kill();
    let go_dead = time_to_failed(&mut [&mut r2, &mut r3], "g2", crash);
    eprintln!("[{runtime}] Rust nodes declared the killed Go node dead after {go_dead:?}");
    assert!(go_dead < bound, "{go_dead:?}");

    let rest = expect(&[("g1", ""), ("r2", ""), ("r3", "")]);
    for agent in [&mut g1, &mut r2, &mut r3] {
        agent.wait_members(&rest, T);
    }
}

/// Encrypted clusters of both: 16- and 32-byte keys, a rotation, and nodes
/// with a wrong key or none kept out, saying why in their logs.
fn encryption_keys_rotate_and_strangers_stay_out(runtime: &str) {
    let mut g1 = go("g1", &["--key", K16]);
    let seed = g1.addr.clone();
    let mut r1 = rust(runtime, "r1", &["--key", K16, "--join", &seed]);
    joined(&mut r1);
    let mut g2 = go("g2", &["--key", K16, "--join", &r1.addr.clone()]);
    joined(&mut g2);
    let three = expect(&[("g1", ""), ("g2", ""), ("r1", "")]);
    for agent in [&mut g1, &mut g2, &mut r1] {
        agent.wait_members(&three, T);
    }

    // Rotate to a 32-byte key: everyone adds it, then uses it, then drops
    // the old one; the cluster holds throughout.
    for step in [format!("key-add {K32}"), format!("key-use {K32}")] {
        for agent in [&mut g1, &mut g2, &mut r1] {
            agent.command(&step);
        }
    }
    for agent in [&mut g1, &mut g2, &mut r1] {
        agent.command(&format!("key-remove {K16}"));
    }
    r1.command("send-reliable g2 after-rotation");
    g2.wait_for(T, "message after rotation", |v| {
        v["event"] == "user_msg" && v["payload"] == "after-rotation"
    });
    for agent in [&mut g1, &mut g2, &mut r1] {
        agent.wait_members(&three, T);
    }

    // A newcomer with only the new key gets in, through either side.
    let mut r2 = rust(runtime, "r2", &["--key", K32, "--join", &seed]);
    joined(&mut r2);
    // The old key, another key, or none: refused by Go and by Rust.
    let g1_addr = seed.clone();
    let r1_addr = r1.addr.clone();
    for (i, key) in [Some(K16), Some(K_OTHER), None].into_iter().enumerate() {
        let mut args = vec!["--join".to_string()];
        args.push(format!("{g1_addr},{r1_addr}"));
        if let Some(key) = key {
            args.extend(["--key".to_string(), key.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut stranger = rust(runtime, &format!("rust-stranger-{i}"), &args);
        stranger.wait_for(T, "refused join", |v| {
            v["event"] == "error" && v["command"] == "join"
        });
        stranger.quit();
        let mut stranger = go(&format!("go-stranger-{i}"), &args);
        stranger.wait_for(T, "refused join", |v| {
            v["event"] == "error" && v["command"] == "join"
        });
        stranger.quit();
    }
    let four = expect(&[("g1", ""), ("g2", ""), ("r1", ""), ("r2", "")]);
    for agent in [&mut g1, &mut g2, &mut r1, &mut r2] {
        agent.wait_members(&four, T);
    }
    // Each side logged why it refused the strangers' push/pulls.
    let rust_log = r1.stderr();
    assert!(
        rust_log.contains("decryption_failed") && rust_log.contains("plaintext_not_allowed"),
        "r1 did not say why it refused strangers:\n{rust_log}"
    );
    let go_log = g1.stderr();
    assert!(
        go_log.contains("No installed keys could decrypt the message")
            && go_log.contains("Encryption is configured but remote state is not encrypted"),
        "g1 did not say why it refused strangers:\n{go_log}"
    );
    for agent in [r2, g2, r1, g1] {
        agent.quit();
    }
}
