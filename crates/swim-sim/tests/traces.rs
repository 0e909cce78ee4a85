//! Recorded traces: small scenarios, one per kind of fault, whose trace
//! hashes are pinned. A refactoring that must not change behaviour keeps
//! every one of them; a change that means to alter the protocol's behaviour
//! updates them, and its commit says why.
//!
//! Each scenario is pinned twice: with catch-up push/pulls off (Go
//! memberlist's behaviour, unchanged since before catch-up existed) and on
//! (the default). Each is also a `swim-sim run` command (in its comment;
//! add `--no-catch-up` for the first) that prints the same hash.

use std::time::Duration;

use swim_sim::{Amount, Fault, NetworkModel, Preset, Report, Scenario, Simulation};

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

/// The command line's defaults: 300 s, three seeds joined over 10 s.
fn scenario(nodes: usize, seed: u64, preset: Preset, duration: u64) -> Scenario {
    Scenario::new(nodes, seed, preset).duration(s(duration))
}

/// A tenth of 60 nodes stall for 3 s every 12 s from 10 s on.
fn stalls(lifeguard: bool) -> Scenario {
    scenario(60, 7, Preset::Local, 60)
        .lifeguard(lifeguard)
        .fault(Fault::Stall {
            amount: Amount::Fraction(0.1),
            at: s(10),
            duration: s(3),
            every: Some(s(12)),
        })
}

fn hash(sc: Scenario) -> String {
    run(sc).trace_hash
}

fn run(sc: Scenario) -> Report {
    let report = Simulation::new(sc).run();
    assert!(report.ok(), "{:?}", report.invariant_violations);
    report
}

#[test]
fn recorded_traces_are_unchanged() {
    let cases = [
        (
            // --nodes 60 --preset local --bootstrap --duration 60s --seed 3
            "bootstrap",
            scenario(60, 3, Preset::Local, 60).bootstrap(3, s(10)),
            ["b9b306c0a5691156", "745116efd1814262"],
        ),
        (
            // --nodes 100 --formed --crash 2%@20s --duration 90s --seed 1
            "formed, crashes",
            scenario(100, 1, Preset::Lan, 90)
                .formed()
                .fault(Fault::Crash {
                    amount: Amount::Fraction(0.02),
                    at: s(20),
                }),
            ["158026303e83ef57", "b3a13c2ea0045ab0"],
        ),
        (
            // --nodes 60 --preset local --partition 30%@15s+10s --duration 60s --seed 5
            "partition",
            scenario(60, 5, Preset::Local, 60).fault(Fault::Partition {
                amount: Amount::Fraction(0.3),
                at: s(15),
                duration: s(10),
                one_way: false,
                links: 1.0,
            }),
            ["da9eb37616127aeb", "35165d81d4b1e2c5"],
        ),
        (
            // --nodes 60 --preset local --stall 10%@10s+3s,every=12s --duration 60s --seed 7
            "stalls, Lifeguard on",
            stalls(true),
            ["15c1d3eac23dcc88", "3980282fd133ee01"],
        ),
        (
            // the same with --no-lifeguard
            "stalls, Lifeguard off",
            stalls(false),
            ["eb2e929f6ed2bf6c", "a3831f79e0b3b15d"],
        ),
        (
            // --nodes 60 --preset local --bootstrap --restart 5%@20s+5s --duration 60s --seed 9
            "restarts",
            scenario(60, 9, Preset::Local, 60)
                .bootstrap(3, s(10))
                .fault(Fault::Restart {
                    amount: Amount::Fraction(0.05),
                    at: s(20),
                    down_for: s(5),
                }),
            ["7eb97d7b985a4865", "db1d1f169cb57f30"],
        ),
        (
            // --nodes 40 --preset local --leave 2@20s --update-meta 5%@25s --loss 2%
            //   --dup 1% --reorder 2% --disseminate 30s --duration 60s --seed 10
            "leaves, metadata, a lossy network",
            scenario(40, 10, Preset::Local, 60)
                .network(NetworkModel {
                    loss: 0.02,
                    duplicate: 0.01,
                    reorder: 0.02,
                    ..NetworkModel::default()
                })
                .fault(Fault::Leave {
                    amount: Amount::Count(2),
                    at: s(20),
                    timeout: s(5),
                })
                .fault(Fault::UpdateMeta {
                    amount: Amount::Fraction(0.05),
                    at: s(25),
                })
                .disseminate_at(s(30)),
            ["748edddaf08c6a2d", "3267a84a4e25c820"],
        ),
    ];
    let changed: Vec<String> = cases
        .into_iter()
        .flat_map(|(name, sc, [off, on])| {
            [(false, off), (true, on)].map(|(catch_up, want)| {
                let got = hash(sc.clone().catch_up(catch_up));
                (got != want)
                    .then(|| format!("{name}, catch-up {catch_up}: {got}, recorded {want}"))
            })
        })
        .flatten()
        .collect();
    assert!(changed.is_empty(), "traces changed: {changed:#?}");
}

