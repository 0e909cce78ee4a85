//! A running [`swim_core`] node, independent of the async runtime.
//!
//! The protocol lives in `swim-core` as a pure state machine; this crate
//! runs it: one task owns the [`swim_core::Swim`] value and loops — wait for
//! a datagram, a connection, a finished stream exchange, a command or the
//! next deadline; feed it in; carry out what the core asks. Applications
//! hold a cheap, cloneable [`Node`] handle and read [`Events`].
//!
//! Three things are pluggable, each behind a trait:
//!
//! * the async runtime — timers, clock, executor, and nothing that moves
//!   bytes — is a [`Runtime`]: `swim-tokio` for tokio, `swim-async-std` for
//!   async-std and smol implement it (and [`Sockets`], their runtime's UDP
//!   and TCP), re-export this crate under the same names, and open their
//!   docs with runnable examples;
//! * the network is a [`Transport`] with state, the only way bytes come and
//!   go: [`UdpTcp`] (memberlist's own, the default), [`Tcp`] (everything on
//!   TCP, optionally TLS; not interoperable with Go's default transport),
//!   [`MemoryNetwork`] for many nodes in one process, or one of your own;
//! * what the protocol asks the application — alive filter, merge veto,
//!   state on demand, ack payloads, broadcasts pulled on demand — is a
//!   [`Delegate`]; what it tells the application comes
//!   as [`Events`].
//!
//! [`NodeBuilder`] puts them together.
//!
//! Bounds: incoming streams are capped ([`NodeConfig::max_incoming_streams`])
//! and each is read through the core's stream framer under the core's
//! [`Limits`] and the stream timeout, so peers
//! cannot hold more than `max_incoming_streams × max_stream_message` bytes,
//! or hold anything longer than `tcp_timeout`; at the cap, new connections
//! wait in the kernel's backlog. Events are bounded without losing any
//! member's state ([`Events`] says how). Input peers control is logged at
//! most ten lines a second.
//!
//! # For Go memberlist users
//!
#![doc = include_str!("../GO.md")]

mod advertise;
mod config;
mod dns;
mod driver;
mod events;
mod memory;
mod metrics;
mod node;
mod runtime;
mod seed;
mod sockets;
mod stream;
mod tcp;
mod transport;

use std::future::Future;
use std::hash::BuildHasher;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use config::{parse_key, JoinRetries, NodeConfig, NodeSettings, SettingsError};
pub use events::Events;
pub use memory::{MemoryNetwork, MemoryStream, MemoryTransport};
pub use node::{Error, IntoSeed, JoinFailure, JoinFailureReason, MemberStatus, Node, ResolveError};
pub use runtime::Runtime;
pub use seed::{Seed, SeedError};
pub use sockets::{bind_udp, Sockets, UDP_RECV_BUFFER};
pub use swim_core;
// The protocol's vocabulary, so that everything the API takes or returns is
// named from here (and from the adapters, which re-export it).
pub use swim_core::wire::{self, Keyring, Limits, SecretKey, WireError};
pub use swim_core::{
    BroadcastId, BroadcastOutcome, CatchUp, Cidr, CommandError, Config, ConfigError,
    DefaultDelegate, Delegate, Event, ExchangeError, IoKind, Member, MemberCounts, MemberState,
    Preset, Rejection, Stats, SuspicionTimeouts, META_MAX_SIZE, PROTOCOL_VERSION_MAX,
    PROTOCOL_VERSION_MIN,
};
pub use tcp::{Tcp, TcpConfig, TcpStats, TcpStream};
#[cfg(feature = "tls")]
pub use tcp::{TlsConfig, TlsError};
pub use transport::{Transport, UdpTcp};

use driver::{BoxDelegate, Clock, Driver};
use events::EventQueue;
use node::{Resolve, Shared};
use seed::Resolver;
use swim_core::Swim;

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
    /// Membership broadcasts queued now (Go's `memberlist.queue.broadcasts`).
    pub broadcast_queue_len: usize,
    /// User broadcasts queued now.
    pub user_broadcast_queue_len: usize,
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

