//! A service built on `swim-tokio` from the outside: it depends on nothing
//! else, and names every type the API hands it. Compiling is the test.

#![deny(warnings)]

use std::time::Duration;

use swim_tokio::{
    BroadcastId, BroadcastOutcome, CommandError, Config, Error, Event, Events, ExchangeError,
    IoKind, JoinFailure, JoinFailureReason, Member, MemberState, MemberStatus, MemoryNetwork, Node,
    NodeConfig, NodeStats, ResolveError, SecretKey, SeedError, StartError, META_MAX_SIZE,
};

/// What the service tells its operator about a command.
pub fn explain(error: &Error) -> String {
    match error {
        Error::Command(CommandError::PayloadTooLarge { len, limit, .. }) => {
            format!("{len} bytes: over {limit}")
        }
        Error::Command(e) => e.to_string(),
        Error::Seed(SeedError { seed, reason, .. }) => format!("{seed}: {reason}"),
        Error::Join(failures) => failures.iter().map(explain_seed).collect(),
        Error::Datagram { to, kind, .. } => format!("{to}: {kind:?}"),
        Error::Send(e) => explain_exchange(e),
        other => other.to_string(),
    }
}

fn explain_seed(failure: &JoinFailure) -> String {
    match &failure.reason {
        JoinFailureReason::Resolve(ResolveError { kind, message, .. }) => {
            format!("{kind:?}: {message}")
        }
        JoinFailureReason::Exchange(e) => explain_exchange(e),
        other => format!("{other:?}"),
    }
}

fn explain_exchange(e: &ExchangeError) -> String {
    match e {
        ExchangeError::Io(kind) => format!("{:?}", std::io::ErrorKind::from(*kind)),
        ExchangeError::NameTaken { addr } => format!("name taken at {addr}"),
        ExchangeError::NotAccepted => "not accepted".into(),
        other => other.to_string(),
    }
}

/// Members and when they entered their state.
pub fn table(node: &Node) -> Vec<(String, MemberState, std::time::Instant)> {
    node.member_table()
        .into_iter()
        .map(|MemberStatus { member, since, .. }| (member.name.to_string(), member.state, since))
        .collect()
}

/// Reads events until a broadcast finishes.
pub async fn wait_for(events: &Events, id: BroadcastId) -> Option<BroadcastOutcome> {
    while let Some(event) = events.recv().await {
        match event {
            Event::BroadcastFinished { id: done, outcome } if done == id => return Some(outcome),
            Event::UserMessage { node, .. } => drop::<Option<std::sync::Arc<str>>>(node),
            Event::MemberJoined(Member { .. }) => {}
            _ => {}
        }
    }
    None
}

/// Starts a node on a network in memory, publishes metadata, reads stats.
pub async fn start(
    net: &MemoryNetwork,
    key: SecretKey,
) -> Result<NodeStats, Box<dyn std::error::Error>> {
    let addr = "10.0.0.1:7946".parse()?;
    let config = NodeConfig::new(addr, Config::local("a", addr));
    let started: Result<_, StartError> = swim_tokio::builder(config)
        .transport(net.transport(addr)?)
        .start()
        .await;
    let (node, _events) = started?;
    node.update_meta(&vec![0; META_MAX_SIZE]).await?;
    node.add_key(key).await?;
    let _: Option<IoKind> = None;
    node.leave(Duration::from_secs(1)).await?;
    Ok(node.stats().await?)
}
