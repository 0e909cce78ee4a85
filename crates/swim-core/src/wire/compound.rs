//! Messages inside messages: compound framing (type 7) and compression
//! (type 9), and the walk that unwraps both (docs/protocol.md §5.2 step 4, §5.3, §4.10).

use alloc::vec::Vec;

use super::message::decode_struct;
use super::msgpack::{self, Reader};
use super::{lzw, Limits, Message, MessageType, Transport, WireError};

/// Most parts this codec puts in one compound. memberlist v0.2.2 mis-parses
/// compounds of 128 parts or more (8-bit arithmetic), so never more than 127.
pub const MAX_COMPOUND_PARTS: usize = 127;

/// Bytes a compound adds besides its parts' own: type byte and count.
pub const COMPOUND_OVERHEAD: usize = 2;

/// Bytes a compound adds per part: its u16 length.
pub const COMPOUND_PART_OVERHEAD: usize = 2;

/// Appends `07 ‖ n ‖ n × len (u16 BE) ‖ parts` to `out`.
///
/// Fails without writing if there are no parts or more than
/// [`MAX_COMPOUND_PARTS`], or if a part is empty (v0.2.2 crashes on empty
/// messages) or longer than 65,535 bytes.
pub fn encode_compound(parts: &[&[u8]], out: &mut Vec<u8>) -> Result<(), WireError> {
    if parts.is_empty() {
        return Err(WireError::Unencodable("a compound needs at least one part"));
    }
    if parts.len() > MAX_COMPOUND_PARTS {
        return Err(WireError::Unencodable("more than 127 compound parts"));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(WireError::Unencodable("empty compound part"));
    }
    if parts.iter().any(|p| p.len() > u16::MAX as usize) {
        return Err(WireError::Unencodable("compound part over 65,535 bytes"));
    }
    let total: usize = parts.iter().map(|p| p.len() + COMPOUND_PART_OVERHEAD).sum();
    out.reserve(COMPOUND_OVERHEAD + total);
    out.push(MessageType::Compound as u8);
    out.push(parts.len() as u8);
    for p in parts {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(())
}

/// Packs `messages`, in order, into as few compounds as fit `size` bytes
/// each (what a datagram of that size holds before any envelope), at most
/// [`MAX_COMPOUND_PARTS`] parts each. A message too long for `size` on its
/// own still gets a compound of its own; messages [`encode_compound`]
/// refuses (empty, or over 65,535 bytes) make their compound fail, and it is
/// left out.
///
/// ```
/// use swim_core::wire::{pack_compounds, COMPOUND_OVERHEAD, COMPOUND_PART_OVERHEAD};
///
/// let messages = vec![vec![4u8; 100]; 30];
/// let packets = pack_compounds(messages.iter().map(Vec::as_slice), 1400);
/// // 13 messages of 100 bytes fill 1,400 bytes with their headers.
/// assert_eq!(packets.len(), 3);
/// assert!(packets.iter().all(|p| p.len() <= 1400));
/// assert_eq!(packets[0].len(), COMPOUND_OVERHEAD + 13 * (100 + COMPOUND_PART_OVERHEAD));
/// ```
pub fn pack_compounds<'a>(
    messages: impl IntoIterator<Item = &'a [u8]>,
    size: usize,
) -> Vec<Vec<u8>> {
    let budget = size.saturating_sub(COMPOUND_OVERHEAD);
    let mut packets = Vec::new();
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut used = 0;
    let mut flush = |parts: &mut Vec<&[u8]>| {
        let mut packet = Vec::new();
        if encode_compound(parts, &mut packet).is_ok() {
            packets.push(packet);
        }
        parts.clear();
    };
    for m in messages {
        let need = m.len() + COMPOUND_PART_OVERHEAD;
        if !parts.is_empty() && (used + need > budget || parts.len() >= MAX_COMPOUND_PARTS) {
            flush(&mut parts);
            used = 0;
        }
        used += need;
        parts.push(m);
    }
    if !parts.is_empty() {
        flush(&mut parts);
    }
    packets
}

/// The parts of a compound, in order.
///
/// A part whose length runs past the end of the input ends the iteration
/// with one `Err(Truncated)`; the parts before it are still good (Go
/// processes them too). Bytes after the last part are ignored.
#[derive(Debug, Clone)]
pub struct CompoundParts<'a> {
    lengths: &'a [u8],
    rest: &'a [u8],
    failed: bool,
}

