//! What every per-message Serf target checks: the fuzz input is the body
//! of one message type (its type byte is prepended, as the sender wrote
//! it), so every execution reaches that type's decoder. No input may
//! panic; a message that decodes keeps its type and decodes the same after
//! re-encoding.

use swim_serf::messages::{Message, MessageType};

/// Decodes `body` as a message of type `ty`; returns it if it decoded.
pub fn check(ty: MessageType, body: &[u8]) -> Option<Message> {
    let mut buf = Vec::with_capacity(body.len() + 1);
    buf.push(ty as u8);
    buf.extend_from_slice(body);
    let msg = Message::decode(&buf).ok()?;
    assert_eq!(msg.message_type(), ty, "decoded as another type");
    let again = Message::decode(&msg.to_bytes());
    assert_eq!(again.as_ref(), Ok(&msg), "re-encoding changed the message");
    Some(msg)
}