/// The transport a node gets when none is given: [`UdpTcp`] on sockets `S`,
/// bound to [`NodeConfig::bind`] when the node starts.
pub struct DefaultTransport<S>(PhantomData<fn() -> S>);

impl<S> std::fmt::Debug for DefaultTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DefaultTransport")
    }
}

/// Starts a node on runtime `R`: its configuration, and — if the defaults do
/// not do — a [`Delegate`] and a [`Transport`].
///
/// Adapters name it for their runtime and sockets (`swim_tokio::builder(config)`
/// is a `NodeBuilder<TokioRuntime, DefaultTransport<TokioSockets>>`); their
/// `start(config)` is `builder(config).start()`.
#[must_use]
pub struct NodeBuilder<R: Runtime, T> {
    config: NodeConfig,
    delegate: BoxDelegate,
    transport: T,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime, T> std::fmt::Debug for NodeBuilder<R, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime, S: Sockets> NodeBuilder<R, DefaultTransport<S>> {
    /// A node with `config`, no delegate and the default transport.
    pub fn new(config: NodeConfig) -> Self {
        NodeBuilder {
            config,
            delegate: Box::new(DefaultDelegate),
            transport: DefaultTransport(PhantomData),
            runtime: PhantomData,
        }
    }

    /// Binds UDP and TCP at [`NodeConfig::bind`] and builds the node without
    /// running it: returns the handle, the events and the driver future,
    /// which the caller spawns on its executor.
    pub async fn bind(
        self,
    ) -> Result<(Node, Events, impl Future<Output = ()> + Send + 'static), StartError> {
        let transport = UdpTcp::<S>::bind(self.config.bind).await?;
        self.transport(transport).bind().await
    }

    /// Binds, then runs the node on the runtime's executor.
    pub async fn start(self) -> Result<(Node, Events), StartError> {
        let (node, events, driver) = self.bind().await?;
        R::spawn(driver);
        Ok((node, events))
    }
}

impl<R: Runtime, T> NodeBuilder<R, T> {
    /// The configuration the node will start with, to adjust (a layer on
    /// top, such as Serf, sets the protocol settings it needs).
    pub fn config_mut(&mut self) -> &mut NodeConfig {
        &mut self.config
    }

    /// Answers what the protocol asks while it runs (see [`Delegate`]).
    /// It is called on the node's task with the node's core locked: keep it
    /// quick, and do not call the node's synchronous reads
    /// ([`Node::members`], [`Node::member_table`], [`Node::local_node`])
    /// from it — they panic
    /// there rather than wait on the lock forever (Go's `Members` from an
    /// `EventDelegate` or `AliveDelegate` would wait).
    pub fn delegate(mut self, delegate: impl Delegate + Send + 'static) -> Self {
        self.delegate = Box::new(delegate);
        self
    }

