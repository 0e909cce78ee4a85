//! Snapshots (Go's `snapshot.go`): a text file of who was alive and how
//! far the three clocks went, appended as Serf's events happen and
//! compacted when it grows, so that a restarted node rejoins the nodes it
//! knew and does not take old events or queries for new ones. Same format
//! as Go's, so a file written by one can be replayed by the other:
//!
//! ```text
//! alive: node-b 10.0.0.2:7946
//! not-alive: node-c
//! clock: 12
//! event-clock: 4
//! query-clock: 2
//! leave
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::clock::LamportTime;
use crate::serf::SerfEvent;

/// Go's `snapshotSizeLimit`: compaction never triggers below this.
const MIN_COMPACT_SIZE: u64 = 128 * 1024;
/// Go's `snapshotBytesPerNode` and `snapshotCompactionThreshold`.
const BYTES_PER_NODE: u64 = 128;
const COMPACTION_THRESHOLD: u64 = 2;

/// What a snapshot says (Go's `Snapshotter` state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Nodes alive when last written: name → `ip:port`.
    pub alive_nodes: BTreeMap<String, String>,
    /// The member clock last seen (one below the clock's time).
    pub last_clock: LamportTime,
    /// The newest user event's time.
    pub last_event_clock: LamportTime,
    /// The newest query's time.
    pub last_query_clock: LamportTime,
}

impl Snapshot {
    /// Reads a snapshot as Go's `replay` does: later lines win; a `leave`
    /// line forgets everything before it unless `rejoin_after_leave`;
    /// comments, coordinates and unreadable lines are skipped. A last line
    /// without its newline is ignored, as Go ignores it.
    pub fn replay(text: &str, rejoin_after_leave: bool) -> Snapshot {
        let mut s = Snapshot::default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.split('\n').filter(|l| !l.is_empty()) {
            let clock = |v: &str| v.parse().ok().map(LamportTime);
            if let Some(info) = line.strip_prefix("alive: ") {
                if let Some((name, addr)) = info.rsplit_once(' ') {
                    s.alive_nodes.insert(name.to_owned(), addr.to_owned());
                }
            } else if let Some(name) = line.strip_prefix("not-alive: ") {
                s.alive_nodes.remove(name);
            } else if let Some(t) = line.strip_prefix("clock: ").and_then(clock) {
                s.last_clock = t;
            } else if let Some(t) = line.strip_prefix("event-clock: ").and_then(clock) {
                s.last_event_clock = t;
            } else if let Some(t) = line.strip_prefix("query-clock: ").and_then(clock) {
                s.last_query_clock = t;
            } else if line == "leave" && !rejoin_after_leave {
                s = Snapshot::default();
            }
        }
        s
    }

    /// Takes in one of Serf's events and the member clock's time; returns
    /// the lines to append (Go's `processMemberEvent`, `processUserEvent`,
    /// `processQuery`, `updateClock`).
    pub fn record(&mut self, event: &SerfEvent, clock: LamportTime) -> String {
        let mut lines = String::new();
        match event {
            SerfEvent::MemberJoin(m) => {
                let addr = m.addr.to_string();
                lines += &format!("alive: {} {addr}\n", m.name);
                self.alive_nodes.insert(m.name.clone(), addr);
            }
            SerfEvent::MemberLeave(m) | SerfEvent::MemberFailed(m) => {
                self.alive_nodes.remove(&m.name);
                lines += &format!("not-alive: {}\n", m.name);
            }
            SerfEvent::User(e) if e.ltime > self.last_event_clock => {
                self.last_event_clock = e.ltime;
                lines += &format!("event-clock: {}\n", e.ltime.0);
            }
            SerfEvent::Query(q) if q.query.ltime > self.last_query_clock => {
                self.last_query_clock = q.query.ltime;
                lines += &format!("query-clock: {}\n", q.query.ltime.0);
            }
            _ => {}
        }
        if matches!(
            event,
            SerfEvent::MemberJoin(_) | SerfEvent::MemberLeave(_) | SerfEvent::MemberFailed(_)
        ) {
            lines += &self.update_clock(clock);
        }
        lines
    }

    /// The member clock's line if it moved (Go writes it every 500 ms and
    /// after member events): the last time seen is one below the clock.
    pub fn update_clock(&mut self, clock: LamportTime) -> String {
        let seen = LamportTime(clock.0.saturating_sub(1));
        if seen > self.last_clock {
            self.last_clock = seen;
            return format!("clock: {}\n", seen.0);
        }
        String::new()
    }

    /// The whole state in as few lines as possible (Go's `compact`).
    pub fn compacted(&self) -> String {
        let mut out: String = self
            .alive_nodes
            .iter()
            .map(|(name, addr)| format!("alive: {name} {addr}\n"))
            .collect();
        out += &format!("clock: {}\n", self.last_clock.0);
        out += &format!("event-clock: {}\n", self.last_event_clock.0);
        out += &format!("query-clock: {}\n", self.last_query_clock.0);
        out
    }

    /// The size past which the file is compacted (Go's `snapshotMaxSize`).
    fn max_size(&self) -> u64 {
        let estimate = self.alive_nodes.len() as u64 * BYTES_PER_NODE * COMPACTION_THRESHOLD;
        estimate.max(MIN_COMPACT_SIZE)
    }
}

/// A snapshot kept in a file: replayed when opened, appended to, compacted
/// (through a temporary file renamed over it) when it outgrows its state.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: File,
    size: u64,
    state: Snapshot,
}

impl SnapshotFile {
    /// Opens (or creates) the snapshot at `path` and replays it; returns
    /// the file and what it said at opening.
    pub fn open(path: &Path, rejoin_after_leave: bool) -> io::Result<(SnapshotFile, Snapshot)> {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let state = Snapshot::replay(&text, rejoin_after_leave);
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let snapshot = SnapshotFile {
            path: path.to_owned(),
            file,
            size,
            state: state.clone(),
        };
        Ok((snapshot, state))
    }

    /// Records one of Serf's events.
    pub fn record(&mut self, event: &SerfEvent, clock: LamportTime) -> io::Result<()> {
        let lines = self.state.record(event, clock);
        self.append(&lines)
    }

    /// Records the member clock if it moved.
    pub fn update_clock(&mut self, clock: LamportTime) -> io::Result<()> {
        let line = self.state.update_clock(clock);
        self.append(&line)
    }

    /// Records a graceful leave: a restart will not rejoin (Go's `Leave`).
    pub fn leave(&mut self) -> io::Result<()> {
        self.append("leave\n")?;
        self.file.sync_data()
    }

    fn append(&mut self, lines: &str) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.file.write_all(lines.as_bytes())?;
        self.size += lines.len() as u64;
        if self.size > self.state.max_size() {
            self.compact()?;
        }
        Ok(())
    }

    fn compact(&mut self) -> io::Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".compact"); // Go's tmpExt
        let tmp = PathBuf::from(tmp);
        let text = self.state.compacted();
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, &self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.size = text.len() as u64;
        Ok(())
    }
}
