//! What [`Tcp`](super::Tcp) puts on a connection besides the node's own
//! bytes: a one-byte kind at its start; on a datagram connection, the
//! sender's advertised address, then length-prefixed frames.
//!
//! ```text
//! stream connection:    0x01, then the stream as memberlist writes it
//! datagram connection:  0x02, family (4 | 6), IP (4 | 16 bytes), port (u16 BE),
//!                       then frames: length (u32 BE), the datagram
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use futures_io::AsyncRead;
use futures_util::AsyncReadExt;

/// The first byte of a stream connection (push/pull, reliable messages).
pub(super) const STREAM: u8 = 0x01;
/// The first byte of a connection carrying datagrams.
pub(super) const DATAGRAMS: u8 = 0x02;

/// Why a peer's connection was refused: what a hostile or confused peer
/// gets, counted and logged, never a panic.
#[derive(Debug)]
pub(super) enum Fault {
    /// The connection failed, timed out, or ended mid-frame.
    Io(io::Error),
    /// The TLS handshake failed.
    #[cfg(feature = "tls")]
    Handshake(io::Error),
    /// The first byte names no kind of connection (a peer speaking another
    /// protocol: memberlist's own TCP streams, plaintext to TLS, …).
    Kind(u8),
    /// The sender's address is of no known family.
    Family(u8),
    /// A frame longer than the largest datagram accepted.
    TooLarge { len: u64, limit: usize },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Io(e) => write!(f, "connection failed: {e}"),
            #[cfg(feature = "tls")]
            Fault::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            Fault::Kind(k) => write!(f, "unknown connection kind {k:#04x}"),
            Fault::Family(k) => write!(f, "unknown address family {k}"),
            Fault::TooLarge { len, limit } => {
                write!(f, "frame of {len} bytes exceeds the limit of {limit}")
            }
        }
    }
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

/// A datagram connection's preamble: its kind and the sender's address.
pub(super) fn preamble(sender: SocketAddr) -> Vec<u8> {
    let mut out = vec![DATAGRAMS];
    match sender.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&sender.port().to_be_bytes());
    out
}

/// Reads the sender's address that follows [`DATAGRAMS`].
pub(super) async fn read_sender<C: AsyncRead + Unpin>(conn: &mut C) -> Result<SocketAddr, Fault> {
    let mut family = [0u8; 1];
    conn.read_exact(&mut family).await?;
    let ip = match family[0] {
        4 => {
            let mut octets = [0u8; 4];
            conn.read_exact(&mut octets).await?;
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        6 => {
            let mut octets = [0u8; 16];
            conn.read_exact(&mut octets).await?;
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        other => return Err(Fault::Family(other)),
    };
    let mut port = [0u8; 2];
    conn.read_exact(&mut port).await?;
    Ok(SocketAddr::new(ip, u16::from_be_bytes(port)))
}

/// Appends `datagram` to `out` as one frame.
pub(super) fn put_frame(out: &mut Vec<u8>, datagram: &[u8]) {
    // Callers refuse datagrams over the frame limit, itself a `u32`.
    out.extend_from_slice(&(datagram.len() as u32).to_be_bytes());
    out.extend_from_slice(datagram);
}

/// Reads the next frame, at most `limit` bytes; `None` when the peer
/// closed the connection between frames.
pub(super) async fn read_frame<C: AsyncRead + Unpin>(
    conn: &mut C,
    limit: usize,
) -> Result<Option<Vec<u8>>, Fault> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match conn.read(&mut len[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(Fault::Io(io::ErrorKind::UnexpectedEof.into())),
            n => got += n,
        }
    }
    let len = u32::from_be_bytes(len) as u64;
    if len > limit as u64 {
        return Err(Fault::TooLarge { len, limit });
    }
    let mut frame = vec![0; len as usize];
    conn.read_exact(&mut frame).await?;
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(fut: F) -> F::Output {
        futures_util::FutureExt::now_or_never(fut).expect("reads from a slice never wait")
    }

    #[test]
    fn preamble_and_frames_round_trip() {
        for sender in ["10.0.0.1:7946", "[fe80::1]:1"] {
            let sender: SocketAddr = sender.parse().unwrap();
            let mut bytes = preamble(sender);
            put_frame(&mut bytes, b"ping");
            put_frame(&mut bytes, b"");
            let mut conn = &bytes[1..];
            assert_eq!(bytes[0], DATAGRAMS);
            assert_eq!(block_on(read_sender(&mut conn)).unwrap(), sender);
            assert_eq!(
                block_on(read_frame(&mut conn, 4)).unwrap().unwrap(),
                b"ping"
            );
            assert_eq!(block_on(read_frame(&mut conn, 4)).unwrap().unwrap(), b"");
            assert!(block_on(read_frame(&mut conn, 4)).unwrap().is_none());
        }
    }

    #[test]
    fn hostile_input_is_a_fault() {
        let mut big = Vec::new();
        put_frame(&mut big, &[0; 5]);
        assert!(matches!(
            block_on(read_frame(&mut &big[..], 4)),
            Err(Fault::TooLarge { len: 5, limit: 4 })
        ));
        let huge = u32::MAX.to_be_bytes();
        assert!(matches!(
            block_on(read_frame(&mut &huge[..], 65_536)),
            Err(Fault::TooLarge { .. })
        ));
        assert!(matches!(
            block_on(read_frame(&mut &[0, 0, 0, 3, 1][..], 4)),
            Err(Fault::Io(_))
        ));
        assert!(matches!(
            block_on(read_frame(&mut &[0, 0][..], 4)),
            Err(Fault::Io(_))
        ));
        assert!(matches!(
            block_on(read_sender(&mut &[5, 1, 2][..])),
            Err(Fault::Family(5))
        ));
        assert!(matches!(
            block_on(read_sender(&mut &[4, 1][..])),
            Err(Fault::Io(_))
        ));
    }
}
