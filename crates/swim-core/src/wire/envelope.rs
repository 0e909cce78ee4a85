//! The layers around a message, applied in Go's order (docs/protocol.md §5, §6):
//! label outermost, then encryption, then CRC, then compression.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::compound::{decompress_body, encode_compress};
use super::framer::label_header_len;
use super::{
    EncryptionVersion, Frame, Keyring, Limits, MessageType, StreamFramer, StreamRole, WireError,
};

/// Bytes of the CRC layer: type byte and checksum.
const CRC_HEADER: usize = 5;
/// Bytes of an encrypted stream frame header: type byte and length.
const FRAME_HEADER: usize = 5;

/// What one node does to every packet and stream message it sends and
/// receives: label, encryption, CRC and compression, with Go's defaults
/// (compression on, no label, no keyring, verification both ways).
///
/// # Example
///
/// A cluster moving to encryption: every node has the key, and a packet
/// sealed by one is opened by another.
///
/// ```
/// use swim_core::wire::{Envelope, Keyring, SecretKey};
///
/// let key = SecretKey::new(&[7; 32]).unwrap();
/// let envelope = Envelope::new().with_keyring(Keyring::new(key)).with_label(b"prod").unwrap();
///
/// let mut datagram = Vec::new();
/// envelope.seal_packet(b"\x08hello", false, || [1; 12], &mut datagram);
/// assert_eq!(&datagram[..6], b"\xf4\x04prod");
/// assert_eq!(&*envelope.open_packet(&datagram).unwrap(), b"\x08hello");
///
/// let stranger = Envelope::new().with_label(b"prod").unwrap();
/// assert!(stranger.open_packet(&datagram).is_ok()); // opens, but is gibberish
/// let other_label = Envelope::new().with_label(b"dev").unwrap();
/// assert!(other_label.open_packet(&datagram).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Envelope {
    label: Vec<u8>,
    skip_inbound_label_check: bool,
    keyring: Option<Keyring>,
    encryption_version: EncryptionVersion,
    verify_incoming: bool,
    verify_outgoing: bool,
    compression: bool,
    limits: Limits,
}

impl Default for Envelope {
    fn default() -> Self {
        Self::new()
    }
}

/// The result of [`Envelope::read_stream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRead<'a> {
    /// Not a whole message yet.
    NeedMore,
    /// One whole message, opened (type byte first), and how many bytes of
    /// the stream it used.
    Message {
        /// The plaintext message, ready for [`Message::decode`](super::Message::decode).
        message: Cow<'a, [u8]>,
        /// Bytes of the stream the message spanned.
        consumed: usize,
    },
}

impl Envelope {
    /// Go's defaults: compression on, no label, no encryption.
    pub fn new() -> Self {
        Envelope {
            label: Vec::new(),
            skip_inbound_label_check: false,
            keyring: None,
            encryption_version: EncryptionVersion::V1,
            verify_incoming: true,
            verify_outgoing: true,
            compression: true,
            limits: Limits::default(),
        }
    }

    /// Sets the cluster label (memberlist ≥ 0.3; empty for none). Fails if
    /// it is longer than 255 bytes.
    pub fn with_label(mut self, label: &[u8]) -> Result<Self, WireError> {
        if label.len() > u8::MAX as usize {
            return Err(WireError::LabelTooLong(label.len()));
        }
        self.label = label.to_vec();
        Ok(self)
    }

    /// Accept only unlabelled input and treat it as carrying our label
    /// (Go's `SkipInboundLabelCheck`, for moving a cluster to labels).
    pub fn with_skip_inbound_label_check(mut self, skip: bool) -> Self {
        self.skip_inbound_label_check = skip;
        self
    }

    /// Encrypts with the keyring's primary key and decrypts with any of its keys.
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The payload format for sealing ([`EncryptionVersion::V0`] for nodes
    /// at protocol version 1). Both are always accepted.
    pub fn with_encryption_version(mut self, version: EncryptionVersion) -> Self {
        self.encryption_version = version;
        self
    }

    /// Whether plaintext input is refused when a keyring is set (Go's
    /// `GossipVerifyIncoming`).
    pub fn with_verify_incoming(mut self, verify: bool) -> Self {
        self.verify_incoming = verify;
        self
    }

    /// Whether output is encrypted when a keyring is set (Go's
    /// `GossipVerifyOutgoing`).
    pub fn with_verify_outgoing(mut self, verify: bool) -> Self {
        self.verify_outgoing = verify;
        self
    }

    /// Whether messages are compressed (packets only when that is smaller,
    /// streams always).
    pub fn with_compression(mut self, compression: bool) -> Self {
        self.compression = compression;
        self
    }

    /// The size bounds for decoding.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The configured label.
    pub fn label(&self) -> &[u8] {
        &self.label
    }

    /// The keyring, if encryption is configured.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_ref()
    }

    /// The keyring, for key rotation.
    pub fn keyring_mut(&mut self) -> Option<&mut Keyring> {
        self.keyring.as_mut()
    }

