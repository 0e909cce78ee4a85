//! The HTTP listener of `--http`: Prometheus metrics under memberlist's
//! names, `/v1/members` as the cluster is, `/v1/health`, `/v1/stats`,
//! `/v1/events`, the page's files — and hostile clients that cannot stall
//! the node. Loopback only.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{get, http, parse_response, rust_agent, Agent};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// One cluster at a time in this file: the hostile test measures how
/// promptly the node answers, which other clusters' load on a 2-core
/// machine would blur.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a, b (meta mb) and c (meta mc) with the Local timings; a serves
/// HTTP with `extra` flags. Returns them once all list all three.
fn cluster(extra: &[&str]) -> (Agent, Agent, Agent, SocketAddr) {
    let agent = rust_agent();
    let mut args = vec!["--preset", "local", "--meta", "ma", "--http", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let a = Agent::start_with(&agent, "a", &args, &[("RUST_LOG", "info")]);
    let addr = a.http_addr();
    let seed = a.addr.clone();
    let mut b = Agent::start(
        &agent,
        "b",
        &["--preset", "local", "--meta", "mb", "--join", &seed],
    );
    let mut c = Agent::start(
        &agent,
        "c",
        &[
            "--preset",
            "local",
            "--meta",
            "mc",
            "--runtime",
            "async-std",
            "--join",
            &seed,
        ],
    );
    let mut a = a;
    let all: Vec<(String, String)> = [("a", "ma"), ("b", "mb"), ("c", "mc")]
        .iter()
        .map(|(n, m)| (n.to_string(), m.to_string()))
        .collect();
    for agent in [&mut a, &mut b, &mut c] {
        agent.wait_members(&all, T);
    }
    (a, b, c, addr)
}

/// Polls `GET path` until `cond` holds for the response.
fn wait_http(addr: SocketAddr, path: &str, what: &str, cond: impl Fn(&common::Response) -> bool) {
    let deadline = Instant::now() + T;
    loop {
        let response = get(addr, path);
        if cond(&response) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {T:?}; last {path}: {} {}",
            response.status,
            response.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Samples of a Prometheus text exposition, by name with labels.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a sample value: {line:?}"));
        samples.insert(name.to_string(), value);
    }
    samples
}

fn members_of(addr: SocketAddr) -> Vec<Value> {
    let response = get(addr, "/v1/members");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json().as_array().unwrap().clone()
}

#[test]
fn metrics_are_scraped_with_memberlist_names_and_move_under_traffic() {
    let _serial = serial();
    let (mut a, b, c, addr) = cluster(&[]);
    let scrape = || {
        let response = get(addr, "/metrics");
        assert_eq!(response.status, 200);
        assert!(
            response
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
            "{:?}",
            response.headers
        );
        parse_metrics(&response.body)
    };
    // The node publishes once a second; the listener renders every 500 ms.
    wait_http(addr, "/metrics", "the first metrics", |r| {
        r.body.contains("memberlist_members_alive 3")
    });
    let before = scrape();
    for name in [
        "memberlist_udp_sent_total",
        "memberlist_udp_received_total",
        "memberlist_udp_packets_sent_total",
        "memberlist_udp_packets_received_total",
        "memberlist_tcp_connect_total",
        "memberlist_tcp_accept_total",
        "memberlist_msg_ping_total",
        "memberlist_msg_ack_total",
        "memberlist_probes_total",
        "memberlist_probes_failed_total",
        "memberlist_push_pulls_total",
        "memberlist_catch_up_push_pulls_total",
        "memberlist_catch_up_limited_total",
        "memberlist_catch_up_reconnects_total",
        "memberlist_catch_up_corrections_total",
        "memberlist_catch_up_direct_refutations_total",
        "memberlist_catch_up_last_probes_total",
        "memberlist_catch_up_last_probes_answered_total",
        "memberlist_catch_up_doubted_deaths_total",
        "memberlist_catch_up_raised_for_returning_total",
        "memberlist_catch_up_alive_to_returning_total",
        "memberlist_catch_up_back_over_udp_total",
        "memberlist_catch_up_state_gossip_lowered_total",
        "memberlist_catch_up_settle_unreached_total",
        "memberlist_catch_up_hearsay_suspicions_total",
        "memberlist_catch_up_hearsay_told_total",
        "memberlist_health_score",
        "memberlist_members_alive",
        "memberlist_members_suspect",
        "memberlist_members_known",
        "memberlist_queue_broadcasts",
        "memberlist_events_dropped_total",
        "memberlist_invalid_input_total",
    ] {
        assert!(before.contains_key(name), "no {name} in {before:?}");
    }
    assert!(
        before
            .keys()
            .any(|k| k.starts_with("memberlist_rejected_total{reason=")),
        "rejections by reason"
    );
    // As Prometheus wants them (promtool check metrics in .ci/run):
    // every metric has HELP, every counter's name ends in _total.
    let text = get(addr, "/metrics").body;
    let mut lines = text.lines();
    let mut described = 0;
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            let kind = lines
                .next()
                .and_then(|l| l.strip_prefix(&format!("# TYPE {name} ")));
            let kind = kind.unwrap_or_else(|| panic!("HELP of {name} without its TYPE"));
            assert!(
                kind != "counter" || name.ends_with("_total"),
                "counter {name}"
            );
            described += 1;
        } else if line.starts_with("# TYPE ") {
            panic!("no HELP for {line}");
        }
    }
    assert!(described >= 40, "{described} metrics described:\n{text}");
    assert_eq!(before["memberlist_members_alive"], 3.0);
    assert_eq!(before["memberlist_health_score"], 0.0);

    // Traffic: reliable messages open streams; probes keep running.
    for i in 0..20 {
        a.command(&format!("send-reliable b m{i}"));
    }
    let deadline = Instant::now() + T;
    let after = loop {
        let now = scrape();
        if now["memberlist_tcp_connect_total"] >= before["memberlist_tcp_connect_total"] + 20.0 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "tcp.connect did not move: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for name in [
        "memberlist_udp_sent_total",
        "memberlist_udp_packets_sent_total",
        "memberlist_udp_packets_received_total",
        "memberlist_probes_total",
    ] {
        assert!(
            after[name] > before[name],
            "{name} did not grow: {} → {}",
            before[name],
            after[name]
        );
    }
    for agent in [a, b, c] {
        agent.quit();
    }
}

