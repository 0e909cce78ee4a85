use super::*;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;

/// One encryption vector from vectors.json, with its payload cut out.
struct Vector {
    name: String,
    key: Vec<u8>,
    nonce: [u8; 12],
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    version: EncryptionVersion,
    payload: Vec<u8>,
}

const ENCRYPTED_VECTORS: [&str; 8] = [
    "encrypted_v1_aes128_ping",
    "encrypted_v1_aes192_ping",
    "encrypted_v1_aes256_crc_ping",
    "encrypted_v0_aes128_pkcs7_ping",
    "pushpull_encrypted_stream",
    "pushpull_encrypted_compressed_stream",
    "labeled_encrypted_ping_upstream",
    "labeled_pushpull_encrypted_stream_upstream",
];

fn vectors() -> Vec<Vector> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/vectors.json")).unwrap();
    let mut found = Vec::new();
    for v in json["vectors"].as_array().unwrap() {
        let extra = &v["extra"];
        if extra.get("key_hex").is_none() {
            continue;
        }
        let name = v["name"].as_str().unwrap();
        let hex_field = |k: &str| hex::decode(extra[k].as_str().unwrap()).unwrap();
        let whole = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        // Where the payload starts: after the label header (f4 04 "prod")
        // and/or the stream frame header (0a ‖ u32 BE length).
        let skip = match name {
            "labeled_encrypted_ping_upstream" => 6,
            "pushpull_encrypted_stream" | "pushpull_encrypted_compressed_stream" => 5,
            "labeled_pushpull_encrypted_stream_upstream" => 11,
            _ => 0,
        };
        let payload = whole[skip..].to_vec();
        // One vector omits the field; its payload's first byte says it.
        let version = match extra["encryption_version"]
            .as_u64()
            .unwrap_or(u64::from(payload[0]))
        {
            0 => EncryptionVersion::V0,
            1 => EncryptionVersion::V1,
            other => panic!("{name}: version {other}"),
        };
        assert_eq!(payload[0], version.byte(), "{name}");
        found.push(Vector {
            name: name.into(),
            key: hex_field("key_hex"),
            nonce: hex_field("nonce_hex").try_into().unwrap(),
            aad: hex_field("aad_hex"),
            plaintext: hex_field("plaintext_hex"),
            version,
            payload,
        });
    }
    let mut names: Vec<&str> = found.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = ENCRYPTED_VECTORS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    found
}

fn key(bytes: &[u8]) -> SecretKey {
    SecretKey::new(bytes).unwrap()
}

fn ring(bytes: &[u8]) -> Keyring {
    Keyring::new(key(bytes))
}

/// A ring of three keys of different sizes where `bytes` is the last.
fn ring_with_key_last(bytes: &[u8]) -> Keyring {
    let mut r = ring(&[0xaa; 32]);
    r.add(key(&[0xbb; 24]));
    r.add(key(bytes));
    assert_eq!(r.keys().last().unwrap().as_bytes(), bytes);
    r
}

#[test]
fn vectors_open() {
    for v in vectors() {
        let got = ring(&v.key).open(&v.payload, &v.aad);
        assert_eq!(got.as_deref(), Ok(&v.plaintext[..]), "{}", v.name);
        let got = ring_with_key_last(&v.key).open(&v.payload, &v.aad);
        assert_eq!(got.as_deref(), Ok(&v.plaintext[..]), "{} (3 keys)", v.name);
    }
}

#[test]
fn vectors_seal_byte_for_byte() {
    for v in vectors() {
        let mut out = vec![0xee, 0xff];
        ring(&v.key).seal(v.version, v.nonce, &v.plaintext, &v.aad, &mut out);
        assert_eq!(&out[..2], &[0xee, 0xff], "{}: prefix kept", v.name);
        assert_eq!(
            hex::encode(&out[2..]),
            hex::encode(&v.payload),
            "{}",
            v.name
        );
        assert_eq!(
            out.len() - 2,
            v.version.sealed_len(v.plaintext.len()),
            "{}",
            v.name
        );
        assert!(out.len() - 2 <= v.plaintext.len() + v.version.overhead());

        // Sealing uses the primary, wherever the key was installed.
        let mut r = ring_with_key_last(&v.key);
        r.use_key(&key(&v.key)).unwrap();
        let mut again = Vec::new();
        r.seal(v.version, v.nonce, &v.plaintext, &v.aad, &mut again);
        assert_eq!(again, v.payload, "{} via use_key", v.name);
    }
}

#[test]
fn wrong_key_fails() {
    for v in vectors() {
        let mut wrong = v.key.clone();
        wrong[0] ^= 1;
        let mut r = ring(&wrong);
        r.add(key(&[0x42; 16]));
        r.add(key(&[0x42; 32]));
        assert_eq!(
            r.open(&v.payload, &v.aad),
            Err(WireError::DecryptionFailed),
            "{}",
            v.name
        );
    }
}

