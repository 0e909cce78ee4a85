//! Reports as text: one run's table, and a summary of many runs grouped by
//! scenario, mix and Lifeguard (the table in `chaos/RESULTS.md`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::analyze::Report;
use crate::node::Kind;

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{s:.1}s"))
}

fn kinds(k: &[Kind]) -> String {
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    for &x in k {
        *counts.entry(x).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, c)| format!("{} ×{c}", k.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One run as a table.
pub fn run_table(r: &Report) -> String {
    let m = &r.meta;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} nodes ({}: {}), seed {}, {} preset, Lifeguard {}; formed in {:.1}s",
        m.scenario,
        m.kinds.len(),
        m.mix,
        kinds(&m.kinds),
        m.seed,
        m.preset,
        if m.lifeguard { "on" } else { "off" },
        m.formed_in as f64 / 1000.0
    );
    let _ = writeln!(
        s,
        "\n{:<28} {:<30} {:>4} {:>7} {:>6} {:>11} {:>10}",
        "phase", "faults", "FP", "at heal", "healed", "false susp", "converged"
    );
    for p in &r.phases {
        let faults = if p.faults.is_empty() {
            "-".to_string()
        } else {
            p.faults.join(", ")
        };
        let _ = writeln!(
            s,
            "{:<28} {:<30} {:>4} {:>7} {:>6} {:>11} {:>10}",
            p.name,
            faults,
            p.false_positives,
            p.deaths_at_heal,
            p.deaths_after_heal,
            p.false_suspicions,
            opt(p.converged_after)
        );
    }
    if !r.faults.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<46} {:>8} {:>9} {:>10} {:>9} {:>8}",
            "fault (times from its start)", "at", "suspect", "1st dead", "all dead", "pairs"
        );
        for f in &r.faults {
            let _ = writeln!(
                s,
                "{:<46} {:>7.1}s {:>9} {:>10} {:>9} {:>8}",
                f.label,
                f.start,
                opt(f.first_suspect),
                opt(f.first_dead),
                opt(f.all_dead),
                format!("{}/{}", f.declared, f.pairs)
            );
        }
    }
    for fp in &r.false_positives {
        let _ = writeln!(
            s,
            "false positive: {} declared {} dead at {:.1}s ({})",
            fp.observer, fp.subject, fp.t, fp.phase
        );
    }
    for d in &r.deaths_after_heal {
        let _ = writeln!(
            s,
            "after the cut healed: {} declared {} dead at {:.1}s ({})",
            d.observer, d.subject, d.t, d.phase
        );
    }
    if !r.deaths_at_heal.is_empty() {
        let _ = writeln!(
            s,
            "at a heal (within {:.1}s of it, on evidence from the cut): {} declaration(s)",
            r.meta.heal_allowance as f64 / 1000.0,
            r.deaths_at_heal.len()
        );
    }
    for x in r
        .final_mismatches
        .iter()
        .chain(&r.lost_events)
        .chain(&r.problems)
    {
        let _ = writeln!(s, "  {x}");
    }
    if r.failures.is_empty() {
        let _ = writeln!(s, "\nchecks passed: no false positive in a benign phase, converged after every phase, final views and events match");
    } else {
        let _ = writeln!(s, "\nCHECKS FAILED:");
        for f in &r.failures {
            let _ = writeln!(s, "  - {f}");
        }
    }
    s
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// `p50 / max` of `v`, or `-`.
fn p50_max(v: Vec<f64>) -> String {
    let v = sorted(v);
    if v.is_empty() {
        return "-".into();
    }
    format!("{:.1} / {:.1}", v[(v.len() - 1) / 2], v[v.len() - 1])
}

/// `min / median / max` of `v`.
fn min_med_max(v: Vec<f64>) -> String {
    let v = sorted(v);
    if v.is_empty() {
        return "-".into();
    }
    let fmt = |x: f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    format!(
        "{} / {} / {}",
        fmt(v[0]),
        fmt(v[(v.len() - 1) / 2]),
        fmt(v[v.len() - 1])
    )
}

