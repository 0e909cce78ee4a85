//! A deterministic discrete-event simulator for [`swim_core`] clusters.
//!
//! It runs thousands of real [`swim_core::Swim`] state machines — the real
//! codec, compression, and protocol rules — in one process on a virtual
//! clock (on as many threads as you give it, with the same result), over a
//! modelled network (per-link latency, loss, duplication, reordering, full,
//! one-way and partial partitions, a TCP plane whose exchanges fail across
//! partitions and to dead nodes), with faults
//! (crashes, restarts with fresh state, graceful leaves, stalls, bulk joins),
//! checks invariants on every member-table change, and reports metrics
//! (convergence, detection latency, false positives, traffic, queue depths,
//! dissemination) as JSON and SVG plots.
//!
//! A run is a pure function of its [`Scenario`] (which includes the seed):
//! running it twice gives the same [`Report::trace_hash`].
//!
//! # Example
//!
//! Twenty nodes on the local preset; one crashes at 5 s; every live node
//! must see it dead, and no rule may break.
//!
//! ```
//! use std::time::Duration;
//! use swim_sim::{Amount, Fault, Preset, Scenario, Simulation};
//!
//! let scenario = Scenario::new(20, 7, Preset::Local)
//!     .duration(Duration::from_secs(40))
//!     .fault(Fault::Crash { amount: Amount::Count(1), at: Duration::from_secs(5) });
//! let report = Simulation::new(scenario.clone()).run();
//! assert!(report.invariant_violations.is_empty(), "{:?}", report.invariant_violations);
//! assert_eq!(report.crashes, 1);
//! assert!(report.detection_all_max_s.is_some(), "everyone saw the crash");
//! assert!(report.converged_at_s.is_some());
//! // Same scenario, same seed: the same run, event for event.
//! assert_eq!(Simulation::new(scenario).run().trace_hash, report.trace_hash);
//! ```
//!
//! # Your application on every node
//!
//! A system built on membership runs on every simulated node as an
//! [`Application`]: made when the node's process starts, fed the node's
//! events at their simulated time, acting through a [`NodeContext`], dropped
//! when the process crashes. Invariants over all nodes' applications fail
//! the run like the protocol's own; [`sweep::run_with`] runs them over the
//! chaotic seeds, and [`sweep::shrink`] makes a failing seed small.
//!
//! ```
//! use std::collections::BTreeSet;
//! use std::time::Duration;
//! use swim_sim::swim_core::Event;
//! use swim_sim::{Amount, AppFailure, Application, Check, Fault, NodeContext, Preset, Scenario, Simulation};
//!
//! /// The members this node would hand work to.
//! #[derive(Default)]
//! struct Workers(BTreeSet<String>);
//!
//! impl Application for Workers {
//!     fn event(&mut self, _node: &mut NodeContext<'_>, event: &Event) {
//!         match event {
//!             Event::MemberJoined(m) => { self.0.insert(m.name.to_string()); }
//!             Event::MemberFailed(m) | Event::MemberLeft(m) => { self.0.remove(&*m.name); }
//!             _ => {}
//!         }
//!     }
//! }
//!
//! let scenario = Scenario::new(20, 7, Preset::Local)
//!     .duration(Duration::from_secs(60))
//!     .fault(Fault::Crash { amount: Amount::Count(2), at: Duration::from_secs(5) })
//!     .app(|_| Workers::default())
//!     .invariant("workers-agree", Check::Converged, |apps| {
//!         let mut views = apps.live::<Workers>();
//!         let Some((first, reference)) = views.next() else { return Ok(()) };
//!         match views.find(|(_, w)| w.0 != reference.0) {
//!             Some((i, _)) => Err(AppFailure::new([first, i], "worker sets differ")),
//!             None => Ok(()),
//!         }
//!     });
//! let report = Simulation::new(scenario).run();
//! assert!(report.ok(), "{:?}", report.invariant_violations);
//! ```
//!
//! Every application callback can be checked ([`Granularity`]); a failure
//! is reported with what the nodes it names did just before
//! ([`FailureContext`], [`Report::timeline_svg`]); faults can be aimed at
//! nodes chosen by application state ([`Scenario::aim`],
//! [`Simulation::crash`]…); each node can have its own clock
//! ([`Scenario::clocks`]) and has a [`Disk`] that survives restarts; a
//! sweep program's [`sweep::Cli`] prints, for a failing seed, the command
//! that reruns that program on it.
//!
//! The crate's `examples/` hold three complete ones, a hash ring, a
//! replicated map and a lease service with fencing epochs, each with a
//! planted bug a sweep catches.
//!
//! With the `serf` feature, `swim_sim::serf` runs HashiCorp Serf (the `swim-serf`
//! crate) on every node, with Serf's invariants, a sweep and a
//! dissemination measurement.
//!
//! The `swim-sim` binary wraps this library in a command line (`swim-sim
//! run …`, `swim-sim sweep …`); see the crate README for every flag and
//! report field.

mod app;
pub mod battery;
mod clock;
mod disk;
mod engine;
mod history;
mod naming;
mod network;
mod node;
pub mod plot;
mod report;
mod rng;
mod rss;
mod scenario;
#[cfg(feature = "serf")]
pub mod serf;
pub mod sweep;
mod time;
mod timeline;
mod tracker;

pub use app::{
    AppDelegate, AppFactory, AppFailure, AppInvariant, Application, Apps, AsAny, Check,
    Granularity, NodeContext, SimSwim,
};
pub use clock::Clocks;
pub use disk::Disk;
pub use engine::{describe, EventHook, Simulation};
pub use history::{Direction, Moment};
pub use naming::{addr_index, node_addr, node_index, node_name};
pub use network::{Latency, NetworkModel};
pub use report::{Detection, DisseminationReport, FailureContext, Report, Series, Violation};
pub use rss::{current_rss, peak_rss};
pub use scenario::{Action, Aimed, Amount, ConfigHook, Fault, Scenario, Start, Target};
pub use swim_core;
pub use swim_core::Preset;
#[cfg(feature = "serf")]
pub use swim_serf;
