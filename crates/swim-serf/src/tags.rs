//! A member's tags, carried as its memberlist metadata (Go's
//! `encodeTags` / `decodeTags`).
//!
//! Serf protocol 3 and later: byte `0xff`, then a msgpack map of string to
//! string. Before 3 the metadata was the bare value of the `role` tag, and
//! metadata not starting with `0xff` is still read that way. The encoded
//! tags must fit memberlist's metadata limit, 512 bytes.

use std::collections::BTreeMap;

use crate::messages::DecodeError;
use swim_core::wire::msgpack::{self as mp, Reader};

/// A member's tags. Ordered, so encoding is deterministic (Go writes a map
/// of several tags in random order; any order decodes the same).
pub type Tags = BTreeMap<String, String>;

/// The first byte of tags in Serf protocol 3 and later.
pub const TAG_MAGIC_BYTE: u8 = 0xff;

/// Most bytes of encoded tags: memberlist's metadata limit.
pub const MAX_TAGS_LEN: usize = swim_core::META_MAX_SIZE;

/// Why tags cannot be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagsTooLarge(pub usize);

impl core::fmt::Display for TagsTooLarge {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "encoded tags of {} bytes exceed {MAX_TAGS_LEN}", self.0)
    }
}

impl std::error::Error for TagsTooLarge {}

/// Tags as node metadata (protocol 3 and later), refused over
/// [`MAX_TAGS_LEN`].
pub fn encode_tags(tags: &Tags) -> Result<Vec<u8>, TagsTooLarge> {
    let mut out = vec![TAG_MAGIC_BYTE];
    put_tag_map(&mut out, tags);
    if out.len() > MAX_TAGS_LEN {
        return Err(TagsTooLarge(out.len()));
    }
    Ok(out)
}

/// Tags from node metadata. Metadata without the magic byte (empty
/// included) is a pre-3 bare role: `{"role": meta}`, as Go reads it.
pub fn decode_tags(meta: &[u8]) -> Result<Tags, DecodeError> {
    match meta.split_first() {
        Some((&TAG_MAGIC_BYTE, body)) => read_tag_map(&mut Reader::new(body)),
        _ => Ok(Tags::from([(
            "role".to_owned(),
            String::from_utf8_lossy(meta).into_owned(),
        )])),
    }
}

pub(crate) fn put_tag_map(out: &mut Vec<u8>, tags: &Tags) {
    mp::put_map_len(out, tags.len());
    for (k, v) in tags {
        mp::put_str(out, k);
        mp::put_str(out, v);
    }
}

pub(crate) fn read_tag_map(r: &mut Reader<'_>) -> Result<Tags, DecodeError> {
    let n = r.map_len("Tags")?;
    r.nested(|r| {
        let mut tags = Tags::new();
        for _ in 0..n {
            let k = r.string("Tags")?;
            let v = r.string("Tags")?;
            tags.insert(k, v);
        }
        Ok(tags)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_over_the_metadata_limit_are_refused() {
        let tags = Tags::from([("k".to_owned(), "v".repeat(600))]);
        assert_eq!(encode_tags(&tags), Err(TagsTooLarge(607)));
        let fits = Tags::from([("k".to_owned(), "v".repeat(500))]);
        assert!(encode_tags(&fits).unwrap().len() <= MAX_TAGS_LEN);
    }

    #[test]
    fn metadata_without_the_magic_byte_is_a_bare_role() {
        assert_eq!(decode_tags(b"db").unwrap()["role"], "db");
        assert_eq!(decode_tags(b"").unwrap()["role"], "");
    }
}
