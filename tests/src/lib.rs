//! Harness for the cross-crate scenarios in `tests/`.
