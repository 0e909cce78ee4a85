//! Bytes a peer sent as a Serf message (a memberlist user message or
//! push/pull state), as node metadata (tags), and as a query filter. No
//! input may panic, and every message that decodes must decode the same
//! after re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_serf::messages::{Filter, Message};
use swim_serf::tags::{decode_tags, encode_tags};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let again = Message::decode(&msg.to_bytes());
        assert_eq!(again.as_ref(), Ok(&msg), "re-encoding changed the message");
    }
    if let Ok(tags) = decode_tags(data) {
        if let Ok(meta) = encode_tags(&tags) {
            assert_eq!(decode_tags(&meta), Ok(tags), "re-encoding changed the tags");
        }
    }
    if let Ok(filter) = Filter::decode(data) {
        assert_eq!(Filter::decode(&filter.to_bytes()), Ok(filter));
    }
});
