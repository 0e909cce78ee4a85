//! N nodes in one process on loopback, measured the way `go-peer bench`
//! measures Go memberlist, so `bench/side-by-side` can print ratios.
//!
//! ```text
//! cargo run --release -p swim-tokio --example cluster_bench -- --nodes 100 --duration 30s --preset local [--join-window 5s] [--settle 2s]
//! ```
//!
//! Prints one JSON line: time to converge after every node joins node 0
//! (all at once, or node i at `i / (n - 1)` of the join window; a failed
//! join is retried as `go-peer bench` does, five times, and the failures
//! counted; `last_join_s`: until the last successful join returned): until
//! every node lists every node (`converge_s`, from the
//! first join) and the median of the times each node first did
//! (`converge_p50_s`); over a window starting `--settle` (2 s) after
//! convergence, CPU seconds per node per second
//! (/proc/self/stat), resident memory per node (VmRSS growth since before
//! the first node), UDP datagrams (/proc/net/snmp) and loopback bytes
//! (/proc/net/dev, headers and TCP included) per node per second, and the
//! push/pull states the nodes merged (`push_pull_merges_per_node_per_s`:
//! two per exchange, one on each side) and the catch-up push/pulls they
//! started (`catch_up_push_pulls`, in all; go-peer counts neither); then the
//! time from one node's crash until no other node lists it.
//!
//! `--explain 5s`: while waiting for convergence, every 5 s, print to stderr
//! up to five nodes that lack members, what they lack (the record they hold,
//! and at how many nodes it is missing) and their catch-up counters; and
//! every failed join attempt.

use std::time::{Duration, Instant};

use swim_tokio::{Node, NodeConfig, Preset};

struct Args {
    nodes: usize,
    duration: Duration,
    preset: Preset,
    join_window: Duration,
    settle: Duration,
    explain: Option<Duration>,
}

/// Join attempts per node, and the pause before the next: as go-peer bench.
const JOIN_ATTEMPTS: u32 = 5;

fn args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 100,
        duration: Duration::from_secs(30),
        preset: Preset::Local,
        join_window: Duration::ZERO,
        settle: Duration::from_secs(2),
        explain: None,
    };
    let secs = |v: &str, flag: &str| {
        v.trim_end_matches('s')
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or(format!("bad {flag}"))
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => args.nodes = value.parse().map_err(|_| "bad --nodes")?,
            "--duration" => args.duration = secs(&value, "--duration")?,
            "--join-window" => args.join_window = secs(&value, "--join-window")?,
            "--settle" => args.settle = secs(&value, "--settle")?,
            "--explain" => args.explain = Some(secs(&value, "--explain")?),
            "--preset" => args.preset = value.parse()?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.nodes < 2 {
        return Err("--nodes must be at least 2".into());
    }
    Ok(args)
}

/// A field of a /proc file: the line starting with `prefix`, `index`-th
/// whitespace-separated value after it.
fn proc_value(path: &str, prefix: &str, index: usize) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.trim_start().starts_with(prefix))
        .filter_map(|l| l.trim_start()[prefix.len()..].split_whitespace().nth(index))
        .filter_map(|v| v.parse().ok())
        .next_back()
        .unwrap_or(0)
}

fn rss_bytes() -> u64 {
    proc_value("/proc/self/status", "VmRSS:", 0) * 1024
}

/// User plus system CPU time of this process (clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    (fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0)) as f64 / 100.0
}

fn udp_out_datagrams() -> u64 {
    // The second "Udp:" line holds the values; OutDatagrams is the fourth.
    proc_value("/proc/net/snmp", "Udp:", 3)
}

fn loopback_tx_bytes() -> u64 {
    proc_value("/proc/net/dev", "lo:", 8)
}

/// Push/pull states the nodes merged so far, and catch-up push/pulls they started.
async fn push_pulls(nodes: &[Node]) -> (u64, u64) {
    let mut total = (0, 0);
    for node in nodes {
        if let Ok(stats) = node.stats().await {
            total.0 += stats.core.push_pulls;
            total.1 += stats.core.catch_up_push_pulls;
        }
    }
    total
}

/// Prints up to five nodes that lack members: what each lacks, with the
/// record it holds, and its catch-up counters (fetched off this task).
fn explain(nodes: &[Node], now: f64) {
    let lists: Vec<Vec<String>> = nodes
        .iter()
        .map(|m| m.members().iter().map(|x| x.name.to_string()).collect())
        .collect();
    let names: Vec<String> = nodes
        .iter()
        .map(|m| m.local_node().name.to_string())
        .collect();
    for (i, m) in nodes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.num_members() != nodes.len())
        .take(5)
    {
        let table = m.member_table();
        let lacks: Vec<String> = names
            .iter()
            .filter(|x| !lists[i].contains(x))
            .take(5)
            .map(|x| {
                let held = table.iter().find(|t| *t.member.name == **x).map_or(
                    "unknown".to_string(),
                    |t| {
                        let (state, inc) = (t.member.state, t.member.incarnation);
                        format!(
                            "{state:?} at {inc} for {:.1} s",
                            t.since.elapsed().as_secs_f64()
                        )
                    },
                );
                let missing = lists.iter().filter(|l| !l.contains(x)).count();
                format!("{x} ({held}; missing at {missing})")
            })
            .collect();
        eprintln!("t={now:.1} s {} lacks {}", names[i], lacks.join(", "));
        let m = m.clone();
        tokio::spawn(async move {
            if let Ok(s) = m.stats().await {
                let c = s.core;
                eprintln!(
                    "  {}: catch-up push/pulls {} (limited {}), push/pulls merged {}, streams opened {} failed {}, corrections {}",
                    m.local_node().name,
                    c.catch_up_push_pulls,
                    c.catch_up_limited,
                    c.push_pulls,
                    c.streams_opened,
                    c.streams_failed,
                    c.corrections
                );
            }
        });
    }
}

