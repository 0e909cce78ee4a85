//! LZW as memberlist uses it (Go `compress/lzw`, LSB order, 8-bit literals).
//!
//! This is the GIF flavour of variable-width LZW: codes 0..=255 are
//! literals, 256 is Clear, 257 is EOF, new strings get codes from 258 up.
//! Codes start 9 bits wide, grow to at most 12 bits and are packed
//! least-significant bit first. The encoder reproduces Go ≥ 1.17 bit for bit
//! (leading Clear, Clear-and-reset when the next code would be 4095); the
//! decoder accepts everything Go's decoder accepts, including streams from
//! older Go encoders that do not start with Clear.

use alloc::vec::Vec;

use super::WireError;

/// Resets the code table (and the code width) in both directions.
const CLEAR: u32 = 256;
/// Ends the stream; everything after it is ignored, as in Go.
const EOF: u32 = 257;
/// The first code assigned to a multi-byte string.
const FIRST_FREE: u32 = 258;
/// Go's encoder resets when `hi` reaches this value, so it is never assigned
/// by the encoder; a full decoder table does end at this code.
const MAX_CODE: u32 = 4095;
/// Width of codes right after a Clear (literal width 8, plus one).
const MIN_WIDTH: u32 = 9;
/// Codes never grow wider than this.
const MAX_WIDTH: u32 = 12;
/// Most multi-byte strings that can be defined between two Clears.
const MAX_ENTRIES: usize = (MAX_CODE + 1 - FIRST_FREE) as usize;

/// Appends the LZW encoding of `input` to `out`, byte-identical to Go's encoder.
///
/// The stream is what Go's `lzw.NewWriter(w, lzw.LSB, 8)` writes for one
/// `Write(input)` followed by `Close()`: a leading Clear, the codes, EOF and
/// zero padding to a byte boundary. An empty input gives `00 03 02`.
pub fn compress(input: &[u8], out: &mut Vec<u8>) {
    // Typical gossip compresses below its input size; one regrowth at most
    // covers the worst case (12 bits per byte).
    out.reserve(input.len() + 8);
    let mut w = BitWriter::new(out);
    let Some((&first, rest)) = input.split_first() else {
        w.write(CLEAR, MIN_WIDTH);
        w.write(EOF, MIN_WIDTH);
        w.finish();
        return;
    };

    let mut table = EncodeTable::new(input.len());
    let mut codes = CodeCounter::new();
    w.write(CLEAR, codes.width);
    let mut code = u32::from(first);

    for &byte in rest {
        match table.find(code, byte) {
            // prefix+byte is already known: extend the match greedily.
            Ok(next) => code = next,
            Err(vacancy) => {
                w.write(code, codes.width);
                let prefix = code;
                code = u32::from(byte);
                if codes.advance(&mut w) {
                    table.clear();
                } else {
                    table.add(prefix, byte, codes.hi, vacancy);
                }
            }
        }
    }

    // Go's Close: the pending code with the same bookkeeping (which may widen
    // or even reset before EOF), then EOF at the current width.
    w.write(code, codes.width);
    codes.advance(&mut w);
    w.write(EOF, codes.width);
    w.finish();
}

/// The encoder's code numbering: Go's `hi`, `width` and `overflow`.
struct CodeCounter {
    /// The last code assigned (EOF right after a Clear).
    hi: u32,
    /// Width of the next code written.
    width: u32,
    /// `1 << width`: `hi` reaching it widens the codes.
    overflow: u32,
}

impl CodeCounter {
    fn new() -> Self {
        CodeCounter {
            hi: EOF,
            width: MIN_WIDTH,
            overflow: 1 << MIN_WIDTH,
        }
    }

    /// Go's `incHi`: advances `hi` after a data code, widening codes when
    /// `hi` reaches the current width's range and emitting Clear (returning
    /// `true`) when it reaches [`MAX_CODE`].
    #[inline(always)]
    fn advance(&mut self, w: &mut BitWriter<'_>) -> bool {
        self.hi += 1;
        if self.hi == self.overflow {
            self.width += 1;
            self.overflow <<= 1;
        }
        if self.hi == MAX_CODE {
            w.write(CLEAR, self.width);
            *self = CodeCounter::new();
            return true;
        }
        false
    }
}

/// Where [`EncodeTable::find`] would have found a missing entry.
#[derive(Clone, Copy)]
enum Vacancy {
    /// The prefix has no extension yet.
    First,
    /// The first empty hash slot on the key's probe path.
    Slot(usize),
}

