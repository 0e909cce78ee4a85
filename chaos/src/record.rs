//! What a run saw: the truth the bed made (which process ran when) and what
//! the nodes said (their events and their `members` answers), times in
//! milliseconds from the start of the first phase (negative while the
//! cluster formed). A record is saved as JSON beside the report, so the
//! analysis can be run again without the cluster.

use serde::{Deserialize, Serialize};

use crate::node::Kind;
use crate::plan::Plan;

/// How a process's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// SIGKILL (or a go-peer's SIGTERM, which kills it).
    Crash,
    /// A graceful leave began.
    Leave,
    /// It exited by itself, unasked.
    Exited,
}

/// One process of a node: it is a live member from `start` until `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Life {
    /// Node index.
    pub node: usize,
    /// Which start.
    pub gen: u32,
    /// Started (ms).
    pub start: i64,
    /// Ended, if it did before the run's end.
    pub end: Option<i64>,
    /// How.
    pub ended: Option<Ended>,
}

/// A membership event a node printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// `join`.
    Join,
    /// `update`.
    Update,
    /// `leave`.
    Leave,
    /// `failed`: declared dead.
    Failed,
}

/// An event line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it arrived (ms).
    pub t: i64,
    /// Who printed it.
    pub observer: usize,
    /// Which process of the observer.
    pub gen: u32,
    /// What.
    pub kind: EventKind,
    /// About whom.
    pub subject: usize,
}

/// A `members` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Poll {
    /// The round it answers.
    pub round: usize,
    /// When it arrived (ms).
    pub t: i64,
    /// Who.
    pub observer: usize,
    /// Which process of it.
    pub gen: u32,
    /// Members listed (dead and left ones are not): index and whether
    /// suspect.
    pub members: Vec<(usize, bool)>,
}

/// A command that answered `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandError {
    /// When (ms).
    pub t: i64,
    /// Which node.
    pub node: usize,
    /// The command.
    pub command: String,
    /// Its error.
    pub error: String,
}

/// How the run was set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Scenario name (its file stem).
    pub scenario: String,
    /// The mix as given (`rust`, `go`, `mixed`…).
    pub mix: String,
    /// Each node's implementation.
    pub kinds: Vec<Kind>,
    /// The seed.
    pub seed: u64,
    /// Lifeguard on.
    pub lifeguard: bool,
    /// Timing preset.
    pub preset: String,
    /// Grace after a fault (ms), see the scenario's `grace`.
    pub grace: i64,
    /// Any false death fails the run (the scenario's `no_false_deaths`).
    #[serde(default)]
    pub no_false_deaths: bool,
    /// After a cut heals, how long (ms) a declaration is still taken to
    /// rest on what was seen during it (`Scenario::heal_allowance`).
    #[serde(default)]
    pub heal_allowance: i64,
    /// How long the cluster took to form (ms).
    pub formed_in: i64,
}

/// Everything a run saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Setup.
    pub meta: Meta,
    /// What was planned (windows and phases are the analysis's yardstick).
    pub plan: Plan,
    /// The truth: every process's life.
    pub lives: Vec<Life>,
    /// When each `members` round was sent (ms).
    pub rounds: Vec<i64>,
    /// Membership events.
    pub events: Vec<Event>,
    /// `members` answers.
    pub polls: Vec<Poll>,
    /// Commands that failed.
    pub errors: Vec<CommandError>,
    /// What else happened (a node that exited unasked…).
    pub notes: Vec<String>,
}

impl Record {
    /// Number of nodes.
    pub fn n(&self) -> usize {
        self.meta.kinds.len()
    }

    /// The life of `node` that covers `t`, if it was a live member then.
    pub fn life_at(&self, node: usize, t: i64) -> Option<&Life> {
        self.lives
            .iter()
            .find(|l| l.node == node && l.start <= t && l.end.is_none_or(|e| t < e))
    }

    /// Whether `node` was a live member at `t`.
    pub fn up(&self, node: usize, t: i64) -> bool {
        self.life_at(node, t).is_some()
    }
}
