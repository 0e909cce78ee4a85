//! The msgpack profile Go Serf's codec (hashicorp/go-msgpack, a default
//! `MsgpackHandle`) writes, and a bounded reader for what it accepts.
//!
//! It is memberlist's profile (swim-core's `wire::msgpack`, which that crate
//! keeps private) plus what Serf's messages need besides: arrays, maps with
//! data keys, signed integers, nested structs. Writing: strings and byte
//! slices are the old "raw" family (fixstr, str16, str32 — never str8 or
//! bin); nil slices, maps and pointers are `nil`; integers take their
//! smallest form, non-negative signed ones the unsigned forms. Reading takes
//! any integer width (range-checked), str or bin for strings, and `nil` for
//! any field (its zero value).
//!
//! Every declared length is checked against the bytes that remain before
//! anything is reserved, so decoding allocates at most in proportion to its
//! input; nesting is bounded; nothing panics on input.

use crate::messages::DecodeError;

/// Deepest container nesting the reader follows (Serf's deepest is 4).
const MAX_DEPTH: usize = 16;

// ---------------------------------------------------------------- writing

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

/// Appends a map header.
pub(crate) fn put_map_len(out: &mut Vec<u8>, len: usize) {
    put_len(out, len, 0x80, 16, 0xde);
}

/// Appends an array header.
pub(crate) fn put_array_len(out: &mut Vec<u8>, len: usize) {
    put_len(out, len, 0x90, 16, 0xdc);
}

/// Appends a raw string (fixstr, str16, str32).
pub(crate) fn put_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len(), 0xa0, 32, 0xda);
    out.extend_from_slice(bytes);
}

/// Appends a Go `string`.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_raw(out, s.as_bytes());
}

/// Appends a Go `[]byte`: `None` is a nil slice.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push(0xc0),
        Some(b) => put_raw(out, b),
    }
}

/// Appends `nil`.
pub(crate) fn put_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
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

/// Appends a signed integer as Go's codec does: non-negative ones as unsigned.
pub(crate) fn put_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        put_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, v as u8]);
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
/// A float64, as go-msgpack always writes one (`0xcb`).
pub(crate) fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.push(0xcb);
    out.extend_from_slice(&v.to_bits().to_be_bytes());
}

pub(crate) fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(if v { 0xc3 } else { 0xc2 });
}

/// Appends a map key (a Go field name).
pub(crate) fn put_key(out: &mut Vec<u8>, key: &str) {
    put_str(out, key);
}

// ---------------------------------------------------------------- reading

