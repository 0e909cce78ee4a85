//! Deterministic cluster simulator for `swim-core` — **not built yet**.
//!
//! This crate will run thousands of protocol state machines in one process on
//! a virtual clock, with a modelled network (latency, loss, partitions),
//! faults (crashes, stalls, restarts) and invariant checks, replayable from a
//! seed. Today it only re-exports the core; it simulates nothing.

pub use swim_core;
