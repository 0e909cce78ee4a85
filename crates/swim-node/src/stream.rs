//! One TCP exchange at a time: the dialled side of a push/pull or reliable
//! message, and the accepted side, each bounded by a deadline and by the
//! core's stream framer, so a slow or hostile peer holds nothing for long.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{select, Either};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use swim_core::wire::{Frame, Limits, StreamFramer, StreamRole, WireError};
use swim_core::{ExchangeError, IoKind};

use crate::runtime::Runtime;
use crate::transport::Transport;

/// Why reading a stream message failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    /// The peer closed before a whole message arrived.
    Closed,
    /// The bytes are not a message, or declare more than the limits allow.
    Wire(WireError),
}

/// Runs `fut` until `deadline`; `None` if the deadline came first.
pub(crate) async fn before<R: Runtime, T>(
    deadline: Instant,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    let fut = std::pin::pin!(fut);
    match select(fut, R::timer_at(deadline)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

/// Reads the one message a stream carries in `role`, as the framer measures
/// it; the framer's limits bound how much is buffered.
pub(crate) async fn read_message<S: futures_io::AsyncRead + Unpin>(
    stream: &mut S,
    role: StreamRole,
    limits: &Limits,
) -> Result<Vec<u8>, ReadError> {
    let mut framer = StreamFramer::new(role, limits.clone());
    let mut buf = Vec::new();
    loop {
        // Read straight into the message buffer, growing it with what
        // arrives: most messages are small, and a stream waiting on a slow
        // peer then holds only what that peer sent.
        let filled = buf.len();
        let room = buf.capacity().saturating_sub(filled).max(4096);
        buf.resize(filled + room, 0);
        let n = stream.read(&mut buf[filled..]).await;
        buf.truncate(filled + *n.as_ref().unwrap_or(&0));
        let n = n.map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        match framer.frame(&buf).map_err(ReadError::Wire)? {
            Frame::Complete { len } => {
                buf.truncate(len);
                return Ok(buf);
            }
            Frame::NeedMore if buf.len() > limits.max_stream_message => {
                return Err(ReadError::Wire(WireError::TooLarge {
                    what: "max_stream_message",
                    len: buf.len() as u64,
                    limit: limits.max_stream_message as u64,
                }));
            }
            Frame::NeedMore => {}
        }
    }
}

/// The dialling side of an exchange: connect, write `data`, and read one
/// reply if `expect_reply`, all before `deadline`.
pub(crate) async fn exchange<R: Runtime, T: Transport>(
    transport: Arc<T>,
    to: std::net::SocketAddr,
    data: Vec<u8>,
    expect_reply: bool,
    deadline: Instant,
    limits: Limits,
) -> Result<Vec<u8>, ExchangeError> {
    let work = async {
        let io = |e: io::Error| ExchangeError::Io(e.kind().into());
        let mut stream = transport.connect(to).await.map_err(io)?;
        stream.write_all(&data).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        if !expect_reply {
            let _ = stream.close().await;
            return Ok(Vec::new());
        }
        read_message(&mut stream, StreamRole::Reply, &limits)
            .await
            .map_err(|e| match e {
                ReadError::Io(e) => io(e),
                ReadError::Closed => ExchangeError::Io(IoKind::UnexpectedEof),
                // A TLS record's first byte (alert 21, handshake 22) is no
                // memberlist message type: the peer speaks TLS.
                ReadError::Wire(WireError::UnknownMessageType(21 | 22)) => {
                    ExchangeError::PeerSpeaksTls
                }
                ReadError::Wire(w) => ExchangeError::BadReply(w),
            })
    };
    before::<R, _>(deadline, work)
        .await
        .unwrap_or(Err(ExchangeError::Timeout))
}

/// Writes the core's answer to an accepted stream and closes it.
pub(crate) async fn reply<R: Runtime, S: futures_io::AsyncWrite + Unpin>(
    mut stream: S,
    data: Vec<u8>,
    deadline: Instant,
) -> io::Result<()> {
    let work = async {
        stream.write_all(&data).await?;
        stream.flush().await?;
        stream.close().await
    };
    before::<R, _>(deadline, work)
        .await
        .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))
}