/// The encoder's dictionary: (prefix code, next byte) to code.
///
/// `first` keeps, for each prefix code, the first extension added to it.
/// Every later one goes into an open-addressing hash table whose slots pack
/// the 20-bit key `prefix << 8 | byte` above the 12-bit code, so a probe is
/// one 32-bit load. Repetitive input (gossip repeats field names and
/// near-identical records) mostly takes a prefix's first extension again,
/// which is then one direct load instead of a hash and a probe; and a prefix
/// with no extension yet (most new codes) is known to be a miss without
/// probing. Push/pull states compress 1.4× faster than with the table alone.
///
/// Both are sized from the input (an input of n bytes creates fewer than n
/// entries) so that small packets do not pay for zeroing tables sized for
/// 3,838 entries; hash load stays ≤ 1/2.
struct EncodeTable {
    slots: Vec<u32>,
    shift: u32,
    mask: usize,
    /// By prefix code: `(byte + 1) << 12 | code`, or 0 for none yet.
    first: Vec<u32>,
}

/// Marks an unused slot; real entries always hold a code ≥ 258 in the low bits.
const EMPTY: u32 = 0;

impl EncodeTable {
    fn new(input_len: usize) -> Self {
        let entries = input_len.min(MAX_ENTRIES);
        // At least 64 slots, at most 8,192 (load ≤ 0.47 at a full table).
        let size = (entries * 2).next_power_of_two().clamp(64, 8192);
        EncodeTable {
            slots: alloc::vec![EMPTY; size],
            shift: 32 - size.trailing_zeros(),
            mask: size - 1,
            // Codes reach at most FIRST_FREE + entries - 1.
            first: alloc::vec![0; FIRST_FREE as usize + entries],
        }
    }

    /// The code of `prefix` + `byte`, or where to add it.
    #[inline(always)]
    fn find(&self, prefix: u32, byte: u8) -> Result<u32, Vacancy> {
        let first = self.first.get(prefix as usize).copied().unwrap_or(0);
        if first >> 12 == u32::from(byte) + 1 {
            return Ok(first & 0xfff);
        }
        if first == 0 {
            return Err(Vacancy::First);
        }
        let key = (prefix << 8) | u32::from(byte);
        let mut slot = self.home(key);
        loop {
            let entry = self.get(slot);
            if entry == EMPTY {
                return Err(Vacancy::Slot(slot));
            }
            if entry >> 12 == key {
                return Ok(entry & 0xfff);
            }
            slot = self.next(slot);
        }
    }

    /// Adds `prefix` + `byte` as `code` where [`find`](Self::find) said.
    #[inline(always)]
    fn add(&mut self, prefix: u32, byte: u8, code: u32, vacancy: Vacancy) {
        match vacancy {
            Vacancy::First => {
                if let Some(r) = self.first.get_mut(prefix as usize) {
                    *r = ((u32::from(byte) + 1) << 12) | code;
                }
            }
            Vacancy::Slot(slot) => self.set(slot, (((prefix << 8) | u32::from(byte)) << 12) | code),
        }
    }

    /// Fibonacci hashing: spreads the structured keys well at any table size.
    #[inline(always)]
    fn home(&self, key: u32) -> usize {
        (key.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    #[inline(always)]
    fn next(&self, slot: usize) -> usize {
        (slot + 1) & self.mask
    }

    #[inline(always)]
    fn get(&self, slot: usize) -> u32 {
        // `slot` is always below the table size; `EMPTY` only keeps this
        // free of a panicking index.
        self.slots.get(slot).copied().unwrap_or(EMPTY)
    }

    #[inline(always)]
    fn set(&mut self, slot: usize, entry: u32) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = entry;
        }
    }

    /// A reset happens at most once per 3,838 codes, so zeroing (≤ 48 KiB)
    /// costs less than tracking generations in every lookup.
    fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.first.fill(0);
    }
}

/// Packs codes LSB-first into bytes.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    bits: u64,
    nbits: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            bits: 0,
            nbits: 0,
        }
    }

    /// Appends a `width`-bit code; flushes four bytes at a time, which gives
    /// the same bytes as Go's byte-at-a-time writer.
    #[inline(always)]
    fn write(&mut self, code: u32, width: u32) {
        self.bits |= u64::from(code) << self.nbits;
        self.nbits += width;
        if self.nbits >= 32 {
            self.out
                .extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.nbits -= 32;
        }
    }

    /// Writes the remaining bits, zero-padded to a whole byte.
    fn finish(self) {
        let n = self.nbits.div_ceil(8) as usize;
        let bytes = self.bits.to_le_bytes();
        self.out.extend_from_slice(bytes.get(..n).unwrap_or(&bytes));
    }
}

