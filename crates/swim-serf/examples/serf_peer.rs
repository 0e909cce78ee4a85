//! One Serf node on swim-tokio driven by lines on stdin, printing what it
//! sees with nanosecond times: the Rust half of `bench/serf-side-by-side`,
//! which runs it beside `interop/serf-peer` (the same lines over Go Serf).
//!
//! ```text
//! cargo run --release -p swim-serf --example serf_peer -- --name a --bind 127.0.0.1:7946
//! in:  join ADDR | members | event NAME PAYLOAD | query NAME EXPECTED |
//!      stats | quit
//! out: ready ADDR | joined N | members ALIVE | event NAME UNIX_NANOS |
//!      query ACKS NANOS (until EXPECTED acks, or the query's timeout) |
//!      stats packets_sent=.. bytes_sent=DATAGRAM_BYTES ...
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use swim_serf::{MemberStatus, QueryParams, SerfConfig, SerfEvent, SerfNode};
use swim_tokio::swim_core::Preset;
use swim_tokio::NodeConfig;
use tokio::io::{AsyncBufReadExt, BufReader};

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut name, mut bind, mut preset) = (String::new(), String::new(), Preset::Lan);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--name" => name = value,
            "--bind" => bind = value,
            "--preset" => preset = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let bind: SocketAddr = bind.parse()?;
    let swim = preset.config(name.as_str(), bind);
    let builder = swim_tokio::builder(NodeConfig::new(bind, swim));
    let (serf, events) = SerfNode::start(builder, SerfConfig::new(name.as_str())).await?;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let SerfEvent::User(e) = event {
                say(format!("event {} {}", e.name, unix_nanos()));
            }
        }
    });
    say(format!("ready {bind}"));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [] => {}
            ["join", addr] => match serf.join([*addr], true).await {
                Ok(n) => say(format!("joined {n}")),
                Err(e) => say(format!("error {e}")),
            },
            ["members"] => {
                let alive = serf
                    .members()
                    .iter()
                    .filter(|m| m.status == MemberStatus::Alive)
                    .count();
                say(format!("members {alive}"));
            }
            ["event", name, payload] => {
                if let Err(e) = serf.user_event(name, payload.as_bytes(), false).await {
                    say(format!("error {e}"));
                }
            }
            ["query", name, expected] => {
                let expected: usize = expected.parse()?;
                let start = Instant::now();
                let params = QueryParams {
                    request_ack: true,
                    ..QueryParams::default()
                };
                let responses = match serf.query(name, &[], &params).await {
                    Ok(r) => r,
                    Err(e) => {
                        say(format!("error {e}"));
                        continue;
                    }
                };
                let (mut acks, mut last) = (0, 0);
                while responses.recv_ack().await.is_some() {
                    acks += 1;
                    last = start.elapsed().as_nanos();
                    if acks == expected {
                        break;
                    }
                }
                say(format!("query {acks} {last}"));
            }
            ["stats"] => {
                let s = serf.node().stats().await?.core;
                say(format!(
                    "stats packets_sent={} bytes_sent={} probes={} push_pulls={} catch_up_push_pulls={} streams_opened={} messages={:?}",
                    s.packets_sent, s.bytes_sent, s.probes, s.push_pulls, s.catch_up_push_pulls, s.streams_opened, s.messages
                ));
            }
            ["quit"] => break,
            _ => say(format!("error unknown command {line:?}")),
        }
    }
    serf.shutdown().await;
    Ok(())
}
