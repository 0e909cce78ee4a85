//! The msgpack Go's Serf RPC speaks (go-msgpack, `RawToString`,
//! `WriteExt`). Writing is swim-core's writer in the RPC's forms. Reading is
//! a value decoder of its own: the RPC is a stream of values with no
//! framing, so a value is read only once all of its bytes arrived, which
//! swim-core's reader (for whole datagrams and streams) does not tell.

use swim_node::swim_core::wire::msgpack as mp;

/// One msgpack value. Strings and binaries are both bytes: Go's clients
/// send either for a string or a `[]byte` field, and its decoder takes both.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    Uint(u64),
    /// A float (32 or 64 bits).
    Float(f64),
    /// A string or a binary.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map, in the order sent.
    Map(Vec<(Value, Value)>),
}

/// Why bytes are not a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// More bytes are needed.
    Incomplete,
    /// A type byte msgpack does not define, or one the RPC never uses (ext).
    BadType(u8),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("unexpected end of input"),
            DecodeError::BadType(b) => write!(f, "unsupported msgpack type byte 0x{b:02x}"),
            DecodeError::TooDeep => write!(f, "values nested deeper than {MAX_DEPTH}"),
        }
    }
}

/// Deepest nesting read: the RPC's deepest body is a map of maps.
pub const MAX_DEPTH: usize = 8;

/// Reads one value from the front of `buf`; returns it and the bytes it
/// took.
pub fn decode(buf: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Incomplete)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn bytes(&mut self, n: usize) -> Result<Value, DecodeError> {
        Ok(Value::Bytes(self.take(n)?.to_vec()))
    }

    /// `n` elements, each at least a byte: a count past the bytes there
    /// are is incomplete, before anything is allocated for it.
    fn check_count(&self, n: usize) -> Result<(), DecodeError> {
        if n > self.buf.len() - self.pos {
            return Err(DecodeError::Incomplete);
        }
        Ok(())
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        self.check_count(n)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        self.check_count(n.saturating_mul(2))?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            items.push((k, v));
        }
        Ok(Value::Map(items))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let b = self.take(1)?[0];
        let signed = |v: i64| {
            if v >= 0 {
                Value::Uint(v as u64)
            } else {
                Value::Int(v)
            }
        };
        Ok(match b {
            0x00..=0x7f => Value::Uint(u64::from(b)),
            0x80..=0x8f => return self.map(usize::from(b & 0x0f), depth),
            0x90..=0x9f => return self.array(usize::from(b & 0x0f), depth),
            0xa0..=0xbf => return self.bytes(usize::from(b & 0x1f)),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                return self.bytes(n);
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                return self.bytes(n);
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                return self.bytes(n);
            }
            0xca => Value::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Float(f64::from_bits(self.uint(8)?)),
            0xcc => Value::Uint(self.uint(1)?),
            0xcd => Value::Uint(self.uint(2)?),
            0xce => Value::Uint(self.uint(4)?),
            0xcf => Value::Uint(self.uint(8)?),
            0xd0 => signed(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => signed(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => signed(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => signed(self.uint(8)? as i64),
            0xdc => {
                let n = self.uint(2)? as usize;
                return self.array(n, depth);
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                return self.array(n, depth);
            }
            0xde => {
                let n = self.uint(2)? as usize;
                return self.map(n, depth);
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                return self.map(n, depth);
            }
            0xe0..=0xff => Value::Int(i64::from(b as i8)),
            other => return Err(DecodeError::BadType(other)),
        })
    }
}

/// Why a value is not the field a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Value {
    /// The map's value under `key`; a missing field is Go's zero value,
    /// hence `None` and no error.
    pub fn field(&self, key: &str) -> Result<Option<&Value>, FieldError> {
        let Value::Map(items) = self else {
            return Err(FieldError(format!("expected a map, got {}", self.kind())));
        };
        Ok(items
            .iter()
            .find(|(k, _)| matches!(k, Value::Bytes(b) if b == key.as_bytes()))
            .map(|(_, v)| v)
            .filter(|v| **v != Value::Nil))
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::Uint(_) => "integer",
            Value::Float(_) => "float",
            Value::Bytes(_) => "string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    fn wrong(&self, key: &str, want: &str) -> FieldError {
        FieldError(format!("field {key}: expected {want}, got {}", self.kind()))
    }

    /// A string field (`""` when missing).
    pub fn str(&self, key: &str) -> Result<String, FieldError> {
        match self.field(key)? {
            None => Ok(String::new()),
            Some(Value::Bytes(b)) => String::from_utf8(b.clone())
                .map_err(|_| FieldError(format!("field {key}: not UTF-8"))),
            Some(v) => Err(v.wrong(key, "a string")),
        }
    }

    /// A `[]byte` field (empty when missing).
    pub fn bin(&self, key: &str) -> Result<Vec<u8>, FieldError> {
        match self.field(key)? {
            None => Ok(Vec::new()),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            Some(v) => Err(v.wrong(key, "bytes")),
        }
    }

    /// A boolean field (`false` when missing).
    pub fn bool(&self, key: &str) -> Result<bool, FieldError> {
        match self.field(key)? {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(v.wrong(key, "a bool")),
        }
    }

    /// An unsigned integer field (0 when missing).
    pub fn uint(&self, key: &str) -> Result<u64, FieldError> {
        match self.field(key)? {
            None => Ok(0),
            Some(Value::Uint(n)) => Ok(*n),
            Some(v) => Err(v.wrong(key, "an unsigned integer")),
        }
    }

    /// A signed integer field (0 when missing).
    pub fn int(&self, key: &str) -> Result<i64, FieldError> {
        match self.field(key)? {
            None => Ok(0),
            Some(Value::Uint(n)) => {
                i64::try_from(*n).map_err(|_| FieldError(format!("field {key}: out of range")))
            }
            Some(Value::Int(n)) => Ok(*n),
            Some(v) => Err(v.wrong(key, "an integer")),
        }
    }

    /// A `[]string` field (empty when missing).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, FieldError> {
        match self.field(key)? {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Bytes(b) => String::from_utf8(b.clone())
                        .map_err(|_| FieldError(format!("field {key}: not UTF-8"))),
                    v => Err(v.wrong(key, "strings")),
                })
                .collect(),
            Some(v) => Err(v.wrong(key, "an array")),
        }
    }

    /// A `map[string]string` field (empty when missing), in the order sent.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, FieldError> {
        match self.field(key)? {
            None => Ok(Vec::new()),
            Some(Value::Map(items)) => items
                .iter()
                .map(|(k, v)| match (k, v) {
                    (Value::Bytes(k), Value::Bytes(v)) => Ok((
                        String::from_utf8(k.clone())
                            .map_err(|_| FieldError(format!("field {key}: not UTF-8")))?,
                        String::from_utf8(v.clone())
                            .map_err(|_| FieldError(format!("field {key}: not UTF-8")))?,
                    )),
                    _ => Err(FieldError(format!("field {key}: expected strings"))),
                })
                .collect(),
            Some(v) => Err(v.wrong(key, "a map")),
        }
    }
}