/// A cursor over msgpack bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// What has not been read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// Reads `nil` if it comes next.
    pub(crate) fn nil(&mut self) -> Result<bool, DecodeError> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// A declared element count, refused when the input cannot hold that
    /// many elements (each takes at least `min_size` bytes).
    fn count(&self, n: usize, min_size: usize, field: &'static str) -> Result<usize, DecodeError> {
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(DecodeError::TooLarge { field, len: n });
        }
        Ok(n)
    }

    /// Reads a map header (`nil` reads as an empty map).
    pub(crate) fn map_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let m = self.byte()?;
        let n = match m {
            0xc0 => 0,
            0x80..=0x8f => (m & 0x0f) as usize,
            0xde => self.be(2)? as usize,
            0xdf => self.be(4)? as usize,
            found => return Err(DecodeError::Unexpected { field, found }),
        };
        self.count(n, 2, field)
    }

    /// Reads an array header (`nil` reads as an empty array).
    pub(crate) fn array_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let m = self.byte()?;
        let n = match m {
            0xc0 => 0,
            0x90..=0x9f => (m & 0x0f) as usize,
            0xdc => self.be(2)? as usize,
            0xdd => self.be(4)? as usize,
            found => return Err(DecodeError::Unexpected { field, found }),
        };
        self.count(n, 1, field)
    }

    /// Reads a str or bin value; `None` for nil.
    pub(crate) fn raw(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
        let m = self.byte()?;
        let len = match m {
            0xc0 => return Ok(None),
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 | 0xc4 => self.be(1)? as usize,
            0xda | 0xc5 => self.be(2)? as usize,
            0xdb | 0xc6 => self.be(4)? as usize,
            found => return Err(DecodeError::Unexpected { field, found }),
        };
        self.take(len).map(Some)
    }

    /// Reads a Go `string` (nil reads as ""); not UTF-8 checked by Go either,
    /// so invalid bytes are replaced rather than refused.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        Ok(String::from_utf8_lossy(self.raw(field)?.unwrap_or_default()).into_owned())
    }

    /// Reads a Go `[]byte`: `None` for nil.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Option<Vec<u8>>, DecodeError> {
        Ok(self.raw(field)?.map(<[u8]>::to_vec))
    }

    /// Reads any integer as `i128`, the common range of every form.
    fn int(&mut self, field: &'static str) -> Result<i128, DecodeError> {
        let m = self.byte()?;
        Ok(match m {
            0xc0 => 0,
            0x00..=0x7f => m as i128,
            0xe0..=0xff => (m as i8) as i128,
            0xcc => self.be(1)? as i128,
            0xcd => self.be(2)? as i128,
            0xce => self.be(4)? as i128,
            0xcf => self.be(8)? as i128,
            0xd0 => (self.be(1)? as u8 as i8) as i128,
            0xd1 => (self.be(2)? as u16 as i16) as i128,
            0xd2 => (self.be(4)? as u32 as i32) as i128,
            0xd3 => (self.be(8)? as i64) as i128,
            found => return Err(DecodeError::Unexpected { field, found }),
        })
    }

    /// Reads an unsigned integer of at most `max`.
    pub(crate) fn uint(&mut self, field: &'static str, max: u64) -> Result<u64, DecodeError> {
        let v = self.int(field)?;
        if v < 0 || v > max as i128 {
            return Err(DecodeError::OutOfRange { field });
        }
        Ok(v as u64)
    }

    /// Reads a signed 64-bit integer.
    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        i64::try_from(self.int(field)?).map_err(|_| DecodeError::OutOfRange { field })
    }

    /// Reads a float (float64, float32, or any integer: Go converts).
    pub(crate) fn f64(&mut self, field: &'static str) -> Result<f64, DecodeError> {
        match self.peek()? {
            0xcb => {
                self.pos += 1;
                Ok(f64::from_bits(self.be(8)?))
            }
            0xca => {
                self.pos += 1;
                Ok(f32::from_bits(self.be(4)? as u32) as f64)
            }
            _ => Ok(self.int(field)? as f64),
        }
    }

    /// Reads a bool (nil reads as false).
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.byte()? {
            0xc0 | 0xc2 => Ok(false),
            0xc3 => Ok(true),
            found => Err(DecodeError::Unexpected { field, found }),
        }
    }

    /// Reads a struct: a map of field names, each handed to `field` with the
    /// reader positioned at its value. `field` returns false for a name it
    /// does not know, whose value is then skipped (Go ignores it too).
    pub(crate) fn struct_fields(
        &mut self,
        name: &'static str,
        mut field: impl FnMut(&mut Self, &[u8]) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let n = self.map_len(name)?;
        self.nested(|r| {
            for _ in 0..n {
                let key = r.raw(name)?.unwrap_or_default();
                if !field(r, key)? {
                    r.skip()?;
                }
            }
            Ok(())
        })
    }

    /// Runs `f` one nesting level deeper, refusing input nested too deep.
    pub(crate) fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// Skips one value of any type.
    pub(crate) fn skip(&mut self) -> Result<(), DecodeError> {
        let m = self.byte()?;
        let (len, items) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * (m & 0x0f) as usize),
            0x90..=0x9f => (0, (m & 0x0f) as usize),
            0xa0..=0xbf => ((m & 0x1f) as usize, 0),
            0xc4 | 0xd9 => (self.be(1)? as usize, 0),
            0xc5 | 0xda => (self.be(2)? as usize, 0),
            0xc6 | 0xdb => (self.be(4)? as usize, 0),
            0xc7 => (self.be(1)? as usize + 1, 0),
            0xc8 => (self.be(2)? as usize + 1, 0),
            0xc9 => (self.be(4)? as usize + 1, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, self.be(2)? as usize),
            0xdd => (0, self.be(4)? as usize),
            0xde => (0, 2 * self.be(2)? as usize),
            0xdf => (0, 2 * self.be(4)? as usize),
            found => {
                return Err(DecodeError::Unexpected {
                    field: "value",
                    found,
                })
            }
        };
        self.take(len)?;
        let items = self.count(items, 1, "value")?;
        self.nested(|r| (0..items).try_for_each(|_| r.skip()))
    }
}
