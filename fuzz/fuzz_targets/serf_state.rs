//! One `Serf` driven by a small byte-code: the Swim's member events, Serf
//! messages from peers (raw, or built from fields the input picks, with
//! Lamport times up to `u64::MAX`), push/pull states, ack payloads, time,
//! and the application's commands. No input may panic, and after each
//! operation: the three Lamport clocks never go back nor past the limit
//! peers may push them to; every refusal is counted once; the member table
//! agrees with the state Serf hands to push/pulls (status times for exactly
//! its members, left members distinct and left); the event buffer keeps
//! each event in its time's slot, within the per-time bound.
#![no_main]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use swim_core::{Event, Instant, MemberState};
use swim_serf::bounds::{EVENTS_PER_LTIME_MAX, LAMPORT_TIME_LIMIT};
use swim_serf::messages::{
    Filter, Join, Leave, Message, PushPull, Query, QueryResponse, Relay, UserEvent,
};
use swim_serf::tags::{encode_tags, Tags};
use swim_serf::{
    IncomingQuery, LamportTime, MemberStatus, QueryParams, Serf, SerfConfig, SerfOutput,
    SerfRejection,
};

const NAMES: [&str; 6] = ["a", "b", "c", "me", "", "a-rather-longer-node-name"];
const ME: &str = "me";
const BUFFERS: [usize; 3] = [1, 4, 512];

/// The fuzz input, read front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.byte() as usize % items.len()]
    }

    /// A length-prefixed run of raw bytes.
    fn bytes(&mut self) -> &'a [u8] {
        let n = (self.byte() as usize).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }

    fn name(&mut self) -> String {
        self.pick(&NAMES).to_owned()
    }

    /// Mostly small times (to collide with the clocks), sometimes the
    /// edges a hostile peer would pick.
    fn ltime(&mut self) -> LamportTime {
        LamportTime(match self.byte() {
            b @ 0..=199 => u64::from(b % 16),
            200..=209 => u64::MAX,
            210..=219 => u64::MAX - 1,
            220..=229 => LAMPORT_TIME_LIMIT - 1,
            230..=239 => LAMPORT_TIME_LIMIT,
            240..=247 => 500 + u64::from(self.byte()) * 4,
            _ => self.u64(),
        })
    }

    fn duration(&mut self) -> Duration {
        match self.byte() {
            b @ 0..=249 => Duration::from_millis(u64::from(b) * 50),
            250 => Duration::from_nanos(i64::MAX as u64),
            _ => Duration::from_secs(u64::from(self.u32())),
        }
    }

    fn payload(&mut self) -> Option<Vec<u8>> {
        match self.byte() % 4 {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(self.bytes().to_vec()),
            _ => Some(vec![b'p'; 9 * 1024 + usize::from(self.byte())]),
        }
    }

    fn member(&mut self) -> swim_core::Member {
        let name = self.name();
        let port = 7946 + u16::from(self.byte() % 3);
        let meta = match self.byte() % 3 {
            0 => Vec::new(),
            1 => encode_tags(&Tags::from([("role".to_owned(), self.name())])).unwrap(),
            _ => self.bytes().to_vec(),
        };
        let vsn = [2, 5, 2, 2, 5, 2 + self.byte() % 4];
        swim_core::Member {
            name: Arc::from(name.as_str()),
            addr: SocketAddr::from(([10, 0, 0, 1 + self.byte() % 4], port)),
            meta: Arc::from(meta),
            incarnation: u32::from(self.byte()),
            state: MemberState::Alive,
            vsn,
        }
    }

    fn message(&mut self) -> Vec<u8> {
        let msg = match self.byte() % 8 {
            0 => Message::Join(Join {
                ltime: self.ltime(),
                node: self.name(),
            }),
            1 => Message::Leave(Leave {
                ltime: self.ltime(),
                node: self.name(),
                prune: self.byte() % 2 == 0,
            }),
            2 => Message::UserEvent(UserEvent {
                ltime: self.ltime(),
                name: self.name(),
                payload: self.payload(),
                coalesce: self.byte() % 2 == 0,
            }),
            3 => {
                let filters = match self.byte() % 4 {
                    0 => vec![Filter::Nodes(vec![self.name()]).to_bytes()],
                    1 => vec![Filter::Tag {
                        tag: "role".to_owned(),
                        expr: self.name(),
                    }
                    .to_bytes()],
                    2 => vec![self.bytes().to_vec()],
                    _ => Vec::new(),
                };
                let name = match self.byte() % 4 {
                    0 => "_serf_conflict".to_owned(),
                    1 => "_serf_list-keys".to_owned(),
                    2 => "_serf_install-key".to_owned(),
                    _ => self.name(),
                };
                Message::Query(Query {
                    ltime: self.ltime(),
                    id: u32::from(self.byte() % 4),
                    addr: Some(vec![10, 0, 0, 1 + self.byte() % 4]),
                    port: 7946,
                    source_node: self.name(),
                    filters,
                    flags: u32::from(self.byte() % 4),
                    relay_factor: self.byte() % 3,
                    timeout: self.duration(),
                    name,
                    payload: self.payload(),
                })
            }
            4 => Message::QueryResponse(QueryResponse {
                ltime: self.ltime(),
                id: self.u32(),
                from: self.name(),
                flags: u32::from(self.byte() % 2),
                payload: self.payload(),
            }),
            5 => {
                let inner = self.message();
                Message::Relay(Relay {
                    dest_ip: vec![10, 0, 0, 1 + self.byte() % 4],
                    dest_port: 7946,
                    dest_zone: String::new(),
                    dest_name: self.name(),
                    message: inner,
                })
            }
            6 => Message::PushPull(self.push_pull()),
            _ => return self.bytes().to_vec(),
        };
        msg.to_bytes()
    }

    fn push_pull(&mut self) -> PushPull {
        let mut pp = PushPull {
            ltime: self.ltime(),
            event_ltime: self.ltime(),
            query_ltime: self.ltime(),
            ..PushPull::default()
        };
        for _ in 0..self.byte() % 4 {
            let name = self.name();
            pp.status_ltimes.insert(name, self.ltime());
        }
        for _ in 0..self.byte() % 3 {
            pp.left_members.push(self.name());
        }
        for _ in 0..self.byte() % 4 {
            let slot = match self.byte() % 3 {
                0 => None,
                _ => Some(swim_serf::messages::EventsAt {
                    ltime: self.ltime(),
                    events: (0..self.byte() % 3)
                        .map(|_| swim_serf::messages::EventRecord {
                            name: self.name(),
                            payload: self.payload(),
                        })
                        .collect(),
                }),
            };
            pp.events.push(slot);
        }
        pp
    }
}

