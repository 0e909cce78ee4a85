//! The msgpack profile memberlist speaks (docs/protocol.md §3).
//!
//! Written by hand rather than on `rmp`'s helpers because Go's profile is not
//! msgpack's canonical one: strings and byte slices are the old "raw" type
//! (fixstr, str16, str32 — never str8, never bin), nil slices are `nil`, and
//! the decoder must take any integer width with range checks, bin or str for
//! strings, maps in any key order or positional arrays. The reader borrows
//! from its input so decoding a message allocates nothing.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::WireError;

/// Deepest container nesting `skip_value` follows; Go's own messages are flat.
const MAX_SKIP_DEPTH: usize = 32;

// ---------------------------------------------------------------- writing

/// Appends a map header for `len` entries.
pub(crate) fn put_map_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else {
        // memberlist's maps have at most eight entries; kept for completeness.
        out.push(0xde);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
}

/// Appends a map key (always a fixstr: every Go field name is short).
pub(crate) fn put_key(out: &mut Vec<u8>, key: &'static str) {
    debug_assert!(key.len() < 32);
    out.push(0xa0 | key.len() as u8);
    out.extend_from_slice(key.as_bytes());
}

/// Appends a Go "raw" string: fixstr, str16 or str32 (never str8, never bin).
pub(crate) fn put_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// Appends a Go `[]byte`: nil (`0xc0`) when empty, as Go writes a nil slice,
/// else a raw string.
pub(crate) fn put_byte_slice(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        out.push(0xc0);
    } else {
        put_raw(out, bytes);
    }
}

/// Appends an unsigned integer in its smallest form.
pub(crate) fn put_uint(out: &mut Vec<u8>, v: u64) {
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

/// Appends a Go `int` the way go-msgpack v0.5.5 (memberlist v0.2.2) does:
/// non-negative values in unsigned forms, negative ones in the smallest
/// signed form.
pub(crate) fn put_int(out: &mut Vec<u8>, v: i64) {
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
pub(crate) fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(if v { 0xc3 } else { 0xc2 });
}

// ---------------------------------------------------------------- reading

/// The shape of a struct on the wire: Go sends maps; it also accepts a
/// positional array in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    Map(usize),
    Array(usize),
}

/// A cursor over msgpack bytes that borrows everything it returns.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// An integer as read off the wire, before range checks.
enum Int {
    Unsigned(u64),
    Negative(i64),
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        let b = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Takes exactly `n` bytes, or fails with `Truncated` without moving.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
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

    /// Reads a struct header: a map or an array.
    pub(crate) fn container(&mut self, field: &'static str) -> Result<Container, WireError> {
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

    /// Reads a str- or bin-family value (or nil, as `None`) and borrows its
    /// bytes.
    fn raw(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, WireError> {
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
    pub(crate) fn key(&mut self) -> Result<&'a [u8], WireError> {
        Ok(self.raw("key")?.unwrap_or(&[]))
    }

    /// Reads a Go `string` field: str, bin or nil (as "").
    pub(crate) fn string(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        let bytes = self.raw(field)?.unwrap_or(&[]);
        core::str::from_utf8(bytes).map_err(|_| WireError::InvalidUtf8 { field })
    }

    /// Reads a Go `[]byte` field: str, bin, nil (as empty), or an array of
    /// small unsigned integers (the one form that cannot be borrowed).
    pub(crate) fn byte_slice(&mut self, field: &'static str) -> Result<Cow<'a, [u8]>, WireError> {
        match self.buf.get(self.pos).copied() {
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
    pub(crate) fn uint(&mut self, field: &'static str, max: u64) -> Result<u64, WireError> {
        match self.int(field)? {
            None => Ok(0),
            Some(Int::Unsigned(v)) if v <= max => Ok(v),
            Some(_) => Err(WireError::IntegerOutOfRange { field }),
        }
    }

    /// Reads a Go `int` field (64-bit), in v0.2.2's unsigned or upstream's
    /// signed forms.
    pub(crate) fn int64(&mut self, field: &'static str) -> Result<i64, WireError> {
        match self.int(field)? {
            None => Ok(0),
            Some(Int::Negative(v)) => Ok(v),
            Some(Int::Unsigned(v)) => {
                i64::try_from(v).map_err(|_| WireError::IntegerOutOfRange { field })
            }
        }
    }

    /// Reads a bool field: true/false, nil (false), or the integers 0 and 1.
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.buf.get(self.pos).copied() {
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

    /// Skips one value of any type, following containers up to a fixed depth.
    pub(crate) fn skip_value(&mut self) -> Result<(), WireError> {
        self.skip_value_within(usize::MAX, "")
    }

    /// Like [`skip_value`](Self::skip_value), but a value declared to end
    /// past `limit` bytes from the start of the input is `TooLarge` as soon
    /// as its header is read, not `Truncated` until all of it has arrived.
    pub(crate) fn skip_value_within(
        &mut self,
        limit: usize,
        what: &'static str,
    ) -> Result<(), WireError> {
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
