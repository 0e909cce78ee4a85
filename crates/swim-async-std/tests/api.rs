//! Every type the API takes or returns is named from this crate alone: a
//! user needs no other dependency (finding 6 of the "truthful library"
//! issue: `MemberStatus`, `JoinFailureReason`, `BroadcastOutcome` and
//! `META_MAX_SIZE` were reachable only through `swim-node`).

#![allow(dead_code, unused_imports)]

use swim_async_std::{
    parse_key, wire, AsyncStdRuntime, AsyncStdSockets, BroadcastId, BroadcastOutcome, CatchUp,
    Cidr, CommandError, Config, ConfigError, DefaultDelegate, DefaultTransport, Delegate, Error,
    Event, Events, ExchangeError, IntoSeed, IoKind, JoinFailure, JoinFailureReason, JoinRetries,
    Keyring, Limits, Member, MemberCounts, MemberState, MemberStatus, MemoryNetwork, MemoryStream,
    MemoryTransport, Node, NodeBuilder, NodeConfig, NodeSettings, NodeStats, Preset, Rejection,
    ResolveError, Runtime, SecretKey, Seed, SeedError, SettingsError, Sockets, StartError, Stats,
    SuspicionTimeouts, Tcp, TcpConfig, TcpStats, TcpStream, Transport, UdpTcp, WireError,
    META_MAX_SIZE, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};

/// Names each type where the API hands it over.
fn names_what_it_gets(node: &Node, error: &Error, event: &Event) {
    let table: Vec<MemberStatus> = node.member_table();
    let _: Option<&Member> = table.first().map(|s| &s.member);
    let _: Option<MemberState> = table.first().map(|s| s.member.state);
    if let Error::Join(failures) = error {
        let failure: &JoinFailure = &failures[0];
        match &failure.reason {
            JoinFailureReason::Resolve(e) => {
                let _: &ResolveError = e;
            }
            JoinFailureReason::Exchange(e) => {
                let _: &ExchangeError = e;
                if let ExchangeError::Io(kind) = e {
                    let _: std::io::ErrorKind = (*kind).into();
                }
            }
            _ => {}
        }
    }
    if let Error::Command(e) = error {
        let _: &CommandError = e;
    }
    if let Error::Seed(e) = error {
        let _: &SeedError = e;
    }
    if let Event::BroadcastFinished { id, outcome } = event {
        let _: (BroadcastId, BroadcastOutcome) = (*id, *outcome);
    }
    let _: usize = META_MAX_SIZE;
}

#[test]
fn the_api_is_named_from_this_crate() {
    let meta_max: usize = META_MAX_SIZE;
    assert_eq!(meta_max, 512);
    assert!(matches!(
        BroadcastOutcome::Sent,
        swim_async_std::swim_core::BroadcastOutcome::Sent
    ));
    let key: SecretKey = parse_key("000102030405060708090a0b0c0d0e0f").unwrap();
    let _: Keyring = Keyring::new(key);
    let limits: Limits = Limits::default();
    assert!(limits.max_user_message > 0);
    let _: fn(&Node, &Error, &Event) = names_what_it_gets;
}
