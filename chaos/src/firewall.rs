//! Network faults with nftables, in a table the bed owns.
//!
//! Every node runs as a user of its own (uid `base_uid + i`) on an address
//! of its own (`127.77.0.10 + i`). Loopback makes one thing awkward: a node's
//! outgoing TCP connections leave from 127.0.0.1, not from its address, so
//! the sender of a packet cannot be read from its source address. The
//! sender is read from its socket instead: the output hook marks each packet
//! with the uid of the socket that sent it (`meta mark set meta skuid map`), and
//! the input hook drops by mark (sender) and destination address (receiver).
//! Dropping in the input hook is silent to the sender, like a lossy link;
//! dropped in the output hook a datagram would fail `sendto` with EPERM.
//!
//! A TCP connection a blocked sender opens to a blocked receiver never
//! establishes (its SYN is dropped). Replies on a connection the receiver
//! opened go to 127.0.0.1 and are not matched: a one-way TCP cut stops the
//! cut side's connections, not its answers.
//!
//! The whole table is replaced in one `nft -f` transaction on every change,
//! deleted when the [`Firewall`] is dropped, and tables of dead runs
//! (`swim_chaos_<pid>` whose process is gone) are removed at start.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::scenario::Proto;

/// Where node `i` lives and who it runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The first node's address; the others follow.
    pub base_ip: Ipv4Addr,
    /// Every node's port.
    pub port: u16,
    /// The first node's uid; the others follow.
    pub base_uid: u32,
    /// Nodes.
    pub n: usize,
}

impl Layout {
    /// The layout of bed `slot` (0 to 15; beds in different slots can run
    /// at once) for `n` nodes: 127.77.slot.10 upwards, port 17946, uids
    /// 61000 + 256 × slot upwards.
    pub fn new(n: usize, slot: u8) -> Layout {
        Layout {
            base_ip: Ipv4Addr::new(127, 77, slot, 10),
            port: 17946,
            base_uid: 61000 + 256 * u32::from(slot),
            n,
        }
    }

    /// Node `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base_ip) + i as u32)
    }

    /// Node `i`'s uid.
    pub fn uid(&self, i: usize) -> u32 {
        self.base_uid + i as u32
    }

    /// Every address is loopback and fits: the bed never touches another
    /// network.
    pub fn check(&self) -> Result<(), String> {
        let last = self.ip(self.n.saturating_sub(1));
        if !self.base_ip.is_loopback() || !last.is_loopback() {
            return Err(format!("{}..{last} is not all loopback", self.base_ip));
        }
        Ok(())
    }
}

/// Drop `percent` % of `proto` packets sent by `from` to `to` (node indexes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Senders.
    pub from: Vec<usize>,
    /// Receivers.
    pub to: Vec<usize>,
    /// Protocol.
    pub proto: Proto,
    /// 100 drops everything.
    pub percent: u8,
}

impl Rule {
    /// A rule.
    pub fn new(from: Vec<usize>, to: Vec<usize>, proto: Proto, percent: u8) -> Rule {
        Rule {
            from,
            to,
            proto,
            percent,
        }
    }
}

fn set<T: ToString>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The nft script that makes table `table` hold exactly `rules`.
pub fn render(table: &str, layout: &Layout, rules: &[Rule]) -> String {
    let mut s = String::new();
    // Add (a no-op if it exists), delete, declare again: one transaction.
    s += &format!("table inet {table}\ndelete table inet {table}\n");
    s += &format!("table inet {table} {{\n");
    s += "  chain out {\n    type filter hook output priority 0; policy accept;\n";
    let marks: Vec<String> = (0..layout.n)
        .map(|i| format!("{0} : {0}", layout.uid(i)))
        .collect();
    s += &format!(
        "    meta mark set meta skuid map {{ {} }}\n  }}\n",
        marks.join(", ")
    );
    s += "  chain in {\n    type filter hook input priority 0; policy accept;\n";
    for r in rules {
        if r.from.is_empty() || r.to.is_empty() {
            continue;
        }
        let proto = match r.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Both => "{ udp, tcp }",
        };
        let chance = if r.percent >= 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {} ", r.percent)
        };
        s += &format!(
            "    meta mark {} ip daddr {} meta l4proto {proto} {chance}drop\n",
            set(r.from.iter().map(|&i| layout.uid(i))),
            set(r.to.iter().map(|&i| layout.ip(i))),
        );
    }
    s += "  }\n}\n";
    s
}

