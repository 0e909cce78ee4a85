//! `--check`: what loading does not try — that the node's address and the
//! HTTP listener's can be bound — without starting anything.

use std::net::{SocketAddr, TcpListener, UdpSocket};

use crate::settings::Loaded;

/// Binds and releases every address the agent would listen on; an error
/// names the key, where its value came from, and the address.
pub fn bindable(loaded: &Loaded) -> Result<(), String> {
    let bind = loaded.node.bind;
    let problem = |key: &str, addr: SocketAddr, e: std::io::Error| {
        format!("{}: {key}: cannot bind {addr}: {e}", loaded.origin(key))
    };
    // Port 0 picks a free port at start: nothing to check.
    if bind.port() != 0 {
        TcpListener::bind(bind).map_err(|e| problem("node.bind", bind, e))?;
        UdpSocket::bind(bind).map_err(|e| problem("node.bind", bind, e))?;
    }
    if let Some(http) = loaded.config.agent.http.filter(|a| a.port() != 0) {
        TcpListener::bind(http).map_err(|e| problem("agent.http", http, e))?;
    }
    Ok(())
}
