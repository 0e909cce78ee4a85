//! A relay from a peer, type byte 9 (Go's `decodeMessage` into
//! `relayHeader`, then the message after it, which the relaying node sends
//! on unchanged and its destination decodes). See `serf_message.rs` for
//! what is checked.
#![no_main]

mod serf_message;

use libfuzzer_sys::fuzz_target;
use swim_serf::messages::{Message, MessageType};

fuzz_target!(|body: &[u8]| {
    if let Some(Message::Relay(relay)) = serf_message::check(MessageType::Relay, body) {
        let _ = relay.dest_addr();
        if let Ok(inner) = Message::decode(&relay.message) {
            assert_eq!(Message::decode(&inner.to_bytes()), Ok(inner));
        }
    }
});
