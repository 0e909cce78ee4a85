//! Where one message ends on a TCP stream (docs/protocol.md §6.1).
//!
//! Encrypted frames carry their length, but plain messages do not: a Go
//! peer writes a push/pull as back-to-back msgpack values and raw state
//! bytes and then waits for the reply without closing. So the reader must
//! find the end by parsing as the bytes arrive. The framer needs no keys:
//! it only measures; [`Envelope::open_stream`](super::Envelope::open_stream)
//! then checks the label, decrypts and decompresses.

use super::message::{decode_push_pull_header, decode_struct};
use super::msgpack::Reader;
use super::{Limits, MessageType, WireError};

/// Which end of a stream is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRole {
    /// The accepting side reads the dialler's message, which may start with
    /// a label header.
    Accept,
    /// The dialling side reads the reply, which never has a label header.
    Reply,
}

/// What the bytes read so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet: read more and call again with all the bytes.
    NeedMore,
    /// The first `len` bytes are one whole message (label header included).
    Complete {
        /// Bytes the message spans.
        len: usize,
    },
}

/// Incremental measurement of the one message a stream carries.
///
/// Call [`frame`](Self::frame) with every byte read so far (the same buffer,
/// grown) until it says [`Frame::Complete`]. A plain push/pull is measured
/// member by member and the framer remembers how far it got, so feeding a
/// large state in small reads costs linear, not quadratic, time.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    role: StreamRole,
    limits: Limits,
    /// For a plain push/pull: the offset after the members measured so far,
    /// members still to measure, and the user state length.
    push_pull: Option<(usize, usize, usize)>,
}

impl StreamFramer {
    /// A framer for one stream message read by `role`.
    pub fn new(role: StreamRole, limits: Limits) -> Self {
        StreamFramer {
            role,
            limits,
            push_pull: None,
        }
    }

    /// The side this framer reads for.
    pub fn role(&self) -> StreamRole {
        self.role
    }

    /// Measures the message at the start of `buf` (all bytes read so far).
    ///
    /// Errors are final: the stream carries something that is not a valid
    /// message, or more than [`Limits`] allow.
    pub fn frame(&mut self, buf: &[u8]) -> Result<Frame, WireError> {
        match self.measure(buf) {
            Ok(len) => Ok(Frame::Complete { len }),
            Err(WireError::Truncated) => {
                self.limits.check(
                    "max_stream_message",
                    buf.len(),
                    self.limits.max_stream_message,
                )?;
                Ok(Frame::NeedMore)
            }
            Err(e) => Err(e),
        }
    }

    /// The message's length, or `Truncated` if it goes past `buf`.
    fn measure(&mut self, buf: &[u8]) -> Result<usize, WireError> {
        let start = match self.role {
            StreamRole::Accept => label_header_len(buf)?,
            StreamRole::Reply => 0,
        };
        let ty = *buf.get(start).ok_or(WireError::Truncated)?;
        let body = start + 1;
        let mut r = Reader::new(buf.get(body..).unwrap_or(&[]));
        match MessageType::from_byte(ty) {
            Some(MessageType::Encrypt) => {
                let len = r.take(4)?;
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                self.limits
                    .check("max_stream_frame", len, self.limits.max_stream_frame)?;
                r.take(len)?;
            }
            Some(
                MessageType::Compress | MessageType::Ping | MessageType::Ack | MessageType::Error,
            ) => {
                // A declared length past the limit is refused on sight.
                let room = self.limits.max_stream_message.saturating_sub(body);
                r.skip_value_within(room, "max_stream_message")?;
            }
            Some(MessageType::User) => {
                let mut len = 0i64;
                decode_struct(&mut r, &["UserMsgLen"], |_, r| {
                    len = r.i64("UserMsgLen")?;
                    Ok(())
                })?;
                let len = usize::try_from(len).map_err(|_| WireError::IntegerOutOfRange {
                    field: "UserMsgLen",
                })?;
                self.limits
                    .check("max_user_message", len, self.limits.max_user_message)?;
                r.take(len)?;
            }
            Some(MessageType::PushPull) => return self.measure_push_pull(buf, body),
            Some(_) => return Err(WireError::UnexpectedMessageType(ty)),
            None => return Err(WireError::UnknownMessageType(ty)),
        }
        Ok(body + r.position())
    }

    fn measure_push_pull(&mut self, buf: &[u8], body: usize) -> Result<usize, WireError> {
        let (mut offset, mut nodes, user_state) = match self.push_pull {
            Some(progress) => progress,
            None => {
                let mut r = Reader::new(&buf[body..]);
                let (_, nodes, user_state) = decode_push_pull_header(&mut r, &self.limits)?;
                let progress = (body + r.position(), nodes, user_state);
                self.push_pull = Some(progress);
                progress
            }
        };
        while nodes > 0 {
            let mut r = Reader::new(buf.get(offset..).unwrap_or(&[]));
            r.skip_value()?;
            offset += r.position();
            nodes -= 1;
            self.push_pull = Some((offset, nodes, user_state));
        }
        let end = offset.checked_add(user_state).ok_or(WireError::Truncated)?;
        if end > buf.len() {
            return Err(WireError::Truncated);
        }
        Ok(end)
    }
}

/// Length of the label header at the start of `buf` (0 if none).
pub(crate) fn label_header_len(buf: &[u8]) -> Result<usize, WireError> {
    match buf.first() {
        Some(&b) if b == MessageType::Label as u8 => {
            let size = *buf.get(1).ok_or(WireError::Truncated)? as usize;
            if size == 0 {
                return Err(WireError::BadLabelHeader);
            }
            if buf.len() < 2 + size {
                return Err(WireError::Truncated);
            }
            Ok(2 + size)
        }
        Some(_) => Ok(0),
        None => Err(WireError::Truncated),
    }
}
