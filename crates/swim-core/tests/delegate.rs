//! What the application hands the core and hears back: named user
//! broadcasts and how each finished, the bound on the user queue, and the
//! delegate's answers (state, ack payload, pulled broadcasts) asked at the
//! moment they are needed.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use swim_core::{BroadcastId, BroadcastOutcome, CommandError, Config, Delegate, Event};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The user messages node `i` received, in order.
fn received(c: &Cluster, i: usize) -> Vec<Vec<u8>> {
    c.nodes[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::UserMessage { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// How node `i`'s broadcasts finished, in order.
fn finished(c: &Cluster, i: usize) -> Vec<(BroadcastId, BroadcastOutcome)> {
    c.nodes[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::BroadcastFinished { id, outcome } => Some((*id, *outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_named_broadcast_replaces_the_queued_one_of_its_key() {
    let mut c = Cluster::local(4);
    c.bootstrap();
    let now = c.now;
    let s = &mut c.nodes[0].swim;
    let v1 = s.broadcast_named(now, "leader", b"v1").unwrap();
    let v2 = s.broadcast_named(now, "leader", b"v2").unwrap();
    let other = s.broadcast_named(now, "epoch", b"7").unwrap();
    let anonymous = s.broadcast(now, b"hello").unwrap();
    assert_eq!(s.user_broadcast_queue_len(), 3, "v2 took v1's place");
    c.drain(0);
    assert_eq!(finished(&c, 0), [(v1, BroadcastOutcome::Replaced)]);

    c.run_for(secs(5));
    // Each is sent its retransmit limit of times (2 × ⌈log10 5⌉ with Local's
    // multiplier), each send to one member; the replaced value never.
    let limit = c.nodes[0].swim.config().retransmit_limit(4);
    assert_eq!(limit, 2);
    let heard = |payload: &[u8]| -> usize {
        (1..4)
            .map(|i| received(&c, i).iter().filter(|p| *p == payload).count())
            .sum()
    };
    for payload in [&b"v2"[..], b"7", b"hello"] {
        assert_eq!(heard(payload), limit, "{payload:?}");
    }
    assert_eq!(heard(b"v1"), 0, "the replaced value was sent");
    // The others went out their full number of times.
    let mut done = finished(&c, 0);
    done.sort_by_key(|(id, _)| *id);
    assert_eq!(
        done,
        [
            (v1, BroadcastOutcome::Replaced),
            (v2, BroadcastOutcome::Sent),
            (other, BroadcastOutcome::Sent),
            (anonymous, BroadcastOutcome::Sent),
        ]
    );
    assert_eq!(c.nodes[0].swim.user_broadcast_queue_len(), 0);
}

#[test]
fn a_full_user_queue_refuses_new_broadcasts_but_not_replacements() {
    let mut c = Cluster::new(1, |i| {
        let mut config = Config::local(format!("node-{i}"), addr(i));
        config.max_broadcast_queue = 2;
        config
    });
    let now = c.now;
    let s = &mut c.nodes[0].swim;
    s.broadcast(now, b"a").unwrap();
    s.broadcast_named(now, "k", b"b").unwrap();
    assert_eq!(s.broadcast(now, b"c"), Err(CommandError::QueueFull(2)));
    assert_eq!(
        s.broadcast_named(now, "other", b"c"),
        Err(CommandError::QueueFull(2))
    );
    s.broadcast_named(now, "k", b"b2")
        .expect("a replacement takes no more room");
    assert_eq!(s.user_broadcast_queue_len(), 2);
    assert_eq!(
        CommandError::QueueFull(2).to_string(),
        "the broadcast queue is full (2 waiting)"
    );
}

#[test]
fn leaving_drops_what_is_queued_and_says_so() {
    // Alone in its cluster: the leave completes at once.
    let mut c = Cluster::local(1);
    let now = c.now;
    let s = &mut c.nodes[0].swim;
    let queued = s.broadcast(now, b"never sent").unwrap();
    s.leave(now, secs(1));
    assert_eq!(
        s.broadcast(now, b"too late"),
        Err(CommandError::Left),
        "nothing is gossiped after the leave"
    );
    c.drain(0);
    assert_eq!(finished(&c, 0), [(queued, BroadcastOutcome::Dropped)]);
    let last = c.nodes[0].events.last().map(|(_, e)| e.clone());
    assert_eq!(last, Some(Event::LeaveCompleted { timed_out: false }));
}

/// Hands out queued payloads when asked, the way Go's `GetBroadcasts`
/// delegates do: each once.
#[derive(Default)]
struct Pulled {
    waiting: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl Delegate for Pulled {
    fn has_broadcasts(&self) -> bool {
        !self.waiting.borrow().is_empty()
    }

    fn broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let mut waiting = self.waiting.borrow_mut();
        let mut out = Vec::new();
        let mut used = 0;
        while let Some(next) = waiting.front() {
            // One too large for any packet is handed out anyway, to be dropped.
            if used + next.len() + overhead > limit && next.len() < 2_000 {
                break;
            }
            used += next.len() + overhead;
            out.extend(waiting.pop_front());
        }
        out
    }
}

#[test]
fn broadcasts_the_delegate_hands_out_are_piggybacked_and_gossiped() {
    let waiting = Rc::new(RefCell::new(VecDeque::new()));
    let shared = waiting.clone();
    let mut c = Cluster::with_delegates(
        4,
        |i| Config::local(format!("node-{i}"), addr(i)),
        move |i| match i {
            0 => Box::new(Pulled {
                waiting: shared.clone(),
            }),
            _ => Box::new(swim_core::DefaultDelegate),
        },
    );
    c.bootstrap();
    // Sent once each: to every member of a four-node cluster, three times.
    for k in 0..3 {
        for _ in 1..4 {
            waiting
                .borrow_mut()
                .push_back(format!("pulled {k}").into_bytes());
        }
    }
    waiting.borrow_mut().push_back(vec![0; 3_000]);
    // The gossip tick runs again now that the delegate has something.
    let idle_tick = c.nodes[0].swim.poll_timeout().unwrap();
    assert!(idle_tick <= c.now + Duration::from_millis(100));
    c.run_for(secs(3));
    assert!(waiting.borrow().is_empty(), "everything was asked for");
    let heard: usize = (1..4)
        .map(|i| {
            received(&c, i)
                .iter()
                .filter(|p| p.starts_with(b"pulled"))
                .count()
        })
        .sum();
    assert_eq!(heard, 9, "each payload reached one member once");
    assert_eq!(c.nodes[0].swim.stats().pulled_broadcasts_dropped, 1);
}

/// Answers with a fresh state for every push/pull and a counter in acks.
#[derive(Default)]
struct Fresh {
    asked: Rc<RefCell<Vec<bool>>>,
    acks: u32,
}

impl Delegate for Fresh {
    fn local_state(&mut self, join: bool) -> Option<Vec<u8>> {
        let mut asked = self.asked.borrow_mut();
        asked.push(join);
        Some(format!("state {} join={join}", asked.len()).into_bytes())
    }

    fn ack_payload(&mut self) -> Option<Vec<u8>> {
        self.acks += 1;
        Some(format!("ack {}", self.acks).into_bytes())
    }
}

#[test]
fn state_and_ack_payloads_are_asked_for_when_they_are_sent() {
    let asked = Rc::new(RefCell::new(Vec::new()));
    let shared = asked.clone();
    let mut c = Cluster::with_delegates(
        2,
        |i| Config::local(format!("node-{i}"), addr(i)),
        move |i| match i {
            0 => Box::new(Fresh {
                asked: shared.clone(),
                acks: 0,
            }),
            _ => Box::new(swim_core::DefaultDelegate),
        },
    );
    c.join_all();
    c.run_for(secs(1));
    // The join's push/pull asked node 0 for its state, with the join flag.
    assert_eq!(asked.borrow().first(), Some(&true));
    let states: Vec<_> = c.nodes[1]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::RemoteState { join, state } => Some((*join, state.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(states.first(), Some(&(true, b"state 1 join=true".to_vec())));
    // Node 0's catch-up exchange after the join news asks again, without the flag.
    assert!(states[1..].iter().all(|(join, _)| !join), "{states:?}");
    // Node 1's probes of node 0 carry a new payload each time.
    c.run_for(secs(5));
    let payloads: Vec<_> = c.nodes[1]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ProbeAcked { node, payload, .. } if &**node == "node-0" => {
                Some(String::from_utf8(payload.clone()).unwrap())
            }
            _ => None,
        })
        .collect();
    assert!(payloads.len() >= 3, "{payloads:?}");
    let mut distinct = payloads.clone();
    distinct.dedup();
    assert_eq!(distinct, payloads, "asked for every ack");
}
