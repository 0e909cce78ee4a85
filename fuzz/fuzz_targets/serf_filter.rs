//! One encoded query filter from a peer's query (Go's `decodeFilter` in
//! `shouldProcessQuery`: a type byte, then a node list or a tag filter). No
//! input may panic; a filter that decodes decodes the same after
//! re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_serf::messages::Filter;

fuzz_target!(|data: &[u8]| {
    if let Ok(filter) = Filter::decode(data) {
        assert_eq!(Filter::decode(&filter.to_bytes()), Ok(filter));
    }
});