fn nft(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft ({e}): apt-get install nftables"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft refused the rules: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Tables named `swim_chaos_<pid>` whose process is gone.
pub fn remove_stale_tables() -> Vec<String> {
    let Ok(out) = Command::new("nft").args(["list", "tables"]).output() else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.strip_prefix("table inet ") else {
            continue;
        };
        let Some(pid) = name.strip_prefix("swim_chaos_") else {
            continue;
        };
        let dead =
            pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if dead && nft(&format!("delete table inet {name}\n")).is_ok() {
            removed.push(name.to_string());
        }
    }
    removed
}

/// The bed's table: created on [`Firewall::create`], replaced on every
/// change, deleted on drop.
#[derive(Debug)]
pub struct Firewall {
    table: String,
    layout: Layout,
    active: BTreeMap<usize, Vec<Rule>>,
}

impl Firewall {
    /// Creates the table `swim_chaos_<our pid>` with no drop rule.
    pub fn create(layout: Layout) -> Result<Firewall, String> {
        layout.check()?;
        let fw = Firewall {
            table: format!("swim_chaos_{}", std::process::id()),
            layout,
            active: BTreeMap::new(),
        };
        fw.apply()?;
        Ok(fw)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn apply(&self) -> Result<(), String> {
        let rules: Vec<Rule> = self.active.values().flatten().cloned().collect();
        nft(&render(&self.table, &self.layout, &rules))
    }

    /// Installs the rules of fault `id`.
    pub fn set(&mut self, id: usize, rules: Vec<Rule>) -> Result<(), String> {
        self.active.insert(id, rules);
        self.apply()
    }

    /// Removes the rules of fault `id`.
    pub fn clear(&mut self, id: usize) -> Result<(), String> {
        self.active.remove(&id);
        self.apply()
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {}\n", self.table));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_stays_on_loopback() {
        let l = Layout::new(50, 0);
        assert_eq!(Layout::new(2, 3).ip(1), Ipv4Addr::new(127, 77, 3, 11));
        assert_eq!(Layout::new(2, 3).uid(1), 61769);
        assert_eq!(l.ip(0), Ipv4Addr::new(127, 77, 0, 10));
        assert_eq!(l.ip(49), Ipv4Addr::new(127, 77, 0, 59));
        assert_eq!(l.uid(3), 61003);
        assert!(l.check().is_ok());
        let mut away = l;
        away.base_ip = Ipv4Addr::new(10, 0, 0, 1);
        assert!(away.check().is_err());
        let mut overflow = Layout::new(300, 0);
        overflow.base_ip = Ipv4Addr::new(127, 255, 255, 200);
        assert!(overflow.check().is_err());
    }

    #[test]
    fn rules_render_by_sender_mark_and_receiver_address() {
        let l = Layout::new(4, 0);
        let script = render(
            "swim_chaos_1",
            &l,
            &[
                Rule::new(vec![0, 1], vec![2, 3], Proto::Udp, 20),
                Rule::new(vec![2], vec![0], Proto::Both, 100),
                Rule::new(vec![], vec![0], Proto::Tcp, 100),
            ],
        );
        assert!(script.starts_with("table inet swim_chaos_1\ndelete table inet swim_chaos_1\n"));
        assert!(script.contains(
            "meta mark set meta skuid map { 61000 : 61000, 61001 : 61001, 61002 : 61002, \
             61003 : 61003 }"
        ));
        assert!(script.contains(
            "meta mark { 61000, 61001 } ip daddr { 127.77.0.12, 127.77.0.13 } \
             meta l4proto udp numgen random mod 100 < 20 drop"
        ));
        assert!(script.contains(
            "meta mark { 61002 } ip daddr { 127.77.0.10 } meta l4proto { udp, tcp } drop"
        ));
        assert_eq!(
            script.matches(" drop").count(),
            2,
            "an empty rule is left out"
        );
    }
}