async fn wait(what: &str, mut done: impl FnMut() -> bool) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if done() {
            return Some(start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("cluster_bench: gave up waiting for {what}");
    None
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cluster_bench: {e}");
            std::process::exit(2);
        }
    };
    let n = args.nodes;
    let rss_before = rss_bytes();
    let bind = "127.0.0.1:0".parse().unwrap();
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("node-{i:03}");
        let config = args.preset.config(name, bind);
        let (node, _events) = swim_tokio::start(NodeConfig::new(bind, config))
            .await
            .expect("start a node");
        nodes.push(node);
    }
    let seed = nodes[0].bound_addr();
    let t0 = Instant::now();
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    // Microseconds from t0 until the last successful join returned.
    let last_join = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let explaining = args.explain.is_some();
    for (i, node) in nodes[1..].iter().enumerate() {
        let node = node.clone();
        let failures = failures.clone();
        let last_join = last_join.clone();
        let at = t0 + args.join_window.mul_f64(i as f64 / (n - 1).max(1) as f64);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            for attempt in 1..=JOIN_ATTEMPTS {
                match node.join(&[seed]).await {
                    Ok(_) => {
                        let micros = t0.elapsed().as_micros() as u64;
                        last_join.fetch_max(micros, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if attempt == JOIN_ATTEMPTS || explaining {
                            eprintln!(
                                "cluster_bench: {} could not join: {e}",
                                node.local_node().name
                            );
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100) * attempt).await;
            }
        });
    }
    // When each node first listed every node.
    let mut first_full: Vec<Option<f64>> = vec![None; n];
    let mut next_explain = args.explain.map_or(0.0, |e| e.as_secs_f64());
    let converge = wait("convergence", || {
        let now = t0.elapsed().as_secs_f64();
        for (node, first) in nodes.iter().zip(&mut first_full) {
            if first.is_none() && node.num_members() == n {
                *first = Some(now);
            }
        }
        if let Some(every) = args.explain {
            if now >= next_explain {
                next_explain = now + every.as_secs_f64();
                explain(&nodes, now);
            }
        }
        nodes.iter().all(|m| m.num_members() == n)
    })
    .await;
    let converge = converge.map(|_| t0.elapsed().as_secs_f64());
    let mut firsts: Vec<f64> = first_full.iter().flatten().copied().collect();
    firsts.sort_by(f64::total_cmp);
    let p50 = (firsts.len() * 2 > n).then(|| firsts[n / 2]);

    tokio::time::sleep(args.settle).await;
    let pulls0 = push_pulls(&nodes).await;
    let (cpu0, udp0, lo0) = (cpu_seconds(), udp_out_datagrams(), loopback_tx_bytes());
    let window = Instant::now();
    tokio::time::sleep(args.duration).await;
    let secs = window.elapsed().as_secs_f64();
    let (cpu1, udp1, lo1) = (cpu_seconds(), udp_out_datagrams(), loopback_tx_bytes());
    let pulls1 = push_pulls(&nodes).await;
    let rss = rss_bytes().saturating_sub(rss_before);

    let crashed = nodes.pop().unwrap();
    let name = crashed.local_node().name;
    crashed.shutdown().await;
    let detect = wait("detection", || {
        nodes
            .iter()
            .all(|m| m.members().iter().all(|x| x.name != name))
    })
    .await;

    let per = |delta: f64| delta / n as f64 / secs;
    println!(
        "{{\"impl\":\"rust\",\"nodes\":{n},\"preset\":\"{}\",\"join_window_s\":{:.1},\"join_failures\":{},\"converge_s\":{},\"converge_p50_s\":{},\"last_join_s\":{},\"window_s\":{secs:.1},\"cpu_s_per_node_per_s\":{:.6},\"rss_bytes_per_node\":{},\"packets_per_node_per_s\":{:.2},\"bytes_per_node_per_s\":{:.1},\"push_pull_merges_per_node_per_s\":{:.4},\"catch_up_push_pulls\":{},\"detect_all_s\":{}}}",
        args.preset.name(),
        args.join_window.as_secs_f64(),
        failures.load(std::sync::atomic::Ordering::Relaxed),
        converge.map_or("null".into(), |s| format!("{s:.3}")),
        p50.map_or("null".into(), |s| format!("{s:.3}")),
        match last_join.load(std::sync::atomic::Ordering::Relaxed) {
            0 => "null".into(),
            us => format!("{:.3}", us as f64 / 1e6),
        },
        per(cpu1 - cpu0),
        rss / n as u64,
        per(udp1.saturating_sub(udp0) as f64),
        per(lo1.saturating_sub(lo0) as f64),
        per((pulls1.0 - pulls0.0) as f64),
        pulls1.1 - pulls0.1,
        detect.map_or("null".into(), |s| format!("{s:.3}")),
    );
    for node in nodes {
        node.shutdown().await;
    }
}
