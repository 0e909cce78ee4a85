//! Arbitrary payloads against a keyring of three keys of different sizes:
//! never a panic, and anything sealed with any installed key opens to the
//! same plaintext.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_core::wire::{EncryptionVersion, Keyring, SecretKey};

fuzz_target!(|data: &[u8]| {
    let mut keyring = Keyring::new(SecretKey::new(&[1; 16]).unwrap());
    keyring.add(SecretKey::new(&[2; 24]).unwrap());
    keyring.add(SecretKey::new(&[3; 32]).unwrap());

    let (aad, payload) = data.split_at(data.len().min(4));
    let _ = keyring.open(payload, aad);

    // Seal with a key chosen by the input, open with the whole ring.
    let mut sealer = keyring.clone();
    let chosen = sealer
        .keys()
        .nth(data.first().map_or(0, |b| *b as usize % 3))
        .unwrap()
        .clone();
    sealer.use_key(&chosen).unwrap();
    let version = if data.len() % 2 == 0 {
        EncryptionVersion::V0
    } else {
        EncryptionVersion::V1
    };
    let mut sealed = Vec::new();
    sealer.seal(version, [0x5a; 12], payload, aad, &mut sealed);
    assert_eq!(sealed.len(), version.sealed_len(payload.len()));
    assert_eq!(keyring.open(&sealed, aad).as_deref(), Ok(payload));
});