#[test]
fn members_health_stats_and_events_match_the_cluster() {
    let _serial = serial();
    let (mut a, b, mut c, addr) = cluster(&[]);
    let addrs: HashMap<&str, String> = [("a", &a.addr), ("b", &b.addr), ("c", &c.addr)]
        .into_iter()
        .map(|(n, addr)| (n, addr.clone()))
        .collect();
    wait_http(addr, "/v1/members", "three members", |r| {
        r.status == 200 && r.json().as_array().is_some_and(|m| m.len() == 3)
    });
    let members = members_of(addr);
    let names: Vec<&str> = members
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    for m in &members {
        let name = m["name"].as_str().unwrap();
        assert_eq!(m["address"].as_str().unwrap(), addrs[name]);
        assert_eq!(m["state"], "alive");
        assert_eq!(m["meta"].as_str().unwrap(), format!("m{name}"));
        assert_eq!(m["local"], name == "a");
        assert!(m["incarnation"].is_u64());
        assert!(m["in_state_ms"].is_u64() && m["state_since_unix_ms"].is_u64());
        for versions in ["protocol", "delegate"] {
            let v = &m[versions];
            let (min, max, cur) = (
                v["min"].as_u64().unwrap(),
                v["max"].as_u64().unwrap(),
                v["current"].as_u64().unwrap(),
            );
            assert!(min <= cur && cur <= max, "{versions}: {v}");
        }
    }
    // Probes of b and c are acked within a round or two (every 1 s).
    wait_http(addr, "/v1/members", "probe RTTs of b and c", |r| {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["name"] != "a")
            .all(|m| m["last_probe_rtt_ms"].as_f64().is_some_and(|ms| ms > 0.0))
    });

    let health = get(addr, "/v1/health");
    assert_eq!(health.status, 200, "{}", health.body);
    let h = health.json();
    assert_eq!(h["status"], "running");
    assert_eq!(h["node"], "a");
    assert_eq!(h["health_score"], 0);
    assert_eq!(h["members"]["alive"], 3);

    let stats = get(addr, "/v1/stats").json();
    assert!(stats["node"]["probes"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["node"]["packets_sent"].as_u64().unwrap() > 0);
    assert!(stats["node"]["messages_received"]["ping"].is_u64());

    // c leaves: a's table shows it as left, and the event log says so.
    c.send("leave");
    c.wait_for(T, "left", |v| v["event"] == "left");
    a.wait_event("leave", "c", T);
    wait_http(addr, "/v1/members", "c as left", |r| {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "c" && m["state"] == "left")
    });
    wait_http(addr, "/v1/health", "one member left", |r| {
        r.json()["members"]["left"] == 1
    });
    let events = get(addr, "/v1/events").json();
    let kinds: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for expected in [("join", "b"), ("join", "c"), ("left", "c")] {
        assert!(
            kinds.contains(&(expected.0.into(), expected.1.into())),
            "no {expected:?} in {kinds:?}"
        );
    }
    assert_eq!(kinds[0], ("left".into(), "c".into()), "newest first");

    // a itself leaves: unhealthy from then on.
    a.send("leave");
    a.wait_for(T, "left", |v| v["event"] == "left");
    wait_http(addr, "/v1/health", "a unhealthy after leaving", |r| {
        r.status == 503 && r.json()["status"] == "left"
    });
    b.quit();
    c.quit();
    a.quit();
}

