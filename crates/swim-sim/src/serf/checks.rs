//! Serf's invariants: what the nodes did, noted as they did it (the
//! ledger, which outlives crashed processes), and the checks over it and
//! the live nodes' Serfs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use swim_serf::{LamportTime, QueryParams, SerfConfig};

use super::app::SerfApp;
use super::event_name;
use crate::app::{AppFailure, Apps};
use crate::naming::{node_index, node_name};

/// A query as its origin sent it, and who answered.
#[derive(Debug, Clone)]
pub(super) struct SentQuery {
    origin: usize,
    at: Duration,
    timeout: Duration,
    /// Answers that reached the origin: who, when (simulated time).
    answers: BTreeMap<String, Duration>,
    /// The nodes it reached (that passed its filters there).
    reached: BTreeSet<usize>,
}

/// What every node's Serf did, across crashes and restarts. Written from
/// the windows' threads: everything is keyed, and of the safety
/// violations the earliest (then smallest) is kept, so the run stays a
/// function of its seed.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// The workload's user events sent: origin, when.
    events: BTreeMap<usize, (usize, Duration)>,
    queries: BTreeMap<usize, SentQuery>,
    /// The earliest safety violation: when, which node, what.
    first: Option<(Duration, usize, String)>,
}

impl Ledger {
    pub(super) fn sent_event(&mut self, k: usize, origin: usize, at: Duration) {
        self.events.insert(k, (origin, at));
    }

    pub(super) fn sent_query(&mut self, k: usize, origin: usize, at: Duration, timeout: Duration) {
        // It reaches us, and our own answer comes back, within the send.
        let q = self.query(k);
        q.origin = origin;
        q.at = at;
        q.timeout = timeout;
    }

    fn query(&mut self, k: usize) -> &mut SentQuery {
        self.queries.entry(k).or_insert_with(|| SentQuery {
            origin: usize::MAX,
            at: Duration::ZERO,
            timeout: Duration::ZERO,
            answers: BTreeMap::new(),
            reached: BTreeSet::new(),
        })
    }

    /// Query `k` reached `node`, which passed its filters.
    pub(super) fn reached(&mut self, k: usize, node: usize) {
        self.query(k).reached.insert(node);
    }

    pub(super) fn answered(&mut self, k: usize, from: &str, at: Duration) {
        self.query(k).answers.entry(from.to_string()).or_insert(at);
    }

    /// Node `node` delivered the user event `name` for the `count`th time.
    pub(super) fn delivered(&mut self, node: usize, name: &str, count: u32, at: Duration) {
        if count > 1 {
            self.violation(
                at,
                node,
                format!("user event {name} delivered {count} times"),
            );
        }
    }

    pub(super) fn violation(&mut self, at: Duration, node: usize, detail: String) {
        let new = (at, node, detail);
        if self.first.as_ref().is_none_or(|f| new < *f) {
            self.first = Some(new);
        }
    }
}

/// What went wrong between two readings of a node's member, event and
/// query clocks, if one went back.
pub fn clock_regression(before: [LamportTime; 3], after: [LamportTime; 3]) -> Option<String> {
    let names = ["member", "event", "query"];
    (0..3).find(|&k| after[k] < before[k]).map(|k| {
        format!(
            "{} clock went back from {} to {}",
            names[k], before[k].0, after[k].0
        )
    })
}

/// Safety, after every step: no user event delivered twice by one
/// process, no Lamport clock went back.
pub(super) fn safety(ledger: &Ledger) -> Result<(), AppFailure> {
    match &ledger.first {
        Some((at, node, detail)) => Err(AppFailure::new([*node], format!("at {at:?}: {detail}"))),
        None => Ok(()),
    }
}

/// Node `i`'s Serf, if its process was up from `at` on and still is.
fn up_since<'a>(apps: &Apps<'a>, i: usize, at: Duration) -> Option<&'a SerfApp> {
    apps.get::<SerfApp>(i)
        .filter(|a| a.started() <= at && apps.is_live(i))
}

/// Every user event whose origin stayed up reached every node up from its
/// sending on.
pub(super) fn events_everywhere(apps: &Apps<'_>, ledger: &Ledger) -> Result<(), AppFailure> {
    for (&k, &(origin, at)) in &ledger.events {
        if up_since(apps, origin, at).is_none() {
            continue; // it may have crashed before gossiping it
        }
        let name = event_name(k);
        for i in 0..apps.nodes() {
            let Some(app) = up_since(apps, i, at) else {
                continue;
            };
            if !app.delivered().contains_key(&name) {
                return Err(AppFailure::new(
                    [origin, i],
                    format!("user event {name}, sent at {at:?}, never delivered"),
                ));
            }
        }
    }
    Ok(())
}

/// Whether a node with `config` passes a query's filters (Go's
/// `shouldProcessQuery`: the names listed, every tag matching its
/// expression, a missing tag read as empty).
pub fn passes_filters(config: &SerfConfig, params: &QueryParams) -> bool {
    let named = params.filter_nodes.is_empty() || params.filter_nodes.contains(&config.name);
    named
        && params.filter_tags.iter().all(|(tag, expr)| {
            let value = config.tags.get(tag).map_or("", String::as_str);
            regex::Regex::new(expr).is_ok_and(|re| re.is_match(value))
        })
}