impl<'a> CompoundParts<'a> {
    /// Reads a compound's header. `body` starts after the type byte.
    pub fn new(body: &'a [u8]) -> Result<Self, WireError> {
        let (&count, rest) = body.split_first().ok_or(WireError::BadCompound)?;
        let header = count as usize * 2;
        if rest.len() < header {
            return Err(WireError::BadCompound);
        }
        let (lengths, rest) = rest.split_at(header);
        Ok(CompoundParts {
            lengths,
            rest,
            failed: false,
        })
    }
}

impl<'a> Iterator for CompoundParts<'a> {
    type Item = Result<&'a [u8], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.lengths.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([self.lengths[0], self.lengths[1]]) as usize;
        self.lengths = &self.lengths[2..];
        if len > self.rest.len() {
            self.failed = true;
            return Some(Err(WireError::Truncated));
        }
        let (part, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(part))
    }
}

/// Appends `09 ‖ msgpack(compress{Algo: 0, Buf: lzw(inner)})` to `out`.
pub fn encode_compress(inner: &[u8], out: &mut Vec<u8>) {
    let mut buf = Vec::with_capacity(inner.len() / 2 + 8);
    lzw::compress(inner, &mut buf);
    out.push(MessageType::Compress as u8);
    msgpack::put_map_len(out, 2);
    msgpack::put_key(out, "Algo");
    msgpack::put_uint(out, 0);
    msgpack::put_key(out, "Buf");
    msgpack::put_byte_slice(out, &buf);
}

/// Decompresses a compress message's body (after the type byte), producing
/// at most `budget` bytes.
pub(crate) fn decompress_body(body: &[u8], budget: usize) -> Result<Vec<u8>, WireError> {
    const FIELDS: [&str; 2] = ["Algo", "Buf"];
    let mut r = Reader::new(body);
    let mut algo = 0;
    let mut buf: &[u8] = &[];
    let mut owned = None;
    decode_struct(&mut r, &FIELDS, |i, r| {
        match i {
            0 => algo = r.uint(FIELDS[0], u8::MAX as u64)?,
            _ => match r.byte_slice(FIELDS[1])? {
                alloc::borrow::Cow::Borrowed(b) => buf = b,
                alloc::borrow::Cow::Owned(v) => owned = Some(v),
            },
        }
        Ok(())
    })?;
    if algo != 0 {
        return Err(WireError::UnknownCompression(algo));
    }
    let out = lzw::decompress(owned.as_deref().unwrap_or(buf), budget)?;
    if out.is_empty() {
        return Err(WireError::EmptyDecompression);
    }
    Ok(out)
}

