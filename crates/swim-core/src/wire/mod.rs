//! memberlist's wire protocol, byte for byte (docs/protocol.md).
//!
//! * [`Message`] and its parts: every message, with encoders that write what
//!   Go memberlist v0.2.2 writes and decoders that take what Go takes.
//! * Layers around messages: [`encode_compound`] / [`for_each_message`]
//!   (compound and compress unwrapped recursively), [`lzw`], CRC, labels and
//!   encryption with a [`Keyring`], all applied in Go's order by an
//!   [`Envelope`].
//! * [`StreamFramer`]: finds where one message ends in the bytes read so far
//!   from a TCP stream, which plain streams never say.
//! * [`Limits`]: every size a peer can declare is bounded before anything is
//!   allocated for it.
//! * [`msgpack`]: the Go codec's msgpack profile these messages (and Serf's)
//!   are written in.
//!
//! Nothing here panics on input: every failure is a [`WireError`].

mod compound;
mod envelope;
mod error;
mod framer;
pub mod keyring;
mod limits;
pub mod lzw;
mod message;
pub mod msgpack;

pub(crate) use compound::for_each_batch;
pub use compound::{
    encode_compound, encode_compress, for_each_message, pack_compounds, CompoundParts,
    COMPOUND_OVERHEAD, COMPOUND_PART_OVERHEAD, MAX_COMPOUND_PARTS,
};
pub use envelope::{Envelope, StreamRead};
pub use error::WireError;
pub use framer::{Frame, StreamFramer, StreamRole};
pub use keyring::{EncryptionVersion, Keyring, SecretKey};
pub use limits::Limits;
pub use message::{
    Accusation, Ack, Alive, ErrorResponse, IndirectPing, Message, MessageType, Nack, NodeState,
    Ping, PushNodeState, PushPull, Transport,
};