/// Every answer came from a node that passes the query's filters, within
/// its timeout; and while the origin stayed up, every node up from the
/// sending on that the query reached (and that passed its filters there)
/// answered, and the answer reached the origin. A query is gossiped like an
/// event but, unlike one, never repaired by push/pull: in Go Serf as here
/// it may miss a node (each holder sends it `RetransmitMult ·
/// ⌈log10(n + 1)⌉` times), so reaching every node is not checked.
pub(super) fn queries_answered(
    apps: &Apps<'_>,
    ledger: &Ledger,
    workload: &super::Workload,
    config: &super::ConfigFn,
) -> Result<(), AppFailure> {
    for (&k, q) in &ledger.queries {
        let Some(super::Planned::Query { params, .. }) = workload.items.get(k) else {
            continue;
        };
        for (from, &at) in &q.answers {
            let i = node_index(from).unwrap_or(usize::MAX);
            if i >= apps.nodes() || !passes_filters(&config(i), params) {
                return Err(AppFailure::new(
                    [q.origin, i],
                    format!("query {k}: {from} answered but fails its filters"),
                ));
            }
            if q.origin != usize::MAX && at > q.at + q.timeout {
                return Err(AppFailure::new(
                    [q.origin, i],
                    format!("query {k}: {from} answered at {at:?}, after its timeout"),
                ));
            }
        }
        if up_since(apps, q.origin, q.at).is_none() {
            continue;
        }
        for &i in &q.reached {
            if up_since(apps, i, q.at).is_none() {
                continue;
            }
            if !passes_filters(&config(i), params) {
                return Err(AppFailure::new(
                    [q.origin, i],
                    format!(
                        "query {k} passed {}'s filters there, though it fails them",
                        node_name(i)
                    ),
                ));
            }
            if !q.answers.contains_key(&node_name(i)) {
                return Err(AppFailure::new(
                    [q.origin, i],
                    format!(
                        "query {k}, sent at {:?} with timeout {:?}, reached {} but got no answer from it",
                        q.at,
                        q.timeout,
                        node_name(i),
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The relative errors of every live node's RTT estimate to every live
/// member whose coordinate it holds, against the simulated mean RTT
/// ([`Apps::rtt`]): `|estimate − rtt| / rtt`, sorted.
pub fn coordinate_errors(apps: &Apps<'_>) -> Vec<f64> {
    let mut errors = Vec::new();
    for (i, app) in apps.live::<SerfApp>() {
        let serf = app.serf();
        for j in (0..apps.nodes()).filter(|&j| j != i && apps.is_live(j)) {
            let Some(estimate) = serf.estimated_rtt(&node_name(j)) else {
                continue;
            };
            let truth = apps.rtt(i, j).as_secs_f64();
            errors.push((estimate.as_secs_f64() - truth).abs() / truth);
        }
    }
    errors.sort_by(f64::total_cmp);
    errors
}

/// The `q` quantile of sorted `xs` (nearest rank).
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    let last = xs.len().checked_sub(1)?;
    Some(xs[((last as f64) * q).round() as usize])
}

/// Coordinates converged: the median and 90th-percentile relative RTT
/// errors are within the bounds.
pub(super) fn coordinates(apps: &Apps<'_>, median: f64, p90: f64) -> Result<(), AppFailure> {
    let errors = coordinate_errors(apps);
    let (Some(m), Some(p)) = (quantile(&errors, 0.5), quantile(&errors, 0.9)) else {
        return Err(AppFailure::new([], "no node holds a coordinate of another"));
    };
    if m > median || p > p90 {
        return Err(AppFailure::new(
            [],
            format!(
                "relative RTT error over {} pairs: median {m:.3} (bound {median}), p90 {p:.3} (bound {p90})",
                errors.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_going_back_is_caught_and_standing_still_is_not() {
        let t = |m, e, q| [LamportTime(m), LamportTime(e), LamportTime(q)];
        assert_eq!(clock_regression(t(3, 4, 5), t(3, 4, 5)), None);
        assert_eq!(clock_regression(t(3, 4, 5), t(9, 4, 6)), None);
        let detail = clock_regression(t(3, 4, 5), t(3, 2, 5)).expect("event clock went back");
        assert_eq!(detail, "event clock went back from 4 to 2");
        let mut ledger = Ledger::default();
        assert!(safety(&ledger).is_ok());
        ledger.violation(Duration::from_secs(2), 4, detail);
        ledger.violation(Duration::from_secs(1), 7, "later noted, earlier".into());
        let failure = safety(&ledger).expect_err("a violation was noted");
        assert_eq!(failure.nodes, vec![7], "the earliest is kept");
    }

    #[test]
    fn a_second_delivery_is_a_violation() {
        let mut ledger = Ledger::default();
        ledger.delivered(1, "ev-0", 1, Duration::from_secs(1));
        assert!(safety(&ledger).is_ok());
        ledger.delivered(1, "ev-0", 2, Duration::from_secs(2));
        assert!(safety(&ledger).is_err());
    }

    #[test]
    fn filters_select_by_name_and_tag() {
        let mut web = SerfConfig::new("node-1");
        web.tags.insert("role".into(), "web".into());
        let db = SerfConfig::new("node-2");
        let by_tag = QueryParams {
            filter_tags: vec![("role".into(), "^web$".into())],
            ..QueryParams::default()
        };
        assert!(passes_filters(&web, &by_tag));
        assert!(
            !passes_filters(&db, &by_tag),
            "a missing tag reads as empty"
        );
        let by_name = QueryParams {
            filter_nodes: vec!["node-2".into()],
            ..QueryParams::default()
        };
        assert!(!passes_filters(&web, &by_name));
        assert!(passes_filters(&db, &by_name));
        assert!(passes_filters(&db, &QueryParams::default()));
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.9), Some(3.0));
    }
}