/// Calls `f` with every message of an opened packet body (see
/// [`Envelope::open_packet`](super::Envelope::open_packet)), unwrapping
/// compound and compress layers recursively as Go's `handleCommand` does.
///
/// A broken part is reported as an `Err` and the walk goes on where Go's
/// does: after a bad compound part nothing more of that compound is read,
/// after a bad message the next part is. Nesting is bounded by
/// [`Limits::max_nesting`], and all decompression in one packet together by
/// [`Limits::max_packet_decompressed`].
pub fn for_each_message(
    body: &[u8],
    limits: &Limits,
    f: &mut dyn FnMut(Result<Message<'_>, WireError>),
) {
    for_each_batch(body, limits, &mut |batch| batch.drain(..).for_each(&mut *f));
}

/// Decoded messages (or why one could not be), in packet order.
pub(crate) type Batch<'m> = Vec<Result<Message<'m>, WireError>>;

/// Most messages in one batch: enough to overlap the lookups of a full gossip packet, and
/// a hostile packet of thousands of tiny parts is never held decoded all at once.
const MAX_BATCH: usize = 64;

/// The messages of a packet body in the order [`for_each_message`] gives them, handed to `f`
/// in batches: up to [`MAX_BATCH`] decoded before the next decompression. A receiver can look
/// at all of a batch before it handles any. `f` takes them out; what it leaves is dropped.
pub(crate) fn for_each_batch(body: &[u8], limits: &Limits, f: &mut dyn FnMut(&mut Batch<'_>)) {
    let mut budget = limits.max_packet_decompressed;
    let mut batch = Vec::new();
    walk(body, 0, &mut budget, limits, &mut batch, f);
    flush(&mut batch, f);
}

fn push<'a>(
    batch: &mut Batch<'a>,
    m: Result<Message<'a>, WireError>,
    f: &mut dyn FnMut(&mut Batch<'_>),
) {
    batch.push(m);
    if batch.len() >= MAX_BATCH {
        flush(batch, f);
    }
}

fn flush(batch: &mut Batch<'_>, f: &mut dyn FnMut(&mut Batch<'_>)) {
    if !batch.is_empty() {
        f(batch);
        batch.clear();
    }
}

fn walk<'a>(
    bytes: &'a [u8],
    depth: usize,
    budget: &mut usize,
    limits: &Limits,
    batch: &mut Batch<'a>,
    f: &mut dyn FnMut(&mut Batch<'_>),
) {
    let Some((&ty, body)) = bytes.split_first() else {
        return push(batch, Err(WireError::Empty), f);
    };
    let nested = ty == MessageType::Compound as u8 || ty == MessageType::Compress as u8;
    if nested && depth >= limits.max_nesting {
        return push(batch, Err(WireError::TooDeep), f);
    }
    if ty == MessageType::Compound as u8 {
        match CompoundParts::new(body) {
            Ok(parts) => {
                batch.reserve((parts.lengths.len() / 2).min(MAX_BATCH));
                for part in parts {
                    match part {
                        Ok(part) => walk(part, depth + 1, budget, limits, batch, f),
                        Err(e) => push(batch, Err(e), f),
                    }
                }
            }
            Err(e) => push(batch, Err(e), f),
        }
    } else if ty == MessageType::Compress as u8 {
        match decompress_body(body, *budget) {
            Ok(inner) => {
                *budget -= inner.len();
                // What was decoded so far borrows other bytes than what follows: hand it over
                // first, so that the order holds.
                flush(batch, f);
                let mut inner_batch = Vec::new();
                walk(&inner, depth + 1, budget, limits, &mut inner_batch, f);
                flush(&mut inner_batch, f);
            }
            Err(WireError::TooLarge { len, limit, .. }) => {
                let e = WireError::TooLarge {
                    what: "max_packet_decompressed",
                    len,
                    limit,
                };
                push(batch, Err(e), f);
            }
            Err(e) => push(batch, Err(e), f),
        }
    } else {
        push(batch, Message::decode(bytes, Transport::Packet, limits), f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Nack;
    use alloc::vec;

    fn nack(seq_no: u32) -> Vec<u8> {
        let mut out = Vec::new();
        Message::Nack(Nack { seq_no }).encode(Transport::Packet, &mut out);
        out
    }

    fn compound(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_compound(parts, &mut out).unwrap();
        out
    }

    fn seq(m: &Result<Message<'_>, WireError>) -> Option<u32> {
        match m {
            Ok(Message::Nack(n)) => Some(n.seq_no),
            _ => None,
        }
    }

    /// A compressed compound inside a compound: messages come in packet order, batched up to
    /// each decompression.
    #[test]
    fn batches_keep_packet_order() {
        let inner = compound(&[&nack(2), &nack(3)]);
        let mut compressed = Vec::new();
        encode_compress(&inner, &mut compressed);
        let packet = compound(&[&nack(1), &[0xff], &compressed, &nack(4)]);
        let limits = Limits::default();

        let mut batches = Vec::new();
        for_each_batch(&packet, &limits, &mut |batch| {
            batches.push(batch.iter().map(seq).collect::<Vec<_>>());
        });
        assert_eq!(
            batches,
            [vec![Some(1), None], vec![Some(2), Some(3)], vec![Some(4)]]
        );

        let many: Vec<Vec<u8>> = (0..100).map(nack).collect();
        let parts: Vec<&[u8]> = many.iter().map(|p| &p[..]).collect();
        let mut sizes = Vec::new();
        for_each_batch(&compound(&parts), &limits, &mut |batch| {
            sizes.push(batch.len())
        });
        assert_eq!(sizes, [MAX_BATCH, 100 - MAX_BATCH]);

        let mut one_by_one = Vec::new();
        for_each_message(&packet, &limits, &mut |m| one_by_one.push(seq(&m)));
        assert_eq!(one_by_one, [Some(1), None, Some(2), Some(3), Some(4)]);
    }
}