    /// Carries the node's traffic on `transport` instead of UDP and TCP at
    /// [`NodeConfig::bind`] (which is then unused).
    pub fn transport<U: Transport>(self, transport: U) -> NodeBuilder<R, U> {
        NodeBuilder {
            config: self.config,
            delegate: self.delegate,
            transport,
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime, T: Transport> NodeBuilder<R, T> {
    /// Builds the node on its transport without running it: returns the
    /// handle, the events and the driver future to spawn.
    pub async fn bind(
        self,
    ) -> Result<(Node, Events, impl Future<Output = ()> + Send + 'static), StartError> {
        let NodeBuilder {
            mut config,
            delegate,
            transport,
            ..
        } = self;
        let bound = transport.local_addr();
        config.swim.advertise =
            advertise_for(config.swim.advertise, bound, advertise::host_addresses)?;
        transport.advertise(config.swim.advertise);
        let seed = config
            .seed
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(bound));
        let clock = Clock::start::<R>();
        let join_pauses = config.join_pauses();
        let swim = Swim::builder(config.swim, seed)
            .delegate(delegate)
            .build(clock.now())
            .map_err(StartError::Config)?;
        let resolver = Resolver {
            servers: config.dns_servers,
            timeout: config.dns_timeout,
            default_port: config
                .default_port
                .unwrap_or(swim.config().advertise.port()),
        };
        let resolve: Resolve = Arc::new(move |seed| {
            let resolver = resolver.clone();
            Box::pin(R::unblock(move || resolver.resolve(&seed)))
        });
        // Shared: the handles read the member table from the core itself.
        let counts = Arc::new(node::Counts::default());
        counts.update(&swim);
        let core = Arc::new(Mutex::new(swim));
        let (commands_tx, commands_rx) = async_channel::bounded(32);
        let events = EventQueue::new(config.event_capacity, config.event_bytes);
        let driver = Driver::<R, T>::new(driver::Parts {
            swim: core.clone(),
            clock,
            transport: Arc::new(transport),
            commands: commands_rx,
            events: events.clone(),
            counts: counts.clone(),
            max_incoming: config.max_incoming_streams,
            max_event_payload: config.event_bytes,
            metrics: metrics::Metrics::new(&config.metric_labels),
        });
        let node = Node {
            shared: Arc::new(Shared {
                commands: commands_tx,
                core,
                counts,
                clock,
                bound,
                resolve,
                sleep: Arc::new(|d| Box::pin(R::timer_at(R::now() + d))),
                join_pauses,
            }),
        };
        Ok((node, Events::new(events), driver.run()))
    }

    /// Builds the node, then runs it on the runtime's executor.
    pub async fn start(self) -> Result<(Node, Events), StartError> {
        let (node, events, driver) = self.bind().await?;
        R::spawn(driver);
        Ok((node, events))
    }
}

/// The address to advertise: `advertise` as configured, its unspecified IP
/// and zero port filled from the transport's `bound` address, and — when
/// that is unspecified too (bound to `0.0.0.0` or `::`) — a private address
/// of this host (among `host`'s), as Go picks one; none is an error, as in Go.
fn advertise_for(
    advertise: SocketAddr,
    bound: SocketAddr,
    host: impl FnOnce() -> io::Result<Vec<std::net::IpAddr>>,
) -> Result<SocketAddr, StartError> {
    let mut chosen = advertise;
    if chosen.ip().is_unspecified() {
        if bound.ip().is_unspecified() {
            let addresses = host().map_err(StartError::Io)?;
            let ip = advertise::choose(bound.ip(), &addresses).ok_or_else(|| {
                StartError::Advertise(format!(
                    "bound to {bound}, and this host has no private address to advertise \
                     (RFC 1918, RFC 6598{}; it has {addresses:?}): set Config::advertise \
                     (Go's AdvertiseAddr) to the address peers reach this node at",
                    if bound.is_ipv6() {
                        ", or IPv6 unique local"
                    } else {
                        ""
                    }
                ))
            })?;
            tracing::info!(%ip, %bound, "advertising a private address of this host");
            chosen.set_ip(ip);
        } else {
            chosen.set_ip(bound.ip());
        }
    }
    if chosen.port() == 0 {
        chosen.set_port(bound.port());
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_every_address_advertises_a_private_one_or_refuses() {
        let any: SocketAddr = "0.0.0.0:7946".parse().unwrap();
        let unset: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let host = |list: &'static [&'static str]| {
            move || Ok(list.iter().map(|s| s.parse().unwrap()).collect())
        };
        let chosen = advertise_for(unset, any, host(&["192.0.2.2", "10.0.0.9"])).unwrap();
        assert_eq!(chosen, "10.0.0.9:7946".parse().unwrap());
        let refused = advertise_for(unset, any, host(&["127.0.0.1", "192.0.2.2"])).unwrap_err();
        let why = refused.to_string();
        assert!(matches!(refused, StartError::Advertise(_)), "{why}");
        assert!(
            why.contains("Config::advertise") && why.contains("192.0.2.2"),
            "{why}"
        );
        // An advertise address set, or a specific bind, needs no guess.
        let set: SocketAddr = "192.0.2.2:0".parse().unwrap();
        let none = || -> io::Result<Vec<std::net::IpAddr>> { unreachable!() };
        assert_eq!(
            advertise_for(set, any, none).unwrap(),
            "192.0.2.2:7946".parse().unwrap()
        );
    }
}
