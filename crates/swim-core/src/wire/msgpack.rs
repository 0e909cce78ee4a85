//! The msgpack profile of HashiCorp's Go codec (hashicorp/go-msgpack, a
//! default `MsgpackHandle`), which memberlist (docs/protocol.md §3) and Serf
//! (docs/serf.md §2.1) both speak.
//!
//! Written by hand rather than on `rmp`'s helpers because Go's profile is not
//! msgpack's canonical one. Writing: strings and byte slices are the old
//! "raw" family (fixstr, str16, str32 — never str8, never bin); nil slices,
//! maps and pointers are `nil`; integers take their smallest form, and
//! non-negative signed ones the unsigned forms. Reading takes any integer
//! width with range checks, bin or str for strings, `nil` for a field's zero
//! value, maps in any key order or positional arrays.
//!
//! The [`Reader`] borrows from its input, checks every declared length
//! against the bytes that remain before anything is reserved (so decoding
//! allocates at most in proportion to its input), bounds nesting, and never
//! panics: every failure is a [`WireError`].
//!
//! ```
//! use swim_core::wire::msgpack::{self, Reader};
//!
//! // Go's `struct { Name string; Port uint16 }`, fields in sorted order.
//! let mut out = Vec::new();
//! msgpack::put_map_len(&mut out, 2);
//! msgpack::put_key(&mut out, "Name");
//! msgpack::put_str(&mut out, "node-a");
//! msgpack::put_key(&mut out, "Port");
//! msgpack::put_uint(&mut out, 7946);
//!
//! let (mut name, mut port) = (String::new(), 0);
//! Reader::new(&out).struct_fields("member", |r, key| {
//!     match key {
//!         b"Name" => name = r.string("Name")?,
//!         b"Port" => port = r.uint("Port", u16::MAX.into())?,
//!         _ => return Ok(false), // skipped, as Go skips unknown fields
//!     }
//!     Ok::<_, swim_core::wire::WireError>(true)
//! })?;
//! assert_eq!((name.as_str(), port), ("node-a", 7946));
//! # Ok::<(), swim_core::wire::WireError>(())
//! ```

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use super::WireError;

/// Deepest container nesting [`Reader::skip_value`] follows; Go's own
/// messages are flat.
const MAX_SKIP_DEPTH: usize = 32;

/// Deepest nesting [`Reader::nested`] allows (Serf's deepest message nests 4).
const MAX_DEPTH: usize = 16;

// ---------------------------------------------------------------- writing

/// A header: the fix form below `fix_max`, else the 16-bit form `b16`, else
/// the 32-bit one that follows it.
fn put_len(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, b16: u8) {
    if len < fix_max {
        out.push(fix | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(b16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(b16 + 1);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a map header for `len` entries (a struct has one per field).
pub fn put_map_len(out: &mut Vec<u8>, len: usize) {
    put_len(out, len, 0x80, 16, 0xde);
}

/// Appends an array header for `len` elements.
pub fn put_array_len(out: &mut Vec<u8>, len: usize) {
    put_len(out, len, 0x90, 16, 0xdc);
}

/// Appends a map key: a Go field name (or a map's string key).
pub fn put_key(out: &mut Vec<u8>, key: &str) {
    put_raw(out, key.as_bytes());
}

/// Appends a Go "raw" string: fixstr, str16 or str32 (never str8, never bin).
pub fn put_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len(), 0xa0, 32, 0xda);
    out.extend_from_slice(bytes);
}

/// Appends a Go `string`.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_raw(out, s.as_bytes());
}

/// Appends a Go `[]byte` that is nil when empty (memberlist's payloads):
/// `nil` (`0xc0`), else a raw string.
pub fn put_byte_slice(out: &mut Vec<u8>, bytes: &[u8]) {
    put_bytes(out, (!bytes.is_empty()).then_some(bytes));
}

/// Appends a Go `[]byte`: `None` is a nil slice (`0xc0`), `Some` a raw
/// string, empty or not.
pub fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_nil(out),
        Some(b) => put_raw(out, b),
    }
}

/// Appends a string as go-msgpack writes one with `WriteExt` (Serf's RPC):
/// the new spec's forms, str8 included.
pub fn put_str_ext(out: &mut Vec<u8>, s: &str) {
    if (32..=u8::MAX as usize).contains(&s.len()) {
        out.extend_from_slice(&[0xd9, s.len() as u8]);
        out.extend_from_slice(s.as_bytes());
    } else {
        put_raw(out, s.as_bytes());
    }
}

