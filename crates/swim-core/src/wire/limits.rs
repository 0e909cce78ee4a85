//! Bounds on every size a peer can declare.

use super::WireError;

const MIB: usize = 1024 * 1024;

/// Bounds the decoder enforces; the defaults are upstream memberlist's.
///
/// A length or count a peer declares is checked against these before any
/// memory is reserved for it, and a declared length is only trusted once
/// that many bytes have actually arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes decompression may produce for one packet or stream
    /// message, all compress layers together (Go: 40 MiB).
    pub max_decompressed: usize,
    /// Most bytes decompression may produce for one datagram, all layers
    /// together (1 MiB). A datagram carries at most 64 KiB, and Go
    /// compresses only what it built to fit one, so anything near this is
    /// a compression bomb: refusing it early keeps a flood of them cheap.
    pub max_packet_decompressed: usize,
    /// Most member entries in one push/pull (Go: 1,048,576).
    pub max_push_nodes: usize,
    /// Most bytes of application state in one push/pull (Go: 20 MiB).
    pub max_user_state: usize,
    /// Most bytes in one stream user message (Go: 20 MiB).
    pub max_user_message: usize,
    /// Most bytes in one encrypted stream frame (Go: 20 MiB).
    pub max_stream_frame: usize,
    /// Most bytes a stream message may span on the wire before it is
    /// complete (40 MiB, the decompressed cap: no valid message is larger).
    pub max_stream_message: usize,
    /// Longest version field (`Vsn`) accepted; Go sends 6 bytes.
    pub max_vsn_len: usize,
    /// Deepest nesting of compound and compress layers in a packet; Go
    /// nests two (compress around compound).
    pub max_nesting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed: 40 * MIB,
            max_packet_decompressed: MIB,
            max_push_nodes: 1 << 20,
            max_user_state: 20 * MIB,
            max_user_message: 20 * MIB,
            max_stream_frame: 20 * MIB,
            max_stream_message: 40 * MIB,
            max_vsn_len: 32,
            max_nesting: 4,
        }
    }
}

impl Limits {
    /// `TooLarge` if `len > limit`.
    pub(crate) fn check(
        &self,
        what: &'static str,
        len: usize,
        limit: usize,
    ) -> Result<(), WireError> {
        if len > limit {
            Err(WireError::TooLarge {
                what,
                len: len as u64,
                limit: limit as u64,
            })
        } else {
            Ok(())
        }
    }
}
