//! The one error type of the codec.

use core::fmt;

/// Why bytes could not be decoded, opened or accepted.
///
/// Every malformed, truncated, oversized, wrongly keyed or wrongly labelled
/// input maps to one of these; decoding never panics. [`WireError::kind`]
/// gives a short stable name for counting errors in metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The input (a packet, a compound part, a decompressed buffer) is empty.
    Empty,
    /// The input ended inside a value or a frame.
    Truncated,
    /// The first byte names no message type this transport accepts.
    UnknownMessageType(u8),
    /// A message type that exists but is not valid here (e.g. push/pull in a
    /// packet, CRC inside a compound).
    UnexpectedMessageType(u8),
    /// A msgpack value of the wrong family for a field or a map key
    /// (`found` is the marker byte).
    UnexpectedValue {
        /// The Go field name, or `"key"` for a map key, `"body"` for the top level.
        field: &'static str,
        /// The msgpack marker byte that was found.
        found: u8,
    },
    /// An integer that does not fit its field (negative for unsigned, too large).
    IntegerOutOfRange {
        /// The Go field name.
        field: &'static str,
    },
    /// A string field that is not valid UTF-8.
    InvalidUtf8 {
        /// The Go field name.
        field: &'static str,
    },
    /// Nesting of msgpack containers or of compound/compress layers is deeper
    /// than the codec allows.
    TooDeep,
    /// A length or count exceeds its limit.
    TooLarge {
        /// What was too large (a [`Limits`](super::Limits) field name).
        what: &'static str,
        /// The declared or produced size.
        len: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A compound header that is malformed (no count, or fewer length bytes
    /// than the count needs).
    BadCompound,
    /// A CRC-wrapped packet whose checksum does not match.
    ChecksumMismatch {
        /// The checksum carried in the packet.
        expected: u32,
        /// The checksum of the bytes received.
        actual: u32,
    },
    /// A compress message naming an algorithm other than LZW (0).
    UnknownCompression(u64),
    /// The LZW stream is corrupt (bad code, or no end code).
    CorruptCompression,
    /// Decompression produced nothing.
    EmptyDecompression,
    /// An encryption key that is not 16, 24 or 32 bytes long.
    InvalidKeyLength(usize),
    /// An encrypted payload whose version byte is neither 0 nor 1.
    UnknownEncryptionVersion(u8),
    /// An encrypted payload shorter than its version's overhead.
    EncryptedTooShort,
    /// A version-0 payload whose PKCS#7 padding is longer than the plaintext.
    BadPadding,
    /// No key of the keyring opens the payload (wrong key, wrong label, or
    /// tampered bytes).
    DecryptionFailed,
    /// Encrypted input arrived but no keyring is configured.
    EncryptedButNoKeyring,
    /// Plaintext input arrived while encryption is required.
    PlaintextNotAllowed,
    /// Encryption is required for sending but no keyring is configured.
    NoKeyring,
    /// The key is not in the keyring.
    UnknownKey,
    /// The primary key cannot be removed from a keyring.
    CannotRemovePrimaryKey,
    /// A label header that is malformed (missing length, zero length, cut short).
    BadLabelHeader,
    /// A label other than the configured one (or a label where
    /// `skip_inbound_label_check` forbids one).
    LabelMismatch,
    /// A label longer than 255 bytes was configured.
    LabelTooLong(usize),
    /// A message that cannot be encoded (a length or count beyond what the
    /// wire format can carry, e.g. more than 255 compound parts).
    Unencodable(&'static str),
}

impl WireError {
    /// A short, stable name for this kind of error, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::Empty => "empty",
            WireError::Truncated => "truncated",
            WireError::UnknownMessageType(_) => "unknown_message_type",
            WireError::UnexpectedMessageType(_) => "unexpected_message_type",
            WireError::UnexpectedValue { .. } => "unexpected_value",
            WireError::IntegerOutOfRange { .. } => "integer_out_of_range",
            WireError::InvalidUtf8 { .. } => "invalid_utf8",
            WireError::TooDeep => "too_deep",
            WireError::TooLarge { .. } => "too_large",
            WireError::BadCompound => "bad_compound",
            WireError::ChecksumMismatch { .. } => "checksum_mismatch",
            WireError::UnknownCompression(_) => "unknown_compression",
            WireError::CorruptCompression => "corrupt_compression",
            WireError::EmptyDecompression => "empty_decompression",
            WireError::InvalidKeyLength(_) => "invalid_key_length",
            WireError::UnknownEncryptionVersion(_) => "unknown_encryption_version",
            WireError::EncryptedTooShort => "encrypted_too_short",
            WireError::BadPadding => "bad_padding",
            WireError::DecryptionFailed => "decryption_failed",
            WireError::EncryptedButNoKeyring => "encrypted_but_no_keyring",
            WireError::PlaintextNotAllowed => "plaintext_not_allowed",
            WireError::NoKeyring => "no_keyring",
            WireError::UnknownKey => "unknown_key",
            WireError::CannotRemovePrimaryKey => "cannot_remove_primary_key",
            WireError::BadLabelHeader => "bad_label_header",
            WireError::LabelMismatch => "label_mismatch",
            WireError::LabelTooLong(_) => "label_too_long",
            WireError::Unencodable(_) => "unencodable",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Empty => f.write_str("empty message"),
            WireError::Truncated => f.write_str("input ended inside a value or frame"),
            WireError::UnknownMessageType(t) => write!(f, "unknown message type {t}"),
            WireError::UnexpectedMessageType(t) => {
                write!(f, "message type {t} is not valid here")
            }
            WireError::UnexpectedValue { field, found } => {
                write!(f, "unexpected msgpack value 0x{found:02x} for {field}")
            }
            WireError::IntegerOutOfRange { field } => {
                write!(f, "integer out of range for {field}")
            }
            WireError::InvalidUtf8 { field } => write!(f, "{field} is not valid UTF-8"),
            WireError::TooDeep => f.write_str("nesting too deep"),
            WireError::TooLarge { what, len, limit } => {
                write!(f, "{what} of {len} exceeds the limit of {limit}")
            }
            WireError::BadCompound => f.write_str("malformed compound header"),
            WireError::ChecksumMismatch { expected, actual } => write!(
                f,
                "CRC mismatch: packet says {expected:08x}, bytes give {actual:08x}"
            ),
            WireError::UnknownCompression(a) => write!(f, "unknown compression algorithm {a}"),
            WireError::CorruptCompression => f.write_str("corrupt LZW stream"),
            WireError::EmptyDecompression => f.write_str("decompression produced no bytes"),
            WireError::InvalidKeyLength(n) => {
                write!(f, "key is {n} bytes; it must be 16, 24 or 32")
            }
            WireError::UnknownEncryptionVersion(v) => {
                write!(f, "unknown encryption version {v}")
            }
            WireError::EncryptedTooShort => f.write_str("encrypted payload too short"),
            WireError::BadPadding => f.write_str("invalid PKCS#7 padding"),
            WireError::DecryptionFailed => {
                f.write_str("no installed key could decrypt the payload")
            }
            WireError::EncryptedButNoKeyring => {
                f.write_str("input is encrypted but encryption is not configured")
            }
            WireError::PlaintextNotAllowed => {
                f.write_str("input is not encrypted but encryption is required")
            }
            WireError::NoKeyring => f.write_str("encryption requested without a keyring"),
            WireError::UnknownKey => f.write_str("the key is not in the keyring"),
            WireError::CannotRemovePrimaryKey => {
                f.write_str("removing the primary key is not allowed")
            }
            WireError::BadLabelHeader => f.write_str("malformed label header"),
            WireError::LabelMismatch => f.write_str("label does not match the configured label"),
            WireError::LabelTooLong(n) => write!(f, "label of {n} bytes exceeds 255"),
            WireError::Unencodable(why) => write!(f, "cannot encode: {why}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WireError {}
