//! What a node's memory holds per member it knows: the live heap (counted by
//! an instrumented allocator, so the figure is what the nodes hold, not what
//! glibc keeps after a join storm) of clusters of two sizes, per node, and
//! the difference between them per member. BENCHMARKS.md ("The cost curve",
//! memory) explains the figures this prints.
//!
//! Alone in its test binary: the allocator counts the whole process.

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use swim_tests::{local_config, Net, Runtime};

#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, process-wide (a reallocation counts
/// its growth as allocated, its shrinking as freed).
fn live_heap() -> i64 {
    let s = INSTRUMENTED_SYSTEM.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Most heap a node may hold per member it knows: 117–119 B measured (the
/// core's record and index, about 100 B; the rest names and queues; the
/// handles read the core's table under its lock, no copy), with room for
/// noise. Issue 31's goal is 130 B.
const BOUND_PER_MEMBER: i64 = 135;

/// Live heap per node of `n` nodes on loopback, after they joined one seed
/// and every node lists every node, and their rumours have run out: once
/// started (before any join) and once formed.
async fn heap_per_node(rt: Runtime, n: usize) -> (i64, i64) {
    let before = live_heap();
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        // The events are dropped: a service drains them, and undrained
        // ones would be counted as the node's.
        let (node, _) = rt
            .start(local_config(&format!("node-{i:03}")))
            .await
            .expect("start");
        nodes.push(node);
    }
    let started = live_heap() - before;
    let seed = nodes[0].local_node().addr;
    for node in &nodes[1..] {
        assert_eq!(node.join(&[seed]).await, Ok(1), "join");
    }
    rt.wait_until(
        Duration::from_secs(60),
        "every node to list every node",
        || nodes.iter().all(|m| m.num_members() == n),
    )
    .await;
    // Until the join rumours and the settle push/pulls are over.
    let mut queued = usize::MAX;
    for _ in 0..600 {
        queued = 0;
        for node in &nodes {
            queued += node.stats().await.expect("stats").broadcast_queue_len;
        }
        if queued == 0 {
            break;
        }
        rt.sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queued, 0, "rumours still queued after 60 s");
    rt.sleep(Duration::from_secs(2)).await;
    let formed = live_heap() - before;
    for node in nodes {
        node.shutdown().await;
    }
    (started / n as i64, formed / n as i64)
}

#[test]
fn heap_per_member_is_bounded() {
    let rt = Runtime::Tokio(Net::UdpTcp);
    let (small, large) = (40, 160);
    let (started_small, formed_small) = rt.block_on(heap_per_node(rt, small));
    let (started_large, formed_large) = rt.block_on(heap_per_node(rt, large));
    let per_member = (formed_large - formed_small) / (large - small) as i64;
    let fixed = formed_small - per_member * small as i64;
    eprintln!(
        "live heap per node: {small} nodes: started {started_small} B, formed {formed_small} B; \
         {large} nodes: started {started_large} B, formed {formed_large} B; \
         per member known: {per_member} B; fixed part: {fixed} B"
    );
    assert!(
        per_member <= BOUND_PER_MEMBER,
        "{per_member} B of heap per member known (bound {BOUND_PER_MEMBER} B)"
    );
}
