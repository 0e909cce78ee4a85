//! Bytes arriving on a TCP stream in arbitrary chunks: the framer must give
//! the same answer incrementally as all at once, never claim a message before
//! its last byte, and whatever it frames must open and decode without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_core::wire::{
    Envelope, Frame, Keyring, Limits, Message, SecretKey, StreamFramer, StreamRole, Transport,
};

fuzz_target!(|data: &[u8]| {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let role = if config & 1 == 0 {
        StreamRole::Accept
    } else {
        StreamRole::Reply
    };
    let mut envelope = Envelope::new();
    if config & 2 != 0 {
        envelope = envelope.with_label(b"prod").unwrap();
    }
    if config & 4 != 0 {
        envelope = envelope.with_keyring(Keyring::new(SecretKey::new(&[0x22; 32]).unwrap()));
    }
    // Small caps keep executions fast; the limits themselves are what is tested.
    let limits = Limits {
        max_stream_message: 1 << 20,
        max_decompressed: 1 << 20,
        ..Limits::default()
    };
    envelope = envelope.with_limits(limits.clone());

    let whole = StreamFramer::new(role, limits.clone()).frame(stream);

    // Feed it again in chunks whose sizes come from the config byte.
    let step = 1 + (config >> 3) as usize;
    let mut framer = StreamFramer::new(role, limits.clone());
    let mut end = 0;
    let incremental = loop {
        end = (end + step).min(stream.len());
        match framer.frame(&stream[..end]) {
            Ok(Frame::NeedMore) if end < stream.len() => continue,
            other => break other,
        }
    };
    match (&whole, &incremental) {
        (Ok(Frame::Complete { len: a }), Ok(Frame::Complete { len: b })) => {
            assert_eq!(a, b);
            assert!(*a <= stream.len());
        }
        (Ok(Frame::NeedMore), Ok(Frame::NeedMore)) | (Err(_), Err(_)) => {}
        // A prefix may be judged complete or broken before the rest arrives,
        // but whole and incremental must agree on complete messages.
        (Ok(Frame::Complete { len }), Err(_)) => panic!("whole framed {len}, chunks failed"),
        _ => {}
    }

    if let Ok(Frame::Complete { len }) = whole {
        if let Ok(message) = envelope.open_stream(&stream[..len], role) {
            if let Ok(m) = Message::decode(&message, Transport::Stream, &limits) {
                let mut again = Vec::new();
                m.encode(Transport::Stream, &mut again);
                assert_eq!(
                    Message::decode(&again, Transport::Stream, &limits).as_ref(),
                    Ok(&m)
                );
            }
        }
    }
});
