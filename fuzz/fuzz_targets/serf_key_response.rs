//! The answer to a key-management query, type byte 8
//! (Go's `decodeMessage` into `nodeKeyResponse`). See `serf_message.rs` for
//! what is checked.
#![no_main]

mod serf_message;

use libfuzzer_sys::fuzz_target;
use swim_serf::messages::MessageType;

fuzz_target!(|body: &[u8]| {
    serf_message::check(MessageType::KeyResponse, body);
});
