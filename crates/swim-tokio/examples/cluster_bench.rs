//! N nodes in one process on loopback, measured the way `go-peer bench`
//! measures Go memberlist, so `bench/side-by-side` can print ratios.
//!
//! ```text
//! cargo run --release -p swim-tokio --example cluster_bench -- --nodes 100 --duration 30s --preset local [--join-window 5s] [--settle 2s] [--catch-up on|off]
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
//! For the cost curve (`bench/curve`; BENCHMARKS.md, "The cost curve") it
//! also prints: `converge_after_last_join_s`; the membership broadcast
//! queue at convergence (mean and largest over the nodes) and node 1's
//! largest while the joins run; with `--user-broadcasts K`, node 1 queues K
//! user broadcasts spread over the join window, under the joins' churn, and
//! `user_broadcast_wait_s` lists for each the seconds until it left the
//! queue sent its retransmit limit of times (`BroadcastFinished`, as Go's
//! `Broadcast.Finished`); `members_failed_*`: members declared dead as the
//! nodes saw it, summed over the nodes, during the joins, during the window
//! and from the crash until detection — the crash accounts for `n - 1` of
//! the last, anything else is a false positive; the nodes' UDP payload
//! bytes, so that the stream (TCP) bytes are the loopback bytes less the
//! datagrams with their 28 bytes of headers; `detect_first_s`, until the
//! first node dropped the crashed one; `rss_started_bytes_per_node`, the
//! growth once every node is started, before any join. `--give-up 120s` bounds each wait and
//! `--poll 10ms` is the interval of the convergence and detection polls
//! (they read every node's count, so at thousands of nodes poll less often);
//! without convergence the crash is not timed.
//!
//! `--explain 5s`: while waiting for convergence, every 5 s, print to stderr
//! up to five nodes that lack members, what they lack (the record they hold,
//! and at how many nodes it is missing) and their catch-up counters; and
//! every failed join attempt.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swim_tokio::{BroadcastOutcome, Event};

use swim_tokio::{Node, NodeConfig, Preset};

struct Args {
    nodes: usize,
    duration: Duration,
    preset: Preset,
    join_window: Duration,
    settle: Duration,
    explain: Option<Duration>,
    give_up: Duration,
    poll: Duration,
    user_broadcasts: usize,
    /// `--catch-up off`: Go's behaviour (`CatchUp::off`) on every node.
    catch_up: bool,
}

/// Bytes a datagram adds on `lo` beyond its payload: IPv4 and UDP headers
/// (`lo` counts a frame after its Ethernet header is pulled).
const UDP_FRAME_OVERHEAD: u64 = 20 + 8;

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
        give_up: Duration::from_secs(120),
        poll: Duration::from_millis(10),
        user_broadcasts: 0,
        catch_up: true,
    };
    let secs = |v: &str, flag: &str| {
        v.trim_end_matches('s')
            .trim_end_matches('m')
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| {
                if v.ends_with("ms") {
                    Duration::from_secs_f64(s / 1000.0)
                } else {
                    Duration::from_secs_f64(s)
                }
            })
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
            "--give-up" => args.give_up = secs(&value, "--give-up")?,
            "--poll" => args.poll = secs(&value, "--poll")?.max(Duration::from_millis(1)),
            "--user-broadcasts" => {
                args.user_broadcasts = value.parse().map_err(|_| "bad --user-broadcasts")?
            }
            "--preset" => args.preset = value.parse()?,
            "--catch-up" if value == "on" || value == "off" => args.catch_up = value == "on",
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

/// Counters summed over the nodes.
#[derive(Default, Clone, Copy)]
struct Totals {
    push_pulls: u64,
    catch_up_push_pulls: u64,
    members_failed: u64,
    udp_payload_bytes: u64,
}

/// Every node's counters, asked of all nodes at once: one after the other,
/// a loaded cluster of thousands answered in minutes.
async fn all_stats(nodes: &[Node]) -> Vec<swim_tokio::NodeStats> {
    let mut asks = tokio::task::JoinSet::new();
    for node in nodes {
        let node = node.clone();
        asks.spawn(async move { node.stats().await.ok() });
    }
    let mut all = Vec::with_capacity(nodes.len());
    while let Some(stats) = asks.join_next().await {
        all.extend(stats.ok().flatten());
    }
    all
}

async fn totals(nodes: &[Node]) -> Totals {
    let mut t = Totals::default();
    for stats in all_stats(nodes).await {
        t.push_pulls += stats.core.push_pulls;
        t.catch_up_push_pulls += stats.core.catch_up_push_pulls;
        t.members_failed += stats.core.members_failed;
        t.udp_payload_bytes += stats.core.bytes_sent;
    }
    t
}