/// Decodes an LZW stream. Output beyond `max_output` bytes fails with
/// `WireError::TooLarge { what: "max_decompressed", len: <bytes produced so far or a lower bound>, limit: max_output as u64 }`.
/// A bad code, or a stream without an EOF code, fails with `WireError::CorruptCompression`.
/// An empty result is returned as Ok(empty vec) (the caller decides whether that is an error).
///
/// As in Go, bytes after the EOF code are ignored, a stream may start with a
/// literal instead of Clear, and a full table (at 12 bits) stops growing
/// until the next Clear.
///
/// # Errors
///
/// * [`WireError::CorruptCompression`]: a code above the next free code, or
///   the input ends before an EOF code.
/// * [`WireError::TooLarge`]: the output would pass `max_output`; `len` is
///   the size it would have reached with the offending code (a lower bound
///   on the full size). Decoding stops there, so the output buffer never
///   grows past `max_output` (plus 272 bytes of working room).
pub fn decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Output::new(input.len(), max_output);
    // Entry for each code: where its string sits in the output buffer. Every
    // new string is the previous code's string plus the first byte of the
    // current one, which are adjacent in the output, so each entry is a
    // (start, len) slice of what was already decoded and decoding any code
    // is one copy. Literals point into the dictionary in front of the output.
    // Codes are assigned in order, so `table.len()` is the first unknown code.
    let mut table: Vec<(usize, usize)> =
        Vec::with_capacity(FIRST_FREE as usize + input.len().min(MAX_ENTRIES));
    table.extend_from_slice(&LITERAL_ENTRIES);
    let mut reader = BitReader::new(input);
    let mut width = MIN_WIDTH;
    // `1 << width`: `hi` reaching it widens the codes.
    let mut overflow = 1 << MIN_WIDTH;
    // Mirrors Go's decoder `hi`: codes ≤ hi are valid, starting at EOF.
    let mut hi = EOF;
    // The previous data code's string as (start, len); `None` after a Clear,
    // at the start, and while the table is full.
    let mut last: Option<(usize, usize)> = None;

    loop {
        let code = reader
            .read(width, overflow - 1)
            .ok_or(WireError::CorruptCompression)?;
        let start = out.len;
        if code & !1 == CLEAR {
            if code == EOF {
                return Ok(out.finish());
            }
            width = MIN_WIDTH;
            overflow = 1 << MIN_WIDTH;
            hi = EOF;
            last = None;
            table.truncate(FIRST_FREE as usize);
            continue;
        }
        if let Some(&(s, l)) = table.get(code as usize) {
            out.copy(s, l)?;
        } else if let (true, Some((ls, ll))) = (code == hi, last) {
            // The code being defined right now (the "KwKwK" case): the
            // previous string plus its own first byte.
            out.copy(ls, ll)?;
            out.repeat(ls)?;
        } else {
            // Above hi: corrupt, as in Go.
            return Err(WireError::CorruptCompression);
        }

        if let Some((ls, ll)) = last {
            // Previous string + first byte of this one, adjacent in `out`.
            debug_assert_eq!(ls + ll, start);
            table.push((ls, ll + 1));
        }
        last = Some((start, out.len - start));
        hi += 1;
        if hi == overflow {
            if width == MAX_WIDTH {
                // Table full: Go keeps the width and stops adding entries.
                last = None;
                hi -= 1;
            } else {
                width += 1;
                overflow <<= 1;
            }
        }
    }
}

/// Bytes in front of the decoded output: one of each value, so literals are
/// table entries like any other code and every code is decoded by one copy.
const DICT: usize = 256;
/// Room kept after the decoded bytes so that short strings are moved with
/// one fixed-size (inlined) 16-byte copy instead of a `memmove` call.
const SLACK: usize = 16;

