//! Three Go `serf agent`s (Debian's `serf`, 0.9.4) and three Rust
//! [`SerfNode`]s on swim-tokio, one encrypted cluster on 127.0.0.1:
//! members and tags both ways, user events both ways delivered exactly once
//! to every node, queries both ways (answered by Go agents' query handlers
//! and by the Rust nodes; acks, node and tag filters, relays), network
//! coordinates both ways (`serf rtt` to a Rust node), key rotation by
//! internal queries from both sides (`serf keys`, `SerfNode::use_key`), a
//! leave on each side seen as `left` on the other, a crash on each side
//! (kill -9 of a Go agent, shutdown of a Rust node without leaving) seen
//! as `failed`, force-leave both ways (plain, and pruning), snapshots in
//! Go's format both ways (a Go agent's read here; a Rust node restarted on
//! its own rejoins by itself).
//!
//! Needs the `serf` binary (`apt-get install serf`), so ignored by a plain
//! `cargo test`; run with
//! `cargo test -p swim-serf --test interop_go -- --ignored`.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_serf::snapshot::Snapshot;
use swim_serf::tags::Tags;
use swim_serf::{MemberStatus, QueryParams, SerfConfig, SerfEvent, SerfNode};
use swim_tokio::swim_core::wire::{Keyring, SecretKey};
use swim_tokio::{Config, NodeConfig};

const T: Duration = Duration::from_secs(30);

/// The cluster's key: bytes 0..16, and the same in base64 for Go.
const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const KEY_BASE64: &str = "AAECAwQFBgcICQoLDA0ODw==";
/// The key the cluster rotates to: bytes 16..32.
const NEW_KEY: [u8; 16] = [
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
];
const NEW_KEY_BASE64: &str = "EBESExQVFhcYGRobHB0eHw==";

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

/// A Go agent, killed when dropped.
struct GoAgent {
    name: String,
    child: Child,
    rpc: String,
    bind: SocketAddr,
    events_file: PathBuf,
    log: PathBuf,
}

impl GoAgent {
    fn start(dir: &Path, name: &str) -> GoAgent {
        let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let rpc = format!("127.0.0.1:{}", free_port());
        let events_file = dir.join(format!("{name}-user-events"));
        let log = dir.join(format!("{name}.log"));
        // The handler gets the event's name in the environment and its
        // payload on stdin.
        let handler = format!(
            "user=echo \"$SERF_USER_EVENT $(cat)\" >> {}",
            events_file.display()
        );
        let child = Command::new("serf")
            .arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={bind}"))
            .arg(format!("-advertise={bind}"))
            .arg(format!("-rpc-addr={rpc}"))
            .arg(format!("-encrypt={KEY_BASE64}"))
            .arg(format!(
                "-snapshot={}",
                dir.join(format!("{name}.snapshot")).display()
            ))
            // Go's default LAN profile: the local one retransmits each
            // broadcast only twice, and a query (not in push/pulls) then
            // misses a node of six now and then, in Go as with us.
            .arg("-profile=lan")
            .arg("-tag=role=go")
            .arg(format!("-tag=name={name}"))
            .arg(format!("-event-handler={handler}"))
            // A query handler's output is the agent's answer.
            .arg("-event-handler=query=printf \"go:$SERF_SELF_NAME\"")
            .arg("-log-level=debug")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("`serf` not found: apt-get install serf");
        GoAgent {
            name: name.to_owned(),
            child,
            rpc,
            bind,
            events_file,
            log,
        }
    }

    /// `serf <command> -rpc-addr=… <args>` (flags must precede arguments).
    fn try_cli(&self, command: &str, args: &[&str]) -> Option<String> {
        let out = Command::new("serf")
            .arg(command)
            .arg(format!("-rpc-addr={}", self.rpc))
            .args(args)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn cli(&self, command: &str, args: &[&str]) -> String {
        self.try_cli(command, args)
            .unwrap_or_else(|| panic!("{}: serf {command} {args:?} failed", self.name))
    }

    /// `serf members`: (name, status, tags) of each member.
    fn members(&self) -> Vec<(String, String, serde_json::Value)> {
        let out = self
            .try_cli("members", &["-format=json"])
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or_default().to_owned(),
                    m["status"].as_str().unwrap_or_default().to_owned(),
                    m["tags"].clone(),
                )
            })
            .collect()
    }

    fn status_of(&self, name: &str) -> Option<String> {
        self.members()
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, _)| s)
    }

    fn user_events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.events_file)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GoAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Rust node and every event it delivered.
