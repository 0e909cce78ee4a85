//! A chaos bed of real node processes: `swim-agent` on tokio and on
//! async-std, and Go's memberlist (`interop/go-peer`), on loopback, under
//! faults from nftables and signals, judged from their own event streams
//! and `members` answers.
//!
//! The simulator (`swim-sim`) proves the protocol under faults on a virtual
//! clock; this bed puts the real binaries under the same faults — real
//! sockets, timers, scheduler and kernel — and Go's memberlist beside them.
//!
//! The parts, in the order a run uses them:
//!
//! * [`scenario`]: the TOML file of phases and faults;
//! * [`plan`]: the file and a seed made concrete (which node, when);
//! * [`firewall`]: loss and partitions as nftables rules, in a table the
//!   bed owns;
//! * [`node`]: one node process and its line protocol;
//! * [`bed`]: the run itself, which cleans up whatever happens;
//! * [`record`], [`analyze`], [`report`]: what was seen, judged, printed.

pub mod analyze;
pub mod bed;
pub mod firewall;
pub mod node;
pub mod plan;
pub mod record;
pub mod report;
pub mod scenario;
