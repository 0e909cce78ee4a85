//! A join intent from a peer, type byte 1
//! (Go's `decodeMessage` into `messageJoin`). See `serf_message.rs` for
//! what is checked.
#![no_main]

mod serf_message;

use libfuzzer_sys::fuzz_target;
use swim_serf::messages::MessageType;

fuzz_target!(|body: &[u8]| {
    serf_message::check(MessageType::Join, body);
});
