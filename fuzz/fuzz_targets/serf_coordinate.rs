//! The payload of a peer's ack to our probe: its network coordinate (Go's
//! `pingDelegate.NotifyPingComplete`: a version byte, then a msgpack
//! `Coordinate`), and what Serf does with it — update our own coordinate.
//! No input may panic; a coordinate that decodes re-encodes to the same
//! bytes (compared as bytes: a NaN is not equal to itself), and our
//! coordinate stays valid whatever the peer claims.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use swim_serf::coordinate::{Coordinate, CoordinateClient, CoordinateConfig};

fuzz_target!(|payload: &[u8]| {
    let Ok(Some(coord)) = Coordinate::from_ping_payload(payload) else {
        return;
    };
    let bytes = coord.to_ping_payload();
    let again = Coordinate::from_ping_payload(&bytes)
        .expect("a re-encoded coordinate decodes")
        .expect("and is not empty");
    assert_eq!(
        again.to_ping_payload(),
        bytes,
        "re-encoding changed the coordinate"
    );
    let mut client = CoordinateClient::new(CoordinateConfig::default(), 1);
    for rtt in [
        Duration::from_millis(5),
        Duration::ZERO,
        Duration::from_secs(20),
    ] {
        let _ = client.update("peer", &coord, rtt);
        assert!(
            client.coordinate().is_valid(),
            "a peer's coordinate broke ours"
        );
    }
    let _ = client.distance_to(&coord);
});