struct RustNode {
    serf: SerfNode,
    seen: Arc<Mutex<Vec<SerfEvent>>>,
}

impl RustNode {
    /// A node at `bind` encrypting with `key`, keeping a snapshot in `dir`.
    async fn start(name: &str, bind: SocketAddr, key: &[u8], dir: &Path) -> RustNode {
        let mut swim = Config::lan(name, bind);
        swim.keyring = Some(Keyring::new(SecretKey::new(key).unwrap()));
        let mut config = SerfConfig::new(name);
        config.snapshot_path = Some(dir.join(format!("{name}.snapshot")));
        config.tags = Tags::from([
            ("role".to_owned(), "rust".to_owned()),
            ("name".to_owned(), name.to_owned()),
        ]);
        config.leave_propagate_delay = Duration::from_millis(500);
        let builder = swim_tokio::builder(NodeConfig::new(bind, swim));
        let (serf, events) = SerfNode::start(builder, config).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        // The application: answers every query with its name.
        let (answerer, name) = (serf.clone(), name.to_owned());
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let SerfEvent::Query(q) = &e {
                    let _ = answerer.respond(q, format!("rust:{name}").as_bytes()).await;
                }
                sink.lock().unwrap().push(e);
            }
        });
        RustNode { serf, seen }
    }

    fn name(&self) -> String {
        self.serf.node().local_node().name.to_string()
    }

    fn status_of(&self, name: &str) -> Option<MemberStatus> {
        self.serf.member(name).map(|m| m.status)
    }

    fn user_events(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                SerfEvent::User(u) => Some(format!(
                    "{} {}",
                    u.name,
                    String::from_utf8_lossy(u.payload.as_deref().unwrap_or_default())
                )),
                _ => None,
            })
            .collect()
    }
}

