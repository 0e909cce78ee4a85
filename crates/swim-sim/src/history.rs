//! Each node's recent history: a bounded ring of what it received, sent,
//! fired and did (its application's commands included), so a failure can
//! be shown with what led to it on the nodes it names.
//!
//! Recording is a store into a ring the node owns (no allocation after the
//! first lap, no randomness, nothing hashed): it never changes a run.

use serde::Serialize;
use swim_core::wire::MessageType;

use crate::naming::node_name;
use crate::time::secs;

/// What happened, in a few bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    /// A datagram arrived (its first byte: the message type).
    Received(u8),
    /// A datagram went out.
    Sent(u8),
    /// A stream arrived.
    StreamIn,
    /// A stream was opened.
    StreamOut,
    /// A stream was answered.
    Reply,
    /// An exchange ended (ok or failed).
    Exchange(bool),
    /// The protocol's timer fired.
    Timer,
    /// The application's timer fired (its token).
    AppTimer(u64),
    /// The node emitted an event (the trace's code for its kind).
    Event(u8),
    /// The application issued a command (the trace's code for its kind).
    Command(u8),
    /// The application wrote to its disk (`true`: synced).
    Disk(bool),
    /// The process started.
    Started,
    /// The process stopped.
    Stopped,
    /// The process stalled.
    Stalled,
    /// A stall ended.
    Resumed,
}

/// One moment of a node's history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    at: u64,
    /// The other node, or `u32::MAX`.
    peer: u32,
    len: u32,
    what: What,
}

/// A node's last moments: a ring of at most `cap` entries.
#[derive(Debug, Default)]
pub(crate) struct History {
    ring: Vec<Entry>,
    next: usize,
    cap: usize,
}

impl History {
    /// A ring of `cap` entries (0: nothing recorded).
    pub(crate) fn with_capacity(cap: usize) -> History {
        History {
            ring: Vec::new(),
            next: 0,
            cap,
        }
    }

    /// Whether it records anything.
    #[inline]
    pub(crate) fn on(&self) -> bool {
        self.cap > 0
    }

    /// Records `what` at `at`, with `peer` (a node index) and a length.
    #[inline]
    pub(crate) fn note(&mut self, at: u64, what: What, peer: Option<usize>, len: usize) {
        if self.cap == 0 {
            return;
        }
        let e = Entry {
            at,
            peer: peer.map_or(u32::MAX, |p| p as u32),
            len: u32::try_from(len).unwrap_or(u32::MAX),
            what,
        };
        if self.ring.len() < self.cap {
            self.ring.push(e);
        } else {
            self.ring[self.next] = e;
            self.next = (self.next + 1) % self.cap;
        }
    }

    /// The entries in `[from, to]`, oldest first.
    pub(crate) fn between(&self, node: usize, from: u64, to: u64) -> Vec<Moment> {
        let (new, old) = self.ring.split_at(self.next.min(self.ring.len()));
        old.iter()
            .chain(new)
            .filter(|e| e.at >= from && e.at <= to)
            .map(|e| e.moment(node))
            .collect()
    }
}

/// Which way a moment points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From `peer` to the node.
    In,
    /// From the node to `peer`.
    Out,
    /// On the node alone.
    Local,
}

/// A moment of a node's history, as a failure report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moment {
    /// Simulated seconds.
    pub time_s: f64,
    /// The node.
    pub node: String,
    /// Which way it points.
    pub direction: Direction,
    /// The other node, if any.
    pub peer: Option<String>,
    /// What, in a few words.
    pub what: String,
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peer = self.peer.as_deref().unwrap_or("");
        let arrow = match self.direction {
            Direction::In => "<-",
            Direction::Out => "->",
            Direction::Local => "  ",
        };
        write!(
            f,
            "{:>11.6}s {} {arrow} {:<8} {}",
            self.time_s, self.node, peer, self.what
        )
    }
}

fn message(b: u8) -> String {
    MessageType::from_byte(b).map_or_else(|| format!("type {b}"), |t| format!("{t:?}"))
}

impl Entry {
    fn moment(&self, node: usize) -> Moment {
        let peer = (self.peer != u32::MAX).then(|| node_name(self.peer as usize));
        let len = self.len;
        let (direction, what) = match self.what {
            What::Received(b) => (Direction::In, format!("{} ({len} B)", message(b))),
            What::Sent(b) => (Direction::Out, format!("{} ({len} B)", message(b))),
            What::StreamIn => (Direction::In, format!("stream ({len} B)")),
            What::StreamOut => (Direction::Out, format!("stream ({len} B)")),
            What::Reply => (Direction::Out, format!("reply ({len} B)")),
            What::Exchange(ok) => (
                Direction::In,
                if ok {
                    format!("exchange done ({len} B)")
                } else {
                    "exchange failed".into()
                },
            ),
            What::Timer => (Direction::Local, "protocol timer".into()),
            What::AppTimer(t) => (Direction::Local, format!("app timer {t}")),
            What::Event(k) => (
                Direction::Local,
                format!(
                    "event {}",
                    match k {
                        1 => "member joined",
                        2 => "member updated",
                        3 => "member left",
                        4 => "member failed",
                        5 => "user message",
                        6 => "probe acked",
                        7 => "join completed",
                        8 => "leave completed",
                        _ => "other",
                    }
                ),
            ),
            What::Command(k) => (
                Direction::Local,
                format!(
                    "app {} ({len} B)",
                    match k {
                        2 => "broadcast",
                        3 => "broadcast_named",
                        4 => "send_best_effort",
                        5 => "send_reliable",
                        6 => "update_meta",
                        7 => "set_local_state",
                        8 => "leave",
                        _ => "command",
                    }
                ),
            ),
            What::Disk(synced) => (
                Direction::Local,
                if synced {
                    "disk sync".into()
                } else {
                    format!("disk write ({len} B)")
                },
            ),
            What::Started => (Direction::Local, "process started".into()),
            What::Stopped => (Direction::Local, "process stopped".into()),
            What::Stalled => (Direction::Local, "stalled".into()),
            What::Resumed => (Direction::Local, "resumed".into()),
        };
        Moment {
            time_s: secs(self.at),
            node: node_name(node),
            direction,
            peer,
            what,
        }
    }
}