    /// The size bounds for decoding.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether output is encrypted.
    pub fn encrypts(&self) -> bool {
        self.keyring.is_some() && self.verify_outgoing
    }

    /// Bytes the outer layers may add to a packet, which Go takes off the
    /// piggyback budget: encryption overhead and label header (not the CRC,
    /// which Go never budgets).
    pub fn packet_overhead(&self) -> usize {
        let encryption = if self.encrypts() {
            self.encryption_version.overhead()
        } else {
            0
        };
        let label = if self.label.is_empty() {
            0
        } else {
            2 + self.label.len()
        };
        encryption + label
    }

    /// Appends the label header a dialler writes first on a new stream
    /// (nothing when there is no label).
    pub fn write_stream_label(&self, out: &mut Vec<u8>) {
        self.write_label(out);
    }

    fn write_label(&self, out: &mut Vec<u8>) {
        if !self.label.is_empty() {
            out.push(MessageType::Label as u8);
            out.push(self.label.len() as u8);
            out.extend_from_slice(&self.label);
        }
    }

    /// Appends a datagram carrying `message` (one encoded message or
    /// compound) to `out`: compressed if enabled and smaller, CRC-wrapped if
    /// `crc` (for peers at protocol 5 and up), encrypted if configured,
    /// labelled if configured. `nonce` is called only when encrypting.
    pub fn seal_packet(
        &self,
        message: &[u8],
        crc: bool,
        nonce: impl FnOnce() -> [u8; 12],
        out: &mut Vec<u8>,
    ) {
        let compressed = (self.compression && compression_may_shrink(message.len())).then(|| {
            let mut c = Vec::with_capacity(message.len());
            encode_compress(message, &mut c);
            c
        });
        let body = match &compressed {
            Some(c) if c.len() < message.len() => c.as_slice(),
            _ => message,
        };
        self.write_label(out);
        let checksum = crc.then(|| crc32fast::hash(body).to_be_bytes());
        match &self.keyring {
            Some(keyring) if self.verify_outgoing => {
                let plain;
                let plain = match checksum {
                    Some(sum) => {
                        let mut p = Vec::with_capacity(CRC_HEADER + body.len());
                        p.push(MessageType::Crc as u8);
                        p.extend_from_slice(&sum);
                        p.extend_from_slice(body);
                        plain = p;
                        plain.as_slice()
                    }
                    None => body,
                };
                keyring.seal(self.encryption_version, nonce(), plain, &self.label, out);
            }
            _ => {
                if let Some(sum) = checksum {
                    out.push(MessageType::Crc as u8);
                    out.extend_from_slice(&sum);
                }
                out.extend_from_slice(body);
            }
        }
    }