/// The dictionary: byte `i` at offset `i`.
const DICT_BYTES: [u8; DICT] = {
    let mut bytes = [0; DICT];
    let mut i = 0;
    while i < DICT {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};

/// Table entries for codes 0..258: literal `i` is `DICT_BYTES[i..i + 1]`;
/// Clear and EOF never reach the table and get empty placeholders.
const LITERAL_ENTRIES: [(usize, usize); FIRST_FREE as usize] = {
    let mut entries = [(0, 0); FIRST_FREE as usize];
    let mut i = 0;
    while i < DICT {
        entries[i] = (i, 1);
        i += 1;
    }
    entries
};

/// The decoder's output buffer: `[dictionary | output | slack]`.
struct Output {
    buf: Vec<u8>,
    /// End of the decoded bytes in `buf` (starts at [`DICT`]).
    len: usize,
    /// `buf.len() - SLACK`: how far output can go without growing.
    room: usize,
    max_output: usize,
}

impl Output {
    fn new(input_len: usize, max_output: usize) -> Self {
        // A guess from the real input size (gossip rarely shrinks more than
        // 2×); never more than the caller allows.
        let size = DICT + input_len.saturating_mul(2).min(max_output) + SLACK;
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(&DICT_BYTES);
        buf.resize(size, 0);
        Output {
            buf,
            len: DICT,
            room: size - SLACK,
            max_output,
        }
    }

    /// Appends `buf[start..start + len]` (`start + len ≤ self.len`).
    #[inline(always)]
    fn copy(&mut self, start: usize, len: usize) -> Result<(), WireError> {
        let end = self.len + len;
        if end > self.room {
            self.grow(end)?;
        }
        if len <= SLACK {
            // May copy bytes past the string; they land in the slack or are
            // overwritten by the next code. Through a local array so that it
            // stays two vector moves instead of a variable-length `memmove`.
            let mut chunk = [0u8; SLACK];
            let src = self.buf.get(start..start + SLACK);
            chunk.copy_from_slice(src.ok_or(WireError::CorruptCompression)?);
            let dst = self.buf.get_mut(self.len..self.len + SLACK);
            dst.ok_or(WireError::CorruptCompression)?
                .copy_from_slice(&chunk);
        } else {
            // Source (already decoded) and destination cannot overlap.
            let (done, free) = self
                .buf
                .split_at_mut_checked(self.len)
                .ok_or(WireError::CorruptCompression)?;
            let src = done.get(start..start + len);
            let dst = free.get_mut(..len);
            match (src, dst) {
                (Some(src), Some(dst)) => dst.copy_from_slice(src),
                _ => return Err(WireError::CorruptCompression),
            }
        }
        self.len = end;
        Ok(())
    }

    /// Appends the byte at `at` again.
    #[inline(always)]
    fn repeat(&mut self, at: usize) -> Result<(), WireError> {
        let end = self.len + 1;
        if end > self.room {
            self.grow(end)?;
        }
        let byte = *self.buf.get(at).ok_or(WireError::CorruptCompression)?;
        *self
            .buf
            .get_mut(self.len)
            .ok_or(WireError::CorruptCompression)? = byte;
        self.len = end;
        Ok(())
    }

    /// Makes room for output up to `end`, or fails if that passes
    /// `max_output`. Growth is geometric but capped at what `max_output`
    /// allows, so a decompression bomb never allocates more than permitted.
    #[cold]
    fn grow(&mut self, end: usize) -> Result<(), WireError> {
        let produced = end - DICT;
        if produced > self.max_output {
            return Err(WireError::TooLarge {
                what: "max_decompressed",
                len: produced as u64,
                limit: self.max_output as u64,
            });
        }
        let cap = self.max_output.saturating_add(DICT + SLACK);
        let size = (end + SLACK).max(self.buf.len().saturating_mul(2)).min(cap);
        self.buf.reserve_exact(size - self.buf.len());
        self.buf.resize(size, 0);
        self.room = size - SLACK;
        Ok(())
    }

    /// The decoded bytes without the dictionary and slack.
    fn finish(mut self) -> Vec<u8> {
        self.buf.truncate(self.len);
        self.buf.drain(..DICT);
        self.buf
    }
}

/// Reads codes LSB-first.
struct BitReader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Unread bits, low first; bits above `nbits` may hold a copy of part of
    /// the byte at `pos`, which is harmless because reloading that byte ORs
    /// the same bits into the same place.
    bits: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    fn new(input: &'a [u8]) -> Self {
        BitReader {
            input,
            pos: 0,
            bits: 0,
            nbits: 0,
        }
    }

    /// The next `width`-bit code (`mask` is `(1 << width) - 1`), or `None`
    /// if the input ends inside it.
    #[inline(always)]
    fn read(&mut self, width: u32, mask: u32) -> Option<u32> {
        if self.nbits < width {
            self.refill();
            if self.nbits < width {
                return None;
            }
        }
        let code = self.bits as u32 & mask;
        self.bits >>= width;
        self.nbits -= width;
        Some(code)
    }

    /// Loads as many whole bytes as fit: eight at once while the input
    /// lasts (one refill per four or five codes), then byte by byte.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self.input.get(self.pos..self.pos + 8) {
            let mut le = [0u8; 8];
            le.copy_from_slice(word);
            self.bits |= u64::from_le_bytes(le) << self.nbits;
            let take = (63 - self.nbits) / 8;
            self.pos += take as usize;
            self.nbits += take * 8;
        } else {
            while self.nbits <= 56 {
                let Some(&byte) = self.input.get(self.pos) else {
                    break;
                };
                self.bits |= u64::from(byte) << self.nbits;
                self.pos += 1;
                self.nbits += 8;
            }
        }
    }
}

#[cfg(test)]
mod tests;