/// Appends a `[]byte` as go-msgpack writes one with `WriteExt` (Serf's
/// RPC): `None` is a nil slice, `Some` bin8, bin16 or bin32.
pub fn put_bin_ext(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    let Some(b) = bytes else { return put_nil(out) };
    if b.len() <= u8::MAX as usize {
        out.extend_from_slice(&[0xc4, b.len() as u8]);
    } else if b.len() <= u16::MAX as usize {
        out.push(0xc5);
        out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// Appends `nil`: a nil slice, map or pointer.
pub fn put_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

/// Appends an unsigned integer in its smallest form.
pub fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v <= u8::MAX as u64 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= u16::MAX as u64 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u32::MAX as u64 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a signed integer the way go-msgpack v0.5.5 does: non-negative
/// values in unsigned forms, negative ones in the smallest signed form.
pub fn put_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        put_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i16::MIN as i64 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a bool.
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(if v { 0xc3 } else { 0xc2 });
}

/// Appends a float64, as go-msgpack always writes one (`0xcb`).
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.push(0xcb);
    out.extend_from_slice(&v.to_bits().to_be_bytes());
}

// ---------------------------------------------------------------- reading

/// The shape of a struct on the wire: Go sends maps; it also accepts a
/// positional array in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A map of this many entries.
    Map(usize),
    /// An array of this many elements.
    Array(usize),
}

/// A cursor over msgpack bytes that borrows what it can.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Containers [`nested`](Reader::nested) is inside.
    depth: usize,
}

/// An integer as read off the wire, before range checks.
enum Int {
    Unsigned(u64),
    Negative(i64),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// What has not been read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        let b = self.peek().ok_or(WireError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Takes exactly `n` bytes, or fails with `Truncated` without moving.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, WireError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// Reads `nil` if it comes next; true if it did.
    pub fn nil(&mut self) -> Result<bool, WireError> {
        if self.peek().ok_or(WireError::Truncated)? == 0xc0 {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads a struct header: a map or an array.
    pub fn container(&mut self, field: &'static str) -> Result<Container, WireError> {
        let m = self.byte()?;
        Ok(match m {
            0x80..=0x8f => Container::Map((m & 0x0f) as usize),
            0x90..=0x9f => Container::Array((m & 0x0f) as usize),
            0xde => Container::Map(self.be(2)? as usize),
            0xdf => Container::Map(self.be(4)? as usize),
            0xdc => Container::Array(self.be(2)? as usize),
            0xdd => Container::Array(self.be(4)? as usize),
            found => return Err(WireError::UnexpectedValue { field, found }),
        })
    }

    /// A declared element count, refused (`TooLarge`, `what` = `field`) when
    /// the input cannot hold that many elements of at least `min_size`
    /// bytes each.
    fn count(&self, n: usize, min_size: usize, field: &'static str) -> Result<usize, WireError> {
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(WireError::TooLarge {
                what: field,
                len: n as u64,
                limit: self.remaining() as u64,
            });
        }
        Ok(n)
    }

    /// Reads a map header (`nil` reads as an empty map).
    pub fn map_len(&mut self, field: &'static str) -> Result<usize, WireError> {
        let m = self.byte()?;
        let n = match m {
            0xc0 => 0,
            0x80..=0x8f => (m & 0x0f) as usize,
            0xde => self.be(2)? as usize,
            0xdf => self.be(4)? as usize,
            found => return Err(WireError::UnexpectedValue { field, found }),
        };
        self.count(n, 2, field)
    }

    /// Reads an array header (`nil` reads as an empty array).
    pub fn array_len(&mut self, field: &'static str) -> Result<usize, WireError> {
        let m = self.byte()?;
        let n = match m {
            0xc0 => 0,
            0x90..=0x9f => (m & 0x0f) as usize,
            0xdc => self.be(2)? as usize,
            0xdd => self.be(4)? as usize,
            found => return Err(WireError::UnexpectedValue { field, found }),
        };
        self.count(n, 1, field)
    }

    /// Reads a str- or bin-family value (or nil, as `None`) and borrows its
    /// bytes.
    pub fn raw(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, WireError> {
        let m = self.byte()?;
        let len = match m {
            0xc0 => return Ok(None),
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 | 0xc4 => self.be(1)? as usize,
            0xda | 0xc5 => self.be(2)? as usize,
            0xdb | 0xc6 => self.be(4)? as usize,
            found => return Err(WireError::UnexpectedValue { field, found }),
        };
        self.take(len).map(Some)
    }

    /// Reads a map key. Go v0.2.2 insists on the str family; upstream also
    /// takes bin, so both are accepted (a nil key matches no field).
    pub fn key(&mut self) -> Result<&'a [u8], WireError> {
        Ok(self.raw("key")?.unwrap_or(&[]))
    }

    /// Reads a Go `string` field that must be UTF-8 (memberlist's names and
    /// addresses): str, bin or nil (as ""), borrowed.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        let bytes = self.raw(field)?.unwrap_or(&[]);
        core::str::from_utf8(bytes).map_err(|_| WireError::InvalidUtf8 { field })
    }

