//! A connection of [`Tcp`](super::Tcp): the runtime's TCP stream, or TLS
//! over it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// A stream of the [`Tcp`](super::Tcp) transport: plaintext TCP, or TLS
/// when the transport has a TLS configuration.
pub struct TcpStream<S>(Conn<S>);

enum Conn<S> {
    Plain(S),
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::TlsStream<S>>),
}

impl<S> std::fmt::Debug for TcpStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Conn::Plain(_) => "TcpStream(plain)",
            #[cfg(feature = "tls")]
            Conn::Tls(_) => "TcpStream(tls)",
        })
    }
}

impl<S> TcpStream<S> {
    pub(super) fn plain(stream: S) -> Self {
        TcpStream(Conn::Plain(stream))
    }

    #[cfg(feature = "tls")]
    pub(super) fn tls(stream: futures_rustls::TlsStream<S>) -> Self {
        TcpStream(Conn::Tls(Box::new(stream)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TcpStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TcpStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Conn::Plain(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}
