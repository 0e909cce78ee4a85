//! A member's metadata read as Serf tags (Go's `decodeTags`: the magic
//! byte and a msgpack map, or a pre-protocol-3 bare role). No input may
//! panic; tags that decode, and fit the metadata limit when re-encoded,
//! decode the same after re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_serf::tags::{decode_tags, encode_tags};

fuzz_target!(|meta: &[u8]| {
    if let Ok(tags) = decode_tags(meta) {
        if let Ok(again) = encode_tags(&tags) {
            assert_eq!(
                decode_tags(&again),
                Ok(tags),
                "re-encoding changed the tags"
            );
        }
    }
});