    /// Reads a Go `string` field as Go does, without checking its bytes:
    /// str, bin or nil (as ""); bytes that are not UTF-8 are replaced.
    pub fn string(&mut self, field: &'static str) -> Result<String, WireError> {
        let bytes = self.raw(field)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Reads a Go `[]byte` field: str, bin, nil (as `None`).
    pub fn bytes(&mut self, field: &'static str) -> Result<Option<Vec<u8>>, WireError> {
        Ok(self.raw(field)?.map(<[u8]>::to_vec))
    }

    /// Reads a Go `[]byte` field: str, bin, nil (as empty), or an array of
    /// small unsigned integers (the one form that cannot be borrowed).
    pub fn byte_slice(&mut self, field: &'static str) -> Result<Cow<'a, [u8]>, WireError> {
        match self.peek() {
            Some(0x90..=0x9f | 0xdc | 0xdd) => {
                let (Container::Array(n) | Container::Map(n)) = self.container(field)?;
                // Each element takes at least one byte: bound the allocation
                // by what is actually there.
                if n > self.remaining() {
                    return Err(WireError::Truncated);
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.uint(field, u8::MAX as u64)? as u8);
                }
                Ok(Cow::Owned(v))
            }
            _ => Ok(Cow::Borrowed(self.raw(field)?.unwrap_or(&[]))),
        }
    }

    fn int(&mut self, field: &'static str) -> Result<Option<Int>, WireError> {
        let m = self.byte()?;
        Ok(Some(match m {
            0x00..=0x7f => Int::Unsigned(m as u64),
            0xe0..=0xff => Int::Negative(m as i8 as i64),
            0xc0 => return Ok(None),
            0xcc => Int::Unsigned(self.be(1)?),
            0xcd => Int::Unsigned(self.be(2)?),
            0xce => Int::Unsigned(self.be(4)?),
            0xcf => Int::Unsigned(self.be(8)?),
            0xd0 => signed(self.be(1)? as u8 as i8 as i64),
            0xd1 => signed(self.be(2)? as u16 as i16 as i64),
            0xd2 => signed(self.be(4)? as u32 as i32 as i64),
            0xd3 => signed(self.be(8)? as i64),
            found => return Err(WireError::UnexpectedValue { field, found }),
        }))
    }

    /// Reads an unsigned integer field of any msgpack integer width (nil is
    /// 0), rejecting negative values and values above `max`.
    pub fn uint(&mut self, field: &'static str, max: u64) -> Result<u64, WireError> {
        match self.int(field)? {
            None => Ok(0),
            Some(Int::Unsigned(v)) if v <= max => Ok(v),
            Some(_) => Err(WireError::IntegerOutOfRange { field }),
        }
    }

    /// Reads a Go `int` or `int64` field (nil is 0), in v0.2.2's unsigned
    /// or upstream's signed forms.
    pub fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        match self.int(field)? {
            None => Ok(0),
            Some(Int::Negative(v)) => Ok(v),
            Some(Int::Unsigned(v)) => {
                i64::try_from(v).map_err(|_| WireError::IntegerOutOfRange { field })
            }
        }
    }

    /// Reads a Go `float64` field: float64, float32, or any integer (Go
    /// converts); nil is 0.
    pub fn f64(&mut self, field: &'static str) -> Result<f64, WireError> {
        match self.peek() {
            Some(0xcb) => {
                self.pos += 1;
                Ok(f64::from_bits(self.be(8)?))
            }
            Some(0xca) => {
                self.pos += 1;
                Ok(f32::from_bits(self.be(4)? as u32) as f64)
            }
            _ => Ok(match self.int(field)? {
                None => 0.0,
                Some(Int::Unsigned(v)) => v as f64,
                Some(Int::Negative(v)) => v as f64,
            }),
        }
    }

