use super::*;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;

/// (name, LZW stream made by Go, the bytes it encodes) for every vector
/// that carries an LZW stream.
fn go_streams() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/vectors.json")).unwrap();
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
