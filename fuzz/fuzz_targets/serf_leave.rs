//! A leave intent from a peer, type byte 0
//! (Go's `decodeMessage` into `messageLeave`). See `serf_message.rs` for
//! what is checked.
#![no_main]

mod serf_message;

use libfuzzer_sys::fuzz_target;
use swim_serf::messages::MessageType;

fuzz_target!(|body: &[u8]| {
    serf_message::check(MessageType::Leave, body);
});
