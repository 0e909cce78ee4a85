//! Tokio adapter for `swim-core` — **not built yet**.
//!
//! This crate will run a [`swim_core`] node on real UDP and TCP sockets under
//! tokio: one task owning the protocol state machine, a cloneable handle with
//! `join`, `members`, `broadcast`, `leave` and friends, and an events stream.
//! Today it only re-exports the core so the workspace layout is in place; it
//! offers no networking.

pub use swim_core;
