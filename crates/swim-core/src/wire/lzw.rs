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
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;

    /// (name, LZW stream made by Go, the bytes it encodes) for every vector
    /// that carries an LZW stream.
    fn go_streams() -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/vectors.json")).unwrap();
        let hex_at = |v: &serde_json::Value, ptr: &str| -> Vec<u8> {
            hex::decode(v.pointer(ptr).and_then(|x| x.as_str()).unwrap()).unwrap()
        };
        let mut found = Vec::new();
        for v in json["vectors"].as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let (message, original) = match name {
                "compressed_compound"
                | "pushpull_compressed"
                | "lzw_stress_lcg_8000"
                | "lzw_empty_input" => (hex_at(v, "/hex"), hex_at(v, "/extra/decompressed_hex")),
                "crc_compressed_compound" => (
                    hex_at(v, "/hex")[5..].to_vec(),
                    hex_at(v, "/extra/decompressed_hex"),
                ),
                "pushpull_encrypted_compressed_stream" => (
                    hex_at(v, "/extra/plaintext_hex"),
                    hex_at(v, "/extra/decompressed_hex"),
                ),
                "ping_compression_enabled_but_not_smaller" => (
                    hex_at(v, "/extra/rejected_compressed_hex"),
                    hex_at(v, "/hex"),
                ),
                _ => continue,
            };
            assert_eq!(message[0], 9, "{name}: not a compress message");
            found.push((name.into(), buf_of(&message).to_vec(), original));
        }
        assert_eq!(found.len(), 7, "a compressed vector is missing");
        found
    }

    /// The `Buf` str of a msgpack `compress{Algo, Buf}` message.
    fn buf_of(msg: &[u8]) -> &[u8] {
        let at = msg.windows(4).position(|w| w == b"\xa3Buf").unwrap() + 4;
        let (len, header) = match msg[at] {
            m @ 0xa0..=0xbf => (usize::from(m & 0x1f), 1),
            0xda => (
                usize::from(u16::from_be_bytes([msg[at + 1], msg[at + 2]])),
                3,
            ),
            0xdb => {
                let n = u32::from_be_bytes([msg[at + 1], msg[at + 2], msg[at + 3], msg[at + 4]]);
                (n as usize, 5)
            }
            m => panic!("Buf is not a str (marker {m:#04x})"),
        };
        &msg[at + header..at + header + len]
    }

    fn compressed(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(input, &mut out);
        out
    }

    /// Deterministic pseudo-random bytes with `alphabet` distinct values.
    fn lcg_bytes(len: usize, seed: u32, alphabet: u32) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                ((x >> 16) % alphabet) as u8
            })
            .collect()
    }

    /// Go's encoder (`compress/lzw/writer.go`) in the plainest form, with an
    /// ordered map for a dictionary: the model `compress` must match bit for
    /// bit on every input.
    fn reference_compress(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut bits, mut nbits) = (0u64, 0u32);
        let mut put = |code: u32, width: u32| {
            bits |= u64::from(code) << nbits;
            nbits += width;
            while nbits >= 8 {
                out.push(bits as u8);
                bits >>= 8;
                nbits -= 8;
            }
        };
        let mut dict = alloc::collections::BTreeMap::new();
        let (mut hi, mut width) = (EOF, MIN_WIDTH);
        put(CLEAR, width);
        let mut pending = None;
        for &byte in input {
            let Some(code) = pending else {
                pending = Some(u32::from(byte));
                continue;
            };
            if let Some(&next) = dict.get(&(code, byte)) {
                pending = Some(next);
                continue;
            }
            put(code, width);
            pending = Some(u32::from(byte));
            hi += 1;
            if hi == 1 << width {
                width += 1;
            }
            if hi == MAX_CODE {
                put(CLEAR, width);
                (hi, width) = (EOF, MIN_WIDTH);
                dict.clear();
            } else {
                dict.insert((code, byte), hi);
            }
        }
        if let Some(code) = pending {
            put(code, width);
            hi += 1;
            if hi == 1 << width {
                width += 1;
            }
            if hi == MAX_CODE {
                put(CLEAR, width);
                width = MIN_WIDTH;
            }
        }
        put(EOF, width);
        if nbits > 0 {
            out.push(bits as u8);
        }
        out
    }

    /// Text built from a few words, as gossip repeats field names and
    /// near-identical records: long matches, prefixes with many extensions.
    fn wordy_bytes(len: usize, seed: u32) -> Vec<u8> {
        const WORDS: [&[u8]; 8] = [
            b"Name",
            b"node-",
            b"Incarnation",
            b"\x82\xa4",
            b"Addr",
            b"7946",
            b"\x01",
            b"Vsn",
        ];
        lcg_bytes(len, seed, 256)
            .iter()
            .flat_map(|&r| match r % 10 {
                8 | 9 => alloc::vec![r],
                w => WORDS[usize::from(w % 8)].to_vec(),
            })
            .take(len)
            .collect()
    }

    #[test]
    fn matches_reference_encoder() {
        for (name, _, original) in go_streams() {
            assert_eq!(
                compressed(&original),
                reference_compress(&original),
                "{name}"
            );
        }
        for len in [0, 1, 2, 3, 100, 5_000, 60_000] {
            for seed in 1..4 {
                for input in [
                    lcg_bytes(len, seed, 256),
                    lcg_bytes(len, seed, 3),
                    wordy_bytes(len, seed),
                    vec![seed as u8; len],
                ] {
                    assert_eq!(compressed(&input), reference_compress(&input), "len {len}");
                }
            }
        }
    }

    /// Writes codes LSB-first with the decoder's width rules, for hand-made
    /// streams.
    struct Codes {
        bytes: Vec<u8>,
        bits: u64,
        nbits: u32,
        width: u32,
        hi: u32,
    }

    impl Codes {
        fn new() -> Self {
            Codes {
                bytes: Vec::new(),
                bits: 0,
                nbits: 0,
                width: MIN_WIDTH,
                hi: EOF,
            }
        }

        fn raw(&mut self, code: u32) {
            self.bits |= u64::from(code) << self.nbits;
            self.nbits += self.width;
            while self.nbits >= 8 {
                self.bytes.push(self.bits as u8);
                self.bits >>= 8;
                self.nbits -= 8;
            }
        }

        /// A data code, followed by the decoder's `hi` bookkeeping.
        fn data(&mut self, code: u32) {
            self.raw(code);
            self.hi += 1;
            if self.hi == 1 << self.width {
                if self.width == MAX_WIDTH {
                    self.hi -= 1;
                } else {
                    self.width += 1;
                }
            }
        }

        fn clear(&mut self) {
            self.raw(CLEAR);
            self.width = MIN_WIDTH;
            self.hi = EOF;
        }

        fn finish(mut self) -> Vec<u8> {
            self.raw(EOF);
            if self.nbits > 0 {
                self.bytes.push(self.bits as u8);
            }
            self.bytes
        }
    }

    /// `stream` without its first `skip` bits (to drop the leading Clear).
    fn drop_bits(stream: &[u8], skip: usize) -> Vec<u8> {
        let total = stream.len() * 8 - skip;
        let mut out = vec![0u8; total.div_ceil(8)];
        for i in 0..total {
            let j = i + skip;
            if stream[j / 8] >> (j % 8) & 1 == 1 {
                out[i / 8] |= 1 << (i % 8);
            }
        }
        out
    }

    #[test]
    fn matches_go_vectors() {
        for (name, stream, original) in go_streams() {
            assert_eq!(
                hex::encode(compressed(&original)),
                hex::encode(&stream),
                "{name}: compress differs from Go"
            );
            assert_eq!(
                decompress(&stream, usize::MAX).unwrap(),
                original,
                "{name}: decompress"
            );
        }
    }

    #[test]
    fn stress_vector_resets() {
        // 8,000 random bytes need several Clears; they are in the vector.
        let (_, stream, original) = go_streams()
            .into_iter()
            .find(|(n, _, _)| n == "lzw_stress_lcg_8000")
            .unwrap();
        assert_eq!((original.len(), stream.len()), (8000, 10_953));
    }

    #[test]
    fn empty_input() {
        assert_eq!(compressed(&[]), [0x00, 0x03, 0x02]);
        assert_eq!(
            decompress(&[0x00, 0x03, 0x02], 0).unwrap(),
            Vec::<u8>::new()
        );
        // Appends rather than overwrites.
        let mut out = vec![0xaa];
        compress(&[], &mut out);
        assert_eq!(out, [0xaa, 0x00, 0x03, 0x02]);
    }

    #[test]
    fn round_trips_around_the_reset() {
        // Random bytes make about one code per byte, so the 4095-code reset
        // falls in this range, for some lengths right at the pending code
        // written by Close (the stream then ends Clear, EOF).
        let mut reset_in_close = 0;
        for len in (3700..4400).chain([1, 2, 3, 255, 256, 257, 511, 512, 513, 12_000]) {
            let input = lcg_bytes(len, 1, 256);
            let stream = compressed(&input);
            assert_eq!(decompress(&stream, len).unwrap(), input, "len {len}");
            let codes = codes_of(&stream);
            assert!(codes.contains(&CLEAR) || len < 3000, "len {len}: no reset");
            if codes.ends_with(&[CLEAR, EOF]) {
                reset_in_close += 1;
            }
        }
        assert!(reset_in_close > 0);
    }

    /// The codes of a stream, read with the decoder's width rules.
    fn codes_of(stream: &[u8]) -> Vec<u32> {
        let (mut width, mut hi, mut codes) = (MIN_WIDTH, EOF, Vec::new());
        let mut reader = BitReader::new(stream);
        while let Some(code) = reader.read(width, (1 << width) - 1) {
            codes.push(code);
            match code {
                CLEAR => (width, hi) = (MIN_WIDTH, EOF),
                EOF => break,
                _ => {
                    hi += 1;
                    if hi == 1 << width {
                        if width == MAX_WIDTH {
                            hi -= 1;
                        } else {
                            width += 1;
                        }
                    }
                }
            }
        }
        codes
    }

    #[test]
    fn round_trips_repetitive() {
        let zeros = vec![0u8; 100_000];
        let stream = compressed(&zeros);
        assert!(stream.len() < 1000, "{} bytes", stream.len());
        assert_eq!(decompress(&stream, zeros.len()).unwrap(), zeros);
        for alphabet in [1, 2, 3, 16] {
            let input = lcg_bytes(50_000, alphabet, alphabet);
            assert_eq!(decompress(&compressed(&input), usize::MAX).unwrap(), input);
        }
    }

    #[test]
    fn accepts_stream_without_leading_clear() {
        // Go < 1.17 did not write the initial Clear.
        for (name, stream, original) in go_streams() {
            let old = drop_bits(&stream, 9);
            assert_eq!(decompress(&old, usize::MAX).unwrap(), original, "{name}");
        }
        let mut c = Codes::new();
        for code in [u32::from(b'a'), u32::from(b'b'), 258, 260] {
            c.data(code);
        }
        // a, b, 258 = "ab", 260 = KwKwK: "ab" + 'a'.
        assert_eq!(decompress(&c.finish(), 100).unwrap(), b"abababa");
    }

    #[test]
    fn full_table_stops_growing() {
        // No Clear after the table fills: Go keeps 12-bit codes and the
        // existing entries, including code 4095.
        let lits = lcg_bytes(4000, 7, 256);
        let mut c = Codes::new();
        c.clear();
        for &b in &lits {
            c.data(u32::from(b));
        }
        assert_eq!((c.width, c.hi), (12, 4095));
        for code in [4095, 300, 4000, u32::from(b'z')] {
            c.data(code);
        }
        let mut want = lits.clone();
        // Entry k (all-literal stream) is lits[k - 258], lits[k - 257].
        for k in [4095, 300, 4000] {
            want.extend_from_slice(&lits[k - 258..k - 256]);
        }
        want.push(b'z');
        assert_eq!(decompress(&c.finish(), usize::MAX).unwrap(), want);

        let mut c = Codes::new();
        for &b in &lits {
            c.data(u32::from(b));
        }
        // Also full without any Clear at all; 4095 is the highest code.
        c.data(4095);
        assert!(decompress(&c.finish(), usize::MAX).is_ok());
    }

    #[test]
    fn truncated_streams_fail() {
        let mut streams: Vec<Vec<u8>> = go_streams().into_iter().map(|(_, s, _)| s).collect();
        streams.push(compressed(&vec![0u8; 100_000]));
        for stream in streams {
            let step = if stream.len() > 2000 { 13 } else { 1 };
            for cut in (0..stream.len())
                .step_by(step)
                .chain(stream.len().saturating_sub(20)..stream.len())
            {
                assert_eq!(
                    decompress(&stream[..cut], usize::MAX),
                    Err(WireError::CorruptCompression),
                    "cut at {cut} of {}",
                    stream.len()
                );
            }
        }
    }

    #[test]
    fn out_of_range_code_fails() {
        // After Clear only literals (and Clear/EOF) are valid.
        let mut c = Codes::new();
        c.clear();
        c.raw(258);
        assert_eq!(
            decompress(&c.finish(), 100),
            Err(WireError::CorruptCompression)
        );
        // After one literal, 258 is the KwKwK code but 259 is unknown.
        let mut c = Codes::new();
        c.clear();
        c.data(u32::from(b'x'));
        c.data(259);
        assert_eq!(
            decompress(&c.finish(), 100),
            Err(WireError::CorruptCompression)
        );
        // Same without a leading Clear.
        let mut c = Codes::new();
        c.raw(300);
        assert_eq!(
            decompress(&c.finish(), 100),
            Err(WireError::CorruptCompression)
        );
        // Valid code but no EOF at all.
        assert_eq!(decompress(&[], 100), Err(WireError::CorruptCompression));
    }

    #[test]
    fn max_output_enforced() {
        let zeros = vec![0u8; 100_000];
        let stream = compressed(&zeros);
        match decompress(&stream, 1000) {
            Err(WireError::TooLarge { what, len, limit }) => {
                assert_eq!((what, limit), ("max_decompressed", 1000));
                assert!(len > 1000, "{len}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decompress(&stream, 100_000).unwrap().len(), 100_000);
        assert!(matches!(
            decompress(&stream, 99_999),
            Err(WireError::TooLarge { limit: 99_999, .. })
        ));
        // Literal path and the exact-fit boundary.
        let stream = compressed(b"ab");
        assert_eq!(decompress(&stream, 2).unwrap(), b"ab");
        assert!(matches!(
            decompress(&stream, 1),
            Err(WireError::TooLarge { len: 2, .. })
        ));
        assert!(matches!(
            decompress(&stream, 0),
            Err(WireError::TooLarge { len: 1, .. })
        ));
    }

    #[test]
    fn ignores_bytes_after_eof() {
        let mut stream = compressed(b"hello hello hello");
        stream.extend_from_slice(&[0xff; 5]);
        assert_eq!(decompress(&stream, 100).unwrap(), b"hello hello hello");
    }

    proptest! {
        #[test]
        fn same_as_reference_encoder(
            seed in any::<u32>(),
            len in 0usize..20_000,
            alphabet in 1u32..=256,
            wordy in any::<bool>(),
        ) {
            let input = if wordy { wordy_bytes(len, seed) } else { lcg_bytes(len, seed, alphabet) };
            prop_assert_eq!(compressed(&input), reference_compress(&input));
        }

        #[test]
        fn round_trip_random(input in proptest::collection::vec(any::<u8>(), 0..10_000)) {
            let stream = compressed(&input);
            prop_assert_eq!(decompress(&stream, input.len()).unwrap(), input);
        }

        #[test]
        fn round_trip_low_entropy(
            input in proptest::collection::vec(0u8..4, 0..30_000),
        ) {
            let stream = compressed(&input);
            prop_assert_eq!(decompress(&stream, input.len()).unwrap(), input);
        }

        #[test]
        fn garbage_never_panics(
            input in proptest::collection::vec(any::<u8>(), 0..4_000),
            limit in 0usize..100_000,
        ) {
            if let Ok(out) = decompress(&input, limit) {
                prop_assert!(out.len() <= limit);
            }
        }

        #[test]
        fn damaged_streams_never_panic(
            input in proptest::collection::vec(0u8..8, 1..6_000),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        ) {
            let mut stream = compressed(&input);
            for (at, bit) in flips {
                let i = at.index(stream.len());
                stream[i] ^= 1 << bit;
            }
            if let Ok(out) = decompress(&stream, input.len() * 2) {
                prop_assert!(out.len() <= input.len() * 2);
            }
        }
    }
}
