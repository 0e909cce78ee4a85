//! Encryption keys, the keyring, and memberlist's AES-GCM payload format.
//!
//! An encrypted payload is `vsn (1) ‖ nonce (12) ‖ GCM ciphertext ‖ tag (16)`
//! (WIRE.md §5.6). Version 1 seals the plaintext as is; version 0 first pads
//! it with PKCS#7 to a multiple of 16 bytes. The caller supplies the
//! additional authenticated data (label bytes for packets, frame header plus
//! label for streams) and, for sealing, the nonce; framing lives elsewhere.
//!
//! As in Go, the version byte is not authenticated: it only selects whether
//! padding is stripped after a successful open.

use alloc::vec::Vec;
use core::fmt;

use aes_gcm::aead::consts::{U12, U16, U24, U32};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use zeroize::Zeroize;

use super::WireError;

/// AES-192-GCM with the standard 12-byte nonce (aes-gcm has no alias for it).
type Aes192Gcm = AesGcm<Aes192, U12>;

/// Length of the version byte.
const VERSION_SIZE: usize = 1;
/// Length of the GCM nonce.
const NONCE_SIZE: usize = 12;
/// Length of the GCM tag.
const TAG_SIZE: usize = 16;
/// AES block size, the PKCS#7 padding unit of version 0.
const BLOCK_SIZE: usize = 16;
/// Bytes before the ciphertext: version byte and nonce.
const HEADER_SIZE: usize = VERSION_SIZE + NONCE_SIZE;

/// The key bytes, sized by variant so building a cipher needs no length check.
#[derive(Clone)]
enum KeyBytes {
    Aes128([u8; 16]),
    Aes192([u8; 24]),
    Aes256([u8; 32]),
}

/// An AES key of 16, 24 or 32 bytes (AES-128, AES-192 or AES-256).
///
/// The bytes are zeroed when the key is dropped, and [`Debug`](fmt::Debug)
/// prints only the key's length, never its bytes.
#[derive(Clone)]
pub struct SecretKey {
    bytes: KeyBytes,
}

impl SecretKey {
    /// Copies `bytes` into a new key.
    ///
    /// # Errors
    ///
    /// [`WireError::InvalidKeyLength`] unless `bytes` is 16, 24 or 32 bytes long.
    pub fn new(bytes: &[u8]) -> Result<SecretKey, WireError> {
        let bytes = if let Ok(k) = <[u8; 16]>::try_from(bytes) {
            KeyBytes::Aes128(k)
        } else if let Ok(k) = <[u8; 24]>::try_from(bytes) {
            KeyBytes::Aes192(k)
        } else if let Ok(k) = <[u8; 32]>::try_from(bytes) {
            KeyBytes::Aes256(k)
        } else {
            return Err(WireError::InvalidKeyLength(bytes.len()));
        };
        Ok(SecretKey { bytes })
    }

    /// The raw key bytes (16, 24 or 32 of them).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            KeyBytes::Aes128(k) => k,
            KeyBytes::Aes192(k) => k,
            KeyBytes::Aes256(k) => k,
        }
    }
}

impl TryFrom<&[u8]> for SecretKey {
    type Error = WireError;

    fn try_from(bytes: &[u8]) -> Result<SecretKey, WireError> {
        SecretKey::new(bytes)
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &SecretKey) -> bool {
        // Go compares keys with bytes.Equal; timing here reveals nothing a
        // peer can observe, since keys are only compared on admin calls.
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("len", &self.as_bytes().len())
            .finish_non_exhaustive()
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        match &mut self.bytes {
            KeyBytes::Aes128(k) => k.zeroize(),
            KeyBytes::Aes192(k) => k.zeroize(),
            KeyBytes::Aes256(k) => k.zeroize(),
        }
    }
}

/// The two payload formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncryptionVersion {
    /// PKCS#7-padded plaintext (used by nodes at protocol version 1).
    V0,
    /// Unpadded plaintext (the default, used at protocol version 2 and up).
    #[default]
    V1,
}

impl EncryptionVersion {
    /// Most bytes sealing adds to a plaintext (45 for V0, 29 for V1): the
    /// amount Go subtracts from the packet budget.
    pub const fn overhead(self) -> usize {
        match self {
            EncryptionVersion::V0 => HEADER_SIZE + BLOCK_SIZE + TAG_SIZE,
            EncryptionVersion::V1 => HEADER_SIZE + TAG_SIZE,
        }
    }