/// Many runs, grouped: a markdown table.
pub fn summary(reports: &[Report]) -> String {
    let mut groups: BTreeMap<(String, usize, String, bool), Vec<&Report>> = BTreeMap::new();
    for r in reports {
        groups
            .entry((
                r.meta.scenario.clone(),
                r.meta.kinds.len(),
                r.meta.mix.clone(),
                r.meta.lifeguard,
            ))
            .or_default()
            .push(r);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| scenario | nodes | mix | Lifeguard | seeds | crash: suspect p50/max | crash: 1st dead p50/max | crash: all dead p50/max | full partition: 1st dead p50/max | stalled/starved: declared dead (observer pairs) | FP per run min/med/max | dead at a heal per run | dead after a heal per run | false susp. per run | converged after heal p50/max | failed checks |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for ((scenario, n, mix, lifeguard), runs) in groups {
        let faults = |kind: &'static str| {
            runs.iter()
                .flat_map(|r| r.faults.iter())
                .filter(move |f| f.kind == kind)
        };
        let crash_s: Vec<f64> = faults("crash").filter_map(|f| f.first_suspect).collect();
        let crash_1: Vec<f64> = faults("crash").filter_map(|f| f.first_dead).collect();
        let crash_all: Vec<f64> = faults("crash").filter_map(|f| f.all_dead).collect();
        let crashes = faults("crash").count();
        let incomplete = faults("crash").filter(|f| f.all_dead.is_none()).count();
        let cut: Vec<f64> = faults("partition")
            .filter(|f| f.label.contains(" both "))
            .filter_map(|f| f.first_dead)
            .collect();
        let stalls: Vec<_> = runs
            .iter()
            .flat_map(|r| &r.faults)
            .filter(|f| matches!(f.kind.as_str(), "stall" | "starve"))
            .collect();
        let stalled_dead = stalls.iter().filter(|f| f.declared > 0).count();
        let fp: Vec<f64> = runs
            .iter()
            .map(|r| r.false_positives.len() as f64)
            .collect();
        let fs: Vec<f64> = runs.iter().map(|r| r.false_suspicions as f64).collect();
        let healed: Vec<f64> = runs
            .iter()
            .map(|r| r.deaths_after_heal.len() as f64)
            .collect();
        let at_heal: Vec<f64> = runs.iter().map(|r| r.deaths_at_heal.len() as f64).collect();
        let conv: Vec<f64> = runs
            .iter()
            .flat_map(|r| &r.phases)
            .filter(|p| !p.faults.is_empty())
            .filter_map(|p| p.converged_after)
            .collect();
        let never = runs
            .iter()
            .flat_map(|r| &r.phases)
            .filter(|p| p.converged_after.is_none())
            .count();
        let seeds: Vec<String> = runs.iter().map(|r| r.meta.seed.to_string()).collect();
        let failed = runs.iter().filter(|r| !r.failures.is_empty()).count();
        let crash_all = if incomplete > 0 {
            format!(
                "{} ({incomplete} of {crashes} incomplete)",
                p50_max(crash_all)
            )
        } else {
            p50_max(crash_all)
        };
        let conv = if never > 0 {
            format!("{} ({never} never)", p50_max(conv))
        } else {
            p50_max(conv)
        };
        let _ = writeln!(
            s,
            "| {scenario} | {n} | {mix} | {} | {} | {} | {} | {crash_all} | {} | {} | {} | {} | {} | {} | {conv} | {failed} of {} |",
            if lifeguard { "on" } else { "off" },
            seeds.join(","),
            p50_max(crash_s),
            p50_max(crash_1),
            p50_max(cut),
            if stalls.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{stalled_dead} of {} ({} of {} pairs)",
                    stalls.len(),
                    stalls.iter().map(|f| f.declared).sum::<usize>(),
                    stalls.iter().map(|f| f.pairs).sum::<usize>()
                )
            },
            min_med_max(fp),
            min_med_max(at_heal),
            min_med_max(healed),
            min_med_max(fs),
            runs.len()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_pick_the_lower_median() {
        assert_eq!(p50_max(vec![3.0, 1.0, 2.0, 10.0]), "2.0 / 10.0");
        assert_eq!(p50_max(Vec::new()), "-");
        assert_eq!(min_med_max(vec![0.0, 4.0, 1.0]), "0 / 1 / 4");
        assert_eq!(min_med_max(vec![0.5]), "0.5 / 0.5 / 0.5");
    }
}
