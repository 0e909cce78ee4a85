//! A running [`swim_core`] node, independent of the async runtime.
//!
//! The protocol lives in `swim-core` as a pure state machine; this crate
//! runs it on real sockets: one task owns the [`swim_core::Swim`]
//! value and loops — wait for a packet, a connection, a finished stream
//! exchange, a command or the next deadline; feed it in; carry out what the
//! core asks. Applications hold a cheap, cloneable [`Node`] handle and read
//! [`Events`].
//!
//! The sockets and timers come from an adapter implementing [`Net`]:
//! `swim-tokio` for tokio, `swim-async-std` for async-std and smol. Use one
//! of those: they re-export this crate and their docs open with runnable
//! examples.
//!
//! Bounds: incoming streams are capped ([`NodeConfig::max_incoming_streams`])
//! and each is read through the core's stream framer under the core's
//! [`Limits`](swim_core::wire::Limits) and the stream timeout, so peers
//! cannot hold more than `max_incoming_streams × max_stream_message` bytes,
//! or hold anything longer than `tcp_timeout`; at the cap, new connections
//! wait in the kernel's backlog. Input peers control is logged
//! at most ten lines a second.

mod config;
mod driver;
mod metrics;
mod net;
mod node;
mod stream;

use std::future::Future;
use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use config::{parse_key, NodeConfig, NodeSettings, Profile, SettingsError};
pub use net::Net;
pub use node::{Error, Events, Node};
pub use swim_core;

use driver::{Clock, Driver};
use node::{Shared, View};
use swim_core::{ConfigError, Swim};

/// Counters of the node: the core's, and what only the running node sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// The protocol's counters.
    pub core: swim_core::Stats,
    /// Times [`max_incoming_streams`](NodeConfig::max_incoming_streams)
    /// were open at once, so accepting paused (new connections wait in the
    /// kernel's backlog).
    pub streams_at_capacity: u64,
    /// Incoming streams that failed: timed out, closed early, or not a
    /// valid message.
    pub stream_errors: u64,
    /// Incoming streams in flight now.
    pub incoming_streams: usize,
    /// Datagrams the socket refused to send.
    pub send_errors: u64,
    /// Events dropped because the reader was behind.
    pub events_dropped: u64,
}

/// Why a node could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The protocol configuration is invalid.
    Config(ConfigError),
    /// The advertise address cannot be derived from the bind address.
    Advertise(String),
    /// Binding the sockets failed.
    Io(io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Advertise(why) => f.write_str(why),
            StartError::Io(e) => write!(f, "cannot bind: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> StartError {
        StartError::Io(e)
    }
}

/// Binds UDP and TCP on one port. With port 0 the kernel picks the TCP
/// port; if that UDP port is taken, try another.
async fn bind_sockets<N: Net>(bind: SocketAddr) -> io::Result<(N::Udp, N::Listener, SocketAddr)> {
    let attempts = if bind.port() == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let listener = N::bind_tcp(bind).await?;
        let bound = N::tcp_local_addr(&listener)?;
        match N::bind_udp(bound).await {
            Ok(udp) => return Ok((udp, listener, bound)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()))
}

/// Binds the sockets and builds a node without running it: returns the
/// handle, the events and the driver future, which the caller spawns on its
/// executor. Adapters wrap this; most applications call their `start`.
pub async fn bind<N: Net>(
    mut config: NodeConfig,
) -> Result<(Node, Events, impl Future<Output = ()> + Send + 'static), StartError> {
    let (udp, listener, bound) = bind_sockets::<N>(config.bind).await?;
    let advertise = &mut config.swim.advertise;
    if advertise.ip().is_unspecified() {
        if bound.ip().is_unspecified() {
            return Err(StartError::Advertise(format!(
                "bound to {bound}: give an advertise address peers can reach"
            )));
        }
        advertise.set_ip(bound.ip());
    }
    if advertise.port() == 0 {
        advertise.set_port(bound.port());
    }
    let seed = config
        .seed
        .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(bound));
    let clock = Clock::start();
    // The shared view follows the core's change log, which records what
    // events do not (suspicions, refutations).
    let swim = Swim::builder(config.swim, seed)
        .record_member_changes()
        .build(clock.now())
        .map_err(StartError::Config)?;
    let local = swim.local_node();
    let view = Arc::new(Mutex::new(View {
        members: [(local.name.clone(), local.clone())].into(),
        local,
        health: swim.health_score(),
    }));
    let (commands_tx, commands_rx) = async_channel::bounded(32);
    // Unbounded in type, bounded by the driver (`event_capacity`): a bounded
    // channel would allocate every slot up front, for every node.
    let (events_tx, events_rx) = async_channel::unbounded();
    let driver = Driver::<N>::new(
        swim,
        clock,
        udp,
        listener,
        commands_rx,
        events_tx,
        view.clone(),
        config.max_incoming_streams,
        config.event_capacity,
        metrics::Metrics::new(&config.metric_labels),
    );
    let node = Node {
        shared: Arc::new(Shared {
            commands: commands_tx,
            view,
            bound,
        }),
    };
    Ok((
        node,
        Events {
            rx: Box::pin(events_rx),
        },
        driver.run(),
    ))
}