    /// Exact sealed length for a plaintext of `plaintext_len` bytes.
    ///
    /// Saturates at `usize::MAX` rather than overflowing.
    pub const fn sealed_len(self, plaintext_len: usize) -> usize {
        let base = (HEADER_SIZE + TAG_SIZE).saturating_add(plaintext_len);
        match self {
            EncryptionVersion::V0 => base.saturating_add(pad_len(plaintext_len)),
            EncryptionVersion::V1 => base,
        }
    }

    /// The version byte written at the front of a payload.
    const fn byte(self) -> u8 {
        match self {
            EncryptionVersion::V0 => 0,
            EncryptionVersion::V1 => 1,
        }
    }
}

/// PKCS#7 pad length for version 0: always 1..=16, a full block when aligned.
const fn pad_len(plaintext_len: usize) -> usize {
    BLOCK_SIZE - plaintext_len % BLOCK_SIZE
}

/// A GCM instance with its key schedule and GHASH key already derived.
#[derive(Clone)]
enum Cipher {
    Aes128(Aes128Gcm),
    Aes192(Aes192Gcm),
    Aes256(Aes256Gcm),
}

impl Cipher {
    fn new(key: &SecretKey) -> Cipher {
        // The From<&[u8; N]> conversions borrow the key bytes, so no stray
        // unzeroized copy of the key is made here.
        match &key.bytes {
            KeyBytes::Aes128(k) => {
                Cipher::Aes128(Aes128Gcm::new(<&GenericArray<u8, U16>>::from(k)))
            }
            KeyBytes::Aes192(k) => {
                Cipher::Aes192(Aes192Gcm::new(<&GenericArray<u8, U24>>::from(k)))
            }
            KeyBytes::Aes256(k) => {
                Cipher::Aes256(Aes256Gcm::new(<&GenericArray<u8, U32>>::from(k)))
            }
        }
    }

    fn encrypt(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; TAG_SIZE]> {
        let nonce = <&GenericArray<u8, U12>>::from(nonce);
        let tag = match self {
            Cipher::Aes128(c) => c.encrypt_in_place_detached(nonce, aad, buf),
            Cipher::Aes192(c) => c.encrypt_in_place_detached(nonce, aad, buf),
            Cipher::Aes256(c) => c.encrypt_in_place_detached(nonce, aad, buf),
        };
        tag.ok().map(Into::into)
    }