#[test]
fn flipped_bits_fail() {
    for v in vectors() {
        let r = ring(&v.key);
        // Byte 0 (the version) is not authenticated; see below.
        for i in 1..v.payload.len() {
            for bit in 0..8 {
                let mut p = v.payload.clone();
                p[i] ^= 1 << bit;
                assert_eq!(
                    r.open(&p, &v.aad),
                    Err(WireError::DecryptionFailed),
                    "{} byte {i} bit {bit}",
                    v.name
                );
            }
        }
    }
}

#[test]
fn flipped_version_bits() {
    for v in vectors() {
        let r = ring(&v.key);
        for bit in 0..8 {
            let mut p = v.payload.clone();
            p[0] ^= 1 << bit;
            let got = r.open(&p, &v.aad);
            if bit == 0 {
                // 0 <-> 1 swaps the padding rule over the same
                // authenticated bytes, exactly as in Go.
                match v.version {
                    EncryptionVersion::V1 => {
                        let pad = usize::from(*v.plaintext.last().unwrap());
                        let want = v.plaintext[..v.plaintext.len() - pad].to_vec();
                        assert_eq!(got, Ok(want), "{}", v.name);
                    }
                    EncryptionVersion::V0 => {
                        let got = got.unwrap();
                        assert!(got.starts_with(&v.plaintext), "{}", v.name);
                        assert_eq!(got.len() % 16, 0, "{}", v.name);
                    }
                }
            } else {
                assert_eq!(
                    got,
                    Err(WireError::UnknownEncryptionVersion(p[0])),
                    "{}",
                    v.name
                );
            }
        }
    }
}

#[test]
fn wrong_aad_fails() {
    for v in vectors() {
        let r = ring(&v.key);
        let mut aad = v.aad.clone();
        aad.push(0);
        assert_eq!(r.open(&v.payload, &aad), Err(WireError::DecryptionFailed));
        if !v.aad.is_empty() {
            assert_eq!(r.open(&v.payload, &[]), Err(WireError::DecryptionFailed));
            let mut aad = v.aad.clone();
            aad[0] ^= 0x80;
            assert_eq!(r.open(&v.payload, &aad), Err(WireError::DecryptionFailed));
        }
    }
}

#[test]
fn unknown_version() {
    let v = &vectors()[0];
    let r = ring(&v.key);
    let mut p = v.payload.clone();
    p[0] = 2;
    assert_eq!(
        r.open(&p, &v.aad),
        Err(WireError::UnknownEncryptionVersion(2))
    );
    // The version is checked before the length.
    assert_eq!(
        r.open(&[0xff], &[]),
        Err(WireError::UnknownEncryptionVersion(255))
    );
}

#[test]
fn truncations_and_extensions() {
    for v in vectors() {
        let r = ring(&v.key);
        let min = v.version.overhead();
        for len in 0..v.payload.len() {
            let got = r.open(&v.payload[..len], &v.aad);
            let want = if len < min {
                WireError::EncryptedTooShort
            } else {
                WireError::DecryptionFailed
            };
            assert_eq!(got, Err(want), "{} len {len}", v.name);
        }
        let mut longer = v.payload.clone();
        longer.push(0);
        assert_eq!(r.open(&longer, &v.aad), Err(WireError::DecryptionFailed));
    }
}

#[test]
fn minimum_lengths() {
    let r = ring(&[7; 16]);
    assert_eq!(r.open(&[], &[]), Err(WireError::EncryptedTooShort));
    assert_eq!(r.open(&[1; 28], &[]), Err(WireError::EncryptedTooShort));
    assert_eq!(r.open(&[1; 29], &[]), Err(WireError::DecryptionFailed));
    let mut v0 = [0u8; 44];
    assert_eq!(r.open(&v0, &[]), Err(WireError::EncryptedTooShort));
    v0[0] = 1; // the same 44 bytes are long enough for version 1
    assert_eq!(r.open(&v0, &[]), Err(WireError::DecryptionFailed));
    assert_eq!(r.open(&[0; 45], &[]), Err(WireError::DecryptionFailed));

    // The smallest payloads round-trip.
    for version in [EncryptionVersion::V0, EncryptionVersion::V1] {
        let mut out = Vec::new();
        r.seal(version, [3; 12], &[], &[], &mut out);
        assert_eq!(out.len(), version.sealed_len(0));
        assert_eq!(r.open(&out, &[]), Ok(Vec::new()));
    }
}