    /// Removes the outer layers of a received datagram (label, encryption,
    /// CRC; docs/protocol.md §5.2 steps 1–3). Hand the result to
    /// [`for_each_message`](super::for_each_message).
    pub fn open_packet<'a>(&self, datagram: &'a [u8]) -> Result<Cow<'a, [u8]>, WireError> {
        if datagram.is_empty() {
            return Err(WireError::Empty);
        }
        let start = match label_header_len(datagram) {
            Err(WireError::Truncated) => return Err(WireError::BadLabelHeader),
            other => other?,
        };
        self.check_label(datagram.get(2..start))?;
        let rest = &datagram[start..];
        let mut body = match &self.keyring {
            Some(keyring) => match keyring.open(rest, &self.label) {
                Ok(plain) => Cow::Owned(plain),
                // Go's migration mode: undecryptable input is taken as plaintext.
                Err(_) if !self.verify_incoming => Cow::Borrowed(rest),
                Err(e) => return Err(e),
            },
            None => Cow::Borrowed(rest),
        };
        if body.len() >= CRC_HEADER && body[0] == MessageType::Crc as u8 {
            let expected = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
            let actual = crc32fast::hash(&body[CRC_HEADER..]);
            if expected != actual {
                return Err(WireError::ChecksumMismatch { expected, actual });
            }
            body = match body {
                Cow::Borrowed(b) => Cow::Borrowed(&b[CRC_HEADER..]),
                Cow::Owned(mut v) => {
                    v.drain(..CRC_HEADER);
                    Cow::Owned(v)
                }
            };
        }
        if body.is_empty() {
            return Err(WireError::Empty);
        }
        Ok(body)
    }

    /// Checks a received label (`None`: no header) against ours.
    fn check_label(&self, received: Option<&[u8]>) -> Result<(), WireError> {
        let ok = match received {
            // With the check skipped, only unlabelled input is taken.
            Some(_) if self.skip_inbound_label_check => false,
            None if self.skip_inbound_label_check => true,
            Some(label) => label == self.label.as_slice(),
            None => self.label.is_empty(),
        };
        if ok {
            Ok(())
        } else {
            Err(WireError::LabelMismatch)
        }
    }

    /// Appends one stream message (`message` encoded for
    /// [`Transport::Stream`](super::Transport::Stream)) to `out`: always
    /// compressed if enabled, then framed and encrypted if configured. The
    /// dialler writes [`write_stream_label`](Self::write_stream_label) before it.
    pub fn seal_stream(&self, message: &[u8], nonce: impl FnOnce() -> [u8; 12], out: &mut Vec<u8>) {
        let compressed = self.compression.then(|| {
            let mut c = Vec::with_capacity(message.len());
            encode_compress(message, &mut c);
            c
        });
        let plain = compressed.as_deref().unwrap_or(message);
        match &self.keyring {
            Some(keyring) if self.verify_outgoing => {
                let len = self.encryption_version.sealed_len(plain.len()) as u32;
                let mut aad = Vec::with_capacity(FRAME_HEADER + self.label.len());
                aad.push(MessageType::Encrypt as u8);
                aad.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&aad);
                aad.extend_from_slice(&self.label);
                keyring.seal(self.encryption_version, nonce(), plain, &aad, out);
            }
            _ => out.extend_from_slice(plain),
        }
    }

    /// Opens one whole stream message as measured by a [`StreamFramer`]
    /// (`frame` is exactly its bytes): checks the label (accepting side),
    /// decrypts, decompresses. Returns the plaintext message, type byte first.
    pub fn open_stream<'a>(
        &self,
        frame: &'a [u8],
        role: StreamRole,
    ) -> Result<Cow<'a, [u8]>, WireError> {
        let mut start = 0;
        if role == StreamRole::Accept {
            start = label_header_len(frame)?;
            self.check_label(frame.get(2..start))?;
        }
        let rest = &frame[start..];
        let (&ty, body) = rest.split_first().ok_or(WireError::Empty)?;
        let plain: Cow<'a, [u8]> = if ty == MessageType::Encrypt as u8 {
            let keyring = self
                .keyring
                .as_ref()
                .ok_or(WireError::EncryptedButNoKeyring)?;
            if body.len() < 4 {
                return Err(WireError::Truncated);
            }
            let mut aad = Vec::with_capacity(FRAME_HEADER + self.label.len());
            aad.extend_from_slice(&rest[..FRAME_HEADER]);
            aad.extend_from_slice(&self.label);
            Cow::Owned(keyring.open(&body[4..], &aad)?)
        } else if self.keyring.is_some() && self.verify_incoming {
            return Err(WireError::PlaintextNotAllowed);
        } else {
            Cow::Borrowed(rest)
        };
        match plain.split_first() {
            None => Err(WireError::Empty),
            Some((&t, body)) if t == MessageType::Compress as u8 => Ok(Cow::Owned(
                decompress_body(body, self.limits.max_decompressed)?,
            )),
            Some(_) => Ok(plain),
        }
    }

    /// Frames and opens in one step: feed every byte read so far from a
    /// stream; get [`StreamRead::NeedMore`] or the opened message.
    pub fn read_stream<'a>(
        &self,
        framer: &mut StreamFramer,
        buf: &'a [u8],
    ) -> Result<StreamRead<'a>, WireError> {
        match framer.frame(buf)? {
            Frame::NeedMore => Ok(StreamRead::NeedMore),
            Frame::Complete { len } => Ok(StreamRead::Message {
                message: self.open_stream(&buf[..len], framer.role())?,
                consumed: len,
            }),
        }
    }
}

/// Whether compressing `n` bytes could give fewer than `n`. Greedy LZW's
/// k-th code stands for at most k bytes, so k codes cover at most k(k+1)/2
/// bytes; every code, the leading Clear and the final EOF take at least 9
/// bits; the compress message adds 13 bytes around a short LZW stream. When
/// even that best case is not smaller, Go would discard the result, so
/// skipping the attempt sends the same bytes, sooner (a bare ack is ~20 bytes).
fn compression_may_shrink(n: usize) -> bool {
    const FRAMING: usize = 13; // 09 82 a4"Algo" 00 a3"Buf" and a fixstr header
    let mut k = 0;
    while k * (k + 1) / 2 < n {
        k += 1;
        if k > 32 {
            return true; // long enough that only trying tells
        }
    }
    FRAMING + (9 * (k + 2)).div_ceil(8) < n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_compression_never_skips_a_win() {
        // All-equal bytes are LZW's best case: the bound must hold for them.
        let mut skipped = 0;
        for n in 1..600 {
            if !compression_may_shrink(n) {
                skipped += 1;
                for byte in [0u8, 0x5a] {
                    let mut c = Vec::new();
                    encode_compress(&alloc::vec![byte; n], &mut c);
                    assert!(
                        c.len() >= n,
                        "{n} bytes of {byte:#x} compress to {}",
                        c.len()
                    );
                }
            }
        }
        assert!(skipped >= 20, "small messages are skipped ({skipped})");
        assert!(!compression_may_shrink(18), "an ack is never compressed");
        assert!(compression_may_shrink(600));
    }
}
