//! swim-agent: one cluster node on the command line (in progress).
fn main() {}
