//! Serf's state in a peer's push/pull, type byte 2
//! (Go's `decodeMessage` into `messagePushPull`). See `serf_message.rs` for
//! what is checked.
#![no_main]

mod serf_message;

use libfuzzer_sys::fuzz_target;
use swim_serf::messages::MessageType;

fuzz_target!(|body: &[u8]| {
    serf_message::check(MessageType::PushPull, body);
});