#[test]
fn v0_padding() {
    let r = ring(&[9; 24]);
    for len in 0..=48 {
        let plaintext: Vec<u8> = (0..len as u8).collect();
        let mut out = Vec::new();
        r.seal(
            EncryptionVersion::V0,
            [len as u8; 12],
            &plaintext,
            b"x",
            &mut out,
        );
        let pad = 16 - len % 16;
        assert_eq!(out.len(), 29 + len + pad);
        assert_eq!(out.len(), EncryptionVersion::V0.sealed_len(len));
        assert!(out.len() <= len + EncryptionVersion::V0.overhead());
        // Reading it as version 1 exposes the PKCS#7 padding itself.
        out[0] = 1;
        let padded = r.open(&out, b"x").unwrap();
        assert_eq!(&padded[..len], &plaintext[..]);
        assert!(padded[len..].iter().all(|&b| usize::from(b) == pad));
    }
}

#[test]
fn v0_bad_padding() {
    let r = ring(&[5; 16]);
    // A plaintext of 16 bytes whose last byte claims 17 bytes of padding,
    // sealed as version 1 and relabelled as version 0.
    let mut plaintext = [0u8; 16];
    plaintext[15] = 17;
    let mut out = Vec::new();
    r.seal(EncryptionVersion::V1, [1; 12], &plaintext, &[], &mut out);
    out[0] = 0;
    assert_eq!(r.open(&out, &[]), Err(WireError::BadPadding));
    // Exactly the whole plaintext is fine (unvalidated, like Go).
    plaintext[15] = 16;
    out.clear();
    r.seal(EncryptionVersion::V1, [1; 12], &plaintext, &[], &mut out);
    out[0] = 0;
    assert_eq!(r.open(&out, &[]), Ok(Vec::new()));
    // A zero pad count strips nothing.
    plaintext[15] = 0;
    out.clear();
    r.seal(EncryptionVersion::V1, [1; 12], &plaintext, &[], &mut out);
    out[0] = 0;
    assert_eq!(r.open(&out, &[]), Ok(plaintext.to_vec()));
}

#[test]
fn overheads() {
    assert_eq!(EncryptionVersion::V0.overhead(), 45);
    assert_eq!(EncryptionVersion::V1.overhead(), 29);
    assert_eq!(EncryptionVersion::default(), EncryptionVersion::V1);
    assert_eq!(EncryptionVersion::V1.sealed_len(100), 129);
    assert_eq!(EncryptionVersion::V0.sealed_len(0), 45);
    assert_eq!(EncryptionVersion::V0.sealed_len(15), 45);
    assert_eq!(EncryptionVersion::V0.sealed_len(16), 61);
    assert_eq!(EncryptionVersion::V0.sealed_len(usize::MAX), usize::MAX);
    assert_eq!(EncryptionVersion::V1.sealed_len(usize::MAX), usize::MAX);
}

#[test]
fn key_lengths() {
    for len in [0, 1, 15, 17, 23, 25, 31, 33, 64] {
        assert_eq!(
            SecretKey::new(&vec![1; len]),
            Err(WireError::InvalidKeyLength(len))
        );
        assert_eq!(
            SecretKey::try_from(&vec![1; len][..]),
            Err(WireError::InvalidKeyLength(len))
        );
    }
    for len in [16, 24, 32] {
        let bytes: Vec<u8> = (0..len as u8).collect();
        let k = SecretKey::try_from(&bytes[..]).unwrap();
        assert_eq!(k.as_bytes(), &bytes[..]);
        assert_eq!(k.clone(), k);
    }
    assert_ne!(key(&[1; 16]), key(&[2; 16]));
    assert_ne!(key(&[1; 16]), key(&[1; 32]));
}

#[test]
fn debug_hides_bytes() {
    let k = key(&[0xab; 16]);
    let s = alloc::format!("{k:?}");
    assert_eq!(s, "SecretKey { len: 16, .. }");
    let mut r = Keyring::new(k);
    r.add(key(&[0xcd; 32]));
    let s = alloc::format!("{r:?}");
    assert_eq!(s, "Keyring { keys: 2 }");
    assert!(!alloc::format!("{r:#?}").contains("171")); // 0xab
}

fn ring_bytes(r: &Keyring) -> Vec<Vec<u8>> {
    r.keys().map(|k| k.as_bytes().to_vec()).collect()
}