/// Writes values as Go's encoder does with `WriteExt`: strings as str,
/// byte slices as bin, integers in their shortest form (swim-core's
/// writer, chained).
#[derive(Debug, Default)]
pub struct Encoder {
    /// The bytes written so far.
    pub out: Vec<u8>,
}

impl Encoder {
    /// A map header of `n` entries.
    pub fn map(&mut self, n: usize) -> &mut Self {
        mp::put_map_len(&mut self.out, n);
        self
    }

    /// An array header of `n` items.
    pub fn array(&mut self, n: usize) -> &mut Self {
        mp::put_array_len(&mut self.out, n);
        self
    }

    /// A string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        mp::put_str_ext(&mut self.out, s);
        self
    }

    /// A byte slice (`nil` for none, as Go writes a nil slice).
    pub fn bin(&mut self, b: Option<&[u8]>) -> &mut Self {
        mp::put_bin_ext(&mut self.out, b);
        self
    }

    /// `nil`.
    pub fn nil(&mut self) -> &mut Self {
        mp::put_nil(&mut self.out);
        self
    }

    /// A boolean.
    pub fn bool(&mut self, b: bool) -> &mut Self {
        mp::put_bool(&mut self.out, b);
        self
    }

    /// A non-negative integer.
    pub fn uint(&mut self, n: u64) -> &mut Self {
        mp::put_uint(&mut self.out, n);
        self
    }

    /// A float64.
    pub fn f64(&mut self, v: f64) -> &mut Self {
        mp::put_f64(&mut self.out, v);
        self
    }

    /// A `map[string]string`.
    pub fn string_map<'a>(
        &mut self,
        entries: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        self.map(entries.len());
        for (k, v) in entries {
            self.str(k).str(v);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut e = Encoder::default();
        e.map(3)
            .str("Seq")
            .uint(70_000)
            .str("Payload")
            .bin(Some(&[1; 300]))
            .str("Tags")
            .string_map([(&"a".to_string(), &"b".to_string())].into_iter());
        let (v, used) = decode(&e.out).unwrap();
        assert_eq!(used, e.out.len());
        assert_eq!(v.uint("Seq").unwrap(), 70_000);
        assert_eq!(v.bin("Payload").unwrap(), vec![1; 300]);
        assert_eq!(
            v.string_map("Tags").unwrap(),
            vec![("a".into(), "b".into())]
        );
        assert_eq!(v.str("Missing").unwrap(), "");
    }

    #[test]
    fn a_value_cut_short_is_incomplete_at_every_length() {
        let mut e = Encoder::default();
        e.map(2).str("Command").str("members").str("Seq").uint(1);
        for n in 0..e.out.len() {
            assert_eq!(decode(&e.out[..n]), Err(DecodeError::Incomplete), "{n}");
        }
    }

    #[test]
    fn huge_counts_and_deep_nesting_allocate_nothing() {
        // An array claiming 2^32-1 items in 5 bytes.
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(decode(&[0x91; 64]), Err(DecodeError::TooDeep));
        assert_eq!(decode(&[0xc1]), Err(DecodeError::BadType(0xc1)));
    }

    #[test]
    fn signed_forms_read_as_numbers() {
        assert_eq!(decode(&[0xd0, 0x05]).unwrap().0, Value::Uint(5));
        assert_eq!(decode(&[0xd0, 0xfb]).unwrap().0, Value::Int(-5));
        assert_eq!(decode(&[0xff]).unwrap().0, Value::Int(-1));
        let wrong = Value::Map(vec![(Value::Bytes(b"Seq".to_vec()), Value::Bool(true))]);
        assert!(wrong.uint("Seq").is_err());
    }
}
