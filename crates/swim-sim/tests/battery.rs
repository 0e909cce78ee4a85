//! The false-death battery counts what it should: under 30 % datagram and
//! stream loss the Go model declares healthy nodes dead in almost every seed
//! (so the count can fail), and our defaults in none. Eight seeds in a
//! release build; two in a debug build (`cargo test --workspace`), where a
//! seed takes seconds.

use swim_sim::battery::{self, Mode, Options};

#[test]
fn heavy_loss_false_deaths_in_the_go_model_none_in_ours() {
    let n = if cfg!(debug_assertions) { 2 } else { 8 };
    let opts = Options {
        long: false,
        modes: vec![Mode::Ours, Mode::Go],
        only: vec!["loss 30 %, 30 nodes".to_string()],
        first_seed: 1,
        seeds: Some(n),
    };
    let rows = battery::run(&opts, |_| {});
    assert_eq!(rows.len(), 2);
    let (ours, go) = (&rows[0], &rows[1]);
    assert_eq!((ours.mode.as_str(), go.mode.as_str()), ("ours", "Go model"));
    assert_eq!(ours.seeds, n);
    assert_eq!(ours.false_deaths, 0, "{}", ours.line());
    assert!(go.false_deaths >= n, "{}", go.line());
    // One crash per seed, declared by every node in both.
    let n = n as usize;
    assert_eq!((ours.all_dead.len(), go.all_dead.len()), (n, n));
    assert!(battery::replays(&rows).is_empty());
}
