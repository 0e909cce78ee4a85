//! A snapshot file's text (Go's `Snapshotter.replay`, reading a file that
//! may be torn or damaged; read as `SnapshotFile::open` reads it, bytes
//! made UTF-8 lossily). No input may panic, and replaying the compacted
//! state gives the same state back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_serf::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for rejoin_after_leave in [false, true] {
        let state = Snapshot::replay(&text, rejoin_after_leave);
        let again = Snapshot::replay(&state.compacted(), rejoin_after_leave);
        assert_eq!(again, state, "compaction changed the snapshot");
    }
});