#[test]
fn keyring_rules() {
    let (a, b, c, d) = ([1u8; 16], [2u8; 24], [3u8; 32], [4u8; 16]);
    let mut r = ring(&a);
    assert_eq!(r.len(), 1);
    assert!(!r.is_empty());
    r.add(key(&b));
    r.add(key(&c));
    assert_eq!(ring_bytes(&r), [a.to_vec(), b.to_vec(), c.to_vec()]);
    assert_eq!(r.primary().as_bytes(), a);

    // Adding an installed key is a no-op and keeps its position.
    r.add(key(&b));
    r.add(key(&a));
    assert_eq!(ring_bytes(&r), [a.to_vec(), b.to_vec(), c.to_vec()]);

    // use_key moves the key to the front; the rest keep their order.
    r.use_key(&key(&c)).unwrap();
    assert_eq!(ring_bytes(&r), [c.to_vec(), a.to_vec(), b.to_vec()]);
    r.use_key(&key(&a)).unwrap();
    assert_eq!(ring_bytes(&r), [a.to_vec(), c.to_vec(), b.to_vec()]);
    r.use_key(&key(&a)).unwrap();
    assert_eq!(ring_bytes(&r), [a.to_vec(), c.to_vec(), b.to_vec()]);
    assert_eq!(r.use_key(&key(&d)), Err(WireError::UnknownKey));
    assert_eq!(ring_bytes(&r), [a.to_vec(), c.to_vec(), b.to_vec()]);

    // The primary cannot be removed; an absent key is fine.
    assert_eq!(r.remove(&key(&a)), Err(WireError::CannotRemovePrimaryKey));
    assert_eq!(r.remove(&key(&d)), Ok(()));
    assert_eq!(r.len(), 3);
    assert_eq!(r.remove(&key(&c)), Ok(()));
    assert_eq!(ring_bytes(&r), [a.to_vec(), b.to_vec()]);
    assert_eq!(r.remove(&key(&c)), Ok(()));

    // After a rotation the old primary can go.
    r.use_key(&key(&b)).unwrap();
    assert_eq!(r.remove(&key(&a)), Ok(()));
    assert_eq!(ring_bytes(&r), [b.to_vec()]);
    assert_eq!(r.remove(&key(&b)), Err(WireError::CannotRemovePrimaryKey));
    assert_eq!(r.len(), 1);
}

#[test]
fn rotation_end_to_end() {
    let (old, new) = ([1u8; 16], [2u8; 32]);
    let sender_old = ring(&old);
    let mut receiver = ring(&old);
    receiver.add(key(&new));
    let mut sender = sender_old.clone();
    sender.add(key(&new));
    sender.use_key(&key(&new)).unwrap();

    let mut from_old = Vec::new();
    sender_old.seal(EncryptionVersion::V1, [0; 12], b"hi", b"", &mut from_old);
    let mut from_new = Vec::new();
    sender.seal(EncryptionVersion::V1, [0; 12], b"hi", b"", &mut from_new);
    assert_ne!(from_old, from_new);
    assert_eq!(receiver.open(&from_old, b"").unwrap(), b"hi");
    assert_eq!(receiver.open(&from_new, b"").unwrap(), b"hi");
    // The old-key-only ring cannot read the new key's output.
    assert_eq!(
        sender_old.open(&from_new, b""),
        Err(WireError::DecryptionFailed)
    );
    // Once the old key is removed, its payloads no longer open.
    receiver.use_key(&key(&new)).unwrap();
    receiver.remove(&key(&old)).unwrap();
    assert_eq!(
        receiver.open(&from_old, b""),
        Err(WireError::DecryptionFailed)
    );
}

fn any_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 16),
        proptest::collection::vec(any::<u8>(), 24),
        proptest::collection::vec(any::<u8>(), 32),
    ]
}

fn any_version() -> impl Strategy<Value = EncryptionVersion> {
    prop_oneof![Just(EncryptionVersion::V0), Just(EncryptionVersion::V1)]
}

proptest! {
    #[test]
    fn seal_open_identity(
        key_bytes in any_key(),
        other in any_key(),
        version in any_version(),
        nonce in any::<[u8; 12]>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        aad in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut sender = ring(&key_bytes);
        sender.add(key(&other));
        let mut out = Vec::new();
        sender.seal(version, nonce, &plaintext, &aad, &mut out);
        prop_assert_eq!(out.len(), version.sealed_len(plaintext.len()));
        prop_assert_eq!(out[0], version.byte());
        prop_assert_eq!(&out[1..13], &nonce[..]);
        prop_assert_eq!(sender.open(&out, &aad), Ok(plaintext.clone()));
        // A receiver holding the key in second place opens it too.
        let mut receiver = ring(&other);
        receiver.add(key(&key_bytes));
        prop_assert_eq!(receiver.open(&out, &aad), Ok(plaintext));
    }

    #[test]
    fn open_never_panics(
        payload in proptest::collection::vec(any::<u8>(), 0..120),
        vsn in 0u8..4,
        aad in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut r = ring(&[1; 16]);
        r.add(key(&[2; 24]));
        let _ = r.open(&payload, &aad);
        let mut p = payload;
        if let Some(first) = p.first_mut() {
            *first = vsn;
        }
        match r.open(&p, &aad) {
            Err(WireError::EncryptedTooShort | WireError::DecryptionFailed
                | WireError::UnknownEncryptionVersion(_)) => {}
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