/// The membership broadcast queues now: mean and largest over the nodes.
async fn queues(nodes: &[Node]) -> (f64, usize) {
    let all = all_stats(nodes).await;
    let sum: usize = all.iter().map(|s| s.broadcast_queue_len).sum();
    let max = all.iter().map(|s| s.broadcast_queue_len).max().unwrap_or(0);
    (sum as f64 / nodes.len().max(1) as f64, max)
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

async fn wait(
    what: &str,
    give_up: Duration,
    poll: Duration,
    mut done: impl FnMut() -> bool,
) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < give_up {
        if done() {
            return Some(start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(poll).await;
    }
    eprintln!("cluster_bench: gave up waiting for {what}");
    None
}

fn opt(v: Option<f64>) -> String {
    v.map_or("null".into(), |s| format!("{s:.3}"))
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
    // Node 1's events: when its user broadcasts leave the queue.
    let mut broadcaster_events = None;
    for i in 0..n {
        let name = format!("node-{i:03}");
        let mut config = args.preset.config(name, bind);
        if !args.catch_up {
            config.catch_up = swim_tokio::CatchUp::off();
        }
        let (node, events) = swim_tokio::start(NodeConfig::new(bind, config))
            .await
            .expect("start a node");
        if i == 1 {
            broadcaster_events = Some(events);
        }
        nodes.push(node);
    }
    // Before any join: what a node costs before it knows anyone.
    let rss_started = rss_bytes().saturating_sub(rss_before);
    let seed = nodes[0].bound_addr();
    let t0 = Instant::now();
    let failures = Arc::new(AtomicU32::new(0));
    // Microseconds from t0 until the last successful join returned.
    let last_join = Arc::new(AtomicU64::new(0));
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
                        last_join.fetch_max(micros, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
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

    // Node 1 queues the user broadcasts while the others join, and watches
    // its membership queue; its events say when each broadcast left.
    let storm_queue_max = Arc::new(AtomicU64::new(0));
    let waits = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let broadcaster = nodes[1].clone();
    if let Some(events) = broadcaster_events.take() {
        let waits = waits.clone();
        let k = args.user_broadcasts;
        let window = args.join_window;
        let storm_queue_max = storm_queue_max.clone();
        let node = broadcaster.clone();
        let sampler = node.clone();
        tokio::spawn(async move {
            while t0.elapsed() < window + Duration::from_secs(1) {
                if let Ok(stats) = sampler.stats().await {
                    storm_queue_max.fetch_max(stats.broadcast_queue_len as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let queued = Arc::new(std::sync::Mutex::new(Vec::new()));
        let queued2 = queued.clone();
        tokio::spawn(async move {
            for j in 0..k {
                // The first at a tenth of the window, once node 1 has joined.
                let at = t0 + window.mul_f64((j as f64 + 1.0) / (k as f64 + 1.0));
                tokio::time::sleep_until(at.into()).await;
                let payload = format!("user broadcast {j} from node-001 under churn");
                match node.broadcast(payload.as_bytes()).await {
                    Ok(id) => queued2.lock().unwrap().push((id, Instant::now())),
                    Err(e) => eprintln!("cluster_bench: broadcast {j} refused: {e}"),
                }
            }
        });
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::BroadcastFinished { id, outcome } = event {
                    let at = queued
                        .lock()
                        .unwrap()
                        .iter()
                        .find(|(q, _)| *q == id)
                        .map(|(_, at)| *at);
                    match (at, outcome) {
                        (Some(at), BroadcastOutcome::Sent) => {
                            waits.lock().unwrap().push(at.elapsed().as_secs_f64())
                        }
                        (_, outcome) => {
                            eprintln!("cluster_bench: a user broadcast left the queue: {outcome:?}")
                        }
                    }
                }
            }
        });
    }

    // When each node first listed every node.
    let mut first_full: Vec<Option<f64>> = vec![None; n];
    let mut next_explain = args.explain.map_or(0.0, |e| e.as_secs_f64());
    let converge = wait("convergence", args.give_up, args.poll, || {
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
    // Milestones on stderr, so that a run stopped from outside still says
    // how far it got.
    let listing = nodes.iter().filter(|m| m.num_members() == n).count();
    eprintln!(
        "cluster_bench: t={:.1} s converged {} ({listing} of {n} nodes list every node; members declared dead so far follow)",
        t0.elapsed().as_secs_f64(),
        opt(converge),
    );
    let converged_queues = queues(&nodes).await;
    let storm = totals(&nodes).await;
    eprintln!(
        "cluster_bench: t={:.1} s members declared dead during the joins: {}, catch-up push/pulls {}",
        t0.elapsed().as_secs_f64(),
        storm.members_failed,
        storm.catch_up_push_pulls
    );
    let mut firsts: Vec<f64> = first_full.iter().flatten().copied().collect();
    firsts.sort_by(f64::total_cmp);
    let p50 = (firsts.len() * 2 > n).then(|| firsts[n / 2]);
    let last_join_s = match last_join.load(Ordering::Relaxed) {
        0 => None,
        us => Some(us as f64 / 1e6),
    };

    tokio::time::sleep(args.settle).await;
    let before = totals(&nodes).await;
    let (cpu0, udp0, lo0) = (cpu_seconds(), udp_out_datagrams(), loopback_tx_bytes());
    let window = Instant::now();
    tokio::time::sleep(args.duration).await;
    let secs = window.elapsed().as_secs_f64();
    let (cpu1, udp1, lo1) = (cpu_seconds(), udp_out_datagrams(), loopback_tx_bytes());
    let after = totals(&nodes).await;
    let steady_queues = queues(&nodes).await;
    eprintln!(
        "cluster_bench: t={:.1} s window done: CPU {:.6} s per node per s",
        t0.elapsed().as_secs_f64(),
        (cpu1 - cpu0) / n as f64 / secs
    );
    let rss = rss_bytes().saturating_sub(rss_before);

    let crashed = nodes.pop().unwrap();
    crashed.shutdown().await;
    let t1 = Instant::now();
    let mut detect_first = None;
    // Without convergence there is no cluster whose detection to time.
    let give_up = if converge.is_some() {
        args.give_up
    } else {
        Duration::ZERO
    };
    let detect = wait("detection", give_up, args.poll, || {
        let dropped = nodes.iter().filter(|m| m.num_members() < n).count();
        if dropped > 0 && detect_first.is_none() {
            detect_first = Some(t1.elapsed().as_secs_f64());
        }
        dropped == nodes.len()
    })
    .await;
    let crash = totals(&nodes).await;
    let waits = waits.lock().unwrap().clone();

    let per = |delta: f64| delta / n as f64 / secs;
    let datagrams = udp1.saturating_sub(udp0);
    let stream_bytes = lo1
        .saturating_sub(lo0)
        .saturating_sub(after.udp_payload_bytes - before.udp_payload_bytes)
        .saturating_sub(datagrams * UDP_FRAME_OVERHEAD);
    let exchanges = (after.push_pulls - before.push_pulls) as f64 / 2.0;
    println!(
        "{{\"impl\":\"rust\",\"nodes\":{n},\"preset\":\"{}\",\"join_window_s\":{:.1},\"join_failures\":{},\"converge_s\":{},\"converge_p50_s\":{},\"last_join_s\":{},\"converge_after_last_join_s\":{},\"window_s\":{secs:.1},\"cpu_s_per_node_per_s\":{:.6},\"rss_bytes_per_node\":{},\"rss_started_bytes_per_node\":{},\"packets_per_node_per_s\":{:.2},\"bytes_per_node_per_s\":{:.1},\"udp_payload_bytes_per_node_per_s\":{:.1},\"stream_bytes_per_node_per_s\":{:.1},\"push_pull_merges_per_node_per_s\":{:.4},\"stream_bytes_per_push_pull\":{},\"catch_up_push_pulls\":{},\"storm_catch_up_push_pulls\":{},\"queue_at_convergence_mean\":{:.1},\"queue_at_convergence_max\":{},\"queue_storm_max_node1\":{},\"queue_steady_mean\":{:.2},\"queue_steady_max\":{},\"user_broadcast_wait_s\":[{}],\"members_failed_storm\":{},\"members_failed_window\":{},\"members_failed_crash\":{},\"detect_first_s\":{},\"detect_all_s\":{}}}",
        args.preset.name(),
        args.join_window.as_secs_f64(),
        failures.load(Ordering::Relaxed),
        opt(converge),
        opt(p50),
        opt(last_join_s),
        opt(converge.zip(last_join_s).map(|(c, l)| c - l)),
        per(cpu1 - cpu0),
        rss / n as u64,
        rss_started / n as u64,
        per(datagrams as f64),
        per(lo1.saturating_sub(lo0) as f64),
        per((after.udp_payload_bytes - before.udp_payload_bytes) as f64),
        per(stream_bytes as f64),
        per((after.push_pulls - before.push_pulls) as f64),
        if exchanges > 0.0 {
            format!("{:.0}", stream_bytes as f64 / exchanges)
        } else {
            "null".into()
        },
        after.catch_up_push_pulls - before.catch_up_push_pulls,
        storm.catch_up_push_pulls,
        converged_queues.0,
        converged_queues.1,
        storm_queue_max.load(Ordering::Relaxed),
        steady_queues.0,
        steady_queues.1,
        waits
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect::<Vec<_>>()
            .join(","),
        storm.members_failed,
        after.members_failed - before.members_failed,
        crash.members_failed.saturating_sub(after.members_failed),
        opt(detect_first),
        opt(detect),
    );
    // Shutting thousands of loaded nodes down one by one takes long and
    // measures nothing: the process ends, and the sockets with it.
    drop(nodes);
}