/// What must hold after every operation; `prev` is the last clocks seen.
fn check(serf: &Serf, prev: &mut [LamportTime; 3]) {
    let clocks = [serf.clock(), serf.event_clock(), serf.query_clock()];
    for (now, before) in clocks.iter().zip(prev.iter()) {
        assert!(now >= before, "a clock went back: {before} -> {now}");
        // Peers stop at the limit; our commands, a tick each at most,
        // go on from there.
        assert!(
            now.0 <= LAMPORT_TIME_LIMIT + 64,
            "a peer pushed a clock to {now}"
        );
    }
    *prev = clocks;
    let stats = serf.stats();
    let by_reason: u64 = SerfRejection::ALL
        .iter()
        .map(|&why| stats.rejected_for(why))
        .sum();
    assert_eq!(
        stats.rejected, by_reason,
        "a refusal counted twice or never"
    );

    let Ok(Message::PushPull(state)) = Message::decode(&serf.local_state()) else {
        panic!("our own push/pull state does not decode");
    };
    let members = serf.members();
    let names: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let timed: BTreeSet<&str> = state.status_ltimes.keys().map(String::as_str).collect();
    assert_eq!(
        names, timed,
        "status times for other nodes than the members"
    );
    assert!(members.iter().all(|m| m.status != MemberStatus::None));
    let left: BTreeSet<&str> = state.left_members.iter().map(String::as_str).collect();
    assert_eq!(left.len(), state.left_members.len(), "a left member twice");
    for name in left {
        let status = serf.member(name).map(|m| m.status);
        assert_eq!(status, Some(MemberStatus::Left), "{name} listed as left");
    }
    assert_eq!(state.events.len(), serf.config().event_buffer);
    for (i, slot) in state.events.iter().enumerate() {
        if let Some(at) = slot {
            assert_eq!(at.ltime.0 % state.events.len() as u64, i as u64);
            assert!(at.events.len() <= EVENTS_PER_LTIME_MAX);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut config = SerfConfig::new(ME);
    config.seed = 7;
    config.event_buffer = input.pick(&BUFFERS);
    config.query_buffer = input.pick(&BUFFERS);
    if input.byte() % 2 == 0 {
        config.coalesce_period = Duration::from_secs(1);
        config.quiescent_period = Duration::from_millis(100);
        config.user_coalesce_period = Duration::from_secs(1);
        config.user_quiescent_period = Duration::from_millis(100);
    }
    let mut serf = Serf::new(config).expect("a valid configuration");
    let mut now = Instant::ZERO;
    let mut prev = [LamportTime(0); 3];
    let mut incoming: Vec<IncomingQuery> = Vec::new();
    let me = swim_core::Member {
        name: Arc::from(ME),
        addr: SocketAddr::from(([10, 0, 0, 9], 7946)),
        meta: Arc::from(Vec::new()),
        incarnation: 0,
        state: MemberState::Alive,
        vsn: [2, 5, 2, 2, 5, 5],
    };
    serf.handle_event(now, &Event::MemberJoined(me));
    check(&serf, &mut prev);
    for _ in 0..64 {
        if input.0.is_empty() {
            break;
        }
        match input.byte() % 14 {
            0 => serf.handle_event(now, &Event::MemberJoined(input.member())),
            1 => serf.handle_event(now, &Event::MemberUpdated(input.member())),
            2 => serf.handle_event(now, &Event::MemberLeft(input.member())),
            3 => serf.handle_event(now, &Event::MemberFailed(input.member())),
            4..=6 => {
                let payload = input.message();
                let _ = serf.handle_message(now, &payload);
            }
            7 => {
                let state = match input.byte() % 2 {
                    0 => Message::PushPull(input.push_pull()).to_bytes(),
                    _ => input.message(),
                };
                let join = input.byte() % 2 == 0;
                let _ = serf.merge_remote_state(now, &state, join);
            }
            8 => {
                now = now + input.duration();
                serf.handle_timeout(now);
            }
            9 => {
                let name = input.name();
                let payload = input.payload().unwrap_or_default();
                let _ = serf.user_event(&name, &payload, input.byte() % 2 == 0);
            }
            10 => {
                let params = QueryParams {
                    request_ack: input.byte() % 2 == 0,
                    relay_factor: input.byte() % 3,
                    timeout: Some(input.duration()),
                    ..QueryParams::default()
                };
                let name = input.name();
                let _ = serf.query(now, &name, &input.payload().unwrap_or_default(), &params);
            }
            11 => {
                if !incoming.is_empty() {
                    let q = incoming.swap_remove(input.byte() as usize % incoming.len());
                    let _ = serf.respond(now, &q, &input.payload().unwrap_or_default());
                }
            }
            12 => {
                let node = input.name();
                let rtt = input.duration();
                let payload = input.bytes();
                serf.ping_completed(&node, rtt, payload);
            }
            _ => match input.byte() % 4 {
                0 => serf.ignore_old_events_on_join(),
                1 => serf.join_completed(now, usize::from(input.byte() % 3)),
                2 => {
                    let _ = serf.leave(now);
                }
                _ => {
                    let tags = Tags::from([("role".to_owned(), input.name())]);
                    let _ = serf.set_tags(tags);
                }
            },
        }
        while let Some(out) = serf.poll_output() {
            if let SerfOutput::Event(swim_serf::SerfEvent::Query(q)) = out {
                incoming.push(q);
            }
        }
        check(&serf, &mut prev);
    }
});
