//! Encryption keys, the keyring, and memberlist's AES-GCM payload format.
//!
//! An encrypted payload is `vsn (1) ‖ nonce (12) ‖ GCM ciphertext ‖ tag (16)`
//! (docs/protocol.md §5.6). Version 1 seals the plaintext as is; version 0 first pads
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
mod tests;
