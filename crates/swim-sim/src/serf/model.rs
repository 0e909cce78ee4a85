//! The push-gossip model of a user event's spread, to compare runs with.
//!
//! Serf gossips a user event from its own event queue, piggybacked on
//! memberlist's gossip: every gossip interval a node sends one packet to
//! each of `fanout` random members (Go's `GossipNodes`), and a queued
//! message rides in each until it has been sent `transmits` times
//! (`RetransmitMult · ⌈log10(n + 1)⌉`); a node that gets a new event
//! queues it again. In rounds of one gossip
//! interval, a node that lacks the event stays without it through a round
//! in which the nodes holding it send `C` packets with probability
//! `(1 − 1/(n − 1))^C`; a node that got it in round `r` sends `fanout`
//! copies in each of its next rounds until its `transmits` are spent.

/// The expected number of gossip rounds until fewer than half a node of
/// `n` lacks an event one node starts in round 0 (`None` if the senders'
/// transmits run out first: anti-entropy has to finish the job).
pub fn dissemination_rounds(n: usize, fanout: usize, transmits: usize) -> Option<u32> {
    if n < 2 {
        return Some(0);
    }
    let nf = n as f64;
    let lacking_alone = (1.0 - 1.0 / (nf - 1.0)).ln();
    // Fractions of the cluster that got it in each round.
    let mut cohorts = vec![1.0 / nf];
    let mut lacking = 1.0 - 1.0 / nf;
    for round in 1..=10_000u32 {
        if lacking * nf < 0.5 {
            return Some(round - 1);
        }
        let sent: f64 = cohorts
            .iter()
            .enumerate()
            .map(|(got, share)| {
                let age = round as usize - got; // 1 the round after
                let spent = fanout * (age - 1);
                share * nf * transmits.saturating_sub(spent).min(fanout) as f64
            })
            .sum();
        if sent == 0.0 {
            return None;
        }
        let left = lacking * (sent * lacking_alone).exp();
        cohorts.push(lacking - left);
        lacking = left;
    }
    None
}

/// Go Serf's documented model, its convergence simulator's (serf.io,
/// "Convergence Simulator"): after `x` rounds a fraction
/// `1 / (1 + (n + 1) · e^(−fanout · x / 2))` has it (a logistic epidemic
/// with half the fanout as contact rate, no loss, no failures). Returns the
/// rounds until fewer than half a node lacks it:
/// `ln(2 (n + 1) (n − ½)) / (fanout / 2)`.
pub fn serf_io_rounds(n: usize, fanout: usize) -> f64 {
    let nf = n.max(1) as f64;
    (2.0 * (nf + 1.0) * (nf - 0.5)).ln() / (fanout.max(1) as f64 / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_grow_with_the_cluster_and_shrink_with_the_fanout() {
        // 1,000 nodes, Go's LAN settings: 3 nodes a round, 4 · 4 transmits.
        let lan = dissemination_rounds(1000, 3, 16).expect("spreads");
        assert!((6..=10).contains(&lan), "{lan}");
        assert!(dissemination_rounds(100, 3, 12).unwrap() < lan);
        assert!(dissemination_rounds(1000, 6, 16).unwrap() < lan);
        // One transmit each: the chain dies out before reaching everyone.
        assert_eq!(dissemination_rounds(1000, 1, 1), None);
    }

    #[test]
    fn serf_io_model_at_its_defaults() {
        // 1,000 nodes, fanout 3: 9.67 rounds, 1.93 s at 200 ms.
        let r = serf_io_rounds(1000, 3);
        assert!((r - 9.67).abs() < 0.01, "{r}");
    }
}