/// The guards against false deaths (issue 32), each pinned on its own: 30
/// LAN nodes under 20 % datagram and stream loss, where catch-up without
/// either guard declares a healthy node dead (a refutation that missed the
/// last node suspecting it). Commands: `swim-sim run --nodes 30 --formed
/// --loss 20% --stream-loss 20% --duration 200s --seed 7 --no-hearsay`,
/// with the flags named (the refutation in advance and hearsay, pinned last
/// with `--refute-returning` and without `--no-hearsay`, would hide what
/// each guard does alone).
#[test]
fn false_death_guards_traces_are_unchanged() {
    let sc = Scenario::new(30, 7, Preset::Lan)
        .refute_returning(false)
        .hearsay(false)
        .formed()
        .duration(s(200))
        .network(NetworkModel {
            loss: 0.2,
            stream_loss: 0.2,
            ..NetworkModel::default()
        });
    let cases = [
        (
            "--no-catch-up",
            sc.clone().catch_up(false),
            "fe5dee626fc32bf0",
            0,
        ),
        (
            "--no-last-probe --no-direct-refutation",
            sc.clone().last_probes(false).direct_refutations(false),
            "67c6df9c0664d981",
            1,
        ),
        (
            "--no-direct-refutation",
            sc.clone().direct_refutations(false),
            "6a4e5f65d19d9fc2",
            0,
        ),
        (
            "--no-last-probe",
            sc.clone().last_probes(false),
            "00efaaa72cd24129",
            0,
        ),
        ("(defaults)", sc.clone(), "0c3aef2b012b0cf8", 0),
        (
            "--no-last-probe --no-direct-refutation, hearsay on",
            sc.clone()
                .hearsay(true)
                .last_probes(false)
                .direct_refutations(false),
            "5f5e780cb2001b95",
            0,
        ),
        (
            "--no-last-probe --no-direct-refutation, refutation in advance on",
            sc.refute_returning(true)
                .last_probes(false)
                .direct_refutations(false),
            "710666e7b472b3a3",
            0,
        ),
    ];
    assert_pinned_with_false_deaths(cases);
}

/// The doubt of death notices from accusers held dead (issue 32), pinned on
/// and off: 200 LAN nodes, 10 % cut off for 30 s. Without the doubt, a
/// death notice from the cut-off side about a member of this side arrives
/// 0.8 s after the heal and is believed at once. Command: `swim-sim run
/// --nodes 200 --crash 1%@60s --partition 10%@70s+30s --duration 160s
/// --seed 14 --no-direct-refutation --no-hearsay`, and with `--no-doubt`;
/// then with `--refute-returning --no-doubt` (the member returning answers
/// its accuser's suspicion beforehand) and with `--no-doubt` but hearsay
/// on (the push/pulls of the heal no longer confirm the verdict).
#[test]
fn doubt_of_dead_accusers_traces_are_unchanged() {
    let sc = Scenario::new(200, 14, Preset::Lan)
        .refute_returning(false)
        .hearsay(false)
        .duration(s(160))
        .direct_refutations(false)
        .fault(Fault::Crash {
            amount: Amount::Fraction(0.01),
            at: s(60),
        })
        .fault(Fault::Partition {
            amount: Amount::Fraction(0.1),
            at: s(70),
            duration: s(30),
            one_way: false,
            links: 1.0,
        });
    let cases = [
        (
            "--no-doubt",
            sc.clone().doubt_dead_accusers(false),
            "b8266f36f2811b22",
            1,
        ),
        ("(doubt on)", sc.clone(), "412cf79b99af3e5b", 0),
        (
            "--no-doubt, hearsay on",
            sc.clone().hearsay(true).doubt_dead_accusers(false),
            "e33d2db261ec9254",
            0,
        ),
        (
            "--no-doubt, refutation in advance on",
            sc.refute_returning(true).doubt_dead_accusers(false),
            "7dd1c408b10c9fdf",
            0,
        ),
    ];
    assert_pinned_with_false_deaths(cases);
}

/// Runs each `(flags, scenario, trace hash, healthy declared dead)` case and
/// fails naming every one whose trace or false-death count changed.
fn assert_pinned_with_false_deaths<const N: usize>(cases: [(&str, Scenario, &str, u64); N]) {
    let changed: Vec<String> = cases
        .into_iter()
        .filter_map(|(flags, sc, want, false_deaths)| {
            let r = run(sc);
            (r.trace_hash != want || r.false_positives != false_deaths).then(|| {
                format!(
                    "{flags}: {} with {} healthy declared dead, recorded {want} with {false_deaths}",
                    r.trace_hash, r.false_positives
                )
            })
        })
        .collect();
    assert!(changed.is_empty(), "traces changed: {changed:#?}");
}
