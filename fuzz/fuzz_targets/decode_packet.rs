//! A received datagram, through every inbound layer: label, decryption, CRC,
//! compound and compress. No input may panic, and every message that decodes
//! must survive re-encoding unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_core::wire::{for_each_message, Envelope, Keyring, Limits, Message, SecretKey, Transport};

fuzz_target!(|data: &[u8]| {
    let Some((&config, datagram)) = data.split_first() else {
        return;
    };
    // A small decompression cap keeps executions fast; the cap is what is tested.
    let limits = Limits {
        max_decompressed: 1 << 20,
        max_packet_decompressed: 1 << 20,
        ..Limits::default()
    };
    let mut envelope = Envelope::new().with_limits(limits);
    if config & 1 != 0 {
        envelope = envelope.with_label(b"prod").unwrap();
    }
    if config & 2 != 0 {
        let keyring = Keyring::new(SecretKey::new(&[0x11; 16]).unwrap());
        envelope = envelope
            .with_keyring(keyring)
            .with_verify_incoming(config & 4 != 0);
    }
    let Ok(body) = envelope.open_packet(datagram) else {
        return;
    };
    let limits = envelope.limits().clone();
    for_each_message(&body, &limits, &mut |m| {
        if let Ok(m) = m {
            let mut again = Vec::new();
            m.encode(Transport::Packet, &mut again);
            assert_eq!(
                Message::decode(&again, Transport::Packet, &limits).as_ref(),
                Ok(&m)
            );
        }
    });
});
