//! Certificates for the TLS scenarios, made once per test process with
//! rcgen into a directory of their own, as PEM files: the path a
//! deployment takes (`TlsConfig::from_pem_files`).
//!
//! * `ca.pem`: the authority every node trusts;
//! * `node.pem` / `node.key`: a node's certificate from it, naming
//!   `localhost`, `127.0.0.1` and `::1` (every test node shares it);
//! * `rogue-ca.pem`, `rogue.pem` / `rogue.key`: another authority and a
//!   certificate from it, with the same names: a stranger's.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use swim_node::TlsConfig;

/// The names every test certificate carries.
const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The directory holding the test certificates, made on first use.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("swim-tests-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        authority(&dir, "ca", "node");
        authority(&dir, "rogue-ca", "rogue");
        dir
    })
}

/// Writes `{ca}.pem`, an authority, and `{leaf}.pem` / `{leaf}.key`, a
/// certificate it issued.
fn authority(dir: &Path, ca: &str, leaf: &str) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, ca);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a CA key"))
        .expect("a CA certificate");
    let key = KeyPair::generate().expect("a node key");
    let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("node parameters");
    params.distinguished_name.push(DnType::CommonName, leaf);
    let cert = params.signed_by(&key, &issuer).expect("a node certificate");
    let write = |name: String, pem: String| {
        std::fs::write(dir.join(name), pem).expect("write a PEM file");
    };
    write(format!("{ca}.pem"), issuer.pem());
    write(format!("{leaf}.pem"), cert.pem());
    write(format!("{leaf}.key"), key.serialize_pem());
}

/// A path in [`dir`].
pub fn file(name: &str) -> PathBuf {
    dir().join(name)
}

/// A test node's TLS: `node.pem` trusting `ca.pem`, mutual if `mutual`.
pub fn node_tls(mutual: bool) -> TlsConfig {
    TlsConfig::from_pem_files(file("node.pem"), file("node.key"), file("ca.pem"), mutual)
        .expect("the test node's TLS configuration")
}

/// A stranger's TLS: `rogue.pem`, from another authority, trusting
/// `ca.pem` (so it would accept the cluster, if the cluster accepted it).
pub fn rogue_tls(mutual: bool) -> TlsConfig {
    TlsConfig::from_pem_files(file("rogue.pem"), file("rogue.key"), file("ca.pem"), mutual)
        .expect("the stranger's TLS configuration")
}
