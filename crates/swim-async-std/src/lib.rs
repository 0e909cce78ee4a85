//! async-std / smol adapter for `swim-core` — **not built yet**.
//!
//! This crate will offer the same handle API as `swim-tokio`, built on the
//! primitives async-std runs on (async-io, async-net, futures-lite) so it
//! serves smol users too. Today it only re-exports the core; it offers no
//! networking.

pub use swim_core;