async fn eventually(what: &str, go: &[GoAgent], mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !ok() {
        if tokio::time::Instant::now() > deadline {
            let logs: String = go
                .iter()
                .map(|a| format!("--- {} ---\n{}\n", a.name, a.log()))
                .collect();
            panic!("timed out: {what}\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Go Serf: apt-get install serf"]
async fn three_go_agents_and_three_rust_nodes() {
    let dir = std::env::temp_dir().join(format!("swim-serf-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut go: Vec<GoAgent> = ["go0", "go1", "go2"]
        .iter()
        .map(|n| GoAgent::start(&dir, n))
        .collect();
    let mut rust = Vec::new();
    for name in ["rust0", "rust1", "rust2"] {
        let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        rust.push(RustNode::start(name, bind, &KEY, &dir).await);
    }
    // Go agents join go0 by CLI once their RPC is up; Rust nodes join go0.
    let seed = go[0].bind.to_string();
    for agent in &go[1..] {
        eventually("a Go agent joins go0", &go, || {
            agent.try_cli("join", &[&seed]).is_some()
        })
        .await;
    }
    for node in &rust {
        node.serf.join([go[0].bind], false).await.unwrap();
    }
    let names: Vec<String> = go
        .iter()
        .map(|a| a.name.clone())
        .chain(rust.iter().map(RustNode::name))
        .collect();

    // Every node lists all six alive, with their tags.
    for agent in &go {
        eventually("a Go agent lists six alive with tags", &go, || {
            let m = agent.members();
            names.iter().all(|name| {
                m.iter().any(|(n, s, tags)| {
                    let role = if name.starts_with("go") { "go" } else { "rust" };
                    n == name && s == "alive" && tags["role"] == role && tags["name"] == **name
                })
            })
        })
        .await;
    }
    for node in &rust {
        eventually("a Rust node lists six alive with tags", &go, || {
            names.iter().all(|name| {
                node.serf.member(name).is_some_and(|m| {
                    let role = if name.starts_with("go") { "go" } else { "rust" };
                    m.status == MemberStatus::Alive
                        && m.tags.get("role").map(String::as_str) == Some(role)
                        && m.tags.get("name") == Some(name)
                })
            })
        })
        .await;
    }

    // New tags on a Rust node reach the Go agents.
    let tags = Tags::from([
        ("role".to_owned(), "rust".to_owned()),
        ("name".to_owned(), "rust0".to_owned()),
        ("new".to_owned(), "yes".to_owned()),
    ]);
    rust[0].serf.set_tags(tags).await.unwrap();
    for agent in &go {
        eventually("Go sees rust0's new tag", &go, || {
            agent
                .members()
                .iter()
                .any(|(n, _, tags)| n == "rust0" && tags["new"] == "yes")
        })
        .await;
    }

    // One user event from each side: delivered once on all six.
    go[1].cli("event", &["from-go", "gp"]);
    rust[1]
        .serf
        .user_event("from-rust", b"rp", false)
        .await
        .unwrap();
    let expected = ["from-go gp", "from-rust rp"];
    for agent in &go {
        eventually("both events reach a Go agent", &go, || {
            let e = agent.user_events();
            expected.iter().all(|x| e.iter().any(|l| l == x))
        })
        .await;
    }
    for node in &rust {
        eventually("both events reach a Rust node", &go, || {
            let e = node.user_events();
            expected.iter().all(|x| e.iter().any(|l| l == x))
        })
        .await;
    }
    // Gossip and push/pulls had time to repeat them: still once each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for agent in &go {
        let mut e = agent.user_events();
        e.sort();
        assert_eq!(e, expected, "{}", agent.name);
    }
    for node in &rust {
        let mut e = node.user_events();
        e.sort();
        assert_eq!(e, expected, "{}", node.name());
    }

    // `serf query` from Go reaches the Rust nodes, which ack and answer;
    // so do the Go agents' handlers. Relays do not duplicate answers.
    let everyone = |acks: &serde_json::Value| {
        let mut a: Vec<String> = acks
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        a.sort();
        a
    };
    let mut all = names.clone();
    all.sort();
    // Queries are not in push/pulls: one can miss a node of six now and
    // then (docs/serf.md §5), so each is asked up to three times for a
    // complete answer; what is checked is the last answer.
    let go_query =
        |agent: &GoAgent, args: &[&str], complete: &dyn Fn(&serde_json::Value) -> bool| {
            let mut last = (String::new(), serde_json::Value::Null);
            for _ in 0..3 {
                let out = agent.cli("query", args);
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                let done = complete(&v);
                last = (out, v);
                if done {
                    break;
                }
            }
            last
        };
    let (out, v) = go_query(
        &go[0],
        &["-format=json", "-timeout=3s", "-relay-factor=2", "who", "p"],
        &|v| everyone(&v["Acks"]) == all && v["Responses"].as_object().map_or(0, |r| r.len()) == 6,
    );
    assert_eq!(everyone(&v["Acks"]), all, "{out}");
    for name in &names {
        let who = if name.starts_with("go") { "go" } else { "rust" };
        assert_eq!(v["Responses"][name], format!("{who}:{name}"), "{out}");
    }
    // A node filter: only rust1 answers.
    let (out, v) = go_query(
        &go[1],
        &["-format=json", "-timeout=2s", "-node=rust1", "only"],
        &|v| everyone(&v["Acks"]) == ["rust1"],
    );
    assert_eq!(everyone(&v["Acks"]), ["rust1"], "{out}");
    assert_eq!(v["Responses"].as_object().unwrap().len(), 1, "{out}");

    // A Rust query: every Go agent and Rust node acks and answers once.
    let params = QueryParams {
        request_ack: true,
        relay_factor: 1,
        timeout: Some(Duration::from_secs(3)),
        ..QueryParams::default()
    };
    let mut acks = Vec::new();
    let mut responses = Vec::new();
    for _ in 0..3 {
        (acks, responses) = rust[2]
            .serf
            .query("who", b"p", &params)
            .await
            .unwrap()
            .collect()
            .await;
        acks.sort();
        if acks == all && responses.len() == 6 {
            break;
        }
    }
    let diag = || {
        let go_logs: Vec<String> = go
            .iter()
            .map(|a| {
                let l = a.log();
                let lines: Vec<&str> = l.lines().filter(|l| l.contains("uery")).collect();
                format!("{}: {lines:?}", a.name)
            })
            .collect();
        let rust_q: Vec<String> = rust
            .iter()
            .map(|r| {
                let qs: Vec<String> = r
                    .seen
                    .lock()
                    .unwrap()
                    .iter()
                    .filter_map(|e| match e {
                        SerfEvent::Query(q) => Some(format!("{:?}", q.query)),
                        _ => None,
                    })
                    .collect();
                format!("{}: {qs:?}", r.name())
            })
            .collect();
        format!("{go_logs:#?}\n{rust_q:#?}")
    };
    assert_eq!(acks, all, "{}", diag());
    let mut answers: Vec<String> = responses
        .iter()
        .map(|r| format!("{}={}", r.from, String::from_utf8_lossy(&r.payload)))
        .collect();
    answers.sort();
    let expected_answers: Vec<String> = all
        .iter()
        .map(|n| {
            let who = if n.starts_with("go") { "go" } else { "rust" };
            format!("{n}={who}:{n}")
        })
        .collect();
    assert_eq!(answers, expected_answers);
    // A tag filter (Go's unanchored regular expression): the Go agents.
    let params = QueryParams {
        filter_tags: vec![("role".into(), "^g".into())],
        timeout: Some(Duration::from_secs(2)),
        ..QueryParams::default()
    };
    let mut from = Vec::new();
    for _ in 0..3 {
        let (_, responses) = rust[0]
            .serf
            .query("tagged", b"", &params)
            .await
            .unwrap()
            .collect()
            .await;
        from = responses.into_iter().map(|r| r.from).collect();
        from.sort();
        if from.len() == 3 {
            break;
        }
    }
    assert_eq!(from, ["go0", "go1", "go2"]);

    // Key rotation through internal queries, driven from both sides: Go's
    // `serf keys -install` reaches the Rust nodes' keyrings; a Rust node
    // makes the new key everyone's primary and removes the old one; Go's
    // `serf keys -list` and ours agree. The stages after run on the new key.
    // A key query, like any query, can miss a node of six now and then
    // (docs/serf.md §5): Go's CLI then fails, and the (idempotent)
    // operation is tried again.
    let go_keys = |agent: &GoAgent, args: &[&str]| {
        (0..3)
            .find_map(|_| agent.try_cli("keys", args))
            .unwrap_or_else(|| panic!("{}: serf keys {args:?} failed 3 times", agent.name))
    };
    go_keys(&go[0], &["-install", NEW_KEY_BASE64]);
    let listed = go_keys(&go[1], &["-list"]);
    // `serf keys -list` prints a column per key: `<key>  [6/6]`.
    let on_all = |listed: &str, key: &str| {
        listed
            .lines()
            .any(|l| l.contains(key) && l.contains("[6/6]"))
    };
    for key in [KEY_BASE64, NEW_KEY_BASE64] {
        assert!(on_all(&listed, key), "{listed}");
    }
    let mut used = rust[0].serf.use_key(&NEW_KEY).await.unwrap();
    for _ in 0..2 {
        if !used.is_complete() {
            used = rust[0].serf.use_key(&NEW_KEY).await.unwrap();
        }
    }
    assert!(used.is_complete(), "{used:?}");
    let refused = rust[1].serf.remove_key(&NEW_KEY).await.unwrap();
    assert!(refused.num_resp >= 5, "{refused:?}");
    assert_eq!(refused.num_err, refused.num_resp, "{refused:?}");
    assert!(
        refused
            .messages
            .values()
            .all(|m| m == "Removing the primary key is not allowed"),
        "{refused:?}"
    );
    let mut removed = rust[1].serf.remove_key(&KEY).await.unwrap();
    for _ in 0..2 {
        if !removed.is_complete() {
            removed = rust[1].serf.remove_key(&KEY).await.unwrap();
        }
    }
    assert!(removed.is_complete(), "{removed:?}");
    let mut ours = rust[2].serf.list_keys().await.unwrap();
    for _ in 0..2 {
        if !ours.is_complete() {
            ours = rust[2].serf.list_keys().await.unwrap();
        }
    }
    assert!(ours.is_complete(), "{ours:?}");
    assert_eq!(
        ours.keys.into_iter().collect::<Vec<_>>(),
        [(NEW_KEY_BASE64.to_owned(), 6)]
    );
    assert_eq!(
        ours.primary_keys.into_iter().collect::<Vec<_>>(),
        [(NEW_KEY_BASE64.to_owned(), 6)]
    );
    let listed = go_keys(&go[2], &["-list"]);
    assert!(on_all(&listed, NEW_KEY_BASE64), "{listed}");
    assert!(!listed.contains(KEY_BASE64), "{listed}");

    // Coordinates: `serf rtt` on a Go agent estimates the RTT to a Rust
    // node from the coordinate in its acks; a Rust node estimates the RTT
    // to a Go agent from Go's.
    eventually("serf rtt from go0 to rust0", &go, || {
        go[0]
            .try_cli("rtt", &["rust0"])
            .is_some_and(|out| out.contains("rtt:"))
    })
    .await;
    eventually("rust0 estimates its RTT to go0", &go, || {
        rust[0]
            .serf
            .estimated_rtt("go0")
            .is_some_and(|rtt| rtt < Duration::from_secs(1))
    })
    .await;
    let go_view = rust[0].serf.cached_coordinate("go0").unwrap();
    assert_eq!(go_view.vec.len(), 8);
    assert!(go_view.is_valid());

    // A Rust node leaves: Go sees it `left`. A Go agent leaves: Rust sees
    // it `left`.
    let leaver = rust.pop().unwrap();
    leaver.serf.leave().await.unwrap();
    go[2].cli("leave", &[]);
    for agent in &go[..2] {
        eventually("Go sees rust2 left", &go, || {
            agent.status_of("rust2").as_deref() == Some("left")
        })
        .await;
    }
    for node in &rust {
        eventually("Rust sees go2 left", &go, || {
            node.status_of("go2") == Some(MemberStatus::Left)
        })
        .await;
    }
    leaver.serf.shutdown().await;
    drop(leaver);

    // A Go agent is killed and a Rust node stopped without leaving (its
    // answering task holds a handle, so dropping ours would not stop it):
    // each side sees the other's crash as `failed`.
    let mut killed = go.remove(1);
    killed.child.kill().unwrap(); // SIGKILL
    let crashed = rust.pop().unwrap();
    crashed.serf.shutdown().await;
    eventually("Rust sees go1 failed", &go, || {
        rust[0].status_of("go1") == Some(MemberStatus::Failed)
    })
    .await;
    eventually("Go sees rust1 failed", &go, || {
        go[0].status_of("rust1").as_deref() == Some("failed")
    })
    .await;
    assert!(rust[0]
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, SerfEvent::MemberFailed(m) if m.name == "go1")));

    // Force-leave both ways: Go's `serf force-leave` turns the crashed
    // Rust node `left` everywhere; a Rust pruning force-leave makes
    // everyone forget the killed Go agent.
    go[0].cli("force-leave", &["rust1"]);
    eventually("Rust sees rust1 left after Go's force-leave", &go, || {
        rust[0].status_of("rust1") == Some(MemberStatus::Left)
    })
    .await;
    assert_eq!(go[0].status_of("rust1").as_deref(), Some("left"));
    rust[0].serf.force_leave("go1", true).await.unwrap();
    assert!(rust[0].serf.member("go1").is_none());
    eventually("Go forgets go1 after our pruning force-leave", &go, || {
        go[0].members().iter().all(|(n, _, _)| n != "go1")
    })
    .await;

    // Snapshots, in Go's format both ways: go0's lists rust0 where it is;
    // rust0 stopped without leaving and started again on its snapshot
    // (no join call) rejoins by itself, its clocks where they were.
    let go_snapshot = std::fs::read_to_string(dir.join("go0.snapshot")).unwrap();
    let go_view = Snapshot::replay(&go_snapshot, false);
    let rust0_addr = rust[0].serf.node().local_node().addr;
    assert_eq!(
        go_view.alive_nodes.get("rust0"),
        Some(&rust0_addr.to_string()),
        "{go_snapshot}"
    );
    assert!(go_view.last_clock.0 > 0, "{go_snapshot}");
    let clock_before = rust[0].serf.clock();
    let old = rust.pop().unwrap();
    old.serf.shutdown().await;
    drop(old);
    let ours = std::fs::read_to_string(dir.join("rust0.snapshot")).unwrap();
    assert!(
        Snapshot::replay(&ours, false)
            .alive_nodes
            .contains_key("go0"),
        "{ours}"
    );
    let restarted = RustNode::start("rust0", rust0_addr, &NEW_KEY, &dir).await;
    assert!(restarted.serf.clock() >= clock_before);
    eventually("the restarted rust0 rejoins from its snapshot", &go, || {
        restarted.status_of("go0") == Some(MemberStatus::Alive)
            && go[0].status_of("rust0").as_deref() == Some("alive")
    })
    .await;

    drop(killed);
    restarted.serf.shutdown().await;
    drop(go);
    let _ = std::fs::remove_dir_all(&dir);
}
