//! A Go `serf agent` (Debian's `serf`, 0.9.4) and a Rust Serf node on
//! swim-tokio, in one cluster on 127.0.0.1: each sees the other's tags, and
//! user events cross both ways, delivered once.
//!
//! Needs the `serf` binary (`apt-get install serf`), so ignored by a plain
//! `cargo test`; run with
//! `cargo test -p swim-serf --test interop_go -- --ignored`.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_serf::tags::Tags;
use swim_serf::{Serf, SerfConfig, SerfDelegate, SerfEvent, SerfOutput};
use swim_tokio::{Config, NodeConfig};

const T: Duration = Duration::from_secs(30);

/// A loopback port free for both UDP and TCP.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The Go agent, killed when dropped.
struct GoAgent {
    child: Child,
    rpc: String,
    bind: SocketAddr,
    events_file: PathBuf,
    log: PathBuf,
}

impl GoAgent {
    fn start(dir: &std::path::Path) -> GoAgent {
        let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let rpc = format!("127.0.0.1:{}", free_port());
        let events_file = dir.join("go-user-events");
        let log = dir.join("go-agent.log");
        // The handler gets the event's name in the environment and its
        // payload on stdin.
        let handler = format!(
            "user=echo \"$SERF_USER_EVENT $(cat)\" >> {}",
            events_file.display()
        );
        let child = Command::new("serf")
            .arg("agent")
            .arg("-node=go1")
            .arg(format!("-bind={bind}"))
            .arg(format!("-advertise={bind}"))
            .arg(format!("-rpc-addr={rpc}"))
            .arg("-tag=role=go")
            .arg(format!("-event-handler={handler}"))
            .arg("-log-level=debug")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("`serf` not found: apt-get install serf");
        GoAgent {
            child,
            rpc,
            bind,
            events_file,
            log,
        }
    }

    /// `serf <command> -rpc-addr=… <args>` (flags must precede arguments).
    fn cli(&self, command: &str, args: &[&str]) -> String {
        let out = Command::new("serf")
            .arg(command)
            .arg(format!("-rpc-addr={}", self.rpc))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "serf {command}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn user_events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.events_file)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for GoAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn eventually(what: &str, agent: &GoAgent, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !ok() {
        if tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
            panic!("timed out: {what}\n--- go agent log ---\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Go Serf: apt-get install serf"]
async fn go_serf_agent_and_rust_serf_share_tags_and_user_events() {
    let dir = std::env::temp_dir().join(format!("swim-serf-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let go = GoAgent::start(&dir);

    // The Rust node: Serf's state, shared with its Swim's delegate.
    let mut cfg = SerfConfig::new("rust1");
    cfg.tags = Tags::from([("role".to_owned(), "rust".to_owned())]);
    let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let swim = cfg.swim_config(Config::local("rust1", bind)).unwrap();
    let serf = Arc::new(Mutex::new(Serf::new(cfg).unwrap()));
    let (node, events) = swim_tokio::builder(NodeConfig::new(bind, swim))
        .delegate(SerfDelegate(serf.clone()))
        .start()
        .await
        .unwrap();
    let node = Arc::new(node);
    let started = std::time::Instant::now();
    let now = move || swim_tokio::swim_core::Instant::from_duration(started.elapsed());

    // The pump: the Swim's events into Serf, Serf's outputs into the Swim.
    let delivered = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    // Go's push/pull states, and whether each decoded (handle_event drops
    // a bad one silently, as Go does; here it must not happen).
    let merged = Arc::new(Mutex::new(Vec::new()));
    let pump = {
        let (serf, node, delivered, merged) = (
            serf.clone(),
            node.clone(),
            delivered.clone(),
            merged.clone(),
        );
        async move {
            while let Some(event) = events.recv().await {
                let outputs: Vec<SerfOutput> = {
                    let mut s = serf.lock().unwrap();
                    match &event {
                        swim_tokio::Event::RemoteState { join, state } => {
                            let r = s.merge_remote_state(now(), state, *join);
                            merged.lock().unwrap().push(r);
                        }
                        _ => s.handle_event(now(), &event),
                    }
                    std::iter::from_fn(|| s.poll_output()).collect()
                };
                for out in outputs {
                    match out {
                        SerfOutput::Broadcast(b) => {
                            node.broadcast(&b).await.unwrap();
                        }
                        SerfOutput::UpdateMeta(m) => node.update_meta(&m).await.unwrap(),
                        SerfOutput::Event(SerfEvent::User(e)) => delivered
                            .lock()
                            .unwrap()
                            .push((e.name, e.payload.unwrap_or_default())),
                        SerfOutput::Event(_) => {}
                    }
                }
            }
        }
    };
    let pump = tokio::spawn(pump);

    // Join the Go agent (retrying while it starts), then broadcast our join intent.
    let joined = loop {
        match node.join(&[go.bind]).await {
            Ok(n) if n > 0 => break n,
            _ if started.elapsed() < T => tokio::time::sleep(Duration::from_millis(300)).await,
            other => panic!("join failed: {other:?}"),
        }
    };
    let intent: Vec<SerfOutput> = {
        let mut s = serf.lock().unwrap();
        s.join_completed(now(), joined);
        std::iter::from_fn(|| s.poll_output()).collect()
    };
    for out in intent {
        if let SerfOutput::Broadcast(b) = out {
            node.broadcast(&b).await.unwrap();
        }
    }

    // Each side sees the other, with its tags.
    eventually("Go lists rust1 alive with role=rust", &go, || {
        let members = go.cli("members", &["-format=json"]);
        let v: serde_json::Value = serde_json::from_str(&members).unwrap_or_default();
        v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["name"] == "rust1" && m["status"] == "alive" && m["tags"]["role"] == "rust")
    })
    .await;
    eventually("Rust lists go1 with role=go", &go, || {
        serf.lock()
            .unwrap()
            .member("go1")
            .is_some_and(|m| m.tags.get("role").map(String::as_str) == Some("go"))
    })
    .await;

    // A user event from Go reaches the Rust node, once.
    go.cli("event", &["deploy", "from-go"]);
    eventually("the Go event reaches Rust", &go, || {
        delivered.lock().unwrap().iter().any(|(n, _)| n == "deploy")
    })
    .await;

    // One from Rust reaches the Go agent's handler.
    let outputs: Vec<SerfOutput> = {
        let mut s = serf.lock().unwrap();
        s.user_event("rust-deploy", b"from-rust", false).unwrap();
        std::iter::from_fn(|| s.poll_output()).collect()
    };
    for out in outputs {
        if let SerfOutput::Broadcast(b) = out {
            node.broadcast(&b).await.unwrap();
        }
    }
    eventually("the Rust event reaches Go's handler", &go, || {
        go.user_events()
            .iter()
            .any(|l| l == "rust-deploy from-rust")
    })
    .await;

    // Gossip has had time to repeat both events: still once each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from_go: Vec<_> = delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == "deploy")
        .cloned()
        .collect();
    assert_eq!(from_go, [("deploy".to_owned(), b"from-go".to_vec())]);
    let at_go = go.user_events();
    assert_eq!(
        at_go
            .iter()
            .filter(|l| *l == "rust-deploy from-rust")
            .count(),
        1,
        "{at_go:?}"
    );

    let merged = merged.lock().unwrap().clone();
    assert!(
        !merged.is_empty(),
        "the join's push/pull carried Go's Serf state"
    );
    assert!(merged.iter().all(Result::is_ok), "{merged:?}");

    pump.abort();
    node.shutdown().await;
    drop(go);
    let _ = std::fs::remove_dir_all(&dir);
}
