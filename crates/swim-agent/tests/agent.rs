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
    // Bound to every address, it advertises a private address of this host
    // (and, in lines mode with stdin at its end, quits at once: nothing is
    // sent; without --mode, stdin on /dev/null would make it a service) —
    // or, on a host without one, refuses to start and says what to set, as
    // Go does.
    let out = Command::new(rust_agent())
        .args(["--name", "a", "--bind", "0.0.0.0:0", "--mode", "lines"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => assert!(
            stdout.contains(r#""event":"ready""#) && !stdout.contains("0.0.0.0"),
            "{stdout}"
        ),
        Some(1) => assert!(
            stderr.contains("no private address to advertise")
                && stderr.contains("--advertise or node.advertise"),
            "{stderr}"
        ),
        other => panic!("exit {other:?}: {stdout}{stderr}"),
    }
}

/// Both runtimes in one cluster, every command once.
#[test]
fn agents_on_both_runtimes_form_a_cluster_and_obey_commands() {
    let agent = rust_agent();
    let mut a = Agent::start(
        &agent,
        "a",
        &["--preset", "local", "--meta", "ma", "--state", "sa"],
    );
    let seed = a.addr.clone();
    let mut b = Agent::start(
        &agent,
        "b",
        &[
            "--preset",
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

/// The configuration in a file, overridden by the environment, overridden
/// by flags — checked both in `--print-config` and in the node that runs.
#[test]
fn config_file_environment_and_flags_take_turns() {
    let file = common::temp_file(
        "layers.toml",
        r#"
        [node]
        name = "from-file"
        bind = "127.0.0.1:0"
        preset = "local"
        meta = "meta-from-file"
        label = "label-from-file"
        gossip_interval = "300ms"
        [agent]
        state = "state-from-file"
        "#,
    );
    let run = |env: &[(&str, &str)], flags: &[&str]| {
        Command::new(rust_agent())
            .arg("--config-file")
            .arg(&file)
            .args(flags)
            .arg("--print-config")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(
        &[
            ("SWIM_NODE_META", "meta-from-env"),
            ("SWIM_NODE_LABEL", "label-from-env"),
            ("SWIM_NODE_GOSSIP_INTERVAL", "250ms"),
        ],
        &[
            "--label",
            "label-from-flag",
            "--set",
            "node.probe_interval=2s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    for line in [
        r#"name = "from-file""#,
        r#"meta = "meta-from-env""#,
        r#"label = "label-from-flag""#,
        r#"gossip_interval = "250ms""#,
        r#"probe_interval = "2s""#,
        r#"state = "state-from-file""#,
        // What the Local preset sets and nobody overrode.
        r#"suspicion_mult = 3"#,
    ] {
        assert!(shown.contains(line), "no {line:?} in:\n{shown}");
    }
    assert!(shown.contains("environment < command line"), "{shown}");

    // The node runs with it: its name from the file, its metadata from
    // the environment; a peer sees both.
    // (The harness gives --name, which wins over the file's name.)
    let mut a = Agent::start_with(
        &rust_agent(),
        "from-flag",
        &["--config-file", file.to_str().unwrap()],
        &[("SWIM_NODE_META", "meta-from-env"), ("RUST_LOG", "warn")],
    );
    let ready = a.wait_for(T, "ready", |v| v["event"] == "ready");
    assert_eq!(ready["node"], "from-flag", "--name wins over the file");
    let mut b = Agent::start(
        &rust_agent(),
        "b",
        &[
            "--preset",
            "local",
            "--label",
            "label-from-file",
            "--join",
            &a.addr,
        ],
    );
    b.wait_for(T, "a's state", |v| {
        v["event"] == "remote_state" && v["state"] == "state-from-file"
    });
    b.wait_members(
        &[
            ("b".to_string(), String::new()),
            ("from-flag".to_string(), "meta-from-env".to_string()),
        ],
        T,
    );
    b.quit();
    a.quit();
}

/// Errors name the source, the key and the reason, and exit 1; nothing
/// starts.
#[test]
fn bad_settings_are_named_with_their_source() {
    let file = common::temp_file(
        "bad.toml",
        "[node]\nname = \"a\"\nbind = \"127.0.0.1:0\"\nsuspicion_mult = \"lots\"\n",
    );
    let out = Command::new(rust_agent())
        .arg("--config-file")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("file {}: node.suspicion_mult:", file.display())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing ran");
    let out = Command::new(rust_agent())
        .args(["--name", "a", "--bind", "127.0.0.1:0"])
        .env("SWIM_AGENT_LEAVE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment variable SWIM_AGENT_LEAVE_TIMEOUT: agent.leave_timeout:"),
        "{stderr}"
    );
    let out = Command::new(rust_agent())
        .args(["--set", "node.name"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--set without =");
}

/// The indented block under `key: |` in a YAML file, dedented.
fn yaml_block(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let header = lines.next().unwrap_or_else(|| panic!("no {key} block"));
    let indent = header.len() - header.trim_start().len() + 2;
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The files in deploy/ are what they claim: the example config and the
/// systemd unit's command line load; the Kubernetes config loads with the
/// pod's name from the environment, and its placeholder key is refused,
/// naming the file and the line.
#[test]
fn deploy_examples_load() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let unit = std::fs::read_to_string(deploy.join("systemd/swim-agent.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/swim-agent"));
    let flags: Vec<String> = words
        .map(|w| {
            w.replace(
                "/etc/swim-agent/agent.toml",
                deploy.join("swim-agent.toml").to_str().unwrap(),
            )
        })
        .collect();
    let out = Command::new(rust_agent())
        .args(&flags)
        .arg("--print-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(r#"mode = "service""#), "{shown}");
    assert!(shown.contains(r#"join_retries = "forever""#), "{shown}");
    assert!(shown.contains(r#"join_retry_max_delay = "5s""#), "{shown}");

    let yaml = std::fs::read_to_string(deploy.join("kubernetes/swim-agent.yaml")).unwrap();
    // The key Secret is readable by the container's user: its files belong
    // to the pod's fsGroup, the user's group, with group read (a 0400 file
    // owned by root made every pod exit 1 with "Permission denied").
    let field = |name: &str| {
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in the manifest"))
            .to_string()
    };
    assert_eq!(field("fsGroup"), field("runAsGroup"));
    let mode = u32::from_str_radix(field("defaultMode").trim_start_matches('0'), 8).unwrap();
    assert_eq!(
        mode & 0o040,
        0o040,
        "the keys are not group-readable: {mode:o}"
    );
    assert_eq!(mode & 0o007, 0, "the keys are readable by others: {mode:o}");
    let image = field("image");
    assert!(
        image.contains(':') && !image.ends_with(":latest"),
        "an unpinned image: {image}"
    );
    let config = common::temp_file("k8s-agent.toml", &yaml_block(&yaml, "agent.toml"));
    let placeholder = common::temp_file("k8s-keys", &yaml_block(&yaml, "keys"));
    let k8s = |keys: &std::path::Path| {
        Command::new(rust_agent())
            .arg("--config-file")
            .arg(&config)
            .arg("--print-config")
            .env("SWIM_NODE_NAME", "swim-agent-0")
            .env("SWIM_AGENT_KEYS_FILE", keys)
            .output()
            .unwrap()
    };
    let out = k8s(&placeholder);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("file {}, line 2", placeholder.display())),
        "{stderr}"
    );
    let real = common::temp_file("k8s-real-keys", "000102030405060708090a0b0c0d0e0f\n");
    let out = k8s(&real);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(r#"name = "swim-agent-0""#), "{shown}");
    assert!(shown.contains(r#"join = ["swim-agent:7946"]"#), "{shown}");
    assert!(
        !shown.contains("000102030405060708090a0b0c0d0e0f"),
        "{shown}"
    );
}