    /// Reads a bool field: true/false, nil (false), or the integers 0 and 1
    /// (go-msgpack's `decodeBool`).
    pub fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.peek() {
            Some(0xc2) => {
                self.pos += 1;
                Ok(false)
            }
            Some(0xc3) => {
                self.pos += 1;
                Ok(true)
            }
            _ => match self.uint(field, 1) {
                Ok(v) => Ok(v == 1),
                Err(WireError::UnexpectedValue { found, .. }) => {
                    Err(WireError::UnexpectedValue { field, found })
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Runs `f` one nesting level deeper, refusing (`TooDeep`) input nested
    /// deeper than any message: decoders call it around each container they
    /// descend into.
    pub fn nested<T, E: From<WireError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.depth >= MAX_DEPTH {
            return Err(WireError::TooDeep.into());
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// Reads a struct sent as a map of field names (`nil` reads as no
    /// fields): each name is handed to `field` with the reader at its
    /// value. `field` returns false for a name it does not know, whose value
    /// is then skipped, as Go skips it. `name` (the struct's) labels errors
    /// in the header and keys.
    pub fn struct_fields<E: From<WireError>>(
        &mut self,
        name: &'static str,
        mut field: impl FnMut(&mut Self, &[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let n = self.map_len(name)?;
        self.nested(|r| {
            for _ in 0..n {
                let key = r.raw(name)?.unwrap_or_default();
                if !field(r, key)? {
                    r.skip_value()?;
                }
            }
            Ok(())
        })
    }

    /// Skips one value of any type, following containers up to a fixed depth.
    pub fn skip_value(&mut self) -> Result<(), WireError> {
        self.skip_value_within(usize::MAX, "")
    }

    /// Like [`skip_value`](Self::skip_value), but a value declared to end
    /// past `limit` bytes from the start of the input is `TooLarge` as soon
    /// as its header is read, not `Truncated` until all of it has arrived.
    pub fn skip_value_within(&mut self, limit: usize, what: &'static str) -> Result<(), WireError> {
        // Pending values to skip, one counter per open container level.
        let mut pending: [usize; MAX_SKIP_DEPTH] = [0; MAX_SKIP_DEPTH];
        let mut depth = 0;
        pending[0] = 1;
        loop {
            while pending[depth] == 0 {
                if depth == 0 {
                    return Ok(());
                }
                depth -= 1;
            }
            pending[depth] -= 1;
            let m = self.byte()?;
            let (skip, children): (u64, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * (m & 0x0f) as u64),
                0x90..=0x9f => (0, (m & 0x0f) as u64),
                0xa0..=0xbf => ((m & 0x1f) as u64, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 | 0xca => (4, 0),
                0xcf | 0xd3 | 0xcb => (8, 0),
                0xd9 | 0xc4 => (self.be(1)?, 0),
                0xda | 0xc5 => (self.be(2)?, 0),
                0xdb | 0xc6 => (self.be(4)?, 0),
                0xdc => (0, self.be(2)?),
                0xdd => (0, self.be(4)?),
                0xde => (0, 2 * self.be(2)?),
                0xdf => (0, 2 * self.be(4)?),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xc7 => (self.be(1)? + 1, 0),
                0xc8 => (self.be(2)? + 1, 0),
                0xc9 => (self.be(4)? + 1, 0),
                found => {
                    return Err(WireError::UnexpectedValue {
                        field: "value",
                        found,
                    })
                }
            };
            let end = (self.pos as u64).saturating_add(skip);
            if end > limit as u64 {
                return Err(WireError::TooLarge {
                    what,
                    len: end,
                    limit: limit as u64,
                });
            }
            let skip = usize::try_from(skip).map_err(|_| WireError::Truncated)?;
            self.take(skip)?;
            if children > 0 {
                if depth + 1 >= MAX_SKIP_DEPTH {
                    return Err(WireError::TooDeep);
                }
                // Every child needs at least a byte; a count beyond the input
                // is truncation, found now rather than after a long loop.
                if children > self.remaining() as u64 {
                    return Err(WireError::Truncated);
                }
                depth += 1;
                pending[depth] = children as usize;
            }
        }
    }
}

fn signed(v: i64) -> Int {
    if v < 0 {
        Int::Negative(v)
    } else {
        Int::Unsigned(v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn raw_of(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        put_raw(&mut out, &vec![b'x'; len]);
        out
    }

    #[test]
    fn raw_strings_use_go_forms() {
        assert_eq!(raw_of(0)[0], 0xa0);
        assert_eq!(raw_of(31)[0], 0xbf);
        // Go never writes str8: 32..255 bytes are str16.
        assert_eq!(&raw_of(32)[..3], &[0xda, 0x00, 0x20]);
        assert_eq!(&raw_of(255)[..3], &[0xda, 0x00, 0xff]);
        assert_eq!(&raw_of(65_536)[..5], &[0xdb, 0x00, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn ints_use_smallest_forms() {
        let enc = |v: i64| {
            let mut o = Vec::new();
            put_int(&mut o, v);
            o
        };
        assert_eq!(enc(5), [5]);
        assert_eq!(enc(200), [0xcc, 200]);
        assert_eq!(enc(7946), [0xcd, 0x1f, 0x0a]);
        assert_eq!(enc(70_000), [0xce, 0x00, 0x01, 0x11, 0x70]);
        assert_eq!(enc(-1), [0xff]);
        assert_eq!(enc(-33), [0xd0, 0xdf]);
        assert_eq!(enc(-200), [0xd1, 0xff, 0x38]);
    }

    #[test]
    fn uint_range_checks() {
        let r = |b: &[u8]| Reader::new(b).uint("f", u16::MAX as u64);
        assert_eq!(r(&[0xcd, 0xff, 0xff]), Ok(65_535));
        assert_eq!(r(&[0xd1, 0x01, 0x02]), Ok(258));
        assert_eq!(r(&[0xc0]), Ok(0));
        assert_eq!(
            r(&[0xce, 0, 1, 0, 0]),
            Err(WireError::IntegerOutOfRange { field: "f" })
        );
        assert_eq!(r(&[0xff]), Err(WireError::IntegerOutOfRange { field: "f" }));
        assert_eq!(r(&[0xcd, 0xff]), Err(WireError::Truncated));
        assert!(matches!(
            r(&[0xcb, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::UnexpectedValue { .. })
        ));
    }

    #[test]
    fn skip_handles_every_family_and_bounds_depth() {
        // map{ "a": [1, "x", nil], "b": ext8 }
        let v = [
            0x82, 0xa1, b'a', 0x93, 0x01, 0xa1, b'x', 0xc0, 0xa1, b'b', 0xc7, 1, 5, 0xaa, 0x07,
        ];
        let mut r = Reader::new(&v);
        r.skip_value().unwrap();
        assert_eq!(r.position(), v.len() - 1);

        let deep = vec![0x91; 100];
        assert_eq!(Reader::new(&deep).skip_value(), Err(WireError::TooDeep));
        // A huge declared array with nothing behind it fails fast.
        assert_eq!(
            Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff]).skip_value(),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn headers_take_the_32_bit_forms_past_65535() {
        let mut out = Vec::new();
        put_map_len(&mut out, 15);
        put_map_len(&mut out, 16);
        put_array_len(&mut out, 15);
        put_array_len(&mut out, 65_536);
        assert_eq!(
            out,
            [0x8f, 0xde, 0, 16, 0x9f, 0xdd, 0, 1, 0, 0],
            "fix, 16-bit, fix, 32-bit"
        );
    }

    #[test]
    fn nil_and_empty_byte_slices_stay_apart() {
        let mut out = Vec::new();
        put_bytes(&mut out, None);
        put_bytes(&mut out, Some(&[]));
        put_byte_slice(&mut out, &[]);
        assert_eq!(out, [0xc0, 0xa0, 0xc0]);
        let mut r = Reader::new(&out);
        assert_eq!(r.bytes("b"), Ok(None));
        assert_eq!(r.bytes("b"), Ok(Some(Vec::new())));
        assert!(r.nil().unwrap());
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn strings_are_checked_or_taken_as_go_takes_them() {
        let bad = [0xa2, 0xff, b'a'];
        assert_eq!(
            Reader::new(&bad).str("Name"),
            Err(WireError::InvalidUtf8 { field: "Name" })
        );
        assert_eq!(Reader::new(&bad).string("Name").unwrap(), "\u{fffd}a");
        assert_eq!(Reader::new(&[0xc0]).string("Name").unwrap(), "");
    }

    #[test]
    fn floats_round_trip_and_integers_convert() {
        let mut out = Vec::new();
        put_f64(&mut out, -1.5);
        assert_eq!(out[0], 0xcb);
        out.extend_from_slice(&[0xca, 0x3f, 0xc0, 0, 0, 0xd0, 0xfe, 0xc0]);
        let mut r = Reader::new(&out);
        assert_eq!(r.f64("f"), Ok(-1.5));
        assert_eq!(r.f64("f"), Ok(1.5), "float32");
        assert_eq!(r.f64("f"), Ok(-2.0), "int8");
        assert_eq!(r.f64("f"), Ok(0.0), "nil");
    }

    #[test]
    fn declared_counts_beyond_the_input_are_refused() {
        // A map of 2^32-1 entries in 5 bytes; an array of 3 in 2.
        let huge_map = [0xdf, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Reader::new(&huge_map).map_len("Tags"),
            Err(WireError::TooLarge {
                what: "Tags",
                len: u32::MAX as u64,
                limit: 0
            })
        );
        assert!(matches!(
            Reader::new(&[0x93, 1, 2]).array_len("Vec"),
            Err(WireError::TooLarge { what: "Vec", .. })
        ));
        assert_eq!(Reader::new(&[0x93, 1, 2, 3]).array_len("Vec"), Ok(3));
        assert_eq!(Reader::new(&[0xc0]).map_len("Tags"), Ok(0));
    }

    #[test]
    fn write_ext_forms_are_the_new_specs() {
        let header = |f: fn(&mut Vec<u8>, usize)| {
            [0, 31, 32, 255, 256, 65_536].map(|n| {
                let mut out = Vec::new();
                f(&mut out, n);
                out[..out.len() - n].to_vec()
            })
        };
        let strs = header(|out, n| put_str_ext(out, &"x".repeat(n)));
        assert_eq!(
            strs,
            [
                vec![0xa0],
                vec![0xbf],
                vec![0xd9, 32],
                vec![0xd9, 255],
                vec![0xda, 1, 0],
                vec![0xdb, 0, 1, 0, 0]
            ]
        );
        let bins = header(|out, n| put_bin_ext(out, Some(&vec![7; n])));
        assert_eq!(
            bins,
            [
                vec![0xc4, 0],
                vec![0xc4, 31],
                vec![0xc4, 32],
                vec![0xc4, 255],
                vec![0xc5, 1, 0],
                vec![0xc6, 0, 1, 0, 0]
            ]
        );
        let mut out = Vec::new();
        put_bin_ext(&mut out, None);
        assert_eq!(out, [0xc0]);
        // What the reader of this module reads back.
        let mut out = Vec::new();
        put_str_ext(&mut out, &"y".repeat(40));
        assert_eq!(Reader::new(&out).str("s").unwrap(), "y".repeat(40));
    }

    #[test]
    fn struct_fields_skip_unknown_fields_and_nesting_is_bounded() {
        // {"X": [1, 2], "A": 7}
        let v = [0x82, 0xa1, b'X', 0x92, 1, 2, 0xa1, b'A', 7];
        let mut a = 0;
        Reader::new(&v)
            .struct_fields("s", |r, k| match k {
                b"A" => {
                    a = r.uint("A", 255)?;
                    Ok::<_, WireError>(true)
                }
                _ => Ok(false),
            })
            .unwrap();
        assert_eq!(a, 7);
        fn descend(r: &mut Reader<'_>) -> Result<(), WireError> {
            r.nested(descend)
        }
        assert_eq!(descend(&mut Reader::new(&[])), Err(WireError::TooDeep));
    }

    #[test]
    fn byte_slice_accepts_arrays_of_small_ints() {
        let mut r = Reader::new(&[0x94, 10, 0, 0, 0xcc, 200]);
        assert_eq!(&*r.byte_slice("Addr").unwrap(), &[10, 0, 0, 200]);
        let mut r = Reader::new(&[0x91, 0xcd, 1, 0]);
        assert_eq!(
            r.byte_slice("Addr"),
            Err(WireError::IntegerOutOfRange { field: "Addr" })
        );
    }
}