#[test]
fn the_page_its_script_and_wrong_requests() {
    let _serial = serial();
    let (a, b, c, addr) = cluster(&[]);
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains(r#"<script src="/app.js"></script>"#));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let script = get(addr, "/app.js");
    assert_eq!(script.status, 200);
    assert!(script.body.contains("/v1/members"));

    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/v1/members?x=1").status, 200, "queries ignored");
    let post = http(addr, "POST", "/v1/members", Some("{}"));
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = http(addr, "HEAD", "/v1/health", None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for agent in [a, b, c] {
        agent.quit();
    }
}

/// Reads what the server sends on `stream` until it closes the connection
/// or `limit` passes; returns the bytes and whether it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (out, false)
            }
            Err(_) => return (out, true),
        }
    }
}

/// Slowloris, oversized and too many headers, garbage, and more
/// connections than allowed, against a's listener while a and b probe
/// each other and exchange messages: the node never stalls (a fails no
/// probe, b never suspects a, every message goes through promptly), every
/// hostile connection is answered or closed within its bounds, and the
/// listener serves again once they are gone.
#[test]
fn hostile_http_clients_do_not_stall_the_node() {
    let _serial = serial();
    const SLOTS: usize = 16;
    let slots = format!("agent.http_max_connections={SLOTS}");
    // c stays up throughout: a crashed member would fail a's probes.
    let (mut a, mut b, mut c, addr) = cluster(&["--set", &slots]);
    wait_http(addr, "/v1/health", "health", |r| r.status == 200);
    let probes_failed_before = get(addr, "/v1/stats").json()["node"]["probes_failed"]
        .as_u64()
        .unwrap();

    // Too large a head: 431, then closed.
    let mut big = TcpStream::connect(addr).unwrap();
    let mut request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 20 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    big.write_all(&request).unwrap();
    let (raw, closed) = read_until_closed(&mut big, Duration::from_secs(5));
    let response = parse_response(&raw).expect("an answer to an oversized head");
    assert_eq!(response.status, 431);
    assert!(closed, "kept an oversized connection open");

    // Too many headers: 431.
    let mut many = TcpStream::connect(addr).unwrap();
    let mut request = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        request.push_str(&format!("X-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    many.write_all(request.as_bytes()).unwrap();
    let (raw, _) = read_until_closed(&mut many, Duration::from_secs(5));
    assert_eq!(parse_response(&raw).map(|r| r.status), Some(431));

    // Garbage: 400.
    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        .unwrap();
    let (raw, closed) = read_until_closed(&mut garbage, Duration::from_secs(5));
    assert_eq!(parse_response(&raw).map(|r| r.status), Some(400));
    assert!(closed);

    // A flood of header bytes: read up to the bound, then closed.
    let flood = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nX: ");
        let chunk = [b'z'; 64 * 1024];
        let mut sent = 0usize;
        // Bounded: 16 MiB at most; the server stops reading long before.
        while sent < 16 << 20 {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });

    // Slowloris: twice as many connections as there are slots, each
    // sending one byte of a request head every 500 ms.
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..2 * SLOTS)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    let trickler = std::thread::spawn(move || {
        let mut closed_after = vec![None; slow.len()];
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && closed_after.iter().any(Option::is_none) {
            for (i, s) in slow.iter_mut().enumerate() {
                if closed_after[i].is_some() {
                    continue;
                }
                let wrote = s.write(b"a").is_ok();
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 512];
                // An answer (such as 408) may come before the close; the
                // close itself reads as end of stream or an error.
                let gone = !wrote
                    || match s.read(&mut buf) {
                        Ok(0) => true,
                        Ok(_) => false,
                        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                    };
                s.set_nonblocking(false).unwrap();
                if gone {
                    closed_after[i] = Some(started.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        closed_after
    });

    // Meanwhile the protocol: messages both ways, and b's view of a.
    let attack = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut round = 0;
    while attack.elapsed() < Duration::from_secs(8) {
        let sent = Instant::now();
        a.command(&format!("send-reliable b during-{round}"));
        b.wait_for(T, "a message from a", |v| {
            v["event"] == "user_msg" && v["payload"] == format!("during-{round}").as_str()
        });
        b.command(&format!("send a back-{round}"));
        slowest = slowest.max(sent.elapsed());
        b.send("members");
        let line = b.wait_new(T, "members", |v| v["event"] == "members");
        let a_state = line["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["node"] == "a")
            .map(|m| m["state"].clone());
        assert_eq!(a_state, Some("alive".into()), "b's view of a: {line}");
        round += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("{round} message rounds during the attack, the slowest {slowest:?}");
    assert!(round >= 10, "only {round} rounds in 8 s");
    assert!(
        slowest < Duration::from_secs(1),
        "a message round took {slowest:?}"
    );

    let closed_after = trickler.join().unwrap();
    let flooded = flood.join().unwrap();
    assert!(flooded < 16 << 20, "the listener read a 16 MiB head");
    // Those that got a slot were held until the head timeout closed them.
    let held = closed_after
        .iter()
        .filter(|c| c.is_some_and(|c| c >= Duration::from_secs(4)))
        .count();
    assert!(
        held >= SLOTS / 2,
        "only {held} slow connections were served"
    );
    for (i, closed) in closed_after.iter().enumerate() {
        let closed = closed.unwrap_or_else(|| panic!("slow connection {i} still open after 15 s"));
        // The head timeout is 5 s; the trickler looks every 500 ms.
        assert!(
            closed < Duration::from_secs(8),
            "slow connection {i} lasted {closed:?}"
        );
    }

    // Served again, and the node counted no failed probe in all that.
    wait_http(addr, "/v1/health", "health after the attack", |r| {
        r.status == 200
    });
    let stats = get(addr, "/v1/stats").json();
    assert_eq!(
        stats["node"]["probes_failed"].as_u64().unwrap(),
        probes_failed_before,
        "a failed probes during the attack: {stats}"
    );
    assert!(
        stats["view"]["http_connections_refused"].as_u64().unwrap() >= SLOTS as u64,
        "connections beyond the slots were refused: {stats}"
    );
    c.send("members");
    c.wait_new(T, "c still running", |v| v["event"] == "members");
    c.quit();
    b.quit();
    a.quit();
}
