//! TLS for [`Tcp`](super::Tcp): rustls (ring provider) over futures-io,
//! configured from PEM files or from prepared rustls configurations.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::conn::TcpStream;

/// TLS for the [`Tcp`](super::Tcp) transport: the configuration a node
/// accepts connections with and the one it dials with.
///
/// Every node is both server and client. [`from_pem_files`](Self::from_pem_files)
/// builds both from one certificate: the node presents it as a server,
/// trusts peers whose certificates chain to the given roots, and — with
/// mutual TLS — presents it as a client too and refuses clients without a
/// certificate signed by those roots. By default a dialled peer's
/// certificate must name the IP address dialled;
/// [`with_server_name`](Self::with_server_name) checks one name for every
/// peer instead (a certificate shared by the cluster).
#[derive(Clone)]
pub struct TlsConfig {
    pub(super) server: Arc<ServerConfig>,
    pub(super) client: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Why a TLS configuration could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        source: pem::Error,
    },
    /// rustls refused the certificates, the key or the protocol versions.
    Rustls(rustls::Error),
    /// The trusted roots cannot verify clients (none, or all invalid).
    ClientVerifier(rustls::server::VerifierBuilderError),
    /// Not a DNS name or IP address a certificate can name.
    ServerName(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, source } => write!(f, "{}: {source}", path.display()),
            TlsError::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
            TlsError::ClientVerifier(e) => write!(f, "cannot verify client certificates: {e}"),
            TlsError::ServerName(name) => write!(f, "not a valid server name: {name:?}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Pem { source, .. } => Some(source),
            TlsError::Rustls(e) => Some(e),
            TlsError::ClientVerifier(e) => Some(e),
            TlsError::ServerName(_) => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> TlsError {
        TlsError::Rustls(e)
    }
}

fn pem_error(path: &Path) -> impl FnOnce(pem::Error) -> TlsError + '_ {
    move |source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    }
}

/// Every certificate in the PEM file at `path` (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(pem_error(path))?;
    if certs.is_empty() {
        return Err(pem_error(path)(pem::Error::NoItemsFound));
    }
    Ok(certs)
}

impl TlsConfig {
    /// A configuration from PEM files: the node's certificate chain
    /// (`cert`, leaf first) and private key (`key`), and the certificates
    /// of the authorities it trusts (`roots`). With `mutual`, the node also
    /// authenticates as a client with the same certificate and refuses
    /// clients that present none signed by `roots`.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        roots: impl AsRef<Path>,
        mutual: bool,
    ) -> Result<TlsConfig, TlsError> {
        let chain = certificates(cert.as_ref())?;
        let key = PrivateKeyDer::from_pem_file(key.as_ref()).map_err(pem_error(key.as_ref()))?;
        let mut trusted = RootCertStore::empty();
        for root in certificates(roots.as_ref())? {
            trusted.add(root)?;
        }
        let trusted = Arc::new(trusted);
        // ring, not aws-lc-rs (which needs cmake and nasm to build); rustls
        // deprecates it only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let server = if mutual {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(trusted.clone(), provider.clone())
                    .build()
                    .map_err(TlsError::ClientVerifier)?;
            server.with_client_cert_verifier(verifier)
        } else {
            server.with_no_client_auth()
        }
        .with_single_cert(chain.clone(), key.clone_key())?;

        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(trusted);
        let client = if mutual {
            client.with_client_auth_cert(chain, key)?
        } else {
            client.with_no_client_auth()
        };
        Ok(TlsConfig::from_rustls(Arc::new(server), Arc::new(client)))
    }

    /// A configuration from rustls's own: `server` to accept connections
    /// with, `client` to dial with (each fully under the caller's control:
    /// verifiers, resumption, key logging, protocol versions).
    pub fn from_rustls(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig {
            server,
            client,
            server_name: None,
        }
    }

    /// Checks every dialled peer's certificate against `name` (a DNS name
    /// or an IP address) rather than against the IP address dialled.
    pub fn with_server_name(mut self, name: &str) -> Result<TlsConfig, TlsError> {
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| TlsError::ServerName(name.to_string()))?;
        self.server_name = Some(name);
        Ok(self)
    }

    /// The name a certificate dialled at `to` must carry.
    fn name_for(&self, to: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(to.ip().into()))
    }

    /// The client's side of the handshake, on `stream` dialled at `to`.
    pub(super) async fn connect<S>(
        &self,
        stream: S,
        to: SocketAddr,
    ) -> std::io::Result<TcpStream<S>>
    where
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
    {
        let connector = futures_rustls::TlsConnector::from(self.client.clone());
        let tls = connector.connect(self.name_for(to), stream).await?;
        Ok(TcpStream::tls(tls.into()))
    }

    /// The server's side of the handshake, on an accepted `stream`.
    pub(super) async fn accept<S>(&self, stream: S) -> std::io::Result<TcpStream<S>>
    where
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
    {
        let acceptor = futures_rustls::TlsAcceptor::from(self.server.clone());
        let tls = acceptor.accept(stream).await?;
        Ok(TcpStream::tls(tls.into()))
    }
}