    /// Decrypts `buf` in place if the tag verifies; otherwise leaves it
    /// untouched (aes-gcm checks the tag before applying the keystream), so
    /// the next key can try the same bytes.
    fn decrypt(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> bool {
        let nonce = <&GenericArray<u8, U12>>::from(nonce);
        let tag = <&GenericArray<u8, U16>>::from(tag);
        match self {
            Cipher::Aes128(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
            Cipher::Aes192(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
            Cipher::Aes256(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
        }
        .is_ok()
    }
}

/// One installed key and its cached cipher.
#[derive(Clone)]
struct Entry {
    key: SecretKey,
    cipher: Cipher,
}

impl Entry {
    fn new(key: SecretKey) -> Entry {
        let cipher = Cipher::new(&key);
        Entry { key, cipher }
    }
}

/// The installed keys, primary first.
///
/// The primary key (index 0) is the only one used to seal; opening tries
/// every key in order, primary first, and the first that authenticates wins.
/// Each key's AES key schedule is computed once, when it is installed.
/// The mutation rules follow memberlist's `keyring.go`. A keyring always
/// holds at least one key. [`Debug`](fmt::Debug) prints only the number of
/// keys.
#[derive(Clone)]
pub struct Keyring {
    entries: Vec<Entry>,
}

impl Keyring {
    /// A keyring holding only `primary`.
    pub fn new(primary: SecretKey) -> Keyring {
        Keyring {
            entries: alloc::vec![Entry::new(primary)],
        }
    }

    /// Installs `key` for opening, after the existing keys. Does nothing if
    /// the key is already installed (its position is kept).
    pub fn add(&mut self, key: SecretKey) {
        if self.position(&key).is_none() {
            self.entries.push(Entry::new(key));
        }
    }

    /// Makes the installed `key` the primary (index 0); the other keys keep
    /// their relative order.
    ///
    /// # Errors
    ///
    /// [`WireError::UnknownKey`] if `key` is not installed.
    pub fn use_key(&mut self, key: &SecretKey) -> Result<(), WireError> {
        let index = self.position(key).ok_or(WireError::UnknownKey)?;
        // Rotating the prefix moves the key to the front and shifts the keys
        // before it back by one, which keeps everyone else's order.
        self.entries[..=index].rotate_right(1);
        Ok(())
    }

    /// Uninstalls `key`. Removing a key that is not installed is not an error.
    ///
    /// # Errors
    ///
    /// [`WireError::CannotRemovePrimaryKey`] if `key` is the primary key.
    pub fn remove(&mut self, key: &SecretKey) -> Result<(), WireError> {
        if self.primary() == key {
            return Err(WireError::CannotRemovePrimaryKey);
        }
        self.entries.retain(|e| &e.key != key);
        Ok(())
    }

    /// The key used to seal.
    pub fn primary(&self) -> &SecretKey {
        // `entries` is never empty: `new` installs a key and `remove` refuses
        // to remove the primary, so the first entry always exists.
        &self.entries[0].key
    }

    /// The installed keys, primary first.
    pub fn keys(&self) -> impl Iterator<Item = &SecretKey> {
        self.entries.iter().map(|e| &e.key)
    }

    /// The number of installed keys; always at least 1.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always `false`: a keyring holds at least its primary key. Provided
    /// alongside [`len`](Keyring::len) for API convention.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends `vsn ‖ nonce ‖ ciphertext ‖ tag` (sealed with the primary key)
    /// to `out`.
    ///
    /// The nonce comes from the caller (the core has no RNG of its own here,
    /// which also keeps sealing deterministic for tests); it must never repeat
    /// for the same key. Exactly
    /// [`version.sealed_len(plaintext.len())`](EncryptionVersion::sealed_len)
    /// bytes are appended. A plaintext beyond GCM's limit (about 64 GiB),
    /// which no memberlist message approaches, cannot be sealed and leaves
    /// `out` unchanged.
    pub fn seal(
        &self,
        version: EncryptionVersion,
        nonce: [u8; 12],
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.reserve(version.sealed_len(plaintext.len()));
        out.push(version.byte());
        out.extend_from_slice(&nonce);
        let body = out.len();
        out.extend_from_slice(plaintext);
        if version == EncryptionVersion::V0 {
            let pad = pad_len(plaintext.len());
            // pad is 1..=16, so the cast is lossless.
            out.resize(out.len() + pad, pad as u8);
        }
        let sealed = match out.get_mut(body..) {
            Some(buf) => self.entries[0].cipher.encrypt(&nonce, aad, buf),
            None => None,
        };
        match sealed {
            Some(tag) => out.extend_from_slice(&tag),
            None => out.truncate(start),
        }
    }

    /// Opens a payload with the first key that authenticates it, and returns
    /// the plaintext (with version 0's padding stripped).
    ///
    /// # Errors
    ///
    /// * [`WireError::EncryptedTooShort`]: empty, or shorter than the
    ///   version's overhead (29 bytes for version 1, 45 for version 0).
    /// * [`WireError::UnknownEncryptionVersion`]: version byte above 1.
    /// * [`WireError::DecryptionFailed`]: no key authenticates the payload
    ///   with `aad` (wrong key, wrong AAD or tampered bytes).
    /// * [`WireError::BadPadding`]: a version-0 plaintext whose last byte
    ///   claims more padding than there are bytes. Like Go, the padding bytes
    ///   themselves are not checked.
    pub fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, WireError> {
        let (&vsn, rest) = payload.split_first().ok_or(WireError::EncryptedTooShort)?;
        let version = match vsn {
            0 => EncryptionVersion::V0,
            1 => EncryptionVersion::V1,
            v => return Err(WireError::UnknownEncryptionVersion(v)),
        };
        // Go requires encryptedLength(vsn, 0): a version-0 payload must carry
        // at least one block of padding.
        if payload.len() < version.sealed_len(0) {
            return Err(WireError::EncryptedTooShort);
        }
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_SIZE>()
            .ok_or(WireError::EncryptedTooShort)?;
        let (ciphertext, tag) = rest
            .split_last_chunk::<TAG_SIZE>()
            .ok_or(WireError::EncryptedTooShort)?;

        // One copy; each key decrypts in place only once its tag verifies.
        let mut buf = ciphertext.to_vec();
        let opened = self
            .entries
            .iter()
            .any(|e| e.cipher.decrypt(nonce, aad, &mut buf, tag));
        if !opened {
            return Err(WireError::DecryptionFailed);
        }
        if version == EncryptionVersion::V0 {
            // Go strips `last byte` bytes unchecked (and would panic on an
            // oversized count); we report it instead.
            let pad = usize::from(*buf.last().ok_or(WireError::BadPadding)?);
            let kept = buf.len().checked_sub(pad).ok_or(WireError::BadPadding)?;
            buf.truncate(kept);
        }
        Ok(buf)
    }

    /// The index of `key`, if installed.
    fn position(&self, key: &SecretKey) -> Option<usize> {
        self.entries.iter().position(|e| &e.key == key)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
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
            serde_json::from_str(include_str!("../../tests/fixtures/vectors.json")).unwrap();
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
}
